/* Named regression scenarios for the consensus engine, each a whole cluster in the simulator
 * driven into one situation the random runs reach only by luck. The simulator checks Raft's
 * invariants after every event; each scenario also asserts its own outcome. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "sim.h"

static struct sim *quiet_cluster(uint64_t seed, unsigned nodes)
{
	struct sim_opts o;
	sim_opts_default(&o, seed, nodes);
	o.pre_vote = o.check_quorum = true;
	o.loss = o.dup = 0;
	o.crash_every_ms = o.partition_every_ms = o.member_every_ms = o.transfer_every_ms =
		o.disk_fault_every_ms = 0;
	o.clients = 0;
	struct sim *s;
	assert_int_equal(sim_new(&o, &s), 0);
	sim_quiet(s);
	return s;
}

static void check_ok(struct sim *s)
{
	if (sim_error(s))
		fail_msg("simulator: %s", sim_error(s));
}

static bool has_leader(struct sim *s, void *arg)
{
	(void)arg;
	return sim_leader(s) != 0;
}

struct leader_other_than {
	keel_raft_id not;
};

static bool new_leader(struct sim *s, void *arg)
{
	keel_raft_id l = sim_leader(s);
	return l && l != ((struct leader_other_than *)arg)->not;
}

static keel_raft_id elect(struct sim *s)
{
	assert_int_equal(sim_run_while_not(s, has_leader, NULL, 5000), 0);
	check_ok(s);
	return sim_leader(s);
}

static bool op_done(struct sim *s, void *arg)
{
	return sim_op_status(s, *(int *)arg) != SIM_OP_PENDING;
}

static enum sim_op_status wait_op(struct sim *s, int op, uint64_t timeout)
{
	sim_run_while_not(s, op_done, &op, timeout);
	check_ok(s);
	return sim_op_status(s, op);
}

static keel_raft_id other_than(struct sim *s, keel_raft_id a, keel_raft_id b)
{
	for (keel_raft_id id = 1; id <= 5; id++)
		if (id != a && id != b && sim_node_up(s, id))
			return id;
	return 0;
}

/* The Raft paper's Figure 8, end to end: an old-term entry replicated to a majority by a later
 * leader, which then crashes, must not be lost if it was reported committed — and a node with an
 * entry of a newer term but a shorter log must not overwrite committed entries. */
static void sim_figure8(void **state)
{
	struct sim *s = quiet_cluster(8, 5);
	keel_raft_id l1 = elect(s);
	/* l1 writes an entry that reaches only one follower, then crashes. */
	keel_raft_id f = other_than(s, l1, 0);
	for (keel_raft_id id = 1; id <= 5; id++)
		if (id != l1 && id != f)
			sim_link(s, l1, id, false);
	int w1 = sim_put(s, l1, 0, 111);
	sim_run_until(s, sim_now(s) + 50);
	sim_crash(s, l1);
	sim_heal_all(s);
	assert_int_not_equal(sim_op_status(s, w1), SIM_OP_OK);
	/* Someone else leads; l1 comes back; leadership moves around with new writes. */
	struct leader_other_than lo = {l1};
	assert_int_equal(sim_run_while_not(s, new_leader, &lo, 5000), 0);
	keel_raft_id l2 = sim_leader(s);
	int w2 = sim_put(s, l2, 0, 222);
	assert_int_equal(wait_op(s, w2, 3000), SIM_OP_OK);
	sim_restart(s, l1);
	sim_crash(s, l2);
	lo.not = l2;
	assert_int_equal(sim_run_while_not(s, new_leader, &lo, 5000), 0);
	keel_raft_id l3 = sim_leader(s);
	int r = sim_get(s, l3, 0);
	assert_int_equal(wait_op(s, r, 3000), SIM_OP_OK);
	assert_int_equal(sim_op_value(s, r), 222); /* the committed write survived */
	sim_restart(s, l2);
	sim_run_until(s, sim_now(s) + 2000);
	check_ok(s);
	assert_int_equal(sim_check_history(s), 0);
	sim_free(s);
}

/* Pre-vote: a node cut off for a long time comes back without disrupting the leader, and with a
 * stale log it cannot win. */
static void sim_stale_node_cannot_win_or_disrupt(void **state)
{
	struct sim *s = quiet_cluster(21, 3);
	keel_raft_id l = elect(s);
	keel_raft_id lonely = other_than(s, l, 0);
	sim_isolate(s, lonely, true);
	for (unsigned i = 0; i < 20; i++)
		assert_int_equal(wait_op(s, sim_put(s, l, i % 4, 1000 + i), 3000), SIM_OP_OK);
	sim_run_until(s, sim_now(s) + 3000); /* many election timeouts alone */
	uint64_t term = keel_raft_term(sim_raft(s, l));
	assert_true(keel_raft_term(sim_raft(s, lonely)) <= term); /* pre-vote kept its term down */
	assert_int_not_equal(keel_raft_role(sim_raft(s, lonely)), KEEL_RAFT_LEADER);
	sim_isolate(s, lonely, false);
	sim_run_until(s, sim_now(s) + 2000);
	check_ok(s);
	assert_int_equal(sim_leader(s), l);
	assert_int_equal(keel_raft_term(sim_raft(s, l)), term);
	assert_int_equal(keel_raft_applied_index(sim_raft(s, lonely)), keel_raft_commit_index(sim_raft(s, l)));
	sim_free(s);
}

/* A leader cut off from the majority steps down (check-quorum) and a read sent to it never
 * returns a value older than a write the new leader acknowledged. */
static void sim_partitioned_leader_no_stale_read(void **state)
{
	struct sim *s = quiet_cluster(33, 3);
	keel_raft_id old = elect(s);
	assert_int_equal(wait_op(s, sim_put(s, old, 1, 5), 3000), SIM_OP_OK);
	sim_isolate(s, old, true);
	int stale = sim_get(s, old, 1);
	struct leader_other_than lo = {old};
	assert_int_equal(sim_run_while_not(s, new_leader, &lo, 5000), 0);
	keel_raft_id nl = sim_leader(s);
	assert_int_equal(wait_op(s, sim_put(s, nl, 1, 6), 3000), SIM_OP_OK);
	sim_run_until(s, sim_now(s) + 1000);
	assert_int_not_equal(keel_raft_role(sim_raft(s, old)), KEEL_RAFT_LEADER);
	/* The read through the deposed leader failed; it never answered 5. */
	enum sim_op_status st = wait_op(s, stale, 3500);
	assert_true(st == SIM_OP_FAILED || (st == SIM_OP_OK && sim_op_value(s, stale) == 6));
	sim_isolate(s, old, false);
	int fresh = sim_get(s, old, 1);
	st = wait_op(s, fresh, 3000);
	if (st == SIM_OP_OK)
		assert_int_equal(sim_op_value(s, fresh), 6);
	assert_int_equal(sim_check_history(s), 0);
	sim_free(s);
}

static bool leader_not_voter_gone(struct sim *s, void *arg)
{
	keel_raft_id removed = *(keel_raft_id *)arg;
	keel_raft_id l = sim_leader(s);
	return l && l != removed && !keel_raft_conf_has_voter(keel_raft_conf(sim_raft(s, l)), removed) &&
	       keel_raft_commit_index(sim_raft(s, l)) >= keel_raft_last_index(sim_raft(s, l));
}

/* Removing the leader: it commits its own removal, steps down, and the rest carry on. */
static void sim_remove_leader(void **state)
{
	struct sim *s = quiet_cluster(44, 3);
	keel_raft_id l = elect(s);
	assert_int_equal(wait_op(s, sim_put(s, l, 0, 1), 3000), SIM_OP_OK);
	struct keel_raft_conf_change cc = {.type = KEEL_RAFT_REMOVE_NODE, .node = l};
	assert_int_equal(keel_raft_propose_conf_change(sim_raft(s, l), &cc, NULL), 0);
	assert_int_equal(sim_run_while_not(s, leader_not_voter_gone, &l, 5000), 0);
	keel_raft_id nl = sim_leader(s);
	assert_int_not_equal(nl, l);
	assert_int_not_equal(keel_raft_role(sim_raft(s, l)), KEEL_RAFT_LEADER);
	assert_int_equal(keel_raft_conf(sim_raft(s, nl))->n_voters, 2);
	assert_int_equal(wait_op(s, sim_put(s, nl, 0, 2), 3000), SIM_OP_OK);
	/* The removed node does not disturb the new configuration. */
	sim_run_until(s, sim_now(s) + 3000);
	check_ok(s);
	assert_int_equal(sim_leader(s), nl);
	sim_free(s);
}

static bool caught_up(struct sim *s, void *arg)
{
	keel_raft_id id = *(keel_raft_id *)arg;
	keel_raft_id l = sim_leader(s);
	/* Caught up, and the leader knows it (what promotion checks). */
	return l && sim_raft(s, id) &&
	       keel_raft_applied_index(sim_raft(s, id)) == keel_raft_commit_index(sim_raft(s, l)) &&
	       keel_raft_peer_match(sim_raft(s, l), id) >= keel_raft_commit_index(sim_raft(s, l));
}

/* A learner added after the log was compacted catches up through a snapshot, then is promoted. */
static void sim_add_learner_needing_snapshot(void **state)
{
	struct sim_opts o;
	sim_opts_default(&o, 55, 3);
	o.loss = o.dup = 0;
	o.crash_every_ms = o.partition_every_ms = o.member_every_ms = o.transfer_every_ms =
		o.disk_fault_every_ms = 0;
	o.clients = 0;
	o.snapshot_every = 10;
	o.snapshot_keep = 2;
	struct sim *s;
	assert_int_equal(sim_new(&o, &s), 0);
	sim_quiet(s);
	keel_raft_id l = elect(s);
	for (unsigned i = 0; i < 40; i++)
		assert_int_equal(wait_op(s, sim_put(s, l, i % 4, 500 + i), 3000), SIM_OP_OK);
	assert_true(keel_raft_first_index(sim_raft(s, l)) > 10); /* compacted */
	keel_raft_id nid = 4;
	struct keel_raft_conf_change add = {.type = KEEL_RAFT_ADD_LEARNER, .node = nid};
	assert_int_equal(keel_raft_propose_conf_change(sim_raft(s, l), &add, NULL), 0);
	assert_int_equal(sim_add_node(s, nid), 0);
	assert_int_equal(sim_run_while_not(s, caught_up, &nid, 5000), 0);
	assert_true(keel_raft_snapshot(sim_raft(s, nid))->index > 10); /* it came by snapshot */
	char stats[512];
	sim_stats(s, stats, sizeof(stats));
	assert_null(strstr(stats, "snapshots=0 "));
	struct keel_raft_conf_change promote = {.type = KEEL_RAFT_ADD_VOTER, .node = nid};
	assert_int_equal(keel_raft_propose_conf_change(sim_raft(s, l), &promote, NULL), 0);
	sim_run_until(s, sim_now(s) + 500);
	assert_true(keel_raft_conf_has_voter(keel_raft_conf(sim_raft(s, l)), nid));
	int r = sim_get(s, nid, 3);
	assert_int_equal(wait_op(s, r, 3000), SIM_OP_OK);
	assert_int_equal(sim_op_value(s, r), 539);
	assert_int_equal(sim_check_history(s), 0);
	sim_free(s);
}

/* A crash in the middle of persisting (a torn write: only a prefix of it reached the disk)
 * loses nothing that was acknowledged, on any node. */
static void sim_torn_write_on_crash(void **state)
{
	struct sim *s = quiet_cluster(66, 3);
	keel_raft_id l = elect(s);
	int ops[30];
	for (unsigned round = 0; round < 6; round++) {
		for (unsigned i = 0; i < 5; i++)
			ops[round * 5 + i] = sim_put(s, sim_leader(s) ? sim_leader(s) : l, i % 4, round * 10 + i);
		sim_run_until(s, sim_now(s) + 2 + round); /* mid-flight */
		keel_raft_id victim = (keel_raft_id)(round % 3) + 1;
		sim_crash(s, victim); /* keeps a random prefix of its in-flight write */
		sim_run_until(s, sim_now(s) + 300);
		sim_restart(s, victim);
		sim_run_until(s, sim_now(s) + 700);
		check_ok(s);
	}
	elect(s);
	sim_run_until(s, sim_now(s) + 4000);
	unsigned acked = 0;
	for (unsigned i = 0; i < 30; i++)
		acked += sim_op_status(s, ops[i]) == SIM_OP_OK;
	assert_true(acked > 0);
	assert_int_equal(sim_check_history(s), 0); /* every acknowledged write is in the log */
	sim_free(s);
}

/* Disk full / failing fsync on the leader: it stops (crashes), nothing acknowledged is lost, and
 * the others elect a leader and go on. */
static void sim_disk_failure_stops_node_without_loss(void **state)
{
	struct sim *s = quiet_cluster(77, 3);
	keel_raft_id l = elect(s);
	for (unsigned i = 0; i < 5; i++)
		assert_int_equal(wait_op(s, sim_put(s, l, 2, 700 + i), 3000), SIM_OP_OK);
	sim_fail_disk(s, l);
	int w = sim_put(s, l, 2, 999);
	sim_run_until(s, sim_now(s) + 100);
	assert_false(sim_node_up(s, l));
	assert_true(sim_op_status(s, w) != SIM_OP_OK);
	struct leader_other_than lo = {l};
	assert_int_equal(sim_run_while_not(s, new_leader, &lo, 5000), 0);
	int r = sim_get(s, sim_leader(s), 2);
	assert_int_equal(wait_op(s, r, 3000), SIM_OP_OK);
	assert_true(sim_op_value(s, r) == 704 || sim_op_value(s, r) == 999);
	sim_restart(s, l);
	sim_run_until(s, sim_now(s) + 2000);
	assert_int_equal(sim_check_history(s), 0);
	sim_free(s);
}

/* Leadership transfer hands over within an election timeout, without losing writes. */
static void sim_leadership_transfer(void **state)
{
	struct sim *s = quiet_cluster(88, 5);
	keel_raft_id l = elect(s);
	assert_int_equal(wait_op(s, sim_put(s, l, 0, 42), 3000), SIM_OP_OK);
	keel_raft_id target = other_than(s, l, 0);
	uint64_t t0 = sim_now(s);
	assert_int_equal(keel_raft_transfer_leader(sim_raft(s, l), target), 0);
	struct leader_other_than lo = {l};
	assert_int_equal(sim_run_while_not(s, new_leader, &lo, 2000), 0);
	assert_int_equal(sim_leader(s), target);
	assert_true(sim_now(s) - t0 < 100); /* well under an election timeout (100-200 ms) */
	int r = sim_get(s, target, 0);
	assert_int_equal(wait_op(s, r, 3000), SIM_OP_OK);
	assert_int_equal(sim_op_value(s, r), 42);
	sim_free(s);
}

static bool all_caught_up(struct sim *s, void *arg)
{
	(void)arg;
	for (keel_raft_id id = 1; id <= 3; id++)
		if (!caught_up(s, &id))
			return false;
	return true;
}

static bool read_back_some(struct sim *s, void *arg)
{
	(void)arg;
	return sim_disk_reads(s) > 0;
}

static struct sim *window_cluster(uint64_t seed, unsigned snapshot_every, unsigned slack)
{
	struct sim_opts o;
	sim_opts_default(&o, seed, 3);
	o.pre_vote = o.check_quorum = true;
	o.loss = o.dup = 0;
	o.crash_every_ms = o.partition_every_ms = o.member_every_ms = o.transfer_every_ms =
		o.disk_fault_every_ms = 0;
	o.clients = 0;
	o.max_inflight = 8;
	o.read_back = true;
	o.mem_entries = 3;
	o.mem_bytes = 1 << 20;
	o.read_fail = 0;
	o.snapshot_every = snapshot_every;
	o.snapshot_keep = 5;
	o.disk_slack = slack;
	struct sim *s;
	assert_int_equal(sim_new(&o, &s), 0);
	sim_quiet(s);
	return s;
}

/* A follower that was down while the log grew far past the leaders' in-memory window catches up
 * from entries read back from the leader's disk, with no snapshot (none was taken); the leader
 * crashes halfway, and the next one, whose memory holds only a few entries too, finishes the
 * job from its own disk. Every node's memory holds at most the window of applied entries. */
static void sim_lagging_follower_catches_up_from_disk(void **state)
{
	struct sim *s = window_cluster(99, 0, 0);
	keel_raft_id l = elect(s);
	keel_raft_id f = other_than(s, l, 0);
	sim_crash(s, f);
	/* 400 entries of 32 bytes: more than one append message (4 KiB) carries. */
	for (unsigned i = 0; i < 400; i++)
		assert_int_equal(wait_op(s, sim_put(s, l, i % 4, 900 + i), 3000), SIM_OP_OK);
	assert_true(keel_raft_mem_first_index(sim_raft(s, l)) > 390);
	assert_int_equal(sim_disk_reads(s), 0);
	sim_restart(s, f);
	assert_int_equal(sim_run_while_not(s, read_back_some, NULL, 1000), 0);
	sim_crash(s, l);
	uint64_t reads = sim_disk_reads(s);
	assert_true(reads < 300); /* a part of it so far */
	struct leader_other_than lo = {l};
	assert_int_equal(sim_run_while_not(s, new_leader, &lo, 5000), 0);
	keel_raft_id nl = sim_leader(s);
	sim_restart(s, l);
	assert_int_equal(sim_run_while_not(s, all_caught_up, NULL, 5000), 0);
	check_ok(s);
	assert_true(sim_disk_reads(s) > reads); /* the new leader read the rest back */
	char stats[512];
	sim_stats(s, stats, sizeof(stats));
	assert_non_null(strstr(stats, "snapshots=0 "));
	for (keel_raft_id id = 1; id <= 3; id++)
		assert_true(keel_raft_mem_first_index(sim_raft(s, id)) > 390);
	int r = sim_get(s, f, 3);
	assert_int_equal(wait_op(s, r, 3000), SIM_OP_OK);
	assert_int_equal(sim_op_value(s, r), 1299);
	assert_int_equal(wait_op(s, sim_put(s, nl, 0, 1), 3000), SIM_OP_OK);
	assert_int_equal(sim_check_history(s), 0);
	sim_free(s);
}

/* The same with snapshots every 10 entries and a disk that deletes the log right at each
 * snapshot: what the follower needs is gone from the disk although the core's log (5 entries
 * kept behind a snapshot) still has it, so it gets a snapshot, then the rest. */
static void sim_lagging_follower_needs_snapshot_when_disk_compacted(void **state)
{
	struct sim *s = window_cluster(111, 10, 0);
	keel_raft_id l = elect(s);
	keel_raft_id f = other_than(s, l, 0);
	sim_crash(s, f);
	for (unsigned i = 0; i < 40; i++)
		assert_int_equal(wait_op(s, sim_put(s, l, i % 4, 300 + i), 3000), SIM_OP_OK);
	sim_restart(s, f);
	assert_int_equal(sim_run_while_not(s, all_caught_up, NULL, 5000), 0);
	check_ok(s);
	char stats[512];
	sim_stats(s, stats, sizeof(stats));
	assert_null(strstr(stats, "snapshots=0 "));
	int r = sim_get(s, f, 3);
	assert_int_equal(wait_op(s, r, 3000), SIM_OP_OK);
	assert_int_equal(sim_op_value(s, r), 339);
	assert_int_equal(sim_check_history(s), 0);
	sim_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sim_figure8),
		cmocka_unit_test(sim_stale_node_cannot_win_or_disrupt),
		cmocka_unit_test(sim_partitioned_leader_no_stale_read),
		cmocka_unit_test(sim_remove_leader),
		cmocka_unit_test(sim_add_learner_needing_snapshot),
		cmocka_unit_test(sim_torn_write_on_crash),
		cmocka_unit_test(sim_disk_failure_stops_node_without_loss),
		cmocka_unit_test(sim_leadership_transfer),
		cmocka_unit_test(sim_lagging_follower_catches_up_from_disk),
		cmocka_unit_test(sim_lagging_follower_needs_snapshot_when_disk_compacted),
	};
	return cmocka_run_group_tests_name("raft/scenarios", tests, NULL, NULL);
}
