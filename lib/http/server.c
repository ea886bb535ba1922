/* Listeners, connections, TLS contexts, lingering close and shutdown for lib/http. The request
 * side (routing, responses, held requests, streams) is request.c; the contract is http.h.
 *
 * Lifetimes, libuv's rule: memory holding a handle is freed in its close callback.
 *  - A connection (struct keel__http_conn) holds its uv_tcp_t. h2o wraps it in an h2o_socket_t
 *    and, when it closes the socket, disposes the socket (calling sock->on_close, our
 *    on_sock_disposed), uv_closes the handle and finally calls our on_conn_closed with it.
 *  - h2o's context embeds uv timers and an async handle; h2o_context_dispose uv_closes them
 *    without a callback, so the server's memory can only go after the loop has finished those
 *    closes: the two-step fin1/fin2 close below.
 *  - Nothing of ours lives in h2o's request pools except plain memory (request.c).
 *
 * Lingering close: when h2o refuses a request before reading its body (413 for a body over
 * max_request_entity_size, 400 for broken chunked encoding, 417), it answers and closes at once.
 * Closing a socket with unread input makes the kernel send a reset, which can destroy the
 * answer before the client reads it, so the client would see "connection reset" instead of
 * 413. A filter on h2o's fallback path (where h2o binds these errors) keeps a duplicate of the
 * descriptor; after h2o has closed its own, we shut down our side for writing and drain what
 * the client still sends for up to LINGER_MS (Go's server does the same, closeWriteAndWait). */
#include "http/http-internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "base/net.h"
#include "base/mem.h"

#define LISTEN_BACKLOG 1024
#define KEEPALIVE_SECS 30
#define LINGER_MS 2000
#define LINGER_MAX_BYTES ((size_t)64 << 20)

struct keel__http_linger {
	uv_poll_t poll;
	uv_timer_t timer;
	struct keel_http_server *srv;
	struct keel__http_linger *prev, *next;
	int fd;
	unsigned open; /* handles not yet closed */
	bool closing;
	size_t drained;
};

static void maybe_finish(struct keel_http_server *srv);
static void resume_accepting(struct keel_http_server *srv);

void keel__http_report(struct keel_http_server *srv, int code, const char *fmt, ...)
{
	if (!srv->on_error)
		return;
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	srv->on_error(srv->ud, code, msg);
}

struct keel__http_conn *keel__http_conn_of(h2o_req_t *h)
{
	if (!h->conn || !h->conn->callbacks->get_socket)
		return NULL;
	h2o_socket_t *sock = h->conn->callbacks->get_socket(h->conn);
	if (!sock)
		return NULL;
	struct keel__http_conn *c = sock->on_close.data;
	if (!c || c->magic != KEEL__HTTP_CONN_MAGIC || c->sock != sock)
		return NULL;
	return c;
}

/* ---- lingering close ------------------------------------------------------------------------ */

static void linger_handle_closed(uv_handle_t *h)
{
	struct keel__http_linger *lg = h->data;
	if (--lg->open > 0)
		return;
	struct keel_http_server *srv = lg->srv;
	close(lg->fd);
	if (lg->prev)
		lg->prev->next = lg->next;
	else
		srv->lingers = lg->next;
	if (lg->next)
		lg->next->prev = lg->prev;
	srv->n_lingers--;
	keel_free(lg);
	resume_accepting(srv);
	maybe_finish(srv);
}

static void linger_close(struct keel__http_linger *lg)
{
	if (lg->closing)
		return;
	lg->closing = true;
	uv_close((uv_handle_t *)&lg->poll, linger_handle_closed);
	uv_close((uv_handle_t *)&lg->timer, linger_handle_closed);
}

static void linger_on_poll(uv_poll_t *p, int status, int events)
{
	struct keel__http_linger *lg = p->data;
	if (status < 0) {
		linger_close(lg);
		return;
	}
	char buf[16384];
	for (;;) {
		ssize_t n = read(lg->fd, buf, sizeof(buf));
		if (n > 0) {
			lg->drained += (size_t)n;
			if (lg->drained > LINGER_MAX_BYTES)
				break;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		break; /* end of stream or an error: the client is done */
	}
	linger_close(lg);
}

static void linger_on_timer(uv_timer_t *t)
{
	linger_close(t->data);
}

/* Takes ownership of fd. */
static void linger_start(struct keel_http_server *srv, int fd)
{
	struct keel__http_linger *lg = keel_calloc(1, sizeof(*lg));
	if (!lg) {
		close(fd);
		return;
	}
	lg->srv = srv;
	lg->fd = fd;
	shutdown(fd, SHUT_WR); /* the answer is out: FIN after it */
	if (uv_poll_init(srv->loop, &lg->poll, fd) < 0) {
		close(fd);
		keel_free(lg);
		return;
	}
	uv_timer_init(srv->loop, &lg->timer);
	lg->poll.data = lg;
	lg->timer.data = lg;
	lg->open = 2;
	lg->next = srv->lingers;
	if (srv->lingers)
		srv->lingers->prev = lg;
	srv->lingers = lg;
	srv->n_lingers++;
	if (uv_poll_start(&lg->poll, UV_READABLE | UV_DISCONNECT, linger_on_poll) < 0 ||
	    uv_timer_start(&lg->timer, linger_on_timer, LINGER_MS, 0) < 0)
		linger_close(lg);
}

/* On h2o's fallback path: h2o answers requests it refuses while reading them there. */
static void linger_filter_setup(h2o_filter_t *self, h2o_req_t *h, h2o_ostream_t **slot)
{
	int st = h->res.status;
	if ((st == 413 || st == 400 || st == 417) && !h->http1_is_persistent) {
		struct keel__http_conn *c = keel__http_conn_of(h);
		if (c && c->linger_fd < 0 && !c->srv->closing)
			c->linger_fd = fcntl(c->fd, F_DUPFD_CLOEXEC, 0);
	}
	h2o_setup_next_ostream(h, slot);
}

/* ---- connections ---------------------------------------------------------------------------- */

static void on_sock_disposed(void *data)
{
	struct keel__http_conn *c = data;
	c->sock = NULL;
	c->ssl = NULL;
	c->watched = NULL;
}

static void conn_unlink(struct keel__http_conn *c)
{
	struct keel_http_server *srv = c->srv;
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv->n_conns--;
}

/* The uv_tcp_t is closed: h2o is done with everything of this connection. */
static void on_conn_closed(uv_handle_t *h)
{
	struct keel__http_conn *c = keel_container_of((uv_tcp_t *)h, struct keel__http_conn, tcp);
	struct keel_http_server *srv = c->srv;
	conn_unlink(c);
	if (c->linger_fd >= 0) {
		if (srv->closing)
			close(c->linger_fd);
		else
			linger_start(srv, c->linger_fd);
	}
	c->magic = 0;
	keel_free(c);
	resume_accepting(srv);
	maybe_finish(srv);
}

static bool at_connection_limit(const struct keel_http_server *srv)
{
	/* A lingering close holds a descriptor too. */
	return srv->max_conns && srv->n_conns + srv->n_lingers >= srv->max_conns;
}

static void on_connection(uv_stream_t *server, int status)
{
	struct keel__http_listener *l = keel_container_of((uv_tcp_t *)server, struct keel__http_listener, tcp);
	struct keel_http_server *srv = l->srv;
	if (status < 0) {
		keel__http_report(srv, status, "http: accept on port %d: %s", l->port, uv_strerror(status));
		return;
	}
	/* Returning without uv_accept leaves the connection with libuv, which stops watching the
	 * listener until uv_accept is called: resume_accepting does that once a connection ends.
	 * So a flood of connections waits in the kernel's backlog instead of using up the
	 * process's descriptors, which the WAL, snapshots and peers need. */
	if (at_connection_limit(srv)) {
		l->paused = true;
		return;
	}
	struct keel__http_conn *c = keel_calloc(1, sizeof(*c));
	if (!c) {
		/* Without memory for a handle the connection stays with libuv, paused like above;
		 * the next connection to end retries (as the transport does). */
		keel__http_report(srv, -ENOMEM, "http: out of memory accepting a connection");
		l->paused = true;
		return;
	}
	c->magic = KEEL__HTTP_CONN_MAGIC;
	c->srv = srv;
	c->listener = l;
	c->fd = -1;
	c->linger_fd = -1;
	uv_tcp_init(srv->loop, &c->tcp); /* cannot fail: no socket is created */
	c->next = srv->conns;
	if (srv->conns)
		srv->conns->prev = c;
	srv->conns = c;
	srv->n_conns++;
	int r = uv_accept(server, (uv_stream_t *)&c->tcp);
	uv_os_fd_t fd;
	if (r == 0)
		r = uv_fileno((uv_handle_t *)&c->tcp, &fd);
	if (r < 0) {
		keel__http_report(srv, r, "http: accept on port %d: %s", l->port, uv_strerror(r));
		uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
		return;
	}
	c->fd = fd;
	uv_tcp_nodelay(&c->tcp, 1);
	/* Held requests read nothing for minutes; keep-alive probes notice a peer that vanished
	 * without a FIN (a cut cable, a partition), and the read error ends the request. */
	uv_tcp_keepalive(&c->tcp, 1, KEEPALIVE_SECS);
	if (srv->closing) {
		uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
		return;
	}
	h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)&c->tcp, on_conn_closed);
	/* h2o's dispose calls on_close.cb(data) and never uses the field itself in the server
	 * path: it is how a socket leads back to us (request.c, the TLS info callback). */
	sock->on_close.cb = on_sock_disposed;
	sock->on_close.data = c;
	c->sock = sock;
	h2o_accept(&l->accept_ctx, sock);
}

/* A connection ended: accept what paused listeners left waiting, while under the limit. */
static void resume_accepting(struct keel_http_server *srv)
{
	for (size_t i = 0; i < srv->n_listeners && !srv->closing; i++) {
		struct keel__http_listener *l = &srv->listeners[i];
		if (!l->paused || at_connection_limit(srv))
			continue;
		l->paused = false;
		on_connection((uv_stream_t *)&l->tcp, 0); /* may pause it again */
	}
}

/* ---- TLS ------------------------------------------------------------------------------------ */

/* h2o 2.2.5 sets no SSL app data, but its BIO's data is the h2o_socket_t (setup_bio), and our
 * socket's on_close.data is the connection: remember the SSL there for the client
 * certificate (keel_http_req_client_subject). */
static void tls_info_cb(const SSL *ssl, int where, int ret)
{
	if (!(where & (SSL_CB_HANDSHAKE_START | SSL_CB_HANDSHAKE_DONE)))
		return;
	BIO *b = SSL_get_rbio(ssl);
	h2o_socket_t *sock = b ? BIO_get_data(b) : NULL;
	if (!sock)
		return;
	struct keel__http_conn *c = sock->on_close.data;
	if (c && c->magic == KEEL__HTTP_CONN_MAGIC && c->sock == sock)
		c->ssl = (SSL *)ssl;
}

static int tls_fail(struct keel_err *err, const char *what, const char *file)
{
	char msg[160] = "no detail";
	unsigned long e = ERR_get_error();
	if (e)
		ERR_error_string_n(e, msg, sizeof(msg));
	ERR_clear_error();
	return keel_err_set(err, -KEEL_EBAD_VALUE, "http: %s %s: %s", what, file ? file : "", msg);
}

static int tls_ctx_new(const struct keel_http_tls *tls, SSL_CTX **ret, struct keel_err *err)
{
	if (!tls->cert_file || !tls->key_file)
		return keel_err_set(err, -EINVAL, "http: https listener needs cert_file and key_file");
	ERR_clear_error();
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx)
		return tls_fail(err, "create a TLS context", NULL);
	int r;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* h2o cannot renegotiate (it closes the connection); say so in the handshake. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	if (SSL_CTX_use_certificate_chain_file(ctx, tls->cert_file) != 1) {
		r = tls_fail(err, "load certificate", tls->cert_file);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, tls->key_file, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		r = tls_fail(err, "load key", tls->key_file);
		goto fail;
	}
	if (tls->client_ca_file) {
		if (SSL_CTX_load_verify_locations(ctx, tls->client_ca_file, NULL) != 1) {
			r = tls_fail(err, "load client CA", tls->client_ca_file);
			goto fail;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(tls->client_ca_file);
		if (names) /* a hint for clients with several certificates */
			SSL_CTX_set_client_CA_list(ctx, names);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	}
	/* Resumed sessions keep the client certificate only with a session id context. */
	static const unsigned char sid_ctx[] = "keel-http";
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
	SSL_CTX_set_info_callback(ctx, tls_info_cb);
	ERR_clear_error();
	*ret = ctx;
	return 0;
fail:
	SSL_CTX_free(ctx);
	return r;
}

/* ---- listeners ------------------------------------------------------------------------------ */

/* "http[s]://host[:port][/]" -> address; host is numeric IPv4, [IPv6], or a name resolved now. */
static int parse_listen_url(const char *url, bool *ret_tls, struct sockaddr_storage *ret,
			    struct keel_err *err)
{
	const char *p;
	bool tls;
	if (!strncasecmp(url, "http://", 7)) {
		p = url + 7;
		tls = false;
	} else if (!strncasecmp(url, "https://", 8)) {
		p = url + 8;
		tls = true;
	} else {
		return keel_err_set(err, -EINVAL, "http: listen URL %s: scheme must be http or https", url);
	}
	char host[256];
	const char *rest;
	if (*p == '[') {
		const char *close_br = strchr(p, ']');
		if (!close_br || (size_t)(close_br - p - 1) >= sizeof(host))
			return keel_err_set(err, -EINVAL, "http: listen URL %s: bad IPv6 address", url);
		memcpy(host, p + 1, (size_t)(close_br - p - 1));
		host[close_br - p - 1] = '\0';
		rest = close_br + 1;
	} else {
		size_t n = strcspn(p, ":/");
		if (n == 0 || n >= sizeof(host))
			return keel_err_set(err, -EINVAL, "http: listen URL %s: missing host", url);
		memcpy(host, p, n);
		host[n] = '\0';
		rest = p + n;
	}
	unsigned long port = tls ? 443 : 80;
	if (*rest == ':') {
		char *end;
		errno = 0;
		port = strtoul(rest + 1, &end, 10);
		if (end == rest + 1 || errno || port > 65535)
			return keel_err_set(err, -EINVAL, "http: listen URL %s: bad port", url);
		rest = end;
	}
	if (*rest && strcmp(rest, "/") != 0)
		return keel_err_set(err, -EINVAL, "http: listen URL %s: a path is not allowed", url);

	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
	char service[8];
	snprintf(service, sizeof(service), "%lu", port);
	/* Blocking, but keel_http_server_new runs before the loop serves anything. */
	int g = getaddrinfo(host, service, &hints, &res);
	if (g != 0 || !res)
		return keel_err_set(err, g == EAI_SYSTEM ? -errno : -EINVAL, "http: listen URL %s: %s", url,
				    gai_strerror(g));
	memset(ret, 0, sizeof(*ret));
	memcpy(ret, res->ai_addr, KEEL_MIN((size_t)res->ai_addrlen, sizeof(*ret)));
	freeaddrinfo(res);
	*ret_tls = tls;
	return 0;
}

/* Bind and listen with plain system calls, before any libuv handle exists, so that failing is
 * synchronous and leaves nothing behind. */
static void on_listener_closed(uv_handle_t *h)
{
	struct keel__http_listener *l = keel_container_of((uv_tcp_t *)h, struct keel__http_listener, tcp);
	struct keel_http_server *srv = l->srv;
	srv->n_listeners_open--;
	maybe_finish(srv);
}

/* ---- life cycle ----------------------------------------------------------------------------- */

static void free_routes(struct keel_http_server *srv)
{
	for (size_t i = 0; i < srv->n_routes; i++) {
		keel_free(srv->routes[i].path);
		keel_free(srv->routes[i].allow);
	}
	keel_free(srv->routes);
	srv->routes = NULL;
	srv->n_routes = 0;
}

/* Everything that is plain memory or a descriptor; no handle may be open. */
static void server_free(struct keel_http_server *srv)
{
	for (size_t i = 0; i < srv->n_listeners; i++) {
		struct keel__http_listener *l = &srv->listeners[i];
		if (!l->opened && l->fd >= 0)
			close(l->fd);
		SSL_CTX_free(l->ssl_ctx);
	}
	keel_free(srv->listeners);
	free_routes(srv);
	keel_free(srv);
}

static void on_fin2(uv_handle_t *h)
{
	struct keel_http_server *srv = h->data;
	void (*cb)(void *) = srv->close_cb;
	void *ud = srv->close_ud;
	server_free(srv);
	if (cb)
		cb(ud);
}

/* h2o's handles closed in h2o_context_dispose are in the same batch of closing handles as fin1
 * and finish after fin1's callback (libuv runs a batch newest first); fin2, closed from there,
 * lands in the next batch, when h2o's closes are complete and its memory may go. */
static void on_fin1(uv_handle_t *h)
{
	struct keel_http_server *srv = h->data;
	uv_close((uv_handle_t *)&srv->fin2, on_fin2);
}

static void maybe_finish(struct keel_http_server *srv)
{
	if (!srv->closing || srv->finishing || srv->n_listeners_open || srv->n_conns || srv->n_lingers)
		return;
	srv->finishing = true;
	if (srv->ctx_inited) {
		h2o_context_dispose(&srv->ctx);
		srv->ctx_inited = false;
	}
	h2o_config_dispose(&srv->globalconf);
	srv->fin1.data = srv;
	srv->fin2.data = srv;
	uv_close((uv_handle_t *)&srv->fin1, on_fin1);
}

static int copy_routes(struct keel_http_server *srv, const struct keel_http_config *cfg,
		       struct keel_err *err)
{
	if (cfg->n_routes && !cfg->routes)
		return keel_err_set(err, -EINVAL, "http: n_routes without routes");
	srv->routes = keel_calloc(cfg->n_routes ? cfg->n_routes : 1, sizeof(*srv->routes));
	if (!srv->routes)
		return keel_err_set(err, -ENOMEM, "http: out of memory");
	for (size_t i = 0; i < cfg->n_routes; i++) {
		const struct keel_http_route *in = &cfg->routes[i];
		struct keel__http_route *rt = &srv->routes[i];
		if (!in->path || in->path[0] != '/' || !in->handler || !in->methods)
			return keel_err_set(err, -EINVAL,
					    "http: route %zu needs a path starting with '/', methods and a handler", i);
		srv->n_routes = i + 1;
		rt->pub = *in;
		rt->path = keel_strdup(in->path);
		rt->allow = in->allow ? keel_strdup(in->allow) : NULL;
		if (!rt->path || (in->allow && !rt->allow))
			return keel_err_set(err, -ENOMEM, "http: out of memory");
		if (strpbrk(rt->path, "\r\n") || (rt->allow && strpbrk(rt->allow, "\r\n")))
			return keel_err_set(err, -EINVAL, "http: route %zu: line breaks in path or allow", i);
		rt->pub.path = rt->path;
		rt->pub.allow = rt->allow;
		rt->path_len = strlen(rt->path);
	}
	return 0;
}

int keel_http_server_new(uv_loop_t *loop, const struct keel_http_config *cfg,
			 struct keel_http_server **ret, struct keel_err *err)
{
	if (!loop || !cfg || !ret || !cfg->listen || cfg->n_listen == 0)
		return keel_err_set(err, -EINVAL, "http: bad arguments (a loop, a config with listeners)");
	/* libuv writes with write(2): a client's reset would kill a process that has the default
	 * SIGPIPE action. Only the program may change that; we insist it did. */
	struct sigaction sa;
	if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
		return keel_err_set(err, -EINVAL,
				    "http: SIGPIPE must be ignored (signal(SIGPIPE, SIG_IGN)) before a server starts");

	struct keel_http_server *srv = keel_calloc(1, sizeof(*srv));
	if (!srv)
		return keel_err_set(err, -ENOMEM, "http: out of memory");
	srv->loop = loop;
	srv->keepalive = !cfg->disable_keepalive;
	srv->max_conns = cfg->max_connections;
	srv->clean_paths = cfg->clean_paths;
	srv->on_error = cfg->on_error;
	srv->ud = cfg->ud;
	int r = copy_routes(srv, cfg, err);
	if (r) {
		server_free(srv);
		return r;
	}
	srv->listeners = keel_calloc(cfg->n_listen, sizeof(*srv->listeners));
	if (!srv->listeners) {
		server_free(srv);
		return keel_err_set(err, -ENOMEM, "http: out of memory");
	}
	srv->n_listeners = cfg->n_listen;
	for (size_t i = 0; i < cfg->n_listen; i++)
		srv->listeners[i].fd = -1;
	for (size_t i = 0; i < cfg->n_listen; i++) {
		struct keel__http_listener *l = &srv->listeners[i];
		const struct keel_http_listen *in = &cfg->listen[i];
		l->srv = srv;
		if (!in->url) {
			server_free(srv);
			return keel_err_set(err, -EINVAL, "http: listener %zu has no URL", i);
		}
		struct sockaddr_storage ss;
		bool tls = false;
		r = parse_listen_url(in->url, &tls, &ss, err);
		if (!r && tls)
			r = tls_ctx_new(&in->tls, &l->ssl_ctx, err);
		if (!r) {
			uint16_t port = 0;
			int fd = keel_net_listen(&ss, LISTEN_BACKLOG, &port);
			l->port = port;
			if (fd < 0)
				r = keel_err_errno(err, fd, "http: listen on %s", in->url);
			else
				l->fd = fd;
		}
		if (r) {
			server_free(srv);
			return r;
		}
	}

	/* From here on handles exist: failures release them when the loop runs. */
	h2o_config_init(&srv->globalconf);
	srv->globalconf.server_name = h2o_iovec_init("", 0); /* no Server header, like etcd */
	srv->max_entity = cfg->max_request_entity_size ? cfg->max_request_entity_size : KEEL_HTTP_DEFAULT_MAX_ENTITY;
	/* h2o refuses a Content-Length above its limit but a chunked body that reaches it (>=);
	 * one byte of slack makes both "more than max_entity", and request.c refuses the one
	 * Content-Length body that gets through at exactly max_entity + 1. */
	srv->globalconf.max_request_entity_size = srv->max_entity < SIZE_MAX ? srv->max_entity + 1 : SIZE_MAX;
	srv->globalconf.http1.req_timeout =
		cfg->idle_timeout_ms ? cfg->idle_timeout_ms : KEEL_HTTP_DEFAULT_IDLE_TIMEOUT_MS;
	srv->globalconf.handshake_timeout =
		cfg->handshake_timeout_ms ? cfg->handshake_timeout_ms : KEEL_HTTP_DEFAULT_HANDSHAKE_TIMEOUT_MS;
	/* HTTP/1 only: no h2c upgrade, no "PRI * HTTP/2" preface (and no ALPN on our contexts). */
	srv->globalconf.http1.upgrade_to_http2 = 0;
	srv->hostconf = h2o_config_register_host(&srv->globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
	h2o_pathconf_t *pathconf = h2o_config_register_path(srv->hostconf, "/", 0);
	/* h2o prints request errors to stderr by default; a library must not. */
	pathconf->error_log.emit_request_errors = 0;
	srv->hostconf->fallback_path.error_log.emit_request_errors = 0;
	struct keel__http_handler *hd =
		(struct keel__http_handler *)h2o_create_handler(pathconf, sizeof(*hd));
	hd->super.on_req = keel__http_on_req;
	hd->srv = srv;
	h2o_filter_t *lf = h2o_create_filter(&srv->hostconf->fallback_path, sizeof(*lf));
	lf->on_setup_ostream = linger_filter_setup;
	h2o_context_init(&srv->ctx, loop, &srv->globalconf);
	srv->ctx_inited = true;
	uv_timer_init(loop, &srv->fin1);
	uv_timer_init(loop, &srv->fin2);

	r = 0;
	for (size_t i = 0; i < srv->n_listeners; i++) {
		struct keel__http_listener *l = &srv->listeners[i];
		l->accept_ctx.ctx = &srv->ctx;
		l->accept_ctx.hosts = srv->globalconf.hosts;
		l->accept_ctx.ssl_ctx = l->ssl_ctx;
		uv_tcp_init(loop, &l->tcp); /* cannot fail: no socket is created */
		l->opened = true;
		srv->n_listeners_open++;
		int rr = uv_tcp_open(&l->tcp, l->fd);
		if (rr < 0)
			close(l->fd);
		else
			rr = uv_listen((uv_stream_t *)&l->tcp, LISTEN_BACKLOG, on_connection);
		l->fd = -1;
		if (rr < 0 && !r)
			r = keel_err_set(err, rr, "http: listen on port %d: %s", l->port, uv_strerror(rr));
	}
	if (r) {
		keel_http_server_close(srv, NULL, NULL);
		return r;
	}
	*ret = srv;
	return 0;
}

int keel_http_server_port(const struct keel_http_server *s, size_t i)
{
	if (!s || i >= s->n_listeners)
		return -EINVAL;
	return s->listeners[i].port;
}

void keel_http_server_close(struct keel_http_server *srv, void (*cb)(void *ud), void *ud)
{
	if (!srv || srv->closing)
		return;
	srv->closing = true;
	srv->close_cb = cb;
	srv->close_ud = ud;
	for (size_t i = 0; i < srv->n_listeners; i++) {
		struct keel__http_listener *l = &srv->listeners[i];
		if (l->opened && !uv_is_closing((uv_handle_t *)&l->tcp))
			uv_close((uv_handle_t *)&l->tcp, on_listener_closed);
	}
	/* Every connection is either read or written by h2o or by our watch of a held request
	 * (request.c keeps that invariant), so shutting the socket down makes the next read
	 * return end-of-stream or the next write fail, and h2o closes it through its own error
	 * paths: held requests see their client leave (on_close), responses in flight are cut. */
	for (struct keel__http_conn *c = srv->conns; c; c = c->next)
		if (c->fd >= 0 && c->sock)
			shutdown(c->fd, SHUT_RDWR);
	for (struct keel__http_linger *lg = srv->lingers; lg; lg = lg->next)
		linger_close(lg);
	maybe_finish(srv);
}
