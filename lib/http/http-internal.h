/* What server.c (listeners, connections, TLS, shutdown) and request.c (routing, requests,
 * responses, held requests and streams) share. Not for use outside lib/http. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <h2o.h>
#include <openssl/ssl.h>
#include <uv.h>

#include "base/buf.h"
#include "http/http.h"

#define KEEL__HTTP_CONN_MAGIC 0x6b68636eu /* "khcn" */

struct keel__http_req;

/* One accepted connection. We own the uv_tcp_t; h2o owns the h2o_socket_t wrapped around it and
 * the HTTP/1 connection on top. The memory goes in the handle's close callback, which h2o's
 * socket calls (through the close_cb given to h2o_uv_socket_create) after disposing itself. */
struct keel__http_conn {
	uint32_t magic;
	uv_tcp_t tcp;
	struct keel_http_server *srv;
	struct keel__http_listener *listener;
	struct keel__http_conn *prev, *next;
	h2o_socket_t *sock; /* NULL once h2o disposed it (sock->on_close) */
	SSL *ssl;           /* seen by the TLS info callback; valid while sock is */
	int fd;
	int linger_fd;                 /* >= 0: a dup kept for a lingering close (see server.c) */
	struct keel__http_req *watched; /* held or streaming request whose socket we read */
};

struct keel__http_listener {
	uv_tcp_t tcp;
	struct keel_http_server *srv;
	h2o_accept_ctx_t accept_ctx;
	SSL_CTX *ssl_ctx; /* NULL for http:// */
	int fd;           /* until uv_tcp_open owns it */
	int port;
	bool opened; /* tcp initialised (needs uv_close) */
	bool paused; /* a connection was left unaccepted: libuv watches no more until we accept */
};

struct keel__http_route {
	struct keel_http_route pub; /* strings point into our copies */
	size_t path_len;
	char *path;
	char *allow;
};

struct keel__http_handler {
	h2o_handler_t super;
	struct keel_http_server *srv;
};

struct keel__http_linger;

struct keel_http_server {
	uv_loop_t *loop;
	h2o_globalconf_t globalconf;
	h2o_context_t ctx;
	bool ctx_inited;
	h2o_hostconf_t *hostconf;

	struct keel__http_listener *listeners;
	size_t n_listeners;
	struct keel__http_route *routes;
	size_t n_routes;

	struct keel__http_conn *conns;
	size_t n_conns;
	struct keel__http_linger *lingers;
	size_t n_lingers;
	size_t n_listeners_open;

	size_t max_entity;
	size_t max_conns; /* 0: no limit */
	bool keepalive;
	bool clean_paths;
	bool closing;
	bool finishing;
	uv_timer_t fin1, fin2; /* two-step final close, see server.c */
	void (*close_cb)(void *ud);
	void *close_ud;
	void (*on_error)(void *ud, int code, const char *msg);
	void *ud;
};

/* State of a request through its life. */
enum keel__http_req_state {
	KEEL__REQ_HANDLER,   /* inside the handler, nothing decided */
	KEEL__REQ_HELD,      /* kept for later, no response started */
	KEEL__REQ_STREAMING, /* headers sent, chunks may follow */
	KEEL__REQ_ENDED,     /* final response handed to h2o: nothing more from the owner */
	KEEL__REQ_GONE,      /* the client went away or the connection died first */
};

/* A request: lives in h2o's request pool (a ref-counted chunk whose dispose hook tells us when
 * h2o lets go of the request, whatever the reason). Holds no libuv handle. */
struct keel__http_req {
	struct keel_http_req pub;
	h2o_req_t *h;
	struct keel_http_server *srv;
	struct keel__http_conn *conn;
	enum keel__http_req_state state;
	bool detached;    /* request data copied out of the socket's input buffer */
	bool watching;    /* we started reading the socket to notice the client leaving */
	bool notified;    /* on_close called (or not needed any more) */
	bool in_close_cb; /* inside on_close: calls on this request fail */
	bool disposed;    /* h2o released the request */
	size_t input_mark; /* socket input size when we started watching */

	keel_http_close_fn on_close;
	void *close_ud;

	/* streams: one h2o_send in flight at a time (h2o's rule) */
	h2o_generator_t gen;
	bool inflight;       /* an h2o_send is out, proceed() not yet called */
	bool end_pending;    /* stream_end called while a send was in flight */
	bool abort_pending;  /* the client left while a send was in flight */
	bool h2o_stopped;    /* h2o stopped the generator: never h2o_send again */
	bool chunked;        /* we frame the stream's chunks (HTTP/1.1) */
	struct keel_buf out; /* the bytes of the send in flight */
	struct keel_buf queue;

	/* lazily parsed */
	bool query_parsed, form_parsed;
	int form_result, query_result;
	struct keel_err form_err, query_err;
	struct keel_http_form query, post;
	const char *remote;
};

/* request.c: the h2o handler of the one path ("/") every request goes through. */
int keel__http_on_req(h2o_handler_t *self, h2o_req_t *h);
/* request.c: the socket of a watched request saw data or an error. */
void keel__http_watch_on_read(h2o_socket_t *sock, const char *err);

/* server.c: report a failure to config.on_error. */
void keel__http_report(struct keel_http_server *srv, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* server.c: the connection a request arrived on (NULL if h2o no longer has a socket). */
struct keel__http_conn *keel__http_conn_of(h2o_req_t *h);
