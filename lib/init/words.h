/* Word splitting, quoting and escapes as systemd applies them to setting values
 * (extract-word.c, escape.c, env-util.c), plus UTF-8 validity by systemd's rules and the
 * exec-time $VAR / ${VAR} expansion of command lines (systemd.service(5), "Command lines"). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/macro.h"

/* keel_extract_word() flags; the names are systemd's EXTRACT_* ones. */
enum {
	KEEL_EXTRACT_RELAX = 1 << 0,             /* allow unbalanced quotes, drop a trailing backslash */
	KEEL_EXTRACT_CUNESCAPE = 1 << 1,         /* decode C escapes (\n \t \xNN \uNNNN \NNN \s ...) */
	KEEL_EXTRACT_UNESCAPE_RELAX = 1 << 2,    /* keep unknown escapes and a trailing backslash verbatim */
	KEEL_EXTRACT_UNESCAPE_SEPARATORS = 1 << 3, /* "\<separator>" and "\\" stand for themselves */
	KEEL_EXTRACT_UNQUOTE = 1 << 4,           /* '...' and "..." group and are removed */
	KEEL_EXTRACT_DONT_COALESCE_SEPARATORS = 1 << 5, /* "a,,b" has an empty word */
	KEEL_EXTRACT_RETAIN_ESCAPE = 1 << 6,     /* a backslash is an ordinary character */
};

/* Take the next word off *p (whitespace-separated unless separators is given). Returns 1 and a
 * new string (keel_free) in *ret, 0 when no word is left (*ret = NULL), -EINVAL on unbalanced
 * quotes or a bad escape (*p is then left inside the input), -ENOMEM. Sets *p to NULL once the
 * input is used up; calling again with *p == NULL returns 0. */
int keel_extract_word(const char **p, char **ret, const char *separators, unsigned flags) KEEL_WUR;

/* Decode one escape sequence (the text after the backslash): 1-9 bytes used, or -EINVAL.
 * *ret_raw is set when the result is a single raw byte (\xNN, \NNN) rather than a code point to
 * encode as UTF-8. NUL is refused. */
int keel_cunescape_one(const char *p, uint32_t *ret, bool *ret_raw);
/* Decode a whole string's escapes; relax keeps bad ones verbatim. 0, -EINVAL, -ENOMEM. */
int keel_cunescape(const char *s, bool relax, char **ret) KEEL_WUR;
/* Write code point c as UTF-8 into out (4 bytes room); returns the length. */
size_t keel_utf8_encode(char *out, uint32_t c);

/* systemd's unichar_is_valid(): below U+110000, no surrogates, no U+FDD0..FDEF, no U+xxFFFE/F. */
bool keel_unichar_is_valid(uint32_t c);
/* Length 1-4 of the valid character at s (at most n bytes), or 0 if none starts there. */
size_t keel_utf8_valid_char(const char *s, size_t n);
bool keel_utf8_is_valid(const char *s);
bool keel_utf8_is_valid_n(const char *s, size_t n);
/* s with every byte that starts no valid character replaced by U+FFFD; NULL on ENOMEM. */
char *keel_utf8_escape_invalid(const char *s);

/* Environment names: [A-Za-z_][A-Za-z0-9_]*. An assignment is NAME=VALUE with valid UTF-8. */
bool keel_env_name_is_valid(const char *s, size_t n);
bool keel_env_assignment_is_valid(const char *s);
/* The value of NAME in a NULL-terminated "NAME=VALUE" vector (last one wins), or NULL. */
const char *keel_env_get(char *const *env, const char *name, size_t n);

/* Exec-time expansion of a command line (what systemd does with argv unless the ':' prefix was
 * given): a word that is exactly "$NAME" becomes the variable's value split at whitespace (with
 * quotes honoured), or nothing when unset; "${NAME}" anywhere in a word becomes the value as is
 * (empty when unset); "$$" becomes "$". Anything else stays literal. *ret is a new
 * NULL-terminated vector (keel_strv_free). 0 or -ENOMEM. */
int keel_exec_expand_argv(char *const *argv, char *const *env, char ***ret) KEEL_WUR;
/* The ${NAME} / $$ part alone, for one word. NULL on ENOMEM. */
char *keel_env_expand_word(const char *word, char *const *env);
