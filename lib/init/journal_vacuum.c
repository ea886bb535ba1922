/* What `keelctl journal --disk-usage` and `--vacuum-size=` do to a journal directory, beside a
 * running writer: the writer only appends to its newest file, so every older file may go. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/mem.h"
#include "init/journal-internal.h"
#include "init/journal.h"

struct vfile {
	uint64_t seq;
	uint64_t bytes; /* allocated on disk, data and seek points */
};

static int cmp_vfile(const void *a, const void *b)
{
	const struct vfile *x = a, *y = b;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The journal files of dir by sequence number, oldest first, with what they take on disk. */
static int list(const char *dir, struct vfile **ret, size_t *ret_n)
{
	DIR *d = opendir(dir);
	if (!d)
		return -errno;
	struct vfile *v = NULL;
	size_t n = 0;
	struct dirent *e;
	int r = 0;
	while ((e = readdir(d))) {
		uint64_t seq;
		struct stat st;
		if (keel__jname_parse(e->d_name, &seq) < 0 || fstatat(dirfd(d), e->d_name, &st, 0) < 0)
			continue;
		size_t i = 0;
		while (i < n && v[i].seq != seq)
			i++;
		if (i == n) {
			struct vfile *nv = keel_realloc(v, (n + 1) * sizeof(*v));
			if (!nv) {
				r = -ENOMEM;
				break;
			}
			v = nv;
			v[n++] = (struct vfile){.seq = seq};
		}
		v[i].bytes += (uint64_t)st.st_blocks * 512;
	}
	closedir(d);
	if (r < 0) {
		keel_free(v);
		return r;
	}
	if (n)
		qsort(v, n, sizeof(*v), cmp_vfile);
	*ret = v;
	*ret_n = n;
	return 0;
}

int keel_journal_disk_usage(const char *dir, uint64_t *ret_bytes)
{
	struct vfile *v;
	size_t n;
	int r = list(dir, &v, &n);
	if (r < 0)
		return r;
	uint64_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += v[i].bytes;
	keel_free(v);
	*ret_bytes = total;
	return 0;
}

int keel_journal_vacuum_size(const char *dir, uint64_t max_bytes, uint64_t *ret_freed)
{
	struct vfile *v;
	size_t n;
	int r = list(dir, &v, &n);
	if (r < 0)
		return r;
	uint64_t total = 0, freed = 0;
	for (size_t i = 0; i < n; i++)
		total += v[i].bytes;
	/* oldest first, never the newest: a running keel-init appends to it */
	for (size_t i = 0; i + 1 < n && total > max_bytes; i++) {
		for (int kind = 1; kind >= 0; kind--) {
			char name[KEEL_JNAME_MAX], path[PATH_MAX];
			keel__jname(name, v[i].seq, kind);
			snprintf(path, sizeof(path), "%s/%s", dir, name);
			if (unlink(path) < 0 && errno != ENOENT && r == 0)
				r = -errno;
		}
		total -= v[i].bytes;
		freed += v[i].bytes;
	}
	keel_free(v);
	*ret_freed = freed;
	return r;
}
