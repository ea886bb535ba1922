/* Keel's one error convention: int returns, 0 (or a positive value) on success, -errno or -KEEL_E*
 * on failure, plus an optional caller-owned struct keel_err that carries a message with context. */
#pragma once

#include <stdarg.h>
#include <stddef.h>

#include "base/macro.h"

/* Project error codes live above the errno range so that one negative int can hold either.
 * One table drives the enum and the strings. */
#define KEEL_ERRORS(X)                                                   \
	X(KEEL_EBASE, 10000, "keel error")                               \
	X(KEEL_EPARSE, 10001, "parse error")                             \
	X(KEEL_EUNKNOWN_FLAG, 10002, "unknown flag")                     \
	X(KEEL_EBAD_VALUE, 10003, "invalid value")                       \
	X(KEEL_ECORRUPT, 10004, "data corrupted")                        \
	X(KEEL_EHELP, 10005, "help requested")                           \
	X(KEEL_ETYPE, 10006, "wrong type")                               \
	X(KEEL_EMISSING, 10007, "missing field")                         \
	X(KEEL_ERANGE, 10008, "value out of range")                      \
	X(KEEL_EINJECTED, 10009, "injected fault")                       \
	X(KEEL_EVERSION, 10010, "version requested")                     \
	X(KEEL_ENOT_LEADER, 10011, "not the leader")                     \
	X(KEEL_ESTOPPED, 10012, "stopped")

enum keel_error_code {
#define KEEL__ERR_ENUM(name, value, str) name = value,
	KEEL_ERRORS(KEEL__ERR_ENUM)
#undef KEEL__ERR_ENUM
};

#define KEEL_ERR_MSG_SIZE 256

/* Caller-owned error report. The buffer is fixed so that running out of memory can still be
 * reported. `code` is the negative value the failing function returned. */
struct keel_err {
	int code;
	char msg[KEEL_ERR_MSG_SIZE];
};

/* The text for a code: accepts negative or positive values, errno or KEEL_E*. Never NULL. */
const char *keel_strerror(int code);

/* Reset an error report to "no error". Accepts NULL. */
void keel_err_clear(struct keel_err *err);

/* Record `code` (negative or positive; stored negative) and a formatted message in `err` (may be
 * NULL). Returns the negative code so callers can write `return keel_err_set(err, -EINVAL, ...)`. */
int keel_err_set(struct keel_err *err, int code, const char *fmt, ...) KEEL_PRINTF(3, 4);
int keel_err_vset(struct keel_err *err, int code, const char *fmt, va_list ap) KEEL_PRINTF(3, 0);

/* Like keel_err_set, with ": <strerror(code)>" appended to the message. */
int keel_err_errno(struct keel_err *err, int code, const char *fmt, ...) KEEL_PRINTF(3, 4);

/* Prefix the existing message with "<context>: ", keeping the code. If no message was set yet,
 * the code's text is used as the message being wrapped. Returns err->code (or -KEEL_EBASE when
 * err is NULL). Truncates rather than fails when the buffer is full. */
int keel_err_wrap(struct keel_err *err, const char *fmt, ...) KEEL_PRINTF(2, 3);

/* The message, or the code's text if no message was set. */
const char *keel_err_msg(const struct keel_err *err);
