/* keel-kv's server: life cycle, the replicated state machine (store commands and membership in
 * Raft entries), answering requests when their entries apply, and the non-keys endpoints. */
#include "kv/server-internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <sys/random.h>
#include <sys/resource.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/jw.h"
#include "base/mem.h"
#include "base/str.h"
#include "raftio/transport.h"

#define SYNC_INTERVAL_MS 500       /* etcd's leader proposes SYNC this often */
#define CLUSTER_VERSION "3.4.0"
#define SERVER_VERSION "3.4.23"
/* Descriptors kept back from client connections for the WAL, snapshots, peer connections and
 * listeners: etcd's reservedInternalFDNum, with the same use (embed limits each client
 * listener to RLIMIT_NOFILE minus this). */
#define RESERVED_FDS 150

/* Client connections beyond this wait in the listen backlog, so that a flood of them cannot
 * take the descriptors the WAL, snapshots and peers need (which fail silently or fatally). */
static size_t client_conn_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
		return 0;
	if (rl.rlim_cur > 2 * RESERVED_FDS)
		return (size_t)(rl.rlim_cur - RESERVED_FDS);
	return (size_t)(rl.rlim_cur / 2); /* etcd refuses to start here; we keep half back */
}

/* ---- etcd's ids ---- */

static uint64_t sha1_prefix(const void *data, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (!EVP_Digest(data, len, md, &mdlen, EVP_sha1(), NULL) || mdlen < 8)
		abort(); /* SHA-1 over a buffer cannot fail short of a broken libcrypto */
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | md[i];
	return v;
}

uint64_t keel_kv_member_id(const char *const *sorted_urls, size_t n, const char *token)
{
	struct keel_buf b = KEEL_BUF_INIT;
	int r = 0;
	for (size_t i = 0; i < n && !r; i++)
		r = keel_buf_puts(&b, sorted_urls[i]);
	if (!r)
		r = keel_buf_puts(&b, token ? token : "");
	if (r)
		abort(); /* a few hundred bytes: out of memory here leaves nothing to do */
	uint64_t id = sha1_prefix(b.data, b.len);
	keel_buf_free(&b);
	return id;
}

uint64_t kv_member_id_for(char *const *sorted_urls, size_t n, const char *token)
{
	return keel_kv_member_id((const char *const *)sorted_urls, n, token);
}

uint64_t keel_kv_cluster_id(const uint64_t *ids, size_t n)
{
	uint64_t sorted[KEEL_KV_MAX_MEMBERS];
	n = n > KEEL_KV_MAX_MEMBERS ? KEEL_KV_MAX_MEMBERS : n;
	memcpy(sorted, ids, n * sizeof(*ids));
	for (size_t i = 1; i < n; i++) {
		uint64_t v = sorted[i];
		size_t j = i;
		while (j > 0 && sorted[j - 1] > v) {
			sorted[j] = sorted[j - 1];
			j--;
		}
		sorted[j] = v;
	}
	unsigned char buf[8 * KEEL_KV_MAX_MEMBERS];
	for (size_t i = 0; i < n; i++)
		for (int k = 0; k < 8; k++)
			buf[i * 8 + (size_t)k] = (unsigned char)(sorted[i] >> (56 - 8 * k));
	return sha1_prefix(buf, n * 8);
}

/* ---- responses ---- */

void kv_common_headers(struct keel_kv_server *s, struct keel_http_req *req)
{
	keel_http_add_header(req, "X-Etcd-Cluster-ID", s->cluster_id_hex);
}

static void respond_json(struct keel_kv_server *s, struct keel_http_req *req, int status, uint64_t etcd_index,
			 bool with_raft, const struct keel_buf *body, bool head)
{
	char idx[24], raft_idx[24], term[24];
	snprintf(idx, sizeof(idx), "%" PRIu64, etcd_index);
	snprintf(raft_idx, sizeof(raft_idx), "%" PRIu64, keel_node_commit_index(s->node));
	snprintf(term, sizeof(term), "%" PRIu64, keel_node_term(s->node));
	struct keel_http_header h[5] = {
		{"Content-Type", "application/json"}, {"X-Etcd-Cluster-ID", s->cluster_id_hex},
		{"X-Etcd-Index", idx}, {"X-Raft-Index", raft_idx}, {"X-Raft-Term", term},
	};
	keel_http_respond(req, status, h, with_raft ? 5 : 3, head ? NULL : body->data, head ? 0 : body->len);
}

void kv_respond_event(struct keel_kv_server *s, struct keel_http_req *req, struct keel_kv_event *ev,
		      bool no_value, bool head)
{
	struct keel_buf body = KEEL_BUF_INIT;
	if (keel_kv_event_json(ev, no_value ? KEEL_KV_JSON_NO_VALUE : 0, &body) < 0) {
		keel_buf_free(&body);
		keel_http_error(req, 500, "out of memory");
		return;
	}
	respond_json(s, req, keel_kv_event_is_created(ev) ? 201 : 200, ev->etcd_index, true, &body, head);
	keel_buf_free(&body);
}

void kv_respond_error(struct keel_kv_server *s, struct keel_http_req *req, const struct keel_kv_error *e,
		      bool head)
{
	struct keel_buf body = KEEL_BUF_INIT;
	if (keel_kv_error_json(e, &body) < 0) {
		keel_buf_free(&body);
		keel_http_error(req, 500, "out of memory");
		return;
	}
	/* etcd's Error.WriteTo sets only the index header, not the raft ones. */
	respond_json(s, req, keel_kv_error_status(e->code), e->index, false, &body, head);
	keel_buf_free(&body);
}

void kv_respond_code(struct keel_kv_server *s, struct keel_http_req *req, int code, const char *cause,
		     uint64_t index, bool head)
{
	struct keel_kv_error e = {0};
	if (keel_kv_error_set(&e, code, cause, strlen(cause), index) < 0) {
		keel_http_error(req, 500, "out of memory");
		return;
	}
	kv_respond_error(s, req, &e, head);
	keel_kv_error_clear(&e);
}

/* ---- waiting requests, by request id ---- */

uint64_t kv_next_request_id(struct keel_kv_server *s)
{
	return s->next_req_id++;
}

static struct kv_wait **wait_slot(struct keel_kv_server *s, uint64_t id)
{
	struct kv_wait **p = &s->waits[(id * 0x9E3779B97F4A7C15ull) >> 54];
	while (*p && (*p)->id != id)
		p = &(*p)->next;
	return p;
}

static void wait_client_gone(struct keel_http_req *req, void *ud)
{
	(void)req;
	struct kv_wait *w = ud;
	w->req = NULL; /* the entry may still apply; nobody to tell */
}

void kv_wait_add(struct keel_kv_server *s, struct kv_wait *w)
{
	w->deadline_ms = uv_now(s->loop) + KV_REQUEST_TIMEOUT_MS;
	keel_http_hold_brief(w->req, wait_client_gone, w); /* answered or timed out within seconds */
	struct kv_wait **slot = &s->waits[(w->id * 0x9E3779B97F4A7C15ull) >> 54];
	w->next = *slot;
	*slot = w;
	s->n_waits++;
}

struct kv_wait *kv_wait_take(struct keel_kv_server *s, uint64_t id)
{
	struct kv_wait **p = wait_slot(s, id);
	struct kv_wait *w = *p;
	if (w) {
		*p = w->next;
		s->n_waits--;
	}
	return w;
}

static void expire_waits(struct keel_kv_server *s, bool all)
{
	uint64_t now = uv_now(s->loop);
	for (size_t b = 0; b < KV_WAIT_BUCKETS; b++) {
		struct kv_wait **p = &s->waits[b];
		while (*p) {
			struct kv_wait *w = *p;
			if (!all && w->deadline_ms > now && w->req) {
				p = &w->next;
				continue;
			}
			*p = w->next;
			s->n_waits--;
			if (w->req && w->auth) /* etcd's auth handlers: writeError, a 500 HTTPError */
				keel_http_respond_json(w->req, 500, "{\"message\":\"Internal Server Error\"}", 35);
			else if (w->req)
				kv_respond_code(s, w->req, KEEL_KV_ECODE_RAFT_INTERNAL,
						all ? "etcdserver: server stopped" : "etcdserver: request timed out",
						0, false);
			keel_free(w);
		}
	}
}

int kv_propose(struct keel_kv_server *s, uint64_t id, const struct keel_kv_req *req)
{
	struct keel_buf b = KEEL_BUF_INIT;
	uint8_t kind = KV_ENTRY_KV;
	int r = keel_buf_append(&b, &kind, 1);
	r = r ? r : keel_buf_put_le64(&b, id);
	r = r ? r : keel_kv_cmd_encode(req, &b);
	if (r == 0)
		r = keel_node_propose_forward(s->node, b.data, b.len);
	keel_buf_free(&b);
	return r;
}

/* ---- the replicated state machine ---- */

/* A store write that every member makes identically (membership bookkeeping under /0). */
static void internal_write(struct keel_kv_server *s, enum keel_kv_method m, const char *path, const char *value,
			   bool recursive)
{
	struct keel_kv_req req = {
		.method = m, .path = path, .path_len = strlen(path), .value = value ? value : "",
		.value_len = value ? strlen(value) : 0, .prev_exist = KEEL_KV_PREV_EXIST_UNSET,
		.recursive = recursive, .prev_value = "",
	};
	struct keel_kv_event *ev = NULL;
	struct keel_kv_error kerr = {0};
	int r;
	while ((r = keel_kv_store_apply(s->store, &req, &ev, &kerr)) == -ENOMEM)
		; /* a member that skips an entry diverges; the store changed nothing, so retry */
	keel_kv_event_unref(ev);
	keel_kv_error_clear(&kerr);
}

static const struct keel_kv_member_cfg *initial_member(struct keel_kv_server *s, uint64_t id)
{
	for (size_t i = 0; i < s->cfg.n_members; i++)
		if (s->cfg.members[i].id == id)
			return &s->cfg.members[i];
	return NULL;
}

static int urls_json(struct keel_buf *b, const char *key, const char *const *urls, size_t n)
{
	struct keel_jw w;
	keel_jw_init(&w, b, KEEL_JW_GO_ESCAPE);
	keel_jw_obj_begin(&w);
	keel_jw_key(&w, key);
	keel_jw_arr_begin(&w);
	for (size_t i = 0; i < n; i++)
		keel_jw_str(&w, urls[i]);
	keel_jw_arr_end(&w);
	keel_jw_obj_end(&w);
	return keel_jw_finish(&w);
}

int keel_kv_parse_url(const char *url, char *scheme, size_t ssize, char *host, size_t hsize, uint16_t *port)
{
	const char *rest;
	if ((rest = keel_startswith(url, "http://")))
		snprintf(scheme, ssize, "http");
	else if ((rest = keel_startswith(url, "https://")))
		snprintf(scheme, ssize, "https");
	else
		return -EINVAL;
	const char *colon = strrchr(rest, ':');
	const char *slash = strchr(rest, '/');
	if (!colon || colon == rest || (slash && slash < colon))
		return -EINVAL;
	size_t hlen = (size_t)(colon - rest);
	if (rest[0] == '[' && hlen >= 2 && rest[hlen - 1] == ']') { /* [::1]:2379 */
		rest++;
		hlen -= 2;
	}
	if (hlen == 0 || hlen >= hsize)
		return -EINVAL;
	char portbuf[8];
	size_t plen = slash ? (size_t)(slash - colon - 1) : strlen(colon + 1);
	if (plen == 0 || plen >= sizeof(portbuf) || (slash && slash[1]))
		return -EINVAL;
	memcpy(portbuf, colon + 1, plen);
	portbuf[plen] = '\0';
	uint64_t p;
	if (keel_parse_u64(portbuf, &p) < 0 || p == 0 || p > 65535)
		return -EINVAL;
	memcpy(host, rest, hlen);
	host[hlen] = '\0';
	*port = (uint16_t)p;
	return 0;
}

/* A member's raftAttributes JSON (len bytes, not NUL-terminated): tell the transport where it is. */
static void tell_transport(struct keel_kv_server *s, uint64_t id, const char *json, size_t len)
{
	json_error_t jerr;
	json_t *j = json ? json_loadb(json, len, 0, &jerr) : NULL;
	json_t *arr = j ? json_object_get(j, "peerURLs") : NULL;
	if (json_is_array(arr) && json_array_size(arr) > 0 && json_is_string(json_array_get(arr, 0))) {
		char host[256];
		uint16_t port;
		char scheme[8];
		if (keel_kv_parse_url(json_string_value(json_array_get(arr, 0)), scheme, sizeof(scheme), host,
				      sizeof(host), &port) == 0)
			keel_node_set_peer(s->node, id, host, port);
	}
	json_decref(j);
}

/* Point the transport at every member the store knows, and away from removed ones: after a
 * snapshot replaced the store (the entries that told it one by one are gone). */
static void tell_transport_all(struct keel_kv_server *s)
{
	struct keel_kv_event *ev = NULL;
	struct keel_kv_error kerr = {0};
	json_t *root = NULL;
	if (keel_kv_store_get(s->store, "/0/members", strlen("/0/members"), true, false, 0, &ev, &kerr) == 0 &&
	    ev->get_json) {
		json_error_t jerr;
		root = json_loadb(ev->get_json, ev->get_json_len, 0, &jerr);
	}
	keel_kv_event_unref(ev);
	keel_kv_error_clear(&kerr);
	size_t i, k;
	json_t *m, *c;
	json_array_foreach(root ? json_object_get(root, "nodes") : NULL, i, m) {
		const char *key = json_string_value(json_object_get(m, "key"));
		const char *slash = key ? strrchr(key, '/') : NULL;
		uint64_t id = slash ? strtoull(slash + 1, NULL, 16) : 0;
		json_array_foreach(json_object_get(m, "nodes"), k, c) {
			const char *ck = json_string_value(json_object_get(c, "key"));
			const char *val = json_string_value(json_object_get(c, "value"));
			if (id && ck && val && keel_endswith(ck, "/raftAttributes"))
				tell_transport(s, id, val, strlen(val));
		}
	}
	json_decref(root);
	for (size_t r = 0; r < s->n_removed; r++)
		keel_node_remove_peer(s->node, s->removed[r]);
}

static void apply_conf(struct keel_kv_server *s, const struct keel_raft_entry *e)
{
	struct keel_raft_conf_change cc;
	if (keel_raft_conf_change_decode(e->data, e->len, &cc) < 0)
		return;
	uint64_t req_id;
	const char *attrs;
	size_t attrs_len;
	kv_conf_context_decode(cc.context, cc.context_len, &req_id, &attrs, &attrs_len);
	char path[96];
	snprintf(path, sizeof(path), "/0/members/%" PRIx64, cc.node);
	if (cc.type == KEEL_RAFT_REMOVE_NODE) {
		/* etcd's RemoveMember: two writes, so indexes stay etcd's. The removed id is
		 * remembered for good: peers tell that member so when it talks to them. */
		internal_write(s, KEEL_KV_DELETE, path, NULL, true);
		snprintf(path, sizeof(path), "/0/removed_members/%" PRIx64, cc.node);
		internal_write(s, KEEL_KV_PUT, path, "", false);
		kv_removed_add(s, cc.node);
		keel_node_remove_peer(s->node, cc.node);
		if (cc.node == s->cfg.member_id)
			/* etcd: stopWithDelay(10 ticks), time to answer the request that did it. */
			kv_removed_self(s, 10 * (uint64_t)s->tick_ms, "applied its own removal");
		if (req_id)
			kv_member_op_applied(s, req_id);
		return;
	}
	/* The member's peer URLs: the change's context, or (bootstrap entries carry none) the
	 * initial cluster every member was started with. */
	struct keel_buf v = KEEL_BUF_INIT;
	const char *urls[KEEL_KV_MAX_URLS];
	size_t n = 0;
	const struct keel_kv_member_cfg *m = initial_member(s, cc.node);
	if (attrs_len) {
		if (keel_buf_append(&v, attrs, attrs_len) < 0)
			return;
	} else if (m) {
		for (size_t i = 0; i < m->n_peer_urls; i++)
			urls[n++] = m->peer_urls[i];
		if (urls_json(&v, "peerURLs", urls, n) < 0) {
			keel_buf_free(&v);
			return;
		}
	}
	strcat(path, "/raftAttributes");
	internal_write(s, KEEL_KV_PUT, path, v.data ? v.data : "{\"peerURLs\":[]}", false);
	tell_transport(s, cc.node, v.data, v.len);
	keel_buf_free(&v);
	if (req_id)
		kv_member_op_applied(s, req_id);
}

/* Whether applying req certainly leaves the auth tree (/2) alone: a quorum read, or a change
 * under /1 (the keys API's namespace) whose path has no "." segment that the store's cleaning
 * could take elsewhere. Anything else makes the auth code look at /2/enabled again. */
static bool spares_auth_tree(const struct keel_kv_req *req)
{
	if (req->method == KEEL_KV_QGET)
		return true;
	if (req->method == KEEL_KV_SYNC || req->path_len < 3 || memcmp(req->path, "/1/", 3) != 0)
		return false;
	for (size_t i = 0; i + 1 < req->path_len; i++)
		if (req->path[i] == '/' && req->path[i + 1] == '.')
			return false;
	return true;
}

static void apply_kv(struct keel_kv_server *s, const struct keel_raft_entry *e)
{
	const uint8_t *p = e->data;
	if (e->len < 9 || p[0] != KV_ENTRY_KV)
		return;
	uint64_t id = keel_le64(p + 1);
	struct keel_kv_req req;
	if (keel_kv_cmd_decode(p + 9, e->len - 9, &req) < 0)
		return; /* every member skips the same malformed entry */
	struct keel_kv_event *ev = NULL;
	struct keel_kv_error kerr = {0};
	int r;
	while ((r = keel_kv_store_apply(s->store, &req, &ev, &kerr)) == -ENOMEM)
		;
	if (!spares_auth_tree(&req))
		kv_auth_tree_changed(s);
	/* A member's new peer URLs (PUT /v2/members/<id>) reach the transport too. */
	/* (Decoded strings point into the entry: not NUL-terminated, so lengths throughout.) */
	static const char prefix[] = "/0/members/", suffix[] = "/raftAttributes";
	const size_t plen = sizeof(prefix) - 1, slen = sizeof(suffix) - 1;
	if (r == 0 && req.method == KEEL_KV_PUT && req.path_len > plen + slen &&
	    memcmp(req.path, prefix, plen) == 0 &&
	    memcmp(req.path + req.path_len - slen, suffix, slen) == 0) {
		char hex[17] = "";
		size_t hl = req.path_len - plen - slen;
		if (hl < sizeof(hex)) {
			memcpy(hex, req.path + plen, hl);
			hex[hl] = '\0';
			tell_transport(s, strtoull(hex, NULL, 16), req.value, req.value_len);
		}
	}
	struct kv_wait *w = kv_wait_take(s, id);
	if (!w)
		kv_member_op_applied(s, id); /* new peer URLs (PUT /v2/members/<id>) */
	if (w) {
		if (w->req) {
			if (r == 0 && ev)
				kv_respond_event(s, w->req, ev, w->no_value, false);
			else if (r == KEEL_KV_FAILED)
				kv_respond_error(s, w->req, &kerr, false);
			else
				kv_respond_code(s, w->req, KEEL_KV_ECODE_RAFT_INTERNAL, "invalid request", 0, false);
		}
		keel_free(w);
	}
	keel_kv_event_unref(ev);
	keel_kv_error_clear(&kerr);
}

static void sm_apply(void *ud, const struct keel_raft_entry *e)
{
	struct keel_kv_server *s = ud;
	if (e->type == KEEL_RAFT_ENTRY_CONF) {
		apply_conf(s, e);
		kv_auth_tree_changed(s); /* its store writes are under /0, but be sure */
	}
	else if (e->len > 0 && ((const uint8_t *)e->data)[0] == KV_ENTRY_AUTH)
		kv_auth_apply_entry(s, e);
	else if (e->len > 0)
		apply_kv(s, e);
}

static int snap_write(void *ud, const void *data, size_t len)
{
	struct keel_err err;
	return keel_snap_writer_write(ud, data, len, &err);
}

static ssize_t snap_read(void *ud, void *buf, size_t len)
{
	struct keel_err err;
	return keel_snap_reader_read(ud, buf, len, &err);
}

static int sm_save(void *ud, struct keel_snap_writer *w, struct keel_err *err)
{
	struct keel_kv_server *s = ud;
	return keel_kv_store_save(s->store, snap_write, w, err);
}

static int sm_load(void *ud, struct keel_snap_reader *r, struct keel_err *err)
{
	struct keel_kv_server *s = ud;
	int rc = keel_kv_store_load(s->store, snap_read, r, err);
	kv_auth_tree_changed(s); /* a failed load may have left the store changed too */
	if (rc == 0) {
		kv_removed_reload(s);
		if (s->node) /* not while keel_node_start recovers: start does this after it */
			tell_transport_all(s);
	}
	return rc;
}

static bool sm_is_removed(void *ud, keel_raft_id id)
{
	return kv_is_removed(ud, id);
}

/* This member is out of the cluster: stop taking part after delay_ms (time for the answer to a
 * request that removed it), then tell the program. */
void kv_removed_self(struct keel_kv_server *s, uint64_t delay_ms, const char *how)
{
	if (s->removed_self)
		return; /* the first news counts (and its delay: an answer may still be going out) */
	s->removed_self = true;
	s->removed_stop_ms = uv_now(s->loop) + delay_ms;
	snprintf(s->removed_how, sizeof(s->removed_how), "%s", how);
	kv_member_ops_removed_self(s);
}

static void on_fatal(void *ud, const struct keel_err *why)
{
	struct keel_kv_server *s = ud;
	if (why->code == -EIDRM) { /* a peer says we were removed */
		const char *says = strstr(why->msg, "(member ");
		char how[64];
		snprintf(how, sizeof(how), "member %" PRIx64 " says so",
			 (uint64_t)(says ? strtoull(says + strlen("(member "), NULL, 16) : 0));
		kv_removed_self(s, 10 * (uint64_t)s->tick_ms, how);
		return;
	}
	if (s->cfg.on_fatal)
		s->cfg.on_fatal(s->cfg.ud, why->msg);
}

static const struct keel_node_sm sm_ops = {
	.apply = sm_apply, .save = sm_save, .load = sm_load, .on_fatal = on_fatal,
	.is_removed = sm_is_removed, .on_query = kv_answer_query,
};

/* ---- the leader's duties and publishing ---- */

static void propose_internal(struct keel_kv_server *s, const char *path, const char *value)
{
	struct keel_kv_req req = {
		.method = KEEL_KV_PUT, .path = path, .path_len = strlen(path), .value = value,
		.value_len = strlen(value), .prev_value = "", .prev_exist = KEEL_KV_PREV_EXIST_UNSET,
		.time = keel_wall_ns(),
	};
	kv_propose(s, kv_next_request_id(s), &req);
}

static void on_timer(uv_timer_t *t)
{
	struct keel_kv_server *s = t->data;
	expire_waits(s, false);
	kv_expire_watches(s, false);
	kv_member_ops_expire(s, false);
	kv_expire_qreads(s);
	uint64_t leader = keel_node_leader(s->node);
	if (leader != s->last_leader) {
		if (leader)
			s->leader_changes++;
		s->last_leader = leader;
	}
	uint64_t now = uv_now(s->loop);
	if (keel_node_is_leader(s->node)) {
		/* Only the leader expires keys, by proposing its time (etcd's SYNC). */
		if (now - s->last_sync_ms >= SYNC_INTERVAL_MS && keel_kv_store_has_ttl_keys(s->store)) {
			s->last_sync_ms = now;
			struct keel_kv_req req = {.method = KEEL_KV_SYNC, .path = "/", .path_len = 1,
						  .prev_value = "", .value = "",
						  .prev_exist = KEEL_KV_PREV_EXIST_UNSET, .time = keel_wall_ns()};
			kv_propose(s, kv_next_request_id(s), &req);
		}
		if (!s->version_set) {
			struct keel_kv_event *ev = NULL;
			struct keel_kv_error kerr = {0};
			if (keel_kv_store_get(s->store, "/0/version", strlen("/0/version"), false, false, 0, &ev, &kerr) == 0) {
				s->version_set = true;
			} else if (now >= s->version_retry_ms) {
				s->version_retry_ms = now + 1000; /* once, unless it is lost */
				propose_internal(s, "/0/version", CLUSTER_VERSION);
			}
			keel_kv_event_unref(ev);
			keel_kv_error_clear(&kerr);
		}
	}
	/* Publish this member's name and client URLs once (etcd's publish), retrying until the
	 * store has them. */
	if (!s->published && keel_node_leader(s->node)) {
		char path[96];
		snprintf(path, sizeof(path), "/0/members/%" PRIx64 "/attributes", s->cfg.member_id);
		struct keel_kv_event *ev = NULL;
		struct keel_kv_error kerr = {0};
		if (keel_kv_store_get(s->store, path, strlen(path), false, false, 0, &ev, &kerr) == 0) {
			s->published = true;
		} else if (now >= s->publish_retry_ms) {
			s->publish_retry_ms = now + 1000; /* once, unless it is lost */
			struct keel_buf v = KEEL_BUF_INIT;
			struct keel_jw w;
			keel_jw_init(&w, &v, KEEL_JW_GO_ESCAPE);
			keel_jw_obj_begin(&w);
			keel_jw_kstr(&w, "name", s->cfg.name);
			keel_jw_key(&w, "clientURLs");
			keel_jw_arr_begin(&w);
			for (size_t i = 0; i < s->cfg.n_advertise_client_urls; i++)
				keel_jw_str(&w, s->cfg.advertise_client_urls[i]);
			keel_jw_arr_end(&w);
			keel_jw_obj_end(&w);
			if (keel_jw_finish(&w) == 0)
				propose_internal(s, path, v.data);
			keel_buf_free(&v);
		}
		keel_kv_event_unref(ev);
		keel_kv_error_clear(&kerr);
	}
	/* Last: the program may stop the server from this callback. */
	if (s->removed_self && !s->removed_reported && now >= s->removed_stop_ms) {
		s->removed_reported = true;
		if (s->cfg.on_removed)
			s->cfg.on_removed(s->cfg.ud, s->removed_how);
	}
}

/* ---- membership queries for server_members.c ---- */

bool kv_member_exists(struct keel_kv_server *s, uint64_t id)
{
	char path[64];
	snprintf(path, sizeof(path), "/0/members/%" PRIx64, id);
	struct keel_kv_event *ev = NULL;
	struct keel_kv_error kerr = {0};
	bool ok = keel_kv_store_get(s->store, path, strlen(path), false, false, 0, &ev, &kerr) == 0;
	keel_kv_event_unref(ev);
	keel_kv_error_clear(&kerr);
	return ok;
}

/* Whether a member other than except_member has url among its peer URLs. */
bool kv_peer_url_taken(struct keel_kv_server *s, const char *url, uint64_t except_member)
{
	struct keel_kv_event *ev = NULL;
	struct keel_kv_error kerr = {0};
	bool taken = false;
	json_t *root = NULL;
	if (keel_kv_store_get(s->store, "/0/members", strlen("/0/members"), true, false, 0, &ev, &kerr) == 0 &&
	    ev->get_json) {
		json_error_t jerr;
		root = json_loadb(ev->get_json, ev->get_json_len, 0, &jerr);
	}
	keel_kv_event_unref(ev);
	keel_kv_error_clear(&kerr);
	size_t i, k, x;
	json_t *m, *c, *u;
	json_array_foreach(root ? json_object_get(root, "nodes") : NULL, i, m) {
		const char *key = json_string_value(json_object_get(m, "key"));
		const char *slash = key ? strrchr(key, '/') : NULL;
		if (!slash || strtoull(slash + 1, NULL, 16) == except_member)
			continue;
		json_array_foreach(json_object_get(m, "nodes"), k, c) {
			const char *ck = json_string_value(json_object_get(c, "key"));
			const char *val = json_string_value(json_object_get(c, "value"));
			if (!ck || !val || !keel_endswith(ck, "/raftAttributes"))
				continue;
			json_error_t jerr;
			json_t *attrs = json_loads(val, 0, &jerr);
			json_array_foreach(attrs ? json_object_get(attrs, "peerURLs") : NULL, x, u)
				taken = taken || keel_streq(json_string_value(u), url);
			json_decref(attrs);
		}
	}
	json_decref(root);
	return taken;
}

int kv_propose_member_urls(struct keel_kv_server *s, uint64_t req_id, uint64_t id, const char *json)
{
	char path[96];
	snprintf(path, sizeof(path), "/0/members/%" PRIx64 "/raftAttributes", id);
	struct keel_kv_req req = {
		.method = KEEL_KV_PUT, .path = path, .path_len = strlen(path), .value = json,
		.value_len = strlen(json), .prev_value = "", .prev_exist = KEEL_KV_PREV_EXIST_UNSET,
		.time = keel_wall_ns(),
	};
	return kv_propose(s, req_id, &req);
}

/* ---- other endpoints ---- */

/* Members as the store holds them under /0/members, rendered as etcd's v2 members API. */
static int members_json(struct keel_kv_server *s, struct keel_buf *out, bool machines_only, uint64_t only)
{
	struct keel_kv_event *ev = NULL;
	struct keel_kv_error kerr = {0};
	int r = keel_kv_store_get(s->store, "/0/members", strlen("/0/members"), true, true, 0, &ev, &kerr);
	json_t *root = NULL;
	if (r == 0 && ev->get_json) {
		json_error_t jerr;
		root = json_loadb(ev->get_json, ev->get_json_len, 0, &jerr);
	}
	keel_kv_event_unref(ev);
	keel_kv_error_clear(&kerr);
	struct keel_jw w;
	keel_jw_init(&w, out, KEEL_JW_GO_ESCAPE);
	if (!machines_only && !only) {
		keel_jw_obj_begin(&w);
		keel_jw_key(&w, "members");
		keel_jw_arr_begin(&w);
	}
	bool found = false;
	bool first = true;
	json_t *nodes = root ? json_object_get(root, "nodes") : NULL;
	size_t i;
	json_t *m;
	json_array_foreach(nodes, i, m) {
		const char *key = json_string_value(json_object_get(m, "key"));
		const char *slash = key ? strrchr(key, '/') : NULL;
		json_t *raft = NULL, *attr = NULL, *kids = json_object_get(m, "nodes");
		size_t k;
		json_t *c;
		json_array_foreach(kids, k, c) {
			const char *ck = json_string_value(json_object_get(c, "key"));
			const char *val = json_string_value(json_object_get(c, "value"));
			json_error_t jerr;
			if (ck && val && keel_endswith(ck, "/raftAttributes"))
				raft = json_loads(val, 0, &jerr);
			else if (ck && val && keel_endswith(ck, "/attributes"))
				attr = json_loads(val, 0, &jerr);
		}
		json_t *curls = attr ? json_object_get(attr, "clientURLs") : NULL;
		if (machines_only) {
			json_t *u;
			size_t x;
			json_array_foreach(curls, x, u) {
				if ((!first && keel_buf_puts(out, ", ") < 0) ||
				    keel_buf_puts(out, json_string_value(u)) < 0)
					break;
				first = false;
			}
		} else if (slash && (!only || strtoull(slash + 1, NULL, 16) == only)) {
			found = true;
			keel_jw_obj_begin(&w);
			keel_jw_kstr(&w, "id", slash + 1);
			keel_jw_kstr(&w, "name", attr && json_is_string(json_object_get(attr, "name"))
							  ? json_string_value(json_object_get(attr, "name")) : "");
			for (int pass = 0; pass < 2; pass++) {
				json_t *arr = pass ? curls : (raft ? json_object_get(raft, "peerURLs") : NULL);
				keel_jw_key(&w, pass ? "clientURLs" : "peerURLs");
				keel_jw_arr_begin(&w);
				json_t *u;
				size_t x;
				json_array_foreach(arr, x, u)
					if (json_is_string(u))
						keel_jw_str(&w, json_string_value(u));
				keel_jw_arr_end(&w);
			}
			keel_jw_obj_end(&w);
		}
		json_decref(raft);
		json_decref(attr);
	}
	json_decref(root);
	if (machines_only)
		return 0;
	if (only)
		return found ? keel_jw_finish(&w) : -ENOENT;
	keel_jw_arr_end(&w);
	keel_jw_obj_end(&w);
	return keel_jw_finish(&w);
}

int kv_members_json(struct keel_kv_server *s, struct keel_buf *out)
{
	return members_json(s, out, false, 0);
}

static int handle_members(struct keel_http_req *req, void *ud)
{
	struct keel_kv_server *s = ud;
	struct keel_buf body = KEEL_BUF_INIT;
	if (members_json(s, &body, false, 0) < 0 || keel_buf_putc(&body, '\n') < 0) {
		keel_buf_free(&body);
		return keel_http_error(req, 500, "out of memory");
	}
	kv_common_headers(s, req);
	keel_http_respond_json(req, 200, body.data, body.len);
	keel_buf_free(&body);
	return KEEL_HTTP_DONE;
}

/* GET /v2/members/leader (etcdctl member list asks for it): the leader as a member object. */
static int handle_members_leader(struct keel_http_req *req, void *ud)
{
	struct keel_kv_server *s = ud;
	uint64_t leader = keel_node_leader(s->node);
	struct keel_buf body = KEEL_BUF_INIT;
	int r = leader ? members_json(s, &body, false, leader) : -ENOENT;
	if (r == 0 && keel_buf_putc(&body, '\n') == 0) {
		kv_common_headers(s, req);
		keel_http_respond_json(req, 200, body.data, body.len);
	} else {
		/* etcd: 503 "During leader election" when there is none. */
		static const char nobody[] = "{\"message\":\"During leader election\"}\n";
		keel_http_respond_json(req, 503, nobody, sizeof(nobody) - 1);
	}
	keel_buf_free(&body);
	return KEEL_HTTP_DONE;
}

static int handle_machines(struct keel_http_req *req, void *ud)
{
	struct keel_kv_server *s = ud;
	struct keel_buf body = KEEL_BUF_INIT;
	members_json(s, &body, true, 0);
	const struct keel_http_header h[] = {{"Content-Type", "text/plain; charset=utf-8"}};
	keel_http_respond(req, 200, h, 1, body.data, body.len);
	keel_buf_free(&body);
	return KEEL_HTTP_DONE;
}

static int handle_version(struct keel_http_req *req, void *ud)
{
	(void)ud;
	static const char body[] = "{\"etcdserver\":\"" SERVER_VERSION "\",\"etcdcluster\":\"" CLUSTER_VERSION "\"}";
	return keel_http_respond_json(req, 200, body, sizeof(body) - 1), KEEL_HTTP_DONE;
}

static int handle_health(struct keel_http_req *req, void *ud)
{
	struct keel_kv_server *s = ud;
	/* Healthy: a leader is known and this member has published itself (etcd serves clients
	 * only once its attributes are in the store: ReadyNotify). */
	bool ok = keel_node_leader(s->node) != 0 && s->published;
	const char *body = ok ? "{\"health\":\"true\"}" : "{\"health\":\"false\"}";
	return keel_http_respond_json(req, ok ? 200 : 503, body, strlen(body)), KEEL_HTTP_DONE;
}

static int handle_stats_store(struct keel_http_req *req, void *ud)
{
	struct keel_kv_server *s = ud;
	struct keel_buf body = KEEL_BUF_INIT;
	if (keel_kv_store_stats_json(s->store, &body) < 0) {
		keel_buf_free(&body);
		return keel_http_error(req, 500, "out of memory");
	}
	keel_http_respond_json(req, 200, body.data, body.len);
	keel_buf_free(&body);
	return KEEL_HTTP_DONE;
}

static int handle_stats_self(struct keel_http_req *req, void *ud)
{
	struct keel_kv_server *s = ud;
	char id[17], leader[17];
	snprintf(id, sizeof(id), "%" PRIx64, s->cfg.member_id);
	snprintf(leader, sizeof(leader), "%" PRIx64, keel_node_leader(s->node));
	struct keel_buf body = KEEL_BUF_INIT;
	struct keel_jw w;
	keel_jw_init(&w, &body, KEEL_JW_GO_ESCAPE);
	keel_jw_obj_begin(&w);
	keel_jw_kstr(&w, "name", s->cfg.name);
	keel_jw_kstr(&w, "id", id);
	keel_jw_kstr(&w, "state", keel_node_is_leader(s->node) ? "StateLeader" : "StateFollower");
	keel_jw_key(&w, "leaderInfo");
	keel_jw_obj_begin(&w);
	keel_jw_kstr(&w, "leader", leader);
	keel_jw_obj_end(&w);
	keel_jw_obj_end(&w);
	if (keel_jw_finish(&w) < 0) {
		keel_buf_free(&body);
		return keel_http_error(req, 500, "out of memory");
	}
	keel_http_respond_json(req, 200, body.data, body.len);
	keel_buf_free(&body);
	return KEEL_HTTP_DONE;
}

/* GET /v2/stats/leader: on the leader, each follower's heartbeat latency and append counts;
 * elsewhere 403 "not current leader", as etcd. */
static int handle_stats_leader(struct keel_http_req *req, void *ud)
{
	struct keel_kv_server *s = ud;
	if (!keel_node_is_leader(s->node)) {
		static const char body[] = "{\"message\":\"not current leader\"}\n";
		return keel_http_respond_json(req, 403, body, sizeof(body) - 1), KEEL_HTTP_DONE;
	}
	const struct keel_raft_conf *c = keel_raft_conf(keel_node_raft(s->node));
	char hex[17];
	snprintf(hex, sizeof(hex), "%" PRIx64, s->cfg.member_id);
	struct keel_buf b = KEEL_BUF_INIT;
	struct keel_jw w;
	keel_jw_init(&w, &b, KEEL_JW_GO_ESCAPE);
	keel_jw_obj_begin(&w);
	keel_jw_kstr(&w, "leader", hex);
	keel_jw_key(&w, "followers");
	keel_jw_obj_begin(&w);
	for (uint32_t i = 0; i < c->n_voters + c->n_learners; i++) {
		keel_raft_id id = i < c->n_voters ? c->voters[i] : c->learners[i - c->n_voters];
		if (id == s->cfg.member_id)
			continue;
		struct keel_node_peer_stats ps = {0};
		keel_node_peer_stats(s->node, id, &ps);
		char fid[17], num[64];
		snprintf(fid, sizeof(fid), "%" PRIx64, id);
		keel_jw_key(&w, fid);
		keel_jw_obj_begin(&w);
		keel_jw_key(&w, "latency");
		keel_jw_obj_begin(&w);
		const struct {
			const char *k;
			double v;
		} lat[] = {{"current", ps.current}, {"average", ps.average}, {"standardDeviation", ps.stddev},
			   {"minimum", ps.minimum}, {"maximum", ps.maximum}};
		for (size_t k = 0; k < KEEL_ARRAY_SIZE(lat); k++) {
			keel_jw_key(&w, lat[k].k);
			snprintf(num, sizeof(num), "%.9g", lat[k].v);
			keel_jw_raw(&w, num, strlen(num));
		}
		keel_jw_obj_end(&w);
		keel_jw_key(&w, "counts");
		keel_jw_obj_begin(&w);
		keel_jw_ku64(&w, "fail", ps.fail);
		keel_jw_ku64(&w, "success", ps.success);
		keel_jw_obj_end(&w);
		keel_jw_obj_end(&w);
	}
	keel_jw_obj_end(&w);
	keel_jw_obj_end(&w);
	if (keel_jw_finish(&w) < 0) {
		keel_buf_free(&b);
		return keel_http_error(req, 500, "out of memory");
	}
	keel_http_respond_json(req, 200, b.data, b.len);
	keel_buf_free(&b);
	return KEEL_HTTP_DONE;
}

/* GET /metrics: Prometheus text format, with etcd's names for what keel-kv has. */
static int handle_metrics(struct keel_http_req *req, void *ud)
{
	struct keel_kv_server *s = ud;
	struct keel_node_stats st;
	keel_node_get_stats(s->node, &st);
	const struct keel_raft *r = keel_node_raft(s->node);
	long pages = 0;
	FILE *f = fopen("/proc/self/statm", "re");
	if (f) {
		long size;
		if (fscanf(f, "%ld %ld", &size, &pages) != 2)
			pages = 0;
		fclose(f);
	}
	size_t watchers = keel_kv_store_watcher_count(s->store);
	const struct {
		const char *name, *type, *help;
		uint64_t value;
	} m[] = {
		{"etcd_server_has_leader", "gauge", "Whether or not a leader exists. 1 is existence, 0 is not.",
		 keel_node_leader(s->node) != 0},
		{"etcd_server_is_leader", "gauge", "Whether or not this member is a leader. 1 if is, 0 otherwise.",
		 keel_node_is_leader(s->node)},
		{"etcd_server_leader_changes_seen_total", "counter", "The number of leader changes seen.",
		 s->leader_changes},
		{"etcd_server_proposals_committed_total", "gauge", "The total number of consensus proposals committed.",
		 keel_raft_commit_index(r)},
		{"etcd_server_proposals_applied_total", "gauge", "The total number of consensus proposals applied.",
		 keel_raft_applied_index(r)},
		{"etcd_server_proposals_pending", "gauge", "The current number of pending proposals to commit.",
		 s->n_waits},
		{"etcd_disk_wal_fsync_total", "counter", "The number of fdatasyncs of the WAL.", st.syncs},
		{"etcd_debugging_store_watchers", "gauge", "Count of currently active watchers.", watchers},
		{"etcd_debugging_snap_save_total_count", "counter", "Snapshots taken.", st.snapshots_taken},
		{"keel_snap_save_failures_total", "counter", "Snapshots that could not be saved (each is logged).",
		 st.snapshot_failures},
		{"process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
		 (uint64_t)pages * 4096},
	};
	struct keel_buf b = KEEL_BUF_INIT;
	int rc = 0;
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(m) && rc == 0; i++)
		rc = keel_buf_printf(&b, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n", m[i].name, m[i].help,
				     m[i].name, m[i].type, m[i].name, m[i].value);
	if (rc < 0) {
		keel_buf_free(&b);
		return keel_http_error(req, 500, "out of memory");
	}
	const struct keel_http_header h[] = {{"Content-Type", "text/plain; version=0.0.4; charset=utf-8"}};
	keel_http_respond(req, 200, h, 1, b.data, b.len);
	keel_buf_free(&b);
	return KEEL_HTTP_DONE;
}

/* ---- start and stop ---- */

/* After recovery, a member that is not in its own configuration: was it removed (its snapshot
 * says so, or its log holds its removal)? Then it starts, learns it again (by applying the
 * removal, or from its peers) and stops as etcd's does; otherwise the data is another member's. */
static bool removed_in_history(struct keel_kv_server *s)
{
	if (kv_is_removed(s, s->cfg.member_id))
		return true;
	const struct keel_raft *r = keel_node_raft(s->node);
	for (uint64_t i = keel_raft_last_index(r); i >= keel_raft_first_index(r) && i > 0; i--) {
		const struct keel_raft_entry *e = keel_raft_entry_at(r, i);
		struct keel_raft_conf_change cc;
		if (e && e->type == KEEL_RAFT_ENTRY_CONF && keel_raft_conf_change_decode(e->data, e->len, &cc) == 0 &&
		    cc.type == KEEL_RAFT_REMOVE_NODE && cc.node == s->cfg.member_id)
			return true;
	}
	return false;
}

int keel_kv_server_start(uv_loop_t *loop, const struct keel_kv_server_config *cfg,
			 struct keel_kv_server **ret, struct keel_err *err)
{
	struct keel_kv_server *s = keel_calloc(1, sizeof(*s));
	if (!s)
		return keel_err_set(err, -ENOMEM, "out of memory");
	s->loop = loop;
	s->cfg = *cfg;
	snprintf(s->cluster_id_hex, sizeof(s->cluster_id_hex), "%" PRIx64, cfg->cluster_id);
	int r = kv_identity_setup(s, err);
	if (r < 0) {
		json_decref(s->joined_root);
		keel_free(s);
		return r;
	}
	cfg = &s->cfg; /* the ids may be the ones the cluster gave this member */
	uint64_t seed = 0;
	if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
		seed = (uint64_t)keel_wall_ns();
	/* Request ids: 16 bits of the member id, then 48 bits that start at the time in ms
	 * (etcd's idutil does the same), so ids do not repeat across restarts. */
	s->next_req_id = (cfg->member_id & 0xffff) << 48 | (((uint64_t)keel_wall_ns() / 1000000) & 0xffffffffffull) << 8;
	static const char *const namespaces[] = {"/0", "/1", NULL};
	struct keel_kv_store_opts so = {.namespaces = namespaces, .key_prefix = "/1", .hash_seed = seed};
	r = keel_kv_store_new(&so, &s->store);
	if (r == 0 && (r = kv_auth_new(s)) < 0)
		keel_kv_store_free(s->store);
	if (r < 0) {
		json_decref(s->joined_root);
		keel_free(s);
		return keel_err_set(err, r, "creating the store");
	}

	struct keel_node_peer peers[KEEL_KV_MAX_MEMBERS];
	char hosts[KEEL_KV_MAX_MEMBERS][256];
	size_t np = 0;
	for (size_t i = 0; i < cfg->n_members && np < KEEL_KV_MAX_MEMBERS; i++) {
		const struct keel_kv_member_cfg *m = &cfg->members[i];
		char scheme[8];
		if (!m->n_peer_urls || keel_kv_parse_url(m->peer_urls[0], scheme, sizeof(scheme), hosts[np],
							 sizeof(hosts[np]), &peers[np].port) < 0) {
			kv_auth_release(s);
			keel_kv_store_free(s->store);
			json_decref(s->joined_root);
			keel_free(s);
			return keel_err_set(err, -EINVAL, "member %s: bad peer URL", m->name);
		}
		peers[np].id = m->id;
		peers[np].host = hosts[np];
		np++;
	}
	unsigned tick = cfg->heartbeat_ms ? cfg->heartbeat_ms : 100;
	unsigned election = cfg->election_ms ? cfg->election_ms : 1000;
	s->tick_ms = tick;
	s->election_ms = election;
	struct keel_transport_listen more[KEEL_KV_MAX_URLS];
	size_t n_more = 0;
	for (size_t i = 0; i < cfg->n_more_peer_listen && n_more < KEEL_KV_MAX_URLS; i++)
		more[n_more++] = (struct keel_transport_listen){cfg->more_peer_listen[i].host,
								cfg->more_peer_listen[i].port};
	struct keel_node_config nc = {
		/* Peers recognise each other by the cluster token (a member that joins later knows the
		 * token but not the original member list that etcd's cluster id hashes). */
		.id = cfg->member_id, .cluster_id = keel_kv_member_id(NULL, 0, cfg->cluster_token),
		.data_dir = cfg->data_dir, .wal_dir = cfg->wal_dir, .wal_segment_size = cfg->wal_segment_size,
		/* etcd's 0 means "keep them all". */
		.max_snapshots = cfg->max_snapshots ? cfg->max_snapshots : KEEL_NODE_KEEP_ALL,
		.max_wal_segments = cfg->max_wals ? cfg->max_wals : KEEL_NODE_KEEP_ALL,
		.peers = peers, .n_peers = np, .join = cfg->join,
		.listen_host = cfg->peer_listen_host, .listen_port = cfg->peer_listen_port,
		.more_listen = more, .n_more_listen = n_more,
		.tick_ms = tick, .election_ticks = election / tick < 2 ? 2 : election / tick,
		.snapshot_count = cfg->snapshot_count,
		.cert_file = cfg->peer_cert_file, .key_file = cfg->peer_key_file,
		.ca_file = cfg->peer_trusted_ca_file, .verify_peer = cfg->peer_client_cert_auth,
		.sm = &sm_ops, .sm_ud = s,
	};
	r = keel_node_start(loop, &nc, &s->node, err);
	if (r < 0) {
		kv_auth_release(s);
		keel_kv_store_free(s->store);
		keel_free(s->removed);
		json_decref(s->joined_root);
		keel_free(s);
		return r;
	}
	tell_transport_all(s);
	/* A data directory written by another member (other peer URLs, another token) would
	 * leave this one waiting forever outside the configuration: say so instead. */
	const struct keel_raft_conf *conf = keel_raft_conf(keel_node_raft(s->node));
	if (!cfg->join && conf->n_voters + conf->n_learners > 0 &&
	    !keel_raft_conf_has_voter(conf, cfg->member_id) && !keel_raft_conf_has_learner(conf, cfg->member_id) &&
	    !removed_in_history(s)) {
		r = keel_err_set(err, -EINVAL,
				 "%s holds the data of another member (this member's id %" PRIx64
				 " is not in its configuration): check --initial-cluster, --initial-advertise-peer-urls "
				 "and --initial-cluster-token, or use a new --data-dir",
				 cfg->data_dir, cfg->member_id);
		keel_node_stop(s->node, NULL, NULL);
		kv_auth_release(s);
		keel_kv_store_free(s->store);
		keel_free(s->removed);
		json_decref(s->joined_root);
		keel_free(s);
		return r;
	}

	const unsigned keys_methods = KEEL_HTTP_GET | KEEL_HTTP_HEAD | KEEL_HTTP_PUT | KEEL_HTTP_POST | KEEL_HTTP_DELETE;
	const struct keel_http_route routes[] = {
		{keys_methods, "/v2/keys", true, kv_handle_keys, s, "HEAD,GET,PUT,POST,DELETE"},
		{KEEL_HTTP_GET | KEEL_HTTP_HEAD, "/v2/members", false, handle_members, s, "GET,POST"},
		{KEEL_HTTP_POST, "/v2/members", false, kv_auth_members_write, s, "GET,POST"},
		{KEEL_HTTP_DELETE | KEEL_HTTP_PUT, "/v2/members/", true, kv_auth_members_write, s, "DELETE,PUT"},
		{KEEL_HTTP_GET | KEEL_HTTP_HEAD, "/v2/members/leader", false, handle_members_leader, s, NULL},
		{KEEL_HTTP_GET | KEEL_HTTP_HEAD, "/v2/machines", false, handle_machines, s, NULL},
		{KEEL_HTTP_GET, "/version", false, handle_version, s, NULL},
		{KEEL_HTTP_GET, "/health", false, handle_health, s, NULL},
		{KEEL_HTTP_GET, "/v2/stats/store", false, handle_stats_store, s, NULL},
		{KEEL_HTTP_GET, "/v2/stats/self", false, handle_stats_self, s, NULL},
		{KEEL_HTTP_GET, "/metrics", false, handle_metrics, s, NULL},
		{KEEL_HTTP_GET, "/v2/stats/leader", false, handle_stats_leader, s, NULL},
		{KEEL_HTTP_ANY, "/v2/auth/", true, kv_handle_auth, s, NULL},
	};
	struct keel_http_listen listens[8];
	size_t nl = 0;
	for (size_t i = 0; i < cfg->n_client_urls && nl < 8; i++) {
		listens[nl++] = (struct keel_http_listen){
			.url = cfg->client_urls[i],
			.tls = {.cert_file = cfg->cert_file, .key_file = cfg->key_file,
				.client_ca_file = cfg->client_cert_auth ? cfg->trusted_ca_file : NULL},
		};
	}
	struct keel_http_config hc = {
		.listen = listens, .n_listen = nl, .routes = routes, .n_routes = KEEL_ARRAY_SIZE(routes),
		.max_request_entity_size = cfg->max_request_bytes,
		.max_connections = client_conn_limit(),
		.clean_paths = true, /* Go's ServeMux: "/v2/keys/../2" must not reach the store */
	};
	r = keel_http_server_new(loop, &hc, &s->http, err);
	if (r < 0) {
		/* The node is running; stop it properly before giving up. */
		keel_node_stop(s->node, NULL, NULL);
		kv_auth_release(s);
		keel_kv_store_free(s->store);
		keel_free(s->removed);
		json_decref(s->joined_root);
		keel_free(s);
		return r;
	}
	uv_timer_init(loop, &s->timer);
	s->timer.data = s;
	uv_timer_start(&s->timer, on_timer, 100, 100);
	*ret = s;
	return 0;
}

static void part_closed(void *ud)
{
	struct keel_kv_server *s = ud;
	if (--s->closing)
		return;
	void (*cb)(void *) = s->stop_cb;
	void *cud = s->stop_ud;
	kv_auth_release(s);
	keel_kv_store_free(s->store);
	keel_free(s->removed);
	json_decref(s->joined_root);
	keel_free(s);
	if (cb)
		cb(cud);
}

static void timer_closed(uv_handle_t *h)
{
	part_closed(h->data);
}

uint64_t keel_kv_server_member_id(const struct keel_kv_server *s)
{
	return s->cfg.member_id;
}

uint64_t keel_kv_server_cluster_id(const struct keel_kv_server *s)
{
	return s->cfg.cluster_id;
}

void keel_kv_server_stop(struct keel_kv_server *s, void (*cb)(void *ud), void *ud)
{
	s->stopping = true;
	s->stop_cb = cb;
	s->stop_ud = ud;
	expire_waits(s, true);
	kv_expire_watches(s, true);
	kv_member_ops_expire(s, true);
	s->closing = 3;
	uv_close((uv_handle_t *)&s->timer, timer_closed);
	keel_http_server_close(s->http, part_closed, s);
	keel_node_stop(s->node, part_closed, s);
}
