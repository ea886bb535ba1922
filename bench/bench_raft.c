/* Consensus benchmark: a 3-node cluster on loopback in one process, durability on (each node
 * fdatasyncs its own WAL), 256-byte entries. In the same run it measures the reference that
 * bounds any consensus log on this machine: the disk's fdatasync rate and latency.
 *
 *   bench_raft [--dir DIR] [--seconds S] [--writers N]
 *
 * Prints: fdatasync rate/latency; with one writer, commit latency p50/p99 in ms and in units of
 * one fdatasync; with N pipelined writers, committed entries/s and entries per fdatasync. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "base/clock.h"
#include "base/mem.h"
#include "raftio/node.h"

#define NODES 3
#define ENTRY_SIZE 256

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static double pct(int64_t *v, size_t n, double p)
{
	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_i64);
	size_t i = (size_t)(p * (double)(n - 1));
	return (double)v[i] / 1e6;
}

/* The disk: 4 KiB append + fdatasync, as a WAL does. */
static void measure_disk(const char *dir, double *rate, double *p50_ms, double *p99_ms)
{
	char path[4200];
	snprintf(path, sizeof(path), "%.4096s/fsync-probe", dir);
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0) {
		perror(path);
		exit(1);
	}
	char buf[4096];
	memset(buf, 'x', sizeof(buf));
	enum { N = 400 };
	static int64_t lat[N];
	int64_t t0 = keel_mono_ns();
	for (int i = 0; i < N; i++) {
		int64_t a = keel_mono_ns();
		if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf) || fdatasync(fd) < 0) {
			perror("fsync probe");
			exit(1);
		}
		lat[i] = keel_mono_ns() - a;
	}
	double secs = (double)(keel_mono_ns() - t0) / 1e9;
	close(fd);
	unlink(path);
	*rate = N / secs;
	*p50_ms = pct(lat, N, 0.50);
	*p99_ms = pct(lat, N, 0.99);
}

/* ---- the cluster ---- */

static struct keel_node *nodes[NODES];
static uv_loop_t *loop;

static void sm_apply(void *ud, const struct keel_raft_entry *e) { (void)ud; (void)e; }
static int sm_save(void *ud, struct keel_snap_writer *w, struct keel_err *err)
{
	(void)ud;
	return keel_snap_writer_write(w, "s", 1, err);
}
static int sm_load(void *ud, struct keel_snap_reader *r, struct keel_err *err)
{
	(void)ud;
	char b[64];
	ssize_t n;
	while ((n = keel_snap_reader_read(r, b, sizeof(b), err)) > 0)
		;
	return (int)n;
}
static void on_fatal(void *ud, const struct keel_err *why)
{
	(void)ud;
	fprintf(stderr, "bench_raft: node failed: %s\n", why->msg);
	exit(1);
}
static const struct keel_node_sm sm = {.apply = sm_apply, .save = sm_save, .load = sm_load, .on_fatal = on_fatal};

static struct keel_node *leader(void)
{
	for (int i = 0; i < NODES; i++)
		if (nodes[i] && keel_node_is_leader(nodes[i]))
			return nodes[i];
	return NULL;
}

static uint16_t free_port(void)
{
	uv_tcp_t t;
	struct sockaddr_in a;
	uv_tcp_init(loop, &t);
	uv_ip4_addr("127.0.0.1", 0, &a);
	uv_tcp_bind(&t, (struct sockaddr *)&a, 0);
	struct sockaddr_in got;
	int len = sizeof(got);
	uv_tcp_getsockname(&t, (struct sockaddr *)&got, &len);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
	return ntohs(got.sin_port);
}

/* ---- load ---- */

static char payload[ENTRY_SIZE];
static int64_t deadline;
static unsigned outstanding, target_outstanding;
static uint64_t committed;
static int64_t *lats;
static size_t n_lats, cap_lats;
static bool measuring;

struct op {
	int64_t start;
};

static void issue(void);

static void done(void *ud, int status, uint64_t index)
{
	(void)index;
	struct op *op = ud;
	outstanding--;
	if (status == 0 && measuring) {
		committed++;
		if (n_lats == cap_lats) {
			cap_lats = cap_lats ? cap_lats * 2 : 4096;
			lats = realloc(lats, cap_lats * sizeof(*lats));
		}
		lats[n_lats++] = keel_mono_ns() - op->start;
	}
	free(op);
	issue();
}

static void issue(void)
{
	while (outstanding < target_outstanding && keel_mono_ns() < deadline) {
		struct keel_node *l = leader();
		if (!l)
			return;
		struct op *op = malloc(sizeof(*op));
		op->start = keel_mono_ns();
		if (keel_node_propose(l, payload, sizeof(payload), done, op) < 0) {
			free(op);
			return;
		}
		outstanding++;
	}
	if (outstanding == 0 && keel_mono_ns() >= deadline)
		uv_stop(loop);
}

static void kick(uv_timer_t *t)
{
	(void)t;
	issue();
	if (keel_mono_ns() >= deadline && outstanding == 0)
		uv_stop(loop);
}

static void run_phase(unsigned writers, double seconds, uint64_t *ret_committed, double *ret_secs,
		      double *p50, double *p99, uint64_t *syncs, uint64_t *synced)
{
	struct keel_node_stats before, after;
	keel_node_get_stats(leader(), &before);
	committed = 0;
	n_lats = 0;
	measuring = true;
	target_outstanding = writers;
	int64_t t0 = keel_mono_ns();
	deadline = t0 + (int64_t)(seconds * 1e9);
	uv_timer_t t;
	uv_timer_init(loop, &t);
	uv_timer_start(&t, kick, 0, 10);
	issue();
	uv_run(loop, UV_RUN_DEFAULT);
	uv_timer_stop(&t);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
	measuring = false;
	*ret_secs = (double)(keel_mono_ns() - t0) / 1e9;
	*ret_committed = committed;
	*p50 = pct(lats, n_lats, 0.50);
	*p99 = pct(lats, n_lats, 0.99);
	keel_node_get_stats(leader(), &after);
	*syncs = after.syncs - before.syncs;
	*synced = after.entries_synced - before.entries_synced;
}

static void wait_leader(uv_timer_t *t)
{
	if (leader())
		uv_stop(t->loop);
}

int main(int argc, char **argv)
{
	const char *base = "bench-data";
	double seconds = 5;
	unsigned writers = 256;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--dir"))
			base = argv[i + 1];
		else if (!strcmp(argv[i], "--seconds"))
			seconds = atof(argv[i + 1]);
		else if (!strcmp(argv[i], "--writers"))
			writers = (unsigned)atoi(argv[i + 1]);
	}
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/raft-%d", base, getpid());
	mkdir(base, 0700);
	if (mkdir(dir, 0700) < 0) {
		perror(dir);
		return 1;
	}
	memset(payload, 'p', sizeof(payload));
	signal(SIGPIPE, SIG_IGN);

	double rate, f50, f99;
	measure_disk(dir, &rate, &f50, &f99);
	printf("disk: fdatasync of a 4 KiB append: %.0f/s, p50 %.3f ms, p99 %.3f ms\n", rate, f50, f99);

	loop = uv_default_loop();
	struct keel_node_peer peers[NODES];
	for (int i = 0; i < NODES; i++)
		peers[i] = (struct keel_node_peer){.id = (keel_raft_id)i + 1, .host = "127.0.0.1", .port = free_port()};
	for (int i = 0; i < NODES; i++) {
		char d[4200];
		snprintf(d, sizeof(d), "%s/n%d", dir, i + 1);
		struct keel_node_config c = {
			.id = (keel_raft_id)i + 1, .cluster_id = 7, .data_dir = d, .peers = peers, .n_peers = NODES,
			.listen_host = "127.0.0.1", .listen_port = peers[i].port, .tick_ms = 50,
			.election_ticks = 10, .snapshot_count = 1000000, .sm = &sm,
		};
		struct keel_err err;
		if (keel_node_start(loop, &c, &nodes[i], &err) < 0) {
			fprintf(stderr, "bench_raft: %s\n", err.msg);
			return 1;
		}
	}
	uv_timer_t wt;
	uv_timer_init(loop, &wt);
	uv_timer_start(&wt, wait_leader, 10, 10);
	uv_run(loop, UV_RUN_DEFAULT);
	uv_timer_stop(&wt);
	uv_close((uv_handle_t *)&wt, NULL);

	uint64_t n, syncs, synced;
	double secs, p50, p99;
	run_phase(1, 1, &n, &secs, &p50, &p99, &syncs, &synced); /* warm-up */
	run_phase(1, seconds, &n, &secs, &p50, &p99, &syncs, &synced);
	printf("1 writer:    %8.0f entries/s, commit latency p50 %.3f ms (%.2f fdatasyncs), p99 %.3f ms "
	       "(%.2f fdatasyncs), %.2f entries per leader fdatasync\n",
	       (double)n / secs, p50, p50 / f50, p99, p99 / f50, syncs ? (double)synced / (double)syncs : 0);
	run_phase(writers, seconds, &n, &secs, &p50, &p99, &syncs, &synced);
	printf("%u writers: %8.0f entries/s, commit latency p50 %.3f ms, p99 %.3f ms, %.1f entries per "
	       "leader fdatasync, %.0f leader fdatasyncs/s\n",
	       writers, (double)n / secs, p50, p99, syncs ? (double)synced / (double)syncs : 0,
	       (double)syncs / secs);
	char cmd[4300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "bench_raft: could not remove %s\n", dir);
	return 0;
}
