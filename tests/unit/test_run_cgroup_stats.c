/* `events`' cgroup side on fake cgroup directories (plain files, so it runs anywhere): runc's
 * stats object from v1 and v2 files, and the v2 OOM watch (inotify on memory.events). The v1
 * eventfd watch needs a real memory cgroup: tests/integration/test_run_exec.py covers it. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/jw.h"
#include "run/cgroup.h"
#include "testutil.h"

static void put(const char *dir, const char *file, const char *text)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static json_t *stats_of(struct keel_cgroup *cg, const char *must_contain)
{
	struct keel_buf b = KEEL_BUF_INIT;
	struct keel_jw w;
	keel_jw_init(&w, &b, 0);
	keel_jw_obj_begin(&w);
	keel_cgroup_stats(cg, &w);
	keel_jw_obj_end(&w);
	assert_int_equal(keel_jw_finish(&w), 0);
	if (must_contain)
		assert_non_null(strstr(b.data, must_contain));
	json_t *doc = json_loads(b.data, 0, NULL);
	if (must_contain) { /* 2^64-1 is beyond jansson's integers: text only */
		json_decref(doc);
		keel_buf_free(&b);
		return NULL;
	}
	assert_non_null(doc);
	keel_buf_free(&b);
	return doc;
}

static uint64_t at(json_t *doc, const char *a, const char *b, const char *c)
{
	json_t *v = json_object_get(json_object_get(json_object_get(doc, a), b), c);
	assert_true(json_is_integer(v));
	return (uint64_t)json_integer_value(v);
}

static void test_v1_stats(void **state)
{
	(void)state;
	char tmp[128], mem[256], cpu[256], pids[256];
	assert_int_equal(test_make_tmpdir("cgstats", tmp, sizeof(tmp)), 0);
	snprintf(mem, sizeof(mem), "%s/memory", tmp);
	snprintf(cpu, sizeof(cpu), "%s/cpuacct", tmp);
	snprintf(pids, sizeof(pids), "%s/pids", tmp);
	mkdir(mem, 0755);
	mkdir(cpu, 0755);
	mkdir(pids, 0755);
	put(mem, "memory.limit_in_bytes", "25165824\n");
	put(mem, "memory.usage_in_bytes", "1048576\n");
	put(mem, "memory.max_usage_in_bytes", "25165824\n");
	put(mem, "memory.failcnt", "7\n");
	put(mem, "memory.memsw.limit_in_bytes", "25165824\n");
	put(mem, "memory.memsw.failcnt", "0\n");
	put(mem, "memory.stat", "cache 4096\nrss 8192\ntotal_rss 8192\n");
	put(cpu, "cpuacct.usage", "123456789\n");
	put(cpu, "cpuacct.usage_percpu", "100 200 \n");
	put(cpu, "cpuacct.stat", "user 3\nsystem 2\n");
	put(pids, "pids.current", "2\n");
	put(pids, "pids.max", "max\n");
	struct keel_cgroup cg = {.mode = KEEL_CGROUP_V1, .n = 3, .v2_fd = -1};
	snprintf(cg.dirs[0].name, sizeof(cg.dirs[0].name), "memory");
	snprintf(cg.dirs[1].name, sizeof(cg.dirs[1].name), "cpuacct");
	snprintf(cg.dirs[2].name, sizeof(cg.dirs[2].name), "pids");
	cg.dirs[0].path = mem;
	cg.dirs[1].path = cpu;
	cg.dirs[2].path = pids;
	json_t *doc = stats_of(&cg, NULL);
	json_t *m = json_object_get(doc, "memory");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(m, "usage"), "limit")), 25165824);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(m, "usage"), "usage")), 1048576);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(m, "usage"), "max")), 25165824);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(m, "usage"), "failcnt")), 7);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(m, "swap"), "limit")), 25165824);
	assert_null(json_object_get(json_object_get(m, "swap"), "usage")); /* absent: left out, as runc */
	assert_int_equal(json_integer_value(json_object_get(m, "cache")), 4096);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(m, "raw"), "total_rss")), 8192);
	assert_int_equal(at(doc, "cpu", "usage", "total"), 123456789);
	assert_int_equal(at(doc, "cpu", "usage", "user"), 30000000);   /* 3 ticks of 10 ms */
	assert_int_equal(at(doc, "cpu", "usage", "kernel"), 20000000);
	json_t *percpu = json_object_get(json_object_get(json_object_get(doc, "cpu"), "usage"), "percpu");
	assert_int_equal(json_array_size(percpu), 2);
	assert_int_equal(json_integer_value(json_array_get(percpu, 1)), 200);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(doc, "pids"), "current")), 2);
	assert_null(json_object_get(json_object_get(doc, "pids"), "limit")); /* "max": no limit */
	json_decref(doc);
	test_remove_tree(tmp);
}

static void test_v2_stats_and_oom_watch(void **state)
{
	(void)state;
	char tmp[128];
	assert_int_equal(test_make_tmpdir("cgoom", tmp, sizeof(tmp)), 0);
	put(tmp, "memory.max", "max\n");
	put(tmp, "memory.current", "4096\n");
	put(tmp, "cpu.stat", "usage_usec 5\nuser_usec 3\nsystem_usec 2\nnr_periods 4\nnr_throttled 1\nthrottled_usec 9\n");
	put(tmp, "memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n");
	struct keel_cgroup cg = {.mode = KEEL_CGROUP_V2, .n = 1, .v2_fd = -1};
	cg.dirs[0].path = tmp;
	/* v2's "max" is runc's math.MaxUint64. */
	assert_null(stats_of(&cg, "\"usage\":{\"limit\":18446744073709551615,\"usage\":4096,\"failcnt\":0}"));
	put(tmp, "memory.max", "65536\n");
	json_t *doc = stats_of(&cg, NULL);
	assert_int_equal(at(doc, "memory", "usage", "limit"), 65536);
	assert_int_equal(at(doc, "cpu", "usage", "total"), 5000);
	assert_int_equal(at(doc, "cpu", "usage", "kernel"), 2000);
	assert_int_equal(at(doc, "cpu", "throttling", "throttledPeriods"), 1);
	assert_int_equal(at(doc, "cpu", "throttling", "throttledTime"), 9000);
	assert_int_equal(at(doc, "memory", "usage", "usage"), 4096);
	json_decref(doc);

	struct keel_cgroup_oom o;
	struct keel_err err;
	assert_int_equal(keel_cgroup_oom_open(&cg, &o, &err), 0);
	struct pollfd p = {.fd = o.fd, .events = POLLIN};
	assert_int_equal(poll(&p, 1, 0), 0); /* the kill before the watch does not count */
	put(tmp, "memory.events", "low 0\nhigh 0\nmax 5\noom 2\noom_kill 1\n");
	assert_int_equal(poll(&p, 1, 1000), 1);
	assert_int_equal(keel_cgroup_oom_read(&o), 0); /* changed, but no new kill */
	put(tmp, "memory.events", "low 0\nhigh 0\nmax 9\noom 4\noom_kill 3\n");
	assert_int_equal(poll(&p, 1, 1000), 1);
	assert_int_equal(keel_cgroup_oom_read(&o), 2);
	assert_int_equal(poll(&p, 1, 0), 0); /* drained */
	unlink(strcat(strcpy((char[256]){0}, tmp), "/memory.events"));
	assert_int_equal(keel_cgroup_oom_read(&o), -ENOENT); /* the cgroup is gone */
	keel_cgroup_oom_close(&o);
	assert_int_equal(o.fd, -1);

	/* No memory directory at all. */
	struct keel_cgroup none = {.mode = KEEL_CGROUP_V1, .n = 0, .v2_fd = -1};
	assert_int_equal(keel_cgroup_oom_open(&none, &o, &err), -ENOENT);
	test_remove_tree(tmp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v1_stats),
		cmocka_unit_test(test_v2_stats_and_oom_watch),
	};
	return cmocka_run_group_tests_name("run/cgroup_stats", tests, NULL, NULL);
}
