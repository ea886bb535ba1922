/* WAL replay in bounded chunks (keel_wal_options.replay_chunk, lib/raftio/wal_stream.c): records
 * that straddle a chunk boundary, records larger than a chunk, a torn tail and damage wherever the
 * chunks happen to end, and drop_committed_data. Every test sweeps the chunk size, so each
 * record boundary falls on, before and after a chunk boundary for some size. */
#include "test_wal_util.h"

#include "base/crc32c.h"
#include "base/macro.h"
#include "base/mem.h"

/* 64 .. 1032 in steps of 8, plus a few sizes that are not multiples of 8 (rounded down). */
#define CHUNK_FIRST 64
#define CHUNK_LAST 1032

static int open_chunked(const char *dir, size_t chunk, bool drop, struct keel_wal **w,
			struct keel_wal_recovered *rec, struct keel_err *err)
{
	struct keel_wal_options opt = {.segment_size = SMALL_SEGMENT, .replay_chunk = chunk,
				       .drop_committed_data = drop};
	return keel_wal_open(dir, &opt, w, rec, err);
}

static void same_recovered(const struct keel_wal_recovered *a, const struct keel_wal_recovered *b)
{
	assert_int_equal(a->n_entries, b->n_entries);
	assert_int_equal(a->has_hs, b->has_hs);
	assert_memory_equal(&a->hs, &b->hs, sizeof(a->hs));
	assert_int_equal(a->snap_index, b->snap_index);
	assert_int_equal(a->snap_term, b->snap_term);
	for (size_t i = 0; i < a->n_entries; i++) {
		const struct keel_raft_entry *x = &a->entries[i], *y = &b->entries[i];
		assert_int_equal(x->index, y->index);
		assert_int_equal(x->term, y->term);
		assert_int_equal(x->type, y->type);
		assert_int_equal(x->len, y->len);
		if (x->len)
			assert_memory_equal(x->data, y->data, x->len);
	}
}

/* Entries 1..60 (0-299 bytes of data each), a 5,000-byte entry (larger than every chunk), a hard
 * state, entries 62..80 replacing nothing, then 75..90 in term 2 (a replaced tail), a hard
 * state. */
static void write_log(const char *dir)
{
	struct keel_wal *w = open_wal(dir, SMALL_SEGMENT, NULL);
	append_range(w, 1, 60, 1);
	static uint8_t big[5000];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 13 + 1);
	struct keel_raft_entry e = {.term = 1, .index = 61, .len = sizeof(big), .data = big};
	struct keel_raft_hard_state hs = {.term = 1, .vote = 1, .commit = 40};
	struct keel_err err = {0};
	assert_int_equal(keel_wal_append(w, &e, 1, &hs, &err), 0);
	append_range(w, 62, 80, 1);
	append_range(w, 75, 90, 2);
	hs = (struct keel_raft_hard_state){.term = 2, .vote = 1, .commit = 70};
	assert_int_equal(keel_wal_append(w, NULL, 0, &hs, &err), 0);
	sync_ok(w);
	keel_wal_close(w);
}

static void wal_replay_in_small_chunks_matches_a_whole_read(void **state)
{
	struct fixture *f = *state;
	write_log(f->dir);
	struct keel_wal *w;
	struct keel_wal_recovered ref, rec;
	struct keel_err err = {0};
	/* The default chunk (1 MiB) holds this whole segment's records. */
	assert_int_equal(open_chunked(f->dir, 0, false, &w, &ref, &err), 0);
	keel_wal_close(w);
	assert_int_equal(ref.n_entries, 90);
	assert_int_equal(ref.entries[60].len, 5000);
	assert_int_equal(ref.hs.commit, 70);
	for (size_t chunk = CHUNK_FIRST - 1; chunk <= CHUNK_LAST; chunk += chunk < 100 ? 1 : 8) {
		assert_int_equal(open_chunked(f->dir, chunk, false, &w, &rec, &err), 0);
		same_recovered(&ref, &rec);
		keel_wal_recovered_free(&rec);
		keel_wal_close(w);
	}
	/* The WAL appends where the records end when it read them in small chunks. */
	assert_int_equal(open_chunked(f->dir, 72, false, &w, &rec, &err), 0);
	keel_wal_recovered_free(&rec);
	append_range(w, 91, 91, 2);
	keel_wal_close(w);
	assert_int_equal(open_chunked(f->dir, 0, false, &w, &rec, &err), 0);
	assert_int_equal(rec.n_entries, 91);
	same_recovered(&ref, &(struct keel_wal_recovered){.entries = rec.entries, .n_entries = 90,
							   .hs = rec.hs, .has_hs = rec.has_hs});
	check_entry(&rec.entries[90], 91, 2);
	keel_wal_recovered_free(&rec);
	keel_wal_close(w);
	keel_wal_recovered_free(&ref);
}

/* A record torn at each of several lengths, read with every chunk size: recovery stops before
 * it and zeroes it, wherever the chunk that holds its frame ends. */
static void wal_torn_tail_at_any_chunk_boundary_is_repaired(void **state)
{
	struct fixture *f = *state;
	struct keel_wal *w = open_wal(f->dir, SMALL_SEGMENT, NULL);
	append_range(w, 1, 30, 1);
	sync_ok(w);
	keel_wal_close(w);
	char names[4][64], path[256];
	assert_int_equal(list_segments(f->dir, names, 4), 1);
	seg_path(f, names[0], path, sizeof(path));
	off_t end = records_end(path);

	/* The next record as the WAL would write it (entry 31 with 300 bytes), kept by hand. */
	uint8_t rec31[8 + 1 + 21 + 300 + 8] = {0};
	uint32_t len = 1 + 21 + 300;
	uint8_t *body = rec31 + 8;
	body[0] = 1;
	for (int i = 0; i < 8; i++) {
		body[1 + i] = (uint8_t)(i == 0 ? 1 : 0);      /* term 1 */
		body[9 + i] = (uint8_t)(i == 0 ? 31 : 0);     /* index 31 */
	}
	body[17] = 0;
	body[18] = (uint8_t)(300 & 0xff);
	body[19] = (uint8_t)(300 >> 8);
	for (int i = 0; i < 300; i++)
		body[22 + i] = (uint8_t)(i + 5);
	uint32_t crc = keel_crc32c(0, body, len);
	memcpy(rec31, &len, 4);
	memcpy(rec31 + 4, &crc, 4);

	static const size_t cuts[] = {3, 8, 12, 30, 64, 200, 329};
	for (size_t c = 0; c < KEEL_ARRAY_SIZE(cuts); c++) {
		for (size_t chunk = CHUNK_FIRST; chunk <= CHUNK_LAST; chunk += 24) {
			int fd = open(path, O_RDWR);
			assert_true(fd >= 0);
			assert_int_equal(pwrite(fd, rec31, cuts[c], end), (ssize_t)cuts[c]);
			close(fd);
			struct keel_wal_recovered rec;
			struct keel_err err = {0};
			int r = open_chunked(f->dir, chunk, false, &w, &rec, &err);
			if (r)
				fail_msg("cut %zu chunk %zu: %s", cuts[c], chunk, keel_err_msg(&err));
			check_range(&rec, 1, 30, term_one);
			keel_wal_recovered_free(&rec);
			keel_wal_close(w);
			assert_int_equal(records_end(path), end); /* zeroed */
		}
	}
	/* The whole record is valid: with every chunk size it is replayed. */
	int fd = open(path, O_RDWR);
	assert_int_equal(pwrite(fd, rec31, sizeof(rec31), end), (ssize_t)sizeof(rec31));
	close(fd);
	for (size_t chunk = CHUNK_FIRST; chunk <= CHUNK_LAST; chunk += 24) {
		struct keel_wal_recovered rec;
		struct keel_err err = {0};
		assert_int_equal(open_chunked(f->dir, chunk, false, &w, &rec, &err), 0);
		assert_int_equal(rec.n_entries, 31);
		assert_int_equal(rec.entries[30].len, 300);
		assert_memory_equal(rec.entries[30].data, body + 22, 300);
		keel_wal_recovered_free(&rec);
		keel_wal_close(w);
	}
}

/* Damage followed by a valid record, a clean end followed by one far beyond a chunk, and an
 * intact record of unknown type: corruption with every chunk size, and nothing is touched. */
static void wal_corruption_is_found_with_any_chunk_size(void **state)
{
	struct fixture *f = *state;
	struct keel_wal *w = open_wal(f->dir, SMALL_SEGMENT, NULL);
	append_range(w, 1, 40, 1);
	sync_ok(w);
	keel_wal_close(w);
	char names[4][64], path[256];
	list_segments(f->dir, names, 4);
	seg_path(f, names[0], path, sizeof(path));
	off_t end = records_end(path);

	/* 1: a byte flipped inside entry 20's term. */
	struct keel_wal_recovered rec;
	struct keel_err err = {0};
	int fd = open(path, O_RDWR);
	off_t at = 40;
	for (int k = 1; k < 20; k++) {
		uint32_t l;
		assert_int_equal(pread(fd, &l, 4, at), 4);
		at += (off_t)((8 + l + 7) & ~7u);
	}
	close(fd);
	flip_byte(path, at + 8 + 3);
	for (size_t chunk = CHUNK_FIRST; chunk <= CHUNK_LAST; chunk += 16) {
		int r = open_chunked(f->dir, chunk, false, &w, &rec, &err);
		if (r != -KEEL_ECORRUPT)
			fail_msg("chunk %zu: %d %s", chunk, r, keel_err_msg(&err));
		assert_non_null(strstr(keel_err_msg(&err), "a valid record follows"));
	}
	flip_byte(path, at + 8 + 3); /* undo */
	assert_int_equal(open_chunked(f->dir, 64, false, &w, &rec, &err), 0);
	check_range(&rec, 1, 40, term_one);
	keel_wal_recovered_free(&rec);
	keel_wal_close(w);

	/* 2: a copy of the first record placed 20 KiB after the end (a lost stretch). */
	uint8_t first[512];
	fd = open(path, O_RDWR);
	assert_int_equal(pread(fd, first, sizeof(first), 40), (ssize_t)sizeof(first));
	uint32_t len;
	memcpy(&len, first, 4);
	size_t total = (8 + len + 7) & ~(size_t)7;
	assert_true(total <= sizeof(first));
	assert_int_equal(pwrite(fd, first, total, end + 20480), (ssize_t)total);
	close(fd);
	for (size_t chunk = CHUNK_FIRST; chunk <= CHUNK_LAST; chunk += 16) {
		assert_int_equal(open_chunked(f->dir, chunk, false, &w, &rec, &err), -KEEL_ECORRUPT);
		assert_non_null(strstr(keel_err_msg(&err), "records end here, but a valid record follows"));
	}
	assert_true(records_end(path) > end + 20480); /* untouched */
}

/* drop_committed_data: entries at or below the commit index come back without their data but
 * with their length, configuration entries (every 7th here) with theirs, the uncommitted tail
 * whole; the 5,000-byte entry (committed) too. */
static void wal_drop_committed_data_keeps_only_places_and_conf_entries(void **state)
{
	struct fixture *f = *state;
	write_log(f->dir);
	for (size_t chunk = 0; chunk <= 256; chunk += 64) {
		struct keel_wal *w;
		struct keel_wal_recovered rec;
		struct keel_err err = {0};
		assert_int_equal(open_chunked(f->dir, chunk, true, &w, &rec, &err), 0);
		assert_int_equal(rec.n_entries, 90);
		for (size_t i = 0; i < rec.n_entries; i++) {
			const struct keel_raft_entry *e = &rec.entries[i];
			uint64_t term = e->index >= 75 ? 2 : 1;
			assert_int_equal(e->index, i + 1);
			assert_int_equal(e->term, term);
			if (e->index == 61) {
				assert_int_equal(e->len, 5000);
				assert_null(e->data);
			} else if (e->index > 70 || e->type == KEEL_RAFT_ENTRY_CONF) {
				check_entry(e, e->index, term);
			} else {
				assert_int_equal(e->len, data_len(e->index, term));
				assert_null(e->data);
			}
		}
		keel_wal_recovered_free(&rec);
		/* What was dropped reads back whole. */
		struct keel_raft_entry *ents;
		size_t n;
		void *data;
		assert_int_equal(keel_wal_read(w, 1, 70, SIZE_MAX, &ents, &n, &data, &err), 0);
		assert_int_equal(n, 70);
		for (size_t i = 0; i < n; i++)
			if (ents[i].index != 61)
				check_entry(&ents[i], i + 1, 1);
		keel_free(ents);
		keel_free(data);
		keel_wal_close(w);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(wal_replay_in_small_chunks_matches_a_whole_read, setup, teardown),
		cmocka_unit_test_setup_teardown(wal_torn_tail_at_any_chunk_boundary_is_repaired, setup, teardown),
		cmocka_unit_test_setup_teardown(wal_corruption_is_found_with_any_chunk_size, setup, teardown),
		cmocka_unit_test_setup_teardown(wal_drop_committed_data_keeps_only_places_and_conf_entries, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
