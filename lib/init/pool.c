#include "init/pool.h"

#include <errno.h>
#include <string.h>

#include "base/mem.h"

/* Each string is one allocation: this header, then the text. The text pointer handed out points
 * just past the header, so unref finds the entry without a lookup. */
struct entry {
	uint32_t hash;
	uint32_t refs;
	uint32_t len;
	char text[];
};

struct keel_pool {
	struct entry **slots; /* open addressing, linear probing; NULL empty, TOMB deleted */
	size_t cap;           /* power of two */
	size_t used;          /* live entries */
	size_t filled;        /* live + tombstones */
	size_t bytes, refs;
};

static struct entry tomb_entry;
#define TOMB (&tomb_entry)

/* FNV-1a: short strings, no adversary worth a keyed hash (unit names come from root's files). */
static uint32_t hash_bytes(const char *s, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	return h;
}

static struct entry *entry_of(const char *s)
{
	return keel_container_of((char *)s, struct entry, text);
}

int keel_pool_new(struct keel_pool **ret)
{
	struct keel_pool *p = keel_calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->cap = 256;
	p->slots = keel_calloc(p->cap, sizeof(*p->slots));
	if (!p->slots) {
		keel_free(p);
		return -ENOMEM;
	}
	*ret = p;
	return 0;
}

void keel_pool_free(struct keel_pool *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->cap; i++)
		if (p->slots[i] && p->slots[i] != TOMB)
			keel_free(p->slots[i]);
	keel_free(p->slots);
	keel_free(p);
}

static int grow(struct keel_pool *p)
{
	size_t ncap = p->used * 4 >= p->cap ? p->cap * 2 : p->cap; /* else just drop tombstones */
	struct entry **ns = keel_calloc(ncap, sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	for (size_t i = 0; i < p->cap; i++) {
		struct entry *e = p->slots[i];
		if (!e || e == TOMB)
			continue;
		size_t j = e->hash & (ncap - 1);
		while (ns[j])
			j = (j + 1) & (ncap - 1);
		ns[j] = e;
	}
	keel_free(p->slots);
	p->slots = ns;
	p->cap = ncap;
	p->filled = p->used;
	return 0;
}

const char *keel_pool_intern_n(struct keel_pool *p, const char *s, size_t n)
{
	if (n > UINT32_MAX - 1)
		return NULL;
	uint32_t h = hash_bytes(s, n);
	size_t i = h & (p->cap - 1), tomb = SIZE_MAX;
	for (struct entry *e; (e = p->slots[i]); i = (i + 1) & (p->cap - 1)) {
		if (e == TOMB) {
			if (tomb == SIZE_MAX)
				tomb = i;
			continue;
		}
		if (e->hash == h && e->len == n && memcmp(e->text, s, n) == 0) {
			e->refs++;
			p->refs++;
			return e->text;
		}
	}
	if ((p->filled + 1) * 4 > p->cap * 3) {
		if (grow(p) < 0)
			return NULL;
		return keel_pool_intern_n(p, s, n);
	}
	struct entry *e = keel_malloc(sizeof(*e) + n + 1);
	if (!e)
		return NULL;
	e->hash = h;
	e->refs = 1;
	e->len = (uint32_t)n;
	memcpy(e->text, s, n);
	e->text[n] = '\0';
	if (tomb != SIZE_MAX) {
		i = tomb;
	} else {
		p->filled++;
	}
	p->slots[i] = e;
	p->used++;
	p->bytes += n + 1;
	p->refs++;
	return e->text;
}

const char *keel_pool_intern(struct keel_pool *p, const char *s)
{
	return keel_pool_intern_n(p, s, strlen(s));
}

const char *keel_pool_ref(struct keel_pool *p, const char *s)
{
	if (s) {
		entry_of(s)->refs++;
		p->refs++;
	}
	return s;
}

void keel_pool_unref(struct keel_pool *p, const char *s)
{
	if (!s)
		return;
	struct entry *e = entry_of(s);
	keel_assert(e->refs > 0);
	p->refs--;
	if (--e->refs > 0)
		return;
	size_t i = e->hash & (p->cap - 1);
	while (p->slots[i] != e) {
		keel_assert(p->slots[i] != NULL);
		i = (i + 1) & (p->cap - 1);
	}
	p->slots[i] = TOMB;
	p->used--;
	p->bytes -= e->len + 1;
	keel_free(e);
}

size_t keel_pool_strv_len(const char *const *v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	return n;
}

int keel_pool_strv_push(struct keel_pool *p, const char ***v, const char *s)
{
	size_t n = keel_pool_strv_len(*v);
	const char **nv = keel_reallocarray(*v, n + 2, sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	nv[n] = keel_pool_ref(p, s);
	nv[n + 1] = NULL;
	*v = nv;
	return 0;
}

int keel_pool_strv_add(struct keel_pool *p, const char ***v, const char *s)
{
	const char *i = keel_pool_intern(p, s);
	if (!i)
		return -ENOMEM;
	int r = keel_pool_strv_push(p, v, i);
	keel_pool_unref(p, i);
	return r;
}

void keel_pool_strv_clear(struct keel_pool *p, const char ***v)
{
	for (size_t i = 0; *v && (*v)[i]; i++)
		keel_pool_unref(p, (*v)[i]);
	keel_free(*v);
	*v = NULL;
}

void keel_pool_stats(const struct keel_pool *p, struct keel_pool_stats *ret)
{
	ret->strings = p->used;
	ret->bytes = p->bytes;
	ret->refs = p->refs;
}
