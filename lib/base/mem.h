/* Allocation wrappers: every Keel allocation goes through these so tests can make the Nth one fail
 * (KEEL_FAULT_ALLOC). They return NULL on failure like malloc; callers turn that into -ENOMEM. */
#pragma once

#include <stddef.h>

void *keel_malloc(size_t size);
void *keel_calloc(size_t n, size_t size);
/* On failure the old block is left untouched (like realloc). */
void *keel_realloc(void *ptr, size_t size);
/* realloc for arrays: fails (NULL, errno EOVERFLOW) instead of overflowing n * size. */
void *keel_reallocarray(void *ptr, size_t n, size_t size);
void keel_free(void *ptr);
char *keel_strdup(const char *s);
char *keel_strndup(const char *s, size_t n);
void *keel_memdup(const void *p, size_t n);

/* Route jansson's allocations through keel_malloc/keel_free, so that allocation-failure injection
 * covers JSON parsing and building too. Call once, before any jansson value exists. */
void keel_mem_use_for_jansson(void);

/* For keel_cleanup(): `char *s keel_cleanup(keel_freep) = ...;` */
void keel_freep(void *pptr);
