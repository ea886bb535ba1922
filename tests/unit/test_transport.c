#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "base/crc32c.h"
#include "base/mem.h"
#include "base/net.h"
#include "raftio/codec.h"
#include "raftio/frame.h"
#include "raftio/snap.h"
#include "raftio/transport.h"

/* Every test runs its own loop on 127.0.0.1 with ephemeral ports. Waits are bounded by
 * WAIT_MS, so a bug fails a test instead of hanging it; "nothing happens" is checked over
 * QUIET_MS. */
#define WAIT_MS 10000
#define QUIET_MS 300
#define MAX_NODES 4
#define MAX_RECS 256

struct rec {
	enum keel_raft_msg_type type;
	keel_raft_id from, to;
	uint64_t term, context;
	uint32_t n_entries;
	uint64_t index[4];
	uint32_t len[4];
	uint32_t crc[4];
};

struct node {
	struct keel_transport *t;
	keel_raft_id id;
	bool running;
	bool closed;
	char snap_dir[128];
	unsigned n_msgs;
	struct rec recs[MAX_RECS];
	unsigned unreachable;
	keel_raft_id last_unreachable;
	unsigned snaps_received;
	char snap_path[256];
	struct keel_raft_msg snap_msg;
	unsigned snaps_sent_ok, snaps_sent_failed;
	bool close_on_message; /* close the transport from inside on_message */
	keel_raft_id removed[4]; /* ids this node answers REMOVED */
	unsigned n_removed;
	unsigned told_removed;   /* on_removed calls */
	keel_raft_id told_by;
};

/* A bare TCP client, for speaking (or mangling) the protocol by hand. */
struct raw {
	uv_tcp_t tcp;
	uv_connect_t connect;
	uv_write_t write;
	uv_buf_t out;
	bool connected, eof, closed;
};

struct fixture {
	uv_loop_t loop;
	uv_timer_t deadline;
	bool timed_out;
	uv_timer_t ticker; /* sends `tick_msg` every TICK_MS while armed */
	struct keel_transport *tick_from;
	struct keel_raft_msg tick_msg;
	char root[64];
	struct node n[MAX_NODES];
	struct raw raw[2];
};

struct certs {
	bool ok;
	char dir[64];
};

static struct certs certs;

/* ---- loop helpers ------------------------------------------------------------------------- */

static void on_deadline(uv_timer_t *h)
{
	struct fixture *f = h->data;
	f->timed_out = true;
}

static void deadline_start(struct fixture *f, unsigned ms)
{
	f->timed_out = false;
	uv_timer_start(&f->deadline, on_deadline, ms, 0);
}

/* Run the loop until cond holds or ms pass; the value is cond's. */
#define RUN_UNTIL(f, cond, ms)                                                   \
	({                                                                       \
		deadline_start((f), (ms));                                       \
		while (!(cond) && !(f)->timed_out)                               \
			uv_run(&(f)->loop, UV_RUN_ONCE);                         \
		uv_timer_stop(&(f)->deadline);                                   \
		(bool)(cond);                                                    \
	})

static void run_for(struct fixture *f, unsigned ms)
{
	RUN_UNTIL(f, false, ms);
}

#define TICK_MS 10

static void on_tick(uv_timer_t *h)
{
	struct fixture *f = h->data;
	keel_transport_send(f->tick_from, &f->tick_msg);
}

static void ticker_start(struct fixture *f, struct node *from, keel_raft_id to)
{
	f->tick_from = from->t;
	f->tick_msg = (struct keel_raft_msg){.type = KEEL_RAFT_MSG_HEARTBEAT, .from = from->id,
					     .to = to, .term = 1};
	uv_timer_start(&f->ticker, on_tick, TICK_MS, TICK_MS);
}

/* ---- files -------------------------------------------------------------------------------- */

static uint8_t *read_file(const char *path, size_t *ret_len)
{
	FILE *fp = fopen(path, "rb");
	assert_non_null(fp);
	fseek(fp, 0, SEEK_END);
	long sz = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	uint8_t *data = malloc(sz > 0 ? (size_t)sz : 1);
	assert_non_null(data);
	assert_int_equal(fread(data, 1, (size_t)sz, fp), (size_t)sz);
	fclose(fp);
	*ret_len = (size_t)sz;
	return data;
}

static uint8_t byte_at(uint64_t i)
{
	return (uint8_t)((i * 2654435761u) >> 11);
}

/* A snapshot file of `size` bytes of pattern data in dir; its path goes to path. */
static void make_snapshot(const char *dir, uint64_t term, uint64_t index, size_t size, char *path,
			  size_t path_size)
{
	struct keel_raft_snapshot_meta meta = {.index = index, .term = term};
	meta.conf.n_voters = 3;
	meta.conf.voters[0] = 1;
	meta.conf.voters[1] = 2;
	meta.conf.voters[2] = 3;
	struct keel_snap_writer *wr;
	struct keel_err err = {0};
	assert_int_equal(keel_snap_writer_open(dir, &meta, &wr, &err), 0);
	uint8_t piece[100000];
	for (size_t off = 0; off < size; off += sizeof(piece)) {
		size_t n = size - off < sizeof(piece) ? size - off : sizeof(piece);
		for (size_t i = 0; i < n; i++)
			piece[i] = byte_at(off + i);
		assert_int_equal(keel_snap_writer_write(wr, piece, n, &err), 0);
	}
	char *p = NULL;
	assert_int_equal(keel_snap_writer_finish(wr, &p, &err), 0);
	snprintf(path, path_size, "%s", p);
	keel_free(p);
}

/* ---- transport callbacks ------------------------------------------------------------------ */

static void on_message(void *ud, const struct keel_raft_msg *m)
{
	struct node *n = ud;
	if (n->n_msgs < MAX_RECS) {
		struct rec *r = &n->recs[n->n_msgs];
		r->type = m->type;
		r->from = m->from;
		r->to = m->to;
		r->term = m->term;
		r->context = m->context;
		r->n_entries = m->n_entries;
		for (uint32_t i = 0; i < m->n_entries && i < 4; i++) {
			r->index[i] = m->entries[i].index;
			r->len[i] = m->entries[i].len;
			r->crc[i] = keel_crc32c(0, m->entries[i].data, m->entries[i].len);
		}
	}
	n->n_msgs++;
	if (n->close_on_message && n->running) {
		n->running = false;
		keel_transport_close(n->t, NULL, NULL);
		n->closed = true; /* t is gone once the loop runs: nothing waits for it */
	}
}

static void on_snapshot(void *ud, const struct keel_raft_msg *m, const char *path)
{
	struct node *n = ud;
	n->snaps_received++;
	snprintf(n->snap_path, sizeof(n->snap_path), "%s", path);
	n->snap_msg = *m;
	n->snap_msg.entries = NULL;
	n->snap_msg.n_entries = 0;
}

static void on_unreachable(void *ud, keel_raft_id peer)
{
	struct node *n = ud;
	n->unreachable++;
	n->last_unreachable = peer;
}

static void on_snapshot_sent(void *ud, keel_raft_id peer, bool ok)
{
	struct node *n = ud;
	if (ok)
		n->snaps_sent_ok++;
	else
		n->snaps_sent_failed++;
}

static bool is_removed(void *ud, keel_raft_id id)
{
	struct node *n = ud;
	for (unsigned i = 0; i < n->n_removed; i++)
		if (n->removed[i] == id)
			return true;
	return false;
}

static void on_removed(void *ud, keel_raft_id told_by)
{
	struct node *n = ud;
	n->told_removed++;
	n->told_by = told_by;
}

static int on_query(void *ud, struct keel_buf *out)
{
	struct node *n = ud;
	return keel_buf_printf(out, "{\"node\":%llu}", (unsigned long long)n->id);
}

static void on_node_closed(void *ud)
{
	struct node *n = ud;
	n->closed = true;
}

/* ---- nodes -------------------------------------------------------------------------------- */

enum tls_mode {
	PLAIN,
	TLS,       /* node certificate from the cluster CA, verify_peer */
	TLS_ROGUE, /* certificate from another CA, trusts the cluster CA */
};

struct opts {
	uint64_t cluster;
	uint16_t port;
	enum tls_mode tls;
	size_t max_queue;
	const struct keel_transport_listen *more;
	size_t n_more;
};

static int try_start(struct fixture *f, int idx, keel_raft_id id, const struct opts *o,
		     struct keel_err *err)
{
	struct node *n = &f->n[idx];
	char cert[128], key[128], ca[128];
	struct keel_transport_config cfg = {
		.self = id,
		.cluster_id = o && o->cluster ? o->cluster : 1,
		.listen_host = "127.0.0.1",
		.listen_port = o ? o->port : 0,
		.snap_dir = n->snap_dir,
		.backoff_min_ms = 10,
		.backoff_max_ms = 100,
		.max_queue_bytes = o ? o->max_queue : 0,
		.on_message = on_message,
		.on_snapshot = on_snapshot,
		.on_unreachable = on_unreachable,
		.on_snapshot_sent = on_snapshot_sent,
		.is_removed = is_removed,
		.on_removed = on_removed,
		.on_query = on_query,
		.more_listen = o ? o->more : NULL,
		.n_more_listen = o ? o->n_more : 0,
		.ud = n,
	};
	if (o && o->tls != PLAIN) {
		const char *name = o->tls == TLS_ROGUE ? "rogue" : id == 1 ? "n1" : "n2";
		snprintf(cert, sizeof(cert), "%s/%s.crt", certs.dir, name);
		snprintf(key, sizeof(key), "%s/%s.key", certs.dir, name);
		snprintf(ca, sizeof(ca), "%s/ca.crt", certs.dir);
		cfg.cert_file = cert;
		cfg.key_file = key;
		cfg.ca_file = ca;
		cfg.verify_peer = true;
	}
	snprintf(n->snap_dir, sizeof(n->snap_dir), "%s/snap-%d", f->root, idx);
	n->id = id;
	n->closed = false;
	int r = keel_transport_start(&f->loop, &cfg, &n->t, err);
	n->running = r == 0;
	return r;
}

static void start_node(struct fixture *f, int idx, keel_raft_id id, const struct opts *o)
{
	struct keel_err err = {0};
	int r = try_start(f, idx, id, o, &err);
	if (r)
		fail_msg("start node %llu: %s", (unsigned long long)id, keel_err_msg(&err));
}

static void close_node(struct fixture *f, int idx)
{
	struct node *n = &f->n[idx];
	if (!n->running)
		return;
	n->running = false;
	keel_transport_close(n->t, on_node_closed, n);
	assert_true(RUN_UNTIL(f, n->closed, WAIT_MS));
	n->t = NULL;
}

static uint16_t port_of(struct fixture *f, int idx)
{
	return keel_transport_port(f->n[idx].t);
}

static void link_nodes(struct fixture *f, int a, int b)
{
	assert_int_equal(keel_transport_set_peer(f->n[a].t, f->n[b].id, "127.0.0.1", port_of(f, b)), 0);
	assert_int_equal(keel_transport_set_peer(f->n[b].t, f->n[a].id, "127.0.0.1", port_of(f, a)), 0);
}

static struct keel_raft_msg heartbeat(keel_raft_id from, keel_raft_id to, uint64_t context)
{
	return (struct keel_raft_msg){.type = KEEL_RAFT_MSG_HEARTBEAT, .from = from, .to = to,
				      .term = 3, .commit = 5, .context = context};
}

/* ---- raw clients -------------------------------------------------------------------------- */

static void raw_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
	static char sink[4096];
	*buf = uv_buf_init(sink, sizeof(sink));
}

static void raw_closed(uv_handle_t *h)
{
	struct raw *r = h->data;
	r->closed = true;
}

static void raw_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct raw *r = s->data;
	if (nread < 0) {
		r->eof = true;
		uv_close((uv_handle_t *)&r->tcp, raw_closed);
	}
}

static void raw_written(uv_write_t *req, int status)
{
}

static void raw_connected(uv_connect_t *req, int status)
{
	struct raw *r = req->data;
	if (status < 0) /* the test looks at r->connected */
		return;
	r->connected = true;
	uv_read_start((uv_stream_t *)&r->tcp, raw_alloc, raw_read);
	uv_write(&r->write, (uv_stream_t *)&r->tcp, &r->out, 1, raw_written);
}

/* Connect to port and send data (copied; freed by raw_finish). */
static void raw_start(struct fixture *f, struct raw *r, uint16_t port, const void *data, size_t len)
{
	memset(r, 0, sizeof(*r));
	char *copy = malloc(len);
	assert_non_null(copy);
	memcpy(copy, data, len);
	r->out = uv_buf_init(copy, (unsigned)len);
	struct sockaddr_in addr;
	uv_ip4_addr("127.0.0.1", port, &addr);
	uv_tcp_init(&f->loop, &r->tcp);
	r->tcp.data = r;
	r->connect.data = r;
	assert_int_equal(uv_tcp_connect(&r->connect, &r->tcp, (struct sockaddr *)&addr, raw_connected), 0);
}

/* Close the client if the server did not, and release it. */
static void raw_finish(struct fixture *f, struct raw *r)
{
	if (!r->closed && !uv_is_closing((uv_handle_t *)&r->tcp))
		uv_close((uv_handle_t *)&r->tcp, raw_closed);
	RUN_UNTIL(f, r->closed, WAIT_MS);
	free(r->out.base);
	r->out.base = NULL;
}

/* Connect to port, send data, then wait until the server hangs up. */
static void raw_send_and_expect_hangup(struct fixture *f, uint16_t port, const void *data,
				       size_t len)
{
	struct raw *r = &f->raw[0];
	raw_start(f, r, port, data, len);
	bool hung_up = RUN_UNTIL(f, r->closed, WAIT_MS);
	raw_finish(f, r);
	assert_true(r->connected);
	assert_true(hung_up);
}

/* ---- fixtures ----------------------------------------------------------------------------- */

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	snprintf(f->root, sizeof(f->root), "/tmp/keel-test-transport-XXXXXX");
	if (!mkdtemp(f->root) || uv_loop_init(&f->loop) < 0) {
		free(f);
		return -1;
	}
	uv_timer_init(&f->loop, &f->deadline);
	f->deadline.data = f;
	uv_timer_init(&f->loop, &f->ticker);
	f->ticker.data = f;
	*state = f;
	return 0;
}

static void on_fixture_handle_closed(uv_handle_t *h)
{
	(*(int *)h->loop->data)--;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	for (int i = 0; i < MAX_NODES; i++) {
		struct node *n = &f->n[i];
		if (n->running) {
			n->running = false;
			keel_transport_close(n->t, on_node_closed, n);
		}
	}
	for (int i = 0; i < 2; i++) {
		struct raw *r = &f->raw[i];
		if (r->tcp.loop && !r->closed && !uv_is_closing((uv_handle_t *)&r->tcp))
			uv_close((uv_handle_t *)&r->tcp, raw_closed);
	}
	int open = 2;
	f->loop.data = &open;
	uv_close((uv_handle_t *)&f->ticker, on_fixture_handle_closed);
	uv_close((uv_handle_t *)&f->deadline, on_fixture_handle_closed);
	/* Bounded: every handle must close, so the loop must stop by itself. */
	for (int i = 0; i < 1000 && uv_run(&f->loop, UV_RUN_NOWAIT); i++)
		usleep(1000);
	int r = uv_loop_close(&f->loop);
	free(f->raw[0].out.base);
	free(f->raw[1].out.base);
	for (int i = 0; i < MAX_NODES; i++)
		if (f->n[i].t && !f->n[i].closed)
			r = -1;
	test_remove_tree(f->root);
	free(f);
	return r == 0 && open == 0 ? 0 : -1;
}

/* Certificates for every TLS test, made once with the openssl command: a cluster CA with two
 * node certificates, and another CA with a "rogue" node certificate. EC P-256: quick to make. */
static int group_setup(void **state)
{
	snprintf(certs.dir, sizeof(certs.dir), "/tmp/keel-test-certs-XXXXXX");
	if (!mkdtemp(certs.dir))
		return -1;
	char cmd[2048];
	snprintf(cmd, sizeof(cmd),
		 "cd %s && printf 'extendedKeyUsage=serverAuth,clientAuth\\nsubjectAltName=IP:127.0.0.1\\n' > ext && "
		 "for ca in ca otherca; do "
		 "  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out $ca.key &&"
		 "  openssl req -x509 -new -key $ca.key -subj /CN=keel-test-$ca -days 2 -out $ca.crt || exit 1; "
		 "done && "
		 "for n in n1:ca n2:ca rogue:otherca; do "
		 "  name=${n%%:*}; ca=${n#*:}; "
		 "  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out $name.key &&"
		 "  openssl req -new -key $name.key -subj /CN=keel-test-$name -out $name.csr &&"
		 "  openssl x509 -req -in $name.csr -CA $ca.crt -CAkey $ca.key -CAcreateserial -days 2"
		 "    -extfile ext -out $name.crt || exit 1; "
		 "done",
		 certs.dir);
	char full[2200];
	snprintf(full, sizeof(full), "(%s) >/dev/null 2>&1", cmd);
	certs.ok = system(full) == 0;
	return 0;
}

static int group_teardown(void **state)
{
	test_remove_tree(certs.dir);
	return 0;
}

#define NEED_CERTS()                                                             \
	do {                                                                     \
		if (!certs.ok) {                                                 \
			print_message("openssl could not make certificates\n");  \
			skip();                                                  \
		}                                                                \
	} while (0)

/* ---- tests -------------------------------------------------------------------------------- */

static void transport_exchanges_messages_both_ways(void **state)
{
	struct fixture *f = *state;
	start_node(f, 0, 1, NULL);
	start_node(f, 1, 2, NULL);
	assert_true(port_of(f, 0) != 0 && port_of(f, 1) != 0 && port_of(f, 0) != port_of(f, 1));
	link_nodes(f, 0, 1);

	char d1[] = "hello", d2[] = "entry data, a little longer";
	struct keel_raft_entry ents[2] = {
		{.term = 3, .index = 11, .type = KEEL_RAFT_ENTRY_NORMAL, .len = 5, .data = d1},
		{.term = 3, .index = 12, .type = KEEL_RAFT_ENTRY_CONF, .len = sizeof(d2), .data = d2},
	};
	struct keel_raft_msg app = {.type = KEEL_RAFT_MSG_APPEND, .from = 1, .to = 2, .term = 3,
				    .log_term = 2, .index = 10, .commit = 9, .n_entries = 2,
				    .entries = ents};
	assert_int_equal(keel_transport_send(f->n[0].t, &app), 0);
	memset(d1, 'X', 5); /* the transport copied the entries */
	struct keel_raft_msg resp = {.type = KEEL_RAFT_MSG_APPEND_RESP, .from = 2, .to = 1,
				     .term = 3, .index = 12};
	assert_int_equal(keel_transport_send(f->n[1].t, &resp), 0);
	assert_true(RUN_UNTIL(f, f->n[1].n_msgs == 1 && f->n[0].n_msgs == 1, WAIT_MS));

	const struct rec *r = &f->n[1].recs[0];
	assert_int_equal(r->type, KEEL_RAFT_MSG_APPEND);
	assert_true(r->from == 1 && r->to == 2 && r->term == 3);
	assert_int_equal(r->n_entries, 2);
	assert_int_equal(r->index[0], 11);
	assert_int_equal(r->len[0], 5);
	assert_int_equal(r->crc[0], keel_crc32c(0, "hello", 5));
	assert_int_equal(r->len[1], sizeof(d2));
	assert_int_equal(r->crc[1], keel_crc32c(0, d2, sizeof(d2)));
	r = &f->n[0].recs[0];
	assert_int_equal(r->type, KEEL_RAFT_MSG_APPEND_RESP);
	assert_true(r->from == 2 && r->to == 1);

	/* Many at once arrive, in order. */
	for (uint64_t i = 0; i < 200; i++) {
		struct keel_raft_msg hb = heartbeat(1, 2, i);
		assert_int_equal(keel_transport_send(f->n[0].t, &hb), 0);
	}
	assert_true(RUN_UNTIL(f, f->n[1].n_msgs == 201, WAIT_MS));
	for (unsigned i = 0; i < 200; i++)
		assert_int_equal(f->n[1].recs[1 + i].context, i);
	assert_int_equal(f->n[0].unreachable, 0);
	assert_int_equal(f->n[1].unreachable, 0);
	close_node(f, 0);
	close_node(f, 1);
}

static void transport_drops_messages_to_a_down_peer_and_reconnects(void **state)
{
	struct fixture *f = *state;
	/* Find a free port for node 2, then take node 2 down. */
	start_node(f, 1, 2, NULL);
	uint16_t port = port_of(f, 1);
	close_node(f, 1);

	start_node(f, 0, 1, NULL);
	assert_int_equal(keel_transport_set_peer(f->n[0].t, 2, "127.0.0.1", port), 0);
	struct keel_raft_msg hb = heartbeat(1, 2, 1);
	assert_int_equal(keel_transport_send(f->n[0].t, &hb), 0);
	assert_true(RUN_UNTIL(f, f->n[0].unreachable >= 1, WAIT_MS));
	assert_int_equal(f->n[0].last_unreachable, 2);

	/* A snapshot transfer to it fails too, and says so. */
	char src[256];
	char src_dir[128];
	snprintf(src_dir, sizeof(src_dir), "%s/src", f->root);
	make_snapshot(src_dir, 2, 40, 1000, src, sizeof(src));
	struct keel_raft_msg sm = {.type = KEEL_RAFT_MSG_SNAPSHOT, .from = 1, .to = 2, .term = 2,
				   .snapshot = {.index = 40, .term = 2}};
	assert_int_equal(keel_transport_send_snapshot(f->n[0].t, &sm, src), 0);
	assert_true(RUN_UNTIL(f, f->n[0].snaps_sent_failed == 1, WAIT_MS));
	assert_int_equal(f->n[0].snaps_sent_ok, 0);

	/* It comes back on the same port: the backoff timer finds it, messages flow. */
	struct opts o = {.port = port};
	start_node(f, 1, 2, &o);
	ticker_start(f, &f->n[0], 2);
	assert_true(RUN_UNTIL(f, f->n[1].n_msgs >= 3, WAIT_MS));
	uv_timer_stop(&f->ticker);
	assert_int_equal(f->n[1].recs[0].from, 1);
	close_node(f, 0);
	close_node(f, 1);
}

static void transport_carries_a_4_mib_message(void **state)
{
	struct fixture *f = *state;
	start_node(f, 0, 1, NULL);
	start_node(f, 1, 2, NULL);
	link_nodes(f, 0, 1);
	size_t len = (size_t)4 << 20;
	uint8_t *big = malloc(len);
	assert_non_null(big);
	for (size_t i = 0; i < len; i++)
		big[i] = byte_at(i);
	struct keel_raft_entry e = {.term = 1, .index = 2, .len = (uint32_t)len, .data = big};
	struct keel_raft_msg m = {.type = KEEL_RAFT_MSG_APPEND, .from = 1, .to = 2, .term = 1,
				  .index = 1, .n_entries = 1, .entries = &e};
	assert_int_equal(keel_transport_send(f->n[0].t, &m), 0);
	struct keel_raft_msg hb = heartbeat(1, 2, 77);
	assert_int_equal(keel_transport_send(f->n[0].t, &hb), 0);
	assert_true(RUN_UNTIL(f, f->n[1].n_msgs == 2, WAIT_MS));
	assert_int_equal(f->n[1].recs[0].len[0], len);
	assert_int_equal(f->n[1].recs[0].crc[0], keel_crc32c(0, big, len));
	assert_int_equal(f->n[1].recs[1].context, 77);
	free(big);

	/* One too big for a frame is refused up front. */
	struct keel_raft_entry huge = {.term = 1, .index = 2, .len = (uint32_t)KEEL_FRAME_MAX_PAYLOAD};
	huge.data = calloc(1, huge.len);
	assert_non_null(huge.data);
	m.entries = &huge;
	assert_int_equal(keel_transport_send(f->n[0].t, &m), -EMSGSIZE);
	free(huge.data);
	close_node(f, 0);
	close_node(f, 1);
}

static void transport_streams_a_snapshot_file(void **state)
{
	struct fixture *f = *state;
	start_node(f, 0, 1, NULL);
	start_node(f, 1, 2, NULL);
	link_nodes(f, 0, 1);
	char src[256], src_dir[128];
	snprintf(src_dir, sizeof(src_dir), "%s/src", f->root);
	size_t size = (size_t)6 << 20 | 12345; /* not a whole number of chunks */
	make_snapshot(src_dir, 4, 1000, size, src, sizeof(src));

	struct keel_raft_msg sm = {.type = KEEL_RAFT_MSG_SNAPSHOT, .from = 1, .to = 2, .term = 5,
				   .snapshot = {.index = 1000, .term = 4}};
	sm.snapshot.conf.n_voters = 3;
	sm.snapshot.conf.voters[0] = 1;
	sm.snapshot.conf.voters[1] = 2;
	sm.snapshot.conf.voters[2] = 3;
	assert_int_equal(keel_transport_send_snapshot(f->n[0].t, &sm, src), 0);
	/* Messages keep flowing beside it. */
	struct keel_raft_msg hb = heartbeat(1, 2, 9);
	assert_int_equal(keel_transport_send(f->n[0].t, &hb), 0);
	assert_true(RUN_UNTIL(f, f->n[1].snaps_received == 1 && f->n[0].snaps_sent_ok == 1, WAIT_MS));
	assert_int_equal(f->n[0].snaps_sent_failed, 0);
	assert_true(f->n[1].n_msgs >= 1);
	assert_int_equal(f->n[1].recs[0].context, 9);

	const struct keel_raft_msg *got = &f->n[1].snap_msg;
	assert_int_equal(got->type, KEEL_RAFT_MSG_SNAPSHOT);
	assert_true(got->from == 1 && got->to == 2 && got->term == 5);
	assert_true(got->snapshot.index == 1000 && got->snapshot.term == 4);
	assert_int_equal(got->snapshot.conf.n_voters, 3);
	assert_true(strncmp(f->n[1].snap_path, f->n[1].snap_dir, strlen(f->n[1].snap_dir)) == 0);

	/* Same metadata, same data: the stored file is the source file, byte for byte. */
	size_t a_len, b_len;
	uint8_t *a = read_file(src, &a_len);
	uint8_t *b = read_file(f->n[1].snap_path, &b_len);
	assert_true(a_len > size);
	assert_int_equal(a_len, b_len);
	assert_memory_equal(a, b, a_len);
	free(a);
	free(b);
	struct keel_snap_reader *rd;
	struct keel_err err = {0};
	assert_int_equal(keel_snap_reader_open(f->n[1].snap_path, &rd, NULL, &err), 0);
	assert_int_equal(keel_snap_reader_size(rd), size);
	keel_snap_reader_close(rd);

	/* What the file does not hold is refused before anything is sent. */
	sm.snapshot.index = 999;
	assert_int_equal(keel_transport_send_snapshot(f->n[0].t, &sm, src), -EINVAL);
	sm.snapshot.index = 1000;
	sm.to = 9;
	assert_int_equal(keel_transport_send_snapshot(f->n[0].t, &sm, src), -ENOENT);
	sm.to = 2;
	char missing[300];
	snprintf(missing, sizeof(missing), "%s/nope.snap", src_dir);
	assert_int_equal(keel_transport_send_snapshot(f->n[0].t, &sm, missing), -ENOENT);
	close_node(f, 0);
	close_node(f, 1);
}

static void transport_refuses_a_peer_from_another_cluster(void **state)
{
	struct fixture *f = *state;
	start_node(f, 0, 1, NULL);
	struct opts other = {.cluster = 2};
	start_node(f, 2, 3, &other);
	assert_int_equal(keel_transport_set_peer(f->n[2].t, 1, "127.0.0.1", port_of(f, 0)), 0);
	ticker_start(f, &f->n[2], 1);
	run_for(f, QUIET_MS);
	uv_timer_stop(&f->ticker);
	assert_int_equal(f->n[0].n_msgs, 0);

	/* By hand: a HELLO with the wrong cluster id, then a good message: hung up on. */
	struct keel_buf b = KEEL_BUF_INIT;
	struct keel_frame_hello h = {.cluster_id = 2, .sender = 3, .version = KEEL_FRAME_PROTOCOL_VERSION};
	assert_int_equal(keel_frame_append_hello(&b, &h), 0);
	struct keel_buf m = KEEL_BUF_INIT;
	struct keel_raft_msg hb = heartbeat(3, 1, 1);
	assert_int_equal(keel_raft_msg_encode(&hb, &m), 0);
	assert_int_equal(keel_frame_append(&b, KEEL_FRAME_MSG, m.data, m.len), 0);
	raw_send_and_expect_hangup(f, port_of(f, 0), b.data, b.len);
	/* ... and sender id 0 is refused the same way. */
	keel_buf_reset(&b);
	h.cluster_id = 1;
	h.sender = 0;
	assert_int_equal(keel_frame_append_hello(&b, &h), 0);
	raw_send_and_expect_hangup(f, port_of(f, 0), b.data, b.len);
	assert_int_equal(f->n[0].n_msgs, 0);
	keel_buf_free(&b);
	keel_buf_free(&m);

	/* A node of its own cluster still gets through. */
	start_node(f, 1, 2, NULL);
	link_nodes(f, 0, 1);
	struct keel_raft_msg ok = heartbeat(2, 1, 5);
	assert_int_equal(keel_transport_send(f->n[1].t, &ok), 0);
	assert_true(RUN_UNTIL(f, f->n[0].n_msgs == 1, WAIT_MS));
	assert_int_equal(f->n[0].recs[0].from, 2);
}

static void transport_hangs_up_on_garbage_and_keeps_working(void **state)
{
	struct fixture *f = *state;
	start_node(f, 0, 1, NULL);
	start_node(f, 1, 2, NULL);
	link_nodes(f, 0, 1);
	uint16_t port = port_of(f, 1);

	/* Noise that announces a 4 GiB frame. */
	uint8_t junk[4096];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(0xff - i * 7);
	junk[0] = junk[1] = junk[2] = junk[3] = 0xff;
	raw_send_and_expect_hangup(f, port, junk, sizeof(junk));

	/* A proper HELLO, then a frame with a broken crc. */
	struct keel_buf b = KEEL_BUF_INIT;
	struct keel_frame_hello h = {.cluster_id = 1, .sender = 5, .version = KEEL_FRAME_PROTOCOL_VERSION};
	assert_int_equal(keel_frame_append_hello(&b, &h), 0);
	size_t at = b.len;
	assert_int_equal(keel_frame_append(&b, KEEL_FRAME_MSG, "xxxxxxxx", 8), 0);
	b.data[at + 5] ^= 1;
	raw_send_and_expect_hangup(f, port, b.data, b.len);

	/* A proper HELLO, then a snapshot chunk out of the blue. */
	keel_buf_reset(&b);
	assert_int_equal(keel_frame_append_hello(&b, &h), 0);
	assert_int_equal(keel_frame_append(&b, KEEL_FRAME_SNAP_CHUNK, "data", 4), 0);
	raw_send_and_expect_hangup(f, port, b.data, b.len);

	/* A well-framed message that does not decode, or claims another sender. */
	keel_buf_reset(&b);
	assert_int_equal(keel_frame_append_hello(&b, &h), 0);
	assert_int_equal(keel_frame_append(&b, KEEL_FRAME_MSG, "\x01\x05junk", 6), 0);
	raw_send_and_expect_hangup(f, port, b.data, b.len);
	keel_buf_reset(&b);
	assert_int_equal(keel_frame_append_hello(&b, &h), 0);
	struct keel_buf m = KEEL_BUF_INIT;
	struct keel_raft_msg spoof = heartbeat(1, 2, 1); /* says it is from 1, HELLO said 5 */
	assert_int_equal(keel_raft_msg_encode(&spoof, &m), 0);
	assert_int_equal(keel_frame_append(&b, KEEL_FRAME_MSG, m.data, m.len), 0);
	raw_send_and_expect_hangup(f, port, b.data, b.len);
	keel_buf_free(&m);
	keel_buf_free(&b);
	assert_int_equal(f->n[1].n_msgs, 0);

	/* The real peer's messages still arrive. */
	struct keel_raft_msg hb = heartbeat(1, 2, 3);
	assert_int_equal(keel_transport_send(f->n[0].t, &hb), 0);
	assert_true(RUN_UNTIL(f, f->n[1].n_msgs == 1, WAIT_MS));
	assert_int_equal(f->n[1].recs[0].context, 3);
}

static size_t count_temp_files(const char *dir)
{
	size_t n = 0;
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		if (len > 4 && strcmp(e->d_name + len - 4, ".tmp") == 0)
			n++;
	}
	closedir(d);
	return n;
}

/* HELLO from `sender`, then the beginning of a snapshot stream with `data`, then (if `end`)
 * its SNAP_END. */
static void build_snap_stream(struct keel_buf *b, keel_raft_id sender, const char *data,
			      uint64_t announced, bool end)
{
	struct keel_frame_hello h = {.cluster_id = 1, .sender = sender, .version = KEEL_FRAME_PROTOCOL_VERSION};
	assert_int_equal(keel_frame_append_hello(b, &h), 0);
	struct keel_raft_msg sm = {.type = KEEL_RAFT_MSG_SNAPSHOT, .from = sender, .to = 2, .term = 1,
				   .snapshot = {.index = 7, .term = 1}};
	struct keel_buf p = KEEL_BUF_INIT;
	assert_int_equal(keel_raft_msg_encode(&sm, &p), 0);
	assert_int_equal(keel_buf_put_le64(&p, announced), 0);
	assert_int_equal(keel_frame_append(b, KEEL_FRAME_SNAP_BEGIN, p.data, p.len), 0);
	assert_int_equal(keel_frame_append(b, KEEL_FRAME_SNAP_CHUNK, data, strlen(data)), 0);
	if (end)
		assert_int_equal(keel_frame_append_snap_end(b, keel_crc32c(0, data, strlen(data))), 0);
	keel_buf_free(&p);
}

static void transport_a_new_connection_from_a_sender_replaces_the_old_one(void **state)
{
	struct fixture *f = *state;
	start_node(f, 1, 2, NULL);
	uint16_t port = port_of(f, 1);

	/* Sender 5 starts a snapshot and goes quiet halfway: the receiver holds a temp file. */
	struct keel_buf b = KEEL_BUF_INIT;
	build_snap_stream(&b, 5, "01234", 10, false);
	raw_start(f, &f->raw[0], port, b.data, b.len);
	assert_true(RUN_UNTIL(f, count_temp_files(f->n[1].snap_dir) == 1, WAIT_MS));

	/* It comes back on a new connection and sends the same snapshot whole, in one go. */
	keel_buf_reset(&b);
	build_snap_stream(&b, 5, "0123456789", 10, true);
	raw_start(f, &f->raw[1], port, b.data, b.len);
	assert_true(RUN_UNTIL(f, f->n[1].snaps_received == 1 && f->raw[0].closed, WAIT_MS));
	assert_false(f->raw[1].eof); /* the new one stays */
	assert_int_equal(count_temp_files(f->n[1].snap_dir), 0);
	keel_buf_free(&b);

	struct keel_snap_reader *rd;
	struct keel_raft_snapshot_meta meta;
	struct keel_err err = {0};
	assert_int_equal(keel_snap_reader_open(f->n[1].snap_path, &rd, &meta, &err), 0);
	assert_true(meta.index == 7 && meta.term == 1);
	char data[16];
	assert_int_equal(keel_snap_reader_read(rd, data, sizeof(data), &err), 10);
	assert_memory_equal(data, "0123456789", 10);
	assert_int_equal(keel_snap_reader_read(rd, data, sizeof(data), &err), 0);
	keel_snap_reader_close(rd);
	raw_finish(f, &f->raw[0]);
	raw_finish(f, &f->raw[1]);

	/* A stream whose SNAP_END disagrees with the data leaves nothing behind. */
	keel_buf_reset(&b);
	build_snap_stream(&b, 6, "abcdefghij", 10, false);
	assert_int_equal(keel_frame_append_snap_end(&b, 12345), 0);
	raw_send_and_expect_hangup(f, port, b.data, b.len);
	assert_int_equal(count_temp_files(f->n[1].snap_dir), 0);
	assert_int_equal(f->n[1].snaps_received, 1);
	keel_buf_free(&b);
}

static void transport_tls_exchanges_messages_between_verified_peers(void **state)
{
	NEED_CERTS();
	struct fixture *f = *state;
	struct opts o = {.tls = TLS};
	start_node(f, 0, 1, &o);
	start_node(f, 1, 2, &o);
	link_nodes(f, 0, 1);
	struct keel_raft_msg hb = heartbeat(1, 2, 1);
	assert_int_equal(keel_transport_send(f->n[0].t, &hb), 0);
	hb = heartbeat(2, 1, 2);
	assert_int_equal(keel_transport_send(f->n[1].t, &hb), 0);

	size_t len = (size_t)1 << 20;
	uint8_t *big = malloc(len);
	assert_non_null(big);
	for (size_t i = 0; i < len; i++)
		big[i] = byte_at(i + 5);
	struct keel_raft_entry e = {.term = 1, .index = 2, .len = (uint32_t)len, .data = big};
	struct keel_raft_msg m = {.type = KEEL_RAFT_MSG_APPEND, .from = 1, .to = 2, .term = 1,
				  .index = 1, .n_entries = 1, .entries = &e};
	assert_int_equal(keel_transport_send(f->n[0].t, &m), 0);
	assert_true(RUN_UNTIL(f, f->n[1].n_msgs == 2 && f->n[0].n_msgs == 1, WAIT_MS));
	assert_int_equal(f->n[1].recs[0].context, 1);
	assert_int_equal(f->n[1].recs[1].crc[0], keel_crc32c(0, big, len));
	assert_int_equal(f->n[0].recs[0].context, 2);
	free(big);

	/* A snapshot over TLS too. */
	char src[256], src_dir[128];
	snprintf(src_dir, sizeof(src_dir), "%s/src", f->root);
	make_snapshot(src_dir, 1, 5, 300000, src, sizeof(src));
	struct keel_raft_msg sm = {.type = KEEL_RAFT_MSG_SNAPSHOT, .from = 1, .to = 2, .term = 1,
				   .snapshot = {.index = 5, .term = 1}};
	assert_int_equal(keel_transport_send_snapshot(f->n[0].t, &sm, src), 0);
	assert_true(RUN_UNTIL(f, f->n[1].snaps_received == 1 && f->n[0].snaps_sent_ok == 1, WAIT_MS));
	assert_int_equal(f->n[0].unreachable + f->n[1].unreachable, 0);
}

static void transport_tls_rejects_a_client_signed_by_another_ca(void **state)
{
	NEED_CERTS();
	struct fixture *f = *state;
	struct opts o = {.tls = TLS};
	start_node(f, 0, 1, &o);
	struct opts rogue = {.tls = TLS_ROGUE};
	start_node(f, 2, 3, &rogue);
	assert_int_equal(keel_transport_set_peer(f->n[2].t, 1, "127.0.0.1", port_of(f, 0)), 0);
	ticker_start(f, &f->n[2], 1);
	run_for(f, QUIET_MS);
	uv_timer_stop(&f->ticker);
	assert_int_equal(f->n[0].n_msgs, 0);

	/* The server is fine for a node with the right certificate. */
	start_node(f, 1, 2, &o);
	link_nodes(f, 0, 1);
	struct keel_raft_msg hb = heartbeat(2, 1, 4);
	assert_int_equal(keel_transport_send(f->n[1].t, &hb), 0);
	assert_true(RUN_UNTIL(f, f->n[0].n_msgs == 1, WAIT_MS));
	assert_int_equal(f->n[0].recs[0].from, 2);
}

static void transport_tls_server_ignores_a_plain_client(void **state)
{
	NEED_CERTS();
	struct fixture *f = *state;
	struct opts o = {.tls = TLS};
	start_node(f, 0, 1, &o);
	start_node(f, 2, 3, NULL); /* plain */
	assert_int_equal(keel_transport_set_peer(f->n[2].t, 1, "127.0.0.1", port_of(f, 0)), 0);
	ticker_start(f, &f->n[2], 1);
	run_for(f, QUIET_MS);
	uv_timer_stop(&f->ticker);
	assert_int_equal(f->n[0].n_msgs, 0);

	/* And the other way: a TLS client at a plain server gets nowhere either. */
	struct opts tls3 = {.tls = TLS};
	start_node(f, 3, 2, &tls3);
	assert_int_equal(keel_transport_set_peer(f->n[3].t, 3, "127.0.0.1", port_of(f, 2)), 0);
	ticker_start(f, &f->n[3], 3);
	run_for(f, QUIET_MS);
	uv_timer_stop(&f->ticker);
	assert_int_equal(f->n[2].n_msgs, 0);

	start_node(f, 1, 2, &o);
	link_nodes(f, 0, 1);
	struct keel_raft_msg hb = heartbeat(2, 1, 4);
	assert_int_equal(keel_transport_send(f->n[1].t, &hb), 0);
	assert_true(RUN_UNTIL(f, f->n[0].n_msgs == 1, WAIT_MS));
}

static void transport_rejects_bad_arguments(void **state)
{
	struct fixture *f = *state;
	struct keel_err err = {0};
	struct keel_transport_config cfg = {.self = 0, .listen_host = "127.0.0.1"};
	struct keel_transport *t = NULL;
	assert_int_equal(keel_transport_start(&f->loop, &cfg, &t, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "nonzero"));
	cfg.self = 1;
	cfg.listen_host = "localhost";
	assert_int_equal(keel_transport_start(&f->loop, &cfg, &t, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "numeric"));
	cfg.listen_host = "127.0.0.1";
	cfg.cert_file = "/nonexistent.crt";
	assert_int_equal(keel_transport_start(&f->loop, &cfg, &t, &err), -EINVAL);
	cfg.key_file = "/nonexistent.key";
	cfg.verify_peer = true;
	assert_int_equal(keel_transport_start(&f->loop, &cfg, &t, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "verify_peer"));
	cfg.verify_peer = false;
	assert_int_equal(keel_transport_start(&f->loop, &cfg, &t, &err), -KEEL_EBAD_VALUE);
	assert_non_null(strstr(err.msg, "/nonexistent.crt"));
	cfg.cert_file = cfg.key_file = NULL;

	/* A default SIGPIPE would let a peer's reset kill the process. */
	signal(SIGPIPE, SIG_DFL);
	assert_int_equal(keel_transport_start(&f->loop, &cfg, &t, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "SIGPIPE"));
	signal(SIGPIPE, SIG_IGN);
	assert_null(t);

	start_node(f, 0, 1, NULL);
	struct opts same = {.port = port_of(f, 0)};
	assert_int_equal(try_start(f, 1, 2, &same, &err), -EADDRINUSE);
	assert_non_null(strstr(err.msg, "listen on 127.0.0.1"));

	struct keel_transport *a = f->n[0].t;
	assert_int_equal(keel_transport_set_peer(a, 0, "127.0.0.1", 1), -EINVAL);
	assert_int_equal(keel_transport_set_peer(a, 1, "127.0.0.1", 1), -EINVAL); /* self */
	assert_int_equal(keel_transport_set_peer(a, 2, "peer.example", 1), -EINVAL);
	assert_int_equal(keel_transport_set_peer(a, 2, NULL, 1), -EINVAL);
	struct keel_raft_msg hb = heartbeat(1, 2, 1);
	assert_int_equal(keel_transport_send(a, &hb), -ENOENT);
	assert_int_equal(keel_transport_set_peer(a, 2, "::1", 9), 0);
	hb.from = 3;
	assert_int_equal(keel_transport_send(a, &hb), -EINVAL);
	hb.from = 1;
	hb.type = KEEL_RAFT_MSG_SNAPSHOT;
	assert_int_equal(keel_transport_send(a, &hb), -EINVAL);
	assert_int_equal(keel_transport_send(NULL, &hb), -EINVAL);
	keel_transport_remove_peer(a, 42); /* unknown: ignored */
	keel_transport_remove_peer(NULL, 2);
	assert_int_equal(keel_transport_port(NULL), 0);
	close_node(f, 0);
}

static void transport_drops_what_does_not_fit_the_queue(void **state)
{
	struct fixture *f = *state;
	struct opts o = {.max_queue = 4096};
	start_node(f, 0, 1, &o);
	/* A peer nobody listens for: the queue only grows while connecting. */
	start_node(f, 1, 2, NULL);
	uint16_t port = port_of(f, 1);
	close_node(f, 1);
	assert_int_equal(keel_transport_set_peer(f->n[0].t, 2, "127.0.0.1", port), 0);
	char data[3000] = {0};
	struct keel_raft_entry e = {.term = 1, .index = 1, .len = sizeof(data), .data = data};
	struct keel_raft_msg m = {.type = KEEL_RAFT_MSG_APPEND, .from = 1, .to = 2, .term = 1,
				  .n_entries = 1, .entries = &e};
	assert_int_equal(keel_transport_send(f->n[0].t, &m), 0);
	assert_int_equal(f->n[0].unreachable, 0);
	assert_int_equal(keel_transport_send(f->n[0].t, &m), -ENOBUFS);
	assert_int_equal(f->n[0].unreachable, 1); /* told before send returned */
	assert_int_equal(f->n[0].last_unreachable, 2);
	close_node(f, 0);
}

static void transport_redials_when_a_peer_address_changes(void **state)
{
	struct fixture *f = *state;
	start_node(f, 0, 1, NULL);
	start_node(f, 1, 2, NULL);
	start_node(f, 2, 3, NULL);
	uint16_t dead = port_of(f, 2);
	close_node(f, 2);
	/* Node 1 first knows a wrong address for 2, then the right one. The message sent right
	 * after the change waits out the old connection's teardown and goes to the new address. */
	assert_int_equal(keel_transport_set_peer(f->n[0].t, 2, "127.0.0.1", dead), 0);
	assert_int_equal(keel_transport_set_peer(f->n[0].t, 2, "127.0.0.1", dead), 0); /* same: no-op */
	assert_int_equal(keel_transport_set_peer(f->n[0].t, 2, "127.0.0.1", port_of(f, 1)), 0);
	struct keel_raft_msg hb = heartbeat(1, 2, 8);
	assert_int_equal(keel_transport_send(f->n[0].t, &hb), 0);
	assert_true(RUN_UNTIL(f, f->n[1].n_msgs == 1, WAIT_MS));
	assert_int_equal(f->n[1].recs[0].context, 8);
	assert_int_equal(f->n[0].unreachable, 0);

	/* Moving a connected peer works the same way. */
	start_node(f, 3, 2, NULL); /* node 2 again, elsewhere */
	assert_int_equal(keel_transport_set_peer(f->n[0].t, 2, "127.0.0.1", port_of(f, 3)), 0);
	ticker_start(f, &f->n[0], 2);
	assert_true(RUN_UNTIL(f, f->n[3].n_msgs >= 1, WAIT_MS));
	uv_timer_stop(&f->ticker);

	/* A removed peer is unknown from then on, and its connection goes away quietly. */
	unsigned before = f->n[0].unreachable;
	keel_transport_remove_peer(f->n[0].t, 2);
	assert_int_equal(keel_transport_send(f->n[0].t, &hb), -ENOENT);
	run_for(f, 50);
	assert_int_equal(f->n[0].unreachable, before);
}

static void transport_can_be_closed_from_a_callback(void **state)
{
	struct fixture *f = *state;
	start_node(f, 0, 1, NULL);
	start_node(f, 1, 2, NULL);
	link_nodes(f, 0, 1);
	f->n[1].close_on_message = true;
	for (uint64_t i = 0; i < 50; i++) {
		struct keel_raft_msg hb = heartbeat(1, 2, i);
		assert_int_equal(keel_transport_send(f->n[0].t, &hb), 0);
	}
	assert_true(RUN_UNTIL(f, f->n[1].n_msgs >= 1, WAIT_MS));
	run_for(f, 50);
	assert_int_equal(f->n[1].n_msgs, 1); /* nothing after close */
	assert_false(f->n[1].running);
	/* Node 1 sees its peer go away and keeps going. */
	struct keel_raft_msg hb = heartbeat(1, 2, 99);
	assert_int_equal(keel_transport_send(f->n[0].t, &hb), 0);
	close_node(f, 0);
}

/* A node the cluster removed is told so (REMOVED) by the peers it talks to, on a connection
 * that was up before the removal and on a new one; what it sends is not delivered. */
static void removed_peer_is_told(struct fixture *f, const struct opts *o)
{
	start_node(f, 0, 1, o);
	start_node(f, 1, 2, o);
	link_nodes(f, 0, 1);
	struct keel_raft_msg hb = heartbeat(2, 1, 1);
	assert_int_equal(keel_transport_send(f->n[1].t, &hb), 0);
	assert_true(RUN_UNTIL(f, f->n[0].n_msgs == 1, WAIT_MS));
	/* Node 1 applies node 2's removal: node 2's next message is refused and answered. */
	f->n[0].removed[f->n[0].n_removed++] = 2;
	hb = heartbeat(2, 1, 2);
	assert_int_equal(keel_transport_send(f->n[1].t, &hb), 0);
	assert_true(RUN_UNTIL(f, f->n[1].told_removed >= 1, WAIT_MS));
	assert_int_equal(f->n[1].told_by, 1);
	assert_int_equal(f->n[0].n_msgs, 1);
	/* Node 1 still talks to node 2 the other way (it simply stops, as Raft does). */
	hb = heartbeat(1, 2, 3);
	assert_int_equal(keel_transport_send(f->n[0].t, &hb), 0);
	assert_true(RUN_UNTIL(f, f->n[1].n_msgs == 1, WAIT_MS));
	/* Node 2 restarts (a new connection): told on its HELLO, before any message. */
	close_node(f, 1);
	f->n[1].told_removed = 0;
	start_node(f, 1, 2, o);
	assert_int_equal(keel_transport_set_peer(f->n[1].t, 1, "127.0.0.1", port_of(f, 0)), 0);
	assert_true(RUN_UNTIL(f, f->n[1].told_removed >= 1, WAIT_MS));
	hb = heartbeat(2, 1, 4);
	keel_transport_send(f->n[1].t, &hb);
	run_for(f, QUIET_MS);
	assert_int_equal(f->n[0].n_msgs, 1);
	/* Other nodes are not affected. */
	start_node(f, 2, 3, o);
	assert_int_equal(keel_transport_set_peer(f->n[2].t, 1, "127.0.0.1", port_of(f, 0)), 0);
	hb = heartbeat(3, 1, 5);
	assert_int_equal(keel_transport_send(f->n[2].t, &hb), 0);
	assert_true(RUN_UNTIL(f, f->n[0].n_msgs == 2, WAIT_MS));
	assert_int_equal(f->n[2].told_removed, 0);
	close_node(f, 0);
	close_node(f, 1);
	close_node(f, 2);
}

static void transport_tells_a_removed_peer_so(void **state)
{
	removed_peer_is_told(*state, NULL);
}

static void transport_tls_tells_a_removed_peer_so(void **state)
{
	NEED_CERTS();
	struct opts o = {.tls = TLS};
	removed_peer_is_told(*state, &o);
}

/* A free TCP port on 127.0.0.1 (a listener bound and closed again). */
static uint16_t free_port(void)
{
	struct sockaddr_storage ss;
	assert_int_equal(uv_ip4_addr("127.0.0.1", 0, (struct sockaddr_in *)&ss), 0);
	uint16_t port = 0;
	int fd = keel_net_listen(&ss, 1, &port);
	assert_true(fd >= 0);
	close(fd);
	return port;
}

/* keel_transport_query blocks: it runs on a thread while the loop serves. */
struct query_job {
	struct keel_transport_query_opts o;
	uv_async_t wake;
	int rc;
	char *answer;
	size_t len;
	struct keel_err err;
	volatile bool done;
};

static void query_thread(void *arg)
{
	struct query_job *j = arg;
	j->rc = keel_transport_query(&j->o, &j->answer, &j->len, &j->err);
	j->done = true;
	uv_async_send(&j->wake);
}

static void query_woken(uv_async_t *h)
{
	(void)h;
}

static void query_closed(uv_handle_t *h)
{
	(void)h;
}

static int run_query(struct fixture *f, struct query_job *j)
{
	uv_async_init(&f->loop, &j->wake, query_woken);
	uv_thread_t th;
	assert_int_equal(uv_thread_create(&th, query_thread, j), 0);
	assert_true(RUN_UNTIL(f, j->done, WAIT_MS));
	uv_thread_join(&th);
	uv_close((uv_handle_t *)&j->wake, query_closed);
	uv_run(&f->loop, UV_RUN_NOWAIT);
	return j->rc;
}

static void query_node(struct fixture *f, enum tls_mode tls)
{
	struct opts o = {.tls = tls};
	start_node(f, 0, 7, &o);
	char cert[128], key[128], ca[128];
	struct query_job j = {.o = {.host = "127.0.0.1", .port = port_of(f, 0), .cluster_id = 1, .timeout_ms = 5000}};
	if (tls == TLS) {
		snprintf(cert, sizeof(cert), "%s/n2.crt", certs.dir);
		snprintf(key, sizeof(key), "%s/n2.key", certs.dir);
		snprintf(ca, sizeof(ca), "%s/ca.crt", certs.dir);
		j.o.cert_file = cert;
		j.o.key_file = key;
		j.o.ca_file = ca;
	}
	assert_int_equal(run_query(f, &j), 0);
	assert_string_equal(j.answer, "{\"node\":7}");
	assert_int_equal(j.len, strlen("{\"node\":7}"));
	keel_free(j.answer);
	/* Another cluster's QUERY is not answered: the acceptor hangs up. */
	struct query_job other = {.o = j.o};
	other.o.cluster_id = 2;
	assert_int_equal(run_query(f, &other), -EPROTO);
	/* Nobody listening. */
	uint16_t port = port_of(f, 0);
	close_node(f, 0);
	struct query_job gone = {.o = j.o};
	gone.o.port = port;
	assert_true(run_query(f, &gone) < 0);
}

static void transport_answers_a_query(void **state)
{
	query_node(*state, PLAIN);
}

static void transport_tls_answers_a_query(void **state)
{
	NEED_CERTS();
	query_node(*state, TLS);
}

/* Both directions up: active since then; a peer that went away is not active. */
static void transport_tells_since_when_a_peer_is_active(void **state)
{
	struct fixture *f = *state;
	start_node(f, 0, 1, NULL);
	start_node(f, 1, 2, NULL);
	assert_int_equal(keel_transport_active_since(f->n[0].t, 2), 0);
	link_nodes(f, 0, 1);
	assert_true(RUN_UNTIL(f, keel_transport_active_since(f->n[0].t, 2) && keel_transport_active_since(f->n[1].t, 1),
			      WAIT_MS));
	assert_true(keel_transport_active_since(f->n[0].t, 2) <= uv_now(&f->loop));
	assert_int_equal(keel_transport_active_since(f->n[0].t, 3), 0);
	close_node(f, 1);
	assert_true(RUN_UNTIL(f, keel_transport_active_since(f->n[0].t, 2) == 0, WAIT_MS));
}

static void transport_listens_on_several_addresses(void **state)
{
	struct fixture *f = *state;
	struct keel_transport_listen more[2] = {{"127.0.0.2", free_port()}, {"127.0.0.3", free_port()}};
	struct opts o = {.more = more, .n_more = 2};
	start_node(f, 0, 1, &o);
	start_node(f, 1, 2, NULL);
	start_node(f, 2, 3, NULL);
	/* Node 2 reaches node 1 at its second address, node 3 at its third. */
	assert_int_equal(keel_transport_set_peer(f->n[1].t, 1, "127.0.0.2", more[0].port), 0);
	assert_int_equal(keel_transport_set_peer(f->n[2].t, 1, "127.0.0.3", more[1].port), 0);
	struct keel_raft_msg hb = heartbeat(2, 1, 1);
	assert_int_equal(keel_transport_send(f->n[1].t, &hb), 0);
	hb = heartbeat(3, 1, 2);
	assert_int_equal(keel_transport_send(f->n[2].t, &hb), 0);
	assert_true(RUN_UNTIL(f, f->n[0].n_msgs == 2, WAIT_MS));
	/* One of the addresses in use: nothing is left listening. */
	struct keel_transport_listen taken[1] = {{"127.0.0.2", more[0].port}};
	struct opts o2 = {.more = taken, .n_more = 1};
	struct keel_err err = {0};
	assert_int_equal(try_start(f, 3, 4, &o2, &err), -EADDRINUSE);
	assert_non_null(strstr(err.msg, "127.0.0.2"));
	close_node(f, 0);
	close_node(f, 1);
	close_node(f, 2);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN); /* as every program using the transport must */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(transport_exchanges_messages_both_ways, setup, teardown),
		cmocka_unit_test_setup_teardown(transport_drops_messages_to_a_down_peer_and_reconnects, setup, teardown),
		cmocka_unit_test_setup_teardown(transport_carries_a_4_mib_message, setup, teardown),
		cmocka_unit_test_setup_teardown(transport_streams_a_snapshot_file, setup, teardown),
		cmocka_unit_test_setup_teardown(transport_refuses_a_peer_from_another_cluster, setup, teardown),
		cmocka_unit_test_setup_teardown(transport_hangs_up_on_garbage_and_keeps_working, setup, teardown),
		cmocka_unit_test_setup_teardown(transport_a_new_connection_from_a_sender_replaces_the_old_one, setup, teardown),
		cmocka_unit_test_setup_teardown(transport_tls_exchanges_messages_between_verified_peers, setup, teardown),
		cmocka_unit_test_setup_teardown(transport_tls_rejects_a_client_signed_by_another_ca, setup, teardown),
		cmocka_unit_test_setup_teardown(transport_tls_server_ignores_a_plain_client, setup, teardown),
		cmocka_unit_test_setup_teardown(transport_rejects_bad_arguments, setup, teardown),
		cmocka_unit_test_setup_teardown(transport_drops_what_does_not_fit_the_queue, setup, teardown),
		cmocka_unit_test_setup_teardown(transport_redials_when_a_peer_address_changes, setup, teardown),
		cmocka_unit_test_setup_teardown(transport_can_be_closed_from_a_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(transport_tells_a_removed_peer_so, setup, teardown),
		cmocka_unit_test_setup_teardown(transport_tls_tells_a_removed_peer_so, setup, teardown),
		cmocka_unit_test_setup_teardown(transport_listens_on_several_addresses, setup, teardown),
		cmocka_unit_test_setup_teardown(transport_answers_a_query, setup, teardown),
		cmocka_unit_test_setup_teardown(transport_tls_answers_a_query, setup, teardown),
		cmocka_unit_test_setup_teardown(transport_tells_since_when_a_peer_is_active, setup, teardown),
	};
	return cmocka_run_group_tests_name("raftio/transport", tests, group_setup, group_teardown);
}
