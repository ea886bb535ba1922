/* Diagnostics from loading unit files: the library never logs; it hands each message to the
 * caller's sink, which prints it (keelctl verify) or logs it (keel-init). Messages follow
 * systemd's wording so that people and scripts that know systemd-analyze recognise them. */
#pragma once

#include <stdarg.h>
#include <stddef.h>

#include "base/macro.h"

/* syslog's order, as systemd uses it: LOG_ERR for what makes a unit unloadable or drops a
 * setting that has no safe default, LOG_WARNING for "..., ignoring", NOTICE for deprecations. */
enum keel_diag_level {
	KEEL_DIAG_ERR = 3,
	KEEL_DIAG_WARNING = 4,
	KEEL_DIAG_NOTICE = 5,
	KEEL_DIAG_INFO = 6,
	KEEL_DIAG_DEBUG = 7,
};

struct keel_diag {
	enum keel_diag_level level;
	const char *unit; /* the unit's name, or NULL */
	const char *file; /* the file a line refers to, or NULL for messages about the whole unit */
	unsigned line;    /* 1-based; 0 when file is NULL */
	const char *msg;
};

typedef void (*keel_diag_fn)(void *userdata, const struct keel_diag *d);

struct keel_diag_sink {
	keel_diag_fn fn; /* NULL: messages are dropped */
	void *userdata;
};

/* Build a message (truncated at 1 KiB) and hand it to the sink. */
void keel_diag_emit(const struct keel_diag_sink *sink, enum keel_diag_level level, const char *unit,
		    const char *file, unsigned line, const char *fmt, ...) KEEL_PRINTF(6, 7);
void keel_diag_vemit(const struct keel_diag_sink *sink, enum keel_diag_level level, const char *unit,
		     const char *file, unsigned line, const char *fmt, va_list ap) KEEL_PRINTF(6, 0);

/* systemd's rendering: "FILE:LINE: MSG" for a line, "UNIT: MSG" for a unit, else "MSG". Returns
 * the length written (truncated to size-1, always NUL-terminated when size > 0). */
size_t keel_diag_format(const struct keel_diag *d, char *out, size_t size);

/* "err", "warning", "notice", "info", "debug". */
const char *keel_diag_level_name(enum keel_diag_level level);
