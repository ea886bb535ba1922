/* Reading entries back from the WAL by index: the sparse index of where each live entry's record
 * is (kept by the writer as it appends and by replay at open) and keel_wal_read, which may run on
 * another thread than the writer. docs/raftio.md, "Reading entries back". */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "base/mem.h"
#include "base/sys.h"
#include "raftio/wal-internal.h"

/* ---- the index (the writer's side; w->lock held when a reader may exist) ---- */

int wal_idx_reserve(struct keel_wal *w, size_t n, size_t bytes, size_t rolls)
{
	/* One loc for the first entry (it may replace entries or follow a gap), one per segment
	 * rolled into, and a checkpoint per WAL_LOC_ENTRIES entries or WAL_LOC_BYTES bytes, one
	 * early because the stretch before this batch counts too. */
	size_t need = w->n_locs + 3 + rolls + n / WAL_LOC_ENTRIES + (size_t)(bytes / WAL_LOC_BYTES);
	if (need <= w->cap_locs)
		return 0;
	size_t cap = w->cap_locs ? w->cap_locs : 64;
	while (cap < need)
		cap *= 2;
	struct wal_loc *locs = keel_reallocarray(w->locs, cap, sizeof(*locs));
	if (!locs)
		return -ENOMEM;
	w->locs = locs;
	w->cap_locs = cap;
	return 0;
}

static void wal_idx_push(struct keel_wal *w, uint64_t index, const struct wal_seg *seg, uint64_t off,
			 bool cont)
{
	keel_assert(w->n_locs < w->cap_locs); /* reserved before the record was written */
	w->locs[w->n_locs++] = (struct wal_loc){
		.index = index, .seq = seg->seq, .seg_first = seg->first_index, .off = off, .cont = cont,
	};
}

void wal_idx_entry(struct keel_wal *w, uint64_t index, const struct wal_seg *seg, uint64_t off,
		   size_t total)
{
	bool cont = w->n_locs > 0 && !w->idx_break && index == w->idx_last + 1 &&
		    w->locs[w->n_locs - 1].seq == seg->seq;
	if (!cont) {
		/* A new stretch. If it replaces entries (Raft's truncation), the stretches that
		 * began at or after index are dead; the one before now ends at index - 1. */
		while (w->n_locs > 0 && w->locs[w->n_locs - 1].index >= index)
			w->n_locs--;
		wal_idx_push(w, index, seg, off, false);
		w->idx_run_entries = 1;
		w->idx_run_bytes = total;
	} else if (w->idx_run_entries >= WAL_LOC_ENTRIES || w->idx_run_bytes >= WAL_LOC_BYTES) {
		wal_idx_push(w, index, seg, off, true);
		w->idx_run_entries = 1;
		w->idx_run_bytes = total;
	} else {
		w->idx_run_entries++;
		w->idx_run_bytes += total;
	}
	w->idx_last = index;
	w->idx_break = false;
}

void wal_idx_snapshot(struct keel_wal *w, uint64_t index, uint64_t last)
{
	if (last != w->idx_last) {
		/* The log after `last` is gone (or, past our end, never was ours): the next entry
		 * starts a stretch of its own even where dead records of the old log lie between. */
		while (w->n_locs > 0 && w->locs[w->n_locs - 1].index > last)
			w->n_locs--;
		w->idx_last = last;
		w->idx_break = true;
	}
	w->idx_snap = index;
	/* Locs whose stretches lie wholly at or below index are of no more use. */
	size_t drop = 0;
	while (drop + 1 < w->n_locs && w->locs[drop + 1].index <= index + 1)
		drop++;
	if (drop + 1 == w->n_locs && w->idx_last <= index)
		drop = w->n_locs;
	if (drop) {
		memmove(w->locs, w->locs + drop, (w->n_locs - drop) * sizeof(*w->locs));
		w->n_locs -= drop;
	}
}

void wal_idx_free(struct keel_wal *w)
{
	keel_free(w->locs);
	w->locs = NULL;
	w->n_locs = w->cap_locs = 0;
}

/* ---- the reader ---- */

#define WAL_READ_CHUNK ((size_t)128 << 10)

/* A window of one segment file. */
struct wal_cursor {
	int fd;
	uint8_t *buf;
	size_t cap, len;
	uint64_t base; /* file offset of buf[0] */
};

/* Bytes [pos, pos + need) of the file, read in chunks; -KEEL_ECORRUPT if the file ends first. */
static int wal_cursor_get(struct wal_cursor *c, uint64_t pos, size_t need, const uint8_t **ret)
{
	if (pos < c->base || pos + need > c->base + c->len) {
		size_t want = KEEL_MAX(need, WAL_READ_CHUNK);
		if (want > c->cap) {
			uint8_t *b = keel_realloc(c->buf, want);
			if (!b)
				return -ENOMEM;
			c->buf = b;
			c->cap = want;
		}
		c->len = 0;
		ssize_t n = keel_sys_pread_all(c->fd, c->buf, want, (off_t)pos);
		if (n < 0)
			return (int)n;
		c->base = pos;
		c->len = (size_t)n;
		if (c->len < need)
			return -KEEL_ECORRUPT;
	}
	*ret = c->buf + (pos - c->base);
	return 0;
}

/* What a read collects: the entries, with data offsets into one growing block. */
struct wal_out {
	struct keel_raft_entry *ents;
	size_t n, cap;
	uint8_t *data;
	size_t len, data_cap;
	size_t max_bytes;
	bool full; /* the byte budget is used up */
};

static int wal_out_add(struct wal_out *o, const struct keel_raft_entry *e, const uint8_t *data)
{
	if (o->n > 0 && o->len + e->len > o->max_bytes) {
		o->full = true;
		return 0;
	}
	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 64;
		struct keel_raft_entry *ents = keel_reallocarray(o->ents, cap, sizeof(*ents));
		if (!ents)
			return -ENOMEM;
		o->ents = ents;
		o->cap = cap;
	}
	if (o->len + e->len > o->data_cap) {
		size_t cap = o->data_cap ? o->data_cap : 4096;
		while (cap < o->len + e->len)
			cap *= 2;
		uint8_t *d = keel_realloc(o->data, cap);
		if (!d)
			return -ENOMEM;
		o->data = d;
		o->data_cap = cap;
	}
	o->ents[o->n] = *e;
	o->ents[o->n].data = (void *)(uintptr_t)o->len; /* made a pointer at the end */
	if (e->len) {
		memcpy(o->data + o->len, data, e->len);
		o->len += e->len;
	}
	o->n++;
	return 0;
}

/* Read the stretch that begins at loc, taking entries [from, to] into o (as the budget allows). */
static int wal_read_stretch(struct keel_wal *w, const struct wal_loc *loc, uint64_t from, uint64_t to,
			    struct wal_out *o, struct keel_err *err)
{
	char path[PATH_MAX];
	int n = snprintf(path, sizeof(path), "%s/%016" PRIx64 "-%016" PRIx64 ".wal", w->dir, loc->seq,
			 loc->seg_first);
	if (n < 0 || (size_t)n >= sizeof(path))
		return keel_err_set(err, -ENAMETOOLONG, "wal: segment path in %s", w->dir);
	struct wal_cursor c = {.fd = keel_sys_open(path, O_RDONLY, 0)};
	if (c.fd < 0) {
		/* Deleted meanwhile by a snapshot that covers these entries. */
		return keel_err_errno(err, c.fd, "wal: open %s", path);
	}
	uint64_t pos = loc->off, expect = loc->index;
	int r = 0;
	while (expect <= to && !o->full) {
		const uint8_t *p;
		r = wal_cursor_get(&c, pos, WAL_FRAME, &p);
		if (!r)
			r = wal_cursor_get(&c, pos, WAL_ALIGN(WAL_FRAME + (size_t)keel_le32(p)), &p);
		if (r == -KEEL_ECORRUPT) {
			keel_err_set(err, r, "wal: %s offset %" PRIu64 ": the segment ends where entry %" PRIu64 " should be",
				     path, pos, expect);
			break;
		}
		if (r) {
			keel_err_errno(err, r, "wal: read %s", path);
			break;
		}
		size_t total = WAL_ALIGN(WAL_FRAME + (size_t)keel_le32(p));
		struct wal_rec rec;
		const char *why = "record length runs past the end of the segment";
		if (keel_le32(p) == 0 || wal_parse(p, total, 0, &rec, &why) != WAL_REC_OK) {
			r = keel_err_set(err, -KEEL_ECORRUPT, "wal: %s offset %" PRIu64 ": %s, where entry %" PRIu64 " should be",
					 path, pos, keel_le32(p) ? why : "records end", expect);
			break;
		}
		pos += rec.total;
		if (rec.type != WAL_REC_ENTRY)
			continue;
		const uint8_t *q = rec.payload;
		struct keel_raft_entry e = {
			.term = keel_le64(q), .index = keel_le64(q + 8), .type = q[16], .len = keel_le32(q + 17),
		};
		if (e.index != expect) {
			r = keel_err_set(err, -KEEL_ECORRUPT, "wal: %s offset %" PRIu64 ": entry %" PRIu64 " where entry %" PRIu64 " should be",
					 path, pos - rec.total, e.index, expect);
			break;
		}
		expect++;
		if (e.index >= from) {
			r = wal_out_add(o, &e, q + WAL_ENTRY_HEAD);
			if (r) {
				keel_err_set(err, r, "wal: out of memory reading entries");
				break;
			}
		}
	}
	keel_free(c.buf);
	keel_sys_close(c.fd);
	return r;
}

int keel_wal_read(struct keel_wal *w, uint64_t lo, uint64_t hi, size_t max_bytes,
		  struct keel_raft_entry **ret_ents, size_t *ret_n, void **ret_data, struct keel_err *err)
{
	if (!w || !ret_ents || !ret_n || !ret_data || lo == 0 || hi < lo)
		return keel_err_set(err, -EINVAL, "wal: read: bad arguments");
	keel_err_clear(err);
	struct wal_out o = {.max_bytes = max_bytes};
	uint64_t next = lo;
	int r = 0;
	while (next <= hi && !o.full) {
		struct wal_loc loc;
		uint64_t stop = 0;
		pthread_mutex_lock(&w->lock);
		if (next <= w->idx_snap) {
			r = keel_err_set(err, -ENOENT, "wal: entry %" PRIu64 " is covered by the snapshot at %" PRIu64 " (in %s)",
					 next, w->idx_snap, w->dir);
		} else if (next > w->idx_last || w->n_locs == 0 || w->locs[0].index > next) {
			r = keel_err_set(err, -EINVAL, "wal: entry %" PRIu64 " is not in the log (%" PRIu64 ", %" PRIu64 "] (in %s)",
					 next, w->idx_snap, w->idx_last, w->dir);
		} else {
			size_t a = 0, b = w->n_locs;
			while (b - a > 1) {
				size_t mid = a + (b - a) / 2;
				if (w->locs[mid].index <= next)
					a = mid;
				else
					b = mid;
			}
			loc = w->locs[a];
			stop = w->idx_last + 1;
			for (size_t k = a + 1; k < w->n_locs && w->locs[k].index <= hi; k++) {
				if (!w->locs[k].cont) {
					stop = w->locs[k].index;
					break;
				}
			}
		}
		pthread_mutex_unlock(&w->lock);
		if (r)
			break;
		uint64_t to = KEEL_MIN(hi, stop - 1);
		size_t before = o.n;
		r = wal_read_stretch(w, &loc, next, to, &o, err);
		if (r)
			break;
		if (o.n == before)
			break; /* budget used up before anything of this stretch */
		next = o.ents[o.n - 1].index + 1;
	}
	if (o.n == 0) {
		keel_free(o.ents);
		keel_free(o.data);
		return r ? r : keel_err_set(err, -KEEL_ECORRUPT, "wal: entry %" PRIu64 " not found (in %s)", lo, w->dir);
	}
	/* What was read before a later stretch failed is good: hand it over. */
	for (size_t k = 0; k < o.n; k++)
		o.ents[k].data = o.ents[k].len ? o.data + (uintptr_t)o.ents[k].data : NULL;
	if (o.len == 0) {
		keel_free(o.data);
		o.data = NULL;
	}
	*ret_ents = o.ents;
	*ret_n = o.n;
	*ret_data = o.data;
	keel_err_clear(err);
	return 0;
}
