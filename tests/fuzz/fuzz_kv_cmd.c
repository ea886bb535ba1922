/* Fuzz the kv command decoder and, through it, the whole store: commands come from the Raft log
 * and from peers. Input: a sequence of frames, each a 16-bit little-endian length and that many
 * bytes of one encoded command.
 *
 * Properties: the decoder never crashes or reads out of bounds; whatever it accepts encodes back
 * to exactly the same bytes (one encoding per request); applying accepted commands, with
 * watchers of every kind registered, keeps every invariant keel_kv_store_check() knows and
 * renders valid output; the final state survives a snapshot round trip byte for byte. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "kv/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_COMMANDS 256

static void watch_cb(struct keel_kv_watcher *w, struct keel_kv_event *ev)
{
	struct keel_buf b = KEEL_BUF_INIT;
	if (keel_kv_event_json(ev, 0, &b) != 0)
		abort();
	keel_buf_free(&b);
}

static int save_to_buf(void *ud, const void *p, size_t n)
{
	return keel_buf_append(ud, p, n);
}

struct src {
	const char *p;
	size_t left;
};

static ssize_t read_from(void *ud, void *buf, size_t len)
{
	struct src *s = ud;
	size_t n = len < s->left ? len : s->left;
	memcpy(buf, s->p, n);
	s->p += n;
	s->left -= n;
	return (ssize_t)n;
}

static void check(const struct keel_kv_store *s)
{
	struct keel_err err;
	if (keel_kv_store_check(s, &err) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const ns[] = {"/0", "/1", NULL};
	struct keel_kv_store_opts o = {.namespaces = ns, .key_prefix = "/1", .hash_seed = 7};
	struct keel_kv_store *s;
	if (keel_kv_store_new(&o, &s) < 0)
		abort();
	/* One of each kind: key and prefix, one-shot and stream, hidden, namespaced. */
	static const struct {
		const char *key;
		bool recursive, stream;
	} ws[] = {
		{"/", true, true}, {"/1", true, false}, {"/1/a", false, true},
		{"/1/_h", true, true}, {"/a", false, false}, {"/1/a/b", true, true},
	};
	struct keel_kv_watcher w[sizeof(ws) / sizeof(ws[0])];
	memset(w, 0, sizeof(w));
	for (size_t i = 0; i < sizeof(ws) / sizeof(ws[0]); i++) {
		struct keel_kv_event *ev = NULL;
		struct keel_kv_error e = {0};
		if (keel_kv_store_watch(s, &w[i], ws[i].key, strlen(ws[i].key), ws[i].recursive,
					ws[i].stream, 0, watch_cb, &ev, &e) != 0)
			abort();
	}

	size_t off = 0;
	for (int n = 0; n < MAX_COMMANDS && size - off >= 2; n++) {
		size_t len = (size_t)data[off] | (size_t)data[off + 1] << 8;
		off += 2;
		if (len > size - off)
			len = size - off;
		const uint8_t *cmd = data + off;
		off += len;

		/* A private copy, so reads past the command are caught. */
		uint8_t *copy = malloc(len ? len : 1);
		if (!copy)
			abort();
		memcpy(copy, cmd, len);
		struct keel_kv_req req;
		if (keel_kv_cmd_decode(copy, len, &req) != 0) {
			free(copy);
			continue;
		}
		struct keel_buf again = KEEL_BUF_INIT;
		if (keel_kv_cmd_encode(&req, &again) != 0 || again.len != len ||
		    memcmp(again.data, cmd, len) != 0)
			abort();
		keel_buf_free(&again);

		struct keel_kv_event *ev = NULL;
		struct keel_kv_error e = {0};
		struct keel_buf out = KEEL_BUF_INIT;
		uint64_t before = keel_kv_store_index(s);
		int r = keel_kv_store_apply(s, &req, &ev, &e);
		if (r == 0 && ev) {
			if (keel_kv_event_json(ev, 0, &out) != 0)
				abort();
			if (ev->etcd_index != keel_kv_store_index(s) &&
			    ev->action != KEEL_KV_ACTION_GET)
				abort();
		} else if (r == KEEL_KV_FAILED) {
			if (keel_kv_error_json(&e, &out) < 0 || keel_kv_store_index(s) != before)
				abort();
		} else if (r != 0) {
			abort(); /* no allocation failures are injected here */
		}
		keel_kv_event_unref(ev);
		keel_kv_error_clear(&e);
		keel_buf_free(&out);
		if (keel_kv_store_index(s) < before)
			abort();
		check(s);

		/* Read back where it wrote. */
		if (req.method != KEEL_KV_SYNC) {
			if (keel_kv_store_get(s, req.path, req.path_len, true, true, req.time, &ev,
					      &e) == 0)
				keel_kv_event_unref(ev);
			keel_kv_error_clear(&e);
		}
		free(copy);
	}

	struct keel_buf snap = KEEL_BUF_INIT, again = KEEL_BUF_INIT;
	if (keel_kv_store_save(s, save_to_buf, &snap, NULL) != 0)
		abort();
	struct keel_kv_store *t;
	if (keel_kv_store_new(&o, &t) < 0)
		abort();
	struct src in = {snap.data, snap.len};
	if (keel_kv_store_load(t, read_from, &in, NULL) != 0)
		abort();
	check(t);
	if (keel_kv_store_save(t, save_to_buf, &again, NULL) != 0 || again.len != snap.len ||
	    memcmp(again.data, snap.data, snap.len) != 0)
		abort();
	keel_buf_free(&snap);
	keel_buf_free(&again);
	keel_kv_store_free(t);
	keel_kv_store_free(s);
	return 0;
}
