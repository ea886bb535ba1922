/* What server.c (life cycle, replication, membership) and server_keys.c (the /v2/keys API)
 * share. */
#pragma once

#include <jansson.h>

#include "http/http.h"
#include "kv/server.h"
#include "kv/store.h"
#include "raftio/node.h"

#define KV_WAIT_BUCKETS 1024
#define KV_REQUEST_TIMEOUT_MS 5000  /* etcd's v2 request timeout */
#define KV_ENTRY_KV 1               /* raft entry: [kind][u64 request id][store command] */
#define KV_ENTRY_AUTH 2             /* raft entry: [kind][u64 request id][auth command] (auth.h) */

/* A client request waiting for its entry to be applied on this member. */
struct kv_wait {
	uint64_t id;
	struct kv_wait *next;
	struct keel_kv_server *s;
	struct keel_http_req *req; /* NULL once the client went away */
	uint64_t deadline_ms;
	bool no_value;
	bool head;
	bool auth;   /* a /v2/auth request: etcd answers its failures with a 500 HTTPError */
};

/* A held watch (GET ?wait=true): on the server's list so the timer can end idle ones. */
struct kv_watch {
	struct keel_kv_watcher w;
	struct keel_kv_server *s;
	struct keel_http_req *req;
	struct kv_watch *next, *prev;
	uint64_t deadline_ms;
	bool stream;
};

struct kv_qread;

struct keel_kv_server {
	uv_loop_t *loop;
	struct keel_kv_server_config cfg;
	struct keel_kv_store *store;
	struct keel_node *node;
	struct keel_http_server *http;
	char cluster_id_hex[17];
	uint64_t next_req_id;
	struct kv_wait *waits[KV_WAIT_BUCKETS];
	size_t n_waits;
	uv_timer_t timer;      /* every 100 ms: timeouts, SYNC, publishing */
	uint64_t last_sync_ms;
	bool published, version_set;
	uint64_t publish_retry_ms, version_retry_ms; /* no second proposal before these */
	bool stopping;
	struct kv_watch *watches;         /* held watches */
	struct kv_qread *qreads;          /* quorum reads waiting for their barrier */
	uint64_t leader_changes;          /* for /metrics */
	uint64_t last_leader;
	void (*stop_cb)(void *);
	void *stop_ud;
	unsigned closing;
	unsigned tick_ms, election_ms;
	/* Membership (server_members.c). */
	struct member_op *member_ops;     /* requests waiting for their change to apply */
	uint64_t *removed;                /* members removed for good (/0/removed_members) */
	size_t n_removed, cap_removed;
	bool removed_self;                /* this member was removed: stop at removed_stop_ms */
	bool removed_reported;
	char removed_how[96];
	uint64_t removed_stop_ms;
	struct kv_auth *auth;             /* server_auth.c */
	/* A member that joined: the members as its peers listed them (server_join.c); the
	 * strings point into joined_root. cfg.members points here then. */
	struct keel_kv_member_cfg joined[KEEL_KV_MAX_MEMBERS];
	json_t *joined_root;
};

/* server.c */
uint64_t kv_next_request_id(struct keel_kv_server *s);
int kv_propose(struct keel_kv_server *s, uint64_t id, const struct keel_kv_req *req);
void kv_wait_add(struct keel_kv_server *s, struct kv_wait *w);
struct kv_wait *kv_wait_take(struct keel_kv_server *s, uint64_t id);
void kv_common_headers(struct keel_kv_server *s, struct keel_http_req *req);
void kv_respond_event(struct keel_kv_server *s, struct keel_http_req *req, struct keel_kv_event *ev,
		      bool no_value, bool head);
void kv_respond_error(struct keel_kv_server *s, struct keel_http_req *req, const struct keel_kv_error *e,
		      bool head);
void kv_respond_code(struct keel_kv_server *s, struct keel_http_req *req, int code, const char *cause,
		     uint64_t index, bool head);

bool kv_member_exists(struct keel_kv_server *s, uint64_t id);
uint64_t kv_member_id_for(char *const *sorted_urls, size_t n, const char *token);
void kv_removed_self(struct keel_kv_server *s, uint64_t delay_ms, const char *how);
int kv_propose_member_urls(struct keel_kv_server *s, uint64_t req_id, uint64_t member,
			   const char *raft_attributes_json);
bool kv_peer_url_taken(struct keel_kv_server *s, const char *url, uint64_t except_member);

/* {"members":[...]} as GET /v2/members answers. */
int kv_members_json(struct keel_kv_server *s, struct keel_buf *out);

/* server_join.c */
/* Before the node starts: this member's ids from <data-dir>/keel-member.json, or, for a member
 * joining with an empty data directory, from its peers (blocking, bounded). Sets cfg.member_id,
 * cfg.cluster_id and cfg.members; leaves them alone for initial members. */
int kv_identity_setup(struct keel_kv_server *s, struct keel_err *err);
/* The peer transport's QUERY: {"clusterID":"...","members":[...]} */
int kv_answer_query(void *ud, struct keel_buf *out);

/* server_keys.c */
int kv_handle_keys(struct keel_http_req *req, void *ud);
void kv_expire_watches(struct keel_kv_server *s, bool all);
void kv_expire_qreads(struct keel_kv_server *s);

/* server_auth.c: etcd's v2 auth API and its checks (docs/kv.md, "Authentication") */
enum { KV_AUTH_ALLOW, KV_AUTH_DENY, KV_AUTH_WAIT };
int kv_auth_new(struct keel_kv_server *s);
void kv_auth_release(struct keel_kv_server *s);  /* the server is going: jobs in flight end alone */
int kv_handle_auth(struct keel_http_req *req, void *ud);
/* The members API's writes need root once auth is on; then these call the handlers below. */
int kv_auth_members_write(struct keel_http_req *req, void *ud);
/* etcd's hasKeyPrefixAccess for a parsed keys request (key: the URL path after /v2/keys).
 * KV_AUTH_WAIT: a password check runs on the thread pool and the request is held; the handler
 * runs again once it is done (keel_http_redispatch), so return KEEL_HTTP_HELD. */
int kv_auth_keys_access(struct keel_kv_server *s, struct keel_http_req *req, const char *key, size_t key_len,
			bool recursive);
void kv_auth_apply_entry(struct keel_kv_server *s, const struct keel_raft_entry *e);
/* The /2 tree may have changed (an applied entry or a snapshot that could touch it): forget the
 * remembered state of /2/enabled. */
void kv_auth_tree_changed(struct keel_kv_server *s);

/* server_members.c */
struct keel_buf;
int kv_handle_members_add(struct keel_http_req *req, void *ud);
int kv_handle_member(struct keel_http_req *req, void *ud);
/* A membership change's context: a request id, then the member's raftAttributes JSON (may be
 * empty). decode also understands contexts without a request id (*req_id = 0). */
int kv_conf_context_encode(struct keel_buf *b, uint64_t req_id, const char *json, size_t len);
void kv_conf_context_decode(const void *ctx, size_t len, uint64_t *req_id, const char **json, size_t *json_len);
/* The change with this request id was applied here: answer whoever waits for it. */
void kv_member_op_applied(struct keel_kv_server *s, uint64_t req_id);
/* Answer requests past their deadline (all: every one, the server stops) with etcd's 500. */
void kv_member_ops_expire(struct keel_kv_server *s, bool all);
/* This member learned it was removed: requests that removed it succeeded. */
void kv_member_ops_removed_self(struct keel_kv_server *s);
bool kv_is_removed(const struct keel_kv_server *s, uint64_t id);
void kv_removed_add(struct keel_kv_server *s, uint64_t id);
void kv_removed_reload(struct keel_kv_server *s);
