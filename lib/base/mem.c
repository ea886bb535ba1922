#include "base/mem.h"

#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/fault.h"

static int keel__alloc_fails(void)
{
	int r = keel_fault_check(KEEL_FAULT_ALLOC);
	if (r) {
		errno = ENOMEM;
		return 1;
	}
	return 0;
}

void *keel_malloc(size_t size)
{
	if (keel__alloc_fails())
		return NULL;
	return malloc(size ? size : 1);
}

void *keel_calloc(size_t n, size_t size)
{
	if (keel__alloc_fails())
		return NULL;
	return calloc(n ? n : 1, size ? size : 1);
}

void *keel_realloc(void *ptr, size_t size)
{
	if (keel__alloc_fails())
		return NULL;
	return realloc(ptr, size ? size : 1);
}

void *keel_reallocarray(void *ptr, size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size) {
		errno = EOVERFLOW;
		return NULL;
	}
	return keel_realloc(ptr, n * size);
}

void keel_free(void *ptr)
{
	free(ptr);
}

void keel_freep(void *pptr)
{
	void **p = pptr;
	free(*p);
	*p = NULL;
}

char *keel_strndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *d = keel_malloc(len + 1);
	if (!d)
		return NULL;
	memcpy(d, s, len);
	d[len] = '\0';
	return d;
}

char *keel_strdup(const char *s)
{
	return keel_strndup(s, SIZE_MAX);
}

void *keel_memdup(const void *p, size_t n)
{
	void *d = keel_malloc(n);
	if (d && n)
		memcpy(d, p, n);
	return d;
}

void keel_mem_use_for_jansson(void)
{
	json_set_alloc_funcs(keel_malloc, keel_free);
}
