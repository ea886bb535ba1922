/* The watch hub and the event history against etcd's watcher_hub.go and event_history.go:
 * waitIndex, cleared history, recursive and hidden rules, stream and one-shot watchers,
 * deletions and expiry reaching watchers below, refresh staying silent, cancellation. */
#include "test_kv_util.h"

#include <errno.h>

#include "base/macro.h"

/* A watcher that records what it is told. */
struct rec {
	struct keel_kv_watcher w;
	struct keel_kv_store *s;
	int calls;
	char *json[8];
	uint64_t index[8];
	bool cancel_self;          /* cancel from inside the callback */
	struct rec *cancel_other;  /* cancel another watcher from inside the callback */
	int busy;                  /* what store calls returned from inside the callback */
};

static void rec_cb(struct keel_kv_watcher *w, struct keel_kv_event *ev)
{
	struct rec *r = keel_container_of(w, struct rec, w);
	struct keel_buf b = KEEL_BUF_INIT;
	assert_int_equal(keel_kv_event_json(ev, 0, &b), 0);
	if (r->calls < 8) {
		r->json[r->calls] = keel_buf_steal(&b, NULL);
		r->index[r->calls] = keel_kv_event_index(ev);
	}
	keel_buf_free(&b);
	r->calls++;
	if (r->cancel_self)
		keel_kv_watch_cancel(r->s, w);
	if (r->cancel_other)
		keel_kv_watch_cancel(r->s, &r->cancel_other->w);
	if (r->s) {
		struct keel_kv_req q = {KV_PUT("/x", "y"), .time = T0};
		struct keel_kv_event *e2 = NULL;
		struct keel_kv_error er = {0};
		struct keel_kv_watcher other = {0};
		r->busy = keel_kv_store_apply(r->s, &q, &e2, &er);
		assert_int_equal(keel_kv_store_get(r->s, "/", 1, false, false, T0, &e2, &er),
				 -EBUSY);
		assert_int_equal(keel_kv_store_watch(r->s, &other, "/", 1, false, false, 0, rec_cb,
						     &e2, &er),
				 -EBUSY);
	}
}

static void rec_clear(struct rec *r)
{
	for (int i = 0; i < 8; i++) {
		free(r->json[i]);
		r->json[i] = NULL;
	}
	r->calls = 0;
}

/* Register r; expect registration (0), not an event from the history. */
static void watch(struct keel_kv_store *s, struct rec *r, const char *key, bool recursive,
		  bool stream, uint64_t wait_index)
{
	struct keel_kv_event *ev = NULL;
	struct keel_kv_error e = {0};
	int rc = keel_kv_store_watch(s, &r->w, key, strlen(key), recursive, stream, wait_index,
				     rec_cb, &ev, &e);
	if (rc != 0)
		fail_msg("watch %s returned %d", key, rc);
}

/* A watch answered from the history: its JSON. */
static char *watch_found(struct keel_kv_store *s, const char *key, bool recursive,
			 uint64_t wait_index)
{
	struct rec r = {0};
	struct keel_kv_event *ev = NULL;
	struct keel_kv_error e = {0};
	struct keel_buf b = KEEL_BUF_INIT;
	int rc = keel_kv_store_watch(s, &r.w, key, strlen(key), recursive, false, wait_index,
				     rec_cb, &ev, &e);
	if (rc == KEEL_KV_FOUND) {
		assert_false(keel_kv_watcher_active(&r.w));
		assert_int_equal(keel_kv_event_json(ev, 0, &b), 0);
		keel_kv_event_unref(ev);
	} else if (rc == KEEL_KV_FAILED) {
		assert_int_equal(keel_kv_error_json(&e, &b), 0);
		keel_kv_error_clear(&e);
	} else {
		keel_kv_watch_cancel(s, &r.w);
		assert_int_equal(keel_buf_puts(&b, "(waiting)"), 0);
	}
	return keel_buf_steal(&b, NULL);
}

#define FOUND(s, key, recursive, index, want)                                              \
	do {                                                                               \
		char *got_ = watch_found((s), (key), (recursive), (index));                \
		if (strcmp(got_, (want)) != 0)                                             \
			fail_msg("got  %s\nwant %s", got_, (want));                        \
		free(got_);                                                                \
	} while (0)

static void a_key_watch_fires_once_with_the_event(void **state)
{
	struct keel_kv_store *s = kvt_store();
	struct rec r = {0};
	watch(s, &r, "/foo", false, false, 0);
	assert_int_equal(keel_kv_store_watcher_count(s), 1);
	assert_int_equal(keel_kv_watcher_start_index(&r.w), 0);
	KVT_OK(s, KV_PUT("/foo", "bar"));
	assert_int_equal(r.calls, 1);
	assert_string_equal(r.json[0],
			    "{\"action\":\"set\",\"node\":{\"key\":\"/foo\",\"value\":\"bar\","
			    "\"modifiedIndex\":1,\"createdIndex\":1}}\n");
	assert_false(keel_kv_watcher_active(&r.w));
	assert_int_equal(keel_kv_store_watcher_count(s), 0);
	KVT_OK(s, KV_PUT("/foo", "baz"));
	assert_int_equal(r.calls, 1);
	/* Cancelling a watcher that already fired is harmless. */
	keel_kv_watch_cancel(s, &r.w);
	rec_clear(&r);
	kvt_check_store(s);
	keel_kv_store_free(s);
}

static void a_key_watch_ignores_children_and_lookalikes(void **state)
{
	struct keel_kv_store *s = kvt_store();
	struct rec r = {0};
	watch(s, &r, "foo/", false, false, 0); /* cleaned to /foo */
	KVT_OK(s, KV_PUT("/foo/bar", "1"));
	KVT_OK(s, KV_PUT("/foobar", "2"));
	KVT_OK(s, KV_PUT("/fo", "3"));
	assert_int_equal(r.calls, 0);
	KVT_OK(s, KV_PUTX("/foo", "", 1), .dir = true, .has_ttl = true, .ttl = 9);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.index[0], 4);
	rec_clear(&r);
	keel_kv_store_free(s);
}

static void a_recursive_watch_sees_everything_below(void **state)
{
	struct keel_kv_store *s = kvt_store();
	struct rec r = {0}, all = {0};
	watch(s, &r, "/dir", true, true, 0);
	watch(s, &all, "/", true, true, 0);
	KVT_OK(s, KV_PUT("/dir/a/b", "1"));
	KVT_OK(s, KV_PUT("/dirx", "2"));
	KVT_OK(s, KV_PUTX("/dir", "", 1), .dir = true);
	KVT_OK(s, KV_DEL("/dir/a/b"));
	assert_int_equal(r.calls, 3);
	assert_int_equal(r.index[0], 1);
	assert_int_equal(r.index[1], 3);
	assert_int_equal(r.index[2], 4);
	assert_int_equal(all.calls, 4);
	keel_kv_watch_cancel(s, &r.w);
	keel_kv_watch_cancel(s, &all.w);
	assert_int_equal(keel_kv_store_watcher_count(s), 0);
	rec_clear(&r);
	rec_clear(&all);
	kvt_check_store(s);
	keel_kv_store_free(s);
}

static void a_stream_watch_gets_every_event_from_its_index(void **state)
{
	struct keel_kv_store *s = kvt_store();
	struct rec r = {0};
	KVT_OK(s, KV_PUT("/k", "0"));
	/* waitIndex in the future: earlier changes are not for it. */
	watch(s, &r, "/k", false, true, 3);
	assert_int_equal(keel_kv_watcher_start_index(&r.w), 1);
	KVT_OK(s, KV_PUT("/k", "1")); /* 2 */
	KVT_OK(s, KV_PUT("/k", "2")); /* 3 */
	KVT_OK(s, KV_PUT("/k", "3")); /* 4 */
	assert_int_equal(r.calls, 2);
	assert_int_equal(r.index[0], 3);
	assert_int_equal(r.index[1], 4);
	assert_true(keel_kv_watcher_active(&r.w));
	keel_kv_watch_cancel(s, &r.w);
	KVT_OK(s, KV_PUT("/k", "4"));
	assert_int_equal(r.calls, 2);
	rec_clear(&r);
	keel_kv_store_free(s);
}

static void wait_index_in_the_history_answers_at_once(void **state)
{
	struct keel_kv_store *s = kvt_store();
	keel_kv_store_set_index(s, 5);
	KVT_OK(s, KV_PUT("/foo", "bar")); /* 6 */
	KVT_OK(s, KV_PUT("/other", "x")); /* 7 */
	KVT_OK(s, KV_PUT("/foo", "baz")); /* 8 */
	const char *at8 = "{\"action\":\"set\",\"node\":{\"key\":\"/foo\",\"value\":\"baz\","
			  "\"modifiedIndex\":8,\"createdIndex\":8},\"prevNode\":{\"key\":\"/foo\","
			  "\"value\":\"bar\",\"modifiedIndex\":6,\"createdIndex\":6}}\n";
	FOUND(s, "/foo", false, 6,
	      "{\"action\":\"set\",\"node\":{\"key\":\"/foo\",\"value\":\"bar\","
	      "\"modifiedIndex\":6,\"createdIndex\":6}}\n");
	FOUND(s, "/foo", false, 7, at8);
	FOUND(s, "/foo", false, 8, at8);
	FOUND(s, "/foo", false, 9, "(waiting)");
	FOUND(s, "/", true, 7,
	      "{\"action\":\"set\",\"node\":{\"key\":\"/other\",\"value\":\"x\","
	      "\"modifiedIndex\":7,\"createdIndex\":7}}\n");
	FOUND(s, "/fo", true, 6, "(waiting)");
	/* Before the first event kept: etcd's StartIndex is the oldest event's index. */
	FOUND(s, "/foo", false, 5,
	      "{\"errorCode\":401,\"message\":\"The event in requested index is outdated and "
	      "cleared\",\"cause\":\"the requested history has been cleared [6/5]\","
	      "\"index\":8}\n");
	/* A stream watch answered from the history is not registered either (as in etcd). */
	struct rec r = {0};
	struct keel_kv_event *ev = NULL;
	struct keel_kv_error e = {0};
	assert_int_equal(keel_kv_store_watch(s, &r.w, "/foo", 4, false, true, 6, rec_cb, &ev, &e),
			 KEEL_KV_FOUND);
	assert_false(keel_kv_watcher_active(&r.w));
	assert_int_equal(keel_kv_watcher_start_index(&r.w), 8);
	keel_kv_event_unref(ev);
	assert_int_equal(keel_kv_store_watcher_count(s), 0);
	keel_kv_store_free(s);
}

static void the_history_keeps_the_last_thousand_events(void **state)
{
	struct keel_kv_store *s = kvt_store();
	keel_kv_store_set_index(s, 6);
	KVT_OK(s, KV_PUT("/foo", "bar")); /* 7 */
	for (int i = 0; i < 2000; i++)
		KVT_OK(s, KV_PUT("/other", "bar"));
	assert_int_equal(keel_kv_store_index(s), 2007);
	/* etcd's api.md example, byte for byte. */
	FOUND(s, "/foo", false, 8,
	      "{\"errorCode\":401,\"message\":\"The event in requested index is outdated and "
	      "cleared\",\"cause\":\"the requested history has been cleared [1008/8]\","
	      "\"index\":2007}\n");
	FOUND(s, "/other", false, 1008,
	      "{\"action\":\"set\",\"node\":{\"key\":\"/other\",\"value\":\"bar\","
	      "\"modifiedIndex\":1008,\"createdIndex\":1008},\"prevNode\":{\"key\":\"/other\","
	      "\"value\":\"bar\",\"modifiedIndex\":1007,\"createdIndex\":1007}}\n");
	FOUND(s, "/foo", false, 1008, "(waiting)");
	FOUND(s, "/foo", false, 2008, "(waiting)");
	kvt_check_store(s);
	keel_kv_store_free(s);
}

static void recursive_watches_skip_hidden_children(void **state)
{
	struct keel_kv_store *s = kvt_store();
	struct rec root = {0}, dir = {0}, direct = {0}, inside = {0};
	watch(s, &root, "/", true, true, 0);
	watch(s, &dir, "/dir", true, true, 0);
	watch(s, &direct, "/_hidden", false, true, 0);
	watch(s, &inside, "/_hd", true, true, 0);
	KVT_OK(s, KV_PUT("/_hidden", "1"));    /* 1: direct */
	KVT_OK(s, KV_PUT("/dir/_h/x", "2"));   /* 2: nobody */
	KVT_OK(s, KV_PUT("/_hd/k", "3"));      /* 3: inside (below /_hd nothing is hidden) */
	KVT_OK(s, KV_PUT("/dir/visible", "4")); /* 4: root, dir */
	assert_int_equal(root.calls, 1);
	assert_int_equal(root.index[0], 4);
	assert_int_equal(dir.calls, 1);
	assert_int_equal(dir.index[0], 4);
	assert_int_equal(direct.calls, 1);
	assert_int_equal(direct.index[0], 1);
	assert_int_equal(inside.calls, 1);
	assert_int_equal(inside.index[0], 3);
	/* The history has no such rule: a recursive waitIndex finds hidden events (as etcd). */
	FOUND(s, "/", true, 1,
	      "{\"action\":\"set\",\"node\":{\"key\":\"/_hidden\",\"value\":\"1\","
	      "\"modifiedIndex\":1,\"createdIndex\":1}}\n");
	keel_kv_watch_cancel(s, &root.w);
	keel_kv_watch_cancel(s, &dir.w);
	keel_kv_watch_cancel(s, &direct.w);
	keel_kv_watch_cancel(s, &inside.w);
	rec_clear(&root);
	rec_clear(&dir);
	rec_clear(&direct);
	rec_clear(&inside);
	keel_kv_store_free(s);
}

static void deleting_a_directory_reaches_watchers_below_it(void **state)
{
	struct keel_kv_store *s = kvt_store();
	struct rec key = {0}, hidden = {0}, stream = {0};
	KVT_OK(s, KV_PUT("/dir/a", "1"));
	KVT_OK(s, KV_PUT("/dir/_h", "2"));
	watch(s, &key, "/dir/a", false, false, 0);
	watch(s, &hidden, "/dir/_h", false, false, 0);
	/* A stream watcher on the deleted path hears it twice: once from etcd's Remove
	 * callback, once from notify along the key (etcd does the same). */
	watch(s, &stream, "/dir", false, true, 0);
	KVT_OK(s, KV_DEL("/dir"), .recursive = true);
	const char *want = "{\"action\":\"delete\",\"node\":{\"key\":\"/dir\",\"dir\":true,"
			   "\"modifiedIndex\":3,\"createdIndex\":1},\"prevNode\":{\"key\":\"/dir\","
			   "\"dir\":true,\"modifiedIndex\":1,\"createdIndex\":1}}\n";
	assert_int_equal(key.calls, 1);
	assert_string_equal(key.json[0], want);
	assert_int_equal(hidden.calls, 1);
	assert_int_equal(stream.calls, 2);
	assert_string_equal(stream.json[1], want);
	/* From the history: a key below the directory, and (a plain prefix test in etcd) a key
	 * that merely starts with its name. */
	FOUND(s, "/dir/a/deeper", false, 3, want);
	FOUND(s, "/dirx", false, 3, want);
	FOUND(s, "/di", false, 3, "(waiting)");
	keel_kv_watch_cancel(s, &stream.w);
	rec_clear(&key);
	rec_clear(&hidden);
	rec_clear(&stream);
	kvt_check_store(s);
	keel_kv_store_free(s);
}

static void expiry_reaches_watchers_below_the_directory(void **state)
{
	struct keel_kv_store *s = kvt_store();
	struct rec r = {0}, d = {0};
	KVT_OK(s, KV_PUT("/dir", ""), .dir = true, .has_ttl = true, .ttl = 30);
	KVT_OK(s, KV_PUT("/dir/k", "v"));
	watch(s, &r, "/dir/k", false, false, 0);
	watch(s, &d, "/dir", false, false, 0);
	KVT_OK(s, .method = KEEL_KV_SYNC, .time = T0 + 31 * SEC);
	const char *want = "{\"action\":\"expire\",\"node\":{\"key\":\"/dir\",\"dir\":true,"
			   "\"modifiedIndex\":3,\"createdIndex\":1},\"prevNode\":{\"key\":\"/dir\","
			   "\"dir\":true,\"expiration\":\"2024-01-02T03:04:35.123456789Z\","
			   "\"ttl\":-1,\"modifiedIndex\":1,\"createdIndex\":1}}\n";
	assert_int_equal(r.calls, 1);
	assert_string_equal(r.json[0], want);
	assert_int_equal(d.calls, 1);
	assert_string_equal(d.json[0], want);
	rec_clear(&r);
	rec_clear(&d);
	keel_kv_store_free(s);
}

static void refresh_wakes_no_watcher_and_hides_from_the_history(void **state)
{
	struct keel_kv_store *s = kvt_store();
	struct rec r = {0};
	KVT_OK(s, KV_PUT("/k", "v"), .has_ttl = true, .ttl = 5); /* 1 */
	watch(s, &r, "/k", false, false, 0);
	KVT_OK(s, KV_PUTX("/k", "", 1), .refresh = true, .has_ttl = true, .ttl = 5); /* 2 */
	assert_int_equal(r.calls, 0);
	assert_true(keel_kv_watcher_active(&r.w));
	FOUND(s, "/k", false, 2, "(waiting)");
	KVT_OK(s, KV_PUT("/k", "w")); /* 3 */
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.index[0], 3);
	FOUND(s, "/k", false, 2,
	      "{\"action\":\"set\",\"node\":{\"key\":\"/k\",\"value\":\"w\",\"modifiedIndex\":3,"
	      "\"createdIndex\":3},\"prevNode\":{\"key\":\"/k\",\"value\":\"v\","
	      "\"expiration\":\"2024-01-02T03:04:10.123456789Z\",\"ttl\":5,\"modifiedIndex\":2,"
	      "\"createdIndex\":1}}\n");
	rec_clear(&r);
	keel_kv_store_free(s);
}

static void callbacks_may_cancel_watchers_but_not_call_the_store(void **state)
{
	struct keel_kv_store *s = kvt_store();
	struct rec a = {.s = s}, b = {.s = s}, c = {.s = s};
	watch(s, &a, "/k", false, true, 0);
	watch(s, &b, "/k", false, true, 0);
	watch(s, &c, "/k", false, true, 0);
	a.cancel_other = &b; /* the next one in the list being notified */
	c.cancel_self = true;
	KVT_OK(s, KV_PUT("/k", "1"));
	assert_int_equal(a.busy, -EBUSY);
	assert_int_equal(a.calls, 1);
	assert_int_equal(b.calls, 0);
	assert_int_equal(c.calls, 1);
	assert_true(keel_kv_watcher_active(&a.w));
	assert_false(keel_kv_watcher_active(&b.w));
	assert_false(keel_kv_watcher_active(&c.w));
	assert_int_equal(keel_kv_store_watcher_count(s), 1);
	a.cancel_other = NULL;
	a.cancel_self = true;
	KVT_OK(s, KV_PUT("/k", "2"));
	assert_int_equal(a.calls, 2);
	assert_int_equal(keel_kv_store_watcher_count(s), 0);
	kvt_check_store(s);
	rec_clear(&a);
	rec_clear(&b);
	rec_clear(&c);
	keel_kv_store_free(s);
}

/* A one-shot watcher's owner may free it from its callback: it is already detached. */
static int freed;

static void free_cb(struct keel_kv_watcher *w, struct keel_kv_event *ev)
{
	freed++;
	free(w);
}

static void thousands_of_watchers_cost_little_and_fire_once(void **state)
{
	struct keel_kv_store *s = kvt_store();
	enum { N = 20000 };
	struct keel_kv_event *ev = NULL;
	struct keel_kv_error e = {0};
	char key[32];
	size_t before = keel_kv_store_mem_bytes(s);
	for (int i = 0; i < N; i++) {
		struct keel_kv_watcher *w = calloc(1, sizeof(*w));
		/* Half of them share one path, half each have their own. */
		int n = i % 2 ? snprintf(key, sizeof(key), "/shared")
			      : snprintf(key, sizeof(key), "/own/%d", i);
		assert_int_equal(keel_kv_store_watch(s, w, key, (size_t)n, false, false, 0, free_cb,
						     &ev, &e),
				 0);
	}
	assert_int_equal(keel_kv_store_watcher_count(s), N);
	/* Per path, not per watcher: well under 100 bytes each. */
	assert_true(keel_kv_store_mem_bytes(s) - before < (size_t)N * 100);
	kvt_check_store(s);
	freed = 0;
	KVT_OK(s, KV_PUT("/shared", "x"));
	assert_int_equal(freed, N / 2);
	KVT_OK(s, KV_PUT("/own/0", "x"), .dir = false);
	KVT_OK(s, KV_DEL("/own"), .recursive = true);
	assert_int_equal(freed, N / 2 + 1);
	for (int i = 2; i < N; i += 2) {
		int n = snprintf(key, sizeof(key), "/own/%d", i);
		KVT_OK(s, .method = KEEL_KV_PUT, .path = key, .path_len = (size_t)n, .prev_exist = -1);
	}
	assert_int_equal(freed, N);
	assert_int_equal(keel_kv_store_watcher_count(s), 0);
	kvt_check_store(s);
	keel_kv_store_free(s);
}

static void freeing_the_store_detaches_watchers(void **state)
{
	struct keel_kv_store *s = kvt_store();
	struct rec r = {0};
	watch(s, &r, "/k", true, true, 0);
	keel_kv_store_free(s);
	assert_false(keel_kv_watcher_active(&r.w));
	assert_int_equal(r.calls, 0);
}

static void watchers_survive_loading_a_snapshot(void **state)
{
	struct keel_kv_store *a = kvt_store(), *b = kvt_store();
	for (int i = 0; i < 5; i++)
		KVT_OK(a, KV_PUT("/k", "a"));
	struct keel_buf snap = KEEL_BUF_INIT;
	assert_int_equal(keel_kv_store_save(a, kvt_save_to_buf, &snap, NULL), 0);
	struct rec r = {0};
	watch(b, &r, "/k", false, false, 0);
	struct kvt_src in = {(const unsigned char *)snap.data, snap.len, 0, 0};
	assert_int_equal(keel_kv_store_load(b, kvt_read_from, &in, NULL), 0);
	assert_true(keel_kv_watcher_active(&r.w));
	/* The loaded history answers waitIndex. */
	FOUND(b, "/k", false, 5,
	      "{\"action\":\"set\",\"node\":{\"key\":\"/k\",\"value\":\"a\",\"modifiedIndex\":5,"
	      "\"createdIndex\":5},\"prevNode\":{\"key\":\"/k\",\"value\":\"a\","
	      "\"modifiedIndex\":4,\"createdIndex\":4}}\n");
	KVT_OK(b, KV_PUT("/k", "b"));
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.index[0], 6);
	rec_clear(&r);
	keel_buf_free(&snap);
	keel_kv_store_free(a);
	keel_kv_store_free(b);
}

static void watch_rejects_misuse(void **state)
{
	struct keel_kv_store *s = kvt_store();
	struct rec r = {0};
	struct keel_kv_event *ev = NULL;
	struct keel_kv_error e = {0};
	watch(s, &r, "/k", false, false, 0);
	assert_int_equal(keel_kv_store_watch(s, &r.w, "/k", 2, false, false, 0, rec_cb, &ev, &e),
			 -EINVAL);
	assert_int_equal(keel_kv_store_watch(s, &r.w, "/k", 2, false, false, 0, NULL, &ev, &e),
			 -EINVAL);
	keel_kv_watch_cancel(s, &r.w);
	keel_kv_watch_cancel(s, &r.w);
	keel_kv_watch_cancel(s, NULL);
	assert_int_equal(keel_kv_store_watcher_count(s), 0);
	keel_kv_store_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_key_watch_fires_once_with_the_event),
		cmocka_unit_test(a_key_watch_ignores_children_and_lookalikes),
		cmocka_unit_test(a_recursive_watch_sees_everything_below),
		cmocka_unit_test(a_stream_watch_gets_every_event_from_its_index),
		cmocka_unit_test(wait_index_in_the_history_answers_at_once),
		cmocka_unit_test(the_history_keeps_the_last_thousand_events),
		cmocka_unit_test(recursive_watches_skip_hidden_children),
		cmocka_unit_test(deleting_a_directory_reaches_watchers_below_it),
		cmocka_unit_test(expiry_reaches_watchers_below_the_directory),
		cmocka_unit_test(refresh_wakes_no_watcher_and_hides_from_the_history),
		cmocka_unit_test(callbacks_may_cancel_watchers_but_not_call_the_store),
		cmocka_unit_test(thousands_of_watchers_cost_little_and_fire_once),
		cmocka_unit_test(freeing_the_store_detaches_watchers),
		cmocka_unit_test(watchers_survive_loading_a_snapshot),
		cmocka_unit_test(watch_rejects_misuse),
	};
	return cmocka_run_group_tests_name("kv/watch", tests, NULL, NULL);
}
