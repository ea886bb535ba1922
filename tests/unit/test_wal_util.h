/* Helpers the WAL tests share (test_wal.c, test_wal_read.c): a temporary directory per test,
 * entries whose data is a function of (index, term) so that any entry can be checked byte for
 * byte, and small file utilities. */
#pragma once

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/fault.h"
#include "raftio/wal.h"
#include "testutil.h"

#define SMALL_SEGMENT ((size_t)64 << 10)

struct fixture {
	char root[64];
	char dir[96]; /* root/wal: the WAL creates it */
};

static inline int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	snprintf(f->root, sizeof(f->root), "/tmp/keel-test-wal-XXXXXX");
	if (!mkdtemp(f->root)) {
		free(f);
		return -1;
	}
	snprintf(f->dir, sizeof(f->dir), "%s/wal", f->root);
	*state = f;
	return 0;
}

static inline int teardown(void **state)
{
	struct fixture *f = *state;
	keel_fault_reset();
	test_remove_tree(f->root);
	free(f);
	return 0;
}

/* ---- helpers ------------------------------------------------------------------------------ */

/* Entry data is a function of (index, term), so any entry can be checked byte for byte. */
static inline uint32_t data_len(uint64_t index, uint64_t term)
{
	return (uint32_t)((index * 37 + term * 11) % 300);
}

static inline void fill_data(uint8_t *p, uint64_t index, uint64_t term)
{
	uint32_t n = data_len(index, term);
	for (uint32_t i = 0; i < n; i++)
		p[i] = (uint8_t)(index * 131 + term * 7 + i);
}

static uint8_t scratch[64][300];

/* Append entries [from, to] with `term`, in batches of up to 64. */
static inline void append_range(struct keel_wal *w, uint64_t from, uint64_t to, uint64_t term)
{
	struct keel_raft_entry ents[64];
	while (from <= to) {
		size_t n = 0;
		for (; n < 64 && from + n <= to; n++) {
			uint64_t idx = from + n;
			fill_data(scratch[n], idx, term);
			ents[n] = (struct keel_raft_entry){
				.term = term, .index = idx, .type = (uint8_t)(idx % 7 == 0),
				.len = data_len(idx, term), .data = data_len(idx, term) ? scratch[n] : NULL,
			};
		}
		struct keel_err err = {0};
		int r = keel_wal_append(w, ents, n, NULL, &err);
		if (r)
			fail_msg("append %llu..: %s", (unsigned long long)from, keel_err_msg(&err));
		from += n;
	}
}

static inline void check_entry(const struct keel_raft_entry *e, uint64_t index, uint64_t term)
{
	uint8_t want[300];
	assert_int_equal(e->index, index);
	assert_int_equal(e->term, term);
	assert_int_equal(e->type, index % 7 == 0);
	assert_int_equal(e->len, data_len(index, term));
	fill_data(want, index, term);
	if (e->len)
		assert_memory_equal(e->data, want, e->len);
	else
		assert_null(e->data);
}

/* Check that rec holds exactly [from, to], entry i with term terms(i). */
static inline void check_range(const struct keel_wal_recovered *rec, uint64_t from, uint64_t to,
			uint64_t (*term_of)(uint64_t))
{
	assert_int_equal(rec->n_entries, to >= from ? to - from + 1 : 0);
	for (uint64_t i = from; i <= to; i++)
		check_entry(&rec->entries[i - from], i, term_of(i));
}

static inline uint64_t term_one(uint64_t i)
{
	(void)i;
	return 1;
}

static inline struct keel_wal *open_wal(const char *dir, size_t segsize, struct keel_wal_recovered *rec)
{
	struct keel_wal_options opt = {.segment_size = segsize};
	struct keel_wal *w = NULL;
	struct keel_err err = {0};
	int r = keel_wal_open(dir, &opt, &w, rec, &err);
	if (r)
		fail_msg("open %s: %s", dir, keel_err_msg(&err));
	return w;
}

static inline int open_fails(const char *dir, size_t segsize, struct keel_err *err)
{
	struct keel_wal_options opt = {.segment_size = segsize};
	struct keel_wal *w = NULL;
	struct keel_wal_recovered rec;
	int r = keel_wal_open(dir, &opt, &w, &rec, err);
	if (r == 0) {
		keel_wal_recovered_free(&rec);
		keel_wal_close(w);
	}
	return r;
}

static inline void sync_ok(struct keel_wal *w)
{
	struct keel_err err = {0};
	if (keel_wal_sync(w, &err))
		fail_msg("sync: %s", keel_err_msg(&err));
}

static inline int cmp_name(const void *a, const void *b)
{
	return strcmp(a, b);
}

static inline size_t count_files(const char *dir)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Segment file names in dir, sorted. Returns the count. */
static inline size_t list_segments(const char *dir, char names[][64], size_t max)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (strlen(e->d_name) == 37 && strstr(e->d_name, ".wal") && n < max)
			snprintf(names[n++], 64, "%s", e->d_name);
	closedir(d);
	qsort(names, n, 64, cmp_name);
	return n;
}

static inline void seg_path(const struct fixture *f, const char *name, char *out, size_t size)
{
	snprintf(out, size, "%s/%s", f->dir, name);
}

static inline void flip_byte(const char *path, off_t off)
{
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	uint8_t b;
	assert_int_equal(pread(fd, &b, 1, off), 1);
	b ^= 0x5a;
	assert_int_equal(pwrite(fd, &b, 1, off), 1);
	close(fd);
}

/* End of the records in a segment: the offset after the last non-zero byte, 8-aligned. */
static inline off_t records_end(const char *path)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	uint8_t *p = malloc((size_t)st.st_size);
	assert_int_equal(pread(fd, p, (size_t)st.st_size, 0), st.st_size);
	close(fd);
	off_t end = st.st_size;
	while (end > 0 && p[end - 1] == 0)
		end--;
	free(p);
	return (end + 7) & ~(off_t)7;
}

