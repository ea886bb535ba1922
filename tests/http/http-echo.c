/* http-echo: a small server on lib/http for tests/integration/test_http_glue.py.
 *
 *   http-echo --listen URL[,cert=FILE,key=FILE,ca=FILE] [--listen ...] [--max-body N]
 *             [--no-keepalive] [--idle-ms N] [--max-conns N]
 *
 * Routes:
 *   /echo, /echo/...           any method: the request as JSON (method, paths, query, form, ...)
 *   /v2/keys, /v2/keys/...     HEAD GET PUT POST DELETE (Allow as etcd lists it): same echo
 *   /only-get                  GET: "ok"
 *   /hold?ms=N                 held, answered "held N" after N ms
 *   /hold?id=NAME              held until /release?id=NAME (answers {"released": count})
 *   /hold?...&brief=1          the same with keel_http_hold_brief (the connection is not watched)
 *   /stream?n=K&ms=M&size=S    K chunks "chunk <i>\n" (padded to S bytes), one every M ms;
 *                              with id=NAME it waits for /release?id=NAME before ending
 *   /closes                    {"closes": on_close calls so far, "held": n, "streams": n}
 *   /fail                      the handler returns an error (500)
 *   /noanswer                  the handler returns without answering (500)
 *   /redispatch?ms=N           held for N ms, then its handler runs again (keel_http_redispatch)
 *                              and answers "redispatched <calls>"
 *
 * --clean-paths turns on Go's ServeMux path cleaning (301 for "..", ".", "//").
 * SIGTERM/SIGINT close the server (held requests get on_close) and exit 0 once it is gone. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "base/buf.h"
#include "base/errors.h"
#include "base/jw.h"
#include "base/log.h"
#include "base/mem.h"
#include "http/http.h"

/* One held request or running stream. The timer is ours: freed in its close callback. */
struct pending {
	uv_timer_t timer;
	struct keel_http_req *req; /* NULL once the request ended */
	struct pending *prev, *next;
	char id[64];
	bool stream;
	unsigned chunks_left, next_chunk;
	unsigned ms;
	size_t size;
	bool wait_release;
	bool closing;
};

static uv_loop_t *loop;
static struct keel_http_server *server;
static struct pending *pendings;
static unsigned long n_closes;
static uv_signal_t sig_term, sig_int;

static void pending_closed(uv_handle_t *h)
{
	keel_free(h->data);
}

/* Drop p: the request is over (answered, or its client left). */
static void pending_drop(struct pending *p)
{
	if (p->closing)
		return;
	p->closing = true;
	p->req = NULL;
	if (p->prev)
		p->prev->next = p->next;
	else
		pendings = p->next;
	if (p->next)
		p->next->prev = p->prev;
	uv_close((uv_handle_t *)&p->timer, pending_closed);
}

static void on_req_close(struct keel_http_req *req, void *ud)
{
	struct pending *p = ud;
	n_closes++;
	/* Calls on the request fail now; check that they do. */
	if (keel_http_respond(req, 200, NULL, 0, "late", 4) != -EPIPE)
		abort();
	pending_drop(p);
}

static struct pending *pending_new(struct keel_http_req *req, const char *id)
{
	struct pending *p = keel_calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	uv_timer_init(loop, &p->timer);
	p->timer.data = p;
	p->req = req;
	snprintf(p->id, sizeof(p->id), "%s", id ? id : "");
	p->next = pendings;
	if (pendings)
		pendings->prev = p;
	pendings = p;
	return p;
}

static unsigned param_uint(struct keel_http_req *req, const char *key, unsigned def)
{
	const char *v = keel_http_form_get(keel_http_req_query(req), key);
	return v && *v ? (unsigned)strtoul(v, NULL, 10) : def;
}

static int respond_buf(struct keel_http_req *req, int status, struct keel_buf *b)
{
	int r = keel_http_respond_json(req, status, b->data, b->len);
	keel_buf_free(b);
	return r;
}

static void write_pairs(struct keel_jw *w, const struct keel_http_form *f)
{
	keel_jw_arr_begin(w);
	for (size_t i = 0; i < f->n; i++) {
		keel_jw_arr_begin(w);
		keel_jw_strn(w, f->params[i].key, f->params[i].key_len);
		keel_jw_strn(w, f->params[i].value, f->params[i].value_len);
		keel_jw_arr_end(w);
	}
	keel_jw_arr_end(w);
}

static void write_opt(struct keel_jw *w, const char *key, const char *v)
{
	keel_jw_key(w, key);
	if (v)
		keel_jw_str(w, v);
	else
		keel_jw_null(w);
}

static int h_echo(struct keel_http_req *req, void *ud)
{
	struct keel_err ferr;
	keel_err_clear(&ferr);
	int frc = keel_http_req_parse_form(req, &ferr);
	struct keel_buf b = KEEL_BUF_INIT;
	struct keel_jw w;
	keel_jw_init(&w, &b, 0);
	keel_jw_obj_begin(&w);
	keel_jw_kstr(&w, "method", req->method_name);
	keel_jw_key(&w, "path");
	keel_jw_strn(&w, req->path, req->path_len);
	keel_jw_kstr(&w, "raw_path", req->raw_path);
	keel_jw_kstr(&w, "raw_query", req->raw_query);
	keel_jw_key(&w, "query");
	write_pairs(&w, keel_http_req_query(req));
	keel_jw_key(&w, "post");
	write_pairs(&w, keel_http_req_post_form(req));
	write_opt(&w, "form_error", frc ? keel_err_msg(&ferr) : NULL);
	/* r.Form[key] for every key sent, in Go's order (body first). */
	keel_jw_key(&w, "form");
	keel_jw_obj_begin(&w);
	const struct keel_http_form *srcs[2] = {keel_http_req_post_form(req), keel_http_req_query(req)};
	for (int s = 0; s < 2; s++) {
		for (size_t i = 0; i < srcs[s]->n; i++) {
			const char *k = srcs[s]->params[i].key;
			bool seen = false; /* print each key once */
			for (int s2 = 0; s2 <= s && !seen; s2++)
				for (size_t j = 0; j < (s2 == s ? i : srcs[s2]->n) && !seen; j++)
					seen = strcmp(srcs[s2]->params[j].key, k) == 0;
			if (seen)
				continue;
			keel_jw_key(&w, k);
			keel_jw_arr_begin(&w);
			size_t n = keel_http_req_form_count(req, k);
			for (size_t v = 0; v < n; v++)
				keel_jw_str(&w, keel_http_req_form_value_nth(req, k, v));
			keel_jw_arr_end(&w);
		}
	}
	keel_jw_obj_end(&w);
	write_opt(&w, "first", keel_http_req_form_value(req, "key"));
	write_opt(&w, "content_type", keel_http_req_header(req, "Content-Type", NULL));
	write_opt(&w, "x_test", keel_http_req_header(req, "x-TEST", NULL));
	keel_jw_ku64(&w, "body_len", req->body_len);
	keel_jw_key(&w, "body");
	keel_jw_strn(&w, req->body ? req->body : "", req->body_len);
	keel_jw_kstr(&w, "remote", keel_http_req_remote_addr(req));
	keel_jw_kbool(&w, "tls", req->tls);
	write_opt(&w, "client_subject", keel_http_req_client_subject(req));
	write_opt(&w, "client_cn", keel_http_req_client_cn(req));
	keel_jw_ku64(&w, "version", (uint64_t)req->version);
	keel_jw_kstr(&w, "route", req->route->path);
	keel_jw_obj_end(&w);
	if (keel_jw_finish(&w) < 0) {
		keel_buf_free(&b);
		return -ENOMEM;
	}
	keel_http_add_header(req, "X-Etcd-Index", "7");
	return respond_buf(req, 200, &b);
}

static int h_only_get(struct keel_http_req *req, void *ud)
{
	return keel_http_respond(req, 200, (const struct keel_http_header[]){{"Content-Type", "text/plain"}}, 1,
				 "ok", 2);
}

static void stream_tick(uv_timer_t *t);

static void hold_fire(uv_timer_t *t)
{
	struct pending *p = t->data;
	if (!p->req)
		return;
	char body[64];
	int n = snprintf(body, sizeof(body), "held %u", p->ms);
	keel_http_respond(p->req, 200, (const struct keel_http_header[]){{"Content-Type", "text/plain"}}, 1,
			  body, (size_t)n);
	pending_drop(p);
}

static int h_hold(struct keel_http_req *req, void *ud)
{
	const char *id = keel_http_form_get(keel_http_req_query(req), "id");
	struct pending *p = pending_new(req, id);
	if (!p)
		return -ENOMEM;
	bool brief = param_uint(req, "brief", 0) != 0;
	if ((brief ? keel_http_hold_brief : keel_http_hold)(req, on_req_close, p) < 0) {
		pending_drop(p);
		return -EIO;
	}
	if (!id) {
		p->ms = param_uint(req, "ms", 100);
		uv_timer_start(&p->timer, hold_fire, p->ms, 0);
	}
	return KEEL_HTTP_HELD;
}

static void stream_finish(struct pending *p)
{
	keel_http_stream_end(p->req);
	pending_drop(p);
}

static void stream_one(struct pending *p)
{
	struct keel_buf b = KEEL_BUF_INIT;
	int r = keel_buf_printf(&b, "chunk %u\n", p->next_chunk++);
	while (!r && b.len < p->size)
		r = keel_buf_putc(&b, b.len + 1 == p->size ? '\n' : '.');
	/* Overwrite the newline of "chunk i\n" only when padding: keep it simple, pad after it. */
	if (!r)
		r = keel_http_stream_write(p->req, b.data, b.len);
	keel_buf_free(&b);
	p->chunks_left--;
}

static void stream_tick(uv_timer_t *t)
{
	struct pending *p = t->data;
	if (!p->req)
		return;
	if (p->chunks_left)
		stream_one(p);
	if (!p->chunks_left) {
		if (!p->wait_release)
			stream_finish(p);
		else
			uv_timer_stop(&p->timer);
	}
}

static int h_stream(struct keel_http_req *req, void *ud)
{
	const char *id = keel_http_form_get(keel_http_req_query(req), "id");
	struct pending *p = pending_new(req, id);
	if (!p)
		return -ENOMEM;
	p->stream = true;
	p->wait_release = id != NULL;
	p->chunks_left = param_uint(req, "n", 3);
	p->ms = param_uint(req, "ms", 50);
	p->size = param_uint(req, "size", 0);
	keel_http_hold(req, on_req_close, p);
	int r = keel_http_stream_start(req, 200, (const struct keel_http_header[]){{"Content-Type", "application/json"},
										   {"X-Etcd-Index", "42"}},
				       2);
	if (r < 0) {
		pending_drop(p);
		return r;
	}
	if (p->ms == 0) {
		while (p->chunks_left)
			stream_one(p);
		if (!p->wait_release)
			stream_finish(p);
	} else {
		uv_timer_start(&p->timer, stream_tick, p->ms, p->ms);
	}
	return KEEL_HTTP_DONE;
}

static int h_release(struct keel_http_req *req, void *ud)
{
	const char *id = keel_http_form_get(keel_http_req_query(req), "id");
	unsigned count = 0;
	struct pending *p = pendings;
	while (p) {
		struct pending *next = p->next;
		if (id && strcmp(p->id, id) == 0 && p->req) {
			if (p->stream) {
				if (!p->chunks_left) {
					stream_finish(p);
					count++;
				}
			} else {
				keel_http_respond(p->req, 200, NULL, 0, "released", 8);
				pending_drop(p);
				count++;
			}
		}
		p = next;
	}
	struct keel_buf b = KEEL_BUF_INIT;
	if (keel_buf_printf(&b, "{\"released\":%u}", count) < 0)
		return -ENOMEM;
	return respond_buf(req, 200, &b);
}

static int h_closes(struct keel_http_req *req, void *ud)
{
	unsigned held = 0, streams = 0;
	for (struct pending *p = pendings; p; p = p->next) {
		if (p->stream)
			streams++;
		else
			held++;
	}
	struct keel_buf b = KEEL_BUF_INIT;
	if (keel_buf_printf(&b, "{\"closes\":%lu,\"held\":%u,\"streams\":%u}", n_closes, held, streams) < 0)
		return -ENOMEM;
	return respond_buf(req, 200, &b);
}

/* First call: hold and arm a timer (req->user counts the calls); when it fires, the handler
 * runs again and answers. */
static void redispatch_fire(uv_timer_t *t)
{
	struct pending *p = t->data;
	if (!p->req)
		return;
	struct keel_http_req *req = p->req;
	pending_drop(p);
	if (keel_http_redispatch(req) < 0)
		abort();
}

static int h_redispatch(struct keel_http_req *req, void *ud)
{
	uintptr_t calls = (uintptr_t)req->user + 1;
	req->user = (void *)calls;
	if (calls > 1) {
		char body[64];
		int n = snprintf(body, sizeof(body), "redispatched %u", (unsigned)calls);
		return keel_http_respond(req, 200, NULL, 0, body, (size_t)n);
	}
	struct pending *p = pending_new(req, NULL);
	if (!p)
		return -ENOMEM;
	if (keel_http_hold(req, on_req_close, p) < 0) {
		pending_drop(p);
		return -EIO;
	}
	uv_timer_start(&p->timer, redispatch_fire, param_uint(req, "ms", 50), 0);
	return KEEL_HTTP_HELD;
}

static int h_fail(struct keel_http_req *req, void *ud)
{
	return -EIO;
}

static int h_noanswer(struct keel_http_req *req, void *ud)
{
	return KEEL_HTTP_DONE;
}

static void on_error(void *ud, int code, const char *msg)
{
	keel_log(KEEL_LOG_WARN, "http error", KEEL_LF_INT("code", code), KEEL_LF_STR("msg", msg));
}

static void on_closed(void *ud)
{
	server = NULL;
	/* Drop what is left (timers of requests already over). */
	while (pendings)
		pending_drop(pendings);
	uv_close((uv_handle_t *)&sig_term, NULL);
	uv_close((uv_handle_t *)&sig_int, NULL);
	keel_log(KEEL_LOG_INFO, "closed", KEEL_LF_INT("closes", (int64_t)n_closes));
}

static void on_signal(uv_signal_t *h, int sig)
{
	keel_log(KEEL_LOG_INFO, "shutting down");
	uv_signal_stop(&sig_term);
	uv_signal_stop(&sig_int);
	if (server)
		keel_http_server_close(server, on_closed, NULL);
}

#define MAX_LISTEN 8

int main(int argc, char **argv)
{
	keel_log_setup("http-echo", KEEL_LOG_INFO, KEEL_LOG_TEXT, 2);
	signal(SIGPIPE, SIG_IGN);
	static struct keel_http_listen listen[MAX_LISTEN];
	size_t n_listen = 0;
	struct keel_http_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--listen") && i + 1 < argc && n_listen < MAX_LISTEN) {
			struct keel_http_listen *l = &listen[n_listen++];
			char *spec = argv[++i];
			char *save = NULL;
			l->url = strtok_r(spec, ",", &save);
			for (char *opt; (opt = strtok_r(NULL, ",", &save));) {
				if (!strncmp(opt, "cert=", 5))
					l->tls.cert_file = opt + 5;
				else if (!strncmp(opt, "key=", 4))
					l->tls.key_file = opt + 4;
				else if (!strncmp(opt, "ca=", 3))
					l->tls.client_ca_file = opt + 3;
			}
		} else if (!strcmp(argv[i], "--max-body") && i + 1 < argc) {
			cfg.max_request_entity_size = strtoul(argv[++i], NULL, 10);
		} else if (!strcmp(argv[i], "--idle-ms") && i + 1 < argc) {
			cfg.idle_timeout_ms = strtoul(argv[++i], NULL, 10);
		} else if (!strcmp(argv[i], "--max-conns") && i + 1 < argc) {
			cfg.max_connections = strtoul(argv[++i], NULL, 10);
		} else if (!strcmp(argv[i], "--no-keepalive")) {
			cfg.disable_keepalive = true;
		} else if (!strcmp(argv[i], "--clean-paths")) {
			cfg.clean_paths = true;
		} else {
			fprintf(stderr, "usage: %s --listen URL[,cert=F,key=F,ca=F] ... [--max-body N] "
					"[--idle-ms N] [--max-conns N] [--no-keepalive] [--clean-paths]\n", argv[0]);
			return 2;
		}
	}
	const unsigned any = KEEL_HTTP_ANY;
	const unsigned keys = KEEL_HTTP_HEAD | KEEL_HTTP_GET | KEEL_HTTP_PUT | KEEL_HTTP_POST | KEEL_HTTP_DELETE;
	const struct keel_http_route routes[] = {
		{any, "/echo", false, h_echo, NULL, NULL},
		{any, "/echo/", true, h_echo, NULL, NULL},
		{keys, "/v2/keys", false, h_echo, NULL, "HEAD,GET,PUT,POST,DELETE"},
		{keys, "/v2/keys/", true, h_echo, NULL, "HEAD,GET,PUT,POST,DELETE"},
		{KEEL_HTTP_GET, "/only-get", false, h_only_get, NULL, NULL},
		{KEEL_HTTP_GET, "/hold", false, h_hold, NULL, NULL},
		{KEEL_HTTP_GET, "/stream", false, h_stream, NULL, NULL},
		{KEEL_HTTP_GET | KEEL_HTTP_POST, "/release", false, h_release, NULL, NULL},
		{KEEL_HTTP_GET, "/closes", false, h_closes, NULL, NULL},
		{KEEL_HTTP_GET, "/fail", false, h_fail, NULL, NULL},
		{KEEL_HTTP_GET, "/noanswer", false, h_noanswer, NULL, NULL},
		{KEEL_HTTP_GET, "/redispatch", false, h_redispatch, NULL, NULL},
	};
	cfg.listen = listen;
	cfg.n_listen = n_listen;
	cfg.routes = routes;
	cfg.n_routes = KEEL_ARRAY_SIZE(routes);
	cfg.on_error = on_error;

	loop = uv_default_loop();
	struct keel_err err;
	keel_err_clear(&err);
	if (keel_http_server_new(loop, &cfg, &server, &err) < 0) {
		keel_log(KEEL_LOG_ERROR, "cannot start", KEEL_LF_STR("error", keel_err_msg(&err)));
		uv_run(loop, UV_RUN_DEFAULT); /* let anything started release itself */
		uv_loop_close(loop);
		return 1;
	}
	uv_signal_init(loop, &sig_term);
	uv_signal_init(loop, &sig_int);
	uv_signal_start(&sig_term, on_signal, SIGTERM);
	uv_signal_start(&sig_int, on_signal, SIGINT);
	for (size_t i = 0; i < n_listen; i++)
		keel_log(KEEL_LOG_INFO, "listening", KEEL_LF_STR("url", listen[i].url),
			 KEEL_LF_INT("port", keel_http_server_port(server, i)));
	uv_run(loop, UV_RUN_DEFAULT);
	int rc = uv_loop_close(loop);
	if (rc)
		keel_log(KEEL_LOG_ERROR, "loop not empty at exit", KEEL_LF_STR("error", uv_strerror(rc)));
	return rc ? 1 : 0;
}
