/* A consensus node: the Raft core (lib/raft) driven on a libuv loop, with a WAL and snapshot
 * files on disk and the TCP/TLS peer transport. This is what keel-kv (and later keel-fleet,
 * keel-net and keel-lock through keel-kv) stands on; it is also what tests/raftd wraps in a
 * small replicated-log daemon.
 *
 * The application is a state machine with three callbacks: apply a committed entry, save its
 * state into a snapshot writer, load it from a snapshot reader. Everything runs on the loop
 * thread except the WAL's writes and fdatasyncs, which run on libuv's thread pool: entries that
 * are proposed while one fdatasync runs are written by the next one (group commit). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "base/errors.h"
#include "raft/raft.h"
#include "raftio/snap.h"

struct keel_node;
struct keel_transport_listen;
struct keel_buf;

#define KEEL_NODE_KEEP_ALL UINT32_MAX

struct keel_node_peer {
	keel_raft_id id;
	const char *host;
	uint16_t port;
};

struct keel_node_sm {
	/* A committed entry, in log order, exactly once per index per run (from the last snapshot
	 * on after a restart). NORMAL entries with len 0 are the leaders' no-ops; CONF entries
	 * carry a keel_raft_conf_change (its context holds what the application put there). */
	void (*apply)(void *ud, const struct keel_raft_entry *e);
	/* Write the state as of the last applied entry. 0 or a negative error. */
	int (*save)(void *ud, struct keel_snap_writer *w, struct keel_err *err);
	/* Replace the state with the snapshot's (read until keel_snap_reader_read returns 0). */
	int (*load)(void *ud, struct keel_snap_reader *r, struct keel_err *err);
	/* Optional: this node's role or the leader changed. */
	void (*on_leader)(void *ud, keel_raft_id leader, uint64_t term);
	/* Optional: the node stopped working (its disk failed: "fsyncgate" rules say a failed
	 * fdatasync cannot be retried). Pending requests failed with -KEEL_ESTOPPED; the process
	 * should exit and be restarted, which recovers from the WAL. why->code -EIDRM: a peer said
	 * this node was removed from the cluster (see is_removed); it must not come back. */
	void (*on_fatal)(void *ud, const struct keel_err *why);
	/* Optional: whether a node was removed from the cluster for good (the application keeps
	 * that list: it must survive snapshots). Peers that were removed are told so when they
	 * talk to this node, and stop (etcd's peers answer them HTTP 410 Gone). */
	bool (*is_removed)(void *ud, keel_raft_id id);
	/* Optional: answer a peer's QUERY (keel_transport_query; keel-kv: a joining member asks
	 * for the cluster id and the members). Append the answer to out; 0 or negative. */
	int (*on_query)(void *ud, struct keel_buf *out);
};

struct keel_node_config {
	keel_raft_id id;
	uint64_t cluster_id;
	const char *data_dir;            /* holds wal/ and snap/ */
	const char *wal_dir;             /* NULL: data_dir/wal (etcd's --wal-dir) */
	const struct keel_node_peer *peers; /* the initial members, this node included */
	size_t n_peers;
	bool join;                       /* joining an existing cluster: no bootstrap */
	const char *listen_host;         /* peer traffic */
	uint16_t listen_port;            /* 0: any (see keel_node_port) */
	const struct keel_transport_listen *more_listen; /* more addresses for peer traffic */
	size_t n_more_listen;
	unsigned tick_ms;                /* one core tick (etcd --heartbeat-interval, default 100) */
	unsigned election_ticks;         /* default 10 (etcd --election-timeout 1000 ms) */
	uint64_t snapshot_count;         /* applied entries between snapshots (default 100000) */
	uint64_t snapshot_keep;          /* entries kept behind a snapshot for slow followers (5000) */
	/* The consensus core keeps only the newest entries in memory (raft.h, mem_entries and
	 * mem_bytes; 0: 4096 entries, 8 MiB) and reads older ones back from the WAL when a
	 * follower needs them. */
	size_t mem_entries, mem_bytes;
	size_t wal_segment_size;         /* 0: default */
	/* Retention (etcd's --max-snapshots, --max-wals): snapshot files and WAL segments kept;
	 * 0 = the default (5 snapshots; WAL segments as soon as a snapshot covers them),
	 * KEEL_NODE_KEEP_ALL = never delete. */
	unsigned max_snapshots, max_wal_segments;
	const char *cert_file, *key_file, *ca_file; /* peer TLS, all NULL for plain TCP */
	bool verify_peer;
	const struct keel_node_sm *sm;
	void *sm_ud;
};

/* Open the data directory (recovering the WAL and the newest snapshot), start listening and
 * ticking. The state machine's callbacks run from the loop only, never inside this call (the
 * first apply happens on the first tick). Errors: -EINVAL (config), -KEEL_ECORRUPT (the WAL or snapshots are damaged beyond a
 * torn tail), -errno. */
int keel_node_start(uv_loop_t *loop, const struct keel_node_config *cfg, struct keel_node **ret,
		    struct keel_err *err);

/* status: 0 when the entry is committed and applied (index is where), -KEEL_ENOT_LEADER (this
 * node does not lead; keel_node_leader tells who does), -ECANCELED (a new leader replaced it:
 * it was not applied), -KEEL_ESTOPPED (the node stopped or its disk failed: outcome unknown). */
typedef void keel_node_done_fn(void *ud, int status, uint64_t index);

/* Replicate data. The callback runs exactly once, never from inside this call. */
int keel_node_propose(struct keel_node *n, const void *data, size_t len, keel_node_done_fn *cb, void *ud);
/* On the leader only (-KEEL_ENOT_LEADER elsewhere): the callback tells the outcome. */
int keel_node_propose_conf_change(struct keel_node *n, const struct keel_raft_conf_change *cc,
				  keel_node_done_fn *cb, void *ud);
/* A membership change from any member: a follower forwards it to the leader, which checks it
 * and drops it quietly if it does not apply. As with keel_node_propose_forward, the application
 * recognises its change when it is applied (a request id in cc->context) and gives up after a
 * timeout. On the leader the checks run now: -EBUSY (another change is uncommitted, no commit in
 * this term yet), -EINVAL (the change makes no sense). -KEEL_ENOT_LEADER when no leader is
 * known, -KEEL_ESTOPPED, -ENOMEM. */
int keel_node_propose_conf_change_forward(struct keel_node *n, const struct keel_raft_conf_change *cc);
/* Replicate data from any member: a follower forwards it to the leader. Nothing reports the
 * outcome: the application recognises its entries when they are applied (a request id inside
 * the data, as etcd does) and gives up after a timeout. -KEEL_ENOT_LEADER when no leader is
 * known, -KEEL_ESTOPPED, -EBUSY, -ENOMEM. */
int keel_node_propose_forward(struct keel_node *n, const void *data, size_t len);
/* A linearizable read point: the callback runs once everything committed before the call is
 * applied here (index = that point), so a read of local state then is linearizable. */
int keel_node_read_barrier(struct keel_node *n, keel_node_done_fn *cb, void *ud);
/* Hand leadership over (operators, rolling restarts). */
int keel_node_transfer_leader(struct keel_node *n, keel_raft_id to);

/* Tell the transport where a member is (for members added later). */
int keel_node_set_peer(struct keel_node *n, keel_raft_id id, const char *host, uint16_t port);
/* Since when (loop time, uv_now in ms) this node and the peer are connected both ways; 0 when
 * they are not (keel_transport_active_since). */
uint64_t keel_node_peer_active_since(const struct keel_node *n, keel_raft_id id);
/* Forget a member's address (it was removed): nothing is sent to it any more. */
void keel_node_remove_peer(struct keel_node *n, keel_raft_id id);

keel_raft_id keel_node_id(const struct keel_node *n);
keel_raft_id keel_node_leader(const struct keel_node *n);
uint64_t keel_node_term(const struct keel_node *n);
uint64_t keel_node_commit_index(const struct keel_node *n);
bool keel_node_is_leader(const struct keel_node *n);
uint16_t keel_node_port(const struct keel_node *n);
const struct keel_raft *keel_node_raft(const struct keel_node *n);

struct keel_node_stats {
	uint64_t syncs;            /* WAL fdatasyncs */
	uint64_t entries_synced;   /* entries written by them */
	uint64_t applied;
	uint64_t snapshots_taken, snapshots_sent, snapshots_received;
	uint64_t snapshot_failures;           /* snapshots that could not be saved (logged as errors) */
	uint64_t wal_reads, wal_read_entries; /* entries read back from the WAL for followers */
	uint64_t wal_read_failures;           /* reads that failed, or found the entries compacted */
};
void keel_node_get_stats(const struct keel_node *n, struct keel_node_stats *st);

/* What this node saw of one peer while it led (etcd's /v2/stats/leader): heartbeat round trips
 * in seconds and the appends the peer accepted or rejected. */
struct keel_node_peer_stats {
	uint64_t success, fail;
	double current, average, minimum, maximum, stddev; /* seconds; 0 with no sample yet */
	uint64_t samples;
};
/* 0, or -ENOENT when the peer was never heard from. */
int keel_node_peer_stats(const struct keel_node *n, keel_raft_id peer, struct keel_node_peer_stats *ret);

/* Stop: pending callbacks get -KEEL_ESTOPPED, the WAL is closed after any write in flight, the
 * transport is closed; cb runs when every handle is closed and n is freed. */
void keel_node_stop(struct keel_node *n, void (*cb)(void *ud), void *ud);
