#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>

#include "base/fault.h"
#include "base/mem.h"

static int teardown(void **state)
{
	keel_fault_reset();
	return 0;
}

static void fault_alloc_countdown_fails_exactly_the_chosen_calls(void **state)
{
	keel_fault_arm(KEEL_FAULT_ALLOC, 2, 1, ENOMEM);
	void *a = keel_malloc(8), *b = keel_malloc(8);
	errno = 0;
	void *c = keel_malloc(8);
	assert_int_equal(errno, ENOMEM);
	void *d = keel_malloc(8);
	assert_non_null(a);
	assert_non_null(b);
	assert_null(c);
	assert_non_null(d);
	assert_int_equal(keel_fault_calls(KEEL_FAULT_ALLOC), 4);
	assert_int_equal(keel_fault_injected(KEEL_FAULT_ALLOC), 1);
	keel_free(a), keel_free(b), keel_free(d);
}

static void fault_forever_fails_every_call_after_skip(void **state)
{
	keel_fault_arm(KEEL_FAULT_ALLOC, 1, -1, ENOMEM);
	char *a = keel_strdup("x");
	assert_non_null(a);
	for (int i = 0; i < 5; i++) {
		assert_null(keel_strdup("y"));
		assert_null(keel_calloc(1, 1));
		assert_null(keel_realloc(a, 100)); /* a stays valid */
	}
	assert_string_equal(a, "x");
	keel_fault_disarm(KEEL_FAULT_ALLOC);
	assert_int_equal(keel__fault_armed, 0);
	char *b = keel_strdup("y");
	assert_non_null(b);
	keel_free(a), keel_free(b);
}

static void fault_points_are_independent(void **state)
{
	keel_fault_arm(KEEL_FAULT_FDATASYNC, 0, 1, EIO);
	void *p = keel_malloc(1);
	assert_non_null(p);
	keel_free(p);
	assert_int_equal(keel_fault_check(KEEL_FAULT_WRITE), 0);
	assert_int_equal(keel_fault_check(KEEL_FAULT_FDATASYNC), EIO);
	assert_int_equal(keel_fault_check(KEEL_FAULT_FDATASYNC), 0);
}

static void fault_reallocarray_refuses_overflow(void **state)
{
	errno = 0;
	assert_null(keel_reallocarray(NULL, SIZE_MAX / 2, 4));
	assert_int_equal(errno, EOVERFLOW);
}

static void fault_parse_arms_from_a_spec(void **state)
{
	assert_int_equal(keel_fault_parse("fdatasync:2:-1:ENOSPC,alloc:0,pwrite:1:1:short"), 0);
	assert_int_equal(keel_fault_check(KEEL_FAULT_FDATASYNC), 0);
	assert_int_equal(keel_fault_check(KEEL_FAULT_FDATASYNC), 0);
	assert_int_equal(keel_fault_check(KEEL_FAULT_FDATASYNC), ENOSPC);
	assert_int_equal(keel_fault_check(KEEL_FAULT_FDATASYNC), ENOSPC);
	assert_int_equal(keel_fault_check(KEEL_FAULT_ALLOC), ENOMEM); /* natural errno, count 1 */
	assert_int_equal(keel_fault_check(KEEL_FAULT_ALLOC), 0);
	assert_int_equal(keel_fault_check(KEEL_FAULT_PWRITE), 0);
	assert_int_equal(keel_fault_check(KEEL_FAULT_PWRITE), -1); /* short */
	assert_int_equal(keel_fault_parse(NULL), 0);
	assert_int_equal(keel_fault_parse(""), 0);
}

static void fault_parse_rejects_bad_specs_and_arms_nothing(void **state)
{
	const char *bad[] = {
		"nosuch:1", "alloc", "alloc:x", "alloc:-1", "alloc:1:-2", "alloc:1:1:EWHAT",
		"alloc:1:1:EIO:extra", "alloc:1,", ",alloc:1", "alloc:99999999999999999999",
		"write:0,bogus:1",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(keel_fault_parse(bad[i]), -EINVAL);
		assert_int_equal(keel__fault_armed, 0); /* all or nothing */
	}
}

static void fault_point_names(void **state)
{
	assert_string_equal(keel_fault_point_name(KEEL_FAULT_FDATASYNC), "fdatasync");
	assert_string_equal(keel_fault_point_name(KEEL_FAULT__MAX), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(fault_alloc_countdown_fails_exactly_the_chosen_calls, teardown),
		cmocka_unit_test_teardown(fault_forever_fails_every_call_after_skip, teardown),
		cmocka_unit_test_teardown(fault_points_are_independent, teardown),
		cmocka_unit_test_teardown(fault_reallocarray_refuses_overflow, teardown),
		cmocka_unit_test_teardown(fault_parse_arms_from_a_spec, teardown),
		cmocka_unit_test_teardown(fault_parse_rejects_bad_specs_and_arms_nothing, teardown),
		cmocka_unit_test_teardown(fault_point_names, teardown),
	};
	return cmocka_run_group_tests_name("base/fault", tests, NULL, NULL);
}
