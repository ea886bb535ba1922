/* The line grammar (lib/init/syntax.c) against what systemd 252's conf-parser.c does; every
 * expectation here was checked with systemd-analyze verify. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "init/syntax.h"
#include "test_init_util.h"

struct seen {
	char items[64][256]; /* "line|section|key|value" */
	int n;
	int fail_at_key; /* return -EIO when this many assignments were seen (0: never) */
	struct diag_log log;
};

static enum keel_section_kind section(void *ud, const char *name)
{
	if (strcmp(name, "Known") == 0 || strcmp(name, "Other") == 0 || strncmp(name, "X-", 2) == 0)
		return KEEL_SECTION_KNOWN;
	if (strcmp(name, "Quiet") == 0)
		return KEEL_SECTION_IGNORE;
	return KEEL_SECTION_UNKNOWN;
}

static int assign(void *ud, const struct keel_syntax_item *it)
{
	struct seen *s = ud;
	if (s->n < 64)
		snprintf(s->items[s->n++], sizeof(s->items[0]), "%u|%s|%s|%s", it->line, it->section,
			 it->key, it->value);
	if (s->fail_at_key && s->n == s->fail_at_key)
		return -EIO;
	return 0;
}

static const struct keel_syntax_ops ops = {section, assign};

static int parse_n(struct seen *s, const char *text, size_t len)
{
	memset(s, 0, sizeof(*s));
	struct keel_diag_sink sink = {diag_collect, &s->log};
	return keel_syntax_parse("t.service", "t.service", text, len, &ops, s, &sink);
}

static int parse(struct seen *s, const char *text)
{
	return parse_n(s, text, strlen(text));
}

static void syntax_sections_keys_values_are_trimmed(void **state)
{
	struct seen s;
	assert_int_equal(parse(&s, "  [Known]  \n\tKey = value with  spaces \t\nEmpty=\n"), 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.items[0], "2|Known|Key|value with  spaces");
	assert_string_equal(s.items[1], "3|Known|Empty|");
	assert_int_equal(s.log.n, 0);
}

static void syntax_comments_only_at_line_start(void **state)
{
	struct seen s;
	assert_int_equal(parse(&s, "# c\n[Known]\n  ; c\n\t# c\nA=b # not a comment\n"), 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.items[0], "5|Known|A|b # not a comment");
}

static void syntax_continuation_joins_with_a_space(void **state)
{
	struct seen s;
	/* The backslash becomes a space; comment lines inside are skipped; the line number is the
	 * last physical line's. */
	assert_int_equal(parse(&s, "[Known]\nA=one \\\n# skipped\n  two\\\n; also skipped\nthree\nB=x\n"), 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.items[0], "6|Known|A|one    two three");
	assert_string_equal(s.items[1], "7|Known|B|x");
}

static void syntax_escaped_backslash_does_not_continue(void **state)
{
	struct seen s;
	assert_int_equal(parse(&s, "[Known]\nA=x\\\\\nB=y\n"), 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.items[0], "2|Known|A|x\\\\");
}

static void syntax_empty_line_ends_continuation(void **state)
{
	struct seen s;
	assert_int_equal(parse(&s, "[Known]\nA=x \\\n\nB=y\n"), 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.items[0], "3|Known|A|x");
	assert_string_equal(s.items[1], "4|Known|B|y");
}

static void syntax_continuation_at_end_counts_one_more_line(void **state)
{
	struct seen s;
	assert_int_equal(parse(&s, "[Known]\nA=x \\\n  y \\"), 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.items[0], "4|Known|A|x    y");
}

static void syntax_line_endings_like_read_line(void **state)
{
	struct seen s;
	/* \r\n and \n\r are one line end, \n\n two, \r alone one, NUL ends a line too. */
	static const char text[] = "[Known]\r\nA=1\n\rB=2\n\nC=3\rD=4\0E=5\r\n\0F=6";
	assert_int_equal(parse_n(&s, text, sizeof(text) - 1), 0);
	assert_int_equal(s.n, 6);
	assert_string_equal(s.items[0], "2|Known|A|1");
	assert_string_equal(s.items[1], "3|Known|B|2");
	assert_string_equal(s.items[2], "5|Known|C|3");
	assert_string_equal(s.items[3], "6|Known|D|4");
	assert_string_equal(s.items[4], "7|Known|E|5");
	assert_string_equal(s.items[5], "8|Known|F|6");
}

static void syntax_bom_dropped_once(void **state)
{
	struct seen s;
	assert_int_equal(parse(&s, "\xef\xbb\xbf[Known]\nA=\xef\xbb\xbfx\n"), 0);
	assert_int_equal(s.n, 1);
	/* only the first BOM goes; the second belongs to the value */
	assert_string_equal(s.items[0], "2|Known|A|\xef\xbb\xbfx");
}

static void syntax_missing_equals_and_key_warn_and_go_on(void **state)
{
	struct seen s;
	assert_int_equal(parse(&s, "[Known]\nNoEquals\n=value\nA=ok\n"), 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.log.n, 2);
	assert_string_equal(s.log.lines[0], "t.service:2: Missing '=', ignoring line.");
	assert_string_equal(s.log.lines[1], "t.service:3: Missing key name before '=', ignoring line.");
}

static void syntax_assignment_outside_section_warns(void **state)
{
	struct seen s;
	assert_int_equal(parse(&s, "A=1\n[Known]\nB=2\n"), 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.log.lines[0], "t.service:1: Assignment outside of section. Ignoring.");
}

static void syntax_unknown_section_warns_once_and_skips(void **state)
{
	struct seen s;
	assert_int_equal(parse(&s, "[Bogus]\nA=1\nB=2\n[Quiet]\nC=3\n[X-Fleet]\nD=4\n"), 0);
	assert_int_equal(s.log.n, 1);
	assert_string_equal(s.log.lines[0], "t.service:1: Unknown section 'Bogus'. Ignoring.");
	assert_int_equal(s.n, 1);
	assert_string_equal(s.items[0], "7|X-Fleet|D|4");
}

static void syntax_bad_section_header_fails_the_file(void **state)
{
	struct seen s;
	assert_int_equal(parse(&s, "[Known\nA=1\n"), -EBADMSG);
	assert_string_equal(s.log.lines[0], "t.service:1: Invalid section header '[Known'");
	assert_int_equal(parse(&s, "[Kn\"own]\n"), -EBADMSG);
	assert_string_equal(s.log.lines[0], "t.service:1: Bad characters in section header '[Kn\"own]'");
	assert_int_equal(parse(&s, "[Kn\x01own]\n"), -EBADMSG);
}

static void syntax_invalid_utf8_fails_the_file(void **state)
{
	struct seen s;
	assert_int_equal(parse(&s, "[Known]\nA=ok\nB=\xff\xfe x\nC=never\n"), -EINVAL);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.log.lines[0],
			    "t.service:3: String is not UTF-8 clean, ignoring assignment: B=\xef\xbf\xbd\xef\xbf\xbd x");
	/* overlong forms, surrogates and noncharacters are refused as systemd refuses them */
	assert_int_equal(parse(&s, "[Known]\nA=\xc0\xaf\n"), -EINVAL);
	assert_int_equal(parse(&s, "[Known]\nA=\xed\xa0\x80\n"), -EINVAL);
	assert_int_equal(parse(&s, "[Known]\nA=\xef\xbf\xbe\n"), -EINVAL);
	assert_int_equal(parse(&s, "[Known]\nA=\xf0\x9f\x98\x80 ok\n"), 0);
}

static void syntax_line_too_long_fails_the_file(void **state)
{
	struct seen s;
	size_t n = KEEL_SYNTAX_LINE_MAX + 16;
	char *text = keel_malloc(n + 1);
	memcpy(text, "[Known]\nA=", 10);
	memset(text + 10, 'x', n - 10);
	text[n] = '\0';
	assert_int_equal(parse_n(&s, text, n), -ENOBUFS);
	assert_string_equal(s.log.lines[0], "t.service:2: Line too long");
	/* just below the limit is fine */
	size_t ok = 8 + KEEL_SYNTAX_LINE_MAX - 1;
	assert_int_equal(parse_n(&s, text, ok), 0);
	assert_int_equal(s.n, 1);
	/* two halves joined by a continuation are too long as well */
	size_t half = KEEL_SYNTAX_LINE_MAX / 2 + 8;
	char *cont = keel_malloc(8 + 2 * (half + 2) + 1);
	size_t k = 0;
	memcpy(cont, "[Known]\n", 8);
	k = 8;
	for (int i = 0; i < 2; i++) {
		memset(cont + k, 'y', half);
		k += half;
		if (i == 0) {
			cont[k++] = '\\';
			cont[k++] = '\n';
		}
	}
	assert_int_equal(parse_n(&s, cont, k), -ENOBUFS);
	assert_string_equal(s.log.lines[0], "t.service:3: Continuation line too long");
	keel_free(cont);
	keel_free(text);
}

static void syntax_callback_error_stops_parsing(void **state)
{
	struct seen s;
	memset(&s, 0, sizeof(s));
	s.fail_at_key = 2;
	struct keel_diag_sink sink = {diag_collect, &s.log};
	const char *t = "[Known]\nA=1\nB=2\nC=3\n";
	assert_int_equal(keel_syntax_parse("t", NULL, t, strlen(t), &ops, &s, &sink), -EIO);
	assert_int_equal(s.n, 2);
}

static void syntax_empty_and_blank_input(void **state)
{
	struct seen s;
	assert_int_equal(parse_n(&s, "", 0), 0);
	assert_int_equal(parse(&s, "\n\n  \t\n"), 0);
	assert_int_equal(s.n + s.log.n, 0);
}

static void syntax_string_is_safe(void **state)
{
	assert_true(keel_string_is_safe("Service"));
	assert_true(keel_string_is_safe("X-Fl\xc3\xa9" "et"));
	assert_false(keel_string_is_safe("a\"b"));
	assert_false(keel_string_is_safe("a'b"));
	assert_false(keel_string_is_safe("a\\b"));
	assert_false(keel_string_is_safe("a\x7f"));
	assert_false(keel_string_is_safe("a\tb"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(syntax_sections_keys_values_are_trimmed),
		cmocka_unit_test(syntax_comments_only_at_line_start),
		cmocka_unit_test(syntax_continuation_joins_with_a_space),
		cmocka_unit_test(syntax_escaped_backslash_does_not_continue),
		cmocka_unit_test(syntax_empty_line_ends_continuation),
		cmocka_unit_test(syntax_continuation_at_end_counts_one_more_line),
		cmocka_unit_test(syntax_line_endings_like_read_line),
		cmocka_unit_test(syntax_bom_dropped_once),
		cmocka_unit_test(syntax_missing_equals_and_key_warn_and_go_on),
		cmocka_unit_test(syntax_assignment_outside_section_warns),
		cmocka_unit_test(syntax_unknown_section_warns_once_and_skips),
		cmocka_unit_test(syntax_bad_section_header_fails_the_file),
		cmocka_unit_test(syntax_invalid_utf8_fails_the_file),
		cmocka_unit_test(syntax_line_too_long_fails_the_file),
		cmocka_unit_test(syntax_callback_error_stops_parsing),
		cmocka_unit_test(syntax_empty_and_blank_input),
		cmocka_unit_test(syntax_string_is_safe),
	};
	return cmocka_run_group_tests_name("init/syntax", tests, NULL, NULL);
}
