#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"

/* 2013-07-17T21:10:44.108563358Z, the example etcd's v2 API documentation uses. */
#define T0 1374095444108563358ll
#define T0_SEC 1374095444ll

static void check_fmt(int64_t ns, int nano, const char *want)
{
	char out[KEEL_RFC3339_MAX];
	memset(out, '#', sizeof(out));
	size_t n = keel_fmt_rfc3339(ns, nano, out, sizeof(out));
	if (n != strlen(want) || strcmp(out, want) != 0)
		fail_msg("fmt_rfc3339(%lld, %d) = \"%s\" (%zu), want \"%s\"", (long long)ns, nano,
			 n ? out : "", n, want);
}

static void check_parse(const char *s, int want_r, int64_t want_ns)
{
	int64_t ns = 0x5a5a5a5a;
	int r = keel_parse_rfc3339(s, &ns);
	if (r != want_r)
		fail_msg("parse_rfc3339(\"%s\") = %d, want %d", s, r, want_r);
	if (r == 0 && ns != want_ns)
		fail_msg("parse_rfc3339(\"%s\") gave %lld, want %lld", s, (long long)ns,
			 (long long)want_ns);
	if (r != 0 && ns != 0x5a5a5a5a)
		fail_msg("parse_rfc3339(\"%s\") wrote its result on failure", s);
}

static void clock_mono_is_non_decreasing(void **state)
{
	int64_t prev = keel_mono_ns();
	assert_true(prev > 0);
	for (int i = 0; i < 10000; i++) {
		int64_t now = keel_mono_ns();
		assert_true(now >= prev);
		prev = now;
	}
	/* And it moves: a 2 ms sleep shows up as at least 2 ms. */
	struct timespec ts = {0, 2 * KEEL_NSEC_PER_MSEC};
	int64_t before = keel_mono_ns();
	nanosleep(&ts, NULL);
	assert_true(keel_mono_ns() - before >= 2 * KEEL_NSEC_PER_MSEC);
}

static void clock_wall_is_near_time(void **state)
{
	time_t before = time(NULL);
	int64_t wall = keel_wall_ns();
	time_t after = time(NULL);
	assert_true(wall / KEEL_NSEC_PER_SEC >= (int64_t)before - 1);
	assert_true(wall / KEEL_NSEC_PER_SEC <= (int64_t)after + 1);
	/* Some time after this test was written, so certainly nanoseconds and not seconds. */
	assert_true(wall > 1700000000ll * KEEL_NSEC_PER_SEC);
}

static void clock_fmt_nano_trims_trailing_zeros(void **state)
{
	check_fmt(T0, 1, "2013-07-17T21:10:44.108563358Z");
	check_fmt(T0_SEC * KEEL_NSEC_PER_SEC, 1, "2013-07-17T21:10:44Z");
	check_fmt(T0_SEC * KEEL_NSEC_PER_SEC + 100 * KEEL_NSEC_PER_MSEC, 1,
		  "2013-07-17T21:10:44.1Z");
	check_fmt(T0_SEC * KEEL_NSEC_PER_SEC + 120 * KEEL_NSEC_PER_MSEC, 1,
		  "2013-07-17T21:10:44.12Z");
	check_fmt(T0_SEC * KEEL_NSEC_PER_SEC + 1, 1, "2013-07-17T21:10:44.000000001Z");
	check_fmt(T0_SEC * KEEL_NSEC_PER_SEC + 10, 1, "2013-07-17T21:10:44.00000001Z");
	check_fmt(0, 1, "1970-01-01T00:00:00Z");
	check_fmt(951782400ll * KEEL_NSEC_PER_SEC, 1, "2000-02-29T00:00:00Z");
	check_fmt(1709208000ll * KEEL_NSEC_PER_SEC + 999999999, 1,
		  "2024-02-29T12:00:00.999999999Z");
}

static void clock_fmt_millis_always_shows_three_digits(void **state)
{
	check_fmt(T0, 0, "2013-07-17T21:10:44.108Z");
	check_fmt(T0_SEC * KEEL_NSEC_PER_SEC, 0, "2013-07-17T21:10:44.000Z");
	check_fmt(T0_SEC * KEEL_NSEC_PER_SEC + 999999999, 0, "2013-07-17T21:10:44.999Z");
	check_fmt(T0_SEC * KEEL_NSEC_PER_SEC + 100 * KEEL_NSEC_PER_MSEC, 0,
		  "2013-07-17T21:10:44.100Z");
	check_fmt(T0_SEC * KEEL_NSEC_PER_SEC + 5 * KEEL_NSEC_PER_MSEC, 0,
		  "2013-07-17T21:10:44.005Z");
	check_fmt(0, 0, "1970-01-01T00:00:00.000Z");
}

static void clock_fmt_before_1970_floors(void **state)
{
	check_fmt(-1, 1, "1969-12-31T23:59:59.999999999Z");
	check_fmt(-1, 0, "1969-12-31T23:59:59.999Z");
	check_fmt(-KEEL_NSEC_PER_SEC, 1, "1969-12-31T23:59:59Z");
	check_fmt(-1500 * KEEL_NSEC_PER_MSEC, 1, "1969-12-31T23:59:58.5Z");
	check_fmt(-1500 * KEEL_NSEC_PER_MSEC, 0, "1969-12-31T23:59:58.500Z");
	check_fmt(-2203891200ll * KEEL_NSEC_PER_SEC, 1, "1900-03-01T00:00:00Z");
	check_fmt(INT64_MIN, 1, "1677-09-21T00:12:43.145224192Z");
	check_fmt(INT64_MAX, 1, "2262-04-11T23:47:16.854775807Z");
}

static void clock_fmt_too_small_buffer_gives_zero(void **state)
{
	char out[KEEL_RFC3339_MAX];
	/* 30 characters need 31 bytes. */
	assert_int_equal(keel_fmt_rfc3339(T0, 1, out, 31), 30);
	assert_string_equal(out, "2013-07-17T21:10:44.108563358Z");
	assert_int_equal(keel_fmt_rfc3339(T0, 1, out, 30), 0);
	assert_int_equal(keel_fmt_rfc3339(T0, 0, out, 25), 24);
	assert_int_equal(keel_fmt_rfc3339(T0, 0, out, 24), 0);
	assert_int_equal(keel_fmt_rfc3339(T0, 1, out, 1), 0);
	assert_int_equal(keel_fmt_rfc3339(T0, 1, NULL, 0), 0);
	/* KEEL_RFC3339_MAX is enough for the longest form. */
	assert_int_equal(keel_fmt_rfc3339(INT64_MIN + 1, 1, out, KEEL_RFC3339_MAX), 30);
}

static void clock_parse_utc_and_fractions(void **state)
{
	check_parse("2013-07-17T21:10:44.108563358Z", 0, T0);
	check_parse("2013-07-17T21:10:44Z", 0, T0_SEC * KEEL_NSEC_PER_SEC);
	check_parse("2013-07-17T21:10:44.1Z", 0, T0_SEC * KEEL_NSEC_PER_SEC + 100000000);
	check_parse("2013-07-17T21:10:44.000000001Z", 0, T0_SEC * KEEL_NSEC_PER_SEC + 1);
	/* Digits past nanoseconds are dropped, not rounded. */
	check_parse("2013-07-17T21:10:44.1085633589999Z", 0, T0);
	check_parse("2013-07-17t21:10:44.108563358z", 0, T0);
	check_parse("1970-01-01T00:00:00Z", 0, 0);
	check_parse("1969-12-31T23:59:59.999999999Z", 0, -1);
	check_parse("1969-12-31T23:59:58.5Z", 0, -1500000000ll);
	check_parse("2000-02-29T00:00:00Z", 0, 951782400ll * KEEL_NSEC_PER_SEC);
	check_parse("2024-02-29T12:00:00Z", 0, 1709208000ll * KEEL_NSEC_PER_SEC);
	check_parse("1900-03-01T00:00:00Z", 0, -2203891200ll * KEEL_NSEC_PER_SEC);
	check_parse("2013-12-31T23:59:59Z", 0, 1388534399ll * KEEL_NSEC_PER_SEC);
}

static void clock_parse_offsets_give_utc(void **state)
{
	check_parse("2013-07-17T23:10:44.108563358+02:00", 0, T0);
	check_parse("2013-07-17T16:40:44.108563358-04:30", 0, T0);
	check_parse("2013-07-17T21:10:44.108563358+00:00", 0, T0);
	check_parse("2013-07-17T21:10:44.108563358-00:00", 0, T0);
	/* An offset that crosses midnight and the year. */
	check_parse("2014-01-01T01:59:59+02:00", 0, 1388534399ll * KEEL_NSEC_PER_SEC);
	check_parse("1969-12-31T19:00:00-05:00", 0, 0);
	check_parse("1970-01-01T23:59:00+23:59", 0, 0);
}

static void clock_parse_rejects_bad_dates(void **state)
{
	static const char *const bad[] = {
		"",
		"2023-02-29T00:00:00Z",     /* not a leap year */
		"1900-02-29T00:00:00Z",     /* divisible by 100, not by 400 */
		"2023-13-01T00:00:00Z",
		"2023-00-10T00:00:00Z",
		"2023-01-00T00:00:00Z",
		"2023-01-32T00:00:00Z",
		"2023-04-31T00:00:00Z",
		"2023-02-30T00:00:00Z",
		"2023-01-01T24:00:00Z",
		"2023-01-01T23:60:00Z",
		"2023-01-01T23:59:60Z",
		"2023-01-01T00:00:00",      /* missing zone */
		"2023-01-01T00:00:00Zjunk", /* trailing junk */
		"2023-01-01T00:00:00Z ",
		"2023-01-01T00:00:00+02:00x",
		"2023-01-01 00:00:00Z",
		"2023-01-01",
		"2023-1-01T00:00:00Z",
		"23-01-01T00:00:00Z",
		"2023-01-01T0:00:00Z",
		"2023-01-01T00:00:00.Z",    /* a dot needs digits */
		"2023-01-01T00:00:00+0200",
		"2023-01-01T00:00:00+02",
		"2023-01-01T00:00:00+24:00",
		"2023-01-01T00:00:00+02:60",
		"2023-01-01T00:00:00UTC",
		" 2023-01-01T00:00:00Z",
		"2023/01/01T00:00:00Z",
		"2023-01-01T00-00-00Z",
		"+2023-01-01T00:00:00Z",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		check_parse(bad[i], -EINVAL, 0);
}

static void clock_parse_out_of_int64_range_is_erange(void **state)
{
	/* The int64 nanosecond range is 1677-09-21T00:12:43.145224192Z to
	 * 2262-04-11T23:47:16.854775807Z. */
	check_parse("2262-04-11T23:47:16.854775807Z", 0, INT64_MAX);
	check_parse("1677-09-21T00:12:43.145224192Z", 0, INT64_MIN);
	check_parse("2262-04-12T01:47:16.854775807+02:00", 0, INT64_MAX);
	check_parse("2262-04-11T23:47:16.854775808Z", -ERANGE, 0);
	check_parse("2262-04-11T23:47:17Z", -ERANGE, 0);
	check_parse("1677-09-21T00:12:43.145224191Z", -ERANGE, 0);
	check_parse("1677-09-21T00:12:42Z", -ERANGE, 0);
	check_parse("9999-12-31T23:59:59.999999999Z", -ERANGE, 0);
	check_parse("0000-01-01T00:00:00Z", -ERANGE, 0);
	check_parse("3000-01-01T00:00:00Z", -ERANGE, 0);
}

static void clock_fmt_parse_round_trip(void **state)
{
	static const int64_t values[] = {
		0, 1, -1, T0, -T0, 999999999, -999999999, 1000000000,
		86400ll * KEEL_NSEC_PER_SEC - 1,
		951782400ll * KEEL_NSEC_PER_SEC + 123456789, INT64_MAX, INT64_MIN, INT64_MIN + 1,
		-2203891200ll * KEEL_NSEC_PER_SEC + 7,
	};
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		char out[KEEL_RFC3339_MAX];
		assert_true(keel_fmt_rfc3339(values[i], 1, out, sizeof(out)) > 0);
		check_parse(out, 0, values[i]);
	}
	/* A sweep across days, months, leap years and centuries. */
	for (int64_t sec = -5000000000ll; sec < 5000000000ll; sec += 7777777) {
		int64_t ns = sec * KEEL_NSEC_PER_SEC + (sec & 0xfffff);
		char out[KEEL_RFC3339_MAX];
		assert_true(keel_fmt_rfc3339(ns, 1, out, sizeof(out)) > 0);
		check_parse(out, 0, ns);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(clock_mono_is_non_decreasing),
		cmocka_unit_test(clock_wall_is_near_time),
		cmocka_unit_test(clock_fmt_nano_trims_trailing_zeros),
		cmocka_unit_test(clock_fmt_millis_always_shows_three_digits),
		cmocka_unit_test(clock_fmt_before_1970_floors),
		cmocka_unit_test(clock_fmt_too_small_buffer_gives_zero),
		cmocka_unit_test(clock_parse_utc_and_fractions),
		cmocka_unit_test(clock_parse_offsets_give_utc),
		cmocka_unit_test(clock_parse_rejects_bad_dates),
		cmocka_unit_test(clock_parse_out_of_int64_range_is_erange),
		cmocka_unit_test(clock_fmt_parse_round_trip),
	};
	return cmocka_run_group_tests_name("base/clock", tests, NULL, NULL);
}
