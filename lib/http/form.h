/* URL percent-decoding and application/x-www-form-urlencoded parsing with Go's net/url
 * semantics, so that keel-kv reads query strings and POST forms exactly as etcd (a Go program)
 * does, down to the error text a client sees in etcd's error 210 ("Invalid POST form").
 * Pure code: no I/O, no h2o; fuzzed by tests/fuzz/fuzz_http_form.c. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "base/errors.h"

/* Go's url.ParseQuery refuses queries with more parameters than this (counting '&' + 1). */
#define KEEL_HTTP_FORM_MAX_PARAMS 10000

enum keel_http_unescape_mode {
	KEEL_HTTP_UNESCAPE_PATH,  /* url.PathUnescape: '+' stays '+' */
	KEEL_HTTP_UNESCAPE_QUERY, /* url.QueryUnescape: '+' is a space */
};

/* Decode the len bytes at s into out, which has room for at least len + 1 bytes; the result is
 * NUL-terminated (it may also hold NUL bytes from "%00": use *ret_len). Every '%' must be
 * followed by two hex digits; otherwise -KEEL_EPARSE and err says, as Go does,
 * `invalid URL escape "%zz"` (out is then unspecified). out may equal s (decoding only
 * shrinks). */
int keel_http_unescape(const char *s, size_t len, enum keel_http_unescape_mode mode, char *out,
		       size_t *ret_len, struct keel_err *err);

/* One decoded name=value pair. Both strings are NUL-terminated and may hold NUL bytes. */
struct keel_http_param {
	const char *key;
	const char *value;
	size_t key_len;
	size_t value_len;
};

/* Pairs in the order they were sent; a key may repeat. Owns its strings. */
struct keel_http_form {
	struct keel_http_param *params;
	size_t n;
	char *text; /* the decoded keys and values, one allocation */
};

#define KEEL_HTTP_FORM_INIT {NULL, 0, NULL}

void keel_http_form_init(struct keel_http_form *f);
/* Frees what the form owns and re-initialises it; accepts NULL. */
void keel_http_form_free(struct keel_http_form *f);

/* Parse s (a URL's raw query, without the '?', or a form body) into f, which must be empty,
 * like Go's url.ParseQuery:
 *   - pairs are separated by '&'; empty pairs are skipped; a pair without '=' has value "";
 *   - keys and values are QueryUnescape'd ('+' is a space, %XX);
 *   - a pair holding ';' is dropped with "invalid semicolon separator in query" (Go 1.17+);
 *   - a pair with a bad escape is dropped with `invalid URL escape "%zz"`;
 *   - more than KEEL_HTTP_FORM_MAX_PARAMS pairs: nothing is parsed, "number of URL query
 *     parameters exceeded limit".
 * The good pairs are kept even when some were dropped, and the error reported is the one Go
 * reports (the first bad escape, unless a later pair has a semicolon: Go lets that overwrite).
 * Returns 0, -KEEL_EPARSE (f holds the good pairs, err the message) or -ENOMEM (f is empty). */
int keel_http_form_parse(struct keel_http_form *f, const char *s, size_t len, struct keel_err *err);

/* The first value of key, or NULL when the key is absent (a present key may have value ""). */
const char *keel_http_form_get(const struct keel_http_form *f, const char *key);
/* How many values key has. */
size_t keel_http_form_count(const struct keel_http_form *f, const char *key);
/* The index-th value of key (0-based), or NULL. */
const char *keel_http_form_get_nth(const struct keel_http_form *f, const char *key, size_t index);

/* Whether a Content-Type header value names application/x-www-form-urlencoded, as Go's
 * mime.ParseMediaType would see it: the media type before any ';', case-insensitive, spaces
 * around it ignored. NULL (no header) is not a form (Go treats it as application/octet-stream). */
bool keel_http_is_form_content_type(const char *value, size_t len);
