/* lib/kv operations against etcd's behaviour: every action and error code with the exact bytes
 * etcd 3.4's v2 API writes (expected strings written by hand from etcd's docs and store.go). */
#include "test_kv_util.h"

#include <errno.h>

#include "base/fault.h"

static void noop_cb(struct keel_kv_watcher *w, struct keel_kv_event *ev)
{
}

/* The event the history holds at `index` for key, as a watch with waitIndex sees it. */
static char *history_json(struct keel_kv_store *s, const char *key, uint64_t index)
{
	struct keel_kv_watcher w = {0};
	struct keel_kv_event *ev = NULL;
	struct keel_kv_error e = {0};
	struct keel_buf b = KEEL_BUF_INIT;
	int rc = keel_kv_store_watch(s, &w, key, strlen(key), false, false, index, noop_cb, &ev, &e);
	assert_int_equal(rc, KEEL_KV_FOUND);
	assert_int_equal(keel_kv_event_json(ev, 0, &b), 0);
	keel_kv_event_unref(ev);
	return keel_buf_steal(&b, NULL);
}

#define HISTORY(s, key, index, want)                                                       \
	do {                                                                               \
		char *got_ = history_json((s), (key), (index));                            \
		if (strcmp(got_, (want)) != 0)                                             \
			fail_msg("got  %s\nwant %s", got_, (want));                        \
		free(got_);                                                                \
	} while (0)

static void set_get_delete_match_the_etcd_api_examples(void **state)
{
	struct keel_kv_store *s = kvt_store();
	keel_kv_store_set_index(s, 1); /* etcd's first user write is index 2 in its docs */
	KVT_CHECK(s,
		  "{\"action\":\"set\",\"node\":{\"key\":\"/message\",\"value\":\"Hello world\","
		  "\"modifiedIndex\":2,\"createdIndex\":2}}\n",
		  KV_PUT("/message", "Hello world"));
	KVT_GET(s, "/message", false, false,
		"{\"action\":\"get\",\"node\":{\"key\":\"/message\",\"value\":\"Hello world\","
		"\"modifiedIndex\":2,\"createdIndex\":2}}\n");
	KVT_CHECK(s,
		  "{\"action\":\"set\",\"node\":{\"key\":\"/message\",\"value\":\"Hello etcd\","
		  "\"modifiedIndex\":3,\"createdIndex\":3},\"prevNode\":{\"key\":\"/message\","
		  "\"value\":\"Hello world\",\"modifiedIndex\":2,\"createdIndex\":2}}\n",
		  KV_PUT("/message", "Hello etcd"));
	KVT_CHECK(s,
		  "{\"action\":\"delete\",\"node\":{\"key\":\"/message\",\"modifiedIndex\":4,"
		  "\"createdIndex\":3},\"prevNode\":{\"key\":\"/message\",\"value\":\"Hello etcd\","
		  "\"modifiedIndex\":3,\"createdIndex\":3}}\n",
		  KV_DEL("/message"));
	KVT_GET(s, "/message", false, false,
		"{\"errorCode\":100,\"message\":\"Key not found\",\"cause\":\"/message\","
		"\"index\":4}\n");
	assert_int_equal(keel_kv_store_index(s), 4);
	kvt_check_store(s);
	keel_kv_store_free(s);
}

static void set_reports_created_only_without_prev_node(void **state)
{
	struct keel_kv_store *s = kvt_store();
	struct keel_kv_req r = {KV_PUT("/k", "v"), .time = T0};
	struct keel_kv_event *ev;
	struct keel_kv_error e = {0};
	assert_int_equal(keel_kv_store_apply(s, &r, &ev, &e), 0);
	assert_true(keel_kv_event_is_created(ev));
	assert_int_equal(ev->etcd_index, 1);
	assert_int_equal(keel_kv_event_index(ev), 1);
	keel_kv_event_unref(ev);
	assert_int_equal(keel_kv_store_apply(s, &r, &ev, &e), 0);
	assert_false(keel_kv_event_is_created(ev));
	assert_true(ev->has_prev);
	keel_kv_event_unref(ev);
	r.prev_exist = 1;
	assert_int_equal(keel_kv_store_apply(s, &r, &ev, &e), 0);
	assert_int_equal(ev->action, KEEL_KV_ACTION_UPDATE);
	assert_false(keel_kv_event_is_created(ev));
	keel_kv_event_unref(ev);
	keel_kv_store_free(s);
}

static void missing_keys_name_the_first_missing_element(void **state)
{
	struct keel_kv_store *s = kvt_store();
	KVT_OK(s, KV_PUT("/a/b", "1"));
	KVT_GET(s, "/a/x/y", false, false,
		"{\"errorCode\":100,\"message\":\"Key not found\",\"cause\":\"/a/x\",\"index\":1}\n");
	KVT_GET(s, "/z/y", false, false,
		"{\"errorCode\":100,\"message\":\"Key not found\",\"cause\":\"/z\",\"index\":1}\n");
	KVT_CHECK(s,
		  "{\"errorCode\":100,\"message\":\"Key not found\",\"cause\":\"/a/c\",\"index\":1}\n",
		  KV_DEL("/a/c"));
	keel_kv_store_free(s);
}

static void a_key_in_the_middle_of_a_path_is_not_a_directory(void **state)
{
	struct keel_kv_store *s = kvt_store();
	KVT_OK(s, KV_PUT("/file", "v"));
	const char *want = "{\"errorCode\":104,\"message\":\"Not a directory\",\"cause\":\"/file\","
			   "\"index\":1}\n";
	KVT_GET(s, "/file/x", false, false, want);
	KVT_CHECK(s, want, KV_PUT("/file/x", "v"));
	KVT_CHECK(s, want, KV_PUTX("/file/x/y", "v", 0));
	KVT_CHECK(s, want, KV_POST("/file", "v"));
	KVT_CHECK(s, want, KV_DEL("/file/x"));
	KVT_CHECK(s, want, KV_PUTX("/file/x", "v", 1));
	assert_int_equal(keel_kv_store_index(s), 1);
	kvt_check_store(s);
	keel_kv_store_free(s);
}

static void root_is_read_only(void **state)
{
	struct keel_kv_store *s = kvt_store();
	const char *ro = "{\"errorCode\":107,\"message\":\"Root is read only\",\"cause\":\"/\","
			 "\"index\":0}\n";
	KVT_CHECK(s, ro, KV_PUT("/", "v"));
	KVT_CHECK(s, ro, KV_PUT("/a/..", "v"));
	KVT_CHECK(s, ro, KV_PUTX("/", "", 1), .dir = true);
	KVT_CHECK(s, ro, KV_PUT("/", "v"), KV_PREV("x"));
	KVT_CHECK(s, ro, KV_PUTX("/", "v", 0));
	KVT_CHECK(s, ro, KV_DEL("/"));
	KVT_CHECK(s, ro, KV_DEL("/"), .recursive = true);
	/* CompareAndDelete has no read-only check: the root is a directory. */
	KVT_CHECK(s,
		  "{\"errorCode\":102,\"message\":\"Not a file\",\"cause\":\"/\",\"index\":0}\n",
		  KV_DEL("/"), KV_PREV("x"));
	KVT_GET(s, "/", false, false, "{\"action\":\"get\",\"node\":{\"key\":\"/\",\"dir\":true}}\n");
	keel_kv_store_free(s);
}

static void namespaces_are_read_only_too(void **state)
{
	const char *ns[] = {"/0", "/1", NULL};
	struct keel_kv_store_opts o = {.namespaces = ns};
	struct keel_kv_store *s;
	assert_int_equal(keel_kv_store_new(&o, &s), 0);
	const char *ro = "{\"errorCode\":107,\"message\":\"Root is read only\",\"cause\":\"/\","
			 "\"index\":0}\n";
	KVT_CHECK(s, ro, KV_PUT("/1", "v"));
	KVT_CHECK(s, ro, KV_DEL("/0"), .recursive = true);
	KVT_CHECK(s,
		  "{\"action\":\"set\",\"node\":{\"key\":\"/1/k\",\"value\":\"v\","
		  "\"modifiedIndex\":1,\"createdIndex\":1}}\n",
		  KV_PUT("/1/k", "v"));
	KVT_GET(s, "/", false, true,
		"{\"action\":\"get\",\"node\":{\"key\":\"/\",\"dir\":true,\"nodes\":[{\"key\":\"/0\","
		"\"dir\":true},{\"key\":\"/1\",\"dir\":true}]}}\n");
	keel_kv_store_free(s);
	const char *bad[] = {"/a/b", NULL};
	o.namespaces = bad;
	assert_int_equal(keel_kv_store_new(&o, &s), -EINVAL);
	const char *dup[] = {"/a", "a/", NULL};
	o.namespaces = dup;
	assert_int_equal(keel_kv_store_new(&o, &s), -EINVAL);
}

static void directories_list_their_children(void **state)
{
	struct keel_kv_store *s = kvt_store();
	KVT_CHECK(s,
		  "{\"action\":\"set\",\"node\":{\"key\":\"/dir\",\"dir\":true,"
		  "\"modifiedIndex\":1,\"createdIndex\":1}}\n",
		  KV_PUT("/dir", ""), .dir = true);
	const char *notfile = "{\"errorCode\":102,\"message\":\"Not a file\",\"cause\":\"/dir\","
			      "\"index\":1}\n";
	KVT_CHECK(s, notfile, KV_PUT("/dir", ""), .dir = true);
	KVT_CHECK(s, notfile, KV_PUT("/dir", "v"));
	KVT_GET(s, "/dir", false, false,
		"{\"action\":\"get\",\"node\":{\"key\":\"/dir\",\"dir\":true,\"modifiedIndex\":1,"
		"\"createdIndex\":1}}\n");
	KVT_OK(s, KV_PUT("/dir/a", "1"));
	KVT_OK(s, KV_PUT("/dir/sub/b", "2"));
	KVT_GET(s, "/dir", false, true,
		"{\"action\":\"get\",\"node\":{\"key\":\"/dir\",\"dir\":true,\"nodes\":["
		"{\"key\":\"/dir/a\",\"value\":\"1\",\"modifiedIndex\":2,\"createdIndex\":2},"
		"{\"key\":\"/dir/sub\",\"dir\":true,\"modifiedIndex\":3,\"createdIndex\":3}],"
		"\"modifiedIndex\":1,\"createdIndex\":1}}\n");
	KVT_GET(s, "/dir", true, true,
		"{\"action\":\"get\",\"node\":{\"key\":\"/dir\",\"dir\":true,\"nodes\":["
		"{\"key\":\"/dir/a\",\"value\":\"1\",\"modifiedIndex\":2,\"createdIndex\":2},"
		"{\"key\":\"/dir/sub\",\"dir\":true,\"nodes\":[{\"key\":\"/dir/sub/b\","
		"\"value\":\"2\",\"modifiedIndex\":3,\"createdIndex\":3}],\"modifiedIndex\":3,"
		"\"createdIndex\":3}],\"modifiedIndex\":1,\"createdIndex\":1}}\n");
	keel_kv_store_free(s);
}

static void delete_needs_dir_and_recursive_for_directories(void **state)
{
	struct keel_kv_store *s = kvt_store();
	KVT_OK(s, KV_PUT("/dir/a", "1"));
	KVT_OK(s, KV_PUT("/dir/sub/b", "2"));
	KVT_OK(s, KV_PUT("/empty", ""), .dir = true);
	KVT_CHECK(s,
		  "{\"errorCode\":102,\"message\":\"Not a file\",\"cause\":\"/dir\",\"index\":3}\n",
		  KV_DEL("/dir"));
	KVT_CHECK(s,
		  "{\"errorCode\":108,\"message\":\"Directory not empty\",\"cause\":\"/dir\","
		  "\"index\":3}\n",
		  KV_DEL("/dir"), .dir = true);
	/* dir=true on a key is fine. */
	KVT_CHECK(s,
		  "{\"action\":\"delete\",\"node\":{\"key\":\"/dir/a\",\"modifiedIndex\":4,"
		  "\"createdIndex\":1},\"prevNode\":{\"key\":\"/dir/a\",\"value\":\"1\","
		  "\"modifiedIndex\":1,\"createdIndex\":1}}\n",
		  KV_DEL("/dir/a"), .dir = true);
	KVT_CHECK(s,
		  "{\"action\":\"delete\",\"node\":{\"key\":\"/empty\",\"dir\":true,"
		  "\"modifiedIndex\":5,\"createdIndex\":3},\"prevNode\":{\"key\":\"/empty\","
		  "\"dir\":true,\"modifiedIndex\":3,\"createdIndex\":3}}\n",
		  KV_DEL("/empty"), .dir = true);
	KVT_CHECK(s,
		  "{\"action\":\"delete\",\"node\":{\"key\":\"/dir\",\"dir\":true,"
		  "\"modifiedIndex\":6,\"createdIndex\":1},\"prevNode\":{\"key\":\"/dir\","
		  "\"dir\":true,\"modifiedIndex\":1,\"createdIndex\":1}}\n",
		  KV_DEL("/dir"), .recursive = true);
	KVT_GET(s, "/dir/sub/b", false, false,
		"{\"errorCode\":100,\"message\":\"Key not found\",\"cause\":\"/dir\",\"index\":6}\n");
	assert_int_equal(keel_kv_store_node_count(s), 0);
	kvt_check_store(s);
	keel_kv_store_free(s);
}

static void create_refuses_an_existing_key(void **state)
{
	struct keel_kv_store *s = kvt_store();
	KVT_CHECK(s,
		  "{\"action\":\"create\",\"node\":{\"key\":\"/c\",\"value\":\"1\","
		  "\"modifiedIndex\":1,\"createdIndex\":1}}\n",
		  KV_PUTX("/c", "1", 0));
	KVT_CHECK(s,
		  "{\"errorCode\":105,\"message\":\"Key already exists\",\"cause\":\"/c\","
		  "\"index\":1}\n",
		  KV_PUTX("/c", "2", 0));
	KVT_CHECK(s,
		  "{\"action\":\"create\",\"node\":{\"key\":\"/cd\",\"dir\":true,"
		  "\"modifiedIndex\":2,\"createdIndex\":2}}\n",
		  KV_PUTX("/cd", "ignored", 0), .dir = true);
	KVT_CHECK(s,
		  "{\"errorCode\":105,\"message\":\"Key already exists\",\"cause\":\"/cd\","
		  "\"index\":2}\n",
		  KV_PUTX("/cd", "", 0), .dir = true);
	keel_kv_store_free(s);
}

static void update_keeps_created_index_and_directories_keep_modified(void **state)
{
	struct keel_kv_store *s = kvt_store();
	KVT_CHECK(s,
		  "{\"errorCode\":100,\"message\":\"Key not found\",\"cause\":\"/u\",\"index\":0}\n",
		  KV_PUTX("/u", "1", 1));
	KVT_OK(s, KV_PUT("/u", "1"));
	KVT_CHECK(s,
		  "{\"action\":\"update\",\"node\":{\"key\":\"/u\",\"value\":\"2\","
		  "\"modifiedIndex\":2,\"createdIndex\":1},\"prevNode\":{\"key\":\"/u\","
		  "\"value\":\"1\",\"modifiedIndex\":1,\"createdIndex\":1}}\n",
		  KV_PUTX("/u", "2", 1));
	KVT_OK(s, KV_PUT("/d", ""), .dir = true);
	KVT_CHECK(s,
		  "{\"errorCode\":102,\"message\":\"Not a file\",\"cause\":\"/d\",\"index\":3}\n",
		  KV_PUTX("/d", "x", 1));
	KVT_CHECK(s,
		  "{\"action\":\"update\",\"node\":{\"key\":\"/d\",\"dir\":true,"
		  "\"expiration\":\"2024-01-02T03:04:35.123456789Z\",\"ttl\":30,"
		  "\"modifiedIndex\":4,\"createdIndex\":3},\"prevNode\":{\"key\":\"/d\","
		  "\"dir\":true,\"modifiedIndex\":3,\"createdIndex\":3}}\n",
		  KV_PUTX("/d", "", 1), .dir = true, .has_ttl = true, .ttl = 30);
	/* etcd's node.Write ignores directories: the modifiedIndex stays 3. */
	KVT_GET(s, "/d", false, false,
		"{\"action\":\"get\",\"node\":{\"key\":\"/d\",\"dir\":true,"
		"\"expiration\":\"2024-01-02T03:04:35.123456789Z\",\"ttl\":30,"
		"\"modifiedIndex\":3,\"createdIndex\":3}}\n");
	assert_int_equal(keel_kv_store_index(s), 4);
	/* A longer and a shorter value, rewritten in place or in a new node. */
	KVT_OK(s, KV_PUTX("/u", "a much longer value than before", 1));
	KVT_OK(s, KV_PUTX("/u", "", 1));
	KVT_GET(s, "/u", false, false,
		"{\"action\":\"get\",\"node\":{\"key\":\"/u\",\"value\":\"\",\"modifiedIndex\":6,"
		"\"createdIndex\":1}}\n");
	kvt_check_store(s);
	keel_kv_store_free(s);
}

static void compare_and_swap_checks_value_and_index(void **state)
{
	struct keel_kv_store *s = kvt_store();
	keel_kv_store_set_index(s, 7);
	KVT_OK(s, KV_PUT("/foo", "one"));
	KVT_CHECK(s,
		  "{\"errorCode\":105,\"message\":\"Key already exists\",\"cause\":\"/foo\","
		  "\"index\":8}\n",
		  KV_PUTX("/foo", "three", 0));
	KVT_CHECK(s,
		  "{\"errorCode\":101,\"message\":\"Compare failed\",\"cause\":\"[two != one]\","
		  "\"index\":8}\n",
		  KV_PUT("/foo", "three"), KV_PREV("two"));
	KVT_CHECK(s,
		  "{\"errorCode\":101,\"message\":\"Compare failed\",\"cause\":\"[1 != 8]\","
		  "\"index\":8}\n",
		  KV_PUT("/foo", "three"), .prev_index = 1);
	KVT_CHECK(s,
		  "{\"errorCode\":101,\"message\":\"Compare failed\","
		  "\"cause\":\"[two != one] [1 != 8]\",\"index\":8}\n",
		  KV_PUT("/foo", "three"), KV_PREV("two"), .prev_index = 1);
	KVT_CHECK(s,
		  "{\"action\":\"compareAndSwap\",\"node\":{\"key\":\"/foo\",\"value\":\"two\","
		  "\"modifiedIndex\":9,\"createdIndex\":8},\"prevNode\":{\"key\":\"/foo\","
		  "\"value\":\"one\",\"modifiedIndex\":8,\"createdIndex\":8}}\n",
		  KV_PUT("/foo", "two"), KV_PREV("one"));
	/* prevExist=true with a condition is a CAS too; both conditions must hold. */
	KVT_CHECK(s,
		  "{\"action\":\"compareAndSwap\",\"node\":{\"key\":\"/foo\",\"value\":\"3\","
		  "\"modifiedIndex\":10,\"createdIndex\":8},\"prevNode\":{\"key\":\"/foo\","
		  "\"value\":\"two\",\"modifiedIndex\":9,\"createdIndex\":8}}\n",
		  KV_PUTX("/foo", "3", 1), KV_PREV("two"), .prev_index = 9);
	KVT_CHECK(s,
		  "{\"errorCode\":100,\"message\":\"Key not found\",\"cause\":\"/nope\","
		  "\"index\":10}\n",
		  KV_PUT("/nope", "x"), KV_PREV("a"));
	KVT_OK(s, KV_PUT("/dir", ""), .dir = true);
	KVT_CHECK(s,
		  "{\"errorCode\":102,\"message\":\"Not a file\",\"cause\":\"/dir\",\"index\":11}\n",
		  KV_PUT("/dir", "x"), KV_PREV("a"));
	/* prevExist=false wins over the conditions: a create. */
	KVT_CHECK(s,
		  "{\"errorCode\":105,\"message\":\"Key already exists\",\"cause\":\"/foo\","
		  "\"index\":11}\n",
		  KV_PUTX("/foo", "x", 0), KV_PREV("3"));
	KVT_CHECK(s,
		  "{\"action\":\"compareAndSwap\",\"node\":{\"key\":\"/foo\",\"value\":\"4\","
		  "\"expiration\":\"2024-01-02T03:04:15.123456789Z\",\"ttl\":10,"
		  "\"modifiedIndex\":12,\"createdIndex\":8},\"prevNode\":{\"key\":\"/foo\","
		  "\"value\":\"3\",\"modifiedIndex\":10,\"createdIndex\":8}}\n",
		  KV_PUT("/foo", "4"), .prev_index = 10, .has_ttl = true, .ttl = 10);
	assert_true(keel_kv_store_has_ttl_keys(s));
	/* A CAS without TTL makes the key permanent again. */
	KVT_OK(s, KV_PUT("/foo", "5"), KV_PREV("4"));
	assert_false(keel_kv_store_has_ttl_keys(s));
	kvt_check_store(s);
	keel_kv_store_free(s);
}

static void compare_and_delete_checks_value_and_index(void **state)
{
	struct keel_kv_store *s = kvt_store();
	keel_kv_store_set_index(s, 7);
	KVT_OK(s, KV_PUT("/foo", "one"));
	KVT_CHECK(s,
		  "{\"errorCode\":101,\"message\":\"Compare failed\",\"cause\":\"[two != one]\","
		  "\"index\":8}\n",
		  KV_DEL("/foo"), KV_PREV("two"));
	KVT_CHECK(s,
		  "{\"errorCode\":101,\"message\":\"Compare failed\",\"cause\":\"[1 != 8]\","
		  "\"index\":8}\n",
		  KV_DEL("/foo"), .prev_index = 1);
	KVT_CHECK(s,
		  "{\"action\":\"compareAndDelete\",\"node\":{\"key\":\"/foo\",\"modifiedIndex\":9,"
		  "\"createdIndex\":8},\"prevNode\":{\"key\":\"/foo\",\"value\":\"one\","
		  "\"modifiedIndex\":8,\"createdIndex\":8}}\n",
		  KV_DEL("/foo"), KV_PREV("one"));
	KVT_OK(s, KV_PUT("/dir/x", "1"));
	KVT_CHECK(s,
		  "{\"errorCode\":102,\"message\":\"Not a file\",\"cause\":\"/dir\",\"index\":10}\n",
		  KV_DEL("/dir"), KV_PREV("a"));
	KVT_CHECK(s,
		  "{\"errorCode\":100,\"message\":\"Key not found\",\"cause\":\"/gone\","
		  "\"index\":10}\n",
		  KV_DEL("/gone"), .prev_index = 3);
	KVT_CHECK(s,
		  "{\"action\":\"compareAndDelete\",\"node\":{\"key\":\"/dir/x\","
		  "\"modifiedIndex\":11,\"createdIndex\":10},\"prevNode\":{\"key\":\"/dir/x\","
		  "\"value\":\"1\",\"modifiedIndex\":10,\"createdIndex\":10}}\n",
		  KV_DEL("/dir/x"), KV_PREV("1"), .prev_index = 10);
	kvt_check_store(s);
	keel_kv_store_free(s);
}

static void post_creates_in_order_keys(void **state)
{
	struct keel_kv_store *s = kvt_store();
	keel_kv_store_set_index(s, 1);
	KVT_CHECK(s,
		  "{\"action\":\"create\",\"node\":{\"key\":\"/queue/00000000000000000002\","
		  "\"value\":\"Job1\",\"modifiedIndex\":2,\"createdIndex\":2}}\n",
		  KV_POST("/queue", "Job1"));
	KVT_CHECK(s,
		  "{\"action\":\"create\",\"node\":{\"key\":\"/queue/00000000000000000003\","
		  "\"value\":\"Job2\",\"modifiedIndex\":3,\"createdIndex\":3}}\n",
		  KV_POST("/queue/", "Job2"));
	KVT_GET(s, "/queue", true, true,
		"{\"action\":\"get\",\"node\":{\"key\":\"/queue\",\"dir\":true,\"nodes\":["
		"{\"key\":\"/queue/00000000000000000002\",\"value\":\"Job1\",\"modifiedIndex\":2,"
		"\"createdIndex\":2},{\"key\":\"/queue/00000000000000000003\",\"value\":\"Job2\","
		"\"modifiedIndex\":3,\"createdIndex\":3}],\"modifiedIndex\":2,\"createdIndex\":2}}\n");
	KVT_CHECK(s,
		  "{\"action\":\"create\",\"node\":{\"key\":\"/00000000000000000004\","
		  "\"dir\":true,\"modifiedIndex\":4,\"createdIndex\":4}}\n",
		  KV_POST("/", ""), .dir = true);
	keel_kv_store_set_index(s, 12345678901234567890ull);
	KVT_CHECK(s,
		  "{\"action\":\"create\",\"node\":{\"key\":\"/q/12345678901234567891\","
		  "\"value\":\"x\",\"modifiedIndex\":12345678901234567891,"
		  "\"createdIndex\":12345678901234567891}}\n",
		  KV_POST("/q", "x"));
	keel_kv_store_free(s);
}

static void hidden_nodes_are_left_out_of_listings(void **state)
{
	struct keel_kv_store *s = kvt_store();
	KVT_OK(s, KV_PUT("/_message", "Hello hidden world"));
	KVT_OK(s, KV_PUT("/message", "Hello world"));
	KVT_OK(s, KV_PUT("/foo_dir/foo", "bar"));
	KVT_OK(s, KV_PUT("/foo_dir/_h", "x"));
	KVT_OK(s, KV_PUT("/_hd/k", "v"));
	KVT_GET(s, "/", false, true,
		"{\"action\":\"get\",\"node\":{\"key\":\"/\",\"dir\":true,\"nodes\":["
		"{\"key\":\"/foo_dir\",\"dir\":true,\"modifiedIndex\":3,\"createdIndex\":3},"
		"{\"key\":\"/message\",\"value\":\"Hello world\",\"modifiedIndex\":2,"
		"\"createdIndex\":2}]}}\n");
	KVT_GET(s, "/", true, true,
		"{\"action\":\"get\",\"node\":{\"key\":\"/\",\"dir\":true,\"nodes\":["
		"{\"key\":\"/foo_dir\",\"dir\":true,\"nodes\":[{\"key\":\"/foo_dir/foo\","
		"\"value\":\"bar\",\"modifiedIndex\":3,\"createdIndex\":3}],\"modifiedIndex\":3,"
		"\"createdIndex\":3},{\"key\":\"/message\",\"value\":\"Hello world\","
		"\"modifiedIndex\":2,\"createdIndex\":2}]}}\n");
	/* Asked for by name, hidden nodes show. */
	KVT_GET(s, "/_message", false, false,
		"{\"action\":\"get\",\"node\":{\"key\":\"/_message\",\"value\":\"Hello hidden "
		"world\",\"modifiedIndex\":1,\"createdIndex\":1}}\n");
	KVT_GET(s, "/_hd", true, false,
		"{\"action\":\"get\",\"node\":{\"key\":\"/_hd\",\"dir\":true,\"nodes\":["
		"{\"key\":\"/_hd/k\",\"value\":\"v\",\"modifiedIndex\":5,\"createdIndex\":5}],"
		"\"modifiedIndex\":5,\"createdIndex\":5}}\n");
	/* A directory whose only child is hidden lists no "nodes" at all. */
	KVT_OK(s, KV_PUT("/only/_x", "1"));
	KVT_GET(s, "/only", true, false,
		"{\"action\":\"get\",\"node\":{\"key\":\"/only\",\"dir\":true,\"modifiedIndex\":6,"
		"\"createdIndex\":6}}\n");
	keel_kv_store_free(s);
}

static void paths_are_cleaned_like_go_path_clean(void **state)
{
	struct keel_kv_store *s = kvt_store();
	KVT_CHECK(s,
		  "{\"action\":\"set\",\"node\":{\"key\":\"/a/b/c\",\"value\":\"v\","
		  "\"modifiedIndex\":1,\"createdIndex\":1}}\n",
		  KV_PUT("a/./b//c/", "v"));
	KVT_GET(s, "/a/x/../b/./c", false, false,
		"{\"action\":\"get\",\"node\":{\"key\":\"/a/b/c\",\"value\":\"v\","
		"\"modifiedIndex\":1,\"createdIndex\":1}}\n");
	/* ".." never climbs above the root. */
	KVT_CHECK(s,
		  "{\"action\":\"set\",\"node\":{\"key\":\"/z\",\"value\":\"1\","
		  "\"modifiedIndex\":2,\"createdIndex\":2}}\n",
		  KV_PUT("/../../z", "1"));
	KVT_CHECK(s,
		  "{\"action\":\"set\",\"node\":{\"key\":\"/...\",\"value\":\"2\","
		  "\"modifiedIndex\":3,\"createdIndex\":3}}\n",
		  KV_PUT("/.../", "2"));
	KVT_CHECK(s,
		  "{\"action\":\"set\",\"node\":{\"key\":\"/.x/..y\",\"value\":\"3\","
		  "\"modifiedIndex\":4,\"createdIndex\":4}}\n",
		  KV_PUT(".x/..y", "3"));
	KVT_GET(s, "", false, true,
		"{\"action\":\"get\",\"node\":{\"key\":\"/\",\"dir\":true,\"nodes\":["
		"{\"key\":\"/...\",\"value\":\"2\",\"modifiedIndex\":3,\"createdIndex\":3},"
		"{\"key\":\"/.x\",\"dir\":true,\"modifiedIndex\":4,\"createdIndex\":4},"
		"{\"key\":\"/a\",\"dir\":true,\"modifiedIndex\":1,\"createdIndex\":1},"
		"{\"key\":\"/z\",\"value\":\"1\",\"modifiedIndex\":2,\"createdIndex\":2}]}}\n");
	keel_kv_store_free(s);
}

static void values_and_keys_may_hold_any_bytes(void **state)
{
	struct keel_kv_store *s = kvt_store();
	struct keel_kv_req r = {.method = KEEL_KV_PUT, .path = "/n\0ul", .path_len = 5,
				.value = "a\0b", .value_len = 3, .prev_exist = -1, .time = T0};
	struct keel_kv_event *ev;
	struct keel_kv_error e = {0};
	assert_int_equal(keel_kv_store_apply(s, &r, &ev, &e), 0);
	struct keel_buf b = KEEL_BUF_INIT;
	assert_int_equal(keel_kv_event_json(ev, 0, &b), 0);
	assert_string_equal(b.data, "{\"action\":\"set\",\"node\":{\"key\":\"/n\\u0000ul\","
				    "\"value\":\"a\\u0000b\",\"modifiedIndex\":1,"
				    "\"createdIndex\":1}}\n");
	keel_kv_event_unref(ev);
	keel_buf_free(&b);
	assert_int_equal(keel_kv_store_get(s, "/n\0ul", 5, false, false, T0, &ev, &e), 0);
	assert_int_equal(ev->node.value_len, 3);
	assert_memory_equal(ev->node.value, "a\0b", 3);
	keel_kv_event_unref(ev);
	keel_kv_store_free(s);
}

static void ttl_is_rounded_up_to_whole_seconds(void **state)
{
	struct keel_kv_store *s = kvt_store();
	keel_kv_store_set_index(s, 4);
	KVT_CHECK(s,
		  "{\"action\":\"set\",\"node\":{\"key\":\"/foo\",\"value\":\"bar\","
		  "\"expiration\":\"2024-01-02T03:04:10.123456789Z\",\"ttl\":5,"
		  "\"modifiedIndex\":5,\"createdIndex\":5}}\n",
		  KV_PUT("/foo", "bar"), .has_ttl = true, .ttl = 5);
	const char *head = "{\"action\":\"get\",\"node\":{\"key\":\"/foo\",\"value\":\"bar\","
			   "\"expiration\":\"2024-01-02T03:04:10.123456789Z\",";
	const char *tail = "\"modifiedIndex\":5,\"createdIndex\":5}}\n";
	static const struct {
		int64_t at;
		const char *ttl;
	} cases[] = {
		{0, "\"ttl\":5,"},
		{1, "\"ttl\":5,"},                 /* 4.999999999 s left: ceiling */
		{SEC + SEC / 2, "\"ttl\":4,"},     /* 3.5 s */
		{2 * SEC, "\"ttl\":3,"},           /* exactly 3 s */
		{5 * SEC - 1, "\"ttl\":1,"},
		{5 * SEC, ""},                     /* 0: omitted */
		{5 * SEC + SEC / 2, ""},           /* -0.5 s truncates to 0 */
		{6 * SEC + SEC / 2, "\"ttl\":-1,"}, /* expired, not yet removed */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char want[512];
		snprintf(want, sizeof(want), "%s%s%s", head, cases[i].ttl, tail);
		char *got = kvt_get(s, "/foo", false, false, T0 + cases[i].at);
		if (strcmp(got, want) != 0)
			fail_msg("at +%lld ns: got %s want %s", (long long)cases[i].at, got, want);
		free(got);
	}
	keel_kv_store_free(s);
}

static void update_without_ttl_makes_a_key_permanent(void **state)
{
	struct keel_kv_store *s = kvt_store();
	keel_kv_store_set_index(s, 4);
	KVT_OK(s, KV_PUT("/foo", "bar"), .has_ttl = true, .ttl = 5);
	KVT_CHECK(s,
		  "{\"action\":\"update\",\"node\":{\"key\":\"/foo\",\"value\":\"bar\","
		  "\"modifiedIndex\":6,\"createdIndex\":5},\"prevNode\":{\"key\":\"/foo\","
		  "\"value\":\"bar\",\"expiration\":\"2024-01-02T03:04:10.123456789Z\",\"ttl\":3,"
		  "\"modifiedIndex\":5,\"createdIndex\":5}}\n",
		  KV_PUTX("/foo", "bar", 1), .time = T0 + 2 * SEC);
	assert_false(keel_kv_store_has_ttl_keys(s));
	KVT_OK(s, .method = KEEL_KV_SYNC, .time = T0 + 100 * SEC);
	KVT_GET(s, "/foo", false, false,
		"{\"action\":\"get\",\"node\":{\"key\":\"/foo\",\"value\":\"bar\","
		"\"modifiedIndex\":6,\"createdIndex\":5}}\n");
	kvt_check_store(s);
	keel_kv_store_free(s);
}

static void expiry_removes_due_nodes_in_order_with_expire_events(void **state)
{
	struct keel_kv_store *s = kvt_store();
	KVT_OK(s, KV_PUT("/a/x", "1"), .has_ttl = true, .ttl = 1);
	KVT_OK(s, KV_PUT("/a/y", "2"), .has_ttl = true, .ttl = 3);
	KVT_OK(s, KV_PUT("/b", "v"), .has_ttl = true, .ttl = 2);
	KVT_OK(s, KV_PUT("/d", ""), .dir = true, .has_ttl = true, .ttl = 2);
	KVT_OK(s, KV_PUT("/d/k", "v"));
	assert_int_equal(keel_kv_store_next_expiration(s), T0 + SEC);
	KVT_CHECK(s, "(none)", .method = KEEL_KV_SYNC, .time = T0 + SEC / 2);
	assert_int_equal(keel_kv_store_index(s), 5);
	KVT_CHECK(s, "(none)", .method = KEEL_KV_SYNC, .time = T0 + 2 * SEC);
	assert_int_equal(keel_kv_store_index(s), 8);
	assert_int_equal(keel_kv_store_stats(s)->expire_count, 3);
	HISTORY(s, "/a/x", 6,
		"{\"action\":\"expire\",\"node\":{\"key\":\"/a/x\",\"modifiedIndex\":6,"
		"\"createdIndex\":1},\"prevNode\":{\"key\":\"/a/x\",\"value\":\"1\","
		"\"expiration\":\"2024-01-02T03:04:06.123456789Z\",\"ttl\":-1,\"modifiedIndex\":1,"
		"\"createdIndex\":1}}\n");
	HISTORY(s, "/b", 7,
		"{\"action\":\"expire\",\"node\":{\"key\":\"/b\",\"modifiedIndex\":7,"
		"\"createdIndex\":3},\"prevNode\":{\"key\":\"/b\",\"value\":\"v\","
		"\"expiration\":\"2024-01-02T03:04:07.123456789Z\",\"modifiedIndex\":3,"
		"\"createdIndex\":3}}\n");
	HISTORY(s, "/d/k", 8,
		"{\"action\":\"expire\",\"node\":{\"key\":\"/d\",\"dir\":true,\"modifiedIndex\":8,"
		"\"createdIndex\":4},\"prevNode\":{\"key\":\"/d\",\"dir\":true,"
		"\"expiration\":\"2024-01-02T03:04:07.123456789Z\",\"modifiedIndex\":4,"
		"\"createdIndex\":4}}\n");
	KVT_GET(s, "/d/k", false, false,
		"{\"errorCode\":100,\"message\":\"Key not found\",\"cause\":\"/d\",\"index\":8}\n");
	KVT_GET(s, "/a", true, false,
		"{\"action\":\"get\",\"node\":{\"key\":\"/a\",\"dir\":true,\"nodes\":["
		"{\"key\":\"/a/y\",\"value\":\"2\",\"expiration\":\"2024-01-02T03:04:08.123456789Z\","
		"\"ttl\":3,\"modifiedIndex\":2,\"createdIndex\":2}],\"modifiedIndex\":1,"
		"\"createdIndex\":1}}\n");
	KVT_OK(s, .method = KEEL_KV_SYNC, .time = T0 + 3 * SEC);
	assert_false(keel_kv_store_has_ttl_keys(s));
	assert_int_equal(keel_kv_store_next_expiration(s), 0);
	kvt_check_store(s);
	keel_kv_store_free(s);
}

static void an_expiring_directory_takes_its_tied_child_in_one_event(void **state)
{
	struct keel_kv_store *s = kvt_store();
	/* /t and /t/k share createdIndex 1; give both the same expiration. */
	KVT_OK(s, KV_PUT("/t/k", "v"), .has_ttl = true, .ttl = 2);
	KVT_OK(s, KV_PUTX("/t", "", 1), .dir = true, .has_ttl = true, .ttl = 2);
	/* And a child that expires before its directory gets its own event first. */
	KVT_OK(s, KV_PUT("/u/early", "v"), .has_ttl = true, .ttl = 1);
	KVT_OK(s, KV_PUTX("/u", "", 1), .dir = true, .has_ttl = true, .ttl = 1,
	       .time = T0 + SEC / 2);
	KVT_OK(s, .method = KEEL_KV_SYNC, .time = T0 + 5 * SEC);
	assert_int_equal(keel_kv_store_index(s), 7);
	assert_int_equal(keel_kv_store_stats(s)->expire_count, 3);
	HISTORY(s, "/u/early", 5,
		"{\"action\":\"expire\",\"node\":{\"key\":\"/u/early\",\"modifiedIndex\":5,"
		"\"createdIndex\":3},\"prevNode\":{\"key\":\"/u/early\",\"value\":\"v\","
		"\"expiration\":\"2024-01-02T03:04:06.123456789Z\",\"ttl\":-4,"
		"\"modifiedIndex\":3,\"createdIndex\":3}}\n");
	HISTORY(s, "/u", 6,
		"{\"action\":\"expire\",\"node\":{\"key\":\"/u\",\"dir\":true,\"modifiedIndex\":6,"
		"\"createdIndex\":3},\"prevNode\":{\"key\":\"/u\",\"dir\":true,"
		"\"expiration\":\"2024-01-02T03:04:06.623456789Z\",\"ttl\":-3,"
		"\"modifiedIndex\":3,\"createdIndex\":3}}\n");
	HISTORY(s, "/t/k", 7,
		"{\"action\":\"expire\",\"node\":{\"key\":\"/t\",\"dir\":true,\"modifiedIndex\":7,"
		"\"createdIndex\":1},\"prevNode\":{\"key\":\"/t\",\"dir\":true,"
		"\"expiration\":\"2024-01-02T03:04:07.123456789Z\",\"ttl\":-3,"
		"\"modifiedIndex\":1,\"createdIndex\":1}}\n");
	assert_int_equal(keel_kv_store_node_count(s), 0);
	kvt_check_store(s);
	keel_kv_store_free(s);
}

static void ttl_zero_expires_at_the_next_sync(void **state)
{
	struct keel_kv_store *s = kvt_store();
	KVT_CHECK(s,
		  "{\"action\":\"set\",\"node\":{\"key\":\"/z\",\"value\":\"v\","
		  "\"expiration\":\"2024-01-02T03:04:05.123456789Z\",\"modifiedIndex\":1,"
		  "\"createdIndex\":1}}\n",
		  KV_PUT("/z", "v"), .has_ttl = true, .ttl = 0);
	KVT_OK(s, .method = KEEL_KV_SYNC, .time = T0);
	assert_int_equal(keel_kv_store_index(s), 2);
	assert_int_equal(keel_kv_store_node_count(s), 0);
	/* Expirations before 2000 mean "permanent" to Create and Set (etcd's minExpireTime). */
	KVT_CHECK(s,
		  "{\"action\":\"set\",\"node\":{\"key\":\"/old\",\"value\":\"v\","
		  "\"modifiedIndex\":3,\"createdIndex\":3}}\n",
		  KV_PUT("/old", "v"), .has_ttl = true, .ttl = 5, .time = 100 * SEC);
	assert_false(keel_kv_store_has_ttl_keys(s));
	keel_kv_store_free(s);
}

static void refresh_resets_the_ttl_and_keeps_the_value(void **state)
{
	struct keel_kv_store *s = kvt_store();
	keel_kv_store_set_index(s, 4);
	KVT_OK(s, KV_PUT("/foo", "bar"), .has_ttl = true, .ttl = 5);
	KVT_CHECK(s,
		  "{\"action\":\"update\",\"node\":{\"key\":\"/foo\",\"value\":\"bar\","
		  "\"expiration\":\"2024-01-02T03:04:12.123456789Z\",\"ttl\":5,"
		  "\"modifiedIndex\":6,\"createdIndex\":5},\"prevNode\":{\"key\":\"/foo\","
		  "\"value\":\"bar\",\"expiration\":\"2024-01-02T03:04:10.123456789Z\",\"ttl\":3,"
		  "\"modifiedIndex\":5,\"createdIndex\":5}}\n",
		  KV_PUTX("/foo", "", 1), .refresh = true, .has_ttl = true, .ttl = 5,
		  .time = T0 + 2 * SEC);
	/* Without prevExist a refresh goes through Set: a new node, same value. */
	KVT_CHECK(s,
		  "{\"action\":\"set\",\"node\":{\"key\":\"/foo\",\"value\":\"bar\","
		  "\"expiration\":\"2024-01-02T03:04:13.123456789Z\",\"ttl\":5,"
		  "\"modifiedIndex\":7,\"createdIndex\":7},\"prevNode\":{\"key\":\"/foo\","
		  "\"value\":\"bar\",\"expiration\":\"2024-01-02T03:04:12.123456789Z\",\"ttl\":4,"
		  "\"modifiedIndex\":6,\"createdIndex\":5}}\n",
		  KV_PUT("/foo", ""), .refresh = true, .has_ttl = true, .ttl = 5,
		  .time = T0 + 3 * SEC);
	/* And with a condition through CompareAndSwap. */
	KVT_CHECK(s,
		  "{\"action\":\"compareAndSwap\",\"node\":{\"key\":\"/foo\",\"value\":\"bar\","
		  "\"expiration\":\"2024-01-02T03:04:14.123456789Z\",\"ttl\":5,"
		  "\"modifiedIndex\":8,\"createdIndex\":7},\"prevNode\":{\"key\":\"/foo\","
		  "\"value\":\"bar\",\"expiration\":\"2024-01-02T03:04:13.123456789Z\",\"ttl\":4,"
		  "\"modifiedIndex\":7,\"createdIndex\":7}}\n",
		  KV_PUT("/foo", ""), KV_PREV("bar"), .refresh = true, .has_ttl = true, .ttl = 5,
		  .time = T0 + 4 * SEC);
	KVT_CHECK(s,
		  "{\"errorCode\":100,\"message\":\"Key not found\",\"cause\":\"/nope\",\"index\":8}\n",
		  KV_PUT("/nope", ""), .refresh = true, .has_ttl = true, .ttl = 5);
	KVT_CHECK(s,
		  "{\"errorCode\":100,\"message\":\"Key not found\",\"cause\":\"/nope\",\"index\":8}\n",
		  KV_PUTX("/nope", "", 1), .refresh = true, .has_ttl = true, .ttl = 5);
	/* The refresh kept the key alive past its first expiration. */
	KVT_OK(s, .method = KEEL_KV_SYNC, .time = T0 + 8 * SEC);
	assert_int_equal(keel_kv_store_node_count(s), 1);
	kvt_check_store(s);
	keel_kv_store_free(s);
}

static void quorum_get_goes_through_apply(void **state)
{
	struct keel_kv_store *s = kvt_store();
	KVT_OK(s, KV_PUT("/k", "v"), .has_ttl = true, .ttl = 10);
	KVT_CHECK(s,
		  "{\"action\":\"get\",\"node\":{\"key\":\"/k\",\"value\":\"v\","
		  "\"expiration\":\"2024-01-02T03:04:15.123456789Z\",\"ttl\":7,"
		  "\"modifiedIndex\":1,\"createdIndex\":1}}\n",
		  KV_QGET("/k"), .time = T0 + 3 * SEC);
	KVT_CHECK(s,
		  "{\"errorCode\":100,\"message\":\"Key not found\",\"cause\":\"/x\",\"index\":1}\n",
		  KV_QGET("/x"));
	assert_int_equal(keel_kv_store_stats(s)->gets_success, 1);
	assert_int_equal(keel_kv_store_stats(s)->gets_fail, 1);
	keel_kv_store_free(s);
}

static void counters_follow_etcd_including_its_quirks(void **state)
{
	struct keel_kv_store *s = kvt_store();
	free(kvt_get(s, "/x", false, false, T0));          /* getsFail */
	KVT_OK(s, KV_PUT("/f", "v"));                      /* setsSuccess */
	free(kvt_apply(s, (struct keel_kv_req){KV_PUT("/", "v")}));        /* setsFail */
	free(kvt_apply(s, (struct keel_kv_req){KV_PUTX("/f/x", "v", 0)})); /* createFail+setsFail */
	free(kvt_apply(s, (struct keel_kv_req){KV_PUTX("/", "v", 1)}));    /* 107: updateSuccess */
	KVT_OK(s, KV_PUT("/d", ""), .dir = true);          /* setsSuccess */
	free(kvt_apply(s, (struct keel_kv_req){KV_PUTX("/d", "v", 1)}));   /* 102: updateSuccess */
	free(kvt_apply(s, (struct keel_kv_req){KV_PUTX("/g", "v", 1)}));   /* updateFail */
	free(kvt_apply(s, (struct keel_kv_req){KV_PUT("/", "v"), KV_PREV("a")})); /* casSuccess */
	free(kvt_apply(s, (struct keel_kv_req){KV_PUT("/f", "v"), KV_PREV("a")})); /* casFail */
	free(kvt_apply(s, (struct keel_kv_req){KV_DEL("/")}));             /* 107: deleteSuccess */
	free(kvt_apply(s, (struct keel_kv_req){KV_DEL("/g")}));            /* deleteFail */
	free(kvt_apply(s, (struct keel_kv_req){KV_DEL("/d"), KV_PREV("a")})); /* 102: cadSuccess */
	free(kvt_apply(s, (struct keel_kv_req){KV_DEL("/f"), KV_PREV("a")})); /* 101: cadSuccess */
	free(kvt_apply(s, (struct keel_kv_req){KV_DEL("/g"), KV_PREV("a")})); /* 100: cadFail */
	KVT_OK(s, KV_PUTX("/c", "v", 0));                 /* createSuccess */
	KVT_OK(s, KV_PUT("/t", "v"), .has_ttl = true, .ttl = 1);
	KVT_OK(s, .method = KEEL_KV_SYNC, .time = T0 + 2 * SEC); /* expireCount */
	struct keel_buf b = KEEL_BUF_INIT;
	assert_int_equal(keel_kv_store_stats_json(s, &b), 0);
	assert_string_equal(b.data,
			    "{\"getsSuccess\":0,\"getsFail\":1,\"setsSuccess\":3,\"setsFail\":2,"
			    "\"deleteSuccess\":1,\"deleteFail\":1,\"updateSuccess\":2,"
			    "\"updateFail\":1,\"createSuccess\":1,\"createFail\":1,"
			    "\"compareAndSwapSuccess\":1,\"compareAndSwapFail\":1,"
			    "\"compareAndDeleteSuccess\":2,\"compareAndDeleteFail\":1,"
			    "\"expireCount\":1,\"watchers\":0}");
	keel_buf_free(&b);
	keel_kv_store_free(s);
}

static void apply_rejects_bad_requests(void **state)
{
	struct keel_kv_store *s = kvt_store();
	struct keel_kv_event *ev;
	struct keel_kv_error e = {0};
	struct keel_kv_req r = {KV_PUT("/k", "v"), .time = T0};
	r.method = 99;
	assert_int_equal(keel_kv_store_apply(s, &r, &ev, &e), -EINVAL);
	r.method = KEEL_KV_PUT;
	r.prev_exist = 2;
	assert_int_equal(keel_kv_store_apply(s, &r, &ev, &e), -EINVAL);
	r.prev_exist = -1;
	r.path = NULL;
	assert_int_equal(keel_kv_store_apply(s, &r, &ev, &e), -EINVAL);
	assert_int_equal(keel_kv_store_apply(s, NULL, &ev, &e), -EINVAL);
	assert_int_equal(keel_kv_store_index(s), 0);
	keel_kv_store_free(s);
}

/* ---- allocation failures ------------------------------------------------------------------ */

/* Everything a store holds, as bytes: its snapshot. */
static char *state_of(struct keel_kv_store *s, size_t *len)
{
	struct keel_buf b = KEEL_BUF_INIT;
	assert_int_equal(keel_kv_store_save(s, kvt_save_to_buf, &b, NULL), 0);
	return keel_buf_steal(&b, len);
}

static int sweep_fired;

static void sweep_cb(struct keel_kv_watcher *w, struct keel_kv_event *ev)
{
	sweep_fired++;
}

static struct keel_kv_store *sweep_fixture(struct keel_kv_watcher *w)
{
	struct keel_kv_store *s = kvt_store();
	KVT_OK(s, KV_PUT("/a/b/c", "1"));
	KVT_OK(s, KV_PUT("/a/b/d", "2"), .has_ttl = true, .ttl = 5);
	KVT_OK(s, KV_PUT("/a/e", "3"));
	KVT_OK(s, KV_PUT("/dir", ""), .dir = true, .has_ttl = true, .ttl = 3);
	KVT_OK(s, KV_PUT("/dir/x", "4"), .has_ttl = true, .ttl = 1);
	KVT_OK(s, KV_PUT("/k", "value"));
	for (int i = 0; i < 20; i++)
		KVT_OK(s, KV_POST("/q", "job"));
	struct keel_kv_event *ev = NULL;
	struct keel_kv_error e = {0};
	assert_int_equal(keel_kv_store_watch(s, w, "/", 1, true, false, 0, sweep_cb, &ev, &e), 0);
	return s;
}

static void failed_applies_change_nothing(void **state)
{
	struct keel_kv_req ops[] = {
		{KV_PUT("/new/deep/path/key", "v"), .has_ttl = true, .ttl = 9},
		{KV_PUT("/k", "replacement value")},
		{KV_PUTX("/k", "a longer updated value", 1), .has_ttl = true, .ttl = 4},
		{KV_PUTX("/dir", "", 1), .dir = true},
		{KV_PUT("/k", "x"), KV_PREV("value")},
		{KV_PUTX("/n/m", "v", 0)},
		{KV_POST("/q", "more")},
		{KV_DEL("/a"), .recursive = true},
		{KV_DEL("/k"), KV_PREV("value")},
		{.method = KEEL_KV_SYNC, .time = T0 + 4 * SEC},
		{.method = KEEL_KV_SYNC, .time = T0 + 6 * SEC},
		{KV_QGET("/"), .recursive = true, .sorted = true},
		{KV_PUT("/k", ""), .refresh = true, .has_ttl = true, .ttl = 7},
	};
	for (size_t op = 0; op < sizeof(ops) / sizeof(ops[0]); op++) {
		struct keel_kv_watcher w = {0};
		struct keel_kv_store *s = sweep_fixture(&w);
		/* What a run without faults produces. */
		struct keel_kv_watcher rw = {0};
		struct keel_kv_store *ref = sweep_fixture(&rw);
		char *want = kvt_apply(ref, ops[op]);
		size_t want_len, before_len;
		char *want_state = state_of(ref, &want_len);
		bool done = false;
		for (unsigned skip = 0; !done; skip++) {
			char *before = state_of(s, &before_len);
			struct keel_kv_event *ev = NULL;
			struct keel_kv_error e = {0};
			struct keel_kv_req r = ops[op];
			if (!r.time)
				r.time = kvt_now;
			sweep_fired = 0;
			keel_fault_arm(KEEL_FAULT_ALLOC, skip, 1, ENOMEM);
			int rc = keel_kv_store_apply(s, &r, &ev, &e);
			keel_fault_reset();
			kvt_check_store(s);
			if (rc == -ENOMEM) {
				size_t after_len;
				char *after = state_of(s, &after_len);
				assert_int_equal(after_len, before_len);
				assert_memory_equal(after, before, before_len);
				assert_int_equal(sweep_fired, 0);
				assert_true(keel_kv_watcher_active(&w));
				free(after);
			} else {
				struct keel_buf b = KEEL_BUF_INIT;
				if (rc == 0 && ev)
					assert_int_equal(keel_kv_event_json(ev, 0, &b), 0);
				else if (rc == 0)
					assert_int_equal(keel_buf_puts(&b, "(none)"), 0);
				else
					assert_int_equal(keel_kv_error_json(&e, &b), 0);
				assert_string_equal(b.data, want);
				keel_buf_free(&b);
				size_t got_len;
				char *got = state_of(s, &got_len);
				assert_int_equal(got_len, want_len);
				assert_memory_equal(got, want_state, want_len);
				free(got);
				/* Every operation allocates: the sweep did inject failures. */
				assert_true(skip > 0);
				done = true;
			}
			keel_kv_event_unref(ev);
			keel_kv_error_clear(&e);
			free(before);
			assert_true(skip < 1000);
		}
		free(want);
		free(want_state);
		keel_kv_store_free(s);
		keel_kv_store_free(ref);
	}
}

static int teardown_faults(void **state)
{
	keel_fault_reset();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(set_get_delete_match_the_etcd_api_examples),
		cmocka_unit_test(set_reports_created_only_without_prev_node),
		cmocka_unit_test(missing_keys_name_the_first_missing_element),
		cmocka_unit_test(a_key_in_the_middle_of_a_path_is_not_a_directory),
		cmocka_unit_test(root_is_read_only),
		cmocka_unit_test(namespaces_are_read_only_too),
		cmocka_unit_test(directories_list_their_children),
		cmocka_unit_test(delete_needs_dir_and_recursive_for_directories),
		cmocka_unit_test(create_refuses_an_existing_key),
		cmocka_unit_test(update_keeps_created_index_and_directories_keep_modified),
		cmocka_unit_test(compare_and_swap_checks_value_and_index),
		cmocka_unit_test(compare_and_delete_checks_value_and_index),
		cmocka_unit_test(post_creates_in_order_keys),
		cmocka_unit_test(hidden_nodes_are_left_out_of_listings),
		cmocka_unit_test(paths_are_cleaned_like_go_path_clean),
		cmocka_unit_test(values_and_keys_may_hold_any_bytes),
		cmocka_unit_test(ttl_is_rounded_up_to_whole_seconds),
		cmocka_unit_test(update_without_ttl_makes_a_key_permanent),
		cmocka_unit_test(expiry_removes_due_nodes_in_order_with_expire_events),
		cmocka_unit_test(an_expiring_directory_takes_its_tied_child_in_one_event),
		cmocka_unit_test(ttl_zero_expires_at_the_next_sync),
		cmocka_unit_test(refresh_resets_the_ttl_and_keeps_the_value),
		cmocka_unit_test(quorum_get_goes_through_apply),
		cmocka_unit_test(counters_follow_etcd_including_its_quirks),
		cmocka_unit_test(apply_rejects_bad_requests),
		cmocka_unit_test_teardown(failed_applies_change_nothing, teardown_faults),
	};
	return cmocka_run_group_tests_name("kv/store", tests, NULL, NULL);
}
