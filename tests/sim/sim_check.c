/* The simulator's judges: Raft's safety properties after every event (Raft thesis Figure 3.2),
 * and, at the end, the client history against the order the log gives. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/crc32c.h"
#include "base/macro.h"
#include "sim-internal.h"

static uint64_t term_at(struct keel_raft *r, uint64_t i, bool *ok)
{
	uint64_t t = 0;
	*ok = keel_raft_term_at(r, i, &t);
	if (!*ok) {
		/* Compacted away: the snapshot still names its last entry. */
		const struct keel_raft_snapshot_meta *m = keel_raft_snapshot(r);
		if (i == m->index && i) {
			*ok = true;
			return m->term;
		}
	}
	return t;
}

/* State machine safety: no two nodes apply different entries at one index. NULL e records that
 * a snapshot was installed (nothing to compare). */
void sim_record_apply(struct sim *s, struct node *n, const struct keel_raft_entry *e)
{
	if (!e)
		return;
	sim_grow((void **)&s->applied, &s->cap_applied, e->index + 1, sizeof(*s->applied));
	struct applied_rec *a = &s->applied[e->index];
	uint32_t crc = keel_crc32c(e->type, e->data, e->len);
	if (!a->set) {
		*a = (struct applied_rec){.term = e->term, .crc = crc, .set = true, .req = UINT64_MAX};
		if (e->type == KEEL_RAFT_ENTRY_NORMAL && e->len == OP_DATA_LEN)
			memcpy(&a->req, (const uint8_t *)e->data + 8, 8);
		return;
	}
	if (a->term != e->term || a->crc != crc)
		sim_fail(s, "state machine safety: node %llu applied (term %llu) at index %llu, another node "
			    "applied (term %llu)",
			 (unsigned long long)n->id, (unsigned long long)e->term, (unsigned long long)e->index,
			 (unsigned long long)a->term);
}

static bool same_ids(const keel_raft_id *a, uint32_t na, const keel_raft_id *b, uint32_t nb)
{
	if (na != nb)
		return false;
	for (uint32_t i = 0; i < na; i++) {
		bool found = false;
		for (uint32_t j = 0; j < nb && !found; j++)
			found = a[i] == b[j];
		if (!found)
			return false;
	}
	return true;
}

/* Log matching (§3.5): two logs with the same term at an index agree on everything before it.
 * Two logs that end alike hold the same configuration, however each got there (snapshots,
 * compaction, eviction, restarts). */
void sim_check_logs_match(struct sim *s, struct node *a)
{
	struct keel_raft *ra = a->raft;
	for (keel_raft_id id = 1; id <= SIM_MAX_NODES; id++) {
		struct node *b = &s->nodes[id];
		if (b == a || !b->exists || !b->up)
			continue;
		struct keel_raft *rb = b->raft;
		uint64_t la = keel_raft_last_index(ra), last_a, last_b;
		if (la == keel_raft_last_index(rb) && keel_raft_term_at(ra, la, &last_a) &&
		    keel_raft_term_at(rb, la, &last_b) && last_a == last_b) {
			const struct keel_raft_conf *ca = keel_raft_conf(ra), *cb = keel_raft_conf(rb);
			if (!same_ids(ca->voters, ca->n_voters, cb->voters, cb->n_voters) ||
			    !same_ids(ca->learners, ca->n_learners, cb->learners, cb->n_learners)) {
				sim_fail(s, "nodes %llu and %llu end their logs alike at %llu but hold different "
					    "configurations (%u+%u and %u+%u members)",
					 (unsigned long long)a->id, (unsigned long long)id, (unsigned long long)la,
					 ca->n_voters, ca->n_learners, cb->n_voters, cb->n_learners);
				return;
			}
		}
		uint64_t lo = KEEL_MAX(keel_raft_first_index(ra), keel_raft_first_index(rb));
		uint64_t hi = KEEL_MIN(keel_raft_last_index(ra), keel_raft_last_index(rb));
		bool matched = false;
		for (uint64_t i = hi; i >= lo && i > 0; i--) {
			/* Terms are known for the whole log, data only for entries in memory (what
			 * was evicted is checked when it is applied, and when read back). */
			uint64_t ta, tb;
			if (!keel_raft_term_at(ra, i, &ta) || !keel_raft_term_at(rb, i, &tb))
				break;
			if (!matched && ta == tb)
				matched = true;
			if (!matched)
				continue;
			const struct keel_raft_entry *ea = keel_raft_entry_at(ra, i);
			const struct keel_raft_entry *eb = keel_raft_entry_at(rb, i);
			if (ta != tb || (ea && eb && (ea->len != eb->len || ea->type != eb->type ||
						      (ea->len && memcmp(ea->data, eb->data, ea->len) != 0)))) {
				sim_fail(s, "log matching: nodes %llu and %llu agree at a later index but differ "
					    "at %llu (terms %llu, %llu)",
					 (unsigned long long)a->id, (unsigned long long)id, (unsigned long long)i,
					 (unsigned long long)ta, (unsigned long long)tb);
				return;
			}
		}
	}
}

void sim_check_node(struct sim *s, struct node *n)
{
	struct keel_raft *r = n->raft;
	uint64_t term = keel_raft_term(r);
	bool leader = keel_raft_role(r) == KEEL_RAFT_LEADER;

	/* Committed entries: what any node has committed is committed for good. */
	uint64_t commit = keel_raft_commit_index(r);
	if (commit > n->known_commit) {
		sim_grow((void **)&s->committed_term, &s->cap_committed, commit + 1, sizeof(uint64_t));
		for (uint64_t i = n->known_commit + 1; i <= commit; i++) {
			bool ok;
			uint64_t t = term_at(r, i, &ok);
			if (!ok)
				continue;
			if (s->committed_term[i] && s->committed_term[i] != t) {
				sim_fail(s, "node %llu committed term %llu at index %llu, but term %llu was "
					    "committed there before",
					 (unsigned long long)n->id, (unsigned long long)t, (unsigned long long)i,
					 (unsigned long long)s->committed_term[i]);
				return;
			}
			s->committed_term[i] = t;
		}
		n->known_commit = commit;
		if (commit > s->max_committed)
			s->max_committed = commit;
	}

	if (leader) {
		/* Election safety: at most one leader per term. */
		sim_grow((void **)&s->leader_of_term, &s->cap_terms, term + 1, sizeof(uint64_t));
		if (s->leader_of_term[term] && s->leader_of_term[term] != n->id) {
			sim_fail(s, "election safety: nodes %llu and %llu both lead term %llu",
				 (unsigned long long)s->leader_of_term[term], (unsigned long long)n->id,
				 (unsigned long long)term);
			return;
		}
		s->leader_of_term[term] = n->id;

		if (!n->was_leader || n->leader_term != term) {
			/* Leader completeness: a new leader holds every committed entry. */
			if (keel_raft_last_index(r) < s->max_committed)
				sim_fail(s, "leader completeness: node %llu leads term %llu with last index %llu "
					    "< committed %llu",
					 (unsigned long long)n->id, (unsigned long long)term,
					 (unsigned long long)keel_raft_last_index(r),
					 (unsigned long long)s->max_committed);
			for (uint64_t i = keel_raft_first_index(r); i <= s->max_committed; i++) {
				bool ok;
				uint64_t t = term_at(r, i, &ok);
				if (ok && i < s->cap_committed && s->committed_term[i] && s->committed_term[i] != t) {
					sim_fail(s, "leader completeness: new leader %llu (term %llu) has term %llu "
						    "at committed index %llu (committed term %llu)",
						 (unsigned long long)n->id, (unsigned long long)term,
						 (unsigned long long)t, (unsigned long long)i,
						 (unsigned long long)s->committed_term[i]);
					break;
				}
			}
		} else {
			/* Leader append-only: what it had is still there. */
			bool ok;
			uint64_t t = term_at(r, n->leader_last, &ok);
			if (keel_raft_last_index(r) < n->leader_last ||
			    (ok && t != n->leader_last_term))
				sim_fail(s, "leader append-only: leader %llu lost or rewrote index %llu",
					 (unsigned long long)n->id, (unsigned long long)n->leader_last);
		}
		n->was_leader = true;
		n->leader_term = term;
		n->leader_last = keel_raft_last_index(r);
		bool ok;
		n->leader_last_term = term_at(r, n->leader_last, &ok);
	} else {
		n->was_leader = false;
	}
	sim_check_logs_match(s, n);
}

/* ---- the history ---- */

struct wpos {
	uint64_t done, index;
};

static int by_done(const void *a, const void *b)
{
	const struct wpos *x = a, *y = b;
	return x->done < y->done ? -1 : x->done > y->done;
}

/* Writes acknowledged (or, for reads, observed) before time t: the highest log index among them. */
static uint64_t max_index_done_before(const struct wpos *w, const uint64_t *prefix_max, size_t n, uint64_t t)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (w[mid].done < t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? prefix_max[lo - 1] : 0;
}

/* The log is the order of all writes; check that the clients' view agrees with it:
 *  - every acknowledged write is in the log, at the index it was given, exactly as sent;
 *  - real time: a write acknowledged before another began comes earlier in the log;
 *  - a read returns the register's value at the applied index it read at, and that index is at
 *    or after every write and read that finished before the read began (no stale read);
 *  - a CAS result is what the register's value at its position implies. */
int sim_check_history(struct sim *s)
{
	if (s->failed)
		return -1;
	uint64_t top = 0;
	for (uint64_t i = 1; i < s->cap_applied; i++)
		if (s->applied[i].set)
			top = i;
	size_t n = s->n_ops;
	struct wpos *w = calloc(n + 1, sizeof(*w));
	struct wpos *rd = calloc(n + 1, sizeof(*rd));
	size_t nw = 0, nr = 0;
	for (size_t i = 0; i < n; i++) {
		struct op *op = &s->ops[i];
		if (op->status != SIM_OP_OK)
			continue;
		if (op->kind == OP_GET) {
			rd[nr++] = (struct wpos){op->done, op->index};
			continue;
		}
		if (op->index == 0 || op->index > top || !s->applied[op->index].set) {
			sim_fail(s, "durability: op %zu acknowledged at index %llu, which was never applied", i,
				 (unsigned long long)op->index);
			goto out;
		}
		if (s->applied[op->index].term != op->term) {
			sim_fail(s, "op %zu acknowledged at index %llu term %llu, but term %llu was applied there",
				 i, (unsigned long long)op->index, (unsigned long long)op->term,
				 (unsigned long long)s->applied[op->index].term);
			goto out;
		}
		w[nw++] = (struct wpos){op->done, op->index};
	}
	qsort(w, nw, sizeof(*w), by_done);
	qsort(rd, nr, sizeof(*rd), by_done);
	uint64_t *wmax = calloc(nw + 1, sizeof(uint64_t));
	uint64_t *rmax = calloc(nr + 1, sizeof(uint64_t));
	for (size_t i = 0; i < nw; i++)
		wmax[i] = KEEL_MAX(i ? wmax[i - 1] : 0, w[i].index);
	for (size_t i = 0; i < nr; i++)
		rmax[i] = KEEL_MAX(i ? rmax[i - 1] : 0, rd[i].index);

	for (size_t i = 0; i < n && !s->failed; i++) {
		struct op *op = &s->ops[i];
		if (op->status != SIM_OP_OK)
			continue;
		uint64_t before = max_index_done_before(w, wmax, nw, op->inv);
		if (op->kind == OP_GET) {
			uint64_t rbefore = max_index_done_before(rd, rmax, nr, op->inv);
			if (op->index < before)
				sim_fail(s, "stale read: op %zu (key %u) read at index %llu, but a write at index "
					    "%llu was acknowledged before it began",
					 i, op->key, (unsigned long long)op->index, (unsigned long long)before);
			else if (op->index < rbefore)
				sim_fail(s, "stale read: op %zu read at index %llu, but an earlier read had "
					    "already seen index %llu",
					 i, (unsigned long long)op->index, (unsigned long long)rbefore);
		} else if (op->index <= before) {
			sim_fail(s, "real-time order: write op %zu is at index %llu, but a write acknowledged "
				    "before it began is at index %llu",
				 i, (unsigned long long)op->index, (unsigned long long)before);
		}
	}
	/* Values: replay the log over the registers; every read must return the value as of the
	 * index it read at, and every acknowledged CAS the outcome its position implies. */
	if (!s->failed) {
		size_t *reads = calloc(nr + 1, sizeof(size_t));
		size_t k = 0;
		for (size_t i = 0; i < n; i++)
			if (s->ops[i].status == SIM_OP_OK && s->ops[i].kind == OP_GET)
				reads[k++] = i;
		/* Order reads by the index they read at. */
		for (size_t i = 1; i < k; i++) {
			size_t v = reads[i], j = i;
			while (j > 0 && s->ops[reads[j - 1]].index > s->ops[v].index) {
				reads[j] = reads[j - 1];
				j--;
			}
			reads[j] = v;
		}
		uint64_t *reg = calloc(s->o.keys, sizeof(uint64_t));
		size_t next_read = 0;
		for (uint64_t i = 0; i <= top && !s->failed; i++) {
			if (i > 0) {
				const struct applied_rec *a = &s->applied[i];
				if (!a->set) {
					sim_fail(s, "index %llu (<= %llu) was never applied by any node",
						 (unsigned long long)i, (unsigned long long)top);
					break;
				}
				if (a->req < n) {
					struct op *op = &s->ops[a->req];
					uint64_t swapped = 1;
					if (op->kind == OP_PUT)
						reg[op->key] = op->value;
					else if (reg[op->key] == op->expect)
						reg[op->key] = op->value;
					else
						swapped = 0;
					if (op->status == SIM_OP_OK && op->index == i && op->kind == OP_CAS &&
					    op->result != swapped)
						sim_fail(s, "CAS op %llu at index %llu reported %llu, the log says %llu",
							 (unsigned long long)a->req, (unsigned long long)i,
							 (unsigned long long)op->result, (unsigned long long)swapped);
				}
			}
			while (next_read < k && s->ops[reads[next_read]].index == i) {
				struct op *op = &s->ops[reads[next_read++]];
				if (op->result != reg[op->key])
					sim_fail(s, "read of key %u at index %llu returned %llu, the log says %llu",
						 op->key, (unsigned long long)i, (unsigned long long)op->result,
						 (unsigned long long)reg[op->key]);
			}
		}
		free(reg);
		free(reads);
	}
	free(wmax);
	free(rmax);
out:
	free(w);
	free(rd);
	return s->failed ? -1 : 0;
}
