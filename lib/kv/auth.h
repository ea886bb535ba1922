/* etcd v2's users and roles (etcd 3.4's etcdserver/api/v2auth) as data: Go-compatible JSON
 * decoding and encoding of etcd's User and Role structs, the grant/revoke merges, permission
 * matching, and the auth commands keel-kv replicates through Raft and applies to the store's
 * /2 tree exactly as etcd's handlers drive its store (so indexes and counters move alike). No
 * I/O, no clock, no hashing: passwords reach this layer already hashed. docs/kv.md,
 * "Authentication", has the user's side; etcd behaviours matched are listed there.
 *
 * Strings are NUL-terminated (names come from JSON, where jansson refuses \u0000). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/macro.h"
#include "kv/store.h"

#define KEEL_KV_AUTH_ROOT "root"   /* the root user and role */
#define KEEL_KV_AUTH_GUEST "guest" /* the role of requests without credentials */

/* A Go []string: nil (set == false: JSON null, or absent) or a list, maybe empty. etcd's JSON
 * tells the two apart ("roles":null vs "roles":[]) and so does its reflect.DeepEqual. */
struct keel_kv_strs {
	char **v;
	size_t n;
	bool set;
};

/* Permissions{KV: RWPermission{Read, Write}}: key patterns, "/foo" or "/foo/" + "*". */
struct keel_kv_perms {
	struct keel_kv_strs read, write;
};

struct keel_kv_user {
	char *user;     /* "" when absent, never NULL once parsed */
	char *password; /* "" when absent; in the store: a bcrypt hash */
	struct keel_kv_strs roles, grant, revoke;
};

struct keel_kv_role {
	char *role;
	struct keel_kv_perms perms;
	bool has_grant, has_revoke; /* Go's *Permissions: nil or not */
	struct keel_kv_perms grant, revoke;
};

void keel_kv_user_free(struct keel_kv_user *u); /* frees the contents, leaves it zeroed */
void keel_kv_role_free(struct keel_kv_role *r);

/* Decode one request body the way etcd's json.NewDecoder(r.Body).Decode(&v) does: the first
 * JSON value only (trailing bytes are ignored), member names matched case-insensitively (with
 * Go's folding), unknown members ignored, null leaves a string alone and makes a list nil, a
 * top-level null decodes to the zero value, invalid UTF-8 becomes U+FFFD, and any type mismatch
 * fails. 0, -EINVAL (etcd: "Invalid JSON in request body."), -ENOMEM. *ret is zeroed first and
 * must be freed on success and failure alike. */
int keel_kv_user_parse(const char *data, size_t len, struct keel_kv_user *ret);
int keel_kv_role_parse(const char *data, size_t len, struct keel_kv_role *ret);

/* json.Marshal of etcd's structs: {"user","password" (omitted when empty),"roles" (null or a
 * list),"grant","revoke" (omitted when empty)} and {"role","permissions":{"kv":{"read",
 * "write"}},"grant","revoke" (omitted when nil)}, Go's escaping, no newline. 0 or -ENOMEM. */
int keel_kv_user_json(const struct keel_kv_user *u, struct keel_buf *out);
int keel_kv_role_json(const struct keel_kv_role *r, struct keel_buf *out);

/* The root role etcd never stores: read and write everything. 0 or -ENOMEM. */
int keel_kv_role_root(struct keel_kv_role *ret);

/* etcd's Role.HasKeyAccess (recursive false: a pattern ending in '*' matches by prefix, any
 * other exactly) and HasRecursiveAccess (only '*' patterns, by prefix). The root role has every
 * access. key is the URL path after /v2/keys, as sent (len bytes). */
bool keel_kv_role_has_access(const struct keel_kv_role *r, const char *key, size_t key_len, bool write,
			     bool recursive);

/* Whether the user holds `role` (etcd: hasRootAccess looks for "root" in user.Roles). */
bool keel_kv_user_has_role(const struct keel_kv_user *u, const char *role);

/* ---- reading the /2 tree ------------------------------------------------------------------ */

/* etcd's AuthEnabled(): /2/enabled holds the JSON "true". With count, the look counts as the
 * GET etcd makes for it. */
bool keel_kv_auth_enabled(struct keel_kv_store *s, bool count);

/* etcd's getUser/getRole: the node /2/users/<name> (path-joined and cleaned as etcd does), its
 * JSON decoded; the root user gets the root role attached; the role "root" is the constant one
 * (no store access). 0, KEEL_KV_FAILED (no such node), -EINVAL (not a user's JSON, or a
 * directory), -ENOMEM. */
int keel_kv_auth_get_user(struct keel_kv_store *s, const char *name, size_t name_len, bool count,
			  struct keel_kv_user *ret);
int keel_kv_auth_get_role(struct keel_kv_store *s, const char *name, size_t name_len, bool count,
			  struct keel_kv_role *ret);
/* etcd's attachRootRole: add "root" to the root user's roles if missing. 0 or -ENOMEM. */
int keel_kv_user_attach_root(struct keel_kv_user *u);

/* The names under /2/users or /2/roles (AllUsers/AllRoles: a counted GET), sorted, with "root"
 * added to the roles. *ret is a keel_strv (NULL-terminated, keel_strv_free). 0 or -ENOMEM. */
int keel_kv_auth_list(struct keel_kv_store *s, bool roles, char ***ret);

/* ---- answers ------------------------------------------------------------------------------ */

/* What an auth operation answers: the status and body etcd's handler writes. */
struct keel_kv_auth_answer {
	int status;
	bool created;      /* the user was created (201) */
	bool store_error;  /* the body is a v2 store error: X-Etcd-Index is etcd_index */
	uint64_t etcd_index;
	struct keel_buf body;
};

void keel_kv_auth_answer_clear(struct keel_kv_auth_answer *a); /* frees the body */

/* etcd's authErr(status, "auth: " + msg): body {"message":"auth: <msg>"} without a newline
 * (httptypes.HTTPError). `go_format` runs the text through fmt.Sprintf with no arguments, as
 * etcd does for two of its messages ("%d" in a role name comes out "%!d(MISSING)"). 0 or
 * -ENOMEM. */
int keel_kv_auth_error(struct keel_kv_auth_answer *a, int status, bool go_format, const char *fmt, ...)
	KEEL_PRINTF(4, 5);
/* httptypes.NewHTTPError(status, msg): {"message":msg}, no "auth: " prefix. */
int keel_kv_auth_http_error(struct keel_kv_auth_answer *a, int status, const char *msg);

/* Go's fmt.Sprintf(s) with no arguments: "%%" → "%", a verb → "%!v(MISSING)", and the other
 * fmt error forms. Appends to out. 0 or -ENOMEM. For tests and keel_kv_auth_error. */
int keel_kv_go_sprintf_noargs(struct keel_buf *out, const char *s);

/* ---- commands: what goes through Raft ---------------------------------------------------- */

enum keel_kv_auth_op {
	KEEL_KV_AUTH_USER_CREATE = 1, /* PUT with roles: CreateUser (answers 200) */
	KEEL_KV_AUTH_USER_PUT = 2,    /* PUT without roles or grants: CreateOrUpdateUser */
	KEEL_KV_AUTH_USER_UPDATE = 3, /* PUT with grant/revoke: UpdateUser */
	KEEL_KV_AUTH_USER_DELETE = 4,
	KEEL_KV_AUTH_ROLE_CREATE = 5,
	KEEL_KV_AUTH_ROLE_UPDATE = 6,
	KEEL_KV_AUTH_ROLE_DELETE = 7,
	KEEL_KV_AUTH_ENABLE = 8,
	KEEL_KV_AUTH_DISABLE = 9,
};

/* [u8 version 1][u8 op][arg]: the arg is the user's JSON (keel_kv_user_json, its password
 * already hashed) for the user PUTs, the role's JSON for the role PUTs, the name for deletes,
 * nothing for enable/disable. 0, -EINVAL, -ENOMEM. */
int keel_kv_auth_cmd_encode(enum keel_kv_auth_op op, const char *arg, size_t arg_len, struct keel_buf *out);

/* Apply one command on every member, in log order: the same store operations etcd's handlers
 * make (its QGETs as counted looks; ensureAuthDirectories' creates of /2, /2/users, /2/roles and
 * /2/enabled when /2/enabled is missing; then the Create/Update/Delete under /2), and the answer
 * etcd gives. Deterministic. A store call that runs out of memory is retried (it changed
 * nothing), so a member never skips half an entry. 0 with *ans filled, -KEEL_ECORRUPT for a
 * command that does not decode (every member skips it alike). */
int keel_kv_auth_apply(struct keel_kv_store *s, const void *cmd, size_t len, struct keel_kv_auth_answer *ans);
