/* The write-ahead log: segment files, record framing, replay and torn-tail repair.
 * The on-disk format is described in docs/raftio.md; wal.h states the contract. */
#include "raftio/wal.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/crc32c.h"
#include "base/mem.h"
#include "base/sys.h"
#include "raftio/names.h"
#include "raftio/wal-internal.h"

/* ---- small helpers ---------------------------------------------------------------------- */

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void wal_seg_name(char out[WAL_NAME_LEN + 1], uint64_t seq, uint64_t first)
{
	snprintf(out, WAL_NAME_LEN + 1, "%016llx-%016llx.wal", (unsigned long long)seq,
		 (unsigned long long)first);
}

static int wal_seg_path(const struct keel_wal *w, char *out, size_t size, uint64_t seq,
			uint64_t first, const char *suffix)
{
	int n = snprintf(out, size, "%s/%016llx-%016llx.wal%s", w->dir, (unsigned long long)seq,
			 (unsigned long long)first, suffix);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static void wal_encode_header(uint8_t hdr[WAL_HDR_SIZE], uint64_t seq, uint64_t first)
{
	memset(hdr, 0, WAL_HDR_SIZE);
	memcpy(hdr, WAL_MAGIC, 8);
	put32(hdr + 8, WAL_VERSION);
	put64(hdr + 16, seq);
	put64(hdr + 24, first);
	put32(hdr + WAL_HDR_CRC_OFF, keel_crc32c(0, hdr, WAL_HDR_CRC_OFF));
}

/* ---- record parsing (shared by replay and the scan for records after damage) ----------- */

/* Parse the record at `off` (8-aligned) of a segment image p[0, size). A record is valid only
 * if its length is sane, its CRC matches, its type is known and its payload has the shape that
 * type demands: the scan for records after damage relies on garbage almost never passing. */
enum wal_parse_result wal_parse(const uint8_t *p, size_t size, size_t off, struct wal_rec *rec,
				const char **why)
{
	size_t avail = size - off;
	if (avail < WAL_FRAME) {
		for (size_t i = off; i < size; i++)
			if (p[i]) {
				*why = "truncated record frame";
				return WAL_REC_BAD;
			}
		return WAL_REC_END;
	}
	uint32_t len = keel_le32(p + off);
	if (len == 0)
		return WAL_REC_END;
	if (len > avail - WAL_FRAME || WAL_ALIGN(WAL_FRAME + (size_t)len) > avail) {
		*why = "record length runs past the end of the segment";
		return WAL_REC_BAD;
	}
	/* Shape before checksum: the scan after damage tries every 8-aligned offset, and random
	 * bytes must be turned away without hashing up to a segment's worth each time. */
	const uint8_t *body = p + off + WAL_FRAME;
	size_t plen = len - 1;
	if (!wal_rec_shape_ok(body, plen)) {
		*why = "record of unknown type or malformed payload";
		return WAL_REC_BAD;
	}
	if (keel_crc32c(0, body, len) != keel_le32(p + off + 4)) {
		*why = "record checksum mismatch";
		return WAL_REC_BAD;
	}
	rec->type = body[0];
	rec->payload = body + 1;
	rec->plen = plen;
	rec->total = WAL_ALIGN(WAL_FRAME + (size_t)len);
	return WAL_REC_OK;
}

/* ---- replay ------------------------------------------------------------------------------ */

struct wal_replay {
	struct keel_raft_entry *ents;
	size_t n, cap;
	uint64_t snap_index, snap_term;
	bool seen_snap;
	struct keel_raft_hard_state hs;
	bool has_hs;
	/* the torn tail of the last segment, zeroed once the whole replay has passed */
	uint64_t repair_from, repair_to;
	/* keel_wal_options.drop_committed_data: entries before shed_pos have had theirs dropped */
	bool shed;
	size_t shed_pos;
	size_t chunk; /* keel_wal_options.replay_chunk */
	/* for messages */
	char first_name[WAL_NAME_LEN + 1];
	char name[WAL_NAME_LEN + 1];
	size_t off;
};

static void wal_replay_drop(struct wal_replay *rp, size_t from)
{
	for (size_t i = from; i < rp->n; i++)
		keel_free(rp->ents[i].data);
	if (from < rp->n)
		rp->n = from;
	if (rp->shed_pos > rp->n)
		rp->shed_pos = rp->n;
}

/* drop_committed_data: a hard state commits the entries up to its commit index; they keep only
 * their place (index, term, type, length), except configuration entries, which are small and
 * which the core needs to rebuild its configuration. */
static void wal_replay_shed(struct wal_replay *rp)
{
	if (!rp->shed)
		return;
	while (rp->shed_pos < rp->n && rp->ents[rp->shed_pos].index <= rp->hs.commit) {
		struct keel_raft_entry *e = &rp->ents[rp->shed_pos++];
		if (e->type != KEEL_RAFT_ENTRY_CONF) {
			keel_free(e->data);
			e->data = NULL;
		}
	}
}

static int wal_corrupt(const struct keel_wal *w, const struct wal_replay *rp,
		       struct keel_err *err, const char *fmt, ...) KEEL_PRINTF(4, 5);

/* -KEEL_ECORRUPT with "wal: <segment> offset <n>: <what> (in <dir>)". */
static int wal_corrupt(const struct keel_wal *w, const struct wal_replay *rp,
		       struct keel_err *err, const char *fmt, ...)
{
	char what[160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return keel_err_set(err, -KEEL_ECORRUPT, "wal: %s offset %zu: %s (in %s)", rp->name,
			    rp->off, what, w->dir);
}

static int wal_apply_entry(struct keel_wal *w, struct wal_replay *rp, struct wal_seg *seg,
			   const struct wal_win *v, const struct wal_srec *rec, struct keel_err *err)
{
	const uint8_t *q = rec->head;
	struct keel_raft_entry e = {
		.term = keel_le64(q),
		.index = keel_le64(q + 8),
		.type = q[16],
		.len = keel_le32(q + 17),
	};
	if (e.index == 0)
		return wal_corrupt(w, rp, err, "entry with index 0");
	if (rp->seen_snap && e.index <= rp->snap_index)
		return wal_corrupt(w, rp, err, "entry %llu at or below the snapshot index %llu",
				   (unsigned long long)e.index, (unsigned long long)rp->snap_index);
	if (rp->n > 0) {
		uint64_t first = rp->ents[0].index, last = rp->ents[rp->n - 1].index;
		if (e.index > last + 1)
			return wal_corrupt(w, rp, err, "entry %llu does not follow entry %llu",
					   (unsigned long long)e.index, (unsigned long long)last);
		/* An index at or below the last one replaces the log from there (Raft §3.5). */
		if (e.index < first)
			wal_replay_drop(rp, 0);
		else if (e.index <= last)
			wal_replay_drop(rp, (size_t)(e.index - first));
	}
	if (rp->n > 0 && e.term < rp->ents[rp->n - 1].term)
		return wal_corrupt(w, rp, err, "entry term %llu below the previous entry's term %llu",
				   (unsigned long long)e.term,
				   (unsigned long long)rp->ents[rp->n - 1].term);
	if (rp->n == rp->cap) {
		size_t cap = rp->cap ? rp->cap * 2 : 256;
		struct keel_raft_entry *ents = keel_reallocarray(rp->ents, cap, sizeof(*ents));
		if (!ents)
			return keel_err_set(err, -ENOMEM, "wal: out of memory replaying %s", rp->name);
		rp->ents = ents;
		rp->cap = cap;
	}
	if (wal_idx_reserve(w, 1, 0, 0) < 0)
		return keel_err_set(err, -ENOMEM, "wal: out of memory replaying %s", rp->name);
	if (e.len && rec->payload) {
		e.data = keel_memdup(rec->payload + WAL_ENTRY_HEAD, e.len);
		if (!e.data)
			return keel_err_set(err, -ENOMEM, "wal: out of memory replaying %s", rp->name);
	} else if (e.len) {
		/* Larger than a replay chunk: read the data (whose CRC was checked) straight into
		 * the entry's own allocation. */
		e.data = keel_malloc(e.len);
		if (!e.data)
			return keel_err_set(err, -ENOMEM, "wal: out of memory replaying %s", rp->name);
		ssize_t got = keel_sys_pread_all(v->fd, e.data, e.len,
						 (off_t)(rp->off + WAL_FRAME + 1 + WAL_ENTRY_HEAD));
		if (got != (ssize_t)e.len) {
			keel_free(e.data);
			return keel_err_errno(err, got < 0 ? (int)got : -EIO, "wal: read %s/%s", w->dir,
					      rp->name);
		}
	}
	rp->ents[rp->n++] = e;
	wal_idx_entry(w, e.index, seg, rp->off, rec->total);
	if (e.index > seg->max_index)
		seg->max_index = e.index;
	return 0;
}

static int wal_apply_snapshot(struct keel_wal *w, struct wal_replay *rp,
			      const struct wal_srec *rec, struct keel_err *err)
{
	uint64_t index = keel_le64(rec->head), term = keel_le64(rec->head + 8);
	uint64_t last = keel_le64(rec->head + 16);
	if (last < index)
		return wal_corrupt(w, rp, err,
				   "snapshot record keeps the log up to %llu, below its index %llu",
				   (unsigned long long)last, (unsigned long long)index);
	if (rp->seen_snap && index < rp->snap_index)
		return wal_corrupt(w, rp, err, "snapshot index %llu below the previous one, %llu",
				   (unsigned long long)index, (unsigned long long)rp->snap_index);
	/* Entries after `last` were replaced by the snapshot; those up to index are covered by it. */
	size_t keep_end = rp->n;
	while (keep_end > 0 && rp->ents[keep_end - 1].index > last)
		keep_end--;
	wal_replay_drop(rp, keep_end);
	size_t drop = 0;
	while (drop < rp->n && rp->ents[drop].index <= index)
		keel_free(rp->ents[drop++].data);
	if (drop) {
		memmove(rp->ents, rp->ents + drop, (rp->n - drop) * sizeof(*rp->ents));
		rp->n -= drop;
		rp->shed_pos -= KEEL_MIN(drop, rp->shed_pos);
	}
	rp->snap_index = index;
	rp->snap_term = term;
	rp->seen_snap = true;
	wal_idx_snapshot(w, index, last);
	return 0;
}

/* Zero [from, to) of a segment and sync it: the torn tail is gone for good, and appends that
 * land there later are followed by zeros again. */
static int wal_zero_range(int fd, uint64_t from, uint64_t to)
{
	static const uint8_t zeros[65536];
	while (from < to) {
		size_t n = (size_t)KEEL_MIN(to - from, (uint64_t)sizeof(zeros));
		int r = keel_sys_pwrite_all(fd, zeros, n, (off_t)from);
		if (r)
			return r;
		from += n;
	}
	return keel_sys_fdatasync(fd);
}

/* Replay segment i, reading it a chunk at a time. The last one stays open (w->fd) for appending,
 * its torn tail repaired. */
static int wal_replay_segment(struct keel_wal *w, struct wal_replay *rp, size_t i,
			      struct keel_err *err)
{
	struct wal_seg *seg = &w->segs[i];
	bool last = i + 1 == w->n_segs;
	char path[PATH_MAX];
	int r = wal_seg_path(w, path, sizeof(path), seg->seq, seg->first_index, "");
	if (r)
		return keel_err_errno(err, r, "wal: segment path in %s", w->dir);
	wal_seg_name(rp->name, seg->seq, seg->first_index);
	rp->off = 0;

	int fd = keel_sys_open(path, last ? O_RDWR : O_RDONLY, 0);
	if (fd < 0)
		return keel_err_errno(err, fd, "wal: open %s", path);
	struct wal_win v;
	const uint8_t *p;
	r = wal_win_open(&v, fd, rp->chunk);
	if (!r && v.size >= WAL_HDR_SIZE)
		r = wal_win_get(&v, 0, WAL_HDR_SIZE, &p);
	if (r) {
		keel_err_errno(err, r, "wal: read %s", path);
		goto out;
	}

	if (v.size < WAL_HDR_SIZE || memcmp(p, WAL_MAGIC, 8) != 0 ||
	    keel_le32(p + WAL_HDR_CRC_OFF) != keel_crc32c(0, p, WAL_HDR_CRC_OFF)) {
		r = wal_corrupt(w, rp, err, "bad segment header");
		goto out;
	}
	if (keel_le32(p + 8) != WAL_VERSION) {
		r = wal_corrupt(w, rp, err, "unsupported format version %u", keel_le32(p + 8));
		goto out;
	}
	if (keel_le64(p + 16) != seg->seq || keel_le64(p + 24) != seg->first_index) {
		r = wal_corrupt(w, rp, err, "header names segment %llu, first index %llu, unlike its name",
				(unsigned long long)keel_le64(p + 16),
				(unsigned long long)keel_le64(p + 24));
		goto out;
	}

	uint64_t off = WAL_HDR_SIZE;
	int pr;
	const char *why = NULL;
	for (;;) {
		struct wal_srec rec;
		rp->off = off;
		pr = wal_win_parse(&v, off, &rec, &why);
		if (pr != WAL_REC_OK)
			break;
		if (rec.type == WAL_REC_ENTRY) {
			r = wal_apply_entry(w, rp, seg, &v, &rec, err);
		} else if (rec.type == WAL_REC_SNAPSHOT) {
			r = wal_apply_snapshot(w, rp, &rec, err);
		} else {
			const uint8_t *q = rec.head;
			rp->hs = (struct keel_raft_hard_state){
				.term = keel_le64(q), .vote = keel_le64(q + 8), .commit = keel_le64(q + 16),
			};
			rp->has_hs = true;
			wal_replay_shed(rp);
		}
		if (r)
			goto out;
		off += rec.total;
	}
	if (pr < 0) {
		r = keel_err_errno(err, pr, "wal: read %s", path);
		goto out;
	}

	/* Past the end (a zero length word or damage) there must be no valid record: a valid
	 * record there means something in between was lost, never a torn write. */
	uint64_t valid, nz_end;
	r = wal_win_scan_tail(&v, off, &valid, &nz_end);
	if (r) {
		keel_err_errno(err, r, "wal: read %s", path);
		goto out;
	}
	if (valid) {
		if (pr == WAL_REC_BAD)
			r = wal_corrupt(w, rp, err, "%s, and a valid record follows at offset %llu", why,
					(unsigned long long)valid);
		else
			r = wal_corrupt(w, rp, err, "records end here, but a valid record follows at offset %llu",
					(unsigned long long)valid);
		goto out;
	}
	if (pr == WAL_REC_BAD) {
		r = wal_win_checksum_ok(&v, off);
		if (r < 0) {
			keel_err_errno(err, r, "wal: read %s", path);
			goto out;
		}
		if (r) {
			/* Intact but not understood: not something a torn write produces. */
			r = wal_corrupt(w, rp, err, "%s, with a valid checksum", why);
			goto out;
		}
	}
	if (pr == WAL_REC_BAD && !last) {
		/* Segments were synced before the next one was created: no torn write here. */
		r = wal_corrupt(w, rp, err, "%s, in a segment that is not the last", why);
		goto out;
	}
	if (last) {
		rp->repair_from = off;
		rp->repair_to = nz_end;
		w->fd = fd;
		fd = -1;
		w->off = off;
		w->size = v.size;
	}
	r = 0;
out:
	wal_win_free(&v);
	if (fd >= 0)
		keel_sys_close(fd);
	return r;
}

static int wal_replay(struct keel_wal *w, struct wal_replay *rp, struct keel_err *err)
{
	wal_seg_name(rp->first_name, w->segs[0].seq, w->segs[0].first_index);
	for (size_t i = 0; i < w->n_segs; i++) {
		if (i > 0 && w->segs[i].seq != w->segs[i - 1].seq + 1) {
			char name[WAL_NAME_LEN + 1];
			wal_seg_name(name, w->segs[i].seq, w->segs[i].first_index);
			return keel_err_set(err, -KEEL_ECORRUPT, "wal: %s: segment %llu is missing (in %s)",
					    name, (unsigned long long)w->segs[i - 1].seq + 1, w->dir);
		}
		int r = wal_replay_segment(w, rp, i, err);
		if (r)
			return r;
	}
	/* Whole-log checks: they fail only when a segment is missing at the front. */
	if (rp->n > 0 && rp->ents[0].index != rp->snap_index + 1)
		return keel_err_set(err, -KEEL_ECORRUPT,
				    "wal: %s onwards: the log starts at entry %llu, not right after the snapshot at %llu (in %s)",
				    rp->first_name, (unsigned long long)rp->ents[0].index,
				    (unsigned long long)rp->snap_index, w->dir);
	if (rp->n > 0 && rp->ents[0].term < rp->snap_term)
		return keel_err_set(err, -KEEL_ECORRUPT,
				    "wal: %s onwards: entry %llu has term %llu, below the snapshot's term %llu (in %s)",
				    rp->first_name, (unsigned long long)rp->ents[0].index,
				    (unsigned long long)rp->ents[0].term,
				    (unsigned long long)rp->snap_term, w->dir);
	/* Only now touch the disk: a WAL refused as corrupt is left exactly as it was found. */
	if (rp->repair_to > rp->repair_from) {
		int r = wal_zero_range(w->fd, rp->repair_from, rp->repair_to);
		if (r)
			return keel_err_errno(err, r, "wal: %s/%s: zeroing the torn tail at offset %llu",
					      w->dir, rp->name, (unsigned long long)rp->repair_from);
	}
	return 0;
}

/* ---- the writer's view of the log --------------------------------------------------------- */

static uint64_t wal_term_at(const struct keel_wal *w, uint64_t index)
{
	if (index == w->snap_index)
		return w->snap_term;
	if (index < w->snap_index || index > w->last_index || w->n_runs == 0)
		return 0;
	size_t lo = 0, hi = w->n_runs;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (w->runs[mid].index <= index)
			lo = mid;
		else
			hi = mid;
	}
	return w->runs[lo].term;
}

static int wal_reserve(void **arr, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : 8;
	while (n < need)
		n *= 2;
	void *p = keel_reallocarray(*arr, n, elem);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = n;
	return 0;
}

/* Record the terms of ents (already validated) in the runs; capacity was reserved. */
static void wal_runs_append(struct keel_wal *w, const struct keel_raft_entry *ents, size_t n)
{
	while (w->n_runs > 0 && w->runs[w->n_runs - 1].index >= ents[0].index)
		w->n_runs--;
	for (size_t i = 0; i < n; i++)
		if (w->n_runs == 0 || w->runs[w->n_runs - 1].term != ents[i].term)
			w->runs[w->n_runs++] = (struct wal_run){ents[i].index, ents[i].term};
}

static size_t wal_count_runs(const struct keel_raft_entry *ents, size_t n)
{
	size_t c = n ? 1 : 0;
	for (size_t i = 1; i < n; i++)
		c += ents[i].term != ents[i - 1].term;
	return c;
}

/* ---- failure ------------------------------------------------------------------------------ */

static int wal_fail(struct keel_wal *w, int code, struct keel_err *err)
{
	w->failed = code;
	snprintf(w->failed_msg, sizeof(w->failed_msg), "%s",
		 err && err->code ? keel_err_msg(err) : keel_strerror(code));
	return code;
}

static int wal_stopped(const struct keel_wal *w, struct keel_err *err)
{
	return keel_err_set(err, -KEEL_ESTOPPED, "wal: stopped after an earlier failure: %s",
			    w->failed_msg);
}

/* ---- writing ------------------------------------------------------------------------------ */

/* Append one framed record to w->buf (space was reserved). */
static void wal_encode(struct keel_wal *w, uint8_t type, const uint8_t *head, size_t head_len,
		       const void *data, size_t data_len)
{
	size_t len = 1 + head_len + data_len;
	size_t total = WAL_ALIGN(WAL_FRAME + len);
	uint8_t *p = (uint8_t *)w->buf.data + w->buf.len;
	put32(p, (uint32_t)len);
	p[WAL_FRAME] = type;
	memcpy(p + WAL_FRAME + 1, head, head_len);
	if (data_len)
		memcpy(p + WAL_FRAME + 1 + head_len, data, data_len);
	memset(p + WAL_FRAME + len, 0, total - WAL_FRAME - len);
	put32(p + 4, keel_crc32c(0, p + WAL_FRAME, len));
	w->buf.len += total;
	w->buf.data[w->buf.len] = '\0';
}

static void wal_encode_entry(struct keel_wal *w, const struct keel_raft_entry *e)
{
	uint8_t head[WAL_ENTRY_HEAD];
	put64(head, e->term);
	put64(head + 8, e->index);
	head[16] = e->type;
	put32(head + 17, e->len);
	wal_encode(w, WAL_REC_ENTRY, head, sizeof(head), e->data, e->len);
}

static void wal_encode_hs(struct keel_wal *w, const struct keel_raft_hard_state *hs)
{
	uint8_t head[WAL_HS_PAYLOAD];
	put64(head, hs->term);
	put64(head + 8, hs->vote);
	put64(head + 16, hs->commit);
	wal_encode(w, WAL_REC_HARD_STATE, head, sizeof(head), NULL, 0);
}

static size_t wal_entry_size(const struct keel_raft_entry *e)
{
	return WAL_ALIGN(WAL_FRAME + 1 + WAL_ENTRY_HEAD + (size_t)e->len);
}

#define WAL_HS_SIZE WAL_ALIGN(WAL_FRAME + 1 + WAL_HS_PAYLOAD)
#define WAL_SNAP_SIZE WAL_ALIGN(WAL_FRAME + 1 + WAL_SNAP_PAYLOAD)

/* Reserve room in w->buf for `total` bytes of records (n of them entries), in w->segs for every
 * segment they could roll into and in the index for their locations, so that nothing allocates
 * once the first byte is written. Two consecutive segments always hold more than one segment's
 * worth, hence the bound. */
static int wal_prepare(struct keel_wal *w, size_t total, size_t n)
{
	keel_buf_reset(&w->buf);
	int r = keel_buf_reserve(&w->buf, total);
	if (r)
		return r;
	size_t rolls = 2 * (total / (w->segment_size - WAL_HDR_SIZE)) + 2;
	r = wal_reserve((void **)&w->segs, &w->cap_segs, w->n_segs + rolls, sizeof(*w->segs));
	if (!r && n) {
		pthread_mutex_lock(&w->lock); /* a reader may be looking at the index */
		r = wal_idx_reserve(w, n, total, rolls);
		pthread_mutex_unlock(&w->lock);
	}
	return r;
}

/* Create segment `seq`: preallocate, write the header, sync it, and only then give it its real
 * name, so that a crash never leaves a half-made segment under a segment name. */
static int wal_create_segment(struct keel_wal *w, uint64_t seq, uint64_t first, uint64_t size,
			      struct keel_err *err)
{
	keel_assert(w->n_segs < w->cap_segs); /* reserved before anything was written */
	char tmp[PATH_MAX], path[PATH_MAX];
	int r = wal_seg_path(w, tmp, sizeof(tmp), seq, first, RAFTIO_TMP_SUFFIX);
	if (!r)
		r = wal_seg_path(w, path, sizeof(path), seq, first, "");
	if (r)
		return keel_err_errno(err, r, "wal: segment path in %s", w->dir);
	int fd = keel_sys_open(tmp, O_CREAT | O_TRUNC | O_RDWR, 0600);
	if (fd < 0)
		return keel_err_errno(err, fd, "wal: create %s", tmp);
	uint8_t hdr[WAL_HDR_SIZE];
	wal_encode_header(hdr, seq, first);
	const char *step = "preallocate";
	r = keel_sys_fallocate(fd, 0, (off_t)size);
	if (!r) {
		step = "write header of";
		r = keel_sys_pwrite_all(fd, hdr, sizeof(hdr), 0);
	}
	if (!r) {
		step = "fsync";
		r = keel_sys_fsync(fd);
	}
	if (!r) {
		step = "rename";
		r = keel_sys_rename(tmp, path);
	}
	if (!r) {
		step = "fsync the directory of";
		r = keel_sys_fsync(w->dirfd);
	}
	if (r) {
		keel_sys_close(fd);
		keel_sys_unlink(tmp);
		return keel_err_errno(err, r, "wal: %s %s", step, path);
	}
	if (w->fd >= 0)
		keel_sys_close(w->fd); /* synced before we got here: close errors lose nothing */
	w->fd = fd;
	w->off = WAL_HDR_SIZE;
	w->size = size;
	w->dirty = false;
	w->segs[w->n_segs++] = (struct wal_seg){.seq = seq, .first_index = first};
	return 0;
}

/* Move on to a new segment whose first record needs `need` bytes. The full one is synced
 * first: recovery may then treat damage in any segment but the last as corruption. */
static int wal_roll(struct keel_wal *w, uint64_t first, size_t need, struct keel_err *err)
{
	if (w->dirty) {
		int r = keel_sys_fdatasync(w->fd);
		if (r) {
			char name[WAL_NAME_LEN + 1];
			const struct wal_seg *s = &w->segs[w->n_segs - 1];
			wal_seg_name(name, s->seq, s->first_index);
			return keel_err_errno(err, r, "wal: fdatasync %s/%s", w->dir, name);
		}
		w->dirty = false;
	}
	uint64_t size = KEEL_MAX((uint64_t)w->segment_size, (uint64_t)WAL_ALIGN(WAL_HDR_SIZE + need));
	return wal_create_segment(w, w->segs[w->n_segs - 1].seq + 1, first, size, err);
}

/* Write w->buf: as many whole records as fit into the current segment with one pwrite, then
 * roll and go on. */
static int wal_write_buf(struct keel_wal *w, struct keel_err *err)
{
	const uint8_t *p = (const uint8_t *)w->buf.data;
	size_t len = w->buf.len, pos = 0;
	uint64_t next_index = w->last_index + 1;
	while (pos < len) {
		size_t chunk = 0;
		uint64_t max_index = 0;
		while (pos + chunk < len) {
			const uint8_t *rec = p + pos + chunk;
			size_t total = WAL_ALIGN(WAL_FRAME + (size_t)keel_le32(rec));
			if (w->off + chunk + total > w->size)
				break;
			if (rec[WAL_FRAME] == WAL_REC_ENTRY) {
				max_index = KEEL_MAX(max_index, keel_le64(rec + WAL_FRAME + 1 + 8));
				next_index = keel_le64(rec + WAL_FRAME + 1 + 8) + 1;
			}
			chunk += total;
		}
		if (chunk) {
			int r = keel_sys_pwrite_all(w->fd, p + pos, chunk, (off_t)w->off);
			if (r) {
				char name[WAL_NAME_LEN + 1];
				const struct wal_seg *s = &w->segs[w->n_segs - 1];
				wal_seg_name(name, s->seq, s->first_index);
				return keel_err_errno(err, r, "wal: write %s/%s at offset %llu", w->dir,
						      name, (unsigned long long)w->off);
			}
			struct wal_seg *s = &w->segs[w->n_segs - 1];
			pthread_mutex_lock(&w->lock);
			for (size_t k = 0; k < chunk;) {
				const uint8_t *rec = p + pos + k;
				size_t total = WAL_ALIGN(WAL_FRAME + (size_t)keel_le32(rec));
				if (rec[WAL_FRAME] == WAL_REC_ENTRY)
					wal_idx_entry(w, keel_le64(rec + WAL_FRAME + 1 + 8), s, w->off + k, total);
				k += total;
			}
			pthread_mutex_unlock(&w->lock);
			w->off += chunk;
			w->dirty = true;
			pos += chunk;
			s->max_index = KEEL_MAX(s->max_index, max_index);
		}
		if (pos < len) {
			const uint8_t *rec = p + pos;
			uint64_t first = rec[WAL_FRAME] == WAL_REC_ENTRY ?
					 keel_le64(rec + WAL_FRAME + 1 + 8) : next_index;
			int r = wal_roll(w, first, WAL_ALIGN(WAL_FRAME + (size_t)keel_le32(rec)), err);
			if (r)
				return r;
		}
	}
	return 0;
}

/* A big batch leaves a big buffer behind; do not keep more than this between calls. */
#define WAL_BUF_KEEP ((size_t)4 << 20)

static void wal_trim_buf(struct keel_wal *w)
{
	if (w->buf.cap > WAL_BUF_KEEP)
		keel_buf_free(&w->buf);
	else
		keel_buf_reset(&w->buf);
}

static int wal_check_entries(const struct keel_wal *w, const struct keel_raft_entry *ents,
			     size_t n, size_t *ret_total, struct keel_err *err)
{
	uint64_t first = ents[0].index;
	if (first <= w->snap_index || first > w->last_index + 1)
		return keel_err_set(err, -EINVAL,
				    "wal: entry %llu does not fit a log holding (%llu, %llu]",
				    (unsigned long long)first, (unsigned long long)w->snap_index,
				    (unsigned long long)w->last_index);
	uint64_t prev_term = wal_term_at(w, first - 1);
	size_t total = 0;
	for (size_t i = 0; i < n; i++) {
		const struct keel_raft_entry *e = &ents[i];
		if (e->index != first + i)
			return keel_err_set(err, -EINVAL, "wal: entry %zu has index %llu, expected %llu",
					    i, (unsigned long long)e->index,
					    (unsigned long long)(first + i));
		if (e->term < prev_term)
			return keel_err_set(err, -EINVAL,
					    "wal: entry %llu has term %llu, below the preceding term %llu",
					    (unsigned long long)e->index, (unsigned long long)e->term,
					    (unsigned long long)prev_term);
		if ((e->len && !e->data) || e->len > UINT32_MAX - 1 - WAL_ENTRY_HEAD)
			return keel_err_set(err, -EINVAL, "wal: entry %llu has bad data",
					    (unsigned long long)e->index);
		size_t sz = wal_entry_size(e);
		if (total > SIZE_MAX / 2 - sz)
			return keel_err_set(err, -EINVAL, "wal: batch too large");
		total += sz;
		prev_term = e->term;
	}
	*ret_total = total;
	return 0;
}

int keel_wal_append(struct keel_wal *w, const struct keel_raft_entry *ents, size_t n,
		    const struct keel_raft_hard_state *hs, struct keel_err *err)
{
	if (!w || (n && !ents))
		return keel_err_set(err, -EINVAL, "wal: append: bad arguments");
	if (w->failed)
		return wal_stopped(w, err);
	if (n == 0 && !hs)
		return 0;
	size_t total = 0;
	if (n) {
		int r = wal_check_entries(w, ents, n, &total, err);
		if (r)
			return r;
	}
	if (hs)
		total += WAL_HS_SIZE;
	int r = wal_prepare(w, total, n);
	if (!r && n)
		r = wal_reserve((void **)&w->runs, &w->cap_runs, w->n_runs + wal_count_runs(ents, n),
				sizeof(*w->runs));
	if (r) {
		wal_trim_buf(w);
		return keel_err_set(err, r, "wal: out of memory building %zu records", n + (hs != NULL));
	}
	for (size_t i = 0; i < n; i++)
		wal_encode_entry(w, &ents[i]);
	if (hs)
		wal_encode_hs(w, hs);

	r = wal_write_buf(w, err);
	wal_trim_buf(w);
	if (r)
		return wal_fail(w, r, err);
	if (n) {
		wal_runs_append(w, ents, n);
		w->last_index = ents[n - 1].index;
	}
	if (hs) {
		w->hs = *hs;
		w->has_hs = true;
	}
	return 0;
}

int keel_wal_sync(struct keel_wal *w, struct keel_err *err)
{
	if (!w)
		return keel_err_set(err, -EINVAL, "wal: sync: bad arguments");
	if (w->failed)
		return wal_stopped(w, err);
	if (!w->dirty)
		return 0;
	int r = keel_sys_fdatasync(w->fd);
	if (r) {
		char name[WAL_NAME_LEN + 1];
		const struct wal_seg *s = &w->segs[w->n_segs - 1];
		wal_seg_name(name, s->seq, s->first_index);
		keel_err_errno(err, r, "wal: fdatasync %s/%s", w->dir, name);
		return wal_fail(w, r, err);
	}
	w->dirty = false;
	return 0;
}

/* Delete the oldest segments (never the current one) whose live entries are all covered by a
 * snapshot at `index`. A prefix only: recovery treats a hole in the sequence as corruption. */
static int wal_delete_covered(struct keel_wal *w, uint64_t index, struct keel_err *err)
{
	size_t k = 0;
	int r = 0;
	while (k + 1 < w->n_segs && w->n_segs - k > w->keep_segments && w->segs[k].max_index <= index) {
		char path[PATH_MAX];
		r = wal_seg_path(w, path, sizeof(path), w->segs[k].seq, w->segs[k].first_index, "");
		if (!r) {
			r = keel_sys_unlink(path);
			if (r == -ENOENT)
				r = 0;
		}
		if (r) {
			keel_err_errno(err, r, "wal: delete %s", path);
			break;
		}
		k++;
	}
	if (k) {
		memmove(w->segs, w->segs + k, (w->n_segs - k) * sizeof(*w->segs));
		w->n_segs -= k;
		int s = keel_sys_fsync(w->dirfd);
		if (s && !r)
			r = keel_err_errno(err, s, "wal: fsync directory %s", w->dir);
	}
	return r;
}

int keel_wal_snapshot(struct keel_wal *w, uint64_t index, uint64_t term, struct keel_err *err)
{
	if (!w)
		return keel_err_set(err, -EINVAL, "wal: snapshot: bad arguments");
	if (w->failed)
		return wal_stopped(w, err);
	if (index == 0 || index < w->snap_index || (index == w->snap_index && term != w->snap_term))
		return keel_err_set(err, -EINVAL,
				    "wal: snapshot at %llu (term %llu) goes behind the last one at %llu (term %llu)",
				    (unsigned long long)index, (unsigned long long)term,
				    (unsigned long long)w->snap_index, (unsigned long long)w->snap_term);
	/* Raft thesis Figure 5.3 (InstallSnapshot): keep the log after index only if it agrees. */
	bool keep = index <= w->last_index && wal_term_at(w, index) == term;
	uint64_t last = keep ? w->last_index : index;

	int r = wal_prepare(w, WAL_SNAP_SIZE + WAL_HS_SIZE, 0);
	if (r) {
		wal_trim_buf(w);
		return keel_err_set(err, r, "wal: out of memory building a snapshot record");
	}
	uint8_t head[WAL_SNAP_PAYLOAD];
	put64(head, index);
	put64(head + 8, term);
	put64(head + 16, last);
	wal_encode(w, WAL_REC_SNAPSHOT, head, sizeof(head), NULL, 0);
	/* The hard state may live only in segments about to be deleted: write it again. */
	if (w->has_hs)
		wal_encode_hs(w, &w->hs);
	/* Both records must land in the segment that stays (the current one after this write):
	 * were they split by a roll, the SNAPSHOT record would sit in a segment deleted below. */
	if (w->off + w->buf.len > w->size)
		r = wal_roll(w, w->last_index + 1, w->buf.len, err);
	if (!r)
		r = wal_write_buf(w, err);
	wal_trim_buf(w);
	if (r)
		return wal_fail(w, r, err);
	/* Durable before any segment goes: the record is what makes the deletion safe. */
	r = keel_wal_sync(w, err);
	if (r)
		return r;

	if (keep) {
		size_t drop = 0;
		while (drop + 1 < w->n_runs && w->runs[drop + 1].index <= index + 1)
			drop++;
		memmove(w->runs, w->runs + drop, (w->n_runs - drop) * sizeof(*w->runs));
		w->n_runs -= drop;
		if (w->n_runs)
			w->runs[0].index = index + 1;
		if (index == last)
			w->n_runs = 0;
	} else {
		w->n_runs = 0;
	}
	w->snap_index = index;
	w->snap_term = term;
	w->last_index = last;
	pthread_mutex_lock(&w->lock);
	wal_idx_snapshot(w, index, last);
	pthread_mutex_unlock(&w->lock);
	for (size_t i = 0; i < w->n_segs; i++)
		w->segs[i].max_index = KEEL_MIN(w->segs[i].max_index, last);
	return wal_delete_covered(w, index, err);
}

/* ---- open / close ------------------------------------------------------------------------- */

static int wal_cmp_seg(const void *a, const void *b)
{
	const struct wal_seg *x = a, *y = b;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Collect the segments of w->dir, sorted; delete leftover temp segments (a crash while one was
 * being created: it never got its real name, so it never held records). */
static int wal_list(struct keel_wal *w, struct keel_err *err)
{
	DIR *d = opendir(w->dir);
	if (!d)
		return keel_err_errno(err, -errno, "wal: list %s", w->dir);
	int r = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		uint64_t seq, first;
		bool tmp;
		if (!raftio_parse_file_name(de->d_name, ".wal", &seq, &first, &tmp))
			continue;
		if (tmp) {
			char path[PATH_MAX];
			r = wal_seg_path(w, path, sizeof(path), seq, first, RAFTIO_TMP_SUFFIX);
			if (!r)
				r = keel_sys_unlink(path);
			if (r && r != -ENOENT) {
				keel_err_errno(err, r, "wal: remove stale %s/%s", w->dir, de->d_name);
				break;
			}
			r = 0;
			continue;
		}
		r = wal_reserve((void **)&w->segs, &w->cap_segs, w->n_segs + 1, sizeof(*w->segs));
		if (r) {
			keel_err_set(err, r, "wal: out of memory listing %s", w->dir);
			break;
		}
		w->segs[w->n_segs++] = (struct wal_seg){.seq = seq, .first_index = first};
	}
	closedir(d);
	if (r)
		return r;
	if (w->n_segs > 1)
		qsort(w->segs, w->n_segs, sizeof(*w->segs), wal_cmp_seg);
	for (size_t i = 1; i < w->n_segs; i++)
		if (w->segs[i].seq == w->segs[i - 1].seq)
			return keel_err_set(err, -KEEL_ECORRUPT, "wal: two segments numbered %llu in %s",
					    (unsigned long long)w->segs[i].seq, w->dir);
	return 0;
}

/* fsync the directory holding `dir`, so that creating `dir` survives a crash. */
static int wal_sync_parent(const char *dir)
{
	char parent[PATH_MAX];
	snprintf(parent, sizeof(parent), "%s", dir);
	size_t len = strlen(parent);
	while (len > 1 && parent[len - 1] == '/')
		parent[--len] = '\0';
	char *slash = strrchr(parent, '/');
	if (!slash)
		return keel_sys_fsync_dir(".");
	if (slash == parent)
		slash[1] = '\0';
	else
		*slash = '\0';
	return keel_sys_fsync_dir(parent);
}

static int wal_open_dir(struct keel_wal *w, struct keel_err *err)
{
	int r = keel_sys_mkdir(w->dir, 0700);
	if (r == 0) {
		r = wal_sync_parent(w->dir);
		if (r)
			return keel_err_errno(err, r, "wal: fsync the parent of %s", w->dir);
	} else if (r != -EEXIST) {
		return keel_err_errno(err, r, "wal: create %s", w->dir);
	}
	int fd = keel_sys_open(w->dir, O_RDONLY | O_DIRECTORY, 0);
	if (fd < 0)
		return keel_err_errno(err, fd, "wal: open %s", w->dir);
	w->dirfd = fd;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		r = errno == EWOULDBLOCK ? -EBUSY : -errno;
		return keel_err_errno(err, r, "wal: lock %s", w->dir);
	}
	return 0;
}

static void wal_replay_free(struct wal_replay *rp)
{
	wal_replay_drop(rp, 0);
	keel_free(rp->ents);
	rp->ents = NULL;
	rp->cap = 0;
}

int keel_wal_open(const char *dir, const struct keel_wal_options *opt, struct keel_wal **ret,
		  struct keel_wal_recovered *rec, struct keel_err *err)
{
	if (!dir || !*dir || !ret)
		return keel_err_set(err, -EINVAL, "wal: open: bad arguments");
	size_t segment_size = opt && opt->segment_size ? opt->segment_size : KEEL_WAL_SEGMENT_SIZE_DEFAULT;
	if (segment_size < KEEL_WAL_SEGMENT_SIZE_MIN || segment_size > ((size_t)1 << 40))
		return keel_err_set(err, -EINVAL, "wal: segment size %zu is out of range [%zu, 1 TiB]",
				    segment_size, KEEL_WAL_SEGMENT_SIZE_MIN);
	if (strlen(dir) + WAL_NAME_LEN + 8 >= PATH_MAX)
		return keel_err_set(err, -ENAMETOOLONG, "wal: directory name too long");

	struct keel_wal *w = keel_calloc(1, sizeof(*w));
	if (!w)
		return keel_err_set(err, -ENOMEM, "wal: out of memory");
	w->fd = -1;
	w->dirfd = -1;
	w->segment_size = WAL_ALIGN(segment_size);
	w->keep_segments = opt ? opt->keep_segments : 0;
	pthread_mutex_init(&w->lock, NULL);
	keel_buf_init(&w->buf);
	struct wal_replay rp = {
		.shed = opt && opt->drop_committed_data,
		.chunk = opt ? opt->replay_chunk : 0,
	};
	int r;
	w->dir = keel_strdup(dir);
	if (!w->dir) {
		r = keel_err_set(err, -ENOMEM, "wal: out of memory");
		goto fail;
	}
	r = wal_open_dir(w, err);
	if (!r)
		r = wal_list(w, err);
	if (r)
		goto fail;
	if (w->n_segs == 0) {
		r = wal_reserve((void **)&w->segs, &w->cap_segs, 1, sizeof(*w->segs));
		if (r) {
			keel_err_set(err, r, "wal: out of memory");
			goto fail;
		}
		r = wal_create_segment(w, 0, 1, w->segment_size, err);
	} else {
		r = wal_replay(w, &rp, err);
	}
	if (r)
		goto fail;

	r = wal_reserve((void **)&w->runs, &w->cap_runs, wal_count_runs(rp.ents, rp.n) + 1,
			sizeof(*w->runs));
	if (r) {
		keel_err_set(err, r, "wal: out of memory");
		goto fail;
	}
	w->snap_index = rp.snap_index;
	w->snap_term = rp.snap_term;
	w->last_index = rp.n ? rp.ents[rp.n - 1].index : rp.snap_index;
	w->hs = rp.hs;
	w->has_hs = rp.has_hs;
	if (rp.n)
		wal_runs_append(w, rp.ents, rp.n);

	if (rec) {
		*rec = (struct keel_wal_recovered){
			.hs = rp.hs, .has_hs = rp.has_hs,
			.snap_index = rp.snap_index, .snap_term = rp.snap_term,
			.entries = rp.ents, .n_entries = rp.n,
		};
	} else {
		wal_replay_free(&rp);
	}
	*ret = w;
	return 0;
fail:
	wal_replay_free(&rp);
	keel_wal_close(w);
	return r;
}

void keel_wal_recovered_free(struct keel_wal_recovered *rec)
{
	if (!rec)
		return;
	for (size_t i = 0; i < rec->n_entries; i++)
		keel_free(rec->entries[i].data);
	keel_free(rec->entries);
	*rec = (struct keel_wal_recovered){0};
}

void keel_wal_close(struct keel_wal *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		keel_sys_close(w->fd);
	if (w->dirfd >= 0)
		keel_sys_close(w->dirfd); /* releases the flock */
	keel_buf_free(&w->buf);
	keel_free(w->segs);
	keel_free(w->runs);
	wal_idx_free(w);
	pthread_mutex_destroy(&w->lock);
	keel_free(w->dir);
	keel_free(w);
}

uint64_t keel_wal_last_index(const struct keel_wal *w)
{
	return w ? w->last_index : 0;
}

int keel_wal_failed(const struct keel_wal *w)
{
	return w ? w->failed : -EINVAL;
}
