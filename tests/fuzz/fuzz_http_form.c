/* Fuzz lib/http's URL decoding and form parsing: what any client puts in a request target or a
 * form body. The whole input is one query string (or body).
 *
 * Properties: nothing crashes, reads out of bounds or leaks; decoding never grows the text;
 * every parsed pair is NUL-terminated at its length; a form that parsed without error comes
 * back identical after Go-style re-encoding (QueryEscape, '&'-joined) and parsing again, with
 * no error; decoding the re-escaped bytes of any string gives those bytes back, in both
 * modes; the content-type check never crashes. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "http/form.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Go's QueryEscape: unreserved bytes as they are, space as '+', everything else %XX. */
static void query_escape(struct keel_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		int r;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
		    c == '_' || c == '.' || c == '~')
			r = keel_buf_putc(b, (char)c);
		else if (c == ' ')
			r = keel_buf_putc(b, '+');
		else
			r = keel_buf_putc(b, '%') || keel_buf_putc(b, hex[c >> 4]) || keel_buf_putc(b, hex[c & 15]);
		if (r)
			abort();
	}
}

static void check_unescape(const char *s, size_t n)
{
	char *out = malloc(n + 1);
	if (!out)
		abort();
	for (int mode = 0; mode < 2; mode++) {
		size_t len = SIZE_MAX;
		struct keel_err err;
		if (keel_http_unescape(s, n, (enum keel_http_unescape_mode)mode, out, &len, &err) == 0) {
			if (len > n || out[len] != '\0')
				abort();
		} else if (err.code != -KEEL_EPARSE || strncmp(err.msg, "invalid URL escape \"%", 21) != 0) {
			abort();
		}
	}
	/* Escaping then unescaping gives the bytes back. */
	struct keel_buf esc = KEEL_BUF_INIT;
	query_escape(&esc, s, n);
	char *back = malloc(esc.len + 1);
	size_t blen;
	if (!back || keel_http_unescape(esc.data ? esc.data : "", esc.len, KEEL_HTTP_UNESCAPE_QUERY, back,
					&blen, NULL) != 0 ||
	    blen != n || memcmp(back, s, n) != 0)
		abort();
	free(back);
	keel_buf_free(&esc);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 8192)
		return 0;
	const char *s = (const char *)data;
	check_unescape(s, size);
	(void)keel_http_is_form_content_type(s, size);

	struct keel_http_form f = KEEL_HTTP_FORM_INIT;
	struct keel_err err;
	int r = keel_http_form_parse(&f, s, size, &err);
	if (r != 0 && r != -KEEL_EPARSE && r != -ENOMEM)
		abort();
	for (size_t i = 0; i < f.n; i++) {
		const struct keel_http_param *p = &f.params[i];
		if (p->key[p->key_len] != '\0' || p->value[p->value_len] != '\0' || p->key_len + p->value_len > size)
			abort();
	}
	if (r == 0) {
		struct keel_buf enc = KEEL_BUF_INIT;
		for (size_t i = 0; i < f.n; i++) {
			if (i && keel_buf_putc(&enc, '&'))
				abort();
			query_escape(&enc, f.params[i].key, f.params[i].key_len);
			if (keel_buf_putc(&enc, '='))
				abort();
			query_escape(&enc, f.params[i].value, f.params[i].value_len);
		}
		struct keel_http_form g = KEEL_HTTP_FORM_INIT;
		/* Empty keys with empty values ("=") survive; a pair that was "" would not exist. */
		if (keel_http_form_parse(&g, enc.data ? enc.data : "", enc.len, NULL) != 0 || g.n != f.n)
			abort();
		for (size_t i = 0; i < f.n; i++)
			if (g.params[i].key_len != f.params[i].key_len || g.params[i].value_len != f.params[i].value_len ||
			    memcmp(g.params[i].key, f.params[i].key, f.params[i].key_len) != 0 ||
			    memcmp(g.params[i].value, f.params[i].value, f.params[i].value_len) != 0)
				abort();
		keel_http_form_free(&g);
		keel_buf_free(&enc);
	}
	keel_http_form_free(&f);
	return 0;
}
