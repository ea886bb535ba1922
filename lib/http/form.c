/* Go's net/url unescaping and query parsing (src/net/url/url.go: unescape, parseQuery), and the
 * strconv.Quote that Go's EscapeError uses for its message. */
#include "http/form.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "base/mem.h"
#include "base/str.h"

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* strconv.IsPrint for the code points an escape error can hold: at most three bytes follow the
 * '%', so only ASCII and two-byte sequences (U+0080..U+07FF) arrive whole. Latin-1 follows Go's
 * table exactly; above it everything counts as printable (Go would escape the few unassigned and
 * format characters there: the message differs, the error does not). */
static bool go_isprint(uint32_t cp)
{
	if (cp < 0x20 || cp == 0x7f)
		return false;
	if (cp >= 0x80 && cp <= 0xa0)
		return false;
	return cp != 0xad;
}

/* Append strconv.Quote(s[0..n)) to out (size bytes, always NUL-terminated). */
static void go_quote(const char *s, size_t n, char *out, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
#define PUT(c)                            \
	do {                              \
		if (o + 1 < size)         \
			out[o++] = (char)(c); \
	} while (0)
	PUT('"');
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)s[i];
		uint32_t cp = c;
		size_t w = 1;
		if (c >= 0x80) {
			w = keel_utf8_char((const unsigned char *)s + i, n - i, &cp);
			if (w == 0) { /* invalid UTF-8: one byte as \xHH */
				PUT('\\');
				PUT('x');
				PUT(hex[c >> 4]);
				PUT(hex[c & 15]);
				i++;
				continue;
			}
		}
		if (cp == '"' || cp == '\\') {
			PUT('\\');
			PUT(cp);
		} else if (go_isprint(cp)) {
			for (size_t k = 0; k < w; k++)
				PUT(s[i + k]);
		} else {
			switch (cp) {
			case '\a': PUT('\\'); PUT('a'); break;
			case '\b': PUT('\\'); PUT('b'); break;
			case '\f': PUT('\\'); PUT('f'); break;
			case '\n': PUT('\\'); PUT('n'); break;
			case '\r': PUT('\\'); PUT('r'); break;
			case '\t': PUT('\\'); PUT('t'); break;
			case '\v': PUT('\\'); PUT('v'); break;
			default:
				if (cp < 0x80) {
					PUT('\\');
					PUT('x');
					PUT(hex[cp >> 4]);
					PUT(hex[cp & 15]);
				} else {
					PUT('\\');
					PUT('u');
					for (int sh = 12; sh >= 0; sh -= 4)
						PUT(hex[(cp >> sh) & 15]);
				}
			}
		}
		i += w;
	}
	PUT('"');
#undef PUT
	out[o] = '\0';
}

int keel_http_unescape(const char *s, size_t len, enum keel_http_unescape_mode mode, char *out,
		       size_t *ret_len, struct keel_err *err)
{
	size_t o = 0;
	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)s[i];
		if (c == '%') {
			int hi = i + 2 < len ? hexval((unsigned char)s[i + 1]) : -1;
			int lo = i + 2 < len ? hexval((unsigned char)s[i + 2]) : -1;
			if (hi < 0 || lo < 0) {
				/* Go quotes at most the three bytes from the '%' on. */
				char q[64];
				go_quote(s + i, KEEL_MIN(len - i, (size_t)3), q, sizeof(q));
				return keel_err_set(err, -KEEL_EPARSE, "invalid URL escape %s", q);
			}
			out[o++] = (char)(hi << 4 | lo);
			i += 3;
		} else if (c == '+' && mode == KEEL_HTTP_UNESCAPE_QUERY) {
			out[o++] = ' ';
			i++;
		} else {
			out[o++] = (char)c;
			i++;
		}
	}
	out[o] = '\0';
	*ret_len = o;
	return 0;
}

void keel_http_form_init(struct keel_http_form *f)
{
	f->params = NULL;
	f->n = 0;
	f->text = NULL;
}

void keel_http_form_free(struct keel_http_form *f)
{
	if (!f)
		return;
	keel_free(f->params);
	keel_free(f->text);
	keel_http_form_init(f);
}

int keel_http_form_parse(struct keel_http_form *f, const char *s, size_t len, struct keel_err *err)
{
	keel_assert(f->n == 0 && !f->params && !f->text);
	if (len == 0)
		return 0;

	size_t pairs = 1;
	for (size_t i = 0; i < len; i++)
		pairs += s[i] == '&';
	if (pairs > KEEL_HTTP_FORM_MAX_PARAMS)
		return keel_err_set(err, -KEEL_EPARSE, "number of URL query parameters exceeded limit");

	/* Decoded text never grows; each pair adds at most two NULs (key and value). */
	struct keel_http_param *params = keel_calloc(pairs, sizeof(*params));
	char *text = keel_malloc(len + 2 * pairs);
	if (!params || !text) {
		keel_free(params);
		keel_free(text);
		return -ENOMEM;
	}

	bool failed = false;
	struct keel_err first; /* Go keeps the first escape error; a semicolon overwrites it */
	keel_err_clear(&first);
	size_t n = 0, t = 0;
	const char *p = s, *end = s + len;
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *stop = amp ? amp : end;
		const char *pair = p;
		size_t plen = (size_t)(stop - p);
		p = amp ? amp + 1 : end;

		if (memchr(pair, ';', plen)) {
			keel_err_set(&first, -KEEL_EPARSE, "invalid semicolon separator in query");
			failed = true;
			continue;
		}
		if (plen == 0)
			continue;
		const char *eq = memchr(pair, '=', plen);
		size_t klen = eq ? (size_t)(eq - pair) : plen;
		const char *v = eq ? eq + 1 : pair + plen;
		size_t vlen = eq ? plen - klen - 1 : 0;

		struct keel_err e;
		size_t kout, vout;
		char *kdst = text + t;
		if (keel_http_unescape(pair, klen, KEEL_HTTP_UNESCAPE_QUERY, kdst, &kout, &e) < 0) {
			if (!failed)
				first = e;
			failed = true;
			continue;
		}
		char *vdst = kdst + kout + 1;
		if (keel_http_unescape(v, vlen, KEEL_HTTP_UNESCAPE_QUERY, vdst, &vout, &e) < 0) {
			if (!failed)
				first = e;
			failed = true;
			continue;
		}
		params[n].key_len = kout;
		params[n].value_len = vout;
		params[n].key = kdst;
		params[n].value = vdst;
		n++;
		t += kout + 1 + vout + 1;
	}

	if (n == 0) {
		keel_free(params);
		keel_free(text);
	} else {
		f->params = params;
		f->text = text;
		f->n = n;
	}
	if (failed) {
		if (err)
			*err = first;
		return first.code;
	}
	return 0;
}

static bool key_is(const struct keel_http_param *p, const char *key, size_t klen)
{
	return p->key_len == klen && memcmp(p->key, key, klen) == 0;
}

const char *keel_http_form_get_nth(const struct keel_http_form *f, const char *key, size_t index)
{
	if (!f || !key)
		return NULL;
	size_t klen = strlen(key);
	for (size_t i = 0; i < f->n; i++)
		if (key_is(&f->params[i], key, klen) && index-- == 0)
			return f->params[i].value;
	return NULL;
}

const char *keel_http_form_get(const struct keel_http_form *f, const char *key)
{
	return keel_http_form_get_nth(f, key, 0);
}

size_t keel_http_form_count(const struct keel_http_form *f, const char *key)
{
	if (!f || !key)
		return 0;
	size_t klen = strlen(key), count = 0;
	for (size_t i = 0; i < f->n; i++)
		count += key_is(&f->params[i], key, klen);
	return count;
}

bool keel_http_is_form_content_type(const char *value, size_t len)
{
	static const char want[] = "application/x-www-form-urlencoded";
	if (!value)
		return false;
	const char *semi = memchr(value, ';', len);
	size_t n = semi ? (size_t)(semi - value) : len;
	while (n > 0 && (value[0] == ' ' || value[0] == '\t')) {
		value++;
		n--;
	}
	while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t'))
		n--;
	return n == sizeof(want) - 1 && strncasecmp(value, want, n) == 0;
}
