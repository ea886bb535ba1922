/* The peer transport: outgoing connections that only send, accepted ones that only read, frames
 * from frame.h, TLS through OpenSSL memory BIOs. The contract is in transport.h; the protocol in
 * docs/raftio.md ("Transport").
 *
 * Lifetimes follow libuv's rule: memory that holds a handle is freed only in its close callback.
 * A connection (struct conn) is one allocation holding its uv_tcp_t; a peer (struct peer) holds
 * its uv_timer_t and is freed once that timer is closed and its connection is gone. Write
 * requests and connect requests live in memory that outlives them, because libuv runs the
 * callbacks of cancelled requests before the close callback. The transport itself is freed when
 * its last handle has closed after keel_transport_close(). */
#include "raftio/transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "base/net.h"
#include "base/buf.h"
#include "base/crc32c.h"
#include "base/mem.h"
#include "raftio/codec.h"
#include "raftio/frame.h"
#include "raftio/snap.h"

/* Bytes handed to a socket and not yet written out, per connection, before we stop adding:
 * enough to keep a fast link busy, little enough that a snapshot does not pile up in memory. */
#define HIGH_WATER ((size_t)1 << 20)
#define WRITE_BATCH 16       /* buffers per uv_write when draining the message queue */
#define READ_BUF_LEN ((size_t)64 << 10)
#define TLS_PLAIN_LEN ((size_t)16 << 10) /* one TLS record's worth of plaintext */
#define LISTEN_BACKLOG 128
#define KEEPALIVE_SECS 30
#define MAX_MORE_LISTEN 7 /* addresses to listen on besides the first */

/* A connection lost after being up at least this long starts the backoff again from the
 * minimum; one dropped sooner (say, right after HELLO because we were refused) counts as
 * another failure, so a peer that keeps refusing us is dialled ever more rarely. */
#define STABLE_MS 1000

struct item {
	struct item *next;
	uint8_t *data; /* a whole frame; keel_malloc'd */
	size_t len;
};

enum tx_state {
	TX_WAITING,   /* queued behind another transfer, or not connected yet */
	TX_STREAMING, /* SNAP_BEGIN written, chunks going out */
	TX_END_SENT,  /* SNAP_END handed to the socket, waiting for the write to complete */
};

/* An outgoing snapshot transfer. */
struct snap_tx {
	struct snap_tx *next;
	struct keel_snap_reader *rd;
	uint8_t *begin; /* the SNAP_BEGIN frame, until it is written */
	size_t begin_len;
	uint32_t crc; /* of the data sent so far */
	enum tx_state state;
};

/* An incoming snapshot transfer. */
struct snap_rx {
	bool active;
	bool discard; /* addressed to another node: the chunks are skipped */
	struct keel_snap_writer *wr;
	uint32_t crc;
	uint8_t *msg; /* the encoded MSG_SNAPSHOT, decoded again for on_snapshot */
	size_t msg_len;
};

struct peer;

struct conn {
	uv_tcp_t tcp;
	struct keel_transport *t;
	struct peer *peer; /* outbound: the peer it belongs to (until closed); NULL: inbound */
	bool outbound;
	bool closing;
	bool ready; /* outbound: TCP (and TLS) up and HELLO written, frames may follow */
	bool lost;  /* outbound: a write failed or was cancelled */
	bool refused; /* inbound: the sender was removed and told so; its input is ignored */
	uint64_t ready_at;
	SSL *ssl; /* NULL: plain TCP */
	BIO *rbio, *wbio;
	uv_connect_t connect_req;
	size_t inflight; /* bytes in uv_write requests not yet completed */

	struct keel_frame_parser parser; /* outbound: the acceptor's replies (REMOVED) */

	/* inbound only */
	struct conn *prev, *next;
	keel_raft_id sender; /* from HELLO; 0 before */
	uint64_t hello_at;   /* loop time of the HELLO */
	struct snap_rx rx;

	char rbuf[READ_BUF_LEN];
};

struct write_req {
	uv_write_t req;
	struct conn *c;
	size_t acct;          /* bytes counted in c->inflight */
	struct snap_tx *snap; /* this write carries the transfer's SNAP_END */
	unsigned n;
	uv_buf_t bufs[WRITE_BATCH]; /* bases are keel_malloc'd, freed when the write completes */
};

struct peer {
	struct keel_transport *t;
	struct peer *next;
	keel_raft_id id;
	struct sockaddr_storage addr;
	uv_timer_t timer; /* reconnect backoff, or the connect timeout while connecting */
	bool timer_closed;
	bool removed;
	bool reconnect_now; /* the address changed: dial again without waiting */
	unsigned failures;  /* consecutive; drives the backoff */
	struct conn *conn;  /* NULL between attempts */
	struct item *q_head, **q_tail;
	size_t queued; /* bytes in the queue (frames, headers included) */
	struct snap_tx *snaps, **snaps_tail;
};

struct keel_transport {
	uv_loop_t *loop;
	struct keel_transport_config cfg; /* strings point to the copies below */
	char *listen_host, *snap_dir, *cert_file, *key_file, *ca_file;
	uv_tcp_t listener;
	uv_tcp_t *more; /* the other listeners (cfg.more_listen) */
	size_t n_more;
	uint16_t port;
	SSL_CTX *srv_ctx, *cli_ctx; /* NULL without TLS */
	struct peer *peers;
	struct conn *inbound;
	unsigned n_inbound;
	unsigned handles; /* open libuv handles: listener, peer timers, connections */
	bool closing;
	void (*close_cb)(void *ud);
	void *close_ud;
	uint64_t rng;
};

static void peer_pump(struct peer *p);
static void peer_connect(struct peer *p);

/* ---- small helpers ------------------------------------------------------------------------ */

/* splitmix64: jitter only, no need for anything stronger. */
static uint64_t rng_next(struct keel_transport *t)
{
	uint64_t z = (t->rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static int parse_addr(const char *host, uint16_t port, struct sockaddr_storage *ret)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	if (!host)
		return -EINVAL;
	if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) == 0 ||
	    uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) == 0) {
		*ret = ss;
		return 0;
	}
	return -EINVAL;
}

static bool addr_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	return a->ss_family == b->ss_family && memcmp(a, b, keel_net_addr_len(a)) == 0;
}

static void maybe_finish(struct keel_transport *t);

static struct peer *peer_find(struct keel_transport *t, keel_raft_id id)
{
	for (struct peer *p = t->peers; p; p = p->next)
		if (p->id == id)
			return p;
	return NULL;
}

static bool peer_live(const struct peer *p)
{
	return !p->removed && !p->t->closing;
}

static size_t peer_pending(const struct peer *p)
{
	return p->queued + (p->conn ? p->conn->inflight : 0);
}

static void snap_tx_free(struct snap_tx *s)
{
	keel_snap_reader_close(s->rd);
	keel_free(s->begin);
	keel_free(s);
}

static void free_bufs(uv_buf_t *bufs, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		keel_free(bufs[i].base);
}

/* ---- connections -------------------------------------------------------------------------- */

static void conn_closed(uv_handle_t *h);

static void conn_close(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static int conn_new(struct keel_transport *t, bool outbound, struct conn **ret)
{
	struct conn *c = keel_calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->t = t;
	c->outbound = outbound;
	if (outbound)
		keel_frame_parser_init_replies(&c->parser);
	else
		keel_frame_parser_init(&c->parser);
	SSL_CTX *ctx = outbound ? t->cli_ctx : t->srv_ctx;
	if (ctx) {
		c->ssl = SSL_new(ctx);
		c->rbio = BIO_new(BIO_s_mem());
		c->wbio = BIO_new(BIO_s_mem());
		if (!c->ssl || !c->rbio || !c->wbio) {
			BIO_free(c->rbio);
			BIO_free(c->wbio);
			SSL_free(c->ssl);
			keel_free(c);
			ERR_clear_error();
			return -ENOMEM;
		}
		/* An empty read BIO means "more to come", not end of stream. */
		BIO_set_mem_eof_return(c->rbio, -1);
		BIO_set_mem_eof_return(c->wbio, -1);
		SSL_set_bio(c->ssl, c->rbio, c->wbio); /* the SSL owns both from here */
		if (outbound)
			SSL_set_connect_state(c->ssl);
		else
			SSL_set_accept_state(c->ssl);
	}
	int r = uv_tcp_init(t->loop, &c->tcp);
	if (r < 0) {
		SSL_free(c->ssl);
		keel_free(c);
		return r;
	}
	t->handles++;
	*ret = c;
	return 0;
}

static void on_write(uv_write_t *req, int status)
{
	struct write_req *w = keel_container_of(req, struct write_req, req);
	struct conn *c = w->c;
	struct snap_tx *snap = w->snap;
	c->inflight -= w->acct;
	free_bufs(w->bufs, w->n);
	keel_free(w);
	if (status < 0) {
		c->lost = true;
		conn_close(c);
		return;
	}
	struct peer *p = c->peer;
	if (snap && p) {
		/* Every byte of the transfer is with the kernel now. Transfers fail only in the
		 * connection's close callback, which libuv runs after this one: snap is listed. */
		struct snap_tx **pp = &p->snaps;
		while (*pp && *pp != snap)
			pp = &(*pp)->next;
		keel_assert(*pp == snap);
		*pp = snap->next;
		if (p->snaps_tail == &snap->next)
			p->snaps_tail = pp;
		snap_tx_free(snap);
		if (peer_live(p) && p->t->cfg.on_snapshot_sent)
			p->t->cfg.on_snapshot_sent(p->t->cfg.ud, p->id, true);
	}
	if (p && !c->closing)
		peer_pump(p);
}

/* Hand bufs (whose bases become ours to free) to the socket as they are. */
static int conn_write_raw(struct conn *c, uv_buf_t *bufs, unsigned n, struct snap_tx *snap)
{
	keel_assert(n <= WRITE_BATCH);
	if (c->closing) {
		free_bufs(bufs, n);
		return -ECANCELED;
	}
	struct write_req *w = keel_calloc(1, sizeof(*w));
	if (!w) {
		free_bufs(bufs, n);
		c->lost = true;
		conn_close(c);
		return -ENOMEM;
	}
	w->c = c;
	w->snap = snap;
	w->n = n;
	for (unsigned i = 0; i < n; i++) {
		w->bufs[i] = bufs[i];
		w->acct += bufs[i].len;
	}
	int r = uv_write(&w->req, (uv_stream_t *)&c->tcp, w->bufs, n, on_write);
	if (r < 0) {
		free_bufs(w->bufs, n);
		keel_free(w);
		c->lost = true;
		conn_close(c);
		return r;
	}
	c->inflight += w->acct;
	return 0;
}

/* Send what OpenSSL has produced (handshake records, alerts, encrypted data). */
static int conn_flush_tls(struct conn *c, struct snap_tx *snap)
{
	size_t pending = BIO_ctrl_pending(c->wbio);
	if (!pending)
		return 0;
	char *data = keel_malloc(pending);
	if (!data) {
		c->lost = true;
		conn_close(c);
		return -ENOMEM;
	}
	int n = BIO_read(c->wbio, data, (int)pending);
	if (n <= 0) {
		keel_free(data);
		c->lost = true;
		conn_close(c);
		return -EIO;
	}
	uv_buf_t b = uv_buf_init(data, (unsigned)n);
	return conn_write_raw(c, &b, 1, snap);
}

/* Write whole frames: encrypted first with TLS. Takes ownership of the bases. */
static int conn_write(struct conn *c, uv_buf_t *bufs, unsigned n, struct snap_tx *snap)
{
	if (!c->ssl || c->closing)
		return conn_write_raw(c, bufs, n, snap);
	ERR_clear_error();
	bool ok = true;
	for (unsigned i = 0; i < n; i++) {
		/* A memory BIO never pushes back, so SSL_write takes it all or fails. */
		if (ok && SSL_write(c->ssl, bufs[i].base, (int)bufs[i].len) <= 0)
			ok = false;
		keel_free(bufs[i].base);
	}
	if (!ok) {
		ERR_clear_error();
		c->lost = true;
		conn_close(c);
		return -EIO;
	}
	return conn_flush_tls(c, snap);
}

/* ---- outgoing side ------------------------------------------------------------------------ */

static void drop_queue(struct peer *p)
{
	struct item *it = p->q_head;
	while (it) {
		struct item *next = it->next;
		keel_free(it->data);
		keel_free(it);
		it = next;
	}
	p->q_head = NULL;
	p->q_tail = &p->q_head;
	p->queued = 0;
}

static void peer_free(struct peer *p)
{
	drop_queue(p);
	struct snap_tx *s = p->snaps;
	while (s) {
		struct snap_tx *next = s->next;
		snap_tx_free(s);
		s = next;
	}
	keel_free(p);
}

static void peer_maybe_free(struct peer *p)
{
	if (p->removed && p->timer_closed && !p->conn)
		peer_free(p);
}

static void on_peer_timer(uv_timer_t *h);

/* Arm the timer for the next connection attempt: at once after an address change, otherwise
 * after an exponential backoff with jitter. */
static void peer_schedule(struct peer *p)
{
	struct keel_transport *t = p->t;
	uint64_t delay = 0;
	if (p->reconnect_now) {
		p->reconnect_now = false;
		p->failures = 0;
	} else {
		uint64_t base = t->cfg.backoff_min_ms;
		for (unsigned i = 0; i < p->failures && base < t->cfg.backoff_max_ms; i++)
			base *= 2;
		if (base > t->cfg.backoff_max_ms)
			base = t->cfg.backoff_max_ms;
		/* "Equal jitter": half fixed, half random, so nodes that lost each other at the
		 * same moment do not redial in lockstep. */
		delay = base / 2 + rng_next(t) % (base / 2 + 1);
		if (p->failures < 32)
			p->failures++;
	}
	uv_timer_start(&p->timer, on_peer_timer, delay, 0);
}

/* The outgoing connection of p is gone (closed and freed): drop what was queued, fail the
 * snapshot transfers, arrange the next attempt, then tell the application. */
static void peer_conn_gone(struct peer *p, bool lost, bool stable)
{
	struct keel_transport *t = p->t;
	struct snap_tx *failed = NULL, **failed_tail = &failed;
	if (p->reconnect_now && peer_live(p)) {
		/* Closed because the address changed: nothing queued was handed to the old socket,
		 * so the queue and the transfers not started yet wait for the new one. */
		struct snap_tx **pp = &p->snaps;
		while (*pp) {
			struct snap_tx *s = *pp;
			if (s->state == TX_WAITING) {
				pp = &s->next;
				continue;
			}
			*pp = s->next;
			s->next = NULL;
			*failed_tail = s;
			failed_tail = &s->next;
		}
		p->snaps_tail = pp;
	} else {
		lost = lost || p->q_head != NULL;
		drop_queue(p);
		failed = p->snaps;
		p->snaps = NULL;
		p->snaps_tail = &p->snaps;
	}
	p->conn = NULL;
	if (!peer_live(p)) {
		while (failed) {
			struct snap_tx *next = failed->next;
			snap_tx_free(failed);
			failed = next;
		}
		peer_maybe_free(p);
		return;
	}
	if (stable)
		p->failures = 0;
	peer_schedule(p);

	/* Callbacks last: they may remove the peer or close the transport, which only marks
	 * things and closes handles; p stays allocated until its timer's close callback. */
	if (lost && t->cfg.on_unreachable)
		t->cfg.on_unreachable(t->cfg.ud, p->id);
	while (failed) {
		struct snap_tx *next = failed->next;
		snap_tx_free(failed);
		if (peer_live(p) && t->cfg.on_snapshot_sent)
			t->cfg.on_snapshot_sent(t->cfg.ud, p->id, false);
		failed = next;
	}
}

static void conn_closed(uv_handle_t *h)
{
	struct conn *c = keel_container_of(h, struct conn, tcp);
	struct keel_transport *t = c->t;
	if (!c->outbound) {
		if (c->prev)
			c->prev->next = c->next;
		else
			t->inbound = c->next;
		if (c->next)
			c->next->prev = c->prev;
		t->n_inbound--;
		keel_snap_writer_abort(c->rx.wr);
		keel_free(c->rx.msg);
	}
	keel_frame_parser_free(&c->parser);
	SSL_free(c->ssl);
	struct peer *p = c->peer;
	bool lost = c->lost;
	bool stable = c->ready && uv_now(t->loop) - c->ready_at >= STABLE_MS;
	keel_free(c);
	if (p)
		peer_conn_gone(p, lost, stable);
	t->handles--;
	maybe_finish(t);
}

static void conn_setup_socket(struct conn *c)
{
	/* Raft messages are small and latency-bound (heartbeats, votes): no Nagle. Keepalive
	 * finds a peer that vanished without a FIN when nothing is being sent to it. Both are
	 * best effort. */
	uv_tcp_nodelay(&c->tcp, 1);
	uv_tcp_keepalive(&c->tcp, 1, KEEPALIVE_SECS);
	/* Unacknowledged data (or keepalive probes) for longer than this: the peer is gone or
	 * cut off; the kernel closes the connection and we redial (best effort too). */
	uv_os_fd_t fd;
	unsigned ms = c->t->cfg.io_timeout_ms;
	if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
		setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof(ms));
}

/* Outgoing connection established (TLS included): say HELLO, then let the queue go. */
static void conn_ready(struct conn *c)
{
	struct keel_transport *t = c->t;
	struct peer *p = c->peer;
	struct keel_buf b = KEEL_BUF_INIT;
	const struct keel_frame_hello h = {
		.cluster_id = t->cfg.cluster_id,
		.sender = t->cfg.self,
		.version = KEEL_FRAME_PROTOCOL_VERSION,
	};
	if (keel_frame_append_hello(&b, &h) < 0) {
		keel_buf_free(&b);
		conn_close(c);
		return;
	}
	size_t len;
	char *data = keel_buf_steal(&b, &len);
	uv_buf_t buf = uv_buf_init(data, (unsigned)len);
	if (conn_write(c, &buf, 1, NULL) < 0)
		return;
	c->ready = true;
	c->ready_at = uv_now(t->loop);
	uv_timer_stop(&p->timer); /* the connect timeout */
	peer_pump(p);
}

static void inbound_input(struct conn *c, const void *data, size_t len);

/* What an acceptor sent back on our outgoing connection: only REMOVED is allowed, and it must
 * name us. Either way the connection ends (the acceptor will not listen to us any more). */
static void outbound_input(struct conn *c, const void *data, size_t len)
{
	struct keel_transport *t = c->t;
	if (keel_frame_parser_feed(&c->parser, data, len) < 0) {
		conn_close(c);
		return;
	}
	struct keel_frame f;
	int r = keel_frame_parser_next(&c->parser, &f, NULL);
	if (r == 0)
		return; /* the rest of the frame is on its way */
	uint64_t id = 0;
	bool removed = r > 0 && keel_frame_removed_decode(&f, &id) == 0 && id == t->cfg.self;
	struct peer *p = c->peer;
	conn_close(c);
	if (removed && p && peer_live(p) && t->cfg.on_removed)
		t->cfg.on_removed(t->cfg.ud, p->id);
}

/* Feed ciphertext (may be none: that starts a client's handshake) and move TLS along. */
static void conn_tls_input(struct conn *c, const char *data, size_t len)
{
	ERR_clear_error();
	if (len && BIO_write(c->rbio, data, (int)len) != (int)len) {
		conn_close(c);
		return;
	}
	if (!SSL_is_init_finished(c->ssl)) {
		int r = SSL_do_handshake(c->ssl);
		int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, r);
		/* Send what it produced: the next flight, or the alert that explains a failure. */
		if (conn_flush_tls(c, NULL) < 0)
			return;
		if (r != 1) {
			if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
				ERR_clear_error();
				conn_close(c);
			}
			return;
		}
		if (c->outbound) {
			conn_ready(c);
			if (c->closing)
				return;
		}
	}
	char plain[TLS_PLAIN_LEN];
	for (;;) {
		int n = SSL_read(c->ssl, plain, (int)sizeof(plain));
		if (n > 0) {
			if (c->outbound)
				outbound_input(c, plain, (size_t)n);
			else
				inbound_input(c, plain, (size_t)n);
			if (c->closing)
				return;
			continue;
		}
		if (SSL_get_error(c->ssl, n) == SSL_ERROR_WANT_READ)
			break;
		/* close_notify, or a broken record */
		ERR_clear_error();
		conn_close(c);
		return;
	}
	conn_flush_tls(c, NULL); /* anything reading made OpenSSL answer */
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct conn *c = keel_container_of(h, struct conn, tcp);
	*buf = uv_buf_init(c->rbuf, (unsigned)sizeof(c->rbuf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = keel_container_of(s, struct conn, tcp);
	if (c->closing || nread == 0)
		return;
	if (nread < 0) { /* EOF, reset, ... */
		conn_close(c);
		return;
	}
	if (c->ssl)
		conn_tls_input(c, buf->base, (size_t)nread);
	else if (c->outbound)
		outbound_input(c, buf->base, (size_t)nread);
	else
		inbound_input(c, buf->base, (size_t)nread);
}

static void on_connect(uv_connect_t *req, int status)
{
	struct conn *c = keel_container_of(req, struct conn, connect_req);
	if (c->closing) /* cancelled */
		return;
	if (status < 0) {
		conn_close(c);
		return;
	}
	conn_setup_socket(c);
	/* Outgoing connections read too: TLS needs it, and EOF tells us the peer hung up. */
	if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
		conn_close(c);
		return;
	}
	if (c->ssl)
		conn_tls_input(c, NULL, 0);
	else
		conn_ready(c);
}

static void peer_connect(struct peer *p)
{
	struct keel_transport *t = p->t;
	struct conn *c;
	if (conn_new(t, true, &c) < 0) {
		peer_schedule(p);
		return;
	}
	c->peer = p;
	p->conn = c;
	if (uv_tcp_connect(&c->connect_req, &c->tcp, (const struct sockaddr *)&p->addr,
			   on_connect) < 0) {
		conn_close(c); /* its close callback schedules the next attempt */
		return;
	}
	uv_timer_start(&p->timer, on_peer_timer, t->cfg.connect_timeout_ms, 0);
}

static void on_peer_timer(uv_timer_t *h)
{
	struct peer *p = keel_container_of(h, struct peer, timer);
	if (!peer_live(p))
		return;
	if (p->conn) {
		if (!p->conn->ready) /* connect timeout */
			conn_close(p->conn);
		return;
	}
	peer_connect(p);
}

/* Read the next piece of the transfer at the head of p's list and write it out. This read is
 * the one blocking call on the loop (a 64 KiB pread of a local file). */
static int snap_tx_next(struct conn *c, struct snap_tx *s)
{
	uint8_t *frame = keel_malloc(KEEL_FRAME_HEADER_LEN + KEEL_FRAME_MAX_CHUNK);
	if (!frame) {
		conn_close(c);
		return -ENOMEM;
	}
	ssize_t n = keel_snap_reader_read(s->rd, frame + KEEL_FRAME_HEADER_LEN,
					  KEEL_FRAME_MAX_CHUNK, NULL);
	if (n < 0) {
		/* The receiver has an open transfer that can only end with the connection: there is
		 * no way to take back what was sent. */
		keel_free(frame);
		conn_close(c);
		return (int)n;
	}
	if (n == 0) {
		keel_free(frame);
		struct keel_buf b = KEEL_BUF_INIT;
		if (keel_frame_append_snap_end(&b, s->crc) < 0) {
			keel_buf_free(&b);
			conn_close(c);
			return -ENOMEM;
		}
		size_t len;
		char *data = keel_buf_steal(&b, &len);
		uv_buf_t buf = uv_buf_init(data, (unsigned)len);
		s->state = TX_END_SENT;
		return conn_write(c, &buf, 1, s);
	}
	s->crc = keel_crc32c(s->crc, frame + KEEL_FRAME_HEADER_LEN, (size_t)n);
	keel_frame_seal(frame, KEEL_FRAME_SNAP_CHUNK, (size_t)n);
	uv_buf_t buf = uv_buf_init((char *)frame, (unsigned)(KEEL_FRAME_HEADER_LEN + (size_t)n));
	return conn_write(c, &buf, 1, NULL);
}

/* Move queued frames to the socket while it takes them: messages first, snapshot data when no
 * message waits. Called whenever something was queued or a write completed. */
static void peer_pump(struct peer *p)
{
	struct conn *c = p->conn;
	while (c && c->ready && !c->closing && c->inflight < HIGH_WATER) {
		if (p->q_head) {
			uv_buf_t bufs[WRITE_BATCH];
			unsigned n = 0;
			while (p->q_head && n < WRITE_BATCH) {
				struct item *it = p->q_head;
				p->q_head = it->next;
				p->queued -= it->len;
				bufs[n++] = uv_buf_init((char *)it->data, (unsigned)it->len);
				keel_free(it);
			}
			if (!p->q_head)
				p->q_tail = &p->q_head;
			if (conn_write(c, bufs, n, NULL) < 0)
				return;
			continue;
		}
		struct snap_tx *s = p->snaps;
		if (!s || s->state == TX_END_SENT)
			return;
		if (s->state == TX_WAITING) {
			uv_buf_t buf = uv_buf_init((char *)s->begin, (unsigned)s->begin_len);
			s->begin = NULL;
			s->state = TX_STREAMING;
			if (conn_write(c, &buf, 1, NULL) < 0)
				return;
			continue;
		}
		if (snap_tx_next(c, s) < 0)
			return;
	}
}

/* ---- incoming side ------------------------------------------------------------------------ */

static void rx_reset(struct conn *c)
{
	keel_snap_writer_abort(c->rx.wr);
	keel_free(c->rx.msg);
	memset(&c->rx, 0, sizeof(c->rx));
}

/* Whether the connection's sender was removed from the cluster (the application knows). */
static bool sender_removed(const struct conn *c)
{
	const struct keel_transport *t = c->t;
	return t->cfg.is_removed && c->sender && t->cfg.is_removed(t->cfg.ud, c->sender);
}

/* Tell a removed sender so, once; everything it sends from now on is ignored. It hangs up when
 * it reads this (closing first could make the kernel reset the connection before the frame
 * arrives, if unread data of the sender's is still in our socket). */
static void refuse_removed(struct conn *c)
{
	c->refused = true;
	rx_reset(c);
	struct keel_buf b = KEEL_BUF_INIT;
	if (keel_frame_append_removed(&b, c->sender) < 0) {
		keel_buf_free(&b);
		conn_close(c);
		return;
	}
	size_t len;
	char *data = keel_buf_steal(&b, &len);
	uv_buf_t buf = uv_buf_init(data, (unsigned)len);
	conn_write(c, &buf, 1, NULL); /* closes the connection itself if that fails */
}

static int inbound_hello(struct conn *c, const struct keel_frame *f)
{
	struct keel_transport *t = c->t;
	struct keel_frame_hello h;
	if (keel_frame_hello_decode(f, &h) < 0 || h.cluster_id != t->cfg.cluster_id ||
	    h.sender == 0 || h.version != KEEL_FRAME_PROTOCOL_VERSION)
		return -EPROTO;
	c->sender = h.sender;
	c->hello_at = uv_now(t->loop);
	/* A sender keeps one connection to us: an older one from it is a leftover that has not
	 * noticed yet that the sender gave up on it. Its snapshot writer goes now, not in the
	 * close callback: a transfer of the same snapshot may follow on this connection at once,
	 * and the writer's lock would refuse it. */
	for (struct conn *o = t->inbound; o; o = o->next) {
		if (o != c && o->sender == h.sender && !o->closing) {
			rx_reset(o);
			conn_close(o);
		}
	}
	if (sender_removed(c))
		refuse_removed(c);
	return 0;
}

static int inbound_msg(struct conn *c, const struct keel_frame *f)
{
	struct keel_transport *t = c->t;
	struct keel_raft_msg m;
	if (keel_raft_msg_decode(f->payload, f->len, &m) < 0)
		return -EPROTO;
	if (m.from != c->sender || m.type == KEEL_RAFT_MSG_SNAPSHOT) {
		keel_raft_msg_decoded_free(&m);
		return -EPROTO;
	}
	/* One addressed to another node means our address book and the sender's disagree (a
	 * member was replaced): not an attack, just nothing for us. */
	if (m.to == t->cfg.self && t->cfg.on_message)
		t->cfg.on_message(t->cfg.ud, &m);
	keel_raft_msg_decoded_free(&m);
	return 0;
}

static int inbound_snap_begin(struct conn *c, const struct keel_frame *f)
{
	struct keel_transport *t = c->t;
	size_t mlen = f->len - 8;
	struct keel_raft_msg m;
	if (keel_raft_msg_decode(f->payload, mlen, &m) < 0)
		return -EPROTO;
	bool bad = m.type != KEEL_RAFT_MSG_SNAPSHOT || m.from != c->sender;
	bool mine = m.to == t->cfg.self;
	struct keel_raft_snapshot_meta meta = m.snapshot;
	keel_raft_msg_decoded_free(&m);
	if (bad)
		return -EPROTO;
	c->rx.active = true;
	c->rx.crc = 0;
	if (!mine) {
		c->rx.discard = true;
		return 0;
	}
	if (!t->snap_dir)
		return -ENOTSUP;
	c->rx.msg = keel_memdup(f->payload, mlen);
	if (!c->rx.msg)
		return -ENOMEM;
	c->rx.msg_len = mlen;
	return keel_snap_writer_open(t->snap_dir, &meta, &c->rx.wr, NULL);
}

static int inbound_snap_end(struct conn *c, const struct keel_frame *f)
{
	struct keel_transport *t = c->t;
	uint32_t want;
	if (keel_frame_snap_end_decode(f, &want) < 0)
		return -EPROTO;
	if (c->rx.discard) {
		rx_reset(c);
		return 0;
	}
	if (want != c->rx.crc)
		return -KEEL_ECORRUPT; /* the close callback aborts the writer */
	struct keel_snap_writer *wr = c->rx.wr;
	c->rx.wr = NULL;
	char *path = NULL;
	int r = keel_snap_writer_finish(wr, &path, NULL);
	if (r < 0)
		return r;
	struct keel_raft_msg m;
	r = keel_raft_msg_decode(c->rx.msg, c->rx.msg_len, &m);
	if (r == 0) {
		if (t->cfg.on_snapshot)
			t->cfg.on_snapshot(t->cfg.ud, &m, path);
		keel_raft_msg_decoded_free(&m);
	}
	keel_free(path);
	rx_reset(c);
	return r;
}

/* A QUERY instead of a HELLO: answer it in one ANSWER frame and ignore the rest of the
 * connection (the dialer hangs up once it has read the answer). */
static int inbound_query(struct conn *c, const struct keel_frame *f)
{
	struct keel_transport *t = c->t;
	uint64_t cid;
	uint32_t version;
	if (keel_frame_query_decode(f, &cid, &version) < 0 || cid != t->cfg.cluster_id ||
	    version != KEEL_FRAME_PROTOCOL_VERSION || !t->cfg.on_query)
		return -EPROTO;
	struct keel_buf answer = KEEL_BUF_INIT, b = KEEL_BUF_INIT;
	int r = t->cfg.on_query(t->cfg.ud, &answer);
	if (r == 0)
		r = keel_frame_append(&b, KEEL_FRAME_ANSWER, answer.data ? answer.data : "", answer.len);
	keel_buf_free(&answer);
	if (r < 0) {
		keel_buf_free(&b);
		return r;
	}
	c->refused = true; /* nothing more is read from it */
	size_t len;
	char *data = keel_buf_steal(&b, &len);
	uv_buf_t buf = uv_buf_init(data, (unsigned)len);
	conn_write(c, &buf, 1, NULL); /* closes the connection itself if that fails */
	return 0;
}

/* One frame the parser accepted (so it is in order and sized right for its kind). Negative:
 * close the connection. */
static int inbound_frame(struct conn *c, const struct keel_frame *f)
{
	if (f->kind != KEEL_FRAME_HELLO && sender_removed(c)) {
		/* Removed while connected (the application applied the removal since). */
		refuse_removed(c);
		return 0;
	}
	switch (f->kind) {
	case KEEL_FRAME_QUERY:
		return inbound_query(c, f);
	case KEEL_FRAME_HELLO:
		return inbound_hello(c, f);
	case KEEL_FRAME_MSG:
		return inbound_msg(c, f);
	case KEEL_FRAME_SNAP_BEGIN:
		return inbound_snap_begin(c, f);
	case KEEL_FRAME_SNAP_CHUNK:
		if (c->rx.discard)
			return 0;
		c->rx.crc = keel_crc32c(c->rx.crc, f->payload, f->len);
		return keel_snap_writer_write(c->rx.wr, f->payload, f->len, NULL);
	case KEEL_FRAME_SNAP_END:
		return inbound_snap_end(c, f);
	default:
		return -EPROTO;
	}
}

static void inbound_input(struct conn *c, const void *data, size_t len)
{
	if (c->refused)
		return;
	if (keel_frame_parser_feed(&c->parser, data, len) < 0) {
		conn_close(c);
		return;
	}
	for (;;) {
		struct keel_frame f;
		int r = keel_frame_parser_next(&c->parser, &f, NULL);
		if (r == 0)
			return;
		if (r < 0 || inbound_frame(c, &f) < 0) {
			conn_close(c);
			return;
		}
		if (c->closing || c->refused) /* a callback closed the transport; told REMOVED */
			return;
	}
}

static void on_connection(uv_stream_t *server, int status)
{
	struct keel_transport *t = server->data;
	if (status < 0 || t->closing)
		return;
	struct conn *c;
	/* Out of memory: the connection stays in the backlog (libuv pauses the listener until
	 * something is accepted), which is all we can do without memory for a handle. */
	if (conn_new(t, false, &c) < 0)
		return;
	c->next = t->inbound;
	if (t->inbound)
		t->inbound->prev = c;
	t->inbound = c;
	t->n_inbound++;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0 || t->n_inbound > KEEL_TRANSPORT_MAX_INBOUND) {
		conn_close(c);
		return;
	}
	conn_setup_socket(c);
	if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
		conn_close(c);
}

/* ---- setup and teardown ------------------------------------------------------------------- */

static void transport_free(struct keel_transport *t)
{
	SSL_CTX_free(t->srv_ctx);
	SSL_CTX_free(t->cli_ctx);
	keel_free(t->listen_host);
	keel_free(t->snap_dir);
	keel_free(t->cert_file);
	keel_free(t->key_file);
	keel_free(t->ca_file);
	keel_free(t->more);
	keel_free(t);
}

static void maybe_finish(struct keel_transport *t)
{
	if (!t->closing || t->handles)
		return;
	void (*cb)(void *) = t->close_cb;
	void *ud = t->close_ud;
	transport_free(t);
	if (cb)
		cb(ud);
}

static void on_listener_closed(uv_handle_t *h)
{
	struct keel_transport *t = h->data;
	t->handles--;
	maybe_finish(t);
}

static void on_timer_closed(uv_handle_t *h)
{
	struct peer *p = keel_container_of(h, struct peer, timer);
	struct keel_transport *t = p->t;
	p->timer_closed = true;
	peer_maybe_free(p);
	t->handles--;
	maybe_finish(t);
}

static int tls_fail(struct keel_err *err, const char *what, const char *file)
{
	char msg[160] = "no detail";
	unsigned long e = ERR_get_error();
	if (e)
		ERR_error_string_n(e, msg, sizeof(msg));
	ERR_clear_error();
	return keel_err_set(err, -KEEL_EBAD_VALUE, "transport: %s %s: %s", what, file ? file : "", msg);
}

static int tls_ctx_new(const struct keel_transport_config *cfg, bool server, SSL_CTX **ret,
		       struct keel_err *err)
{
	ERR_clear_error();
	SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (!ctx)
		return tls_fail(err, "create a TLS context", NULL);
	int r;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->cert_file) != 1) {
		r = tls_fail(err, "load certificate", cfg->cert_file);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, cfg->key_file, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		r = tls_fail(err, "load key", cfg->key_file);
		goto fail;
	}
	if (cfg->ca_file && SSL_CTX_load_verify_locations(ctx, cfg->ca_file, NULL) != 1) {
		r = tls_fail(err, "load CA", cfg->ca_file);
		goto fail;
	}
	if (server) {
		if (cfg->verify_peer) {
			SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
			STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->ca_file);
			if (names) /* only a hint to clients with several certificates */
				SSL_CTX_set_client_CA_list(ctx, names);
		} else {
			SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
		}
		/* Peers hold one long connection each: resumption buys nothing. */
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
		SSL_CTX_set_num_tickets(ctx, 0);
	} else {
		SSL_CTX_set_verify(ctx, cfg->ca_file ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	}
	ERR_clear_error();
	*ret = ctx;
	return 0;
fail:
	SSL_CTX_free(ctx);
	return r;
}

static int dup_opt(const char *s, char **ret)
{
	*ret = NULL;
	if (!s)
		return 0;
	*ret = keel_strdup(s);
	return *ret ? 0 : -ENOMEM;
}

/* Bind and listen with plain system calls, before any libuv handle exists, so that failing is
 * synchronous and leaves nothing behind. Returns the descriptor. */
int keel_transport_start(uv_loop_t *loop, const struct keel_transport_config *cfg,
			 struct keel_transport **ret, struct keel_err *err)
{
	if (!loop || !cfg || !ret)
		return keel_err_set(err, -EINVAL, "transport: bad arguments");
	if (!cfg->self)
		return keel_err_set(err, -EINVAL, "transport: self must be a nonzero node id");
	if (!cfg->cert_file != !cfg->key_file)
		return keel_err_set(err, -EINVAL, "transport: cert_file and key_file go together");
	if (cfg->ca_file && !cfg->cert_file)
		return keel_err_set(err, -EINVAL, "transport: ca_file without cert_file");
	if (cfg->verify_peer && !cfg->ca_file)
		return keel_err_set(err, -EINVAL, "transport: verify_peer needs ca_file");
	if (cfg->n_more_listen > MAX_MORE_LISTEN || (cfg->n_more_listen && !cfg->more_listen))
		return keel_err_set(err, -EINVAL, "transport: at most %d more addresses to listen on",
				    MAX_MORE_LISTEN);
	struct sockaddr_storage ss[1 + MAX_MORE_LISTEN];
	size_t n_listen = 1 + cfg->n_more_listen;
	for (size_t i = 0; i < n_listen; i++) {
		const char *host = i ? cfg->more_listen[i - 1].host : cfg->listen_host;
		uint16_t port = i ? cfg->more_listen[i - 1].port : cfg->listen_port;
		if (parse_addr(host, port, &ss[i]) < 0)
			return keel_err_set(err, -EINVAL, "transport: listen address %s is not a numeric IP address",
					    host ? host : "(null)");
	}
	/* libuv writes with write(2): a peer's reset would kill a process that has the default
	 * SIGPIPE action. Only the program may change that; we insist it did. */
	struct sigaction sa;
	if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
		return keel_err_set(err, -EINVAL, "transport: SIGPIPE must be ignored (signal(SIGPIPE, SIG_IGN)) before a transport starts");

	struct keel_transport *t = keel_calloc(1, sizeof(*t));
	if (!t)
		return keel_err_set(err, -ENOMEM, "transport: out of memory");
	t->loop = loop;
	t->cfg = *cfg;
	if (!t->cfg.backoff_min_ms)
		t->cfg.backoff_min_ms = KEEL_TRANSPORT_BACKOFF_MIN_MS;
	if (!t->cfg.backoff_max_ms)
		t->cfg.backoff_max_ms = KEEL_TRANSPORT_BACKOFF_MAX_MS;
	if (t->cfg.backoff_max_ms < t->cfg.backoff_min_ms)
		t->cfg.backoff_max_ms = t->cfg.backoff_min_ms;
	if (!t->cfg.connect_timeout_ms)
		t->cfg.connect_timeout_ms = KEEL_TRANSPORT_CONNECT_TIMEOUT_MS;
	if (!t->cfg.io_timeout_ms)
		t->cfg.io_timeout_ms = KEEL_TRANSPORT_IO_TIMEOUT_MS;
	if (!t->cfg.max_queue_bytes)
		t->cfg.max_queue_bytes = KEEL_TRANSPORT_MAX_QUEUE_BYTES;
	int r = dup_opt(cfg->listen_host, &t->listen_host);
	r = r ? r : dup_opt(cfg->snap_dir, &t->snap_dir);
	r = r ? r : dup_opt(cfg->cert_file, &t->cert_file);
	r = r ? r : dup_opt(cfg->key_file, &t->key_file);
	r = r ? r : dup_opt(cfg->ca_file, &t->ca_file);
	if (r) {
		transport_free(t);
		return keel_err_set(err, r, "transport: out of memory");
	}
	t->cfg.listen_host = t->listen_host;
	t->cfg.snap_dir = t->snap_dir;
	t->cfg.cert_file = t->cert_file;
	t->cfg.key_file = t->key_file;
	t->cfg.ca_file = t->ca_file;
	t->rng = uv_hrtime() ^ (cfg->self * 0x9e3779b97f4a7c15ull);

	if (t->cfg.cert_file) {
		r = tls_ctx_new(&t->cfg, true, &t->srv_ctx, err);
		r = r ? r : tls_ctx_new(&t->cfg, false, &t->cli_ctx, err);
		if (r) {
			transport_free(t);
			return r;
		}
	}

	if (n_listen > 1 && !(t->more = keel_calloc(n_listen - 1, sizeof(*t->more)))) {
		transport_free(t);
		return keel_err_set(err, -ENOMEM, "transport: out of memory");
	}
	int fds[1 + MAX_MORE_LISTEN];
	for (size_t i = 0; i < n_listen; i++) {
		uint16_t port;
		fds[i] = keel_net_listen(&ss[i], LISTEN_BACKLOG, &port);
		if (fds[i] < 0) {
			r = keel_err_errno(err, fds[i], "transport: listen on %s port %u",
					   i ? cfg->more_listen[i - 1].host : cfg->listen_host,
					   i ? cfg->more_listen[i - 1].port : cfg->listen_port);
			for (size_t k = 0; k < i; k++)
				close(fds[k]);
			transport_free(t);
			return r;
		}
		if (i == 0)
			t->port = port;
	}
	t->n_more = n_listen - 1;
	r = 0;
	for (size_t i = 0; i < n_listen; i++) {
		uv_tcp_t *h = i ? &t->more[i - 1] : &t->listener;
		uv_tcp_init(loop, h); /* cannot fail: no socket is created */
		h->data = t;
		t->handles++;
		int e = r < 0 ? r : uv_tcp_open(h, fds[i]);
		if (e < 0)
			close(fds[i]);
		else
			e = uv_listen((uv_stream_t *)h, LISTEN_BACKLOG, on_connection);
		if (e < 0 && r == 0)
			r = keel_err_set(err, e, "transport: listen: %s", uv_strerror(e));
	}
	if (r < 0) {
		/* Not expected on descriptors we just made listen. The handles exist now, so their
		 * memory can only go in their close callbacks, when the loop next runs. */
		t->closing = true;
		for (size_t i = 0; i < n_listen; i++)
			uv_close((uv_handle_t *)(i ? &t->more[i - 1] : &t->listener), on_listener_closed);
		return r;
	}
	*ret = t;
	return 0;
}

uint16_t keel_transport_port(const struct keel_transport *t)
{
	return t ? t->port : 0;
}

int keel_transport_set_peer(struct keel_transport *t, keel_raft_id id, const char *host,
			    uint16_t port)
{
	if (!t)
		return -EINVAL;
	if (t->closing)
		return -KEEL_ESTOPPED;
	struct sockaddr_storage ss;
	if (!id || id == t->cfg.self || parse_addr(host, port, &ss) < 0)
		return -EINVAL;
	struct peer *p = peer_find(t, id);
	if (p) {
		if (addr_equal(&p->addr, &ss))
			return 0;
		p->addr = ss;
		if (p->conn) {
			p->reconnect_now = true;
			conn_close(p->conn);
		} else {
			uv_timer_stop(&p->timer);
			p->failures = 0;
			peer_connect(p);
		}
		return 0;
	}
	p = keel_calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->t = t;
	p->id = id;
	p->addr = ss;
	p->q_tail = &p->q_head;
	p->snaps_tail = &p->snaps;
	uv_timer_init(t->loop, &p->timer);
	t->handles++;
	p->next = t->peers;
	t->peers = p;
	peer_connect(p);
	return 0;
}

/* Unlink p first. Its memory goes once the timer and the connection have closed. */
static void peer_remove(struct peer *p)
{
	p->removed = true;
	uv_close((uv_handle_t *)&p->timer, on_timer_closed);
	if (p->conn)
		conn_close(p->conn);
}

uint64_t keel_transport_active_since(const struct keel_transport *t, keel_raft_id id)
{
	const struct peer *p = peer_find((struct keel_transport *)t, id);
	if (!p || !p->conn || !p->conn->ready || p->conn->closing)
		return 0;
	uint64_t since = p->conn->ready_at;
	bool in = false;
	for (const struct conn *c = t->inbound; c; c = c->next) {
		if (c->sender == id && !c->closing && !c->refused) {
			in = true;
			since = KEEL_MAX(since, c->hello_at);
		}
	}
	return in ? KEEL_MAX(since, 1) : 0;
}

void keel_transport_remove_peer(struct keel_transport *t, keel_raft_id id)
{
	if (!t || t->closing)
		return;
	for (struct peer **pp = &t->peers; *pp; pp = &(*pp)->next) {
		if ((*pp)->id == id) {
			struct peer *p = *pp;
			*pp = p->next;
			peer_remove(p);
			return;
		}
	}
}

/* A frame whose payload is m's encoding, followed by a u64 when tail is given. */
static int encode_frame(const struct keel_raft_msg *m, uint8_t kind, const uint64_t *tail,
			uint8_t **ret, size_t *ret_len)
{
	struct keel_buf b = KEEL_BUF_INIT;
	static const uint8_t zero[KEEL_FRAME_HEADER_LEN];
	int r = keel_buf_append(&b, zero, sizeof(zero));
	r = r ? r : keel_raft_msg_encode(m, &b);
	if (!r && tail)
		r = keel_buf_put_le64(&b, *tail);
	if (!r && b.len - KEEL_FRAME_HEADER_LEN > KEEL_FRAME_MAX_PAYLOAD)
		r = -EMSGSIZE;
	if (r) {
		keel_buf_free(&b);
		return r;
	}
	keel_frame_seal((uint8_t *)b.data, kind, b.len - KEEL_FRAME_HEADER_LEN);
	*ret = (uint8_t *)keel_buf_steal(&b, ret_len);
	return 0;
}

int keel_transport_send(struct keel_transport *t, const struct keel_raft_msg *m)
{
	if (!t || !m)
		return -EINVAL;
	if (t->closing)
		return -KEEL_ESTOPPED;
	if (m->from != t->cfg.self || m->type == KEEL_RAFT_MSG_SNAPSHOT)
		return -EINVAL;
	struct peer *p = peer_find(t, m->to);
	if (!p)
		return -ENOENT;
	uint8_t *data;
	size_t len;
	int r = encode_frame(m, KEEL_FRAME_MSG, NULL, &data, &len);
	if (r < 0)
		return r;
	if (peer_pending(p) + len > t->cfg.max_queue_bytes) {
		keel_free(data);
		if (t->cfg.on_unreachable)
			t->cfg.on_unreachable(t->cfg.ud, p->id);
		return -ENOBUFS;
	}
	struct item *it = keel_malloc(sizeof(*it));
	if (!it) {
		keel_free(data);
		return -ENOMEM;
	}
	it->next = NULL;
	it->data = data;
	it->len = len;
	*p->q_tail = it;
	p->q_tail = &it->next;
	p->queued += len;
	peer_pump(p);
	return 0;
}

int keel_transport_send_snapshot(struct keel_transport *t, const struct keel_raft_msg *m,
				 const char *snap_path)
{
	if (!t || !m || !snap_path)
		return -EINVAL;
	if (t->closing)
		return -KEEL_ESTOPPED;
	if (m->from != t->cfg.self || m->type != KEEL_RAFT_MSG_SNAPSHOT)
		return -EINVAL;
	struct peer *p = peer_find(t, m->to);
	if (!p)
		return -ENOENT;
	struct keel_snap_reader *rd;
	struct keel_raft_snapshot_meta meta;
	int r = keel_snap_reader_open(snap_path, &rd, &meta, NULL);
	if (r < 0)
		return r;
	if (meta.index != m->snapshot.index || meta.term != m->snapshot.term) {
		keel_snap_reader_close(rd);
		return -EINVAL;
	}
	struct snap_tx *s = keel_calloc(1, sizeof(*s));
	uint64_t size = keel_snap_reader_size(rd);
	r = s ? encode_frame(m, KEEL_FRAME_SNAP_BEGIN, &size, &s->begin, &s->begin_len) : -ENOMEM;
	if (r < 0) {
		keel_free(s);
		keel_snap_reader_close(rd);
		return r;
	}
	s->rd = rd;
	s->state = TX_WAITING;
	*p->snaps_tail = s;
	p->snaps_tail = &s->next;
	peer_pump(p);
	return 0;
}

void keel_transport_close(struct keel_transport *t, void (*cb)(void *ud), void *ud)
{
	if (!t || t->closing)
		return;
	t->closing = true;
	t->close_cb = cb;
	t->close_ud = ud;
	uv_close((uv_handle_t *)&t->listener, on_listener_closed);
	for (size_t i = 0; i < t->n_more; i++)
		uv_close((uv_handle_t *)&t->more[i], on_listener_closed);
	while (t->peers) {
		struct peer *p = t->peers;
		t->peers = p->next;
		peer_remove(p);
	}
	for (struct conn *c = t->inbound; c; c = c->next)
		conn_close(c);
}
