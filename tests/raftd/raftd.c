/* raftd: a replicated log as a daemon, the smallest real application of lib/raftio's node, for
 * fault tests against real processes and for the consensus benchmark.
 *
 * Clients speak lines over TCP, answered in order (requests may be pipelined):
 *   PUT <text>    -> OK <index>            | ERR notleader <leader-id> | ERR <why>
 *   GET <index>   -> OK <text>             (linearizable: after a read barrier) | ERR ...
 *   DUMP          -> OK <n>, then n lines "<index> <text>" (linearizable)
 *   STATUS        -> OK id=.. role=.. term=.. leader=.. commit=.. applied=.. syncs=.. synced=..
 *
 * KEEL_FAULT in the environment arms fault injection (lib/base/fault.h), for disk-failure tests.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/fault.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "raftio/node.h"

struct cfg {
	uint64_t id;
	char *data_dir;
	char *listen_client;
	char *listen_peer;
	char **peers;
	uint64_t cluster_id;
	uint64_t tick_ms;
	uint64_t election_ticks;
	uint64_t snapshot_count;
	uint64_t snapshot_keep;
	uint64_t mem_entries;
	char *log_level;
	bool join;
};

static const struct keel_opt opts[] = {
	{.name = "id", .type = KEEL_OPT_UINT, .offset = offsetof(struct cfg, id), .min = 1, .max = 1000000,
	 .help = "This member's id (nonzero)."},
	{.name = "data-dir", .type = KEEL_OPT_STRING, .offset = offsetof(struct cfg, data_dir),
	 .help = "Directory for the WAL and snapshots.", .metavar = "DIR"},
	{.name = "listen-client", .type = KEEL_OPT_STRING, .offset = offsetof(struct cfg, listen_client),
	 .def = "127.0.0.1:7400", .help = "host:port for clients.", .metavar = "ADDR"},
	{.name = "listen-peer", .type = KEEL_OPT_STRING, .offset = offsetof(struct cfg, listen_peer),
	 .help = "host:port for peers (default: this member's entry in --peers).", .metavar = "ADDR"},
	{.name = "peers", .type = KEEL_OPT_LIST, .offset = offsetof(struct cfg, peers),
	 .help = "The initial members as id=host:port, comma-separated, this one included."},
	{.name = "cluster-id", .type = KEEL_OPT_UINT, .offset = offsetof(struct cfg, cluster_id), .def = "1",
	 .help = "Peers with another cluster id are refused."},
	{.name = "tick-ms", .type = KEEL_OPT_UINT, .offset = offsetof(struct cfg, tick_ms), .def = "100",
	 .min = 1, .max = 10000, .help = "Milliseconds per consensus tick (the heartbeat interval)."},
	{.name = "election-ticks", .type = KEEL_OPT_UINT, .offset = offsetof(struct cfg, election_ticks),
	 .def = "10", .min = 2, .max = 1000, .help = "Election timeout in ticks."},
	{.name = "snapshot-count", .type = KEEL_OPT_UINT, .offset = offsetof(struct cfg, snapshot_count),
	 .def = "10000", .min = 1, .max = 100000000, .help = "Applied entries between snapshots."},
	{.name = "snapshot-keep", .type = KEEL_OPT_UINT, .offset = offsetof(struct cfg, snapshot_keep),
	 .def = "5000", .min = 1, .max = 100000000, .help = "Entries kept behind a snapshot for slow followers."},
	{.name = "mem-entries", .type = KEEL_OPT_UINT, .offset = offsetof(struct cfg, mem_entries),
	 .def = "0", .max = 100000000,
	 .help = "Log entries the core keeps in memory (0: its default); older ones are read back from the WAL."},
	{.name = "join", .type = KEEL_OPT_BOOL, .offset = offsetof(struct cfg, join),
	 .help = "Join an existing cluster instead of bootstrapping one."},
	{.name = "log-level", .type = KEEL_OPT_STRING, .offset = offsetof(struct cfg, log_level),
	 .def = "info", .help = "debug, info, warn or error."},
};

static const struct keel_config_spec spec = {
	.prog = "raftd",
	.summary = "A replicated log on Keel's consensus engine (a test and benchmark daemon).",
	.env_prefix = "RAFTD",
	.opts = opts,
	.n_opts = KEEL_ARRAY_SIZE(opts),
};

/* ---- the state machine: the log of texts ---- */

struct rec {
	uint64_t index;
	uint32_t len;
	char *text;
};

static struct {
	struct rec *recs;
	size_t n, cap;
} sm;

static void sm_clear(void)
{
	for (size_t i = 0; i < sm.n; i++)
		keel_free(sm.recs[i].text);
	sm.n = 0;
}

static int sm_push(uint64_t index, const void *data, uint32_t len)
{
	if (sm.n == sm.cap) {
		size_t cap = sm.cap ? sm.cap * 2 : 1024;
		struct rec *r = keel_reallocarray(sm.recs, cap, sizeof(*r));
		if (!r)
			return -ENOMEM;
		sm.recs = r;
		sm.cap = cap;
	}
	char *t = keel_malloc(len + 1);
	if (!t)
		return -ENOMEM;
	memcpy(t, data, len);
	t[len] = '\0';
	sm.recs[sm.n++] = (struct rec){index, len, t};
	return 0;
}

static void sm_apply(void *ud, const struct keel_raft_entry *e)
{
	(void)ud;
	if (e->type == KEEL_RAFT_ENTRY_NORMAL && e->len > 0 && sm_push(e->index, e->data, e->len) < 0) {
		keel_log(KEEL_LOG_ERROR, "out of memory applying an entry", KEEL_LF_INT("index", e->index));
		abort(); /* a state machine that skips an entry diverges: better to stop */
	}
}

static int sm_save(void *ud, struct keel_snap_writer *w, struct keel_err *err)
{
	(void)ud;
	struct keel_buf b = KEEL_BUF_INIT;
	int r = keel_buf_put_le64(&b, sm.n);
	for (size_t i = 0; !r && i < sm.n; i++) {
		r = keel_buf_put_le64(&b, sm.recs[i].index);
		r = r ? r : keel_buf_put_le32(&b, sm.recs[i].len);
		r = r ? r : keel_buf_append(&b, sm.recs[i].text, sm.recs[i].len);
		if (!r && b.len > (1 << 20)) {
			r = keel_snap_writer_write(w, b.data, b.len, err);
			keel_buf_reset(&b);
		}
	}
	if (r == 0 && b.len)
		r = keel_snap_writer_write(w, b.data, b.len, err);
	keel_buf_free(&b);
	return r < 0 && err && !err->code ? keel_err_set(err, r, "saving the log") : r;
}

static int read_exact(struct keel_snap_reader *rd, void *buf, size_t n, struct keel_err *err)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = keel_snap_reader_read(rd, (char *)buf + got, n - got, err);
		if (r < 0)
			return (int)r;
		if (r == 0)
			return keel_err_set(err, -KEEL_ECORRUPT, "snapshot ends early");
		got += (size_t)r;
	}
	return 0;
}

static int sm_load(void *ud, struct keel_snap_reader *rd, struct keel_err *err)
{
	(void)ud;
	sm_clear();
	uint8_t hdr[12];
	int r = read_exact(rd, hdr, 8, err);
	uint64_t count = r ? 0 : keel_le64(hdr);
	char *buf = NULL;
	for (uint64_t i = 0; !r && i < count; i++) {
		r = read_exact(rd, hdr, 12, err);
		if (r)
			break;
		uint32_t len = keel_le32(hdr + 8);
		char *nb = keel_realloc(buf, len ? len : 1);
		if (!nb) {
			r = keel_err_set(err, -ENOMEM, "out of memory");
			break;
		}
		buf = nb;
		r = read_exact(rd, buf, len, err);
		if (!r)
			r = sm_push(keel_le64(hdr), buf, len);
	}
	keel_free(buf);
	char tail;
	if (!r && keel_snap_reader_read(rd, &tail, 1, err) != 0) /* 0 = end, and the CRC held */
		r = err->code ? err->code : keel_err_set(err, -KEEL_ECORRUPT, "trailing bytes in snapshot");
	return r;
}

static void on_leader(void *ud, keel_raft_id leader, uint64_t term)
{
	(void)ud;
	keel_log(KEEL_LOG_INFO, "leader changed", KEEL_LF_INT("leader", leader), KEEL_LF_INT("term", term));
}

static uv_loop_t *loop;
static struct keel_node *node;

static void on_fatal(void *ud, const struct keel_err *why)
{
	(void)ud;
	keel_log(KEEL_LOG_ERROR, "stopping: the node failed", KEEL_LF_STR("error", why->msg));
	exit(1);
}

static const struct keel_node_sm sm_ops = {
	.apply = sm_apply, .save = sm_save, .load = sm_load, .on_leader = on_leader, .on_fatal = on_fatal,
};

/* ---- clients ---- */

struct slot {
	bool done;
	struct keel_buf out;
};

struct conn {
	uv_tcp_t tcp;
	struct keel_buf in;
	struct slot *slots; /* answers in request order */
	size_t n_slots, cap_slots;
	size_t base; /* request number of slots[0]: requests are numbered from 0 per connection */
	bool closing;
	unsigned refs; /* outstanding callbacks + the handle */
};

struct req {
	struct conn *c;
	size_t slot;
	enum { R_PUT, R_GET, R_DUMP } kind;
	uint64_t index;
};

static void conn_unref(struct conn *c)
{
	if (--c->refs)
		return;
	for (size_t i = 0; i < c->n_slots; i++)
		keel_buf_free(&c->slots[i].out);
	keel_free(c->slots);
	keel_buf_free(&c->in);
	keel_free(c);
}

static void on_closed(uv_handle_t *h)
{
	conn_unref(h->data);
}

static void conn_close(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void write_done(uv_write_t *w, int status)
{
	(void)status;
	keel_free(w->data);
	keel_free(w);
}

/* Send the answers that are complete, in order. */
static void flush(struct conn *c)
{
	size_t k = 0;
	while (k < c->n_slots && c->slots[k].done)
		k++;
	if (!k || c->closing)
		return;
	struct keel_buf all = KEEL_BUF_INIT;
	for (size_t i = 0; i < k; i++) {
		if (keel_buf_append(&all, c->slots[i].out.data, c->slots[i].out.len) < 0) {
			keel_buf_free(&all);
			conn_close(c);
			return;
		}
		keel_buf_free(&c->slots[i].out);
	}
	memmove(c->slots, c->slots + k, (c->n_slots - k) * sizeof(*c->slots));
	c->n_slots -= k;
	c->base += k;
	uv_write_t *w = keel_malloc(sizeof(*w));
	size_t len;
	char *data = keel_buf_steal(&all, &len);
	if (!w || !data) {
		keel_free(w);
		keel_free(data);
		conn_close(c);
		return;
	}
	w->data = data;
	uv_buf_t buf = uv_buf_init(data, (unsigned)len);
	if (uv_write(w, (uv_stream_t *)&c->tcp, &buf, 1, write_done) < 0) {
		keel_free(data);
		keel_free(w);
		conn_close(c);
	}
}

/* Requests hold their number, not a pointer: answered slots leave the array. */
static struct slot *slot_at(struct conn *c, size_t abs)
{
	return abs >= c->base && abs - c->base < c->n_slots ? &c->slots[abs - c->base] : NULL;
}

static void answer(struct conn *c, size_t abs, const char *fmt, ...) KEEL_PRINTF(3, 4);
static void answer(struct conn *c, size_t abs, const char *fmt, ...)
{
	struct slot *s = slot_at(c, abs);
	if (!s)
		return;
	va_list ap;
	va_start(ap, fmt);
	if (keel_buf_vprintf(&s->out, fmt, ap) < 0)
		keel_buf_reset(&s->out);
	va_end(ap);
	s->done = true;
	flush(c);
}

static void refused(struct conn *c, size_t abs, int status)
{
	if (status == -KEEL_ENOT_LEADER)
		answer(c, abs, "ERR notleader %" PRIu64 "\n", keel_node_leader(node));
	else
		answer(c, abs, "ERR %s\n", keel_strerror(status));
}

static const struct rec *find_rec(uint64_t index)
{
	size_t lo = 0, hi = sm.n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (sm.recs[mid].index < index)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < sm.n && sm.recs[lo].index == index ? &sm.recs[lo] : NULL;
}

static void req_done(void *ud, int status, uint64_t index)
{
	struct req *q = ud;
	struct conn *c = q->c;
	if (c->closing) {
		/* nothing to answer */
	} else if (status < 0) {
		refused(c, q->slot, status);
	} else if (q->kind == R_PUT) {
		answer(c, q->slot, "OK %" PRIu64 "\n", index);
	} else if (q->kind == R_GET) {
		const struct rec *r = find_rec(q->index);
		if (r)
			answer(c, q->slot, "OK %s\n", r->text);
		else
			answer(c, q->slot, "ERR notfound\n");
	} else {
		struct slot *s = slot_at(c, q->slot);
		if (s && keel_buf_printf(&s->out, "OK %zu\n", sm.n) == 0) {
			for (size_t i = 0; i < sm.n; i++)
				if (keel_buf_printf(&s->out, "%" PRIu64 " %s\n", sm.recs[i].index, sm.recs[i].text) < 0)
					break;
		}
		if (s) {
			s->done = true;
			flush(c);
		}
	}
	conn_unref(c);
	keel_free(q);
}

static void handle_line(struct conn *c, char *line)
{
	if (c->n_slots == c->cap_slots) {
		size_t cap = c->cap_slots ? c->cap_slots * 2 : 8;
		struct slot *s = keel_reallocarray(c->slots, cap, sizeof(*s));
		if (!s) {
			conn_close(c);
			return;
		}
		c->slots = s;
		c->cap_slots = cap;
	}
	size_t abs = c->base + c->n_slots;
	c->slots[c->n_slots++] = (struct slot){false, KEEL_BUF_INIT};

	const char *arg;
	if ((arg = keel_startswith(line, "STATUS")) && !*arg) {
		const struct keel_raft *r = keel_node_raft(node);
		struct keel_node_stats st;
		keel_node_get_stats(node, &st);
		answer(c, abs,
		       "OK id=%" PRIu64 " role=%s term=%" PRIu64 " leader=%" PRIu64 " commit=%" PRIu64
		       " applied=%" PRIu64 " syncs=%" PRIu64 " synced=%" PRIu64 " mem_first=%" PRIu64
		       " wal_read_entries=%" PRIu64 " snapshots_sent=%" PRIu64 "\n",
		       keel_node_id(node), keel_raft_role_name(keel_raft_role(r)), keel_raft_term(r),
		       keel_raft_leader(r), keel_raft_commit_index(r), keel_raft_applied_index(r), st.syncs,
		       st.entries_synced, keel_raft_mem_first_index(r), st.wal_read_entries, st.snapshots_sent);
		return;
	}
	struct req *q = keel_calloc(1, sizeof(*q));
	if (!q) {
		answer(c, abs, "ERR %s\n", keel_strerror(-ENOMEM));
		return;
	}
	q->c = c;
	q->slot = abs;
	int r;
	if ((arg = keel_startswith(line, "PUT ")) && *arg) {
		q->kind = R_PUT;
		r = keel_node_propose(node, arg, strlen(arg), req_done, q);
	} else if ((arg = keel_startswith(line, "GET ")) && keel_parse_u64(arg, &q->index) == 0) {
		q->kind = R_GET;
		r = keel_node_read_barrier(node, req_done, q);
	} else if ((arg = keel_startswith(line, "DUMP")) && !*arg) {
		q->kind = R_DUMP;
		r = keel_node_read_barrier(node, req_done, q);
	} else {
		keel_free(q);
		answer(c, abs, "ERR bad request\n");
		return;
	}
	if (r < 0) {
		keel_free(q);
		refused(c, abs, r);
		return;
	}
	c->refs++;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct conn *c = h->data;
	(void)suggested;
	if (keel_buf_reserve(&c->in, 65536) < 0) {
		*buf = uv_buf_init(NULL, 0);
		return;
	}
	*buf = uv_buf_init(c->in.data + c->in.len, 65536);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = s->data;
	(void)buf;
	if (nread < 0) {
		conn_close(c);
		return;
	}
	c->in.len += (size_t)nread;
	c->in.data[c->in.len] = '\0';
	char *start = c->in.data;
	char *nl;
	while (!c->closing && (nl = memchr(start, '\n', c->in.len - (size_t)(start - c->in.data)))) {
		*nl = '\0';
		if (nl > start && nl[-1] == '\r')
			nl[-1] = '\0';
		handle_line(c, start);
		start = nl + 1;
	}
	keel_buf_consume(&c->in, (size_t)(start - c->in.data));
	if (c->in.len > (1 << 20)) /* a line over 1 MiB: not a client of ours */
		conn_close(c);
}

static void on_connection(uv_stream_t *server, int status)
{
	if (status < 0)
		return;
	struct conn *c = keel_calloc(1, sizeof(*c));
	if (!c)
		return;
	c->refs = 1;
	uv_tcp_init(loop, &c->tcp);
	c->tcp.data = c;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
		conn_close(c);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static int parse_addr(const char *s, char *host, size_t hsize, uint16_t *port)
{
	const char *colon = strrchr(s, ':');
	uint64_t p;
	if (!colon || (size_t)(colon - s) >= hsize || keel_parse_u64(colon + 1, &p) < 0 || p > 65535)
		return -EINVAL;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	*port = (uint16_t)p;
	return 0;
}

static void on_signal(uv_signal_t *h, int sig)
{
	(void)sig;
	keel_log(KEEL_LOG_INFO, "shutting down");
	uv_stop(h->loop);
}

int main(int argc, char **argv)
{
	struct cfg cfg = {0};
	struct keel_err err;
	int argi;
	keel_log_setup("raftd", KEEL_LOG_INFO, KEEL_LOG_TEXT, 2);
	int r = keel_config_parse(&spec, &cfg, argc, argv, NULL, &argi, &err);
	if (r == -KEEL_EHELP) {
		keel_config_help(&spec, stdout);
		keel_config_free(&spec, &cfg);
		return 0;
	}
	if (r < 0 || argi != argc || !cfg.id || !cfg.data_dir || !cfg.peers) {
		fprintf(stderr, "raftd: %s\n", r < 0 ? err.msg : "--id, --data-dir and --peers are required");
		keel_config_free(&spec, &cfg);
		return 2;
	}
	enum keel_log_level lvl;
	if (keel_log_parse_level(cfg.log_level, &lvl) == 0)
		keel_log_set_level(lvl);
	/* Fault injection for tests: e.g. KEEL_FAULT=fdatasync:30:-1:EIO fails every fdatasync
	 * after the 30th, as a dying disk would. */
	int rc = 0;
	size_t np = keel_strv_len(cfg.peers);
	struct keel_node_peer *peers = keel_calloc(np, sizeof(*peers));
	char (*hosts)[256] = keel_calloc(np, 256);
	if (keel_fault_parse(getenv("KEEL_FAULT")) < 0) {
		fprintf(stderr, "raftd: bad KEEL_FAULT spec\n");
		rc = 2;
		goto out;
	}
	keel_mem_use_for_jansson();

	char self_host[256] = "127.0.0.1";
	uint16_t self_port = 0;
	for (size_t i = 0; i < np; i++) {
		char *eq = strchr(cfg.peers[i], '=');
		uint64_t id;
		if (!eq) {
			fprintf(stderr, "raftd: bad --peers entry %s (want id=host:port)\n", cfg.peers[i]);
			rc = 2;
			goto out;
		}
		*eq = '\0';
		if (keel_parse_u64(cfg.peers[i], &id) < 0 || !id ||
		    parse_addr(eq + 1, hosts[i], 256, &peers[i].port) < 0) {
			fprintf(stderr, "raftd: bad --peers entry %s=%s\n", cfg.peers[i], eq + 1);
			rc = 2;
			goto out;
		}
		peers[i].id = id;
		peers[i].host = hosts[i];
		if (id == cfg.id) {
			snprintf(self_host, sizeof(self_host), "%s", hosts[i]);
			self_port = peers[i].port;
		}
	}
	if (cfg.listen_peer && parse_addr(cfg.listen_peer, self_host, sizeof(self_host), &self_port) < 0) {
		fprintf(stderr, "raftd: bad --listen-peer %s\n", cfg.listen_peer);
		rc = 2;
		goto out;
	}
	char chost[256];
	uint16_t cport;
	if (parse_addr(cfg.listen_client, chost, sizeof(chost), &cport) < 0) {
		fprintf(stderr, "raftd: bad --listen-client %s\n", cfg.listen_client);
		rc = 2;
		goto out;
	}

	signal(SIGPIPE, SIG_IGN);
	loop = uv_default_loop();
	struct keel_node_config nc = {
		.id = cfg.id, .cluster_id = cfg.cluster_id, .data_dir = cfg.data_dir, .peers = peers,
		.n_peers = np, .join = cfg.join, .listen_host = self_host, .listen_port = self_port,
		.tick_ms = (unsigned)cfg.tick_ms, .election_ticks = (unsigned)cfg.election_ticks,
		.snapshot_count = cfg.snapshot_count, .snapshot_keep = cfg.snapshot_keep,
		.mem_entries = (size_t)cfg.mem_entries, .sm = &sm_ops,
	};
	r = keel_node_start(loop, &nc, &node, &err);
	if (r < 0) {
		keel_log(KEEL_LOG_ERROR, "cannot start", KEEL_LF_STR("error", err.msg));
		rc = 1;
		goto out;
	}
	uv_tcp_t server;
	struct sockaddr_storage sa;
	uv_tcp_init(loop, &server);
	if ((r = uv_ip4_addr(chost, cport, (struct sockaddr_in *)&sa)) < 0 &&
	    (r = uv_ip6_addr(chost, cport, (struct sockaddr_in6 *)&sa)) < 0) {
		fprintf(stderr, "raftd: bad client address %s\n", cfg.listen_client);
		rc = 2;
		goto out;
	}
	if ((r = uv_tcp_bind(&server, (struct sockaddr *)&sa, 0)) < 0 ||
	    (r = uv_listen((uv_stream_t *)&server, 512, on_connection)) < 0) {
		keel_log(KEEL_LOG_ERROR, "cannot listen for clients", KEEL_LF_STR("addr", cfg.listen_client),
			 KEEL_LF_STR("error", uv_strerror(r)));
		rc = 1;
		goto out;
	}
	uv_signal_t sigterm, sigint;
	uv_signal_init(loop, &sigterm);
	uv_signal_init(loop, &sigint);
	uv_signal_start(&sigterm, on_signal, SIGTERM);
	uv_signal_start(&sigint, on_signal, SIGINT);
	keel_log(KEEL_LOG_INFO, "ready", KEEL_LF_INT("id", cfg.id), KEEL_LF_STR("clients", cfg.listen_client),
		 KEEL_LF_INT("peer_port", keel_node_port(node)));
	uv_run(loop, UV_RUN_DEFAULT);
out:
	keel_free(peers);
	keel_free(hosts);
	sm_clear();
	keel_free(sm.recs);
	keel_config_free(&spec, &cfg);
	return rc;
}
