/* The auth commands (auth.h): their codec, etcd's grant/revoke merges and the apply that drives
 * the store as etcd's v2auth store does (auth.go, auth_requests.go). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/errors.h"
#include "base/mem.h"
#include "kv/auth.h"

#define CMD_VERSION 1

/* Out of memory in the middle of an entry's apply: try again (a member must not skip half an
 * entry; every step below either completes or changes nothing). */
#define RETRY(expr)                                                                                \
	({                                                                                         \
		int r_;                                                                            \
		while ((r_ = (expr)) == -ENOMEM)                                                   \
			;                                                                          \
		r_;                                                                                \
	})

/* ---- the codec ------------------------------------------------------------------------------ */

int keel_kv_auth_cmd_encode(enum keel_kv_auth_op op, const char *arg, size_t arg_len, struct keel_buf *out)
{
	if (op < KEEL_KV_AUTH_USER_CREATE || op > KEEL_KV_AUTH_DISABLE || (arg_len && !arg))
		return -EINVAL;
	const unsigned char head[2] = {CMD_VERSION, (unsigned char)op};
	int r = keel_buf_append(out, head, 2);
	return r < 0 ? r : keel_buf_append(out, arg, arg_len);
}

/* ---- sets of strings, as etcd's types.unsafeSet used by its merges ---------------------------- */

struct item {
	const char *s;
	size_t at; /* position in the list it came from */
};

static int cmp_item(const void *a, const void *b)
{
	const struct item *x = a, *y = b;
	int c = strcmp(x->s, y->s);
	return c ? c : (x->at > y->at) - (x->at < y->at);
}

static int cmp_ptr(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The distinct strings of l, sorted (borrowed pointers). */
static int sorted_unique(const struct keel_kv_strs *l, const char ***ret, size_t *ret_n)
{
	const char **v = keel_malloc((l->n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < l->n; i++)
		v[i] = l->v[i];
	qsort(v, l->n, sizeof(*v), cmp_ptr);
	size_t n = 0;
	for (size_t i = 0; i < l->n; i++)
		if (n == 0 || strcmp(v[n - 1], v[i]) != 0)
			v[n++] = v[i];
	*ret = v;
	*ret_n = n;
	return 0;
}

/* l's items sorted by (string, position). */
static int sorted_items(const struct keel_kv_strs *l, struct item **ret)
{
	struct item *it = keel_malloc((l->n + 1) * sizeof(*it));
	if (!it)
		return -ENOMEM;
	for (size_t i = 0; i < l->n; i++)
		it[i] = (struct item){l->v[i], i};
	qsort(it, l->n, sizeof(*it), cmp_item);
	*ret = it;
	return 0;
}

/* Set (sorted unique, n) plus every string of add, in add's order, as etcd's loop does: the
 * first (by position) that is already there, in the set or earlier in add, is *dup (else
 * SIZE_MAX). The union, sorted, replaces *set. 0 or -ENOMEM. */
static int set_add(const char ***set, size_t *n, const struct keel_kv_strs *add, size_t *dup)
{
	*dup = SIZE_MAX;
	struct item *it;
	if (sorted_items(add, &it) < 0)
		return -ENOMEM;
	const char **out = keel_malloc((*n + add->n + 1) * sizeof(*out));
	if (!out) {
		keel_free(it);
		return -ENOMEM;
	}
	size_t o = 0, a = 0, b = 0;
	while (a < *n || b < add->n) {
		if (b < add->n && (a == *n || strcmp(it[b].s, (*set)[a]) < 0)) {
			out[o++] = it[b].s; /* new: the first of its group goes in */
			size_t g = b + 1;
			while (g < add->n && strcmp(it[g].s, it[b].s) == 0) {
				if (it[g].at < *dup)
					*dup = it[g].at;
				g++;
			}
			b = g;
		} else {
			const char *cur = (*set)[a++];
			out[o++] = cur;
			while (b < add->n && strcmp(it[b].s, cur) == 0) {
				if (it[b].at < *dup)
					*dup = it[b].at;
				b++;
			}
		}
	}
	keel_free(it);
	keel_free(*set);
	*set = out;
	*n = o;
	return 0;
}

/* Set minus every string of del. *missing: the first of del (by position) that is not there
 * when its turn comes (never there, or removed by an earlier one), else SIZE_MAX. */
static int set_remove(const char ***set, size_t *n, const struct keel_kv_strs *del, size_t *missing)
{
	*missing = SIZE_MAX;
	struct item *it;
	if (sorted_items(del, &it) < 0)
		return -ENOMEM;
	size_t o = 0, b = 0;
	for (size_t a = 0; a < *n; a++) {
		const char *cur = (*set)[a];
		while (b < del->n && strcmp(it[b].s, cur) < 0) {
			if (it[b].at < *missing) /* not in the set at all */
				*missing = it[b].at;
			b++;
		}
		if (b < del->n && strcmp(it[b].s, cur) == 0) {
			b++; /* removed by its first occurrence; later ones find it gone */
			while (b < del->n && strcmp(it[b].s, cur) == 0) {
				if (it[b].at < *missing)
					*missing = it[b].at;
				b++;
			}
			continue;
		}
		(*set)[o++] = cur;
	}
	for (; b < del->n; b++)
		if (it[b].at < *missing)
			*missing = it[b].at;
	keel_free(it);
	*n = o;
	return 0;
}

/* dst (empty) = copies of v[0, n), as a non-nil list. */
static int strs_from(struct keel_kv_strs *dst, const char *const *v, size_t n)
{
	*dst = (struct keel_kv_strs){.set = true};
	if (!n)
		return 0;
	dst->v = keel_calloc(n, sizeof(*dst->v));
	if (!dst->v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (!(dst->v[i] = keel_strdup(v[i]))) {
			dst->n = i;
			return -ENOMEM;
		}
	}
	dst->n = n;
	return 0;
}

static int strs_copy(struct keel_kv_strs *dst, const struct keel_kv_strs *src)
{
	int r = strs_from(dst, (const char *const *)src->v, src->n);
	dst->set = src->set;
	return r;
}

static bool strs_equal(const struct keel_kv_strs *a, const struct keel_kv_strs *b)
{
	if (a->set != b->set || a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i], b->v[i]) != 0)
			return false;
	return true;
}

static bool perms_equal(const struct keel_kv_perms *a, const struct keel_kv_perms *b)
{
	return strs_equal(&a->read, &b->read) && strs_equal(&a->write, &b->write);
}

/* ---- merges (User.merge, Role.merge) ------------------------------------------------------ */

/* 0 with *out made, KEEL_KV_FAILED with the 409 in ans, -ENOMEM (out half made: free it). */
static int user_merge(const struct keel_kv_user *old, const struct keel_kv_user *nu, struct keel_kv_user *out,
		      struct keel_kv_auth_answer *ans)
{
	*out = (struct keel_kv_user){0};
	if (strcmp(old->user, nu->user) != 0) {
		if (keel_kv_auth_error(ans, 409, false, "Merging user data with conflicting usernames: %s %s", old->user,
				       nu->user) < 0)
			return -ENOMEM;
		return KEEL_KV_FAILED;
	}
	out->user = keel_strdup(old->user);
	out->password = keel_strdup(*nu->password ? nu->password : old->password);
	if (!out->user || !out->password)
		return -ENOMEM;
	const char **set;
	size_t n, bad;
	if (sorted_unique(&old->roles, &set, &n) < 0)
		return -ENOMEM;
	int r = set_add(&set, &n, &nu->grant, &bad);
	if (r == 0 && bad != SIZE_MAX) {
		r = keel_kv_auth_error(ans, 409, true, "Granting duplicate role %s for user %s", nu->grant.v[bad], nu->user);
		r = r < 0 ? r : KEEL_KV_FAILED;
	}
	if (r == 0)
		r = set_remove(&set, &n, &nu->revoke, &bad);
	if (r == 0 && bad != SIZE_MAX) {
		r = keel_kv_auth_error(ans, 409, true, "Revoking ungranted role %s for user %s", nu->revoke.v[bad],
				       nu->user);
		r = r < 0 ? r : KEEL_KV_FAILED;
	}
	if (r == 0)
		r = strs_from(&out->roles, set, n);
	keel_free(set);
	return r;
}

static int perms_grant(const struct keel_kv_strs *cur, const struct keel_kv_strs *add, const char *what,
		       struct keel_kv_strs *out, struct keel_kv_auth_answer *ans)
{
	const char **set;
	size_t n, bad;
	if (sorted_unique(cur, &set, &n) < 0)
		return -ENOMEM;
	int r = set_add(&set, &n, add, &bad);
	if (r == 0 && bad != SIZE_MAX) {
		r = keel_kv_auth_error(ans, 409, false, "Granting duplicate %s permission %s", what, add->v[bad]);
		r = r < 0 ? r : KEEL_KV_FAILED;
	}
	if (r == 0)
		r = strs_from(out, set, n);
	keel_free(set);
	return r;
}

static int perms_revoke(const struct keel_kv_strs *cur, const struct keel_kv_strs *del, struct keel_kv_strs *out)
{
	const char **set;
	size_t n, missing; /* revoking what was never granted is only logged by etcd */
	if (sorted_unique(cur, &set, &n) < 0)
		return -ENOMEM;
	int r = set_remove(&set, &n, del, &missing);
	if (r == 0)
		r = strs_from(out, set, n);
	keel_free(set);
	return r;
}

static int role_merge(const struct keel_kv_role *old, const struct keel_kv_role *nu, struct keel_kv_role *out,
		      struct keel_kv_auth_answer *ans)
{
	*out = (struct keel_kv_role){0};
	if (strcmp(old->role, nu->role) != 0) {
		if (keel_kv_auth_error(ans, 409, false, "Merging role with conflicting names: %s %s", old->role,
				       nu->role) < 0)
			return -ENOMEM;
		return KEEL_KV_FAILED;
	}
	if (!(out->role = keel_strdup(old->role)))
		return -ENOMEM;
	struct keel_kv_perms granted = {0};
	int r;
	if (nu->has_grant) {
		r = perms_grant(&old->perms.read, &nu->grant.read, "read", &granted.read, ans);
		if (r == 0)
			r = perms_grant(&old->perms.write, &nu->grant.write, "write", &granted.write, ans);
	} else {
		r = strs_copy(&granted.read, &old->perms.read);
		if (r == 0)
			r = strs_copy(&granted.write, &old->perms.write);
	}
	if (r == 0 && nu->has_revoke) {
		r = perms_revoke(&granted.read, &nu->revoke.read, &out->perms.read);
		if (r == 0)
			r = perms_revoke(&granted.write, &nu->revoke.write, &out->perms.write);
	} else if (r == 0) {
		out->perms = granted;
		granted = (struct keel_kv_perms){0};
	}
	struct keel_kv_role tmp = {.perms = granted};
	keel_kv_role_free(&tmp);
	return r;
}

static bool user_equal(const struct keel_kv_user *a, const struct keel_kv_user *b)
{
	return strcmp(a->user, b->user) == 0 && strcmp(a->password, b->password) == 0 &&
	       strs_equal(&a->roles, &b->roles) && strs_equal(&a->grant, &b->grant) &&
	       strs_equal(&a->revoke, &b->revoke);
}

static bool role_equal(const struct keel_kv_role *a, const struct keel_kv_role *b)
{
	return strcmp(a->role, b->role) == 0 && perms_equal(&a->perms, &b->perms) && a->has_grant == b->has_grant &&
	       (!a->has_grant || perms_equal(&a->grant, &b->grant)) && a->has_revoke == b->has_revoke &&
	       (!a->has_revoke || perms_equal(&a->revoke, &b->revoke));
}

/* ---- the store, as etcd's auth store drives it --------------------------------------------- */

/* One request to the store. 0, KEEL_KV_FAILED with *kerr, or -EINVAL. */
static int store_do(struct keel_kv_store *s, enum keel_kv_method m, const char *path, size_t path_len,
		    const char *value, size_t value_len, bool dir, int prev_exist, struct keel_kv_error *kerr)
{
	struct keel_kv_req req = {
		.method = m, .path = path, .path_len = path_len, .value = value ? value : "", .value_len = value_len,
		.prev_value = "", .prev_exist = prev_exist, .dir = dir,
	};
	struct keel_kv_event *ev = NULL;
	keel_kv_error_clear(kerr);
	int r = RETRY(keel_kv_store_apply(s, &req, &ev, kerr));
	keel_kv_event_unref(ev);
	return r;
}

/* ensureAuthDirectories: etcd makes /2, /2/users, /2/roles and /2/enabled ("false") before its
 * first auth write in each process, ignoring "already exists". Here: whenever /2/enabled is
 * missing, which is the same thing for the index (creates that fail change nothing). */
static void ensure_dirs(struct keel_kv_store *s)
{
	struct keel_kv_peek pk;
	if (RETRY(keel_kv_store_peek(s, "/2/enabled", strlen("/2/enabled"), false, &pk)) == 0)
		return;
	struct keel_kv_error kerr = {0};
	static const char *const dirs[] = {"/2", "/2/users/", "/2/roles/"};
	for (size_t i = 0; i < 3; i++)
		store_do(s, KEEL_KV_PUT, dirs[i], strlen(dirs[i]), NULL, 0, true, 0, &kerr);
	store_do(s, KEEL_KV_PUT, "/2/enabled", strlen("/2/enabled"), "false", 5, false, 0, &kerr);
	keel_kv_error_clear(&kerr);
}

/* A store failure etcd passes on as its v2 error (writeError → Error.WriteTo). */
static int store_error_answer(struct keel_kv_auth_answer *a, const struct keel_kv_error *kerr)
{
	keel_buf_reset(&a->body);
	a->status = keel_kv_error_status(kerr->code);
	a->store_error = true;
	a->etcd_index = kerr->index;
	return keel_kv_error_json(kerr, &a->body);
}

/* A 200/201 with the JSON of a user (password dropped, as the handler does) or a role. */
static int user_answer(struct keel_kv_auth_answer *a, int status, const struct keel_kv_user *u)
{
	struct keel_kv_user shown = *u;
	shown.password = "";
	keel_buf_reset(&a->body);
	a->status = status;
	a->created = status == 201;
	int r = keel_kv_user_json(&shown, &a->body);
	return r < 0 ? r : keel_buf_putc(&a->body, '\n');
}

static int role_answer(struct keel_kv_auth_answer *a, int status, const struct keel_kv_role *role)
{
	keel_buf_reset(&a->body);
	a->status = status;
	int r = keel_kv_role_json(role, &a->body);
	return r < 0 ? r : keel_buf_putc(&a->body, '\n');
}

static void empty_answer(struct keel_kv_auth_answer *a)
{
	keel_buf_reset(&a->body);
	a->status = 200;
}

static int path_of(struct keel_buf *b, const char *dir, const char *name, size_t len)
{
	keel_buf_reset(b);
	int r = keel_buf_puts(b, dir);
	return r < 0 ? r : keel_buf_append(b, name, len);
}

/* Write a user's or role's JSON to /2/<dir>/<name> with prevExist (create: false, update: true). */
static int put_json(struct keel_kv_store *s, const char *dir, const char *name, const struct keel_buf *json,
		    bool update, struct keel_kv_error *kerr)
{
	struct keel_buf p = KEEL_BUF_INIT;
	RETRY(path_of(&p, dir, name, strlen(name)));
	ensure_dirs(s);
	int r = store_do(s, KEEL_KV_PUT, p.data, p.len, json->data, json->len, false, update, kerr);
	keel_buf_free(&p);
	return r;
}

static int user_json_fresh(const struct keel_kv_user *u, struct keel_buf *b)
{
	keel_buf_reset(b);
	return keel_kv_user_json(u, b);
}

static int role_json_fresh(const struct keel_kv_role *r, struct keel_buf *b)
{
	keel_buf_reset(b);
	return keel_kv_role_json(r, b);
}

/* CreateUser (created: whether the handler says 201, which only CreateOrUpdateUser does). */
static void create_user(struct keel_kv_store *s, struct keel_kv_user *u, bool created, struct keel_kv_auth_answer *a)
{
	if (strcmp(u->user, KEEL_KV_AUTH_ROOT) == 0)
		RETRY(keel_kv_user_attach_root(u));
	if (!*u->password) {
		RETRY(keel_kv_auth_error(a, 400, false, "Cannot create user %s with an empty password", u->user));
		return;
	}
	struct keel_buf json = KEEL_BUF_INIT;
	struct keel_kv_error kerr = {0};
	RETRY(user_json_fresh(u, &json));
	int r = put_json(s, "/2/users/", u->user, &json, false, &kerr);
	if (r == KEEL_KV_FAILED && kerr.code == KEEL_KV_ECODE_NODE_EXIST)
		RETRY(keel_kv_auth_error(a, 409, false, "User %s already exists.", u->user));
	else if (r == KEEL_KV_FAILED)
		RETRY(store_error_answer(a, &kerr));
	else
		RETRY(user_answer(a, created ? 201 : 200, u));
	keel_kv_error_clear(&kerr);
	keel_buf_free(&json);
}

/* UpdateUser: a quorum read of the old one, the merge, and an update unless nothing changed. */
static void update_user(struct keel_kv_store *s, const struct keel_kv_user *nu, struct keel_kv_auth_answer *a)
{
	struct keel_kv_user old, merged = {0};
	int r = RETRY(keel_kv_auth_get_user(s, nu->user, strlen(nu->user), true, &old));
	if (r == KEEL_KV_FAILED) {
		/* getUser's message: UpdateUser's own "doesn't exist" never shows (the error it
		 * tests for is no longer a store error by then). */
		RETRY(keel_kv_auth_error(a, 404, false, "User %s does not exist.", nu->user));
		return;
	}
	if (r < 0) {
		RETRY(keel_kv_auth_http_error(a, 500, "Internal Server Error"));
		return;
	}
	while ((r = user_merge(&old, nu, &merged, a)) == -ENOMEM)
		keel_kv_user_free(&merged);
	if (r == 0 && user_equal(&old, &merged)) {
		RETRY(keel_kv_auth_error(a, 400, false, "User not updated. Use grant/revoke/password to update the user."));
	} else if (r == 0) {
		struct keel_buf json = KEEL_BUF_INIT;
		struct keel_kv_error kerr = {0};
		RETRY(user_json_fresh(&merged, &json));
		if (put_json(s, "/2/users/", merged.user, &json, true, &kerr) == KEEL_KV_FAILED)
			RETRY(store_error_answer(a, &kerr));
		else
			RETRY(user_answer(a, 200, &merged));
		keel_kv_error_clear(&kerr);
		keel_buf_free(&json);
	}
	keel_kv_user_free(&old);
	keel_kv_user_free(&merged);
}

static void create_role(struct keel_kv_store *s, const struct keel_kv_role *role, struct keel_kv_auth_answer *a)
{
	struct keel_buf json = KEEL_BUF_INIT;
	struct keel_kv_error kerr = {0};
	RETRY(role_json_fresh(role, &json));
	int r = put_json(s, "/2/roles/", role->role, &json, false, &kerr);
	if (r == KEEL_KV_FAILED && kerr.code == KEEL_KV_ECODE_NODE_EXIST)
		RETRY(keel_kv_auth_error(a, 409, false, "Role %s already exists.", role->role));
	else if (r == KEEL_KV_FAILED)
		RETRY(store_error_answer(a, &kerr));
	else
		RETRY(role_answer(a, 201, role));
	keel_kv_error_clear(&kerr);
	keel_buf_free(&json);
}

static void update_role(struct keel_kv_store *s, const struct keel_kv_role *nu, struct keel_kv_auth_answer *a)
{
	struct keel_kv_role old, merged = {0};
	int r = RETRY(keel_kv_auth_get_role(s, nu->role, strlen(nu->role), true, &old));
	if (r == KEEL_KV_FAILED) {
		RETRY(keel_kv_auth_error(a, 404, false, "Role %s does not exist.", nu->role));
		return;
	}
	if (r < 0) {
		RETRY(keel_kv_auth_http_error(a, 500, "Internal Server Error"));
		return;
	}
	while ((r = role_merge(&old, nu, &merged, a)) == -ENOMEM)
		keel_kv_role_free(&merged);
	if (r == 0 && role_equal(&old, &merged)) {
		RETRY(keel_kv_auth_error(a, 400, false, "Role not updated. Use grant/revoke to update the role."));
	} else if (r == 0) {
		struct keel_buf json = KEEL_BUF_INIT;
		struct keel_kv_error kerr = {0};
		RETRY(role_json_fresh(&merged, &json));
		if (put_json(s, "/2/roles/", merged.role, &json, true, &kerr) == KEEL_KV_FAILED)
			RETRY(store_error_answer(a, &kerr));
		else
			RETRY(role_answer(a, 200, &merged));
		keel_kv_error_clear(&kerr);
		keel_buf_free(&json);
	}
	keel_kv_role_free(&old);
	keel_kv_role_free(&merged);
}

/* deleteResource: a Delete (prevExist, which etcd sets, means nothing to a delete). */
static void delete_node(struct keel_kv_store *s, bool user, const char *name, size_t len,
			struct keel_kv_auth_answer *a)
{
	struct keel_buf p = KEEL_BUF_INIT;
	struct keel_kv_error kerr = {0};
	RETRY(path_of(&p, user ? "/2/users/" : "/2/roles/", name, len));
	ensure_dirs(s);
	int r = store_do(s, KEEL_KV_DELETE, p.data, p.len, NULL, 0, false, KEEL_KV_PREV_EXIST_UNSET, &kerr);
	keel_buf_free(&p);
	if (r == KEEL_KV_FAILED && kerr.code == KEEL_KV_ECODE_KEY_NOT_FOUND) {
		/* etcd's messages differ by a word and a full stop. */
		if (user)
			RETRY(keel_kv_auth_error(a, 404, false, "User %.*s does not exist", (int)len, name));
		else
			RETRY(keel_kv_auth_error(a, 404, false, "Role %.*s doesn't exist.", (int)len, name));
	} else if (r == KEEL_KV_FAILED) {
		RETRY(store_error_answer(a, &kerr));
	} else {
		empty_answer(a);
	}
	keel_kv_error_clear(&kerr);
}

static void set_enabled(struct keel_kv_store *s, bool on, struct keel_kv_auth_answer *a)
{
	struct keel_kv_error kerr = {0};
	ensure_dirs(s);
	const char *v = on ? "true" : "false";
	if (store_do(s, KEEL_KV_PUT, "/2/enabled", strlen("/2/enabled"), v, strlen(v), false, 1, &kerr) == KEEL_KV_FAILED)
		RETRY(store_error_answer(a, &kerr));
	else
		empty_answer(a);
	keel_kv_error_clear(&kerr);
}

/* EnableAuth after its "already enabled" check (the handler's): a root user must exist; the
 * guest role is made (read and write everything) when missing. */
static void enable(struct keel_kv_store *s, struct keel_kv_auth_answer *a)
{
	struct keel_kv_user root;
	int r = RETRY(keel_kv_auth_get_user(s, KEEL_KV_AUTH_ROOT, strlen(KEEL_KV_AUTH_ROOT), true, &root));
	keel_kv_user_free(&root);
	if (r != 0) {
		RETRY(keel_kv_auth_error(a, 409, false, "No root user available, please create one"));
		return;
	}
	struct keel_kv_role guest;
	r = RETRY(keel_kv_auth_get_role(s, KEEL_KV_AUTH_GUEST, strlen(KEEL_KV_AUTH_GUEST), true, &guest));
	keel_kv_role_free(&guest);
	if (r != 0) {
		static const char def[] = "{\"role\":\"guest\",\"permissions\":{\"kv\":{\"read\":[\"/*\"],\"write\":[\"/*\"]}}}";
		RETRY(keel_kv_role_parse(def, sizeof(def) - 1, &guest));
		create_role(s, &guest, a);
		keel_kv_role_free(&guest);
		if (a->status != 201)
			return;
	}
	set_enabled(s, true, a);
}

int keel_kv_auth_apply(struct keel_kv_store *s, const void *cmd, size_t len, struct keel_kv_auth_answer *ans)
{
	const unsigned char *p = cmd;
	if (!s || !ans || len < 2 || !p || p[0] != CMD_VERSION || p[1] < KEEL_KV_AUTH_USER_CREATE ||
	    p[1] > KEEL_KV_AUTH_DISABLE)
		return -KEEL_ECORRUPT;
	enum keel_kv_auth_op op = p[1];
	const char *arg = (const char *)p + 2;
	size_t arg_len = len - 2;
	keel_buf_reset(&ans->body);
	ans->status = 500;
	ans->created = ans->store_error = false;
	ans->etcd_index = 0;
	int r = 0;
	switch (op) {
	case KEEL_KV_AUTH_USER_CREATE:
	case KEEL_KV_AUTH_USER_PUT:
	case KEEL_KV_AUTH_USER_UPDATE: {
		struct keel_kv_user u;
		while ((r = keel_kv_user_parse(arg, arg_len, &u)) == -ENOMEM)
			keel_kv_user_free(&u);
		if (r == 0 && op == KEEL_KV_AUTH_USER_CREATE) {
			create_user(s, &u, false, ans);
		} else if (r == 0 && op == KEEL_KV_AUTH_USER_UPDATE) {
			update_user(s, &u, ans);
		} else if (r == 0) {
			/* CreateOrUpdateUser: a quorum read decides. */
			struct keel_kv_user old;
			int g = RETRY(keel_kv_auth_get_user(s, u.user, strlen(u.user), true, &old));
			keel_kv_user_free(&old);
			if (g == 0)
				update_user(s, &u, ans);
			else
				create_user(s, &u, true, ans);
		}
		keel_kv_user_free(&u);
		break;
	}
	case KEEL_KV_AUTH_ROLE_CREATE:
	case KEEL_KV_AUTH_ROLE_UPDATE: {
		struct keel_kv_role role;
		while ((r = keel_kv_role_parse(arg, arg_len, &role)) == -ENOMEM)
			keel_kv_role_free(&role);
		if (r == 0 && op == KEEL_KV_AUTH_ROLE_CREATE)
			create_role(s, &role, ans);
		else if (r == 0)
			update_role(s, &role, ans);
		keel_kv_role_free(&role);
		break;
	}
	case KEEL_KV_AUTH_USER_DELETE:
	case KEEL_KV_AUTH_ROLE_DELETE:
		delete_node(s, op == KEEL_KV_AUTH_USER_DELETE, arg, arg_len, ans);
		break;
	case KEEL_KV_AUTH_ENABLE:
		enable(s, ans);
		break;
	case KEEL_KV_AUTH_DISABLE:
		set_enabled(s, false, ans);
		break;
	}
	return r < 0 ? -KEEL_ECORRUPT : 0;
}
