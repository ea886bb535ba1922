/* What the pieces of the consensus core share; not for use outside lib/raft. */
#pragma once

#include "base/macro.h"
#include "raft/raft.h"

/* ---- the in-memory log (raft_log.c) ---- */

/* Terms of entries no longer held in memory: run k covers [runs[k].index, runs[k + 1].index),
 * the last run up to first - 1. Terms change only with elections, so this stays tiny. */
struct raft_term_run {
	uint64_t index, term;
};

/* The log is (prev_index, last]. `prev_index`/`prev_term` identify the entry just before it (from
 * a snapshot or a compaction), so term_at(prev_index) is still known. Entries [first, last] are
 * held in memory, in ents[off .. off + n). Entries (prev_index, first) were evicted: they are
 * persisted and applied, only their terms stay here (runs), and the driver's storage reads them
 * back when a follower needs them. Without storage nothing is evicted: first = prev_index + 1. */
struct raft_log {
	struct keel_raft_entry *ents;
	size_t off, n, cap;
	uint64_t first;
	uint64_t prev_index, prev_term;
	struct raft_term_run *runs;
	size_t n_runs, cap_runs;
	uint64_t mem_bytes; /* data bytes of the entries in memory */
	uint64_t stable;    /* entries <= stable are on disk */
	uint64_t committed;
	uint64_t applied;
	/* Data of dropped entries (truncated, compacted, evicted) may still be referenced by
	 * messages and ready arrays handed to the driver, so it is freed at a safe point: what was
	 * dropped before a ready() is freed at the advance() that ends it (two generations). */
	void **grave, **grave_rd;
	size_t n_grave, cap_grave, n_grave_rd, cap_grave_rd;
};

void raft_log_init(struct raft_log *l);
uint64_t raft_log_first(const struct raft_log *l);     /* prev_index + 1 */
uint64_t raft_log_mem_first(const struct raft_log *l); /* first entry held in memory */
uint64_t raft_log_last(const struct raft_log *l);
uint64_t raft_log_last_term(const struct raft_log *l);
/* Term of entry i (in memory or evicted), or 0 with *ok false when it is compacted away or
 * beyond the end. */
uint64_t raft_log_term(const struct raft_log *l, uint64_t i, bool *ok);
/* Entry i if it is held in memory, else NULL. */
struct keel_raft_entry *raft_log_at(const struct raft_log *l, uint64_t i);
bool raft_log_match(const struct raft_log *l, uint64_t i, uint64_t term);
/* Append a copy of e at the end (e->index must be last + 1). 0 or -ENOMEM. */
int raft_log_append_copy(struct raft_log *l, const struct keel_raft_entry *e);
/* Append taking ownership of data (freed on failure too). */
int raft_log_append_own(struct raft_log *l, uint64_t term, uint8_t type, void *data, uint32_t len);
/* Drop entries >= i (i must be held in memory: evicted entries are committed). */
void raft_log_truncate(struct raft_log *l, uint64_t i);
/* Drop entries < i (i - 1 becomes prev). */
void raft_log_drop_before(struct raft_log *l, uint64_t i);
/* Forget the data of entries [first, upto] (persisted and applied), keeping their terms.
 * 0, or -ENOMEM with nothing changed. */
int raft_log_evict(struct raft_log *l, uint64_t upto);
/* Append an entry that goes straight to storage: only its term is kept (restore; nothing may be
 * in memory yet). 0 or -ENOMEM. */
int raft_log_skip(struct raft_log *l, uint64_t term);
/* Forget everything and restart the log after (index, term) (snapshot install). */
void raft_log_reset(struct raft_log *l, uint64_t index, uint64_t term);
/* Is (index, term) at least as up to date as our log? (§3.6.1) */
bool raft_log_up_to_date(const struct raft_log *l, uint64_t index, uint64_t term);
/* Largest index <= i whose term is <= term (for fast back-off); prev_index at worst. */
uint64_t raft_log_find_conflict_by_term(const struct raft_log *l, uint64_t i, uint64_t term);
void raft_log_free_data(struct raft_log *l, void *data);
void raft_log_grave_rotate(struct raft_log *l); /* at ready(): this generation waits for advance */
void raft_log_bury(struct raft_log *l);         /* at advance(): free the older generation */
void raft_log_close(struct raft_log *l);

/* ---- replication progress of one peer, seen by the leader ---- */

enum progress_state { PR_PROBE, PR_REPLICATE, PR_SNAPSHOT };

struct progress {
	keel_raft_id id;
	bool learner;
	enum progress_state state;
	uint64_t match, next;
	bool probe_sent;        /* PROBE: one append per heartbeat until it answers */
	uint64_t pending_snapshot;
	unsigned snapshot_elapsed; /* ticks since the snapshot was sent */
	bool recent_active;     /* heard from it since the last check-quorum round */
	uint64_t read_ack;      /* highest ReadIndex round it acknowledged */
	bool vote_responded, vote_granted;
	/* Pipelining window: last index of each APPEND in flight, oldest first. */
	uint64_t *inflight;
	unsigned in_start, in_count;
};

/* ---- ReadIndex requests waiting on the leader ---- */

struct read_req {
	uint64_t context;
	uint64_t index;  /* commit index when the round started */
	uint64_t round;  /* heartbeat round that must reach a quorum; 0 = not started yet */
	keel_raft_id from; /* 0: local; else the follower that forwarded it */
};

/* ---- the node ---- */

struct keel_raft {
	struct keel_raft_config cfg;
	enum keel_raft_role role;
	uint64_t term;
	keel_raft_id vote;
	keel_raft_id leader;
	struct raft_log log;

	struct keel_raft_conf conf;      /* effective: base + conf entries in the log */
	struct keel_raft_conf base_conf; /* as of the entry before the first one in memory */
	uint64_t pending_conf_index;     /* last conf entry in the log */
	struct keel_raft_conf prev_conf; /* the configuration before that entry */
	struct keel_raft_snapshot_meta snap; /* latest snapshot the driver holds */

	struct progress prs[KEEL_RAFT_MAX_NODES];
	unsigned n_prs;

	unsigned election_elapsed, heartbeat_elapsed, randomized_timeout;
	uint64_t rng;
	keel_raft_id transferee;
	unsigned transfer_elapsed;
	bool committed_in_term; /* leader: an entry of its term is committed (reads, conf changes) */
	uint64_t uncommitted_bytes;

	struct read_req *reads;  /* leader: waiting ReadIndex requests, in arrival order */
	size_t n_reads, cap_reads;
	uint64_t read_round;
	uint64_t *fwd_reads;     /* follower: contexts forwarded to the leader, not answered yet */
	size_t n_fwd, cap_fwd;

	/* Output accumulated for the next ready. */
	struct keel_raft_msg *msgs;
	size_t n_msgs, cap_msgs;
	struct keel_raft_read_state *read_states;
	size_t n_read_states, cap_read_states;
	bool has_snapshot_to_install;
	struct keel_raft_snapshot_meta install;

	/* What the outstanding ready handed out, kept alive until advance. */
	bool in_ready;
	struct keel_raft_hard_state prev_hs;
	struct keel_raft_soft_state prev_ss;
	struct keel_raft_entry *rd_entries, *rd_committed;
	size_t cap_rd_entries, cap_rd_committed;
	struct keel_raft_msg *rd_msgs;
	size_t n_rd_msgs, cap_rd_msgs;
	struct keel_raft_read_state *rd_reads;
	size_t cap_rd_reads;
	struct keel_raft_snapshot_meta rd_install;
	bool rd_has_install;
	uint64_t rd_last_entry, rd_last_committed;
	uint64_t trunc_since_ready; /* lowest index truncated since ready(); UINT64_MAX if none */
};

/* raft_conf.c */
void raft_conf_apply(struct keel_raft_conf *c, const struct keel_raft_conf_change *cc);
int raft_conf_check(const struct keel_raft_conf *c, const struct keel_raft_conf_change *cc);
unsigned raft_conf_quorum(const struct keel_raft_conf *c);
void raft_rebuild_conf(struct keel_raft *r);
void raft_sync_progress(struct keel_raft *r);
struct progress *raft_progress(struct keel_raft *r, keel_raft_id id);
bool raft_is_voter(const struct keel_raft *r, keel_raft_id id);

/* raft_step.c */
void raft_send(struct keel_raft *r, struct keel_raft_msg *m);
void raft_free_msgs(struct keel_raft_msg *msgs, size_t n);
void raft_flush(struct keel_raft *r);              /* leader: send what peers can take */
void raft_leader_persisted(struct keel_raft *r);   /* leader: own log reached the disk */
void raft_become_follower(struct keel_raft *r, uint64_t term);
