/* The protocol: elections, replication, commitment, reads and transfers. Everything here reacts
 * to one input (a tick, a message, a request) and queues messages for the next ready. */
#include <errno.h>
#include <string.h>

#include "base/mem.h"
#include "raft/raft-internal.h"

/* ---- small helpers ---- */

static uint64_t rng_next(struct keel_raft *r)
{
	/* splitmix64: tiny, good enough for timeouts, and fully determined by the seed. */
	uint64_t z = (r->rng += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* May this node start elections? A voter of its latest configuration may; so may a node that
 * the latest, still uncommitted, change removes: until that change commits it may be needed to
 * elect a leader that can commit it (Raft thesis §4.2.2). */
static bool promotable(const struct keel_raft *r)
{
	if (raft_is_voter(r, r->cfg.id))
		return true;
	return r->pending_conf_index > r->log.committed &&
	       keel_raft_conf_has_voter(&r->prev_conf, r->cfg.id);
}

static struct progress *self_progress(struct keel_raft *r)
{
	return raft_progress(r, r->cfg.id);
}

#define FOR_EACH_PEER(r, p)                                                       \
	for (struct progress *p = (r)->prs; p < (r)->prs + KEEL_RAFT_MAX_NODES; p++) \
		if (p->id != 0 && p->id != (r)->cfg.id)

static void push_read_state(struct keel_raft *r, uint64_t context, uint64_t index, bool ok)
{
	if (r->n_read_states == r->cap_read_states) {
		size_t cap = r->cap_read_states ? r->cap_read_states * 2 : 16;
		struct keel_raft_read_state *n = keel_reallocarray(r->read_states, cap, sizeof(*n));
		if (!n)
			return; /* the driver's request times out, as if the answer was lost */
		r->read_states = n;
		r->cap_read_states = cap;
	}
	r->read_states[r->n_read_states++] = (struct keel_raft_read_state){context, index, ok};
}

static void free_msg(struct keel_raft_msg *m)
{
	if (m->type == KEEL_RAFT_MSG_PROPOSE)
		for (uint32_t i = 0; i < m->n_entries; i++)
			keel_free(m->entries[i].data);
	keel_free(m->entries);
	m->entries = NULL;
	m->n_entries = 0;
}

void raft_send(struct keel_raft *r, struct keel_raft_msg *m)
{
	m->from = r->cfg.id;
	if (r->n_msgs == r->cap_msgs) {
		size_t cap = r->cap_msgs ? r->cap_msgs * 2 : 32;
		struct keel_raft_msg *n = keel_reallocarray(r->msgs, cap, sizeof(*n));
		if (!n) {
			/* Dropping an outgoing message is always safe in Raft: the network may
			 * lose it anyway, and the protocol retries. */
			free_msg(m);
			return;
		}
		r->msgs = n;
		r->cap_msgs = cap;
	}
	r->msgs[r->n_msgs++] = *m;
}

void raft_free_msgs(struct keel_raft_msg *msgs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free_msg(&msgs[i]);
}

/* ---- progress (leader's view of each peer) ---- */

static bool pr_paused(const struct keel_raft *r, const struct progress *p)
{
	switch (p->state) {
	case PR_PROBE: return p->probe_sent;
	case PR_REPLICATE: return p->in_count >= r->cfg.max_inflight;
	default: return true;
	}
}

static void pr_reset_inflight(struct progress *p)
{
	p->in_start = p->in_count = 0;
}

static void pr_become_probe(struct progress *p)
{
	if (p->state == PR_SNAPSHOT) {
		uint64_t pending = p->pending_snapshot;
		p->next = KEEL_MAX(p->match + 1, pending + 1);
	} else {
		p->next = p->match + 1;
	}
	p->state = PR_PROBE;
	p->pending_snapshot = 0;
	p->probe_sent = false;
	pr_reset_inflight(p);
}

static void pr_become_replicate(struct progress *p)
{
	p->state = PR_REPLICATE;
	p->next = p->match + 1;
	p->probe_sent = false;
	pr_reset_inflight(p);
}

static void pr_become_snapshot(struct progress *p, uint64_t index)
{
	p->state = PR_SNAPSHOT;
	p->pending_snapshot = index;
	p->snapshot_elapsed = 0;
	pr_reset_inflight(p);
}

static void inflight_add(struct keel_raft *r, struct progress *p, uint64_t last)
{
	keel_assert(p->in_count < r->cfg.max_inflight);
	p->inflight[(p->in_start + p->in_count) % r->cfg.max_inflight] = last;
	p->in_count++;
}

/* Forget the appends up to `index`: acknowledged. */
static void inflight_free_to(struct keel_raft *r, struct progress *p, uint64_t index)
{
	while (p->in_count && p->inflight[p->in_start] <= index) {
		p->in_start = (p->in_start + 1) % r->cfg.max_inflight;
		p->in_count--;
	}
}

/* ---- role changes ---- */

static void drop_reads(struct keel_raft *r)
{
	for (size_t i = 0; i < r->n_reads; i++)
		if (r->reads[i].from == 0)
			push_read_state(r, r->reads[i].context, 0, false);
	r->n_reads = 0;
}

static void drop_forwarded_reads(struct keel_raft *r)
{
	for (size_t i = 0; i < r->n_fwd; i++)
		push_read_state(r, r->fwd_reads[i], 0, false);
	r->n_fwd = 0;
}

static void reset(struct keel_raft *r, uint64_t term)
{
	if (term != r->term) {
		r->term = term;
		r->vote = 0;
		/* The leader may change with the term: answers to forwarded reads may never come. */
		drop_forwarded_reads(r);
	}
	r->leader = 0;
	r->election_elapsed = 0;
	r->heartbeat_elapsed = 0;
	r->randomized_timeout = r->cfg.election_ticks + (unsigned)(rng_next(r) % r->cfg.election_ticks);
	r->transferee = 0;
	r->committed_in_term = false;
	drop_reads(r);
	uint64_t last = raft_log_last(&r->log);
	for (unsigned i = 0; i < KEEL_RAFT_MAX_NODES; i++) {
		struct progress *p = &r->prs[i];
		if (p->id == 0)
			continue;
		p->state = PR_PROBE;
		p->match = p->id == r->cfg.id ? r->log.stable : 0;
		p->next = last + 1;
		p->probe_sent = false;
		p->pending_snapshot = 0;
		p->recent_active = true;
		p->read_ack = 0;
		p->vote_responded = p->vote_granted = false;
		pr_reset_inflight(p);
	}
}

static void become_follower(struct keel_raft *r, uint64_t term, keel_raft_id leader)
{
	reset(r, term);
	r->role = KEEL_RAFT_FOLLOWER;
	r->leader = leader;
}

static void become_pre_candidate(struct keel_raft *r)
{
	/* A pre-candidate changes neither its term nor its vote (§9.6): a node that cannot win
	 * does not disturb the cluster. */
	r->role = KEEL_RAFT_PRE_CANDIDATE;
	r->leader = 0;
	drop_reads(r);
	/* Reads forwarded to the leader we lost may never be answered, and the term that would
	 * drop them stays the same while we cannot win (a partitioned follower). */
	drop_forwarded_reads(r);
	for (unsigned i = 0; i < KEEL_RAFT_MAX_NODES; i++)
		r->prs[i].vote_responded = r->prs[i].vote_granted = false;
}

static void become_candidate(struct keel_raft *r)
{
	reset(r, r->term + 1);
	r->vote = r->cfg.id;
	r->role = KEEL_RAFT_CANDIDATE;
}

static void flush_appends(struct keel_raft *r);

static void become_leader(struct keel_raft *r)
{
	reset(r, r->term);
	r->role = KEEL_RAFT_LEADER;
	r->leader = r->cfg.id;
	r->uncommitted_bytes = 0;
	/* The no-op (§3.6.2, §6.4): commits every earlier entry through an entry of this term,
	 * which is also what reads and membership changes wait for. */
	if (raft_log_append_own(&r->log, r->term, KEEL_RAFT_ENTRY_NORMAL, NULL, 0) < 0) {
		/* Without the no-op this leader could never commit; let another node lead. */
		become_follower(r, r->term, 0);
	}
}

/* ---- elections ---- */

enum poll_result { POLL_PENDING, POLL_WON, POLL_LOST };

static enum poll_result poll(struct keel_raft *r, keel_raft_id id, bool granted)
{
	struct progress *p = raft_progress(r, id);
	if (p && !p->vote_responded) {
		p->vote_responded = true;
		p->vote_granted = granted;
	}
	unsigned yes = 0, no = 0;
	for (uint32_t i = 0; i < r->conf.n_voters; i++) {
		struct progress *v = raft_progress(r, r->conf.voters[i]);
		if (v && v->vote_responded)
			v->vote_granted ? yes++ : no++;
	}
	unsigned q = raft_conf_quorum(&r->conf);
	if (yes >= q)
		return POLL_WON;
	if (no > r->conf.n_voters - q)
		return POLL_LOST;
	return POLL_PENDING;
}

static void campaign(struct keel_raft *r, bool pre, bool transfer)
{
	if (!promotable(r))
		return;
	enum keel_raft_msg_type type;
	uint64_t vote_term;
	if (pre) {
		become_pre_candidate(r);
		type = KEEL_RAFT_MSG_PREVOTE;
		vote_term = r->term + 1;
	} else {
		become_candidate(r);
		type = KEEL_RAFT_MSG_VOTE;
		vote_term = r->term;
	}
	if (poll(r, r->cfg.id, true) == POLL_WON) {
		if (pre)
			campaign(r, false, transfer);
		else
			become_leader(r);
		return;
	}
	for (uint32_t i = 0; i < r->conf.n_voters; i++) {
		keel_raft_id id = r->conf.voters[i];
		if (id == r->cfg.id)
			continue;
		struct keel_raft_msg m = {
			.type = type, .to = id, .term = vote_term, .index = raft_log_last(&r->log),
			.log_term = raft_log_last_term(&r->log), .transfer = transfer,
		};
		raft_send(r, &m);
	}
}

void keel_raft_campaign(struct keel_raft *r)
{
	if (r->role != KEEL_RAFT_LEADER)
		campaign(r, r->cfg.pre_vote, false);
}

/* ---- replication ---- */

static void commit_to(struct keel_raft *r, uint64_t index)
{
	if (index <= r->log.committed)
		return;
	keel_assert(index <= raft_log_last(&r->log));
	r->log.committed = index;
}

static bool send_snapshot(struct keel_raft *r, struct progress *p)
{
	if (r->snap.index == 0)
		return false;
	struct keel_raft_msg m = {
		.type = KEEL_RAFT_MSG_SNAPSHOT, .to = p->id, .term = r->term,
		.snapshot = r->snap, .early = true,
	};
	pr_become_snapshot(p, r->snap.index);
	raft_send(r, &m);
	return true;
}

/* Entries from lo on that are no longer in memory, through the driver's storage: checked against
 * the terms the core kept, their data handed to the grave (freed once the message is gone).
 * 0, or the storage's error (-EIO as well for entries that do not fit the log). */
static int read_back(struct keel_raft *r, uint64_t lo, uint64_t hi, struct keel_raft_entry **ret,
		     uint32_t *ret_n)
{
	hi = KEEL_MIN(hi, lo + UINT32_MAX / 2);
	struct keel_raft_entry *ents = NULL;
	size_t n = 0;
	void *data = NULL;
	int rc = r->cfg.read_entries(r->cfg.read_ud, lo, hi, r->cfg.max_msg_bytes, &ents, &n, &data);
	if (rc < 0)
		return rc;
	raft_log_free_data(&r->log, data);
	bool good = ents && n >= 1 && n <= hi - lo + 1;
	for (size_t k = 0; good && k < n; k++) {
		bool ok;
		const struct keel_raft_entry *e = &ents[k];
		good = e->index == lo + k && raft_log_term(&r->log, e->index, &ok) == e->term && ok &&
		       (e->len == 0 || e->data) && e->type <= KEEL_RAFT_ENTRY_CONF;
	}
	if (!good) {
		/* Never send what the log does not hold: a broken storage is the driver's to fix. */
		keel_free(ents);
		return -EIO;
	}
	*ret = ents;
	*ret_n = (uint32_t)n;
	return 0;
}

/* Send what pr needs next. Returns true if a message went out. */
static bool send_append(struct keel_raft *r, struct progress *p, bool send_if_empty)
{
	if (pr_paused(r, p))
		return false;
	uint64_t prev = p->next - 1;
	bool ok;
	uint64_t prev_term = raft_log_term(&r->log, prev, &ok);
	if (!ok) {
		/* What it needs is compacted away: it gets the snapshot instead (§5.3). */
		return send_snapshot(r, p);
	}
	uint64_t last = raft_log_last(&r->log);
	uint64_t mem_first = raft_log_mem_first(&r->log);
	struct keel_raft_entry *ents = NULL;
	uint32_t n = 0;
	if (p->next <= last && p->next < mem_first) {
		/* Evicted from memory: read back from the driver's storage. */
		int rc = read_back(r, p->next, mem_first - 1, &ents, &n);
		if (rc == -ENOENT && r->snap.index >= p->next)
			return send_snapshot(r, p); /* the storage compacted them too */
		if (rc < 0) {
			/* Try again when the peer next answers a heartbeat. */
			if (p->state == PR_REPLICATE)
				pr_become_probe(p);
			p->probe_sent = true;
			return false;
		}
	} else {
		size_t bytes = 0;
		for (uint64_t i = p->next; i <= last; i++) {
			const struct keel_raft_entry *e = raft_log_at(&r->log, i);
			if (n > 0 && bytes + e->len > r->cfg.max_msg_bytes)
				break;
			bytes += e->len;
			n++;
		}
		if (n > 0) {
			ents = keel_reallocarray(NULL, n, sizeof(*ents));
			if (!ents)
				return false;
			/* Shallow copies: the data stays in the log, whose frees are deferred
			 * while messages may point at it. */
			memcpy(ents, raft_log_at(&r->log, p->next), n * sizeof(*ents));
		}
	}
	if (n == 0 && !send_if_empty)
		return false;
	struct keel_raft_msg m = {
		.type = KEEL_RAFT_MSG_APPEND, .to = p->id, .term = r->term, .index = prev,
		.log_term = prev_term, .commit = r->log.committed, .early = true,
		.entries = ents, .n_entries = n,
	};
	if (n > 0) {
		if (p->state == PR_REPLICATE) {
			uint64_t sent_last = p->next + n - 1;
			p->next = sent_last + 1;
			inflight_add(r, p, sent_last);
		} else {
			p->probe_sent = true;
		}
	} else if (p->state == PR_PROBE) {
		p->probe_sent = true;
	}
	raft_send(r, &m);
	return true;
}

/* Leader: send every peer what it can take now. Called when a ready is built, so proposals
 * that arrived since the last one travel together (batching). */
static void flush_appends(struct keel_raft *r)
{
	if (r->role != KEEL_RAFT_LEADER)
		return;
	FOR_EACH_PEER(r, p) {
		while (send_append(r, p, false))
			if (p->state != PR_REPLICATE)
				break;
	}
}

static void bcast_append(struct keel_raft *r)
{
	FOR_EACH_PEER(r, p) {
		send_append(r, p, true);
	}
}

static void bcast_heartbeat(struct keel_raft *r, uint64_t context)
{
	FOR_EACH_PEER(r, p) {
		/* Never tell a follower to commit past what it is known to hold (§3.5). */
		struct keel_raft_msg m = {
			.type = KEEL_RAFT_MSG_HEARTBEAT, .to = p->id, .term = r->term,
			.commit = KEEL_MIN(p->match, r->log.committed), .context = context, .early = true,
		};
		raft_send(r, &m);
	}
}

static void release_reads(struct keel_raft *r);
static void start_waiting_reads(struct keel_raft *r);

/* Advance the commit index to what a quorum of voters holds, but only through an entry of the
 * current term (§3.6.2: never commit an older term's entry by counting replicas). */
static bool maybe_commit(struct keel_raft *r)
{
	uint64_t matches[KEEL_RAFT_MAX_NODES];
	unsigned n = 0;
	for (uint32_t i = 0; i < r->conf.n_voters; i++) {
		struct progress *p = raft_progress(r, r->conf.voters[i]);
		matches[n++] = p ? (p->id == r->cfg.id ? r->log.stable : p->match) : 0;
	}
	if (n == 0)
		return false;
	for (unsigned i = 1; i < n; i++) { /* sort descending; n <= 16 */
		uint64_t v = matches[i];
		unsigned j = i;
		while (j > 0 && matches[j - 1] < v) {
			matches[j] = matches[j - 1];
			j--;
		}
		matches[j] = v;
	}
	uint64_t candidate = matches[raft_conf_quorum(&r->conf) - 1];
	if (candidate <= r->log.committed)
		return false;
	bool ok;
	if (raft_log_term(&r->log, candidate, &ok) != r->term || !ok)
		return false;
	commit_to(r, candidate);
	if (!r->committed_in_term) {
		r->committed_in_term = true;
		start_waiting_reads(r);
	}
	/* Uncommitted bytes shrink as entries commit. */
	r->uncommitted_bytes = 0;
	for (uint64_t i = r->log.committed + 1; i <= raft_log_last(&r->log); i++)
		r->uncommitted_bytes += raft_log_at(&r->log, i)->len;
	/* A leader that is no longer a voter steps down once its removal is committed (§4.2.2). */
	if (!promotable(r) && r->log.committed >= r->pending_conf_index) {
		become_follower(r, r->term, 0);
		return true;
	}
	return true;
}

void raft_leader_persisted(struct keel_raft *r)
{
	if (r->role != KEEL_RAFT_LEADER)
		return;
	struct progress *self = self_progress(r);
	if (self)
		self->match = r->log.stable;
	if (maybe_commit(r) && r->role == KEEL_RAFT_LEADER)
		bcast_append(r);
	release_reads(r);
}

/* ---- ReadIndex (§6.4) ---- */

static bool quorum_acked(struct keel_raft *r, uint64_t round)
{
	unsigned acks = 0;
	for (uint32_t i = 0; i < r->conf.n_voters; i++) {
		keel_raft_id id = r->conf.voters[i];
		struct progress *p = raft_progress(r, id);
		if (id == r->cfg.id || (p && p->read_ack >= round))
			acks++;
	}
	return acks >= raft_conf_quorum(&r->conf);
}

static void answer_read(struct keel_raft *r, const struct read_req *q)
{
	if (q->from == 0) {
		push_read_state(r, q->context, q->index, true);
		return;
	}
	struct keel_raft_msg m = {
		.type = KEEL_RAFT_MSG_READ_INDEX_RESP, .to = q->from, .term = r->term,
		.index = q->index, .context = q->context,
	};
	raft_send(r, &m);
}

/* Answer, in order, the reads whose heartbeat round a quorum acknowledged: this leader was
 * still the leader when they arrived, so their index is safe to read at. */
static void release_reads(struct keel_raft *r)
{
	size_t done = 0;
	while (done < r->n_reads) {
		struct read_req *q = &r->reads[done];
		if (q->round == 0 || !quorum_acked(r, q->round))
			break;
		answer_read(r, q);
		done++;
	}
	if (done) {
		memmove(r->reads, r->reads + done, (r->n_reads - done) * sizeof(*r->reads));
		r->n_reads -= done;
	}
}

/* The leader's first commit in its term: reads that waited for it get an index and a round. */
static void start_waiting_reads(struct keel_raft *r)
{
	bool any = false;
	for (size_t i = 0; i < r->n_reads; i++) {
		if (r->reads[i].round == 0) {
			if (!any)
				r->read_round++;
			any = true;
			r->reads[i].index = r->log.committed;
			r->reads[i].round = r->read_round;
		}
	}
	if (any) {
		bcast_heartbeat(r, r->read_round);
		release_reads(r);
	}
}

static int leader_read(struct keel_raft *r, uint64_t context, keel_raft_id from)
{
	if (r->n_reads == r->cap_reads) {
		size_t cap = r->cap_reads ? r->cap_reads * 2 : 16;
		struct read_req *n = keel_reallocarray(r->reads, cap, sizeof(*n));
		if (!n)
			return -ENOMEM;
		r->reads = n;
		r->cap_reads = cap;
	}
	struct read_req *q = &r->reads[r->n_reads++];
	*q = (struct read_req){.context = context, .from = from};
	if (r->committed_in_term) {
		q->index = r->log.committed;
		q->round = ++r->read_round;
		if (r->conf.n_voters > 1 || !promotable(r))
			bcast_heartbeat(r, q->round);
		release_reads(r);
	}
	return 0;
}

int keel_raft_read_index(struct keel_raft *r, uint64_t context)
{
	if (r->role == KEEL_RAFT_LEADER)
		return leader_read(r, context, 0);
	if (r->leader == 0)
		return -KEEL_ENOT_LEADER;
	if (r->n_fwd == r->cap_fwd) {
		size_t cap = r->cap_fwd ? r->cap_fwd * 2 : 16;
		uint64_t *n = keel_reallocarray(r->fwd_reads, cap, sizeof(*n));
		if (!n)
			return -ENOMEM;
		r->fwd_reads = n;
		r->cap_fwd = cap;
	}
	r->fwd_reads[r->n_fwd++] = context;
	struct keel_raft_msg m = {
		.type = KEEL_RAFT_MSG_READ_INDEX, .to = r->leader, .term = r->term, .context = context,
	};
	raft_send(r, &m);
	return 0;
}

/* ---- proposals ---- */

static int append_local(struct keel_raft *r, uint8_t type, const void *data, size_t len)
{
	if (len > UINT32_MAX)
		return -EINVAL;
	if (r->uncommitted_bytes > 0 && r->uncommitted_bytes + len > r->cfg.max_batch_bytes)
		return -EBUSY;
	void *copy = NULL;
	if (len) {
		copy = keel_memdup(data, len);
		if (!copy)
			return -ENOMEM;
	}
	int rc = raft_log_append_own(&r->log, r->term, type, copy, (uint32_t)len);
	if (rc < 0)
		return rc;
	r->uncommitted_bytes += len;
	return 0;
}

/* A follower sends a proposal (one entry of the given type) to the leader it knows. */
static int forward_proposal(struct keel_raft *r, uint8_t type, const void *data, size_t len)
{
	if (len > UINT32_MAX)
		return -EINVAL;
	struct keel_raft_msg m = {
		.type = KEEL_RAFT_MSG_PROPOSE, .to = r->leader, .term = r->term, .n_entries = 1,
	};
	m.entries = keel_calloc(1, sizeof(*m.entries));
	if (!m.entries)
		return -ENOMEM;
	m.entries[0].type = type;
	m.entries[0].len = (uint32_t)len;
	if (len && !(m.entries[0].data = keel_memdup(data, len))) {
		keel_free(m.entries);
		return -ENOMEM;
	}
	raft_send(r, &m);
	return 0;
}

int keel_raft_propose(struct keel_raft *r, const void *data, size_t len, uint64_t *ret_index)
{
	if (r->role == KEEL_RAFT_LEADER) {
		if (r->transferee)
			return -EBUSY;
		int rc = append_local(r, KEEL_RAFT_ENTRY_NORMAL, data, len);
		if (rc < 0)
			return rc;
		if (ret_index)
			*ret_index = raft_log_last(&r->log);
		return 0;
	}
	if (r->leader == 0)
		return -KEEL_ENOT_LEADER;
	int rc = forward_proposal(r, KEEL_RAFT_ENTRY_NORMAL, data, len);
	if (rc == 0 && ret_index)
		*ret_index = 0;
	return rc;
}

/* The leader's side of a membership change, proposed here or forwarded by a follower: the
 * checks, then the entry, effective at once. `data` is cc encoded (len bytes). */
static int leader_conf_change(struct keel_raft *r, const struct keel_raft_conf_change *cc, const void *data,
			      size_t len)
{
	if (r->transferee || !r->committed_in_term || r->pending_conf_index > r->log.committed)
		return -EBUSY; /* one change at a time, and never before this term's first commit */
	int rc = raft_conf_check(&r->conf, cc);
	if (rc < 0)
		return rc;
	if (cc->type == KEEL_RAFT_ADD_VOTER && keel_raft_conf_has_learner(&r->conf, cc->node)) {
		/* A learner votes only once it holds everything committed: promoting a learner
		 * that lags would count an empty log towards the quorum (§4.2.1). */
		struct progress *p = raft_progress(r, cc->node);
		if (!p || p->match < r->log.committed)
			return -EBUSY;
	}
	rc = append_local(r, KEEL_RAFT_ENTRY_CONF, data, len);
	if (rc < 0)
		return rc;
	r->prev_conf = r->conf;
	raft_conf_apply(&r->conf, cc);
	r->pending_conf_index = raft_log_last(&r->log);
	raft_sync_progress(r);
	return 0;
}

int keel_raft_propose_conf_change(struct keel_raft *r, const struct keel_raft_conf_change *cc,
				  uint64_t *ret_index)
{
	if (r->role != KEEL_RAFT_LEADER && r->leader == 0)
		return -KEEL_ENOT_LEADER;
	if (cc->node == 0 || cc->type < KEEL_RAFT_ADD_VOTER || cc->type > KEEL_RAFT_REMOVE_NODE)
		return -EINVAL;
	uint8_t stack[256];
	size_t need = keel_raft_conf_change_encode(cc, stack, sizeof(stack));
	uint8_t *buf = need <= sizeof(stack) ? stack : keel_malloc(need);
	if (!buf)
		return -ENOMEM;
	keel_raft_conf_change_encode(cc, buf, need);
	int rc;
	if (r->role == KEEL_RAFT_LEADER) {
		rc = leader_conf_change(r, cc, buf, need);
		if (rc == 0 && ret_index)
			*ret_index = r->pending_conf_index;
	} else {
		/* A follower hands it to the leader, which checks it there (and drops it quietly
		 * if it does not apply, as etcd's raft does): nothing comes back. */
		rc = forward_proposal(r, KEEL_RAFT_ENTRY_CONF, buf, need);
		if (rc == 0 && ret_index)
			*ret_index = 0;
	}
	if (buf != stack)
		keel_free(buf);
	return rc;
}

int keel_raft_transfer_leader(struct keel_raft *r, keel_raft_id target)
{
	if (r->role != KEEL_RAFT_LEADER)
		return -KEEL_ENOT_LEADER;
	if (target == r->cfg.id || !raft_is_voter(r, target))
		return -EINVAL;
	if (r->transferee == target)
		return 0;
	r->transferee = target;
	r->transfer_elapsed = 0;
	struct progress *p = raft_progress(r, target);
	if (p->match == raft_log_last(&r->log)) {
		struct keel_raft_msg m = {.type = KEEL_RAFT_MSG_TIMEOUT_NOW, .to = target, .term = r->term};
		raft_send(r, &m);
	} else {
		send_append(r, p, true);
	}
	return 0;
}

/* ---- ticks ---- */

static bool quorum_active(struct keel_raft *r)
{
	unsigned active = 0;
	for (uint32_t i = 0; i < r->conf.n_voters; i++) {
		keel_raft_id id = r->conf.voters[i];
		struct progress *p = raft_progress(r, id);
		if (id == r->cfg.id || (p && p->recent_active))
			active++;
	}
	return active >= raft_conf_quorum(&r->conf);
}

void keel_raft_tick(struct keel_raft *r)
{
	if (r->role != KEEL_RAFT_LEADER) {
		r->election_elapsed++;
		if (promotable(r) && r->election_elapsed >= r->randomized_timeout) {
			r->election_elapsed = 0;
			campaign(r, r->cfg.pre_vote, false);
		}
		return;
	}
	r->heartbeat_elapsed++;
	r->election_elapsed++;
	if (r->transferee && ++r->transfer_elapsed >= r->cfg.election_ticks)
		r->transferee = 0; /* the transfer did not happen in time: lead on (§3.10) */
	if (r->election_elapsed >= r->cfg.election_ticks) {
		r->election_elapsed = 0;
		if (r->cfg.check_quorum) {
			if (!quorum_active(r)) {
				/* Cut off from a majority: step down rather than serve stale reads
				 * or hold clients waiting (§6.2). */
				become_follower(r, r->term, 0);
				return;
			}
			FOR_EACH_PEER(r, p) {
				p->recent_active = false;
			}
		}
	}
	FOR_EACH_PEER(r, p) {
		/* The transport should report a failed snapshot transfer; if that report is lost
		 * too, try again after a while rather than wait forever. */
		if (p->state == PR_SNAPSHOT && ++p->snapshot_elapsed >= 4 * r->cfg.election_ticks) {
			p->pending_snapshot = 0;
			pr_become_probe(p);
		}
	}
	if (r->heartbeat_elapsed >= r->cfg.heartbeat_ticks) {
		r->heartbeat_elapsed = 0;
		bcast_heartbeat(r, r->read_round);
	}
}

/* ---- message handlers ---- */

static void respond(struct keel_raft *r, const struct keel_raft_msg *in, enum keel_raft_msg_type type,
		    struct keel_raft_msg *out)
{
	out->type = type;
	out->to = in->from;
	if (out->term == 0)
		out->term = r->term;
	raft_send(r, out);
}

static void handle_append(struct keel_raft *r, const struct keel_raft_msg *m)
{
	struct raft_log *l = &r->log;
	if (m->index < l->committed) {
		struct keel_raft_msg out = {.index = l->committed};
		respond(r, m, KEEL_RAFT_MSG_APPEND_RESP, &out);
		return;
	}
	if (!raft_log_match(l, m->index, m->log_term)) {
		uint64_t hint = raft_log_find_conflict_by_term(l, KEEL_MIN(m->index, raft_log_last(l)),
							       m->log_term);
		bool ok;
		struct keel_raft_msg out = {
			.index = m->index, .reject = true, .reject_hint = hint,
			.log_term = raft_log_term(l, hint, &ok),
		};
		respond(r, m, KEEL_RAFT_MSG_APPEND_RESP, &out);
		return;
	}
	/* Skip what we already have; truncate at the first conflict; append the rest (§3.5). */
	bool conf_changed = false;
	for (uint32_t k = 0; k < m->n_entries; k++) {
		const struct keel_raft_entry *e = &m->entries[k];
		if (e->index <= raft_log_last(l)) {
			bool ok;
			if (raft_log_term(l, e->index, &ok) == e->term && ok)
				continue;
			if (e->index <= r->pending_conf_index)
				conf_changed = true;
			if (e->index < r->trunc_since_ready)
				r->trunc_since_ready = e->index;
			raft_log_truncate(l, e->index);
		}
		if (raft_log_append_copy(l, e) < 0) {
			/* Out of memory: keep what fit and answer for that; the leader resends. */
			if (conf_changed)
				raft_rebuild_conf(r);
			struct keel_raft_msg out = {.index = raft_log_last(l)};
			commit_to(r, KEEL_MIN(m->commit, raft_log_last(l)));
			respond(r, m, KEEL_RAFT_MSG_APPEND_RESP, &out);
			return;
		}
		if (e->type == KEEL_RAFT_ENTRY_CONF)
			conf_changed = true;
	}
	if (conf_changed)
		raft_rebuild_conf(r);
	uint64_t last_new = m->index + m->n_entries;
	commit_to(r, KEEL_MIN(m->commit, last_new));
	struct keel_raft_msg out = {.index = last_new};
	respond(r, m, KEEL_RAFT_MSG_APPEND_RESP, &out);
}

static void handle_heartbeat(struct keel_raft *r, const struct keel_raft_msg *m)
{
	commit_to(r, KEEL_MIN(m->commit, raft_log_last(&r->log)));
	struct keel_raft_msg out = {.context = m->context};
	respond(r, m, KEEL_RAFT_MSG_HEARTBEAT_RESP, &out);
}

static void handle_snapshot(struct keel_raft *r, const struct keel_raft_msg *m)
{
	const struct keel_raft_snapshot_meta *s = &m->snapshot;
	struct raft_log *l = &r->log;
	struct keel_raft_msg out = {0};
	if (s->index <= l->committed) {
		out.index = l->committed;
	} else if (raft_log_match(l, s->index, s->term)) {
		/* We hold the entries it covers: just learn that they are committed. */
		commit_to(r, s->index);
		out.index = raft_log_last(l);
	} else {
		uint64_t first = raft_log_first(l);
		if (first < r->trunc_since_ready)
			r->trunc_since_ready = first;
		raft_log_reset(l, s->index, s->term);
		r->snap = *s;
		r->base_conf = s->conf;
		raft_rebuild_conf(r);
		r->install = *s;
		r->has_snapshot_to_install = true;
		out.index = s->index;
	}
	respond(r, m, KEEL_RAFT_MSG_APPEND_RESP, &out);
}

static void handle_vote(struct keel_raft *r, const struct keel_raft_msg *m)
{
	bool pre = m->type == KEEL_RAFT_MSG_PREVOTE;
	bool can_vote = r->vote == m->from || (r->vote == 0 && r->leader == 0) || (pre && m->term > r->term);
	struct keel_raft_msg out = {0};
	if (can_vote && raft_log_up_to_date(&r->log, m->index, m->log_term)) {
		/* A granted pre-vote carries the term asked about, so the pre-candidate counts it. */
		out.term = m->term;
		if (!pre) {
			r->election_elapsed = 0;
			r->vote = m->from;
		}
	} else {
		out.reject = true;
		out.term = r->term;
	}
	respond(r, m, pre ? KEEL_RAFT_MSG_PREVOTE_RESP : KEEL_RAFT_MSG_VOTE_RESP, &out);
}

static bool pr_maybe_decrease(struct progress *p, uint64_t rejected, uint64_t next_probe)
{
	if (p->state == PR_REPLICATE) {
		if (rejected <= p->match)
			return false; /* stale */
		p->next = p->match + 1;
		return true;
	}
	if (p->next - 1 != rejected)
		return false; /* not the probe we are waiting for */
	p->next = KEEL_MAX(KEEL_MIN(rejected, next_probe + 1), p->match + 1);
	p->probe_sent = false;
	return true;
}

static void send_timeout_now(struct keel_raft *r, keel_raft_id to)
{
	struct keel_raft_msg m = {.type = KEEL_RAFT_MSG_TIMEOUT_NOW, .to = to, .term = r->term};
	raft_send(r, &m);
}

static void leader_append_resp(struct keel_raft *r, const struct keel_raft_msg *m)
{
	struct progress *p = raft_progress(r, m->from);
	if (!p)
		return;
	p->recent_active = true;
	if (m->reject) {
		uint64_t next_probe = m->reject_hint;
		if (m->log_term > 0)
			next_probe = raft_log_find_conflict_by_term(&r->log, m->reject_hint, m->log_term);
		if (pr_maybe_decrease(p, m->index, next_probe)) {
			if (p->state == PR_REPLICATE)
				pr_become_probe(p);
			send_append(r, p, true);
		}
		return;
	}
	bool was_paused = pr_paused(r, p);
	if (m->index > p->match) {
		p->match = m->index;
		p->next = KEEL_MAX(p->next, m->index + 1);
		p->probe_sent = false;
		if (p->state == PR_PROBE) {
			pr_become_replicate(p);
		} else if (p->state == PR_SNAPSHOT && p->match >= p->pending_snapshot) {
			pr_become_probe(p);
			pr_become_replicate(p);
		} else if (p->state == PR_REPLICATE) {
			inflight_free_to(r, p, m->index);
		}
		if (maybe_commit(r)) {
			if (r->role != KEEL_RAFT_LEADER)
				return;
			bcast_append(r);
		} else if (was_paused) {
			send_append(r, p, false);
		}
		if (m->from == r->transferee && p->match == raft_log_last(&r->log))
			send_timeout_now(r, m->from);
	} else if (p->state == PR_REPLICATE) {
		inflight_free_to(r, p, m->index);
	}
}

static void leader_heartbeat_resp(struct keel_raft *r, const struct keel_raft_msg *m)
{
	struct progress *p = raft_progress(r, m->from);
	if (!p)
		return;
	p->recent_active = true;
	p->probe_sent = false;
	/* A full window with an answering peer: free one slot so progress never stalls on lost
	 * acknowledgements. */
	if (p->state == PR_REPLICATE && p->in_count >= r->cfg.max_inflight) {
		p->in_start = (p->in_start + 1) % r->cfg.max_inflight;
		p->in_count--;
	}
	/* Behind: send what it needs, even an empty append; if an append was lost in replicate
	 * mode, its rejection of this one puts the peer back to probing. */
	if (p->match < raft_log_last(&r->log))
		send_append(r, p, true);
	if (m->context > p->read_ack)
		p->read_ack = m->context;
	release_reads(r);
}

static void leader_propose(struct keel_raft *r, const struct keel_raft_msg *m)
{
	if (r->transferee)
		return;
	for (uint32_t i = 0; i < m->n_entries; i++) {
		const struct keel_raft_entry *e = &m->entries[i];
		if (e->type == KEEL_RAFT_ENTRY_CONF) {
			/* A forwarded membership change: checked here like a local one. One that
			 * does not apply (now) is dropped; the follower's client times out, as
			 * with etcd. */
			struct keel_raft_conf_change cc;
			if (keel_raft_conf_change_decode(e->data, e->len, &cc) == 0)
				leader_conf_change(r, &cc, e->data, e->len);
			continue;
		}
		if (e->type != KEEL_RAFT_ENTRY_NORMAL)
			continue;
		if (append_local(r, KEEL_RAFT_ENTRY_NORMAL, e->data, e->len) < 0)
			return;
	}
}

static void step_leader(struct keel_raft *r, const struct keel_raft_msg *m)
{
	switch (m->type) {
	case KEEL_RAFT_MSG_APPEND_RESP:
		leader_append_resp(r, m);
		break;
	case KEEL_RAFT_MSG_HEARTBEAT_RESP:
		leader_heartbeat_resp(r, m);
		break;
	case KEEL_RAFT_MSG_READ_INDEX:
		if (raft_progress(r, m->from))
			leader_read(r, m->context, m->from);
		break;
	case KEEL_RAFT_MSG_PROPOSE:
		leader_propose(r, m);
		break;
	default:
		break;
	}
}

static void step_candidate(struct keel_raft *r, const struct keel_raft_msg *m)
{
	enum keel_raft_msg_type want =
		r->role == KEEL_RAFT_PRE_CANDIDATE ? KEEL_RAFT_MSG_PREVOTE_RESP : KEEL_RAFT_MSG_VOTE_RESP;
	switch (m->type) {
	case KEEL_RAFT_MSG_APPEND:
	case KEEL_RAFT_MSG_HEARTBEAT:
	case KEEL_RAFT_MSG_SNAPSHOT:
		/* Someone won this term. */
		become_follower(r, m->term, m->from);
		r->election_elapsed = 0;
		if (m->type == KEEL_RAFT_MSG_APPEND)
			handle_append(r, m);
		else if (m->type == KEEL_RAFT_MSG_HEARTBEAT)
			handle_heartbeat(r, m);
		else
			handle_snapshot(r, m);
		break;
	case KEEL_RAFT_MSG_PREVOTE_RESP:
	case KEEL_RAFT_MSG_VOTE_RESP:
		if (m->type != want)
			break;
		switch (poll(r, m->from, !m->reject)) {
		case POLL_WON:
			if (r->role == KEEL_RAFT_PRE_CANDIDATE)
				campaign(r, false, false);
			else
				become_leader(r);
			break;
		case POLL_LOST:
			become_follower(r, r->term, 0);
			break;
		default:
			break;
		}
		break;
	default:
		break;
	}
}

static void step_follower(struct keel_raft *r, const struct keel_raft_msg *m)
{
	switch (m->type) {
	case KEEL_RAFT_MSG_APPEND:
		r->election_elapsed = 0;
		r->leader = m->from;
		handle_append(r, m);
		break;
	case KEEL_RAFT_MSG_HEARTBEAT:
		r->election_elapsed = 0;
		r->leader = m->from;
		handle_heartbeat(r, m);
		break;
	case KEEL_RAFT_MSG_SNAPSHOT:
		r->election_elapsed = 0;
		r->leader = m->from;
		handle_snapshot(r, m);
		break;
	case KEEL_RAFT_MSG_TIMEOUT_NOW:
		/* Leadership transfer: skip pre-vote, and let voters ignore their lease (§3.10). */
		campaign(r, false, true);
		break;
	case KEEL_RAFT_MSG_READ_INDEX_RESP:
		for (size_t i = 0; i < r->n_fwd; i++) {
			if (r->fwd_reads[i] != m->context)
				continue;
			r->fwd_reads[i] = r->fwd_reads[--r->n_fwd];
			push_read_state(r, m->context, m->index, true);
			break;
		}
		break;
	default:
		break;
	}
}

/* Messages that could corrupt state if believed: checked before anything else. */
static bool well_formed(const struct keel_raft *r, const struct keel_raft_msg *m)
{
	if (m->type < KEEL_RAFT_MSG_PREVOTE || m->type >= KEEL_RAFT_MSG__MAX || m->from == 0 ||
	    m->from == r->cfg.id || m->to != r->cfg.id)
		return false;
	if (m->n_entries && !m->entries)
		return false;
	if (m->type == KEEL_RAFT_MSG_APPEND) {
		uint64_t prev_term = m->log_term;
		for (uint32_t k = 0; k < m->n_entries; k++) {
			const struct keel_raft_entry *e = &m->entries[k];
			if (e->index != m->index + 1 + k || e->term < prev_term || e->term > m->term ||
			    (e->len && !e->data) || e->type > KEEL_RAFT_ENTRY_CONF)
				return false;
			prev_term = e->term;
		}
		if (m->log_term > m->term)
			return false;
	}
	if (m->type == KEEL_RAFT_MSG_SNAPSHOT &&
	    (m->snapshot.index == 0 || m->snapshot.term > m->term ||
	     m->snapshot.conf.n_voters > KEEL_RAFT_MAX_NODES ||
	     m->snapshot.conf.n_learners > KEEL_RAFT_MAX_NODES ||
	     m->snapshot.conf.n_voters + m->snapshot.conf.n_learners > KEEL_RAFT_MAX_NODES))
		return false;
	if (m->type == KEEL_RAFT_MSG_PROPOSE)
		for (uint32_t k = 0; k < m->n_entries; k++)
			if (m->entries[k].len && !m->entries[k].data)
				return false;
	return true;
}

int keel_raft_step(struct keel_raft *r, const struct keel_raft_msg *m)
{
	if (!well_formed(r, m))
		return -EINVAL;

	bool is_vote_req = m->type == KEEL_RAFT_MSG_VOTE || m->type == KEEL_RAFT_MSG_PREVOTE;
	if (m->term > r->term) {
		if (is_vote_req && !m->transfer && r->cfg.check_quorum && r->leader != 0 &&
		    r->election_elapsed < r->cfg.election_ticks)
			return 0; /* we heard from a live leader within the timeout: keep it (§4.2.3) */
		if (m->type == KEEL_RAFT_MSG_PREVOTE ||
		    (m->type == KEEL_RAFT_MSG_PREVOTE_RESP && !m->reject)) {
			/* Pre-votes do not move terms. */
		} else {
			bool from_leader = m->type == KEEL_RAFT_MSG_APPEND ||
					   m->type == KEEL_RAFT_MSG_HEARTBEAT ||
					   m->type == KEEL_RAFT_MSG_SNAPSHOT;
			become_follower(r, m->term, from_leader ? m->from : 0);
		}
	} else if (m->term < r->term) {
		if ((r->cfg.check_quorum || r->cfg.pre_vote) &&
		    (m->type == KEEL_RAFT_MSG_APPEND || m->type == KEEL_RAFT_MSG_HEARTBEAT)) {
			/* A stale leader: tell it our term so it steps down; with pre-vote it could
			 * otherwise keep a partitioned-then-healed node out forever. */
			struct keel_raft_msg out = {0};
			respond(r, m, KEEL_RAFT_MSG_APPEND_RESP, &out);
		} else if (m->type == KEEL_RAFT_MSG_PREVOTE) {
			struct keel_raft_msg out = {.reject = true};
			respond(r, m, KEEL_RAFT_MSG_PREVOTE_RESP, &out);
		}
		return 0;
	}

	if (is_vote_req) {
		handle_vote(r, m);
		return 0;
	}
	switch (r->role) {
	case KEEL_RAFT_LEADER:
		step_leader(r, m);
		break;
	case KEEL_RAFT_CANDIDATE:
	case KEEL_RAFT_PRE_CANDIDATE:
		step_candidate(r, m);
		break;
	default:
		step_follower(r, m);
		break;
	}
	return 0;
}

void keel_raft_report_snapshot(struct keel_raft *r, keel_raft_id peer, bool ok)
{
	struct progress *p = raft_progress(r, peer);
	if (r->role != KEEL_RAFT_LEADER || !p || p->state != PR_SNAPSHOT)
		return;
	if (!ok)
		p->pending_snapshot = 0;
	/* Either way wait for its answer before sending more (probe). */
	pr_become_probe(p);
	p->probe_sent = true;
}

void keel_raft_report_unreachable(struct keel_raft *r, keel_raft_id peer)
{
	struct progress *p = raft_progress(r, peer);
	if (r->role == KEEL_RAFT_LEADER && p && p->state == PR_REPLICATE)
		pr_become_probe(p);
}

void raft_flush(struct keel_raft *r)
{
	flush_appends(r);
}

void raft_become_follower(struct keel_raft *r, uint64_t term)
{
	become_follower(r, term, 0);
}
