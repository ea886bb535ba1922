/* The etcd v2 key store (etcd 3.4's v2store) as a deterministic in-memory state machine: no I/O, no
 * clock reads, no threads. keel-kv replicates requests through Raft and applies them here in log
 * order on every member; each request carries the wall time its leader stamped on it, so TTL
 * expiry is the same everywhere. Reads and watches run against the local store. Internals, the
 * command and snapshot formats and every etcd behaviour matched: docs/kv-store.md.
 *
 * Conventions: int returns are 0 on success, KEEL_KV_FAILED (1) when etcd answers with an error
 * (filled into a caller-owned struct keel_kv_error: the request was valid, its outcome is that
 * error, and the store's counters record it as etcd does), or -errno (-ENOMEM, -EINVAL, -EBUSY)
 * when the call itself failed: then nothing in the store changed, counters included, so the
 * caller may retry the same request. Paths and values are byte strings with a length (they may
 * hold NUL bytes). Not thread-safe. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/buf.h"
#include "base/errors.h"

struct keel_kv_store;

/* Returned when etcd's answer is an error (see struct keel_kv_error). */
#define KEEL_KV_FAILED 1
/* keel_kv_store_watch(): the event was already in the history. */
#define KEEL_KV_FOUND 2

/* etcd keeps this many events for watchers with a waitIndex (newWatchHub(1000)). */
#define KEEL_KV_HISTORY_SIZE 1000

/* ---- etcd's error codes (error/error.go) ------------------------------------------------- */

enum {
	KEEL_KV_ECODE_KEY_NOT_FOUND = 100,
	KEEL_KV_ECODE_TEST_FAILED = 101,
	KEEL_KV_ECODE_NOT_FILE = 102,
	KEEL_KV_ECODE_NOT_DIR = 104,
	KEEL_KV_ECODE_NODE_EXIST = 105,
	KEEL_KV_ECODE_ROOT_RONLY = 107,
	KEEL_KV_ECODE_DIR_NOT_EMPTY = 108,
	KEEL_KV_ECODE_UNAUTHORIZED = 110,
	KEEL_KV_ECODE_PREV_VALUE_REQUIRED = 201,
	KEEL_KV_ECODE_TTL_NAN = 202,
	KEEL_KV_ECODE_INDEX_NAN = 203,
	KEEL_KV_ECODE_INVALID_FIELD = 209,
	KEEL_KV_ECODE_INVALID_FORM = 210,
	KEEL_KV_ECODE_REFRESH_VALUE = 211,
	KEEL_KV_ECODE_REFRESH_TTL_REQUIRED = 212,
	KEEL_KV_ECODE_RAFT_INTERNAL = 300,
	KEEL_KV_ECODE_LEADER_ELECT = 301,
	KEEL_KV_ECODE_WATCHER_CLEARED = 400,
	KEEL_KV_ECODE_EVENT_INDEX_CLEARED = 401,
};

/* etcd's message for a code ("Key not found"); "" for a code etcd does not know (a Go map miss). */
const char *keel_kv_error_message(int code);
/* etcd's StatusCode(): 100→404, 101/105→412, 102/108→403, 110→401, 300/301→500, else 400. */
int keel_kv_error_status(int code);

/* One etcd error: {"errorCode","message","cause","index"}. The cause is owned (NUL-terminated,
 * NULL when empty). Zero-initialise before first use; keel_kv_error_clear() frees the cause. */
struct keel_kv_error {
	int code;
	uint64_t index;
	char *cause;
	size_t cause_len;
};

/* Fill e (its old cause freed) with code, a copy of cause (may be NULL) and index: for the HTTP
 * layer's own errors (form errors carry index 0, as etcd's NewRequestError). 0 or -ENOMEM. */
int keel_kv_error_set(struct keel_kv_error *e, int code, const char *cause, size_t cause_len,
		      uint64_t index);
void keel_kv_error_clear(struct keel_kv_error *e); /* accepts NULL */

/* Append the body etcd writes for e: `{"errorCode":100,"message":"Key not found","cause":"/foo",
 * "index":7}` and a newline (Go's json.Encoder). 0 or -ENOMEM. */
int keel_kv_error_json(const struct keel_kv_error *e, struct keel_buf *out);

/* ---- events ------------------------------------------------------------------------------ */

enum keel_kv_action {
	KEEL_KV_ACTION_GET,
	KEEL_KV_ACTION_SET,
	KEEL_KV_ACTION_CREATE,
	KEEL_KV_ACTION_UPDATE,
	KEEL_KV_ACTION_DELETE,
	KEEL_KV_ACTION_CAS,
	KEEL_KV_ACTION_CAD,
	KEEL_KV_ACTION_EXPIRE,
};

/* "get", "set", "create", "update", "delete", "compareAndSwap", "compareAndDelete", "expire". */
const char *keel_kv_action_name(enum keel_kv_action a);

/* A node as an event shows it (etcd's NodeExtern without children). */
struct keel_kv_enode {
	const char *key;       /* full store path, NUL-terminated */
	size_t key_len;
	const char *value;     /* NULL: no "value" member (directories, delete and expire events) */
	size_t value_len;
	int64_t expiration;    /* Unix ns; 0: permanent */
	int64_t ttl;           /* seconds left when the event was made, rounded as etcd does */
	uint64_t modified_index;
	uint64_t created_index;
	bool dir;
};

/* What an operation did. Reference-counted and immutable once made: the history, watchers and
 * the HTTP layer share them. Fields are read-only. */
struct keel_kv_event {
	enum keel_kv_action action;
	bool refresh;          /* a TTL refresh: in the history, but never sent to watchers */
	bool has_prev;
	uint64_t etcd_index;   /* X-Etcd-Index of the response to the request that made it */
	struct keel_kv_enode node;
	struct keel_kv_enode prev;
	/* private */
	unsigned refs;
	uint32_t strip;        /* key bytes the store's key_prefix option hides when rendering */
	char *get_json;        /* get: the rendered node object (children included) */
	size_t get_json_len;
};

struct keel_kv_event *keel_kv_event_ref(struct keel_kv_event *ev);
void keel_kv_event_unref(struct keel_kv_event *ev); /* accepts NULL */

/* etcd's Event.Index(): the node's modifiedIndex. */
static inline uint64_t keel_kv_event_index(const struct keel_kv_event *ev)
{
	return ev->node.modified_index;
}

/* etcd's IsCreated(): answer 201 instead of 200. True for create, and for set with no prevNode. */
bool keel_kv_event_is_created(const struct keel_kv_event *ev);

enum {
	/* noValueOnSuccess=true: set, create, update and compareAndSwap show only the action. */
	KEEL_KV_JSON_NO_VALUE = 1 << 0,
};

/* Append the body etcd writes for ev: {"action":..,"node":{..},"prevNode":{..}} and a newline,
 * with Go's escaping, etcd's omitempty rules, "expiration" in RFC3339Nano and the key_prefix
 * option stripped from keys. 0, -ENOMEM, or -ERANGE for an expiration Go cannot format (a year
 * past 9999). */
int keel_kv_event_json(const struct keel_kv_event *ev, unsigned flags, struct keel_buf *out);

/* ---- the store --------------------------------------------------------------------------- */

struct keel_kv_store_opts {
	/* Top-level directories made at index 0 and read-only like the root (etcd's store.New
	 * namespaces, "/0" and "/1" in etcd 3.4). NULL-terminated; each one component ("/1"). */
	const char *const *namespaces;
	/* A prefix taken off keys and error causes whenever they are rendered (etcd's
	 * StoreKeysPrefix "/1", trimmed with strings.TrimPrefix). NULL: none. */
	const char *key_prefix;
	/* Seed for the per-directory and watcher hash tables (say, from getrandom()), so clients
	 * cannot pick colliding names. It changes no replicated state: only the order of unsorted
	 * listings. */
	uint64_t hash_seed;
};

/* A new empty store at index 0; opts may be NULL. -EINVAL for a bad namespace, -ENOMEM. */
int keel_kv_store_new(const struct keel_kv_store_opts *opts, struct keel_kv_store **ret);
/* Frees the tree and history. Active watchers are detached without being called. Accepts NULL. */
void keel_kv_store_free(struct keel_kv_store *s);

/* etcd's CurrentIndex: raised by one by every successful change. */
uint64_t keel_kv_store_index(const struct keel_kv_store *s);
/* For recovery code that knows better (keel-kv's own bookkeeping); does not touch the nodes. */
void keel_kv_store_set_index(struct keel_kv_store *s, uint64_t index);

/* etcd's HasTTLKeys(): whether a SYNC can have anything to do. */
bool keel_kv_store_has_ttl_keys(const struct keel_kv_store *s);
/* The earliest expiration in the store (Unix ns), or 0 when nothing expires. */
int64_t keel_kv_store_next_expiration(const struct keel_kv_store *s);

/* Local read (GET without quorum): etcd's store.Get(path, recursive, sorted), with remaining TTLs
 * computed at `now` (Unix ns). 0 with *ret_event (an action "get" event whose node, children
 * included, is rendered already), KEEL_KV_FAILED (100 Key not found, 104 Not a directory),
 * -ENOMEM. Counts getsSuccess/getsFail. */
int keel_kv_store_get(struct keel_kv_store *s, const char *path, size_t path_len, bool recursive,
		      bool sorted, int64_t now, struct keel_kv_event **ret_event,
		      struct keel_kv_error *ret_error);

/* A look at one node without making an event: for keel-kv's own bookkeeping nodes (the v2
 * auth tree under /2, read on every request once auth is on). The path is cleaned as Get's is.
 * With `count` it counts as a Get does (getsSuccess/getsFail), as etcd's own GETs of these
 * nodes count. 0 with *ret filled (the value stays valid until the next change to the store),
 * KEEL_KV_FAILED (no such node, or a key on the way: *ret untouched), -ENOMEM. */
struct keel_kv_peek {
	const char *value;      /* NULL for a directory */
	size_t value_len;
	uint64_t created_index, modified_index;
	bool dir;
};
int keel_kv_store_peek(struct keel_kv_store *s, const char *path, size_t path_len, bool count,
		       struct keel_kv_peek *ret);
/* Count a Get as a counted peek would have (getsSuccess when found, else getsFail), for a caller
 * that remembers what an earlier peek found and has not looked again. */
void keel_kv_store_count_get(struct keel_kv_store *s, bool found);

/* ---- commands: what goes through Raft ------------------------------------------------------ */

enum keel_kv_method {
	KEEL_KV_PUT = 1,    /* set, create (prevExist=false), update (prevExist=true), CAS */
	KEEL_KV_POST = 2,   /* create an in-order key under path */
	KEEL_KV_DELETE = 3, /* delete, or compareAndDelete with prevValue/prevIndex */
	KEEL_KV_QGET = 4,   /* quorum GET */
	KEEL_KV_SYNC = 5,   /* expire everything due at `time` */
};

enum { KEEL_KV_PREV_EXIST_UNSET = -1 };

/* One v2 request as etcd's etcdserverpb.Request carries it. Strings are not owned. An empty
 * prev_value and a zero prev_index mean "not given", as in etcd. */
struct keel_kv_req {
	enum keel_kv_method method;
	const char *path;
	size_t path_len;
	const char *value;
	size_t value_len;
	const char *prev_value;
	size_t prev_value_len;
	uint64_t prev_index;
	uint64_t ttl;          /* seconds, when has_ttl (ttl=0 expires at once, as in etcd) */
	int64_t time;          /* the leader's wall clock when it proposed this, Unix ns */
	int prev_exist;        /* KEEL_KV_PREV_EXIST_UNSET, 0 or 1 */
	bool has_ttl;          /* false: no TTL, which on an update makes the node permanent */
	bool dir;
	bool recursive;
	bool sorted;
	bool refresh;
};

/* Apply one request, dispatching as etcd's applierV2store does: POST → Create(unique); PUT with
 * prevExist → Update or CAS (true) / Create (false), with prevValue/prevIndex → CAS, else Set;
 * DELETE with prevValue/prevIndex → CompareAndDelete, else Delete; QGET → Get; SYNC →
 * DeleteExpiredKeys(time). TTLs expire at time + ttl. Watchers are called before it returns.
 *
 * 0 with *ret_event (NULL for SYNC); KEEL_KV_FAILED with *ret_error; -ENOMEM (nothing changed:
 * the caller may retry), -EINVAL for a bad request, -EBUSY when called from a watch callback. */
int keel_kv_store_apply(struct keel_kv_store *s, const struct keel_kv_req *req,
			struct keel_kv_event **ret_event, struct keel_kv_error *ret_error);

/* Encode req compactly (docs/kv-store.md) onto out. 0, -EINVAL (bad method), -ENOMEM. */
int keel_kv_cmd_encode(const struct keel_kv_req *req, struct keel_buf *out);
/* Decode one command. The strings in *ret point into data, which must outlive it. Rejects
 * anything but the canonical encoding: 0 or -KEEL_ECORRUPT (*ret untouched then). */
int keel_kv_cmd_decode(const void *data, size_t len, struct keel_kv_req *ret);

/* ---- watches ----------------------------------------------------------------------------- */

struct keel_kv_watcher;

/* Called, from inside the store call that made ev, for each event a watcher matches. One-shot
 * watchers are detached before their call, so the callback may free the watcher's memory. The
 * callback may take a reference to ev and cancel watchers (its own or others); it must not call
 * anything else on the store (apply/get/watch return -EBUSY). */
typedef void keel_kv_watch_fn(struct keel_kv_watcher *w, struct keel_kv_event *ev);

/* Caller-allocated (embed it in the connection): registering one costs no allocation when
 * another watcher already waits on the same path. Contents are private except `data`. */
struct keel_kv_watcher {
	void *data;                          /* the owner's, untouched by the store */
	/* private */
	struct keel_kv_watcher *next, *prev;
	struct keel__kv_wpath *wp;
	keel_kv_watch_fn *cb;
	uint64_t since_index;
	uint64_t start_index;
	bool active, recursive, stream;
};

/* etcd's store.Watch(key, recursive, stream, waitIndex). wait_index 0 means "from the next
 * change". If the history holds a matching event with index >= wait_index: KEEL_KV_FOUND with
 * *ret_event referenced, and w is NOT registered (even with stream set, as etcd). If the index
 * was cleared from the history: KEEL_KV_FAILED, 401 with etcd's cause. Otherwise 0: w waits,
 * and cb is called for every match (stream) or the first one (then w is detached).
 * -ENOMEM, -EBUSY (from a callback), -EINVAL (w already active). */
int keel_kv_store_watch(struct keel_kv_store *s, struct keel_kv_watcher *w, const char *key,
			size_t key_len, bool recursive, bool stream, uint64_t wait_index,
			keel_kv_watch_fn *cb, struct keel_kv_event **ret_event,
			struct keel_kv_error *ret_error);

/* The store index when the watch began: the X-Etcd-Index of a watch response. */
uint64_t keel_kv_watcher_start_index(const struct keel_kv_watcher *w);
bool keel_kv_watcher_active(const struct keel_kv_watcher *w);

/* Detach w (client went away). Safe on a watcher that fired or was never registered, and from
 * inside a callback. */
void keel_kv_watch_cancel(struct keel_kv_store *s, struct keel_kv_watcher *w);

/* ---- snapshots --------------------------------------------------------------------------- */

/* Write len bytes; 0 or a negative error, which stops the save and is returned. */
typedef int keel_kv_write_fn(void *userdata, const void *data, size_t len);
/* Read up to len bytes: the count, 0 at the end, or a negative error. */
typedef ssize_t keel_kv_read_fn(void *userdata, void *buf, size_t len);

/* Stream the whole state (nodes, index, counters and the event history, as etcd's Save does;
 * not the watchers) through write, in 64 KiB pieces. Identical states give identical bytes.
 * 0, the write function's error, -ENOMEM. */
int keel_kv_store_save(const struct keel_kv_store *s, keel_kv_write_fn *write, void *userdata,
		       struct keel_err *err);

/* Replace the state with a saved one read to its end through read. All or nothing: on failure
 * the store is unchanged. Registered watchers stay (as in etcd's Recovery) and see the events
 * that follow. 0, -KEEL_ECORRUPT (bad bytes, checksum), the read function's error, -ENOMEM. */
int keel_kv_store_load(struct keel_kv_store *s, keel_kv_read_fn *read, void *userdata,
		       struct keel_err *err);

/* ---- statistics -------------------------------------------------------------------------- */

/* /v2/stats/store, in etcd's field order. */
struct keel_kv_stats {
	uint64_t gets_success, gets_fail;
	uint64_t sets_success, sets_fail;
	uint64_t delete_success, delete_fail;
	uint64_t update_success, update_fail;
	uint64_t create_success, create_fail;
	uint64_t cas_success, cas_fail;
	uint64_t cad_success, cad_fail;
	uint64_t expire_count;
};

const struct keel_kv_stats *keel_kv_store_stats(const struct keel_kv_store *s);
size_t keel_kv_store_watcher_count(const struct keel_kv_store *s);
/* Append etcd's /v2/stats/store body (json.Marshal: no trailing newline). 0 or -ENOMEM. */
int keel_kv_store_stats_json(const struct keel_kv_store *s, struct keel_buf *out);

/* ---- inspection -------------------------------------------------------------------------- */

size_t keel_kv_store_node_count(const struct keel_kv_store *s); /* root excluded */
/* Bytes the store asked malloc for (nodes, directory tables, the TTL heap, watched paths; not
 * the history's events), for metrics and tests. */
size_t keel_kv_store_mem_bytes(const struct keel_kv_store *s);
/* Walk every structure and check its invariants (tree links, hash tables, TTL heap, history
 * order, counts). 0 or -KEEL_ECORRUPT with what is wrong in err. For tests and fuzzing. */
int keel_kv_store_check(const struct keel_kv_store *s, struct keel_err *err);
