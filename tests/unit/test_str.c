#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/fault.h"
#include "base/mem.h"
#include "base/str.h"

static int teardown_faults(void **state)
{
	keel_fault_reset();
	return 0;
}

static void str_streq_handles_null(void **state)
{
	assert_true(keel_streq("a", "a"));
	assert_false(keel_streq("a", "b"));
	assert_false(keel_streq("a", "ab"));
	assert_true(keel_streq(NULL, NULL));
	assert_false(keel_streq("a", NULL));
	assert_false(keel_streq(NULL, "a"));
	assert_true(keel_streq("", ""));
}

static void str_startswith_returns_rest(void **state)
{
	const char *s = "--data-dir";
	assert_ptr_equal(keel_startswith(s, "--"), s + 2);
	assert_string_equal(keel_startswith(s, "--data-"), "dir");
	assert_ptr_equal(keel_startswith(s, ""), s);
	assert_string_equal(keel_startswith(s, s), "");
	assert_null(keel_startswith(s, "-d"));
	assert_null(keel_startswith(s, "--data-dir-x"));
	assert_null(keel_startswith("", "a"));
	assert_string_equal(keel_startswith("", ""), "");
}

static void str_endswith_matches_suffix_only(void **state)
{
	assert_true(keel_endswith("file.json", ".json"));
	assert_true(keel_endswith("file.json", ""));
	assert_true(keel_endswith("file.json", "file.json"));
	assert_false(keel_endswith("file.json", "a.file.json"));
	assert_false(keel_endswith("file.json", ".jso"));
	assert_false(keel_endswith("file.json", "JSON"));
	assert_false(keel_endswith("", "x"));
	assert_true(keel_endswith("", ""));
}

static void str_strstrip_trims_both_ends_in_place(void **state)
{
	char a[] = " \t\n hello world \r\n\v\f ";
	char *s = keel_strstrip(a);
	assert_string_equal(s, "hello world");
	assert_ptr_equal(s, a + 4);

	char b[] = "nothing";
	assert_ptr_equal(keel_strstrip(b), b);
	assert_string_equal(b, "nothing");

	char c[] = "   ";
	assert_string_equal(keel_strstrip(c), "");

	char d[] = "";
	assert_string_equal(keel_strstrip(d), "");

	char e[] = "x ";
	assert_string_equal(keel_strstrip(e), "x");
	assert_int_equal(e[1], '\0');

	/* Only ASCII whitespace: a NBSP's bytes stay. */
	char f[] = "\xc2\xa0" "a";
	assert_string_equal(keel_strstrip(f), "\xc2\xa0" "a");
}

static void str_strv_push_appends_copies(void **state)
{
	char **v = NULL;
	assert_int_equal(keel_strv_len(v), 0);
	assert_false(keel_strv_contains(v, "a"));

	char src[] = "alpha";
	assert_int_equal(keel_strv_push(&v, src), 0);
	assert_int_equal(keel_strv_push(&v, "beta"), 0);
	assert_int_equal(keel_strv_push(&v, ""), 0);
	src[0] = 'X'; /* a copy was stored */

	assert_int_equal(keel_strv_len(v), 3);
	assert_string_equal(v[0], "alpha");
	assert_string_equal(v[1], "beta");
	assert_string_equal(v[2], "");
	assert_null(v[3]);
	assert_true(keel_strv_contains(v, "beta"));
	assert_true(keel_strv_contains(v, ""));
	assert_false(keel_strv_contains(v, "Xlpha"));
	assert_false(keel_strv_contains(v, "bet"));
	keel_strv_free(v);
}

static void str_strv_consume_takes_ownership(void **state)
{
	char **v = NULL;
	assert_int_equal(keel_strv_consume(&v, keel_strdup("one")), 0);
	assert_int_equal(keel_strv_len(v), 1);
	assert_string_equal(v[0], "one");

	/* A NULL string is what a failed strdup gives: it is reported as -ENOMEM. */
	assert_int_equal(keel_strv_consume(&v, NULL), -ENOMEM);
	assert_int_equal(keel_strv_len(v), 1);
	keel_strv_free(v);
}

static void str_strv_free_accepts_null(void **state)
{
	keel_strv_free(NULL);
	char **v = keel_calloc(1, sizeof(char *));
	assert_non_null(v);
	keel_strv_free(v);
}

static void str_strv_push_failure_leaves_vector_unchanged(void **state)
{
	char **v = NULL;
	assert_int_equal(keel_strv_push(&v, "a"), 0);
	assert_int_equal(keel_strv_push(&v, "b"), 0);
	char **old = v;

	/* The copy of the string fails. */
	keel_fault_arm(KEEL_FAULT_ALLOC, 0, 1, ENOMEM);
	assert_int_equal(keel_strv_push(&v, "c"), -ENOMEM);
	keel_fault_reset();
	assert_ptr_equal(v, old);
	assert_int_equal(keel_strv_len(v), 2);
	assert_string_equal(v[0], "a");
	assert_string_equal(v[1], "b");

	/* The copy works but growing the array fails: the copy is freed (valgrind checks). */
	keel_fault_arm(KEEL_FAULT_ALLOC, 1, 1, ENOMEM);
	assert_int_equal(keel_strv_push(&v, "c"), -ENOMEM);
	assert_int_equal(keel_fault_injected(KEEL_FAULT_ALLOC), 1);
	keel_fault_reset();
	assert_ptr_equal(v, old);
	assert_int_equal(keel_strv_len(v), 2);
	assert_string_equal(v[1], "b");
	assert_null(v[2]);

	/* Same for consume: the string handed over is freed. */
	keel_fault_arm(KEEL_FAULT_ALLOC, 1, 1, ENOMEM);
	assert_int_equal(keel_strv_consume(&v, keel_strdup("d")), -ENOMEM);
	keel_fault_reset();
	assert_int_equal(keel_strv_len(v), 2);

	/* And on an empty vector nothing is allocated on failure. */
	char **e = NULL;
	keel_fault_arm(KEEL_FAULT_ALLOC, 1, 1, ENOMEM);
	assert_int_equal(keel_strv_push(&e, "x"), -ENOMEM);
	keel_fault_reset();
	assert_null(e);

	assert_int_equal(keel_strv_push(&v, "c"), 0);
	assert_int_equal(keel_strv_len(v), 3);
	keel_strv_free(v);
}

static void str_strv_split_drops_empty_fields(void **state)
{
	char **v = NULL;
	assert_int_equal(keel_strv_split("a,,b", ",", &v), 0);
	assert_int_equal(keel_strv_len(v), 2);
	assert_string_equal(v[0], "a");
	assert_string_equal(v[1], "b");
	assert_null(v[2]);
	keel_strv_free(v);

	v = NULL;
	assert_int_equal(keel_strv_split(",,x y\tz,, ", ", \t", &v), 0);
	assert_int_equal(keel_strv_len(v), 3);
	assert_string_equal(v[0], "x");
	assert_string_equal(v[1], "y");
	assert_string_equal(v[2], "z");
	keel_strv_free(v);

	v = NULL;
	assert_int_equal(keel_strv_split("single", ",", &v), 0);
	assert_int_equal(keel_strv_len(v), 1);
	assert_string_equal(v[0], "single");
	keel_strv_free(v);

	/* No separators at all: the whole string is the one field. */
	v = NULL;
	assert_int_equal(keel_strv_split("a,b", "", &v), 0);
	assert_int_equal(keel_strv_len(v), 1);
	assert_string_equal(v[0], "a,b");
	keel_strv_free(v);
}

static void str_strv_split_empty_input_gives_empty_vector(void **state)
{
	char **v = NULL;
	assert_int_equal(keel_strv_split("", ",", &v), 0);
	assert_non_null(v);
	assert_int_equal(keel_strv_len(v), 0);
	assert_null(v[0]);
	keel_strv_free(v);

	v = NULL;
	assert_int_equal(keel_strv_split(",,,", ",", &v), 0);
	assert_non_null(v);
	assert_null(v[0]);
	keel_strv_free(v);
}

static void str_strv_split_failure_frees_and_leaves_ret(void **state)
{
	char **sentinel = (char **)&sentinel;
	/* Fail each allocation in turn: every one must surface as -ENOMEM with nothing leaked. */
	for (unsigned skip = 0;; skip++) {
		char **v = sentinel;
		keel_fault_arm(KEEL_FAULT_ALLOC, skip, 1, ENOMEM);
		int r = keel_strv_split("aa,bb,cc", ",", &v);
		unsigned long injected = keel_fault_injected(KEEL_FAULT_ALLOC);
		keel_fault_reset();
		if (!injected) {
			assert_int_equal(r, 0);
			assert_int_equal(keel_strv_len(v), 3);
			keel_strv_free(v);
			assert_true(skip >= 6);
			break;
		}
		assert_int_equal(r, -ENOMEM);
		assert_ptr_equal(v, sentinel);
	}

	char **v = sentinel;
	keel_fault_arm(KEEL_FAULT_ALLOC, 0, 1, ENOMEM);
	assert_int_equal(keel_strv_split("", ",", &v), -ENOMEM);
	keel_fault_reset();
	assert_ptr_equal(v, sentinel);
}

static void str_parse_u64_accepts_plain_decimal(void **state)
{
	uint64_t v = 0;
	assert_int_equal(keel_parse_u64("0", &v), 0);
	assert_true(v == 0);
	assert_int_equal(keel_parse_u64("42", &v), 0);
	assert_true(v == 42);
	assert_int_equal(keel_parse_u64("007", &v), 0);
	assert_true(v == 7);
	assert_int_equal(keel_parse_u64("18446744073709551615", &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(keel_parse_u64("18446744073709551610", &v), 0);
	assert_true(v == UINT64_MAX - 5);
}

static void str_parse_u64_rejects_overflow_and_junk(void **state)
{
	uint64_t v = 1234;
	assert_int_equal(keel_parse_u64("18446744073709551616", &v), -ERANGE);
	assert_int_equal(keel_parse_u64("18446744073709551620", &v), -ERANGE);
	assert_int_equal(keel_parse_u64("99999999999999999999999", &v), -ERANGE);
	assert_int_equal(keel_parse_u64("", &v), -EINVAL);
	assert_int_equal(keel_parse_u64(NULL, &v), -EINVAL);
	assert_int_equal(keel_parse_u64("+1", &v), -EINVAL);
	assert_int_equal(keel_parse_u64("-1", &v), -EINVAL);
	assert_int_equal(keel_parse_u64("-0", &v), -EINVAL);
	assert_int_equal(keel_parse_u64(" 1", &v), -EINVAL);
	assert_int_equal(keel_parse_u64("1 ", &v), -EINVAL);
	assert_int_equal(keel_parse_u64("1a", &v), -EINVAL);
	assert_int_equal(keel_parse_u64("0x10", &v), -EINVAL);
	assert_int_equal(keel_parse_u64("1.0", &v), -EINVAL);
	assert_int_equal(keel_parse_u64("1e3", &v), -EINVAL);
	assert_int_equal(keel_parse_u64("1_000", &v), -EINVAL);
	assert_true(v == 1234); /* untouched by every failure */
}

static void str_parse_i64_covers_full_range(void **state)
{
	int64_t v = 0;
	assert_int_equal(keel_parse_i64("-9223372036854775808", &v), 0);
	assert_true(v == INT64_MIN);
	assert_int_equal(keel_parse_i64("9223372036854775807", &v), 0);
	assert_true(v == INT64_MAX);
	assert_int_equal(keel_parse_i64("+9223372036854775807", &v), 0);
	assert_true(v == INT64_MAX);
	assert_int_equal(keel_parse_i64("-1", &v), 0);
	assert_true(v == -1);
	assert_int_equal(keel_parse_i64("-0", &v), 0);
	assert_true(v == 0);
	assert_int_equal(keel_parse_i64("+17", &v), 0);
	assert_true(v == 17);

	v = 55;
	assert_int_equal(keel_parse_i64("-9223372036854775809", &v), -ERANGE);
	assert_int_equal(keel_parse_i64("9223372036854775808", &v), -ERANGE);
	assert_int_equal(keel_parse_i64("+9223372036854775808", &v), -ERANGE);
	assert_int_equal(keel_parse_i64("-18446744073709551616", &v), -ERANGE);
	assert_int_equal(keel_parse_i64("", &v), -EINVAL);
	assert_int_equal(keel_parse_i64(NULL, &v), -EINVAL);
	assert_int_equal(keel_parse_i64("-", &v), -EINVAL);
	assert_int_equal(keel_parse_i64("+", &v), -EINVAL);
	assert_int_equal(keel_parse_i64("--1", &v), -EINVAL);
	assert_int_equal(keel_parse_i64("+-1", &v), -EINVAL);
	assert_int_equal(keel_parse_i64(" -1", &v), -EINVAL);
	assert_int_equal(keel_parse_i64("- 1", &v), -EINVAL);
	assert_int_equal(keel_parse_i64("1 ", &v), -EINVAL);
	assert_true(v == 55);
}

static void str_parse_bool_accepts_go_set_exactly(void **state)
{
	static const char *const yes[] = {"1", "t", "T", "TRUE", "true", "True"};
	static const char *const no[] = {"0", "f", "F", "FALSE", "false", "False"};
	static const char *const bad[] = {
		"", "yes", "no", "y", "n", "on", "off", "tRUE", "TrUe", "fALSE", "2", "-1", "01",
		" true", "true ", "truee", "ttrue", "10",
	};
	bool b;
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		b = false;
		assert_int_equal(keel_parse_bool(yes[i], &b), 0);
		assert_true(b);
	}
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		b = true;
		assert_int_equal(keel_parse_bool(no[i], &b), 0);
		assert_false(b);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		b = true;
		if (keel_parse_bool(bad[i], &b) != -EINVAL)
			fail_msg("parse_bool accepted \"%s\"", bad[i]);
		assert_true(b);
	}
	assert_int_equal(keel_parse_bool(NULL, &b), -EINVAL);
}

struct dur_case {
	const char *s;
	int r;
	int64_t ns;
};

static void check_durations(const struct dur_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int64_t ns = 0x5a5a5a5a;
		int r = keel_parse_duration(cases[i].s, &ns);
		if (r != cases[i].r)
			fail_msg("parse_duration(\"%s\") = %d, want %d", cases[i].s, r, cases[i].r);
		if (r == 0 && ns != cases[i].ns)
			fail_msg("parse_duration(\"%s\") gave %lld ns, want %lld", cases[i].s,
				 (long long)ns, (long long)cases[i].ns);
		if (r != 0 && ns != 0x5a5a5a5a)
			fail_msg("parse_duration(\"%s\") wrote its result on failure", cases[i].s);
	}
}

/* Values from Go's time.ParseDuration (and its parseDurationTests). */
static void str_parse_duration_matches_go(void **state)
{
	static const struct dur_case cases[] = {
		{"0", 0, 0},
		{"-0", 0, 0},
		{"+0", 0, 0},
		{"0s", 0, 0},
		{"5s", 0, 5000000000ll},
		{"30s", 0, 30000000000ll},
		{"1478s", 0, 1478000000000ll},
		{"-5s", 0, -5000000000ll},
		{"+5s", 0, 5000000000ll},
		{"-0s", 0, 0},
		{"300ms", 0, 300000000},
		{"1ns", 0, 1},
		{"1us", 0, 1000},
		{"1\xc2\xb5s", 0, 1000},   /* U+00B5 micro sign */
		{"1\xce\xbcs", 0, 1000},   /* U+03BC Greek mu */
		{"1ms", 0, 1000000},
		{"1s", 0, 1000000000},
		{"1m", 0, 60000000000ll},
		{"1h", 0, 3600000000000ll},
		{"1h2m3s", 0, 3723000000000ll},
		{"2h45m", 0, 9900000000000ll},
		{"1.5h", 0, 5400000000000ll},
		{"-1.5h", 0, -5400000000000ll},
		{"5.0s", 0, 5000000000ll},
		{"5.6s", 0, 5600000000ll},
		{"5.s", 0, 5000000000ll},
		{"1.s", 0, 1000000000},
		{".5s", 0, 500000000},
		{"1.0s", 0, 1000000000},
		{"1.00s", 0, 1000000000},
		{"1.004s", 0, 1004000000},
		{"1.0040s", 0, 1004000000},
		{"100.00100s", 0, 100001000000ll},
		{"1.5ms", 0, 1500000},
		{"3h30m", 0, 12600000000000ll},
		{"10.5s4m", 0, 250500000000ll},
		{"-2m3.4s", 0, -123400000000ll},
		{"1h2m3s4ms5us6ns", 0, 3723004005006ll},
		{"39h9m14.425s", 0, 140954425000000ll},
		{"0.3333333333333333333h", 0, 1200000000000ll},
		{"52763797000ns", 0, 52763797000ll},
		{"0.100000000000000000000h", 0, 360000000000ll},
		/* Past 2^63 the fraction's digits stop counting (Go's first overflow check). */
		{"0.830103483285477580700h", 0, 2988372539827ll},
		{"1m.5s", 0, 60500000000ll},
		{"9223372036854775807ns", 0, INT64_MAX},
		{"-9223372036854775808ns", 0, INT64_MIN},
		{"9223372036854775.807us", 0, INT64_MAX},
		{"9223372036s854ms775us807ns", 0, INT64_MAX},
		{"-9223372036854775.808us", 0, INT64_MIN},
		{"2562047h47m16.854775807s", 0, INT64_MAX},
		{"0.000000001s", 0, 1},
		{"0.0000000001s", 0, 0},
		{"1.9999999999ns", 0, 1},
	};
	check_durations(cases, sizeof(cases) / sizeof(cases[0]));
}

static void str_parse_duration_rejects_what_go_rejects(void **state)
{
	static const struct dur_case cases[] = {
		{"", -EINVAL, 0},
		{NULL, -EINVAL, 0},
		{"1", -EINVAL, 0},
		{"10", -EINVAL, 0},
		{"00", -EINVAL, 0},
		{"-", -EINVAL, 0},
		{"+", -EINVAL, 0},
		{"s", -EINVAL, 0},
		{".", -EINVAL, 0},
		{".s", -EINVAL, 0},
		{"-.s", -EINVAL, 0},
		{"+.s", -EINVAL, 0},
		{"1x", -EINVAL, 0},
		{"1sec", -EINVAL, 0},
		{"1S", -EINVAL, 0},
		{"1H", -EINVAL, 0},
		{"1msx", -EINVAL, 0},
		{"1mss", -EINVAL, 0},
		{"1hs", -EINVAL, 0},
		{"1s2", -EINVAL, 0},
		{"1h-1m", -EINVAL, 0},
		{"--1s", -EINVAL, 0},
		{" 1s", -EINVAL, 0},
		{"1s ", -EINVAL, 0},
		{"1 s", -EINVAL, 0},
		{"1e3s", -EINVAL, 0},
		{"1..5s", -EINVAL, 0},
		{"3000000h", -ERANGE, 0},
		{"9223372036854775808ns", -ERANGE, 0},
		{"9223372036854775.808us", -ERANGE, 0},
		{"9223372036854ms775us808ns", -ERANGE, 0},
		{"-9223372036854775809ns", -ERANGE, 0},
		{"2562047h47m16.854775808s", -ERANGE, 0},
		{"2562048h", -ERANGE, 0},
		{"18446744073709551616ns", -ERANGE, 0},
		{"99999999999999999999999ns", -ERANGE, 0},
		{"9223372036854775807ns1ns", -ERANGE, 0},
	};
	check_durations(cases, sizeof(cases) / sizeof(cases[0]));
}

static void str_env_name_upcases_and_joins(void **state)
{
	char out[64];
	assert_int_equal(keel_env_name("ETCD", "data-dir", out, sizeof(out)), 13);
	assert_string_equal(out, "ETCD_DATA_DIR");
	assert_int_equal(keel_env_name("etcd", "log.level", out, sizeof(out)), 14);
	assert_string_equal(out, "ETCD_LOG_LEVEL");
	assert_int_equal(keel_env_name("ETCD", "name", out, sizeof(out)), 9);
	assert_string_equal(out, "ETCD_NAME");
	/* No prefix: no leading underscore. */
	assert_int_equal(keel_env_name(NULL, "data-dir", out, sizeof(out)), 8);
	assert_string_equal(out, "DATA_DIR");
	assert_int_equal(keel_env_name("", "x", out, sizeof(out)), 1);
	assert_string_equal(out, "X");
	assert_int_equal(keel_env_name("P", "", out, sizeof(out)), 1);
	assert_string_equal(out, "P");
	assert_int_equal(keel_env_name(NULL, NULL, out, sizeof(out)), 0);
	assert_string_equal(out, "");
}

static void str_env_name_truncates_like_snprintf(void **state)
{
	char out[8];
	memset(out, '#', sizeof(out));
	assert_int_equal(keel_env_name("ETCD", "data-dir", out, sizeof(out)), 13);
	assert_string_equal(out, "ETCD_DA");

	/* Exactly enough room. */
	char fit[14];
	assert_int_equal(keel_env_name("ETCD", "data-dir", fit, sizeof(fit)), 13);
	assert_string_equal(fit, "ETCD_DATA_DIR");
	/* One short: the last character is dropped, still terminated. */
	char shy[13];
	assert_int_equal(keel_env_name("ETCD", "data-dir", shy, sizeof(shy)), 13);
	assert_string_equal(shy, "ETCD_DATA_DI");

	/* Cut right at the separator. */
	char five[5];
	assert_int_equal(keel_env_name("ETCD", "data-dir", five, sizeof(five)), 13);
	assert_string_equal(five, "ETCD");

	char one[1] = {'#'};
	assert_int_equal(keel_env_name("ETCD", "data-dir", one, 1), 13);
	assert_int_equal(one[0], '\0');

	/* size 0 writes nothing at all (out may even be NULL). */
	assert_int_equal(keel_env_name("ETCD", "data-dir", NULL, 0), 13);
	char guard = '#';
	assert_int_equal(keel_env_name("ETCD", "data-dir", &guard, 0), 13);
	assert_int_equal(guard, '#');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(str_streq_handles_null),
		cmocka_unit_test(str_startswith_returns_rest),
		cmocka_unit_test(str_endswith_matches_suffix_only),
		cmocka_unit_test(str_strstrip_trims_both_ends_in_place),
		cmocka_unit_test(str_strv_push_appends_copies),
		cmocka_unit_test(str_strv_consume_takes_ownership),
		cmocka_unit_test(str_strv_free_accepts_null),
		cmocka_unit_test_teardown(str_strv_push_failure_leaves_vector_unchanged,
					  teardown_faults),
		cmocka_unit_test(str_strv_split_drops_empty_fields),
		cmocka_unit_test(str_strv_split_empty_input_gives_empty_vector),
		cmocka_unit_test_teardown(str_strv_split_failure_frees_and_leaves_ret,
					  teardown_faults),
		cmocka_unit_test(str_parse_u64_accepts_plain_decimal),
		cmocka_unit_test(str_parse_u64_rejects_overflow_and_junk),
		cmocka_unit_test(str_parse_i64_covers_full_range),
		cmocka_unit_test(str_parse_bool_accepts_go_set_exactly),
		cmocka_unit_test(str_parse_duration_matches_go),
		cmocka_unit_test(str_parse_duration_rejects_what_go_rejects),
		cmocka_unit_test(str_env_name_upcases_and_joins),
		cmocka_unit_test(str_env_name_truncates_like_snprintf),
	};
	return cmocka_run_group_tests_name("base/str", tests, NULL, NULL);
}
