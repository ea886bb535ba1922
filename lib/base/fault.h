/* Fault injection: make chosen allocations and system calls fail, in tests and in real processes
 * (KEEL_FAULT in the environment), so that error paths are exercised rather than assumed.
 * (SQLite test_syscall.c, canonical/raft fault.h) */
#pragma once

#include <stdbool.h>

enum keel_fault_point {
	KEEL_FAULT_ALLOC,
	KEEL_FAULT_OPEN,
	KEEL_FAULT_READ,
	KEEL_FAULT_PREAD,
	KEEL_FAULT_WRITE,
	KEEL_FAULT_PWRITE,
	KEEL_FAULT_FSYNC,
	KEEL_FAULT_FDATASYNC,
	KEEL_FAULT_FTRUNCATE,
	KEEL_FAULT_FALLOCATE,
	KEEL_FAULT_RENAME,
	KEEL_FAULT_UNLINK,
	KEEL_FAULT_MKDIR,
	KEEL_FAULT_CLOSE,
	KEEL_FAULT__MAX
};

/* What an armed point does once its countdown reaches it. */
enum keel_fault_mode {
	KEEL_FAULT_FAIL,  /* the call fails with the given errno */
	KEEL_FAULT_SHORT, /* reads return half the bytes; writes put half on disk, then fail with EIO
			   * (a torn write); other calls fail with EIO */
};

/* Let `skip` calls through, then inject into the next `count` calls (-1: all of them from then on).
 * `err` is the positive errno the call fails with (ENOMEM for allocations). Not thread-safe: arm
 * points before starting threads. */
void keel_fault_arm(enum keel_fault_point point, unsigned skip, int count, int err);
void keel_fault_arm_short(enum keel_fault_point point, unsigned skip, int count);
void keel_fault_disarm(enum keel_fault_point point);
void keel_fault_reset(void);

/* How many times a point was reached (armed or not) since the last reset/arm of that point. */
unsigned long keel_fault_calls(enum keel_fault_point point);
/* How many faults a point injected since it was armed. */
unsigned long keel_fault_injected(enum keel_fault_point point);

const char *keel_fault_point_name(enum keel_fault_point point);

/* Arm points from a spec such as "fdatasync:100:-1:ENOSPC,alloc:5" (point:skip[:count[:errno]],
 * count defaults to 1, errno to the point's natural one; "short" instead of an errno selects
 * KEEL_FAULT_SHORT). Daemons call this with getenv("KEEL_FAULT"). Returns 0 or -EINVAL (nothing is
 * armed then). NULL or "" arms nothing. */
int keel_fault_parse(const char *spec);

/* Called by the wrappers: 0 to proceed, a positive errno to fail, or -1 for a short transfer.
 * Costs one load and one branch while nothing is armed. */
extern unsigned keel__fault_armed;
int keel__fault_hit(enum keel_fault_point point);

static inline int keel_fault_check(enum keel_fault_point point)
{
	if (__builtin_expect(keel__fault_armed == 0, 1))
		return 0;
	return keel__fault_hit(point);
}
