#include "base/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/str.h"

#define KEEL__LOG_LINE_MAX 4096

static struct {
	const char *ident;
	enum keel_log_level level;
	enum keel_log_format format;
	int fd;
} keel__log = {"keel", KEEL_LOG_INFO, KEEL_LOG_TEXT, 2};

static const char *const keel__level_upper[] = {"DEBUG", "INFO", "WARN", "ERROR", "OFF"};
static const char *const keel__level_lower[] = {"debug", "info", "warning", "error", "off"};

void keel_log_setup(const char *ident, enum keel_log_level level, enum keel_log_format format, int fd)
{
	keel__log.ident = ident ? ident : "keel";
	keel__log.level = level;
	keel__log.format = format;
	keel__log.fd = fd;
}

void keel_log_set_level(enum keel_log_level level)
{
	keel__log.level = level;
}

enum keel_log_level keel_log_get_level(void)
{
	return keel__log.level;
}

bool keel_log_enabled(enum keel_log_level level)
{
	return level >= keel__log.level && level < KEEL_LOG_OFF;
}

int keel_log_parse_level(const char *s, enum keel_log_level *ret)
{
	static const struct {
		const char *name;
		enum keel_log_level level;
	} names[] = {
		{"debug", KEEL_LOG_DEBUG}, {"info", KEEL_LOG_INFO},   {"warn", KEEL_LOG_WARN},
		{"warning", KEEL_LOG_WARN}, {"error", KEEL_LOG_ERROR}, {"off", KEEL_LOG_OFF},
	};
	for (size_t i = 0; s && i < KEEL_ARRAY_SIZE(names); i++)
		if (strcasecmp(s, names[i].name) == 0) {
			*ret = names[i].level;
			return 0;
		}
	return -EINVAL;
}

int keel_log_parse_format(const char *s, enum keel_log_format *ret)
{
	if (s && strcmp(s, "text") == 0)
		*ret = KEEL_LOG_TEXT;
	else if (s && strcmp(s, "json") == 0)
		*ret = KEEL_LOG_JSON;
	else
		return -EINVAL;
	return 0;
}

/* A bounded writer into the caller's line buffer; silently cuts what does not fit, keeping one
 * byte for the newline. */
struct keel__lw {
	char *p;
	unsigned len, cap;
	bool cut;
};

static void lw_putn(struct keel__lw *w, const char *s, size_t n)
{
	size_t room = w->cap - 1 - w->len;
	if (n > room) {
		n = room;
		w->cut = true;
	}
	memcpy(w->p + w->len, s, n);
	w->len += (unsigned)n;
}

static void lw_puts(struct keel__lw *w, const char *s)
{
	lw_putn(w, s, strlen(s));
}

static void lw_putc(struct keel__lw *w, char c)
{
	lw_putn(w, &c, 1);
}

static void lw_int(struct keel__lw *w, int64_t v)
{
	char tmp[21];
	size_t n = 0;
	if (v < 0)
		tmp[n++] = '-';
	n += keel_u64_to_dec(v < 0 ? 0 - (uint64_t)v : (uint64_t)v, tmp + n);
	lw_putn(w, tmp, n);
}

/* How many bytes lw_json_esc writes for c. */
static size_t json_esc_len(unsigned char c)
{
	if (c == '"' || c == '\\' || c == '\n' || c == '\t')
		return 2;
	return c < 0x20 ? 6 : 1;
}

/* Copy into out the longest prefix of s that escapes to at most `budget` bytes (so out needs
 * budget + 1 bytes), without ending inside a UTF-8 sequence. */
static void json_prefix(char *out, size_t budget, const char *s)
{
	size_t n = 0, used = 0;
	while (s[n] && used + json_esc_len((unsigned char)s[n]) <= budget)
		used += json_esc_len((unsigned char)s[n++]);
	/* Cut before the lead byte when the next byte continues its sequence. */
	while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	memcpy(out, s, n);
	out[n] = '\0';
}

/* A JSON string body (no quotes): escapes quotes, backslashes and control bytes, and writes each
 * byte that is not part of valid UTF-8 as U+FFFD, so the line stays valid JSON. */
static void lw_json_esc(struct keel__lw *w, const char *s)
{
	size_t left = strlen(s);
	for (; *s; s++, left--) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			lw_putc(w, '\\');
			lw_putc(w, (char)c);
		} else if (c == '\n') {
			lw_puts(w, "\\n");
		} else if (c == '\t') {
			lw_puts(w, "\\t");
		} else if (c < 0x20) {
			char tmp[8];
			snprintf(tmp, sizeof(tmp), "\\u%04x", c);
			lw_puts(w, tmp);
		} else if (c < 0x80) {
			lw_putc(w, (char)c);
		} else {
			uint32_t cp;
			size_t len = keel_utf8_char((const unsigned char *)s, left, &cp);
			if (len == 0) {
				lw_puts(w, "\\ufffd");
			} else {
				lw_putn(w, s, len);
				s += len - 1;
				left -= len - 1;
			}
		}
	}
}

/* The message of a text line: as it is, but control characters escaped so that one event
 * stays one line. */
static void lw_text_msg(struct keel__lw *w, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c >= 0x20 && c != 0x7f) {
			lw_putc(w, (char)c);
		} else if (c == '\n') {
			lw_puts(w, "\\n");
		} else {
			char tmp[8];
			snprintf(tmp, sizeof(tmp), "\\x%02x", c);
			lw_puts(w, tmp);
		}
	}
}

/* logfmt: bare when safe, else double-quoted with the JSON escapes. */
static void lw_text_value(struct keel__lw *w, const char *s)
{
	bool bare = *s != '\0';
	for (const char *p = s; *p && bare; p++)
		if ((unsigned char)*p <= ' ' || *p == '"' || *p == '=' || *p == '\\')
			bare = false;
	if (bare) {
		lw_puts(w, s);
		return;
	}
	lw_putc(w, '"');
	lw_json_esc(w, s);
	lw_putc(w, '"');
}

static unsigned keel__format_line(char *out, unsigned size, enum keel_log_format format,
				  const char *ident, int64_t unix_ns, enum keel_log_level level,
				  const char *msg, const struct keel_log_field *fields, unsigned n,
				  bool retry)
{
	if (size == 0)
		return 0;
	struct keel__lw w = {out, 0, size};
	char ts[KEEL_RFC3339_MAX];
	if (!keel_fmt_rfc3339(unix_ns, format == KEEL_LOG_JSON, ts, sizeof(ts)))
		strcpy(ts, "?");
	if (level > KEEL_LOG_OFF)
		level = KEEL_LOG_ERROR;

	if (format == KEEL_LOG_JSON) {
		lw_puts(&w, "{\"level\":\"");
		lw_puts(&w, keel__level_lower[level]);
		lw_puts(&w, "\",\"msg\":\"");
		lw_json_esc(&w, msg ? msg : "");
		lw_puts(&w, "\",\"time\":\"");
		lw_puts(&w, ts);
		lw_putc(&w, '"');
		for (unsigned i = 0; i < n; i++) {
			lw_puts(&w, ",\"");
			lw_json_esc(&w, fields[i].key);
			lw_puts(&w, "\":");
			switch (fields[i].type) {
			case KEEL_LOGF_INT:
				lw_int(&w, fields[i].num);
				break;
			case KEEL_LOGF_BOOL:
				lw_puts(&w, fields[i].num ? "true" : "false");
				break;
			default:
				lw_putc(&w, '"');
				lw_json_esc(&w, fields[i].str ? fields[i].str : "");
				lw_putc(&w, '"');
			}
		}
		lw_putc(&w, '}');
		if (w.cut && !retry) {
			/* A cut line is not JSON: say less instead, the message shortened and the
			 * fields dropped, and flag it. */
			char shortmsg[KEEL__LOG_LINE_MAX / 4];
			json_prefix(shortmsg, KEEL_MIN(sizeof(shortmsg) - 1, (size_t)size / 4),
				    msg ? msg : "");
			struct keel_log_field flag = KEEL_LF_BOOL("truncated", 1);
			return keel__format_line(out, size, format, ident, unix_ns, level, shortmsg,
						 &flag, 1, true);
		}
	} else {
		lw_puts(&w, ts);
		lw_putc(&w, ' ');
		lw_puts(&w, keel__level_upper[level]);
		lw_putc(&w, ' ');
		lw_puts(&w, ident ? ident : "keel");
		lw_puts(&w, ": ");
		lw_text_msg(&w, msg ? msg : "");
		for (unsigned i = 0; i < n; i++) {
			lw_putc(&w, ' ');
			lw_puts(&w, fields[i].key);
			lw_putc(&w, '=');
			switch (fields[i].type) {
			case KEEL_LOGF_INT:
				lw_int(&w, fields[i].num);
				break;
			case KEEL_LOGF_BOOL:
				lw_puts(&w, fields[i].num ? "true" : "false");
				break;
			default:
				lw_text_value(&w, fields[i].str ? fields[i].str : "");
			}
		}
	}
	w.p[w.len++] = '\n';
	return w.len;
}

unsigned keel_log_format_line(char *out, unsigned size, enum keel_log_format format, const char *ident,
			      int64_t unix_ns, enum keel_log_level level, const char *msg,
			      const struct keel_log_field *fields, unsigned n)
{
	return keel__format_line(out, size, format, ident, unix_ns, level, msg, fields, n, false);
}

void keel_log_fields(enum keel_log_level level, const char *msg, const struct keel_log_field *fields,
		     unsigned n)
{
	if (!keel_log_enabled(level))
		return;
	int saved = errno;
	char line[KEEL__LOG_LINE_MAX];
	unsigned len = keel_log_format_line(line, sizeof(line), keel__log.format, keel__log.ident,
					    keel_wall_ns(), level, msg, fields, n);
	ssize_t r;
	do
		r = write(keel__log.fd, line, len);
	while (r < 0 && errno == EINTR);
	errno = saved; /* logging must not disturb the caller's error handling */
}

void keel_logf(enum keel_log_level level, const char *fmt, ...)
{
	if (!keel_log_enabled(level))
		return;
	char msg[KEEL__LOG_LINE_MAX / 2];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	keel_log_fields(level, msg, NULL, 0);
}
