/* What the WAL's writer (wal.c) and its index and reader (wal_index.c) share. Not for use outside
 * lib/raftio/wal*.c. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "raftio/wal.h"

/* Segment header: magic[8], u32 version, u32 reserved (0), u64 seq, u64 first index,
 * u32 crc32c of the 32 bytes before it, u32 zero. Records start right after it. */
#define WAL_MAGIC "KEELWAL\0"
#define WAL_VERSION 1
#define WAL_HDR_SIZE 40
#define WAL_HDR_CRC_OFF 32

/* Record frame: u32 len (of type + payload), u32 crc32c (of type + payload), u8 type, payload,
 * zero padding to a multiple of 8. A zero length word marks the end of the records. */
#define WAL_FRAME 8
#define WAL_ALIGN(n) (((n) + 7) & ~(size_t)7)

enum wal_rec_type {
	WAL_REC_ENTRY = 1,      /* u64 term, u64 index, u8 entry type, u32 len, data */
	WAL_REC_HARD_STATE = 2, /* u64 term, u64 vote, u64 commit */
	WAL_REC_SNAPSHOT = 3,   /* u64 index, u64 term, u64 last: the log now holds (index, last] */
};

#define WAL_ENTRY_HEAD 21
#define WAL_HS_PAYLOAD 24
#define WAL_SNAP_PAYLOAD 24

/* Whether a record's body (type byte + plen payload bytes) has the shape its type says: checked
 * before the checksum, so the scan after damage (every 8-aligned offset) turns random bytes
 * away without hashing up to a segment's worth each time. */
static inline bool wal_rec_shape_ok(const uint8_t *body, size_t plen)
{
	switch (body[0]) {
	case WAL_REC_ENTRY:
		return plen >= WAL_ENTRY_HEAD && plen - WAL_ENTRY_HEAD == keel_le32(body + 1 + 17);
	case WAL_REC_HARD_STATE:
		return plen == WAL_HS_PAYLOAD;
	case WAL_REC_SNAPSHOT:
		return plen == WAL_SNAP_PAYLOAD;
	default:
		return false;
	}
}

/* Segment names: 16 hex digits, '-', 16 hex digits, ".wal" (37 characters). */
#define WAL_NAME_LEN 37

struct wal_seg {
	uint64_t seq;
	uint64_t first_index; /* from the name; informational */
	uint64_t max_index;   /* highest live entry index recorded in it, 0 if none */
};

/* The terms of the log as runs: run k covers [runs[k].index, runs[k + 1].index). Terms change
 * rarely, so this is tiny, and it is all the writer needs to answer "which term is entry i". */
struct wal_run {
	uint64_t index, term;
};

/* The record of entry `index` starts at offset `off` of segment (seq, seg_first); the records of
 * the entries after it follow in order (other kinds of records between them) until the next loc
 * that does not continue this one. */
struct wal_loc {
	uint64_t index;
	uint64_t seq, seg_first;
	uint64_t off;
	bool cont; /* continues the previous loc's stretch: same segment, the next entries */
};

struct keel_wal {
	char *dir;
	int dirfd; /* holds the flock that keeps a second writer out */
	size_t segment_size;
	size_t keep_segments; /* see keel_wal_options */

	struct wal_seg *segs; /* oldest first; the last one is being written */
	size_t n_segs, cap_segs;
	int fd;        /* the last segment */
	uint64_t off;  /* where the next record goes */
	uint64_t size; /* preallocated size of the last segment */
	bool dirty;    /* written since the last fdatasync */

	int failed; /* 0, or the error that stopped the WAL for good */
	char failed_msg[KEEL_ERR_MSG_SIZE];

	uint64_t snap_index, snap_term, last_index;
	struct keel_raft_hard_state hs;
	bool has_hs;
	struct wal_run *runs;
	size_t n_runs, cap_runs;

	struct keel_buf buf; /* the records of one call, reused */

	/* Where each live entry's record is, for keel_wal_read (wal_index.c). The writer changes
	 * these under `lock`; the reader may run on another thread. */
	pthread_mutex_t lock;
	struct wal_loc *locs;
	size_t n_locs, cap_locs;
	uint64_t idx_snap, idx_last; /* entries (idx_snap, idx_last] are indexed */
	bool idx_break;  /* the next entry starts a new stretch (records after the last were dropped) */
	uint32_t idx_run_entries; /* since the last loc, for the next checkpoint */
	uint64_t idx_run_bytes;
};

enum wal_parse_result { WAL_REC_OK, WAL_REC_END, WAL_REC_BAD };

struct wal_rec {
	uint8_t type;
	const uint8_t *payload;
	size_t plen;
	size_t total; /* frame + type + payload + padding */
};

/* Parse the record at `off` (8-aligned) of a segment image p[0, size): WAL_REC_OK with *rec, the
 * end of the records, or damage (*why says what). */
enum wal_parse_result wal_parse(const uint8_t *p, size_t size, size_t off, struct wal_rec *rec,
				const char **why);

/* ---- replay in bounded chunks (wal_stream.c) ----
 * A window on one segment file: at most `chunk` bytes of it are held at a time. */
#define WAL_REPLAY_CHUNK_DEFAULT ((size_t)1 << 20)
#define WAL_REPLAY_CHUNK_MIN 64

struct wal_win {
	int fd;
	uint64_t size; /* of the file, from fstat at open */
	size_t chunk;  /* bytes read at a time: the most raw WAL bytes held */
	uint8_t *buf;
	uint64_t base; /* file offset of buf[0] */
	size_t len;    /* bytes of the file in buf */
};

/* A record parsed from a window. `head` holds the payload's first bytes (all of a hard state's or
 * a snapshot point's, an entry's head); `payload` points at the whole payload when it is in the
 * window (valid until the next call on it), NULL when the record is larger than a chunk. */
struct wal_srec {
	uint8_t type;
	uint8_t head[WAL_SNAP_PAYLOAD];
	size_t plen;
	size_t total; /* frame + type + payload + padding */
	const uint8_t *payload;
};

/* chunk 0 selects WAL_REPLAY_CHUNK_DEFAULT; smaller than WAL_REPLAY_CHUNK_MIN is raised to it. */
int wal_win_open(struct wal_win *v, int fd, size_t chunk);
void wal_win_free(struct wal_win *v);
/* Bytes [off, off + n) of the file (n <= chunk): a pointer valid until the next call. */
int wal_win_get(struct wal_win *v, uint64_t off, size_t n, const uint8_t **ret);
/* wal_parse() on the file through the window: a wal_parse_result, or -errno when reading fails. */
int wal_win_parse(struct wal_win *v, uint64_t off, struct wal_srec *rec, const char **why);
/* 1 if the record at off has a sane length and a matching checksum whatever its shape, 0 if not,
 * -errno when reading fails. */
int wal_win_checksum_ok(struct wal_win *v, uint64_t off);
/* After the records end at `from` (8-aligned): the first 8-aligned offset >= from + 8 where a
 * valid record starts (0 if none), and the end (exclusive, 8-aligned, at most the file size) of
 * the non-zero bytes from `from` on (`from` if there are none). One pass. */
int wal_win_scan_tail(struct wal_win *v, uint64_t from, uint64_t *ret_valid, uint64_t *ret_nz_end);

/* ---- the index of entry records (wal_index.c) ----
 * Locations are kept sparse: a stretch of consecutive entries written one after another into one
 * segment needs one loc, plus a checkpoint every WAL_LOC_ENTRIES entries or WAL_LOC_BYTES bytes so
 * a read never scans far. The writer holds w->lock around all of these (open needs not). */
#define WAL_LOC_ENTRIES 64
#define WAL_LOC_BYTES ((uint64_t)64 << 10)

/* Room for the locs that appending n entries of `bytes` bytes, rolling `rolls` times, can add. */
int wal_idx_reserve(struct keel_wal *w, size_t n, size_t bytes, size_t rolls);
/* The record of entry `index` (total bytes with its frame) was written at `off` in seg; an index at
 * or below the last one replaces the entries from there on. Capacity must have been reserved. */
void wal_idx_entry(struct keel_wal *w, uint64_t index, const struct wal_seg *seg, uint64_t off,
		   size_t total);
/* A snapshot at index keeps the entries up to `last` (>= index); those up to index are covered. */
void wal_idx_snapshot(struct keel_wal *w, uint64_t index, uint64_t last);
void wal_idx_free(struct keel_wal *w);
