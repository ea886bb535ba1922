/* /v2/members changes (etcd's membersHandler): POST adds a voting member, DELETE removes one,
 * PUT changes a member's peer URLs. Any member takes them: adding and removing are Raft
 * membership changes that a follower forwards to the leader (keel_node_propose_conf_change_
 * forward), new peer URLs an ordinary replicated write of the member's raftAttributes. Each
 * carries a request id; the request is answered when that change is applied on this member, or
 * with etcd's 500 "Internal Server Error" after etcd's timeout. Also here: the list of members
 * removed for good (etcd's /0/removed_members), which peers consult to tell a removed member so. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/jw.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "kv/server-internal.h"

/* A membership request waiting for its change to be applied here. */
struct member_op {
	struct member_op *next;
	struct keel_kv_server *s;
	struct keel_http_req *req; /* NULL once the client left */
	uint64_t id;               /* the request id the change carries */
	uint64_t removes;          /* DELETE: the member it removes */
	uint64_t deadline_ms;
	int status;                /* the answer once applied: 201 (with body) or 204 */
	char *body;
};

/* etcd's httptypes.HTTPError body. */
static void member_error_respond(struct keel_kv_server *s, struct keel_http_req *req, int status, const char *msg)
{
	struct keel_buf b = KEEL_BUF_INIT;
	struct keel_jw w;
	keel_jw_init(&w, &b, KEEL_JW_GO_ESCAPE);
	keel_jw_obj_begin(&w);
	keel_jw_kstr(&w, "message", msg);
	keel_jw_obj_end(&w);
	if (keel_jw_finish(&w) == 0 && keel_buf_putc(&b, '\n') == 0) {
		kv_common_headers(s, req);
		keel_http_respond_json(req, status, b.data, b.len);
	} else {
		keel_http_error(req, 500, "out of memory");
	}
	keel_buf_free(&b);
}

static int member_error(struct keel_kv_server *s, struct keel_http_req *req, int status, const char *msg)
{
	member_error_respond(s, req, status, msg);
	return KEEL_HTTP_DONE;
}

/* What etcd answers for every failure that is not about the request itself: a timeout, no
 * leader, a change the leader refused (etcd's writeError turns them all into this). */
#define INTERNAL_ERROR "Internal Server Error"

/* ---- the context of a membership change ---- */

/* A change's context: 0x01, the request id (u64, little-endian), then the member's
 * raftAttributes JSON (added members) or nothing. Entries written before request ids existed
 * hold the JSON alone (it starts with '{'), bootstrap entries nothing. */
#define CONTEXT_TAG 0x01

int kv_conf_context_encode(struct keel_buf *b, uint64_t req_id, const char *json, size_t len)
{
	uint8_t tag = CONTEXT_TAG;
	int r = keel_buf_append(b, &tag, 1);
	r = r ? r : keel_buf_put_le64(b, req_id);
	if (!r && len)
		r = keel_buf_append(b, json, len);
	return r;
}

void kv_conf_context_decode(const void *ctx, size_t len, uint64_t *req_id, const char **json, size_t *json_len)
{
	const uint8_t *p = ctx;
	*req_id = 0;
	*json = ctx;
	*json_len = len;
	if (len >= 9 && p[0] == CONTEXT_TAG) {
		*req_id = keel_le64(p + 1);
		*json = (const char *)p + 9;
		*json_len = len - 9;
	}
}

/* ---- waiting for the change ---- */

static void op_closed(struct keel_http_req *req, void *ud)
{
	(void)req;
	((struct member_op *)ud)->req = NULL;
}

static void op_free(struct member_op *op)
{
	keel_free(op->body);
	keel_free(op);
}

/* Hold req until the change with request id `id` is applied here. Takes body. */
static int op_hold(struct keel_kv_server *s, struct keel_http_req *req, uint64_t id, int status, char *body,
		   uint64_t removes)
{
	struct member_op *op = keel_calloc(1, sizeof(*op));
	if (!op) {
		keel_free(body);
		return member_error(s, req, 500, INTERNAL_ERROR);
	}
	*op = (struct member_op){
		.s = s, .req = req, .id = id, .status = status, .body = body, .removes = removes,
		/* etcd's v2 request timeout: 5 s plus two election timeouts. */
		.deadline_ms = uv_now(s->loop) + KV_REQUEST_TIMEOUT_MS + 2 * (uint64_t)s->election_ms,
		.next = s->member_ops,
	};
	s->member_ops = op;
	keel_http_hold(req, op_closed, op);
	return KEEL_HTTP_HELD;
}

static void op_answer(struct keel_kv_server *s, struct member_op *op)
{
	if (op->req) {
		kv_common_headers(s, op->req);
		if (op->body)
			keel_http_respond_json(op->req, op->status, op->body, strlen(op->body));
		else
			keel_http_respond(op->req, op->status, NULL, 0, NULL, 0);
	}
	op_free(op);
}

void kv_member_op_applied(struct keel_kv_server *s, uint64_t id)
{
	for (struct member_op **p = &s->member_ops; *p; p = &(*p)->next) {
		struct member_op *op = *p;
		if (op->id != id)
			continue;
		*p = op->next;
		op_answer(s, op);
		return;
	}
}

void kv_member_ops_removed_self(struct keel_kv_server *s)
{
	struct member_op **p = &s->member_ops;
	while (*p) {
		struct member_op *op = *p;
		if (op->removes != s->cfg.member_id) {
			p = &op->next;
			continue;
		}
		/* A member that removed itself through itself hears of it from its peers (it
		 * is out of the configuration before the entry can reach it): done all the same. */
		*p = op->next;
		op_answer(s, op);
	}
}

void kv_member_ops_expire(struct keel_kv_server *s, bool all)
{
	uint64_t now = uv_now(s->loop);
	struct member_op **p = &s->member_ops;
	while (*p) {
		struct member_op *op = *p;
		if (!all && op->req && op->deadline_ms > now) {
			p = &op->next;
			continue;
		}
		*p = op->next;
		if (op->req)
			member_error_respond(s, op->req, 500, INTERNAL_ERROR);
		op_free(op);
	}
}

/* Propose a membership change carrying a fresh request id and hold req until it applies. */
static int propose_change(struct keel_kv_server *s, struct keel_http_req *req, enum keel_raft_conf_change_type type,
			  uint64_t member, const char *json, size_t json_len, int status, char *body)
{
	uint64_t id = kv_next_request_id(s);
	struct keel_buf ctx = KEEL_BUF_INIT;
	if (kv_conf_context_encode(&ctx, id, json, json_len) < 0) {
		keel_buf_free(&ctx);
		keel_free(body);
		return member_error(s, req, 500, INTERNAL_ERROR);
	}
	struct keel_raft_conf_change cc = {.type = type, .node = member, .context = ctx.data,
					   .context_len = (uint32_t)ctx.len};
	/* Refused at once (no leader known, another change in progress on this leader, ...):
	 * etcd answers those with the same 500 as a timeout. */
	int r = keel_node_propose_conf_change_forward(s->node, &cc);
	keel_buf_free(&ctx);
	if (r < 0) {
		keel_free(body);
		return member_error(s, req, 500, INTERNAL_ERROR);
	}
	return op_hold(s, req, id, status, body, type == KEEL_RAFT_REMOVE_NODE ? member : 0);
}

/* ---- --strict-reconfig-check (etcd's mayAddMember and mayRemoveMember) ---- */

#define HEALTH_INTERVAL_MS 5000 /* etcd's HealthInterval: connected at least this long counts */

/* Started: the member has published its name (etcd's IsStarted). */
static bool member_started(struct keel_kv_server *s, uint64_t id)
{
	char path[96];
	snprintf(path, sizeof(path), "/0/members/%" PRIx64 "/attributes", id);
	struct keel_kv_event *ev = NULL;
	struct keel_kv_error kerr = {0};
	bool started = false;
	if (keel_kv_store_get(s->store, path, strlen(path), false, false, 0, &ev, &kerr) == 0 && ev->get_json) {
		json_error_t jerr;
		json_t *root = json_loadb(ev->get_json, ev->get_json_len, 0, &jerr);
		json_t *attrs = NULL;
		const char *v = root ? json_string_value(json_object_get(root, "value")) : NULL;
		if (v)
			attrs = json_loads(v, 0, &jerr);
		const char *name = attrs ? json_string_value(json_object_get(attrs, "name")) : NULL;
		started = name && *name;
		json_decref(attrs);
		json_decref(root);
	}
	keel_kv_event_unref(ev);
	keel_kv_error_clear(&kerr);
	return started;
}

/* This member, or one connected to it both ways since at least HEALTH_INTERVAL_MS. */
static bool connected_long_enough(struct keel_kv_server *s, uint64_t id)
{
	if (id == s->cfg.member_id)
		return true;
	uint64_t since = keel_node_peer_active_since(s->node, id), now = uv_now(s->loop);
	return since && now >= HEALTH_INTERVAL_MS && since <= now - HEALTH_INTERVAL_MS;
}

static bool refuse_reconfig(const char *what, const char *why)
{
	keel_log(KEEL_LOG_WARN, what, KEEL_LF_STR("reason", why));
	return false;
}

static bool may_add_member(struct keel_kv_server *s)
{
	if (!s->cfg.strict_reconfig_check)
		return true;
	const struct keel_raft_conf *c = keel_raft_conf(keel_node_raft(s->node));
	uint32_t members = 1, started = 0; /* the one being added counts, unstarted */
	for (uint32_t i = 0; i < c->n_voters; i++) {
		started += member_started(s, c->voters[i]);
		members++;
	}
	if (!(started == 1 && members == 2) && started < members / 2 + 1)
		return refuse_reconfig("rejecting member add request; not enough healthy members",
				       "etcdserver: re-configuration failed due to not enough started members");
	for (uint32_t i = 0; i < c->n_voters; i++)
		if (!connected_long_enough(s, c->voters[i]))
			return refuse_reconfig("rejecting member add request; local member has not been connected to "
					       "all peers, reconfigure breaks active quorum", "etcdserver: unhealthy cluster");
	return true;
}

static bool may_remove_member(struct keel_kv_server *s, uint64_t id)
{
	if (!s->cfg.strict_reconfig_check)
		return true;
	const struct keel_raft_conf *c = keel_raft_conf(keel_node_raft(s->node));
	if (!keel_raft_conf_has_voter(c, id))
		return true; /* not a voter (unknown ids are answered later) */
	uint32_t members = 0, started = 0;
	for (uint32_t i = 0; i < c->n_voters; i++) {
		if (c->voters[i] == id)
			continue;
		started += member_started(s, c->voters[i]);
		members++;
	}
	if (started < members / 2 + 1)
		return refuse_reconfig("rejecting member remove request; not enough healthy members",
				       "etcdserver: re-configuration failed due to not enough started members");
	/* A member that is down is no part of the active quorum: removing it is safe. */
	if (id != s->cfg.member_id && !keel_node_peer_active_since(s->node, id))
		return true;
	int active = 0;
	for (uint32_t i = 0; i < c->n_voters; i++)
		active += connected_long_enough(s, c->voters[i]);
	if (active - 1 < 1 + ((int)c->n_voters - 1) / 2)
		return refuse_reconfig("rejecting member remove request; local member has not been connected to all "
				       "peers, reconfigure breaks active quorum", "etcdserver: unhealthy cluster");
	return true;
}

/* ---- the requests ---- */

/* Parse {"peerURLs":["http://h:p",...]} into urls (sorted, as etcd sorts them before hashing)
 * and their canonical raftAttributes JSON. Returns the number of URLs (> 0) or -EINVAL. The
 * strings point into *ret_root. */
static int parse_peer_urls(const struct keel_http_req *req, const char **urls, size_t max, json_t **ret_root,
			   struct keel_buf *attrs)
{
	json_error_t jerr;
	json_t *root = json_loadb(req->body ? req->body : "", req->body_len, 0, &jerr);
	json_t *arr = root ? json_object_get(root, "peerURLs") : NULL;
	size_t n = json_is_array(arr) ? json_array_size(arr) : 0;
	if (n == 0 || n > max) {
		json_decref(root);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		const char *v = json_string_value(json_array_get(arr, i));
		char scheme[8], host[256];
		uint16_t port;
		if (!v || keel_kv_parse_url(v, scheme, sizeof(scheme), host, sizeof(host), &port) < 0) {
			json_decref(root);
			return -EINVAL;
		}
		size_t j = i;
		while (j > 0 && strcmp(urls[j - 1], v) > 0) {
			urls[j] = urls[j - 1];
			j--;
		}
		urls[j] = v;
	}
	struct keel_jw w;
	keel_jw_init(&w, attrs, KEEL_JW_GO_ESCAPE);
	keel_jw_obj_begin(&w);
	keel_jw_key(&w, "peerURLs");
	keel_jw_arr_begin(&w);
	for (size_t i = 0; i < n; i++)
		keel_jw_str(&w, urls[i]);
	keel_jw_arr_end(&w);
	keel_jw_obj_end(&w);
	if (keel_jw_finish(&w) < 0) {
		json_decref(root);
		return -ENOMEM;
	}
	*ret_root = root;
	return (int)n;
}

#define BAD_PEER_URLS "bad peerURLs: want {\"peerURLs\":[\"http://host:port\",...]}"

int kv_handle_members_add(struct keel_http_req *req, void *ud)
{
	struct keel_kv_server *s = ud;
	const char *urls[KEEL_KV_MAX_URLS];
	json_t *root = NULL;
	struct keel_buf attrs = KEEL_BUF_INIT;
	int n = parse_peer_urls(req, urls, KEEL_KV_MAX_URLS, &root, &attrs);
	if (n < 0) {
		keel_buf_free(&attrs);
		return member_error(s, req, 400, BAD_PEER_URLS);
	}
	/* etcd checks the quorum before the ids and URLs (those at apply time); its answer is
	 * writeError's 500 for ErrNotEnoughStartedMembers and ErrUnhealthy alike. */
	if (!may_add_member(s)) {
		json_decref(root);
		keel_buf_free(&attrs);
		return member_error(s, req, 500, INTERNAL_ERROR);
	}
	/* etcd's v2 members handler: membership.NewMember("", peerURLs, "", &now), so the id hashes
	 * the sorted URLs and the time in seconds. The new member learns it from its peers when it
	 * starts (server_join.c), and a member added again on the same peer URL after a removal gets
	 * a new id (one added within the same second gets the old one, and is refused as in etcd). */
	char secs[24];
	snprintf(secs, sizeof(secs), "%" PRId64, (int64_t)(keel_wall_ns() / 1000000000));
	uint64_t id = kv_member_id_for((char *const *)urls, (size_t)n, secs);
	const char *conflict = NULL;
	for (int i = 0; i < n && !conflict; i++)
		if (kv_peer_url_taken(s, urls[i], 0))
			conflict = "membership: peerURL exists";
	if (!conflict && kv_member_exists(s, id))
		conflict = "membership: ID exists";
	if (!conflict && kv_is_removed(s, id))
		conflict = "membership: ID removed";
	struct keel_buf body = KEEL_BUF_INIT;
	if (!conflict) {
		struct keel_jw w;
		char hex[17];
		snprintf(hex, sizeof(hex), "%" PRIx64, id);
		keel_jw_init(&w, &body, KEEL_JW_GO_ESCAPE);
		keel_jw_obj_begin(&w);
		keel_jw_kstr(&w, "id", hex);
		keel_jw_kstr(&w, "name", "");
		keel_jw_key(&w, "peerURLs");
		keel_jw_arr_begin(&w);
		for (int i = 0; i < n; i++)
			keel_jw_str(&w, urls[i]);
		keel_jw_arr_end(&w);
		keel_jw_key(&w, "clientURLs");
		keel_jw_arr_begin(&w);
		keel_jw_arr_end(&w);
		keel_jw_obj_end(&w);
		if (keel_jw_finish(&w) < 0 || keel_buf_putc(&body, '\n') < 0)
			conflict = "";
	}
	json_decref(root);
	int r;
	if (conflict && *conflict)
		r = member_error(s, req, 409, conflict);
	else if (conflict) /* out of memory */
		r = member_error(s, req, 500, INTERNAL_ERROR);
	else
		r = propose_change(s, req, KEEL_RAFT_ADD_VOTER, id, attrs.data, attrs.len, 201,
				   keel_buf_steal(&body, NULL));
	keel_buf_free(&body);
	keel_buf_free(&attrs);
	return r;
}

int kv_handle_member(struct keel_http_req *req, void *ud)
{
	struct keel_kv_server *s = ud;
	const char *idtext = req->path + strlen("/v2/members/");
	char *end;
	char msg[96];
	size_t digits = strspn(idtext, "0123456789abcdefABCDEF");
	uint64_t id = digits && digits <= 16 ? strtoull(idtext, &end, 16) : 0;
	if (!id || idtext[digits]) {
		snprintf(msg, sizeof(msg), "No such member: %.64s", idtext);
		return member_error(s, req, 404, msg);
	}
	if (kv_is_removed(s, id)) {
		if (req->method != KEEL_HTTP_DELETE)
			return member_error(s, req, 500, INTERNAL_ERROR); /* etcd: ErrIDRemoved, unmapped */
		snprintf(msg, sizeof(msg), "Member permanently removed: %" PRIx64, id);
		return member_error(s, req, 410, msg);
	}
	if (!kv_member_exists(s, id)) {
		snprintf(msg, sizeof(msg), "No such member: %" PRIx64, id);
		return member_error(s, req, 404, msg);
	}
	if (req->method == KEEL_HTTP_DELETE)
		return may_remove_member(s, id) ? propose_change(s, req, KEEL_RAFT_REMOVE_NODE, id, NULL, 0, 204, NULL)
						: member_error(s, req, 500, INTERNAL_ERROR);

	/* PUT: new peer URLs, a replicated write of the member's raftAttributes (the core has no
	 * "update" change: its configuration holds ids only). */
	const char *urls[KEEL_KV_MAX_URLS];
	json_t *root = NULL;
	struct keel_buf attrs = KEEL_BUF_INIT;
	int n = parse_peer_urls(req, urls, KEEL_KV_MAX_URLS, &root, &attrs);
	if (n < 0) {
		keel_buf_free(&attrs);
		return member_error(s, req, 400, BAD_PEER_URLS);
	}
	bool taken = false;
	for (int i = 0; i < n && !taken; i++)
		taken = kv_peer_url_taken(s, urls[i], id);
	json_decref(root);
	int r;
	if (taken) {
		r = member_error(s, req, 409, "membership: peerURL exists");
	} else {
		uint64_t rid = kv_next_request_id(s);
		r = kv_propose_member_urls(s, rid, id, attrs.data) < 0 ? member_error(s, req, 500, INTERNAL_ERROR)
								      : op_hold(s, req, rid, 204, NULL, 0);
	}
	keel_buf_free(&attrs);
	return r;
}

/* ---- members removed for good ---- */

bool kv_is_removed(const struct keel_kv_server *s, uint64_t id)
{
	for (size_t i = 0; i < s->n_removed; i++)
		if (s->removed[i] == id)
			return true;
	return false;
}

void kv_removed_add(struct keel_kv_server *s, uint64_t id)
{
	if (kv_is_removed(s, id))
		return;
	if (s->n_removed == s->cap_removed) {
		size_t cap = s->cap_removed ? 2 * s->cap_removed : 8;
		uint64_t *p = keel_reallocarray(s->removed, cap, sizeof(*p));
		if (!p)
			return; /* the store has it; a peer answering it as a member does no harm */
		s->removed = p;
		s->cap_removed = cap;
	}
	s->removed[s->n_removed++] = id;
}

/* After a snapshot replaced the store: the list is what /0/removed_members holds. */
void kv_removed_reload(struct keel_kv_server *s)
{
	s->n_removed = 0;
	struct keel_kv_event *ev = NULL;
	struct keel_kv_error kerr = {0};
	static const char dir[] = "/0/removed_members";
	if (keel_kv_store_get(s->store, dir, strlen(dir), false, false, 0, &ev, &kerr) == 0 && ev->get_json) {
		json_error_t jerr;
		json_t *root = json_loadb(ev->get_json, ev->get_json_len, 0, &jerr);
		json_t *nodes = root ? json_object_get(root, "nodes") : NULL;
		size_t i;
		json_t *m;
		json_array_foreach(nodes, i, m) {
			const char *key = json_string_value(json_object_get(m, "key"));
			const char *slash = key ? strrchr(key, '/') : NULL;
			if (slash)
				kv_removed_add(s, strtoull(slash + 1, NULL, 16));
		}
		json_decref(root);
	}
	keel_kv_event_unref(ev);
	keel_kv_error_clear(&kerr);
}
