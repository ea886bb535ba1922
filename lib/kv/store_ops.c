/* The store's operations with etcd's exact semantics (v2store/store.go): Get, Set, Create,
 * Update, CompareAndSwap, Delete, CompareAndDelete, DeleteExpiredKeys, and the dispatch of a
 * request as etcd's applierV2store does it.
 *
 * Every operation runs in two phases: first it checks everything and allocates everything it
 * will need (nodes, table and heap room, the event), then it commits with steps that cannot
 * fail. Running out of memory therefore leaves the store exactly as it was, counters included.
 *
 * The counters follow etcd, quirks and all: etcd counts from a deferred closure that looks at a
 * local `err`, and some error returns do not assign it, so they count as successes (107 on
 * Update/CAS/Delete, 102 on Update with a value, 102 and 101 on CompareAndDelete); and a Create
 * whose path crosses a key also counts a failed set. */
#include "kv/store-internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "base/mem.h"

/* The result of resolving a clean path: the node, or etcd's error with its cause p[0, len). */
struct kv_walk {
	struct kv_node *node;
	int code;
	size_t cause_len;
};

/* etcd's internalGet. */
static void kv_lookup(const struct keel_kv_store *s, const char *p, size_t n, struct kv_walk *w)
{
	struct kv_node *cur = s->root;
	*w = (struct kv_walk){0};
	for (size_t i = 1; i < n;) {
		size_t j = i;
		while (j < n && p[j] != '/')
			j++;
		if (!cur->is_dir) {
			/* "Not a directory", naming the key that was taken for one. */
			w->code = KEEL_KV_ECODE_NOT_DIR;
			w->cause_len = i - 1;
			return;
		}
		struct kv_node *c = kv_child(s, cur, p + i, j - i);
		if (!c) {
			w->code = KEEL_KV_ECODE_KEY_NOT_FOUND;
			w->cause_len = j;
			return;
		}
		cur = c;
		i = j + 1;
	}
	w->node = cur;
}

static int kv_walk_fail(const struct keel_kv_store *s, const char *p, const struct kv_walk *w,
			struct keel_kv_error *kerr)
{
	return kv_fail(s, kerr, w->code, p, w->cause_len, s->index);
}

/* Count an outcome: ok for 0, fail for KEEL_KV_FAILED, nothing for -errno. */
static int kv_count(int r, uint64_t *ok, uint64_t *fail)
{
	if (r == 0)
		(*ok)++;
	else if (r == KEEL_KV_FAILED)
		(*fail)++;
	return r;
}

/* etcd's UpdateTTL: permanent ↔ TTL, in the heap or out (room reserved by the caller). */
static void kv_update_ttl(struct keel_kv_store *s, struct kv_node *n, int64_t expire)
{
	if (n->expire) {
		n->expire = expire;
		if (!expire)
			kv_heap_remove(s, n);
		else
			kv_heap_fix(s, n);
	} else if (expire) {
		n->expire = expire;
		kv_heap_push(s, n);
	}
}

/* The replacement for key n holding value v (NULL when v fits in place). */
static int kv_prepare_write(struct keel_kv_store *s, const struct kv_node *n, const char *v,
			    size_t vlen, struct kv_node **ret)
{
	*ret = NULL;
	if (n->is_dir || vlen == n->u.value_len)
		return 0;
	*ret = kv_node_alloc(s, kv_name(n), n->name_len, v, vlen, false);
	return *ret ? 0 : -ENOMEM;
}

/* etcd's node.Write: a key takes the value and the index; a directory ignores both (Write
 * returns an error nobody looks at, so a directory's modifiedIndex never moves). Returns the
 * node now holding the key. */
static struct kv_node *kv_commit_write(struct keel_kv_store *s, struct kv_node *n,
				       struct kv_node *repl, const char *v, size_t vlen,
				       uint64_t index)
{
	if (n->is_dir)
		return n;
	if (repl) {
		repl->created = n->created;
		repl->expire = n->expire;
		kv_dir_replace(s, n->parent, n, repl);
		if (n->heap_pos) {
			repl->heap_pos = n->heap_pos;
			s->heap[repl->heap_pos - 1] = repl;
			n->heap_pos = 0;
		}
		kv_node_free(s, n);
		n = repl;
	} else if (vlen) {
		memmove(n->data + n->name_len, v, vlen);
	}
	n->modified = index;
	return n;
}

static void kv_fill_node(struct keel_kv_event *ev, uint64_t modified, uint64_t created, bool dir,
			 int64_t expire, int64_t now)
{
	ev->node.modified_index = modified;
	ev->node.created_index = created;
	ev->node.dir = dir;
	ev->node.expiration = expire;
	ev->node.ttl = expire ? kv_ttl(expire, now) : 0;
}

/* Refresh events go to the history only; the others wake watchers. The store keeps the
 * history's reference, the caller gets ev. */
static void kv_publish(struct keel_kv_store *s, struct keel_kv_event *ev, bool refresh)
{
	ev->refresh = refresh;
	if (refresh)
		kv_hist_add(s, ev);
	else
		kv_hub_notify(s, ev);
}

/* ---- Get -------------------------------------------------------------------------------- */

int kv_op_get(struct keel_kv_store *s, const char *path, size_t path_len, bool recursive,
	      bool sorted, int64_t now, struct keel_kv_event **ret, struct keel_kv_error *kerr)
{
	struct keel_buf p = KEEL_BUF_INIT, body = KEEL_BUF_INIT;
	struct keel_kv_event *ev = NULL;
	struct kv_walk w;
	int r = kv_clean_path(path, path_len, &p);
	if (r < 0)
		goto out;
	kv_lookup(s, p.data, p.len, &w);
	if (w.code) {
		r = kv_walk_fail(s, p.data, &w, kerr);
		goto out;
	}
	struct kv_node *n = w.node;
	r = -ENOMEM;
	ev = kv_event_new(s, KEEL_KV_ACTION_GET, p.data, p.len, kv_value(n),
			  n->is_dir ? 0 : n->u.value_len, !n->is_dir, NULL, now);
	if (!ev)
		goto out;
	kv_fill_node(ev, n->modified, n->created, n->is_dir, n->expire, now);
	ev->etcd_index = s->index;
	if ((r = kv_render_tree(s, n, p.data, p.len, recursive, sorted, now, &body)) < 0)
		goto out;
	r = -ENOMEM;
	ev->get_json = keel_buf_steal(&body, &ev->get_json_len);
	if (!ev->get_json)
		goto out;
	*ret = ev;
	ev = NULL;
	r = 0;
out:
	kv_count(r, &s->stats.gets_success, &s->stats.gets_fail);
	keel_kv_event_unref(ev);
	keel_buf_free(&p);
	keel_buf_free(&body);
	return r;
}

int keel_kv_store_get(struct keel_kv_store *s, const char *path, size_t path_len, bool recursive,
		      bool sorted, int64_t now, struct keel_kv_event **ret_event,
		      struct keel_kv_error *ret_error)
{
	if (!s || !ret_event || !ret_error || (!path && path_len))
		return -EINVAL;
	if (s->notifying)
		return -EBUSY;
	return kv_op_get(s, path ? path : "", path_len, recursive, sorted, now, ret_event,
			 ret_error);
}

int keel_kv_store_peek(struct keel_kv_store *s, const char *path, size_t path_len, bool count,
		       struct keel_kv_peek *ret)
{
	if (!s || !ret || (!path && path_len))
		return -EINVAL;
	/* Paths keel-kv builds are usually clean already: look them up as they are. */
	bool clean = path_len > 0 && path[0] == '/' && (path_len == 1 || path[path_len - 1] != '/');
	for (size_t i = 0; clean && i + 1 < path_len; i++)
		if (path[i] == '/' && (path[i + 1] == '/' || path[i + 1] == '.'))
			clean = false;
	struct keel_buf p = KEEL_BUF_INIT;
	int r = 0;
	if (!clean && (r = kv_clean_path(path ? path : "", path_len, &p)) < 0)
		return r;
	struct kv_walk w;
	kv_lookup(s, clean ? path : p.data, clean ? path_len : p.len, &w);
	keel_buf_free(&p);
	if (w.code) {
		r = KEEL_KV_FAILED;
	} else {
		const struct kv_node *n = w.node;
		*ret = (struct keel_kv_peek){
			.value = n->is_dir ? NULL : kv_value(n), .value_len = n->is_dir ? 0 : n->u.value_len,
			.created_index = n->created, .modified_index = n->modified, .dir = n->is_dir,
		};
	}
	if (count)
		kv_count(r, &s->stats.gets_success, &s->stats.gets_fail);
	return r;
}

void keel_kv_store_count_get(struct keel_kv_store *s, bool found)
{
	kv_count(found ? 0 : KEEL_KV_FAILED, &s->stats.gets_success, &s->stats.gets_fail);
}

/* ---- Set and Create (internalCreate) ------------------------------------------------------ */

struct kv_create_args {
	const char *p;
	size_t n;
	bool dir;
	const char *value;
	size_t vlen;
	bool replace;
	int64_t expire;
	enum keel_kv_action action;
	int64_t now;
};

/* etcd's internalCreate. *walk_failed reports the error etcd also counts as a failed set. */
static int kv_create(struct keel_kv_store *s, const struct kv_create_args *a,
		     struct keel_kv_event **ret, struct keel_kv_error *kerr, bool *walk_failed)
{
	const char *p = a->p;
	size_t n = a->n;
	uint64_t next = s->index + 1;
	int64_t expire = a->expire;
	*walk_failed = false;
	if (kv_is_readonly(s, p, n))
		return kv_fail(s, kerr, KEEL_KV_ECODE_ROOT_RONLY, "/", 1, s->index);
	/* Expiration times before 2000 mean "permanent" (etcd: minExpireTime). */
	if (expire < KV_MIN_EXPIRE_NS)
		expire = 0;

	size_t slash = n - 1;
	while (p[slash] != '/')
		slash--;
	const char *name = p + slash + 1;
	size_t name_len = n - slash - 1;

	/* Walk the directories: an existing key on the way is an error; the first missing one
	 * starts the chain of directories to make (etcd's checkDir makes them as it goes). */
	struct kv_node *d = s->root;
	size_t missing = 0;
	for (size_t i = 1; i < slash;) {
		size_t j = i;
		while (j < slash && p[j] != '/')
			j++;
		struct kv_node *c = kv_child(s, d, p + i, j - i);
		if (!c) {
			missing = i;
			break;
		}
		if (!c->is_dir) {
			*walk_failed = true;
			return kv_fail(s, kerr, KEEL_KV_ECODE_NOT_DIR, p, j, s->index);
		}
		d = c;
		i = j + 1;
	}
	struct kv_node *old = NULL;
	if (!missing) {
		old = kv_child(s, d, name, name_len);
		if (old && !a->replace)
			return kv_fail(s, kerr, KEEL_KV_ECODE_NODE_EXIST, p, n, s->index);
		if (old && old->is_dir)
			return kv_fail(s, kerr, KEEL_KV_ECODE_NOT_FILE, p, n, s->index);
	}

	/* Prepare. */
	struct kv_node *chain = NULL, *last = NULL, *leaf = NULL;
	struct keel_kv_event *ev = NULL;
	if ((expire && kv_heap_reserve(s, 1) < 0) || kv_scratch_reserve(s, n) < 0 ||
	    (!old && kv_dir_reserve(s, d, 1) < 0))
		return -ENOMEM;
	if (missing) {
		for (size_t i = missing; i < slash;) {
			size_t j = i;
			while (j < slash && p[j] != '/')
				j++;
			struct kv_node *nd = kv_node_alloc(s, p + i, j - i, NULL, 0, true);
			if (!nd)
				goto nomem;
			if (kv_dir_reserve(s, nd, 1) < 0) {
				kv_node_free(s, nd);
				goto nomem;
			}
			nd->created = nd->modified = next;
			if (last)
				kv_dir_insert(s, last, nd);
			else
				chain = nd;
			last = nd;
			i = j + 1;
		}
	}
	leaf = kv_node_alloc(s, name, name_len, a->value, a->vlen, a->dir);
	if (!leaf)
		goto nomem;
	leaf->created = leaf->modified = next;
	leaf->expire = expire;
	if (last)
		kv_dir_insert(s, last, leaf);
	ev = kv_event_new(s, a->action, p, n, a->value, a->vlen, !a->dir, old, a->now);
	if (!ev)
		goto nomem;
	kv_fill_node(ev, next, next, a->dir, expire, a->now);
	ev->etcd_index = next;

	/* Commit. */
	if (old) {
		if (old->heap_pos)
			kv_heap_remove(s, old);
		kv_dir_replace(s, d, old, leaf);
		kv_node_free(s, old);
	} else {
		kv_dir_insert(s, d, chain ? chain : leaf);
	}
	if (expire)
		kv_heap_push(s, leaf);
	s->index = next;
	*ret = ev;
	return 0;
nomem:
	if (chain)
		kv_free_tree(s, chain);
	else if (leaf)
		kv_node_free(s, leaf);
	return -ENOMEM;
}

static int kv_set(struct keel_kv_store *s, const struct kv_create_args *args, bool refresh,
		  struct keel_kv_event **ret, struct keel_kv_error *kerr)
{
	struct kv_create_args a = *args;
	struct kv_walk w;
	bool walk_failed = false;
	int r;
	kv_lookup(s, a.p, a.n, &w);
	if (w.code && (w.code != KEEL_KV_ECODE_KEY_NOT_FOUND || refresh)) {
		r = kv_walk_fail(s, a.p, &w, kerr);
		goto out;
	}
	if (refresh) {
		/* Same value; the node is still made anew (new createdIndex), as etcd does. */
		a.value = kv_value(w.node);
		a.vlen = w.node->is_dir ? 0 : w.node->u.value_len;
	}
	a.replace = true;
	a.action = KEEL_KV_ACTION_SET;
	r = kv_create(s, &a, ret, kerr, &walk_failed);
	if (r == 0)
		kv_publish(s, *ret, refresh);
out:
	if (walk_failed)
		s->stats.sets_fail++;
	return kv_count(r, &s->stats.sets_success, &s->stats.sets_fail);
}

static int kv_create_op(struct keel_kv_store *s, const struct kv_create_args *args, bool unique,
			struct keel_kv_event **ret, struct keel_kv_error *kerr)
{
	struct kv_create_args a = *args;
	struct keel_buf raw = KEEL_BUF_INIT, p = KEEL_BUF_INIT;
	bool walk_failed = false;
	int r = 0;
	if (unique) {
		/* In-order key: the directory, "/", and the new index in 20 zero-padded digits
		 * (fmt.Sprintf("%020s", ...)), cleaned again. */
		if (keel_buf_append(&raw, a.p, a.n) < 0 ||
		    keel_buf_printf(&raw, "/%020" PRIu64, s->index + 1) < 0 ||
		    kv_clean_path(raw.data, raw.len, &p) < 0) {
			r = -ENOMEM;
			goto out;
		}
		a.p = p.data;
		a.n = p.len;
	}
	a.replace = false;
	a.action = KEEL_KV_ACTION_CREATE;
	r = kv_create(s, &a, ret, kerr, &walk_failed);
	if (r == 0)
		kv_publish(s, *ret, false);
out:
	if (walk_failed)
		s->stats.sets_fail++;
	keel_buf_free(&raw);
	keel_buf_free(&p);
	return kv_count(r, &s->stats.create_success, &s->stats.create_fail);
}

/* ---- Update and CompareAndSwap ------------------------------------------------------------ */

static int kv_update(struct keel_kv_store *s, const char *p, size_t n, const char *value,
		     size_t vlen, int64_t expire, bool refresh, int64_t now,
		     struct keel_kv_event **ret, struct keel_kv_error *kerr)
{
	struct kv_walk w;
	int r;
	if (kv_is_readonly(s, p, n)) {
		r = kv_fail(s, kerr, KEEL_KV_ECODE_ROOT_RONLY, "/", 1, s->index);
		if (r == KEEL_KV_FAILED)
			s->stats.update_success++; /* etcd counts it as a success */
		return r;
	}
	kv_lookup(s, p, n, &w);
	if (w.code) {
		r = kv_walk_fail(s, p, &w, kerr);
		return kv_count(r, &s->stats.update_success, &s->stats.update_fail);
	}
	struct kv_node *node = w.node;
	if (node->is_dir && vlen) {
		r = kv_fail(s, kerr, KEEL_KV_ECODE_NOT_FILE, p, n, s->index);
		if (r == KEEL_KV_FAILED)
			s->stats.update_success++; /* so does etcd */
		return r;
	}
	if (refresh) {
		value = kv_value(node);
		vlen = node->is_dir ? 0 : node->u.value_len;
	}
	uint64_t next = s->index + 1;
	struct kv_node *repl = NULL;
	if ((expire && !node->heap_pos && kv_heap_reserve(s, 1) < 0) ||
	    kv_prepare_write(s, node, value, vlen, &repl) < 0)
		return -ENOMEM;
	struct keel_kv_event *ev = kv_event_new(s, KEEL_KV_ACTION_UPDATE, p, n, value, vlen,
						!node->is_dir, node, now);
	if (!ev) {
		kv_node_free(s, repl);
		return -ENOMEM;
	}
	kv_fill_node(ev, next, node->created, node->is_dir, expire, now);
	ev->etcd_index = next;
	node = kv_commit_write(s, node, repl, value, vlen, next);
	kv_update_ttl(s, node, expire);
	s->index = next;
	kv_publish(s, ev, refresh);
	*ret = ev;
	s->stats.update_success++;
	return 0;
}

/* etcd's getCompareFailCause, or an empty buffer when both conditions hold. */
static int kv_compare(const struct kv_node *node, const char *pv, size_t pvlen, uint64_t pi,
		      struct keel_buf *cause)
{
	bool index_ok = pi == 0 || node->modified == pi;
	bool value_ok = pvlen == 0 || (node->u.value_len == pvlen &&
				       memcmp(kv_value(node), pv, pvlen) == 0);
	int r = 0;
	if (!value_ok) {
		r |= keel_buf_putc(cause, '[');
		r |= keel_buf_append(cause, pv, pvlen);
		r |= keel_buf_puts(cause, " != ");
		r |= keel_buf_append(cause, kv_value(node), node->u.value_len);
		r |= keel_buf_putc(cause, ']');
	}
	if (!index_ok)
		r |= keel_buf_printf(cause, "%s[%" PRIu64 " != %" PRIu64 "]", value_ok ? "" : " ",
				     pi, node->modified);
	return r < 0 ? -ENOMEM : 0;
}

static int kv_cas(struct keel_kv_store *s, const char *p, size_t n, const struct keel_kv_req *req,
		  int64_t expire, struct keel_kv_event **ret, struct keel_kv_error *kerr)
{
	struct keel_buf cause = KEEL_BUF_INIT;
	struct kv_walk w;
	const char *value = req->value;
	size_t vlen = req->value_len;
	int r;
	if (kv_is_readonly(s, p, n)) {
		r = kv_fail(s, kerr, KEEL_KV_ECODE_ROOT_RONLY, "/", 1, s->index);
		if (r == KEEL_KV_FAILED)
			s->stats.cas_success++; /* etcd counts it as a success */
		return r;
	}
	kv_lookup(s, p, n, &w);
	if (w.code) {
		r = kv_walk_fail(s, p, &w, kerr);
		goto out;
	}
	struct kv_node *node = w.node;
	if (node->is_dir) {
		r = kv_fail(s, kerr, KEEL_KV_ECODE_NOT_FILE, p, n, s->index);
		goto out;
	}
	if ((r = kv_compare(node, req->prev_value, req->prev_value_len, req->prev_index, &cause)))
		goto out;
	if (cause.len) {
		r = kv_fail(s, kerr, KEEL_KV_ECODE_TEST_FAILED, cause.data, cause.len, s->index);
		goto out;
	}
	if (req->refresh) {
		value = kv_value(node);
		vlen = node->u.value_len;
	}
	uint64_t next = s->index + 1;
	struct kv_node *repl = NULL;
	r = -ENOMEM;
	if ((expire && !node->heap_pos && kv_heap_reserve(s, 1) < 0) ||
	    kv_prepare_write(s, node, value, vlen, &repl) < 0)
		goto out;
	struct keel_kv_event *ev = kv_event_new(s, KEEL_KV_ACTION_CAS, p, n, value, vlen, true,
						node, req->time);
	if (!ev) {
		kv_node_free(s, repl);
		goto out;
	}
	kv_fill_node(ev, next, node->created, false, expire, req->time);
	ev->etcd_index = next;
	node = kv_commit_write(s, node, repl, value, vlen, next);
	kv_update_ttl(s, node, expire);
	s->index = next;
	kv_publish(s, ev, req->refresh);
	*ret = ev;
	r = 0;
out:
	keel_buf_free(&cause);
	return kv_count(r, &s->stats.cas_success, &s->stats.cas_fail);
}

/* ---- Delete and CompareAndDelete ---------------------------------------------------------- */

/* Remove node (path p) with an event of `action`, waking watchers on every removed path. */
static int kv_remove(struct keel_kv_store *s, struct kv_node *node, const char *p, size_t n,
		     enum keel_kv_action action, int64_t now, struct keel_kv_event **ret)
{
	uint64_t next = s->index + 1;
	if (kv_scratch_reserve(s, n) < 0)
		return -ENOMEM;
	struct keel_kv_event *ev = kv_event_new(s, action, p, n, NULL, 0, false, node, now);
	if (!ev)
		return -ENOMEM;
	kv_fill_node(ev, next, node->created, node->is_dir, 0, now);
	ev->etcd_index = next;
	memcpy(s->scratch, p, n);
	s->scratch[n] = '\0';
	kv_destroy_subtree(s, node, n, ev);
	s->index = next;
	kv_hub_notify(s, ev);
	*ret = ev;
	return 0;
}

static int kv_delete(struct keel_kv_store *s, const char *p, size_t n, bool dir, bool recursive,
		     int64_t now, struct keel_kv_event **ret, struct keel_kv_error *kerr)
{
	struct kv_walk w;
	int r;
	if (kv_is_readonly(s, p, n)) {
		r = kv_fail(s, kerr, KEEL_KV_ECODE_ROOT_RONLY, "/", 1, s->index);
		if (r == KEEL_KV_FAILED)
			s->stats.delete_success++; /* etcd counts it as a success */
		return r;
	}
	if (recursive)
		dir = true;
	kv_lookup(s, p, n, &w);
	if (w.code) {
		r = kv_walk_fail(s, p, &w, kerr);
	} else if (w.node->is_dir && !dir) {
		r = kv_fail(s, kerr, KEEL_KV_ECODE_NOT_FILE, p, n, s->index);
	} else if (w.node->is_dir && w.node->u.dir.count && !recursive) {
		r = kv_fail(s, kerr, KEEL_KV_ECODE_DIR_NOT_EMPTY, p, n, s->index);
	} else {
		r = kv_remove(s, w.node, p, n, KEEL_KV_ACTION_DELETE, now, ret);
	}
	return kv_count(r, &s->stats.delete_success, &s->stats.delete_fail);
}

static int kv_cad(struct keel_kv_store *s, const char *p, size_t n, const struct keel_kv_req *req,
		  struct keel_kv_event **ret, struct keel_kv_error *kerr)
{
	struct keel_buf cause = KEEL_BUF_INIT;
	struct kv_walk w;
	int r;
	kv_lookup(s, p, n, &w);
	if (w.code) {
		r = kv_count(kv_walk_fail(s, p, &w, kerr), &s->stats.cad_success,
			     &s->stats.cad_fail);
		goto out;
	}
	/* Both refusals below count as successes in etcd. */
	if (w.node->is_dir) {
		r = kv_fail(s, kerr, KEEL_KV_ECODE_NOT_FILE, p, n, s->index);
	} else if ((r = kv_compare(w.node, req->prev_value, req->prev_value_len, req->prev_index,
				   &cause)) < 0) {
		goto out;
	} else if (cause.len) {
		r = kv_fail(s, kerr, KEEL_KV_ECODE_TEST_FAILED, cause.data, cause.len, s->index);
	} else {
		r = kv_remove(s, w.node, p, n, KEEL_KV_ACTION_CAD, req->time, ret);
	}
	if (r >= 0)
		s->stats.cad_success++;
out:
	keel_buf_free(&cause);
	return r;
}

/* ---- DeleteExpiredKeys -------------------------------------------------------------------- */

static bool kv_ancestor_marked(const struct kv_node *n)
{
	for (n = n->parent; n; n = n->parent)
		if (n->mark)
			return true;
	return false;
}

/* Expire, in heap order, every node due at now, each with its own event and index. Planned in
 * full first (pop the due nodes, drop those an earlier ancestor takes with it, make every
 * event) so that running out of memory can put everything back. */
static int kv_expire(struct keel_kv_store *s, int64_t now)
{
	if (!s->heap_len || s->heap[0]->expire > now)
		return 0;
	struct kv_node **due = NULL;
	struct keel_kv_event **evs = NULL;
	size_t count = 0, cap = 0;
	int r = -ENOMEM;
	while (s->heap_len && s->heap[0]->expire <= now) {
		if (count == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct kv_node **nd = keel_reallocarray(due, ncap, sizeof(*nd));
			if (!nd)
				goto rollback;
			due = nd;
			cap = ncap;
		}
		due[count++] = kv_heap_pop(s);
	}
	evs = keel_calloc(count, sizeof(*evs));
	if (!evs)
		goto rollback;
	for (size_t i = 0; i < count; i++) {
		struct kv_node *n = due[i];
		if (kv_ancestor_marked(n))
			continue;
		n->mark = 1;
		size_t len = kv_node_path(s, n);
		evs[i] = kv_event_new(s, KEEL_KV_ACTION_EXPIRE, s->scratch, len, NULL, 0, false, n,
				      now);
		if (!evs[i])
			goto rollback;
		kv_fill_node(evs[i], 0, n->created, n->is_dir, 0, now);
	}
	for (size_t i = 0; i < count; i++) {
		if (!evs[i])
			continue;
		struct keel_kv_event *ev = evs[i];
		s->index++;
		ev->node.modified_index = s->index;
		ev->etcd_index = s->index;
		size_t len = kv_node_path(s, due[i]);
		kv_destroy_subtree(s, due[i], len, ev);
		s->stats.expire_count++;
		kv_hub_notify(s, ev);
		keel_kv_event_unref(ev);
	}
	r = 0;
	goto out;
rollback:
	for (size_t i = 0; i < count; i++) {
		due[i]->mark = 0;
		kv_heap_push(s, due[i]);
		if (evs)
			keel_kv_event_unref(evs[i]);
	}
out:
	keel_free(due);
	keel_free(evs);
	return r;
}

/* ---- dispatch ----------------------------------------------------------------------------- */

/* r.Expiration as etcd's HTTP layer computes it: now + time.Duration(ttl) * time.Second, which
 * wraps like Go's int64 arithmetic; 0 means none. */
static int64_t kv_expiration(const struct keel_kv_req *req)
{
	if (!req->has_ttl)
		return 0;
	int64_t d = (int64_t)(req->ttl * 1000000000ull);
	int64_t e;
	if (__builtin_add_overflow(req->time, d, &e))
		e = d > 0 ? INT64_MAX : INT64_MIN;
	return e;
}

int keel_kv_store_apply(struct keel_kv_store *s, const struct keel_kv_req *req,
			struct keel_kv_event **ret_event, struct keel_kv_error *ret_error)
{
	if (!s || !req || !ret_event || !ret_error || (!req->path && req->path_len) ||
	    (!req->value && req->value_len) || (!req->prev_value && req->prev_value_len) ||
	    req->prev_exist < KEEL_KV_PREV_EXIST_UNSET || req->prev_exist > 1)
		return -EINVAL;
	if (s->notifying)
		return -EBUSY;
	*ret_event = NULL;
	switch (req->method) {
	case KEEL_KV_SYNC:
		return kv_expire(s, req->time);
	case KEEL_KV_QGET:
		return kv_op_get(s, req->path ? req->path : "", req->path_len, req->recursive,
				 req->sorted, req->time, ret_event, ret_error);
	case KEEL_KV_PUT:
	case KEEL_KV_POST:
	case KEEL_KV_DELETE:
		break;
	default:
		return -EINVAL;
	}
	struct keel_buf p = KEEL_BUF_INIT;
	int r = kv_clean_path(req->path ? req->path : "", req->path_len, &p);
	if (r < 0)
		return r;
	int64_t expire = kv_expiration(req);
	bool conditional = req->prev_index > 0 || req->prev_value_len > 0;
	struct kv_create_args a = {
		.p = p.data,
		.n = p.len,
		.dir = req->dir,
		.value = req->value ? req->value : "",
		.vlen = req->value_len,
		.expire = expire,
		.now = req->time,
	};
	if (req->method == KEEL_KV_POST) {
		r = kv_create_op(s, &a, true, ret_event, ret_error);
	} else if (req->method == KEEL_KV_DELETE) {
		if (conditional)
			r = kv_cad(s, p.data, p.len, req, ret_event, ret_error);
		else
			r = kv_delete(s, p.data, p.len, req->dir, req->recursive, req->time,
				      ret_event, ret_error);
	} else if (req->prev_exist == 1 && !conditional) {
		r = kv_update(s, p.data, p.len, a.value, a.vlen, expire, req->refresh, req->time,
			      ret_event, ret_error);
	} else if (req->prev_exist == 1 || (req->prev_exist != 0 && conditional)) {
		r = kv_cas(s, p.data, p.len, req, expire, ret_event, ret_error);
	} else if (req->prev_exist == 0) {
		r = kv_create_op(s, &a, false, ret_event, ret_error);
	} else {
		r = kv_set(s, &a, req->refresh, ret_event, ret_error);
	}
	keel_buf_free(&p);
	return r;
}
