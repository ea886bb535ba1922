/* A deterministic simulator for the consensus core: N nodes in one process, an in-memory network
 * that loses, delays, reorders and duplicates messages and can be partitioned, disks that keep only
 * what was persisted across crashes (and may tear the last write), a logical clock, a client
 * workload on a replicated register, and invariant checks after every event. Everything is driven
 * by one seed, so a failing run is replayed exactly by its seed and options.
 * (canonical/raft's fixture, etcd/raft's network tests, FoundationDB's simulation testing) */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/raft.h"

#define SIM_MAX_NODES KEEL_RAFT_MAX_NODES

struct sim_opts {
	uint64_t seed;
	unsigned nodes;          /* initial voters, ids 1..nodes */
	uint64_t duration_ms;    /* simulated time for sim_run_workload */
	/* network */
	double loss, dup;        /* probabilities per message */
	unsigned min_delay_ms, max_delay_ms;
	/* disk */
	unsigned min_disk_ms, max_disk_ms; /* latency of one ready's persistence */
	/* faults, each a mean interval in ms (0 = never) */
	unsigned crash_every_ms, partition_every_ms, member_every_ms, transfer_every_ms,
		disk_fault_every_ms;
	/* workload */
	unsigned clients, keys;
	unsigned snapshot_every; /* entries applied between snapshots (0 = never) */
	unsigned snapshot_keep;  /* entries kept in the log behind a snapshot */
	/* the core's in-memory window: with read_back, entries leave memory as in keel_node and
	 * come back from the disk for lagging followers */
	bool read_back;
	unsigned mem_entries, mem_bytes;
	unsigned disk_slack;     /* the disk keeps up to this many entries before its snapshot, as
				  * WAL segments do (deleted whole, never entry by entry) */
	double read_fail;        /* probability that a read from the disk fails (-EIO) */
	bool apply_on_restart;   /* a restarted node applies the committed entries on its disk
				  * before the core starts (keel_node's recovery) */
	/* raft */
	bool pre_vote, check_quorum;
	unsigned max_inflight;
	bool verbose;
};

/* Sensible options for a seed: 3 nodes, 10 simulated seconds, some loss, all faults. */
void sim_opts_default(struct sim_opts *o, uint64_t seed, unsigned nodes);

struct sim;

int sim_new(const struct sim_opts *o, struct sim **ret);
void sim_free(struct sim *s);

/* Run the random workload and faults until duration_ms, then heal everything, restart crashed
 * nodes, let the cluster settle and check the history. 0, or -1 with sim_error() set. */
int sim_run_workload(struct sim *s);

/* The first violation found (invariant or history), or NULL. */
const char *sim_error(const struct sim *s);
/* The state of every node, for a failing run's report. */
#include <stdio.h>
void sim_dump(struct sim *s, FILE *out);
/* One line of statistics: events, ops acknowledged, elections, ... */
void sim_stats(const struct sim *s, char *out, size_t size);

/* ---- fine control, for named scenarios ---- */

uint64_t sim_now(const struct sim *s);
/* Process events until time t (ms) or until a violation. */
int sim_run_until(struct sim *s, uint64_t t);
/* Run until pred returns true (checked after every event) or timeout ms pass. Returns 0 if it
 * became true, -1 on timeout or violation. */
int sim_run_while_not(struct sim *s, bool (*pred)(struct sim *s, void *arg), void *arg, uint64_t timeout_ms);

struct keel_raft *sim_raft(struct sim *s, keel_raft_id id); /* NULL when down or absent */
bool sim_node_up(const struct sim *s, keel_raft_id id);
/* The node that believes it leads in the highest term, among running nodes; 0 if none. */
keel_raft_id sim_leader(struct sim *s);
void sim_crash(struct sim *s, keel_raft_id id);
int sim_restart(struct sim *s, keel_raft_id id);
/* Directed link control: messages from a to b are dropped while the link is down. */
void sim_link(struct sim *s, keel_raft_id a, keel_raft_id b, bool up);
/* Cut a from every other node in both directions (or restore). */
void sim_isolate(struct sim *s, keel_raft_id a, bool isolated);
void sim_heal_all(struct sim *s);
/* Stop the random fault injection and the client workload (scenarios drive things by hand). */
void sim_quiet(struct sim *s);
/* Make the disk of a node fail its next persistence (it crashes, keeping a prefix of the write). */
void sim_fail_disk(struct sim *s, keel_raft_id id);
/* Entries read back from a node's disk for the core, over the run. */
uint64_t sim_disk_reads(const struct sim *s);

/* Add an empty node (joins through the leader's conf change); returns 0 or -1. */
int sim_add_node(struct sim *s, keel_raft_id id);

/* Client operations issued by hand: a put through node `via`; returns an op handle (>= 0). */
int sim_put(struct sim *s, keel_raft_id via, unsigned key, uint64_t value);
/* A linearizable read through `via`. */
int sim_get(struct sim *s, keel_raft_id via, unsigned key);
enum sim_op_status { SIM_OP_PENDING, SIM_OP_OK, SIM_OP_FAILED, SIM_OP_UNKNOWN };
enum sim_op_status sim_op_status(const struct sim *s, int op);
uint64_t sim_op_value(const struct sim *s, int op);   /* value read (gets) */
uint64_t sim_op_index(const struct sim *s, int op);   /* log index (puts), applied index (gets) */
/* Check the history recorded so far (called by sim_run_workload at the end). */
int sim_check_history(struct sim *s);
