/* Logging for daemons and CLIs (libraries return errors instead): one line per event, a level,
 * a message and typed key=value fields, as text or JSON (runc's --log-format json), to stderr or
 * a file. Lines are built on the stack and written with one write(), so logging needs no memory
 * and lines from several processes sharing a file do not interleave. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "base/macro.h"

enum keel_log_level {
	KEEL_LOG_DEBUG,
	KEEL_LOG_INFO,
	KEEL_LOG_WARN,
	KEEL_LOG_ERROR,
	KEEL_LOG_OFF,
};

enum keel_log_format {
	KEEL_LOG_TEXT, /* 2026-11-27T18:57:10.123Z INFO keel-kv: listening addr=127.0.0.1 port=2379 */
	KEEL_LOG_JSON, /* {"level":"info","msg":"listening","time":"…","addr":"127.0.0.1","port":2379} */
};

enum keel_log_ftype { KEEL_LOGF_STR, KEEL_LOGF_INT, KEEL_LOGF_BOOL };

struct keel_log_field {
	const char *key;
	enum keel_log_ftype type;
	const char *str;
	int64_t num;
};

#define KEEL_LF_STR(k, v) ((struct keel_log_field){.key = (k), .type = KEEL_LOGF_STR, .str = (v)})
#define KEEL_LF_INT(k, v) ((struct keel_log_field){.key = (k), .type = KEEL_LOGF_INT, .num = (int64_t)(v)})
#define KEEL_LF_BOOL(k, v) ((struct keel_log_field){.key = (k), .type = KEEL_LOGF_BOOL, .num = !!(v)})

/* Program name shown in text lines, threshold, format and destination fd (default: "keel", INFO,
 * TEXT, 2). The fd is not closed by the logger. */
void keel_log_setup(const char *ident, enum keel_log_level level, enum keel_log_format format, int fd);
void keel_log_set_level(enum keel_log_level level);
enum keel_log_level keel_log_get_level(void);
bool keel_log_enabled(enum keel_log_level level);

/* "debug", "info", "warn"/"warning", "error", "off" (any case). 0 or -EINVAL. */
int keel_log_parse_level(const char *s, enum keel_log_level *ret);
/* "text" or "json". 0 or -EINVAL. */
int keel_log_parse_format(const char *s, enum keel_log_format *ret);

void keel_log_fields(enum keel_log_level level, const char *msg, const struct keel_log_field *fields,
		     unsigned n);
void keel_logf(enum keel_log_level level, const char *fmt, ...) KEEL_PRINTF(2, 3);

/* keel_log(KEEL_LOG_INFO, "listening", KEEL_LF_STR("addr", a), KEEL_LF_INT("port", p)); */
#define keel_log(level, msg, ...)                                                              \
	keel_log_fields((level), (msg), (const struct keel_log_field[]){__VA_ARGS__},          \
			(unsigned)(sizeof((struct keel_log_field[]){__VA_ARGS__}) /            \
				   sizeof(struct keel_log_field)))

/* Format one line into out (for tests and for callers with their own sink). Returns its length,
 * including the final newline; a line longer than size is cut and still ends with a newline. */
unsigned keel_log_format_line(char *out, unsigned size, enum keel_log_format format, const char *ident,
			      int64_t unix_ns, enum keel_log_level level, const char *msg,
			      const struct keel_log_field *fields, unsigned n);
