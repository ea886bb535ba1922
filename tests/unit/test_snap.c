#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/fault.h"
#include "base/mem.h"
#include "raftio/snap.h"

struct fixture {
	char root[64];
	char dir[96]; /* root/snap: the writer creates it */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	snprintf(f->root, sizeof(f->root), "/tmp/keel-test-snap-XXXXXX");
	if (!mkdtemp(f->root)) {
		free(f);
		return -1;
	}
	snprintf(f->dir, sizeof(f->dir), "%s/snap", f->root);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	keel_fault_reset();
	test_remove_tree(f->root);
	free(f);
	return 0;
}

/* ---- helpers ------------------------------------------------------------------------------ */

static uint8_t byte_at(uint64_t seed, uint64_t i)
{
	return (uint8_t)((i * 2654435761u + seed * 97) >> 7);
}

static struct keel_raft_snapshot_meta meta_at(uint64_t term, uint64_t index)
{
	struct keel_raft_snapshot_meta m = {.index = index, .term = term};
	m.conf.n_voters = 3;
	m.conf.voters[0] = 1;
	m.conf.voters[1] = 2;
	m.conf.voters[2] = 0xfedcba9876543210ull;
	m.conf.n_learners = 1;
	m.conf.learners[0] = 7;
	return m;
}

/* Write a snapshot of `size` bytes in chunks of varying size (1 byte up to 100 KiB). */
static void write_snap(const char *dir, uint64_t term, uint64_t index, size_t size)
{
	struct keel_raft_snapshot_meta m = meta_at(term, index);
	struct keel_snap_writer *wr;
	struct keel_err err = {0};
	if (keel_snap_writer_open(dir, &m, &wr, &err))
		fail_msg("writer_open: %s", keel_err_msg(&err));
	static uint8_t chunk[100 << 10];
	size_t pos = 0, step = 1;
	while (pos < size) {
		size_t n = size - pos < step ? size - pos : step;
		for (size_t i = 0; i < n; i++)
			chunk[i] = byte_at(index, pos + i);
		assert_int_equal(keel_snap_writer_write(wr, chunk, n, &err), 0);
		pos += n;
		step = step * 7 % sizeof(chunk) + 1;
	}
	char *path = NULL;
	if (keel_snap_writer_finish(wr, &path, &err))
		fail_msg("finish: %s", keel_err_msg(&err));
	assert_non_null(strstr(path, ".snap"));
	keel_free(path);
}

/* Stream the file back in chunks of `chunk` bytes and compare. */
static void check_snap(const char *path, uint64_t term, uint64_t index, size_t size, size_t chunk)
{
	struct keel_snap_reader *rd;
	struct keel_raft_snapshot_meta m;
	struct keel_err err = {0};
	if (keel_snap_reader_open(path, &rd, &m, &err))
		fail_msg("reader_open: %s", keel_err_msg(&err));
	struct keel_raft_snapshot_meta want = meta_at(term, index);
	assert_memory_equal(&m, &want, sizeof(m));
	assert_int_equal(keel_snap_reader_size(rd), size);
	uint8_t *buf = malloc(chunk);
	size_t pos = 0;
	ssize_t n;
	while ((n = keel_snap_reader_read(rd, buf, chunk, &err)) > 0) {
		for (ssize_t i = 0; i < n; i++)
			assert_int_equal(buf[i], byte_at(index, pos + (size_t)i));
		pos += (size_t)n;
	}
	assert_int_equal(n, 0);
	assert_int_equal(pos, size);
	assert_int_equal(keel_snap_reader_read(rd, buf, chunk, &err), 0);
	free(buf);
	keel_snap_reader_close(rd);
}

static void snap_file(const struct fixture *f, uint64_t term, uint64_t index, char *out, size_t size)
{
	snprintf(out, size, "%s/%016llx-%016llx.snap", f->dir, (unsigned long long)term,
		 (unsigned long long)index);
}

static size_t count_files(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static void flip_byte(const char *path, off_t off)
{
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	uint8_t b;
	assert_int_equal(pread(fd, &b, 1, off), 1);
	b ^= 0x01;
	assert_int_equal(pwrite(fd, &b, 1, off), 1);
	close(fd);
}

struct warnings {
	int n;
	char last[256];
};

static void collect_warning(void *userdata, const char *path, const struct keel_err *why)
{
	struct warnings *w = userdata;
	w->n++;
	snprintf(w->last, sizeof(w->last), "%s | %s", path, keel_err_msg(why));
}

/* ---- tests -------------------------------------------------------------------------------- */

static void snap_round_trip_streams_multi_chunk_data(void **state)
{
	struct fixture *f = *state;
	size_t size = 1 << 20;
	write_snap(f->dir, 2, 100, size);
	char path[256];
	snap_file(f, 2, 100, path, sizeof(path));
	check_snap(path, 2, 100, size, 4096);
	check_snap(path, 2, 100, size, 1000003); /* one big read */
	write_snap(f->dir, 2, 99, 10000);
	snap_file(f, 2, 99, path, sizeof(path));
	check_snap(path, 2, 99, 10000, 3);

	/* An empty snapshot is legal and still verified. */
	write_snap(f->dir, 2, 101, 0);
	snap_file(f, 2, 101, path, sizeof(path));
	check_snap(path, 2, 101, 0, 16);
}

static void snap_latest_finds_the_newest(void **state)
{
	struct fixture *f = *state;
	struct keel_raft_snapshot_meta m;
	char *path = NULL;
	struct keel_err err = {0};
	/* No directory, then an empty one: nothing, and the outputs stay untouched. */
	assert_int_equal(keel_snap_latest(f->dir, &m, &path, NULL, NULL, &err), 0);
	assert_int_equal(mkdir(f->dir, 0700), 0);
	assert_int_equal(keel_snap_latest(f->dir, &m, &path, NULL, NULL, &err), 0);
	assert_null(path);

	write_snap(f->dir, 1, 10, 5000);
	write_snap(f->dir, 3, 300, 7000);
	write_snap(f->dir, 2, 200, 6000);
	assert_int_equal(keel_snap_latest(f->dir, &m, &path, NULL, NULL, &err), 1);
	assert_int_equal(m.index, 300);
	assert_int_equal(m.term, 3);
	assert_int_equal(m.conf.n_voters, 3);
	assert_int_equal(m.conf.voters[2], 0xfedcba9876543210ull);
	assert_non_null(strstr(path, "0000000000000003-000000000000012c.snap"));
	check_snap(path, 3, 300, 7000, 4096);
	keel_free(path);
}

static void snap_latest_skips_a_corrupt_newest_and_falls_back(void **state)
{
	struct fixture *f = *state;
	write_snap(f->dir, 1, 10, 5000);
	write_snap(f->dir, 1, 20, 300000);
	char newest[256];
	snap_file(f, 1, 20, newest, sizeof(newest));
	flip_byte(newest, 150000); /* in the data: only the full CRC sees it */

	struct keel_raft_snapshot_meta m;
	char *path = NULL;
	struct warnings warn = {0};
	struct keel_err err = {0};
	assert_int_equal(keel_snap_latest(f->dir, &m, &path, collect_warning, &warn, &err), 1);
	assert_int_equal(m.index, 10);
	assert_int_equal(warn.n, 1);
	assert_non_null(strstr(warn.last, "0000000000000001-0000000000000014.snap"));
	assert_non_null(strstr(warn.last, "checksum"));
	keel_free(path);

	/* Streaming the damaged one fails at the end, not with wrong data accepted. */
	struct keel_snap_reader *rd;
	assert_int_equal(keel_snap_reader_open(newest, &rd, NULL, &err), 0);
	uint8_t buf[65536];
	ssize_t n;
	while ((n = keel_snap_reader_read(rd, buf, sizeof(buf), &err)) > 0)
		;
	assert_int_equal(n, -KEEL_ECORRUPT);
	keel_snap_reader_close(rd);
}

static void snap_latest_skips_half_written_and_mislabelled_files(void **state)
{
	struct fixture *f = *state;
	write_snap(f->dir, 1, 10, 5000);
	write_snap(f->dir, 1, 20, 5000);
	write_snap(f->dir, 1, 30, 5000);
	char path[256], other[256];
	/* 30: cut short, as if the machine died while copying it in. */
	snap_file(f, 1, 30, path, sizeof(path));
	assert_int_equal(truncate(path, 3000), 0);
	/* 20: a valid file under the wrong name. */
	snap_file(f, 1, 20, path, sizeof(path));
	snap_file(f, 1, 25, other, sizeof(other));
	assert_int_equal(rename(path, other), 0);
	/* 40: not even a header. */
	snap_file(f, 1, 40, path, sizeof(path));
	int fd = open(path, O_CREAT | O_WRONLY, 0600);
	close(fd);

	struct keel_raft_snapshot_meta m;
	struct warnings warn = {0};
	struct keel_err err = {0};
	assert_int_equal(keel_snap_latest(f->dir, &m, NULL, collect_warning, &warn, &err), 1);
	assert_int_equal(m.index, 10);
	assert_int_equal(warn.n, 3);
}

static void snap_header_damage_is_caught_at_open(void **state)
{
	struct fixture *f = *state;
	write_snap(f->dir, 1, 10, 100);
	char path[256];
	snap_file(f, 1, 10, path, sizeof(path));
	flip_byte(path, 60); /* a voter id */
	struct keel_snap_reader *rd = NULL;
	struct keel_err err = {0};
	assert_int_equal(keel_snap_reader_open(path, &rd, NULL, &err), -KEEL_ECORRUPT);
	assert_null(rd);
	assert_non_null(strstr(err.msg, "header"));
}

static void snap_retain_keeps_the_newest_n_valid(void **state)
{
	struct fixture *f = *state;
	for (uint64_t i = 1; i <= 6; i++)
		write_snap(f->dir, 1, i * 10, 1000 + i);
	char path[256];
	snap_file(f, 1, 60, path, sizeof(path));
	flip_byte(path, 500); /* the newest is damaged: it does not count */

	struct keel_err err = {0};
	assert_int_equal(keel_snap_retain(f->dir, 2, &err), 4);
	assert_int_equal(count_files(f->dir), 2);
	snap_file(f, 1, 50, path, sizeof(path));
	assert_int_equal(access(path, F_OK), 0);
	snap_file(f, 1, 40, path, sizeof(path));
	assert_int_equal(access(path, F_OK), 0);
	/* Idempotent. */
	assert_int_equal(keel_snap_retain(f->dir, 2, &err), 0);
	assert_int_equal(count_files(f->dir), 2);
	/* A missing directory is nothing to clean. */
	snprintf(path, sizeof(path), "%s/none", f->root);
	assert_int_equal(keel_snap_retain(path, 1, &err), 0);
}

static void snap_retain_does_not_delete_what_it_cannot_read(void **state)
{
	struct fixture *f = *state;
	write_snap(f->dir, 1, 10, 1000);
	write_snap(f->dir, 1, 20, 1000);
	keel_fault_arm(KEEL_FAULT_PREAD, 0, -1, EIO);
	struct keel_err err = {0};
	assert_int_equal(keel_snap_retain(f->dir, 1, &err), -EIO);
	keel_fault_reset();
	assert_int_equal(count_files(f->dir), 2);
}

static void snap_abort_leaves_nothing(void **state)
{
	struct fixture *f = *state;
	struct keel_raft_snapshot_meta m = meta_at(1, 10);
	struct keel_snap_writer *wr;
	struct keel_err err = {0};
	assert_int_equal(keel_snap_writer_open(f->dir, &m, &wr, &err), 0);
	assert_int_equal(keel_snap_writer_write(wr, "abc", 3, &err), 0);
	assert_int_equal(count_files(f->dir), 1); /* the temp file */
	keel_snap_writer_abort(wr);
	assert_int_equal(count_files(f->dir), 0);
	keel_snap_writer_abort(NULL);
}

static void snap_stale_temp_files_are_cleaned_but_live_ones_kept(void **state)
{
	struct fixture *f = *state;
	write_snap(f->dir, 1, 10, 1000);
	/* A writer that died: its temp file stays behind with no lock on it. */
	char stale[256];
	snprintf(stale, sizeof(stale), "%s/0000000000000001-0000000000000014.snap.tmp", f->dir);
	int fd = open(stale, O_CREAT | O_WRONLY, 0600);
	assert_int_equal(write(fd, "partial", 7), 7);
	close(fd);
	/* A writer still at work. */
	struct keel_raft_snapshot_meta m = meta_at(1, 30);
	struct keel_snap_writer *wr;
	struct keel_err err = {0};
	assert_int_equal(keel_snap_writer_open(f->dir, &m, &wr, &err), 0);
	assert_int_equal(keel_snap_writer_write(wr, "abc", 3, &err), 0);

	assert_int_equal(keel_snap_retain(f->dir, 5, &err), 1);
	assert_int_equal(access(stale, F_OK), -1);
	assert_int_equal(count_files(f->dir), 2);
	/* latest() ignores temp files altogether. */
	struct keel_raft_snapshot_meta got;
	assert_int_equal(keel_snap_latest(f->dir, &got, NULL, NULL, NULL, &err), 1);
	assert_int_equal(got.index, 10);

	/* A second writer for the same snapshot is refused instead of clobbering the first. */
	struct keel_snap_writer *wr2 = NULL;
	assert_int_equal(keel_snap_writer_open(f->dir, &m, &wr2, &err), -EBUSY);
	assert_null(wr2);
	assert_int_equal(keel_snap_writer_finish(wr, NULL, &err), 0);
	assert_int_equal(keel_snap_latest(f->dir, &got, NULL, NULL, NULL, &err), 1);
	assert_int_equal(got.index, 30);
}

static void snap_write_failure_leaves_no_snapshot(void **state)
{
	struct fixture *f = *state;
	struct keel_raft_snapshot_meta m = meta_at(1, 10);
	struct keel_snap_writer *wr;
	struct keel_err err = {0};
	assert_int_equal(keel_snap_writer_open(f->dir, &m, &wr, &err), 0);
	static uint8_t big[200000];
	keel_fault_arm(KEEL_FAULT_WRITE, 0, -1, ENOSPC);
	assert_int_equal(keel_snap_writer_write(wr, big, sizeof(big), &err), -ENOSPC);
	keel_fault_reset();
	/* Sticky: later writes and finish report it. */
	assert_int_equal(keel_snap_writer_write(wr, big, 10, &err), -ENOSPC);
	assert_int_equal(keel_snap_writer_finish(wr, NULL, &err), -ENOSPC);
	assert_int_equal(count_files(f->dir), 0);

	/* fsync and rename failures at finish as well. */
	enum keel_fault_point points[] = {KEEL_FAULT_FSYNC, KEEL_FAULT_RENAME};
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(keel_snap_writer_open(f->dir, &m, &wr, &err), 0);
		assert_int_equal(keel_snap_writer_write(wr, big, 1000, &err), 0);
		keel_fault_arm(points[i], 0, 1, EIO);
		assert_int_equal(keel_snap_writer_finish(wr, NULL, &err), -EIO);
		keel_fault_reset();
		assert_int_equal(count_files(f->dir), 0);
	}
}

static void snap_allocation_failures_never_crash_or_leak(void **state)
{
	struct fixture *f = *state;
	write_snap(f->dir, 1, 10, 1000);
	bool clean = false;
	for (unsigned skip = 0; !clean && skip < 1000; skip++) {
		keel_fault_arm(KEEL_FAULT_ALLOC, skip, 1, ENOMEM);
		struct keel_err err = {0};
		struct keel_raft_snapshot_meta m = meta_at(2, 20);
		struct keel_snap_writer *wr = NULL;
		int r = keel_snap_writer_open(f->dir, &m, &wr, &err);
		if (r == 0) {
			r = keel_snap_writer_write(wr, "data", 4, &err);
			char *path = NULL;
			if (r == 0)
				r = keel_snap_writer_finish(wr, &path, &err);
			else
				keel_snap_writer_abort(wr);
			keel_free(path);
		}
		if (r == 0) {
			char *path = NULL;
			struct keel_raft_snapshot_meta got;
			r = keel_snap_latest(f->dir, &got, &path, NULL, NULL, &err);
			if (r == 1) {
				assert_int_equal(got.index, 20);
				keel_free(path);
				r = 0;
			}
		}
		if (r == 0) {
			int deleted = keel_snap_retain(f->dir, 1, &err);
			r = deleted < 0 ? deleted : 0;
		}
		if (r)
			assert_int_equal(r, -ENOMEM);
		clean = keel_fault_injected(KEEL_FAULT_ALLOC) == 0;
		keel_fault_reset();
	}
	assert_true(clean);
}

static void snap_bad_arguments_are_rejected(void **state)
{
	struct fixture *f = *state;
	struct keel_err err = {0};
	struct keel_snap_writer *wr = NULL;
	struct keel_raft_snapshot_meta m = meta_at(1, 0);
	assert_int_equal(keel_snap_writer_open(f->dir, &m, &wr, &err), -EINVAL);
	m = meta_at(1, 5);
	m.conf.n_voters = KEEL_RAFT_MAX_NODES + 1;
	assert_int_equal(keel_snap_writer_open(f->dir, &m, &wr, &err), -EINVAL);
	assert_null(wr);
	struct keel_snap_reader *rd = NULL;
	char path[256];
	snap_file(f, 1, 1, path, sizeof(path));
	assert_int_equal(keel_snap_reader_open(path, &rd, NULL, &err), -ENOENT);
	keel_snap_reader_close(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(snap_round_trip_streams_multi_chunk_data, setup, teardown),
		cmocka_unit_test_setup_teardown(snap_latest_finds_the_newest, setup, teardown),
		cmocka_unit_test_setup_teardown(snap_latest_skips_a_corrupt_newest_and_falls_back, setup, teardown),
		cmocka_unit_test_setup_teardown(snap_latest_skips_half_written_and_mislabelled_files, setup, teardown),
		cmocka_unit_test_setup_teardown(snap_header_damage_is_caught_at_open, setup, teardown),
		cmocka_unit_test_setup_teardown(snap_retain_keeps_the_newest_n_valid, setup, teardown),
		cmocka_unit_test_setup_teardown(snap_retain_does_not_delete_what_it_cannot_read, setup, teardown),
		cmocka_unit_test_setup_teardown(snap_abort_leaves_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(snap_stale_temp_files_are_cleaned_but_live_ones_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(snap_write_failure_leaves_no_snapshot, setup, teardown),
		cmocka_unit_test_setup_teardown(snap_allocation_failures_never_crash_or_leak, setup, teardown),
		cmocka_unit_test_setup_teardown(snap_bad_arguments_are_rejected, setup, teardown),
	};
	return cmocka_run_group_tests_name("raftio/snap", tests, NULL, NULL);
}
