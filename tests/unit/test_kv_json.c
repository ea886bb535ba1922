/* The bytes lib/kv renders: Go's escaping, etcd's omitempty rules, RFC3339Nano expirations,
 * noValueOnSuccess, the "/1" prefix etcd trims, error bodies and statuses, statistics, and trees
 * too deep or too wide for naive rendering. */
#include "test_kv_util.h"

#include <errno.h>
#include <jansson.h>

static void go_escaping_applies_to_keys_values_and_causes(void **state)
{
	struct keel_kv_store *s = kvt_store();
	KVT_CHECK(s,
		  "{\"action\":\"set\",\"node\":{\"key\":\"/a\\u003cb\\u003e\\u0026c\","
		  "\"value\":\"x\\u2028y\\ufffd\\\"\\\\\\n\",\"modifiedIndex\":1,"
		  "\"createdIndex\":1}}\n",
		  KV_PUT("/a<b>&c", "x\xe2\x80\xa8y\xff\"\\\n"));
	KVT_GET(s, "/<missing>", false, false,
		"{\"errorCode\":100,\"message\":\"Key not found\",\"cause\":\"/\\u003cmissing\\u003e\","
		"\"index\":1}\n");
	KVT_CHECK(s,
		  "{\"errorCode\":101,\"message\":\"Compare failed\","
		  "\"cause\":\"[\\u003c != x\\u2028y\\ufffd\\\"\\\\\\n]\",\"index\":1}\n",
		  KV_PUT("/a<b>&c", "z"), KV_PREV("<"));
	keel_kv_store_free(s);
}

static void no_value_on_success_trims_writes_only(void **state)
{
	struct keel_kv_store *s = kvt_store();
	KVT_CHECK_FLAGS(s, KEEL_KV_JSON_NO_VALUE, "{\"action\":\"set\"}\n", KV_PUT("/foo", "one"));
	KVT_CHECK_FLAGS(s, KEEL_KV_JSON_NO_VALUE, "{\"action\":\"update\"}\n",
			KV_PUTX("/foo", "two", 1));
	KVT_CHECK_FLAGS(s, KEEL_KV_JSON_NO_VALUE, "{\"action\":\"compareAndSwap\"}\n",
			KV_PUT("/foo", "three"), KV_PREV("two"));
	KVT_CHECK_FLAGS(s, KEEL_KV_JSON_NO_VALUE, "{\"action\":\"create\"}\n",
			KV_PUTX("/bar", "x", 0));
	KVT_CHECK_FLAGS(s, KEEL_KV_JSON_NO_VALUE,
			"{\"action\":\"delete\",\"node\":{\"key\":\"/bar\",\"modifiedIndex\":5,"
			"\"createdIndex\":4},\"prevNode\":{\"key\":\"/bar\",\"value\":\"x\","
			"\"modifiedIndex\":4,\"createdIndex\":4}}\n",
			KV_DEL("/bar"));
	KVT_CHECK_FLAGS(s, KEEL_KV_JSON_NO_VALUE,
			"{\"action\":\"get\",\"node\":{\"key\":\"/foo\",\"value\":\"three\","
			"\"modifiedIndex\":3,\"createdIndex\":1}}\n",
			KV_QGET("/foo"));
	/* Errors are errors. */
	KVT_CHECK_FLAGS(s, KEEL_KV_JSON_NO_VALUE,
			"{\"errorCode\":105,\"message\":\"Key already exists\",\"cause\":\"/foo\","
			"\"index\":5}\n",
			KV_PUTX("/foo", "x", 0));
	keel_kv_store_free(s);
}

static struct keel_kv_store *etcd_layout(void)
{
	/* etcd 3.4: "/0" holds the cluster, "/1" the keys, and the HTTP layer trims "/1". */
	static const char *const ns[] = {"/0", "/1", NULL};
	struct keel_kv_store_opts o = {.namespaces = ns, .key_prefix = "/1"};
	struct keel_kv_store *s;
	assert_int_equal(keel_kv_store_new(&o, &s), 0);
	return s;
}

static void the_key_prefix_is_trimmed_like_etcds_http_layer(void **state)
{
	struct keel_kv_store *s = etcd_layout();
	/* GET /v2/keys/ on a fresh etcd: the keys root has no key and no indexes. */
	KVT_GET(s, "/1", false, false, "{\"action\":\"get\",\"node\":{\"dir\":true}}\n");
	KVT_CHECK(s,
		  "{\"action\":\"set\",\"node\":{\"key\":\"/foo\",\"value\":\"bar\","
		  "\"modifiedIndex\":1,\"createdIndex\":1}}\n",
		  KV_PUT("/1/foo", "bar"));
	KVT_GET(s, "/1", true, false,
		"{\"action\":\"get\",\"node\":{\"dir\":true,\"nodes\":[{\"key\":\"/foo\","
		"\"value\":\"bar\",\"modifiedIndex\":1,\"createdIndex\":1}]}}\n");
	KVT_GET(s, "/1/nope", false, false,
		"{\"errorCode\":100,\"message\":\"Key not found\",\"cause\":\"/nope\",\"index\":1}\n");
	KVT_CHECK(s,
		  "{\"errorCode\":107,\"message\":\"Root is read only\",\"cause\":\"/\",\"index\":1}\n",
		  KV_PUT("/1", "x"));
	KVT_CHECK(s,
		  "{\"action\":\"create\",\"node\":{\"key\":\"/q/00000000000000000002\","
		  "\"value\":\"j\",\"modifiedIndex\":2,\"createdIndex\":2}}\n",
		  KV_POST("/1/q", "j"));
	/* strings.TrimPrefix, not a path operation: "/10/x" loses its "/1" too. */
	KVT_CHECK(s,
		  "{\"action\":\"set\",\"node\":{\"key\":\"0/x\",\"value\":\"v\","
		  "\"modifiedIndex\":3,\"createdIndex\":3}}\n",
		  KV_PUT("/10/x", "v"));
	/* Keys outside the prefix (the cluster's) are shown whole. */
	KVT_CHECK(s,
		  "{\"action\":\"set\",\"node\":{\"key\":\"/0/version\",\"value\":\"3.4.0\","
		  "\"modifiedIndex\":4,\"createdIndex\":4}}\n",
		  KV_PUT("/0/version", "3.4.0"));
	keel_kv_store_free(s);
}

static void error_codes_map_to_etcds_messages_and_statuses(void **state)
{
	static const struct {
		int code, status;
		const char *message;
	} cases[] = {
		{100, 404, "Key not found"},
		{101, 412, "Compare failed"},
		{102, 403, "Not a file"},
		{104, 400, "Not a directory"},
		{105, 412, "Key already exists"},
		{107, 400, "Root is read only"},
		{108, 403, "Directory not empty"},
		{110, 401, "The request requires user authentication"},
		{201, 400, "PrevValue is Required in POST form"},
		{202, 400, "The given TTL in POST form is not a number"},
		{203, 400, "The given index in POST form is not a number"},
		{209, 400, "Invalid field"},
		{210, 400, "Invalid POST form"},
		{211, 400, "Value provided on refresh"},
		{212, 400, "A TTL must be provided on refresh"},
		{300, 500, "Raft Internal Error"},
		{301, 500, "During Leader Election"},
		{400, 400, "watcher is cleared due to etcd recovery"},
		{401, 400, "The event in requested index is outdated and cleared"},
		{999, 400, ""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(keel_kv_error_status(cases[i].code), cases[i].status);
		assert_string_equal(keel_kv_error_message(cases[i].code), cases[i].message);
	}
}

static void error_bodies_omit_an_empty_cause(void **state)
{
	struct keel_kv_error e = {0};
	struct keel_buf b = KEEL_BUF_INIT;
	assert_int_equal(keel_kv_error_set(&e, 209, NULL, 0, 0), 0);
	assert_int_equal(keel_kv_error_json(&e, &b), 0);
	assert_string_equal(b.data, "{\"errorCode\":209,\"message\":\"Invalid field\",\"index\":0}\n");
	keel_buf_reset(&b);
	const char *cause = "invalid value for \"recursive\"";
	assert_int_equal(keel_kv_error_set(&e, 209, cause, strlen(cause), 0), 0);
	assert_int_equal(keel_kv_error_json(&e, &b), 0);
	assert_string_equal(b.data, "{\"errorCode\":209,\"message\":\"Invalid field\","
				    "\"cause\":\"invalid value for \\\"recursive\\\"\",\"index\":0}\n");
	keel_buf_reset(&b);
	cause = "Insufficient credentials";
	assert_int_equal(keel_kv_error_set(&e, 110, cause, strlen(cause), 0), 0);
	assert_int_equal(keel_kv_error_json(&e, &b), 0);
	assert_string_equal(b.data, "{\"errorCode\":110,\"message\":\"The request requires user "
				    "authentication\",\"cause\":\"Insufficient credentials\","
				    "\"index\":0}\n");
	keel_buf_free(&b);
	keel_kv_error_clear(&e);
	keel_kv_error_clear(&e);
	keel_kv_error_clear(NULL);
}

static void expirations_print_as_rfc3339_nano(void **state)
{
	struct keel_kv_store *s = kvt_store();
	/* Whole seconds: no fraction; trailing zeros of the fraction go. */
	KVT_CHECK(s,
		  "{\"action\":\"set\",\"node\":{\"key\":\"/a\",\"value\":\"1\","
		  "\"expiration\":\"2024-01-02T03:04:10Z\",\"ttl\":5,\"modifiedIndex\":1,"
		  "\"createdIndex\":1}}\n",
		  KV_PUT("/a", "1"), .has_ttl = true, .ttl = 5, .time = 1704164645LL * SEC);
	KVT_CHECK(s,
		  "{\"action\":\"set\",\"node\":{\"key\":\"/b\",\"value\":\"2\","
		  "\"expiration\":\"2024-01-02T03:04:10.5Z\",\"ttl\":5,\"modifiedIndex\":2,"
		  "\"createdIndex\":2}}\n",
		  KV_PUT("/b", "2"), .has_ttl = true, .ttl = 5,
		  .time = 1704164645LL * SEC + SEC / 2);
	/* time.Duration(ttl) * time.Second wraps like Go's int64: this TTL is -0.709551616 s. */
	KVT_CHECK(s,
		  "{\"action\":\"set\",\"node\":{\"key\":\"/c\",\"value\":\"3\","
		  "\"expiration\":\"2024-01-02T03:04:04.413905173Z\",\"modifiedIndex\":3,"
		  "\"createdIndex\":3}}\n",
		  KV_PUT("/c", "3"), .has_ttl = true, .ttl = 18446744073ull);
	keel_kv_store_free(s);
}

static void noop_cb(struct keel_kv_watcher *w, struct keel_kv_event *ev)
{
}

static void the_store_statistics_keep_etcds_field_order(void **state)
{
	struct keel_kv_store *s = kvt_store();
	struct keel_kv_watcher w = {0};
	struct keel_kv_event *ev = NULL;
	struct keel_kv_error e = {0};
	assert_int_equal(keel_kv_store_watch(s, &w, "/x", 2, false, false, 0, noop_cb, &ev, &e), 0);
	struct keel_buf b = KEEL_BUF_INIT;
	assert_int_equal(keel_kv_store_stats_json(s, &b), 0);
	assert_string_equal(b.data,
			    "{\"getsSuccess\":0,\"getsFail\":0,\"setsSuccess\":0,\"setsFail\":0,"
			    "\"deleteSuccess\":0,\"deleteFail\":0,\"updateSuccess\":0,"
			    "\"updateFail\":0,\"createSuccess\":0,\"createFail\":0,"
			    "\"compareAndSwapSuccess\":0,\"compareAndSwapFail\":0,"
			    "\"compareAndDeleteSuccess\":0,\"compareAndDeleteFail\":0,"
			    "\"expireCount\":0,\"watchers\":1}");
	keel_buf_free(&b);
	keel_kv_store_free(s);
}

static void action_names_are_etcds(void **state)
{
	assert_string_equal(keel_kv_action_name(KEEL_KV_ACTION_GET), "get");
	assert_string_equal(keel_kv_action_name(KEEL_KV_ACTION_SET), "set");
	assert_string_equal(keel_kv_action_name(KEEL_KV_ACTION_CREATE), "create");
	assert_string_equal(keel_kv_action_name(KEEL_KV_ACTION_UPDATE), "update");
	assert_string_equal(keel_kv_action_name(KEEL_KV_ACTION_DELETE), "delete");
	assert_string_equal(keel_kv_action_name(KEEL_KV_ACTION_CAS), "compareAndSwap");
	assert_string_equal(keel_kv_action_name(KEEL_KV_ACTION_CAD), "compareAndDelete");
	assert_string_equal(keel_kv_action_name(KEEL_KV_ACTION_EXPIRE), "expire");
	assert_string_equal(keel_kv_action_name((enum keel_kv_action)42), "");
}

/* Parse a rendered body with jansson. */
static json_t *parse(const char *text)
{
	json_error_t err;
	json_t *j = json_loads(text, 0, &err);
	if (!j)
		fail_msg("bad JSON (%s): %.200s", err.text, text);
	return j;
}

static void deep_trees_render_without_a_nesting_limit(void **state)
{
	struct keel_kv_store *s = kvt_store();
	enum { DEPTH = 400 };
	char *path = malloc(DEPTH * 3 + 8);
	size_t n = 0;
	for (int i = 0; i < DEPTH; i++) {
		path[n++] = '/';
		path[n++] = 'd';
	}
	path[n] = '\0';
	KVT_OK(s, .method = KEEL_KV_PUT, .path = path, .path_len = n, KV_VAL("leaf"),
	       .prev_exist = -1);
	char *got = kvt_get(s, "/", true, true, T0);
	json_t *j = parse(got);
	json_t *node = json_object_get(j, "node");
	int depth = 0;
	while (json_object_get(node, "nodes")) {
		node = json_array_get(json_object_get(node, "nodes"), 0);
		depth++;
	}
	assert_int_equal(depth, DEPTH);
	assert_string_equal(json_string_value(json_object_get(node, "value")), "leaf");
	assert_int_equal(json_string_length(json_object_get(node, "key")), n);
	json_decref(j);
	free(got);
	/* And removing it walks the same depth without recursion. */
	KVT_OK(s, KV_DEL("/d"), .recursive = true);
	assert_int_equal(keel_kv_store_node_count(s), 0);
	kvt_check_store(s);
	free(path);
	keel_kv_store_free(s);
}

static void wide_directories_list_sorted_and_unsorted(void **state)
{
	struct keel_kv_store *s = kvt_store();
	enum { N = 3000 };
	char key[32];
	for (int i = 0; i < N; i++) {
		int k = snprintf(key, sizeof(key), "/w/k%05d", (i * 7919) % N);
		KVT_OK(s, .method = KEEL_KV_PUT, .path = key, .path_len = (size_t)k, KV_VAL("v"),
		       .prev_exist = -1);
	}
	char *sorted = kvt_get(s, "/w", false, true, T0);
	char *unsorted = kvt_get(s, "/w", false, false, T0);
	json_t *a = parse(sorted), *b = parse(unsorted);
	json_t *na = json_object_get(json_object_get(a, "node"), "nodes");
	json_t *nb = json_object_get(json_object_get(b, "node"), "nodes");
	assert_int_equal(json_array_size(na), N);
	assert_int_equal(json_array_size(nb), N);
	for (int i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "/w/k%05d", i);
		assert_string_equal(json_string_value(json_object_get(json_array_get(na, i), "key")),
				    key);
	}
	/* Unsorted holds the same set. */
	char *seen = calloc(N, 1);
	for (int i = 0; i < N; i++) {
		const char *k = json_string_value(json_object_get(json_array_get(nb, i), "key"));
		int v = atoi(k + 4);
		assert_true(v >= 0 && v < N && !seen[v]);
		seen[v] = 1;
	}
	free(seen);
	json_decref(a);
	json_decref(b);
	free(sorted);
	free(unsorted);
	/* Emptying it gives the table's memory back. */
	size_t full = keel_kv_store_mem_bytes(s);
	for (int i = 0; i < N; i++) {
		int k = snprintf(key, sizeof(key), "/w/k%05d", i);
		KVT_OK(s, .method = KEEL_KV_DELETE, .path = key, .path_len = (size_t)k,
		       .prev_exist = -1);
		if (i % 500 == 0)
			kvt_check_store(s);
	}
	assert_true(keel_kv_store_mem_bytes(s) < full / 4);
	kvt_check_store(s);
	keel_kv_store_free(s);
}

static void events_append_to_the_callers_buffer(void **state)
{
	struct keel_kv_store *s = kvt_store();
	struct keel_kv_req r = {KV_PUT("/k", "v"), .time = T0};
	struct keel_kv_event *ev;
	struct keel_kv_error e = {0};
	assert_int_equal(keel_kv_store_apply(s, &r, &ev, &e), 0);
	struct keel_buf b = KEEL_BUF_INIT;
	assert_int_equal(keel_buf_puts(&b, "HTTP body: "), 0);
	assert_int_equal(keel_kv_event_json(ev, 0, &b), 0);
	assert_string_equal(b.data, "HTTP body: {\"action\":\"set\",\"node\":{\"key\":\"/k\","
				    "\"value\":\"v\",\"modifiedIndex\":1,\"createdIndex\":1}}\n");
	keel_buf_free(&b);
	keel_kv_event_unref(ev);
	keel_kv_store_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(go_escaping_applies_to_keys_values_and_causes),
		cmocka_unit_test(no_value_on_success_trims_writes_only),
		cmocka_unit_test(the_key_prefix_is_trimmed_like_etcds_http_layer),
		cmocka_unit_test(error_codes_map_to_etcds_messages_and_statuses),
		cmocka_unit_test(error_bodies_omit_an_empty_cause),
		cmocka_unit_test(expirations_print_as_rfc3339_nano),
		cmocka_unit_test(the_store_statistics_keep_etcds_field_order),
		cmocka_unit_test(action_names_are_etcds),
		cmocka_unit_test(deep_trees_render_without_a_nesting_limit),
		cmocka_unit_test(wide_directories_list_sorted_and_unsorted),
		cmocka_unit_test(events_append_to_the_callers_buffer),
	};
	return cmocka_run_group_tests_name("kv/json", tests, NULL, NULL);
}
