/* String helpers: comparisons, NULL-terminated string vectors, and strict number/bool/duration
 * parsers that reject what a sloppy strtol would accept. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/macro.h"

static inline bool keel_streq(const char *a, const char *b)
{
	return a == b || (a && b && __builtin_strcmp(a, b) == 0);
}

/* s without `prefix` if s starts with it, else NULL. */
const char *keel_startswith(const char *s, const char *prefix);
bool keel_endswith(const char *s, const char *suffix);

/* Strip ASCII whitespace at both ends, in place; returns the start within s. */
char *keel_strstrip(char *s);

/* A NULL-terminated vector of owned strings. NULL is a valid empty vector. */
size_t keel_strv_len(char *const *v);
/* Append a copy of s; 0 or -ENOMEM (v is unchanged then). */
int keel_strv_push(char ***v, const char *s) KEEL_WUR;
/* Append s itself, taking ownership of it (freed on failure). */
int keel_strv_consume(char ***v, char *s) KEEL_WUR;
void keel_strv_free(char **v);
bool keel_strv_contains(char *const *v, const char *s);
/* Split s at any of the characters in seps, dropping empty fields (so "a,,b" gives a, b). */
int keel_strv_split(const char *s, const char *seps, char ***ret) KEEL_WUR;

/* Strict decimal parsers: the whole string must be the number, no sign for unsigned, no space.
 * 0, -EINVAL (not a number) or -ERANGE (does not fit). *ret untouched on failure. */
int keel_parse_u64(const char *s, uint64_t *ret);
int keel_parse_i64(const char *s, int64_t *ret);
/* Go's strconv.ParseBool: 1 t T TRUE true True / 0 f F FALSE false False. 0 or -EINVAL. */
int keel_parse_bool(const char *s, bool *ret);
/* Go's time.ParseDuration ("300ms", "1h2m3.5s", "-1.5h"; units ns us µs ms s m h; a bare "0"),
 * in nanoseconds. 0, -EINVAL or -ERANGE. */
int keel_parse_duration(const char *s, int64_t *ret_ns);

/* "data-dir" with prefix "ETCD" -> "ETCD_DATA_DIR": upper case, '-' and '.' become '_'.
 * Writes at most size bytes including the NUL; returns the length it needed (like snprintf). */
size_t keel_env_name(const char *prefix, const char *name, char *out, size_t size);

/* Length (2-4) of the valid UTF-8 sequence of a non-ASCII character at p, n bytes available, with
 * its code point in *ret_cp; 0 if p[0] is ASCII or starts no valid sequence (overlong forms,
 * surrogates and code points above U+10FFFF are invalid, RFC 3629). */
size_t keel_utf8_char(const unsigned char *p, size_t n, uint32_t *ret_cp);
