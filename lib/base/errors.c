#include "base/errors.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct keel__errdesc {
	int code;
	const char *text;
};

static const struct keel__errdesc keel__errors[] = {
#define KEEL__ERR_DESC(name, value, str) {value, str},
	KEEL_ERRORS(KEEL__ERR_DESC)
#undef KEEL__ERR_DESC
};

const char *keel_strerror(int code)
{
	if (code < 0)
		code = -code;
	if (code == 0)
		return "success";
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(keel__errors); i++)
		if (keel__errors[i].code == code)
			return keel__errors[i].text;
	/* glibc's description table is static and thread-safe, unlike strerror(). */
	const char *s = strerrordesc_np(code);
	return s ? s : "unknown error";
}

void keel_err_clear(struct keel_err *err)
{
	if (!err)
		return;
	err->code = 0;
	err->msg[0] = '\0';
}

static int keel__neg(int code)
{
	return code > 0 ? -code : (code == 0 ? -KEEL_EBASE : code);
}

int keel_err_vset(struct keel_err *err, int code, const char *fmt, va_list ap)
{
	code = keel__neg(code);
	if (!err)
		return code;
	err->code = code;
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	return code;
}

int keel_err_set(struct keel_err *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	code = keel_err_vset(err, code, fmt, ap);
	va_end(ap);
	return code;
}

int keel_err_errno(struct keel_err *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	code = keel_err_vset(err, code, fmt, ap);
	va_end(ap);
	if (err) {
		size_t len = strlen(err->msg);
		snprintf(err->msg + len, sizeof(err->msg) - len, ": %s", keel_strerror(code));
	}
	return code;
}

int keel_err_wrap(struct keel_err *err, const char *fmt, ...)
{
	if (!err)
		return -KEEL_EBASE;
	if (err->code == 0)
		err->code = -KEEL_EBASE;

	char old[KEEL_ERR_MSG_SIZE];
	snprintf(old, sizeof(old), "%s", keel_err_msg(err));

	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	/* Append ": <old>" by hand: truncation is the intent here, not a bug to warn about. */
	size_t len = n < 0 ? 0 : KEEL_MIN((size_t)n, sizeof(err->msg) - 1);
	const char *parts[2] = {": ", old};
	for (int i = 0; i < 2; i++) {
		size_t add = KEEL_MIN(strlen(parts[i]), sizeof(err->msg) - 1 - len);
		memcpy(err->msg + len, parts[i], add);
		len += add;
	}
	err->msg[len] = '\0';
	return err->code;
}

const char *keel_err_msg(const struct keel_err *err)
{
	if (!err)
		return "";
	if (err->msg[0])
		return err->msg;
	return keel_strerror(err->code);
}

void keel__assert_fail(const char *expr, const char *file, int line, const char *func)
{
	fprintf(stderr, "keel: assertion failed: %s (%s:%d, %s)\n", expr, file, line, func);
	fflush(stderr);
	abort();
}
