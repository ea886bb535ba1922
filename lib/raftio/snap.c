/* Snapshot files: streaming writer and reader, discovery of the newest valid one, retention.
 * The format is described in docs/raftio.md; snap.h states the contract. */
#include "raftio/snap.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
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

/* Header: magic[8], u32 version, u32 header length, u64 index, u64 term, u32 voters,
 * u32 learners, the voter ids and learner ids (u64 each), u32 crc32c of the header before it.
 * Then the data. Trailer: u64 data length, u32 crc32c of header + data + the length field,
 * magic[4]. The length sits at the end because a streaming writer learns it last. */
#define SNAP_MAGIC "KEELSNP\0"
#define SNAP_VERSION 1
#define SNAP_HDR_FIXED 40
#define SNAP_HDR_MAX (SNAP_HDR_FIXED + 16 * 2 * KEEL_RAFT_MAX_NODES + 4)
#define SNAP_TRAILER 16
#define SNAP_TRAILER_MAGIC "KEND"

#define SNAP_CHUNK ((size_t)64 << 10)

struct keel_snap_writer {
	char *path, *tmp, *dir;
	int fd;
	uint32_t crc;
	uint64_t data_len;
	uint8_t *buf; /* SNAP_CHUNK bytes of staging */
	size_t buf_len;
	int failed;
	char failed_msg[KEEL_ERR_MSG_SIZE];
};

struct keel_snap_reader {
	int fd;
	char *path;
	uint64_t hdr_len, data_len, pos;
	uint32_t crc, want_crc;
	uint8_t len_field[8];
	bool verified;
};

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

static char *snap_path(const char *dir, uint64_t term, uint64_t index, const char *suffix)
{
	struct keel_buf b = KEEL_BUF_INIT;
	if (keel_buf_printf(&b, "%s/%016llx-%016llx.snap%s", dir, (unsigned long long)term,
			    (unsigned long long)index, suffix) < 0) {
		keel_buf_free(&b);
		return NULL;
	}
	return keel_buf_steal(&b, NULL);
}

static size_t snap_hdr_len(uint32_t n_voters, uint32_t n_learners)
{
	return SNAP_HDR_FIXED + 8 * ((size_t)n_voters + n_learners) + 4;
}

static size_t snap_encode_header(uint8_t *p, const struct keel_raft_snapshot_meta *m)
{
	size_t len = snap_hdr_len(m->conf.n_voters, m->conf.n_learners);
	memcpy(p, SNAP_MAGIC, 8);
	put32(p + 8, SNAP_VERSION);
	put32(p + 12, (uint32_t)len);
	put64(p + 16, m->index);
	put64(p + 24, m->term);
	put32(p + 32, m->conf.n_voters);
	put32(p + 36, m->conf.n_learners);
	uint8_t *q = p + SNAP_HDR_FIXED;
	for (uint32_t i = 0; i < m->conf.n_voters; i++, q += 8)
		put64(q, m->conf.voters[i]);
	for (uint32_t i = 0; i < m->conf.n_learners; i++, q += 8)
		put64(q, m->conf.learners[i]);
	put32(q, keel_crc32c(0, p, (size_t)(q - p)));
	return len;
}

/* The directory holding `dir`, fsynced so that creating `dir` survives a crash. */
static int snap_sync_parent(const char *dir)
{
	char parent[PATH_MAX];
	int n = snprintf(parent, sizeof(parent), "%s", dir);
	if (n < 0 || (size_t)n >= sizeof(parent))
		return -ENAMETOOLONG;
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

/* ---- writer ------------------------------------------------------------------------------- */

static void snap_writer_free(struct keel_snap_writer *wr)
{
	if (wr->fd >= 0)
		keel_sys_close(wr->fd); /* releases the flock */
	keel_free(wr->buf);
	keel_free(wr->path);
	keel_free(wr->tmp);
	keel_free(wr->dir);
	keel_free(wr);
}

int keel_snap_writer_open(const char *dir, const struct keel_raft_snapshot_meta *meta,
			  struct keel_snap_writer **ret, struct keel_err *err)
{
	if (!dir || !*dir || !meta || !ret)
		return keel_err_set(err, -EINVAL, "snap: writer_open: bad arguments");
	if (meta->index == 0 || meta->conf.n_voters > KEEL_RAFT_MAX_NODES ||
	    meta->conf.n_learners > KEEL_RAFT_MAX_NODES)
		return keel_err_set(err, -EINVAL,
				    "snap: cannot store a snapshot at index %llu with %u voters and %u learners",
				    (unsigned long long)meta->index, meta->conf.n_voters,
				    meta->conf.n_learners);
	struct keel_snap_writer *wr = keel_calloc(1, sizeof(*wr));
	if (!wr)
		return keel_err_set(err, -ENOMEM, "snap: out of memory");
	wr->fd = -1;
	int r;
	wr->dir = keel_strdup(dir);
	wr->path = snap_path(dir, meta->term, meta->index, "");
	wr->tmp = snap_path(dir, meta->term, meta->index, RAFTIO_TMP_SUFFIX);
	wr->buf = keel_malloc(SNAP_CHUNK);
	if (!wr->dir || !wr->path || !wr->tmp || !wr->buf) {
		r = keel_err_set(err, -ENOMEM, "snap: out of memory");
		goto fail;
	}

	r = keel_sys_mkdir(dir, 0700);
	if (r == 0) {
		r = snap_sync_parent(dir);
		if (r) {
			keel_err_errno(err, r, "snap: fsync the parent of %s", dir);
			goto fail;
		}
	} else if (r != -EEXIST) {
		keel_err_errno(err, r, "snap: create %s", dir);
		goto fail;
	}

	/* No O_TRUNC before the lock: the file may be another writer's, still in progress. */
	wr->fd = keel_sys_open(wr->tmp, O_CREAT | O_WRONLY, 0600);
	if (wr->fd < 0) {
		r = keel_err_errno(err, wr->fd, "snap: create %s", wr->tmp);
		goto fail;
	}
	if (flock(wr->fd, LOCK_EX | LOCK_NB) < 0) {
		r = errno == EWOULDBLOCK ? -EBUSY : -errno;
		keel_err_errno(err, r, "snap: lock %s", wr->tmp);
		keel_sys_close(wr->fd);
		wr->fd = -1; /* another writer's file: leave it alone */
		goto fail;
	}
	r = keel_sys_ftruncate(wr->fd, 0);
	if (r) {
		keel_err_errno(err, r, "snap: truncate %s", wr->tmp);
		goto fail_unlink;
	}
	wr->buf_len = snap_encode_header(wr->buf, meta);
	wr->crc = keel_crc32c(0, wr->buf, wr->buf_len);
	*ret = wr;
	return 0;
fail_unlink:
	keel_sys_unlink(wr->tmp);
fail:
	snap_writer_free(wr);
	return r;
}

static int snap_writer_flush(struct keel_snap_writer *wr, const void *p, size_t n,
			     struct keel_err *err)
{
	int r = keel_sys_write_all(wr->fd, p, n);
	if (r) {
		keel_err_errno(err, r, "snap: write %s", wr->tmp);
		wr->failed = r;
		snprintf(wr->failed_msg, sizeof(wr->failed_msg), "%s",
			 err ? keel_err_msg(err) : keel_strerror(r));
	}
	return r;
}

static int snap_writer_failed(const struct keel_snap_writer *wr, struct keel_err *err)
{
	return keel_err_set(err, wr->failed, "%s", wr->failed_msg);
}

int keel_snap_writer_write(struct keel_snap_writer *wr, const void *data, size_t len,
			   struct keel_err *err)
{
	if (!wr || (len && !data))
		return keel_err_set(err, -EINVAL, "snap: write: bad arguments");
	if (wr->failed)
		return snap_writer_failed(wr, err);
	wr->crc = keel_crc32c(wr->crc, data, len);
	wr->data_len += len;
	if (wr->buf_len + len <= SNAP_CHUNK) {
		memcpy(wr->buf + wr->buf_len, data, len);
		wr->buf_len += len;
		return 0;
	}
	int r = snap_writer_flush(wr, wr->buf, wr->buf_len, err);
	wr->buf_len = 0;
	if (r)
		return r;
	if (len >= SNAP_CHUNK)
		return snap_writer_flush(wr, data, len, err);
	memcpy(wr->buf, data, len);
	wr->buf_len = len;
	return 0;
}

int keel_snap_writer_finish(struct keel_snap_writer *wr, char **ret_path, struct keel_err *err)
{
	if (!wr)
		return keel_err_set(err, -EINVAL, "snap: finish: bad arguments");
	int r;
	char *path_copy = NULL;
	if (wr->failed) {
		r = snap_writer_failed(wr, err);
		goto fail;
	}
	if (ret_path) {
		path_copy = keel_strdup(wr->path);
		if (!path_copy) {
			r = keel_err_set(err, -ENOMEM, "snap: out of memory");
			goto fail;
		}
	}
	uint8_t trailer[SNAP_TRAILER];
	put64(trailer, wr->data_len);
	put32(trailer + 8, keel_crc32c(wr->crc, trailer, 8));
	memcpy(trailer + 12, SNAP_TRAILER_MAGIC, 4);
	if (wr->buf_len + sizeof(trailer) <= SNAP_CHUNK) {
		memcpy(wr->buf + wr->buf_len, trailer, sizeof(trailer));
		r = snap_writer_flush(wr, wr->buf, wr->buf_len + sizeof(trailer), err);
	} else {
		r = snap_writer_flush(wr, wr->buf, wr->buf_len, err);
		if (!r)
			r = snap_writer_flush(wr, trailer, sizeof(trailer), err);
	}
	if (r)
		goto fail;
	r = keel_sys_fsync(wr->fd);
	if (r) {
		keel_err_errno(err, r, "snap: fsync %s", wr->tmp);
		goto fail;
	}
	r = keel_sys_rename(wr->tmp, wr->path);
	if (r) {
		keel_err_errno(err, r, "snap: rename %s", wr->tmp);
		goto fail;
	}
	r = keel_sys_fsync_dir(wr->dir);
	if (r) {
		/* The file is complete under its name, but the name may not survive a crash:
		 * report it, so the caller does not build on it (the log must not be compacted). */
		keel_err_errno(err, r, "snap: fsync directory %s", wr->dir);
		keel_sys_unlink(wr->path);
		goto fail_free;
	}
	snap_writer_free(wr);
	if (ret_path)
		*ret_path = path_copy;
	return 0;
fail:
	keel_sys_unlink(wr->tmp);
fail_free:
	keel_free(path_copy);
	snap_writer_free(wr);
	return r;
}

void keel_snap_writer_abort(struct keel_snap_writer *wr)
{
	if (!wr)
		return;
	keel_sys_unlink(wr->tmp);
	snap_writer_free(wr);
}

/* ---- reader ------------------------------------------------------------------------------- */

static int snap_corrupt(struct keel_err *err, const char *path, const char *what)
{
	return keel_err_set(err, -KEEL_ECORRUPT, "snap: %s: %s", path, what);
}

int keel_snap_reader_open(const char *path, struct keel_snap_reader **ret,
			  struct keel_raft_snapshot_meta *ret_meta, struct keel_err *err)
{
	if (!path || !ret)
		return keel_err_set(err, -EINVAL, "snap: reader_open: bad arguments");
	struct keel_snap_reader *rd = keel_calloc(1, sizeof(*rd));
	if (!rd)
		return keel_err_set(err, -ENOMEM, "snap: out of memory");
	int r;
	rd->path = keel_strdup(path);
	if (!rd->path) {
		keel_free(rd);
		return keel_err_set(err, -ENOMEM, "snap: out of memory");
	}
	rd->fd = keel_sys_open(path, O_RDONLY, 0);
	if (rd->fd < 0) {
		r = keel_err_errno(err, rd->fd, "snap: open %s", path);
		goto fail;
	}
	struct stat st;
	if (fstat(rd->fd, &st) < 0) {
		r = keel_err_errno(err, -errno, "snap: stat %s", path);
		goto fail;
	}
	uint64_t size = st.st_size > 0 ? (uint64_t)st.st_size : 0;

	uint8_t hdr[SNAP_HDR_MAX];
	ssize_t n = keel_sys_pread_all(rd->fd, hdr, SNAP_HDR_FIXED, 0);
	if (n < 0) {
		r = keel_err_errno(err, (int)n, "snap: read %s", path);
		goto fail;
	}
	if (n < SNAP_HDR_FIXED || memcmp(hdr, SNAP_MAGIC, 8) != 0) {
		r = snap_corrupt(err, path, "not a snapshot file (bad magic or too short)");
		goto fail;
	}
	if (keel_le32(hdr + 8) != SNAP_VERSION) {
		r = snap_corrupt(err, path, "unsupported format version");
		goto fail;
	}
	uint32_t nv = keel_le32(hdr + 32), nl = keel_le32(hdr + 36);
	if (nv > KEEL_RAFT_MAX_NODES || nl > KEEL_RAFT_MAX_NODES ||
	    keel_le32(hdr + 12) != snap_hdr_len(nv, nl)) {
		r = snap_corrupt(err, path, "bad header");
		goto fail;
	}
	rd->hdr_len = snap_hdr_len(nv, nl);
	n = keel_sys_pread_all(rd->fd, hdr + SNAP_HDR_FIXED, rd->hdr_len - SNAP_HDR_FIXED,
			       SNAP_HDR_FIXED);
	if (n < 0) {
		r = keel_err_errno(err, (int)n, "snap: read %s", path);
		goto fail;
	}
	if ((size_t)n != rd->hdr_len - SNAP_HDR_FIXED ||
	    keel_le32(hdr + rd->hdr_len - 4) != keel_crc32c(0, hdr, rd->hdr_len - 4)) {
		r = snap_corrupt(err, path, "header checksum mismatch");
		goto fail;
	}
	uint8_t trailer[SNAP_TRAILER];
	if (size < rd->hdr_len + SNAP_TRAILER) {
		r = snap_corrupt(err, path, "file ends before its trailer (half written?)");
		goto fail;
	}
	n = keel_sys_pread_all(rd->fd, trailer, sizeof(trailer), (off_t)(size - SNAP_TRAILER));
	if (n < 0) {
		r = keel_err_errno(err, (int)n, "snap: read %s", path);
		goto fail;
	}
	rd->data_len = keel_le64(trailer);
	if ((size_t)n != sizeof(trailer) || memcmp(trailer + 12, SNAP_TRAILER_MAGIC, 4) != 0 ||
	    rd->data_len != size - rd->hdr_len - SNAP_TRAILER) {
		r = snap_corrupt(err, path, "bad trailer (half written?)");
		goto fail;
	}
	memcpy(rd->len_field, trailer, 8);
	rd->want_crc = keel_le32(trailer + 8);
	rd->crc = keel_crc32c(0, hdr, rd->hdr_len);

	if (ret_meta) {
		struct keel_raft_snapshot_meta m = {
			.index = keel_le64(hdr + 16),
			.term = keel_le64(hdr + 24),
			.conf = {.n_voters = nv, .n_learners = nl},
		};
		const uint8_t *q = hdr + SNAP_HDR_FIXED;
		for (uint32_t i = 0; i < nv; i++, q += 8)
			m.conf.voters[i] = keel_le64(q);
		for (uint32_t i = 0; i < nl; i++, q += 8)
			m.conf.learners[i] = keel_le64(q);
		*ret_meta = m;
	}
	*ret = rd;
	return 0;
fail:
	keel_snap_reader_close(rd);
	return r;
}

uint64_t keel_snap_reader_size(const struct keel_snap_reader *rd)
{
	return rd ? rd->data_len : 0;
}

ssize_t keel_snap_reader_read(struct keel_snap_reader *rd, void *buf, size_t len,
			      struct keel_err *err)
{
	if (!rd || (len && !buf))
		return keel_err_set(err, -EINVAL, "snap: read: bad arguments");
	if (rd->pos == rd->data_len) {
		if (rd->verified)
			return 0;
		/* An empty snapshot: nothing to stream, still something to verify. */
	}
	size_t want = (size_t)KEEL_MIN((uint64_t)len, rd->data_len - rd->pos);
	if (want > SSIZE_MAX)
		want = SSIZE_MAX;
	ssize_t n = 0;
	if (want) {
		n = keel_sys_pread_all(rd->fd, buf, want, (off_t)(rd->hdr_len + rd->pos));
		if (n < 0)
			return keel_err_errno(err, (int)n, "snap: read %s", rd->path);
		if ((size_t)n != want)
			return snap_corrupt(err, rd->path, "file shrank while being read");
		rd->crc = keel_crc32c(rd->crc, buf, (size_t)n);
		rd->pos += (uint64_t)n;
	}
	if (rd->pos == rd->data_len && !rd->verified) {
		if (keel_crc32c(rd->crc, rd->len_field, 8) != rd->want_crc)
			return snap_corrupt(err, rd->path, "checksum mismatch");
		rd->verified = true;
	}
	return n;
}

void keel_snap_reader_close(struct keel_snap_reader *rd)
{
	if (!rd)
		return;
	if (rd->fd >= 0)
		keel_sys_close(rd->fd);
	keel_free(rd->path);
	keel_free(rd);
}

/* Read path to the end: 0 if it is a complete, undamaged snapshot whose header agrees with its
 * name (term, index). */
static int snap_verify(const char *path, uint64_t term, uint64_t index,
		       struct keel_raft_snapshot_meta *ret_meta, struct keel_err *err)
{
	struct keel_snap_reader *rd;
	struct keel_raft_snapshot_meta m;
	int r = keel_snap_reader_open(path, &rd, &m, err);
	if (r)
		return r;
	if (m.term != term || m.index != index) {
		keel_snap_reader_close(rd);
		return snap_corrupt(err, path, "header disagrees with the file name");
	}
	uint8_t *buf = keel_malloc(SNAP_CHUNK);
	if (!buf) {
		keel_snap_reader_close(rd);
		return keel_err_set(err, -ENOMEM, "snap: out of memory");
	}
	ssize_t n;
	do
		n = keel_snap_reader_read(rd, buf, SNAP_CHUNK, err);
	while (n > 0);
	keel_free(buf);
	keel_snap_reader_close(rd);
	if (n < 0)
		return (int)n;
	if (ret_meta)
		*ret_meta = m;
	return 0;
}

/* ---- directory scans ---------------------------------------------------------------------- */

struct snap_ent {
	uint64_t term, index;
	bool tmp;
};

static int snap_cmp_newest_first(const void *a, const void *b)
{
	const struct snap_ent *x = a, *y = b;
	if (x->index != y->index)
		return x->index > y->index ? -1 : 1;
	if (x->term != y->term)
		return x->term > y->term ? -1 : 1;
	return 0;
}

/* List the snapshot (and temp) files of dir, newest first. -ENOENT if dir does not exist. */
static int snap_list(const char *dir, struct snap_ent **ret, size_t *ret_n, struct keel_err *err)
{
	DIR *d = opendir(dir);
	if (!d) {
		int r = -errno;
		return r == -ENOENT ? r : keel_err_errno(err, r, "snap: list %s", dir);
	}
	struct snap_ent *ents = NULL;
	size_t n = 0, cap = 0;
	int r = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		struct snap_ent e;
		if (!raftio_parse_file_name(de->d_name, ".snap", &e.term, &e.index, &e.tmp))
			continue;
		if (n == cap) {
			size_t c = cap ? cap * 2 : 16;
			struct snap_ent *p = keel_reallocarray(ents, c, sizeof(*p));
			if (!p) {
				r = keel_err_set(err, -ENOMEM, "snap: out of memory listing %s", dir);
				break;
			}
			ents = p;
			cap = c;
		}
		ents[n++] = e;
	}
	closedir(d);
	if (r) {
		keel_free(ents);
		return r;
	}
	if (n > 1)
		qsort(ents, n, sizeof(*ents), snap_cmp_newest_first);
	*ret = ents;
	*ret_n = n;
	return 0;
}

int keel_snap_latest(const char *dir, struct keel_raft_snapshot_meta *ret_meta, char **ret_path,
		     keel_snap_warn_fn *warn, void *userdata, struct keel_err *err)
{
	if (!dir)
		return keel_err_set(err, -EINVAL, "snap: latest: bad arguments");
	struct snap_ent *ents = NULL;
	size_t n = 0;
	int r = snap_list(dir, &ents, &n, err);
	if (r == -ENOENT)
		return 0;
	if (r)
		return r;
	int found = 0;
	for (size_t i = 0; i < n && !found; i++) {
		if (ents[i].tmp)
			continue;
		char *path = snap_path(dir, ents[i].term, ents[i].index, "");
		if (!path) {
			r = keel_err_set(err, -ENOMEM, "snap: out of memory");
			break;
		}
		struct keel_raft_snapshot_meta m;
		struct keel_err why = {0};
		r = snap_verify(path, ents[i].term, ents[i].index, &m, &why);
		if (r == -ENOMEM) {
			keel_err_set(err, r, "%s", keel_err_msg(&why));
			keel_free(path);
			break;
		}
		if (r) {
			/* Damaged or unreadable: an older snapshot (plus more log) will do. */
			if (warn)
				warn(userdata, path, &why);
			keel_free(path);
			r = 0;
			continue;
		}
		found = 1;
		if (ret_meta)
			*ret_meta = m;
		if (ret_path)
			*ret_path = path;
		else
			keel_free(path);
	}
	keel_free(ents);
	return r ? r : found;
}

/* A temp file whose writer is gone: nobody holds its flock. */
static int snap_remove_stale_tmp(const char *path)
{
	int fd = keel_sys_open(path, O_RDONLY, 0);
	if (fd < 0)
		return fd == -ENOENT ? 0 : fd;
	int r;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		r = errno == EWOULDBLOCK ? 0 : -errno; /* a live writer's: leave it */
	} else {
		r = keel_sys_unlink(path);
		r = r == 0 ? 1 : (r == -ENOENT ? 0 : r);
	}
	keel_sys_close(fd);
	return r;
}

int keel_snap_retain(const char *dir, size_t keep, struct keel_err *err)
{
	if (!dir)
		return keel_err_set(err, -EINVAL, "snap: retain: bad arguments");
	struct snap_ent *ents = NULL;
	size_t n = 0;
	int r = snap_list(dir, &ents, &n, err);
	if (r == -ENOENT)
		return 0;
	if (r)
		return r;
	size_t kept = 0;
	int deleted = 0;
	for (size_t i = 0; i < n; i++) {
		char *path = snap_path(dir, ents[i].term, ents[i].index, ents[i].tmp ? RAFTIO_TMP_SUFFIX : "");
		if (!path) {
			r = keel_err_set(err, -ENOMEM, "snap: out of memory");
			break;
		}
		if (ents[i].tmp) {
			r = snap_remove_stale_tmp(path);
			if (r < 0)
				keel_err_errno(err, r, "snap: remove %s", path);
		} else if (kept < keep) {
			struct keel_err why = {0};
			r = snap_verify(path, ents[i].term, ents[i].index, NULL, &why);
			if (r == 0) {
				kept++;
			} else if (r == -KEEL_ECORRUPT) {
				r = keel_sys_unlink(path);
				r = r ? keel_err_errno(err, r, "snap: remove damaged %s", path) : 1;
			} else {
				/* Unsure whether it is damaged: never delete on a guess. */
				keel_err_set(err, r, "%s", keel_err_msg(&why));
			}
		} else {
			r = keel_sys_unlink(path);
			r = r ? keel_err_errno(err, r, "snap: remove %s", path) : 1;
		}
		keel_free(path);
		if (r < 0)
			break;
		deleted += r;
		r = 0;
	}
	keel_free(ents);
	if (deleted) {
		int s = keel_sys_fsync_dir(dir);
		if (s && !r)
			r = keel_err_errno(err, s, "snap: fsync directory %s", dir);
	}
	return r ? r : deleted;
}
