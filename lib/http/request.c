/* Requests: routing, the request object, responses, held requests and streams. The contract is
 * http.h; server.c owns connections.
 *
 * What h2o 2.2.5 does that shapes this file (all checked against its source and in
 * tests/integration/test_http_glue.py):
 *  - A request's method, path, headers and (Content-Length) body point into the socket's input
 *    buffer, and h2o stops reading the socket before it calls the handler. Nothing notices a
 *    client that leaves while its request is held. So a held or streaming request is
 *    "watched": we start reading the socket ourselves (h2o_socket_read_start) and take an end
 *    of stream or an error as the client leaving. Reading may grow or move the input buffer,
 *    so first everything of the request that points into it (h2o's copies and ours) is copied
 *    into the request's pool ("detach"). Bytes a client pipelines meanwhile stay in the input
 *    buffer for h2o to parse once the response is complete; a client that sends more than
 *    WATCH_MAX_INPUT of them is treated as gone.
 *  - Ending a request whose client left: we shut the socket down and hand h2o a response (an
 *    error state for a stream); its write fails and h2o closes the connection through its
 *    own error path, which disposes the request. Nothing is ever sent to the departed client.
 *  - Only one h2o_send may be in flight: the next one waits for the generator's proceed. And
 *    an empty IN_PROGRESS h2o_send after the headers are out makes h2o 2.2.5's HTTP/1 layer
 *    finish the response (finalostream_send calls on_send_complete when it has no buffers),
 *    so empty writes are never passed on.
 *  - The empty h2o_send that flushes a stream's headers early only reaches the HTTP/1 layer
 *    when no output filter sits in between: h2o_ostream_send_next turns an empty IN_PROGRESS
 *    send into a deferred proceed. h2o's chunked encoder is such a filter, so streams frame
 *    their chunks themselves and set Transfer-Encoding: chunked, which makes h2o's encoder
 *    step aside (it skips responses that already have the header).
 *  - The request object is a ref-counted chunk of h2o's request pool: its dispose hook runs
 *    when h2o releases the request for any reason (response complete, connection failed,
 *    server closing), which is where an owner that still holds the request gets on_close. */
#include "http/http-internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/x509.h>

#include "base/mem.h"

/* Pipelined bytes a held request's client may send before we give up on it. */
#define WATCH_MAX_INPUT ((size_t)64 << 10)

static h2o_generator_t final_generator = {NULL, NULL};

/* ---- small helpers -------------------------------------------------------------------------- */

static struct keel__http_req *priv(struct keel_http_req *req)
{
	return keel_container_of(req, struct keel__http_req, pub);
}

static char *pool_strndup(h2o_req_t *h, const char *s, size_t len)
{
	return h2o_strdup(&h->pool, s ? s : "", s ? len : 0).base;
}

static const struct {
	const char *name;
	size_t len;
	unsigned bit;
} methods[] = {
	{"GET", 3, KEEL_HTTP_GET},       {"HEAD", 4, KEEL_HTTP_HEAD},     {"POST", 4, KEEL_HTTP_POST},
	{"PUT", 3, KEEL_HTTP_PUT},       {"DELETE", 6, KEEL_HTTP_DELETE}, {"PATCH", 5, KEEL_HTTP_PATCH},
	{"OPTIONS", 7, KEEL_HTTP_OPTIONS},
};

static unsigned method_bit(h2o_iovec_t m)
{
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(methods); i++)
		if (m.len == methods[i].len && memcmp(m.base, methods[i].name, m.len) == 0)
			return methods[i].bit;
	return KEEL_HTTP_OTHER;
}

const char *keel_http_status_text(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 102: return "Processing";
	case 103: return "Early Hints";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 203: return "Non-Authoritative Information";
	case 204: return "No Content";
	case 205: return "Reset Content";
	case 206: return "Partial Content";
	case 207: return "Multi-Status";
	case 208: return "Already Reported";
	case 226: return "IM Used";
	case 300: return "Multiple Choices";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 305: return "Use Proxy";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 402: return "Payment Required";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 406: return "Not Acceptable";
	case 407: return "Proxy Authentication Required";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 411: return "Length Required";
	case 412: return "Precondition Failed";
	case 413: return "Request Entity Too Large";
	case 414: return "Request URI Too Long";
	case 415: return "Unsupported Media Type";
	case 416: return "Requested Range Not Satisfiable";
	case 417: return "Expectation Failed";
	case 418: return "I'm a teapot";
	case 421: return "Misdirected Request";
	case 422: return "Unprocessable Entity";
	case 423: return "Locked";
	case 424: return "Failed Dependency";
	case 425: return "Too Early";
	case 426: return "Upgrade Required";
	case 428: return "Precondition Required";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 451: return "Unavailable For Legal Reasons";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	case 506: return "Variant Also Negotiates";
	case 507: return "Insufficient Storage";
	case 508: return "Loop Detected";
	case 510: return "Not Extended";
	case 511: return "Network Authentication Required";
	default: return "";
	}
}

static const char *reason_of(int status)
{
	const char *t = keel_http_status_text(status);
	return *t ? t : "Status";
}

static bool bodyless_status(int status)
{
	return status < 200 || status == 204 || status == 304;
}

/* ---- headers ---------------------------------------------------------------------------------- */

static bool header_name_ok(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= ' ' || c >= 0x7f || c == ':')
			return false;
	}
	return true;
}

static bool header_value_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0')
			return false;
	return true;
}

/* Copies name and value into the pool. Content-Length, Transfer-Encoding and Connection are
 * h2o's to write and are dropped. -EINVAL for a name or value that would break the framing. */
static int add_response_header(h2o_req_t *h, const char *name, const char *value)
{
	if (!name || !value)
		return -EINVAL;
	size_t nlen = strlen(name), vlen = strlen(value);
	if (!header_name_ok(name, nlen) || !header_value_ok(value, vlen))
		return -EINVAL;
	char lower[64];
	const h2o_token_t *token = NULL;
	if (nlen < sizeof(lower)) {
		for (size_t i = 0; i < nlen; i++)
			lower[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] + 32 : name[i]);
		lower[nlen] = '\0';
		token = h2o_lookup_token(lower, nlen);
	}
	if (token == H2O_TOKEN_CONTENT_LENGTH || token == H2O_TOKEN_TRANSFER_ENCODING ||
	    token == H2O_TOKEN_CONNECTION)
		return 0;
	char *n = pool_strndup(h, name, nlen);
	char *v = pool_strndup(h, value, vlen);
	if (token)
		h2o_add_header(&h->pool, &h->res.headers, token, n, v, vlen);
	else
		h2o_add_header_by_str(&h->pool, &h->res.headers, n, nlen, 0, n, v, vlen);
	return 0;
}

static int add_headers(h2o_req_t *h, const struct keel_http_header *headers, size_t n)
{
	if (n && !headers)
		return -EINVAL;
	/* Check them all first: a bad one must leave the response untouched. */
	for (size_t i = 0; i < n; i++)
		if (!headers[i].name || !headers[i].value ||
		    !header_name_ok(headers[i].name, strlen(headers[i].name)) ||
		    !header_value_ok(headers[i].value, strlen(headers[i].value)))
			return -EINVAL;
	for (size_t i = 0; i < n; i++)
		add_response_header(h, headers[i].name, headers[i].value);
	return 0;
}

const char *keel_http_req_header(struct keel_http_req *req, const char *name, size_t *ret_len)
{
	if (!req || !name)
		return NULL;
	struct keel__http_req *r = priv(req);
	if (r->disposed)
		return NULL;
	size_t nlen = strlen(name);
	/* h2o lower-cases request header names as it parses them. */
	for (size_t i = 0; i < r->h->headers.size; i++) {
		const h2o_header_t *e = &r->h->headers.entries[i];
		if (e->name->len == nlen && strncasecmp(e->name->base, name, nlen) == 0) {
			if (ret_len)
				*ret_len = e->value.len;
			return pool_strndup(r->h, e->value.base, e->value.len);
		}
	}
	return NULL;
}

/* ---- detaching and watching ------------------------------------------------------------------- */

static void pin(h2o_req_t *h, h2o_iovec_t *v)
{
	if (v->base)
		*v = h2o_strdup(&h->pool, v->base, v->len);
}

/* Copy everything that may point into the socket's input buffer into the pool: h2o's own view
 * of the request (it looks at method, headers and version again when the response goes out)
 * and ours. After this, reading the socket cannot invalidate anything. */
static void detach(struct keel__http_req *r)
{
	if (r->detached)
		return;
	r->detached = true;
	h2o_req_t *h = r->h;
	pin(h, &h->input.authority);
	pin(h, &h->input.method);
	pin(h, &h->input.path);
	pin(h, &h->authority);
	pin(h, &h->method);
	pin(h, &h->path);
	pin(h, &h->path_normalized);
	pin(h, &h->upgrade);
	pin(h, &h->entity);
	for (size_t i = 0; i < h->headers.size; i++) {
		h2o_header_t *e = &h->headers.entries[i];
		if (!h2o_iovec_is_token(e->name))
			pin(h, e->name); /* the h2o_iovec_t itself lives in the pool */
		if (e->orig_name)
			e->orig_name = h2o_strdup(&h->pool, e->orig_name, e->name->len).base;
		pin(h, &e->value);
	}
	r->pub.body = r->pub.body_len ? h->entity.base : NULL;
}

static void unwatch(struct keel__http_req *r)
{
	if (!r->watching)
		return;
	r->watching = false;
	struct keel__http_conn *c = r->conn;
	if (c && c->watched == r) {
		c->watched = NULL;
		if (c->sock)
			h2o_socket_read_stop(c->sock);
	}
}

/* The request is answered: it stops watching, but the socket keeps reading. h2o starts reading
 * for the next request as soon as the answer is written, and with libuv a stop followed by a
 * start costs two epoll_ctl calls (a watcher whose events dropped to none is added again: EEXIST,
 * then MOD), a third of the system calls of a held PUT. Bytes that arrive in between stop the
 * reading after all (keel__http_watch_on_read) and wait in h2o's buffer for the next request. */
static void unwatch_answered(struct keel__http_req *r)
{
	if (!r->watching)
		return;
	r->watching = false;
	struct keel__http_conn *c = r->conn;
	if (c && c->watched == r)
		c->watched = NULL;
}

static void watch(struct keel__http_req *r)
{
	struct keel__http_conn *c = r->conn;
	if (r->watching || !c || !c->sock)
		return;
	detach(r);
	r->watching = true;
	r->input_mark = c->sock->input->size;
	c->watched = r;
	h2o_socket_read_start(c->sock, keel__http_watch_on_read);
}

/* Tell the owner, once, that its request is over without an answer. */
static void notify_close(struct keel__http_req *r)
{
	if (r->notified)
		return;
	r->notified = true;
	if (r->on_close) {
		r->in_close_cb = true;
		r->on_close(&r->pub, r->close_ud);
		r->in_close_cb = false;
	}
}

static void send_error_state(struct keel__http_req *r)
{
	if (r->h2o_stopped || r->disposed)
		return;
	r->h2o_stopped = true;
	h2o_send(r->h, NULL, 0, H2O_SEND_STATE_ERROR); /* may dispose the request right here */
}

/* The client left (or the server is closing): end the request without answering. */
static void client_gone(struct keel__http_req *r)
{
	enum keel__http_req_state prev = r->state;
	unwatch(r);
	r->state = KEEL__REQ_GONE;
	if (prev == KEEL__REQ_HELD || prev == KEEL__REQ_STREAMING)
		notify_close(r);
	else
		r->notified = true;
	struct keel__http_conn *c = r->conn;
	/* Nothing more for this client: make h2o's next write fail so it closes the connection. */
	if (c && c->sock && c->fd >= 0)
		shutdown(c->fd, SHUT_RDWR);
	if (prev == KEEL__REQ_HELD) {
		r->h->http1_is_persistent = 0;
		h2o_send_error_generic(r->h, 499, "Client Closed Request", "",
				       H2O_SEND_ERROR_HTTP1_CLOSE_CONNECTION);
	} else if (r->inflight) {
		r->abort_pending = true; /* finished in proceed */
	} else if (prev == KEEL__REQ_STREAMING || prev == KEEL__REQ_ENDED) {
		send_error_state(r);
	}
}

void keel__http_watch_on_read(h2o_socket_t *sock, const char *err)
{
	struct keel__http_conn *c = sock->on_close.data;
	if (!c || c->magic != KEEL__HTTP_CONN_MAGIC || c->sock != sock || !c->watched) {
		h2o_socket_read_stop(sock);
		return;
	}
	struct keel__http_req *r = c->watched;
	if (!err && sock->input->size - r->input_mark <= WATCH_MAX_INPUT)
		return; /* pipelined bytes: h2o parses them after this response */
	client_gone(r);
}

/* ---- the request's life in h2o's pool -------------------------------------------------------- */

static void req_dispose(void *p)
{
	struct keel__http_req *r = p;
	r->disposed = true;
	if (r->conn && r->conn->watched == r)
		r->conn->watched = NULL;
	r->watching = false;
	if (r->state == KEEL__REQ_HELD || r->state == KEEL__REQ_STREAMING) {
		r->state = KEEL__REQ_GONE;
		notify_close(r);
	}
	keel_buf_free(&r->out);
	keel_buf_free(&r->queue);
	keel_http_form_free(&r->query);
	keel_http_form_free(&r->post);
}

static void send_buf(struct keel__http_req *r, struct keel_buf *b, h2o_send_state_t state)
{
	h2o_iovec_t v = h2o_iovec_init(b->data, b->len);
	if (state != H2O_SEND_STATE_IN_PROGRESS) {
		unwatch(r);
		r->h2o_stopped = true;
	} else {
		r->inflight = true;
	}
	h2o_send(r->h, b->len ? &v : NULL, b->len ? 1 : 0, state);
}

static void gen_proceed(h2o_generator_t *g, h2o_req_t *h)
{
	struct keel__http_req *r = keel_container_of(g, struct keel__http_req, gen);
	r->inflight = false;
	keel_buf_reset(&r->out);
	if (r->abort_pending) {
		r->abort_pending = false;
		send_error_state(r);
		return;
	}
	if (r->queue.len) {
		struct keel_buf t = r->out;
		r->out = r->queue;
		r->queue = t;
		send_buf(r, &r->out, r->end_pending ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
	} else if (r->end_pending) {
		send_buf(r, &r->out, H2O_SEND_STATE_FINAL);
	}
}

static void gen_stop(h2o_generator_t *g, h2o_req_t *h)
{
	struct keel__http_req *r = keel_container_of(g, struct keel__http_req, gen);
	r->h2o_stopped = true;
	r->inflight = false;
}

/* ---- answering -------------------------------------------------------------------------------- */

/* Whether the owner may still answer: 0, -EPIPE (over) or -EALREADY (a stream runs). */
static int may_answer(struct keel__http_req *r)
{
	if (r->in_close_cb || r->disposed)
		return -EPIPE;
	switch (r->state) {
	case KEEL__REQ_HANDLER:
	case KEEL__REQ_HELD:
		return 0;
	case KEEL__REQ_STREAMING:
		return -EALREADY;
	default:
		return -EPIPE;
	}
}

int keel_http_add_header(struct keel_http_req *req, const char *name, const char *value)
{
	if (!req)
		return -EINVAL;
	struct keel__http_req *r = priv(req);
	int rc = may_answer(r);
	if (rc)
		return rc;
	return add_response_header(r->h, name, value);
}

int keel_http_respond(struct keel_http_req *req, int status, const struct keel_http_header *headers,
		      size_t n, const void *body, size_t len)
{
	if (!req || status < 200 || status > 999 || (len && !body))
		return -EINVAL;
	struct keel__http_req *r = priv(req);
	int rc = may_answer(r);
	if (rc)
		return rc;
	h2o_req_t *h = r->h;
	rc = add_headers(h, headers, n);
	if (rc)
		return rc;
	unwatch_answered(r);
	r->state = KEEL__REQ_ENDED;
	r->notified = true;
	h->res.status = status;
	h->res.reason = reason_of(status);
	h2o_iovec_t v = {NULL, 0};
	if (bodyless_status(status)) {
		h->res.content_length = SIZE_MAX;
	} else {
		h->res.content_length = len;
		if (len && r->pub.method != KEEL_HTTP_HEAD) {
			v.base = h2o_mem_alloc_pool(&h->pool, len);
			memcpy(v.base, body, len);
			v.len = len;
		}
	}
	r->h2o_stopped = true;
	h2o_start_response(h, &final_generator);
	h2o_send(h, v.len ? &v : NULL, v.len ? 1 : 0, H2O_SEND_STATE_FINAL);
	return 0;
}

int keel_http_respond_json(struct keel_http_req *req, int status, const void *body, size_t len)
{
	static const struct keel_http_header json[] = {{"Content-Type", "application/json"}};
	return keel_http_respond(req, status, json, 1, body, len);
}

int keel_http_error(struct keel_http_req *req, int status, const char *msg)
{
	static const struct keel_http_header text[] = {
		{"Content-Type", "text/plain; charset=utf-8"},
		{"X-Content-Type-Options", "nosniff"},
	};
	if (!req || !msg)
		return -EINVAL;
	struct keel__http_req *r = priv(req);
	int rc = may_answer(r);
	if (rc)
		return rc;
	size_t len = strlen(msg);
	char *body = h2o_mem_alloc_pool(&r->h->pool, len + 1);
	memcpy(body, msg, len);
	body[len] = '\n';
	return keel_http_respond(req, status, text, KEEL_ARRAY_SIZE(text), body, len + 1);
}

int keel_http_hold(struct keel_http_req *req, keel_http_close_fn on_close, void *ud)
{
	if (!req)
		return -EINVAL;
	struct keel__http_req *r = priv(req);
	if (r->in_close_cb || r->disposed)
		return -EPIPE;
	if (r->state != KEEL__REQ_HANDLER)
		return r->state == KEEL__REQ_GONE || r->state == KEEL__REQ_ENDED ? -EPIPE : -EALREADY;
	r->on_close = on_close;
	r->close_ud = ud;
	r->state = KEEL__REQ_HELD;
	watch(r);
	return 0;
}

int keel_http_hold_brief(struct keel_http_req *req, keel_http_close_fn on_close, void *ud)
{
	if (!req)
		return -EINVAL;
	struct keel__http_req *r = priv(req);
	if (r->in_close_cb || r->disposed)
		return -EPIPE;
	if (r->state != KEEL__REQ_HANDLER)
		return r->state == KEEL__REQ_GONE || r->state == KEEL__REQ_ENDED ? -EPIPE : -EALREADY;
	r->on_close = on_close;
	r->close_ud = ud;
	r->state = KEEL__REQ_HELD;
	detach(r); /* as a watched one: the request's data stays valid whatever h2o does */
	return 0;
}

int keel_http_stream_start(struct keel_http_req *req, int status, const struct keel_http_header *headers,
			   size_t n)
{
	if (!req || status < 200 || status > 999 || status == 204 || status == 304)
		return -EINVAL;
	struct keel__http_req *r = priv(req);
	int rc = may_answer(r);
	if (rc)
		return rc;
	h2o_req_t *h = r->h;
	rc = add_headers(h, headers, n);
	if (rc)
		return rc;
	h->res.status = status;
	h->res.reason = reason_of(status);
	h->res.content_length = SIZE_MAX;
	if (h->version >= 0x101 && r->pub.method != KEEL_HTTP_HEAD) {
		r->chunked = true;
		h2o_add_header(&h->pool, &h->res.headers, H2O_TOKEN_TRANSFER_ENCODING, NULL, H2O_STRLIT("chunked"));
	} else if (r->pub.method != KEEL_HTTP_HEAD) {
		/* HTTP/1.0 has no chunks: the body ends with the connection. */
		h->http1_is_persistent = 0;
	}
	r->state = KEEL__REQ_STREAMING;
	r->gen.proceed = gen_proceed;
	r->gen.stop = gen_stop;
	watch(r);
	h2o_start_response(h, &r->gen);
	/* Flush the status line and headers now: a watcher waits for them. */
	r->inflight = true;
	h2o_send(h, NULL, 0, H2O_SEND_STATE_IN_PROGRESS);
	return 0;
}

static int stream_check(struct keel__http_req *r)
{
	if (r->in_close_cb || r->disposed)
		return -EPIPE;
	if (r->state == KEEL__REQ_STREAMING)
		return 0;
	return r->state == KEEL__REQ_HANDLER || r->state == KEEL__REQ_HELD ? -EINVAL : -EPIPE;
}

/* One chunk (HTTP/1.1) or the bytes as they are (HTTP/1.0: the body ends at close). */
static int append_chunk(struct keel__http_req *r, struct keel_buf *b, const void *data, size_t len)
{
	size_t old = b->len;
	int rc = 0;
	if (r->chunked) {
		char head[24];
		int n = snprintf(head, sizeof(head), "%zx\r\n", len);
		rc = keel_buf_append(b, head, (size_t)n);
	}
	if (!rc)
		rc = keel_buf_append(b, data, len);
	if (!rc && r->chunked)
		rc = keel_buf_append(b, "\r\n", 2);
	if (rc) {
		keel_buf_truncate(b, old);
		return -ENOMEM;
	}
	return 0;
}

int keel_http_stream_write(struct keel_http_req *req, const void *data, size_t len)
{
	if (!req || (len && !data))
		return -EINVAL;
	struct keel__http_req *r = priv(req);
	int rc = stream_check(r);
	if (rc)
		return rc;
	if (len == 0 || r->pub.method == KEEL_HTTP_HEAD)
		return 0;
	if (r->inflight)
		return append_chunk(r, &r->queue, data, len);
	rc = append_chunk(r, &r->out, data, len);
	if (rc)
		return rc;
	send_buf(r, &r->out, H2O_SEND_STATE_IN_PROGRESS);
	return 0;
}

int keel_http_stream_end(struct keel_http_req *req)
{
	if (!req)
		return -EINVAL;
	struct keel__http_req *r = priv(req);
	int rc = stream_check(r);
	if (rc)
		return rc;
	struct keel_buf *b = r->inflight ? &r->queue : &r->out;
	if (r->chunked && keel_buf_append(b, "0\r\n\r\n", 5) < 0)
		return -ENOMEM;
	r->state = KEEL__REQ_ENDED;
	r->notified = true;
	if (r->inflight)
		r->end_pending = true;
	else
		send_buf(r, &r->out, H2O_SEND_STATE_FINAL);
	return 0;
}

size_t keel_http_stream_pending(const struct keel_http_req *req)
{
	if (!req)
		return 0;
	const struct keel__http_req *r = keel_container_of(req, const struct keel__http_req, pub);
	if (r->disposed)
		return 0;
	return r->out.len + r->queue.len;
}

/* ---- query and form --------------------------------------------------------------------------- */

static void parse_query_once(struct keel__http_req *r)
{
	if (r->query_parsed)
		return;
	r->query_parsed = true;
	keel_err_clear(&r->query_err);
	r->query_result = keel_http_form_parse(&r->query, r->pub.raw_query, strlen(r->pub.raw_query),
					       &r->query_err);
}

const struct keel_http_form *keel_http_req_query(struct keel_http_req *req)
{
	struct keel__http_req *r = priv(req);
	parse_query_once(r); /* Go's URL.Query() drops malformed pairs silently */
	return &r->query;
}

int keel_http_req_parse_form(struct keel_http_req *req, struct keel_err *err)
{
	if (!req)
		return -EINVAL;
	struct keel__http_req *r = priv(req);
	if (!r->form_parsed) {
		r->form_parsed = true;
		int post_rc = 0;
		struct keel_err post_err;
		keel_err_clear(&post_err);
		if (req->method & (KEEL_HTTP_POST | KEEL_HTTP_PUT | KEEL_HTTP_PATCH)) {
			size_t ctlen;
			const char *ct = keel_http_req_header(req, "content-type", &ctlen);
			if (ct && keel_http_is_form_content_type(ct, ctlen))
				post_rc = keel_http_form_parse(&r->post, req->body, req->body_len, &post_err);
		}
		parse_query_once(r);
		/* Go's ParseForm returns the body's error, else the URL's. */
		if (post_rc == -ENOMEM || r->query_result == -ENOMEM) {
			r->form_result = keel_err_set(&r->form_err, -ENOMEM, "out of memory parsing the form");
		} else if (post_rc) {
			r->form_result = post_rc;
			r->form_err = post_err;
		} else if (r->query_result) {
			r->form_result = r->query_result;
			r->form_err = r->query_err;
		}
	}
	if (r->form_result && err)
		*err = r->form_err;
	return r->form_result;
}

const struct keel_http_form *keel_http_req_post_form(struct keel_http_req *req)
{
	keel_http_req_parse_form(req, NULL);
	return &priv(req)->post;
}

size_t keel_http_req_form_count(struct keel_http_req *req, const char *key)
{
	if (!req || !key)
		return 0;
	keel_http_req_parse_form(req, NULL);
	struct keel__http_req *r = priv(req);
	return keel_http_form_count(&r->post, key) + keel_http_form_count(&r->query, key);
}

const char *keel_http_req_form_value_nth(struct keel_http_req *req, const char *key, size_t index)
{
	if (!req || !key)
		return NULL;
	keel_http_req_parse_form(req, NULL);
	struct keel__http_req *r = priv(req);
	size_t in_post = keel_http_form_count(&r->post, key);
	if (index < in_post)
		return keel_http_form_get_nth(&r->post, key, index);
	return keel_http_form_get_nth(&r->query, key, index - in_post);
}

const char *keel_http_req_form_value(struct keel_http_req *req, const char *key)
{
	return keel_http_req_form_value_nth(req, key, 0);
}

/* ---- connection facts ------------------------------------------------------------------------- */

const char *keel_http_req_remote_addr(struct keel_http_req *req)
{
	if (!req)
		return "";
	struct keel__http_req *r = priv(req);
	if (r->remote || r->disposed)
		return r->remote ? r->remote : "";
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	socklen_t len = r->h->conn->callbacks->get_peername(r->h->conn, (struct sockaddr *)&ss);
	char host[INET6_ADDRSTRLEN] = "", out[INET6_ADDRSTRLEN + 16] = "";
	if (len && ss.ss_family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		snprintf(out, sizeof(out), "%s:%u", host, ntohs(a->sin_port));
	} else if (len && ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) { /* Go shows the IPv4 form */
			inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], host, sizeof(host));
			snprintf(out, sizeof(out), "%s:%u", host, ntohs(a->sin6_port));
		} else {
			inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
			snprintf(out, sizeof(out), "[%s]:%u", host, ntohs(a->sin6_port));
		}
	}
	r->remote = pool_strndup(r->h, out, strlen(out));
	return r->remote;
}

static X509 *peer_cert(struct keel__http_req *r)
{
	if (r->disposed || !r->conn || !r->conn->ssl || !r->conn->sock)
		return NULL;
	SSL *ssl = r->conn->ssl;
	if (SSL_get_verify_result(ssl) != X509_V_OK)
		return NULL;
	return SSL_get1_peer_certificate(ssl);
}

const char *keel_http_req_client_subject(struct keel_http_req *req)
{
	if (!req)
		return NULL;
	struct keel__http_req *r = priv(req);
	X509 *x = peer_cert(r);
	if (!x)
		return NULL;
	const char *out = NULL;
	BIO *b = BIO_new(BIO_s_mem());
	if (b && X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) >= 0) {
		char *p;
		long n = BIO_get_mem_data(b, &p);
		if (n >= 0)
			out = pool_strndup(r->h, p, (size_t)n);
	}
	BIO_free(b);
	X509_free(x);
	return out;
}

const char *keel_http_req_client_cn(struct keel_http_req *req)
{
	if (!req)
		return NULL;
	struct keel__http_req *r = priv(req);
	X509 *x = peer_cert(r);
	if (!x)
		return NULL;
	const char *out = NULL;
	X509_NAME *name = X509_get_subject_name(x);
	int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
	if (i >= 0) {
		unsigned char *utf8 = NULL;
		int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
		if (n >= 0)
			out = pool_strndup(r->h, (const char *)utf8, (size_t)n);
		OPENSSL_free(utf8);
	}
	X509_free(x);
	return out;
}

/* ---- routing ---------------------------------------------------------------------------------- */

static bool route_matches(const struct keel__http_route *rt, const char *path, size_t len)
{
	if (rt->pub.prefix)
		return len >= rt->path_len && memcmp(path, rt->path, rt->path_len) == 0;
	return len == rt->path_len && memcmp(path, rt->path, len) == 0;
}

static bool same_pattern(const struct keel__http_route *a, const struct keel__http_route *b)
{
	return a->pub.prefix == b->pub.prefix && a->path_len == b->path_len &&
	       memcmp(a->path, b->path, a->path_len) == 0;
}

/* The best route for path (exact beats prefix, longer prefix beats shorter), or NULL. */
static const struct keel__http_route *best_route(struct keel_http_server *srv, const char *path, size_t len)
{
	const struct keel__http_route *best = NULL;
	for (size_t i = 0; i < srv->n_routes; i++) {
		const struct keel__http_route *rt = &srv->routes[i];
		if (!route_matches(rt, path, len))
			continue;
		if (!best || (best->pub.prefix && !rt->pub.prefix) ||
		    (best->pub.prefix && rt->pub.prefix && rt->path_len > best->path_len))
			best = rt;
	}
	return best;
}

static void method_not_allowed(struct keel__http_req *r, const struct keel__http_route *best)
{
	struct keel_http_server *srv = r->srv;
	const char *allow = NULL;
	unsigned mask = 0;
	for (size_t i = 0; i < srv->n_routes; i++) {
		const struct keel__http_route *rt = &srv->routes[i];
		if (!same_pattern(rt, best))
			continue;
		mask |= rt->pub.methods;
		if (!allow && rt->allow)
			allow = rt->allow;
	}
	char built[64] = "";
	if (!allow) {
		size_t o = 0;
		for (size_t i = 0; i < KEEL_ARRAY_SIZE(methods); i++)
			if (mask & methods[i].bit)
				o += (size_t)snprintf(built + o, sizeof(built) - o, "%s%s", o ? "," : "",
						      methods[i].name);
		allow = built;
	}
	add_response_header(r->h, "Allow", allow);
	keel_http_error(&r->pub, 405, "Method Not Allowed");
}

/* ---- Go's ServeMux path cleaning ------------------------------------------------------------ */

/* Go's cleanPath: path.Clean, keeping a trailing slash. p (decoded, starts with '/') is len
 * bytes; out has room for len + 1 bytes. Returns the cleaned length. */
static size_t clean_path(const char *p, size_t len, char *out)
{
	size_t o = 1;
	out[0] = '/';
	for (size_t i = 0; i < len;) {
		while (i < len && p[i] == '/')
			i++;
		size_t j = i;
		while (j < len && p[j] != '/')
			j++;
		size_t n = j - i;
		if (n == 0 || (n == 1 && p[i] == '.')) {
			/* empty or ".": nothing */
		} else if (n == 2 && p[i] == '.' && p[i + 1] == '.') {
			while (o > 1 && out[o - 1] != '/')
				o--;
			if (o > 1)
				o--; /* the slash before the dropped element */
		} else {
			if (o > 1)
				out[o++] = '/';
			memcpy(out + o, p + i, n);
			o += n;
		}
		i = j;
	}
	if (len > 1 && p[len - 1] == '/' && o > 1)
		out[o++] = '/';
	return o;
}

/* Go's url.PathEscape rules for a path (shouldEscape with encodePath) onto b. */
static int escape_path(struct keel_buf *b, const char *p, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			     strchr("-_.~$&+,/:;=@", c) != NULL;
		int rc = plain && c ? keel_buf_putc(b, (char)c)
				    : keel_buf_append(b, (char[]){'%', hex[c >> 4], hex[c & 15]}, 3);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Go's http.Redirect(w, r, url, 301) as ServeMux sends it for an unclean path: Location, and
 * for GET (HEAD: headers only) an HTML body naming the target. */
static void redirect_clean(struct keel__http_req *r, const char *clean, size_t len)
{
	struct keel_http_req *req = &r->pub;
	struct keel_buf url = KEEL_BUF_INIT, body = KEEL_BUF_INIT;
	int rc = escape_path(&url, clean, len);
	if (rc == 0 && req->raw_query[0])
		rc = keel_buf_printf(&url, "?%s", req->raw_query);
	bool get = req->method == KEEL_HTTP_GET, head = req->method == KEEL_HTTP_HEAD;
	if (rc == 0 && get) {
		rc = keel_buf_puts(&body, "<a href=\"");
		for (size_t i = 0; rc == 0 && i < url.len; i++) {
			const char *e = NULL;
			switch (url.data[i]) {
			case '&': e = "&amp;"; break;
			case '\'': e = "&#39;"; break;
			case '<': e = "&lt;"; break;
			case '>': e = "&gt;"; break;
			case '"': e = "&#34;"; break;
			}
			rc = e ? keel_buf_puts(&body, e) : keel_buf_putc(&body, url.data[i]);
		}
		if (rc == 0)
			rc = keel_buf_puts(&body, "\">Moved Permanently</a>.\n\n");
	}
	if (rc < 0) {
		keel_http_error(req, 500, "Internal Server Error");
	} else {
		const struct keel_http_header h[] = {
			{"Location", url.data}, {"Content-Type", "text/html; charset=utf-8"},
		};
		keel_http_respond(req, 301, h, get || head ? 2 : 1, body.data, body.len);
	}
	keel_buf_free(&url);
	keel_buf_free(&body);
}

/* ---- dispatch ------------------------------------------------------------------------------- */

/* Run the route's handler and make sure the request ends in an answer, a hold or a stream. */
static void run_handler(struct keel__http_req *r)
{
	struct keel_http_req *req = &r->pub;
	int ret = req->route->handler(req, req->route->ud);
	if (r->state == KEEL__REQ_HANDLER) {
		if (ret == KEEL_HTTP_HELD)
			keel_http_hold(req, NULL, NULL);
		else
			keel_http_error(req, 500, "Internal Server Error");
	}
}

int keel_http_redispatch(struct keel_http_req *req)
{
	if (!req)
		return -EINVAL;
	struct keel__http_req *r = priv(req);
	if (r->in_close_cb || r->disposed || r->state == KEEL__REQ_GONE || r->state == KEEL__REQ_ENDED)
		return -EPIPE;
	if (r->state != KEEL__REQ_HELD)
		return -EINVAL;
	/* Still watched: a client that leaves during the handler is noticed once it returns,
	 * by whoever holds the request then. */
	r->state = KEEL__REQ_HANDLER;
	r->on_close = NULL;
	r->close_ud = NULL;
	run_handler(r);
	return 0;
}

/* The one h2o handler: builds the request, routes it, runs the handler, and makes sure every
 * request ends in an answer, a hold or a stream. Always returns 0 (handled). */
int keel__http_on_req(h2o_handler_t *self, h2o_req_t *h)
{
	struct keel_http_server *srv = ((struct keel__http_handler *)self)->srv;
	if (!srv->keepalive || srv->closing)
		h->http1_is_persistent = 0;

	struct keel__http_req *r = h2o_mem_alloc_shared(&h->pool, sizeof(*r), req_dispose);
	memset(r, 0, sizeof(*r));
	r->h = h;
	r->srv = srv;
	r->conn = keel__http_conn_of(h);
	keel_http_form_init(&r->query);
	keel_http_form_init(&r->post);
	keel_buf_init(&r->out);
	keel_buf_init(&r->queue);

	struct keel_http_req *req = &r->pub;
	req->method = method_bit(h->method);
	req->method_name = pool_strndup(h, h->method.base, h->method.len);
	req->version = h->version;
	req->tls = r->conn ? r->conn->listener->ssl_ctx != NULL : false;
	req->body_len = h->entity.base ? h->entity.len : 0;
	req->body = req->body_len ? h->entity.base : NULL;

	if (req->body_len > srv->max_entity) {
		/* Only a Content-Length of exactly max_entity + 1 gets here (server.c); answer as h2o
		 * answers the others. The body was read whole, so the connection may go on. */
		keel_http_respond(req, 413, (const struct keel_http_header[]){{"Content-Type", "text/plain; charset=utf-8"}},
				  1, "request entity is too large", 27);
		return 0;
	}

	const char *target = h->input.path.base;
	size_t tlen = h->input.path.len;
	size_t qat = h->input.query_at;
	size_t plen = qat != SIZE_MAX && qat <= tlen ? qat : tlen;
	req->raw_path = pool_strndup(h, target, plen);
	req->raw_query = plen < tlen ? pool_strndup(h, target + plen + 1, tlen - plen - 1) : "";

	char *decoded = h2o_mem_alloc_pool(&h->pool, plen + 1);
	if (plen == 0 || target[0] != '/' ||
	    keel_http_unescape(target, plen, KEEL_HTTP_UNESCAPE_PATH, decoded, &req->path_len, NULL) < 0) {
		/* Go's server refuses a request target it cannot parse with a bare 400. */
		h->http1_is_persistent = 0;
		keel_http_respond(req, 400, (const struct keel_http_header[]){{"Content-Type", "text/plain; charset=utf-8"}},
				  1, "400 Bad Request", 15);
		return 0;
	}
	req->path = decoded;
	if (srv->clean_paths) {
		char *clean = h2o_mem_alloc_pool(&h->pool, req->path_len + 1);
		size_t clen = clean_path(req->path, req->path_len, clean);
		if (clen != req->path_len || memcmp(clean, req->path, clen) != 0) {
			redirect_clean(r, clean, clen);
			return 0;
		}
	}

	const struct keel__http_route *best = best_route(srv, req->path, req->path_len);
	if (!best) {
		keel_http_error(req, 404, "404 page not found");
		return 0;
	}
	const struct keel__http_route *rt = NULL;
	for (size_t i = 0; i < srv->n_routes && !rt; i++)
		if ((srv->routes[i].pub.methods & req->method) && same_pattern(&srv->routes[i], best))
			rt = &srv->routes[i];
	if (!rt) {
		method_not_allowed(r, best);
		return 0;
	}
	req->route = &rt->pub;
	run_handler(r);
	return 0;
}
