/* OnCalendar= expressions (lib/init/calendar.c); the normalised forms and elapse times are
 * what systemd-analyze calendar prints for them (TZ=UTC, and Europe/Berlin for DST). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/mem.h"
#include "init/calendar.h"

static int set_tz(const char *tz)
{
	setenv("TZ", tz, 1);
	tzset();
	return 0;
}

static int utc_setup(void **state)
{
	return set_tz("UTC");
}

static uint64_t at(const char *utc)
{
	struct tm tm = {0};
	strptime(utc, "%Y-%m-%d %H:%M:%S", &tm);
	return (uint64_t)timegm(&tm) * 1000000;
}

static void fmt(uint64_t usec, char *out, size_t n)
{
	time_t t = (time_t)(usec / 1000000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, n, "%Y-%m-%d %H:%M:%S", &tm);
	if (usec % 1000000)
		snprintf(out + strlen(out), n - strlen(out), ".%06llu", (unsigned long long)(usec % 1000000));
}

/* Check the normalised form and the next three elapses after base (all UTC); a NULL elapse
 * means the expression never elapses again. */
static void check(const char *spec, const char *norm, const char *base, const char *e1,
		  const char *e2, const char *e3)
{
	struct keel_calendar *c;
	assert_int_equal(keel_calendar_parse(spec, &c), 0);
	char *s;
	assert_int_equal(keel_calendar_to_string(c, &s), 0);
	assert_string_equal(s, norm);
	keel_free(s);
	uint64_t t = at(base);
	const char *want[3] = {e1, e2, e3};
	for (int i = 0; i < 3; i++) {
		char got[40];
		if (!want[i]) {
			assert_int_equal(keel_calendar_next(c, t, &t), -ENOENT);
			break;
		}
		assert_int_equal(keel_calendar_next(c, t, &t), 0);
		fmt(t, got, sizeof(got));
		assert_string_equal(got, want[i]);
	}
	keel_calendar_free(c);
}

static void calendar_shorthands(void **state)
{
	const char *b = "2024-02-28 12:00:00";
	check("minutely", "*-*-* *:*:00", b, "2024-02-28 12:01:00", "2024-02-28 12:02:00", "2024-02-28 12:03:00");
	check("hourly", "*-*-* *:00:00", b, "2024-02-28 13:00:00", "2024-02-28 14:00:00", "2024-02-28 15:00:00");
	check("daily", "*-*-* 00:00:00", b, "2024-02-29 00:00:00", "2024-03-01 00:00:00", "2024-03-02 00:00:00");
	check("weekly", "Mon *-*-* 00:00:00", b, "2024-03-04 00:00:00", "2024-03-11 00:00:00", "2024-03-18 00:00:00");
	check("monthly", "*-*-01 00:00:00", b, "2024-03-01 00:00:00", "2024-04-01 00:00:00", "2024-05-01 00:00:00");
	check("quarterly", "*-01,04,07,10-01 00:00:00", b, "2024-04-01 00:00:00", "2024-07-01 00:00:00", "2024-10-01 00:00:00");
	check("semiannually", "*-01,07-01 00:00:00", b, "2024-07-01 00:00:00", "2025-01-01 00:00:00", "2025-07-01 00:00:00");
	check("yearly", "*-01-01 00:00:00", b, "2025-01-01 00:00:00", "2026-01-01 00:00:00", "2027-01-01 00:00:00");
	check("ANNUALLY", "*-01-01 00:00:00", b, "2025-01-01 00:00:00", "2026-01-01 00:00:00", "2027-01-01 00:00:00");
}

static void calendar_weekdays_lists_ranges(void **state)
{
	const char *b = "2024-02-28 12:00:00"; /* a Wednesday */
	check("Mon..Fri 9:30", "Mon..Fri *-*-* 09:30:00", b, "2024-02-29 09:30:00", "2024-03-01 09:30:00", "2024-03-04 09:30:00");
	check("Sat,Sun 12:00", "Sat,Sun *-*-* 12:00:00", b, "2024-03-02 12:00:00", "2024-03-03 12:00:00", "2024-03-09 12:00:00");
	check("Mon-Wed 10:00", "Mon..Wed *-*-* 10:00:00", b, "2024-03-04 10:00:00", "2024-03-05 10:00:00", "2024-03-06 10:00:00");
	check("Monday 1:2:3", "Mon *-*-* 01:02:03", b, "2024-03-04 01:02:03", "2024-03-11 01:02:03", "2024-03-18 01:02:03");
	check("Mon,", "Mon *-*-* 00:00:00", b, "2024-03-04 00:00:00", "2024-03-11 00:00:00", "2024-03-18 00:00:00");
	check("Sat *-*-1..7 18:00", "Sat *-*-01..07 18:00:00", b, "2024-03-02 18:00:00", "2024-04-06 18:00:00", "2024-05-04 18:00:00");
	check("Fri *-*-13 00:00", "Fri *-*-13 00:00:00", b, "2024-09-13 00:00:00", "2024-12-13 00:00:00", "2025-06-13 00:00:00");
}

static void calendar_repetitions_and_dates(void **state)
{
	const char *b = "2024-02-28 12:00:00";
	check("*-*-1/2 4:00", "*-*-01/2 04:00:00", b, "2024-02-29 04:00:00", "2024-03-01 04:00:00", "2024-03-03 04:00:00");
	check("2024-*-* 00/6:00", "2024-*-* 00/6:00:00", b, "2024-02-28 18:00:00", "2024-02-29 00:00:00", "2024-02-29 06:00:00");
	check("*:0/15", "*-*-* *:00/15:00", b, "2024-02-28 12:15:00", "2024-02-28 12:30:00", "2024-02-28 12:45:00");
	check("*:*:0/10", "*-*-* *:*:00/10", b, "2024-02-28 12:00:10", "2024-02-28 12:00:20", "2024-02-28 12:00:30");
	check("*-02-29 12:00", "*-02-29 12:00:00", b, "2024-02-29 12:00:00", "2028-02-29 12:00:00", "2032-02-29 12:00:00");
	check("*-*-31", "*-*-31 00:00:00", b, "2024-03-31 00:00:00", "2024-05-31 00:00:00", "2024-07-31 00:00:00");
	check("*-*~1", "*-*~01 00:00:00", b, "2024-02-29 00:00:00", "2024-03-31 00:00:00", "2024-04-30 00:00:00");
	check("*-*~03 01:02", "*-*~03 01:02:00", b, "2024-03-29 01:02:00", "2024-04-28 01:02:00", "2024-05-29 01:02:00");
	check("24-06-15 08:00", "2024-06-15 08:00:00", "2024-01-01 00:00:00", "2024-06-15 08:00:00", NULL, NULL);
}

static void calendar_fractions_and_epoch(void **state)
{
	struct keel_calendar *c;
	char *s;
	assert_int_equal(keel_calendar_parse("*-*-* *:*:1.25/0.5", &c), 0);
	assert_int_equal(keel_calendar_to_string(c, &s), 0);
	assert_string_equal(s, "*-*-* *:*:01.250000/0.500000");
	keel_free(s);
	uint64_t t = at("2024-02-28 12:00:00"), n;
	assert_int_equal(keel_calendar_next(c, t, &n), 0);
	assert_int_equal(n - t, 1250000);
	assert_int_equal(keel_calendar_next(c, n, &n), 0);
	assert_int_equal(n - t, 1750000);
	keel_calendar_free(c);

	assert_int_equal(keel_calendar_parse("@1700000000", &c), 0);
	assert_int_equal(keel_calendar_to_string(c, &s), 0);
	assert_string_equal(s, "2023-11-14 22:13:20 UTC");
	keel_free(s);
	assert_int_equal(keel_calendar_next(c, at("2023-01-01 00:00:00"), &n), 0);
	assert_int_equal(n, 1700000000ull * 1000000);
	assert_int_equal(keel_calendar_next(c, n, &n), -ENOENT); /* never again */
	keel_calendar_free(c);
}

static void calendar_rejects_what_systemd_rejects(void **state)
{
	const char *bad[] = {
		"", "bogus", "*-02-~1", "Sun..Mon", "Mon..", "*-*-* 25:00", "*-13-01", "0:60",
		"1969-01-01", "2200-01-01", "*-*-* 1:2:3:4", "Mon Tue", "*-*-* 00:00:00 Nowhere/City",
		"*:*:0.5..0.7", "*-*-1/0", "12:00 junk",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct keel_calendar *c = NULL;
		int r = keel_calendar_parse(bad[i], &c);
		if (r != -EINVAL)
			fail_msg("'%s' parsed (%d)", bad[i], r);
	}
	/* a date that never comes */
	struct keel_calendar *c;
	assert_int_equal(keel_calendar_parse("*-04-31", &c), 0);
	uint64_t n;
	assert_int_equal(keel_calendar_next(c, at("2024-01-01 00:00:00"), &n), -ENOENT);
	keel_calendar_free(c);
}

static void calendar_named_zone_and_dst(void **state)
{
	if (access("/usr/share/zoneinfo/Europe/Berlin", R_OK) != 0)
		skip();
	struct keel_calendar *c;
	char *s;
	uint64_t n;
	char got[40];
	/* A zone in the expression, local zone UTC. */
	assert_int_equal(keel_calendar_parse("*-*-* 00:00:00 Europe/Berlin", &c), 0);
	assert_int_equal(keel_calendar_to_string(c, &s), 0);
	assert_string_equal(s, "*-*-* 00:00:00 Europe/Berlin");
	keel_free(s);
	assert_int_equal(keel_calendar_next(c, at("2024-03-31 00:30:00"), &n), 0);
	fmt(n, got, sizeof(got));
	assert_string_equal(got, "2024-03-31 22:00:00"); /* summer time: UTC+2 */
	keel_calendar_free(c);
	assert_string_equal(getenv("TZ"), "UTC");  /* restored */

	/* Local zone with DST: 02:30 does not exist on 2024-03-31 and happens twice on
	 * 2024-10-27 (the first, still in summer time, counts). */
	set_tz("Europe/Berlin");
	assert_int_equal(keel_calendar_parse("*-*-* 02:30", &c), 0);
	assert_int_equal(keel_calendar_next(c, at("2024-03-30 22:00:00"), &n), 0);
	fmt(n, got, sizeof(got));
	assert_string_equal(got, "2024-04-01 00:30:00");
	assert_int_equal(keel_calendar_next(c, at("2024-10-26 22:00:00"), &n), 0);
	fmt(n, got, sizeof(got));
	assert_string_equal(got, "2024-10-27 00:30:00");
	assert_int_equal(keel_calendar_next(c, n, &n), 0);
	fmt(n, got, sizeof(got));
	assert_string_equal(got, "2024-10-28 01:30:00");
	keel_calendar_free(c);
	set_tz("UTC");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(calendar_shorthands),
		cmocka_unit_test(calendar_weekdays_lists_ranges),
		cmocka_unit_test(calendar_repetitions_and_dates),
		cmocka_unit_test(calendar_fractions_and_epoch),
		cmocka_unit_test(calendar_rejects_what_systemd_rejects),
		cmocka_unit_test(calendar_named_zone_and_dst),
	};
	return cmocka_run_group_tests_name("init/calendar", tests, utc_setup, NULL);
}
