/* What sim.c and sim_check.c share. */
#pragma once

#include <stdarg.h>
#include <stdio.h>

#include "sim.h"

/* A reference-counted blob: snapshot data shared by a disk and messages in flight. */
struct blob {
	unsigned refs;
	size_t len;
	uint8_t data[];
};

/* The replicated state machine: a register per key. */
struct sm {
	uint64_t applied;
	uint64_t *values; /* keys of them */
};

struct disk {
	struct keel_raft_hard_state hs;
	bool has_hs;
	struct keel_raft_snapshot_meta snap;
	struct blob *snap_data; /* serialized struct sm values at snap.index */
	struct keel_raft_entry *ents; /* consecutive; from at most disk_slack entries before
				       * snap.index + 1 on (a log after the snapshot) */
	size_t n, cap;
	bool fail_next; /* the next persistence fails (disk fault) */
};

struct pending_read {
	int op;
	uint64_t index;
};

struct node {
	struct sim *sim;
	keel_raft_id id;
	bool exists, up;
	struct keel_raft *raft;
	struct disk disk;
	struct sm sm;
	bool io_busy;
	uint64_t io_gen;
	uint64_t tick_gen; /* one tick chain per run of the node: a restart starts a new one */
	struct keel_raft_ready rd;
	struct blob *incoming_snap; /* data that came with the last MSG_SNAPSHOT */
	struct pending_read *reads;
	size_t n_reads, cap_reads;
	bool was_leader;
	uint64_t leader_term, leader_last, leader_last_term;
	uint64_t known_commit;
};

enum op_kind { OP_PUT = 1, OP_CAS = 2, OP_GET = 3 };

#define OP_DATA_LEN 32

struct op {
	enum op_kind kind;
	unsigned key;
	uint64_t value, expect;
	unsigned client;
	keel_raft_id node;
	uint64_t inv, done;
	enum sim_op_status status;
	uint64_t index;      /* puts: log index; gets: applied index observed */
	uint64_t term;       /* puts: term it was proposed in */
	uint64_t result;     /* gets: value; cas: 1 if it swapped */
};

struct event {
	uint64_t time, seq;
	int type;
	keel_raft_id node;
	uint64_t gen;
	struct keel_raft_msg *msg; /* deep copy */
	struct blob *blob;
};

/* Global facts learned while running, for the invariants. */
struct applied_rec {
	uint64_t term;
	uint64_t req; /* the client op it carries, or UINT64_MAX */
	uint32_t crc;
	bool set;
};

struct sim {
	struct sim_opts o;
	uint64_t rng;
	uint64_t now, seq;
	struct event *heap;
	size_t n_heap, cap_heap;
	struct node nodes[SIM_MAX_NODES + 1]; /* by id */
	bool link_down[SIM_MAX_NODES + 1][SIM_MAX_NODES + 1];
	bool quiet;
	char err[512];
	bool failed;

	struct op *ops;
	size_t n_ops, cap_ops;
	int client_op[64]; /* current op of each client, -1 idle */

	uint64_t *leader_of_term; /* index: term */
	size_t cap_terms;
	struct applied_rec *applied; /* index: log index; what was applied there */
	size_t cap_applied;
	uint64_t *committed_term; /* index: log index; term of the committed entry, 0 unknown */
	size_t cap_committed;
	uint64_t max_committed;

	/* statistics */
	uint64_t events, msgs_sent, msgs_dropped, elections, crashes, snapshots_sent, conf_changes,
		transfers, puts_ok, gets_ok, ops_failed, ops_unknown, disk_reads, disk_read_misses;
};

bool sim_fail(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
uint64_t sim_rand(struct sim *s);
int sim_grow(void **arr, size_t *cap, size_t need, size_t elem);

/* sim_debug.c */
void sim_dump_progress(struct keel_raft *r, FILE *out);

/* sim_check.c */
void sim_check_node(struct sim *s, struct node *n);
void sim_record_apply(struct sim *s, struct node *n, const struct keel_raft_entry *e);
void sim_check_logs_match(struct sim *s, struct node *a);
