/* Interned, reference-counted strings: every name, path and value a unit model holds lives here
 * once, however many units mention it ("network.target" in 500 After= lines is one copy). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "base/macro.h"

struct keel_pool;

/* 0 or -ENOMEM. */
int keel_pool_new(struct keel_pool **ret) KEEL_WUR;
/* Frees the pool and every string still in it; accepts NULL. Strings handed out become invalid. */
void keel_pool_free(struct keel_pool *p);

/* The pool's copy of s (n bytes, or up to the NUL with keel_pool_intern), with one more
 * reference; NULL only when memory runs out. Strings may not contain NUL bytes. */
const char *keel_pool_intern(struct keel_pool *p, const char *s);
const char *keel_pool_intern_n(struct keel_pool *p, const char *s, size_t n);
/* One more reference to a string that came from this pool; returns it. Accepts NULL. */
const char *keel_pool_ref(struct keel_pool *p, const char *s);
/* Drop one reference; the last one frees the string. Accepts NULL. */
void keel_pool_unref(struct keel_pool *p, const char *s);

/* NULL-terminated vectors of pool strings (NULL is the empty vector). push takes a new
 * reference to s (which must already be a pool string); 0 or -ENOMEM (vector unchanged). */
int keel_pool_strv_push(struct keel_pool *p, const char ***v, const char *s) KEEL_WUR;
/* Intern s and append it. 0 or -ENOMEM. */
int keel_pool_strv_add(struct keel_pool *p, const char ***v, const char *s) KEEL_WUR;
size_t keel_pool_strv_len(const char *const *v);
/* Unref every element and free the vector; sets *v to NULL. */
void keel_pool_strv_clear(struct keel_pool *p, const char ***v);

/* Statistics for tests and benchmarks. */
struct keel_pool_stats {
	size_t strings;   /* distinct strings */
	size_t bytes;     /* their text, including NULs */
	size_t refs;      /* references held */
};
void keel_pool_stats(const struct keel_pool *p, struct keel_pool_stats *ret);
