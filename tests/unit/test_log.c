#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"

/* 2013-07-17T21:10:44.108563358Z */
#define T0 1374095444108563358ll

static int teardown_log(void **state)
{
	keel_log_setup(NULL, KEEL_LOG_INFO, KEEL_LOG_TEXT, 2);
	return 0;
}

/* Format into a heap block of exactly `size` bytes, so that valgrind sees any overrun, and
 * return it NUL-terminated (the formatter itself does not terminate). */
static char *format(unsigned size, enum keel_log_format fmt, enum keel_log_level level,
		    const char *msg, const struct keel_log_field *fields, unsigned n,
		    unsigned *ret_len)
{
	char *line = malloc(size ? size : 1);
	assert_non_null(line);
	unsigned len = keel_log_format_line(line, size, fmt, "ident", T0, level, msg, fields, n);
	assert_true(len <= size);
	char *s = malloc(len + 1);
	assert_non_null(s);
	memcpy(s, line, len);
	s[len] = '\0';
	free(line);
	if (ret_len)
		*ret_len = len;
	return s;
}

static void check_line(enum keel_log_format fmt, enum keel_log_level level, const char *msg,
		       const struct keel_log_field *fields, unsigned n, const char *want)
{
	unsigned len;
	char *s = format(4096, fmt, level, msg, fields, n, &len);
	if (strcmp(s, want) != 0)
		fail_msg("got  %s\nwant %s", s, want);
	assert_int_equal(len, strlen(want));
	free(s);
}

/* Parse a JSON line (with its newline) with jansson; the caller owns the result. */
static json_t *parse_json_line(const char *s)
{
	size_t n = strlen(s);
	assert_true(n > 0);
	assert_int_equal(s[n - 1], '\n');
	assert_null(memchr(s, '\n', n - 1));
	json_error_t jerr;
	json_t *v = json_loadb(s, n, JSON_REJECT_DUPLICATES, &jerr);
	if (!v)
		fail_msg("not JSON (%s): %s", jerr.text, s);
	assert_true(json_is_object(v));
	return v;
}

static void log_text_line_has_timestamp_level_ident_fields(void **state)
{
	const struct keel_log_field f[] = {
		KEEL_LF_STR("k", "v"),
		KEEL_LF_INT("n", 5),
		KEEL_LF_BOOL("b", 1),
	};
	check_line(KEEL_LOG_TEXT, KEEL_LOG_INFO, "msg", f, 3,
		   "2013-07-17T21:10:44.108Z INFO ident: msg k=v n=5 b=true\n");
	check_line(KEEL_LOG_TEXT, KEEL_LOG_DEBUG, "m", NULL, 0,
		   "2013-07-17T21:10:44.108Z DEBUG ident: m\n");
	check_line(KEEL_LOG_TEXT, KEEL_LOG_WARN, "m", NULL, 0,
		   "2013-07-17T21:10:44.108Z WARN ident: m\n");
	check_line(KEEL_LOG_TEXT, KEEL_LOG_ERROR, "m", NULL, 0,
		   "2013-07-17T21:10:44.108Z ERROR ident: m\n");

	const struct keel_log_field nums[] = {
		KEEL_LF_INT("min", INT64_MIN),
		KEEL_LF_INT("max", INT64_MAX),
		KEEL_LF_INT("neg", -1),
		KEEL_LF_INT("zero", 0),
		KEEL_LF_BOOL("no", 0),
		KEEL_LF_BOOL("yes", 42),
	};
	check_line(KEEL_LOG_TEXT, KEEL_LOG_INFO, "nums", nums, 6,
		   "2013-07-17T21:10:44.108Z INFO ident: nums min=-9223372036854775808 "
		   "max=9223372036854775807 neg=-1 zero=0 no=false yes=true\n");

	/* NULL ident and msg have defaults. */
	char line[256];
	unsigned len = keel_log_format_line(line, sizeof(line), KEEL_LOG_TEXT, NULL, T0,
					    KEEL_LOG_INFO, NULL, NULL, 0);
	assert_int_equal(len, strlen("2013-07-17T21:10:44.108Z INFO keel: \n"));
	assert_memory_equal(line, "2013-07-17T21:10:44.108Z INFO keel: \n", len);
}

static void log_text_quotes_values_that_need_it(void **state)
{
	const struct keel_log_field f[] = {
		KEEL_LF_STR("space", "hello world"),
		KEEL_LF_STR("quote", "say \"hi\""),
		KEEL_LF_STR("empty", ""),
		KEEL_LF_STR("null", NULL),
		KEEL_LF_STR("eq", "a=b"),
		KEEL_LF_STR("bs", "C:\\dir"),
		KEEL_LF_STR("nl", "two\nlines\ttab"),
		KEEL_LF_STR("ctl", "\x01"),
		KEEL_LF_STR("bare", "/path/to-file.json:12"),
		KEEL_LF_STR("utf8", "\xc3\xa9t\xc3\xa9"),
	};
	check_line(KEEL_LOG_TEXT, KEEL_LOG_INFO, "q", f, 10,
		   "2013-07-17T21:10:44.108Z INFO ident: q space=\"hello world\" "
		   "quote=\"say \\\"hi\\\"\" empty=\"\" null=\"\" eq=\"a=b\" bs=\"C:\\\\dir\" "
		   "nl=\"two\\nlines\\ttab\" ctl=\"\\u0001\" bare=/path/to-file.json:12 "
		   "utf8=\xc3\xa9t\xc3\xa9\n");
}

static void log_json_line_is_json_with_typed_fields(void **state)
{
	const struct keel_log_field f[] = {
		KEEL_LF_STR("addr", "127.0.0.1"),
		KEEL_LF_INT("port", 2379),
		KEEL_LF_BOOL("tls", 0),
		KEEL_LF_INT("neg", INT64_MIN),
	};
	const char *want = "{\"level\":\"info\",\"msg\":\"listening\","
			   "\"time\":\"2013-07-17T21:10:44.108563358Z\",\"addr\":\"127.0.0.1\","
			   "\"port\":2379,\"tls\":false,\"neg\":-9223372036854775808}\n";
	check_line(KEEL_LOG_JSON, KEEL_LOG_INFO, "listening", f, 4, want);

	json_t *v = parse_json_line(want);
	assert_string_equal(json_string_value(json_object_get(v, "level")), "info");
	assert_string_equal(json_string_value(json_object_get(v, "msg")), "listening");
	assert_string_equal(json_string_value(json_object_get(v, "time")),
			    "2013-07-17T21:10:44.108563358Z");
	assert_true(json_is_integer(json_object_get(v, "port")));
	assert_true(json_integer_value(json_object_get(v, "port")) == 2379);
	assert_true(json_is_false(json_object_get(v, "tls")));
	assert_true(json_integer_value(json_object_get(v, "neg")) == INT64_MIN);
	assert_null(json_object_get(v, "truncated"));
	json_decref(v);

	/* Level names are the lower-case ones logrus uses. */
	static const struct {
		enum keel_log_level level;
		const char *name;
	} levels[] = {
		{KEEL_LOG_DEBUG, "debug"},
		{KEEL_LOG_INFO, "info"},
		{KEEL_LOG_WARN, "warning"},
		{KEEL_LOG_ERROR, "error"},
	};
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		char *s = format(512, KEEL_LOG_JSON, levels[i].level, "m", NULL, 0, NULL);
		v = parse_json_line(s);
		assert_string_equal(json_string_value(json_object_get(v, "level")), levels[i].name);
		json_decref(v);
		free(s);
	}
}

static void log_json_escapes_strings(void **state)
{
	const struct keel_log_field f[] = {
		KEEL_LF_STR("q\"k", "say \"hi\"\\"),
		KEEL_LF_STR("ctl", "a\nb\tc\r\x01\x1f"),
		KEEL_LF_STR("empty", ""),
		KEEL_LF_STR("null", NULL),
		KEEL_LF_STR("utf8", "\xc3\xa9\xe2\x82\xac"),
	};
	char *s = format(4096, KEEL_LOG_JSON, KEEL_LOG_ERROR, "line1\nline2 \"x\"", f, 5, NULL);
	json_t *v = parse_json_line(s);
	assert_string_equal(json_string_value(json_object_get(v, "msg")), "line1\nline2 \"x\"");
	assert_string_equal(json_string_value(json_object_get(v, "q\"k")), "say \"hi\"\\");
	assert_string_equal(json_string_value(json_object_get(v, "ctl")), "a\nb\tc\r\x01\x1f");
	assert_string_equal(json_string_value(json_object_get(v, "empty")), "");
	assert_string_equal(json_string_value(json_object_get(v, "null")), "");
	assert_string_equal(json_string_value(json_object_get(v, "utf8")), "\xc3\xa9\xe2\x82\xac");
	json_decref(v);
	free(s);
}

static void log_text_long_line_is_cut_with_newline(void **state)
{
	char *big = malloc(10241);
	assert_non_null(big);
	memset(big, 'v', 10240);
	big[10240] = '\0';
	const struct keel_log_field f[] = {KEEL_LF_STR("big", big), KEEL_LF_INT("n", 1)};
	unsigned len;
	char *s = format(4096, KEEL_LOG_TEXT, KEEL_LOG_INFO, "msg", f, 2, &len);
	assert_int_equal(len, 4096);
	assert_int_equal(s[len - 1], '\n');
	assert_null(memchr(s, '\n', len - 1));
	const char *head = "2013-07-17T21:10:44.108Z INFO ident: msg big=vvv";
	assert_memory_equal(s, head, strlen(head));
	free(s);

	/* A line that fits exactly is not cut; one byte less and it is. */
	char *full = format(4096, KEEL_LOG_TEXT, KEEL_LOG_INFO, "exact", NULL, 0, &len);
	unsigned exact = len;
	char *again = format(exact, KEEL_LOG_TEXT, KEEL_LOG_INFO, "exact", NULL, 0, &len);
	assert_int_equal(len, exact);
	assert_string_equal(again, full);
	free(again);
	again = format(exact - 1, KEEL_LOG_TEXT, KEEL_LOG_INFO, "exact", NULL, 0, &len);
	assert_int_equal(len, exact - 1);
	assert_memory_equal(again, full, exact - 2);
	assert_int_equal(again[exact - 2], '\n');
	free(again);
	free(full);
	free(big);
}

/* A JSON line that did not fit: still one valid JSON object, flagged, on one line. */
static json_t *check_truncated_json(unsigned size, const char *msg,
				    const struct keel_log_field *f, unsigned n)
{
	unsigned len;
	char *s = format(size, KEEL_LOG_JSON, KEEL_LOG_WARN, msg, f, n, &len);
	assert_true(len <= size);
	json_t *v = parse_json_line(s);
	assert_true(json_is_true(json_object_get(v, "truncated")));
	assert_string_equal(json_string_value(json_object_get(v, "level")), "warning");
	assert_string_equal(json_string_value(json_object_get(v, "time")),
			    "2013-07-17T21:10:44.108563358Z");
	assert_true(json_is_string(json_object_get(v, "msg")));
	free(s);
	return v;
}

static void log_json_long_line_stays_valid_json(void **state)
{
	char *big = malloc(10241);
	assert_non_null(big);
	memset(big, 'v', 10240);
	big[10240] = '\0';
	const struct keel_log_field f[] = {
		KEEL_LF_STR("before", "x"),
		KEEL_LF_STR("big", big),
		KEEL_LF_INT("n", 1),
	};
	json_t *v = check_truncated_json(4096, "short message", f, 3);
	/* The message survives; the fields that made the line too long are dropped. */
	assert_string_equal(json_string_value(json_object_get(v, "msg")), "short message");
	assert_null(json_object_get(v, "big"));
	json_decref(v);

	/* A long message is shortened. */
	v = check_truncated_json(4096, big, NULL, 0);
	const char *m = json_string_value(json_object_get(v, "msg"));
	assert_true(strlen(m) > 0 && strlen(m) < 4096);
	assert_memory_equal(m, big, strlen(m));
	json_decref(v);

	/* Smaller buffers, as long as the flagged line itself fits. */
	for (unsigned size = 160; size <= 4096; size += 97) {
		v = check_truncated_json(size, big, f, 3);
		json_decref(v);
	}
	free(big);
}

static void log_json_cut_message_keeps_utf8_and_escapes_whole(void **state)
{
	/* "a" then 5000 two-byte characters: the cut falls inside one unless it is careful. */
	char *accents = malloc(1 + 2 * 5000 + 1);
	assert_non_null(accents);
	accents[0] = 'a';
	for (int i = 0; i < 5000; i++)
		memcpy(accents + 1 + 2 * i, "\xc3\xa9", 2);
	accents[1 + 2 * 5000] = '\0';
	for (unsigned size = 300; size <= 4096; size += 101) {
		json_t *v = check_truncated_json(size, accents, NULL, 0);
		const char *m = json_string_value(json_object_get(v, "msg"));
		assert_true(strlen(m) > 1);
		assert_memory_equal(m, accents, strlen(m));
		json_decref(v);
	}

	/* Three- and four-byte characters too. */
	char *wide = malloc(4 * 3000 + 2);
	assert_non_null(wide);
	for (int i = 0; i < 3000; i++)
		memcpy(wide + 4 * i, i % 2 ? "\xf0\x9f\x98\x80" : "\xe2\x82\xac.", 4);
	wide[4 * 3000] = '\0';
	for (unsigned size = 300; size <= 4096; size += 101) {
		json_t *v = check_truncated_json(size, wide, NULL, 0);
		json_decref(v);
	}

	/* Control characters grow six-fold when escaped: the shortened message must still fit. */
	char *ctl = malloc(10001);
	assert_non_null(ctl);
	memset(ctl, '\x01', 10000);
	ctl[10000] = '\0';
	json_t *v = check_truncated_json(4096, ctl, NULL, 0);
	const char *m = json_string_value(json_object_get(v, "msg"));
	assert_true(strlen(m) > 0);
	assert_memory_equal(m, ctl, strlen(m));
	json_decref(v);

	/* Quotes double. */
	memset(ctl, '"', 10000);
	v = check_truncated_json(4096, ctl, NULL, 0);
	json_decref(v);
	free(ctl);
	free(wide);
	free(accents);
}

static void log_json_replaces_invalid_utf8_and_stays_json(void **state)
{
	struct keel_log_field f = KEEL_LF_STR("path", "/a\xff\xe2\x82" "b\xe2\x82\xac");
	char *s = format(4096, KEEL_LOG_JSON, KEEL_LOG_WARN, "bad \xc0\x80 byte", &f, 1, NULL);
	json_t *v = parse_json_line(s);
	assert_string_equal(json_string_value(json_object_get(v, "msg")),
			    "bad \xef\xbf\xbd\xef\xbf\xbd byte");
	/* Each bad byte is one U+FFFD; the valid euro sign passes through. */
	assert_string_equal(json_string_value(json_object_get(v, "path")),
			    "/a\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" "b\xe2\x82\xac");
	json_decref(v);
	free(s);
}

static void log_text_message_stays_one_line(void **state)
{
	char *s = format(4096, KEEL_LOG_TEXT, KEEL_LOG_INFO, "two\nlines\tand\x01", NULL, 0, NULL);
	assert_non_null(strstr(s, "ident: two\\nlines\\x09and\\x01\n"));
	assert_int_equal(strchr(s, '\n') - s, (long)strlen(s) - 1);
	free(s);
}

static void log_tiny_buffers_do_not_crash(void **state)
{
	char big[600];
	memset(big, '\x02', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	const struct keel_log_field f[] = {
		KEEL_LF_STR("k", big),
		KEEL_LF_INT("n", -77),
		KEEL_LF_BOOL("b", 1),
	};
	char none = '#';
	assert_int_equal(keel_log_format_line(&none, 0, KEEL_LOG_TEXT, "i", T0, KEEL_LOG_INFO, "m",
					      f, 3), 0);
	assert_int_equal(keel_log_format_line(&none, 0, KEEL_LOG_JSON, "i", T0, KEEL_LOG_INFO, "m",
					      f, 3), 0);
	assert_int_equal(none, '#');
	for (unsigned size = 1; size < 300; size++) {
		for (int fmt = KEEL_LOG_TEXT; fmt <= KEEL_LOG_JSON; fmt++) {
			unsigned len;
			char *s = format(size, (enum keel_log_format)fmt, KEEL_LOG_ERROR, big, f, 3,
					 &len);
			assert_true(len >= 1);
			assert_int_equal(s[len - 1], '\n');
			free(s);
		}
	}
}

static void log_parse_level_and_format(void **state)
{
	static const struct {
		const char *s;
		enum keel_log_level level;
	} ok[] = {
		{"debug", KEEL_LOG_DEBUG}, {"DEBUG", KEEL_LOG_DEBUG},  {"info", KEEL_LOG_INFO},
		{"Info", KEEL_LOG_INFO},   {"warn", KEEL_LOG_WARN},    {"warning", KEEL_LOG_WARN},
		{"WARNING", KEEL_LOG_WARN}, {"error", KEEL_LOG_ERROR}, {"ERROR", KEEL_LOG_ERROR},
		{"off", KEEL_LOG_OFF},     {"Off", KEEL_LOG_OFF},
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		enum keel_log_level l = (enum keel_log_level)99;
		assert_int_equal(keel_log_parse_level(ok[i].s, &l), 0);
		assert_int_equal(l, ok[i].level);
	}
	static const char *const bad[] = {"", "fatal", "warnings", "inf", "debug ", " info", "err"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		enum keel_log_level l = (enum keel_log_level)99;
		assert_int_equal(keel_log_parse_level(bad[i], &l), -EINVAL);
		assert_int_equal(l, 99);
	}
	enum keel_log_level l = KEEL_LOG_INFO;
	assert_int_equal(keel_log_parse_level(NULL, &l), -EINVAL);

	enum keel_log_format f = (enum keel_log_format)99;
	assert_int_equal(keel_log_parse_format("text", &f), 0);
	assert_int_equal(f, KEEL_LOG_TEXT);
	assert_int_equal(keel_log_parse_format("json", &f), 0);
	assert_int_equal(f, KEEL_LOG_JSON);
	f = (enum keel_log_format)99;
	assert_int_equal(keel_log_parse_format("xml", &f), -EINVAL);
	assert_int_equal(keel_log_parse_format("", &f), -EINVAL);
	assert_int_equal(keel_log_parse_format("jsonx", &f), -EINVAL);
	assert_int_equal(keel_log_parse_format(NULL, &f), -EINVAL);
	assert_int_equal(f, 99);
}

static void log_threshold_filters_levels(void **state)
{
	keel_log_set_level(KEEL_LOG_WARN);
	assert_int_equal(keel_log_get_level(), KEEL_LOG_WARN);
	assert_false(keel_log_enabled(KEEL_LOG_DEBUG));
	assert_false(keel_log_enabled(KEEL_LOG_INFO));
	assert_true(keel_log_enabled(KEEL_LOG_WARN));
	assert_true(keel_log_enabled(KEEL_LOG_ERROR));
	assert_false(keel_log_enabled(KEEL_LOG_OFF));

	keel_log_set_level(KEEL_LOG_DEBUG);
	assert_true(keel_log_enabled(KEEL_LOG_DEBUG));
	assert_true(keel_log_enabled(KEEL_LOG_ERROR));

	/* OFF silences everything, errors included. */
	keel_log_set_level(KEEL_LOG_OFF);
	assert_false(keel_log_enabled(KEEL_LOG_ERROR));
	assert_false(keel_log_enabled(KEEL_LOG_OFF));

	keel_log_setup("x", KEEL_LOG_ERROR, KEEL_LOG_TEXT, 2);
	assert_int_equal(keel_log_get_level(), KEEL_LOG_ERROR);
	assert_false(keel_log_enabled(KEEL_LOG_WARN));
}

/* Everything currently in the pipe's read end (non-blocking). */
static size_t drain(int fd, char *out, size_t size)
{
	size_t n = 0;
	for (;;) {
		ssize_t r = read(fd, out + n, size - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	out[n] = '\0';
	return n;
}

static void log_writes_one_line_to_fd_and_keeps_errno(void **state)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	assert_int_equal(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
	char out[8192];

	keel_log_setup("tester", KEEL_LOG_INFO, KEEL_LOG_TEXT, p[1]);
	int64_t before = keel_wall_ns();
	errno = EXDEV;
	keel_log(KEEL_LOG_WARN, "hello there", KEEL_LF_STR("who", "world"), KEEL_LF_INT("n", 3));
	assert_int_equal(errno, EXDEV);
	int64_t after = keel_wall_ns();

	size_t n = drain(p[0], out, sizeof(out));
	assert_true(n > 0);
	assert_int_equal(out[n - 1], '\n');
	assert_null(memchr(out, '\n', n - 1));
	const char *rest = strchr(out, ' ');
	assert_non_null(rest);
	assert_string_equal(rest, " WARN tester: hello there who=world n=3\n");
	/* The timestamp is now, in the millisecond form. */
	char ts[KEEL_RFC3339_MAX];
	assert_true((size_t)(rest - out) < sizeof(ts));
	memcpy(ts, out, (size_t)(rest - out));
	ts[rest - out] = '\0';
	assert_int_equal(strlen(ts), 24);
	int64_t t;
	assert_int_equal(keel_parse_rfc3339(ts, &t), 0);
	assert_true(t >= before - KEEL_NSEC_PER_MSEC && t <= after);

	/* Below the threshold nothing is written, and errno is left alone too. */
	errno = ENOTTY;
	keel_log(KEEL_LOG_DEBUG, "hidden", KEEL_LF_INT("n", 1));
	keel_logf(KEEL_LOG_DEBUG, "hidden %d", 2);
	assert_int_equal(errno, ENOTTY);
	assert_int_equal(drain(p[0], out, sizeof(out)), 0);

	/* keel_logf formats the message. */
	errno = EPIPE;
	keel_logf(KEEL_LOG_ERROR, "failed %d times: %s", 3, "boom");
	assert_int_equal(errno, EPIPE);
	n = drain(p[0], out, sizeof(out));
	rest = strchr(out, ' ');
	assert_non_null(rest);
	assert_string_equal(rest, " ERROR tester: failed 3 times: boom\n");

	/* JSON lines through the same path. */
	keel_log_setup("tester", KEEL_LOG_DEBUG, KEEL_LOG_JSON, p[1]);
	errno = EAGAIN;
	keel_log(KEEL_LOG_DEBUG, "j", KEEL_LF_BOOL("ok", 1));
	assert_int_equal(errno, EAGAIN);
	n = drain(p[0], out, sizeof(out));
	json_t *v = parse_json_line(out);
	assert_string_equal(json_string_value(json_object_get(v, "level")), "debug");
	assert_string_equal(json_string_value(json_object_get(v, "msg")), "j");
	assert_true(json_is_true(json_object_get(v, "ok")));
	assert_int_equal(keel_parse_rfc3339(json_string_value(json_object_get(v, "time")), &t), 0);
	json_decref(v);

	/* A failing write does not leak its errno either. */
	assert_int_equal(close(p[1]), 0);
	keel_log_setup("tester", KEEL_LOG_INFO, KEEL_LOG_TEXT, p[1]);
	errno = ERANGE;
	keel_log(KEEL_LOG_ERROR, "nowhere", KEEL_LF_INT("n", 1));
	assert_int_equal(errno, ERANGE);
	assert_int_equal(close(p[0]), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(log_text_line_has_timestamp_level_ident_fields),
		cmocka_unit_test(log_text_quotes_values_that_need_it),
		cmocka_unit_test(log_json_line_is_json_with_typed_fields),
		cmocka_unit_test(log_json_escapes_strings),
		cmocka_unit_test(log_text_long_line_is_cut_with_newline),
		cmocka_unit_test(log_json_long_line_stays_valid_json),
		cmocka_unit_test(log_json_cut_message_keeps_utf8_and_escapes_whole),
		cmocka_unit_test(log_json_replaces_invalid_utf8_and_stays_json),
		cmocka_unit_test(log_text_message_stays_one_line),
		cmocka_unit_test(log_tiny_buffers_do_not_crash),
		cmocka_unit_test(log_parse_level_and_format),
		cmocka_unit_test_teardown(log_threshold_filters_levels, teardown_log),
		cmocka_unit_test_teardown(log_writes_one_line_to_fd_and_keeps_errno, teardown_log),
	};
	return cmocka_run_group_tests_name("base/log", tests, NULL, NULL);
}
