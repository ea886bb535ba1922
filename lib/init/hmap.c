#include "init/hmap.h"

#include <errno.h>
#include <string.h>

#include "base/mem.h"

void keel_hmap_init(struct keel_hmap *m, bool strings)
{
	*m = (struct keel_hmap){.strings = strings};
}

void keel_hmap_clear(struct keel_hmap *m)
{
	keel_free(m->slots);
	keel_hmap_init(m, m->strings);
}

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ULL;
	return h;
}

static uint64_t hash_int(int64_t k)
{
	uint64_t x = (uint64_t)k;
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x;
}

static bool key_eq(const struct keel_hmap *m, const struct keel_hmap_slot *s, const char *sk, int64_t ik)
{
	return m->strings ? strcmp(s->skey, sk) == 0 : s->ikey == ik;
}

static struct keel_hmap_slot *find(const struct keel_hmap *m, const char *sk, int64_t ik)
{
	if (!m->cap)
		return NULL;
	size_t mask = m->cap - 1, i = (m->strings ? hash_str(sk) : hash_int(ik)) & mask;
	for (;;) {
		struct keel_hmap_slot *s = &m->slots[i];
		if (s->state == 0)
			return NULL;
		if (s->state == 1 && key_eq(m, s, sk, ik))
			return s;
		i = (i + 1) & mask;
	}
}

static int grow(struct keel_hmap *m)
{
	size_t cap = m->cap ? m->cap * 2 : 16;
	if (m->n * 10 < m->cap * 4 && m->cap)
		cap = m->cap; /* mostly tombstones: rehash in place size */
	struct keel_hmap_slot *slots = keel_calloc(cap, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	struct keel_hmap_slot *old = m->slots;
	size_t old_cap = m->cap;
	m->slots = slots;
	m->cap = cap;
	m->n = m->used = 0;
	for (size_t i = 0; i < old_cap; i++) {
		if (old[i].state != 1)
			continue;
		size_t mask = cap - 1, j = (m->strings ? hash_str(old[i].skey) : hash_int(old[i].ikey)) & mask;
		while (slots[j].state)
			j = (j + 1) & mask;
		slots[j] = old[i];
		m->n++;
		m->used++;
	}
	keel_free(old);
	return 0;
}

static int put(struct keel_hmap *m, const char *sk, int64_t ik, void *value)
{
	struct keel_hmap_slot *s = find(m, sk, ik);
	if (s) {
		s->value = value;
		return 0;
	}
	if ((m->used + 1) * 10 > m->cap * 7) {
		int r = grow(m);
		if (r < 0)
			return r;
	}
	size_t mask = m->cap - 1, i = (m->strings ? hash_str(sk) : hash_int(ik)) & mask;
	while (m->slots[i].state == 1)
		i = (i + 1) & mask;
	if (m->slots[i].state == 0)
		m->used++;
	m->slots[i] = (struct keel_hmap_slot){.skey = sk, .ikey = ik, .value = value, .state = 1};
	m->n++;
	return 0;
}

int keel_hmap_put_str(struct keel_hmap *m, const char *key, void *value) { return put(m, key, 0, value); }
int keel_hmap_put_int(struct keel_hmap *m, int64_t key, void *value) { return put(m, NULL, key, value); }

void *keel_hmap_get_str(const struct keel_hmap *m, const char *key)
{
	struct keel_hmap_slot *s = find(m, key, 0);
	return s ? s->value : NULL;
}

void *keel_hmap_get_int(const struct keel_hmap *m, int64_t key)
{
	struct keel_hmap_slot *s = find(m, NULL, key);
	return s ? s->value : NULL;
}

static void *del(struct keel_hmap *m, const char *sk, int64_t ik)
{
	struct keel_hmap_slot *s = find(m, sk, ik);
	if (!s)
		return NULL;
	void *v = s->value;
	s->state = 2;
	s->skey = NULL;
	s->value = NULL;
	m->n--;
	return v;
}

void *keel_hmap_del_str(struct keel_hmap *m, const char *key) { return del(m, key, 0); }
void *keel_hmap_del_int(struct keel_hmap *m, int64_t key) { return del(m, NULL, key); }

bool keel_hmap_next(const struct keel_hmap *m, size_t *it, const char **skey, int64_t *ikey, void **value)
{
	while (*it < m->cap) {
		const struct keel_hmap_slot *s = &m->slots[(*it)++];
		if (s->state != 1)
			continue;
		if (skey)
			*skey = s->skey;
		if (ikey)
			*ikey = s->ikey;
		if (value)
			*value = s->value;
		return true;
	}
	return false;
}
