/* A fast JSON writer straight into a keel_buf, for hot-path responses (etcd's v2 bodies are built
 * with it). Errors are sticky: write a whole document, then check keel_jw_finish() once. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

enum {
	/* Escape as Go's encoding/json does by default (what etcd's clients see): '<' '>' '&' as
	 * \u003c \u003e \u0026 and U+2028/U+2029 as \u2028 \u2029. */
	KEEL_JW_GO_ESCAPE = 1 << 0,
};

#define KEEL_JW_MAX_DEPTH 64

struct keel_jw {
	struct keel_buf *buf;
	unsigned flags;
	unsigned depth;
	int err;           /* first error, sticky */
	bool need_comma;   /* a value was written at the current depth */
	bool after_key;    /* a key was written, its value is next */
	char stack[KEEL_JW_MAX_DEPTH]; /* '{' or '[' per open container */
};

/* Append to buf (not reset). The writer does not own buf. */
void keel_jw_init(struct keel_jw *w, struct keel_buf *buf, unsigned flags);

void keel_jw_obj_begin(struct keel_jw *w);
void keel_jw_obj_end(struct keel_jw *w);
void keel_jw_arr_begin(struct keel_jw *w);
void keel_jw_arr_end(struct keel_jw *w);
/* Object keys: only directly inside an object, once per value. */
void keel_jw_key(struct keel_jw *w, const char *key);
void keel_jw_keyn(struct keel_jw *w, const char *key, size_t n);

/* Strings may hold any bytes: invalid UTF-8 is written as U+FFFD, one per bad byte (as Go). */
void keel_jw_str(struct keel_jw *w, const char *s);
void keel_jw_strn(struct keel_jw *w, const char *s, size_t n);
void keel_jw_u64(struct keel_jw *w, uint64_t v);
void keel_jw_i64(struct keel_jw *w, int64_t v);
void keel_jw_bool(struct keel_jw *w, bool v);
void keel_jw_null(struct keel_jw *w);
/* A value that is already JSON text (not checked). */
void keel_jw_raw(struct keel_jw *w, const char *json, size_t n);

/* Shorthands for one member of an object. */
void keel_jw_kstr(struct keel_jw *w, const char *key, const char *v);
void keel_jw_ku64(struct keel_jw *w, const char *key, uint64_t v);
void keel_jw_ki64(struct keel_jw *w, const char *key, int64_t v);
void keel_jw_kbool(struct keel_jw *w, const char *key, bool v);

/* 0 when a complete document was written; -ENOMEM, or -EINVAL for misuse (unbalanced containers,
 * a value where a key belongs, a missing value, depth over KEEL_JW_MAX_DEPTH). */
int keel_jw_finish(struct keel_jw *w);

/* Escape s as the body of a JSON string (no quotes) onto b. 0 or -ENOMEM. */
int keel_json_escape(struct keel_buf *b, const char *s, size_t n, unsigned flags);
