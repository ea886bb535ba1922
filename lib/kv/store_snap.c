/* Snapshots of the store: everything etcd's Save() keeps (the nodes, the index, the counters and
 * the event history; not the watchers), streamed in a compact binary form (docs/kv-store.md,
 * "Snapshots") through a write callback, and loaded back all-or-nothing from a read callback. */
#include "kv/store-internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/crc32c.h"
#include "base/mem.h"

#define KV_SNAP_MAGIC "KEELKV\0\1"
#define KV_SNAP_MAGIC_LEN 8
#define KV_SNAP_CHUNK 65536

enum { KV_SN_DIR = 1, KV_SN_EXPIRE = 2 };
enum { KV_SE_REFRESH = 1, KV_SE_PREV = 2 };
enum { KV_SE_DIR = 1, KV_SE_VALUE = 2, KV_SE_EXPIRE = 4 };

/* The counters in their saved order (etcd's field order). */
static uint64_t *kv_stat_fields(struct keel_kv_stats *st, size_t i)
{
	uint64_t *f[] = {
		&st->gets_success,   &st->gets_fail,      &st->sets_success,  &st->sets_fail,
		&st->delete_success, &st->delete_fail,    &st->update_success, &st->update_fail,
		&st->create_success, &st->create_fail,    &st->cas_success,    &st->cas_fail,
		&st->cad_success,    &st->cad_fail,       &st->expire_count,
	};
	return i < KEEL_ARRAY_SIZE(f) ? f[i] : NULL;
}

#define KV_STAT_COUNT 15

/* ---- writing -------------------------------------------------------------------------------- */

struct kv_wr {
	keel_kv_write_fn *fn;
	void *ud;
	unsigned char *buf;
	size_t len;
	uint32_t crc;
	int err;
};

static void kv_wr_flush(struct kv_wr *w)
{
	if (w->err || !w->len)
		return;
	w->crc = keel_crc32c(w->crc, w->buf, w->len);
	int r = w->fn(w->ud, w->buf, w->len);
	if (r < 0)
		w->err = r;
	w->len = 0;
}

static void kv_wr_put(struct kv_wr *w, const void *data, size_t n)
{
	const unsigned char *p = data;
	while (n && !w->err) {
		size_t room = KV_SNAP_CHUNK - w->len;
		size_t k = n < room ? n : room;
		memcpy(w->buf + w->len, p, k);
		w->len += k;
		p += k;
		n -= k;
		if (w->len == KV_SNAP_CHUNK)
			kv_wr_flush(w);
	}
}

static void kv_wr_u8(struct kv_wr *w, unsigned v)
{
	unsigned char c = (unsigned char)v;
	kv_wr_put(w, &c, 1);
}

static void kv_wr_varint(struct kv_wr *w, uint64_t v)
{
	unsigned char tmp[10];
	size_t n = 0;
	do {
		tmp[n] = (unsigned char)(v & 0x7f);
		v >>= 7;
		if (v)
			tmp[n] |= 0x80;
		n++;
	} while (v);
	kv_wr_put(w, tmp, n);
}

static void kv_wr_le64(struct kv_wr *w, uint64_t v)
{
	unsigned char b[8];
	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(v >> (8 * i));
	kv_wr_put(w, b, 8);
}

static void kv_wr_bytes(struct kv_wr *w, const char *s, size_t n)
{
	kv_wr_varint(w, n);
	kv_wr_put(w, s, n);
}

static void kv_wr_enode(struct kv_wr *w, const struct keel_kv_enode *n)
{
	kv_wr_u8(w, (n->dir ? KV_SE_DIR : 0) | (n->value ? KV_SE_VALUE : 0) |
			    (n->expiration ? KV_SE_EXPIRE : 0));
	kv_wr_varint(w, n->modified_index);
	kv_wr_varint(w, n->created_index);
	if (n->value)
		kv_wr_bytes(w, n->value, n->value_len);
	if (n->expiration)
		kv_wr_le64(w, (uint64_t)n->expiration);
	/* zigzag: the TTL of an expired node is negative */
	kv_wr_varint(w, ((uint64_t)n->ttl << 1) ^ (uint64_t)(n->ttl >> 63));
}

static int kv_by_name_ptr(const void *a, const void *b)
{
	const struct kv_node *x = *(const struct kv_node *const *)a;
	const struct kv_node *y = *(const struct kv_node *const *)b;
	size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
	int c = memcmp(kv_name(x), kv_name(y), n);
	if (c)
		return c;
	return x->name_len < y->name_len ? -1 : x->name_len > y->name_len;
}

struct kv_sframe {
	const struct kv_node **kids;
	uint32_t count, next;
};

/* The children of d sorted by name, so that equal states save to equal bytes. */
static int kv_sorted_kids(const struct kv_node *d, struct kv_sframe *f)
{
	f->count = f->next = 0;
	f->kids = NULL;
	if (!d->u.dir.count)
		return 0;
	f->kids = keel_malloc((size_t)d->u.dir.count * sizeof(*f->kids));
	if (!f->kids)
		return -ENOMEM;
	for (uint32_t i = 0; i < d->u.dir.cap; i++)
		if (d->u.dir.slots[i])
			f->kids[f->count++] = d->u.dir.slots[i];
	qsort(f->kids, f->count, sizeof(*f->kids), kv_by_name_ptr);
	return 0;
}

static int kv_save_nodes(const struct keel_kv_store *s, struct kv_wr *w)
{
	size_t depth = 0, cap = 16;
	struct kv_sframe *st = keel_malloc(cap * sizeof(*st));
	int r = -ENOMEM;
	if (!st || kv_sorted_kids(s->root, &st[0]) < 0)
		goto out;
	depth = 1;
	while (depth && !w->err) {
		struct kv_sframe *f = &st[depth - 1];
		if (f->next == f->count) {
			keel_free(f->kids);
			depth--;
			continue;
		}
		const struct kv_node *c = f->kids[f->next++];
		kv_wr_varint(w, depth);
		kv_wr_u8(w, (c->is_dir ? KV_SN_DIR : 0) | (c->expire ? KV_SN_EXPIRE : 0));
		kv_wr_bytes(w, kv_name(c), c->name_len);
		kv_wr_varint(w, c->created);
		kv_wr_varint(w, c->modified);
		if (c->expire)
			kv_wr_le64(w, (uint64_t)c->expire);
		if (!c->is_dir)
			kv_wr_bytes(w, kv_value(c), c->u.value_len);
		if (!c->is_dir || !c->u.dir.count)
			continue;
		if (depth == cap) {
			struct kv_sframe *ns = keel_reallocarray(st, cap * 2, sizeof(*st));
			if (!ns)
				goto out;
			st = ns;
			cap *= 2;
		}
		if (kv_sorted_kids(c, &st[depth]) < 0)
			goto out;
		depth++;
	}
	r = 0;
out:
	for (size_t i = 0; i < depth; i++)
		keel_free(st[i].kids);
	keel_free(st);
	return r;
}

int keel_kv_store_save(const struct keel_kv_store *s, keel_kv_write_fn *write, void *userdata,
		       struct keel_err *err)
{
	if (!s || !write)
		return keel_err_set(err, -EINVAL, "no store or write function");
	struct kv_wr w = {.fn = write, .ud = userdata};
	w.buf = keel_malloc(KV_SNAP_CHUNK);
	if (!w.buf)
		return keel_err_set(err, -ENOMEM, "out of memory");
	struct keel_kv_stats stats = s->stats;
	kv_wr_put(&w, KV_SNAP_MAGIC, KV_SNAP_MAGIC_LEN);
	kv_wr_varint(&w, s->index);
	for (size_t i = 0; i < KV_STAT_COUNT; i++)
		kv_wr_varint(&w, *kv_stat_fields(&stats, i));
	kv_wr_varint(&w, s->nodes - 1);
	int r = kv_save_nodes(s, &w);
	if (r < 0) {
		keel_free(w.buf);
		return keel_err_set(err, r, "out of memory");
	}
	kv_wr_varint(&w, s->hist_size);
	for (uint32_t i = 0; i < s->hist_size; i++) {
		const struct keel_kv_event *e = s->hist[(s->hist_front + i) % KEEL_KV_HISTORY_SIZE];
		kv_wr_u8(&w, e->action);
		kv_wr_u8(&w, (e->refresh ? KV_SE_REFRESH : 0) | (e->has_prev ? KV_SE_PREV : 0));
		kv_wr_varint(&w, e->etcd_index);
		kv_wr_bytes(&w, e->node.key, e->node.key_len);
		kv_wr_enode(&w, &e->node);
		if (e->has_prev)
			kv_wr_enode(&w, &e->prev);
	}
	kv_wr_flush(&w);
	if (!w.err) {
		unsigned char t[4];
		for (int i = 0; i < 4; i++)
			t[i] = (unsigned char)(w.crc >> (8 * i));
		int wr = write(userdata, t, 4);
		if (wr < 0)
			w.err = wr;
	}
	keel_free(w.buf);
	if (w.err)
		return keel_err_set(err, w.err, "writing the store snapshot failed");
	return 0;
}

/* ---- reading -------------------------------------------------------------------------------- */

struct kv_rdr {
	keel_kv_read_fn *fn;
	void *ud;
	unsigned char *buf;
	size_t pos, end;
	uint32_t crc;
	int err;
	const char *what; /* what was being read when it went wrong */
};

static int kv_rd_fill(struct kv_rdr *r)
{
	if (r->pos < r->end)
		return 0;
	ssize_t n = r->fn(r->ud, r->buf, KV_SNAP_CHUNK);
	if (n < 0)
		return r->err = (int)n;
	if (n == 0)
		return r->err = -KEEL_ECORRUPT;
	r->pos = 0;
	r->end = (size_t)n > KV_SNAP_CHUNK ? KV_SNAP_CHUNK : (size_t)n;
	return 0;
}

static int kv_rd_get(struct kv_rdr *r, void *dst, size_t n)
{
	unsigned char *d = dst;
	while (n) {
		if (r->err || kv_rd_fill(r) < 0)
			return r->err;
		size_t k = r->end - r->pos < n ? r->end - r->pos : n;
		memcpy(d, r->buf + r->pos, k);
		r->crc = keel_crc32c(r->crc, r->buf + r->pos, k);
		r->pos += k;
		d += k;
		n -= k;
	}
	return r->err;
}

static int kv_rd_u8(struct kv_rdr *r, unsigned *ret)
{
	unsigned char c;
	if (kv_rd_get(r, &c, 1) < 0)
		return r->err;
	*ret = c;
	return 0;
}

static int kv_rd_varint(struct kv_rdr *r, uint64_t *ret)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < 10; i++) {
		unsigned c = 0;
		if (kv_rd_u8(r, &c) < 0)
			return r->err;
		if (i == 9 && c > 1)
			return r->err = -KEEL_ECORRUPT;
		v |= (uint64_t)(c & 0x7f) << (7 * i);
		if (!(c & 0x80)) {
			*ret = v;
			return 0;
		}
	}
	return r->err = -KEEL_ECORRUPT;
}

static int kv_rd_le64(struct kv_rdr *r, uint64_t *ret)
{
	unsigned char b[8];
	if (kv_rd_get(r, b, 8) < 0)
		return r->err;
	*ret = keel_le64(b);
	return 0;
}

/* A length that must fit what can follow: nothing bigger than the store could have made. */
static int kv_rd_len(struct kv_rdr *r, uint64_t max, size_t *ret)
{
	uint64_t v;
	if (kv_rd_varint(r, &v) < 0)
		return r->err;
	if (v > max)
		return r->err = -KEEL_ECORRUPT;
	*ret = (size_t)v;
	return 0;
}

#define KV_MAX_BYTES ((uint64_t)1 << 40)

/* Read n bytes into out (reset first), growing it only as bytes arrive, so that a damaged length
 * fails at the end of the data instead of asking for memory it never fills. */
static int kv_rd_str(struct kv_rdr *r, size_t n, struct keel_buf *out)
{
	keel_buf_reset(out);
	if (keel_buf_reserve(out, n < 4096 ? n : 4096) < 0)
		return r->err = -ENOMEM;
	while (n) {
		if (r->err || kv_rd_fill(r) < 0)
			return r->err;
		size_t k = r->end - r->pos < n ? r->end - r->pos : n;
		if (keel_buf_append(out, r->buf + r->pos, k) < 0)
			return r->err = -ENOMEM;
		r->crc = keel_crc32c(r->crc, r->buf + r->pos, k);
		r->pos += k;
		n -= k;
	}
	return r->err;
}

static int kv_corrupt(struct kv_rdr *r, const char *what)
{
	r->what = what;
	return r->err = -KEEL_ECORRUPT;
}

/* What a load builds before it replaces the store's state. */
struct kv_loaded {
	uint64_t index;
	struct keel_kv_stats stats;
	struct kv_node *root;
	struct kv_node **ttl;     /* the nodes with an expiration, heapified at the end */
	uint32_t ttl_len, ttl_cap;
	struct keel_kv_event *hist[KEEL_KV_HISTORY_SIZE];
	uint32_t hist_len;
	size_t max_path;
};

static int kv_nomem(struct kv_rdr *r)
{
	return r->err = -ENOMEM;
}

/* Grow the stacks of the node loader to hold depth + 1 entries. */
static int kv_grow_stacks(struct kv_rdr *r, struct kv_node ***dirs, size_t **plen, size_t *cap,
			  size_t depth)
{
	if (depth < *cap)
		return 0;
	struct kv_node **nd = keel_reallocarray(*dirs, *cap * 2, sizeof(**dirs));
	if (!nd)
		return kv_nomem(r);
	*dirs = nd;
	size_t *np = keel_reallocarray(*plen, *cap * 2, sizeof(**plen));
	if (!np)
		return kv_nomem(r);
	*plen = np;
	*cap *= 2;
	return 0;
}

/* One node record, attached under the directory its depth names. */
static int kv_load_node(struct keel_kv_store *s, struct kv_rdr *r, struct kv_loaded *l,
			struct kv_node **dirs, size_t *plen, size_t *depth, struct keel_buf *name,
			struct keel_buf *value, struct kv_node **ret_dir, size_t *ret_plen)
{
	uint64_t d = 0, created = 0, modified = 0, expire = 0;
	unsigned flags = 0;
	size_t name_len = 0, value_len = 0;
	*ret_dir = NULL;
	if (kv_rd_varint(r, &d) < 0 || kv_rd_u8(r, &flags) < 0 ||
	    kv_rd_len(r, KV_NAME_MAX, &name_len) < 0)
		return r->err;
	if (d < 1 || d > *depth || (flags & ~(unsigned)(KV_SN_DIR | KV_SN_EXPIRE)) || !name_len)
		return kv_corrupt(r, "node record");
	bool dir = flags & KV_SN_DIR;
	keel_buf_reset(value);
	if (kv_rd_str(r, name_len, name) < 0 || kv_rd_varint(r, &created) < 0 ||
	    kv_rd_varint(r, &modified) < 0 ||
	    ((flags & KV_SN_EXPIRE) && kv_rd_le64(r, &expire) < 0) ||
	    (!dir && (kv_rd_len(r, KV_MAX_BYTES, &value_len) < 0 ||
		      kv_rd_str(r, value_len, value) < 0)))
		return r->err;
	struct kv_node *parent = dirs[d - 1];
	const char *nm = name->data;
	bool dots = (name_len == 1 && nm[0] == '.') ||
		    (name_len == 2 && nm[0] == '.' && nm[1] == '.');
	if (memchr(nm, '/', name_len) || dots || ((flags & KV_SN_EXPIRE) && !expire) ||
	    created > modified || kv_child(s, parent, nm, name_len))
		return kv_corrupt(r, "node");
	if (kv_dir_reserve(s, parent, 1) < 0)
		return kv_nomem(r);
	struct kv_node *n = kv_node_alloc(s, nm, name_len, value->data, value_len, dir);
	if (!n)
		return kv_nomem(r);
	kv_dir_insert(s, parent, n);
	n->created = created;
	n->modified = modified;
	n->expire = (int64_t)expire;
	size_t pl = plen[d - 1] + 1 + name_len;
	if (pl > l->max_path)
		l->max_path = pl;
	if (expire) {
		if (l->ttl_len == l->ttl_cap) {
			uint32_t nc = l->ttl_cap ? l->ttl_cap * 2 : 16;
			struct kv_node **t = keel_reallocarray(l->ttl, nc, sizeof(*t));
			if (!t)
				return kv_nomem(r);
			l->ttl = t;
			l->ttl_cap = nc;
		}
		l->ttl[l->ttl_len++] = n;
	}
	*depth = d;
	if (dir) {
		*ret_dir = n;
		*ret_plen = pl;
	}
	return 0;
}

static int kv_load_nodes(struct keel_kv_store *s, struct kv_rdr *r, struct kv_loaded *l)
{
	struct keel_buf name = KEEL_BUF_INIT, value = KEEL_BUF_INIT;
	uint64_t count;
	/* dirs[i]: the directory at depth i (dirs[0] is the root), plen[i]: its path length;
	 * a record at depth d goes under dirs[d - 1], so d may be at most `depth`. */
	size_t depth = 1, cap = 16;
	struct kv_node **dirs = keel_malloc(cap * sizeof(*dirs));
	size_t *plen = keel_malloc(cap * sizeof(*plen));
	if (!dirs || !plen) {
		kv_nomem(r);
		goto out;
	}
	dirs[0] = l->root;
	plen[0] = 0;
	if (kv_rd_varint(r, &count) < 0)
		goto out;
	for (uint64_t i = 0; i < count; i++) {
		struct kv_node *dir;
		size_t pl;
		if (kv_load_node(s, r, l, dirs, plen, &depth, &name, &value, &dir, &pl) < 0)
			goto out;
		if (!dir)
			continue;
		if (kv_grow_stacks(r, &dirs, &plen, &cap, depth) < 0)
			goto out;
		dirs[depth] = dir;
		plen[depth] = pl;
		depth++;
	}
out:
	keel_buf_free(&name);
	keel_buf_free(&value);
	keel_free(dirs);
	keel_free(plen);
	return r->err;
}

/* One saved node view; its value (if any) in val. */
static int kv_rd_enode(struct kv_rdr *r, struct keel_buf *val, struct keel_kv_enode *n,
		       bool *has_value)
{
	unsigned f = 0;
	uint64_t ttl = 0, exp = 0;
	size_t len = 0;
	if (kv_rd_u8(r, &f) < 0)
		return r->err;
	if (f & ~(unsigned)(KV_SE_DIR | KV_SE_VALUE | KV_SE_EXPIRE))
		return kv_corrupt(r, "event node");
	if (kv_rd_varint(r, &n->modified_index) < 0 || kv_rd_varint(r, &n->created_index) < 0)
		return r->err;
	*has_value = f & KV_SE_VALUE;
	keel_buf_reset(val);
	if (*has_value && (kv_rd_len(r, KV_MAX_BYTES, &len) < 0 || kv_rd_str(r, len, val) < 0))
		return r->err;
	if ((f & KV_SE_EXPIRE) && kv_rd_le64(r, &exp) < 0)
		return r->err;
	if ((f & KV_SE_EXPIRE) && !exp)
		return kv_corrupt(r, "event expiration");
	if (kv_rd_varint(r, &ttl) < 0)
		return r->err;
	n->dir = f & KV_SE_DIR;
	n->expiration = (int64_t)exp;
	n->ttl = (int64_t)((ttl >> 1) ^ (~(ttl & 1) + 1));
	n->value_len = len;
	return 0;
}

static int kv_load_event(struct keel_kv_store *s, struct kv_rdr *r, struct kv_loaded *l,
			 uint64_t *last, struct keel_buf bufs[3])
{
	unsigned action = 0, flags = 0;
	uint64_t etcd_index = 0;
	size_t klen = 0;
	struct keel_kv_enode node = {0}, prev = {0};
	bool has_v = false, has_pv = false;
	struct keel_buf *key = &bufs[0], *v = &bufs[1], *pv = &bufs[2];
	if (kv_rd_u8(r, &action) < 0 || kv_rd_u8(r, &flags) < 0 ||
	    kv_rd_varint(r, &etcd_index) < 0 || kv_rd_len(r, KV_MAX_BYTES, &klen) < 0)
		return r->err;
	if (action == KEEL_KV_ACTION_GET || action > KEEL_KV_ACTION_EXPIRE ||
	    (flags & ~(unsigned)(KV_SE_REFRESH | KV_SE_PREV)) || !klen)
		return kv_corrupt(r, "event record");
	if (kv_rd_str(r, klen, key) < 0 || kv_rd_enode(r, v, &node, &has_v) < 0 ||
	    ((flags & KV_SE_PREV) && kv_rd_enode(r, pv, &prev, &has_pv) < 0))
		return r->err;
	if (key->data[0] != '/' || node.modified_index <= *last || node.modified_index > l->index)
		return kv_corrupt(r, "event");
	*last = node.modified_index;
	struct keel_kv_event *e = kv_event_alloc(s, (enum keel_kv_action)action, key->data, klen,
						 v->data, node.value_len, has_v, pv->data,
						 prev.value_len, has_pv);
	if (!e)
		return kv_nomem(r);
	node.key = prev.key = e->node.key;
	node.key_len = prev.key_len = klen;
	node.value = e->node.value;
	prev.value = e->prev.value;
	e->node = node;
	e->prev = prev;
	e->has_prev = flags & KV_SE_PREV;
	e->refresh = flags & KV_SE_REFRESH;
	e->etcd_index = etcd_index;
	l->hist[l->hist_len++] = e;
	return 0;
}

static int kv_load_history(struct keel_kv_store *s, struct kv_rdr *r, struct kv_loaded *l)
{
	struct keel_buf bufs[3] = {KEEL_BUF_INIT, KEEL_BUF_INIT, KEEL_BUF_INIT};
	uint64_t count, last = 0;
	if (kv_rd_varint(r, &count) < 0)
		goto out;
	if (count > KEEL_KV_HISTORY_SIZE) {
		kv_corrupt(r, "history length");
		goto out;
	}
	for (uint64_t i = 0; i < count; i++)
		if (kv_load_event(s, r, l, &last, bufs) < 0)
			goto out;
out:
	for (int i = 0; i < 3; i++)
		keel_buf_free(&bufs[i]);
	return r->err;
}

/* Read and check everything into l. 0 or the error (also in r->err). */
static int kv_load_all(struct keel_kv_store *s, struct kv_rdr *r, struct kv_loaded *l)
{
	char magic[KV_SNAP_MAGIC_LEN];
	if (kv_rd_get(r, magic, sizeof(magic)) < 0)
		return r->err;
	if (memcmp(magic, KV_SNAP_MAGIC, KV_SNAP_MAGIC_LEN) != 0)
		return kv_corrupt(r, "magic");
	if (kv_rd_varint(r, &l->index) < 0)
		return r->err;
	for (size_t i = 0; i < KV_STAT_COUNT; i++)
		if (kv_rd_varint(r, kv_stat_fields(&l->stats, i)) < 0)
			return r->err;
	if (kv_load_nodes(s, r, l) < 0 || kv_load_history(s, r, l) < 0)
		return r->err;
	uint32_t crc = r->crc;
	unsigned char t[4];
	if (kv_rd_get(r, t, 4) < 0)
		return r->err;
	if (keel_le32(t) != crc)
		return kv_corrupt(r, "checksum");
	if (r->pos != r->end)
		return kv_corrupt(r, "trailing bytes");
	ssize_t more = r->fn(r->ud, r->buf, KV_SNAP_CHUNK);
	if (more < 0)
		return r->err = (int)more;
	if (more > 0)
		return kv_corrupt(r, "trailing bytes");
	if (kv_scratch_reserve(s, l->max_path) < 0)
		return kv_nomem(r);
	return 0;
}

/* Swap l's state into s; cannot fail. */
static void kv_install(struct keel_kv_store *s, struct kv_loaded *l)
{
	kv_hist_clear(s);
	memcpy(s->hist, l->hist, sizeof(l->hist));
	s->hist_size = l->hist_len;
	l->hist_len = 0;
	struct kv_node *old = s->root;
	s->root = l->root;
	l->root = NULL;
	s->mem -= (size_t)s->heap_cap * sizeof(*s->heap);
	keel_free(s->heap);
	s->heap = l->ttl;
	s->heap_cap = l->ttl_cap;
	s->heap_len = 0;
	s->mem += (size_t)s->heap_cap * sizeof(*s->heap);
	l->ttl = NULL;
	/* Heapify in place: the node at i joins as element i + 1; sifting up only moves the
	 * ones before it. */
	for (uint32_t i = 0; i < l->ttl_len; i++)
		kv_heap_push(s, s->heap[i]);
	kv_free_tree(s, old);
	s->index = l->index;
	s->stats = l->stats;
}

int keel_kv_store_load(struct keel_kv_store *s, keel_kv_read_fn *read, void *userdata,
		       struct keel_err *err)
{
	if (!s || !read)
		return keel_err_set(err, -EINVAL, "no store or read function");
	if (s->notifying)
		return keel_err_set(err, -EBUSY, "loading from a watch callback");
	struct kv_rdr r = {.fn = read, .ud = userdata};
	struct kv_loaded *l = keel_calloc(1, sizeof(*l));
	r.buf = keel_malloc(KV_SNAP_CHUNK);
	if (l)
		l->root = kv_node_alloc(s, "", 0, NULL, 0, true);
	int ret;
	if (!l || !r.buf || !l->root)
		ret = -ENOMEM;
	else
		ret = kv_load_all(s, &r, l);
	if (ret == 0)
		kv_install(s, l);
	else if (ret == -KEEL_ECORRUPT)
		keel_err_set(err, ret, "store snapshot corrupted (%s)",
			     r.what ? r.what : "truncated");
	else if (ret == -ENOMEM)
		keel_err_set(err, ret, "out of memory loading the store snapshot");
	else
		keel_err_errno(err, ret, "reading the store snapshot");
	if (l) {
		for (uint32_t i = 0; i < l->hist_len; i++)
			keel_kv_event_unref(l->hist[i]);
		if (l->root)
			kv_free_tree(s, l->root);
		keel_free(l->ttl);
	}
	keel_free(l);
	keel_free(r.buf);
	return ret;
}
