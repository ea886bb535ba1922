#include "base/jw.h"

#include <errno.h>
#include <string.h>

#include "base/str.h"

void keel_jw_init(struct keel_jw *w, struct keel_buf *buf, unsigned flags)
{
	*w = (struct keel_jw){.buf = buf, .flags = flags};
}

static void jw_fail(struct keel_jw *w, int err)
{
	if (!w->err)
		w->err = err;
}

static void jw_put(struct keel_jw *w, const char *s, size_t n)
{
	if (!w->err && keel_buf_append(w->buf, s, n) < 0)
		jw_fail(w, -ENOMEM);
}

/* Before any value: a comma between siblings, and checks that a value may go here. */
static bool jw_value_start(struct keel_jw *w)
{
	if (w->err)
		return false;
	if (w->depth > 0 && w->stack[w->depth - 1] == '{' && !w->after_key) {
		jw_fail(w, -EINVAL); /* a value inside an object needs a key first */
		return false;
	}
	if (w->depth == 0 && w->need_comma) {
		jw_fail(w, -EINVAL); /* a second top-level value */
		return false;
	}
	if (w->need_comma && !w->after_key)
		jw_put(w, ",", 1);
	w->after_key = false;
	w->need_comma = true;
	return !w->err;
}

static void jw_open(struct keel_jw *w, char c)
{
	if (!jw_value_start(w))
		return;
	if (w->depth == KEEL_JW_MAX_DEPTH) {
		jw_fail(w, -EINVAL);
		return;
	}
	w->stack[w->depth++] = c;
	w->need_comma = false;
	jw_put(w, &c, 1);
}

static void jw_close(struct keel_jw *w, char open, char close)
{
	if (w->err)
		return;
	if (w->depth == 0 || w->stack[w->depth - 1] != open || w->after_key) {
		jw_fail(w, -EINVAL);
		return;
	}
	w->depth--;
	w->need_comma = true;
	jw_put(w, &close, 1);
}

void keel_jw_obj_begin(struct keel_jw *w) { jw_open(w, '{'); }
void keel_jw_obj_end(struct keel_jw *w) { jw_close(w, '{', '}'); }
void keel_jw_arr_begin(struct keel_jw *w) { jw_open(w, '['); }
void keel_jw_arr_end(struct keel_jw *w) { jw_close(w, '[', ']'); }

/* Bytes that cannot be copied as they are: controls, quote, backslash, non-ASCII (checked), and
 * with Go escaping the HTML-sensitive ones. */
static bool needs_care(unsigned char c, unsigned flags)
{
	if (c < 0x20 || c == '"' || c == '\\' || c >= 0x80)
		return true;
	return (flags & KEEL_JW_GO_ESCAPE) && (c == '<' || c == '>' || c == '&');
}

int keel_json_escape(struct keel_buf *b, const char *s, size_t n, unsigned flags)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	int r = keel_buf_reserve(b, n);
	if (r)
		return r;
	while (p < end) {
		const unsigned char *run = p;
		while (p < end && !needs_care(*p, flags))
			p++;
		if (p > run && (r = keel_buf_append(b, run, (size_t)(p - run))))
			return r;
		if (p == end)
			break;
		unsigned char c = *p;
		char esc[8];
		size_t elen = 0;
		if (c == '"' || c == '\\') {
			esc[0] = '\\', esc[1] = (char)c, elen = 2;
		} else if (c == '\n' || c == '\r' || c == '\t') {
			esc[0] = '\\', esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't', elen = 2;
		} else if (c < 0x80) {
			/* Other controls, and Go's HTML escapes: \u00XX. */
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[c >> 4], esc[5] = hex[c & 15], elen = 6;
		} else {
			uint32_t cp;
			size_t len = keel_utf8_char(p, (size_t)(end - p), &cp);
			if (len == 0) {
				memcpy(esc, "\\ufffd", 6), elen = 6;
			} else if ((flags & KEEL_JW_GO_ESCAPE) && (cp == 0x2028 || cp == 0x2029)) {
				memcpy(esc, cp == 0x2028 ? "\\u2028" : "\\u2029", 6), elen = 6;
				p += len - 1;
			} else {
				if ((r = keel_buf_append(b, p, len)))
					return r;
				p += len;
				continue;
			}
		}
		if ((r = keel_buf_append(b, esc, elen)))
			return r;
		p++;
	}
	return 0;
}

static void jw_string(struct keel_jw *w, const char *s, size_t n)
{
	jw_put(w, "\"", 1);
	if (!w->err && keel_json_escape(w->buf, s, n, w->flags) < 0)
		jw_fail(w, -ENOMEM);
	jw_put(w, "\"", 1);
}

void keel_jw_keyn(struct keel_jw *w, const char *key, size_t n)
{
	if (w->err)
		return;
	if (w->depth == 0 || w->stack[w->depth - 1] != '{' || w->after_key) {
		jw_fail(w, -EINVAL);
		return;
	}
	if (w->need_comma)
		jw_put(w, ",", 1);
	jw_string(w, key, n);
	jw_put(w, ":", 1);
	w->after_key = true;
}

void keel_jw_key(struct keel_jw *w, const char *key)
{
	keel_jw_keyn(w, key, strlen(key));
}

void keel_jw_strn(struct keel_jw *w, const char *s, size_t n)
{
	if (jw_value_start(w))
		jw_string(w, s, n);
}

void keel_jw_str(struct keel_jw *w, const char *s)
{
	keel_jw_strn(w, s, strlen(s));
}

void keel_jw_u64(struct keel_jw *w, uint64_t v)
{
	if (jw_value_start(w) && keel_buf_put_u64(w->buf, v) < 0)
		jw_fail(w, -ENOMEM);
}

void keel_jw_i64(struct keel_jw *w, int64_t v)
{
	if (jw_value_start(w) && keel_buf_put_i64(w->buf, v) < 0)
		jw_fail(w, -ENOMEM);
}

void keel_jw_bool(struct keel_jw *w, bool v)
{
	if (jw_value_start(w))
		jw_put(w, v ? "true" : "false", v ? 4 : 5);
}

void keel_jw_null(struct keel_jw *w)
{
	if (jw_value_start(w))
		jw_put(w, "null", 4);
}

void keel_jw_raw(struct keel_jw *w, const char *json, size_t n)
{
	if (jw_value_start(w))
		jw_put(w, json, n);
}

void keel_jw_kstr(struct keel_jw *w, const char *key, const char *v)
{
	keel_jw_key(w, key);
	keel_jw_str(w, v);
}

void keel_jw_ku64(struct keel_jw *w, const char *key, uint64_t v)
{
	keel_jw_key(w, key);
	keel_jw_u64(w, v);
}

void keel_jw_ki64(struct keel_jw *w, const char *key, int64_t v)
{
	keel_jw_key(w, key);
	keel_jw_i64(w, v);
}

void keel_jw_kbool(struct keel_jw *w, const char *key, bool v)
{
	keel_jw_key(w, key);
	keel_jw_bool(w, v);
}

int keel_jw_finish(struct keel_jw *w)
{
	if (w->err)
		return w->err;
	if (w->depth != 0 || w->after_key || !w->need_comma)
		return -EINVAL;
	return 0;
}
