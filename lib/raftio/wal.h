/* The write-ahead log: where the Raft driver makes entries, hard state and snapshot points
 * durable before it acts on them (raft.h, driver contract step 1). The consensus core never
 * calls this; the driver does, then tells the core what is safe. Format and recovery rules:
 * docs/raftio.md.
 *
 * A WAL is a directory of preallocated segment files `%016llx-%016llx.wal` (sequence number,
 * index of the first entry the segment was opened for). Records are appended, never rewritten:
 * an ENTRY whose index is at or below the last one replaces the log from that index on, which
 * is how Raft's log truncation (§3.5) is recorded. Nothing here is thread-safe but
 * keel_wal_read, which may run beside one writing thread; one struct keel_wal per directory (open
 * takes an exclusive lock on it). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/errors.h"
#include "raft/raft.h"

#define KEEL_WAL_SEGMENT_SIZE_DEFAULT ((size_t)64 << 20)
#define KEEL_WAL_SEGMENT_SIZE_MIN ((size_t)64 << 10)

struct keel_wal_options {
	/* Bytes preallocated per segment; 0 selects the default (64 MiB), below 64 KiB is -EINVAL.
	 * A record bigger than a segment gets a segment of its own, sized to fit. */
	size_t segment_size;
	/* Segments whose entries a snapshot covers are deleted (oldest first) only while more than
	 * this many segments exist: 0 deletes every covered one (the default), SIZE_MAX none
	 * (etcd's --max-wals, where 0 means keep them all). */
	size_t keep_segments;
	/* Replay reads each segment this many bytes at a time and never holds more of the file
	 * (a record larger than that has its CRC computed piecewise and its data read into the
	 * entry's own allocation). 0 selects 1 MiB; tests use tiny ones (at least 64). */
	size_t replay_chunk;
	/* Entries at or below the commit index of a hard state replayed after them come back
	 * without their data (data NULL, len kept), configuration entries excepted: a driver that
	 * applies committed entries by reading them back (keel_wal_read) needs only their places,
	 * and replay then holds no more entry data than the uncommitted tail. */
	bool drop_committed_data;
};

/* What keel_wal_open() found on disk. The caller owns `entries` and each entry's data and
 * releases them with keel_wal_recovered_free(). */
struct keel_wal_recovered {
	struct keel_raft_hard_state hs; /* the last one written */
	bool has_hs;
	uint64_t snap_index, snap_term; /* the last SNAPSHOT record; 0, 0 if none */
	struct keel_raft_entry *entries; /* consecutive, starting at snap_index + 1; see
					  * drop_committed_data */
	size_t n_entries;
};

struct keel_wal;

/* Open the WAL in `dir`, creating the directory (its parent must exist) and a first segment if
 * there is none, and replay it into *rec (may be NULL when the caller does not want the
 * contents). opt may be NULL for the defaults.
 *
 * Recovery verifies every segment header and record CRC. Damage at the end of the last segment
 * with no valid record after it is a torn write from a crash: it is zeroed (and synced) so that
 * appends continue cleanly. Any other damage (in a segment that is not the last, a valid record
 * after the damage, a missing segment, entries that do not follow each other) fails with
 * -KEEL_ECORRUPT and a message naming the segment file and the offset: recovery never drops
 * data silently. Other errors: -EINVAL (bad options), -EBUSY (the directory is open elsewhere),
 * -ENOMEM, -errno from the file system. On failure *ret and *rec are not touched. */
int keel_wal_open(const char *dir, const struct keel_wal_options *opt, struct keel_wal **ret,
		  struct keel_wal_recovered *rec, struct keel_err *err);

/* Frees what open put in rec and zeroes it; accepts NULL and an already freed rec. */
void keel_wal_recovered_free(struct keel_wal_recovered *rec);

/* Append entries (n may be 0) and then the hard state (NULL: unchanged). The records are built
 * in one buffer and written with one pwrite (two or more only when they cross into a new
 * segment). Nothing is synced: call keel_wal_sync() once for a group of appends. The exception
 * is rolling over to a new segment, which syncs the full segment first so that a later segment
 * never holds data while an earlier one may miss some.
 *
 * ents[0].index must lie in (snap_index, last_index + 1]; an index at or below the last one
 * replaces the log from there on. Entries must be consecutive with non-decreasing terms, and a
 * term not below the one of the entry they follow: -EINVAL otherwise (nothing written).
 * -ENOMEM leaves the WAL usable (nothing was written). A write failure fails the WAL (see
 * keel_wal_sync). The entries are only read. */
int keel_wal_append(struct keel_wal *w, const struct keel_raft_entry *ents, size_t n,
		    const struct keel_raft_hard_state *hs, struct keel_err *err);

/* Record that a snapshot covers the log up to (index, term), make that durable, then delete the
 * segments before the current one whose entries all lie at or below index (a prefix of the
 * segments, so no hole ever appears).
 *
 * As in Raft (thesis ch. 5, InstallSnapshot in Figure 5.3), entries after index survive only if
 * the log holds index with this term; otherwise the whole log is replaced by the snapshot and
 * the next append must be index + 1. The hard state is written again next to the SNAPSHOT
 * record, so deleting old segments never loses it. -EINVAL if index is 0 or below the last
 * snapshot. A failure to delete an old segment is returned but leaves the WAL usable (the
 * segments are only garbage, the next snapshot deletes them). */
int keel_wal_snapshot(struct keel_wal *w, uint64_t index, uint64_t term, struct keel_err *err);

/* fdatasync what was appended since the last sync; a no-op if nothing was.
 *
 * Failure semantics ("fsyncgate"): after a failed write or fdatasync the kernel may have
 * dropped the dirty pages and marked them clean, so a retry could report success for data
 * that is gone. The WAL therefore fails for good: the failing call returns the error (-EIO,
 * -ENOSPC, ...), and every later append, sync and snapshot returns -KEEL_ESTOPPED (its message
 * carries the original error) and does nothing. The driver must stop acknowledging and restart;
 * reopening recovers a consistent prefix that holds everything a successful sync covered. */
int keel_wal_sync(struct keel_wal *w, struct keel_err *err);

/* Read back entries [lo, hi] as they were appended, or a prefix of them (at least one): a leader
 * whose Raft core no longer holds them in memory needs them for a lagging follower. Entries after
 * the first stop before their data would exceed max_bytes in total. On success *ret_ents is an
 * array of *ret_n entries and *ret_data the one block holding all their data (NULL when all are
 * empty); both come from keel_malloc and belong to the caller. The records are checked (CRC,
 * index) as replay checks them.
 *
 * Safe to call from another thread while one thread appends, syncs and snapshots: the index is
 * under a lock and the segment files are opened by the reader itself. Only entries written by an
 * append that has returned may be asked for (a Raft driver asks for persisted ones).
 * Errors: -ENOENT (lo is covered by a snapshot, or its segment was deleted meanwhile), -EINVAL
 * (lo is beyond the last entry, hi < lo), -KEEL_ECORRUPT (the record is not what the index says:
 * damaged since it was written), -ENOMEM, -errno from open/pread. */
int keel_wal_read(struct keel_wal *w, uint64_t lo, uint64_t hi, size_t max_bytes,
		  struct keel_raft_entry **ret_ents, size_t *ret_n, void **ret_data, struct keel_err *err);

/* Closes the files and frees w; accepts NULL. Does not sync: unsynced appends may or may not
 * survive, as with a crash. */
void keel_wal_close(struct keel_wal *w);

/* Index of the newest entry (the snapshot index when the log after it is empty). */
uint64_t keel_wal_last_index(const struct keel_wal *w);
/* 0 while the WAL is usable, else the (negative) error that failed it. */
int keel_wal_failed(const struct keel_wal *w);
