/* Where keel-init hands the output of its units: the engine reads each unit's stdout/stderr
 * pipe on its event loop, splits it into lines, takes a leading "<N>" as the syslog priority
 * (sd-daemon(3)), and passes each line here with the unit's name and a timestamp. keel-init's own
 * messages about a unit ("Started ...", "Main process exited ...") go through the same sink, so
 * that `keelctl status` can show them beside the unit's output.
 *
 * A sink is a small vtable: the journal (lib/init/journal*.c) implements it; until then
 * keel_logsink_file_new() appends to one text file per unit. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/macro.h"

struct keel_log_record {
	const char *unit;       /* "foo.service" */
	const char *identifier; /* SyslogIdentifier=, else the process name; NULL for keel-init's own */
	pid_t pid;              /* 0 for keel-init's own messages about the unit */
	int priority;           /* 0 (emerg) .. 7 (debug); output without "<N>" is 6 (info) */
	uint64_t realtime_usec; /* when the line was read */
	const char *msg;        /* the line, without its newline and "<N>" prefix; not NUL-terminated */
	size_t len;
};

/* Called with the last lines of a unit, oldest first. */
typedef void (*keel_logsink_tail_fn)(void *userdata, const struct keel_log_record *rec);

struct keel_logsink_ops {
	/* Store one line. Must not block for long: it runs on keel-init's loop. */
	void (*write)(void *impl, const struct keel_log_record *rec);
	/* The last n lines of unit (for status). Optional (NULL: none shown). 0 or -errno. */
	int (*tail)(void *impl, const char *unit, unsigned n, keel_logsink_tail_fn fn, void *userdata);
	void (*free)(void *impl);
};

struct keel_logsink {
	const struct keel_logsink_ops *ops;
	void *impl;
};

static inline void keel_logsink_write(const struct keel_logsink *s, const struct keel_log_record *r)
{
	if (s->ops)
		s->ops->write(s->impl, r);
}

/* The interim sink: DIR/UNIT.log, one line per record:
 * TS <PRIO> IDENT[PID]: MESSAGE. The directory is created if missing.
 * Files are opened per write (keel-init keeps no fd per unit) and cut to their second half when
 * they pass max_bytes. 0, -ENOMEM or -errno from mkdir. */
int keel_logsink_file_new(const char *dir, uint64_t max_bytes, struct keel_logsink *ret) KEEL_WUR;
void keel_logsink_free(struct keel_logsink *s);

/* Split the leading "<N>" off a line: returns the priority (0-7) and advances msg and len, or
 * returns def when there is none. */
int keel_log_priority_prefix(const char **msg, size_t *len, int def);
