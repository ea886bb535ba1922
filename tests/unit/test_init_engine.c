/* keel-init's engine helpers that need no root: the hash map, the event loop's timer heap, the
 * EnvironmentFile= parsing and the cgroup hierarchy choice. (The engine
 * itself is tested with real processes in tests/integration/test_init.py.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "base/str.h"
#include "init/cgroup.h"
#include "init/ev.h"
#include "init/exec.h"
#include "init/hmap.h"
#include "init/words.h"
#include "testutil.h"

static void hmap_strings_and_ints(void **state)
{
	(void)state;
	struct keel_hmap m;
	keel_hmap_init(&m, true);
	static char keys[500][16];
	for (int i = 0; i < 500; i++) {
		snprintf(keys[i], sizeof(keys[i]), "u%d.service", i);
		assert_int_equal(keel_hmap_put_str(&m, keys[i], (void *)(intptr_t)(i + 1)), 0);
	}
	assert_int_equal(m.n, 500);
	for (int i = 0; i < 500; i += 7)
		assert_int_equal((intptr_t)keel_hmap_get_str(&m, keys[i]), i + 1);
	assert_null(keel_hmap_get_str(&m, "nope.service"));
	for (int i = 0; i < 500; i += 2)
		assert_int_equal((intptr_t)keel_hmap_del_str(&m, keys[i]), i + 1);
	assert_int_equal(m.n, 250);
	assert_null(keel_hmap_get_str(&m, keys[0]));
	assert_int_equal((intptr_t)keel_hmap_get_str(&m, keys[1]), 2);
	size_t it = 0, seen = 0;
	while (keel_hmap_next(&m, &it, NULL, NULL, NULL))
		seen++;
	assert_int_equal(seen, 250);
	keel_hmap_clear(&m);

	keel_hmap_init(&m, false);
	for (int i = 1; i < 2000; i++)
		assert_int_equal(keel_hmap_put_int(&m, i * 7919, (void *)(intptr_t)i), 0);
	assert_int_equal((intptr_t)keel_hmap_get_int(&m, 7919 * 1999), 1999);
	assert_int_equal((intptr_t)keel_hmap_del_int(&m, 7919 * 5), 5);
	assert_null(keel_hmap_get_int(&m, 7919 * 5));
	assert_int_equal(keel_hmap_put_int(&m, 42, (void *)1), 0);
	assert_int_equal(keel_hmap_put_int(&m, 42, (void *)2), 0); /* replaces */
	assert_int_equal((intptr_t)keel_hmap_get_int(&m, 42), 2);
	keel_hmap_clear(&m);
}

static int fired[16], n_fired;
static void on_fire(struct keel_ev_timer *t)
{
	fired[n_fired++] = (int)(intptr_t)t->data;
}

static void ev_timers_fire_in_order(void **state)
{
	(void)state;
	struct keel_ev *ev;
	assert_int_equal(keel_ev_new(&ev), 0);
	struct keel_ev_timer t[6];
	uint64_t now = keel_now_mono();
	int order[6] = {5, 1, 4, 2, 6, 3}; /* ms offsets */
	for (int i = 0; i < 6; i++) {
		keel_ev_timer_init(&t[i], on_fire, (void *)(intptr_t)order[i]);
		assert_int_equal(keel_ev_timer_start(ev, &t[i], now + (uint64_t)order[i] * 1000), 0);
	}
	keel_ev_timer_stop(ev, &t[3]); /* the 2 ms one */
	assert_false(keel_ev_timer_armed(&t[3]));
	assert_int_equal(keel_ev_timer_start(ev, &t[0], now + 500), 0); /* 5 ms one re-armed first */
	n_fired = 0;
	while (n_fired < 5)
		assert_int_equal(keel_ev_run_once(ev, 100 * 1000), 0);
	int want[5] = {5, 1, 3, 4, 6};
	for (int i = 0; i < 5; i++)
		assert_int_equal(fired[i], want[i]);
	keel_ev_free(ev);
}

static void env_file_syntax(void **state)
{
	(void)state;
	char dir[128], path[256];
	assert_int_equal(test_make_tmpdir("envfile", dir, sizeof(dir)), 0);
	snprintf(path, sizeof(path), "%s/env", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("# comment\n; also a comment\n\nA=plain\nB = \"double quoted\\\" value\"\n"
	      "C='single $quoted'\nexport D=exported\nE=one \\\ntwo\nbad-name=x\nA=replaced\nF=  trailing   \n", f);
	fclose(f);
	char **env = NULL;
	assert_int_equal(keel_env_set(&env, "A=first"), 0);
	assert_int_equal(keel_env_file_load(path, &env), 0);
	assert_string_equal(keel_env_get(env, "A", 1), "replaced");
	assert_string_equal(keel_env_get(env, "B", 1), "double quoted\" value");
	assert_string_equal(keel_env_get(env, "C", 1), "single $quoted");
	assert_string_equal(keel_env_get(env, "D", 1), "exported");
	assert_string_equal(keel_env_get(env, "E", 1), "one two");
	assert_string_equal(keel_env_get(env, "F", 1), "trailing");
	assert_null(keel_env_get(env, "bad-name", 8));
	size_t n = keel_strv_len(env);
	assert_int_equal(n, 6);
	keel_strv_free(env);
	assert_int_equal(keel_env_file_load("/nonexistent/env", &env), -ENOENT);
	test_remove_tree(dir);
}

static void cgroup_mask_joins_only_what_settings_need(void **state)
{
	(void)state;
	struct keel_cg cg = {.n = 4, .track = 3, .mode = KEEL_CG_HYBRID};
	cg.h[0] = (struct keel_cg_hier){.ctrls = KEEL_CGC_MEMORY, .join = true};
	cg.h[1] = (struct keel_cg_hier){.ctrls = KEEL_CGC_PIDS, .join = true};
	cg.h[2] = (struct keel_cg_hier){.ctrls = KEEL_CGC_CPU, .join = true};
	cg.h[3] = (struct keel_cg_hier){.v2 = true, .join = true};
	struct keel_cgroup_ctx res = {.cpu_quota_per_sec_usec = UINT64_MAX, .cpu_weight = KEEL_CGROUP_WEIGHT_UNSET,
				      .cpu_shares = KEEL_CGROUP_WEIGHT_UNSET, .io_weight = KEEL_CGROUP_WEIGHT_UNSET,
				      .blockio_weight = KEEL_CGROUP_WEIGHT_UNSET};
	assert_int_equal(keel_cg_mask(&cg, &res), 1u << 3);
	assert_int_equal(keel_cg_mask(&cg, NULL), 1u << 3);
	res.tasks_max = (struct keel_limit){.value = 10, .kind = KEEL_LIMIT_VALUE};
	assert_int_equal(keel_cg_mask(&cg, &res), (1u << 3) | (1u << 1));
	res.memory_max = (struct keel_limit){.value = 1 << 20, .kind = KEEL_LIMIT_VALUE};
	res.cpu_weight = 50;
	assert_int_equal(keel_cg_mask(&cg, &res), 0xfu);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(hmap_strings_and_ints),
		cmocka_unit_test(ev_timers_fire_in_order),
		cmocka_unit_test(env_file_syntax),
		cmocka_unit_test(cgroup_mask_joins_only_what_settings_need),
	};
	return cmocka_run_group_tests_name("init/engine", tests, NULL, NULL);
}
