/* /v2/keys: etcd's parseKeyRequest and keysHandler (etcdserver/api/v2http/client.go), on the
 * local store for reads and watches, through Raft for writes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/mem.h"
#include "base/str.h"
#include "kv/server-internal.h"

#define KEYS_PREFIX "/v2/keys"
#define STORE_KEYS_PREFIX "/1"

/* What a parsed keys request holds besides the store request. */
struct keys_req {
	struct keel_kv_req kr;
	bool wait, stream, quorum, no_value;
	uint64_t wait_index;
	char *path; /* "/1" + the URL path, owned */
};

/* Go's strconv.ParseUint(v, 10, 64) of the first value, if the key is present. */
static int form_u64(struct keel_http_req *req, const char *key, uint64_t *ret)
{
	const char *v = keel_http_req_form_value_nth(req, key, 0);
	if (!keel_http_req_form_count(req, key))
		return 0;
	return keel_parse_u64(v, ret) < 0 ? -1 : 0;
}

static int form_bool(struct keel_http_req *req, const char *key, bool *ret)
{
	if (!keel_http_req_form_count(req, key))
		return 0;
	return keel_parse_bool(keel_http_req_form_value_nth(req, key, 0), ret) < 0 ? -1 : 0;
}

/* Returns 0, or an etcd request error code with *cause set (index 0, as NewRequestError). */
static int parse_keys_request(struct keel_http_req *req, struct keys_req *k, const char **cause,
			      char *errbuf, size_t errsize)
{
	struct keel_err perr;
	if (keel_http_req_parse_form(req, &perr) < 0) {
		snprintf(errbuf, errsize, "%s", perr.msg);
		*cause = errbuf;
		return KEEL_KV_ECODE_INVALID_FORM;
	}
	const char *rest = req->path + strlen(KEYS_PREFIX);
	size_t rest_len = req->path_len - strlen(KEYS_PREFIX);
	struct keel_buf p = KEEL_BUF_INIT;
	if (keel_buf_puts(&p, STORE_KEYS_PREFIX) < 0 || keel_buf_append(&p, rest, rest_len) < 0) {
		keel_buf_free(&p);
		return -ENOMEM;
	}
	k->path = keel_buf_steal(&p, NULL);
	k->kr.path = k->path;
	k->kr.path_len = strlen(STORE_KEYS_PREFIX) + rest_len;

	if (form_u64(req, "prevIndex", &k->kr.prev_index) < 0) {
		*cause = "invalid value for \"prevIndex\"";
		return KEEL_KV_ECODE_INDEX_NAN;
	}
	if (form_u64(req, "waitIndex", &k->wait_index) < 0) {
		*cause = "invalid value for \"waitIndex\"";
		return KEEL_KV_ECODE_INDEX_NAN;
	}
	/* In etcd's order, so the same bad request reports the same field first. */
	const struct {
		const char *key;
		bool *dst;
		const char *msg;
	} bools[] = {
		{"recursive", &k->kr.recursive, "invalid value for \"recursive\""},
		{"sorted", &k->kr.sorted, "invalid value for \"sorted\""},
		{"wait", &k->wait, "invalid value for \"wait\""},
		{"dir", &k->kr.dir, "invalid value for \"dir\""},
		{"quorum", &k->quorum, "invalid value for \"quorum\""},
		{"stream", &k->stream, "invalid value for \"stream\""},
	};
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(bools); i++)
		if (form_bool(req, bools[i].key, bools[i].dst) < 0) {
			*cause = bools[i].msg;
			return KEEL_KV_ECODE_INVALID_FIELD;
		}
	if (k->wait && req->method != KEEL_HTTP_GET) {
		*cause = "\"wait\" can only be used with GET requests";
		return KEEL_KV_ECODE_INVALID_FIELD;
	}
	const char *pv = keel_http_req_form_value(req, "prevValue");
	if (keel_http_req_form_count(req, "prevValue") && (!pv || !*pv)) {
		*cause = "\"prevValue\" cannot be empty";
		return KEEL_KV_ECODE_PREV_VALUE_REQUIRED;
	}
	k->kr.prev_value = pv ? pv : "";
	k->kr.prev_value_len = pv ? strlen(pv) : 0;
	if (form_bool(req, "noValueOnSuccess", &k->no_value) < 0) {
		*cause = "invalid value for \"noValueOnSuccess\"";
		return KEEL_KV_ECODE_INVALID_FIELD;
	}
	const char *ttl = keel_http_req_form_value(req, "ttl");
	if (ttl && *ttl) {
		if (form_u64(req, "ttl", &k->kr.ttl) < 0) {
			*cause = "invalid value for \"ttl\"";
			return KEEL_KV_ECODE_TTL_NAN;
		}
		k->kr.has_ttl = true;
	}
	k->kr.prev_exist = KEEL_KV_PREV_EXIST_UNSET;
	if (keel_http_req_form_count(req, "prevExist")) {
		bool pe;
		if (form_bool(req, "prevExist", &pe) < 0) {
			*cause = "invalid value for prevExist";
			return KEEL_KV_ECODE_INVALID_FIELD;
		}
		k->kr.prev_exist = pe;
	}
	if (keel_http_req_form_count(req, "refresh")) {
		if (form_bool(req, "refresh", &k->kr.refresh) < 0) {
			*cause = "invalid value for refresh";
			return KEEL_KV_ECODE_INVALID_FIELD;
		}
		if (k->kr.refresh) {
			const char *val = keel_http_req_form_value(req, "value");
			if (keel_http_req_form_count(req, "value") && val && *val) {
				*cause = "A value was provided on a refresh";
				return KEEL_KV_ECODE_REFRESH_VALUE;
			}
			if (!k->kr.has_ttl) {
				*cause = "No TTL value set";
				return KEEL_KV_ECODE_REFRESH_TTL_REQUIRED;
			}
		}
	}
	const char *val = keel_http_req_form_value(req, "value");
	k->kr.value = val ? val : "";
	k->kr.value_len = val ? strlen(val) : 0;
	return 0;
}

/* ---- watches ---- */

static void watch_unlink(struct kv_watch *wc)
{
	if (wc->prev)
		wc->prev->next = wc->next;
	else
		wc->s->watches = wc->next;
	if (wc->next)
		wc->next->prev = wc->prev;
}

static void watch_closed(struct keel_http_req *req, void *ud)
{
	(void)req;
	struct kv_watch *wc = ud;
	keel_kv_watch_cancel(wc->s->store, &wc->w);
	watch_unlink(wc);
	keel_free(wc);
}

/* End a held watch from our side (its event came, or it timed out): on_close will not run. */
static void watch_end(struct kv_watch *wc)
{
	keel_kv_watch_cancel(wc->s->store, &wc->w);
	keel_http_stream_end(wc->req);
	watch_unlink(wc);
	keel_free(wc);
}

static void watch_event(struct keel_kv_watcher *w, struct keel_kv_event *ev)
{
	struct kv_watch *wc = w->data;
	struct keel_buf body = KEEL_BUF_INIT;
	if (keel_kv_event_json(ev, 0, &body) == 0)
		keel_http_stream_write(wc->req, body.data, body.len);
	keel_buf_free(&body);
	if (!wc->stream)
		watch_end(wc);
}

/* etcd ends a watch after defaultWatchTimeout (5 minutes) with 200 and what it streamed so far
 * (nothing, for a plain long poll): clients then watch again. `all` ends every watch (stop). */
void kv_expire_watches(struct keel_kv_server *s, bool all)
{
	uint64_t now = uv_now(s->loop);
	struct kv_watch *wc = s->watches;
	while (wc) {
		struct kv_watch *next = wc->next;
		if (all || now >= wc->deadline_ms)
			watch_end(wc);
		wc = next;
	}
}

static void watch_headers(struct keel_kv_server *s, struct keel_http_req *req, uint64_t start_index)
{
	char idx[24], raft_idx[24], term[24];
	snprintf(idx, sizeof(idx), "%llu", (unsigned long long)start_index);
	snprintf(raft_idx, sizeof(raft_idx), "%llu", (unsigned long long)keel_node_commit_index(s->node));
	snprintf(term, sizeof(term), "%llu", (unsigned long long)keel_node_term(s->node));
	const struct keel_http_header h[] = {
		{"Content-Type", "application/json"}, {"X-Etcd-Cluster-ID", s->cluster_id_hex},
		{"X-Etcd-Index", idx}, {"X-Raft-Index", raft_idx}, {"X-Raft-Term", term},
	};
	/* Headers go out at once, as etcd flushes them, so a long poll shows up as started. */
	keel_http_stream_start(req, 200, h, KEEL_ARRAY_SIZE(h));
}

static int start_watch(struct keel_kv_server *s, struct keel_http_req *req, struct keys_req *k)
{
	struct kv_watch *wc = keel_calloc(1, sizeof(*wc));
	if (!wc)
		return -ENOMEM;
	wc->s = s;
	wc->req = req;
	wc->stream = k->stream;
	wc->w.data = wc;
	struct keel_kv_event *ev = NULL;
	struct keel_kv_error kerr = {0};
	uint64_t index = keel_kv_store_index(s->store);
	int r = keel_kv_store_watch(s->store, &wc->w, k->kr.path, k->kr.path_len, k->kr.recursive, k->stream,
				    k->wait_index, watch_event, &ev, &kerr);
	if (r == KEEL_KV_FAILED) {
		kv_respond_error(s, req, &kerr, false);
		keel_kv_error_clear(&kerr);
		keel_free(wc);
		return 0;
	}
	if (r < 0) {
		keel_free(wc);
		return r;
	}
	if (r == KEEL_KV_FOUND) {
		/* Answered from the history: one event, then the response ends (etcd does not
		 * keep a stream open in this case either). */
		watch_headers(s, req, index);
		struct keel_buf body = KEEL_BUF_INIT;
		if (keel_kv_event_json(ev, 0, &body) == 0)
			keel_http_stream_write(req, body.data, body.len);
		keel_buf_free(&body);
		keel_http_stream_end(req);
		keel_kv_event_unref(ev);
		keel_free(wc);
		return 0;
	}
	if (keel_http_hold(req, watch_closed, wc) < 0) {
		keel_kv_watch_cancel(s->store, &wc->w);
		keel_free(wc);
		return -ENOMEM;
	}
	wc->deadline_ms = uv_now(s->loop) + (s->cfg.watch_timeout_ms ? s->cfg.watch_timeout_ms : 5 * 60 * 1000);
	wc->next = s->watches;
	if (wc->next)
		wc->next->prev = wc;
	s->watches = wc;
	watch_headers(s, req, keel_kv_watcher_start_index(&wc->w));
	return KEEL_HTTP_HELD;
}

/* ---- quorum reads: a ReadIndex barrier, then the local store ---- */

struct kv_qread {
	struct keel_kv_server *s;
	struct keel_http_req *req; /* NULL once the client left or the read timed out */
	struct kv_qread *prev, *next; /* on s->qreads until the barrier completes */
	uint64_t deadline_ms;
	struct keys_req k;
	bool head;
};

static void keys_req_free(struct keys_req *k)
{
	keel_free(k->path);
	k->path = NULL;
}

static void local_get(struct keel_kv_server *s, struct keel_http_req *req, struct keys_req *k, bool head)
{
	struct keel_kv_event *ev = NULL;
	struct keel_kv_error kerr = {0};
	int r = keel_kv_store_get(s->store, k->kr.path, k->kr.path_len, k->kr.recursive, k->kr.sorted,
				  keel_wall_ns(), &ev, &kerr);
	if (r == 0)
		kv_respond_event(s, req, ev, false, head);
	else if (r == KEEL_KV_FAILED)
		kv_respond_error(s, req, &kerr, head);
	else
		kv_respond_code(s, req, KEEL_KV_ECODE_RAFT_INTERNAL, "out of memory", 0, head);
	keel_kv_event_unref(ev);
	keel_kv_error_clear(&kerr);
}

static void qread_closed(struct keel_http_req *req, void *ud)
{
	(void)req;
	struct kv_qread *q = ud;
	q->req = NULL;
}

static void qread_done(void *ud, int status, uint64_t index)
{
	(void)index;
	struct kv_qread *q = ud;
	if (q->prev)
		q->prev->next = q->next;
	else
		q->s->qreads = q->next;
	if (q->next)
		q->next->prev = q->prev;
	if (q->req) {
		if (status == 0)
			local_get(q->s, q->req, &q->k, q->head);
		else
			kv_respond_code(q->s, q->req, KEEL_KV_ECODE_RAFT_INTERNAL,
					status == -KEEL_ENOT_LEADER ? "etcdserver: no leader"
								    : "etcdserver: request timed out",
					0, q->head);
	}
	keys_req_free(&q->k);
	keel_free(q);
}

/* A barrier can wait forever: a ReadIndex request forwarded to a leader that a partition cut
 * off is never answered while the term stays the same. etcd gives up on a v2 quorum read after
 * its request timeout, with the same answer as for a write. The barrier itself still owns the
 * qread and frees it whenever it completes (at the latest when the node stops). */
void kv_expire_qreads(struct keel_kv_server *s)
{
	uint64_t now = uv_now(s->loop);
	for (struct kv_qread *q = s->qreads; q; q = q->next) {
		if (q->req && now >= q->deadline_ms) {
			kv_respond_code(s, q->req, KEEL_KV_ECODE_RAFT_INTERNAL, "etcdserver: request timed out",
					0, q->head);
			q->req = NULL;
		}
	}
}

/* ---- the handler ---- */

int kv_handle_keys(struct keel_http_req *req, void *ud)
{
	struct keel_kv_server *s = ud;
	bool head = req->method == KEEL_HTTP_HEAD;
	struct keys_req k = {0};
	char errbuf[256];
	const char *cause = "";
	int code = parse_keys_request(req, &k, &cause, errbuf, sizeof(errbuf));
	if (code < 0) {
		keys_req_free(&k);
		return keel_http_error(req, 500, "out of memory");
	}
	if (code > 0) {
		kv_respond_code(s, req, code, cause, 0, head);
		keys_req_free(&k);
		return KEEL_HTTP_DONE;
	}
	/* etcd checks access once the request parsed: auth may hold it for a password check. */
	int access = kv_auth_keys_access(s, req, req->path + strlen(KEYS_PREFIX), req->path_len - strlen(KEYS_PREFIX),
					 k.kr.recursive);
	if (access != KV_AUTH_ALLOW) {
		keys_req_free(&k);
		if (access == KV_AUTH_WAIT)
			return KEEL_HTTP_HELD;
		kv_respond_code(s, req, KEEL_KV_ECODE_UNAUTHORIZED, "Insufficient credentials", 0, head);
		return KEEL_HTTP_DONE;
	}
	int r = KEEL_HTTP_DONE;
	if (req->method == KEEL_HTTP_GET || head) {
		if (k.wait) {
			r = start_watch(s, req, &k);
			if (r < 0) {
				keel_http_error(req, 500, "out of memory");
				r = KEEL_HTTP_DONE;
			}
		} else if (k.quorum) {
			struct kv_qread *q = keel_calloc(1, sizeof(*q));
			if (!q) {
				keel_http_error(req, 500, "out of memory");
			} else {
				*q = (struct kv_qread){.s = s, .req = req, .k = k, .head = head};
				k.path = NULL; /* moved */
				int br = keel_http_hold(req, qread_closed, q);
				if (br == 0)
					br = keel_node_read_barrier(s->node, qread_done, q);
				if (br == 0) {
					q->deadline_ms = uv_now(s->loop) + KV_REQUEST_TIMEOUT_MS;
					q->next = s->qreads;
					if (s->qreads)
						s->qreads->prev = q;
					s->qreads = q;
				}
				if (br < 0) {
					kv_respond_code(s, req, KEEL_KV_ECODE_RAFT_INTERNAL,
							br == -KEEL_ENOT_LEADER ? "etcdserver: no leader"
										: "etcdserver: request timed out",
							0, head);
					keys_req_free(&q->k);
					keel_free(q);
				} else {
					r = KEEL_HTTP_HELD;
				}
			}
		} else {
			local_get(s, req, &k, head);
		}
		keys_req_free(&k);
		return r;
	}

	k.kr.method = req->method == KEEL_HTTP_PUT ? KEEL_KV_PUT
		      : req->method == KEEL_HTTP_POST ? KEEL_KV_POST : KEEL_KV_DELETE;
	/* The member taking the request stamps the time, as etcd computes the expiration here. */
	k.kr.time = keel_wall_ns();
	struct kv_wait *w = keel_calloc(1, sizeof(*w));
	if (!w) {
		keys_req_free(&k);
		return keel_http_error(req, 500, "out of memory");
	}
	w->s = s;
	w->req = req;
	w->no_value = k.no_value;
	w->id = kv_next_request_id(s);
	int pr = kv_propose(s, w->id, &k.kr);
	keys_req_free(&k);
	if (pr < 0) {
		keel_free(w);
		kv_respond_code(s, req, KEEL_KV_ECODE_RAFT_INTERNAL,
				pr == -KEEL_ENOT_LEADER ? "etcdserver: no leader" : "etcdserver: request timed out",
				0, false);
		return KEEL_HTTP_DONE;
	}
	kv_wait_add(s, w);
	return KEEL_HTTP_HELD;
}
