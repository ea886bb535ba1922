/* The node tree of the v2 store: path cleaning, nodes and their per-directory hash tables, the
 * TTL heap, subtree removal without allocation, the store's life cycle and its self-check. */
#include "kv/store-internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"

/* ---- hashing and paths ---------------------------------------------------------------------- */

uint64_t kv_hash(uint64_t seed, const char *s, size_t n)
{
	/* FNV-1a over the bytes from a seeded start, then a 64-bit finaliser so that the low bits
	 * used as a table index depend on every input byte. */
	uint64_t h = 0xcbf29ce484222325ull ^ (seed * 0x9e3779b97f4a7c15ull);
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ull;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

int kv_clean_path(const char *p, size_t n, struct keel_buf *out)
{
	/* Go's path.Clean on "/" + p: collapse slashes, drop "." elements, let ".." remove the
	 * element before it and never climb above the root, no trailing slash. */
	keel_buf_reset(out);
	if (keel_buf_reserve(out, n + 1) < 0)
		return -ENOMEM;
	char *o = out->data;
	size_t w = 1;
	o[0] = '/';
	size_t r = 0;
	while (r < n) {
		if (p[r] == '/') {
			r++;
		} else if (p[r] == '.' && (r + 1 == n || p[r + 1] == '/')) {
			r++;
		} else if (p[r] == '.' && p[r + 1] == '.' && (r + 2 == n || p[r + 2] == '/')) {
			r += 2;
			while (w > 1 && o[w - 1] != '/')
				w--;
			if (w > 1)
				w--; /* the slash before the removed element */
		} else {
			if (w > 1)
				o[w++] = '/';
			while (r < n && p[r] != '/')
				o[w++] = p[r++];
		}
	}
	o[w] = '\0';
	out->len = w;
	return 0;
}

bool kv_is_readonly(const struct keel_kv_store *s, const char *p, size_t n)
{
	if (n == 1 && p[0] == '/')
		return true;
	for (size_t i = 0; i < s->ro_count; i++)
		if (strlen(s->ro[i]) == n && memcmp(s->ro[i], p, n) == 0)
			return true;
	return false;
}

int64_t kv_ttl(int64_t expire, int64_t now)
{
	int64_t d;
	if (__builtin_sub_overflow(expire, now, &d))
		d = expire > now ? INT64_MAX : INT64_MIN;
	int64_t ttl = d / 1000000000LL;
	if (d % 1000000000LL > 0)
		ttl++;
	return ttl;
}

/* ---- nodes ---------------------------------------------------------------------------------- */

struct kv_node *kv_node_alloc(struct keel_kv_store *s, const char *name, size_t name_len,
			      const char *value, size_t value_len, bool dir)
{
	if (name_len > KV_NAME_MAX)
		return NULL;
	if (dir)
		value_len = 0;
	size_t size = offsetof(struct kv_node, data) + name_len + value_len;
	struct kv_node *n = keel_malloc(size);
	if (!n)
		return NULL;
	memset(n, 0, offsetof(struct kv_node, data));
	n->name_len = (uint32_t)name_len;
	n->is_dir = dir;
	/* NULL name or value: the caller fills the bytes in (snapshot loading). */
	if (name && name_len)
		memcpy(n->data, name, name_len);
	if (!dir) {
		n->u.value_len = value_len;
		if (value && value_len)
			memcpy(n->data + name_len, value, value_len);
	}
	s->mem += size;
	s->nodes++;
	return n;
}

void kv_node_free(struct keel_kv_store *s, struct kv_node *n)
{
	if (!n)
		return;
	if (n->is_dir) {
		s->mem -= (size_t)n->u.dir.cap * sizeof(struct kv_node *);
		keel_free(n->u.dir.slots);
		s->mem -= offsetof(struct kv_node, data) + n->name_len;
	} else {
		s->mem -= offsetof(struct kv_node, data) + n->name_len + n->u.value_len;
	}
	s->nodes--;
	keel_free(n);
}

static uint32_t kv_home(const struct keel_kv_store *s, const struct kv_node *n, uint32_t mask)
{
	return (uint32_t)kv_hash(s->seed, kv_name(n), n->name_len) & mask;
}

struct kv_node *kv_child(const struct keel_kv_store *s, const struct kv_node *dir,
			 const char *name, size_t len)
{
	if (!dir->is_dir || dir->u.dir.cap == 0)
		return NULL;
	uint32_t mask = dir->u.dir.cap - 1;
	uint32_t i = (uint32_t)kv_hash(s->seed, name, len) & mask;
	for (;;) {
		struct kv_node *c = dir->u.dir.slots[i];
		if (!c)
			return NULL;
		if (c->name_len == len && memcmp(kv_name(c), name, len) == 0)
			return c;
		i = (i + 1) & mask;
	}
}

static void kv_slots_put(const struct keel_kv_store *s, struct kv_node **slots, uint32_t cap,
			 struct kv_node *c)
{
	uint32_t mask = cap - 1;
	uint32_t i = kv_home(s, c, mask);
	while (slots[i])
		i = (i + 1) & mask;
	slots[i] = c;
}

/* Move the children into a table of newcap slots (0 frees the table). 0 or -ENOMEM. */
static int kv_dir_rehash(struct keel_kv_store *s, struct kv_node *dir, uint32_t newcap)
{
	struct kv_node **slots = NULL;
	if (newcap) {
		slots = keel_calloc(newcap, sizeof(*slots));
		if (!slots)
			return -ENOMEM;
		for (uint32_t i = 0; i < dir->u.dir.cap; i++)
			if (dir->u.dir.slots[i])
				kv_slots_put(s, slots, newcap, dir->u.dir.slots[i]);
	}
	keel_free(dir->u.dir.slots);
	s->mem -= (size_t)dir->u.dir.cap * sizeof(*slots);
	s->mem += (size_t)newcap * sizeof(*slots);
	dir->u.dir.slots = slots;
	dir->u.dir.cap = newcap;
	return 0;
}

int kv_dir_reserve(struct keel_kv_store *s, struct kv_node *dir, uint32_t extra)
{
	uint64_t need = (uint64_t)dir->u.dir.count + extra;
	uint64_t cap = dir->u.dir.cap;
	if (need * 4 <= cap * 3)
		return 0;
	if (cap < 4)
		cap = 4;
	while (need * 4 > cap * 3)
		cap *= 2;
	if (cap > (1ull << 31))
		return -ENOMEM;
	return kv_dir_rehash(s, dir, (uint32_t)cap);
}

void kv_dir_insert(struct keel_kv_store *s, struct kv_node *dir, struct kv_node *child)
{
	keel_assert(((uint64_t)dir->u.dir.count + 1) * 4 <= (uint64_t)dir->u.dir.cap * 3);
	kv_slots_put(s, dir->u.dir.slots, dir->u.dir.cap, child);
	dir->u.dir.count++;
	child->parent = dir;
}

static uint32_t kv_slot_of(const struct keel_kv_store *s, const struct kv_node *dir,
			   const struct kv_node *child)
{
	uint32_t mask = dir->u.dir.cap - 1;
	uint32_t i = kv_home(s, child, mask);
	while (dir->u.dir.slots[i] != child) {
		keel_assert(dir->u.dir.slots[i] != NULL);
		i = (i + 1) & mask;
	}
	return i;
}

void kv_dir_replace(struct keel_kv_store *s, struct kv_node *dir, struct kv_node *old,
		    struct kv_node *repl)
{
	dir->u.dir.slots[kv_slot_of(s, dir, old)] = repl;
	repl->parent = dir;
}

void kv_dir_remove(struct keel_kv_store *s, struct kv_node *dir, struct kv_node *child)
{
	struct kv_node **slots = dir->u.dir.slots;
	uint32_t mask = dir->u.dir.cap - 1;
	uint32_t i = kv_slot_of(s, dir, child);
	slots[i] = NULL;
	/* Backward-shift deletion: pull up every later entry of the probe run that may move into
	 * the hole (its home does not lie cyclically in (hole, position]). */
	uint32_t j = i;
	for (;;) {
		j = (j + 1) & mask;
		if (!slots[j])
			break;
		uint32_t k = kv_home(s, slots[j], mask);
		bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
		if (stays)
			continue;
		slots[i] = slots[j];
		slots[j] = NULL;
		i = j;
	}
	dir->u.dir.count--;
	child->parent = NULL;
	/* Give memory back once a big directory has emptied out; failing to is harmless. */
	uint32_t cap = dir->u.dir.cap;
	if (cap > 8 && (uint64_t)dir->u.dir.count * 8 < cap) {
		uint32_t newcap = cap;
		while (newcap > 4 && (uint64_t)dir->u.dir.count * 4 < newcap)
			newcap /= 2;
		(void)kv_dir_rehash(s, dir, dir->u.dir.count ? newcap : 0);
	}
}

/* ---- the TTL heap --------------------------------------------------------------------------- */

static size_t kv_depth(const struct kv_node *n)
{
	size_t d = 0;
	for (; n->parent; n = n->parent)
		d++;
	return d;
}

static bool kv_heap_less(const struct kv_node *a, const struct kv_node *b)
{
	if (a->expire != b->expire)
		return a->expire < b->expire;
	if (a->created != b->created)
		return a->created < b->created;
	/* Same command: an ancestor and its descendant (a Create makes the missing directories
	 * with the key's index). The ancestor goes first. */
	return kv_depth(a) < kv_depth(b);
}

static void kv_heap_set(struct keel_kv_store *s, uint32_t pos, struct kv_node *n)
{
	s->heap[pos - 1] = n;
	n->heap_pos = pos;
}

static void kv_heap_up(struct keel_kv_store *s, uint32_t pos)
{
	struct kv_node *n = s->heap[pos - 1];
	while (pos > 1) {
		struct kv_node *p = s->heap[pos / 2 - 1];
		if (!kv_heap_less(n, p))
			break;
		kv_heap_set(s, pos, p);
		pos /= 2;
	}
	kv_heap_set(s, pos, n);
}

static void kv_heap_down(struct keel_kv_store *s, uint32_t pos)
{
	struct kv_node *n = s->heap[pos - 1];
	for (;;) {
		uint32_t c = pos * 2;
		if (c > s->heap_len)
			break;
		if (c + 1 <= s->heap_len && kv_heap_less(s->heap[c], s->heap[c - 1]))
			c++;
		if (!kv_heap_less(s->heap[c - 1], n))
			break;
		kv_heap_set(s, pos, s->heap[c - 1]);
		pos = c;
	}
	kv_heap_set(s, pos, n);
}

int kv_heap_reserve(struct keel_kv_store *s, uint32_t extra)
{
	uint64_t need = (uint64_t)s->heap_len + extra;
	if (need <= s->heap_cap)
		return 0;
	uint64_t cap = s->heap_cap ? s->heap_cap : 16;
	while (cap < need)
		cap *= 2;
	if (cap > UINT32_MAX)
		return -ENOMEM;
	struct kv_node **h = keel_reallocarray(s->heap, cap, sizeof(*h));
	if (!h)
		return -ENOMEM;
	s->mem += (size_t)(cap - s->heap_cap) * sizeof(*h);
	s->heap = h;
	s->heap_cap = (uint32_t)cap;
	return 0;
}

void kv_heap_push(struct keel_kv_store *s, struct kv_node *n)
{
	keel_assert(s->heap_len < s->heap_cap && n->heap_pos == 0);
	s->heap_len++;
	kv_heap_set(s, s->heap_len, n);
	kv_heap_up(s, s->heap_len);
}

void kv_heap_remove(struct keel_kv_store *s, struct kv_node *n)
{
	uint32_t pos = n->heap_pos;
	keel_assert(pos >= 1 && pos <= s->heap_len && s->heap[pos - 1] == n);
	struct kv_node *last = s->heap[s->heap_len - 1];
	s->heap_len--;
	n->heap_pos = 0;
	if (last == n)
		return;
	kv_heap_set(s, pos, last);
	kv_heap_up(s, pos);
	kv_heap_down(s, last->heap_pos);
}

void kv_heap_fix(struct keel_kv_store *s, struct kv_node *n)
{
	kv_heap_up(s, n->heap_pos);
	kv_heap_down(s, n->heap_pos);
}

struct kv_node *kv_heap_pop(struct keel_kv_store *s)
{
	if (s->heap_len == 0)
		return NULL;
	struct kv_node *n = s->heap[0];
	kv_heap_remove(s, n);
	return n;
}

/* ---- paths of nodes, subtree removal ---------------------------------------------------------- */

int kv_scratch_reserve(struct keel_kv_store *s, size_t len)
{
	if (len < s->scratch_cap)
		return 0;
	size_t cap = s->scratch_cap * 2;
	if (cap <= len)
		cap = len + 1;
	char *p = keel_realloc(s->scratch, cap);
	if (!p)
		return -ENOMEM;
	s->mem += cap - s->scratch_cap;
	s->scratch = p;
	s->scratch_cap = cap;
	return 0;
}

size_t kv_node_path(struct keel_kv_store *s, const struct kv_node *n)
{
	if (!n->parent) {
		s->scratch[0] = '/';
		s->scratch[1] = '\0';
		return 1;
	}
	size_t len = 0;
	for (const struct kv_node *m = n; m->parent; m = m->parent)
		len += 1 + m->name_len;
	keel_assert(len < s->scratch_cap);
	size_t at = len;
	s->scratch[len] = '\0';
	for (const struct kv_node *m = n; m->parent; m = m->parent) {
		at -= m->name_len;
		memcpy(s->scratch + at, kv_name(m), m->name_len);
		s->scratch[--at] = '/';
	}
	return len;
}

void kv_destroy_subtree(struct keel_kv_store *s, struct kv_node *top, size_t len,
			struct keel_kv_event *ev)
{
	/* Walks without a stack: a directory's heap_pos, free once the node has left the heap,
	 * counts how far its slots have been walked, and the parent links lead back up.
	 *
	 * First pass, while the subtree is still attached (the heap's tie-break looks at depths):
	 * take every node out of the heap. */
	keel_assert(top->parent != NULL && len > 1);
	struct kv_node *n = top;
	if (n->heap_pos)
		kv_heap_remove(s, n);
	for (;;) {
		if (n->is_dir && n->heap_pos < n->u.dir.cap) {
			struct kv_node *c = n->u.dir.slots[n->heap_pos++];
			if (c) {
				if (c->heap_pos)
					kv_heap_remove(s, c);
				n = c;
			}
			continue;
		}
		if (n == top)
			break;
		n = n->parent;
	}
	kv_dir_remove(s, top->parent, top);

	/* Second pass, post-order: tell the watchers on each path (children before their
	 * directory, as etcd's Remove does) and free. */
	bool notify = ev && s->wtab_count;
	n = top;
	n->heap_pos = 0;
	for (;;) {
		if (n->is_dir && n->heap_pos < n->u.dir.cap) {
			struct kv_node *c = n->u.dir.slots[n->heap_pos++];
			if (!c)
				continue;
			c->heap_pos = 0;
			s->scratch[len] = '/';
			memcpy(s->scratch + len + 1, kv_name(c), c->name_len);
			len += 1 + c->name_len;
			s->scratch[len] = '\0';
			n = c;
			continue;
		}
		if (notify)
			kv_hub_notify_path(s, ev, s->scratch, len, true);
		bool last = n == top;
		struct kv_node *up = n->parent;
		len -= 1 + n->name_len;
		kv_node_free(s, n);
		if (last)
			break;
		n = up;
	}
}

void kv_free_tree(struct keel_kv_store *s, struct kv_node *top)
{
	if (!top)
		return;
	struct kv_node *stop = top->parent;
	struct kv_node *n = top;
	n->heap_pos = 0;
	for (;;) {
		if (n->is_dir && n->heap_pos < n->u.dir.cap) {
			struct kv_node *c = n->u.dir.slots[n->heap_pos++];
			if (c) {
				c->heap_pos = 0;
				n = c;
			}
			continue;
		}
		struct kv_node *up = n == top ? stop : n->parent;
		bool last = n == top;
		kv_node_free(s, n);
		if (last)
			break;
		n = up;
	}
}

/* ---- life cycle ----------------------------------------------------------------------------- */

int keel_kv_store_new(const struct keel_kv_store_opts *opts, struct keel_kv_store **ret)
{
	if (!ret)
		return -EINVAL;
	struct keel_kv_store *s = keel_calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	struct keel_buf clean = KEEL_BUF_INIT;
	int r = -ENOMEM;
	s->mem = sizeof(*s);
	if (opts)
		s->seed = opts->hash_seed;
	s->root = kv_node_alloc(s, "", 0, NULL, 0, true);
	if (!s->root || kv_scratch_reserve(s, 64) < 0)
		goto fail;
	if (opts && opts->key_prefix && opts->key_prefix[0]) {
		s->prefix = keel_strdup(opts->key_prefix);
		if (!s->prefix)
			goto fail;
		s->prefix_len = strlen(s->prefix);
	}
	size_t count = 0;
	while (opts && opts->namespaces && opts->namespaces[count])
		count++;
	if (count) {
		s->ro = keel_calloc(count, sizeof(*s->ro));
		if (!s->ro)
			goto fail;
	}
	for (size_t i = 0; i < count; i++) {
		const char *ns = opts->namespaces[i];
		if ((r = kv_clean_path(ns, strlen(ns), &clean)) < 0)
			goto fail;
		r = -EINVAL;
		/* One element below the root, and not given twice. */
		if (clean.len < 2 || memchr(clean.data + 1, '/', clean.len - 1))
			goto fail;
		if (kv_child(s, s->root, clean.data + 1, clean.len - 1))
			goto fail;
		r = -ENOMEM;
		struct kv_node *d = kv_node_alloc(s, clean.data + 1, clean.len - 1, NULL, 0, true);
		if (!d)
			goto fail;
		if (kv_dir_reserve(s, s->root, 1) < 0) {
			kv_node_free(s, d);
			goto fail;
		}
		kv_dir_insert(s, s->root, d);
		s->ro[i] = keel_strdup(clean.data);
		if (!s->ro[i])
			goto fail;
		s->ro_count = i + 1;
	}
	keel_buf_free(&clean);
	*ret = s;
	return 0;
fail:
	keel_buf_free(&clean);
	keel_kv_store_free(s);
	return r;
}

void keel_kv_store_free(struct keel_kv_store *s)
{
	if (!s)
		return;
	kv_hub_detach_all(s);
	kv_hist_clear(s);
	kv_free_tree(s, s->root);
	keel_free(s->heap);
	keel_free(s->wtab);
	if (s->ro)
		for (size_t i = 0; i < s->ro_count; i++)
			keel_free(s->ro[i]);
	keel_free(s->ro);
	keel_free(s->prefix);
	keel_free(s->scratch);
	keel_free(s);
}

uint64_t keel_kv_store_index(const struct keel_kv_store *s)
{
	return s->index;
}

void keel_kv_store_set_index(struct keel_kv_store *s, uint64_t index)
{
	s->index = index;
}

bool keel_kv_store_has_ttl_keys(const struct keel_kv_store *s)
{
	return s->heap_len != 0;
}

int64_t keel_kv_store_next_expiration(const struct keel_kv_store *s)
{
	return s->heap_len ? s->heap[0]->expire : 0;
}

const struct keel_kv_stats *keel_kv_store_stats(const struct keel_kv_store *s)
{
	return &s->stats;
}

size_t keel_kv_store_watcher_count(const struct keel_kv_store *s)
{
	return s->watchers;
}

size_t keel_kv_store_node_count(const struct keel_kv_store *s)
{
	return s->nodes - 1;
}

size_t keel_kv_store_mem_bytes(const struct keel_kv_store *s)
{
	return s->mem;
}

/* ---- self-check ----------------------------------------------------------------------------- */

static int kv_check_dir(const struct keel_kv_store *s, const struct kv_node *d, size_t *seen,
			size_t *ttl_nodes, struct keel_err *err)
{
	uint32_t count = 0;
	if (d->u.dir.cap & (d->u.dir.cap - 1))
		return keel_err_set(err, -KEEL_ECORRUPT, "table size %u", d->u.dir.cap);
	for (uint32_t i = 0; i < d->u.dir.cap; i++) {
		const struct kv_node *c = d->u.dir.slots[i];
		if (!c)
			continue;
		count++;
		(*seen)++;
		if (c->parent != d)
			return keel_err_set(err, -KEEL_ECORRUPT, "bad parent link");
		if (c->name_len == 0 || memchr(kv_name(c), '/', c->name_len))
			return keel_err_set(err, -KEEL_ECORRUPT, "bad node name");
		if (kv_child(s, d, kv_name(c), c->name_len) != c)
			return keel_err_set(err, -KEEL_ECORRUPT, "child not found by its name");
		if (c->created > c->modified)
			return keel_err_set(err, -KEEL_ECORRUPT, "created after modified");
		if ((c->expire != 0) != (c->heap_pos != 0))
			return keel_err_set(err, -KEEL_ECORRUPT, "TTL node not in the heap");
		if (c->heap_pos && (c->heap_pos > s->heap_len || s->heap[c->heap_pos - 1] != c))
			return keel_err_set(err, -KEEL_ECORRUPT, "bad heap position");
		if (c->expire)
			(*ttl_nodes)++;
		if (!c->is_dir && c->u.value_len > SIZE_MAX / 2)
			return keel_err_set(err, -KEEL_ECORRUPT, "bad value length");
	}
	if (count != d->u.dir.count)
		return keel_err_set(err, -KEEL_ECORRUPT, "directory count %u, found %u",
				    d->u.dir.count, count);
	if ((uint64_t)count * 4 > (uint64_t)d->u.dir.cap * 3)
		return keel_err_set(err, -KEEL_ECORRUPT, "table over-full");
	return 0;
}

int keel_kv_store_check(const struct keel_kv_store *s, struct keel_err *err)
{
	/* Breadth-first over the directories with a queue of pointers. */
	size_t qcap = 64, qhead = 0, qlen = 0, seen = 1, ttl_nodes = 0;
	const struct kv_node **q = keel_malloc(qcap * sizeof(*q));
	if (!q)
		return keel_err_set(err, -ENOMEM, "out of memory");
	int r = 0;
	if (s->root->parent || !s->root->is_dir || s->root->expire) {
		r = keel_err_set(err, -KEEL_ECORRUPT, "bad root");
		goto out;
	}
	q[qlen++] = s->root;
	while (qhead < qlen) {
		const struct kv_node *d = q[qhead++];
		if ((r = kv_check_dir(s, d, &seen, &ttl_nodes, err)) < 0)
			goto out;
		for (uint32_t i = 0; i < d->u.dir.cap; i++) {
			const struct kv_node *c = d->u.dir.slots[i];
			if (!c || !c->is_dir)
				continue;
			if (qlen == qcap) {
				const struct kv_node **nq = keel_reallocarray(q, qcap * 2, sizeof(*q));
				if (!nq) {
					r = keel_err_set(err, -ENOMEM, "out of memory");
					goto out;
				}
				q = nq;
				qcap *= 2;
			}
			q[qlen++] = c;
		}
		/* Keep the queue small: drop what was consumed. */
		if (qhead > 4096 && qhead * 2 > qlen) {
			memmove(q, q + qhead, (qlen - qhead) * sizeof(*q));
			qlen -= qhead;
			qhead = 0;
		}
	}
	if (seen != s->nodes) {
		r = keel_err_set(err, -KEEL_ECORRUPT, "node count %zu, found %zu", s->nodes, seen);
		goto out;
	}
	if (ttl_nodes != s->heap_len) {
		r = keel_err_set(err, -KEEL_ECORRUPT, "heap holds %u, tree %zu", s->heap_len,
				 ttl_nodes);
		goto out;
	}
	for (uint32_t i = 2; i <= s->heap_len; i++)
		if (kv_heap_less(s->heap[i - 1], s->heap[i / 2 - 1])) {
			r = keel_err_set(err, -KEEL_ECORRUPT, "heap order broken at %u", i);
			goto out;
		}
	uint64_t last = 0;
	for (uint32_t i = 0; i < s->hist_size; i++) {
		const struct keel_kv_event *e = s->hist[(s->hist_front + i) % KEEL_KV_HISTORY_SIZE];
		if (!e || keel_kv_event_index(e) <= last || keel_kv_event_index(e) > s->index) {
			r = keel_err_set(err, -KEEL_ECORRUPT, "history out of order at %u", i);
			goto out;
		}
		last = keel_kv_event_index(e);
	}
	size_t watchers = 0, paths = 0;
	for (uint32_t i = 0; i < s->wtab_cap; i++) {
		const struct keel__kv_wpath *wp = s->wtab[i];
		if (!wp)
			continue;
		paths++;
		const struct keel_kv_watcher *prev = NULL;
		for (const struct keel_kv_watcher *w = wp->head; w; prev = w, w = w->next) {
			if (w->wp != wp || w->prev != prev || !w->active) {
				r = keel_err_set(err, -KEEL_ECORRUPT, "bad watcher list");
				goto out;
			}
			watchers++;
		}
		if (prev != wp->tail || !wp->head) {
			r = keel_err_set(err, -KEEL_ECORRUPT, "bad watcher list tail");
			goto out;
		}
	}
	if (watchers != s->watchers || paths != s->wtab_count)
		r = keel_err_set(err, -KEEL_ECORRUPT, "watcher counts");
out:
	keel_free(q);
	return r;
}
