/* /v2/members changes (etcd's membersHandler): POST adds a voting member, DELETE removes one,
 * PUT changes a member's peer URLs. Each is a Raft membership change carrying the peer URLs as
 * JSON in its context, answered when it is applied here. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/jw.h"
#include "base/mem.h"
#include "base/str.h"
#include "kv/server-internal.h"

/* etcd's httptypes.HTTPError body. */
static int member_error(struct keel_kv_server *s, struct keel_http_req *req, int status, const char *msg)
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
	return KEEL_HTTP_DONE;
}

/* Parse {"peerURLs":["http://h:p",...]} into a canonical JSON context (URLs sorted, as etcd
 * sorts them before hashing). Returns the number of URLs (> 0) or -EINVAL. */
static int parse_peer_urls(const struct keel_http_req *req, const char **urls, size_t max, json_t **ret_root,
			   struct keel_buf *ctx)
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
		json_t *u = json_array_get(arr, i);
		const char *v = json_string_value(u);
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
	keel_jw_init(&w, ctx, KEEL_JW_GO_ESCAPE);
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

struct member_op {
	struct keel_kv_server *s;
	struct keel_http_req *req; /* NULL once the client left */
	uint64_t id;
	int created_status;
	char *body;
};

static void op_closed(struct keel_http_req *req, void *ud)
{
	(void)req;
	((struct member_op *)ud)->req = NULL;
}

static void op_done(void *ud, int status, uint64_t index)
{
	(void)index;
	struct member_op *op = ud;
	if (op->req) {
		if (status == 0 && op->body)
			keel_http_respond_json(op->req, op->created_status, op->body, strlen(op->body));
		else if (status == 0)
			keel_http_respond(op->req, op->created_status, NULL, 0, NULL, 0);
		else
			member_error(op->s, op->req, 500, status == -ECANCELED ? "etcdserver: request cancelled"
									    : "etcdserver: request timed out");
	}
	keel_free(op->body);
	keel_free(op);
}

/* Start a membership change on the leader and answer when it applies. */
static int propose_change(struct keel_kv_server *s, struct keel_http_req *req, const struct keel_raft_conf_change *cc,
			  int status, char *body)
{
	struct member_op *op = keel_calloc(1, sizeof(*op));
	if (!op) {
		keel_free(body);
		return member_error(s, req, 500, "out of memory");
	}
	*op = (struct member_op){.s = s, .req = req, .id = cc->node, .created_status = status, .body = body};
	int r = keel_node_propose_conf_change(s->node, cc, op_done, op);
	if (r < 0) {
		keel_free(body);
		keel_free(op);
		if (r == -KEEL_ENOT_LEADER)
			return member_error(s, req, 503, "etcdserver: membership changes go to the leader (keel-kv does not forward them yet)");
		if (r == -EBUSY)
			return member_error(s, req, 409, "etcdserver: another membership change is in progress");
		return member_error(s, req, 409, "etcdserver: the change does not apply to this cluster");
	}
	keel_http_hold(req, op_closed, op);
	return KEEL_HTTP_HELD;
}

int kv_handle_members_add(struct keel_http_req *req, void *ud)
{
	struct keel_kv_server *s = ud;
	const char *urls[KEEL_KV_MAX_URLS];
	json_t *root = NULL;
	struct keel_buf ctx = KEEL_BUF_INIT;
	int n = parse_peer_urls(req, urls, KEEL_KV_MAX_URLS, &root, &ctx);
	if (n < 0) {
		keel_buf_free(&ctx);
		return member_error(s, req, 400, "bad peerURLs: want {\"peerURLs\":[\"http://host:port\",...]}");
	}
	/* etcd refuses a peer URL that a member already has. */
	for (int i = 0; i < n; i++) {
		if (kv_peer_url_taken(s, urls[i])) {
			json_decref(root);
			keel_buf_free(&ctx);
			return member_error(s, req, 409, "etcdserver: peerURL exists");
		}
	}
	uint64_t id = kv_member_id_for((char *const *)urls, (size_t)n, s->cfg.cluster_token);
	struct keel_buf body = KEEL_BUF_INIT;
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
	int fr = keel_jw_finish(&w);
	json_decref(root);
	if (fr < 0 || keel_buf_putc(&body, '\n') < 0) {
		keel_buf_free(&ctx);
		keel_buf_free(&body);
		return member_error(s, req, 500, "out of memory");
	}
	struct keel_raft_conf_change cc = {.type = KEEL_RAFT_ADD_VOTER, .node = id,
					   .context = ctx.data, .context_len = (uint32_t)ctx.len};
	int r = propose_change(s, req, &cc, 201, keel_buf_steal(&body, NULL));
	keel_buf_free(&ctx);
	return r;
}

int kv_handle_member(struct keel_http_req *req, void *ud)
{
	struct keel_kv_server *s = ud;
	const char *idtext = req->path + strlen("/v2/members/");
	char *end;
	uint64_t id = strtoull(idtext, &end, 16);
	if (!*idtext || *end || !id)
		return member_error(s, req, 404, "No such member");
	if (!kv_member_exists(s, id)) {
		char msg[64];
		snprintf(msg, sizeof(msg), "No such member: %s", idtext);
		return member_error(s, req, 404, msg);
	}
	if (req->method == KEEL_HTTP_DELETE) {
		struct keel_raft_conf_change cc = {.type = KEEL_RAFT_REMOVE_NODE, .node = id};
		return propose_change(s, req, &cc, 204, NULL);
	}
	/* PUT: new peer URLs, recorded as a no-op-for-Raft change of the member's attributes. */
	const char *urls[KEEL_KV_MAX_URLS];
	json_t *root = NULL;
	struct keel_buf ctx = KEEL_BUF_INIT;
	if (parse_peer_urls(req, urls, KEEL_KV_MAX_URLS, &root, &ctx) < 0) {
		keel_buf_free(&ctx);
		return member_error(s, req, 400, "bad peerURLs: want {\"peerURLs\":[\"http://host:port\",...]}");
	}
	json_decref(root);
	/* ADD_VOTER of a voter is refused by the core, so the URLs travel as an internal write. */
	int r = kv_propose_member_urls(s, id, ctx.data);
	keel_buf_free(&ctx);
	if (r < 0)
		return member_error(s, req, 500, "etcdserver: request timed out");
	keel_http_respond(req, 204, NULL, 0, NULL, 0);
	return KEEL_HTTP_DONE;
}
