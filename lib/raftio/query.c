/* keel_transport_query: one QUERY/ANSWER exchange with a peer, synchronously, for a program
 * that needs the answer before it can start (a member joining a cluster learns its id and the
 * cluster's). Blocking sockets bounded by poll() and one deadline; TLS through OpenSSL on the
 * socket itself. The acceptor's side lives in transport.c (inbound_query). */
#include "raftio/transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "base/mem.h"
#include "base/net.h"
#include "raftio/frame.h"

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until fd is readable (events POLLIN) or writable (POLLOUT), before the deadline. */
static int wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		struct pollfd p = {.fd = fd, .events = events};
		int r = poll(&p, 1, (int)left);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

struct qconn {
	int fd;
	SSL *ssl;
	int64_t deadline;
};

/* Drive an OpenSSL call that may want the socket readable or writable. */
static int ssl_wait(struct qconn *q, int r)
{
	int e = SSL_get_error(q->ssl, r);
	if (e == SSL_ERROR_WANT_READ)
		return wait_fd(q->fd, POLLIN, q->deadline);
	if (e == SSL_ERROR_WANT_WRITE)
		return wait_fd(q->fd, POLLOUT, q->deadline);
	ERR_clear_error();
	return e == SSL_ERROR_ZERO_RETURN ? -EPROTO : -ECONNRESET;
}

static int q_write(struct qconn *q, const uint8_t *data, size_t len)
{
	while (len) {
		ssize_t n;
		if (q->ssl) {
			int r = SSL_write(q->ssl, data, (int)len);
			if (r <= 0) {
				int w = ssl_wait(q, r);
				if (w < 0)
					return w;
				continue;
			}
			n = r;
		} else {
			n = send(q->fd, data, len, MSG_NOSIGNAL);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				if (errno != EAGAIN)
					return -errno;
				int w = wait_fd(q->fd, POLLOUT, q->deadline);
				if (w < 0)
					return w;
				continue;
			}
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Some bytes (> 0), 0 when the acceptor hung up (EOF or reset), or -errno. */
static ssize_t q_read(struct qconn *q, uint8_t *buf, size_t len)
{
	for (;;) {
		if (q->ssl) {
			int r = SSL_read(q->ssl, buf, (int)len);
			if (r > 0)
				return r;
			if (SSL_get_error(q->ssl, r) == SSL_ERROR_ZERO_RETURN)
				return 0;
			int w = ssl_wait(q, r);
			if (w < 0) /* a close_notify or a reset: the acceptor hung up */
				return w == -EPROTO || w == -ECONNRESET ? 0 : w;
			continue;
		}
		ssize_t n = recv(q->fd, buf, len, 0);
		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		if (errno == ECONNRESET)
			return 0; /* hung up with our QUERY unread: the same as closing */
		if (errno != EAGAIN)
			return -errno;
		int w = wait_fd(q->fd, POLLIN, q->deadline);
		if (w < 0)
			return w;
	}
}

static int q_connect(struct qconn *q, const struct keel_transport_query_opts *o, struct keel_err *err)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	if (o->host && inet_pton(AF_INET, o->host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(o->port);
	} else if (o->host && inet_pton(AF_INET6, o->host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(o->port);
	} else {
		return keel_err_set(err, -EINVAL, "query: \"%s\" is not a numeric address", o->host ? o->host : "");
	}
	q->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (q->fd < 0)
		return keel_err_errno(err, -errno, "query: socket");
	if (connect(q->fd, (struct sockaddr *)&ss, keel_net_addr_len(&ss)) < 0) {
		if (errno != EINPROGRESS)
			return keel_err_errno(err, -errno, "query: connecting to %s:%u", o->host, o->port);
		int r = wait_fd(q->fd, POLLOUT, q->deadline);
		int so = 0;
		socklen_t sl = sizeof(so);
		if (r == 0 && getsockopt(q->fd, SOL_SOCKET, SO_ERROR, &so, &sl) < 0)
			r = -errno;
		if (r == 0 && so)
			r = -so;
		if (r < 0)
			return keel_err_errno(err, r, "query: connecting to %s:%u", o->host, o->port);
	}
	return 0;
}

static int q_tls(struct qconn *q, SSL_CTX **ctxp, const struct keel_transport_query_opts *o, struct keel_err *err)
{
	ERR_clear_error();
	SSL_CTX *ctx = *ctxp = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		return keel_err_set(err, -ENOMEM, "query: creating a TLS context");
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (SSL_CTX_use_certificate_chain_file(ctx, o->cert_file) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, o->key_file, SSL_FILETYPE_PEM) != 1 ||
	    (o->ca_file && SSL_CTX_load_verify_locations(ctx, o->ca_file, NULL) != 1)) {
		ERR_clear_error();
		return keel_err_set(err, -KEEL_EBAD_VALUE, "query: loading %s, %s or %s", o->cert_file, o->key_file,
				    o->ca_file ? o->ca_file : "(no CA)");
	}
	SSL_CTX_set_verify(ctx, o->ca_file ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	q->ssl = SSL_new(ctx);
	if (!q->ssl || SSL_set_fd(q->ssl, q->fd) != 1)
		return keel_err_set(err, -ENOMEM, "query: TLS setup");
	for (;;) {
		int r = SSL_connect(q->ssl);
		if (r == 1)
			return 0;
		int w = ssl_wait(q, r);
		if (w < 0)
			return keel_err_set(err, w == -ETIMEDOUT ? w : -EPROTO, "query: TLS handshake with %s:%u failed",
					    o->host, o->port);
	}
}

int keel_transport_query(const struct keel_transport_query_opts *o, char **ret, size_t *ret_len,
			 struct keel_err *err)
{
	struct qconn q = {.fd = -1, .deadline = now_ms() + (o->timeout_ms ? o->timeout_ms : 5000)};
	SSL_CTX *ctx = NULL;
	struct keel_frame_parser parser;
	keel_frame_parser_init_answer(&parser);
	struct keel_buf out = KEEL_BUF_INIT;
	int r = q_connect(&q, o, err);
	if (r == 0 && o->cert_file && o->key_file)
		r = q_tls(&q, &ctx, o, err);
	if (r == 0 && (r = keel_frame_append_query(&out, o->cluster_id, KEEL_FRAME_PROTOCOL_VERSION)) < 0)
		keel_err_set(err, r, "out of memory");
	if (r == 0 && (r = q_write(&q, (const uint8_t *)out.data, out.len)) < 0)
		keel_err_errno(err, r, "query: writing to %s:%u", o->host, o->port);
	while (r == 0) {
		struct keel_frame f;
		int n = keel_frame_parser_next(&parser, &f, err);
		if (n > 0) {
			char *copy = keel_malloc(f.len + 1);
			if (!copy) {
				r = keel_err_set(err, -ENOMEM, "out of memory");
				break;
			}
			memcpy(copy, f.payload, f.len);
			copy[f.len] = '\0';
			*ret = copy;
			*ret_len = f.len;
			break;
		}
		if (n < 0) {
			r = n;
			break;
		}
		uint8_t buf[16384];
		ssize_t got = q_read(&q, buf, sizeof(buf));
		if (got == 0)
			r = keel_err_set(err, -EPROTO, "query: %s:%u closed the connection without an answer", o->host,
					 o->port);
		else if (got < 0)
			r = keel_err_errno(err, (int)got, "query: reading from %s:%u", o->host, o->port);
		else if ((r = keel_frame_parser_feed(&parser, buf, (size_t)got)) < 0)
			keel_err_set(err, r, "out of memory");
	}
	keel_buf_free(&out);
	keel_frame_parser_free(&parser);
	if (q.ssl)
		SSL_free(q.ssl);
	SSL_CTX_free(ctx);
	if (q.fd >= 0)
		close(q.fd);
	return r;
}
