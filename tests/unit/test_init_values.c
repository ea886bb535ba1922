/* systemd's value syntaxes (lib/init/values.c). Expected values were checked with
 * systemd-analyze timespan and systemd-analyze verify. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "init/values.h"

#define SEC KEEL_USEC_PER_SEC

static void values_booleans(void **state)
{
	const char *yes[] = {"1", "yes", "y", "true", "t", "on", "YES", "On", "TRUE"};
	const char *no[] = {"0", "no", "n", "false", "f", "off", "No", "OFF"};
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		assert_int_equal(keel_parse_boolean(yes[i]), 1);
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		assert_int_equal(keel_parse_boolean(no[i]), 0);
	assert_int_equal(keel_parse_boolean(""), -EINVAL);
	assert_int_equal(keel_parse_boolean("maybe"), -EINVAL);
	assert_int_equal(keel_parse_boolean(" yes"), -EINVAL);
}

static uint64_t sec(const char *s)
{
	uint64_t v = 12345;
	int r = keel_parse_sec(s, &v);
	return r < 0 ? (uint64_t)r : v;
}

static void values_time_spans(void **state)
{
	/* each pair as systemd-analyze timespan prints it */
	assert_int_equal(sec("5"), 5 * SEC);
	assert_int_equal(sec("5 min"), 300 * SEC);
	assert_int_equal(sec("5min 20s"), 320 * SEC);
	assert_int_equal(sec("1.5"), 1500000);
	assert_int_equal(sec(".5"), 500000);
	assert_int_equal(sec("+5s"), 5 * SEC);
	assert_int_equal(sec("5s 3"), 8 * SEC);
	assert_int_equal(sec("1min30"), 90 * SEC);
	assert_int_equal(sec("5 5"), 10 * SEC);
	assert_int_equal(sec("1.5 .5"), 2 * SEC);
	assert_int_equal(sec("1.5s.5"), 2 * SEC);
	assert_int_equal(sec("1y"), 31557600 * SEC);
	assert_int_equal(sec("1M"), 2629800 * SEC);
	assert_int_equal(sec("1 months"), 2629800 * SEC);
	assert_int_equal(sec("1w 2d"), 777600 * SEC);
	assert_int_equal(sec("2\xc2\xb5s"), 2);
	assert_int_equal(sec("2 \xce\xbcs"), 2);
	assert_int_equal(sec("5 msec"), 5000);
	assert_int_equal(sec("1h 30min"), 5400 * SEC);
	assert_int_equal(sec("0.0000001s"), 0);
	assert_int_equal(sec("1.123456789s"), 1123456);
	assert_int_equal(sec("0"), 0);
	assert_true(sec(" infinity ") == KEEL_USEC_INFINITY);
	/* and the refusals */
	assert_int_equal((int64_t)sec("1."), -EINVAL);
	assert_int_equal((int64_t)sec("5x"), -EINVAL);
	assert_int_equal((int64_t)sec("-1"), -ERANGE);
	assert_int_equal((int64_t)sec("3.sec"), -EINVAL);
	assert_int_equal((int64_t)sec("1e3"), -EINVAL);
	assert_int_equal((int64_t)sec("01:30"), -EINVAL);
	assert_int_equal((int64_t)sec("1.5.5"), -EINVAL);
	assert_int_equal((int64_t)sec("5mins"), -EINVAL);
	assert_int_equal((int64_t)sec("18446744073709551615"), -ERANGE);
	assert_int_equal((int64_t)sec("584542y"), -ERANGE);
	assert_int_equal((int64_t)sec("   "), -EINVAL);
	assert_int_equal((int64_t)sec(""), -EINVAL);
	assert_int_equal((int64_t)sec("infinity x"), -EINVAL);
	uint64_t v;
	assert_int_equal(keel_parse_sec_fix_0("0", &v), 0);
	assert_true(v == KEEL_USEC_INFINITY);
	assert_int_equal(keel_parse_time("10", 1, &v), 0); /* default unit µs (LimitRTTIME=) */
	assert_int_equal(v, 10);
}

static void values_format_timespan(void **state)
{
	char b[64];
	assert_string_equal(keel_format_timespan(b, sizeof(b), 320 * SEC, 1), "5min 20s");
	assert_string_equal(keel_format_timespan(b, sizeof(b), 5400 * SEC, 1), "1h 30min");
	assert_string_equal(keel_format_timespan(b, sizeof(b), 1500000, 1), "1.500000s");
	assert_string_equal(keel_format_timespan(b, sizeof(b), 1500000, 1000), "1.500s");
	assert_string_equal(keel_format_timespan(b, sizeof(b), 0, 1), "0");
	assert_string_equal(keel_format_timespan(b, sizeof(b), KEEL_USEC_INFINITY, 1), "infinity");
	assert_string_equal(keel_format_timespan(b, sizeof(b), 2629800 * SEC, 1), "1month");
	/* what it prints parses back */
	uint64_t v;
	assert_int_equal(keel_parse_sec(keel_format_timespan(b, sizeof(b), 93784005006ull, 1), &v), 0);
	assert_int_equal(v, 93784005006ull);
}

static void values_sizes(void **state)
{
	uint64_t v;
	assert_int_equal(keel_parse_size("1.5G", 1024, &v), 0);
	assert_int_equal(v, 1610612736ull);
	assert_int_equal(keel_parse_size("1G 512M", 1024, &v), 0);
	assert_int_equal(v, 1610612736ull);
	assert_int_equal(keel_parse_size("10K", 1000, &v), 0);
	assert_int_equal(v, 10000);
	assert_int_equal(keel_parse_size("123", 1024, &v), 0);
	assert_int_equal(v, 123);
	assert_int_equal(keel_parse_size("4B", 1024, &v), 0);
	assert_int_equal(keel_parse_size("1M 1G", 1024, &v), -EINVAL); /* suffixes must shrink */
	assert_int_equal(keel_parse_size("5x", 1024, &v), -EINVAL);
	assert_int_equal(keel_parse_size("-5", 1024, &v), -ERANGE);
	assert_int_equal(keel_parse_size("20E", 1024, &v), -ERANGE);
}

static void values_percentages(void **state)
{
	assert_int_equal(keel_parse_permyriad("50%"), 5000);
	assert_int_equal(keel_parse_permyriad("12.5%"), 1250);
	assert_int_equal(keel_parse_permyriad("12.34%"), 1234);
	assert_int_equal(keel_parse_permyriad("7\xe2\x80\xb0"), 70);   /* 7‰ */
	assert_int_equal(keel_parse_permyriad("7.5\xe2\x80\xb0"), 75);
	assert_int_equal(keel_parse_permyriad("33\xe2\x80\xb1"), 33);   /* 33‱ */
	assert_int_equal(keel_parse_permyriad("101%"), -ERANGE);
	assert_int_equal(keel_parse_permyriad_unbounded("150%"), 15000);
	assert_int_equal(keel_parse_permyriad("5.%"), -EINVAL);
	assert_int_equal(keel_parse_permyriad("5.123%"), -EINVAL);
	assert_int_equal(keel_parse_permyriad("5"), -EINVAL);
	assert_int_equal(keel_parse_permyriad("-5%"), -ERANGE);
}

static void values_signals(void **state)
{
	assert_int_equal(keel_signal_from_string("SIGTERM"), SIGTERM);
	assert_int_equal(keel_signal_from_string("TERM"), SIGTERM);
	assert_int_equal(keel_signal_from_string("9"), SIGKILL);
	assert_int_equal(keel_signal_from_string("SIGRTMIN+3"), SIGRTMIN + 3);
	assert_int_equal(keel_signal_from_string("RTMAX-1"), SIGRTMAX - 1);
	assert_int_equal(keel_signal_from_string("RTMIN"), SIGRTMIN);
	assert_int_equal(keel_signal_from_string("IOT"), SIGABRT);
	assert_int_equal(keel_signal_from_string("0"), -ERANGE);
	assert_int_equal(keel_signal_from_string("70"), -ERANGE);
	assert_int_equal(keel_signal_from_string("SIGFOO"), -EINVAL);
	assert_int_equal(keel_signal_from_string("sigterm"), -EINVAL); /* names are upper case */
	assert_int_equal(keel_signal_from_string("RTMIN+99"), -ERANGE);
	char buf[16];
	assert_string_equal(keel_signal_to_string(SIGHUP, buf, sizeof(buf)), "HUP");
	assert_string_equal(keel_signal_to_string(SIGRTMIN + 2, buf, sizeof(buf)), "RTMIN+2");
}

static void values_exit_statuses(void **state)
{
	assert_int_equal(keel_exit_status_from_string("0"), 0);
	assert_int_equal(keel_exit_status_from_string("255"), 255);
	assert_int_equal(keel_exit_status_from_string("SUCCESS"), 0);
	assert_int_equal(keel_exit_status_from_string("CHDIR"), 200);
	assert_int_equal(keel_exit_status_from_string("TEMPFAIL"), 75);
	assert_int_equal(keel_exit_status_from_string("256"), -ERANGE);
	assert_int_equal(keel_exit_status_from_string("TERM"), -EINVAL); /* a signal, not a status */
	assert_string_equal(keel_exit_status_to_string(203), "EXEC");
}

static void values_modes_and_nice(void **state)
{
	mode_t m;
	assert_int_equal(keel_parse_mode("0022", &m), 0);
	assert_int_equal(m, 022);
	assert_int_equal(keel_parse_mode("7777", &m), 0);
	assert_int_equal(keel_parse_mode("10000", &m), -ERANGE);
	assert_int_equal(keel_parse_mode("0999", &m), -EINVAL);
	assert_int_equal(keel_parse_mode("-1", &m), -EINVAL);
	assert_int_equal(keel_parse_mode("", &m), -EINVAL);
	int n;
	assert_int_equal(keel_parse_nice("-20", &n), 0);
	assert_int_equal(n, -20);
	assert_int_equal(keel_parse_nice("19", &n), 0);
	assert_int_equal(keel_parse_nice("20", &n), -ERANGE);
	assert_int_equal(keel_parse_nice("x", &n), -EINVAL);
}

static void values_rlimits(void **state)
{
	uint64_t s, h;
	assert_int_equal(keel_rlimit_from_name("NOFILE"), RLIMIT_NOFILE);
	assert_int_equal(keel_rlimit_from_name("FOO"), -EINVAL);
	assert_int_equal(keel_rlimit_parse(RLIMIT_NOFILE, "1024:4096", &s, &h), 0);
	assert_int_equal(s, 1024);
	assert_int_equal(h, 4096);
	assert_int_equal(keel_rlimit_parse(RLIMIT_NOFILE, "infinity", &s, &h), 0);
	assert_true(s == KEEL_RLIMIT_INFINITY && h == KEEL_RLIMIT_INFINITY);
	assert_int_equal(keel_rlimit_parse(RLIMIT_NOFILE, "10:5", &s, &h), -EILSEQ);
	assert_int_equal(keel_rlimit_parse(RLIMIT_NOFILE, "infinity:5", &s, &h), -EILSEQ);
	assert_int_equal(keel_rlimit_parse(RLIMIT_NOFILE, "1K", &s, &h), -EINVAL); /* a count */
	assert_int_equal(keel_rlimit_parse(RLIMIT_AS, "1K", &s, &h), 0);
	assert_int_equal(s, 1024);
	assert_int_equal(keel_rlimit_parse(RLIMIT_CPU, "5min:infinity", &s, &h), 0);
	assert_int_equal(s, 300); /* seconds */
	assert_true(h == KEEL_RLIMIT_INFINITY);
	assert_int_equal(keel_rlimit_parse(RLIMIT_CPU, "1.5", &s, &h), 0);
	assert_int_equal(s, 2); /* rounded up */
	assert_int_equal(keel_rlimit_parse(RLIMIT_RTTIME, "1ms", &s, &h), 0);
	assert_int_equal(s, 1000); /* µs */
	assert_int_equal(keel_rlimit_parse(RLIMIT_NICE, "+5", &s, &h), 0);
	assert_int_equal(s, 15);
	assert_int_equal(keel_rlimit_parse(RLIMIT_NICE, "-20", &s, &h), 0);
	assert_int_equal(s, 40);
	assert_int_equal(keel_rlimit_parse(RLIMIT_NICE, "-21", &s, &h), -ERANGE);
	assert_int_equal(keel_rlimit_parse(RLIMIT_NICE, "40", &s, &h), 0);
	assert_int_equal(keel_rlimit_parse(RLIMIT_NICE, "41", &s, &h), -ERANGE);
	assert_int_equal(keel_rlimit_parse(RLIMIT_NOFILE, "", &s, &h), -EINVAL);
}

static void values_cgroup_weights(void **state)
{
	uint64_t v;
	assert_int_equal(keel_cg_cpu_weight_parse("idle", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(keel_cg_cpu_weight_parse("10000", &v), 0);
	assert_int_equal(keel_cg_cpu_weight_parse("0", &v), -ERANGE);
	assert_int_equal(keel_cg_weight_parse("10001", &v), -ERANGE);
	assert_int_equal(keel_cg_cpu_shares_parse("1", &v), -ERANGE);
	assert_int_equal(keel_cg_cpu_shares_parse("2", &v), 0);
	assert_int_equal(keel_cg_blkio_weight_parse("5", &v), -ERANGE);
	assert_int_equal(keel_cg_blkio_weight_parse("1000", &v), 0);
}

static void values_paths(void **state)
{
	char p1[] = "///foo//./bar/.", p2[] = ".//./foo//./bar/", p3[] = "/", p4[] = "/./";
	assert_string_equal(keel_path_simplify(p1), "/foo/bar");
	assert_string_equal(keel_path_simplify(p2), "foo/bar");
	assert_string_equal(keel_path_simplify(p3), "/");
	assert_string_equal(keel_path_simplify(p4), "/");
	assert_true(keel_path_is_normalized("/a/b"));
	assert_false(keel_path_is_normalized("/a/../b"));
	assert_false(keel_path_is_normalized("/a//b"));
	assert_false(keel_path_is_normalized("/a/./b"));
	char longname[300];
	memset(longname, 'x', sizeof(longname) - 1);
	longname[0] = '/';
	longname[sizeof(longname) - 1] = '\0';
	assert_false(keel_path_is_valid(longname)); /* a component above NAME_MAX */
	assert_true(keel_filename_is_valid("true"));
	assert_false(keel_filename_is_valid(".."));
	assert_false(keel_filename_is_valid("a/b"));
}

static void values_socket_addresses(void **state)
{
	struct keel_sockaddr a;
	char buf[128];
	assert_int_equal(keel_sockaddr_parse("80", &a), 0);
	assert_int_equal(a.kind, KEEL_SOCKADDR_PORT);
	assert_int_equal(a.port, 80);
	assert_int_equal(keel_sockaddr_parse("+80", &a), 0);
	assert_int_equal(keel_sockaddr_parse("127.0.0.1:8080", &a), 0);
	assert_int_equal(a.kind, KEEL_SOCKADDR_INET);
	assert_int_equal(keel_sockaddr_format(&a, NULL, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "127.0.0.1:8080");
	assert_int_equal(keel_sockaddr_parse("[::1]:53", &a), 0);
	assert_int_equal(a.kind, KEEL_SOCKADDR_INET6);
	assert_int_equal(keel_sockaddr_format(&a, NULL, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "[::1]:53");
	assert_int_equal(keel_sockaddr_parse("10.0.0.1:80%eth0", &a), 0);
	assert_string_equal(a.ifname, "eth0");
	assert_int_equal(keel_sockaddr_parse("/run/x.sock", &a), 0);
	assert_int_equal(a.kind, KEEL_SOCKADDR_UNIX);
	assert_int_equal(keel_sockaddr_parse("@abstract", &a), 0);
	assert_int_equal(a.kind, KEEL_SOCKADDR_ABSTRACT);
	assert_int_equal(keel_sockaddr_parse("0", &a), -EINVAL);
	assert_int_equal(keel_sockaddr_parse("080", &a), -EINVAL);
	assert_int_equal(keel_sockaddr_parse("70000", &a), -ERANGE);
	assert_int_equal(keel_sockaddr_parse("1.2.3.4", &a), -EINVAL);
	assert_int_equal(keel_sockaddr_parse("::1", &a), -EINVAL);
	assert_int_equal(keel_sockaddr_parse("1.2.3.4:080", &a), -EINVAL);
	assert_int_equal(keel_sockaddr_parse("x:y", &a), -EINVAL);
	assert_int_equal(keel_sockaddr_parse("relative", &a), -EINVAL);
	assert_int_equal(keel_sockaddr_parse("vsock:1:2", &a), -EAFNOSUPPORT);
	char longpath[120];
	memset(longpath, 'y', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	assert_int_equal(keel_sockaddr_parse(longpath, &a), -ENAMETOOLONG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(values_booleans),
		cmocka_unit_test(values_time_spans),
		cmocka_unit_test(values_format_timespan),
		cmocka_unit_test(values_sizes),
		cmocka_unit_test(values_percentages),
		cmocka_unit_test(values_signals),
		cmocka_unit_test(values_exit_statuses),
		cmocka_unit_test(values_modes_and_nice),
		cmocka_unit_test(values_rlimits),
		cmocka_unit_test(values_cgroup_weights),
		cmocka_unit_test(values_paths),
		cmocka_unit_test(values_socket_addresses),
	};
	return cmocka_run_group_tests_name("init/values", tests, NULL, NULL);
}
