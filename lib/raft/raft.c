/* The consensus core's life cycle and its interface with the driver: creation, bootstrap,
 * restore after a restart, ready/advance, compaction and inspection. The protocol itself is in
 * raft_step.c, membership in raft_conf.c, the in-memory log in raft_log.c. */
#include <errno.h>
#include <string.h>

#include "base/mem.h"
#include "raft/raft-internal.h"

void keel_raft_config_default(struct keel_raft_config *cfg, keel_raft_id id)
{
	*cfg = (struct keel_raft_config){
		.id = id,
		.election_ticks = 10,
		.heartbeat_ticks = 1,
		.pre_vote = true,
		.check_quorum = true,
		.max_inflight = 256,
		.max_msg_bytes = 1 << 20,
		.max_batch_bytes = 64u << 20,
		.seed = id,
		.mem_entries = 4096,
		.mem_bytes = 8u << 20,
	};
}

static int check_conf(const struct keel_raft_conf *c)
{
	if (c->n_voters == 0 || c->n_voters > KEEL_RAFT_MAX_NODES || c->n_learners > KEEL_RAFT_MAX_NODES ||
	    c->n_voters + c->n_learners > KEEL_RAFT_MAX_NODES)
		return -EINVAL;
	keel_raft_id all[2 * KEEL_RAFT_MAX_NODES];
	uint32_t n = 0;
	for (uint32_t i = 0; i < c->n_voters; i++)
		all[n++] = c->voters[i];
	for (uint32_t i = 0; i < c->n_learners; i++)
		all[n++] = c->learners[i];
	for (uint32_t i = 0; i < n; i++) {
		if (all[i] == 0)
			return -EINVAL;
		for (uint32_t j = i + 1; j < n; j++)
			if (all[i] == all[j])
				return -EINVAL;
	}
	return 0;
}

/* A new cluster's members all start with the same log: one conf-change entry of term 1 per
 * initial member, already committed. A node that joins later receives these entries (or a
 * snapshot) like any other, so the configuration always comes from the log. */
static int bootstrap(struct keel_raft *r, const struct keel_raft_conf *initial)
{
	keel_raft_id ids[2 * KEEL_RAFT_MAX_NODES];
	bool learner[2 * KEEL_RAFT_MAX_NODES];
	uint32_t n = 0;
	for (int pass = 0; pass < 2; pass++) {
		const keel_raft_id *src = pass ? initial->learners : initial->voters;
		uint32_t cnt = pass ? initial->n_learners : initial->n_voters;
		uint32_t start = n;
		for (uint32_t i = 0; i < cnt; i++) {
			/* Sorted, so that every member writes byte-identical entries. */
			uint32_t j = n++;
			while (j > start && ids[j - 1] > src[i]) {
				ids[j] = ids[j - 1];
				j--;
			}
			ids[j] = src[i];
		}
		for (uint32_t i = start; i < n; i++)
			learner[i] = pass == 1;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct keel_raft_conf_change cc = {
			.type = learner[i] ? KEEL_RAFT_ADD_LEARNER : KEEL_RAFT_ADD_VOTER, .node = ids[i],
		};
		uint8_t buf[64];
		size_t len = keel_raft_conf_change_encode(&cc, buf, sizeof(buf));
		void *data = keel_memdup(buf, len);
		if (!data || raft_log_append_own(&r->log, 1, KEEL_RAFT_ENTRY_CONF, data, (uint32_t)len) < 0)
			return -ENOMEM;
	}
	r->term = 1;
	r->log.committed = n;
	raft_rebuild_conf(r);
	return 0;
}

int keel_raft_new(const struct keel_raft_config *cfg, const struct keel_raft_conf *initial,
		  struct keel_raft **ret, struct keel_err *err)
{
	if (cfg->id == 0)
		return keel_err_set(err, -EINVAL, "raft: node id must not be 0");
	if (cfg->election_ticks < 2 || cfg->heartbeat_ticks == 0 || cfg->heartbeat_ticks >= cfg->election_ticks)
		return keel_err_set(err, -EINVAL,
				    "raft: need 0 < heartbeat ticks (%u) < election ticks (%u), election >= 2",
				    cfg->heartbeat_ticks, cfg->election_ticks);
	if (cfg->max_inflight == 0 || cfg->max_inflight > 65536 || cfg->max_msg_bytes == 0)
		return keel_err_set(err, -EINVAL, "raft: max_inflight must be 1..65536, max_msg_bytes > 0");
	if (initial && check_conf(initial) < 0)
		return keel_err_set(err, -EINVAL, "raft: the initial configuration needs 1..%d distinct nonzero ids",
				    KEEL_RAFT_MAX_NODES);

	struct keel_raft *r = keel_calloc(1, sizeof(*r));
	uint64_t *inflight = keel_calloc((size_t)KEEL_RAFT_MAX_NODES * cfg->max_inflight, sizeof(uint64_t));
	if (!r || !inflight) {
		keel_free(r);
		keel_free(inflight);
		return keel_err_set(err, -ENOMEM, "raft: out of memory");
	}
	r->cfg = *cfg;
	raft_log_init(&r->log);
	if (r->cfg.max_batch_bytes == 0)
		r->cfg.max_batch_bytes = SIZE_MAX;
	r->rng = cfg->seed ^ (cfg->id * 0x9E3779B97F4A7C15ull);
	for (unsigned i = 0; i < KEEL_RAFT_MAX_NODES; i++)
		r->prs[i].inflight = inflight + (size_t)i * cfg->max_inflight;
	r->trunc_since_ready = UINT64_MAX;
	if (initial && bootstrap(r, initial) < 0) {
		keel_raft_free(r);
		return keel_err_set(err, -ENOMEM, "raft: out of memory");
	}
	r->prev_ss = (struct keel_raft_soft_state){0, KEEL_RAFT_FOLLOWER};
	raft_become_follower(r, r->term);
	*ret = r;
	return 0;
}

void keel_raft_free(struct keel_raft *r)
{
	if (!r)
		return;
	raft_free_msgs(r->msgs, r->n_msgs);
	raft_free_msgs(r->rd_msgs, r->n_rd_msgs);
	keel_free(r->msgs);
	keel_free(r->rd_msgs);
	keel_free(r->read_states);
	keel_free(r->rd_reads);
	keel_free(r->rd_entries);
	keel_free(r->rd_committed);
	keel_free(r->reads);
	keel_free(r->fwd_reads);
	keel_free(r->prs[0].inflight);
	raft_log_close(&r->log);
	keel_free(r);
}

int keel_raft_restore(struct keel_raft *r, const struct keel_raft_snapshot_meta *snap,
		      const struct keel_raft_entry *entries, size_t n,
		      const struct keel_raft_hard_state *hs, uint64_t applied, struct keel_err *err)
{
	if (r->log.n || r->log.prev_index || r->term > 0)
		return keel_err_set(err, -EINVAL, "raft: restore needs a node created without state");
	if (snap && check_conf(&snap->conf) < 0)
		return keel_err_set(err, -EINVAL, "raft: snapshot %llu has an invalid configuration",
				    (unsigned long long)snap->index);
	uint64_t prev_index = snap ? snap->index : 0, prev_term = snap ? snap->term : 0;
	uint64_t no_data = 0; /* the last entry that came without its data */
	for (size_t i = 0; i < n; i++) {
		const struct keel_raft_entry *e = &entries[i];
		if (e->index != prev_index + 1 + i || e->term < (i ? entries[i - 1].term : prev_term))
			return keel_err_set(err, -EINVAL, "raft: entry %zu (index %llu) does not follow the log",
					    i, (unsigned long long)e->index);
		if (e->len && !e->data)
			no_data = e->index;
	}
	uint64_t last = prev_index + n;
	if (hs && hs->commit > last)
		return keel_err_set(err, -EINVAL, "raft: commit index %llu is beyond the last entry %llu",
				    (unsigned long long)hs->commit, (unsigned long long)last);
	uint64_t committed = hs ? KEEL_MAX(hs->commit, prev_index) : prev_index;
	applied = KEEL_MIN(KEEL_MAX(applied, prev_index), committed);
	/* Entries without their data: applied ones only, never a configuration change, and only
	 * with a storage to read them back from. */
	for (size_t i = 0; no_data && i < n; i++) {
		const struct keel_raft_entry *e = &entries[i];
		if (e->len && !e->data && (!r->cfg.read_entries || e->index > applied ||
					   e->type == KEEL_RAFT_ENTRY_CONF))
			return keel_err_set(err, -EINVAL, "raft: entry %zu (index %llu) has no data",
					    i, (unsigned long long)e->index);
	}

	/* Entries the state machine already holds are stable and applied: with a storage to read
	 * them back from, those that eviction would drop at once never come into memory (a
	 * restart after 100,000 writes would otherwise copy them all). */
	uint64_t upto = prev_index;
	if (r->cfg.read_entries) {
		if (last > r->cfg.mem_entries)
			upto = KEEL_MAX(upto, KEEL_MIN(applied, last - r->cfg.mem_entries));
		upto = KEEL_MAX(upto, no_data);
		uint64_t bytes = 0;
		for (uint64_t i = upto + 1; i <= last; i++)
			bytes += entries[i - prev_index - 1].len;
		while (upto < applied && bytes > r->cfg.mem_bytes)
			bytes -= entries[upto++ - prev_index].len;
	}

	if (snap) {
		raft_log_reset(&r->log, snap->index, snap->term);
		r->snap = *snap;
		r->base_conf = snap->conf;
	}
	for (size_t i = 0; i < n; i++) {
		const struct keel_raft_entry *e = &entries[i];
		int rc;
		if (e->index <= upto) {
			rc = raft_log_skip(&r->log, e->term);
			struct keel_raft_conf_change cc;
			if (rc == 0 && e->type == KEEL_RAFT_ENTRY_CONF &&
			    keel_raft_conf_change_decode(e->data, e->len, &cc) == 0)
				raft_conf_apply(&r->base_conf, &cc);
		} else {
			rc = raft_log_append_copy(&r->log, e);
		}
		if (rc < 0) {
			raft_log_reset(&r->log, 0, 0);
			return keel_err_set(err, -ENOMEM, "raft: out of memory");
		}
	}
	r->log.stable = last;
	if (hs) {
		r->term = hs->term;
		r->vote = hs->vote;
		r->prev_hs = *hs;
	}
	r->log.committed = committed;
	r->log.applied = applied;
	raft_rebuild_conf(r);
	keel_raft_id vote = r->vote;
	raft_become_follower(r, r->term);
	r->vote = vote;
	return 0;
}

bool keel_raft_has_ready(const struct keel_raft *r)
{
	if (r->in_ready)
		return false;
	struct keel_raft_hard_state hs = {r->term, r->vote, r->log.committed};
	if (memcmp(&hs, &r->prev_hs, sizeof(hs)) != 0 || r->leader != r->prev_ss.leader ||
	    r->role != r->prev_ss.role)
		return true;
	if (r->has_snapshot_to_install || r->n_msgs || r->n_read_states)
		return true;
	if (raft_log_last(&r->log) > r->log.stable || r->log.committed > r->log.applied)
		return true;
	if (r->role == KEEL_RAFT_LEADER) {
		/* Entries that peers can take now count as ready work: flush sends them. */
		for (unsigned i = 0; i < KEEL_RAFT_MAX_NODES; i++) {
			const struct progress *p = &r->prs[i];
			if (p->id == 0 || p->id == r->cfg.id || p->next > raft_log_last(&r->log))
				continue;
			if ((p->state == PR_PROBE && !p->probe_sent) ||
			    (p->state == PR_REPLICATE && p->in_count < r->cfg.max_inflight))
				return true;
		}
	}
	return false;
}

/* Copy log entries [from, to] (struct copies; the data stays in the log) into *arr. */
static int copy_range(struct keel_raft *r, uint64_t from, uint64_t to, struct keel_raft_entry **arr,
		      size_t *cap)
{
	size_t n = (size_t)(to - from + 1);
	if (n > *cap) {
		struct keel_raft_entry *a = keel_reallocarray(*arr, n, sizeof(**arr));
		if (!a)
			return -ENOMEM;
		*arr = a;
		*cap = n;
	}
	keel_assert(from >= raft_log_mem_first(&r->log)); /* only persisted, applied ones leave memory */
	memcpy(*arr, raft_log_at(&r->log, from), n * sizeof(**arr));
	return 0;
}

bool keel_raft_ready(struct keel_raft *r, struct keel_raft_ready *rd)
{
	keel_assert(!r->in_ready);
	raft_flush(r);
	memset(rd, 0, sizeof(*rd));
	if (!keel_raft_has_ready(r))
		return false;

	rd->soft_state = (struct keel_raft_soft_state){r->leader, r->role};
	rd->soft_state_changed = r->leader != r->prev_ss.leader || r->role != r->prev_ss.role;
	rd->hard_state = (struct keel_raft_hard_state){r->term, r->vote, r->log.committed};
	rd->hard_state_changed = memcmp(&rd->hard_state, &r->prev_hs, sizeof(rd->hard_state)) != 0;

	r->rd_has_install = r->has_snapshot_to_install;
	if (r->has_snapshot_to_install) {
		r->rd_install = r->install;
		rd->snapshot = &r->rd_install;
		r->has_snapshot_to_install = false;
	}
	uint64_t last = raft_log_last(&r->log);
	r->rd_last_entry = 0;
	if (last > r->log.stable && copy_range(r, r->log.stable + 1, last, &r->rd_entries, &r->cap_rd_entries) == 0) {
		rd->entries = r->rd_entries;
		rd->n_entries = (size_t)(last - r->log.stable);
		r->rd_last_entry = last;
	}
	r->rd_last_committed = 0;
	if (r->log.committed > r->log.applied &&
	    copy_range(r, r->log.applied + 1, r->log.committed, &r->rd_committed, &r->cap_rd_committed) == 0) {
		rd->committed = r->rd_committed;
		rd->n_committed = (size_t)(r->log.committed - r->log.applied);
		r->rd_last_committed = r->log.committed;
	}

	/* Hand the queued messages and reads over, and start new queues. */
	struct keel_raft_msg *m = r->rd_msgs;
	size_t mcap = r->cap_rd_msgs;
	r->rd_msgs = r->msgs;
	r->cap_rd_msgs = r->cap_msgs;
	r->n_rd_msgs = r->n_msgs;
	r->msgs = m;
	r->cap_msgs = mcap;
	r->n_msgs = 0;
	rd->msgs = r->rd_msgs;
	rd->n_msgs = r->n_rd_msgs;
	/* A snapshot message names the newest snapshot the driver holds now: it may have taken a
	 * newer one since the message was queued, and a newer one always serves. */
	for (size_t i = 0; i < rd->n_msgs; i++)
		if (rd->msgs[i].type == KEEL_RAFT_MSG_SNAPSHOT)
			rd->msgs[i].snapshot = r->snap;

	struct keel_raft_read_state *rs = r->rd_reads;
	size_t rcap = r->cap_rd_reads;
	r->rd_reads = r->read_states;
	r->cap_rd_reads = r->cap_read_states;
	rd->reads = r->rd_reads;
	rd->n_reads = r->n_read_states;
	r->read_states = rs;
	r->cap_read_states = rcap;
	r->n_read_states = 0;

	rd->must_sync = rd->snapshot || rd->n_entries || rd->hard_state.term != r->prev_hs.term ||
			rd->hard_state.vote != r->prev_hs.vote;
	r->prev_ss = rd->soft_state;
	r->in_ready = true;
	r->trunc_since_ready = UINT64_MAX;
	raft_log_grave_rotate(&r->log);
	return true;
}

/* With a storage to read them back from, entries that are persisted and applied leave memory
 * once they are mem_entries behind the newest, or sooner while memory holds more than mem_bytes
 * of entry data. The configuration before the first entry in memory follows them. */
static void evict(struct keel_raft *r)
{
	struct raft_log *l = &r->log;
	if (!r->cfg.read_entries)
		return;
	uint64_t limit = KEEL_MIN(l->stable, l->applied);
	uint64_t first = raft_log_mem_first(l), last = raft_log_last(l);
	if (limit < first)
		return;
	uint64_t upto = first - 1;
	if (last > r->cfg.mem_entries)
		upto = KEEL_MAX(upto, KEEL_MIN(limit, last - r->cfg.mem_entries));
	uint64_t bytes = l->mem_bytes;
	for (uint64_t i = first; i <= upto; i++)
		bytes -= raft_log_at(l, i)->len;
	while (upto < limit && bytes > r->cfg.mem_bytes)
		bytes -= raft_log_at(l, ++upto)->len;
	if (upto < first)
		return;
	struct keel_raft_conf base = r->base_conf;
	for (uint64_t i = first; i <= upto; i++) {
		const struct keel_raft_entry *e = raft_log_at(l, i);
		struct keel_raft_conf_change cc;
		if (e->type == KEEL_RAFT_ENTRY_CONF && keel_raft_conf_change_decode(e->data, e->len, &cc) == 0)
			raft_conf_apply(&base, &cc);
	}
	if (raft_log_evict(l, upto) == 0) /* else out of memory: they stay until the next try */
		r->base_conf = base;
}

void keel_raft_advance(struct keel_raft *r, const struct keel_raft_ready *rd)
{
	keel_assert(r->in_ready);
	r->prev_hs = rd->hard_state;
	if (r->rd_last_entry) {
		/* What was persisted is on disk, except the part a new leader has since replaced:
		 * that is handed out again by the next ready. */
		uint64_t persisted = r->rd_last_entry;
		if (r->trunc_since_ready <= persisted)
			persisted = r->trunc_since_ready - 1;
		persisted = KEEL_MIN(persisted, raft_log_last(&r->log));
		if (persisted > r->log.stable)
			r->log.stable = persisted;
	}
	if (r->rd_last_committed > r->log.applied)
		r->log.applied = r->rd_last_committed;

	raft_free_msgs(r->rd_msgs, r->n_rd_msgs);
	r->n_rd_msgs = 0;
	r->in_ready = false;
	raft_log_bury(&r->log);
	evict(r);
	raft_leader_persisted(r);
}

/* The configuration as of index (mem_first - 1 <= index <= last), from the base and the conf
 * entries up to it. */
static void conf_at(const struct keel_raft *r, uint64_t index, struct keel_raft_conf *ret)
{
	*ret = r->base_conf;
	for (uint64_t i = raft_log_mem_first(&r->log); i <= index; i++) {
		const struct keel_raft_entry *e = raft_log_at(&r->log, i);
		struct keel_raft_conf_change cc;
		if (e->type == KEEL_RAFT_ENTRY_CONF && keel_raft_conf_change_decode(e->data, e->len, &cc) == 0)
			raft_conf_apply(ret, &cc);
	}
}

int keel_raft_snapshot_meta_at(const struct keel_raft *r, uint64_t index, struct keel_raft_snapshot_meta *ret)
{
	if (index > r->log.applied || index < r->log.prev_index || index == 0 ||
	    index + 1 < raft_log_mem_first(&r->log))
		return -EINVAL;
	bool ok;
	uint64_t term = raft_log_term(&r->log, index, &ok);
	if (!ok)
		return -EINVAL;
	*ret = (struct keel_raft_snapshot_meta){.index = index, .term = term};
	conf_at(r, index, &ret->conf);
	return 0;
}

int keel_raft_compact(struct keel_raft *r, uint64_t index, uint64_t keep)
{
	if (index > r->log.applied)
		return -EINVAL;
	if (index <= r->snap.index)
		return 0;
	struct keel_raft_snapshot_meta meta;
	if (keel_raft_snapshot_meta_at(r, index, &meta) < 0)
		return -EINVAL;
	r->snap = meta;
	/* Drop the log up to `keep` entries before the snapshot point. */
	uint64_t cut = index > keep ? index - keep : 0;
	if (cut > r->log.prev_index) {
		/* base_conf is the configuration just before the first entry in memory: it moves
		 * only if entries in memory go. */
		if (cut >= raft_log_mem_first(&r->log))
			conf_at(r, cut, &r->base_conf);
		raft_log_drop_before(&r->log, cut + 1);
	}
	return 0;
}

keel_raft_id keel_raft_id_of(const struct keel_raft *r) { return r->cfg.id; }
enum keel_raft_role keel_raft_role(const struct keel_raft *r) { return r->role; }
keel_raft_id keel_raft_leader(const struct keel_raft *r) { return r->leader; }
uint64_t keel_raft_term(const struct keel_raft *r) { return r->term; }
uint64_t keel_raft_commit_index(const struct keel_raft *r) { return r->log.committed; }
uint64_t keel_raft_applied_index(const struct keel_raft *r) { return r->log.applied; }
uint64_t keel_raft_last_index(const struct keel_raft *r) { return raft_log_last(&r->log); }
uint64_t keel_raft_first_index(const struct keel_raft *r) { return raft_log_first(&r->log); }
uint64_t keel_raft_mem_first_index(const struct keel_raft *r) { return raft_log_mem_first(&r->log); }

bool keel_raft_term_at(const struct keel_raft *r, uint64_t index, uint64_t *term)
{
	bool ok;
	*term = raft_log_term(&r->log, index, &ok);
	return ok;
}
const struct keel_raft_conf *keel_raft_conf(const struct keel_raft *r) { return &r->conf; }
const struct keel_raft_snapshot_meta *keel_raft_snapshot(const struct keel_raft *r) { return &r->snap; }

const struct keel_raft_entry *keel_raft_entry_at(const struct keel_raft *r, uint64_t index)
{
	return raft_log_at(&r->log, index);
}

uint64_t keel_raft_peer_match(const struct keel_raft *r, keel_raft_id peer)
{
	if (r->role != KEEL_RAFT_LEADER)
		return 0;
	for (unsigned i = 0; i < KEEL_RAFT_MAX_NODES; i++)
		if (r->prs[i].id == peer && peer != 0)
			return peer == r->cfg.id ? r->log.stable : r->prs[i].match;
	return 0;
}

const char *keel_raft_role_name(enum keel_raft_role role)
{
	static const char *const names[] = {"follower", "pre-candidate", "candidate", "leader"};
	return (unsigned)role < KEEL_ARRAY_SIZE(names) ? names[role] : "?";
}

const char *keel_raft_msg_type_name(enum keel_raft_msg_type type)
{
	static const char *const names[KEEL_RAFT_MSG__MAX] = {
		[KEEL_RAFT_MSG_PREVOTE] = "prevote", [KEEL_RAFT_MSG_PREVOTE_RESP] = "prevote-resp",
		[KEEL_RAFT_MSG_VOTE] = "vote", [KEEL_RAFT_MSG_VOTE_RESP] = "vote-resp",
		[KEEL_RAFT_MSG_APPEND] = "append", [KEEL_RAFT_MSG_APPEND_RESP] = "append-resp",
		[KEEL_RAFT_MSG_HEARTBEAT] = "heartbeat", [KEEL_RAFT_MSG_HEARTBEAT_RESP] = "heartbeat-resp",
		[KEEL_RAFT_MSG_SNAPSHOT] = "snapshot", [KEEL_RAFT_MSG_TIMEOUT_NOW] = "timeout-now",
		[KEEL_RAFT_MSG_READ_INDEX] = "read-index", [KEEL_RAFT_MSG_READ_INDEX_RESP] = "read-index-resp",
		[KEEL_RAFT_MSG_PROPOSE] = "propose",
	};
	return (unsigned)type < KEEL_RAFT_MSG__MAX && names[type] ? names[type] : "?";
}
