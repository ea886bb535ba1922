/* The journal's writer: batches records in memory, writes them to the active file, rotates it at
 * max_file_size and deletes the oldest files beyond max_use/max_files. Durability rules are in
 * journal.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/mem.h"
#include "base/sys.h"
#include "init/journal-internal.h"
#include "init/journal.h"

#define MIB (1024ull * 1024)

struct keel_journal {
	struct keel_journal_config cfg;
	char *dir;
	int lock_fd, fd, idx_fd;
	struct keel_jhdr hdr;
	uint64_t file_off;    /* size of the active file once the batch is written */
	uint64_t written_off; /* size of the active file on disk */
	uint64_t last_seek_point;
	int64_t last_sync_ns;
	struct keel_buf batch, idx_batch;
	uint64_t dropped;     /* records given up after write errors */
};

static uint64_t clamp(uint64_t v, uint64_t lo, uint64_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

static int mkdir_p(const char *path)
{
	char tmp[PATH_MAX];
	size_t n = strlen(path);
	if (n == 0 || n >= sizeof(tmp))
		return -ENAMETOOLONG;
	memcpy(tmp, path, n + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static void apply_defaults(struct keel_journal_config *c, const char *dir)
{
	if (!c->max_use) {
		struct statvfs vfs;
		uint64_t fs = statvfs(dir, &vfs) == 0 ? (uint64_t)vfs.f_blocks * vfs.f_frsize : 0;
		c->max_use = clamp(fs / 10, 16 * MIB, 1024 * MIB);
	}
	if (!c->max_file_size)
		c->max_file_size = clamp(c->max_use / 8, 1 * MIB, 128 * MIB);
	if (c->max_file_size > c->max_use)
		c->max_file_size = c->max_use;
	if (!c->max_files)
		c->max_files = 100;
	if (!c->line_max)
		c->line_max = KEEL_JOURNAL_LINE_MAX_DEFAULT;
	if (!c->flush_bytes)
		c->flush_bytes = 64 * 1024;
	if (!c->sync_interval_usec)
		c->sync_interval_usec = 5 * 60 * 1000000ull;
	if (!c->index_every)
		c->index_every = 64 * 1024;
}

static void read_boot_id(uint8_t out[16])
{
	memset(out, 0, 16);
	char text[64];
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return;
	text[n] = '\0';
	int k = 0;
	for (char *p = text; *p && k < 32; p++) {
		int d = *p >= '0' && *p <= '9' ? *p - '0' : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10 : -1;
		if (d < 0)
			continue;
		out[k / 2] = (uint8_t)(out[k / 2] | d << (k % 2 ? 0 : 4));
		k++;
	}
}

/* One file of the directory, as the limits see it. */
struct jfile {
	uint64_t seq;
	uint64_t bytes; /* data + seek points */
};

static int cmp_jfile(const void *a, const void *b)
{
	const struct jfile *x = a, *y = b;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The data files of dir, oldest first, with their sizes. */
static int list_files(const char *dir, struct jfile **ret, size_t *ret_n)
{
	DIR *d = opendir(dir);
	if (!d)
		return -errno;
	struct jfile *v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	int r = 0;
	while ((e = readdir(d))) {
		uint64_t seq;
		int kind = keel__jname_parse(e->d_name, &seq);
		if (kind < 0)
			continue;
		struct stat st;
		uint64_t size = fstatat(dirfd(d), e->d_name, &st, 0) == 0 ? (uint64_t)st.st_size : 0;
		size_t i;
		for (i = 0; i < n && v[i].seq != seq; i++)
			;
		if (i == n) {
			if (n == cap) {
				cap = cap ? cap * 2 : 16;
				struct jfile *nv = keel_realloc(v, cap * sizeof(*v));
				if (!nv) {
					r = -ENOMEM;
					break;
				}
				v = nv;
			}
			v[n++] = (struct jfile){.seq = seq};
		}
		v[i].bytes += size;
	}
	closedir(d);
	if (r < 0) {
		keel_free(v);
		return r;
	}
	if (n)
		qsort(v, n, sizeof(*v), cmp_jfile);
	*ret = v;
	*ret_n = n;
	return 0;
}

static void remove_file(struct keel_journal *j, uint64_t seq)
{
	char name[KEEL_JNAME_MAX];
	keel__jname(name, seq, 1);
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", j->dir, name);
	keel_sys_unlink(path);
	keel__jname(name, seq, 0);
	snprintf(path, sizeof(path), "%s/%s", j->dir, name);
	keel_sys_unlink(path);
}

/* Delete the oldest files (never the active one) while the directory is over a limit. */
static int enforce_limits(struct keel_journal *j)
{
	struct jfile *v;
	size_t n;
	int r = list_files(j->dir, &v, &n);
	if (r < 0)
		return r;
	/* The active file will grow to max_file_size (and its seek points with it): keep room for
	 * that, so the directory never holds more than max_use. */
	uint64_t reserve = j->cfg.max_file_size +
			   (j->cfg.max_file_size / j->cfg.index_every + 1) * KEEL_JIDX_SIZE;
	uint64_t budget = j->cfg.max_use > reserve ? j->cfg.max_use - reserve : 0;
	uint64_t total = 0;
	for (size_t i = 0; i < n; i++)
		if (v[i].seq != j->hdr.seq)
			total += v[i].bytes;
	for (size_t i = 0; i < n && v[i].seq != j->hdr.seq; i++) {
		if (total <= budget && n - i <= j->cfg.max_files)
			break;
		remove_file(j, v[i].seq);
		total -= v[i].bytes;
	}
	keel_free(v);
	return 0;
}

static int open_in_dir(const struct keel_journal *j, const char *name, int flags)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s/%s", j->dir, name) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	return keel_sys_open(path, flags, 0640);
}

/* Start file seq: the header goes into a temporary name first, so a reader never sees a file
 * without a complete header. */
static int start_file(struct keel_journal *j, uint64_t seq, struct keel_err *err)
{
	j->hdr.seq = seq;
	j->hdr.created_usec = (uint64_t)keel_wall_ns() / 1000;
	uint8_t h[KEEL_JHDR_SIZE];
	keel__jhdr_encode(&j->hdr, h);
	char name[KEEL_JNAME_MAX], tmp[PATH_MAX], path[PATH_MAX];
	keel__jname(name, seq, 0);
	snprintf(tmp, sizeof(tmp), "%s/.tmp-%s", j->dir, name);
	snprintf(path, sizeof(path), "%s/%s", j->dir, name);
	int fd = keel_sys_open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0640);
	if (fd < 0)
		return keel_err_errno(err, fd, "create %s", tmp);
	int r = keel_sys_write_all(fd, h, sizeof(h));
	if (r == 0)
		r = keel_sys_rename(tmp, path);
	if (r < 0) {
		keel_sys_close(fd);
		keel_sys_unlink(tmp);
		return keel_err_errno(err, r, "write %s", path);
	}
	keel__jname(name, seq, 1);
	int ifd = open_in_dir(j, name, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND);
	j->fd = fd;
	j->idx_fd = ifd; /* without one, readers scan the file */
	j->file_off = j->written_off = KEEL_JHDR_SIZE;
	j->last_seek_point = 0;
	keel_sys_fsync_dir(j->dir);
	return 0;
}

static void close_file(struct keel_journal *j)
{
	if (j->fd >= 0)
		keel_sys_close(j->fd);
	if (j->idx_fd >= 0)
		keel_sys_close(j->idx_fd);
	j->fd = j->idx_fd = -1;
}

int keel_journal_flush(struct keel_journal *j)
{
	if (!j)
		return -EINVAL;
	if (j->fd < 0)
		return j->batch.len ? -EIO : 0;
	if (j->batch.len) {
		int r = keel_sys_write_all(j->fd, j->batch.data, j->batch.len);
		if (r < 0) {
			/* Take back a partial write so the file ends at a record boundary; keep the batch
			 * for the next try unless it grows past reason. */
			if (keel_sys_ftruncate(j->fd, (off_t)j->written_off) < 0 ||
			    j->batch.len > 4 * j->cfg.flush_bytes + 4 * MIB) {
				j->dropped += 1;
				j->file_off = j->written_off;
				keel_buf_reset(&j->batch);
				keel_buf_reset(&j->idx_batch);
			}
			return r;
		}
		j->written_off += j->batch.len;
		keel_buf_reset(&j->batch);
	}
	if (j->idx_batch.len) {
		if (j->idx_fd >= 0 && keel_sys_write_all(j->idx_fd, j->idx_batch.data, j->idx_batch.len) < 0) {
			/* A torn seek point is ignored by readers; stop adding more to this file. */
			keel_sys_close(j->idx_fd);
			j->idx_fd = -1;
		}
		keel_buf_reset(&j->idx_batch);
	}
	return 0;
}

int keel_journal_sync(struct keel_journal *j)
{
	int r = keel_journal_flush(j);
	if (r < 0)
		return r;
	if (j->fd < 0)
		return 0;
	r = keel_sys_fdatasync(j->fd);
	if (j->idx_fd >= 0)
		keel_sys_fdatasync(j->idx_fd);
	j->last_sync_ns = keel_mono_ns();
	return r;
}

static int rotate(struct keel_journal *j)
{
	int r = keel_journal_sync(j);
	if (r < 0)
		return r;
	close_file(j);
	r = start_file(j, j->hdr.seq + 1, NULL);
	if (r < 0)
		return r;
	return enforce_limits(j);
}

static int append_record(struct keel_journal *j, const char *unit, size_t unit_len,
			 const char *ident, size_t ident_len, int priority, pid_t pid,
			 uint64_t realtime_usec, uint64_t mono_usec, const char *msg, size_t len)
{
	size_t size = KEEL_JREC_FRAME + KEEL_JREC_FIXED + unit_len + ident_len + len;
	int r;
	/* a rotation that could not create the next file (disk full, ...) is retried here */
	if (j->fd < 0 && (r = start_file(j, j->hdr.seq + 1, NULL)) < 0)
		return r;
	if (j->file_off > KEEL_JHDR_SIZE && j->file_off + size > j->cfg.max_file_size &&
	    (r = rotate(j)) < 0)
		return r;
	if (j->file_off == KEEL_JHDR_SIZE || j->file_off >= j->last_seek_point + j->cfg.index_every) {
		if (keel_buf_reserve(&j->idx_batch, KEEL_JIDX_SIZE) < 0)
			return -ENOMEM;
		keel__jidx_encode((uint8_t *)j->idx_batch.data + j->idx_batch.len, j->file_off, realtime_usec);
		j->idx_batch.len += KEEL_JIDX_SIZE;
		j->last_seek_point = j->file_off;
	}
	if (keel_buf_reserve(&j->batch, size) < 0)
		return -ENOMEM;
	size_t n = keel__jrec_encode((uint8_t *)j->batch.data + j->batch.len, priority, (uint32_t)pid,
				     realtime_usec, mono_usec, unit, unit_len, ident, ident_len, msg, len);
	j->batch.len += n;
	j->file_off += n;
	if (j->batch.len >= j->cfg.flush_bytes)
		return keel_journal_flush(j);
	return 0;
}

int keel_journal_append_ident(struct keel_journal *j, const char *unit, const char *identifier,
			      int priority, pid_t pid, uint64_t realtime_usec, uint64_t mono_usec,
			      const char *msg, size_t len)
{
	if (!j || !unit || !*unit || priority < 0 || priority > 7 || (!msg && len) || pid < 0)
		return -EINVAL;
	size_t unit_len = strlen(unit), ident_len = identifier ? strlen(identifier) : 0;
	if (unit_len > 0xffff || ident_len > 0xffff)
		return -EINVAL;
	if (!realtime_usec)
		realtime_usec = (uint64_t)keel_wall_ns() / 1000;
	if (!mono_usec)
		mono_usec = (uint64_t)keel_mono_ns() / 1000;

	const char *p = msg ? msg : "", *end = p + len;
	if (len && end[-1] == '\n')
		end--;
	int r = 0;
	for (;;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		const char *q = p;
		do {
			size_t n = KEEL_MIN((size_t)(le - q), j->cfg.line_max);
			r = append_record(j, unit, unit_len, identifier, ident_len, priority, pid,
					  realtime_usec, mono_usec, q, n);
			if (r < 0)
				return r;
			q += n;
		} while (q < le);
		if (!nl)
			break;
		p = nl + 1;
	}
	if (priority <= 2 || (uint64_t)(keel_mono_ns() - j->last_sync_ns) / 1000 >= j->cfg.sync_interval_usec)
		r = keel_journal_sync(j);
	return r;
}

int keel_journal_append(struct keel_journal *j, const char *unit, int priority, pid_t pid,
			uint64_t realtime_usec, uint64_t mono_usec, const char *msg, size_t len)
{
	return keel_journal_append_ident(j, unit, NULL, priority, pid, realtime_usec, mono_usec, msg, len);
}

bool keel_journal_pending(const struct keel_journal *j)
{
	return j && (j->batch.len > 0 || j->idx_batch.len > 0);
}

const struct keel_journal_config *keel_journal_limits(const struct keel_journal *j)
{
	return &j->cfg;
}

int keel_journal_open(const struct keel_journal_config *cfg, struct keel_journal **ret,
		      struct keel_err *err)
{
	struct keel_journal_config c = cfg ? *cfg : (struct keel_journal_config){0};
	const char *dir = c.dir ? c.dir : KEEL_JOURNAL_DEFAULT_DIR;
	int r = mkdir_p(dir);
	if (r < 0)
		return keel_err_errno(err, r, "create %s", dir);
	if (c.max_file_size && c.max_file_size <= KEEL_JHDR_SIZE)
		return keel_err_set(err, -EINVAL, "max_file_size must exceed %d bytes", KEEL_JHDR_SIZE);
	apply_defaults(&c, dir);

	struct keel_journal *j = keel_calloc(1, sizeof(*j));
	if (!j || !(j->dir = keel_strdup(dir))) {
		keel_free(j);
		return keel_err_set(err, -ENOMEM, "out of memory");
	}
	j->cfg = c;
	j->cfg.dir = j->dir;
	j->fd = j->idx_fd = -1;
	j->last_sync_ns = keel_mono_ns();
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/.lock", dir);
	j->lock_fd = keel_sys_open(path, O_RDWR | O_CREAT, 0640);
	if (j->lock_fd < 0) {
		r = keel_err_errno(err, j->lock_fd, "open %s", path);
		goto fail;
	}
	if (flock(j->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		r = errno == EWOULDBLOCK ? -EBUSY : -errno;
		keel_err_errno(err, r, "%s is in use by another writer", dir);
		goto fail;
	}
	read_boot_id(j->hdr.boot_id);
	if (gethostname(j->hdr.hostname, KEEL_J_HOST_MAX) < 0)
		strcpy(j->hdr.hostname, "localhost");
	j->hdr.hostname[KEEL_J_HOST_MAX] = '\0';

	struct jfile *v;
	size_t n;
	r = list_files(dir, &v, &n);
	if (r < 0) {
		keel_err_errno(err, r, "list %s", dir);
		goto fail;
	}
	uint64_t seq = n ? v[n - 1].seq + 1 : 1;
	keel_free(v);
	r = start_file(j, seq, err);
	if (r < 0)
		goto fail;
	enforce_limits(j);
	*ret = j;
	return 0;
fail:
	keel_journal_close(j);
	return r;
}

void keel_journal_close(struct keel_journal *j)
{
	if (!j)
		return;
	if (j->fd >= 0)
		keel_journal_sync(j);
	close_file(j);
	if (j->lock_fd >= 0)
		keel_sys_close(j->lock_fd);
	keel_buf_free(&j->batch);
	keel_buf_free(&j->idx_batch);
	keel_free(j->dir);
	keel_free(j);
}
