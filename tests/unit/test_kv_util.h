/* Helpers the lib/kv tests share: request builders and "apply, render, compare" checks. */
#pragma once

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "kv/store.h"

/* 2024-01-02T03:04:05.123456789Z: a time with every fractional digit, so RFC3339Nano shows. */
#define T0 (1704164645LL * 1000000000LL + 123456789LL)
#define SEC 1000000000LL

/* Requests: the time comes from kvt_now when left 0; prevExist is unset unless said. */
#define KV_REQ(m, p) .method = (m), .path = (p), .path_len = strlen(p)
#define KV_VAL(v) .value = (v), .value_len = strlen(v)
#define KV_PREV(v) .prev_value = (v), .prev_value_len = strlen(v)
#define KV_PUT(p, v) KV_REQ(KEEL_KV_PUT, p), KV_VAL(v), .prev_exist = KEEL_KV_PREV_EXIST_UNSET
#define KV_PUTX(p, v, pe) KV_REQ(KEEL_KV_PUT, p), KV_VAL(v), .prev_exist = (pe)
#define KV_DEL(p) KV_REQ(KEEL_KV_DELETE, p), .prev_exist = KEEL_KV_PREV_EXIST_UNSET
#define KV_POST(p, v) KV_REQ(KEEL_KV_POST, p), KV_VAL(v), .prev_exist = KEEL_KV_PREV_EXIST_UNSET
#define KV_QGET(p) KV_REQ(KEEL_KV_QGET, p), .prev_exist = KEEL_KV_PREV_EXIST_UNSET

static int64_t kvt_now = T0;

/* Snapshot plumbing: save into a keel_buf, load from memory (optionally a few bytes per read,
 * or failing with an error instead of data). */
static inline int kvt_save_to_buf(void *ud, const void *data, size_t len)
{
	return keel_buf_append(ud, data, len);
}

struct kvt_src {
	const unsigned char *p;
	size_t left;
	size_t step;   /* at most this many bytes per read (0: all) */
	int fail_with; /* return this instead of data */
};

static inline ssize_t kvt_read_from(void *ud, void *buf, size_t len)
{
	struct kvt_src *s = ud;
	if (s->fail_with)
		return s->fail_with;
	size_t n = len < s->left ? len : s->left;
	if (s->step && n > s->step)
		n = s->step;
	memcpy(buf, s->p, n);
	s->p += n;
	s->left -= n;
	return (ssize_t)n;
}

static inline struct keel_kv_store *kvt_store(void)
{
	struct keel_kv_store *s = NULL;
	assert_int_equal(keel_kv_store_new(NULL, &s), 0);
	return s;
}

/* Apply and return what etcd would write: the event's body or the error's. */
static inline char *kvt_apply_flags(struct keel_kv_store *s, struct keel_kv_req r,
				    unsigned flags)
{
	struct keel_kv_event *ev = NULL;
	struct keel_kv_error e = {0};
	struct keel_buf b = KEEL_BUF_INIT;
	if (!r.time)
		r.time = kvt_now;
	int rc = keel_kv_store_apply(s, &r, &ev, &e);
	if (rc == 0) {
		if (ev)
			assert_int_equal(keel_kv_event_json(ev, flags, &b), 0);
		else
			assert_int_equal(keel_buf_puts(&b, "(none)"), 0);
	} else if (rc == KEEL_KV_FAILED) {
		assert_int_equal(keel_kv_error_json(&e, &b), 0);
	} else {
		fail_msg("apply returned %d", rc);
	}
	keel_kv_event_unref(ev);
	keel_kv_error_clear(&e);
	char *out = keel_buf_steal(&b, NULL);
	assert_non_null(out);
	return out;
}

static inline char *kvt_apply(struct keel_kv_store *s, struct keel_kv_req r)
{
	return kvt_apply_flags(s, r, 0);
}

#define KVT_CHECK_FLAGS(s, flags, want, ...)                                                \
	do {                                                                                \
		char *got_ = kvt_apply_flags((s), (struct keel_kv_req){__VA_ARGS__}, (flags)); \
		if (strcmp(got_, (want)) != 0)                                              \
			fail_msg("got  %s\nwant %s", got_, (want));                         \
		free(got_);                                                                 \
	} while (0)

/* KVT_CHECK(store, expected body, request fields...) */
#define KVT_CHECK(s, want, ...) KVT_CHECK_FLAGS(s, 0, want, __VA_ARGS__)

/* Apply and expect success, ignoring the body. */
#define KVT_OK(s, ...)                                                                       \
	do {                                                                                 \
		struct keel_kv_req r_ = {__VA_ARGS__};                                       \
		struct keel_kv_event *ev_ = NULL;                                            \
		struct keel_kv_error e_ = {0};                                               \
		if (!r_.time)                                                                \
			r_.time = kvt_now;                                                   \
		int rc_ = keel_kv_store_apply((s), &r_, &ev_, &e_);                          \
		if (rc_ != 0)                                                                \
			fail_msg("apply failed: %d (%d %s)", rc_, e_.code,                   \
				 e_.cause ? e_.cause : "");                                  \
		keel_kv_event_unref(ev_);                                                    \
	} while (0)

/* A local GET rendered, or its error. */
static inline char *kvt_get(struct keel_kv_store *s, const char *path, bool recursive,
			    bool sorted, int64_t now)
{
	struct keel_kv_event *ev = NULL;
	struct keel_kv_error e = {0};
	struct keel_buf b = KEEL_BUF_INIT;
	int rc = keel_kv_store_get(s, path, strlen(path), recursive, sorted, now, &ev, &e);
	if (rc == 0)
		assert_int_equal(keel_kv_event_json(ev, 0, &b), 0);
	else if (rc == KEEL_KV_FAILED)
		assert_int_equal(keel_kv_error_json(&e, &b), 0);
	else
		fail_msg("get returned %d", rc);
	keel_kv_event_unref(ev);
	keel_kv_error_clear(&e);
	char *out = keel_buf_steal(&b, NULL);
	assert_non_null(out);
	return out;
}

#define KVT_GET(s, path, recursive, sorted, want)                                           \
	do {                                                                                \
		char *got_ = kvt_get((s), (path), (recursive), (sorted), kvt_now);            \
		if (strcmp(got_, (want)) != 0)                                              \
			fail_msg("got  %s\nwant %s", got_, (want));                         \
		free(got_);                                                                 \
	} while (0)

static inline void kvt_check_store(const struct keel_kv_store *s)
{
	struct keel_err err;
	if (keel_kv_store_check(s, &err) != 0)
		fail_msg("store check: %s", keel_err_msg(&err));
}
