/* The journal (lib/init/journal*.c): records round-trip byte for byte, long and multi-line
 * messages are split, rotation keeps the directory within its limits, damage is skipped with the
 * rest readable, the filters and -n/--since seek, follow sees new records across rotations, and
 * the "<N>" prefix and --since time syntax parse as journald/journalctl do. */
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
#include <time.h>
#include <unistd.h>

#include "base/fault.h"
#include "init/journal-internal.h"
#include "init/journal.h"

struct fixture {
	char dir[64];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f || test_make_tmpdir("journal", f->dir, sizeof(f->dir)) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	keel_fault_reset();
	test_remove_tree(f->dir);
	free(f);
	return 0;
}

static struct keel_journal *open_w(const char *dir, uint64_t max_file, uint64_t max_use)
{
	struct keel_journal_config cfg = {.dir = dir, .max_file_size = max_file, .max_use = max_use,
					  .index_every = 512};
	struct keel_journal *j = NULL;
	struct keel_err err = {0};
	assert_int_equal(keel_journal_open(&cfg, &j, &err), 0);
	return j;
}

static struct keel_journal_reader *open_r(const char *dir, const struct keel_journal_filter *flt,
					  bool follow)
{
	struct keel_journal_reader *r = NULL;
	struct keel_err err = {0};
	assert_int_equal(keel_journal_reader_open(dir, flt, follow, &r, &err), 0);
	return r;
}

static void put(struct keel_journal *j, const char *unit, int prio, uint64_t rt, const char *fmt, ...)
	KEEL_PRINTF(5, 6);
static void put(struct keel_journal *j, const char *unit, int prio, uint64_t rt, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	assert_int_equal(keel_journal_append(j, unit, prio, 0, rt, 0, msg, (size_t)n), 0);
}

/* Read every record the reader yields as "unit:msg" lines into out (caller frees). */
static size_t drain(struct keel_journal_reader *r, char ***out)
{
	size_t n = 0;
	char **v = NULL;
	struct keel_journal_entry e;
	int rc;
	while ((rc = keel_journal_reader_next(r, &e)) == 1) {
		v = realloc(v, (n + 1) * sizeof(*v));
		char *s = malloc(strlen(e.unit) + e.len + 2);
		sprintf(s, "%s:", e.unit);
		memcpy(s + strlen(e.unit) + 1, e.msg, e.len);
		s[strlen(e.unit) + 1 + e.len] = '\0';
		v[n++] = s;
	}
	assert_int_equal(rc, 0);
	*out = v;
	return n;
}

static void free_lines(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void only_data_file(const char *dir, char *out, size_t size)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *e;
	int found = 0;
	while ((e = readdir(d))) {
		uint64_t seq;
		if (keel__jname_parse(e->d_name, &seq) == 0) {
			snprintf(out, size, "%s/%s", dir, e->d_name);
			found++;
		}
	}
	closedir(d);
	assert_int_equal(found, 1);
}

static uint64_t dir_bytes(const char *dir, int *ret_files)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *e;
	uint64_t total = 0;
	int files = 0;
	while ((e = readdir(d))) {
		uint64_t seq;
		int kind = keel__jname_parse(e->d_name, &seq);
		if (kind < 0)
			continue;
		char p[600];
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		struct stat st;
		assert_int_equal(stat(p, &st), 0);
		total += (uint64_t)st.st_size;
		files += kind == 0;
	}
	closedir(d);
	*ret_files = files;
	return total;
}

static void test_round_trip(void **state)
{
	struct fixture *f = *state;
	struct keel_journal *j = open_w(f->dir, 0, 64 << 20);
	const char bin[] = {'a', 0, 'b', '\r', (char)0xff, '\t'};
	assert_int_equal(keel_journal_append_ident(j, "a.service", "daemon", 3, 1234, 1700000000123456ull,
						   777, bin, sizeof(bin)), 0);
	assert_int_equal(keel_journal_append(j, "b.service", 6, 0, 0, 0, "", 0), 0);
	assert_int_equal(keel_journal_append(j, "b.service", 7, 0, 0, 0, "x\ny\n", 4), 0);
	assert_true(keel_journal_pending(j));
	assert_int_equal(keel_journal_flush(j), 0);
	assert_false(keel_journal_pending(j));

	/* bad arguments */
	assert_int_equal(keel_journal_append(j, "", 6, 0, 0, 0, "x", 1), -EINVAL);
	assert_int_equal(keel_journal_append(j, "a.service", 8, 0, 0, 0, "x", 1), -EINVAL);
	assert_int_equal(keel_journal_append(j, "a.service", -1, 0, 0, 0, "x", 1), -EINVAL);

	/* flushed records are visible to a reader while the writer is open */
	struct keel_journal_reader *r = open_r(f->dir, NULL, false);
	struct keel_journal_entry e;
	assert_int_equal(keel_journal_reader_next(r, &e), 1);
	assert_string_equal(e.unit, "a.service");
	assert_string_equal(e.identifier, "daemon");
	assert_int_equal(e.pid, 1234);
	assert_int_equal(e.priority, 3);
	assert_int_equal(e.realtime_usec, 1700000000123456ull);
	assert_int_equal(e.mono_usec, 777);
	assert_int_equal(e.len, sizeof(bin));
	assert_memory_equal(e.msg, bin, sizeof(bin));
	assert_int_equal(strlen(e.boot_id), 32);
	char host[128] = "";
	gethostname(host, sizeof(host));
	assert_string_equal(e.hostname, host);
	assert_int_equal(keel_journal_reader_next(r, &e), 1);
	assert_string_equal(e.unit, "b.service");
	assert_string_equal(e.identifier, "");
	assert_int_equal(e.len, 0);
	assert_true(e.realtime_usec > 1700000000000000ull);
	assert_int_equal(keel_journal_reader_next(r, &e), 1);
	assert_int_equal(e.len, 1);
	assert_memory_equal(e.msg, "x", 1);
	assert_int_equal(keel_journal_reader_next(r, &e), 1);
	assert_memory_equal(e.msg, "y", 1);
	assert_int_equal(keel_journal_reader_next(r, &e), 0);
	assert_int_equal(keel_journal_reader_skipped(r), 0);
	keel_journal_reader_free(r);
	keel_journal_close(j);
}

static void test_second_writer_refused(void **state)
{
	struct fixture *f = *state;
	struct keel_journal *j = open_w(f->dir, 0, 64 << 20);
	struct keel_journal_config cfg = {.dir = f->dir};
	struct keel_journal *j2 = NULL;
	struct keel_err err = {0};
	assert_int_equal(keel_journal_open(&cfg, &j2, &err), -EBUSY);
	assert_null(j2);
	keel_journal_close(j);
	assert_int_equal(keel_journal_open(&cfg, &j2, &err), 0);
	keel_journal_close(j2);
}

static void test_long_lines_split(void **state)
{
	struct fixture *f = *state;
	struct keel_journal *j = open_w(f->dir, 0, 64 << 20);
	size_t len = 100000;
	char *big = malloc(len + 1);
	for (size_t i = 0; i < len; i++)
		big[i] = (char)('a' + i % 26);
	big[len] = '\n';
	assert_int_equal(keel_journal_append(j, "big.service", 6, 0, 0, 0, big, len + 1), 0);
	keel_journal_close(j);

	struct keel_journal_reader *r = open_r(f->dir, NULL, false);
	struct keel_journal_entry e;
	size_t got = 0, parts = 0;
	while (keel_journal_reader_next(r, &e) == 1) {
		assert_true(e.len <= KEEL_JOURNAL_LINE_MAX_DEFAULT);
		assert_memory_equal(e.msg, big + got, e.len);
		got += e.len;
		parts++;
	}
	assert_int_equal(got, len);
	assert_int_equal(parts, 3); /* 48K + 48K + the rest */
	keel_journal_reader_free(r);
	free(big);
}

static void test_rotation_and_limits(void **state)
{
	struct fixture *f = *state;
	const uint64_t max_file = 4096, max_use = 20000;
	struct keel_journal_config cfg = {.dir = f->dir, .max_file_size = max_file, .max_use = max_use,
					  .max_files = 100, .flush_bytes = 1, .index_every = 512};
	struct keel_journal *j = NULL;
	assert_int_equal(keel_journal_open(&cfg, &j, NULL), 0);
	int files = 0;
	for (int i = 0; i < 2000; i++) {
		put(j, "rot.service", 6, 0, "record %04d", i);
		uint64_t total = dir_bytes(f->dir, &files);
		assert_true(total <= max_use);
	}
	assert_true(files >= 3);
	keel_journal_close(j);

	/* what is left is the newest records, complete and in order up to the last one */
	struct keel_journal_reader *r = open_r(f->dir, NULL, false);
	char **v;
	size_t n = drain(r, &v);
	assert_true(n > 100 && n < 2000);
	for (size_t i = 0; i < n; i++) {
		char want[64];
		snprintf(want, sizeof(want), "rot.service:record %04zu", 2000 - n + i);
		assert_string_equal(v[i], want);
	}
	free_lines(v, n);
	keel_journal_reader_free(r);

	/* max_files */
	cfg.max_files = 2;
	assert_int_equal(keel_journal_open(&cfg, &j, NULL), 0);
	for (int i = 0; i < 500; i++)
		put(j, "rot.service", 6, 0, "again %04d", i);
	keel_journal_close(j);
	dir_bytes(f->dir, &files);
	assert_true(files <= 2);
}

static void test_torn_tail_skipped(void **state)
{
	struct fixture *f = *state;
	struct keel_journal *j = open_w(f->dir, 0, 64 << 20);
	for (int i = 0; i < 10; i++)
		put(j, "t.service", 6, 0, "rec %d", i);
	keel_journal_close(j);
	char path[400];
	only_data_file(f->dir, path, sizeof(path));
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(truncate(path, st.st_size - 5), 0); /* the crash tore the last record */

	struct keel_journal_reader *r = open_r(f->dir, NULL, false);
	char **v;
	size_t n = drain(r, &v);
	assert_int_equal(n, 9);
	assert_string_equal(v[8], "t.service:rec 8");
	free_lines(v, n);
	keel_journal_reader_free(r);

	/* the next writer starts a new file: its records follow, the torn bytes are skipped */
	j = open_w(f->dir, 0, 64 << 20);
	put(j, "t.service", 6, 0, "after");
	keel_journal_close(j);
	r = open_r(f->dir, NULL, false);
	n = drain(r, &v);
	assert_int_equal(n, 10);
	assert_string_equal(v[9], "t.service:after");
	assert_true(keel_journal_reader_skipped(r) > 0);
	free_lines(v, n);
	keel_journal_reader_free(r);
}

/* Damage one byte of record k (at byte within of the record) and check the others survive. */
static void corrupt_and_check(const char *dir, int k, size_t within)
{
	char path[400];
	only_data_file(dir, path, sizeof(path));
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	/* walk the frames to record k */
	uint64_t off = KEEL_JHDR_SIZE;
	for (int i = 0; i < k; i++) {
		uint8_t fr[KEEL_JREC_FRAME];
		assert_int_equal(pread(fd, fr, sizeof(fr), (off_t)off), sizeof(fr));
		off += KEEL_JREC_FRAME + keel__get32(fr + 4);
	}
	uint8_t b;
	assert_int_equal(pread(fd, &b, 1, (off_t)(off + within)), 1);
	b ^= 0x5a;
	assert_int_equal(pwrite(fd, &b, 1, (off_t)(off + within)), 1);
	close(fd);

	struct keel_journal_reader *r = open_r(dir, NULL, false);
	char **v;
	size_t n = drain(r, &v);
	assert_int_equal(n, 19);
	for (size_t i = 0; i < n; i++) {
		char want[64];
		snprintf(want, sizeof(want), "c.service:message number %zu", i < (size_t)k ? i : i + 1);
		assert_string_equal(v[i], want);
	}
	assert_true(keel_journal_reader_skipped(r) > 0);
	free_lines(v, n);
	keel_journal_reader_free(r);
}

static void write_twenty(const char *dir)
{
	struct keel_journal *j = open_w(dir, 0, 64 << 20);
	for (int i = 0; i < 20; i++)
		put(j, "c.service", 6, 0, "message number %d", i);
	keel_journal_close(j);
}

static void test_corrupt_payload_skipped(void **state)
{
	struct fixture *f = *state;
	write_twenty(f->dir);
	corrupt_and_check(f->dir, 7, KEEL_JREC_FRAME + 30);
}

static void test_corrupt_length_skipped(void **state)
{
	struct fixture *f = *state;
	write_twenty(f->dir);
	corrupt_and_check(f->dir, 3, 5); /* the length field: resync by magic + CRC */
}

static void test_corrupt_magic_first_record(void **state)
{
	struct fixture *f = *state;
	write_twenty(f->dir);
	corrupt_and_check(f->dir, 0, 0);
}

static void test_filters(void **state)
{
	struct fixture *f = *state;
	struct keel_journal *j = open_w(f->dir, 2048, 64 << 20);
	for (int i = 0; i < 300; i++)
		put(j, i % 3 == 0 ? "web.service" : i % 3 == 1 ? "db.service" : "web-worker.service",
		    i % 8, 1000000 + (uint64_t)i * 1000, "m%d", i);
	keel_journal_close(j);

	char *units[] = {"db.service", NULL};
	struct keel_journal_filter flt = {.units = units, .max_priority = -1};
	struct keel_journal_reader *r = open_r(f->dir, &flt, false);
	char **v;
	size_t n = drain(r, &v);
	assert_int_equal(n, 100);
	assert_string_equal(v[0], "db.service:m1");
	assert_string_equal(v[99], "db.service:m298");
	free_lines(v, n);
	keel_journal_reader_free(r);

	/* globs and several units */
	char *globs[] = {"web*", NULL};
	flt = (struct keel_journal_filter){.units = globs, .max_priority = -1};
	r = open_r(f->dir, &flt, false);
	n = drain(r, &v);
	assert_int_equal(n, 200);
	free_lines(v, n);
	keel_journal_reader_free(r);

	/* -p err: priorities 0..3 */
	flt = (struct keel_journal_filter){.max_priority = 3};
	r = open_r(f->dir, &flt, false);
	struct keel_journal_entry e;
	size_t count = 0;
	while (keel_journal_reader_next(r, &e) == 1) {
		assert_true(e.priority <= 3);
		count++;
	}
	assert_int_equal(count, 152); /* i % 8 <= 3 for i < 300 */
	keel_journal_reader_free(r);

	/* --since / --until (inclusive), across files, with seek points */
	flt = (struct keel_journal_filter){.max_priority = -1, .since_usec = 1000000 + 150 * 1000,
					   .until_usec = 1000000 + 160 * 1000};
	r = open_r(f->dir, &flt, false);
	n = drain(r, &v);
	assert_int_equal(n, 11);
	assert_string_equal(v[0], "web.service:m150");
	assert_string_equal(v[10], "db.service:m160");
	free_lines(v, n);
	keel_journal_reader_free(r);
}

static void test_tail(void **state)
{
	struct fixture *f = *state;
	struct keel_journal *j = open_w(f->dir, 4096, 64 << 20);
	for (int i = 0; i < 500; i++)
		put(j, i % 50 == 0 ? "rare.service" : "busy.service", 6, 1000000 + (uint64_t)i, "n%d", i);
	keel_journal_close(j);

	struct keel_journal_reader *r = open_r(f->dir, NULL, false);
	assert_int_equal(keel_journal_reader_tail(r, 5), 0);
	char **v;
	size_t n = drain(r, &v);
	assert_int_equal(n, 5);
	assert_string_equal(v[0], "busy.service:n495");
	assert_string_equal(v[4], "busy.service:n499");
	free_lines(v, n);
	keel_journal_reader_free(r);

	/* sparse matches, spread over several files and chunks */
	char *units[] = {"rare.service", NULL};
	struct keel_journal_filter flt = {.units = units, .max_priority = -1};
	r = open_r(f->dir, &flt, false);
	assert_int_equal(keel_journal_reader_tail(r, 4), 0);
	n = drain(r, &v);
	assert_int_equal(n, 4);
	assert_string_equal(v[0], "rare.service:n300");
	assert_string_equal(v[3], "rare.service:n450");
	free_lines(v, n);
	keel_journal_reader_free(r);

	/* more than there are: all of them */
	r = open_r(f->dir, &flt, false);
	assert_int_equal(keel_journal_reader_tail(r, 1000), 0);
	n = drain(r, &v);
	assert_int_equal(n, 10);
	assert_string_equal(v[0], "rare.service:n0");
	free_lines(v, n);
	keel_journal_reader_free(r);

	/* -n with --since: the last n of those since */
	flt = (struct keel_journal_filter){.max_priority = -1, .since_usec = 1000000 + 497};
	r = open_r(f->dir, &flt, false);
	assert_int_equal(keel_journal_reader_tail(r, 10), 0);
	n = drain(r, &v);
	assert_int_equal(n, 3);
	assert_string_equal(v[0], "busy.service:n497");
	free_lines(v, n);
	keel_journal_reader_free(r);

	/* n = 0: only what comes later */
	r = open_r(f->dir, NULL, false);
	assert_int_equal(keel_journal_reader_tail(r, 0), 0);
	n = drain(r, &v);
	assert_int_equal(n, 0);
	free(v);
	j = open_w(f->dir, 4096, 64 << 20);
	put(j, "late.service", 6, 0, "later");
	keel_journal_close(j);
	n = drain(r, &v);
	assert_int_equal(n, 1);
	assert_string_equal(v[0], "late.service:later");
	free_lines(v, n);
	keel_journal_reader_free(r);
}

static void test_follow_across_rotation(void **state)
{
	struct fixture *f = *state;
	struct keel_journal_config cfg = {.dir = f->dir, .max_file_size = 1024, .max_use = 1 << 20,
					  .index_every = 256};
	struct keel_journal *j = NULL;
	assert_int_equal(keel_journal_open(&cfg, &j, NULL), 0);
	put(j, "f.service", 6, 0, "first");
	assert_int_equal(keel_journal_flush(j), 0);

	struct keel_journal_reader *r = open_r(f->dir, NULL, true);
	assert_true(keel_journal_reader_fd(r) >= 0);
	assert_int_equal(keel_journal_reader_tail(r, 0), 0);
	struct keel_journal_entry e;
	assert_int_equal(keel_journal_reader_next(r, &e), 0);
	assert_int_equal(keel_journal_reader_wait(r, 0), 0); /* nothing changed since */

	int next = 0;
	for (int round = 0; round < 5; round++) {
		for (int i = 0; i < 20; i++)
			put(j, "f.service", 6, 0, "follow %03d", round * 20 + i); /* rotates every ~20 */
		assert_int_equal(keel_journal_flush(j), 0);
		assert_int_equal(keel_journal_reader_wait(r, 5000), 1);
		while (keel_journal_reader_next(r, &e) == 1) {
			char want[32];
			int n = snprintf(want, sizeof(want), "follow %03d", next++);
			assert_int_equal(e.len, (size_t)n);
			assert_memory_equal(e.msg, want, e.len);
		}
		assert_int_equal(next, (round + 1) * 20);
	}
	keel_journal_reader_free(r);
	keel_journal_close(j);
}

static void test_write_failure_keeps_records_whole(void **state)
{
	struct fixture *f = *state;
	struct keel_journal *j = open_w(f->dir, 0, 64 << 20);
	put(j, "w.service", 6, 0, "before");
	assert_int_equal(keel_journal_flush(j), 0);
	put(j, "w.service", 6, 0, "batched");
	keel_fault_arm_short(KEEL_FAULT_WRITE, 0, 1); /* the batch is torn in half */
	assert_true(keel_journal_flush(j) < 0);
	keel_fault_reset();
	assert_int_equal(keel_journal_flush(j), 0); /* retried whole */
	keel_journal_close(j);
	struct keel_journal_reader *r = open_r(f->dir, NULL, false);
	char **v;
	size_t n = drain(r, &v);
	assert_int_equal(n, 2);
	assert_string_equal(v[1], "w.service:batched");
	assert_int_equal(keel_journal_reader_skipped(r), 0);
	free_lines(v, n);
	keel_journal_reader_free(r);
}

static void test_failed_rotation_retried(void **state)
{
	struct fixture *f = *state;
	struct keel_journal *j = open_w(f->dir, 1024, 1 << 20);
	keel_fault_arm(KEEL_FAULT_OPEN, 0, 1, EIO); /* the next file cannot be created, once */
	int failed = 0;
	for (int i = 0; i < 50; i++) {
		char msg[32];
		int n = snprintf(msg, sizeof(msg), "r%02d", i);
		int r = keel_journal_append(j, "x.service", 6, 0, 0, 0, msg, (size_t)n);
		if (r < 0) {
			assert_int_equal(r, -EIO);
			failed = i;
		}
	}
	keel_fault_reset();
	assert_true(failed > 0);
	keel_journal_close(j);
	struct keel_journal_reader *r = open_r(f->dir, NULL, false);
	char **v;
	size_t n = drain(r, &v);
	assert_int_equal(n, 49); /* all but the one whose rotation failed */
	for (size_t i = 0; i < n; i++) {
		char want[32];
		snprintf(want, sizeof(want), "x.service:r%02zu", i < (size_t)failed ? i : i + 1);
		assert_string_equal(v[i], want);
	}
	free_lines(v, n);
	keel_journal_reader_free(r);
}

static int prefix(const char *s, int def, const char **rest)
{
	size_t len = strlen(s);
	const char *m = s;
	int p = keel_journal_prio_prefix(&m, &len, def);
	assert_int_equal(strlen(m), len);
	*rest = m;
	return p;
}

static void test_prio_prefix(void **state)
{
	(void)state;
	const char *rest;
	assert_int_equal(prefix("<3>disk on fire", 6, &rest), 3);
	assert_string_equal(rest, "disk on fire");
	assert_int_equal(prefix("<7>", 6, &rest), 7);
	assert_string_equal(rest, "");
	assert_int_equal(prefix("<03>x", 6, &rest), 3);
	assert_string_equal(rest, "x");
	assert_int_equal(prefix("<007>x", 6, &rest), 7);
	assert_string_equal(rest, "x");
	assert_int_equal(prefix("<0>x", 6, &rest), 0);
	/* not a level prefix: kept in the message */
	const char *kept[] = {"<8>x", "<13>x", "<x>y", "<3", "3>x", "<>x", "<0003>x", " <3>x", "<-1>x", "x"};
	for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
		assert_int_equal(prefix(kept[i], 5, &rest), 5);
		assert_string_equal(rest, kept[i]);
	}
	/* not NUL-terminated input */
	const char buf[] = {'<', '4', '>', 'a', 'b'};
	const char *m = buf;
	size_t len = 3;
	assert_int_equal(keel_journal_prio_prefix(&m, &len, 6), 4);
	assert_int_equal(len, 0);
	m = buf;
	len = 2;
	assert_int_equal(keel_journal_prio_prefix(&m, &len, 6), 6);
}

static void test_parse_time(void **state)
{
	(void)state;
	setenv("TZ", "UTC", 1);
	tzset();
	const uint64_t now = 1795815000000000ull + 123456; /* 2026-11-27 21:30:00.123456 UTC */
	uint64_t t;
	assert_int_equal(keel_journal_parse_time("2026-11-27 21:00:00", now, &t), 0);
	assert_int_equal(t, 1795813200000000ull);
	assert_int_equal(keel_journal_parse_time("2026-11-27 21:00:00 UTC", now, &t), 0);
	assert_int_equal(t, 1795813200000000ull);
	assert_int_equal(keel_journal_parse_time("2026-11-27 21:00", now, &t), 0);
	assert_int_equal(t, 1795813200000000ull);
	assert_int_equal(keel_journal_parse_time("2026-11-27", now, &t), 0);
	assert_int_equal(t, 1795737600000000ull);
	assert_int_equal(keel_journal_parse_time("2026-11-27 21:00:00.5", now, &t), 0);
	assert_int_equal(t, 1795813200500000ull);
	assert_int_equal(keel_journal_parse_time("18:00", now, &t), 0);
	assert_int_equal(t, 1795737600000000ull + 18 * 3600000000ull);
	assert_int_equal(keel_journal_parse_time("today", now, &t), 0);
	assert_int_equal(t, 1795737600000000ull);
	assert_int_equal(keel_journal_parse_time("yesterday", now, &t), 0);
	assert_int_equal(t, 1795737600000000ull - 86400000000ull);
	assert_int_equal(keel_journal_parse_time("tomorrow", now, &t), 0);
	assert_int_equal(t, 1795737600000000ull + 86400000000ull);
	assert_int_equal(keel_journal_parse_time("now", now, &t), 0);
	assert_int_equal(t, now);
	assert_int_equal(keel_journal_parse_time("-5min", now, &t), 0);
	assert_int_equal(t, now - 300000000ull);
	assert_int_equal(keel_journal_parse_time("+1h", now, &t), 0);
	assert_int_equal(t, now + 3600000000ull);
	assert_int_equal(keel_journal_parse_time("1 hour ago", now, &t), 0);
	assert_int_equal(t, now - 3600000000ull);
	assert_int_equal(keel_journal_parse_time("5min ago", now, &t), 0);
	assert_int_equal(t, now - 300000000ull);
	assert_int_equal(keel_journal_parse_time("@1700000000", now, &t), 0);
	assert_int_equal(t, 1700000000000000ull);
	const char *bad[] = {"", "soon", "2026-13-01", "2026-11-27 25:00", "12", "-", "1 hour",
			     "2026-11-27x", "21:00:00:00", "@x", "ago"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(keel_journal_parse_time(bad[i], now, &t), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_second_writer_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_lines_split, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotation_and_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_payload_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_length_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_magic_first_record, setup, teardown),
		cmocka_unit_test_setup_teardown(test_filters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_follow_across_rotation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_failure_keeps_records_whole, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_rotation_retried, setup, teardown),
		cmocka_unit_test(test_prio_prefix),
		cmocka_unit_test(test_parse_time),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
