/* lib/kv/auth.h: etcd v2's users and roles — Go-compatible JSON, permission matching, Go's fmt
 * error forms, the merges, and the auth commands applied to a store (indexes, counters and
 * answers as etcd 3.4 gives them; the expected strings were read off etcd 3.4.23). */
#include "test_kv_util.h"

#include <errno.h>

#include "base/mem.h"
#include "base/str.h"
#include "kv/auth.h"

static struct keel_kv_store *etcd_store(void)
{
	static const char *const ns[] = {"/0", "/1", NULL};
	struct keel_kv_store_opts o = {.namespaces = ns, .key_prefix = "/1", .hash_seed = 7};
	struct keel_kv_store *s = NULL;
	assert_int_equal(keel_kv_store_new(&o, &s), 0);
	return s;
}

static struct keel_kv_user user_of(const char *json)
{
	struct keel_kv_user u;
	assert_int_equal(keel_kv_user_parse(json, strlen(json), &u), 0);
	return u;
}

static struct keel_kv_role role_of(const char *json)
{
	struct keel_kv_role r;
	assert_int_equal(keel_kv_role_parse(json, strlen(json), &r), 0);
	return r;
}

static char *user_json(const struct keel_kv_user *u)
{
	struct keel_buf b = KEEL_BUF_INIT;
	assert_int_equal(keel_kv_user_json(u, &b), 0);
	return keel_buf_steal(&b, NULL);
}

static char *role_json(const struct keel_kv_role *r)
{
	struct keel_buf b = KEEL_BUF_INIT;
	assert_int_equal(keel_kv_role_json(r, &b), 0);
	return keel_buf_steal(&b, NULL);
}

/* Parse and print again: what etcd stores and answers for a request body. */
static void user_roundtrip(const char *in, const char *want)
{
	struct keel_kv_user u = user_of(in);
	char *got = user_json(&u);
	assert_string_equal(got, want);
	keel_free(got);
	keel_kv_user_free(&u);
}

static void role_roundtrip(const char *in, const char *want)
{
	struct keel_kv_role r = role_of(in);
	char *got = role_json(&r);
	assert_string_equal(got, want);
	keel_free(got);
	keel_kv_role_free(&r);
}

static void user_bad(const char *in)
{
	struct keel_kv_user u;
	assert_int_equal(keel_kv_user_parse(in, strlen(in), &u), -EINVAL);
	keel_kv_user_free(&u);
}

static void role_bad(const char *in)
{
	struct keel_kv_role r;
	assert_int_equal(keel_kv_role_parse(in, strlen(in), &r), -EINVAL);
	keel_kv_role_free(&r);
}

/* ---- JSON ---------------------------------------------------------------------------------- */

static void user_json_keeps_nil_and_empty_lists_apart(void **state)
{
	(void)state;
	user_roundtrip("{\"user\":\"bob\",\"password\":\"pw\"}", "{\"user\":\"bob\",\"password\":\"pw\",\"roles\":null}");
	user_roundtrip("{\"user\":\"bob\",\"roles\":[]}", "{\"user\":\"bob\",\"roles\":[]}");
	user_roundtrip("{\"user\":\"bob\",\"roles\":[\"b\",\"a\",\"a\"]}", "{\"user\":\"bob\",\"roles\":[\"b\",\"a\",\"a\"]}");
	/* grant and revoke are omitempty: an empty list disappears, a null one too. */
	user_roundtrip("{\"user\":\"u\",\"grant\":[],\"revoke\":null}", "{\"user\":\"u\",\"roles\":null}");
	user_roundtrip("{\"user\":\"u\",\"grant\":[\"r\"],\"revoke\":[\"s\"]}",
		       "{\"user\":\"u\",\"roles\":null,\"grant\":[\"r\"],\"revoke\":[\"s\"]}");
	/* null elements of a list are "" */
	user_roundtrip("{\"user\":\"y\",\"roles\":[null,\"z\"]}", "{\"user\":\"y\",\"roles\":[\"\",\"z\"]}");
	/* Go's escaping: <>& and U+2028 */
	user_roundtrip("{\"user\":\"a<b>&\\u2028\"}", "{\"user\":\"a\\u003cb\\u003e\\u0026\\u2028\",\"roles\":null}");
}

static void user_json_decodes_like_go(void **state)
{
	(void)state;
	/* Member names in any case, and Go's special folds (long s, Kelvin sign). */
	user_roundtrip("{\"USER\":\"Pct\",\"pa\xC5\xBF\xC5\xBFword\":\"p\",\"Roles\":[\"r\"]}",
		       "{\"user\":\"Pct\",\"password\":\"p\",\"roles\":[\"r\"]}");
	/* The first value only: what follows is not read. */
	user_roundtrip("{\"user\":\"x\",\"password\":\"p\"} garbage", "{\"user\":\"x\",\"password\":\"p\",\"roles\":null}");
	/* A top-level null is the zero value; null leaves a string as it was. */
	user_roundtrip("null", "{\"user\":\"\",\"roles\":null}");
	user_roundtrip("{\"user\":\"a\",\"User\":null}", "{\"user\":\"a\",\"roles\":null}");
	/* Unknown members are skipped whatever they hold. */
	user_roundtrip("{\"user\":\"y\",\"extra\":{\"deep\":[1,2,{}]},\"x\":5}", "{\"user\":\"y\",\"roles\":null}");
	/* Invalid UTF-8 inside a string: U+FFFD per bad byte, as Go decodes it. */
	user_roundtrip("{\"user\":\"a\xff\xc3\"}", "{\"user\":\"a\xEF\xBF\xBD\xEF\xBF\xBD\",\"roles\":null}");
	/* Type mismatches and broken text fail. */
	user_bad("");
	user_bad("   ");
	user_bad("[]");
	user_bad("\"bob\"");
	user_bad("{\"user\":5}");
	user_bad("{\"user\":\"y\",\"roles\":\"a\"}");
	user_bad("{\"user\":\"y\",\"roles\":[1]}");
	user_bad("{\"user\":\"y\",\"grant\":{}}");
	user_bad("{\"user\":\"y\"");
	user_bad("{\"user\":\"y\",}");
}

static void role_json_follows_etcd_structs(void **state)
{
	(void)state;
	role_roundtrip("{\"role\":\"r1\"}", "{\"role\":\"r1\",\"permissions\":{\"kv\":{\"read\":null,\"write\":null}}}");
	/* A grant that is present but empty stays (a non-nil pointer is not omitted). */
	role_roundtrip("{\"role\":\"r2\",\"grant\":{\"kv\":{\"read\":[]}}}",
		       "{\"role\":\"r2\",\"permissions\":{\"kv\":{\"read\":null,\"write\":null}},"
		       "\"grant\":{\"kv\":{\"read\":[],\"write\":null}}}");
	role_roundtrip("{\"role\":\"r4\",\"grant\":null,\"revoke\":{\"kv\":null}}",
		       "{\"role\":\"r4\",\"permissions\":{\"kv\":{\"read\":null,\"write\":null}},"
		       "\"revoke\":{\"kv\":{\"read\":null,\"write\":null}}}");
	role_roundtrip("{\"role\":\"r3\",\"permissions\":{\"kv\":{\"read\":[\"/a\",\"/a\"]}}}",
		       "{\"role\":\"r3\",\"permissions\":{\"kv\":{\"read\":[\"/a\",\"/a\"],\"write\":null}}}");
	/* Member names in any case; "kv" with a Kelvin sign. */
	role_roundtrip("{\"Role\":\"x\",\"PERMISSIONS\":{\"\xE2\x84\xAAV\":{\"Write\":[\"/w\"]}}}",
		       "{\"role\":\"x\",\"permissions\":{\"kv\":{\"read\":null,\"write\":[\"/w\"]}}}");
	role_bad("{\"role\":\"r5\",\"permissions\":\"x\"}");
	role_bad("{\"role\":\"r5\",\"permissions\":{\"kv\":[]}}");
	role_bad("{\"role\":\"r5\",\"grant\":5}");
	role_bad("{\"role\":\"r5\",\"permissions\":{\"kv\":{\"read\":[{}]}}}");
}

/* ---- matching ------------------------------------------------------------------------------ */

static bool access(const char *role_json_text, const char *key, bool write, bool recursive)
{
	struct keel_kv_role r = role_of(role_json_text);
	bool ok = keel_kv_role_has_access(&r, key, strlen(key), write, recursive);
	keel_kv_role_free(&r);
	return ok;
}

static void permissions_match_as_etcd(void **state)
{
	(void)state;
	const char *r = "{\"role\":\"r\",\"permissions\":{\"kv\":{\"read\":[\"/foo/*\",\"/bar\",\"\"],"
			"\"write\":[\"/foo/a\"]}}}";
	/* A trailing star is a byte prefix (so it does not cover "/foo" itself). */
	assert_true(access(r, "/foo/x", false, false));
	assert_true(access(r, "/foo/", false, false));
	assert_true(access(r, "/foo/x/y", false, false));
	assert_false(access(r, "/foo", false, false));
	assert_false(access(r, "/foobar", false, false));
	/* Other patterns match exactly. */
	assert_true(access(r, "/bar", false, false));
	assert_false(access(r, "/bar/x", false, false));
	assert_false(access(r, "/ba", false, false));
	/* Read and write are separate lists. */
	assert_true(access(r, "/foo/a", true, false));
	assert_false(access(r, "/foo/b", true, false));
	assert_false(access(r, "/bar", true, false));
	/* Recursive requests need a '*' pattern. */
	assert_true(access(r, "/foo/x", false, true));
	assert_false(access(r, "/bar", false, true));
	assert_false(access(r, "/foo/a", true, true));
	/* An empty pattern matches nothing (etcd would panic on it). */
	assert_false(access(r, "", false, false));
	/* The key is matched as sent: the empty key of GET /v2/keys is not under "/". */
	const char *all = "{\"role\":\"guest\",\"permissions\":{\"kv\":{\"read\":[\"/*\"],\"write\":[\"/*\"]}}}";
	assert_true(access(all, "/", false, true));
	assert_false(access(all, "", false, false));
	/* The root role can do everything, whatever its lists say. */
	assert_true(access("{\"role\":\"root\"}", "/anything", true, true));
	struct keel_kv_role root;
	assert_int_equal(keel_kv_role_root(&root), 0);
	char *j = role_json(&root);
	assert_string_equal(j, "{\"role\":\"root\",\"permissions\":{\"kv\":{\"read\":[\"/*\"],\"write\":[\"/*\"]}}}");
	keel_free(j);
	keel_kv_role_free(&root);
}

/* ---- Go's fmt ------------------------------------------------------------------------------ */

static void go_sprintf(const char *in, const char *want)
{
	struct keel_buf b = KEEL_BUF_INIT;
	assert_int_equal(keel_kv_go_sprintf_noargs(&b, in), 0);
	assert_string_equal(b.data ? b.data : "", want);
	keel_buf_free(&b);
}

static void messages_go_through_go_fmt_like_etcds(void **state)
{
	(void)state;
	/* What etcd 3.4.23 answered for these role names. */
	go_sprintf("a%d", "a%!d(MISSING)");
	go_sprintf("b%s% for user pct", "b%!s(MISSING)%!f(MISSING)or user pct");
	go_sprintf("x%[2]*.*d%-5.3v% for", "x%!(BADWIDTH)%!(BADPREC)%!d(BADINDEX)%!v(MISSING)%!f(MISSING)or");
	go_sprintf("%*d|%.*d|%[1]d|%[x]d|%[|%\xC3\xA9|%5.2%|%#+ 0-q|%1234567890d|a",
		   "%!(BADWIDTH)%!d(MISSING)|%!(BADPREC)%!d(MISSING)|%!d(BADINDEX)|%!d(BADINDEX)|%!|(BADINDEX)"
		   "%!\xC3\xA9(MISSING)|%|%!q(MISSING)|%!(NOVERB)");
	go_sprintf("100%% sure", "100% sure");
	go_sprintf("end%", "end%!(NOVERB)");
	go_sprintf("plain", "plain");
	struct keel_kv_auth_answer a = {0};
	assert_int_equal(keel_kv_auth_error(&a, 409, true, "Granting duplicate role %s for user %s", "a%d", "u"), 0);
	assert_int_equal(a.status, 409);
	assert_string_equal(a.body.data, "{\"message\":\"auth: Granting duplicate role a%!d(MISSING) for user u\"}");
	assert_int_equal(keel_kv_auth_error(&a, 404, false, "Role %s does not exist.", "a%d"), 0);
	assert_string_equal(a.body.data, "{\"message\":\"auth: Role a%d does not exist.\"}");
	keel_kv_auth_answer_clear(&a);
}

/* ---- commands on a store ------------------------------------------------------------------- */

struct answer {
	int status;
	char body[1024];
};

static struct answer run(struct keel_kv_store *s, enum keel_kv_auth_op op, const char *arg)
{
	struct keel_buf cmd = KEEL_BUF_INIT;
	assert_int_equal(keel_kv_auth_cmd_encode(op, arg, arg ? strlen(arg) : 0, &cmd), 0);
	struct keel_kv_auth_answer a = {0};
	assert_int_equal(keel_kv_auth_apply(s, cmd.data, cmd.len, &a), 0);
	struct answer out = {.status = a.status};
	snprintf(out.body, sizeof(out.body), "%.*s", (int)a.body.len, a.body.data ? a.body.data : "");
	keel_kv_auth_answer_clear(&a);
	keel_buf_free(&cmd);
	return out;
}

static void expect(struct answer a, int status, const char *body)
{
	assert_int_equal(a.status, status);
	assert_string_equal(a.body, body);
}

static char *stored(struct keel_kv_store *s, const char *path)
{
	struct keel_kv_peek pk;
	if (keel_kv_store_peek(s, path, strlen(path), false, &pk) != 0)
		return NULL;
	return keel_strndup(pk.value ? pk.value : "", pk.value_len);
}

#define HASH "$2a$10$BMqBZXeQk829YlJRrmQmzuDZs0HFmo9ayFarABTeR6HQ1./hs0FNy"

static void user_commands_move_indexes_like_etcd(void **state)
{
	(void)state;
	struct keel_kv_store *s = etcd_store();
	/* The first auth write makes /2, /2/users, /2/roles and /2/enabled first: index 5. */
	expect(run(s, KEEL_KV_AUTH_USER_PUT, "{\"user\":\"bob\",\"password\":\"" HASH "\"}"), 201,
	       "{\"user\":\"bob\",\"roles\":null}\n");
	assert_int_equal(keel_kv_store_index(s), 5);
	char *v = stored(s, "/2/users/bob");
	assert_string_equal(v, "{\"user\":\"bob\",\"password\":\"" HASH "\",\"roles\":null}");
	keel_free(v);
	v = stored(s, "/2/enabled");
	assert_string_equal(v, "false");
	keel_free(v);
	/* No change but roles null → []: etcd's DeepEqual sees a difference, once. */
	expect(run(s, KEEL_KV_AUTH_USER_PUT, "{\"user\":\"bob\"}"), 200, "{\"user\":\"bob\",\"roles\":[]}\n");
	assert_int_equal(keel_kv_store_index(s), 6);
	expect(run(s, KEEL_KV_AUTH_USER_PUT, "{\"user\":\"bob\"}"), 400,
	       "{\"message\":\"auth: User not updated. Use grant/revoke/password to update the user.\"}");
	assert_int_equal(keel_kv_store_index(s), 6);
	/* The password is kept when none is given. */
	v = stored(s, "/2/users/bob");
	assert_non_null(strstr(v, HASH));
	keel_free(v);
	/* Grants are a set, sorted; duplicates and ungranted revokes are refused. */
	expect(run(s, KEEL_KV_AUTH_USER_UPDATE, "{\"user\":\"bob\",\"grant\":[\"r2\",\"r1\"]}"), 200,
	       "{\"user\":\"bob\",\"roles\":[\"r1\",\"r2\"]}\n");
	expect(run(s, KEEL_KV_AUTH_USER_UPDATE, "{\"user\":\"bob\",\"grant\":[\"q\",\"r\",\"q\"]}"), 409,
	       "{\"message\":\"auth: Granting duplicate role q for user bob\"}");
	expect(run(s, KEEL_KV_AUTH_USER_UPDATE, "{\"user\":\"bob\",\"grant\":[\"x\",\"r2\"]}"), 409,
	       "{\"message\":\"auth: Granting duplicate role r2 for user bob\"}");
	expect(run(s, KEEL_KV_AUTH_USER_UPDATE, "{\"user\":\"bob\",\"grant\":[\"q\"],\"revoke\":[\"q\",\"q\"]}"), 409,
	       "{\"message\":\"auth: Revoking ungranted role q for user bob\"}");
	expect(run(s, KEEL_KV_AUTH_USER_UPDATE, "{\"user\":\"bob\",\"revoke\":[\"zz\",\"r1\"]}"), 409,
	       "{\"message\":\"auth: Revoking ungranted role zz for user bob\"}");
	expect(run(s, KEEL_KV_AUTH_USER_UPDATE, "{\"user\":\"bob\",\"grant\":[\"q\"],\"revoke\":[\"r1\",\"q\"]}"), 200,
	       "{\"user\":\"bob\",\"roles\":[\"r2\"]}\n");
	assert_int_equal(keel_kv_store_index(s), 8);
	expect(run(s, KEEL_KV_AUTH_USER_UPDATE, "{\"user\":\"nobody\",\"grant\":[\"q\"]}"), 404,
	       "{\"message\":\"auth: User nobody does not exist.\"}");
	/* CreateUser (a PUT with roles) answers 200, and refuses an existing user. */
	expect(run(s, KEEL_KV_AUTH_USER_CREATE, "{\"user\":\"c\",\"password\":\"" HASH "\",\"roles\":[\"b\",\"a\"]}"), 200,
	       "{\"user\":\"c\",\"roles\":[\"b\",\"a\"]}\n");
	expect(run(s, KEEL_KV_AUTH_USER_CREATE, "{\"user\":\"c\",\"password\":\"" HASH "\",\"roles\":[\"b\"]}"), 409,
	       "{\"message\":\"auth: User c already exists.\"}");
	/* A user that does not exist needs a password. */
	expect(run(s, KEEL_KV_AUTH_USER_PUT, "{\"user\":\"e\"}"), 400,
	       "{\"message\":\"auth: Cannot create user e with an empty password\"}");
	/* root always holds the root role. */
	expect(run(s, KEEL_KV_AUTH_USER_PUT, "{\"user\":\"root\",\"password\":\"" HASH "\"}"), 201,
	       "{\"user\":\"root\",\"roles\":[\"root\"]}\n");
	struct keel_kv_user root;
	assert_int_equal(keel_kv_auth_get_user(s, "root", 4, false, &root), 0);
	assert_true(keel_kv_user_has_role(&root, "root"));
	keel_kv_user_free(&root);
	/* Deletes: etcd's two messages for a missing node differ. */
	uint64_t before = keel_kv_store_index(s);
	expect(run(s, KEEL_KV_AUTH_USER_DELETE, "c"), 200, "");
	assert_int_equal(keel_kv_store_index(s), before + 1);
	expect(run(s, KEEL_KV_AUTH_USER_DELETE, "c"), 404, "{\"message\":\"auth: User c does not exist\"}");
	expect(run(s, KEEL_KV_AUTH_ROLE_DELETE, "c"), 404, "{\"message\":\"auth: Role c doesn't exist.\"}");
	char **names = NULL;
	assert_int_equal(keel_kv_auth_list(s, false, &names), 0);
	assert_int_equal(keel_strv_len(names), 2);
	assert_string_equal(names[0], "bob");
	assert_string_equal(names[1], "root");
	keel_strv_free(names);
	keel_kv_store_free(s);
}

static void role_commands_merge_like_etcd(void **state)
{
	(void)state;
	struct keel_kv_store *s = etcd_store();
	expect(run(s, KEEL_KV_AUTH_ROLE_CREATE, "{\"role\":\"r2\",\"grant\":{\"kv\":{\"read\":[]}}}"), 201,
	       "{\"role\":\"r2\",\"permissions\":{\"kv\":{\"read\":null,\"write\":null}},"
	       "\"grant\":{\"kv\":{\"read\":[],\"write\":null}}}\n");
	assert_int_equal(keel_kv_store_index(s), 5);
	expect(run(s, KEEL_KV_AUTH_ROLE_CREATE, "{\"role\":\"r2\"}"), 409, "{\"message\":\"auth: Role r2 already exists.\"}");
	/* Revoking what is not there changes null lists into [] (and drops the stored grant):
	 * an update the first time, "not updated" the second. */
	const char *revoke = "{\"role\":\"r2\",\"revoke\":{\"kv\":{\"read\":[\"/nope\"]}}}";
	expect(run(s, KEEL_KV_AUTH_ROLE_UPDATE, revoke), 200,
	       "{\"role\":\"r2\",\"permissions\":{\"kv\":{\"read\":[],\"write\":[]}}}\n");
	expect(run(s, KEEL_KV_AUTH_ROLE_UPDATE, revoke), 400,
	       "{\"message\":\"auth: Role not updated. Use grant/revoke to update the role.\"}");
	expect(run(s, KEEL_KV_AUTH_ROLE_CREATE, "{\"role\":\"r3\",\"permissions\":{\"kv\":{\"read\":[\"/a\",\"/a\"]}}}"),
	       201, "{\"role\":\"r3\",\"permissions\":{\"kv\":{\"read\":[\"/a\",\"/a\"],\"write\":null}}}\n");
	expect(run(s, KEEL_KV_AUTH_ROLE_UPDATE, "{\"role\":\"r3\",\"grant\":{\"kv\":{\"write\":[\"/w\"]}}}"), 200,
	       "{\"role\":\"r3\",\"permissions\":{\"kv\":{\"read\":[\"/a\"],\"write\":[\"/w\"]}}}\n");
	expect(run(s, KEEL_KV_AUTH_ROLE_UPDATE, "{\"role\":\"r3\",\"grant\":{\"kv\":{\"write\":[\"/w\"]}}}"), 409,
	       "{\"message\":\"auth: Granting duplicate write permission /w\"}");
	expect(run(s, KEEL_KV_AUTH_ROLE_UPDATE, "{\"role\":\"r3\",\"grant\":{\"kv\":{\"read\":[\"/x\",\"/x\"]}}}"), 409,
	       "{\"message\":\"auth: Granting duplicate read permission /x\"}");
	expect(run(s, KEEL_KV_AUTH_ROLE_UPDATE,
		   "{\"role\":\"r3\",\"grant\":{\"kv\":{\"read\":[\"/y\"]}},\"revoke\":{\"kv\":{\"read\":[\"/y\",\"/a\"]}}}"),
	       200, "{\"role\":\"r3\",\"permissions\":{\"kv\":{\"read\":[],\"write\":[\"/w\"]}}}\n");
	expect(run(s, KEEL_KV_AUTH_ROLE_UPDATE, "{\"role\":\"nobody\",\"grant\":{\"kv\":{\"read\":[\"/y\"]}}}"), 404,
	       "{\"message\":\"auth: Role nobody does not exist.\"}");
	expect(run(s, KEEL_KV_AUTH_ROLE_DELETE, "r3"), 200, "");
	struct keel_kv_role r;
	assert_int_equal(keel_kv_auth_get_role(s, "r3", 2, false, &r), KEEL_KV_FAILED);
	assert_int_equal(keel_kv_auth_get_role(s, "r2", 2, false, &r), 0);
	keel_kv_role_free(&r);
	char **names = NULL;
	assert_int_equal(keel_kv_auth_list(s, true, &names), 0);
	assert_int_equal(keel_strv_len(names), 2);
	assert_string_equal(names[0], "r2");
	assert_string_equal(names[1], "root");
	keel_strv_free(names);
	keel_kv_store_free(s);
}

static void enable_needs_root_and_makes_the_guest_role(void **state)
{
	(void)state;
	struct keel_kv_store *s = etcd_store();
	assert_false(keel_kv_auth_enabled(s, false));
	expect(run(s, KEEL_KV_AUTH_ENABLE, NULL), 409, "{\"message\":\"auth: No root user available, please create one\"}");
	assert_int_equal(keel_kv_store_index(s), 0); /* the checks write nothing */
	expect(run(s, KEEL_KV_AUTH_USER_PUT, "{\"user\":\"root\",\"password\":\"" HASH "\"}"), 201,
	       "{\"user\":\"root\",\"roles\":[\"root\"]}\n");
	const struct keel_kv_stats *st = keel_kv_store_stats(s);
	uint64_t gets = st->gets_success + st->gets_fail;
	expect(run(s, KEEL_KV_AUTH_ENABLE, NULL), 200, "");
	/* Its quorum reads of root and guest count as gets, as etcd's QGETs do. */
	assert_int_equal(st->gets_success + st->gets_fail, gets + 2);
	assert_true(keel_kv_auth_enabled(s, false));
	assert_int_equal(keel_kv_store_index(s), 5 + 2); /* guest made, enabled updated */
	char *v = stored(s, "/2/roles/guest");
	assert_string_equal(v, "{\"role\":\"guest\",\"permissions\":{\"kv\":{\"read\":[\"/*\"],\"write\":[\"/*\"]}}}");
	keel_free(v);
	/* A guest role that exists is left alone. */
	expect(run(s, KEEL_KV_AUTH_ROLE_UPDATE, "{\"role\":\"guest\",\"revoke\":{\"kv\":{\"write\":[\"/*\"]}}}"), 200,
	       "{\"role\":\"guest\",\"permissions\":{\"kv\":{\"read\":[\"/*\"],\"write\":[]}}}\n");
	expect(run(s, KEEL_KV_AUTH_DISABLE, NULL), 200, "");
	assert_false(keel_kv_auth_enabled(s, false));
	expect(run(s, KEEL_KV_AUTH_ENABLE, NULL), 200, "");
	v = stored(s, "/2/roles/guest");
	assert_non_null(strstr(v, "\"write\":[]"));
	keel_free(v);
	/* The auth tree is not under /1: keys listings never show it. */
	struct keel_kv_event *ev = NULL;
	struct keel_kv_error e = {0};
	assert_int_equal(keel_kv_store_get(s, "/1", 2, true, true, 0, &ev, &e), 0);
	assert_null(strstr(ev->get_json, "/2/"));
	keel_kv_event_unref(ev);
	keel_kv_store_free(s);
}

static void bad_commands_are_refused(void **state)
{
	(void)state;
	struct keel_kv_store *s = etcd_store();
	struct keel_kv_auth_answer a = {0};
	const unsigned char bad[][3] = {{0, 1, 0}, {2, 1, 0}, {1, 0, 0}, {1, 10, 0}};
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(bad); i++)
		assert_int_equal(keel_kv_auth_apply(s, bad[i], 2, &a), -KEEL_ECORRUPT);
	assert_int_equal(keel_kv_auth_apply(s, "\1", 1, &a), -KEEL_ECORRUPT);
	assert_int_equal(keel_kv_auth_apply(s, "\1\2{", 3, &a), -KEEL_ECORRUPT);
	assert_int_equal(keel_kv_store_index(s), 0);
	struct keel_buf b = KEEL_BUF_INIT;
	assert_int_equal(keel_kv_auth_cmd_encode(0, NULL, 0, &b), -EINVAL);
	assert_int_equal(keel_kv_auth_cmd_encode(KEEL_KV_AUTH_DISABLE + 1, NULL, 0, &b), -EINVAL);
	keel_buf_free(&b);
	keel_kv_auth_answer_clear(&a);
	keel_kv_store_free(s);
}

/* Big grant lists cost n log n, not n² (a root user could otherwise stall every member). */
static void large_grants_are_fast_enough(void **state)
{
	(void)state;
	struct keel_kv_store *s = etcd_store();
	struct keel_buf j = KEEL_BUF_INIT;
	assert_int_equal(keel_buf_puts(&j, "{\"user\":\"big\",\"grant\":["), 0);
	for (int i = 0; i < 20000; i++)
		assert_int_equal(keel_buf_printf(&j, "%s\"role%06d\"", i ? "," : "", (i * 7919) % 20000), 0);
	assert_int_equal(keel_buf_puts(&j, "]}"), 0);
	expect(run(s, KEEL_KV_AUTH_USER_PUT, "{\"user\":\"big\",\"password\":\"" HASH "\"}"), 201,
	       "{\"user\":\"big\",\"roles\":null}\n");
	struct keel_buf cmd = KEEL_BUF_INIT;
	assert_int_equal(keel_kv_auth_cmd_encode(KEEL_KV_AUTH_USER_UPDATE, j.data, j.len, &cmd), 0);
	struct keel_kv_auth_answer a = {0};
	assert_int_equal(keel_kv_auth_apply(s, cmd.data, cmd.len, &a), 0);
	assert_int_equal(a.status, 200);
	assert_non_null(strstr(a.body.data, "\"role000000\",\"role000001\""));
	struct keel_kv_user u;
	assert_int_equal(keel_kv_auth_get_user(s, "big", 3, false, &u), 0);
	assert_int_equal(u.roles.n, 20000);
	for (size_t i = 1; i < u.roles.n; i++)
		assert_true(strcmp(u.roles.v[i - 1], u.roles.v[i]) < 0);
	keel_kv_user_free(&u);
	keel_kv_auth_answer_clear(&a);
	keel_buf_free(&cmd);
	keel_buf_free(&j);
	keel_kv_store_free(s);
}

int main(void)
{
	keel_mem_use_for_jansson();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(user_json_keeps_nil_and_empty_lists_apart),
		cmocka_unit_test(user_json_decodes_like_go),
		cmocka_unit_test(role_json_follows_etcd_structs),
		cmocka_unit_test(permissions_match_as_etcd),
		cmocka_unit_test(messages_go_through_go_fmt_like_etcds),
		cmocka_unit_test(user_commands_move_indexes_like_etcd),
		cmocka_unit_test(role_commands_merge_like_etcd),
		cmocka_unit_test(enable_needs_root_and_makes_the_guest_role),
		cmocka_unit_test(bad_commands_are_refused),
		cmocka_unit_test(large_grants_are_fast_enough),
	};
	return cmocka_run_group_tests_name("kv/auth", tests, NULL, NULL);
}
