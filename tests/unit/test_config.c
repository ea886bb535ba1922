#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/config.h"
#include "base/fault.h"
#include "base/str.h"

/* A table shaped like keel-kv's, to pin the behaviour every binary relies on. */
struct cfg {
	char *name;
	char *data_dir;
	uint64_t heartbeat;
	int64_t offset;
	bool enable_v2;
	bool debug;
	int64_t timeout_ns;
	int state;
	char **urls;
};

static const char *const states[] = {"new", "existing", NULL};

static const struct keel_opt opts[] = {
	{.name = "name", .type = KEEL_OPT_STRING, .offset = offsetof(struct cfg, name),
	 .def = "default", .help = "Human-readable name for this member."},
	{.name = "data-dir", .type = KEEL_OPT_STRING, .offset = offsetof(struct cfg, data_dir),
	 .help = "Path to the data directory.", .metavar = "DIR"},
	{.name = "heartbeat-interval", .type = KEEL_OPT_UINT, .offset = offsetof(struct cfg, heartbeat),
	 .def = "100", .min = 1, .max = 10000, .help = "Time (in milliseconds) of a heartbeat interval."},
	{.name = "offset", .type = KEEL_OPT_INT, .offset = offsetof(struct cfg, offset),
	 .help = "A signed value.", .flags = KEEL_OPT_HIDDEN},
	{.name = "enable-v2", .type = KEEL_OPT_BOOL, .offset = offsetof(struct cfg, enable_v2),
	 .def = "true", .help = "Accept etcd V2 client requests."},
	{.name = "debug", .short_name = 'd', .type = KEEL_OPT_BOOL, .offset = offsetof(struct cfg, debug),
	 .env = "KEEL_DEBUG", .help = "Enable debug-level logging."},
	{.name = "timeout", .type = KEEL_OPT_DURATION, .offset = offsetof(struct cfg, timeout_ns),
	 .def = "5s", .help = "How long to wait.", .flags = KEEL_OPT_NOENV},
	{.name = "initial-cluster-state", .type = KEEL_OPT_ENUM, .offset = offsetof(struct cfg, state),
	 .def = "new", .choices = states, .help = "Initial cluster state."},
	{.name = "listen-client-urls", .type = KEEL_OPT_LIST, .offset = offsetof(struct cfg, urls),
	 .def = "http://localhost:2379", .help = "List of URLs to listen on for client traffic."},
};

static char warned[1024];

static void on_warn(const char *msg, void *userdata)
{
	(void)userdata;
	size_t n = strlen(warned);
	snprintf(warned + n, sizeof(warned) - n, "%s\n", msg);
}

static const struct keel_config_spec spec = {
	.prog = "keel-kv",
	.summary = "A test table.",
	.version = "keel-kv 0.1.0",
	.env_prefix = "ETCD",
	.opts = opts,
	.n_opts = sizeof(opts) / sizeof(opts[0]),
	.warn = on_warn,
};

static int teardown(void **state)
{
	keel_fault_reset();
	warned[0] = '\0';
	return 0;
}

/* Parse argv (NULL-terminated list after the program name) with env (NULL-terminated). */
#define PARSE(c, e, argi, err, ...)                                                         \
	({                                                                                  \
		char *argv_[] = {"keel-kv", __VA_ARGS__};                                   \
		keel_config_parse(&spec, (c), (int)(sizeof(argv_) / sizeof(argv_[0])) - 1, \
				  argv_, (e), (argi), (err));                               \
	})

static char *no_env[] = {NULL};

static void config_defaults_apply_when_nothing_given(void **state)
{
	struct cfg c = {0};
	struct keel_err err;
	int argi;
	assert_int_equal(PARSE(&c, no_env, &argi, &err, NULL), 0);
	assert_int_equal(argi, 1);
	assert_string_equal(c.name, "default");
	assert_null(c.data_dir);
	assert_int_equal(c.heartbeat, 100);
	assert_true(c.enable_v2);
	assert_false(c.debug);
	assert_int_equal(c.timeout_ns, 5000000000ll);
	assert_int_equal(c.state, 0);
	assert_int_equal(keel_strv_len(c.urls), 1);
	assert_string_equal(c.urls[0], "http://localhost:2379");
	keel_config_free(&spec, &c);
	assert_null(c.name);
	assert_null(c.urls);
}

static void config_precedence_is_flag_then_env_then_default(void **state)
{
	char *env[] = {"ETCD_NAME=from-env", "ETCD_HEARTBEAT_INTERVAL=250", "ETCD_DATA_DIR=/env/dir", NULL};
	struct cfg c = {0};
	struct keel_err err;
	int argi;
	assert_int_equal(PARSE(&c, env, &argi, &err, "--name", "from-flag", NULL), 0);
	assert_string_equal(c.name, "from-flag");    /* flag beats env */
	assert_int_equal(c.heartbeat, 250);          /* env beats default */
	assert_string_equal(c.data_dir, "/env/dir"); /* env with no default */
	assert_true(c.enable_v2);                    /* default stays */
	assert_non_null(strstr(warned, "ETCD_NAME is shadowed by flag --name"));
	keel_config_free(&spec, &c);
}

static void config_flag_forms_follow_go(void **state)
{
	struct cfg c = {0};
	struct keel_err err;
	int argi;
	assert_int_equal(PARSE(&c, no_env, &argi, &err, "-name", "a", "--data-dir=/x", "-heartbeat-interval=7",
			       "--enable-v2=false", "-d", "--initial-cluster-state", "existing", NULL),
			 0);
	assert_string_equal(c.name, "a");
	assert_string_equal(c.data_dir, "/x");
	assert_int_equal(c.heartbeat, 7);
	assert_false(c.enable_v2);
	assert_true(c.debug);
	assert_int_equal(c.state, 1);
	keel_config_free(&spec, &c);
}

static void config_last_flag_wins_and_lists_accumulate(void **state)
{
	struct cfg c = {0};
	struct keel_err err;
	int argi;
	char *env[] = {"ETCD_LISTEN_CLIENT_URLS=http://env:1", NULL};
	assert_int_equal(PARSE(&c, env, &argi, &err, "--name", "one", "--name", "two",
			       "--listen-client-urls", "http://a:1,http://b:2", "--listen-client-urls=http://c:3",
			       NULL),
			 0);
	assert_string_equal(c.name, "two");
	/* The first flag replaces the env value; later ones append. */
	assert_int_equal(keel_strv_len(c.urls), 3);
	assert_string_equal(c.urls[0], "http://a:1");
	assert_string_equal(c.urls[1], "http://b:2");
	assert_string_equal(c.urls[2], "http://c:3");
	keel_config_free(&spec, &c);
}

static void config_stops_at_first_positional_and_double_dash(void **state)
{
	struct cfg c = {0};
	struct keel_err err;
	int argi;
	assert_int_equal(PARSE(&c, no_env, &argi, &err, "--name", "x", "start", "--name", "y", NULL), 0);
	assert_int_equal(argi, 3);
	assert_string_equal(c.name, "x");
	keel_config_free(&spec, &c);

	assert_int_equal(PARSE(&c, no_env, &argi, &err, "-d", "--", "--name", NULL), 0);
	assert_int_equal(argi, 3);
	assert_true(c.debug);
	keel_config_free(&spec, &c);

	/* A lone "-" is an argument (stdin by convention), not a flag. */
	assert_int_equal(PARSE(&c, no_env, &argi, &err, "-", NULL), 0);
	assert_int_equal(argi, 1);
	keel_config_free(&spec, &c);
}

static void config_unknown_flag_is_an_error_naming_it(void **state)
{
	struct cfg c = {0};
	struct keel_err err;
	int argi = -1;
	assert_int_equal(PARSE(&c, no_env, &argi, &err, "--name", "x", "--nmae", "y", NULL),
			 -KEEL_EUNKNOWN_FLAG);
	assert_string_equal(err.msg, "flag provided but not defined: --nmae");
	assert_int_equal(argi, -1); /* untouched on failure */
	keel_config_free(&spec, &c);

	assert_int_equal(PARSE(&c, no_env, &argi, &err, "---name", "x", NULL), -KEEL_EUNKNOWN_FLAG);
	assert_int_equal(PARSE(&c, no_env, &argi, &err, "-x", NULL), -KEEL_EUNKNOWN_FLAG);
	assert_string_equal(err.msg, "flag provided but not defined: -x");
	keel_config_free(&spec, &c);
}

static void config_bad_values_are_errors_naming_flag_and_value(void **state)
{
	struct cfg c = {0};
	struct keel_err err;
	int argi;
	assert_int_equal(PARSE(&c, no_env, &argi, &err, "--heartbeat-interval", "abc", NULL),
			 -KEEL_EBAD_VALUE);
	assert_string_equal(err.msg,
			    "invalid value \"abc\" for flag --heartbeat-interval: not an unsigned integer");
	keel_config_free(&spec, &c);

	assert_int_equal(PARSE(&c, no_env, &argi, &err, "--heartbeat-interval=0", NULL), -KEEL_EBAD_VALUE);
	assert_non_null(strstr(err.msg, "must be between 1 and 10000"));
	keel_config_free(&spec, &c);

	assert_int_equal(PARSE(&c, no_env, &argi, &err, "--heartbeat-interval=-5", NULL), -KEEL_EBAD_VALUE);
	assert_int_equal(PARSE(&c, no_env, &argi, &err, "--enable-v2=yes", NULL), -KEEL_EBAD_VALUE);
	assert_non_null(strstr(err.msg, "not a boolean"));
	assert_int_equal(PARSE(&c, no_env, &argi, &err, "--timeout=5", NULL), -KEEL_EBAD_VALUE);
	assert_int_equal(PARSE(&c, no_env, &argi, &err, "--offset=99999999999999999999", NULL),
			 -KEEL_EBAD_VALUE);
	assert_non_null(strstr(err.msg, "out of range"));
	assert_int_equal(PARSE(&c, no_env, &argi, &err, "--initial-cluster-state=old", NULL),
			 -KEEL_EBAD_VALUE);
	assert_non_null(strstr(err.msg, "must be one of: new existing"));
	assert_int_equal(PARSE(&c, no_env, &argi, &err, "--name", NULL), -KEEL_EBAD_VALUE);
	assert_string_equal(err.msg, "flag needs an argument: --name");
	keel_config_free(&spec, &c);
}

static void config_bad_env_value_names_the_variable(void **state)
{
	char *env[] = {"ETCD_HEARTBEAT_INTERVAL=fast", NULL};
	struct cfg c = {0};
	struct keel_err err;
	int argi;
	assert_int_equal(PARSE(&c, env, &argi, &err, NULL), -KEEL_EBAD_VALUE);
	assert_string_equal(err.msg, "invalid value \"fast\" for environment variable "
				     "ETCD_HEARTBEAT_INTERVAL: not an unsigned integer");
	keel_config_free(&spec, &c);

	/* A flag for the same option shadows the bad variable, so the command line still works. */
	assert_int_equal(PARSE(&c, env, &argi, &err, "--heartbeat-interval", "5", NULL), 0);
	assert_int_equal(c.heartbeat, 5);
	keel_config_free(&spec, &c);
}

static void config_env_names_explicit_noenv_and_unknown(void **state)
{
	char *env[] = {"KEEL_DEBUG=1", "ETCD_TIMEOUT=1s", "ETCD_NAMEE=typo", "ETCD_ENABLE_V2=",
		       "OTHER=1", NULL};
	struct cfg c = {0};
	struct keel_err err;
	int argi;
	assert_int_equal(PARSE(&c, env, &argi, &err, NULL), 0);
	assert_true(c.debug);                       /* explicit variable name */
	assert_int_equal(c.timeout_ns, 5000000000); /* NOENV: ETCD_TIMEOUT is not read */
	assert_true(c.enable_v2);                   /* an empty variable counts as unset */
	assert_non_null(strstr(warned, "unrecognized environment variable ETCD_NAMEE"));
	assert_non_null(strstr(warned, "unrecognized environment variable ETCD_TIMEOUT"));
	assert_null(strstr(warned, "OTHER"));
	keel_config_free(&spec, &c);

	char name[128];
	assert_string_equal(keel_config_env_name(&spec, &opts[1], name, sizeof(name)), "ETCD_DATA_DIR");
	assert_string_equal(keel_config_env_name(&spec, &opts[6], name, sizeof(name)), "");
}

static void config_help_and_version_are_reported_not_errors_of_input(void **state)
{
	struct cfg c = {0};
	struct keel_err err;
	int argi;
	assert_int_equal(PARSE(&c, no_env, &argi, &err, "--name", "x", "-h", NULL), -KEEL_EHELP);
	assert_int_equal(PARSE(&c, no_env, &argi, &err, "--help", NULL), -KEEL_EHELP);
	assert_int_equal(PARSE(&c, no_env, &argi, &err, "-help", NULL), -KEEL_EHELP);
	assert_int_equal(PARSE(&c, no_env, &argi, &err, "--version", NULL), -KEEL_EVERSION);
	keel_config_free(&spec, &c);
}

static void config_help_lists_flags_defaults_and_env_from_the_table(void **state)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	assert_non_null(f);
	keel_config_help(&spec, f);
	fclose(f);
	assert_non_null(strstr(text, "Usage: keel-kv [flags]"));
	assert_non_null(strstr(text, "A test table."));
	assert_non_null(strstr(text, "--data-dir DIR"));
	assert_non_null(strstr(text, "env: ETCD_DATA_DIR"));
	assert_non_null(strstr(text, "--heartbeat-interval UINT"));
	assert_non_null(strstr(text, "default: \"100\"; env: ETCD_HEARTBEAT_INTERVAL"));
	assert_non_null(strstr(text, "-d, --debug"));
	assert_non_null(strstr(text, "env: KEEL_DEBUG"));
	assert_non_null(strstr(text, "(one of: new existing)"));
	assert_null(strstr(text, "--offset")); /* hidden */
	assert_null(strstr(text, "ETCD_TIMEOUT"));
	free(text);
}

static void config_set_parses_one_value(void **state)
{
	struct cfg c = {0};
	struct keel_err err;
	assert_int_equal(keel_config_set(&spec, &c, "timeout", "1m30s", &err), 0);
	assert_int_equal(c.timeout_ns, 90000000000ll);
	assert_int_equal(keel_config_set(&spec, &c, "nope", "1", &err), -KEEL_EUNKNOWN_FLAG);
	keel_config_free(&spec, &c);
}

/* Every allocation the parser makes may fail: it must report -ENOMEM, never crash, and leave a
 * cfg that keel_config_free releases (valgrind/ASan runs check that nothing leaks). */
static void config_allocation_failures_surface_as_enomem(void **state)
{
	char *env[] = {"ETCD_DATA_DIR=/d", NULL};
	int failures = 0;
	for (unsigned skip = 0; skip < 64; skip++) {
		struct cfg c = {0};
		struct keel_err err;
		int argi;
		keel_fault_arm(KEEL_FAULT_ALLOC, skip, 1, ENOMEM);
		int r = PARSE(&c, env, &argi, &err, "--name", "n", "--listen-client-urls", "http://a,http://b",
			      "--listen-client-urls", "http://c", NULL);
		bool injected = keel_fault_injected(KEEL_FAULT_ALLOC) > 0;
		keel_fault_reset();
		if (injected) {
			assert_int_equal(r, -ENOMEM);
			assert_string_equal(err.msg, "out of memory");
			failures++;
		} else {
			assert_int_equal(r, 0);
			assert_int_equal(keel_strv_len(c.urls), 3);
		}
		keel_config_free(&spec, &c);
		if (!injected)
			break; /* every allocation point has been failed once */
	}
	assert_true(failures > 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(config_defaults_apply_when_nothing_given, teardown),
		cmocka_unit_test_teardown(config_precedence_is_flag_then_env_then_default, teardown),
		cmocka_unit_test_teardown(config_flag_forms_follow_go, teardown),
		cmocka_unit_test_teardown(config_last_flag_wins_and_lists_accumulate, teardown),
		cmocka_unit_test_teardown(config_stops_at_first_positional_and_double_dash, teardown),
		cmocka_unit_test_teardown(config_unknown_flag_is_an_error_naming_it, teardown),
		cmocka_unit_test_teardown(config_bad_values_are_errors_naming_flag_and_value, teardown),
		cmocka_unit_test_teardown(config_bad_env_value_names_the_variable, teardown),
		cmocka_unit_test_teardown(config_env_names_explicit_noenv_and_unknown, teardown),
		cmocka_unit_test_teardown(config_help_and_version_are_reported_not_errors_of_input, teardown),
		cmocka_unit_test_teardown(config_help_lists_flags_defaults_and_env_from_the_table, teardown),
		cmocka_unit_test_teardown(config_set_parses_one_value, teardown),
		cmocka_unit_test_teardown(config_allocation_failures_surface_as_enomem, teardown),
	};
	return cmocka_run_group_tests_name("base/config", tests, NULL, NULL);
}
