/* etcd v2's users and roles as data: Go-compatible JSON in and out, permission matching, Go's
 * fmt error forms, and reading the /2 tree (auth.h). The commands and their apply are in
 * auth_apply.c. */
#include "kv/auth.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/jw.h"
#include "base/mem.h"
#include "base/str.h"

/* ---- string lists ------------------------------------------------------------------------- */

static void strs_free(struct keel_kv_strs *l)
{
	for (size_t i = 0; i < l->n; i++)
		keel_free(l->v[i]);
	keel_free(l->v);
	*l = (struct keel_kv_strs){0};
}

static int strs_push(struct keel_kv_strs *l, const char *s)
{
	char *c = keel_strdup(s);
	char **nv = c ? keel_realloc(l->v, (l->n + 1) * sizeof(*l->v)) : NULL;
	if (!nv) {
		keel_free(c);
		return -ENOMEM;
	}
	l->v = nv;
	l->v[l->n++] = c;
	l->set = true;
	return 0;
}

static void perms_free(struct keel_kv_perms *p)
{
	strs_free(&p->read);
	strs_free(&p->write);
}

void keel_kv_user_free(struct keel_kv_user *u)
{
	if (!u)
		return;
	keel_free(u->user);
	keel_free(u->password);
	strs_free(&u->roles);
	strs_free(&u->grant);
	strs_free(&u->revoke);
	*u = (struct keel_kv_user){0};
}

void keel_kv_role_free(struct keel_kv_role *r)
{
	if (!r)
		return;
	keel_free(r->role);
	perms_free(&r->perms);
	perms_free(&r->grant);
	perms_free(&r->revoke);
	*r = (struct keel_kv_role){0};
}

/* ---- decoding, as Go's encoding/json into etcd's structs ---------------------------------- */

/* Length of the valid UTF-8 sequence at p (Go's utf8.DecodeRune: no overlong forms, no
 * surrogates, nothing past U+10FFFF), or 0 when the byte there starts none. */
static size_t utf8_valid_len(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];
	if (c < 0x80)
		return 1;
	size_t len;
	unsigned char lo = 0x80, hi = 0xBF;
	if (c >= 0xC2 && c <= 0xDF) {
		len = 2;
	} else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	} else {
		return 0;
	}
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (p[i] < 0x80 || p[i] > 0xBF)
			return 0;
	return len;
}

/* Go decodes invalid UTF-8 inside strings as U+FFFD, one per bad byte; outside strings any
 * non-ASCII byte is a syntax error either way. So replacing every bad byte up front gives
 * jansson (which refuses invalid UTF-8) Go's view of the text. *ret is data itself when it is
 * valid, else an allocated copy (*owned set). 0 or -ENOMEM. */
static int sanitize_utf8(const char *data, size_t len, const char **ret, size_t *ret_len, char **owned)
{
	const unsigned char *p = (const unsigned char *)data;
	size_t i = 0, l;
	while (i < len && (l = utf8_valid_len(p + i, len - i)) > 0)
		i += l;
	*owned = NULL;
	if (i == len) {
		*ret = data;
		*ret_len = len;
		return 0;
	}
	struct keel_buf b = KEEL_BUF_INIT;
	for (i = 0; i < len;) {
		l = utf8_valid_len(p + i, len - i);
		int r = l ? keel_buf_append(&b, p + i, l) : keel_buf_append(&b, "\xEF\xBF\xBD", 3);
		if (r < 0) {
			keel_buf_free(&b);
			return -ENOMEM;
		}
		i += l ? l : 1;
	}
	*ret_len = b.len;
	*owned = keel_buf_steal(&b, NULL);
	*ret = *owned;
	return *owned ? 0 : -ENOMEM;
}

/* Go's case-insensitive field match (its foldFunc for names with 's' and 'k': 'ſ' U+017F folds
 * to s, the Kelvin sign U+212A to k). `field` is lower-case ASCII. */
static bool field_is(const char *key, const char *field)
{
	const unsigned char *k = (const unsigned char *)key;
	for (const char *f = field; *f; f++) {
		if (*k == 0)
			return false;
		if ((*k | 0x20) == (unsigned char)*f && ((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z'))) {
			k++;
		} else if (*f == 's' && k[0] == 0xC5 && k[1] == 0xBF) {
			k += 2;
		} else if (*f == 'k' && k[0] == 0xE2 && k[1] == 0x84 && k[2] == 0xAA) {
			k += 3;
		} else if (*k == (unsigned char)*f) {
			k++;
		} else {
			return false;
		}
	}
	return *k == 0;
}

/* A string field: null leaves it as it is. */
static int dec_str(json_t *v, char **dst)
{
	if (json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return -EINVAL;
	char *c = keel_strdup(json_string_value(v));
	if (!c)
		return -ENOMEM;
	keel_free(*dst);
	*dst = c;
	return 0;
}

/* A []string: null makes it nil; an array replaces it (null elements are ""). */
static int dec_strs(json_t *v, struct keel_kv_strs *dst)
{
	if (json_is_null(v)) {
		strs_free(dst);
		return 0;
	}
	if (!json_is_array(v))
		return -EINVAL;
	strs_free(dst);
	dst->set = true;
	size_t i;
	json_t *e;
	json_array_foreach(v, i, e) {
		if (!json_is_null(e) && !json_is_string(e))
			return -EINVAL;
		int r = strs_push(dst, json_is_null(e) ? "" : json_string_value(e));
		if (r < 0)
			return r;
	}
	return 0;
}

/* A struct field: null leaves it alone, an object is merged in member by member. */
static int dec_rw(json_t *v, struct keel_kv_perms *p)
{
	if (json_is_null(v))
		return 0;
	if (!json_is_object(v))
		return -EINVAL;
	const char *k;
	json_t *m;
	json_object_foreach(v, k, m) {
		int r = field_is(k, "read") ? dec_strs(m, &p->read) : field_is(k, "write") ? dec_strs(m, &p->write) : 0;
		if (r < 0)
			return r;
	}
	return 0;
}

static int dec_perms(json_t *v, struct keel_kv_perms *p)
{
	if (json_is_null(v))
		return 0;
	if (!json_is_object(v))
		return -EINVAL;
	const char *k;
	json_t *m;
	json_object_foreach(v, k, m) {
		if (field_is(k, "kv")) {
			int r = dec_rw(m, p);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* A *Permissions: null makes it nil; an object allocates it if needed and merges in. */
static int dec_perms_ptr(json_t *v, bool *has, struct keel_kv_perms *p)
{
	if (json_is_null(v)) {
		perms_free(p);
		*has = false;
		return 0;
	}
	if (!json_is_object(v))
		return -EINVAL;
	*has = true;
	return dec_perms(v, p);
}

/* The first JSON value of data, as Go's Decoder reads it. NULL top level: *ret NULL. */
static int load_first(const char *data, size_t len, json_t **ret)
{
	const char *text;
	size_t tlen;
	char *owned;
	if (sanitize_utf8(data ? data : "", len, &text, &tlen, &owned) < 0)
		return -ENOMEM;
	json_error_t jerr;
	json_t *j = json_loadb(text, tlen, JSON_DECODE_ANY | JSON_DISABLE_EOF_CHECK, &jerr);
	keel_free(owned);
	if (!j)
		return json_error_code(&jerr) == json_error_out_of_memory ? -ENOMEM : -EINVAL;
	if (json_is_null(j)) {
		json_decref(j);
		*ret = NULL;
		return 0;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		return -EINVAL;
	}
	*ret = j;
	return 0;
}

static int fill_empty(char **s)
{
	if (*s)
		return 0;
	*s = keel_strdup("");
	return *s ? 0 : -ENOMEM;
}

int keel_kv_user_parse(const char *data, size_t len, struct keel_kv_user *ret)
{
	*ret = (struct keel_kv_user){0};
	json_t *j = NULL;
	int r = load_first(data, len, &j);
	const char *k;
	json_t *m;
	json_object_foreach(j, k, m) {
		if (r < 0)
			break;
		if (field_is(k, "user"))
			r = dec_str(m, &ret->user);
		else if (field_is(k, "password"))
			r = dec_str(m, &ret->password);
		else if (field_is(k, "roles"))
			r = dec_strs(m, &ret->roles);
		else if (field_is(k, "grant"))
			r = dec_strs(m, &ret->grant);
		else if (field_is(k, "revoke"))
			r = dec_strs(m, &ret->revoke);
	}
	json_decref(j);
	if (r == 0)
		r = fill_empty(&ret->user);
	if (r == 0)
		r = fill_empty(&ret->password);
	return r;
}

int keel_kv_role_parse(const char *data, size_t len, struct keel_kv_role *ret)
{
	*ret = (struct keel_kv_role){0};
	json_t *j = NULL;
	int r = load_first(data, len, &j);
	const char *k;
	json_t *m;
	json_object_foreach(j, k, m) {
		if (r < 0)
			break;
		if (field_is(k, "role"))
			r = dec_str(m, &ret->role);
		else if (field_is(k, "permissions"))
			r = dec_perms(m, &ret->perms);
		else if (field_is(k, "grant"))
			r = dec_perms_ptr(m, &ret->has_grant, &ret->grant);
		else if (field_is(k, "revoke"))
			r = dec_perms_ptr(m, &ret->has_revoke, &ret->revoke);
	}
	json_decref(j);
	if (r == 0)
		r = fill_empty(&ret->role);
	return r;
}

/* ---- encoding, as Go's json.Marshal --------------------------------------------------------- */

static void enc_strs(struct keel_jw *w, const char *key, const struct keel_kv_strs *l)
{
	keel_jw_key(w, key);
	if (!l->set) {
		keel_jw_null(w);
		return;
	}
	keel_jw_arr_begin(w);
	for (size_t i = 0; i < l->n; i++)
		keel_jw_str(w, l->v[i]);
	keel_jw_arr_end(w);
}

static void enc_perms(struct keel_jw *w, const char *key, const struct keel_kv_perms *p)
{
	keel_jw_key(w, key);
	keel_jw_obj_begin(w);
	keel_jw_key(w, "kv");
	keel_jw_obj_begin(w);
	enc_strs(w, "read", &p->read);
	enc_strs(w, "write", &p->write);
	keel_jw_obj_end(w);
	keel_jw_obj_end(w);
}

int keel_kv_user_json(const struct keel_kv_user *u, struct keel_buf *out)
{
	struct keel_jw w;
	keel_jw_init(&w, out, KEEL_JW_GO_ESCAPE);
	keel_jw_obj_begin(&w);
	keel_jw_kstr(&w, "user", u->user ? u->user : "");
	if (u->password && *u->password)
		keel_jw_kstr(&w, "password", u->password);
	enc_strs(&w, "roles", &u->roles);
	if (u->grant.n)
		enc_strs(&w, "grant", &u->grant);
	if (u->revoke.n)
		enc_strs(&w, "revoke", &u->revoke);
	keel_jw_obj_end(&w);
	return keel_jw_finish(&w);
}

int keel_kv_role_json(const struct keel_kv_role *r, struct keel_buf *out)
{
	struct keel_jw w;
	keel_jw_init(&w, out, KEEL_JW_GO_ESCAPE);
	keel_jw_obj_begin(&w);
	keel_jw_kstr(&w, "role", r->role ? r->role : "");
	enc_perms(&w, "permissions", &r->perms);
	if (r->has_grant)
		enc_perms(&w, "grant", &r->grant);
	if (r->has_revoke)
		enc_perms(&w, "revoke", &r->revoke);
	keel_jw_obj_end(&w);
	return keel_jw_finish(&w);
}

int keel_kv_role_root(struct keel_kv_role *ret)
{
	static const char root[] = "{\"role\":\"root\",\"permissions\":{\"kv\":{\"read\":[\"/*\"],\"write\":[\"/*\"]}}}";
	int r = keel_kv_role_parse(root, sizeof(root) - 1, ret);
	if (r < 0)
		keel_kv_role_free(ret);
	return r == -EINVAL ? -ENOMEM : r; /* the constant always parses */
}

/* ---- matching ---------------------------------------------------------------------------- */

/* etcd's simpleMatch and prefixMatch. An empty pattern makes etcd panic (pattern[len-1]); here
 * it matches nothing. */
static bool pattern_match(const char *pat, const char *key, size_t klen, bool recursive)
{
	size_t plen = strlen(pat);
	if (plen == 0)
		return false;
	if (pat[plen - 1] == '*')
		return klen >= plen - 1 && memcmp(key, pat, plen - 1) == 0;
	return !recursive && klen == plen && memcmp(key, pat, plen) == 0;
}

bool keel_kv_role_has_access(const struct keel_kv_role *r, const char *key, size_t key_len, bool write,
			     bool recursive)
{
	if (r->role && strcmp(r->role, KEEL_KV_AUTH_ROOT) == 0)
		return true;
	const struct keel_kv_strs *l = write ? &r->perms.write : &r->perms.read;
	for (size_t i = 0; i < l->n; i++)
		if (pattern_match(l->v[i], key, key_len, recursive))
			return true;
	return false;
}

bool keel_kv_user_has_role(const struct keel_kv_user *u, const char *role)
{
	for (size_t i = 0; i < u->roles.n; i++)
		if (strcmp(u->roles.v[i], role) == 0)
			return true;
	return false;
}

int keel_kv_user_attach_root(struct keel_kv_user *u)
{
	if (keel_kv_user_has_role(u, KEEL_KV_AUTH_ROOT))
		return 0;
	return strs_push(&u->roles, KEEL_KV_AUTH_ROOT);
}

/* ---- the /2 tree ---------------------------------------------------------------------------- */

/* "/2/<dir>/" + name, which the store cleans as etcd's path.Join does. */
static int auth_path(struct keel_buf *b, const char *dir, const char *name, size_t name_len)
{
	int r = keel_buf_printf(b, "/2/%s/", dir);
	return r < 0 ? r : keel_buf_append(b, name, name_len);
}

bool keel_kv_auth_enabled(struct keel_kv_store *s, bool count)
{
	struct keel_kv_peek pk;
	if (keel_kv_store_peek(s, "/2/enabled", strlen("/2/enabled"), count, &pk) != 0 || pk.dir)
		return false;
	/* json.Unmarshal into a bool: "true" with any JSON whitespace around it. */
	const char *v = pk.value;
	size_t n = pk.value_len;
	while (n && strchr(" \t\r\n", v[0]))
		v++, n--;
	while (n && strchr(" \t\r\n", v[n - 1]))
		n--;
	return n == 4 && memcmp(v, "true", 4) == 0;
}

static int get_node(struct keel_kv_store *s, const char *dir, const char *name, size_t name_len, bool count,
		    struct keel_kv_peek *pk)
{
	struct keel_buf p = KEEL_BUF_INIT;
	int r = auth_path(&p, dir, name, name_len);
	if (r == 0)
		r = keel_kv_store_peek(s, p.data, p.len, count, pk);
	keel_buf_free(&p);
	if (r == 0 && pk->dir)
		r = -EINVAL; /* etcd dereferences the nil value of a directory and panics */
	return r;
}

int keel_kv_auth_get_user(struct keel_kv_store *s, const char *name, size_t name_len, bool count,
			  struct keel_kv_user *ret)
{
	*ret = (struct keel_kv_user){0};
	struct keel_kv_peek pk;
	int r = get_node(s, "users", name, name_len, count, &pk);
	if (r != 0)
		return r;
	r = keel_kv_user_parse(pk.value, pk.value_len, ret);
	if (r == 0 && strcmp(ret->user, KEEL_KV_AUTH_ROOT) == 0)
		r = keel_kv_user_attach_root(ret);
	if (r < 0)
		keel_kv_user_free(ret);
	return r;
}

int keel_kv_auth_get_role(struct keel_kv_store *s, const char *name, size_t name_len, bool count,
			  struct keel_kv_role *ret)
{
	*ret = (struct keel_kv_role){0};
	if (name_len == strlen(KEEL_KV_AUTH_ROOT) && memcmp(name, KEEL_KV_AUTH_ROOT, name_len) == 0)
		return keel_kv_role_root(ret);
	struct keel_kv_peek pk;
	int r = get_node(s, "roles", name, name_len, count, &pk);
	if (r != 0)
		return r;
	r = keel_kv_role_parse(pk.value, pk.value_len, ret);
	if (r < 0)
		keel_kv_role_free(ret);
	return r;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int keel_kv_auth_list(struct keel_kv_store *s, bool roles, char ***ret)
{
	char **v = NULL;
	int r = 0;
	if (roles && (r = keel_strv_push(&v, KEEL_KV_AUTH_ROOT)) < 0)
		return r;
	const char *dir = roles ? "/2/roles" : "/2/users";
	struct keel_kv_event *ev = NULL;
	struct keel_kv_error kerr = {0};
	r = keel_kv_store_get(s, dir, strlen(dir), false, false, 0, &ev, &kerr);
	keel_kv_error_clear(&kerr);
	if (r == KEEL_KV_FAILED) {
		*ret = v; /* nothing made yet */
		return 0;
	}
	json_t *j = NULL;
	if (r == 0) {
		json_error_t jerr;
		j = json_loadb(ev->get_json, ev->get_json_len, 0, &jerr);
		r = j ? 0 : -ENOMEM; /* the store's own JSON: only memory can fail */
	}
	keel_kv_event_unref(ev);
	size_t i;
	json_t *n;
	json_array_foreach(json_object_get(j, "nodes"), i, n) {
		const char *key = json_string_value(json_object_get(n, "key"));
		const char *slash = key ? strrchr(key, '/') : NULL;
		if (slash && r == 0)
			r = keel_strv_push(&v, slash + 1);
	}
	json_decref(j);
	if (r < 0) {
		keel_strv_free(v);
		return r;
	}
	if (v)
		qsort(v, keel_strv_len(v), sizeof(*v), cmp_str);
	*ret = v;
	return 0;
}

/* ---- answers ------------------------------------------------------------------------------ */

void keel_kv_auth_answer_clear(struct keel_kv_auth_answer *a)
{
	if (!a)
		return;
	keel_buf_free(&a->body);
	*a = (struct keel_kv_auth_answer){0};
}

int keel_kv_auth_http_error(struct keel_kv_auth_answer *a, int status, const char *msg)
{
	keel_buf_reset(&a->body);
	a->status = status;
	a->created = a->store_error = false;
	struct keel_jw w;
	keel_jw_init(&w, &a->body, KEEL_JW_GO_ESCAPE);
	keel_jw_obj_begin(&w);
	keel_jw_kstr(&w, "message", msg);
	keel_jw_obj_end(&w);
	return keel_jw_finish(&w);
}

int keel_kv_auth_error(struct keel_kv_auth_answer *a, int status, bool go_format, const char *fmt, ...)
{
	struct keel_buf msg = KEEL_BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	char *text = NULL;
	int r = vasprintf(&text, fmt, ap) < 0 ? -ENOMEM : 0;
	va_end(ap);
	if (r == 0)
		r = keel_buf_puts(&msg, "auth: ");
	if (r == 0)
		r = go_format ? keel_kv_go_sprintf_noargs(&msg, text) : keel_buf_puts(&msg, text);
	free(text);
	if (r == 0)
		r = keel_kv_auth_http_error(a, status, msg.data);
	keel_buf_free(&msg);
	return r;
}

/* Go's parsenum: decimal digits at s[*i..end); a number past 1e6 is "crazy long": it
 * consumes everything (Go returns end). */
static bool go_parsenum(const char *s, size_t *i, size_t end)
{
	bool isnum = false;
	long num = 0;
	while (*i < end && s[*i] >= '0' && s[*i] <= '9') {
		if (num > 1000000 || num < -1000000) {
			*i = end;
			return false;
		}
		num = num * 10 + (s[*i] - '0');
		isnum = true;
		(*i)++;
	}
	return isnum;
}

/* Go's argNumber with no arguments: "[n]" never names one. Returns whether an index was
 * written (afterIndex), clearing *good for any bracket. */
static bool go_argnumber(const char *s, size_t *i, size_t end, bool *good)
{
	if (*i >= end || s[*i] != '[')
		return false;
	*good = false;
	/* parseArgNumber: at least "[n]", a closing bracket, digits only between. */
	if (end - *i < 3) {
		(*i)++;
		return false;
	}
	for (size_t j = *i + 1; j < end; j++) {
		if (s[j] == ']') {
			size_t k = *i + 1;
			bool ok = go_parsenum(s, &k, j) && k == j;
			*i = j + 1;
			return ok;
		}
	}
	(*i)++;
	return false;
}

int keel_kv_go_sprintf_noargs(struct keel_buf *out, const char *s)
{
	size_t end = strlen(s), i = 0;
	int r = 0;
	while (i < end && r == 0) {
		size_t last = i;
		while (i < end && s[i] != '%')
			i++;
		if (i > last)
			r = keel_buf_append(out, s + last, i - last);
		if (i >= end || r < 0)
			break;
		i++;
		bool good = true;
		while (i < end && strchr("#0+- ", s[i]))
			i++;
		bool after = go_argnumber(s, &i, end, &good);
		if (i < end && s[i] == '*') {
			i++;
			r = keel_buf_puts(out, "%!(BADWIDTH)");
			after = false;
		} else {
			if (go_parsenum(s, &i, end) && after)
				good = false;
		}
		if (r == 0 && i + 1 < end && s[i] == '.') {
			i++;
			if (after)
				good = false;
			after = go_argnumber(s, &i, end, &good);
			if (i < end && s[i] == '*') {
				i++;
				r = keel_buf_puts(out, "%!(BADPREC)");
				after = false;
			} else {
				go_parsenum(s, &i, end);
			}
		}
		if (!after)
			after = go_argnumber(s, &i, end, &good);
		if (r < 0)
			break;
		if (i >= end) {
			r = keel_buf_puts(out, "%!(NOVERB)");
			break;
		}
		size_t vl = utf8_valid_len((const unsigned char *)s + i, end - i);
		const char *verb = vl ? s + i : "\xEF\xBF\xBD";
		size_t verb_len = vl ? vl : 3;
		i += vl ? vl : 1;
		if (verb_len == 1 && verb[0] == '%')
			r = keel_buf_putc(out, '%');
		else if ((r = keel_buf_puts(out, "%!")) == 0 && (r = keel_buf_append(out, verb, verb_len)) == 0)
			r = keel_buf_puts(out, good ? "(MISSING)" : "(BADINDEX)");
	}
	return r;
}
