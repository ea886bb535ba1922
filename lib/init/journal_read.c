/* The journal's reader: walks the files of a directory in order through a read window, skips
 * damaged records by searching for the next intact frame, jumps with the seek points for --since
 * and -n, and follows the writer with inotify. It takes no lock: files only grow, and a file
 * deleted under it stays readable through the open descriptor. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/mem.h"
#include "base/str.h"
#include "base/sys.h"
#include "init/journal-internal.h"
#include "init/journal.h"

#define WINDOW (64 * 1024)

enum { RS_OK = KEEL_JREC_OK, RS_SHORT = KEEL_JREC_SHORT, RS_BAD = KEEL_JREC_BAD, RS_EOF = 3 };

struct keel_journal_reader {
	char *dir;
	char **units;
	bool globs; /* some unit pattern needs fnmatch */
	int max_priority;
	uint64_t since, until;
	int ino_fd;

	uint64_t *seqs; /* data files, ascending */
	size_t nseq;

	/* the open file */
	int fd;
	uint64_t fseq;
	struct keel_jhdr hdr;
	char boot_hex[33];
	uint8_t *win;
	size_t win_cap, win_len;
	uint64_t win_off;

	/* the cursor: the next record is looked for at (cur_seq, cur_off) */
	bool positioned, done;
	uint64_t cur_seq, cur_off;
	uint64_t skipped;
	struct keel_buf unit, ident;
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int refresh(struct keel_journal_reader *r)
{
	DIR *d = opendir(r->dir);
	if (!d)
		return -errno;
	size_t n = 0, cap = r->nseq + 8;
	uint64_t *v = keel_malloc(cap * sizeof(*v));
	if (!v) {
		closedir(d);
		return -ENOMEM;
	}
	struct dirent *e;
	while ((e = readdir(d))) {
		uint64_t seq;
		if (keel__jname_parse(e->d_name, &seq) != 0)
			continue;
		if (n == cap) {
			uint64_t *nv = keel_realloc(v, (cap *= 2) * sizeof(*v));
			if (!nv) {
				keel_free(v);
				closedir(d);
				return -ENOMEM;
			}
			v = nv;
		}
		v[n++] = seq;
	}
	closedir(d);
	if (n)
		qsort(v, n, sizeof(*v), cmp_u64);
	keel_free(r->seqs);
	r->seqs = v;
	r->nseq = n;
	return 0;
}

static void close_cur(struct keel_journal_reader *r)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	r->win_len = 0;
}

/* Open data file seq and read its header. 0, -ENOENT (gone), -KEEL_ECORRUPT (bad header). */
static int open_seq(struct keel_journal_reader *r, uint64_t seq)
{
	if (r->fd >= 0 && r->fseq == seq)
		return 0;
	close_cur(r);
	char name[KEEL_JNAME_MAX], path[PATH_MAX];
	keel__jname(name, seq, 0);
	snprintf(path, sizeof(path), "%s/%s", r->dir, name);
	int fd = keel_sys_open(path, O_RDONLY, 0);
	if (fd < 0)
		return fd;
	uint8_t h[KEEL_JHDR_SIZE];
	ssize_t n = keel_sys_pread_all(fd, h, sizeof(h), 0);
	if (n < 0 || keel__jhdr_decode(h, (size_t)n, &r->hdr) < 0) {
		close(fd);
		return n < 0 ? (int)n : -KEEL_ECORRUPT;
	}
	static const char hex[] = "0123456789abcdef";
	for (int i = 0; i < 16; i++) {
		r->boot_hex[2 * i] = hex[r->hdr.boot_id[i] >> 4];
		r->boot_hex[2 * i + 1] = hex[r->hdr.boot_id[i] & 15];
	}
	r->boot_hex[32] = '\0';
	r->fd = fd;
	r->fseq = seq;
	r->win_len = 0;
	return 0;
}

/* Make [off, off+need) readable in the window as far as the file has it; returns how many bytes
 * from off are there (less than need only at the end of the file), or -errno. */
static ssize_t fill(struct keel_journal_reader *r, uint64_t off, size_t need)
{
	if (off >= r->win_off && off + need <= r->win_off + r->win_len)
		return (ssize_t)need;
	size_t want = need > WINDOW ? need : WINDOW;
	if (r->win_cap < want) {
		uint8_t *nw = keel_realloc(r->win, want);
		if (!nw)
			return -ENOMEM;
		r->win = nw;
		r->win_cap = want;
	}
	ssize_t n = keel_sys_pread_all(r->fd, r->win, want, (off_t)off);
	if (n < 0) {
		r->win_len = 0;
		return n;
	}
	r->win_off = off;
	r->win_len = (size_t)n;
	return (ssize_t)((size_t)n < need ? (size_t)n : need);
}

/* Decode the record at off of the open file. */
static int read_rec(struct keel_journal_reader *r, uint64_t off, struct keel_jrec *rec, size_t *size)
{
	ssize_t n = fill(r, off, KEEL_JREC_FRAME);
	if (n < 0)
		return (int)n;
	if (n == 0)
		return RS_EOF;
	const uint8_t *p = r->win + (off - r->win_off);
	int st = keel__jrec_decode(p, (size_t)n, rec, size);
	if (st != RS_SHORT || n < KEEL_JREC_FRAME)
		return st;
	size_t total = KEEL_JREC_FRAME + keel__get32(p + 4);
	n = fill(r, off, total);
	if (n < 0)
		return (int)n;
	return keel__jrec_decode(r->win + (off - r->win_off), (size_t)n, rec, size);
}

/* After damage at from-1: the offset of the next intact record. 1 found, 0 none, -errno. */
static int resync(struct keel_journal_reader *r, uint64_t from, uint64_t *ret)
{
	static const uint8_t magic[4] = {0x4b, 0x4b, 0x4a, 0x52};
	uint64_t off = from;
	for (;;) {
		ssize_t n = fill(r, off, WINDOW);
		if (n < 0)
			return (int)n;
		if (n < 4)
			return 0;
		const uint8_t *base = r->win + (off - r->win_off);
		const uint8_t *m = memmem(base, (size_t)n, magic, 4);
		if (!m) {
			off += (uint64_t)n - 3;
			continue;
		}
		uint64_t cand = off + (uint64_t)(m - base);
		struct keel_jrec rec;
		size_t size;
		int st = read_rec(r, cand, &rec, &size);
		if (st < 0)
			return st;
		if (st == RS_OK) {
			*ret = cand;
			return 1;
		}
		off = cand + 1;
	}
}

/* The record at *off or, past damage, the next intact one (moving *off there). 1 found, 0 at the
 * end of intact data (*off at the damage or the end), -errno. */
static int next_intact(struct keel_journal_reader *r, uint64_t *off, struct keel_jrec *rec,
		       size_t *size, bool count)
{
	for (;;) {
		int st = read_rec(r, *off, rec, size);
		if (st < 0)
			return st;
		if (st == RS_OK)
			return 1;
		if (st == RS_EOF)
			return 0;
		/* Damaged, or cut short: a record the writer is still writing is the last thing in
		 * the file, so if an intact one follows, this one is damage (a length that was hit
		 * makes a record look longer than the file). */
		uint64_t n = 0;
		int f = resync(r, *off + 1, &n);
		if (f <= 0)
			return f;
		if (count)
			r->skipped += n - *off;
		*off = n;
	}
}

static int copy_str(struct keel_buf *b, const char *s, size_t n)
{
	keel_buf_reset(b);
	return keel_buf_append(b, s, n);
}

static bool unit_matches(struct keel_journal_reader *r, const struct keel_jrec *rec)
{
	if (!r->units || !r->units[0])
		return true;
	if (!r->globs) {
		for (char **u = r->units; *u; u++)
			if (strlen(*u) == rec->unit_len && memcmp(*u, rec->unit, rec->unit_len) == 0)
				return true;
		return false;
	}
	if (copy_str(&r->unit, rec->unit, rec->unit_len) < 0)
		return false;
	for (char **u = r->units; *u; u++)
		if (fnmatch(*u, r->unit.data, 0) == 0)
			return true;
	return false;
}

static bool matches(struct keel_journal_reader *r, const struct keel_jrec *rec)
{
	if (rec->priority > r->max_priority)
		return false;
	if (r->since && rec->realtime_usec < r->since)
		return false;
	if (r->until && rec->realtime_usec > r->until)
		return false;
	return unit_matches(r, rec);
}

static int file_size(struct keel_journal_reader *r, uint64_t *ret)
{
	struct stat st;
	if (fstat(r->fd, &st) < 0)
		return -errno;
	*ret = (uint64_t)st.st_size;
	return 0;
}

/* Seek points of file seq that lie inside its data, ascending, always starting with the first
 * record's offset. */
static int load_points(struct keel_journal_reader *r, uint64_t seq, uint64_t fsize,
		       uint64_t **ret_off, uint64_t **ret_rt, size_t *ret_n)
{
	char name[KEEL_JNAME_MAX], path[PATH_MAX];
	keel__jname(name, seq, 1);
	snprintf(path, sizeof(path), "%s/%s", r->dir, name);
	uint8_t *raw = NULL;
	size_t nraw = 0;
	int fd = keel_sys_open(path, O_RDONLY, 0);
	if (fd >= 0) {
		struct stat st;
		if (fstat(fd, &st) == 0 && st.st_size >= KEEL_JIDX_SIZE && st.st_size < (64 << 20)) {
			raw = keel_malloc((size_t)st.st_size);
			ssize_t n = raw ? keel_sys_pread_all(fd, raw, (size_t)st.st_size, 0) : -ENOMEM;
			nraw = n > 0 ? (size_t)n / KEEL_JIDX_SIZE : 0;
		}
		close(fd);
	}
	uint64_t *offs = keel_malloc((nraw + 1) * sizeof(*offs));
	uint64_t *rts = keel_malloc((nraw + 1) * sizeof(*rts));
	if (!offs || !rts) {
		keel_free(raw);
		keel_free(offs);
		keel_free(rts);
		return -ENOMEM;
	}
	size_t n = 0;
	offs[n] = KEEL_JHDR_SIZE;
	rts[n++] = 0;
	for (size_t i = 0; i < nraw; i++) {
		uint64_t o, t;
		if (keel__jidx_decode(raw + i * KEEL_JIDX_SIZE, &o, &t) < 0 || o >= fsize)
			continue;
		if (o == offs[n - 1]) {
			rts[n - 1] = t;
			continue;
		}
		if (o < offs[n - 1])
			continue;
		offs[n] = o;
		rts[n++] = t;
	}
	keel_free(raw);
	*ret_off = offs;
	*ret_rt = rts;
	*ret_n = n;
	return 0;
}

/* --since: start in the newest file created before since, at its last seek point before it. */
static int position_since(struct keel_journal_reader *r)
{
	size_t start = 0;
	for (size_t i = 0; i < r->nseq; i++) {
		if (open_seq(r, r->seqs[i]) < 0)
			continue;
		if (r->hdr.created_usec > r->since)
			break;
		start = i;
	}
	r->cur_seq = r->seqs[start];
	r->cur_off = KEEL_JHDR_SIZE;
	if (open_seq(r, r->cur_seq) < 0)
		return 0;
	uint64_t fsize = 0, *offs, *rts;
	size_t n;
	int e = file_size(r, &fsize);
	if (e < 0)
		return e;
	e = load_points(r, r->cur_seq, fsize, &offs, &rts, &n);
	if (e < 0)
		return e;
	for (size_t i = 1; i < n && rts[i] < r->since; i++) {
		struct keel_jrec rec;
		size_t size;
		if (read_rec(r, offs[i], &rec, &size) == RS_OK)
			r->cur_off = offs[i];
	}
	keel_free(offs);
	keel_free(rts);
	return 0;
}

static int ensure_positioned(struct keel_journal_reader *r)
{
	if (r->positioned)
		return 0;
	int e = refresh(r);
	if (e < 0)
		return e;
	r->positioned = true;
	if (r->nseq == 0) {
		r->cur_seq = 0;
		r->cur_off = KEEL_JHDR_SIZE;
		return 0;
	}
	if (r->since)
		return position_since(r);
	r->cur_seq = r->seqs[0];
	r->cur_off = KEEL_JHDR_SIZE;
	return 0;
}

int keel_journal_reader_tail(struct keel_journal_reader *r, uint64_t want)
{
	int e = refresh(r);
	if (e < 0)
		return e;
	r->positioned = true;
	r->done = false;
	bool found_any = false, end_set = false;
	uint64_t first_seq = 0, first_off = 0;
	uint64_t *hits = NULL;
	size_t hcap = 0;
	bool stop = false;
	for (size_t fi = r->nseq; fi-- > 0 && !stop;) {
		uint64_t seq = r->seqs[fi], fsize = 0, *offs, *rts;
		size_t n;
		if (open_seq(r, seq) < 0 || file_size(r, &fsize) < 0)
			continue;
		if ((e = load_points(r, seq, fsize, &offs, &rts, &n)) < 0)
			break;
		for (size_t ci = n; ci-- > 0 && !stop;) {
			uint64_t end = ci + 1 < n ? offs[ci + 1] : UINT64_MAX;
			uint64_t off = offs[ci];
			size_t nh = 0;
			struct keel_jrec rec;
			size_t size;
			bool first_rec = true, older = false;
			while (off < end && (e = next_intact(r, &off, &rec, &size, false)) == 1 && off < end) {
				if (first_rec && r->since && rec.realtime_usec < r->since)
					older = true;
				first_rec = false;
				if (matches(r, &rec)) {
					if (nh == hcap) {
						hcap = hcap ? hcap * 2 : 256;
						uint64_t *nv = keel_realloc(hits, hcap * sizeof(*hits));
						if (!nv) {
							e = -ENOMEM;
							break;
						}
						hits = nv;
					}
					hits[nh++] = off;
				}
				off += size;
			}
			if (e < 0) {
				stop = true;
				break;
			}
			if (!end_set) {
				/* n = 0, or nothing matches: continue after the newest intact record */
				r->cur_seq = seq;
				r->cur_off = off;
				end_set = true;
			}
			if (want && nh > 0) {
				size_t take = nh < want ? nh : (size_t)want;
				found_any = true;
				first_seq = seq;
				first_off = hits[nh - take];
				want -= take;
			}
			if (want == 0 || older)
				stop = true;
		}
		keel_free(offs);
		keel_free(rts);
	}
	keel_free(hits);
	if (e < 0)
		return e;
	if (found_any) {
		r->cur_seq = first_seq;
		r->cur_off = first_off;
	} else if (!end_set) {
		r->cur_seq = r->nseq ? r->seqs[r->nseq - 1] : 0;
		r->cur_off = KEEL_JHDR_SIZE;
	}
	return 0;
}

int keel_journal_reader_next(struct keel_journal_reader *r, struct keel_journal_entry *ret)
{
	int e = ensure_positioned(r);
	if (e < 0)
		return e;
	for (;;) {
		if (r->done)
			return 0;
		/* the first file at or after the cursor's */
		size_t i = 0;
		while (i < r->nseq && r->seqs[i] < r->cur_seq)
			i++;
		if (i == r->nseq) {
			if ((e = refresh(r)) < 0)
				return e == -ENOENT ? 0 : e;
			for (i = 0; i < r->nseq && r->seqs[i] < r->cur_seq; i++)
				;
			if (i == r->nseq)
				return 0;
		}
		if (r->seqs[i] != r->cur_seq) {
			r->cur_seq = r->seqs[i];
			r->cur_off = KEEL_JHDR_SIZE;
		}
		e = open_seq(r, r->cur_seq);
		if (e < 0) {
			if (e != -ENOENT && e != -KEEL_ECORRUPT)
				return e;
			r->cur_seq++; /* gone, or not a journal file */
			continue;
		}
		struct keel_jrec rec;
		size_t size;
		e = next_intact(r, &r->cur_off, &rec, &size, true);
		if (e < 0)
			return e;
		if (e == 1) {
			r->cur_off += size;
			if (r->until && rec.realtime_usec > r->until) {
				r->done = true;
				return 0;
			}
			if (!matches(r, &rec))
				continue;
			if (copy_str(&r->unit, rec.unit, rec.unit_len) < 0 ||
			    copy_str(&r->ident, rec.ident, rec.ident_len) < 0)
				return -ENOMEM;
			*ret = (struct keel_journal_entry){
				.realtime_usec = rec.realtime_usec,
				.mono_usec = rec.mono_usec,
				.unit = r->unit.data,
				.identifier = r->ident.data,
				.hostname = r->hdr.hostname,
				.boot_id = r->boot_hex,
				.pid = (pid_t)rec.pid,
				.priority = rec.priority,
				.msg = rec.msg,
				.len = rec.msg_len,
				.file_seq = r->cur_seq,
				.offset = r->cur_off - size,
			};
			return 1;
		}
		/* End of intact data in this file: go on to a newer file if there is one (then
		 * whatever is left here is a torn tail), else wait for the writer. */
		if (i + 1 == r->nseq) {
			if ((e = refresh(r)) < 0)
				return e;
			for (i = 0; i < r->nseq && r->seqs[i] <= r->cur_seq; i++)
				;
			if (i == r->nseq)
				return 0;
		}
		uint64_t fsize = 0;
		if (file_size(r, &fsize) == 0 && fsize > r->cur_off) {
			/* Re-read once: the writer may have finished the record while we looked. */
			if (next_intact(r, &r->cur_off, &rec, &size, true) == 1)
				continue;
			r->skipped += fsize - r->cur_off;
		}
		r->cur_seq++;
		r->cur_off = KEEL_JHDR_SIZE;
	}
}

int keel_journal_reader_wait(struct keel_journal_reader *r, int timeout_ms)
{
	if (r->ino_fd < 0)
		return -EINVAL;
	struct pollfd p = {.fd = r->ino_fd, .events = POLLIN};
	int n = poll(&p, 1, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	if (n == 0)
		return 0;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	while (read(r->ino_fd, buf, sizeof(buf)) > 0)
		;
	r->win_len = 0; /* the file may have grown under the window */
	return 1;
}

int keel_journal_reader_fd(const struct keel_journal_reader *r)
{
	return r->ino_fd;
}

uint64_t keel_journal_reader_skipped(const struct keel_journal_reader *r)
{
	return r->skipped;
}

int keel_journal_reader_open(const char *dir, const struct keel_journal_filter *filter, bool follow,
			     struct keel_journal_reader **ret, struct keel_err *err)
{
	if (!dir)
		dir = KEEL_JOURNAL_DEFAULT_DIR;
	struct stat st;
	if (stat(dir, &st) < 0)
		return keel_err_errno(err, -errno, "%s", dir);
	struct keel_journal_reader *r = keel_calloc(1, sizeof(*r));
	if (!r || !(r->dir = keel_strdup(dir))) {
		keel_free(r);
		return keel_err_set(err, -ENOMEM, "out of memory");
	}
	r->fd = r->ino_fd = -1;
	r->max_priority = 7;
	if (filter) {
		if (filter->max_priority >= 0 && filter->max_priority < 7)
			r->max_priority = filter->max_priority;
		r->since = filter->since_usec;
		r->until = filter->until_usec;
		for (char **u = filter->units; u && *u; u++) {
			if (strpbrk(*u, "*?[\\"))
				r->globs = true;
			if (keel_strv_push(&r->units, *u) < 0) {
				keel_journal_reader_free(r);
				return keel_err_set(err, -ENOMEM, "out of memory");
			}
		}
	}
	if (follow) {
		r->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		if (r->ino_fd < 0 ||
		    inotify_add_watch(r->ino_fd, dir, IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_DELETE) < 0) {
			int e = -errno;
			keel_journal_reader_free(r);
			return keel_err_errno(err, e, "inotify on %s", dir);
		}
	}
	*ret = r;
	return 0;
}

void keel_journal_reader_free(struct keel_journal_reader *r)
{
	if (!r)
		return;
	close_cur(r);
	if (r->ino_fd >= 0)
		close(r->ino_fd);
	keel_strv_free(r->units);
	keel_free(r->seqs);
	keel_free(r->win);
	keel_buf_free(&r->unit);
	keel_buf_free(&r->ident);
	keel_free(r->dir);
	keel_free(r);
}
