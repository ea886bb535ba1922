/* Snapshot files: the state machine's data as of a log index, with the Raft metadata that goes
 * with it (index, term, configuration). The consensus core only ever sees the metadata; the
 * driver writes the data here as it arrives (a leader streams it in chunks, raft.h §5) or as it
 * dumps its own state, and streams it back out to load it or send it to a follower. Nothing is
 * ever held whole in memory. Format: docs/raftio.md.
 *
 * A snapshot directory holds `%016llx-%016llx.snap` files (term, index). A file appears under
 * that name only complete and synced (written as `<name>.tmp`, fsynced, renamed, directory
 * fsynced), so a crash leaves at worst a `.tmp` that keel_snap_retain() cleans up. Every file
 * carries a CRC32C over all of it, checked whenever it is read. Not thread-safe. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/errors.h"
#include "raft/raft.h"

struct keel_snap_writer;
struct keel_snap_reader;

/* Start writing the snapshot described by meta into dir (created if missing; its parent must
 * exist). meta is copied. -EINVAL for a meta the format cannot hold (index 0, more than
 * KEEL_RAFT_MAX_NODES voters or learners), -EBUSY if a writer for the same snapshot is still
 * open, -ENOMEM, -errno. */
int keel_snap_writer_open(const char *dir, const struct keel_raft_snapshot_meta *meta,
			  struct keel_snap_writer **ret, struct keel_err *err);

/* Append len bytes of snapshot data. Small writes are gathered into 64 KiB chunks. After a
 * failure every later call returns the same error; finish() then fails and abort() cleans up. */
int keel_snap_writer_write(struct keel_snap_writer *wr, const void *data, size_t len,
			   struct keel_err *err);

/* Complete the file (trailer, fsync), give it its real name and fsync the directory. Frees wr
 * whatever happens; on failure the temp file is removed and no snapshot appears. *ret_path (may
 * be NULL) receives the final path, the caller frees it with keel_free(). An existing snapshot
 * with the same term and index is replaced atomically. */
int keel_snap_writer_finish(struct keel_snap_writer *wr, char **ret_path, struct keel_err *err);

/* Give up: removes the temp file and frees wr. Accepts NULL. */
void keel_snap_writer_abort(struct keel_snap_writer *wr);

/* Told about each snapshot keel_snap_latest() passes over: a damaged or half-written file, or
 * one it could not read. `why` says what is wrong with it. */
typedef void keel_snap_warn_fn(void *userdata, const char *path, const struct keel_err *why);

/* Find the newest snapshot in dir whose CRC checks out (reading each candidate in full),
 * skipping damaged ones (each reported to warn, which may be NULL). Returns 1 and fills
 * *ret_meta and *ret_path (caller frees with keel_free(); may be NULL) when one is found, 0
 * when there is none (or dir does not exist): then the outputs are not touched. -ENOMEM and
 * failures to list dir are returned as errors. */
int keel_snap_latest(const char *dir, struct keel_raft_snapshot_meta *ret_meta, char **ret_path,
		     keel_snap_warn_fn *warn, void *userdata, struct keel_err *err);

/* Open a snapshot file for streaming. Checks the header (its own CRC), the trailer and the
 * file size, and fills *ret_meta (may be NULL); the CRC over the data is checked as it streams.
 * -KEEL_ECORRUPT, -ENOMEM, -errno. */
int keel_snap_reader_open(const char *path, struct keel_snap_reader **ret,
			  struct keel_raft_snapshot_meta *ret_meta, struct keel_err *err);

/* Bytes of data in the snapshot (without header and trailer): what a sender announces. */
uint64_t keel_snap_reader_size(const struct keel_snap_reader *rd);

/* Read up to len bytes of data: returns the count, 0 at the end, or an error. The CRC is checked
 * when the last byte is read; if it does not match, that read returns -KEEL_ECORRUPT instead of
 * the bytes. Whoever loads a snapshot must therefore treat what it read as provisional until a
 * read returns 0. */
ssize_t keel_snap_reader_read(struct keel_snap_reader *rd, void *buf, size_t len,
			      struct keel_err *err);

void keel_snap_reader_close(struct keel_snap_reader *rd); /* accepts NULL */

/* Keep the newest `keep` valid snapshots of dir and delete the rest: older ones, damaged ones
 * (CRC or format) newer than the kept ones, and `.tmp` files that no open writer holds (a writer
 * keeps an flock on its temp file). A file that cannot be read for another reason (EIO) stops
 * the cleanup with that error rather than being deleted. Returns the number of files deleted. */
int keel_snap_retain(const char *dir, size_t keep, struct keel_err *err);
