/* The consensus driver: feeds the Raft core from the loop (ticks, peer messages, proposals),
 * persists each ready on the thread pool (group commit), then applies, answers and sends. */
#include "raftio/node.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/log.h"
#include "base/mem.h"
#include "raftio/transport.h"
#include "raftio/wal.h"

#define SNAPSHOT_FILES_KEPT 5 /* etcd's --max-snapshots default */
#define SNAPSHOT_RETRY_MS 1000 /* after a snapshot failed */

struct pending {
	uint64_t index, term;
	keel_node_done_fn *cb;
	void *ud;
};

struct barrier {
	uint64_t ctx;
	uint64_t index; /* 0 until the read state arrives */
	keel_node_done_fn *cb;
	void *ud;
};

struct completion {
	keel_node_done_fn *cb;
	void *ud;
	int status;
	uint64_t index;
};

/* Per-peer observations for /v2/stats/leader. */
struct peer_stat {
	keel_raft_id id;
	uint64_t hb_sent_ns;  /* when the last heartbeat to it left */
	uint64_t success, fail, samples;
	double current, sum, sumsq, minimum, maximum;
};

#define MAX_PEER_STATS 16

struct keel_node {
	uv_loop_t *loop;
	struct peer_stat peer_stats[MAX_PEER_STATS];
	struct keel_node_config cfg;
	char *wal_dir, *snap_dir;
	struct keel_raft *raft;
	struct keel_wal *wal;
	struct keel_transport *tr;
	uv_timer_t tick;
	uv_idle_t idle;

	/* The ready being persisted on the thread pool. */
	bool io_busy;
	uv_work_t work;
	struct keel_raft_ready rd;
	int io_err;
	struct keel_err io_errmsg;

	struct keel_raft_snapshot_meta snap; /* newest snapshot on disk */
	char *snap_path;
	uint64_t applied;
	/* Committed entries recovery found in the WAL: the core was told they are applied (so it
	 * need not hold them in memory); the state machine gets them first thing on the loop. */
	struct keel_wal_recovered rec;
	size_t rec_pos, rec_end;
	keel_raft_id last_leader;
	uint64_t last_term;

	struct pending *pending;
	size_t n_pending, cap_pending;
	struct barrier *barriers;
	size_t n_barriers, cap_barriers;
	uint64_t next_ctx;
	struct completion *done;
	size_t n_done, cap_done;

	bool failed, stopping;
	unsigned outside_ticks; /* see probe_if_removed */
	uint64_t snap_retry_ms; /* a snapshot failed: no new attempt before this */
	unsigned open_handles;
	void (*stop_cb)(void *);
	void *stop_ud;
	struct keel_node_stats stats;
};

static void pump(struct keel_node *n);

static int grow(void **arr, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t c = *cap ? *cap * 2 : 16;
	while (c < need)
		c *= 2;
	void *p = keel_reallocarray(*arr, c, elem);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = c;
	return 0;
}

/* ---- completions: never run a callback from inside the API call that caused it ---- */

static void idle_cb(uv_idle_t *h)
{
	struct keel_node *n = h->data;
	uv_idle_stop(&n->idle);
	/* Callbacks may queue more; take the batch first. */
	size_t count = n->n_done;
	struct completion *batch = keel_memdup(n->done, count * sizeof(*batch));
	if (!batch && count) {
		uv_idle_start(&n->idle, idle_cb); /* try again next turn */
		return;
	}
	memmove(n->done, n->done + count, (n->n_done - count) * sizeof(*n->done));
	n->n_done -= count;
	for (size_t i = 0; i < count; i++)
		batch[i].cb(batch[i].ud, batch[i].status, batch[i].index);
	keel_free(batch);
}

static void complete(struct keel_node *n, keel_node_done_fn *cb, void *ud, int status, uint64_t index)
{
	if (grow((void **)&n->done, &n->cap_done, n->n_done + 1, sizeof(*n->done)) < 0) {
		cb(ud, status, index); /* better late than lost: run it now */
		return;
	}
	n->done[n->n_done++] = (struct completion){cb, ud, status, index};
	if (!uv_is_active((uv_handle_t *)&n->idle))
		uv_idle_start(&n->idle, idle_cb);
}

static void fail_all(struct keel_node *n, int status)
{
	for (size_t i = 0; i < n->n_pending; i++)
		complete(n, n->pending[i].cb, n->pending[i].ud, status, n->pending[i].index);
	n->n_pending = 0;
	for (size_t i = 0; i < n->n_barriers; i++)
		complete(n, n->barriers[i].cb, n->barriers[i].ud, status, 0);
	n->n_barriers = 0;
}

/* ---- snapshots ---- */

static char *snap_file_path(const struct keel_node *n, const struct keel_raft_snapshot_meta *m)
{
	char name[64];
	snprintf(name, sizeof(name), "%016" PRIx64 "-%016" PRIx64 ".snap", m->term, m->index);
	size_t len = strlen(n->snap_dir) + 1 + strlen(name) + 1;
	char *p = keel_malloc(len);
	if (p)
		snprintf(p, len, "%s/%s", n->snap_dir, name);
	return p;
}

static int load_snapshot(struct keel_node *n, const char *path, struct keel_err *err)
{
	struct keel_snap_reader *rd;
	struct keel_raft_snapshot_meta meta;
	int r = keel_snap_reader_open(path, &rd, &meta, err);
	if (r < 0)
		return r;
	r = n->cfg.sm->load(n->cfg.sm_ud, rd, err);
	keel_snap_reader_close(rd);
	if (r < 0)
		return keel_err_wrap(err, "loading snapshot %s", path);
	char *copy = keel_strdup(path);
	if (!copy)
		return keel_err_set(err, -ENOMEM, "out of memory");
	keel_free(n->snap_path);
	n->snap_path = copy;
	n->snap = meta;
	n->applied = meta.index;
	return 0;
}

/* The state machine is at n->applied: save it, let the core drop the log before it, record the
 * point in the WAL, and keep only the newest few snapshot files. Runs on the loop while no WAL
 * write is in flight. */
static int take_snapshot(struct keel_node *n, struct keel_err *err)
{
	uint64_t index = n->applied;
	struct keel_raft_snapshot_meta meta;
	if (keel_raft_snapshot_meta_at(n->raft, index, &meta) < 0)
		return 0; /* applied by a snapshot install: nothing new to save */
	struct keel_snap_writer *w;
	int r = keel_snap_writer_open(n->snap_dir, &meta, &w, err);
	if (r < 0)
		return r;
	r = n->cfg.sm->save(n->cfg.sm_ud, w, err);
	if (r < 0) {
		keel_snap_writer_abort(w);
		return keel_err_wrap(err, "saving snapshot at %" PRIu64, index);
	}
	char *path;
	r = keel_snap_writer_finish(w, &path, err);
	if (r < 0)
		return r;
	/* Only now that the file is durable may the log before it go. */
	keel_free(n->snap_path);
	n->snap_path = path;
	n->snap = meta;
	n->stats.snapshots_taken++;
	keel_raft_compact(n->raft, index, n->cfg.snapshot_keep);
	r = keel_wal_snapshot(n->wal, meta.index, meta.term, err);
	if (r < 0)
		return r;
	if (n->cfg.max_snapshots != KEEL_NODE_KEEP_ALL)
		keel_snap_retain(n->snap_dir, n->cfg.max_snapshots, NULL);
	return 0;
}

/* ---- applying ---- */

static void apply_entries(struct keel_node *n, const struct keel_raft_entry *ents, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		const struct keel_raft_entry *e = &ents[i];
		if (e->index <= n->applied)
			continue;
		n->cfg.sm->apply(n->cfg.sm_ud, e);
		n->applied = e->index;
		n->stats.applied++;
		/* Proposals waiting for this index: theirs if the term matches, else replaced. */
		size_t k = 0;
		while (k < n->n_pending && n->pending[k].index <= e->index) {
			struct pending *p = &n->pending[k];
			int st = p->index < e->index ? -KEEL_ESTOPPED : (p->term == e->term ? 0 : -ECANCELED);
			complete(n, p->cb, p->ud, st, p->index);
			k++;
		}
		if (k) {
			memmove(n->pending, n->pending + k, (n->n_pending - k) * sizeof(*n->pending));
			n->n_pending -= k;
		}
	}
	/* Read barriers whose point is now applied. */
	size_t k = 0;
	for (size_t i = 0; i < n->n_barriers; i++) {
		struct barrier *b = &n->barriers[i];
		if (b->index && b->index <= n->applied)
			complete(n, b->cb, b->ud, 0, b->index);
		else
			n->barriers[k++] = *b;
	}
	n->n_barriers = k;
}

static void handle_reads(struct keel_node *n, const struct keel_raft_read_state *rs, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		for (size_t j = 0; j < n->n_barriers; j++) {
			struct barrier *b = &n->barriers[j];
			if (b->ctx != rs[i].context)
				continue;
			if (!rs[i].ok) {
				complete(n, b->cb, b->ud, -KEEL_ENOT_LEADER, 0);
				n->barriers[j] = n->barriers[--n->n_barriers];
			} else {
				b->index = KEEL_MAX(rs[i].index, 1);
			}
			break;
		}
	}
}

static struct peer_stat *peer_stat(struct keel_node *n, keel_raft_id id, bool create)
{
	struct peer_stat *free_slot = NULL;
	for (int i = 0; i < MAX_PEER_STATS; i++) {
		if (n->peer_stats[i].id == id)
			return &n->peer_stats[i];
		if (!n->peer_stats[i].id && !free_slot)
			free_slot = &n->peer_stats[i];
	}
	if (!create || !free_slot)
		return NULL;
	*free_slot = (struct peer_stat){.id = id};
	return free_slot;
}

static void send_msg(struct keel_node *n, const struct keel_raft_msg *m)
{
	if (m->type == KEEL_RAFT_MSG_HEARTBEAT) {
		/* The latest heartbeat: a lost one must not leave an old send time behind. */
		struct peer_stat *ps = peer_stat(n, m->to, true);
		if (ps)
			ps->hb_sent_ns = uv_hrtime();
	}
	if (m->type == KEEL_RAFT_MSG_SNAPSHOT) {
		if (!n->snap_path || m->snapshot.index != n->snap.index) {
			keel_raft_report_snapshot(n->raft, m->to, false);
			return;
		}
		if (keel_transport_send_snapshot(n->tr, m, n->snap_path) < 0)
			keel_raft_report_snapshot(n->raft, m->to, false);
		else
			n->stats.snapshots_sent++;
		return;
	}
	keel_transport_send(n->tr, m);
}

/* The node cannot go on safely (the disk failed): stop acknowledging anything. */
static void fail_node(struct keel_node *n, const struct keel_err *why)
{
	if (n->failed)
		return;
	n->failed = true;
	uv_timer_stop(&n->tick);
	fail_all(n, -KEEL_ESTOPPED);
	if (n->cfg.sm->on_fatal)
		n->cfg.sm->on_fatal(n->cfg.sm_ud, why);
}

/* Everything after persistence: install, apply, answer, send, advance. */
static void finish_ready(struct keel_node *n)
{
	struct keel_raft_ready *rd = &n->rd;
	struct keel_err err;
	if (rd->snapshot) {
		char *path = snap_file_path(n, rd->snapshot);
		int r = path ? load_snapshot(n, path, &err) : keel_err_set(&err, -ENOMEM, "out of memory");
		keel_free(path);
		if (r < 0) {
			keel_raft_advance(n->raft, rd);
			fail_node(n, &err);
			return;
		}
		n->stats.snapshots_received++;
	}
	apply_entries(n, rd->committed, rd->n_committed);
	handle_reads(n, rd->reads, rd->n_reads);
	apply_entries(n, NULL, 0); /* barriers answered by this ready's reads */
	for (size_t i = 0; i < rd->n_msgs; i++)
		if (!rd->msgs[i].early)
			send_msg(n, &rd->msgs[i]);
	keel_raft_advance(n->raft, rd);

	if (n->cfg.snapshot_count && n->applied >= n->snap.index + n->cfg.snapshot_count &&
	    uv_now(n->loop) >= n->snap_retry_ms) {
		int r = take_snapshot(n, &err);
		if (r < 0 && keel_wal_failed(n->wal)) {
			fail_node(n, &err);
		} else if (r < 0) {
			/* The log keeps growing but nothing is lost: say so, and try again in a
			 * second rather than on every ready. */
			n->stats.snapshot_failures++;
			n->snap_retry_ms = uv_now(n->loop) + SNAPSHOT_RETRY_MS;
			keel_log(KEEL_LOG_ERROR, "cannot save a snapshot; retrying", KEEL_LF_STR("dir", n->snap_dir),
				 KEEL_LF_INT("index", n->applied), KEEL_LF_INT("errno", -r),
				 KEEL_LF_STR("error", err.msg));
		} else {
			n->snap_retry_ms = 0;
		}
	}
}

static void work_cb(uv_work_t *req)
{
	/* On the thread pool: only the WAL and the ready, which the loop does not touch until
	 * after_work_cb (the core keeps rd's memory alive until advance). */
	struct keel_node *n = req->data;
	struct keel_raft_ready *rd = &n->rd;
	keel_err_clear(&n->io_errmsg);
	int r = 0;
	if (rd->snapshot)
		r = keel_wal_snapshot(n->wal, rd->snapshot->index, rd->snapshot->term, &n->io_errmsg);
	if (!r && (rd->n_entries || rd->hard_state_changed))
		r = keel_wal_append(n->wal, rd->entries, rd->n_entries,
				    rd->hard_state_changed ? &rd->hard_state : NULL, &n->io_errmsg);
	if (!r)
		r = keel_wal_sync(n->wal, &n->io_errmsg);
	n->io_err = r;
}

static void after_work_cb(uv_work_t *req, int status)
{
	struct keel_node *n = req->data;
	n->io_busy = false;
	if (status == UV_ECANCELED)
		n->io_err = keel_err_set(&n->io_errmsg, -KEEL_ESTOPPED, "WAL write cancelled");
	if (n->io_err < 0) {
		keel_raft_advance(n->raft, &n->rd);
		fail_node(n, &n->io_errmsg);
	} else {
		n->stats.syncs++;
		n->stats.entries_synced += n->rd.n_entries;
		finish_ready(n);
	}
	if (n->stopping) {
		keel_node_stop(n, n->stop_cb, n->stop_ud);
		return;
	}
	pump(n);
}

/* Apply what recovery left for the loop. Replay kept only the places of the committed entries
 * (keel_wal_options.drop_committed_data), so their data is read back from the WAL a batch at a
 * time and freed once applied: the state machine grows into memory the log never took. */
#define RECOVER_BATCH_BYTES ((size_t)1 << 20)

static void apply_one_recovered(struct keel_node *n, const struct keel_raft_entry *e)
{
	n->cfg.sm->apply(n->cfg.sm_ud, e);
	n->applied = e->index;
	n->stats.applied++;
}

static void apply_recovered(struct keel_node *n)
{
	struct keel_err err = {0};
	int r = 0;
	while (n->rec_pos < n->rec_end && r == 0) {
		struct keel_raft_entry *e = &n->rec.entries[n->rec_pos];
		if (e->data || !e->len) {
			apply_one_recovered(n, e);
			n->rec_pos++;
			continue;
		}
		struct keel_raft_entry *ents;
		size_t got;
		void *data;
		r = keel_wal_read(n->wal, e->index, n->rec.entries[n->rec_end - 1].index,
				  RECOVER_BATCH_BYTES, &ents, &got, &data, &err);
		if (r < 0)
			break;
		for (size_t i = 0; i < got && r == 0; i++) {
			const struct keel_raft_entry *want = &n->rec.entries[n->rec_pos];
			if (ents[i].index != want->index || ents[i].term != want->term) {
				r = keel_err_set(&err, -KEEL_ECORRUPT,
						 "wal: entry %" PRIu64 " read back differs from the one replayed",
						 want->index);
				break;
			}
			apply_one_recovered(n, &ents[i]);
			n->rec_pos++;
		}
		keel_free(ents);
		keel_free(data);
	}
	keel_wal_recovered_free(&n->rec);
	if (r < 0)
		fail_node(n, &err);
}

/* Take the next ready if the disk is idle. Readies with nothing to persist skip the thread pool. */
static void pump(struct keel_node *n)
{
	if (n->rec.entries)
		apply_recovered(n);
	while (!n->failed && !n->stopping && !n->io_busy && keel_raft_ready(n->raft, &n->rd)) {
		struct keel_raft_ready *rd = &n->rd;
		for (size_t i = 0; i < rd->n_msgs; i++)
			if (rd->msgs[i].early)
				send_msg(n, &rd->msgs[i]);
		if (rd->soft_state_changed && n->cfg.sm->on_leader)
			n->cfg.sm->on_leader(n->cfg.sm_ud, rd->soft_state.leader, rd->hard_state.term);
		if (!rd->must_sync) {
			/* Nothing that must reach the disk first (at most a new commit index,
			 * which the next synced batch carries along). */
			finish_ready(n);
			continue;
		}
		n->io_busy = true;
		n->work.data = n;
		int r = uv_queue_work(n->loop, &n->work, work_cb, after_work_cb);
		if (r < 0) {
			n->io_busy = false;
			struct keel_err err;
			keel_err_set(&err, r, "queueing a WAL write: %s", uv_strerror(r));
			keel_raft_advance(n->raft, rd);
			fail_node(n, &err);
		}
		return;
	}
}

/* ---- inputs ---- */

/* A node whose log holds its own removal is outside its configuration: it never campaigns and
 * no leader writes to it, so it would say nothing and hear nothing, forever. Every election
 * timeout it sends each member a term-0 heartbeat answer, which every core ignores, so that
 * peers that applied the removal tell it (REMOVED) and it stops. */
static void probe_if_removed(struct keel_node *n)
{
	const struct keel_raft_conf *c = keel_raft_conf(n->raft);
	if (!n->cfg.sm->is_removed || c->n_voters + c->n_learners == 0 || keel_raft_conf_has_voter(c, n->cfg.id) ||
	    keel_raft_conf_has_learner(c, n->cfg.id) || ++n->outside_ticks < n->cfg.election_ticks)
		return;
	n->outside_ticks = 0;
	for (uint32_t i = 0; i < c->n_voters + c->n_learners; i++) {
		struct keel_raft_msg m = {.type = KEEL_RAFT_MSG_HEARTBEAT_RESP, .from = n->cfg.id,
					  .to = i < c->n_voters ? c->voters[i] : c->learners[i - c->n_voters]};
		keel_transport_send(n->tr, &m);
	}
}

static void tick_cb(uv_timer_t *t)
{
	struct keel_node *n = t->data;
	keel_raft_tick(n->raft);
	probe_if_removed(n);
	pump(n);
}

static void on_message(void *ud, const struct keel_raft_msg *m)
{
	struct keel_node *n = ud;
	if (n->failed || n->stopping)
		return;
	if (m->type == KEEL_RAFT_MSG_HEARTBEAT_RESP || m->type == KEEL_RAFT_MSG_APPEND_RESP) {
		struct peer_stat *ps = peer_stat(n, m->from, true);
		if (ps && m->type == KEEL_RAFT_MSG_APPEND_RESP)
			m->reject ? ps->fail++ : ps->success++;
		if (ps && m->type == KEEL_RAFT_MSG_HEARTBEAT_RESP && ps->hb_sent_ns) {
			double rtt = (double)(uv_hrtime() - ps->hb_sent_ns) / 1e9;
			ps->hb_sent_ns = 0;
			ps->current = rtt;
			ps->sum += rtt;
			ps->sumsq += rtt * rtt;
			if (!ps->samples || rtt < ps->minimum)
				ps->minimum = rtt;
			if (rtt > ps->maximum)
				ps->maximum = rtt;
			ps->samples++;
		}
	}
	keel_raft_step(n->raft, m);
	pump(n);
}

int keel_node_peer_stats(const struct keel_node *n, keel_raft_id peer, struct keel_node_peer_stats *ret)
{
	for (int i = 0; i < MAX_PEER_STATS; i++) {
		const struct peer_stat *ps = &n->peer_stats[i];
		if (ps->id != peer || !peer)
			continue;
		double avg = ps->samples ? ps->sum / (double)ps->samples : 0;
		double var = ps->samples ? ps->sumsq / (double)ps->samples - avg * avg : 0;
		*ret = (struct keel_node_peer_stats){
			.success = ps->success, .fail = ps->fail, .current = ps->current, .average = avg,
			.minimum = ps->minimum, .maximum = ps->maximum, .stddev = var > 0 ? sqrt(var) : 0,
			.samples = ps->samples,
		};
		return 0;
	}
	return -ENOENT;
}

static void on_snapshot(void *ud, const struct keel_raft_msg *m, const char *path)
{
	(void)path; /* stored in snap_dir under its standard name, found again by meta */
	on_message(ud, m);
}

static void on_unreachable(void *ud, keel_raft_id peer)
{
	struct keel_node *n = ud;
	if (!n->failed && !n->stopping)
		keel_raft_report_unreachable(n->raft, peer);
}

static void on_snapshot_sent(void *ud, keel_raft_id peer, bool ok)
{
	struct keel_node *n = ud;
	if (!n->failed && !n->stopping) {
		keel_raft_report_snapshot(n->raft, peer, ok);
		pump(n);
	}
}

/* ---- membership: removed members ---- */

static bool peer_is_removed(void *ud, keel_raft_id id)
{
	struct keel_node *n = ud;
	return n->cfg.sm->is_removed(n->cfg.sm_ud, id);
}

static int peer_query(void *ud, struct keel_buf *out)
{
	struct keel_node *n = ud;
	if (n->failed || n->stopping)
		return -KEEL_ESTOPPED;
	return n->cfg.sm->on_query(n->cfg.sm_ud, out);
}

/* A peer says the cluster removed this node: it must stop for good, as etcd's member does when
 * its peers answer 410 Gone. */
static void on_removed(void *ud, keel_raft_id told_by)
{
	struct keel_node *n = ud;
	if (n->failed || n->stopping)
		return;
	struct keel_err err;
	keel_err_set(&err, -EIDRM, "the member has been permanently removed from the cluster (member %" PRIx64 " says so)",
		     told_by);
	fail_node(n, &err);
}

uint64_t keel_node_peer_active_since(const struct keel_node *n, keel_raft_id id)
{
	return n->tr && !n->stopping ? keel_transport_active_since(n->tr, id) : 0;
}

void keel_node_remove_peer(struct keel_node *n, keel_raft_id id)
{
	if (id != n->cfg.id && n->tr)
		keel_transport_remove_peer(n->tr, id);
}

int keel_node_propose_conf_change_forward(struct keel_node *n, const struct keel_raft_conf_change *cc)
{
	if (n->failed || n->stopping)
		return -KEEL_ESTOPPED;
	int r = keel_raft_propose_conf_change(n->raft, cc, NULL);
	if (r == 0)
		pump(n);
	return r;
}

int keel_node_propose(struct keel_node *n, const void *data, size_t len, keel_node_done_fn *cb, void *ud)
{
	if (n->failed || n->stopping)
		return -KEEL_ESTOPPED;
	if (keel_raft_role(n->raft) != KEEL_RAFT_LEADER)
		return -KEEL_ENOT_LEADER;
	if (grow((void **)&n->pending, &n->cap_pending, n->n_pending + 1, sizeof(*n->pending)) < 0)
		return -ENOMEM;
	uint64_t index;
	int r = keel_raft_propose(n->raft, data, len, &index);
	if (r < 0)
		return r;
	n->pending[n->n_pending++] = (struct pending){index, keel_raft_term(n->raft), cb, ud};
	pump(n);
	return 0;
}

int keel_node_propose_forward(struct keel_node *n, const void *data, size_t len)
{
	if (n->failed || n->stopping)
		return -KEEL_ESTOPPED;
	int r = keel_raft_propose(n->raft, data, len, NULL);
	if (r == 0)
		pump(n);
	return r;
}

int keel_node_propose_conf_change(struct keel_node *n, const struct keel_raft_conf_change *cc,
				  keel_node_done_fn *cb, void *ud)
{
	if (n->failed || n->stopping)
		return -KEEL_ESTOPPED;
	if (keel_raft_role(n->raft) != KEEL_RAFT_LEADER)
		return -KEEL_ENOT_LEADER; /* the core would forward it, with no index to wait for */
	if (grow((void **)&n->pending, &n->cap_pending, n->n_pending + 1, sizeof(*n->pending)) < 0)
		return -ENOMEM;
	uint64_t index;
	int r = keel_raft_propose_conf_change(n->raft, cc, &index);
	if (r < 0)
		return r;
	n->pending[n->n_pending++] = (struct pending){index, keel_raft_term(n->raft), cb, ud};
	pump(n);
	return 0;
}

int keel_node_read_barrier(struct keel_node *n, keel_node_done_fn *cb, void *ud)
{
	if (n->failed || n->stopping)
		return -KEEL_ESTOPPED;
	if (grow((void **)&n->barriers, &n->cap_barriers, n->n_barriers + 1, sizeof(*n->barriers)) < 0)
		return -ENOMEM;
	uint64_t ctx = ++n->next_ctx;
	int r = keel_raft_read_index(n->raft, ctx);
	if (r < 0)
		return r;
	n->barriers[n->n_barriers++] = (struct barrier){.ctx = ctx, .cb = cb, .ud = ud};
	pump(n);
	return 0;
}

int keel_node_transfer_leader(struct keel_node *n, keel_raft_id to)
{
	int r = keel_raft_transfer_leader(n->raft, to);
	if (r == 0)
		pump(n);
	return r;
}

int keel_node_set_peer(struct keel_node *n, keel_raft_id id, const char *host, uint16_t port)
{
	if (id == n->cfg.id)
		return 0;
	return keel_transport_set_peer(n->tr, id, host, port);
}

keel_raft_id keel_node_id(const struct keel_node *n) { return n->cfg.id; }
keel_raft_id keel_node_leader(const struct keel_node *n) { return keel_raft_leader(n->raft); }
uint64_t keel_node_term(const struct keel_node *n) { return keel_raft_term(n->raft); }
uint64_t keel_node_commit_index(const struct keel_node *n) { return keel_raft_commit_index(n->raft); }
bool keel_node_is_leader(const struct keel_node *n) { return keel_raft_role(n->raft) == KEEL_RAFT_LEADER; }
uint16_t keel_node_port(const struct keel_node *n) { return keel_transport_port(n->tr); }
const struct keel_raft *keel_node_raft(const struct keel_node *n) { return n->raft; }

void keel_node_get_stats(const struct keel_node *n, struct keel_node_stats *st)
{
	*st = n->stats;
}

/* ---- start and stop ---- */

static char *join_path(const char *a, const char *b)
{
	size_t len = strlen(a) + 1 + strlen(b) + 1;
	char *p = keel_malloc(len);
	if (p)
		snprintf(p, len, "%s/%s", a, b);
	return p;
}

static void free_node(struct keel_node *n)
{
	keel_raft_free(n->raft);
	keel_wal_close(n->wal);
	keel_free(n->wal_dir);
	keel_free(n->snap_dir);
	keel_free(n->snap_path);
	keel_wal_recovered_free(&n->rec);
	keel_free(n->pending);
	keel_free(n->barriers);
	keel_free(n->done);
	keel_free(n);
}

/* The core asks for entries it no longer holds in memory (a follower is behind): read them back
 * from the WAL. This runs on the loop while a WAL write may be running on the thread pool, which
 * keel_wal_read allows; the entries asked for are persisted ones. Damage counts as "no longer
 * stored": the follower then gets a snapshot if one covers them, rather than nothing at all. */
static int read_entries(void *ud, uint64_t lo, uint64_t hi, size_t max_bytes, struct keel_raft_entry **ret_ents,
			size_t *ret_n, void **ret_data)
{
	struct keel_node *n = ud;
	int r = keel_wal_read(n->wal, lo, hi, max_bytes, ret_ents, ret_n, ret_data, NULL);
	if (r < 0) {
		n->stats.wal_read_failures++;
		return r == -KEEL_ECORRUPT ? -ENOENT : r;
	}
	n->stats.wal_reads++;
	n->stats.wal_read_entries += *ret_n;
	return 0;
}

/* Rebuild the core and the state machine from the newest snapshot and the WAL. */
static int recover(struct keel_node *n, struct keel_err *err)
{
	struct keel_raft_config rc;
	keel_raft_config_default(&rc, n->cfg.id);
	rc.election_ticks = n->cfg.election_ticks;
	rc.seed = (uint64_t)uv_hrtime() ^ n->cfg.id;
	rc.read_entries = read_entries;
	rc.read_ud = n;
	if (n->cfg.mem_entries)
		rc.mem_entries = n->cfg.mem_entries;
	if (n->cfg.mem_bytes)
		rc.mem_bytes = n->cfg.mem_bytes;

	struct keel_raft_snapshot_meta snap;
	char *snap_path = NULL;
	int found = keel_snap_latest(n->snap_dir, &snap, &snap_path, NULL, NULL, err);
	if (found < 0)
		return found;
	struct keel_wal_recovered rec;
	struct keel_wal_options wo = {
		.segment_size = n->cfg.wal_segment_size,
		.keep_segments = n->cfg.max_wal_segments == KEEL_NODE_KEEP_ALL ? SIZE_MAX : n->cfg.max_wal_segments,
		.drop_committed_data = true, /* apply_recovered reads them back a batch at a time */
	};
	int r = keel_wal_open(n->wal_dir, &wo, &n->wal, &rec, err);
	if (r < 0) {
		keel_free(snap_path);
		return r;
	}
	if (rec.snap_index > (found ? snap.index : 0)) {
		keel_free(snap_path);
		keel_wal_recovered_free(&rec);
		return keel_err_set(err, -KEEL_ECORRUPT,
				    "the WAL starts after index %" PRIu64 " but no snapshot that far is in %s",
				    rec.snap_index, n->snap_dir);
	}
	bool fresh = !found && !rec.has_hs && rec.n_entries == 0;
	if (fresh && !n->cfg.join) {
		struct keel_raft_conf initial = {0};
		for (size_t i = 0; i < n->cfg.n_peers && i < KEEL_RAFT_MAX_NODES; i++)
			initial.voters[initial.n_voters++] = n->cfg.peers[i].id;
		r = keel_raft_new(&rc, &initial, &n->raft, err);
	} else {
		r = keel_raft_new(&rc, NULL, &n->raft, err);
		if (r == 0 && found)
			r = load_snapshot(n, snap_path, err);
		if (r == 0) {
			/* Entries the snapshot already covers are skipped. The committed ones after
			 * it are applied on the loop, before anything else (apply_recovered): the
			 * core, told they are applied, keeps only the newest in memory. */
			size_t skip = 0;
			while (found && skip < rec.n_entries && rec.entries[skip].index <= snap.index)
				skip++;
			size_t end = skip;
			while (rec.has_hs && end < rec.n_entries && rec.entries[end].index <= rec.hs.commit)
				end++;
			uint64_t applied = end > skip ? rec.entries[end - 1].index : found ? snap.index : 0;
			r = keel_raft_restore(n->raft, found ? &snap : NULL, rec.entries + skip, rec.n_entries - skip,
					      rec.has_hs ? &rec.hs : NULL, applied, err);
			if (r == 0 && end > skip) {
				for (size_t i = 0; i < rec.n_entries; i++) {
					if (i < skip || i >= end) {
						keel_free(rec.entries[i].data);
						rec.entries[i].data = NULL;
					}
				}
				n->rec = rec;
				n->rec_pos = skip;
				n->rec_end = end;
				rec = (struct keel_wal_recovered){0};
			}
		}
	}
	keel_free(snap_path);
	keel_wal_recovered_free(&rec);
	return r;
}

int keel_node_start(uv_loop_t *loop, const struct keel_node_config *cfg, struct keel_node **ret,
		    struct keel_err *err)
{
	if (!cfg->id || !cfg->data_dir || !cfg->sm || !cfg->sm->apply || !cfg->sm->save || !cfg->sm->load)
		return keel_err_set(err, -EINVAL, "node: id, data_dir and the state machine callbacks are required");
	struct keel_node *n = keel_calloc(1, sizeof(*n));
	if (!n)
		return keel_err_set(err, -ENOMEM, "out of memory");
	n->loop = loop;
	n->cfg = *cfg;
	if (!n->cfg.tick_ms)
		n->cfg.tick_ms = 100;
	if (!n->cfg.election_ticks)
		n->cfg.election_ticks = 10;
	if (n->cfg.snapshot_count == 0)
		n->cfg.snapshot_count = 100000;
	if (n->cfg.snapshot_keep == 0)
		n->cfg.snapshot_keep = 5000; /* etcd's SnapshotCatchUpEntries */
	if (n->cfg.max_snapshots == 0)
		n->cfg.max_snapshots = SNAPSHOT_FILES_KEPT;
	n->wal_dir = cfg->wal_dir ? keel_strdup(cfg->wal_dir) : join_path(cfg->data_dir, "wal");
	n->snap_dir = join_path(cfg->data_dir, "snap");
	if (!n->wal_dir || !n->snap_dir) {
		free_node(n);
		return keel_err_set(err, -ENOMEM, "out of memory");
	}
	if (mkdir(cfg->data_dir, 0700) < 0 && errno != EEXIST) {
		int e = -errno;
		free_node(n);
		return keel_err_errno(err, e, "creating %s", cfg->data_dir);
	}
	int r = recover(n, err);
	if (r < 0) {
		free_node(n);
		return keel_err_wrap(err, "node %" PRIu64 " in %s", cfg->id, cfg->data_dir);
	}

	struct keel_transport_config tc = {
		.self = cfg->id, .cluster_id = cfg->cluster_id,
		.listen_host = cfg->listen_host ? cfg->listen_host : "127.0.0.1",
		.listen_port = cfg->listen_port, .snap_dir = n->snap_dir,
		.cert_file = cfg->cert_file, .key_file = cfg->key_file, .ca_file = cfg->ca_file,
		.verify_peer = cfg->verify_peer,
		.on_message = on_message, .on_snapshot = on_snapshot, .on_unreachable = on_unreachable,
		.on_snapshot_sent = on_snapshot_sent, .ud = n,
		.more_listen = cfg->more_listen, .n_more_listen = cfg->n_more_listen,
		.is_removed = cfg->sm->is_removed ? peer_is_removed : NULL, .on_removed = on_removed,
		.on_query = cfg->sm->on_query ? peer_query : NULL,
		/* etcd dials peers with a 1 s timeout; an election timeout if that is longer. Data
		 * unacknowledged for 5 s (two election timeouts if longer) closes a connection. */
		.connect_timeout_ms = KEEL_MAX(1000u, n->cfg.tick_ms * n->cfg.election_ticks),
		.io_timeout_ms = KEEL_MAX(5000u, 2 * n->cfg.tick_ms * n->cfg.election_ticks),
	};
	r = keel_transport_start(loop, &tc, &n->tr, err);
	if (r < 0) {
		free_node(n);
		return r;
	}
	for (size_t i = 0; i < cfg->n_peers; i++)
		if (cfg->peers[i].id != cfg->id)
			keel_transport_set_peer(n->tr, cfg->peers[i].id, cfg->peers[i].host, cfg->peers[i].port);

	uv_timer_init(loop, &n->tick);
	uv_idle_init(loop, &n->idle);
	n->tick.data = n->idle.data = n;
	/* The first tick applies what recovery found: no application callback runs inside this
	 * call, before the caller even has the node's pointer. */
	uv_timer_start(&n->tick, tick_cb, 1, n->cfg.tick_ms);
	n->open_handles = 2;
	*ret = n;
	return 0;
}

static void handle_closed(uv_handle_t *h)
{
	struct keel_node *n = h->data;
	if (--n->open_handles > 0)
		return;
	void (*cb)(void *) = n->stop_cb;
	void *ud = n->stop_ud;
	free_node(n);
	if (cb)
		cb(ud);
}

static void transport_closed(void *ud)
{
	struct keel_node *n = ud;
	n->tr = NULL;
	/* Completions still queued run now: the idle handle is about to close. */
	for (size_t i = 0; i < n->n_done; i++)
		n->done[i].cb(n->done[i].ud, n->done[i].status, n->done[i].index);
	n->n_done = 0;
	uv_close((uv_handle_t *)&n->tick, handle_closed);
	uv_close((uv_handle_t *)&n->idle, handle_closed);
}

void keel_node_stop(struct keel_node *n, void (*cb)(void *ud), void *ud)
{
	n->stopping = true;
	n->stop_cb = cb;
	n->stop_ud = ud;
	uv_timer_stop(&n->tick);
	if (n->io_busy)
		return; /* after_work_cb comes back here once the write is done */
	fail_all(n, -KEEL_ESTOPPED);
	if (n->tr)
		keel_transport_close(n->tr, transport_closed, n);
}
