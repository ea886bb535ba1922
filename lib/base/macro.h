/* Small macros every Keel file may use: sizes, branch hints, cleanup, always-on assertions. */
#pragma once

#include <stddef.h>

#define KEEL_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define KEEL_MIN(a, b) ((a) < (b) ? (a) : (b))
#define KEEL_MAX(a, b) ((a) > (b) ? (a) : (b))

#define keel_likely(x) __builtin_expect(!!(x), 1)
#define keel_unlikely(x) __builtin_expect(!!(x), 0)

#define KEEL_PRINTF(fmt_idx, args_idx) __attribute__((format(printf, fmt_idx, args_idx)))
#define KEEL_NORETURN __attribute__((noreturn))
#define KEEL_WUR __attribute__((warn_unused_result))
#define keel_cleanup(fn) __attribute__((cleanup(fn)))

#define keel_container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

KEEL_NORETURN void keel__assert_fail(const char *expr, const char *file, int line, const char *func);

/* Stays on in release builds: use it for invariants whose violation means a bug in Keel, never for
 * conditions a client or the disk can cause (those return errors). (redis serverAssert, systemd) */
#define keel_assert(expr) \
	(keel_likely(expr) ? (void)0 : keel__assert_fail(#expr, __FILE__, __LINE__, __func__))
