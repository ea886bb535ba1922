/* Keel's consensus core: Raft as a pure state machine (no system calls, no clock, no threads).
 *
 * The application (the "driver") owns storage, network and time. It feeds the core with
 * keel_raft_step() (a message arrived), keel_raft_tick() (a unit of logical time passed) and
 * keel_raft_propose()/keel_raft_read_index() (client requests), then collects what the core wants
 * done with keel_raft_ready() and, once that is done, acknowledges it with keel_raft_advance().
 * This is etcd/raft's shape (Step/Tick/Ready/Advance).
 *
 * Implemented (Raft thesis, Ongaro 2014, sections cited where they matter):
 *  - leader election with randomized timeouts, pre-vote (§9.6) and check-quorum (§6.2), with a
 *    leader lease on voters so a partitioned node cannot disrupt a healthy leader;
 *  - a no-op entry when a leader is elected, and commitment by counting replicas only for entries
 *    of the current term (§3.6.2, the Figure 8 case);
 *  - log replication pipelined with a bounded in-flight window per follower, probing with fast
 *    back-off on rejection (a rejection carries a hint), batching of proposals;
 *  - ReadIndex linearizable reads (§6.4), which a deposed leader never answers;
 *  - leadership transfer (§3.10);
 *  - membership change one server at a time (§4.1) with non-voting learners (§4.2.1);
 *  - snapshots with log compaction (§5); the snapshot *data* never passes through the core: the
 *    driver stores it, streams it to followers in chunks and installs it (as etcd's transport does).
 *
 * Driver contract for each keel_raft_ready():
 *  1. Persist rd.snapshot (if any), then rd.entries (if any: they replace every stored entry
 *     with an index >= rd.entries[0].index), then rd.hard_state (if rd.hard_state_changed),
 *     durably (fdatasync) before step 3. Messages with `early` set may be sent before this
 *     completes (a leader's appends: §10.2.1); all others only after.
 *  2. Apply rd.committed entries to the state machine, in order; serve rd.reads once the applied
 *     index reaches each read's index.
 *  3. Send rd.msgs (in any order; the network may drop or reorder them anyway). A SNAPSHOT
 *     message names, in msg.snapshot, the snapshot to stream with it: the newest one the core
 *     knew of (keel_raft_compact) when ready() was called; keep at least the last two on disk so
 *     it is still there when the transfer starts, and report the outcome with
 *     keel_raft_report_snapshot().
 *  4. Call keel_raft_advance().
 * ready() takes a consistent cut and advance() acknowledges exactly that cut, so the driver may
 * keep stepping, ticking and proposing while it persists (that is how group commit happens: what
 * arrives during one fdatasync goes into the next ready). It must not call ready() again before
 * advance(). Pointers in rd stay valid until advance(), even if the log changes meanwhile.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/errors.h"

#define KEEL_RAFT_MAX_NODES 16 /* voters + learners in one configuration */

/* Node ids are nonzero; 0 means "none". */
typedef uint64_t keel_raft_id;

enum keel_raft_role {
	KEEL_RAFT_FOLLOWER,
	KEEL_RAFT_PRE_CANDIDATE,
	KEEL_RAFT_CANDIDATE,
	KEEL_RAFT_LEADER,
};

enum keel_raft_entry_type {
	KEEL_RAFT_ENTRY_NORMAL = 0, /* application data (empty data: the leader's no-op) */
	KEEL_RAFT_ENTRY_CONF = 1,   /* a membership change, encoded by keel_raft_conf_change_encode */
};

struct keel_raft_entry {
	uint64_t term;
	uint64_t index;
	uint8_t type;
	uint32_t len;
	void *data; /* len bytes; owned by whoever holds the entry */
};

/* What must survive a crash besides the log (§3.8, Figure 3.1). */
struct keel_raft_hard_state {
	uint64_t term;
	keel_raft_id vote;
	uint64_t commit;
};

/* A configuration: who votes and who only listens. */
struct keel_raft_conf {
	uint32_t n_voters, n_learners;
	keel_raft_id voters[KEEL_RAFT_MAX_NODES];
	keel_raft_id learners[KEEL_RAFT_MAX_NODES];
};

/* Describes a snapshot; the data itself is the driver's. */
struct keel_raft_snapshot_meta {
	uint64_t index; /* last entry the snapshot covers */
	uint64_t term;  /* that entry's term */
	struct keel_raft_conf conf; /* configuration as of index */
};

enum keel_raft_conf_change_type {
	KEEL_RAFT_ADD_VOTER = 1,   /* add as voter, or promote a learner */
	KEEL_RAFT_ADD_LEARNER = 2, /* add as learner (or demote a voter) */
	KEEL_RAFT_REMOVE_NODE = 3,
};

struct keel_raft_conf_change {
	enum keel_raft_conf_change_type type;
	keel_raft_id node;
	uint32_t context_len; /* opaque to the core (keel-kv puts the member's peer URLs here) */
	const void *context;
};

enum keel_raft_msg_type {
	KEEL_RAFT_MSG_PREVOTE = 1,
	KEEL_RAFT_MSG_PREVOTE_RESP,
	KEEL_RAFT_MSG_VOTE,
	KEEL_RAFT_MSG_VOTE_RESP,
	KEEL_RAFT_MSG_APPEND,
	KEEL_RAFT_MSG_APPEND_RESP,
	KEEL_RAFT_MSG_HEARTBEAT,
	KEEL_RAFT_MSG_HEARTBEAT_RESP,
	KEEL_RAFT_MSG_SNAPSHOT,    /* leader -> follower: install the snapshot described by `snapshot` */
	KEEL_RAFT_MSG_TIMEOUT_NOW, /* leadership transfer: start an election now */
	KEEL_RAFT_MSG_READ_INDEX,  /* follower -> leader: a ReadIndex request, `context` identifies it */
	KEEL_RAFT_MSG_READ_INDEX_RESP,
	KEEL_RAFT_MSG_PROPOSE,     /* follower -> leader: forwarded proposals in `entries` */
	KEEL_RAFT_MSG__MAX,
};

struct keel_raft_msg {
	enum keel_raft_msg_type type;
	keel_raft_id from, to;
	uint64_t term;
	uint64_t log_term;  /* APPEND: term of entry `index`; votes: candidate's last log term */
	uint64_t index;     /* APPEND: index preceding entries; votes: candidate's last index;
			     * APPEND_RESP: last matching index, or the rejected index;
			     * READ_INDEX_RESP: the read index */
	uint64_t commit;
	uint64_t reject_hint; /* APPEND_RESP with reject: follower's last index (or a better guess) */
	uint64_t context;   /* heartbeats and reads: ReadIndex round id / request id */
	bool reject;
	bool early;         /* may be sent before the ready's persistence completes */
	bool transfer;      /* VOTE caused by leadership transfer: ignore the leader lease */
	uint32_t n_entries;
	struct keel_raft_entry *entries; /* owned by the core until advance (outgoing), by the
					  * caller (incoming: step copies what it keeps) */
	struct keel_raft_snapshot_meta snapshot; /* MSG_SNAPSHOT */
};

/* Result of a ReadIndex request: once the state machine has applied `index`, a read issued
 * before the request may be served. `ok` false means the request was dropped (leadership
 * lost, no leader known, or the node stopped): the driver must fail or retry it. */
struct keel_raft_read_state {
	uint64_t context;
	uint64_t index;
	bool ok;
};

/* State that needs no persistence but that the driver likes to know. */
struct keel_raft_soft_state {
	keel_raft_id leader;
	enum keel_raft_role role;
};

struct keel_raft_ready {
	struct keel_raft_soft_state soft_state;
	bool soft_state_changed;
	struct keel_raft_hard_state hard_state;
	bool hard_state_changed;
	/* Whether this ready must be durable before its messages go out: it has entries, a
	 * snapshot, or a new term or vote. A ready whose hard state differs only in the commit
	 * index need not be synced (the commit index is recovered from the leader), which saves
	 * the second fdatasync per write a leader would otherwise do. */
	bool must_sync;
	const struct keel_raft_snapshot_meta *snapshot; /* a snapshot to install, or NULL */
	const struct keel_raft_entry *entries;          /* to persist */
	size_t n_entries;
	const struct keel_raft_entry *committed;        /* to apply */
	size_t n_committed;
	struct keel_raft_msg *msgs;
	size_t n_msgs;
	const struct keel_raft_read_state *reads;
	size_t n_reads;
};

/* Storage read-back (see keel_raft_config.read_entries): the entries from lo on, at most up to hi
 * (lo <= hi), as the driver persisted them. Return 0 with *ret_n >= 1 consecutive entries starting
 * at lo in *ret_ents, an array from keel_malloc that the core takes over; their data lies in
 * *ret_data, one keel_malloc block that the core takes over too (NULL if every entry is empty).
 * Entries after the first stop before their data would exceed max_bytes in total. Return
 * -ENOENT when entry lo is no longer stored (compacted: the core sends the follower a snapshot),
 * any other negative error when it cannot be read now (the core tries again later). Called from
 * inside the core's functions: it must not call back into the core. */
typedef int keel_raft_read_entries_fn(void *ud, uint64_t lo, uint64_t hi, size_t max_bytes,
				      struct keel_raft_entry **ret_ents, size_t *ret_n, void **ret_data);

struct keel_raft_config {
	keel_raft_id id;
	unsigned election_ticks;  /* followers wait a random [election, 2*election) ticks; >= 2 */
	unsigned heartbeat_ticks; /* leader heartbeat period; < election_ticks */
	bool pre_vote;
	bool check_quorum;
	unsigned max_inflight;    /* APPEND messages in flight per follower (pipelining window) */
	size_t max_msg_bytes;     /* entry bytes per APPEND message (at least one entry is sent) */
	size_t max_batch_bytes;   /* proposals above this many uncommitted bytes are refused
				   * (-EBUSY) so a slow cluster pushes back instead of growing */
	uint64_t seed;            /* for the randomized timeouts: the core is deterministic */
	/* The in-memory log. Without read_entries every entry stays in memory until a compaction.
	 * With it, entries that are persisted and applied leave memory once they are more than
	 * mem_entries behind the newest entry, or sooner while the entries in memory hold more than
	 * mem_bytes of data; a follower that needs them gets them through read_entries. */
	keel_raft_read_entries_fn *read_entries;
	void *read_ud;
	size_t mem_entries;
	size_t mem_bytes;
};

struct keel_raft;

/* Fill cfg with sensible defaults for id (election 10 ticks, heartbeat 1, pre-vote and check-quorum
 * on, 256 in flight, 1 MiB per message, 64 MiB uncommitted; no read_entries, and with one a
 * window of 4096 entries or 8 MiB in memory). */
void keel_raft_config_default(struct keel_raft_config *cfg, keel_raft_id id);

/* Create a node. With no restored state, it starts empty: a brand-new cluster is bootstrapped by
 * giving every initial member the same `initial` configuration (it becomes the configuration at
 * index 0, not a log entry). Pass initial = NULL when restoring or when joining an existing
 * cluster (the leader will send a snapshot). Errors: -EINVAL (bad config), -ENOMEM. */
int keel_raft_new(const struct keel_raft_config *cfg, const struct keel_raft_conf *initial,
		  struct keel_raft **ret, struct keel_err *err);
void keel_raft_free(struct keel_raft *r);

/* Load what keel_raft_ready told the driver to persist, after a restart: the latest snapshot (or
 * NULL), the entries after it, the hard state. Call once, right after keel_raft_new(initial=NULL).
 * Entries are copied. `applied` is the index the state machine already holds (the snapshot's, or
 * later if the driver applied committed entries itself): committed entries after it are
 * delivered again through ready. With read_entries, applied entries that would not stay in
 * memory are not copied at all (only their terms are kept); such entries may then also come
 * without their data (data NULL, len as stored), except configuration entries: the memory window
 * starts after the last of them, and the core reads them back when a follower needs them.
 * -EINVAL if the pieces do not fit together. */
int keel_raft_restore(struct keel_raft *r, const struct keel_raft_snapshot_meta *snap,
		      const struct keel_raft_entry *entries, size_t n,
		      const struct keel_raft_hard_state *hs, uint64_t applied, struct keel_err *err);

/* One unit of logical time. */
void keel_raft_tick(struct keel_raft *r);

/* Feed a received message. Messages for other nodes, from stale terms or malformed ones are
 * ignored (returns 0). -ENOMEM if it could not be stored (nothing changed then). */
int keel_raft_step(struct keel_raft *r, const struct keel_raft_msg *m);

/* Propose application data. On the leader it is appended at once and *ret_index (if not NULL) is
 * its index; a follower forwards it to the leader (*ret_index = 0). -KEEL_ENOT_LEADER when no
 * leader is known, -EBUSY during a leadership transfer or when too much is uncommitted, -ENOMEM.
 * The data is copied. */
int keel_raft_propose(struct keel_raft *r, const void *data, size_t len, uint64_t *ret_index);

/* Propose a membership change. On the leader it is checked and appended at once (effective from
 * then on) and *ret_index (if not NULL) is its index: -EBUSY while another change is
 * uncommitted, before the leader has committed an entry of its term, during a transfer, or when a
 * learner to promote does not yet hold every committed entry; -EINVAL if the change makes no
 * sense (removing an absent node, adding a present one with the same role, a configuration with
 * no voter, more than KEEL_RAFT_MAX_NODES). A follower forwards it to the leader like a data
 * proposal (*ret_index = 0); the leader makes the same checks and drops a change that fails them
 * without telling anyone, so the proposer learns the outcome only by seeing the entry applied
 * (put a request id in the context). -KEEL_ENOT_LEADER when no leader is known, -ENOMEM. */
int keel_raft_propose_conf_change(struct keel_raft *r, const struct keel_raft_conf_change *cc,
				  uint64_t *ret_index);

/* Ask for a linearizable read point; the answer comes as a read state in a later ready, with the
 * same context (which the caller chooses, e.g. a request id). -KEEL_ENOT_LEADER with no leader. */
int keel_raft_read_index(struct keel_raft *r, uint64_t context);

/* Leader only: hand leadership to `target` (a voter). Proposals are refused until it completes or
 * an election timeout passes. -KEEL_ENOT_LEADER, -EINVAL (not a voter / self). */
int keel_raft_transfer_leader(struct keel_raft *r, keel_raft_id target);

/* Start an election now (tests and operators). */
void keel_raft_campaign(struct keel_raft *r);

/* The driver has a snapshot of its state machine at `index` (<= applied) and wants the log before
 * it gone; `keep` entries before index stay for slow followers (in memory, or in the driver's
 * storage once evicted). -EINVAL if index is not applied or the metadata cannot be given (see
 * keel_raft_snapshot_meta_at). */
int keel_raft_compact(struct keel_raft *r, uint64_t index, uint64_t keep);

/* The metadata a snapshot at applied index `index` must carry (its term and the configuration as
 * of index), for the driver to write the file before calling keel_raft_compact(). -EINVAL if
 * index is not applied, no longer in the log, or before the entry just ahead of the first one in
 * memory (the configuration is known from there on; the applied index always qualifies). */
int keel_raft_snapshot_meta_at(const struct keel_raft *r, uint64_t index, struct keel_raft_snapshot_meta *ret);

/* The transport reports a failed snapshot transfer to `peer` (the leader goes back to probing),
 * or a finished one (ok = true; the follower's answer confirms it anyway). */
void keel_raft_report_snapshot(struct keel_raft *r, keel_raft_id peer, bool ok);

/* The transport cannot reach `peer`: stop pipelining to it until it answers again. */
void keel_raft_report_unreachable(struct keel_raft *r, keel_raft_id peer);

bool keel_raft_has_ready(const struct keel_raft *r);
/* Fill rd with everything pending (see the driver contract above). Returns true if rd holds
 * anything. Must not be called again before keel_raft_advance(). */
bool keel_raft_ready(struct keel_raft *r, struct keel_raft_ready *rd);
void keel_raft_advance(struct keel_raft *r, const struct keel_raft_ready *rd);

/* Inspection, for drivers, tests and stats. */
keel_raft_id keel_raft_id_of(const struct keel_raft *r);
enum keel_raft_role keel_raft_role(const struct keel_raft *r);
keel_raft_id keel_raft_leader(const struct keel_raft *r);
uint64_t keel_raft_term(const struct keel_raft *r);
uint64_t keel_raft_commit_index(const struct keel_raft *r);
uint64_t keel_raft_applied_index(const struct keel_raft *r);
uint64_t keel_raft_last_index(const struct keel_raft *r);
uint64_t keel_raft_first_index(const struct keel_raft *r); /* first entry still in the log */
uint64_t keel_raft_mem_first_index(const struct keel_raft *r); /* first one held in memory */
/* The term of the entry at index, held in memory or not; false when the log no longer has it
 * (the entry just before the log, a snapshot's or a compaction's, still answers). */
bool keel_raft_term_at(const struct keel_raft *r, uint64_t index, uint64_t *term);
const struct keel_raft_conf *keel_raft_conf(const struct keel_raft *r);
const struct keel_raft_snapshot_meta *keel_raft_snapshot(const struct keel_raft *r);
/* The entry at index if held in memory (pointer valid until the next call into the core). */
const struct keel_raft_entry *keel_raft_entry_at(const struct keel_raft *r, uint64_t index);
/* Replication progress of a peer as the leader sees it (0s when not leader). */
uint64_t keel_raft_peer_match(const struct keel_raft *r, keel_raft_id peer);

/* Conf-change entry payloads: a fixed little-endian layout, so the WAL and the wire carry them
 * as bytes. encode returns the length written (or needed, when size is too small). */
size_t keel_raft_conf_change_encode(const struct keel_raft_conf_change *cc, void *out, size_t size);
int keel_raft_conf_change_decode(const void *data, size_t len, struct keel_raft_conf_change *ret);

bool keel_raft_conf_has_voter(const struct keel_raft_conf *c, keel_raft_id id);
bool keel_raft_conf_has_learner(const struct keel_raft_conf *c, keel_raft_id id);

const char *keel_raft_role_name(enum keel_raft_role role);
const char *keel_raft_msg_type_name(enum keel_raft_msg_type type);
