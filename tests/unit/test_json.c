#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/errors.h"
#include "base/fault.h"
#include "base/json.h"
#include "base/mem.h"

/* A config-like document every lookup test reads from. */
static const char sample[] =
	"{\"process\": {"
	"\"cwd\": \"/srv\", \"user\": 7, \"neg\": -3, \"big\": 9223372036854775807,"
	"\"real\": 1.5, \"flag\": true, \"off\": false, \"nothing\": null,"
	"\"args\": [\"sh\", \"-c\"], \"env\": {\"A\": \"1\"}"
	"}}";

static int teardown_faults(void **state)
{
	keel_fault_reset();
	return 0;
}

static int setup_sample(void **state)
{
	json_t *root = NULL;
	struct keel_err err;
	keel_err_clear(&err);
	if (keel_json_parse(sample, strlen(sample), false, &root, &err) != 0)
		return -1;
	*state = root;
	return 0;
}

static int teardown_sample(void **state)
{
	json_decref(*state);
	return 0;
}

static json_t *process_of(void **state)
{
	json_t *p = json_object_get(*state, "process");
	assert_non_null(p);
	return p;
}

static void assert_msg_contains(const struct keel_err *err, const char *needle)
{
	if (!strstr(keel_err_msg(err), needle))
		fail_msg("message \"%s\" lacks \"%s\"", keel_err_msg(err), needle);
}

static void json_parse_accepts_containers(void **state)
{
	struct keel_err err;
	json_t *v = NULL;
	keel_err_clear(&err);
	assert_int_equal(keel_json_parse("{\"a\": [1, 2]}", 13, false, &v, &err), 0);
	assert_true(json_is_object(v));
	assert_int_equal(json_array_size(json_object_get(v, "a")), 2);
	json_decref(v);

	v = NULL;
	assert_int_equal(keel_json_parse("  [true, null] \n", 16, false, &v, NULL), 0);
	assert_true(json_is_array(v));
	json_decref(v);

	/* Only len bytes are read: what follows does not matter. */
	v = NULL;
	assert_int_equal(keel_json_parse("{}garbage", 2, false, &v, &err), 0);
	assert_int_equal(json_object_size(v), 0);
	json_decref(v);
}

static void json_parse_scalars_need_any(void **state)
{
	static const char *const scalars[] = {"42", "\"s\"", "null", "true", "-1.5"};
	for (size_t i = 0; i < sizeof(scalars) / sizeof(scalars[0]); i++) {
		struct keel_err err;
		keel_err_clear(&err);
		json_t *v = NULL;
		assert_int_equal(keel_json_parse(scalars[i], strlen(scalars[i]), false, &v, &err),
				 -KEEL_EPARSE);
		assert_null(v);
		assert_int_equal(err.code, -KEEL_EPARSE);
		assert_int_equal(keel_json_parse(scalars[i], strlen(scalars[i]), true, &v, &err),
				 0);
		assert_non_null(v);
		json_decref(v);
	}
	json_t *v = NULL;
	assert_int_equal(keel_json_parse("42", 2, true, &v, NULL), 0);
	assert_true(json_integer_value(v) == 42);
	json_decref(v);
}

static void json_parse_error_names_line_and_column(void **state)
{
	static const char doc[] = "{\n  \"a\": 1,\n  \"b\": }\n";
	struct keel_err err;
	keel_err_clear(&err);
	json_t *v = (json_t *)&err; /* must stay untouched */
	assert_int_equal(keel_json_parse(doc, strlen(doc), false, &v, &err), -KEEL_EPARSE);
	assert_ptr_equal(v, (json_t *)&err);
	assert_int_equal(err.code, -KEEL_EPARSE);
	assert_msg_contains(&err, "line 3");
	assert_msg_contains(&err, "column");
	/* jansson's own explanation follows the position. */
	assert_msg_contains(&err, "unexpected token");

	static const char *const bad[] = {
		"", "   ", "{", "[1,]", "{\"a\" 1}", "{} {}", "{}x", "[1] 2", "{'a': 1}",
		"[\"\\x\"]", "[01]", "[NaN]",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		keel_err_clear(&err);
		v = NULL;
		if (keel_json_parse(bad[i], strlen(bad[i]), true, &v, &err) != -KEEL_EPARSE)
			fail_msg("parse accepted \"%s\"", bad[i]);
		assert_null(v);
		assert_msg_contains(&err, "line ");
		assert_msg_contains(&err, "column ");
	}
	/* A NULL err is allowed. */
	assert_int_equal(keel_json_parse("{", 1, false, &v, NULL), -KEEL_EPARSE);
}

static void json_parse_rejects_duplicate_keys(void **state)
{
	static const char doc[] = "{\"a\": 1, \"b\": {\"x\": 1, \"x\": 2}}";
	struct keel_err err;
	keel_err_clear(&err);
	json_t *v = NULL;
	assert_int_equal(keel_json_parse(doc, strlen(doc), false, &v, &err), -KEEL_EPARSE);
	assert_null(v);
	assert_msg_contains(&err, "duplicate");
	assert_msg_contains(&err, "line 1");

	/* The same key in different objects is fine. */
	static const char ok[] = "{\"x\": 1, \"b\": {\"x\": 2}}";
	assert_int_equal(keel_json_parse(ok, strlen(ok), false, &v, &err), 0);
	json_decref(v);
}

static void json_get_str_present_absent_null(void **state)
{
	json_t *p = process_of(state);
	struct keel_err err;
	keel_err_clear(&err);
	const char *s = NULL;
	assert_int_equal(keel_json_get_str(p, "process", "cwd", true, &s, &err), 0);
	assert_string_equal(s, "/srv");

	s = "untouched";
	assert_int_equal(keel_json_get_str(p, "process", "missing", false, &s, &err), 1);
	assert_string_equal(s, "untouched");
	assert_int_equal(keel_json_get_str(p, "process", "nothing", false, &s, &err), 1);
	assert_string_equal(s, "untouched");
	assert_int_equal(err.code, 0);

	assert_int_equal(keel_json_get_str(p, "process", "missing", true, &s, &err),
			 -KEEL_EMISSING);
	assert_int_equal(err.code, -KEEL_EMISSING);
	assert_string_equal(keel_err_msg(&err), "process.missing is required");
	assert_int_equal(keel_json_get_str(p, "process", "nothing", true, &s, &err),
			 -KEEL_EMISSING);
	assert_string_equal(keel_err_msg(&err), "process.nothing is required");
	assert_string_equal(s, "untouched");

	/* At the top level the key stands alone. */
	assert_int_equal(keel_json_get_str(*state, "", "ociVersion", true, &s, &err),
			 -KEEL_EMISSING);
	assert_string_equal(keel_err_msg(&err), "ociVersion is required");
}

static void json_get_wrong_type_messages(void **state)
{
	json_t *p = process_of(state);
	struct keel_err err;
	const char *s = "untouched";
	keel_err_clear(&err);
	assert_int_equal(keel_json_get_str(p, "process", "user", true, &s, &err), -KEEL_ETYPE);
	assert_int_equal(err.code, -KEEL_ETYPE);
	assert_string_equal(keel_err_msg(&err), "process.user must be a string, not an integer");
	assert_string_equal(s, "untouched");

	/* A wrong type is an error even when the member is optional. */
	assert_int_equal(keel_json_get_str(p, "process", "real", false, &s, &err), -KEEL_ETYPE);
	assert_string_equal(keel_err_msg(&err), "process.real must be a string, not a number");
	assert_int_equal(keel_json_get_str(p, "process", "flag", false, &s, &err), -KEEL_ETYPE);
	assert_string_equal(keel_err_msg(&err), "process.flag must be a string, not a boolean");
	assert_int_equal(keel_json_get_str(p, "process", "args", false, &s, &err), -KEEL_ETYPE);
	assert_string_equal(keel_err_msg(&err), "process.args must be a string, not an array");
	assert_int_equal(keel_json_get_str(p, "process", "env", false, &s, &err), -KEEL_ETYPE);
	assert_string_equal(keel_err_msg(&err), "process.env must be a string, not an object");
	assert_int_equal(keel_json_get_str(*state, "", "process", false, &s, &err), -KEEL_ETYPE);
	assert_string_equal(keel_err_msg(&err), "process must be a string, not an object");

	int64_t i = 99;
	assert_int_equal(keel_json_get_i64(p, "process", "cwd", true, &i, &err), -KEEL_ETYPE);
	assert_string_equal(keel_err_msg(&err), "process.cwd must be an integer, not a string");
	assert_int_equal(keel_json_get_i64(p, "process", "real", true, &i, &err), -KEEL_ETYPE);
	assert_string_equal(keel_err_msg(&err), "process.real must be an integer, not a number");
	assert_true(i == 99);

	uint64_t u = 99;
	assert_int_equal(keel_json_get_u64(p, "process", "flag", true, &u, &err), -KEEL_ETYPE);
	assert_string_equal(keel_err_msg(&err), "process.flag must be an integer, not a boolean");
	assert_true(u == 99);

	bool b = false;
	assert_int_equal(keel_json_get_bool(p, "process", "user", true, &b, &err), -KEEL_ETYPE);
	assert_string_equal(keel_err_msg(&err), "process.user must be a boolean, not an integer");
	assert_false(b);

	json_t *o = NULL;
	assert_int_equal(keel_json_get_obj(p, "process", "args", true, &o, &err), -KEEL_ETYPE);
	assert_string_equal(keel_err_msg(&err), "process.args must be an object, not an array");
	assert_int_equal(keel_json_get_arr(p, "process", "env", true, &o, &err), -KEEL_ETYPE);
	assert_string_equal(keel_err_msg(&err), "process.env must be an array, not an object");
	assert_null(o);
}

static void json_get_i64_values(void **state)
{
	json_t *p = process_of(state);
	struct keel_err err;
	keel_err_clear(&err);
	int64_t v = 0;
	assert_int_equal(keel_json_get_i64(p, "process", "user", true, &v, &err), 0);
	assert_true(v == 7);
	assert_int_equal(keel_json_get_i64(p, "process", "neg", true, &v, &err), 0);
	assert_true(v == -3);
	assert_int_equal(keel_json_get_i64(p, "process", "big", true, &v, &err), 0);
	assert_true(v == INT64_MAX);
	v = 5;
	assert_int_equal(keel_json_get_i64(p, "process", "none", false, &v, &err), 1);
	assert_int_equal(keel_json_get_i64(p, "process", "nothing", false, &v, &err), 1);
	assert_true(v == 5);
	assert_int_equal(keel_json_get_i64(p, "process", "none", true, &v, &err), -KEEL_EMISSING);
	assert_string_equal(keel_err_msg(&err), "process.none is required");
}

static void json_get_u64_rejects_negative(void **state)
{
	json_t *p = process_of(state);
	struct keel_err err;
	keel_err_clear(&err);
	uint64_t v = 0;
	assert_int_equal(keel_json_get_u64(p, "process", "user", true, &v, &err), 0);
	assert_true(v == 7);
	assert_int_equal(keel_json_get_u64(p, "process", "big", true, &v, &err), 0);
	assert_true(v == (uint64_t)INT64_MAX);
	v = 11;
	assert_int_equal(keel_json_get_u64(p, "process", "neg", true, &v, &err), -KEEL_ERANGE);
	assert_int_equal(err.code, -KEEL_ERANGE);
	assert_msg_contains(&err, "process.neg");
	assert_msg_contains(&err, "negative");
	assert_true(v == 11);
	/* Optional does not make a bad value acceptable. */
	assert_int_equal(keel_json_get_u64(p, "process", "neg", false, &v, &err), -KEEL_ERANGE);
	assert_int_equal(keel_json_get_u64(p, "process", "nothing", false, &v, &err), 1);
	assert_true(v == 11);

	/* Zero is not negative. */
	json_t *z = json_pack("{s:i}", "z", 0);
	assert_non_null(z);
	assert_int_equal(keel_json_get_u64(z, "", "z", true, &v, &err), 0);
	assert_true(v == 0);
	json_decref(z);
}

static void json_get_bool_obj_arr(void **state)
{
	json_t *p = process_of(state);
	struct keel_err err;
	keel_err_clear(&err);
	bool b = false;
	assert_int_equal(keel_json_get_bool(p, "process", "flag", true, &b, &err), 0);
	assert_true(b);
	assert_int_equal(keel_json_get_bool(p, "process", "off", true, &b, &err), 0);
	assert_false(b);
	b = true;
	assert_int_equal(keel_json_get_bool(p, "process", "none", false, &b, &err), 1);
	assert_true(b);
	assert_int_equal(keel_json_get_bool(p, "process", "none", true, &b, &err), -KEEL_EMISSING);

	json_t *o = NULL;
	assert_int_equal(keel_json_get_obj(p, "process", "env", true, &o, &err), 0);
	assert_ptr_equal(o, json_object_get(p, "env"));
	assert_int_equal(keel_json_get_obj(*state, "", "process", true, &o, &err), 0);
	assert_ptr_equal(o, p);
	o = NULL;
	assert_int_equal(keel_json_get_obj(p, "process", "nothing", false, &o, &err), 1);
	assert_null(o);
	assert_int_equal(keel_json_get_obj(p, "process", "nothing", true, &o, &err),
			 -KEEL_EMISSING);
	assert_string_equal(keel_err_msg(&err), "process.nothing is required");

	json_t *a = NULL;
	assert_int_equal(keel_json_get_arr(p, "process", "args", true, &a, &err), 0);
	assert_int_equal(json_array_size(a), 2);
	assert_string_equal(json_string_value(json_array_get(a, 1)), "-c");
	a = NULL;
	assert_int_equal(keel_json_get_arr(p, "process", "mounts", false, &a, &err), 1);
	assert_null(a);
	assert_int_equal(keel_json_get_arr(p, "process", "mounts", true, &a, &err),
			 -KEEL_EMISSING);
	assert_string_equal(keel_err_msg(&err), "process.mounts is required");
}

static void json_get_on_non_object_is_absent(void **state)
{
	json_t *args = json_object_get(process_of(state), "args");
	struct keel_err err;
	keel_err_clear(&err);
	const char *s = "untouched";
	assert_int_equal(keel_json_get_str(args, "process.args", "x", false, &s, &err), 1);
	assert_int_equal(keel_json_get_str(args, "process.args", "x", true, &s, &err),
			 -KEEL_EMISSING);
	assert_string_equal(keel_err_msg(&err), "process.args.x is required");
	assert_int_equal(keel_json_get_str(NULL, "", "x", false, &s, &err), 1);
	assert_string_equal(s, "untouched");
	/* And err may be NULL. */
	assert_int_equal(keel_json_get_str(NULL, "", "x", true, &s, NULL), -KEEL_EMISSING);
}

static void json_only_keys_names_unknown_field(void **state)
{
	json_t *p = process_of(state);
	static const char *const all[] = {
		"cwd", "user", "neg", "big", "real", "flag", "off", "nothing", "args", "env", NULL,
	};
	struct keel_err err;
	keel_err_clear(&err);
	assert_int_equal(keel_json_only_keys(p, "process", all, &err), 0);
	assert_int_equal(err.code, 0);

	static const char *const most[] = {
		"cwd", "user", "neg", "big", "real", "flag", "off", "args", "env", NULL,
	};
	assert_int_equal(keel_json_only_keys(p, "process", most, &err), -KEEL_EPARSE);
	assert_int_equal(err.code, -KEEL_EPARSE);
	assert_string_equal(keel_err_msg(&err), "process.nothing: unknown field");

	static const char *const top[] = {"ociVersion", NULL};
	assert_int_equal(keel_json_only_keys(*state, "", top, &err), -KEEL_EPARSE);
	assert_string_equal(keel_err_msg(&err), "process: unknown field");

	static const char *const none[] = {NULL};
	json_t *empty = json_object();
	assert_int_equal(keel_json_only_keys(empty, "x", none, &err), 0);
	json_decref(empty);
	assert_int_equal(keel_json_only_keys(p, "process", none, &err), -KEEL_EPARSE);

	/* Prefixes of known names are still unknown. */
	json_t *o = json_pack("{s:i}", "cw", 1);
	assert_non_null(o);
	assert_int_equal(keel_json_only_keys(o, "process", all, &err), -KEEL_EPARSE);
	assert_string_equal(keel_err_msg(&err), "process.cw: unknown field");
	json_decref(o);
}

/* Write text to a fresh temporary file; returns its path in buf. */
static void write_temp(char *path, size_t size, const char *text)
{
	snprintf(path, size, "/tmp/keel-test-json-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	size_t n = strlen(text);
	assert_int_equal(write(fd, text, n), (ssize_t)n);
	assert_int_equal(close(fd), 0);
}

static void json_load_file_reads_and_reports(void **state)
{
	char path[64];
	struct keel_err err;
	keel_err_clear(&err);
	json_t *v = NULL;

	write_temp(path, sizeof(path), "{\"ok\": [1, 2, 3]}\n");
	assert_int_equal(keel_json_load_file(path, &v, &err), 0);
	assert_int_equal(json_array_size(json_object_get(v, "ok")), 3);
	json_decref(v);
	assert_int_equal(unlink(path), 0);

	/* The file is gone now: -ENOENT, and the message says which file. */
	v = NULL;
	assert_int_equal(keel_json_load_file(path, &v, &err), -ENOENT);
	assert_null(v);
	assert_int_equal(err.code, -ENOENT);
	assert_msg_contains(&err, path);

	write_temp(path, sizeof(path), "{\n\"a\": 1,\n\"a\": 2\n}\n");
	keel_err_clear(&err);
	assert_int_equal(keel_json_load_file(path, &v, &err), -KEEL_EPARSE);
	assert_null(v);
	assert_int_equal(err.code, -KEEL_EPARSE);
	assert_msg_contains(&err, path);
	assert_msg_contains(&err, "line 3");
	assert_msg_contains(&err, "column");
	assert_int_equal(unlink(path), 0);

	write_temp(path, sizeof(path), "not json at all");
	assert_int_equal(keel_json_load_file(path, &v, &err), -KEEL_EPARSE);
	assert_msg_contains(&err, path);
	assert_msg_contains(&err, "line 1");
	assert_int_equal(unlink(path), 0);
}

static void json_allocation_failure_is_enomem(void **state)
{
	static const char doc[] =
		"{\"a\": [1, 2, \"xyz\"], \"bb\": {\"c\": \"a long string value here\"},"
		" \"d\": true, \"e\": [[], {}, {\"f\": null}]}";
	json_t *ref = NULL;
	assert_int_equal(keel_json_parse(doc, strlen(doc), false, &ref, NULL), 0);

	/* Every allocation of the parse fails in turn. jansson reports some of these as syntax
	 * errors and one not at all (a dropped byte), yet each must come back as -ENOMEM. */
	unsigned skip;
	for (skip = 0; skip < 200; skip++) {
		struct keel_err err;
		keel_err_clear(&err);
		json_t *v = NULL;
		keel_fault_arm(KEEL_FAULT_ALLOC, skip, 1, ENOMEM);
		int r = keel_json_parse(doc, strlen(doc), false, &v, &err);
		unsigned long injected = keel_fault_injected(KEEL_FAULT_ALLOC);
		keel_fault_reset();
		if (!injected) {
			assert_int_equal(r, 0);
			assert_true(json_equal(v, ref));
			json_decref(v);
			break;
		}
		if (r != -ENOMEM)
			fail_msg("allocation %u failed, parse gave %d: %s", skip, r,
				 keel_err_msg(&err));
		assert_null(v);
		assert_int_equal(err.code, -ENOMEM);
		assert_msg_contains(&err, "out of memory");
	}
	assert_true(skip > 3 && skip < 200);

	/* Building values goes through keel_malloc too. */
	keel_fault_arm(KEEL_FAULT_ALLOC, 0, -1, ENOMEM);
	json_t *o = json_object();
	json_t *s = json_string("x");
	keel_fault_reset();
	assert_null(o);
	assert_null(s);

	/* And loading a file. */
	char path[64];
	write_temp(path, sizeof(path), doc);
	for (skip = 0; skip < 200; skip++) {
		struct keel_err err;
		keel_err_clear(&err);
		json_t *v = NULL;
		keel_fault_arm(KEEL_FAULT_ALLOC, skip, 1, ENOMEM);
		int r = keel_json_load_file(path, &v, &err);
		unsigned long injected = keel_fault_injected(KEEL_FAULT_ALLOC);
		keel_fault_reset();
		if (!injected) {
			assert_int_equal(r, 0);
			assert_true(json_equal(v, ref));
			json_decref(v);
			break;
		}
		if (r != -ENOMEM)
			fail_msg("allocation %u failed, load_file gave %d: %s", skip, r,
				 keel_err_msg(&err));
		assert_null(v);
		assert_msg_contains(&err, path);
	}
	assert_int_equal(unlink(path), 0);
	assert_true(skip < 200);
	json_decref(ref);
}

int main(void)
{
	/* Before any jansson value exists, as mem.h asks. */
	keel_mem_use_for_jansson();

	const struct CMUnitTest tests[] = {
		cmocka_unit_test(json_parse_accepts_containers),
		cmocka_unit_test(json_parse_scalars_need_any),
		cmocka_unit_test(json_parse_error_names_line_and_column),
		cmocka_unit_test(json_parse_rejects_duplicate_keys),
		cmocka_unit_test_setup_teardown(json_get_str_present_absent_null, setup_sample,
						teardown_sample),
		cmocka_unit_test_setup_teardown(json_get_wrong_type_messages, setup_sample,
						teardown_sample),
		cmocka_unit_test_setup_teardown(json_get_i64_values, setup_sample, teardown_sample),
		cmocka_unit_test_setup_teardown(json_get_u64_rejects_negative, setup_sample,
						teardown_sample),
		cmocka_unit_test_setup_teardown(json_get_bool_obj_arr, setup_sample,
						teardown_sample),
		cmocka_unit_test_setup_teardown(json_get_on_non_object_is_absent, setup_sample,
						teardown_sample),
		cmocka_unit_test_setup_teardown(json_only_keys_names_unknown_field, setup_sample,
						teardown_sample),
		cmocka_unit_test(json_load_file_reads_and_reports),
		cmocka_unit_test_teardown(json_allocation_failure_is_enomem, teardown_faults),
	};
	return cmocka_run_group_tests_name("base/json", tests, NULL, NULL);
}
