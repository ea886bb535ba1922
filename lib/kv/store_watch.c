/* Events, the event history and the watch hub: etcd's event.go, event_history.go and
 * watcher_hub.go. Watchers are caller-allocated and hang off a per-path list in an
 * open-addressing table, so a hub with thousands of them costs a few pointers each. */
#include "kv/store-internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "base/mem.h"

/* ---- events --------------------------------------------------------------------------------- */

struct keel_kv_event *kv_event_alloc(const struct keel_kv_store *s, enum keel_kv_action action,
				     const char *key, size_t key_len, const char *value,
				     size_t value_len, bool has_value, const char *prev_value,
				     size_t prev_len, bool has_prev_value)
{
	if (key_len > SIZE_MAX / 4 || value_len > SIZE_MAX / 4 || prev_len > SIZE_MAX / 4)
		return NULL;
	size_t extra = key_len + 1 + (has_value ? value_len + 1 : 0) +
		       (has_prev_value ? prev_len + 1 : 0);
	struct keel_kv_event *ev = keel_malloc(sizeof(*ev) + extra);
	if (!ev)
		return NULL;
	memset(ev, 0, sizeof(*ev));
	char *at = (char *)(ev + 1);
	ev->refs = 1;
	ev->action = action;
	memcpy(at, key, key_len);
	at[key_len] = '\0';
	ev->node.key = ev->prev.key = at;
	ev->node.key_len = ev->prev.key_len = key_len;
	ev->strip = (uint32_t)kv_strip_len(s, key, key_len);
	at += key_len + 1;
	if (has_value) {
		if (value_len)
			memcpy(at, value, value_len);
		at[value_len] = '\0';
		ev->node.value = at;
		ev->node.value_len = value_len;
		at += value_len + 1;
	}
	if (has_prev_value) {
		if (prev_len)
			memcpy(at, prev_value, prev_len);
		at[prev_len] = '\0';
		ev->prev.value = at;
		ev->prev.value_len = prev_len;
	}
	return ev;
}

struct keel_kv_event *kv_event_new(const struct keel_kv_store *s, enum keel_kv_action action,
				   const char *key, size_t key_len, const char *value,
				   size_t value_len, bool has_value, const struct kv_node *prev,
				   int64_t now)
{
	bool prev_file = prev && !prev->is_dir;
	struct keel_kv_event *ev =
		kv_event_alloc(s, action, key, key_len, value, value_len, has_value,
			       prev_file ? kv_value(prev) : NULL, prev_file ? prev->u.value_len : 0,
			       prev_file);
	if (!ev || !prev)
		return ev;
	/* etcd's Repr(false, false): what the node was just before the operation. */
	ev->has_prev = true;
	ev->prev.dir = prev->is_dir;
	ev->prev.expiration = prev->expire;
	ev->prev.ttl = prev->expire ? kv_ttl(prev->expire, now) : 0;
	ev->prev.modified_index = prev->modified;
	ev->prev.created_index = prev->created;
	return ev;
}

struct keel_kv_event *keel_kv_event_ref(struct keel_kv_event *ev)
{
	if (ev)
		ev->refs++;
	return ev;
}

void keel_kv_event_unref(struct keel_kv_event *ev)
{
	if (!ev || --ev->refs)
		return;
	keel_free(ev->get_json);
	keel_free(ev);
}

bool keel_kv_event_is_created(const struct keel_kv_event *ev)
{
	return ev->action == KEEL_KV_ACTION_CREATE ||
	       (ev->action == KEEL_KV_ACTION_SET && !ev->has_prev);
}

/* ---- history -------------------------------------------------------------------------------- */

static struct keel_kv_event *kv_hist_at(const struct keel_kv_store *s, uint32_t i)
{
	return s->hist[(s->hist_front + i) % KEEL_KV_HISTORY_SIZE];
}

void kv_hist_add(struct keel_kv_store *s, struct keel_kv_event *ev)
{
	keel_kv_event_ref(ev);
	if (s->hist_size == KEEL_KV_HISTORY_SIZE) {
		keel_kv_event_unref(s->hist[s->hist_front]);
		s->hist[s->hist_front] = ev;
		s->hist_front = (s->hist_front + 1) % KEEL_KV_HISTORY_SIZE;
	} else {
		s->hist[(s->hist_front + s->hist_size) % KEEL_KV_HISTORY_SIZE] = ev;
		s->hist_size++;
	}
}

void kv_hist_clear(struct keel_kv_store *s)
{
	for (uint32_t i = 0; i < s->hist_size; i++)
		keel_kv_event_unref(kv_hist_at(s, i));
	memset(s->hist, 0, sizeof(s->hist));
	s->hist_front = s->hist_size = 0;
}

static bool kv_has_prefix(const char *s, size_t n, const char *p, size_t pn)
{
	return n >= pn && memcmp(s, p, pn) == 0;
}

/* etcd's EventHistory.scan: the first event from `index` on that concerns key. Sets *cleared
 * and *start when index is older than the history. */
static struct keel_kv_event *kv_hist_scan(const struct keel_kv_store *s, const char *key,
					  size_t klen, bool recursive, uint64_t index,
					  bool *cleared, uint64_t *start)
{
	uint64_t first = s->hist_size ? keel_kv_event_index(kv_hist_at(s, 0)) : 0;
	uint64_t last = s->hist_size ? keel_kv_event_index(kv_hist_at(s, s->hist_size - 1)) : 0;
	*cleared = false;
	*start = first;
	if (index < first) {
		*cleared = true;
		return NULL;
	}
	if (index > last)
		return NULL;
	/* Indexes are consecutive in etcd, where it steps straight to index - first; a binary
	 * search finds the same event and survives gaps (keel_kv_store_set_index). */
	uint32_t lo = 0, hi = s->hist_size;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (keel_kv_event_index(kv_hist_at(s, mid)) < index)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (uint32_t i = lo; i < s->hist_size; i++) {
		struct keel_kv_event *e = kv_hist_at(s, i);
		if (e->refresh)
			continue;
		const char *ek = e->node.key;
		size_t en = e->node.key_len;
		bool ok = en == klen && memcmp(ek, key, klen) == 0;
		if (recursive) {
			/* The key with a trailing slash: plain prefix test on the event's key. */
			if (kv_has_prefix(ek, en, key, klen) &&
			    (key[klen - 1] == '/' || (en > klen && ek[klen] == '/')))
				ok = true;
		}
		/* A directory that went away concerns everything below it; etcd tests the watched
		 * key's bytes against the directory's, so "/foo" gone matches "/foobar" too. */
		if ((e->action == KEEL_KV_ACTION_DELETE || e->action == KEEL_KV_ACTION_EXPIRE) &&
		    e->has_prev && e->prev.dir && kv_has_prefix(key, klen, e->prev.key, e->prev.key_len))
			ok = true;
		if (ok)
			return e;
	}
	return NULL;
}

/* ---- the watched-path table ----------------------------------------------------------------- */

static struct keel__kv_wpath *kv_wp_find(const struct keel_kv_store *s, const char *path,
					 size_t len, uint64_t h)
{
	if (!s->wtab_cap)
		return NULL;
	uint32_t mask = s->wtab_cap - 1;
	for (uint32_t i = (uint32_t)h & mask;; i = (i + 1) & mask) {
		struct keel__kv_wpath *wp = s->wtab[i];
		if (!wp)
			return NULL;
		if (wp->hash == h && wp->len == len && memcmp(wp->path, path, len) == 0)
			return wp;
	}
}

static void kv_wp_put(struct keel__kv_wpath **tab, uint32_t cap, struct keel__kv_wpath *wp)
{
	uint32_t mask = cap - 1;
	uint32_t i = (uint32_t)wp->hash & mask;
	while (tab[i])
		i = (i + 1) & mask;
	tab[i] = wp;
}

static int kv_wp_reserve(struct keel_kv_store *s)
{
	uint64_t need = (uint64_t)s->wtab_count + 1;
	if (need * 4 <= (uint64_t)s->wtab_cap * 3)
		return 0;
	uint64_t cap = s->wtab_cap ? (uint64_t)s->wtab_cap * 2 : 16;
	if (cap > (1ull << 31))
		return -ENOMEM;
	struct keel__kv_wpath **tab = keel_calloc(cap, sizeof(*tab));
	if (!tab)
		return -ENOMEM;
	for (uint32_t i = 0; i < s->wtab_cap; i++)
		if (s->wtab[i])
			kv_wp_put(tab, (uint32_t)cap, s->wtab[i]);
	keel_free(s->wtab);
	s->mem += (size_t)(cap - s->wtab_cap) * sizeof(*tab);
	s->wtab = tab;
	s->wtab_cap = (uint32_t)cap;
	return 0;
}

static void kv_wp_remove(struct keel_kv_store *s, struct keel__kv_wpath *wp)
{
	uint32_t mask = s->wtab_cap - 1;
	uint32_t i = (uint32_t)wp->hash & mask;
	while (s->wtab[i] != wp)
		i = (i + 1) & mask;
	s->wtab[i] = NULL;
	for (uint32_t j = (i + 1) & mask; s->wtab[j]; j = (j + 1) & mask) {
		uint32_t k = (uint32_t)s->wtab[j]->hash & mask;
		bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
		if (stays)
			continue;
		s->wtab[i] = s->wtab[j];
		s->wtab[j] = NULL;
		i = j;
	}
	s->wtab_count--;
	s->mem -= sizeof(*wp) + wp->len + 1;
	keel_free(wp);
}

static void kv_watcher_unlink(struct keel_kv_store *s, struct keel_kv_watcher *w)
{
	struct keel__kv_wpath *wp = w->wp;
	if (s->iter_next == w)
		s->iter_next = w->next;
	if (w->prev)
		w->prev->next = w->next;
	else
		wp->head = w->next;
	if (w->next)
		w->next->prev = w->prev;
	else
		wp->tail = w->prev;
	w->next = w->prev = NULL;
	w->wp = NULL;
	w->active = false;
	s->watchers--;
	/* The list being notified is freed by the notifier once it is done with it. */
	if (!wp->head && wp != s->iter_wp)
		kv_wp_remove(s, wp);
}

void kv_hub_detach_all(struct keel_kv_store *s)
{
	for (uint32_t i = 0; i < s->wtab_cap; i++) {
		struct keel__kv_wpath *wp = s->wtab[i];
		if (!wp)
			continue;
		for (struct keel_kv_watcher *w = wp->head, *next; w; w = next) {
			next = w->next;
			w->next = w->prev = NULL;
			w->wp = NULL;
			w->active = false;
		}
		keel_free(wp);
		s->wtab[i] = NULL;
	}
	s->wtab_count = 0;
	s->watchers = 0;
}

/* ---- notification --------------------------------------------------------------------------- */

/* etcd's isHidden(watchPath, keyPath) for a watch path that is a prefix of the key: whether
 * any element of the key below the watched path starts with '_'. */
static bool kv_hidden_below(size_t wlen, const char *key, size_t klen)
{
	if (wlen > klen)
		return false;
	const char *rest = key + wlen;
	size_t n = klen - wlen;
	for (size_t i = 0; i < n; i++)
		if (rest[i] == '_' && (i == 0 || rest[i - 1] == '/'))
			return true;
	return false;
}

void kv_hub_notify_path(struct keel_kv_store *s, struct keel_kv_event *ev, const char *path,
			size_t len, bool deleted)
{
	struct keel__kv_wpath *wp = kv_wp_find(s, path, len, kv_hash(s->seed, path, len));
	if (!wp)
		return;
	bool original = ev->node.key_len == len && memcmp(ev->node.key, path, len) == 0;
	if (!original && kv_hidden_below(len, ev->node.key, ev->node.key_len))
		return;
	uint64_t index = keel_kv_event_index(ev);
	s->notifying = true;
	s->iter_wp = wp;
	for (struct keel_kv_watcher *w = wp->head; w; w = s->iter_next) {
		s->iter_next = w->next;
		if (!(w->recursive || original || deleted) || index < w->since_index)
			continue;
		if (!w->stream)
			kv_watcher_unlink(s, w);
		w->cb(w, ev);
	}
	s->iter_next = NULL;
	s->iter_wp = NULL;
	s->notifying = false;
	if (!wp->head)
		kv_wp_remove(s, wp);
}

void kv_hub_notify(struct keel_kv_store *s, struct keel_kv_event *ev)
{
	kv_hist_add(s, ev);
	if (!s->wtab_count)
		return;
	/* "/", then "/a", "/a/b", ... up to the key itself. */
	const char *key = ev->node.key;
	size_t n = ev->node.key_len;
	kv_hub_notify_path(s, ev, "/", 1, false);
	for (size_t i = 1; i <= n; i++)
		if (i == n || key[i] == '/')
			kv_hub_notify_path(s, ev, key, i, false);
}

/* ---- the watch API -------------------------------------------------------------------------- */

int keel_kv_store_watch(struct keel_kv_store *s, struct keel_kv_watcher *w, const char *key,
			size_t key_len, bool recursive, bool stream, uint64_t wait_index,
			keel_kv_watch_fn *cb, struct keel_kv_event **ret_event,
			struct keel_kv_error *ret_error)
{
	if (!s || !w || !cb || !ret_event || !ret_error || (!key && key_len))
		return -EINVAL;
	if (s->notifying)
		return -EBUSY;
	if (w->active)
		return -EINVAL;
	struct keel_buf p = KEEL_BUF_INIT;
	int r = kv_clean_path(key ? key : "", key_len, &p);
	if (r < 0)
		goto out;
	uint64_t since = wait_index ? wait_index : s->index + 1;
	bool cleared;
	uint64_t start;
	struct keel_kv_event *e = kv_hist_scan(s, p.data, p.len, recursive, since, &cleared, &start);
	if (cleared) {
		char cause[96];
		int n = snprintf(cause, sizeof(cause),
				 "the requested history has been cleared [%" PRIu64 "/%" PRIu64 "]",
				 start, since);
		r = kv_fail(s, ret_error, KEEL_KV_ECODE_EVENT_INDEX_CLEARED, cause, (size_t)n,
			    s->index);
		goto out;
	}
	w->start_index = s->index;
	if (e) {
		*ret_event = keel_kv_event_ref(e);
		r = KEEL_KV_FOUND;
		goto out;
	}
	uint64_t h = kv_hash(s->seed, p.data, p.len);
	struct keel__kv_wpath *wp = kv_wp_find(s, p.data, p.len, h);
	if (!wp) {
		r = -ENOMEM;
		if (kv_wp_reserve(s) < 0)
			goto out;
		wp = keel_malloc(sizeof(*wp) + p.len + 1);
		if (!wp)
			goto out;
		wp->hash = h;
		wp->head = wp->tail = NULL;
		wp->len = p.len;
		memcpy(wp->path, p.data, p.len + 1);
		kv_wp_put(s->wtab, s->wtab_cap, wp);
		s->wtab_count++;
		s->mem += sizeof(*wp) + p.len + 1;
	}
	w->wp = wp;
	w->cb = cb;
	w->since_index = since;
	w->recursive = recursive;
	w->stream = stream;
	w->active = true;
	w->next = NULL;
	w->prev = wp->tail;
	if (wp->tail)
		wp->tail->next = w;
	else
		wp->head = w;
	wp->tail = w;
	s->watchers++;
	r = 0;
out:
	keel_buf_free(&p);
	return r;
}

uint64_t keel_kv_watcher_start_index(const struct keel_kv_watcher *w)
{
	return w->start_index;
}

bool keel_kv_watcher_active(const struct keel_kv_watcher *w)
{
	return w->active;
}

void keel_kv_watch_cancel(struct keel_kv_store *s, struct keel_kv_watcher *w)
{
	if (!s || !w || !w->active)
		return;
	kv_watcher_unlink(s, w);
}
