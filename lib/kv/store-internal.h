/* What the pieces of lib/kv share: the node tree, the TTL heap, the watch hub and the helpers that
 * build events and errors. Not for use outside lib/kv. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv/store.h"

/* etcd treats expiration times before 2000-01-01T00:00:00Z given to Create/Set as "permanent"
 * (minExpireTime in store.go). */
#define KV_MIN_EXPIRE_NS (946684800LL * 1000000000LL)

/* A directory or a key. One allocation: the header, then the name, then (keys) the value. Only
 * the name is stored; a path is rebuilt from the parent links when needed. */
struct kv_node {
	struct kv_node *parent;
	uint64_t created;
	uint64_t modified;
	int64_t expire;                 /* Unix ns; 0: permanent */
	union {
		struct {
			struct kv_node **slots; /* open addressing, linear probing */
			uint32_t cap;           /* 0 or a power of two */
			uint32_t count;
		} dir;
		size_t value_len;
	} u;
	/* 1-based position in the TTL heap, 0 when not in it. While a subtree is being freed it
	 * is reused as the cursor over a directory's slots. */
	uint32_t heap_pos;
	uint32_t name_len : 30;
	uint32_t is_dir : 1;
	uint32_t mark : 1;              /* scratch flag (expiry planning) */
	char data[];
};

#define KV_NAME_MAX ((1u << 30) - 1)

static inline const char *kv_name(const struct kv_node *n)
{
	return n->data;
}

static inline const char *kv_value(const struct kv_node *n)
{
	return n->data + n->name_len;
}

/* Every watcher waiting on one path, in registration order. */
struct keel__kv_wpath {
	uint64_t hash;
	struct keel_kv_watcher *head, *tail;
	size_t len;
	char path[];
};

struct keel_kv_store {
	struct kv_node *root;
	uint64_t index;
	uint64_t seed;
	struct keel_kv_stats stats;

	/* TTL min-heap on (expire, created, depth), a total order, so every member pops the
	 * same sequence whatever the heap's layout (one rebuilt from a snapshot differs). */
	struct kv_node **heap;
	uint32_t heap_len, heap_cap;

	/* The event history: a ring of the last KEEL_KV_HISTORY_SIZE events, oldest at front. */
	struct keel_kv_event *hist[KEEL_KV_HISTORY_SIZE];
	uint32_t hist_front, hist_size;

	/* The watch hub: watched paths in an open-addressing table. */
	struct keel__kv_wpath **wtab;
	uint32_t wtab_cap, wtab_count;
	size_t watchers;
	bool notifying;                     /* inside a watch callback */
	struct keel_kv_watcher *iter_next;  /* next watcher of the list being notified */
	struct keel__kv_wpath *iter_wp;

	/* Read-only paths besides "/": the namespaces. */
	char **ro;
	size_t ro_count;
	char *prefix;
	size_t prefix_len;

	/* A path buffer at least as long as the longest path ever made, so removals can name
	 * every node they free without allocating. */
	char *scratch;
	size_t scratch_cap;

	size_t nodes;
	size_t mem;
};

/* ---- store.c: nodes, tables, heap, paths -------------------------------------------------- */

uint64_t kv_hash(uint64_t seed, const char *s, size_t n);

/* Go's path.Clean(path.Join("/", p)) into out (reset first). 0 or -ENOMEM. */
int kv_clean_path(const char *p, size_t n, struct keel_buf *out);

struct kv_node *kv_node_alloc(struct keel_kv_store *s, const char *name, size_t name_len,
			      const char *value, size_t value_len, bool dir);
void kv_node_free(struct keel_kv_store *s, struct kv_node *n);

struct kv_node *kv_child(const struct keel_kv_store *s, const struct kv_node *dir,
			 const char *name, size_t len);
/* Make room for `extra` more children. 0 or -ENOMEM (the table is unchanged then). */
int kv_dir_reserve(struct keel_kv_store *s, struct kv_node *dir, uint32_t extra);
/* Insert a child known to be absent; room must have been reserved. */
void kv_dir_insert(struct keel_kv_store *s, struct kv_node *dir, struct kv_node *child);
/* Put `repl` in the slot that holds `old` (same name). */
void kv_dir_replace(struct keel_kv_store *s, struct kv_node *dir, struct kv_node *old,
		    struct kv_node *repl);
void kv_dir_remove(struct keel_kv_store *s, struct kv_node *dir, struct kv_node *child);

int kv_heap_reserve(struct keel_kv_store *s, uint32_t extra);
void kv_heap_push(struct keel_kv_store *s, struct kv_node *n);
void kv_heap_remove(struct keel_kv_store *s, struct kv_node *n);
void kv_heap_fix(struct keel_kv_store *s, struct kv_node *n);
struct kv_node *kv_heap_pop(struct keel_kv_store *s);

int kv_scratch_reserve(struct keel_kv_store *s, size_t len);
/* Write n's full path into the scratch buffer (reserved long enough); returns its length. */
size_t kv_node_path(struct keel_kv_store *s, const struct kv_node *n);

bool kv_is_readonly(const struct keel_kv_store *s, const char *p, size_t n);

/* Detach top from its parent and free it and everything below; its path is in scratch[0, len)
 * (scratch must hold the longest path). Every node leaves the heap, and when ev is not NULL the
 * watchers on each freed path hear of ev (etcd's Remove callback), children first. */
void kv_destroy_subtree(struct keel_kv_store *s, struct kv_node *top, size_t len,
			struct keel_kv_event *ev);
/* Free a tree that is no store's (no heap, no watchers). */
void kv_free_tree(struct keel_kv_store *s, struct kv_node *top);

/* etcd's expirationAndTTL: ceil((expire - now) / 1s), toward zero for negative values. */
int64_t kv_ttl(int64_t expire, int64_t now);

/* ---- store_watch.c: events, history, hub ---------------------------------------------------- */

/* An event for `key` with copies of a node value and a previous value, each only when has_*;
 * the rest zero. NULL when out of memory. */
struct keel_kv_event *kv_event_alloc(const struct keel_kv_store *s, enum keel_kv_action action,
				     const char *key, size_t key_len, const char *value,
				     size_t value_len, bool has_value, const char *prev_value,
				     size_t prev_len, bool has_prev_value);
/* An event for `key` with a copy of value and prevNode taken from prev (may be NULL), its TTL
 * computed at now. NULL when out of memory. */
struct keel_kv_event *kv_event_new(const struct keel_kv_store *s, enum keel_kv_action action,
				   const char *key, size_t key_len, const char *value,
				   size_t value_len, bool has_value, const struct kv_node *prev,
				   int64_t now);
/* Add ev to the history (taking a reference) and notify watchers along its key. */
void kv_hub_notify(struct keel_kv_store *s, struct keel_kv_event *ev);
/* Add to the history only (a refresh). */
void kv_hist_add(struct keel_kv_store *s, struct keel_kv_event *ev);
/* Notify the watchers on exactly `path` (etcd's notifyWatchers). */
void kv_hub_notify_path(struct keel_kv_store *s, struct keel_kv_event *ev, const char *path,
			size_t len, bool deleted);
void kv_hist_clear(struct keel_kv_store *s);
void kv_hub_detach_all(struct keel_kv_store *s);

/* ---- store_json.c -------------------------------------------------------------------------- */

/* Fill e with code, cause (the key_prefix stripped) and index. KEEL_KV_FAILED or -ENOMEM. */
int kv_fail(const struct keel_kv_store *s, struct keel_kv_error *e, int code, const char *cause,
	    size_t cause_len, uint64_t index);
/* Render n (path in path[0, len)) the way Get shows it, into out. 0 / -ENOMEM / -ERANGE. */
int kv_render_tree(const struct keel_kv_store *s, const struct kv_node *n, const char *path,
		   size_t len, bool recursive, bool sorted, int64_t now, struct keel_buf *out);
size_t kv_strip_len(const struct keel_kv_store *s, const char *key, size_t len);

/* ---- store_ops.c --------------------------------------------------------------------------- */

int kv_op_get(struct keel_kv_store *s, const char *p, size_t n, bool recursive, bool sorted,
	      int64_t now, struct keel_kv_event **ret, struct keel_kv_error *kerr);
