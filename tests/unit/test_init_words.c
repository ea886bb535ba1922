/* Word splitting, escapes, UTF-8 and environment rules of lib/init/words.c, as systemd's
 * extract-word.c, escape.c and env-util.c behave. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/mem.h"
#include "base/str.h"
#include "init/words.h"

/* All words of s joined by '|', or "ERR<code>" at the first error. */
static void words(const char *s, const char *seps, unsigned flags, char *out, size_t size)
{
	const char *p = s;
	int n = 0;
	out[0] = '\0';
	for (;; n++) {
		char *w;
		int r = keel_extract_word(&p, &w, seps, flags);
		if (r < 0) {
			snprintf(out + strlen(out), size - strlen(out), "ERR%d", -r);
			return;
		}
		if (r == 0)
			return;
		snprintf(out + strlen(out), size - strlen(out), "%s%s", n ? "|" : "", w);
		keel_free(w);
	}
}

#define EXPECT_WORDS(s, seps, flags, want)                          \
	do {                                                          \
		char got_[256];                                       \
		words((s), (seps), (flags), got_, sizeof(got_));      \
		assert_string_equal(got_, (want));                    \
	} while (0)

#define UQ KEEL_EXTRACT_UNQUOTE
#define CU KEEL_EXTRACT_CUNESCAPE

static void words_split_on_whitespace_runs(void **state)
{
	EXPECT_WORDS("  a  b\tc\n d  ", NULL, 0, "a|b|c|d");
	EXPECT_WORDS("", NULL, 0, "");
	EXPECT_WORDS("   ", NULL, 0, "");
}

static void words_quotes_group_anywhere_in_a_word(void **state)
{
	EXPECT_WORDS("'a b' \"c d\" e", NULL, UQ, "a b|c d|e");
	EXPECT_WORDS("x\"a b\"y 'q'\"r\"", NULL, UQ, "xa by|qr");
	EXPECT_WORDS("\"\" ''", NULL, UQ, "|");
	/* without UNQUOTE quotes are ordinary */
	EXPECT_WORDS("'a b'", NULL, 0, "'a|b'");
}

static void words_unbalanced_quote_is_an_error_unless_relaxed(void **state)
{
	EXPECT_WORDS("a \"b c", NULL, UQ, "aERR22");
	EXPECT_WORDS("a \"b c", NULL, UQ | KEEL_EXTRACT_RELAX, "a|b c");
}

static void words_backslash_escapes(void **state)
{
	/* Without CUNESCAPE a backslash just takes the next character literally. */
	EXPECT_WORDS("a\\ b c\\\\d", NULL, 0, "a b|c\\d");
	/* With CUNESCAPE C escapes are decoded, also inside quotes. */
	EXPECT_WORDS("\\n\\t \"\\x41\\101\\u00e9\" \\s", NULL, UQ | CU, "\n\t|AA\xc3\xa9| ");
	/* An unknown escape is an error, or kept with UNESCAPE_RELAX. */
	EXPECT_WORDS("a\\qb", NULL, CU, "ERR22");
	EXPECT_WORDS("a\\qb", NULL, CU | KEEL_EXTRACT_UNESCAPE_RELAX, "a\\qb");
	/* \x00 and \000 are refused: no NUL bytes in words */
	EXPECT_WORDS("\\x00", NULL, CU, "ERR22");
	EXPECT_WORDS("\\000", NULL, CU, "ERR22");
	/* a trailing backslash */
	EXPECT_WORDS("a\\", NULL, 0, "ERR22");
	EXPECT_WORDS("a\\", NULL, KEEL_EXTRACT_RELAX, "a");
	EXPECT_WORDS("a\\", NULL, CU | KEEL_EXTRACT_UNESCAPE_RELAX, "a\\");
	/* RETAIN_ESCAPE: the backslash is an ordinary character */
	EXPECT_WORDS("a\\ b", NULL, KEEL_EXTRACT_RETAIN_ESCAPE, "a\\|b");
}

static void words_custom_separators_and_empty_fields(void **state)
{
	EXPECT_WORDS("a,,b,", ",", 0, "a|b");
	EXPECT_WORDS("a,,b,", ",", KEEL_EXTRACT_DONT_COALESCE_SEPARATORS, "a||b|");
	EXPECT_WORDS("a\\,b,c", ",", KEEL_EXTRACT_UNESCAPE_SEPARATORS, "a,b|c");
}

static void words_pointer_is_null_at_the_end(void **state)
{
	const char *p = "one two";
	char *w;
	assert_int_equal(keel_extract_word(&p, &w, NULL, 0), 1);
	assert_string_equal(w, "one");
	keel_free(w);
	assert_string_equal(p, "two");
	assert_int_equal(keel_extract_word(&p, &w, NULL, 0), 1);
	keel_free(w);
	assert_null(p);
	assert_int_equal(keel_extract_word(&p, &w, NULL, 0), 0);
	assert_null(w);
}

static void words_cunescape_one_table(void **state)
{
	uint32_t c;
	bool raw;
	assert_int_equal(keel_cunescape_one("n", &c, &raw), 1);
	assert_int_equal(c, '\n');
	assert_int_equal(keel_cunescape_one("s", &c, &raw), 1);
	assert_int_equal(c, ' ');
	assert_int_equal(keel_cunescape_one("xff", &c, &raw), 3);
	assert_int_equal(c, 0xff);
	assert_true(raw);
	assert_int_equal(keel_cunescape_one("377", &c, &raw), 3);
	assert_int_equal(c, 0xff);
	assert_int_equal(keel_cunescape_one("400", &c, &raw), -EINVAL);
	assert_int_equal(keel_cunescape_one("u20ac", &c, &raw), 5);
	assert_int_equal(c, 0x20ac);
	assert_false(raw);
	assert_int_equal(keel_cunescape_one("U0001F600", &c, &raw), 9);
	assert_int_equal(keel_cunescape_one("U00110000", &c, &raw), -EINVAL);
	assert_int_equal(keel_cunescape_one("xg0", &c, &raw), -EINVAL);
	assert_int_equal(keel_cunescape_one("z", &c, &raw), -EINVAL);
	char *s;
	assert_int_equal(keel_cunescape("a\\x41\\q\\", true, &s), 0);
	assert_string_equal(s, "aA\\q\\");
	keel_free(s);
	assert_int_equal(keel_cunescape("a\\q", false, &s), -EINVAL);
}

static void words_utf8_rules(void **state)
{
	assert_true(keel_utf8_is_valid("plain"));
	assert_true(keel_utf8_is_valid("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));
	assert_false(keel_utf8_is_valid("\xc3"));          /* truncated */
	assert_false(keel_utf8_is_valid("\xc0\x80"));      /* overlong */
	assert_false(keel_utf8_is_valid("\xed\xa0\x80"));  /* surrogate */
	assert_false(keel_utf8_is_valid("\xef\xb7\x90"));  /* U+FDD0 */
	assert_false(keel_utf8_is_valid("\xef\xbf\xbf"));  /* U+FFFF */
	assert_false(keel_utf8_is_valid("\xf4\x90\x80\x80")); /* above U+10FFFF */
	char *e = keel_utf8_escape_invalid("a\xff" "b\xc3\xa9");
	assert_string_equal(e, "a\xef\xbf\xbd" "b\xc3\xa9");
	keel_free(e);
}

static void words_environment_names_and_assignments(void **state)
{
	assert_true(keel_env_assignment_is_valid("A=1"));
	assert_true(keel_env_assignment_is_valid("_x9=with spaces and \t tab"));
	assert_true(keel_env_assignment_is_valid("A="));
	assert_false(keel_env_assignment_is_valid("A"));
	assert_false(keel_env_assignment_is_valid("=1"));
	assert_false(keel_env_assignment_is_valid("9A=1"));
	assert_false(keel_env_assignment_is_valid("A-B=1"));
	assert_false(keel_env_assignment_is_valid("A=\xff"));
	char *env[] = {"A=1", "B=two words", "A=3", NULL};
	assert_string_equal(keel_env_get(env, "A", 1), "3");
	assert_null(keel_env_get(env, "C", 1));
}

static void words_exec_expansion(void **state)
{
	char *env[] = {"ONE=1", "TWO=a b  'c d'", "EMPTY=", NULL};
	char *argv[] = {"/bin/x", "$TWO", "${TWO}", "p${ONE}q", "$UNSET", "${UNSET}", "$$ONE",
			"${ONE:-x}", "${ONE", "$ONE-x", "$EMPTY", NULL};
	char **out;
	assert_int_equal(keel_exec_expand_argv(argv, env, &out), 0);
	const char *want[] = {"/bin/x", "a", "b", "c d", "a b  'c d'", "p1q", "", "$ONE",
			      "${ONE:-x}", "${ONE", NULL};
	size_t i;
	for (i = 0; want[i]; i++) {
		assert_non_null(out[i]);
		assert_string_equal(out[i], want[i]);
	}
	assert_null(out[i]); /* $UNSET, $ONE-x and $EMPTY vanish as whole words */
	keel_strv_free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(words_split_on_whitespace_runs),
		cmocka_unit_test(words_quotes_group_anywhere_in_a_word),
		cmocka_unit_test(words_unbalanced_quote_is_an_error_unless_relaxed),
		cmocka_unit_test(words_backslash_escapes),
		cmocka_unit_test(words_custom_separators_and_empty_fields),
		cmocka_unit_test(words_pointer_is_null_at_the_end),
		cmocka_unit_test(words_cunescape_one_table),
		cmocka_unit_test(words_utf8_rules),
		cmocka_unit_test(words_environment_names_and_assignments),
		cmocka_unit_test(words_exec_expansion),
	};
	return cmocka_run_group_tests_name("init/words", tests, NULL, NULL);
}
