#include "init/diag.h"

#include <stdio.h>

void keel_diag_vemit(const struct keel_diag_sink *sink, enum keel_diag_level level, const char *unit,
		     const char *file, unsigned line, const char *fmt, va_list ap)
{
	if (!sink || !sink->fn)
		return;
	char msg[1024];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	struct keel_diag d = {
		.level = level, .unit = unit, .file = file, .line = file ? line : 0, .msg = msg,
	};
	sink->fn(sink->userdata, &d);
}

void keel_diag_emit(const struct keel_diag_sink *sink, enum keel_diag_level level, const char *unit,
		    const char *file, unsigned line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	keel_diag_vemit(sink, level, unit, file, line, fmt, ap);
	va_end(ap);
}

size_t keel_diag_format(const struct keel_diag *d, char *out, size_t size)
{
	int n;
	if (d->file)
		n = snprintf(out, size, "%s:%u: %s", d->file, d->line, d->msg);
	else if (d->unit)
		n = snprintf(out, size, "%s: %s", d->unit, d->msg);
	else
		n = snprintf(out, size, "%s", d->msg);
	if (n < 0)
		n = 0;
	if (size == 0)
		return 0;
	return (size_t)n < size ? (size_t)n : size - 1;
}

const char *keel_diag_level_name(enum keel_diag_level level)
{
	switch (level) {
	case KEEL_DIAG_ERR:
		return "err";
	case KEEL_DIAG_WARNING:
		return "warning";
	case KEEL_DIAG_NOTICE:
		return "notice";
	case KEEL_DIAG_INFO:
		return "info";
	case KEEL_DIAG_DEBUG:
		return "debug";
	}
	return "unknown";
}
