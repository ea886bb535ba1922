/* Snapshots (save, load, damage, atomicity), the command codec (round trips, malformed input),
 * and the store at scale: 100k keys and the memory they take. */
#include "test_kv_util.h"

#include <errno.h>
#include <malloc.h>

#include "base/crc32c.h"
#include "base/errors.h"
#include "base/fault.h"

static struct keel_buf save(const struct keel_kv_store *s)
{
	struct keel_buf b = KEEL_BUF_INIT;
	assert_int_equal(keel_kv_store_save(s, kvt_save_to_buf, &b, NULL), 0);
	return b;
}

static int load(struct keel_kv_store *s, const void *data, size_t len, size_t step)
{
	struct kvt_src in = {data, len, step, 0};
	struct keel_err err;
	return keel_kv_store_load(s, kvt_read_from, &in, &err);
}

/* A store with a bit of everything: directories, hidden nodes, TTLs on keys and directories,
 * history with refresh, delete and expire events, counters. */
static struct keel_kv_store *varied_store(uint64_t seed)
{
	struct keel_kv_store_opts o = {.hash_seed = seed};
	struct keel_kv_store *s;
	assert_int_equal(keel_kv_store_new(&o, &s), 0);
	KVT_OK(s, KV_PUT("/a/b/c", "1"));
	KVT_OK(s, KV_PUT("/a/_hidden", "h"));
	KVT_OK(s, KV_PUT("/_top/x", "y"), .has_ttl = true, .ttl = 100);
	KVT_OK(s, KV_PUT("/t/k", "v"), .has_ttl = true, .ttl = 5);
	KVT_OK(s, KV_PUTX("/t", "", 1), .dir = true, .has_ttl = true, .ttl = 50);
	KVT_OK(s, KV_PUTX("/t/k", "", 1), .refresh = true, .has_ttl = true, .ttl = 7);
	KVT_OK(s, KV_PUT("/gone", "x"), .has_ttl = true, .ttl = 1);
	KVT_OK(s, KV_PUT("/empty", ""), .dir = true);
	KVT_OK(s, KV_REQ(KEEL_KV_PUT, "/bin"), .value = "\0\1\2\xff", .value_len = 4,
	       .prev_exist = -1);
	for (int i = 0; i < 30; i++)
		KVT_OK(s, KV_POST("/queue", "job"));
	KVT_OK(s, KV_DEL("/queue/00000000000000000011"));
	KVT_OK(s, .method = KEEL_KV_SYNC, .time = T0 + 2 * SEC);
	free(kvt_get(s, "/nope", false, false, T0));
	return s;
}

static void a_saved_store_loads_back_equal(void **state)
{
	struct keel_kv_store *a = varied_store(1);
	struct keel_buf snap = save(a);
	/* Another hash seed: a different table layout, the same state. */
	struct keel_kv_store *b = varied_store(99);
	KVT_OK(b, KV_PUT("/junk", "replaced by the load"));
	assert_int_equal(load(b, snap.data, snap.len, 0), 0);
	kvt_check_store(b);
	assert_int_equal(keel_kv_store_index(b), keel_kv_store_index(a));
	assert_int_equal(keel_kv_store_node_count(b), keel_kv_store_node_count(a));
	/* Equal states save to equal bytes. */
	struct keel_buf again = save(b);
	assert_int_equal(again.len, snap.len);
	assert_memory_equal(again.data, snap.data, snap.len);
	/* The full recursive GET, hidden nodes and counters match. */
	const char *paths[] = {"/", "/a/_hidden", "/_top", "/t"};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		char *x = kvt_get(a, paths[i], true, true, T0 + 3 * SEC);
		char *y = kvt_get(b, paths[i], true, true, T0 + 3 * SEC);
		assert_string_equal(x, y);
		free(x);
		free(y);
	}
	struct keel_buf sa = KEEL_BUF_INIT, sb = KEEL_BUF_INIT;
	assert_int_equal(keel_kv_store_stats_json(a, &sa), 0);
	assert_int_equal(keel_kv_store_stats_json(b, &sb), 0);
	assert_string_equal(sa.data, sb.data);
	/* The rebuilt TTL heap expires the same things the same way. */
	KVT_OK(a, .method = KEEL_KV_SYNC, .time = T0 + 60 * SEC);
	KVT_OK(b, .method = KEEL_KV_SYNC, .time = T0 + 60 * SEC);
	keel_buf_free(&again);
	struct keel_buf xa = save(a), xb = save(b);
	assert_int_equal(xa.len, xb.len);
	assert_memory_equal(xa.data, xb.data, xa.len);
	keel_buf_free(&xa);
	keel_buf_free(&xb);
	keel_buf_free(&sa);
	keel_buf_free(&sb);
	keel_buf_free(&snap);
	keel_kv_store_free(a);
	keel_kv_store_free(b);
}

static void loading_reads_any_chunking(void **state)
{
	struct keel_kv_store *a = varied_store(1);
	struct keel_buf snap = save(a);
	for (size_t step = 1; step < 40; step += 13) {
		struct keel_kv_store *b = kvt_store();
		assert_int_equal(load(b, snap.data, snap.len, step), 0);
		struct keel_buf again = save(b);
		assert_memory_equal(again.data, snap.data, snap.len);
		keel_buf_free(&again);
		keel_kv_store_free(b);
	}
	keel_buf_free(&snap);
	keel_kv_store_free(a);
}

static void damaged_snapshots_are_refused_and_change_nothing(void **state)
{
	struct keel_kv_store *a = varied_store(1);
	struct keel_buf snap = save(a);
	struct keel_kv_store *b = kvt_store();
	KVT_OK(b, KV_PUT("/mine", "stays"));
	struct keel_buf before = save(b);
	unsigned char *copy = malloc(snap.len + 1);
	/* Every truncation, a byte too many, and a flipped bit anywhere (the checksum). */
	for (size_t n = 0; n < snap.len; n++)
		assert_int_equal(load(b, snap.data, n, 0), -KEEL_ECORRUPT);
	memcpy(copy, snap.data, snap.len);
	copy[snap.len] = 0;
	assert_int_equal(load(b, copy, snap.len + 1, 0), -KEEL_ECORRUPT);
	for (size_t i = 0; i < snap.len; i++) {
		memcpy(copy, snap.data, snap.len);
		copy[i] ^= 0x10;
		assert_int_equal(load(b, copy, snap.len, 0), -KEEL_ECORRUPT);
	}
	struct keel_buf after = save(b);
	assert_int_equal(after.len, before.len);
	assert_memory_equal(after.data, before.data, before.len);
	/* A read error is passed on. */
	struct kvt_src in = {(const unsigned char *)snap.data, snap.len, 0, -EIO};
	struct keel_err err;
	assert_int_equal(keel_kv_store_load(b, kvt_read_from, &in, &err), -EIO);
	free(copy);
	keel_buf_free(&after);
	keel_buf_free(&before);
	keel_buf_free(&snap);
	keel_kv_store_free(a);
	keel_kv_store_free(b);
}

/* Change a byte and fix the checksum, so the loader's own checks are what stands. */
static void reseal(unsigned char *p, size_t len)
{
	uint32_t crc = keel_crc32c(0, p, len - 4);
	for (int i = 0; i < 4; i++)
		p[len - 4 + i] = (unsigned char)(crc >> (8 * i));
}

static void resealed_damage_never_breaks_the_store(void **state)
{
	struct keel_kv_store *a = varied_store(1);
	struct keel_buf snap = save(a);
	unsigned char *copy = malloc(snap.len);
	static const unsigned char vals[] = {0x00, 0x01, 0x02, 0x2f, 0x7f, 0x80, 0xff};
	int loaded = 0, refused = 0;
	for (size_t i = 8; i + 4 < snap.len; i++) {
		for (size_t v = 0; v < sizeof(vals); v++) {
			memcpy(copy, snap.data, snap.len);
			if (copy[i] == vals[v])
				continue;
			copy[i] = vals[v];
			reseal(copy, snap.len);
			struct keel_kv_store *b = kvt_store();
			int rc = load(b, copy, snap.len, 0);
			assert_true(rc == 0 || rc == -KEEL_ECORRUPT);
			kvt_check_store(b);
			if (rc == 0) {
				loaded++;
				/* Whatever loaded works. */
				KVT_OK(b, KV_PUT("/after", "load"));
				KVT_OK(b, .method = KEEL_KV_SYNC, .time = T0 + 1000 * SEC);
				free(kvt_get(b, "/", true, true, T0));
				kvt_check_store(b);
			} else {
				refused++;
			}
			keel_kv_store_free(b);
		}
	}
	assert_true(refused > 0);
	assert_true(loaded > 0);
	free(copy);
	keel_buf_free(&snap);
	keel_kv_store_free(a);
}

static void a_load_that_runs_out_of_memory_changes_nothing(void **state)
{
	struct keel_kv_store *a = varied_store(1);
	struct keel_buf snap = save(a);
	struct keel_kv_store *b = kvt_store();
	KVT_OK(b, KV_PUT("/mine", "stays"), .has_ttl = true, .ttl = 9);
	struct keel_buf before = save(b);
	unsigned skip = 0;
	for (;; skip++) {
		keel_fault_arm(KEEL_FAULT_ALLOC, skip, 1, ENOMEM);
		int rc = load(b, snap.data, snap.len, 0);
		keel_fault_reset();
		kvt_check_store(b);
		if (rc == 0)
			break;
		assert_int_equal(rc, -ENOMEM);
		struct keel_buf after = save(b);
		assert_int_equal(after.len, before.len);
		assert_memory_equal(after.data, before.data, before.len);
		keel_buf_free(&after);
	}
	assert_true(skip > 10);
	struct keel_buf again = save(b);
	assert_memory_equal(again.data, snap.data, snap.len);
	keel_buf_free(&again);
	keel_buf_free(&before);
	keel_buf_free(&snap);
	keel_kv_store_free(a);
	keel_kv_store_free(b);
}

struct sink {
	size_t taken, limit;
};

static int limited_write(void *ud, const void *data, size_t len)
{
	struct sink *k = ud;
	if (k->taken + len > k->limit)
		return -ENOSPC;
	k->taken += len;
	return 0;
}

static void a_failing_write_stops_the_save(void **state)
{
	struct keel_kv_store *s = kvt_store();
	char key[32];
	for (int i = 0; i < 5000; i++) {
		int n = snprintf(key, sizeof(key), "/k/%d", i);
		KVT_OK(s, .method = KEEL_KV_PUT, .path = key, .path_len = (size_t)n,
		       KV_VAL("a value that takes some room"), .prev_exist = -1);
	}
	struct sink k = {0, 100000};
	struct keel_err err;
	assert_int_equal(keel_kv_store_save(s, limited_write, &k, &err), -ENOSPC);
	/* Written in 64 KiB pieces. */
	assert_int_equal(k.taken, 65536);
	keel_kv_store_free(s);
}

/* ---- commands ------------------------------------------------------------------------------ */

static void assert_req_equal(const struct keel_kv_req *a, const struct keel_kv_req *b)
{
	assert_int_equal(a->method, b->method);
	assert_int_equal(a->path_len, b->path_len);
	assert_memory_equal(a->path, b->path, a->path_len);
	assert_int_equal(a->value_len, b->value_len);
	if (a->value_len)
		assert_memory_equal(a->value, b->value, a->value_len);
	assert_int_equal(a->prev_value_len, b->prev_value_len);
	if (a->prev_value_len)
		assert_memory_equal(a->prev_value, b->prev_value, a->prev_value_len);
	assert_int_equal(a->prev_index, b->prev_index);
	assert_int_equal(a->has_ttl, b->has_ttl);
	assert_int_equal(a->ttl, b->ttl);
	assert_true(a->time == b->time);
	assert_int_equal(a->prev_exist, b->prev_exist);
	assert_int_equal(a->dir, b->dir);
	assert_int_equal(a->recursive, b->recursive);
	assert_int_equal(a->sorted, b->sorted);
	assert_int_equal(a->refresh, b->refresh);
}

static const struct keel_kv_req sample_reqs[] = {
	{KV_PUT("/message", "Hello world"), .time = T0},
	{KV_PUTX("/a/b", "", 1), .dir = true, .has_ttl = true, .ttl = 0, .time = -5},
	{KV_PUTX("/x", "v", 0), KV_PREV("old"), .prev_index = UINT64_MAX, .time = INT64_MIN},
	{KV_PUT("/k", ""), .refresh = true, .has_ttl = true, .ttl = UINT64_MAX, .time = INT64_MAX},
	{KV_POST("/queue", "job")},
	{KV_DEL("/dir"), .recursive = true, .dir = true, .time = 1},
	{KV_QGET("/"), .recursive = true, .sorted = true},
	{.method = KEEL_KV_SYNC, .time = T0, .prev_exist = -1},
	{.method = KEEL_KV_PUT, .path = "/n\0l", .path_len = 4, .value = "\0", .value_len = 1,
	 .prev_exist = -1},
};

static void commands_round_trip(void **state)
{
	for (size_t i = 0; i < sizeof(sample_reqs) / sizeof(sample_reqs[0]); i++) {
		struct keel_buf b = KEEL_BUF_INIT, again = KEEL_BUF_INIT;
		struct keel_kv_req d;
		assert_int_equal(keel_kv_cmd_encode(&sample_reqs[i], &b), 0);
		assert_int_equal(keel_kv_cmd_decode(b.data, b.len, &d), 0);
		assert_req_equal(&sample_reqs[i], &d);
		assert_int_equal(keel_kv_cmd_encode(&d, &again), 0);
		assert_int_equal(again.len, b.len);
		assert_memory_equal(again.data, b.data, b.len);
		keel_buf_free(&b);
		keel_buf_free(&again);
	}
	/* Compact: a small set costs a handful of bytes beyond its path and value. */
	struct keel_buf b = KEEL_BUF_INIT;
	assert_int_equal(keel_kv_cmd_encode(&sample_reqs[0], &b), 0);
	assert_int_equal(b.len, 2 + 1 + 8 + 1 + 8 + 1 + 11);
	keel_buf_free(&b);
}

static void decoded_commands_apply_like_the_originals(void **state)
{
	struct keel_kv_store *a = kvt_store(), *b = kvt_store();
	for (size_t i = 0; i < sizeof(sample_reqs) / sizeof(sample_reqs[0]); i++) {
		struct keel_buf enc = KEEL_BUF_INIT;
		struct keel_kv_req d, r = sample_reqs[i];
		assert_int_equal(keel_kv_cmd_encode(&r, &enc), 0);
		assert_int_equal(keel_kv_cmd_decode(enc.data, enc.len, &d), 0);
		char *x = kvt_apply(a, r), *y = kvt_apply(b, d);
		assert_string_equal(x, y);
		free(x);
		free(y);
		keel_buf_free(&enc);
	}
	struct keel_buf sa = save(a), sb = save(b);
	assert_int_equal(sa.len, sb.len);
	assert_memory_equal(sa.data, sb.data, sa.len);
	keel_buf_free(&sa);
	keel_buf_free(&sb);
	keel_kv_store_free(a);
	keel_kv_store_free(b);
}

static int decode_hex(const char *hex, unsigned char *out)
{
	int n = 0;
	for (; hex[0] && hex[1]; hex += 2)
		out[n++] = (unsigned char)strtoul((char[]){hex[0], hex[1], 0}, NULL, 16);
	return n;
}

static void malformed_commands_are_refused(void **state)
{
	struct keel_kv_req d = {0};
	/* Every truncation of every sample. */
	for (size_t i = 0; i < sizeof(sample_reqs) / sizeof(sample_reqs[0]); i++) {
		struct keel_buf b = KEEL_BUF_INIT;
		assert_int_equal(keel_kv_cmd_encode(&sample_reqs[i], &b), 0);
		for (size_t n = 0; n < b.len; n++)
			assert_int_equal(keel_kv_cmd_decode(b.data, n, &d), -KEEL_ECORRUPT);
		keel_buf_free(&b);
	}
	/* Hand-made bad ones: version 1, PUT (1), flags, time 0, path "/k". */
	static const char *const bad[] = {
		"0201" "00" "0000000000000000" "022f6b",         /* version 2 */
		"0100" "00" "0000000000000000" "022f6b",         /* method 0 */
		"0106" "00" "0000000000000000" "022f6b",         /* method 6 */
		"0101" "8008" "0000000000000000" "022f6b",       /* unknown flag bit 10 */
		"0101" "10" "0000000000000000" "022f6b",         /* prevExist=true without "set" */
		"0101" "8000" "0000000000000000" "022f6b",       /* flags varint padded with zeros */
		"0101" "00" "0000000000000000" "82002f6b",       /* path length padded */
		"0101" "00" "0000000000000000" "032f6b",         /* path longer than the input */
		"0101" "00" "0000000000000000" "022f6b00",       /* a byte too many */
		"0101" "01" "0000000000000000" "022f6b00",       /* value flag, empty value */
		"0101" "20" "0000000000000000" "022f6b00",       /* prevValue flag, empty */
		"0101" "40" "0000000000000000" "022f6b00",       /* prevIndex flag, zero */
		"0101" "02" "0000000000000000" "022f6b"
		"ffffffffffffffffff7f",                          /* ttl varint overflows */
		"0101" "02" "0000000000000000" "022f6b"
		"8080808080808080808001",                        /* ttl varint of 11 bytes */
		"0101" "00" "0000000000000000" "ffffffffffffffffff01", /* huge path length */
	};
	unsigned char buf[64];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int n = decode_hex(bad[i], buf);
		if (keel_kv_cmd_decode(buf, (size_t)n, &d) != -KEEL_ECORRUPT)
			fail_msg("accepted bad command %zu: %s", i, bad[i]);
	}
	/* And the good one they are made from. */
	int n = decode_hex("0101" "00" "0000000000000000" "022f6b", buf);
	assert_int_equal(keel_kv_cmd_decode(buf, (size_t)n, &d), 0);
	assert_int_equal(d.method, KEEL_KV_PUT);
	assert_int_equal(d.path_len, 2);
	assert_int_equal(d.prev_exist, KEEL_KV_PREV_EXIST_UNSET);
	assert_int_equal(keel_kv_cmd_decode(NULL, 0, &d), -KEEL_ECORRUPT);
	struct keel_buf b = KEEL_BUF_INIT;
	struct keel_kv_req r = {KV_PUT("/k", "v")};
	r.method = 9;
	assert_int_equal(keel_kv_cmd_encode(&r, &b), -EINVAL);
	keel_buf_free(&b);
}

/* ---- scale -------------------------------------------------------------------------------- */

static size_t heap_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();
	return mi.uordblks + mi.hblkhd;
}

static void fill(struct keel_kv_store *s, int n, bool nested)
{
	char key[64], val[32];
	for (int i = 0; i < n; i++) {
		int k = nested ? snprintf(key, sizeof(key), "/registry/d%03d/key%06d", i % 1000, i)
			       : snprintf(key, sizeof(key), "/registry/key%06d", i);
		int v = snprintf(val, sizeof(val), "value%06d", i);
		KVT_OK(s, .method = KEEL_KV_PUT, .path = key, .path_len = (size_t)k, .value = val,
		       .value_len = (size_t)v, .prev_exist = -1);
	}
}

static void a_hundred_thousand_keys_stay_small(void **state)
{
	enum { N = 100000 };
	for (int nested = 0; nested < 2; nested++) {
		size_t before = heap_in_use();
		struct keel_kv_store *s = kvt_store();
		fill(s, N, nested);
		/* The history holds 1000 events whatever the size; leave it out of per-key cost. */
		size_t used = heap_in_use() - before;
		size_t own = keel_kv_store_mem_bytes(s);
		assert_int_equal(keel_kv_store_node_count(s), N + 1 + (nested ? 1000 : 0));
		print_message("# %s: %zu bytes/key asked of malloc, %zu bytes/key from malloc's "
			      "view (history included)\n",
			      nested ? "1000 dirs x 100 keys" : "one dir of 100k keys",
			      own / N, used / N);
		assert_true(own / N < 160);
		if (used) /* mallinfo2 reads nothing under some sanitizers */
			assert_true(used / N < 256);
		/* Reads stay right at this size. */
		KVT_GET(s, nested ? "/registry/d042/key000042" : "/registry/key000042", false,
			false,
			nested ? "{\"action\":\"get\",\"node\":{\"key\":\"/registry/d042/key000042\","
				 "\"value\":\"value000042\",\"modifiedIndex\":43,"
				 "\"createdIndex\":43}}\n"
			       : "{\"action\":\"get\",\"node\":{\"key\":\"/registry/key000042\","
				 "\"value\":\"value000042\",\"modifiedIndex\":43,"
				 "\"createdIndex\":43}}\n");
		kvt_check_store(s);
		/* Snapshot round trip at scale. */
		struct keel_buf snap = save(s);
		struct keel_kv_store *t = kvt_store();
		assert_int_equal(load(t, snap.data, snap.len, 0), 0);
		struct keel_buf again = save(t);
		assert_int_equal(again.len, snap.len);
		assert_memory_equal(again.data, snap.data, snap.len);
		keel_buf_free(&again);
		keel_buf_free(&snap);
		keel_kv_store_free(t);
		KVT_OK(s, KV_DEL("/registry"), .recursive = true);
		assert_int_equal(keel_kv_store_node_count(s), 0);
		keel_kv_store_free(s);
	}
}

static int teardown_faults(void **state)
{
	keel_fault_reset();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_saved_store_loads_back_equal),
		cmocka_unit_test(loading_reads_any_chunking),
		cmocka_unit_test(damaged_snapshots_are_refused_and_change_nothing),
		cmocka_unit_test(resealed_damage_never_breaks_the_store),
		cmocka_unit_test_teardown(a_load_that_runs_out_of_memory_changes_nothing,
					  teardown_faults),
		cmocka_unit_test(a_failing_write_stops_the_save),
		cmocka_unit_test(commands_round_trip),
		cmocka_unit_test(decoded_commands_apply_like_the_originals),
		cmocka_unit_test(malformed_commands_are_refused),
		cmocka_unit_test(a_hundred_thousand_keys_stay_small),
	};
	return cmocka_run_group_tests_name("kv/snap", tests, NULL, NULL);
}
