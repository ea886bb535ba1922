/* The simulator's world: event queue, network, disks, nodes, clients and faults. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/crc32c.h"
#include "base/macro.h"
#include "base/mem.h"
#include "sim-internal.h"

#define TICK_MS 10
#define CLIENT_TIMEOUT_MS 3000

enum { EV_TICK = 1, EV_DELIVER, EV_IO_DONE, EV_CLIENT, EV_FAULT, EV_RESTART, EV_HEAL };

/* ---- utilities ---- */

uint64_t sim_rand(struct sim *s)
{
	uint64_t z = (s->rng += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static unsigned rand_between(struct sim *s, unsigned lo, unsigned hi)
{
	return hi <= lo ? lo : lo + (unsigned)(sim_rand(s) % (hi - lo + 1));
}

static bool chance(struct sim *s, double p)
{
	return p > 0 && (double)(sim_rand(s) >> 11) / (double)(1ull << 53) < p;
}

bool sim_fail(struct sim *s, const char *fmt, ...)
{
	if (s->failed)
		return false;
	s->failed = true;
	int n = snprintf(s->err, sizeof(s->err), "t=%llu: ", (unsigned long long)s->now);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->err + n, sizeof(s->err) - (size_t)n, fmt, ap);
	va_end(ap);
	return false;
}

int sim_grow(void **arr, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t c = *cap ? *cap : 16;
	while (c < need)
		c *= 2;
	void *p = realloc(*arr, c * elem);
	if (!p)
		abort(); /* the simulator itself running out of memory is not a finding */
	memset((char *)p + *cap * elem, 0, (c - *cap) * elem);
	*arr = p;
	*cap = c;
	return 0;
}

static struct blob *blob_new(size_t len)
{
	struct blob *b = calloc(1, sizeof(*b) + len);
	b->refs = 1;
	b->len = len;
	return b;
}

static struct blob *blob_ref(struct blob *b)
{
	if (b)
		b->refs++;
	return b;
}

static void blob_unref(struct blob *b)
{
	if (b && --b->refs == 0)
		free(b);
}

/* ---- messages ---- */

static struct keel_raft_msg *msg_copy(const struct keel_raft_msg *m)
{
	struct keel_raft_msg *c = malloc(sizeof(*c));
	*c = *m;
	if (m->n_entries) {
		c->entries = malloc(m->n_entries * sizeof(*c->entries));
		for (uint32_t i = 0; i < m->n_entries; i++) {
			c->entries[i] = m->entries[i];
			c->entries[i].data = NULL;
			if (m->entries[i].len) {
				c->entries[i].data = malloc(m->entries[i].len);
				memcpy(c->entries[i].data, m->entries[i].data, m->entries[i].len);
			}
		}
	} else {
		c->entries = NULL;
	}
	return c;
}

static void msg_free(struct keel_raft_msg *m)
{
	if (!m)
		return;
	for (uint32_t i = 0; i < m->n_entries; i++)
		free(m->entries[i].data);
	free(m->entries);
	free(m);
}

/* ---- event queue: a binary heap ordered by (time, seq) ---- */

static bool ev_before(const struct event *a, const struct event *b)
{
	return a->time < b->time || (a->time == b->time && a->seq < b->seq);
}

static void ev_push(struct sim *s, struct event e)
{
	e.seq = s->seq++;
	sim_grow((void **)&s->heap, &s->cap_heap, s->n_heap + 1, sizeof(*s->heap));
	size_t i = s->n_heap++;
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!ev_before(&e, &s->heap[p]))
			break;
		s->heap[i] = s->heap[p];
		i = p;
	}
	s->heap[i] = e;
}

static struct event ev_pop(struct sim *s)
{
	struct event top = s->heap[0];
	struct event last = s->heap[--s->n_heap];
	size_t i = 0;
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		const struct event *best = &last;
		if (l < s->n_heap && ev_before(&s->heap[l], best))
			m = l, best = &s->heap[l];
		if (r < s->n_heap && ev_before(&s->heap[r], best))
			m = r;
		if (m == i)
			break;
		s->heap[i] = s->heap[m];
		i = m;
	}
	if (s->n_heap)
		s->heap[i] = last;
	return top;
}

static void schedule(struct sim *s, uint64_t delay, int type, keel_raft_id node, uint64_t gen)
{
	ev_push(s, (struct event){.time = s->now + delay, .type = type, .node = node, .gen = gen});
}

/* ---- the state machine ---- */

static void sm_reset(struct sim *s, struct sm *sm)
{
	if (!sm->values)
		sm->values = calloc(s->o.keys ? s->o.keys : 1, sizeof(uint64_t));
	memset(sm->values, 0, (s->o.keys ? s->o.keys : 1) * sizeof(uint64_t));
	sm->applied = 0;
}

static struct blob *sm_serialize(struct sim *s, const struct sm *sm)
{
	size_t len = s->o.keys * sizeof(uint64_t);
	struct blob *b = blob_new(len);
	memcpy(b->data, sm->values, len);
	return b;
}

static void sm_load(struct sim *s, struct sm *sm, const struct blob *b, uint64_t index)
{
	sm_reset(s, sm);
	if (b)
		memcpy(sm->values, b->data, KEEL_MIN(b->len, s->o.keys * sizeof(uint64_t)));
	sm->applied = index;
}

static void encode_op(const struct op *op, uint64_t req, uint8_t out[OP_DATA_LEN])
{
	memset(out, 0, OP_DATA_LEN);
	out[0] = (uint8_t)op->kind;
	out[2] = (uint8_t)op->key;
	out[3] = (uint8_t)(op->key >> 8);
	memcpy(out + 8, &req, 8);
	memcpy(out + 16, &op->value, 8);
	memcpy(out + 24, &op->expect, 8);
}

/* ---- nodes ---- */

static struct node *node_of(struct sim *s, keel_raft_id id)
{
	if (id == 0 || id > SIM_MAX_NODES || !s->nodes[id].exists)
		return NULL;
	return &s->nodes[id];
}

static uint64_t disk_first(const struct disk *d)
{
	return d->n ? d->ents[0].index : d->snap.index + 1;
}

static uint64_t disk_last(const struct disk *d)
{
	return d->n ? d->ents[d->n - 1].index : d->snap.index;
}

/* The core reads back entries it no longer holds in memory: what keel_node does with the WAL.
 * Only persisted entries may be asked for, and they must be the ones the core knows. */
static int disk_read(void *ud, uint64_t lo, uint64_t hi, size_t max_bytes, struct keel_raft_entry **ret_ents,
		     size_t *ret_n, void **ret_data)
{
	struct node *n = ud;
	struct sim *s = n->sim;
	struct disk *d = &n->disk;
	if (hi < lo || lo > disk_last(d)) {
		sim_fail(s, "node %llu reads entries %llu..%llu back, but its disk holds entries only up to %llu",
			 (unsigned long long)n->id, (unsigned long long)lo, (unsigned long long)hi,
			 (unsigned long long)disk_last(d));
		return -EIO;
	}
	if (lo < disk_first(d)) {
		s->disk_read_misses++;
		return -ENOENT;
	}
	if (chance(s, s->o.read_fail))
		return -EIO;
	hi = KEEL_MIN(hi, disk_last(d));
	if (chance(s, 0.2))
		hi = lo + sim_rand(s) % (hi - lo + 1); /* a short read: the core must take a prefix */
	const struct keel_raft_entry *src = &d->ents[lo - disk_first(d)];
	size_t cnt = 0, bytes = 0;
	while (lo + cnt <= hi && (cnt == 0 || bytes + src[cnt].len <= max_bytes))
		bytes += src[cnt++].len;
	for (size_t k = 0; k < cnt; k++) {
		uint64_t t;
		if (!keel_raft_term_at(n->raft, src[k].index, &t) || t != src[k].term) {
			sim_fail(s, "node %llu reads entry %llu (term %llu) back, but its log has term %llu there",
				 (unsigned long long)n->id, (unsigned long long)src[k].index,
				 (unsigned long long)src[k].term, (unsigned long long)t);
			return -EIO;
		}
	}
	struct keel_raft_entry *ents = keel_malloc(cnt * sizeof(*ents));
	uint8_t *data = bytes ? keel_malloc(bytes) : NULL;
	if (!ents || (bytes && !data))
		abort();
	size_t pos = 0;
	for (size_t k = 0; k < cnt; k++) {
		ents[k] = src[k];
		ents[k].data = NULL;
		if (src[k].len) {
			ents[k].data = data + pos;
			memcpy(data + pos, src[k].data, src[k].len);
			pos += src[k].len;
		}
	}
	s->disk_reads += cnt;
	*ret_ents = ents;
	*ret_n = cnt;
	*ret_data = data;
	return 0;
}

static void raft_config(struct sim *s, struct node *n, struct keel_raft_config *cfg)
{
	keel_raft_config_default(cfg, n->id);
	cfg->pre_vote = s->o.pre_vote;
	cfg->check_quorum = s->o.check_quorum;
	cfg->max_inflight = s->o.max_inflight ? s->o.max_inflight : 8;
	cfg->max_msg_bytes = 4096;
	cfg->seed = s->o.seed * 1000003 + n->id + s->events;
	if (s->o.read_back) {
		cfg->read_entries = disk_read;
		cfg->read_ud = n;
		cfg->mem_entries = s->o.mem_entries;
		cfg->mem_bytes = s->o.mem_bytes;
	}
}

static void complete_op(struct sim *s, int idx, enum sim_op_status st)
{
	struct op *op = &s->ops[idx];
	if (op->status != SIM_OP_PENDING)
		return;
	op->status = st;
	op->done = s->now;
	if (st == SIM_OP_OK)
		op->kind == OP_GET ? s->gets_ok++ : s->puts_ok++;
	else if (st == SIM_OP_FAILED)
		s->ops_failed++;
	else
		s->ops_unknown++;
	if (s->client_op[op->client] == idx) {
		s->client_op[op->client] = -1;
		if (!s->quiet && op->client < s->o.clients)
			schedule(s, rand_between(s, 1, 20), EV_CLIENT, op->client, 0);
	}
}

/* A node went away: what it was serving is now of unknown outcome (writes) or failed (reads). */
static void fail_node_ops(struct sim *s, struct node *n)
{
	for (size_t i = 0; i < s->n_ops; i++) {
		struct op *op = &s->ops[i];
		if (op->status == SIM_OP_PENDING && op->node == n->id)
			complete_op(s, (int)i, op->kind == OP_GET ? SIM_OP_FAILED : SIM_OP_UNKNOWN);
	}
	n->n_reads = 0;
}

static void disk_truncate_from(struct disk *d, uint64_t index)
{
	while (d->n && d->ents[d->n - 1].index >= index)
		free(d->ents[--d->n].data);
}

static void disk_append(struct disk *d, const struct keel_raft_entry *e)
{
	sim_grow((void **)&d->ents, &d->cap, d->n + 1, sizeof(*d->ents));
	d->ents[d->n] = *e;
	d->ents[d->n].data = NULL;
	if (e->len) {
		d->ents[d->n].data = malloc(e->len);
		memcpy(d->ents[d->n].data, e->data, e->len);
	}
	d->n++;
}

static void disk_drop_through(struct disk *d, uint64_t index)
{
	size_t k = 0;
	while (k < d->n && d->ents[k].index <= index)
		free(d->ents[k++].data);
	memmove(d->ents, d->ents + k, (d->n - k) * sizeof(*d->ents));
	d->n -= k;
}

/* Persist the ready: snapshot, entries, hard state, in that order. `parts` limits how much of it
 * reaches the disk (a crash in the middle of the write): SIZE_MAX for all. */
static void persist(struct sim *s, struct node *n, const struct keel_raft_ready *rd, size_t parts)
{
	struct disk *d = &n->disk;
	size_t budget = parts;
	if (rd->snapshot) {
		if (budget == 0)
			return;
		budget--;
		blob_unref(d->snap_data);
		d->snap_data = blob_ref(n->incoming_snap);
		d->snap = *rd->snapshot;
		disk_truncate_from(d, 0);
	}
	for (size_t i = 0; i < rd->n_entries; i++) {
		if (budget == 0)
			return;
		budget--;
		const struct keel_raft_entry *e = &rd->entries[i];
		disk_truncate_from(d, e->index);
		if (e->index == (d->n ? d->ents[d->n - 1].index : d->snap.index) + 1)
			disk_append(d, e);
	}
	/* Like keel_node, a change of the commit index alone is not written (must_sync false):
	 * restarts then recover with an older commit index, which Raft allows. */
	if (rd->hard_state_changed && rd->must_sync) {
		if (budget == 0)
			return;
		d->hs = rd->hard_state;
		d->has_hs = true;
	}
	(void)s;
}

static void send_msg(struct sim *s, struct node *from, const struct keel_raft_msg *m)
{
	s->msgs_sent++;
	if (m->to > SIM_MAX_NODES || s->link_down[from->id][m->to] || chance(s, s->o.loss)) {
		s->msgs_dropped++;
		if (m->type == KEEL_RAFT_MSG_SNAPSHOT && from->raft)
			keel_raft_report_snapshot(from->raft, m->to, false);
		return;
	}
	int copies = chance(s, s->o.dup) ? 2 : 1;
	for (int c = 0; c < copies; c++) {
		struct event e = {
			.time = s->now + rand_between(s, s->o.min_delay_ms, s->o.max_delay_ms),
			.type = EV_DELIVER, .node = m->to, .msg = msg_copy(m),
		};
		if (m->type == KEEL_RAFT_MSG_SNAPSHOT) {
			/* The driver streams its stored snapshot along; it must be the one the core
			 * described. */
			if (from->disk.snap.index != m->snapshot.index) {
				sim_fail(s, "node %llu sends snapshot %llu but its disk holds %llu",
					 (unsigned long long)from->id, (unsigned long long)m->snapshot.index,
					 (unsigned long long)from->disk.snap.index);
				msg_free(e.msg);
				return;
			}
			e.blob = blob_ref(from->disk.snap_data);
			e.time += 5 + from->disk.snap.index % 7; /* bigger transfers take longer */
			s->snapshots_sent++;
		}
		ev_push(s, e);
	}
}

static void apply_entry(struct sim *s, struct node *n, const struct keel_raft_entry *e)
{
	sim_record_apply(s, n, e);
	n->sm.applied = e->index;
	if (e->type != KEEL_RAFT_ENTRY_NORMAL || e->len != OP_DATA_LEN)
		return;
	const uint8_t *p = e->data;
	unsigned key = p[2] | (unsigned)p[3] << 8;
	uint64_t req, value, expect;
	memcpy(&req, p + 8, 8);
	memcpy(&value, p + 16, 8);
	memcpy(&expect, p + 24, 8);
	if (key >= s->o.keys)
		return;
	uint64_t result = 1;
	if (p[0] == OP_PUT)
		n->sm.values[key] = value;
	else if (p[0] == OP_CAS && n->sm.values[key] == expect)
		n->sm.values[key] = value;
	else
		result = 0;
	/* The op that proposed this entry through this node completes now. */
	if (req < s->n_ops) {
		struct op *op = &s->ops[req];
		if (op->status == SIM_OP_PENDING && op->node == n->id && op->index == e->index) {
			op->result = result;
			complete_op(s, (int)req, SIM_OP_OK);
		}
	}
}

static void serve_reads(struct sim *s, struct node *n)
{
	size_t k = 0;
	for (size_t i = 0; i < n->n_reads; i++) {
		struct pending_read *pr = &n->reads[i];
		if (n->sm.applied >= pr->index) {
			struct op *op = &s->ops[pr->op];
			op->result = n->sm.values[op->key];
			op->index = n->sm.applied;
			complete_op(s, pr->op, SIM_OP_OK);
		} else {
			n->reads[k++] = *pr;
		}
	}
	n->n_reads = k;
}

static void crash_node(struct sim *s, struct node *n, bool io_partial);

/* The ready's I/O finished: it is durable; apply, answer, send, advance. */
static void io_done(struct sim *s, struct node *n)
{
	struct keel_raft_ready *rd = &n->rd;
	if (n->disk.fail_next) {
		n->disk.fail_next = false;
		crash_node(s, n, true);
		return;
	}
	persist(s, n, rd, SIZE_MAX);
	uint64_t last_before = keel_raft_last_index(n->raft);
	if (rd->snapshot) {
		sm_load(s, &n->sm, n->incoming_snap, rd->snapshot->index);
		sim_record_apply(s, n, NULL);
	}
	for (size_t i = 0; i < rd->n_committed; i++) {
		if (rd->committed[i].index <= n->sm.applied)
			continue; /* covered by the snapshot just installed */
		apply_entry(s, n, &rd->committed[i]);
	}
	for (size_t i = 0; i < rd->n_reads; i++) {
		const struct keel_raft_read_state *rs = &rd->reads[i];
		if (rs->context >= s->n_ops)
			continue;
		if (!rs->ok) {
			complete_op(s, (int)rs->context, SIM_OP_FAILED);
			continue;
		}
		sim_grow((void **)&n->reads, &n->cap_reads, n->n_reads + 1, sizeof(*n->reads));
		n->reads[n->n_reads++] = (struct pending_read){(int)rs->context, rs->index};
	}
	serve_reads(s, n);
	for (size_t i = 0; i < rd->n_msgs; i++)
		if (!rd->msgs[i].early)
			send_msg(s, n, &rd->msgs[i]);
	keel_raft_advance(n->raft, rd);
	n->io_busy = false;
	if (s->o.read_back && last_before == keel_raft_last_index(n->raft)) {
		/* The window: after advance, no more than mem_entries applied entries stay in
		 * memory (applied ones are persisted too, and nothing was appended meanwhile). */
		uint64_t applied = keel_raft_applied_index(n->raft);
		uint64_t mem_first = keel_raft_mem_first_index(n->raft);
		if (applied >= mem_first && applied - mem_first + 1 > s->o.mem_entries)
			sim_fail(s, "node %llu holds entries %llu..%llu in memory although %llu are applied "
				    "and the window is %u",
				 (unsigned long long)n->id, (unsigned long long)mem_first,
				 (unsigned long long)keel_raft_last_index(n->raft), (unsigned long long)applied,
				 s->o.mem_entries);
	}

	/* Snapshot policy: the driver snapshots its state machine every so many entries. */
	if (s->o.snapshot_every && n->sm.applied >= n->disk.snap.index + s->o.snapshot_every) {
		if (keel_raft_compact(n->raft, n->sm.applied, s->o.snapshot_keep) == 0) {
			const struct keel_raft_snapshot_meta *m = keel_raft_snapshot(n->raft);
			blob_unref(n->disk.snap_data);
			n->disk.snap_data = sm_serialize(s, &n->sm);
			n->disk.snap = *m;
			/* Like WAL segments, the log before the snapshot goes in pieces. */
			unsigned slack = rand_between(s, 0, s->o.disk_slack);
			if (m->index > slack)
				disk_drop_through(&n->disk, m->index - slack);
		} else if (keel_raft_applied_index(n->raft) == n->sm.applied &&
			   n->sm.applied > n->disk.snap.index) {
			sim_fail(s, "node %llu cannot compact at its applied index %llu",
				 (unsigned long long)n->id, (unsigned long long)n->sm.applied);
		}
	}
}

/* Take the next ready if the disk is idle. */
static void pump(struct sim *s, struct node *n)
{
	if (!n->up || n->io_busy || !keel_raft_has_ready(n->raft))
		return;
	if (!keel_raft_ready(n->raft, &n->rd))
		return;
	n->io_busy = true;
	n->io_gen++;
	for (size_t i = 0; i < n->rd.n_msgs; i++)
		if (n->rd.msgs[i].early)
			send_msg(s, n, &n->rd.msgs[i]);
	if (n->rd.soft_state_changed && n->rd.soft_state.role == KEEL_RAFT_LEADER)
		s->elections++;
	if (!n->rd.must_sync) {
		io_done(s, n); /* nothing to wait for on the disk */
		if (n->up)
			pump(s, n);
		return;
	}
	schedule(s, rand_between(s, s->o.min_disk_ms, s->o.max_disk_ms), EV_IO_DONE, n->id, n->io_gen);
}

static void crash_node(struct sim *s, struct node *n, bool io_partial)
{
	if (!n->up)
		return;
	if (n->io_busy && io_partial) {
		/* A crash in the middle of the write: some prefix of it reached the disk. */
		size_t parts = (n->rd.snapshot ? 1 : 0) + n->rd.n_entries + (n->rd.hard_state_changed ? 1 : 0);
		persist(s, n, &n->rd, (size_t)(sim_rand(s) % (parts + 1)));
	}
	if (s->o.verbose)
		fprintf(stderr, "t=%llu crash %llu\n", (unsigned long long)s->now, (unsigned long long)n->id);
	keel_raft_free(n->raft);
	n->raft = NULL;
	n->up = false;
	n->io_busy = false;
	n->was_leader = false;
	blob_unref(n->incoming_snap);
	n->incoming_snap = NULL;
	fail_node_ops(s, n);
	s->crashes++;
}

static int start_node(struct sim *s, struct node *n, const struct keel_raft_conf *initial)
{
	struct keel_raft_config cfg;
	n->sim = s;
	raft_config(s, n, &cfg);
	struct keel_err err;
	if (keel_raft_new(&cfg, initial, &n->raft, &err) < 0)
		return sim_fail(s, "node %llu: %s", (unsigned long long)n->id, err.msg), -1;
	sm_reset(s, &n->sm);
	if (!initial) {
		const struct keel_raft_snapshot_meta *snap = n->disk.snap.index ? &n->disk.snap : NULL;
		size_t skip = 0; /* entries the snapshot covers, as keel_node skips them */
		while (skip < n->disk.n && n->disk.ents[skip].index <= n->disk.snap.index)
			skip++;
		sm_load(s, &n->sm, n->disk.snap_data, n->disk.snap.index);
		if (s->o.apply_on_restart && n->disk.has_hs) {
			/* As keel_node does: the committed entries found on disk go to the state
			 * machine directly, and the core is told they are applied (so it need not
			 * hold them in memory). */
			for (size_t i = skip; i < n->disk.n && n->disk.ents[i].index <= n->disk.hs.commit; i++)
				apply_entry(s, n, &n->disk.ents[i]);
		}
		if (keel_raft_restore(n->raft, snap, n->disk.ents + skip, n->disk.n - skip,
				      n->disk.has_hs ? &n->disk.hs : NULL, n->sm.applied, &err) < 0)
			return sim_fail(s, "node %llu restore: %s", (unsigned long long)n->id, err.msg), -1;
		if (keel_raft_applied_index(n->raft) != n->sm.applied)
			return sim_fail(s, "node %llu restored with applied %llu, its state machine holds %llu",
					(unsigned long long)n->id,
					(unsigned long long)keel_raft_applied_index(n->raft),
					(unsigned long long)n->sm.applied), -1;
	}
	n->up = true;
	n->io_busy = false;
	n->known_commit = 0;
	/* A tick of the previous run may still be queued (a crash and restart within one tick):
	 * it must not start a second chain, or this node's clock would run twice as fast. */
	n->tick_gen++;
	schedule(s, rand_between(s, 1, TICK_MS), EV_TICK, n->id, n->tick_gen);
	return 0;
}

int sim_restart(struct sim *s, keel_raft_id id)
{
	struct node *n = node_of(s, id);
	if (!n || n->up)
		return -1;
	if (s->o.verbose)
		fprintf(stderr, "t=%llu restart %llu\n", (unsigned long long)s->now, (unsigned long long)id);
	return start_node(s, n, NULL);
}

void sim_crash(struct sim *s, keel_raft_id id)
{
	struct node *n = node_of(s, id);
	if (n)
		crash_node(s, n, true);
}

int sim_add_node(struct sim *s, keel_raft_id id)
{
	if (id == 0 || id > SIM_MAX_NODES || s->nodes[id].exists)
		return -1;
	struct node *n = &s->nodes[id];
	memset(n, 0, sizeof(*n));
	n->id = id;
	n->exists = true;
	return start_node(s, n, NULL);
}

/* ---- clients ---- */

static int new_op(struct sim *s, enum op_kind kind, unsigned client, keel_raft_id via, unsigned key)
{
	sim_grow((void **)&s->ops, &s->cap_ops, s->n_ops + 1, sizeof(*s->ops));
	int idx = (int)s->n_ops++;
	s->ops[idx] = (struct op){
		.kind = kind, .key = key, .client = client, .node = via, .inv = s->now,
		.status = SIM_OP_PENDING,
	};
	return idx;
}

static void issue(struct sim *s, int idx)
{
	struct op *op = &s->ops[idx];
	struct node *n = node_of(s, op->node);
	if (!n || !n->up) {
		complete_op(s, idx, SIM_OP_FAILED);
		return;
	}
	if (op->kind == OP_GET) {
		if (keel_raft_read_index(n->raft, (uint64_t)idx) < 0)
			complete_op(s, idx, SIM_OP_FAILED);
	} else if (keel_raft_role(n->raft) != KEEL_RAFT_LEADER) {
		complete_op(s, idx, SIM_OP_FAILED); /* clients write through the leader */
	} else {
		uint8_t data[OP_DATA_LEN];
		encode_op(op, (uint64_t)idx, data);
		uint64_t index;
		if (keel_raft_propose(n->raft, data, sizeof(data), &index) < 0) {
			complete_op(s, idx, SIM_OP_FAILED);
		} else {
			op->index = index;
			op->term = keel_raft_term(n->raft);
		}
	}
	if (op->status == SIM_OP_PENDING)
		ev_push(s, (struct event){.time = s->now + CLIENT_TIMEOUT_MS, .type = EV_CLIENT,
					  .node = op->client, .gen = (uint64_t)idx + 1});
	pump(s, n);
}

int sim_put(struct sim *s, keel_raft_id via, unsigned key, uint64_t value)
{
	int idx = new_op(s, OP_PUT, 63, via, key % (s->o.keys ? s->o.keys : 1));
	s->ops[idx].value = value;
	issue(s, idx);
	return idx;
}

int sim_get(struct sim *s, keel_raft_id via, unsigned key)
{
	int idx = new_op(s, OP_GET, 63, via, key % (s->o.keys ? s->o.keys : 1));
	issue(s, idx);
	return idx;
}

enum sim_op_status sim_op_status(const struct sim *s, int op) { return s->ops[op].status; }
uint64_t sim_op_value(const struct sim *s, int op) { return s->ops[op].result; }
uint64_t sim_op_index(const struct sim *s, int op) { return s->ops[op].index; }

/* A client's next operation: to the node it believes leads (or any running node). */
static void client_event(struct sim *s, const struct event *e)
{
	unsigned c = (unsigned)e->node;
	if (e->gen) {
		/* A timeout for op gen-1: the client gives up; the outcome is unknown. */
		int idx = (int)(e->gen - 1);
		if (s->ops[idx].status == SIM_OP_PENDING) {
			struct node *n = node_of(s, s->ops[idx].node);
			if (n)
				for (size_t i = 0; i < n->n_reads; i++)
					if (n->reads[i].op == idx)
						n->reads[i] = n->reads[--n->n_reads];
			complete_op(s, idx, s->ops[idx].kind == OP_GET ? SIM_OP_FAILED : SIM_OP_UNKNOWN);
		}
		return;
	}
	if (s->quiet || s->client_op[c] >= 0)
		return;
	keel_raft_id via = sim_leader(s);
	if (!via || chance(s, 0.2)) {
		keel_raft_id up[SIM_MAX_NODES];
		unsigned nu = 0;
		for (keel_raft_id id = 1; id <= SIM_MAX_NODES; id++)
			if (s->nodes[id].exists && s->nodes[id].up)
				up[nu++] = id;
		if (!nu) {
			schedule(s, 50, EV_CLIENT, c, 0);
			return;
		}
		via = up[sim_rand(s) % nu];
	}
	unsigned key = (unsigned)(sim_rand(s) % s->o.keys);
	unsigned r = (unsigned)(sim_rand(s) % 10);
	enum op_kind kind = r < 4 ? OP_PUT : r < 6 ? OP_CAS : OP_GET;
	int idx = new_op(s, kind, c, via, key);
	s->ops[idx].value = ((uint64_t)idx << 8) | c; /* unique per op */
	if (kind == OP_CAS) {
		/* Expect a value this client saw recently or anything: the outcome is checked either way. */
		struct node *n = node_of(s, via);
		s->ops[idx].expect = n && n->sm.values ? n->sm.values[key] : 0;
	}
	s->client_op[c] = idx;
	issue(s, idx);
}

/* ---- faults ---- */

static keel_raft_id random_node(struct sim *s, bool want_up)
{
	keel_raft_id ids[SIM_MAX_NODES];
	unsigned n = 0;
	for (keel_raft_id id = 1; id <= SIM_MAX_NODES; id++)
		if (s->nodes[id].exists && s->nodes[id].up == want_up)
			ids[n++] = id;
	return n ? ids[sim_rand(s) % n] : 0;
}

static void member_change(struct sim *s)
{
	keel_raft_id lid = sim_leader(s);
	if (!lid)
		return;
	struct keel_raft *r = node_of(s, lid)->raft;
	const struct keel_raft_conf *c = keel_raft_conf(r);
	struct keel_raft_conf_change cc = {0};
	if (c->n_learners > 0) {
		/* Promote a learner once it has caught up. */
		keel_raft_id l = c->learners[0];
		if (keel_raft_peer_match(r, l) + 5 < keel_raft_last_index(r))
			return;
		cc.type = KEEL_RAFT_ADD_VOTER;
		cc.node = l;
	} else if (c->n_voters > s->o.nodes || (c->n_voters > 2 && chance(s, 0.5))) {
		/* Remove a voter (never below 2 here, to keep the run lively); maybe the leader. */
		cc.type = KEEL_RAFT_REMOVE_NODE;
		cc.node = c->voters[sim_rand(s) % c->n_voters];
	} else {
		/* Add a brand-new node as a learner. */
		keel_raft_id id = 0;
		for (keel_raft_id k = 1; k <= SIM_MAX_NODES && !id; k++)
			if (!s->nodes[k].exists)
				id = k;
		if (!id)
			return;
		cc.type = KEEL_RAFT_ADD_LEARNER;
		cc.node = id;
		if (keel_raft_propose_conf_change(r, &cc, NULL) == 0) {
			s->conf_changes++;
			sim_add_node(s, id);
		}
		pump(s, node_of(s, lid));
		return;
	}
	/* Sometimes through a follower, which forwards it to the leader (who may drop it). */
	keel_raft_id via = chance(s, 0.3) ? random_node(s, true) : lid;
	struct node *vn = via ? node_of(s, via) : NULL;
	if (!vn || !vn->raft)
		vn = node_of(s, lid);
	if (keel_raft_propose_conf_change(vn->raft, &cc, NULL) == 0)
		s->conf_changes++;
	pump(s, vn);
}

static void fault_event(struct sim *s, const struct event *e)
{
	if (s->quiet)
		return;
	unsigned kind = (unsigned)e->gen;
	unsigned every[] = {s->o.crash_every_ms, s->o.partition_every_ms, s->o.member_every_ms,
			    s->o.transfer_every_ms, s->o.disk_fault_every_ms};
	switch (kind) {
	case 0: { /* crash one node for a while */
		keel_raft_id id = random_node(s, true);
		if (id) {
			sim_crash(s, id);
			schedule(s, rand_between(s, 100, 1500), EV_RESTART, id, 0);
		}
		break;
	}
	case 1: { /* a partition: isolate one node, or split the cluster in two */
		keel_raft_id id = random_node(s, true);
		if (id && chance(s, 0.5)) {
			sim_isolate(s, id, true);
		} else {
			for (keel_raft_id a = 1; a <= SIM_MAX_NODES; a++)
				for (keel_raft_id b = 1; b <= SIM_MAX_NODES; b++)
					if (a != b && ((a ^ b ^ s->seq) & 1))
						s->link_down[a][b] = s->link_down[b][a] = true;
		}
		schedule(s, rand_between(s, 200, 2000), EV_HEAL, 0, 0);
		break;
	}
	case 2:
		member_change(s);
		break;
	case 3: { /* leadership transfer to a random voter */
		keel_raft_id lid = sim_leader(s);
		if (lid) {
			struct keel_raft *r = node_of(s, lid)->raft;
			const struct keel_raft_conf *c = keel_raft_conf(r);
			keel_raft_id t = c->voters[sim_rand(s) % c->n_voters];
			if (t != lid && keel_raft_transfer_leader(r, t) == 0)
				s->transfers++;
			pump(s, node_of(s, lid));
		}
		break;
	}
	case 4: { /* the disk of a node fails its next write */
		keel_raft_id id = random_node(s, true);
		if (id) {
			s->nodes[id].disk.fail_next = true;
			schedule(s, rand_between(s, 300, 1500), EV_RESTART, id, 0);
		}
		break;
	}
	}
	if (every[kind])
		schedule(s, rand_between(s, every[kind] / 2, every[kind] * 3 / 2), EV_FAULT, 0, kind);
}

/* ---- the event loop ---- */

static void deliver(struct sim *s, struct event *e)
{
	struct node *n = node_of(s, e->node);
	if (!n || !n->up || s->link_down[e->msg->from][e->node]) {
		s->msgs_dropped++;
		return;
	}
	if (e->msg->type == KEEL_RAFT_MSG_SNAPSHOT) {
		blob_unref(n->incoming_snap);
		n->incoming_snap = blob_ref(e->blob);
	}
	int r = keel_raft_step(n->raft, e->msg);
	if (r < 0 && r != -ENOMEM)
		sim_fail(s, "node %llu rejected a %s from %llu: %d", (unsigned long long)n->id,
			 keel_raft_msg_type_name(e->msg->type), (unsigned long long)e->msg->from, r);
	pump(s, n);
}

static void process(struct sim *s, struct event *e)
{
	s->now = e->time;
	s->events++;
	struct node *n = node_of(s, e->node);
	switch (e->type) {
	case EV_TICK:
		if (n && n->up && e->gen == n->tick_gen) {
			keel_raft_tick(n->raft);
			schedule(s, TICK_MS, EV_TICK, n->id, n->tick_gen);
			pump(s, n);
		}
		break;
	case EV_DELIVER:
		deliver(s, e);
		break;
	case EV_IO_DONE:
		if (n && n->up && n->io_busy && n->io_gen == e->gen) {
			io_done(s, n);
			if (n->up)
				pump(s, n);
		}
		break;
	case EV_CLIENT:
		client_event(s, e);
		break;
	case EV_FAULT:
		fault_event(s, e);
		break;
	case EV_RESTART:
		if (n && !n->up && !s->quiet)
			sim_restart(s, n->id);
		break;
	case EV_HEAL:
		if (!s->quiet)
			sim_heal_all(s);
		break;
	}
	msg_free(e->msg);
	blob_unref(e->blob);
	if (n && n->up)
		sim_check_node(s, n);
}

int sim_run_until(struct sim *s, uint64_t t)
{
	while (!s->failed && s->n_heap && s->heap[0].time <= t) {
		struct event e = ev_pop(s);
		process(s, &e);
	}
	if (!s->failed && s->now < t)
		s->now = t;
	return s->failed ? -1 : 0;
}

int sim_run_while_not(struct sim *s, bool (*pred)(struct sim *, void *), void *arg, uint64_t timeout_ms)
{
	uint64_t end = s->now + timeout_ms;
	while (!s->failed) {
		if (pred(s, arg))
			return 0;
		if (!s->n_heap || s->heap[0].time > end)
			break;
		struct event e = ev_pop(s);
		process(s, &e);
	}
	if (!s->failed && pred(s, arg))
		return 0;
	return -1;
}

/* ---- control ---- */

uint64_t sim_now(const struct sim *s) { return s->now; }
const char *sim_error(const struct sim *s) { return s->failed ? s->err : NULL; }

struct keel_raft *sim_raft(struct sim *s, keel_raft_id id)
{
	struct node *n = node_of(s, id);
	return n && n->up ? n->raft : NULL;
}

bool sim_node_up(const struct sim *s, keel_raft_id id)
{
	return id > 0 && id <= SIM_MAX_NODES && s->nodes[id].exists && s->nodes[id].up;
}

keel_raft_id sim_leader(struct sim *s)
{
	keel_raft_id best = 0;
	uint64_t best_term = 0;
	for (keel_raft_id id = 1; id <= SIM_MAX_NODES; id++) {
		struct node *n = &s->nodes[id];
		if (n->exists && n->up && keel_raft_role(n->raft) == KEEL_RAFT_LEADER &&
		    keel_raft_term(n->raft) >= best_term) {
			best = id;
			best_term = keel_raft_term(n->raft);
		}
	}
	return best;
}

void sim_link(struct sim *s, keel_raft_id a, keel_raft_id b, bool up)
{
	if (a <= SIM_MAX_NODES && b <= SIM_MAX_NODES)
		s->link_down[a][b] = !up;
}

void sim_isolate(struct sim *s, keel_raft_id a, bool isolated)
{
	for (keel_raft_id b = 1; b <= SIM_MAX_NODES; b++) {
		if (b == a)
			continue;
		s->link_down[a][b] = isolated;
		s->link_down[b][a] = isolated;
	}
}

void sim_heal_all(struct sim *s)
{
	memset(s->link_down, 0, sizeof(s->link_down));
}

void sim_quiet(struct sim *s)
{
	s->quiet = true;
}

void sim_fail_disk(struct sim *s, keel_raft_id id)
{
	struct node *n = node_of(s, id);
	if (n)
		n->disk.fail_next = true;
}

uint64_t sim_disk_reads(const struct sim *s)
{
	return s->disk_reads;
}

void sim_opts_default(struct sim_opts *o, uint64_t seed, unsigned nodes)
{
	*o = (struct sim_opts){
		.seed = seed, .nodes = nodes, .duration_ms = 10000,
		.loss = 0.02, .dup = 0.01, .min_delay_ms = 1, .max_delay_ms = 15,
		.min_disk_ms = 1, .max_disk_ms = 4,
		.crash_every_ms = 2500, .partition_every_ms = 2000, .member_every_ms = 3000,
		.transfer_every_ms = 3000, .disk_fault_every_ms = 6000,
		.clients = 3, .keys = 4, .snapshot_every = 40, .snapshot_keep = 5,
		.pre_vote = true, .check_quorum = true, .max_inflight = 8,
	};
	/* Vary what the seed also decides: some runs without pre-vote or check-quorum (a deposed
	 * leader then lingers, which is what ReadIndex must survive), some with a window of one. */
	o->pre_vote = seed % 3 != 0;
	o->check_quorum = seed % 4 != 0;
	o->max_inflight = seed % 5 == 0 ? 1 : 8;
	/* Most runs keep only a few entries in memory and read the rest back from the disk, with
	 * a window of 0 to 9 entries, sometimes a byte limit of one to three entries, a disk that
	 * keeps up to 12 entries before its snapshot, and reads that sometimes fail. */
	o->read_back = seed % 7 != 0;
	o->mem_entries = (unsigned)(seed / 7 % 10);
	o->mem_bytes = seed % 4 == 1 ? OP_DATA_LEN * (1 + (unsigned)(seed / 4 % 3)) : 1u << 20;
	o->disk_slack = seed % 3 == 2 ? 0 : (unsigned)(seed / 3 % 13);
	o->read_fail = seed % 2 ? 0.02 : 0;
	o->apply_on_restart = seed / 2 % 2 == 1;
}

int sim_new(const struct sim_opts *o, struct sim **ret)
{
	if (o->nodes == 0 || o->nodes > SIM_MAX_NODES || o->keys > 65535 || o->clients > 60)
		return -EINVAL;
	struct sim *s = calloc(1, sizeof(*s));
	s->o = *o;
	if (s->o.keys == 0)
		s->o.keys = 1;
	if (s->o.max_delay_ms < s->o.min_delay_ms)
		s->o.max_delay_ms = s->o.min_delay_ms;
	s->rng = o->seed * 0x2545F4914F6CDD1Dull + 1;
	for (unsigned i = 0; i < 64; i++)
		s->client_op[i] = -1;
	struct keel_raft_conf initial = {.n_voters = o->nodes};
	for (unsigned i = 0; i < o->nodes; i++)
		initial.voters[i] = i + 1;
	for (unsigned i = 1; i <= o->nodes; i++) {
		struct node *n = &s->nodes[i];
		n->id = i;
		n->exists = true;
		if (start_node(s, n, &initial) < 0) {
			*ret = s;
			return -1;
		}
		pump(s, n);
	}
	*ret = s;
	return 0;
}

void sim_free(struct sim *s)
{
	if (!s)
		return;
	for (keel_raft_id id = 1; id <= SIM_MAX_NODES; id++) {
		struct node *n = &s->nodes[id];
		keel_raft_free(n->raft);
		disk_truncate_from(&n->disk, 0);
		free(n->disk.ents);
		blob_unref(n->disk.snap_data);
		blob_unref(n->incoming_snap);
		free(n->sm.values);
		free(n->reads);
	}
	while (s->n_heap) {
		struct event e = ev_pop(s);
		msg_free(e.msg);
		blob_unref(e.blob);
	}
	free(s->heap);
	free(s->ops);
	free(s->leader_of_term);
	free(s->applied);
	free(s->committed_term);
	free(s);
}

static bool settled(struct sim *s, void *arg)
{
	(void)arg;
	keel_raft_id lid = sim_leader(s);
	if (!lid)
		return false;
	struct keel_raft *l = sim_raft(s, lid);
	uint64_t commit = keel_raft_commit_index(l);
	if (keel_raft_last_index(l) != commit)
		return false;
	const struct keel_raft_conf *c = keel_raft_conf(l);
	for (uint32_t i = 0; i < c->n_voters + c->n_learners; i++) {
		keel_raft_id id = i < c->n_voters ? c->voters[i] : c->learners[i - c->n_voters];
		struct node *n = node_of(s, id);
		if (!n || !n->up || n->sm.applied != commit || n->io_busy)
			return false;
	}
	return true;
}

void sim_dump(struct sim *s, FILE *out)
{
	for (keel_raft_id id = 1; id <= SIM_MAX_NODES; id++) {
		struct node *n = &s->nodes[id];
		if (!n->exists)
			continue;
		if (!n->up) {
			fprintf(out, "  node %llu: down\n", (unsigned long long)id);
			continue;
		}
		struct keel_raft *r = n->raft;
		const struct keel_raft_conf *c = keel_raft_conf(r);
		fprintf(out, "  node %llu: %s term=%llu leader=%llu first=%llu last=%llu commit=%llu applied=%llu "
			     "sm=%llu io=%d snap=%llu voters=",
			(unsigned long long)id, keel_raft_role_name(keel_raft_role(r)),
			(unsigned long long)keel_raft_term(r), (unsigned long long)keel_raft_leader(r),
			(unsigned long long)keel_raft_first_index(r), (unsigned long long)keel_raft_last_index(r),
			(unsigned long long)keel_raft_commit_index(r), (unsigned long long)keel_raft_applied_index(r),
			(unsigned long long)n->sm.applied, n->io_busy, (unsigned long long)n->disk.snap.index);
		for (uint32_t i = 0; i < c->n_voters; i++)
			fprintf(out, "%llu,", (unsigned long long)c->voters[i]);
		fprintf(out, " learners=");
		for (uint32_t i = 0; i < c->n_learners; i++)
			fprintf(out, "%llu,", (unsigned long long)c->learners[i]);
		if (keel_raft_role(r) == KEEL_RAFT_LEADER)
			for (uint32_t i = 0; i < c->n_voters + c->n_learners; i++) {
				keel_raft_id p = i < c->n_voters ? c->voters[i] : c->learners[i - c->n_voters];
				fprintf(out, " match[%llu]=%llu", (unsigned long long)p,
					(unsigned long long)keel_raft_peer_match(r, p));
			}
		fprintf(out, "\n");
		if (keel_raft_role(r) == KEEL_RAFT_LEADER)
			sim_dump_progress(r, out);
	}
}

int sim_run_workload(struct sim *s)
{
	if (s->failed)
		return -1;
	for (unsigned c = 0; c < s->o.clients; c++)
		schedule(s, rand_between(s, 1, 200), EV_CLIENT, c, 0);
	unsigned every[] = {s->o.crash_every_ms, s->o.partition_every_ms, s->o.member_every_ms,
			    s->o.transfer_every_ms, s->o.disk_fault_every_ms};
	for (unsigned k = 0; k < 5; k++)
		if (every[k])
			schedule(s, rand_between(s, every[k] / 2, every[k] * 3 / 2), EV_FAULT, 0, k);
	if (sim_run_until(s, s->o.duration_ms) < 0)
		return -1;

	/* The end of the storm: heal, restart, stop the clients, and the cluster must converge
	 * with every acknowledged write in place. */
	sim_quiet(s);
	sim_heal_all(s);
	for (keel_raft_id id = 1; id <= SIM_MAX_NODES; id++) {
		s->nodes[id].disk.fail_next = false;
		if (s->nodes[id].exists && !s->nodes[id].up && sim_restart(s, id) < 0)
			return -1;
	}
	if (sim_run_while_not(s, settled, NULL, 30000) < 0) {
		if (!s->failed) {
			keel_raft_id lid = sim_leader(s);
			if (s->o.verbose)
				sim_dump(s, stderr);
			sim_fail(s, "the cluster did not settle within 30 s after healing (leader %llu)",
				 (unsigned long long)lid);
		}
		return -1;
	}
	/* Let pending client timeouts fire so every op has an outcome. */
	sim_run_until(s, s->now + CLIENT_TIMEOUT_MS + 1);
	return sim_check_history(s);
}

void sim_stats(const struct sim *s, char *out, size_t size)
{
	snprintf(out, size,
		 "events=%llu msgs=%llu dropped=%llu elections=%llu crashes=%llu snapshots=%llu "
		 "conf=%llu transfers=%llu puts_ok=%llu gets_ok=%llu failed=%llu unknown=%llu "
		 "disk_reads=%llu disk_read_misses=%llu",
		 (unsigned long long)s->events, (unsigned long long)s->msgs_sent,
		 (unsigned long long)s->msgs_dropped, (unsigned long long)s->elections,
		 (unsigned long long)s->crashes, (unsigned long long)s->snapshots_sent,
		 (unsigned long long)s->conf_changes, (unsigned long long)s->transfers,
		 (unsigned long long)s->puts_ok, (unsigned long long)s->gets_ok,
		 (unsigned long long)s->ops_failed, (unsigned long long)s->ops_unknown,
		 (unsigned long long)s->disk_reads, (unsigned long long)s->disk_read_misses);
}
