/* White-box tests of the consensus core, driving single nodes with hand-made messages: each pins
 * one rule of the protocol where a simulator run would only hit it by chance. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/fault.h"
#include "base/mem.h"
#include "raft/raft.h"

static struct keel_raft_config cfg_for(keel_raft_id id, bool pre_vote, bool check_quorum)
{
	struct keel_raft_config c;
	keel_raft_config_default(&c, id);
	c.pre_vote = pre_vote;
	c.check_quorum = check_quorum;
	return c;
}

static struct keel_raft_conf voters(unsigned n)
{
	struct keel_raft_conf c = {.n_voters = n};
	for (unsigned i = 0; i < n; i++)
		c.voters[i] = i + 1;
	return c;
}

static struct keel_raft *node_new(keel_raft_id id, unsigned n, bool pre_vote, bool check_quorum)
{
	struct keel_raft_config c = cfg_for(id, pre_vote, check_quorum);
	struct keel_raft_conf conf = voters(n);
	struct keel_raft *r;
	struct keel_err err;
	assert_int_equal(keel_raft_new(&c, &conf, &r, &err), 0);
	return r;
}

/* Collected output of one ready, copied so it outlives advance. */
struct out {
	struct keel_raft_msg msgs[64];
	size_t n_msgs;
	struct keel_raft_read_state reads[16];
	size_t n_reads;
	size_t n_entries, n_committed;
	uint64_t last_committed;
	struct keel_raft_hard_state hs;
	bool hs_changed;
};

struct tstore;
static struct tstore *persist_to; /* the window test's storage, when it runs */
static void tstore_persist(struct tstore *t, const struct keel_raft_ready *rd);

/* Take a ready, "persist" it, keep its messages (without entries) and advance. */
static void drain(struct keel_raft *r, struct out *o)
{
	memset(o, 0, sizeof(*o));
	struct keel_raft_ready rd;
	while (keel_raft_ready(r, &rd)) {
		if (persist_to)
			tstore_persist(persist_to, &rd);
		for (size_t i = 0; i < rd.n_msgs && o->n_msgs < 64; i++) {
			o->msgs[o->n_msgs] = rd.msgs[i];
			o->msgs[o->n_msgs].entries = NULL; /* owned by the core */
			o->n_msgs++;
		}
		for (size_t i = 0; i < rd.n_reads && o->n_reads < 16; i++)
			o->reads[o->n_reads++] = rd.reads[i];
		o->n_entries += rd.n_entries;
		o->n_committed += rd.n_committed;
		if (rd.n_committed)
			o->last_committed = rd.committed[rd.n_committed - 1].index;
		if (rd.hard_state_changed) {
			o->hs = rd.hard_state;
			o->hs_changed = true;
		}
		keel_raft_advance(r, &rd);
	}
}

static const struct keel_raft_msg *find_msg(const struct out *o, enum keel_raft_msg_type t, keel_raft_id to)
{
	for (size_t i = 0; i < o->n_msgs; i++)
		if (o->msgs[i].type == t && (to == 0 || o->msgs[i].to == to))
			return &o->msgs[i];
	return NULL;
}

static void step_ok(struct keel_raft *r, struct keel_raft_msg m)
{
	m.to = keel_raft_id_of(r);
	assert_int_equal(keel_raft_step(r, &m), 0);
}

/* Make node r (of a 3- or 5-node cluster) leader by hand: campaign, collect votes. */
static void make_leader(struct keel_raft *r, unsigned n)
{
	struct out o;
	keel_raft_campaign(r);
	drain(r, &o);
	uint64_t term = keel_raft_term(r);
	for (keel_raft_id p = 1; p <= n && keel_raft_role(r) != KEEL_RAFT_LEADER; p++) {
		if (p == keel_raft_id_of(r))
			continue;
		if (keel_raft_role(r) == KEEL_RAFT_PRE_CANDIDATE) {
			step_ok(r, (struct keel_raft_msg){.type = KEEL_RAFT_MSG_PREVOTE_RESP, .from = p, .term = term + 1});
			continue;
		}
		step_ok(r, (struct keel_raft_msg){.type = KEEL_RAFT_MSG_VOTE_RESP, .from = p,
						  .term = keel_raft_term(r)});
	}
	if (keel_raft_role(r) == KEEL_RAFT_CANDIDATE)
		for (keel_raft_id p = 1; p <= n && keel_raft_role(r) != KEEL_RAFT_LEADER; p++)
			if (p != keel_raft_id_of(r))
				step_ok(r, (struct keel_raft_msg){.type = KEEL_RAFT_MSG_VOTE_RESP, .from = p,
								  .term = keel_raft_term(r)});
	assert_int_equal(keel_raft_role(r), KEEL_RAFT_LEADER);
	drain(r, &o);
}

static void raft_single_node_elects_itself_and_commits(void **state)
{
	struct keel_raft *r = node_new(1, 1, true, true);
	struct out o;
	drain(r, &o);
	assert_int_equal(o.n_entries, 1);       /* the bootstrap conf entry */
	assert_int_equal(o.last_committed, 1);
	for (int i = 0; i < 20 && keel_raft_role(r) != KEEL_RAFT_LEADER; i++)
		keel_raft_tick(r);
	assert_int_equal(keel_raft_role(r), KEEL_RAFT_LEADER);
	assert_int_equal(keel_raft_term(r), 2);
	uint64_t idx;
	assert_int_equal(keel_raft_propose(r, "x", 1, &idx), 0);
	assert_int_equal(idx, 3); /* 1: conf, 2: the leader's no-op */
	/* Nothing commits before it is persisted: the leader counts itself only once on disk. */
	assert_int_equal(keel_raft_commit_index(r), 1);
	drain(r, &o);
	assert_int_equal(keel_raft_commit_index(r), 3);
	assert_int_equal(keel_raft_applied_index(r), 3);
	keel_raft_free(r);
}

/* The Raft paper's Figure 8: a leader must not commit an entry of an earlier term by counting
 * replicas, only through an entry of its own term (§3.6.2). */
static void raft_figure8_old_term_entry_not_committed_by_counting(void **state)
{
	/* Node 1 of 5 restarts with: bootstrap entries 1..5 (term 1), entry 6 of term 2 that only
	 * it and node 2 hold, hard state term 3. */
	struct keel_raft_config c = cfg_for(1, false, false);
	struct keel_raft *r;
	struct keel_err err;
	assert_int_equal(keel_raft_new(&c, NULL, &r, &err), 0);
	struct keel_raft_entry ents[6];
	uint8_t confs[5][32];
	for (int i = 0; i < 5; i++) {
		struct keel_raft_conf_change cc = {.type = KEEL_RAFT_ADD_VOTER, .node = (keel_raft_id)i + 1};
		size_t len = keel_raft_conf_change_encode(&cc, confs[i], sizeof(confs[i]));
		ents[i] = (struct keel_raft_entry){.term = 1, .index = (uint64_t)i + 1,
						   .type = KEEL_RAFT_ENTRY_CONF, .len = (uint32_t)len, .data = confs[i]};
	}
	ents[5] = (struct keel_raft_entry){.term = 2, .index = 6, .len = 3, .data = "old"};
	struct keel_raft_hard_state hs = {.term = 3, .vote = 0, .commit = 5};
	assert_int_equal(keel_raft_restore(r, NULL, ents, 6, &hs, 5, &err), 0);
	assert_int_equal(keel_raft_conf(r)->n_voters, 5);

	make_leader(r, 5); /* term 4; appends its no-op at 7 */
	assert_int_equal(keel_raft_term(r), 4);
	assert_int_equal(keel_raft_last_index(r), 7);

	/* Nodes 2 and 3 acknowledge index 6 only: with node 1 that is a majority holding the
	 * term-2 entry, and still it must not be committed. */
	step_ok(r, (struct keel_raft_msg){.type = KEEL_RAFT_MSG_APPEND_RESP, .from = 2, .term = 4, .index = 6});
	step_ok(r, (struct keel_raft_msg){.type = KEEL_RAFT_MSG_APPEND_RESP, .from = 3, .term = 4, .index = 6});
	assert_int_equal(keel_raft_commit_index(r), 5);

	/* Once the term-4 no-op is on a majority, both commit together. */
	step_ok(r, (struct keel_raft_msg){.type = KEEL_RAFT_MSG_APPEND_RESP, .from = 2, .term = 4, .index = 7});
	assert_int_equal(keel_raft_commit_index(r), 5);
	step_ok(r, (struct keel_raft_msg){.type = KEEL_RAFT_MSG_APPEND_RESP, .from = 3, .term = 4, .index = 7});
	assert_int_equal(keel_raft_commit_index(r), 7);
	keel_raft_free(r);
}

/* A vote is durable: after a restart in the same term, the node refuses a second candidate. */
static void raft_vote_survives_restart(void **state)
{
	struct keel_raft *r = node_new(1, 3, false, false);
	struct out o;
	drain(r, &o);
	step_ok(r, (struct keel_raft_msg){.type = KEEL_RAFT_MSG_VOTE, .from = 2, .term = 5, .index = 3, .log_term = 1});
	drain(r, &o);
	const struct keel_raft_msg *resp = find_msg(&o, KEEL_RAFT_MSG_VOTE_RESP, 2);
	assert_non_null(resp);
	assert_false(resp->reject);
	assert_false(resp->early); /* the grant may only leave after the vote is on disk */
	assert_true(o.hs_changed);
	assert_int_equal(o.hs.vote, 2);

	/* Restart from what was persisted. */
	struct keel_raft_hard_state hs = o.hs;
	keel_raft_free(r);
	struct keel_raft_config c = cfg_for(1, false, false);
	struct keel_err err;
	assert_int_equal(keel_raft_new(&c, NULL, &r, &err), 0);
	uint8_t confs[3][32];
	struct keel_raft_entry ents[3];
	for (int i = 0; i < 3; i++) {
		struct keel_raft_conf_change cc = {.type = KEEL_RAFT_ADD_VOTER, .node = (keel_raft_id)i + 1};
		size_t len = keel_raft_conf_change_encode(&cc, confs[i], sizeof(confs[i]));
		ents[i] = (struct keel_raft_entry){.term = 1, .index = (uint64_t)i + 1,
						   .type = KEEL_RAFT_ENTRY_CONF, .len = (uint32_t)len, .data = confs[i]};
	}
	assert_int_equal(keel_raft_restore(r, NULL, ents, 3, &hs, 3, &err), 0);
	step_ok(r, (struct keel_raft_msg){.type = KEEL_RAFT_MSG_VOTE, .from = 3, .term = 5, .index = 3, .log_term = 1});
	drain(r, &o);
	resp = find_msg(&o, KEEL_RAFT_MSG_VOTE_RESP, 3);
	assert_non_null(resp);
	assert_true(resp->reject);
	keel_raft_free(r);
}

/* Pre-vote: a node whose log is behind neither wins nor raises anyone's term. */
static void raft_prevote_stale_log_cannot_win_or_disrupt(void **state)
{
	struct out o;
	struct keel_raft *f = node_new(2, 3, true, false);
	drain(f, &o);
	/* Node 2 follows leader 1 of term 2 and holds entry 4 of that term. */
	struct keel_raft_entry e = {.term = 2, .index = 4};
	step_ok(f, (struct keel_raft_msg){.type = KEEL_RAFT_MSG_APPEND, .from = 1, .term = 2, .index = 3,
					  .log_term = 1, .commit = 3, .n_entries = 1, .entries = &e});
	drain(f, &o);
	assert_int_equal(keel_raft_last_index(f), 4);
	/* Node 3 was partitioned and only has the bootstrap entries; it asks for a pre-vote. */
	step_ok(f, (struct keel_raft_msg){.type = KEEL_RAFT_MSG_PREVOTE, .from = 3, .term = 3, .index = 3,
					  .log_term = 1});
	drain(f, &o);
	const struct keel_raft_msg *resp = find_msg(&o, KEEL_RAFT_MSG_PREVOTE_RESP, 3);
	assert_non_null(resp);
	assert_true(resp->reject);
	assert_int_equal(keel_raft_term(f), 2); /* a pre-vote moves no term */
	assert_int_equal(keel_raft_leader(f), 1);
	struct keel_raft_msg rejection = *resp;

	/* The stale node itself: its pre-campaign does not raise its own term either, and the
	 * rejection ends it as a follower. */
	struct keel_raft *s = node_new(3, 3, true, false);
	drain(s, &o);
	keel_raft_campaign(s);
	assert_int_equal(keel_raft_role(s), KEEL_RAFT_PRE_CANDIDATE);
	assert_int_equal(keel_raft_term(s), 1);
	step_ok(s, rejection);
	step_ok(s, (struct keel_raft_msg){.type = KEEL_RAFT_MSG_PREVOTE_RESP, .from = 1, .term = 2, .reject = true});
	assert_int_equal(keel_raft_role(s), KEEL_RAFT_FOLLOWER);
	assert_true(keel_raft_term(s) <= 2);
	keel_raft_free(s);
	keel_raft_free(f);
}

/* With check-quorum, a leader that hears from nobody steps down within an election timeout. */
static void raft_check_quorum_leader_steps_down_alone(void **state)
{
	struct keel_raft *r = node_new(1, 3, true, true);
	struct out o;
	drain(r, &o);
	make_leader(r, 3);
	for (int i = 0; i < 25 && keel_raft_role(r) == KEEL_RAFT_LEADER; i++) {
		keel_raft_tick(r);
		drain(r, &o);
	}
	assert_int_equal(keel_raft_role(r), KEEL_RAFT_FOLLOWER);
	keel_raft_free(r);
}

/* ReadIndex: a leader answers only after a quorum confirms it is still the leader, and a
 * leader cut off never answers; its requests fail when it steps down. */
static void raft_read_index_needs_quorum_and_fails_on_step_down(void **state)
{
	struct keel_raft *r = node_new(1, 3, true, true);
	struct out o;
	drain(r, &o);
	make_leader(r, 3);
	uint64_t term = keel_raft_term(r);
	/* Commit the no-op so reads may be served. */
	step_ok(r, (struct keel_raft_msg){.type = KEEL_RAFT_MSG_APPEND_RESP, .from = 2, .term = term, .index = 4});
	drain(r, &o);
	assert_int_equal(keel_raft_commit_index(r), 4);

	assert_int_equal(keel_raft_read_index(r, 77), 0);
	drain(r, &o);
	assert_int_equal(o.n_reads, 0);
	const struct keel_raft_msg *hb = find_msg(&o, KEEL_RAFT_MSG_HEARTBEAT, 2);
	assert_non_null(hb);
	assert_true(hb->context > 0);
	uint64_t round = hb->context;
	/* An acknowledgement of an older round does not count. */
	step_ok(r, (struct keel_raft_msg){.type = KEEL_RAFT_MSG_HEARTBEAT_RESP, .from = 2, .term = term,
					  .context = round - 1});
	drain(r, &o);
	assert_int_equal(o.n_reads, 0);
	step_ok(r, (struct keel_raft_msg){.type = KEEL_RAFT_MSG_HEARTBEAT_RESP, .from = 2, .term = term,
					  .context = round});
	drain(r, &o);
	assert_int_equal(o.n_reads, 1);
	assert_int_equal(o.reads[0].context, 77);
	assert_int_equal(o.reads[0].index, 4);
	assert_true(o.reads[0].ok);

	/* Now cut off: the read waits, and fails when check-quorum deposes the leader. */
	assert_int_equal(keel_raft_read_index(r, 78), 0);
	for (int i = 0; i < 25 && keel_raft_role(r) == KEEL_RAFT_LEADER; i++) {
		keel_raft_tick(r);
		drain(r, &o);
		for (size_t k = 0; k < o.n_reads; k++)
			assert_false(o.reads[k].ok);
		if (o.n_reads)
			break;
	}
	assert_int_equal(keel_raft_role(r), KEEL_RAFT_FOLLOWER);
	assert_int_equal(o.n_reads, 1);
	assert_int_equal(o.reads[0].context, 78);
	assert_false(o.reads[0].ok);
	keel_raft_free(r);
}

static void raft_leader_transfer_sends_timeout_now_when_caught_up(void **state)
{
	struct keel_raft *r = node_new(1, 3, true, true);
	struct out o;
	drain(r, &o);
	make_leader(r, 3);
	uint64_t term = keel_raft_term(r);
	assert_int_equal(keel_raft_transfer_leader(r, 1), -EINVAL);
	assert_int_equal(keel_raft_transfer_leader(r, 9), -EINVAL);
	assert_int_equal(keel_raft_transfer_leader(r, 2), 0);
	assert_int_equal(keel_raft_propose(r, "x", 1, NULL), -EBUSY);
	drain(r, &o);
	assert_null(find_msg(&o, KEEL_RAFT_MSG_TIMEOUT_NOW, 2));
	step_ok(r, (struct keel_raft_msg){.type = KEEL_RAFT_MSG_APPEND_RESP, .from = 2, .term = term,
					  .index = keel_raft_last_index(r)});
	drain(r, &o);
	assert_non_null(find_msg(&o, KEEL_RAFT_MSG_TIMEOUT_NOW, 2));
	keel_raft_free(r);
}

static void raft_follower_forwards_proposals_and_refuses_without_leader(void **state)
{
	struct keel_raft *f = node_new(2, 3, true, true);
	struct out o;
	drain(f, &o);
	assert_int_equal(keel_raft_propose(f, "x", 1, NULL), -KEEL_ENOT_LEADER);
	assert_int_equal(keel_raft_read_index(f, 1), -KEEL_ENOT_LEADER);
	step_ok(f, (struct keel_raft_msg){.type = KEEL_RAFT_MSG_HEARTBEAT, .from = 1, .term = 2});
	drain(f, &o);
	uint64_t idx = 99;
	assert_int_equal(keel_raft_propose(f, "xy", 2, &idx), 0);
	assert_int_equal(idx, 0);
	assert_int_equal(keel_raft_read_index(f, 5), 0);
	struct keel_raft_ready rd;
	assert_true(keel_raft_ready(f, &rd));
	bool saw_prop = false, saw_read = false;
	for (size_t i = 0; i < rd.n_msgs; i++) {
		if (rd.msgs[i].type == KEEL_RAFT_MSG_PROPOSE) {
			saw_prop = true;
			assert_int_equal(rd.msgs[i].to, 1);
			assert_int_equal(rd.msgs[i].n_entries, 1);
			assert_memory_equal(rd.msgs[i].entries[0].data, "xy", 2);
		}
		if (rd.msgs[i].type == KEEL_RAFT_MSG_READ_INDEX)
			saw_read = true;
	}
	keel_raft_advance(f, &rd);
	assert_true(saw_prop);
	assert_true(saw_read);
	/* A new term (a new leader, perhaps) drops the forwarded read: the driver must retry. */
	step_ok(f, (struct keel_raft_msg){.type = KEEL_RAFT_MSG_HEARTBEAT, .from = 3, .term = 3});
	drain(f, &o);
	assert_int_equal(o.n_reads, 1);
	assert_int_equal(o.reads[0].context, 5);
	assert_false(o.reads[0].ok);
	keel_raft_free(f);
}

/* A membership change proposed on a follower travels to the leader as a CONF entry in a
 * PROPOSE message; the leader checks it as if proposed there and appends it (effective at once),
 * or drops it when it does not apply now. */
static void raft_follower_forwards_conf_changes_and_leader_checks_them(void **state)
{
	(void)state;
	struct keel_raft_conf_change add4 = {.type = KEEL_RAFT_ADD_VOTER, .node = 4, .context = "ctx",
					     .context_len = 3};
	struct out o;
	/* The follower side. */
	struct keel_raft *f = node_new(2, 3, true, true);
	drain(f, &o);
	assert_int_equal(keel_raft_propose_conf_change(f, &add4, NULL), -KEEL_ENOT_LEADER);
	step_ok(f, (struct keel_raft_msg){.type = KEEL_RAFT_MSG_HEARTBEAT, .from = 1, .term = 2});
	drain(f, &o);
	uint64_t idx = 99;
	assert_int_equal(keel_raft_propose_conf_change(f, &add4, &idx), 0);
	assert_int_equal(idx, 0);
	assert_false(keel_raft_conf_has_voter(keel_raft_conf(f), 4)); /* only the leader decides */
	struct keel_raft_ready rd;
	assert_true(keel_raft_ready(f, &rd));
	struct keel_raft_entry fwd = {0};
	uint8_t fwd_data[64];
	for (size_t i = 0; i < rd.n_msgs; i++) {
		if (rd.msgs[i].type != KEEL_RAFT_MSG_PROPOSE)
			continue;
		assert_int_equal(rd.msgs[i].to, 1);
		assert_int_equal(rd.msgs[i].n_entries, 1);
		fwd = rd.msgs[i].entries[0];
		assert_true(fwd.len <= sizeof(fwd_data));
		memcpy(fwd_data, fwd.data, fwd.len);
		fwd.data = fwd_data;
	}
	keel_raft_advance(f, &rd);
	assert_int_equal(fwd.type, KEEL_RAFT_ENTRY_CONF);
	keel_raft_free(f);

	/* The leader side: before its first commit in the term the change is dropped. */
	struct keel_raft *l = node_new(1, 3, true, true);
	drain(l, &o);
	make_leader(l, 3);
	uint64_t last = keel_raft_last_index(l);
	struct keel_raft_msg prop = {.type = KEEL_RAFT_MSG_PROPOSE, .from = 2, .term = keel_raft_term(l),
				     .n_entries = 1, .entries = &fwd};
	step_ok(l, prop);
	drain(l, &o);
	assert_int_equal(keel_raft_last_index(l), last);
	assert_false(keel_raft_conf_has_voter(keel_raft_conf(l), 4));
	step_ok(l, (struct keel_raft_msg){.type = KEEL_RAFT_MSG_APPEND_RESP, .from = 2,
					  .term = keel_raft_term(l), .index = last});
	drain(l, &o);
	/* Now it applies: appended as a CONF entry, effective at once, replicated to 4 too. */
	prop.term = keel_raft_term(l);
	step_ok(l, prop);
	assert_int_equal(keel_raft_last_index(l), last + 1);
	assert_true(keel_raft_conf_has_voter(keel_raft_conf(l), 4));
	const struct keel_raft_entry *e = keel_raft_entry_at(l, last + 1);
	assert_non_null(e);
	assert_int_equal(e->type, KEEL_RAFT_ENTRY_CONF);
	struct keel_raft_conf_change back;
	assert_int_equal(keel_raft_conf_change_decode(e->data, e->len, &back), 0);
	assert_true(back.node == 4 && back.context_len == 3);
	assert_memory_equal(back.context, "ctx", 3);
	drain(l, &o);
	keel_raft_tick(l); /* a heartbeat round reaches the new member */
	drain(l, &o);
	bool to4 = false;
	for (size_t i = 0; i < o.n_msgs; i++)
		to4 = to4 || o.msgs[i].to == 4;
	assert_true(to4);
	/* A second change while this one is uncommitted, and a nonsensical one, are dropped. */
	struct keel_raft_conf_change rm9 = {.type = KEEL_RAFT_REMOVE_NODE, .node = 9};
	uint8_t buf[64];
	struct keel_raft_entry bad = {.type = KEEL_RAFT_ENTRY_CONF, .data = buf,
				      .len = (uint32_t)keel_raft_conf_change_encode(&rm9, buf, sizeof(buf))};
	prop.entries = &bad;
	step_ok(l, prop);
	assert_int_equal(keel_raft_last_index(l), last + 1);
	for (keel_raft_id p = 2; p <= 3; p++) /* three of the four voters now */
		step_ok(l, (struct keel_raft_msg){.type = KEEL_RAFT_MSG_APPEND_RESP, .from = p,
						  .term = keel_raft_term(l), .index = last + 1});
	drain(l, &o);
	assert_int_equal(keel_raft_commit_index(l), last + 1);
	step_ok(l, prop);
	assert_int_equal(keel_raft_last_index(l), last + 1);
	/* A malformed CONF payload is dropped too. */
	bad.len = 3;
	step_ok(l, prop);
	assert_int_equal(keel_raft_last_index(l), last + 1);
	keel_raft_free(l);
}

static void raft_follower_that_loses_its_leader_drops_forwarded_reads(void **state)
{
	struct keel_raft *f = node_new(2, 3, true, true);
	struct out o;
	drain(f, &o);
	step_ok(f, (struct keel_raft_msg){.type = KEEL_RAFT_MSG_HEARTBEAT, .from = 1, .term = 2});
	drain(f, &o);
	assert_int_equal(keel_raft_read_index(f, 7), 0);
	drain(f, &o);
	assert_non_null(find_msg(&o, KEEL_RAFT_MSG_READ_INDEX, 1));
	assert_int_equal(o.n_reads, 0);
	/* The leader falls silent (a partition, and the request with it). Pre-vote keeps the
	 * term, so only losing the leader can tell the driver that no answer will come. */
	uint64_t term = keel_raft_term(f);
	for (int i = 0; i < 1000 && keel_raft_role(f) == KEEL_RAFT_FOLLOWER; i++)
		keel_raft_tick(f);
	assert_int_equal(keel_raft_role(f), KEEL_RAFT_PRE_CANDIDATE);
	drain(f, &o);
	assert_int_equal(keel_raft_term(f), term);
	assert_int_equal(o.n_reads, 1);
	assert_int_equal(o.reads[0].context, 7);
	assert_false(o.reads[0].ok);
	keel_raft_free(f);
}

static void raft_malformed_messages_are_refused_without_effect(void **state)
{
	struct keel_raft *f = node_new(2, 3, true, true);
	struct out o;
	drain(f, &o);
	uint64_t term = keel_raft_term(f), last = keel_raft_last_index(f);
	struct keel_raft_entry gap = {.term = 2, .index = 9};
	struct keel_raft_entry future = {.term = 7, .index = 4};
	struct keel_raft_entry nodata = {.term = 2, .index = 4, .len = 5, .data = NULL};
	struct keel_raft_msg bad[] = {
		{.type = 0, .from = 1, .to = 2, .term = 2},
		{.type = KEEL_RAFT_MSG__MAX, .from = 1, .to = 2, .term = 2},
		{.type = KEEL_RAFT_MSG_APPEND, .from = 0, .to = 2, .term = 2},
		{.type = KEEL_RAFT_MSG_APPEND, .from = 2, .to = 2, .term = 2},
		{.type = KEEL_RAFT_MSG_APPEND, .from = 1, .to = 3, .term = 2},
		{.type = KEEL_RAFT_MSG_APPEND, .from = 1, .to = 2, .term = 2, .index = 3, .log_term = 1,
		 .n_entries = 1, .entries = &gap},
		{.type = KEEL_RAFT_MSG_APPEND, .from = 1, .to = 2, .term = 2, .index = 3, .log_term = 1,
		 .n_entries = 1, .entries = &future},
		{.type = KEEL_RAFT_MSG_APPEND, .from = 1, .to = 2, .term = 2, .index = 3, .log_term = 1,
		 .n_entries = 1, .entries = &nodata},
		{.type = KEEL_RAFT_MSG_APPEND, .from = 1, .to = 2, .term = 2, .n_entries = 2, .entries = NULL},
		{.type = KEEL_RAFT_MSG_SNAPSHOT, .from = 1, .to = 2, .term = 2},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(keel_raft_step(f, &bad[i]), -EINVAL);
	assert_int_equal(keel_raft_term(f), term);
	assert_int_equal(keel_raft_last_index(f), last);
	assert_false(keel_raft_has_ready(f));
	keel_raft_free(f);
}

static void raft_conf_change_codec_and_rules(void **state)
{
	struct keel_raft_conf_change cc = {.type = KEEL_RAFT_ADD_LEARNER, .node = 0x1122334455667788ull,
					   .context = "http://10.0.0.1:2380", .context_len = 20};
	uint8_t buf[64];
	size_t n = keel_raft_conf_change_encode(&cc, buf, sizeof(buf));
	assert_int_equal(n, 34);
	assert_int_equal(keel_raft_conf_change_encode(&cc, buf, 10), 34); /* says what it needs */
	struct keel_raft_conf_change back;
	assert_int_equal(keel_raft_conf_change_decode(buf, n, &back), 0);
	assert_int_equal(back.type, KEEL_RAFT_ADD_LEARNER);
	assert_true(back.node == cc.node);
	assert_int_equal(back.context_len, 20);
	assert_memory_equal(back.context, cc.context, 20);
	assert_int_equal(keel_raft_conf_change_decode(buf, n - 1, &back), -EINVAL);
	buf[0] = 9;
	assert_int_equal(keel_raft_conf_change_decode(buf, n, &back), -EINVAL);

	/* On a leader: one change at a time, and only sensible ones. */
	struct keel_raft *r = node_new(1, 3, true, true);
	struct out o;
	drain(r, &o);
	make_leader(r, 3);
	struct keel_raft_conf_change add4 = {.type = KEEL_RAFT_ADD_LEARNER, .node = 4};
	assert_int_equal(keel_raft_propose_conf_change(r, &add4, NULL), -EBUSY); /* no commit in term yet */
	step_ok(r, (struct keel_raft_msg){.type = KEEL_RAFT_MSG_APPEND_RESP, .from = 2,
					  .term = keel_raft_term(r), .index = keel_raft_last_index(r)});
	drain(r, &o);
	struct keel_raft_conf_change add2 = {.type = KEEL_RAFT_ADD_VOTER, .node = 2};
	struct keel_raft_conf_change rm9 = {.type = KEEL_RAFT_REMOVE_NODE, .node = 9};
	assert_int_equal(keel_raft_propose_conf_change(r, &add2, NULL), -EINVAL);
	assert_int_equal(keel_raft_propose_conf_change(r, &rm9, NULL), -EINVAL);
	uint64_t idx;
	assert_int_equal(keel_raft_propose_conf_change(r, &add4, &idx), 0);
	assert_true(keel_raft_conf_has_learner(keel_raft_conf(r), 4)); /* effective when appended */
	struct keel_raft_conf_change promote = {.type = KEEL_RAFT_ADD_VOTER, .node = 4};
	assert_int_equal(keel_raft_propose_conf_change(r, &promote, NULL), -EBUSY); /* one at a time */
	/* Once the learner's addition commits, promotion still waits for it to catch up. */
	step_ok(r, (struct keel_raft_msg){.type = KEEL_RAFT_MSG_APPEND_RESP, .from = 2,
					  .term = keel_raft_term(r), .index = idx});
	drain(r, &o);
	assert_int_equal(keel_raft_commit_index(r), idx);
	assert_int_equal(keel_raft_propose_conf_change(r, &promote, NULL), -EBUSY); /* learner lags */
	step_ok(r, (struct keel_raft_msg){.type = KEEL_RAFT_MSG_APPEND_RESP, .from = 4,
					  .term = keel_raft_term(r), .index = idx});
	drain(r, &o);
	assert_int_equal(keel_raft_propose_conf_change(r, &promote, NULL), 0);
	assert_true(keel_raft_conf_has_voter(keel_raft_conf(r), 4));
	keel_raft_free(r);
}

/* Group commit: the driver may keep feeding the core while a ready is being persisted; the
 * next ready carries exactly what arrived meanwhile. */
static void raft_steps_between_ready_and_advance_batch_into_next_ready(void **state)
{
	struct keel_raft *r = node_new(1, 1, true, true);
	struct out o;
	drain(r, &o);
	for (int i = 0; i < 20 && keel_raft_role(r) != KEEL_RAFT_LEADER; i++)
		keel_raft_tick(r);
	drain(r, &o);
	keel_raft_propose(r, "a", 1, NULL);
	struct keel_raft_ready rd;
	assert_true(keel_raft_ready(r, &rd));
	assert_int_equal(rd.n_entries, 1);
	uint64_t first = rd.entries[0].index;
	for (int i = 0; i < 5; i++)
		assert_int_equal(keel_raft_propose(r, "b", 1, NULL), 0);
	assert_false(keel_raft_has_ready(r)); /* not before advance */
	keel_raft_advance(r, &rd);
	assert_true(keel_raft_ready(r, &rd));
	assert_int_equal(rd.n_entries, 5);
	assert_int_equal(rd.entries[0].index, first + 1);
	assert_int_equal(rd.n_committed, 1); /* the first one, persisted by the previous ready */
	keel_raft_advance(r, &rd);
	drain(r, &o);
	assert_int_equal(keel_raft_commit_index(r), first + 5);
	keel_raft_free(r);
}

/* A driver's storage for the window tests: what the node persisted, by index. */
struct tstore {
	struct keel_raft_entry ents[128];
	char data[128][32];
	uint64_t last;
	int fail; /* 0, or the error reads return */
	bool wrong_term;
	unsigned reads;
	/* the last APPEND seen going to peer 3 */
	bool append_to_3;
	uint64_t a3_prev, a3_first, a3_n;
	char a3_data[32];
};

static int tstore_read(void *ud, uint64_t lo, uint64_t hi, size_t max_bytes, struct keel_raft_entry **ret,
		       size_t *ret_n, void **ret_data)
{
	(void)max_bytes;
	struct tstore *t = ud;
	t->reads++;
	if (t->fail)
		return t->fail;
	assert_true(lo >= 1 && lo <= hi && hi <= t->last);
	size_t n = (size_t)(hi - lo + 1);
	struct keel_raft_entry *e = keel_malloc(n * sizeof(*e));
	char *data = keel_malloc(n * 32);
	assert_non_null(e);
	assert_non_null(data);
	for (size_t k = 0; k < n; k++) {
		e[k] = t->ents[lo + k];
		memcpy(data + 32 * k, t->data[lo + k], 32);
		e[k].data = e[k].len ? data + 32 * k : NULL;
	}
	if (t->wrong_term)
		e[n - 1].term++;
	*ret = e;
	*ret_n = n;
	*ret_data = data;
	return 0;
}

static void tstore_persist(struct tstore *t, const struct keel_raft_ready *rd)
{
	for (size_t i = 0; i < rd->n_entries; i++) {
		const struct keel_raft_entry *e = &rd->entries[i];
		assert_true(e->index < 128 && e->len <= 32);
		t->ents[e->index] = *e;
		if (e->len)
			memcpy(t->data[e->index], e->data, e->len);
		t->last = e->index;
	}
}

/* drain(), persisting entries into t and noting what goes to peer 3. */
static void drain_store(struct keel_raft *r, struct tstore *t)
{
	struct keel_raft_ready rd;
	t->append_to_3 = false;
	while (keel_raft_ready(r, &rd)) {
		tstore_persist(t, &rd);
		for (size_t i = 0; i < rd.n_msgs; i++) {
			const struct keel_raft_msg *m = &rd.msgs[i];
			if (m->to != 3 || m->type != KEEL_RAFT_MSG_APPEND)
				continue;
			t->append_to_3 = true;
			t->a3_prev = m->index;
			t->a3_n = m->n_entries;
			t->a3_first = m->n_entries ? m->entries[0].index : 0;
			if (m->n_entries && m->entries[0].len)
				memcpy(t->a3_data, m->entries[0].data, m->entries[0].len);
		}
		keel_raft_advance(r, &rd);
	}
}

/* With a storage, applied and persisted entries leave memory beyond the window; a follower that
 * needs them gets them read back, checked against the terms the core kept. A read that fails is
 * tried again when the follower next answers; a storage that compacted them means a snapshot;
 * entries that do not fit the log are never sent. */
static void raft_window_reads_back_evicted_entries(void **state)
{
	struct tstore *t = calloc(1, sizeof(*t));
	persist_to = t;
	struct keel_raft_config c = cfg_for(1, false, false);
	c.read_entries = tstore_read;
	c.read_ud = t;
	c.mem_entries = 4;
	struct keel_raft_conf conf = voters(3);
	struct keel_raft *r;
	struct keel_err err;
	assert_int_equal(keel_raft_new(&c, &conf, &r, &err), 0);
	drain_store(r, t);
	make_leader(r, 3); /* the no-op at 4 */
	drain_store(r, t);
	for (int i = 0; i < 20; i++) {
		char v[8] = "v";
		v[1] = (char)('a' + i);
		assert_int_equal(keel_raft_propose(r, v, 2, NULL), 0);
	}
	drain_store(r, t);
	uint64_t last = keel_raft_last_index(r);
	assert_int_equal(last, 24);
	/* Node 2 holds everything: committed, applied, and all but the last 4 leave memory. */
	step_ok(r, (struct keel_raft_msg){.type = KEEL_RAFT_MSG_APPEND_RESP, .from = 2,
					  .term = keel_raft_term(r), .index = last});
	drain_store(r, t);
	assert_int_equal(keel_raft_applied_index(r), last);
	assert_int_equal(keel_raft_mem_first_index(r), last - 3);
	assert_null(keel_raft_entry_at(r, 10));
	uint64_t term;
	assert_true(keel_raft_term_at(r, 3, &term));
	assert_int_equal(term, 1);
	assert_true(keel_raft_term_at(r, 10, &term));
	assert_int_equal(term, keel_raft_term(r));
	assert_int_equal(keel_raft_first_index(r), 1); /* still in the log, just not in memory */

	/* Node 3 holds only the bootstrap entries (the leader's first probe was lost). When it
	 * answers a heartbeat, the leader probes again from 4, which it must read back. A read
	 * that fails sends nothing and pauses the peer (no busy loop) until its next answer. */
	uint64_t lt = keel_raft_term(r);
	struct keel_raft_msg hb_resp = {.type = KEEL_RAFT_MSG_HEARTBEAT_RESP, .from = 3, .term = lt};
	t->fail = -EIO;
	step_ok(r, hb_resp);
	drain_store(r, t);
	assert_false(t->append_to_3);
	assert_int_equal(t->reads, 1);
	assert_false(keel_raft_has_ready(r));

	/* A storage returning entries that do not match the log's terms is not believed. */
	t->fail = 0;
	t->wrong_term = true;
	step_ok(r, hb_resp);
	drain_store(r, t);
	assert_false(t->append_to_3);
	assert_int_equal(t->reads, 2);
	t->wrong_term = false;

	/* The storage no longer has them and there is no snapshot yet: wait. */
	t->fail = -ENOENT;
	step_ok(r, hb_resp);
	drain_store(r, t);
	assert_false(t->append_to_3);
	assert_int_equal(t->reads, 3);

	/* With a snapshot (at 22, the whole log kept behind it), the follower gets that instead. */
	assert_int_equal(keel_raft_compact(r, 22, 100), 0);
	assert_int_equal(keel_raft_first_index(r), 1);
	step_ok(r, hb_resp);
	struct out o;
	drain(r, &o);
	const struct keel_raft_msg *snap = find_msg(&o, KEEL_RAFT_MSG_SNAPSHOT, 3);
	assert_non_null(snap);
	assert_int_equal(snap->snapshot.index, 22);
	keel_raft_report_snapshot(r, 3, false); /* the transfer failed */

	/* The storage has them again. After the failed transfer the leader starts over from
	 * what the follower is known to hold (nothing): 1..20 are read back, 21..24 are in
	 * memory. */
	t->fail = 0;
	step_ok(r, hb_resp);
	drain_store(r, t);
	assert_true(t->append_to_3);
	assert_int_equal(t->a3_prev, 0);
	assert_int_equal(t->a3_first, 1);
	assert_int_equal(t->a3_n, 20);
	assert_int_equal(t->reads, 5); /* the one that found them compacted counted too */

	/* It takes them; the next batch comes from memory. */
	step_ok(r, (struct keel_raft_msg){.type = KEEL_RAFT_MSG_APPEND_RESP, .from = 3, .term = lt, .index = 20});
	drain_store(r, t);
	assert_true(t->append_to_3);
	assert_int_equal(t->a3_first, 21);
	assert_int_equal(t->a3_n, 4);
	assert_int_equal(memcmp(t->a3_data, "vq", 2), 0); /* entry 21 is the 17th proposal */
	assert_int_equal(t->reads, 5);

	/* Compaction, below the window (only terms go) and into it, keeps the terms and the
	 * configuration right: snapshots still name the three voters. */
	assert_int_equal(keel_raft_compact(r, 23, 10), 0);
	assert_int_equal(keel_raft_first_index(r), 14);
	assert_true(keel_raft_term_at(r, 14, &term));
	assert_int_equal(term, lt);
	assert_true(keel_raft_term_at(r, 13, &term)); /* the entry before the log */
	assert_int_equal(term, lt);
	assert_false(keel_raft_term_at(r, 12, &term));
	assert_int_equal(keel_raft_mem_first_index(r), 21);
	struct keel_raft_snapshot_meta meta;
	assert_int_equal(keel_raft_snapshot_meta_at(r, 23, &meta), 0);
	assert_int_equal(meta.conf.n_voters, 3);
	assert_int_equal(keel_raft_snapshot_meta_at(r, 15, &meta), -EINVAL); /* before memory */
	assert_int_equal(keel_raft_compact(r, 24, 2), 0);
	assert_int_equal(keel_raft_first_index(r), 23);
	assert_int_equal(keel_raft_mem_first_index(r), 23);
	assert_int_equal(keel_raft_snapshot_meta_at(r, 24, &meta), 0);
	assert_int_equal(meta.conf.n_voters, 3);
	assert_int_equal(meta.term, lt);
	keel_raft_free(r);
	persist_to = NULL;
	free(t);
}

/* A driver that applied committed entries itself (keel_node after reading them back from the WAL)
 * may restore them without their data: the memory window starts after the last of them. Never a
 * configuration change, never one it did not apply, never without a storage to read them from. */
static void raft_restore_takes_applied_entries_without_data(void **state)
{
	struct tstore *t = calloc(1, sizeof(*t));
	uint8_t confs[3][32];
	struct keel_raft_entry ents[10];
	for (int i = 0; i < 3; i++) {
		struct keel_raft_conf_change cc = {.type = KEEL_RAFT_ADD_VOTER, .node = (keel_raft_id)i + 1};
		size_t len = keel_raft_conf_change_encode(&cc, confs[i], sizeof(confs[i]));
		ents[i] = (struct keel_raft_entry){.term = 1, .index = (uint64_t)i + 1,
						   .type = KEEL_RAFT_ENTRY_CONF, .len = (uint32_t)len, .data = confs[i]};
	}
	for (int i = 3; i < 10; i++)
		ents[i] = (struct keel_raft_entry){.term = 2, .index = (uint64_t)i + 1, .len = 3,
						   .data = i >= 8 ? "abc" : NULL};
	struct keel_raft_hard_state hs = {.term = 2, .vote = 1, .commit = 9};
	struct keel_err err;
	for (int round = 0; round < 5; round++) {
		struct keel_raft_config c = cfg_for(1, false, false);
		if (round != 1) {
			c.read_entries = tstore_read;
			c.read_ud = t;
		}
		struct keel_raft *r;
		assert_int_equal(keel_raft_new(&c, NULL, &r, &err), 0);
		uint64_t applied = round == 2 ? 7 : 8;
		if (round == 3)
			ents[1].data = NULL; /* a conf change without its data */
		if (round == 4)
			ents[1].data = confs[1];
		int rc = keel_raft_restore(r, NULL, ents, 10, &hs, applied, &err);
		if (round == 0 || round == 4) {
			assert_int_equal(rc, 0);
			assert_int_equal(keel_raft_conf(r)->n_voters, 3);
			assert_int_equal(keel_raft_last_index(r), 10);
			assert_int_equal(keel_raft_mem_first_index(r), 9);
			assert_non_null(keel_raft_entry_at(r, 9));
			assert_null(keel_raft_entry_at(r, 8));
			uint64_t term;
			assert_true(keel_raft_term_at(r, 5, &term));
			assert_int_equal(term, 2);
		} else {
			assert_int_equal(rc, -EINVAL); /* 1: no storage, 2: 8 not applied, 3: conf */
		}
		keel_raft_free(r);
	}
	free(t);
}

/* Out of memory anywhere must surface as an error or a dropped message, never a crash or a
 * broken invariant (ASan/valgrind see leaks). */
static void raft_allocation_failures_are_survived(void **state)
{
	struct tstore *t = calloc(1, sizeof(*t));
	for (unsigned skip = 0; skip < 80; skip++) {
		struct keel_raft_config c = cfg_for(1, true, true);
		if (skip >= 40) {
			/* again with a window of 2 entries in memory (eviction allocates runs) */
			memset(t, 0, sizeof(*t));
			persist_to = t;
			c.read_entries = tstore_read;
			c.read_ud = t;
			c.mem_entries = 2;
		}
		struct keel_raft_conf conf = voters(1);
		struct keel_raft *r = NULL;
		struct keel_err err;
		keel_fault_arm(KEEL_FAULT_ALLOC, skip % 40, 1, ENOMEM);
		int rc = keel_raft_new(&c, &conf, &r, &err);
		if (rc == 0) {
			struct out o;
			for (int i = 0; i < 30; i++) {
				keel_raft_tick(r);
				keel_raft_propose(r, "payload", 7, NULL);
				drain(r, &o);
			}
			assert_true(keel_raft_commit_index(r) <= keel_raft_last_index(r));
			if (skip >= 40) /* the window holds again once memory is back */
				assert_true(keel_raft_mem_first_index(r) + 2 >= keel_raft_applied_index(r));
			keel_raft_free(r);
		} else {
			assert_int_equal(rc, -ENOMEM);
		}
		keel_fault_reset();
	}
	persist_to = NULL;
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(raft_single_node_elects_itself_and_commits),
		cmocka_unit_test(raft_figure8_old_term_entry_not_committed_by_counting),
		cmocka_unit_test(raft_vote_survives_restart),
		cmocka_unit_test(raft_prevote_stale_log_cannot_win_or_disrupt),
		cmocka_unit_test(raft_check_quorum_leader_steps_down_alone),
		cmocka_unit_test(raft_read_index_needs_quorum_and_fails_on_step_down),
		cmocka_unit_test(raft_leader_transfer_sends_timeout_now_when_caught_up),
		cmocka_unit_test(raft_follower_forwards_proposals_and_refuses_without_leader),
		cmocka_unit_test(raft_follower_forwards_conf_changes_and_leader_checks_them),
		cmocka_unit_test(raft_follower_that_loses_its_leader_drops_forwarded_reads),
		cmocka_unit_test(raft_malformed_messages_are_refused_without_effect),
		cmocka_unit_test(raft_conf_change_codec_and_rules),
		cmocka_unit_test(raft_steps_between_ready_and_advance_batch_into_next_ready),
		cmocka_unit_test(raft_allocation_failures_are_survived),
		cmocka_unit_test(raft_window_reads_back_evicted_entries),
		cmocka_unit_test(raft_restore_takes_applied_entries_without_data),
	};
	return cmocka_run_group_tests_name("raft/core", tests, NULL, NULL);
}
