/* Fuzz the v2 auth data layer: request bodies come from any client (before auth is on, from
 * anyone), commands from the Raft log. Input: frames, each a byte saying what it is, a 16-bit
 * little-endian length and that many bytes:
 *   'u' a user body, 'r' a role body: decoded as Go would; whatever decodes prints to JSON that
 *       decodes again to the same printout (one form per value);
 *   'f' a message run through Go's fmt with no arguments;
 *   'c' an auth command applied to a store shared by the frames of one input.
 * Properties: no crash, no out-of-bounds read; the store keeps every invariant
 * keel_kv_store_check() knows, its auth tree stays readable, and permission checks on what was
 * decoded never fail. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/mem.h"
#include "base/str.h"
#include "kv/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void user_frame(const char *p, size_t n)
{
	struct keel_kv_user u;
	if (keel_kv_user_parse(p, n, &u) == 0) {
		struct keel_buf a = KEEL_BUF_INIT, b = KEEL_BUF_INIT;
		struct keel_kv_user again;
		if (keel_kv_user_json(&u, &a) != 0 || keel_kv_user_parse(a.data, a.len, &again) != 0 ||
		    keel_kv_user_json(&again, &b) != 0 || a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
			abort();
		(void)keel_kv_user_has_role(&u, "root");
		keel_kv_user_free(&again);
		keel_buf_free(&a);
		keel_buf_free(&b);
	}
	keel_kv_user_free(&u);
}

static void role_frame(const char *p, size_t n)
{
	struct keel_kv_role r;
	if (keel_kv_role_parse(p, n, &r) == 0) {
		struct keel_buf a = KEEL_BUF_INIT, b = KEEL_BUF_INIT;
		struct keel_kv_role again;
		if (keel_kv_role_json(&r, &a) != 0 || keel_kv_role_parse(a.data, a.len, &again) != 0 ||
		    keel_kv_role_json(&again, &b) != 0 || a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
			abort();
		static const char *const keys[] = {"", "/", "/a", "/a/b", "/foo/x"};
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			for (int m = 0; m < 4; m++)
				(void)keel_kv_role_has_access(&r, keys[i], strlen(keys[i]), m & 1, m & 2);
		keel_kv_role_free(&again);
		keel_buf_free(&a);
		keel_buf_free(&b);
	}
	keel_kv_role_free(&r);
}

static void fmt_frame(const char *p, size_t n)
{
	char *s = keel_strndup(p, n);
	struct keel_buf b = KEEL_BUF_INIT;
	if (s && keel_kv_go_sprintf_noargs(&b, s) != 0)
		abort();
	keel_buf_free(&b);
	keel_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const ns[] = {"/0", "/1", NULL};
	struct keel_kv_store_opts o = {.namespaces = ns, .key_prefix = "/1", .hash_seed = 7};
	struct keel_kv_store *s;
	if (keel_kv_store_new(&o, &s) < 0)
		abort();
	size_t at = 0;
	for (int frames = 0; frames < 64 && at + 3 <= size; frames++) {
		char kind = (char)data[at];
		size_t n = (size_t)data[at + 1] | (size_t)data[at + 2] << 8;
		at += 3;
		if (n > size - at)
			n = size - at;
		const char *p = (const char *)data + at;
		at += n;
		switch (kind) {
		case 'u':
			user_frame(p, n);
			break;
		case 'r':
			role_frame(p, n);
			break;
		case 'f':
			fmt_frame(p, n);
			break;
		case 'c': {
			struct keel_kv_auth_answer a = {0};
			int r = keel_kv_auth_apply(s, p, n, &a);
			if (r != 0 && r != -KEEL_ECORRUPT)
				abort();
			if (r == 0 && (a.status < 200 || a.status > 599))
				abort();
			keel_kv_auth_answer_clear(&a);
			struct keel_err err;
			if (keel_kv_store_check(s, &err) != 0)
				abort();
			break;
		}
		default:
			break;
		}
	}
	(void)keel_kv_auth_enabled(s, true);
	char **names = NULL;
	for (int roles = 0; roles < 2; roles++) {
		if (keel_kv_auth_list(s, roles, &names) != 0)
			abort();
		for (size_t i = 0; names && names[i]; i++) {
			struct keel_kv_user u;
			struct keel_kv_role r;
			if (roles && keel_kv_auth_get_role(s, names[i], strlen(names[i]), false, &r) == 0)
				keel_kv_role_free(&r);
			else if (!roles && keel_kv_auth_get_user(s, names[i], strlen(names[i]), false, &u) == 0)
				keel_kv_user_free(&u);
		}
		keel_strv_free(names);
		names = NULL;
	}
	keel_kv_store_free(s);
	return 0;
}
