/* Reading entries back from the WAL by index (keel_wal_read): across segments and rewritten
 * tails, after a reopen, below a snapshot, after a torn tail, with damaged or vanished segments,
 * under injected failures, and beside a writing thread. */
#include "test_wal_util.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>

#include "base/mem.h"

struct got {
	struct keel_raft_entry *ents;
	size_t n;
	void *data;
};

static int read_wal(struct keel_wal *w, uint64_t lo, uint64_t hi, size_t max, struct got *g,
		    struct keel_err *err)
{
	*g = (struct got){0};
	return keel_wal_read(w, lo, hi, max, &g->ents, &g->n, &g->data, err);
}

static void got_free(struct got *g)
{
	keel_free(g->ents);
	keel_free(g->data);
	*g = (struct got){0};
}

/* Read [lo, hi] completely (as many calls as it takes) and check every entry. */
static void read_all(struct keel_wal *w, uint64_t lo, uint64_t hi, uint64_t (*term_of)(uint64_t))
{
	uint64_t next = lo;
	while (next <= hi) {
		struct got g;
		struct keel_err err = {0};
		if (read_wal(w, next, hi, SIZE_MAX, &g, &err))
			fail_msg("read %llu..%llu: %s", (unsigned long long)next, (unsigned long long)hi,
				 keel_err_msg(&err));
		assert_true(g.n >= 1);
		for (size_t k = 0; k < g.n; k++)
			check_entry(&g.ents[k], next + k, term_of(next + k));
		next += g.n;
		got_free(&g);
	}
}

static uint64_t term_2500(uint64_t i)
{
	return i >= 2500 ? 2 : 1;
}

/* One call crosses segments and the boundary a rewritten tail leaves (the old records of
 * 2500..3000 still lie in the files before the new ones); a reopen rebuilds the same index. */
static void wal_read_crosses_segments_and_rewritten_tails(void **state)
{
	struct fixture *f = *state;
	struct keel_wal *w = open_wal(f->dir, SMALL_SEGMENT, NULL);
	append_range(w, 1, 3000, 1);
	append_range(w, 2500, 2600, 2);
	char names[64][64];
	assert_true(list_segments(f->dir, names, 64) > 5);
	struct got g;
	struct keel_err err = {0};
	assert_int_equal(read_wal(w, 1, 2600, SIZE_MAX, &g, &err), 0);
	assert_int_equal(g.n, 2600);
	for (size_t k = 0; k < g.n; k++)
		check_entry(&g.ents[k], k + 1, term_2500(k + 1));
	got_free(&g);
	read_all(w, 2490, 2510, term_2500);
	assert_int_equal(read_wal(w, 2601, 2601, SIZE_MAX, &g, &err), -EINVAL);
	keel_wal_close(w);

	struct keel_wal_recovered rec;
	w = open_wal(f->dir, SMALL_SEGMENT, &rec);
	keel_wal_recovered_free(&rec);
	read_all(w, 1, 2600, term_2500);
	read_all(w, 1777, 1777, term_2500);
	append_range(w, 2601, 2700, 2);
	read_all(w, 2550, 2700, term_2500);
	keel_wal_close(w);
}

/* Entries after the first stop before the budget would be exceeded; the first always comes. */
static void wal_read_respects_the_byte_budget(void **state)
{
	struct fixture *f = *state;
	struct keel_wal *w = open_wal(f->dir, SMALL_SEGMENT, NULL);
	append_range(w, 1, 200, 1);
	struct got g;
	struct keel_err err = {0};
	assert_int_equal(read_wal(w, 10, 200, 0, &g, &err), 0);
	assert_int_equal(g.n, 1);
	check_entry(&g.ents[0], 10, 1);
	got_free(&g);
	size_t budget = data_len(10, 1) + data_len(11, 1) + data_len(12, 1);
	assert_int_equal(read_wal(w, 10, 200, budget, &g, &err), 0);
	assert_int_equal(g.n, 3);
	got_free(&g);
	assert_int_equal(read_wal(w, 10, 200, budget + data_len(13, 1) - 1, &g, &err), 0);
	assert_int_equal(g.n, 3);
	got_free(&g);
	keel_wal_close(w);
}

/* After a snapshot, what it covers is -ENOENT (its segments are gone); the rest reads. */
static void wal_read_below_a_snapshot_is_not_found(void **state)
{
	struct fixture *f = *state;
	struct keel_wal *w = open_wal(f->dir, SMALL_SEGMENT, NULL);
	append_range(w, 1, 3000, 1);
	struct keel_err err = {0};
	assert_int_equal(keel_wal_snapshot(w, 2000, 1, &err), 0);
	struct got g;
	assert_int_equal(read_wal(w, 1, 3000, SIZE_MAX, &g, &err), -ENOENT);
	assert_int_equal(read_wal(w, 2000, 3000, SIZE_MAX, &g, &err), -ENOENT);
	read_all(w, 2001, 3000, term_one);
	/* An installed snapshot beyond the log replaces it. */
	assert_int_equal(keel_wal_snapshot(w, 3100, 3, &err), 0);
	assert_int_equal(read_wal(w, 3000, 3000, SIZE_MAX, &g, &err), -ENOENT);
	assert_int_equal(read_wal(w, 3101, 3101, SIZE_MAX, &g, &err), -EINVAL);
	append_range(w, 3101, 3150, 3);
	keel_wal_close(w);
	w = open_wal(f->dir, SMALL_SEGMENT, NULL);
	assert_int_equal(read_wal(w, 3100, 3101, SIZE_MAX, &g, &err), -ENOENT);
	for (uint64_t i = 3101; i <= 3150; i++) {
		assert_int_equal(read_wal(w, i, i, SIZE_MAX, &g, &err), 0);
		check_entry(&g.ents[0], i, 3);
		got_free(&g);
	}
	keel_wal_close(w);
}

/* A torn tail: what survived the crash reads back, the torn entries are not in the index, and
 * entries appended after the repair read back too. */
static void wal_read_after_a_torn_tail(void **state)
{
	struct fixture *f = *state;
	struct keel_wal *w = open_wal(f->dir, SMALL_SEGMENT, NULL);
	append_range(w, 1, 10, 1);
	sync_ok(w);
	keel_fault_arm_short(KEEL_FAULT_PWRITE, 0, 1);
	struct keel_raft_entry ents[5];
	for (int i = 0; i < 5; i++) {
		fill_data(scratch[i], 11 + i, 1);
		ents[i] = (struct keel_raft_entry){.term = 1, .index = 11 + i, .type = (11 + i) % 7 == 0,
						   .len = data_len(11 + i, 1), .data = scratch[i]};
	}
	struct keel_err err = {0};
	assert_int_equal(keel_wal_append(w, ents, 5, NULL, &err), -EIO);
	keel_fault_reset();
	keel_wal_close(w);

	struct keel_wal_recovered rec;
	w = open_wal(f->dir, SMALL_SEGMENT, &rec);
	uint64_t last = rec.snap_index + rec.n_entries;
	keel_wal_recovered_free(&rec);
	assert_true(last >= 10 && last < 15);
	read_all(w, 1, last, term_one);
	struct got g;
	assert_int_equal(read_wal(w, last + 1, last + 1, SIZE_MAX, &g, &err), -EINVAL);
	append_range(w, last + 1, 40, 1);
	read_all(w, 1, 40, term_one);
	keel_wal_close(w);
}

/* Damage since the records were written is reported as such, never returned as data; a segment
 * deleted behind the WAL's back reads as gone. Other segments still read. */
static void wal_read_reports_damaged_and_vanished_segments(void **state)
{
	struct fixture *f = *state;
	struct keel_wal *w = open_wal(f->dir, SMALL_SEGMENT, NULL);
	append_range(w, 1, 3000, 1);
	char names[64][64];
	size_t n = list_segments(f->dir, names, 64);
	assert_true(n >= 4);
	char path[256];
	seg_path(f, names[1], path, sizeof(path));
	/* the second segment's first record (an entry), a byte of its term */
	flip_byte(path, 40 + 8 + 1 + 3);
	struct got g;
	struct keel_err err = {0};
	uint64_t first1 = strtoull(names[1] + 17, NULL, 16);
	assert_int_equal(read_wal(w, first1, first1, SIZE_MAX, &g, &err), -KEEL_ECORRUPT);
	assert_non_null(strstr(keel_err_msg(&err), names[1]));
	read_all(w, 1, first1 - 1, term_one);

	seg_path(f, names[2], path, sizeof(path));
	uint64_t first2 = strtoull(names[2] + 17, NULL, 16);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(read_wal(w, first2 + 3, first2 + 5, SIZE_MAX, &g, &err), -ENOENT);
	uint64_t first3 = strtoull(names[3] + 17, NULL, 16);
	read_all(w, first3, 3000, term_one);
	keel_wal_close(w);
}

/* Failing allocations and reads: an error, never a crash, a leak or wrong data. */
static void wal_read_survives_allocation_and_io_failures(void **state)
{
	struct fixture *f = *state;
	struct keel_wal *w = open_wal(f->dir, SMALL_SEGMENT, NULL);
	append_range(w, 1, 1500, 1);
	unsigned failed[2] = {0, 0};
	for (unsigned skip = 0; skip < 30; skip++) {
		for (int kind = 0; kind < 2; kind++) {
			keel_fault_arm(kind ? KEEL_FAULT_PREAD : KEEL_FAULT_ALLOC, skip, 1, kind ? EIO : ENOMEM);
			struct got g;
			struct keel_err err = {0};
			int r = read_wal(w, 100, 1400, SIZE_MAX, &g, &err);
			keel_fault_reset();
			if (r == 0) {
				/* a failure after the first stretch leaves a good prefix */
				for (size_t k = 0; k < g.n; k++)
					check_entry(&g.ents[k], 100 + k, 1);
				got_free(&g);
			} else {
				assert_int_equal(r, kind ? -EIO : -ENOMEM);
				failed[kind]++;
			}
		}
	}
	assert_true(failed[0] > 0 && failed[1] > 0);
	read_all(w, 1, 1500, term_one);
	keel_wal_close(w);
}

/* The reader on its own thread while the writer appends, rewrites tails, rolls segments and takes
 * snapshots: every read returns exactly what was written, or -ENOENT below a snapshot. */
struct race {
	struct keel_wal *w;
	_Atomic uint64_t stable;   /* entries <= stable are written and final */
	_Atomic uint64_t snap;
	_Atomic bool done;
	unsigned reads, misses;
};

static void *race_reader(void *arg)
{
	struct race *rc = arg;
	uint64_t x = 88172645463325252ull;
	while (!atomic_load(&rc->done)) {
		uint64_t stable = atomic_load(&rc->stable), snap = atomic_load(&rc->snap);
		if (stable <= snap)
			continue;
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		uint64_t lo = snap + 1 + x % (stable - snap);
		struct got g;
		struct keel_err err = {0};
		int r = read_wal(rc->w, lo, stable, 4096, &g, &err);
		if (r == -ENOENT) { /* a snapshot went past lo meanwhile */
			rc->misses++;
			continue;
		}
		if (r)
			fail_msg("read %llu..%llu: %s", (unsigned long long)lo, (unsigned long long)stable,
				 keel_err_msg(&err));
		for (size_t k = 0; k < g.n; k++)
			check_entry(&g.ents[k], lo + k, 1);
		got_free(&g);
		rc->reads++;
	}
	return NULL;
}

static void wal_read_beside_a_writing_thread(void **state)
{
	struct fixture *f = *state;
	struct race rc = {.w = open_wal(f->dir, SMALL_SEGMENT, NULL)};
	pthread_t t;
	append_range(rc.w, 1, 100, 1);
	atomic_store(&rc.stable, 100);
	assert_int_equal(pthread_create(&t, NULL, race_reader, &rc), 0);
	struct keel_err err = {0};
	for (uint64_t last = 100; last < 6000;) {
		/* an uncommitted tail that a new leader replaces (same term here: the reader only
		 * looks at entries up to `stable`, which never change) */
		append_range(rc.w, last + 1, last + 30, 1);
		append_range(rc.w, last + 11, last + 40, 1);
		last += 40;
		sync_ok(rc.w);
		atomic_store(&rc.stable, last);
		if (last % 800 == 0) {
			assert_int_equal(keel_wal_snapshot(rc.w, last - 300, 1, &err), 0);
			atomic_store(&rc.snap, last - 300);
		}
	}
	atomic_store(&rc.done, true);
	pthread_join(t, NULL);
	print_message("# %u reads, %u found a snapshot in the way\n", rc.reads, rc.misses);
	assert_true(rc.reads > 0);
	keel_wal_close(rc.w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(wal_read_crosses_segments_and_rewritten_tails, setup, teardown),
		cmocka_unit_test_setup_teardown(wal_read_respects_the_byte_budget, setup, teardown),
		cmocka_unit_test_setup_teardown(wal_read_below_a_snapshot_is_not_found, setup, teardown),
		cmocka_unit_test_setup_teardown(wal_read_after_a_torn_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(wal_read_reports_damaged_and_vanished_segments, setup, teardown),
		cmocka_unit_test_setup_teardown(wal_read_survives_allocation_and_io_failures, setup, teardown),
		cmocka_unit_test_setup_teardown(wal_read_beside_a_writing_thread, setup, teardown),
	};
	return cmocka_run_group_tests_name("raftio/wal-read", tests, NULL, NULL);
}
