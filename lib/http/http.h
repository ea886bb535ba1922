/* HTTP/1.1 (+TLS) server glue on h2o 2.2.5 for keel-kv's etcd v2 API (and later fleet's): listeners
 * from URLs, a routing table, a request object with Go-compatible query and form parsing,
 * copied responses, held requests (long polls) and chunked streams that notice when the client
 * goes away. It hides h2o's traps; docs/http.md is the handler author's guide.
 *
 * Threading and callbacks: everything runs on the loop given to keel_http_server_new(), on one
 * thread. Handlers and on_close callbacks are called from the loop, never from inside a
 * keel_http_* call; inside a request's on_close, calls on that request fail with -EPIPE. The
 * process must ignore SIGPIPE (keel_http_server_new checks): a client's reset would otherwise
 * kill it while h2o writes.
 *
 * Only HTTP/1.x is served (no ALPN, no h2c upgrade): the held-request and disconnect machinery
 * below is HTTP/1's. The library never logs; failures after startup go to config.on_error. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "base/errors.h"
#include "http/form.h"

/* etcd's limit on a request body (embed.DefaultMaxRequestBytes). */
#define KEEL_HTTP_DEFAULT_MAX_ENTITY ((size_t)3 << 19) /* 1.5 MiB */
/* How long a connection may sit idle between requests, or take to send one. */
#define KEEL_HTTP_DEFAULT_IDLE_TIMEOUT_MS 60000
/* How long a client may take for its TLS handshake. */
#define KEEL_HTTP_DEFAULT_HANDSHAKE_TIMEOUT_MS 10000

/* Methods, as a mask in routes; a request has exactly one bit set. */
enum keel_http_method {
	KEEL_HTTP_GET = 1u << 0,
	KEEL_HTTP_HEAD = 1u << 1,
	KEEL_HTTP_POST = 1u << 2,
	KEEL_HTTP_PUT = 1u << 3,
	KEEL_HTTP_DELETE = 1u << 4,
	KEEL_HTTP_PATCH = 1u << 5,
	KEEL_HTTP_OPTIONS = 1u << 6,
	KEEL_HTTP_OTHER = 1u << 7, /* any other method token (TRACE, PROPFIND, ...) */
};
#define KEEL_HTTP_ANY 0xffu

/* What a handler returns. */
enum {
	KEEL_HTTP_DONE = 0, /* it answered (keel_http_respond*, or a stream it started) */
	KEEL_HTTP_HELD = 1, /* it keeps the request to answer later (see keel_http_hold) */
};

struct keel_http_server;

/* The request a handler sees. Fields are read-only for handlers (except `user`) and valid until
 * the request ends: until the final response is handed over (keel_http_respond*,
 * keel_http_stream_end) or on_close returns, whichever comes first. After that the pointer is
 * dangling. */
struct keel_http_req {
	unsigned method;         /* one KEEL_HTTP_* bit */
	const char *method_name; /* as sent ("GET"), NUL-terminated */
	const char *path;        /* percent-decoded (Go's r.URL.Path); may hold NUL bytes: use path_len */
	size_t path_len;
	const char *raw_path; /* the request target up to '?', as sent; NUL-terminated */
	const char *raw_query; /* after the first '?', as sent, "" when none (Go's RawQuery) */
	const char *body;      /* the request body, NOT NUL-terminated; NULL and 0 when none */
	size_t body_len;
	int version;           /* 0x100 (HTTP/1.0) or 0x101 */
	bool tls;
	const struct keel_http_route *route; /* the route that matched (its ud is the handler's ud) */
	void *user;                          /* free for the owner of a held request */
};

typedef int (*keel_http_handler_fn)(struct keel_http_req *req, void *ud);
/* The client went away (or the server is closing) before the request ended. The request ends
 * when this returns; the owner drops every reference to it. */
typedef void (*keel_http_close_fn)(struct keel_http_req *req, void *ud);

/* A route: which methods on which path go to which handler. The best route for a path is an
 * exact match, else the longest prefix match; routes with the same path and kind share it and
 * are chosen by method. A path with no route gets 404 "404 page not found" (Go's NotFound); a
 * method no route of the best path accepts gets 405 "Method Not Allowed" with an Allow header
 * (etcd's allowMethod). Paths are matched after percent-decoding, byte for byte. */
struct keel_http_route {
	unsigned methods; /* KEEL_HTTP_* mask */
	const char *path; /* starts with '/' */
	bool prefix;      /* match every path starting with `path` */
	keel_http_handler_fn handler;
	void *ud;
	/* The 405 Allow header value (etcd lists "GET,POST,..." in its own order); NULL: the
	 * methods of the path's routes, in enum order, joined with ",". */
	const char *allow;
};

/* TLS of one https:// listener. */
struct keel_http_tls {
	const char *cert_file; /* PEM, may hold the chain */
	const char *key_file;  /* PEM */
	/* When set, clients must present a certificate that verifies against this CA bundle,
	 * or the handshake fails (etcd --client-cert-auth --trusted-ca-file). */
	const char *client_ca_file;
};

struct keel_http_listen {
	/* "http://127.0.0.1:2379", "https://0.0.0.0:2379", "http://[::1]:2379"; a host name is
	 * resolved once, synchronously, in keel_http_server_new (the first address is used); port
	 * 0 picks a free one (keel_http_server_port tells which). A path other than "/" is
	 * refused. */
	const char *url;
	struct keel_http_tls tls; /* required for https://, ignored for http:// */
};

struct keel_http_config {
	const struct keel_http_listen *listen;
	size_t n_listen; /* at least one */
	const struct keel_http_route *routes;
	size_t n_routes;
	/* Bodies larger than this (Content-Length or chunked) are refused before any handler runs:
	 * "413 Request Entity Too Large", text body "request entity is too large", and the
	 * connection is closed once what the client still sends has been drained, so that it
	 * reads the 413 instead of a reset. 0: KEEL_HTTP_DEFAULT_MAX_ENTITY. */
	size_t max_request_entity_size;
	uint64_t idle_timeout_ms;      /* 0: KEEL_HTTP_DEFAULT_IDLE_TIMEOUT_MS */
	uint64_t handshake_timeout_ms; /* 0: KEEL_HTTP_DEFAULT_HANDSHAKE_TIMEOUT_MS */
	bool disable_keepalive;        /* close every connection after one response */
	/* At most this many connections at once (each costs a descriptor). At the limit the
	 * listeners stop accepting: new connections wait in the kernel's backlog until one
	 * closes, as with etcd's LimitListener. 0: no limit. */
	size_t max_connections;
	/* Go's ServeMux: a path that path.Clean would change (".", "..", "//"; a trailing slash is
	 * kept) gets "301 Moved Permanently" to the cleaned path before any route is looked at,
	 * so a handler never sees ".." (which would let "/v2/keys/../x" leave the keys tree). */
	bool clean_paths;
	/* Failures after startup that cost a connection (accept errors, out of memory). Optional. */
	void (*on_error)(void *ud, int code, const char *msg);
	void *ud;
};

/* Copies the configuration (routes and strings too), creates the TLS contexts and binds every
 * listener, then starts accepting on `loop`. 0 and *ret, or a negative code with err filled
 * (-EINVAL for a bad URL or configuration, -KEEL_EBAD_VALUE for unusable TLS files, -errno from
 * bind/listen/getaddrinfo as -EADDRINUSE etc.); nothing is left behind on failure, except that
 * an error after the loop handles exist (not expected) releases them when the loop next runs. */
int keel_http_server_new(uv_loop_t *loop, const struct keel_http_config *cfg,
			 struct keel_http_server **ret, struct keel_err *err);

/* The port listener i (in config order) is bound to, or -EINVAL. */
int keel_http_server_port(const struct keel_http_server *s, size_t i);

/* Stop: close the listeners and every connection. Requests still held or streaming get
 * on_close (on the loop, after this returns); responses in flight are cut. cb(ud) runs once
 * everything is released, from the loop; the server is gone then. Call once; NULL cb is fine. */
void keel_http_server_close(struct keel_http_server *s, void (*cb)(void *ud), void *ud);

/* ---- the request ---------------------------------------------------------------------------- */

/* The first value of header `name` (any case), NUL-terminated, or NULL; *ret_len if wanted. */
const char *keel_http_req_header(struct keel_http_req *req, const char *name, size_t *ret_len);

/* The URL's query parameters (Go's r.URL.Query(): malformed pairs are dropped silently). Never
 * NULL; an empty form if out of memory. */
const struct keel_http_form *keel_http_req_query(struct keel_http_req *req);

/* Go's r.ParseForm(): parse the URL query and, for POST, PUT and PATCH with Content-Type
 * application/x-www-form-urlencoded, the body. 0, or -KEEL_EPARSE with Go's message in err
 * (the good pairs are still used: etcd answers this with error 210), or -ENOMEM. Repeated calls
 * return the first result. keel_http_req_form_value() calls it implicitly and ignores errors. */
int keel_http_req_parse_form(struct keel_http_req *req, struct keel_err *err);

/* The body's form parameters (Go's r.PostForm; empty unless parsed as described above). */
const struct keel_http_form *keel_http_req_post_form(struct keel_http_req *req);

/* Go's r.Form[key] (body parameters first, then the URL's): the first value (r.FormValue but
 * NULL when the key is absent), the count, and the index-th value. */
const char *keel_http_req_form_value(struct keel_http_req *req, const char *key);
size_t keel_http_req_form_count(struct keel_http_req *req, const char *key);
const char *keel_http_req_form_value_nth(struct keel_http_req *req, const char *key, size_t index);

/* The client's address as Go formats r.RemoteAddr ("127.0.0.1:51234", "[::1]:51234"), or "". */
const char *keel_http_req_remote_addr(struct keel_http_req *req);

/* On a TLS connection whose client presented a verified certificate: its subject (RFC 2253,
 * "CN=client,O=Keel") and its common name. NULL otherwise. */
const char *keel_http_req_client_subject(struct keel_http_req *req);
const char *keel_http_req_client_cn(struct keel_http_req *req);

/* ---- answering ------------------------------------------------------------------------------ */

struct keel_http_header {
	const char *name; /* any case; Content-Length, Transfer-Encoding and Connection are h2o's */
	const char *value;
};

/* Add a response header (copied) before the response starts. 0, -EINVAL, -EALREADY (the
 * response started) or -EPIPE (the request is over). */
int keel_http_add_header(struct keel_http_req *req, const char *name, const char *value);

/* Answer with status (200..999), the headers added so far plus headers[0..n), and a copy of
 * body (len bytes) with Content-Length (204 and 304 get neither; HEAD gets the length without
 * the body). 0: the request has ended, req is dangling. -EINVAL (bad status, header or
 * arguments: nothing was sent, the request is still yours), -EALREADY (a stream runs: end it
 * instead) or -EPIPE (the request is already over). */
int keel_http_respond(struct keel_http_req *req, int status, const struct keel_http_header *headers,
		      size_t n, const void *body, size_t len);
/* keel_http_respond with Content-Type: application/json. */
int keel_http_respond_json(struct keel_http_req *req, int status, const void *body, size_t len);
/* Go's http.Error: text/plain; charset=utf-8, X-Content-Type-Options: nosniff, body msg "\n". */
int keel_http_error(struct keel_http_req *req, int status, const char *msg);

/* Keep the request open after the handler returns (a long poll): answer it later from any loop
 * callback with keel_http_respond* or a stream. Call it in the handler, then return
 * KEEL_HTTP_HELD. From then on the connection is watched: if the client closes it or it fails,
 * on_close(req, ud) runs once (within about a loop iteration; TCP keep-alive probes catch a
 * vanished peer after ~30 s idle plus retries), and the request ends. The request's data is
 * copied out of h2o's input buffer first, so everything in struct keel_http_req stays valid.
 * 0, -EALREADY (already held or answered) or -EPIPE. */
int keel_http_hold(struct keel_http_req *req, keel_http_close_fn on_close, void *ud);

/* keel_http_hold for a request that will be answered within seconds whatever happens (a Raft
 * proposal with its timeout): the connection is not watched, so a client that leaves is noticed
 * only when the answer is written, and on_close runs only if the request ends unanswered for
 * another reason (the server closing). It saves the two epoll_ctl calls that starting and
 * stopping the watch cost per request. Same returns as keel_http_hold. */
int keel_http_hold_brief(struct keel_http_req *req, keel_http_close_fn on_close, void *ud);

/* Run the request's route handler again on a held request, from a loop callback (not from
 * inside a keel_http_* call): for a handler that held the request while some work ran
 * elsewhere (a password check on the thread pool) and now decides afresh. During the call the
 * request is as it was in its first handler call: it must end in an answer, a hold or a
 * stream, or it gets a 500. The old on_close is dropped (it is not called). 0, -EPIPE (the
 * request is over) or -EINVAL (not held: answered, or streaming). */
int keel_http_redispatch(struct keel_http_req *req);

/* Streams: a chunked response (HTTP/1.1 and status 200; otherwise close-delimited) written in
 * pieces. stream_start sends the status line and headers at once (watch clients wait for
 * them). It watches the connection like keel_http_hold (use hold first to pass on_close; a
 * stream started without it has none). stream_write copies data and queues it behind the one
 * write h2o allows in flight; stream_end finishes (after the queue drains). 0, -EINVAL,
 * -EALREADY, -EPIPE (client gone: stop writing, on_close has run or will), -ENOMEM. */
int keel_http_stream_start(struct keel_http_req *req, int status, const struct keel_http_header *headers,
			   size_t n);
int keel_http_stream_write(struct keel_http_req *req, const void *data, size_t len);
int keel_http_stream_end(struct keel_http_req *req);
/* Bytes queued or in flight on a stream (a slow reader shows up here). */
size_t keel_http_stream_pending(const struct keel_http_req *req);

/* Go's http.StatusText, or "" for an unknown code. */
const char *keel_http_status_text(int status);
