/* etcd's v2 auth API on keel-kv (etcd 3.4 etcdserver/api/v2http/client_auth.go over
 * api/v2auth): /v2/auth/{enable,users,roles}, and the checks the keys and members APIs make
 * once auth is on (HTTP Basic credentials, the guest role, key-prefix permissions, root).
 *
 * Users and roles live in the store under /2 (auth.h); changes are auth commands in Raft entries,
 * answered when they apply here. Passwords are bcrypt hashes (libxcrypt's crypt_r, "$2a$", cost
 * 10, the format Go's bcrypt writes). A check costs tens of milliseconds, so it never runs on the
 * loop: the request is held while a thread-pool job hashes, then the handler runs again
 * (keel_http_redispatch) and finds the verdict. Verified (user, password) pairs are remembered,
 * keyed by the user's current hash and an HMAC of the password under a per-process key, so a
 * client that keeps sending the same credentials pays once; changing the password (a new hash)
 * forgets them. At most two jobs run at once, so the WAL's group commit, which shares libuv's
 * pool of four threads, always finds a thread. */
#include <crypt.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "base/buf.h"
#include "base/jw.h"
#include "base/mem.h"
#include "base/str.h"
#include "kv/auth.h"
#include "kv/server-internal.h"

#define AUTH_PREFIX "/v2/auth"
#define KEYS_PREFIX "/v2/keys"
#define BCRYPT_PREFIX "$2a$"
#define BCRYPT_COST 10   /* Go's bcrypt.DefaultCost, what etcd uses */
#define MAX_JOBS 2       /* bcrypt jobs on libuv's pool at once */
#define CRED_SLOTS 1024  /* verified (user, password) pairs remembered */
#define PARSED_SLOTS 256 /* decoded users and roles, by name */

/* A verified pair: the user, the HMAC of the password, the hash it was checked against. */
struct cred {
	char *user;
	size_t user_len;
	unsigned char mac[32];
	char hash[64];
};

/* A user's or role's node decoded, valid while the node keeps these indexes. */
struct parsed {
	char *name;
	size_t name_len;
	uint64_t created, modified;
	bool ok; /* decoded; false: the node holds something else */
	struct keel_kv_user user;
	struct keel_kv_role role;
};

struct kv_auth_ctx;

struct kv_auth {
	unsigned refs; /* the server's, and one per job in flight */
	struct keel_kv_server *s; /* NULL once the server is gone */
	unsigned char mac_key[32];
	struct cred creds[CRED_SLOTS];
	struct parsed users[PARSED_SLOTS], roles[PARSED_SLOTS];
	struct kv_auth_ctx *current; /* the request being redispatched, with what its jobs found */
	unsigned running;
	struct kv_auth_job *queue_head, *queue_tail;
	/* /2/enabled as the last look found it: whether the node exists (for the GET etcd counts)
	 * and whether it holds "true". Valid until kv_auth_tree_changed, so a request with auth off
	 * makes no store lookup for it. */
	bool enabled_known, enabled_found, enabled;
};

/* A held request's auth state across its jobs and redispatches. */
struct kv_auth_ctx {
	struct kv_auth *a;
	struct keel_http_req *req; /* NULL once the client left */
	bool pending;              /* a job runs (or waits) for it */
	/* The last password check: this user's password against this hash. */
	char *user;
	size_t user_len;
	char *checked_hash;
	bool ok;
	/* A password hashed for the request body (PUT /v2/auth/users/<name>). */
	char *password, *new_hash;
	bool hash_failed;
	/* The handler passed its access check before it asked for the hash: it does not check
	 * (and count etcd's GETs) again when it runs once more. */
	bool access_granted;
};

struct kv_auth_job {
	uv_work_t work;
	struct kv_auth_ctx *ctx;
	struct kv_auth_job *next;
	bool hash_mode;  /* make a hash of password; else check password against hash */
	char *password;  /* owned copies, freed with the job */
	char *hash;
	char *result;    /* hash mode: the new hash (malloc'd by the worker) */
	bool ok;         /* check mode */
};

static void auth_unref(struct kv_auth *a);

/* ---- small helpers -------------------------------------------------------------------------- */

static uint64_t name_hash(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
	return h;
}

static bool same_name(const char *a, size_t alen, const char *b, size_t blen)
{
	return alen == blen && memcmp(a, b, alen) == 0;
}

static bool password_mac(const struct kv_auth *a, const char *pw, size_t len, unsigned char mac[32])
{
	unsigned int n = 32;
	return HMAC(EVP_sha256(), a->mac_key, sizeof(a->mac_key), (const unsigned char *)pw, len, mac, &n) && n == 32;
}

/* ---- decoded users and roles ---------------------------------------------------------------- */

/* The user (role) <name> as the store holds it now, decoded, or NULL (none, or not decodable).
 * With count, the look counts as etcd's GET of it does. The pointer stays valid until the next
 * lookup of the same kind. */
static const struct keel_kv_user *lookup_user(struct kv_auth *a, const char *name, size_t len, bool count)
{
	struct keel_buf p = KEEL_BUF_INIT;
	struct keel_kv_peek pk;
	int r = keel_buf_puts(&p, "/2/users/");
	r = r ? r : keel_buf_append(&p, name, len);
	r = r ? r : keel_kv_store_peek(a->s->store, p.data, p.len, count, &pk);
	keel_buf_free(&p);
	if (r != 0 || pk.dir)
		return NULL;
	struct parsed *slot = &a->users[name_hash(name, len) % PARSED_SLOTS];
	if (slot->name && same_name(slot->name, slot->name_len, name, len) && slot->created == pk.created_index &&
	    slot->modified == pk.modified_index)
		return slot->ok ? &slot->user : NULL;
	keel_free(slot->name);
	keel_kv_user_free(&slot->user);
	*slot = (struct parsed){0};
	if (!(slot->name = keel_malloc(len + 1)))
		return NULL;
	memcpy(slot->name, name, len);
	slot->name[len] = '\0';
	slot->name_len = len;
	slot->created = pk.created_index;
	slot->modified = pk.modified_index;
	r = keel_kv_user_parse(pk.value, pk.value_len, &slot->user);
	if (r == 0 && strcmp(slot->user.user, KEEL_KV_AUTH_ROOT) == 0)
		r = keel_kv_user_attach_root(&slot->user);
	if (r == -ENOMEM) { /* try again next time */
		keel_free(slot->name);
		keel_kv_user_free(&slot->user);
		*slot = (struct parsed){0};
		return NULL;
	}
	slot->ok = r == 0;
	return slot->ok ? &slot->user : NULL;
}

static const struct keel_kv_role *lookup_role(struct kv_auth *a, const char *name, size_t len, bool count)
{
	static struct keel_kv_role root; /* constant; built once */
	if (same_name(name, len, KEEL_KV_AUTH_ROOT, strlen(KEEL_KV_AUTH_ROOT))) {
		if (!root.role && keel_kv_role_root(&root) < 0)
			return NULL;
		return &root;
	}
	struct keel_buf p = KEEL_BUF_INIT;
	struct keel_kv_peek pk;
	int r = keel_buf_puts(&p, "/2/roles/");
	r = r ? r : keel_buf_append(&p, name, len);
	r = r ? r : keel_kv_store_peek(a->s->store, p.data, p.len, count, &pk);
	keel_buf_free(&p);
	if (r != 0 || pk.dir)
		return NULL;
	struct parsed *slot = &a->roles[name_hash(name, len) % PARSED_SLOTS];
	if (slot->name && same_name(slot->name, slot->name_len, name, len) && slot->created == pk.created_index &&
	    slot->modified == pk.modified_index)
		return slot->ok ? &slot->role : NULL;
	keel_free(slot->name);
	keel_kv_role_free(&slot->role);
	*slot = (struct parsed){0};
	if (!(slot->name = keel_malloc(len + 1)))
		return NULL;
	memcpy(slot->name, name, len);
	slot->name[len] = '\0';
	slot->name_len = len;
	slot->created = pk.created_index;
	slot->modified = pk.modified_index;
	r = keel_kv_role_parse(pk.value, pk.value_len, &slot->role);
	if (r == -ENOMEM) {
		keel_free(slot->name);
		keel_kv_role_free(&slot->role);
		*slot = (struct parsed){0};
		return NULL;
	}
	slot->ok = r == 0;
	return slot->ok ? &slot->role : NULL;
}

/* ---- verified credentials ------------------------------------------------------------------- */

static struct cred *cred_slot(struct kv_auth *a, const char *user, size_t len, const unsigned char mac[32])
{
	uint64_t h = name_hash(user, len);
	uint64_t m;
	memcpy(&m, mac, sizeof(m));
	return &a->creds[(h ^ m) % CRED_SLOTS];
}

static bool cred_known(struct kv_auth *a, const char *user, size_t len, const char *pw, size_t pwlen,
		       const char *hash)
{
	unsigned char mac[32];
	if (!password_mac(a, pw, pwlen, mac))
		return false;
	struct cred *c = cred_slot(a, user, len, mac);
	return c->user && same_name(c->user, c->user_len, user, len) && CRYPTO_memcmp(c->mac, mac, 32) == 0 &&
	       strcmp(c->hash, hash) == 0;
}

static void cred_remember(struct kv_auth *a, const char *user, size_t len, const char *pw, size_t pwlen,
			  const char *hash)
{
	if (strlen(hash) >= sizeof(((struct cred *)0)->hash))
		return;
	unsigned char mac[32];
	if (!password_mac(a, pw, pwlen, mac))
		return;
	struct cred *c = cred_slot(a, user, len, mac);
	char *u = keel_malloc(len + 1);
	if (!u)
		return;
	memcpy(u, user, len);
	u[len] = '\0';
	keel_free(c->user);
	c->user = u;
	c->user_len = len;
	memcpy(c->mac, mac, 32);
	snprintf(c->hash, sizeof(c->hash), "%s", hash);
}

/* ---- bcrypt on the thread pool -------------------------------------------------------------- */

/* Only the bcrypt forms Go's bcrypt writes and reads (crypt_r would take any other "setting"
 * for another algorithm, DES included). */
static bool is_bcrypt(const char *h)
{
	return (strncmp(h, "$2a$", 4) == 0 || strncmp(h, "$2b$", 4) == 0 || strncmp(h, "$2y$", 4) == 0) &&
	       strlen(h) == 60;
}

/* On a pool thread: libc's allocator (keel_malloc's fault table is the loop's). */
static void job_work(uv_work_t *w)
{
	struct kv_auth_job *j = w->data;
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	if (!cd)
		return;
	if (j->hash_mode) {
		char rnd[16], salt[CRYPT_GENSALT_OUTPUT_SIZE];
		if (getrandom(rnd, sizeof(rnd), 0) == (ssize_t)sizeof(rnd) &&
		    crypt_gensalt_rn(BCRYPT_PREFIX, BCRYPT_COST, rnd, sizeof(rnd), salt, sizeof(salt))) {
			const char *h = crypt_r(j->password, salt, cd);
			if (h && is_bcrypt(h))
				j->result = strdup(h);
		}
	} else if (is_bcrypt(j->hash)) {
		const char *h = crypt_r(j->password, j->hash, cd);
		j->ok = h && strlen(h) == strlen(j->hash) && CRYPTO_memcmp(h, j->hash, strlen(h)) == 0;
	}
	OPENSSL_cleanse(cd, sizeof(*cd));
	free(cd);
}

static void job_done(uv_work_t *w, int status);

static void job_start_next(struct kv_auth *a)
{
	while (a->running < MAX_JOBS && a->queue_head) {
		struct kv_auth_job *j = a->queue_head;
		a->queue_head = j->next;
		if (!a->queue_head)
			a->queue_tail = NULL;
		j->work.data = j;
		if (uv_queue_work(a->s->loop, &j->work, job_work, job_done) == 0) {
			a->running++;
		} else {
			a->running++; /* job_done undoes it */
			job_done(&j->work, UV_ECANCELED);
		}
	}
}

static void ctx_free(struct kv_auth_ctx *c)
{
	keel_free(c->user);
	keel_free(c->checked_hash);
	if (c->password)
		OPENSSL_cleanse(c->password, strlen(c->password));
	keel_free(c->password);
	keel_free(c->new_hash);
	keel_free(c);
}

static void ctx_closed(struct keel_http_req *req, void *ud)
{
	(void)req;
	struct kv_auth_ctx *c = ud;
	c->req = NULL;
	if (!c->pending)
		ctx_free(c);
}

static void job_free(struct kv_auth_job *j)
{
	if (j->password)
		OPENSSL_cleanse(j->password, strlen(j->password));
	keel_free(j->password);
	keel_free(j->hash);
	free(j->result);
	keel_free(j);
}

static void job_done(uv_work_t *w, int status)
{
	struct kv_auth_job *j = w->data;
	struct kv_auth_ctx *c = j->ctx;
	struct kv_auth *a = c->a;
	a->running--;
	bool ok = status == 0;
	c->pending = false;
	if (j->hash_mode) {
		keel_free(c->new_hash);
		c->new_hash = ok && j->result ? keel_strdup(j->result) : NULL;
		c->hash_failed = !c->new_hash;
	} else if (ok && !j->hash_mode) {
		c->ok = j->ok;
		if (j->ok && a->s)
			cred_remember(a, c->user, c->user_len, j->password, strlen(j->password), j->hash);
	}
	job_free(j);
	struct keel_http_req *req = c->req;
	if (!req) {
		ctx_free(c); /* the client left */
	} else if (!a->s || a->s->stopping) {
		keel_http_respond_json(req, 500, "{\"message\":\"Internal Server Error\"}", 35);
		ctx_free(c);
	} else {
		/* The handler runs again and finds the verdict (or the hash) in a->current. A job
		 * it starts meanwhile takes c over (pending again). */
		a->current = c;
		if (keel_http_redispatch(req) < 0)
			c->req = NULL;
		a->current = NULL;
		if (!c->pending)
			ctx_free(c);
	}
	if (a->s)
		job_start_next(a);
	auth_unref(a);
}

/* The request's context (the one being redispatched, or a new one). */
static struct kv_auth_ctx *ctx_for(struct kv_auth *a, struct keel_http_req *req)
{
	if (a->current && a->current->req == req)
		return a->current;
	struct kv_auth_ctx *c = keel_calloc(1, sizeof(*c));
	if (c) {
		c->a = a;
		c->req = req;
	}
	return c;
}

/* Queue a job for req and hold it (granted: the handler's access check passed already).
 * KV_AUTH_WAIT, or -ENOMEM (nothing held). */
static int job_submit(struct kv_auth *a, struct keel_http_req *req, bool hash_mode, const char *user,
		      size_t user_len, const char *password, const char *hash, bool granted)
{
	struct kv_auth_ctx *c = ctx_for(a, req);
	struct kv_auth_job *j = c ? keel_calloc(1, sizeof(*j)) : NULL;
	if (!j) {
		if (c && c != a->current)
			keel_free(c);
		return -ENOMEM;
	}
	j->ctx = c;
	j->hash_mode = hash_mode;
	j->password = keel_strdup(password);
	j->hash = keel_strdup(hash ? hash : "");
	bool fail = !j->password || !j->hash;
	if (!fail && hash_mode) {
		keel_free(c->password);
		fail = !(c->password = keel_strdup(password));
	} else if (!fail) {
		keel_free(c->user);
		keel_free(c->checked_hash);
		c->user = keel_malloc(user_len + 1);
		c->checked_hash = keel_strdup(hash);
		fail = !c->user || !c->checked_hash;
		if (c->user) {
			memcpy(c->user, user, user_len);
			c->user[user_len] = '\0';
			c->user_len = user_len;
		}
		c->ok = false;
	}
	if (fail || keel_http_hold(req, ctx_closed, c) < 0) {
		job_free(j);
		if (c != a->current)
			ctx_free(c);
		return -ENOMEM;
	}
	c->pending = true;
	c->access_granted = granted;
	a->refs++;
	if (a->queue_tail)
		a->queue_tail->next = j;
	else
		a->queue_head = j;
	a->queue_tail = j;
	job_start_next(a);
	return KV_AUTH_WAIT;
}

/* ---- who is asking ---------------------------------------------------------------------------- */

/* Go's base64.StdEncoding.DecodeString: padding required, '\r' and '\n' skipped. */
static int b64_decode(const char *in, size_t n, char *out, size_t *out_len)
{
	unsigned acc = 0, bits = 0, pad = 0;
	size_t o = 0, count = 0;
	for (size_t i = 0; i < n; i++) {
		char c = in[i];
		if (c == '\r' || c == '\n')
			continue;
		count++;
		int v;
		if (c >= 'A' && c <= 'Z')
			v = c - 'A';
		else if (c >= 'a' && c <= 'z')
			v = c - 'a' + 26;
		else if (c >= '0' && c <= '9')
			v = c - '0' + 52;
		else if (c == '+')
			v = 62;
		else if (c == '/')
			v = 63;
		else if (c == '=') {
			pad++;
			continue;
		} else
			return -EINVAL;
		if (pad)
			return -EINVAL; /* data after padding */
		acc = acc << 6 | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (count % 4 || pad > 2 || (pad && (count - pad) % 4 + pad != 4))
		return -EINVAL;
	*out_len = o;
	return 0;
}

struct basic {
	char *buf; /* user NUL password NUL */
	const char *user, *password;
	size_t user_len, password_len;
};

/* Go's r.BasicAuth(): "Basic " (any case), base64, split at the first colon. */
static bool parse_basic(const char *h, struct basic *b)
{
	*b = (struct basic){0};
	if (strlen(h) < 6 || strncasecmp(h, "Basic ", 6) != 0)
		return false;
	size_t n = strlen(h + 6), len;
	char *buf = keel_malloc(n + 2);
	if (!buf || b64_decode(h + 6, n, buf, &len) < 0) {
		keel_free(buf);
		return false;
	}
	char *colon = memchr(buf, ':', len);
	if (!colon) {
		keel_free(buf);
		return false;
	}
	buf[len] = '\0';
	*colon = '\0';
	*b = (struct basic){buf, buf, colon + 1, (size_t)(colon - buf), len - (size_t)(colon - buf) - 1};
	return true;
}

enum { ID_GUEST, ID_USER, ID_NONE, ID_CHECK };

/* The user a request speaks for: ID_USER (*ret), ID_GUEST (no Authorization header and no
 * client certificate naming a user), ID_NONE (bad credentials), ID_CHECK (a password check has
 * to run: *b holds the credentials, *ret the user). */
static int identify(struct kv_auth *a, struct keel_http_req *req, bool count, const struct keel_kv_user **ret,
		    struct basic *b)
{
	const char *h = keel_http_req_header(req, "Authorization", NULL);
	*b = (struct basic){0};
	if (!h || !*h) {
		if (a->s->cfg.client_cert_auth) {
			/* etcd looks the certificate's common name up as a user; no password. */
			const char *cn = keel_http_req_client_cn(req);
			if (cn && (*ret = lookup_user(a, cn, strlen(cn), count)))
				return ID_USER;
		}
		return ID_GUEST;
	}
	if (!parse_basic(h, b))
		return ID_NONE;
	const struct keel_kv_user *u = lookup_user(a, b->user, b->user_len, count);
	if (!u || memchr(b->password, '\0', b->password_len))
		return ID_NONE; /* C's bcrypt cannot take a NUL; no stored password holds one */
	*ret = u;
	struct kv_auth_ctx *c = a->current && a->current->req == req ? a->current : NULL;
	if (c && c->user && c->checked_hash && same_name(c->user, c->user_len, b->user, b->user_len) &&
	    strcmp(c->checked_hash, u->password) == 0)
		return c->ok ? ID_USER : ID_NONE;
	if (cred_known(a, b->user, b->user_len, b->password, b->password_len, u->password))
		return ID_USER;
	return ID_CHECK;
}

/* Start the password check `identify` asked for. */
static int start_check(struct kv_auth *a, struct keel_http_req *req, const struct keel_kv_user *u,
		       const struct basic *b)
{
	int r = job_submit(a, req, false, b->user, b->user_len, b->password, u->password, false);
	return r < 0 ? KV_AUTH_DENY : r;
}

/* etcd's AuthEnabled() (keel_kv_auth_enabled) from what the last look found; with count, the
 * GET etcd makes for it is counted as that look would have counted it. */
static bool auth_enabled(struct kv_auth *a, bool count)
{
	struct keel_kv_store *st = a->s->store;
	if (!a->enabled_known) {
		struct keel_kv_peek pk;
		a->enabled_found = keel_kv_store_peek(st, "/2/enabled", strlen("/2/enabled"), false, &pk) == 0;
		a->enabled = a->enabled_found && keel_kv_auth_enabled(st, false);
		a->enabled_known = true;
	}
	if (count)
		keel_kv_store_count_get(st, a->enabled_found);
	return a->enabled;
}

void kv_auth_tree_changed(struct keel_kv_server *s)
{
	if (s->auth)
		s->auth->enabled_known = false;
}

/* hasKeyPrefixAccess, one pass. count: count the GETs etcd makes (the second pass). */
static int keys_access(struct kv_auth *a, struct keel_http_req *req, const char *key, size_t klen, bool recursive,
		       bool count, struct basic *b, const struct keel_kv_user **user)
{
	*b = (struct basic){0};
	if (!auth_enabled(a, count))
		return KV_AUTH_ALLOW;
	bool write = req->method != KEEL_HTTP_GET && req->method != KEEL_HTTP_HEAD;
	int id = identify(a, req, count, user, b);
	if (id == ID_CHECK)
		return KV_AUTH_WAIT;
	if (id == ID_NONE)
		return KV_AUTH_DENY;
	if (id == ID_GUEST) {
		/* hasGuestAccess: the guest role, matched as a single key even for recursive. */
		const struct keel_kv_role *g = lookup_role(a, KEEL_KV_AUTH_GUEST, strlen(KEEL_KV_AUTH_GUEST), count);
		return g && keel_kv_role_has_access(g, key, klen, write, false) ? KV_AUTH_ALLOW : KV_AUTH_DENY;
	}
	/* Roles that cannot be read are skipped. (Role lookups use other slots than users: u
	 * stays valid.) */
	const struct keel_kv_user *u = *user;
	for (size_t i = 0; i < u->roles.n; i++) {
		const char *rn = u->roles.v[i];
		const struct keel_kv_role *r = lookup_role(a, rn, strlen(rn), count);
		if (r && keel_kv_role_has_access(r, key, klen, write, recursive))
			return KV_AUTH_ALLOW;
	}
	return KV_AUTH_DENY;
}

int kv_auth_keys_access(struct keel_kv_server *s, struct keel_http_req *req, const char *key, size_t key_len,
			bool recursive)
{
	struct kv_auth *a = s->auth;
	struct basic b;
	const struct keel_kv_user *u = NULL;
	/* A dry pass first: counting etcd's GETs and then holding the request would count them
	 * twice, as the handler runs again after the check. */
	int r = keys_access(a, req, key, key_len, recursive, false, &b, &u);
	if (r == KV_AUTH_WAIT) {
		r = start_check(a, req, u, &b);
	} else {
		keel_free(b.buf);
		r = keys_access(a, req, key, key_len, recursive, true, &b, &u);
	}
	keel_free(b.buf);
	return r;
}

/* hasRootAccess (writes_only: hasWriteRootAccess, where GET and HEAD need nothing). */
static int root_access_pass(struct kv_auth *a, struct keel_http_req *req, bool count, struct basic *b,
			    const struct keel_kv_user **user)
{
	*b = (struct basic){0};
	if (!auth_enabled(a, count))
		return KV_AUTH_ALLOW;
	const char *h = keel_http_req_header(req, "Authorization", NULL);
	int id;
	if ((!h || !*h) && a->s->cfg.client_cert_auth) {
		const char *cn = keel_http_req_client_cn(req);
		id = cn && (*user = lookup_user(a, cn, strlen(cn), count)) ? ID_USER : ID_NONE;
	} else {
		id = identify(a, req, count, user, b);
	}
	if (id == ID_CHECK)
		return KV_AUTH_WAIT;
	if (id != ID_USER)
		return KV_AUTH_DENY;
	return keel_kv_user_has_role(*user, KEEL_KV_AUTH_ROOT) ? KV_AUTH_ALLOW : KV_AUTH_DENY;
}

static int root_access(struct kv_auth *a, struct keel_http_req *req, bool writes_only)
{
	if (writes_only && (req->method == KEEL_HTTP_GET || req->method == KEEL_HTTP_HEAD))
		return KV_AUTH_ALLOW;
	if (a->current && a->current->req == req && a->current->access_granted)
		return KV_AUTH_ALLOW;
	struct basic b = {0};
	const struct keel_kv_user *u = NULL;
	int r = root_access_pass(a, req, false, &b, &u);
	if (r == KV_AUTH_WAIT) {
		r = start_check(a, req, u, &b);
	} else {
		keel_free(b.buf);
		r = root_access_pass(a, req, true, &b, &u);
	}
	keel_free(b.buf);
	return r;
}

/* ---- answering ------------------------------------------------------------------------------ */

/* writeNoAuth: 401 {"message":"Insufficient credentials"} (no cluster id: it comes first). */
static int no_auth(struct keel_http_req *req)
{
	static const char body[] = "{\"message\":\"Insufficient credentials\"}";
	keel_http_respond_json(req, 401, body, sizeof(body) - 1);
	return KEEL_HTTP_DONE;
}

static void auth_headers(struct keel_kv_server *s, struct keel_http_req *req)
{
	keel_http_add_header(req, "X-Etcd-Cluster-ID", s->cluster_id_hex);
}

static int answer(struct keel_kv_server *s, struct keel_http_req *req, const struct keel_kv_auth_answer *ans)
{
	auth_headers(s, req);
	char idx[24];
	snprintf(idx, sizeof(idx), "%" PRIu64, ans->etcd_index);
	const struct keel_http_header h[] = {{"Content-Type", "application/json"}, {"X-Etcd-Index", idx}};
	keel_http_respond(req, ans->status, h, ans->store_error ? 2 : 1, ans->body.data, ans->body.len);
	return KEEL_HTTP_DONE;
}

static int answer_error(struct keel_kv_server *s, struct keel_http_req *req, int status, const char *msg)
{
	struct keel_kv_auth_answer ans = {0};
	if (keel_kv_auth_http_error(&ans, status, msg) < 0)
		return keel_http_error(req, 500, "out of memory"), KEEL_HTTP_DONE;
	answer(s, req, &ans);
	keel_kv_auth_answer_clear(&ans);
	return KEEL_HTTP_DONE;
}

/* authErr(status, "auth: ..."). */
static int answer_auth_error(struct keel_kv_server *s, struct keel_http_req *req, int status, const char *fmt, ...)
	KEEL_PRINTF(4, 5);
static int answer_auth_error(struct keel_kv_server *s, struct keel_http_req *req, int status, const char *fmt, ...)
{
	struct keel_kv_auth_answer ans = {0};
	va_list ap;
	va_start(ap, fmt);
	char *text = NULL;
	int r = vasprintf(&text, fmt, ap);
	va_end(ap);
	if (r < 0 || keel_kv_auth_error(&ans, status, false, "%s", text) < 0) {
		free(text);
		return keel_http_error(req, 500, "out of memory"), KEEL_HTTP_DONE;
	}
	free(text);
	answer(s, req, &ans);
	keel_kv_auth_answer_clear(&ans);
	return KEEL_HTTP_DONE;
}

static int answer_json(struct keel_kv_server *s, struct keel_http_req *req, int status, struct keel_buf *b)
{
	if (keel_buf_putc(b, '\n') < 0) {
		keel_buf_free(b);
		return answer_error(s, req, 500, "Internal Server Error");
	}
	auth_headers(s, req);
	keel_http_respond_json(req, status, b->data, b->len);
	keel_buf_free(b);
	return KEEL_HTTP_DONE;
}

/* etcd's allowMethod. */
static bool allow_method(struct keel_http_req *req, unsigned mask, const char *allow)
{
	if (req->method & mask)
		return true;
	keel_http_add_header(req, "Allow", allow);
	keel_http_error(req, 405, "Method Not Allowed");
	return false;
}

/* Propose an auth command; the request is answered when it applies. */
static int propose(struct keel_kv_server *s, struct keel_http_req *req, enum keel_kv_auth_op op, const char *arg,
		   size_t arg_len)
{
	struct kv_wait *w = keel_calloc(1, sizeof(*w));
	struct keel_buf b = KEEL_BUF_INIT;
	uint8_t kind = KV_ENTRY_AUTH;
	int r = w ? keel_buf_append(&b, &kind, 1) : -ENOMEM;
	if (r == 0) {
		w->id = kv_next_request_id(s);
		r = keel_buf_put_le64(&b, w->id);
	}
	r = r ? r : keel_kv_auth_cmd_encode(op, arg, arg_len, &b);
	r = r ? r : keel_node_propose_forward(s->node, b.data, b.len);
	keel_buf_free(&b);
	if (r < 0) {
		keel_free(w);
		/* etcd's writeError for a failed Do: 500 Internal Server Error. */
		return answer_error(s, req, 500, "Internal Server Error");
	}
	w->s = s;
	w->req = req;
	w->auth = true;
	kv_wait_add(s, w);
	return KEEL_HTTP_HELD;
}

void kv_auth_apply_entry(struct keel_kv_server *s, const struct keel_raft_entry *e)
{
	const uint8_t *p = e->data;
	if (e->len < 9)
		return;
	struct keel_kv_auth_answer ans = {0};
	int r = keel_kv_auth_apply(s->store, p + 9, e->len - 9, &ans);
	kv_auth_tree_changed(s);
	struct kv_wait *w = kv_wait_take(s, keel_le64(p + 1));
	if (w) {
		if (w->req && r == 0)
			answer(s, w->req, &ans);
		else if (w->req)
			answer_error(s, w->req, 500, "Internal Server Error");
		keel_free(w);
	}
	keel_kv_auth_answer_clear(&ans);
}

/* ---- /v2/auth/users and /v2/auth/roles ---------------------------------------------------- */

/* The role objects of a user, as GET shows them ("roles" omitted when none). strict: a role
 * that cannot be read ends it with that error (forUser), else it is skipped (baseUsers). */
static int write_user_with_roles(struct keel_jw *w, const struct keel_kv_user *u, bool strict,
				 struct keel_kv_server *s, struct keel_http_req *req, bool *answered)
{
	keel_jw_obj_begin(w);
	keel_jw_kstr(w, "user", u->user);
	bool any = false;
	for (size_t i = 0; i < u->roles.n; i++) {
		struct keel_kv_role r;
		int g = keel_kv_auth_get_role(s->store, u->roles.v[i], strlen(u->roles.v[i]), true, &r);
		if (g != 0) {
			if (strict) {
				*answered = true;
				if (g == KEEL_KV_FAILED)
					answer_auth_error(s, req, 404, "Role %s does not exist.", u->roles.v[i]);
				else
					answer_error(s, req, 500, "Internal Server Error");
				return -1;
			}
			continue;
		}
		if (!any) {
			keel_jw_key(w, "roles");
			keel_jw_arr_begin(w);
			any = true;
		}
		struct keel_buf rb = KEEL_BUF_INIT;
		if (keel_kv_role_json(&r, &rb) == 0)
			keel_jw_raw(w, rb.data, rb.len);
		keel_buf_free(&rb);
		keel_kv_role_free(&r);
	}
	if (any)
		keel_jw_arr_end(w);
	keel_jw_obj_end(w);
	return 0;
}

static int base_users(struct keel_kv_server *s, struct keel_http_req *req)
{
	if (!allow_method(req, KEEL_HTTP_GET, "GET"))
		return KEEL_HTTP_DONE;
	int ar = root_access(s->auth, req, false);
	if (ar != KV_AUTH_ALLOW)
		return ar == KV_AUTH_WAIT ? KEEL_HTTP_HELD : no_auth(req);
	char **names = NULL;
	if (keel_kv_auth_list(s->store, false, &names) < 0)
		return answer_error(s, req, 500, "Internal Server Error");
	struct keel_buf b = KEEL_BUF_INIT;
	struct keel_jw w;
	keel_jw_init(&w, &b, KEEL_JW_GO_ESCAPE);
	keel_jw_obj_begin(&w);
	keel_jw_key(&w, "users");
	if (!names)
		keel_jw_null(&w);
	else
		keel_jw_arr_begin(&w);
	bool answered = false;
	for (size_t i = 0; names && names[i] && !answered; i++) {
		struct keel_kv_user u;
		int g = keel_kv_auth_get_user(s->store, names[i], strlen(names[i]), true, &u);
		if (g != 0) {
			answered = true;
			if (g == KEEL_KV_FAILED)
				answer_auth_error(s, req, 404, "User %s does not exist.", names[i]);
			else
				answer_error(s, req, 500, "Internal Server Error");
			break;
		}
		write_user_with_roles(&w, &u, false, s, req, &answered);
		keel_kv_user_free(&u);
	}
	if (names)
		keel_jw_arr_end(&w);
	keel_jw_obj_end(&w);
	keel_strv_free(names);
	if (answered) {
		keel_buf_free(&b);
		return KEEL_HTTP_DONE;
	}
	if (keel_jw_finish(&w) < 0) {
		keel_buf_free(&b);
		return answer_error(s, req, 500, "Internal Server Error");
	}
	return answer_json(s, req, 200, &b);
}

static int base_roles(struct keel_kv_server *s, struct keel_http_req *req)
{
	if (!allow_method(req, KEEL_HTTP_GET, "GET"))
		return KEEL_HTTP_DONE;
	int ar = root_access(s->auth, req, false);
	if (ar != KV_AUTH_ALLOW)
		return ar == KV_AUTH_WAIT ? KEEL_HTTP_HELD : no_auth(req);
	char **names = NULL;
	if (keel_kv_auth_list(s->store, true, &names) < 0)
		return answer_error(s, req, 500, "Internal Server Error");
	struct keel_buf b = KEEL_BUF_INIT;
	struct keel_jw w;
	keel_jw_init(&w, &b, KEEL_JW_GO_ESCAPE);
	keel_jw_obj_begin(&w);
	keel_jw_key(&w, "roles");
	keel_jw_arr_begin(&w);
	for (size_t i = 0; names && names[i]; i++) {
		struct keel_kv_role r;
		int g = keel_kv_auth_get_role(s->store, names[i], strlen(names[i]), true, &r);
		if (g != 0) {
			keel_strv_free(names);
			keel_buf_free(&b);
			return g == KEEL_KV_FAILED ? answer_auth_error(s, req, 404, "Role %s does not exist.", names[i])
						   : answer_error(s, req, 500, "Internal Server Error");
		}
		struct keel_buf rb = KEEL_BUF_INIT;
		if (keel_kv_role_json(&r, &rb) == 0)
			keel_jw_raw(&w, rb.data, rb.len);
		keel_buf_free(&rb);
		keel_kv_role_free(&r);
	}
	keel_jw_arr_end(&w);
	keel_jw_obj_end(&w);
	keel_strv_free(names);
	if (keel_jw_finish(&w) < 0) {
		keel_buf_free(&b);
		return answer_error(s, req, 500, "Internal Server Error");
	}
	return answer_json(s, req, 200, &b);
}

static bool name_is(const char *name, size_t len, const char *what)
{
	return same_name(name, len, what, strlen(what));
}

/* /v2/auth/users/<name>. The name is the URL's bytes (it may hold a NUL, from %00): looked up
 * with its length; messages show it up to the NUL. */
static int for_user(struct keel_kv_server *s, struct keel_http_req *req, const char *name, size_t len)
{
	if (!allow_method(req, KEEL_HTTP_GET | KEEL_HTTP_PUT | KEEL_HTTP_DELETE, "GET,PUT,DELETE"))
		return KEEL_HTTP_DONE;
	struct kv_auth *a = s->auth;
	int ar = root_access(a, req, false);
	if (ar != KV_AUTH_ALLOW)
		return ar == KV_AUTH_WAIT ? KEEL_HTTP_HELD : no_auth(req);
	char *cname = keel_strndup(name, len);
	if (!cname)
		return answer_error(s, req, 500, "Internal Server Error");
	int ret = KEEL_HTTP_DONE;
	if (req->method == KEEL_HTTP_GET) {
		struct keel_kv_user u;
		int g = keel_kv_auth_get_user(s->store, name, len, true, &u);
		if (g != 0) {
			ret = g == KEEL_KV_FAILED ? answer_auth_error(s, req, 404, "User %s does not exist.", cname)
						  : answer_error(s, req, 500, "Internal Server Error");
		} else {
			struct keel_buf b = KEEL_BUF_INIT;
			struct keel_jw w;
			keel_jw_init(&w, &b, KEEL_JW_GO_ESCAPE);
			bool answered = false;
			write_user_with_roles(&w, &u, true, s, req, &answered);
			if (answered)
				keel_buf_free(&b);
			else if (keel_jw_finish(&w) < 0)
				keel_buf_free(&b), answer_error(s, req, 500, "Internal Server Error");
			else
				answer_json(s, req, 200, &b);
			keel_kv_user_free(&u);
		}
	} else if (req->method == KEEL_HTTP_DELETE) {
		if (keel_kv_auth_enabled(s->store, true) && name_is(name, len, KEEL_KV_AUTH_ROOT))
			ret = answer_auth_error(s, req, 403, "Cannot delete root user while auth is enabled.");
		else
			ret = propose(s, req, KEEL_KV_AUTH_USER_DELETE, name, len);
	} else {
		struct keel_kv_user u;
		int pr = keel_kv_user_parse(req->body, req->body_len, &u);
		enum keel_kv_auth_op op = KEEL_KV_AUTH_USER_PUT;
		if (pr == -ENOMEM) {
			ret = answer_error(s, req, 500, "Internal Server Error");
		} else if (pr < 0) {
			ret = answer_error(s, req, 400, "Invalid JSON in request body.");
		} else if (!same_name(u.user, strlen(u.user), name, len)) {
			ret = answer_error(s, req, 400, "User JSON name does not match the name in the URL");
		} else if (!u.grant.n && !u.revoke.n && u.roles.n && !*u.password) {
			/* CreateUser refuses before touching the store. */
			ret = answer_auth_error(s, req, 400, "Cannot create user %s with an empty password", u.user);
		} else if ((u.grant.n || u.revoke.n) && u.roles.n) {
			ret = answer_error(s, req, 400, "User JSON contains both roles and grant/revoke");
		} else {
			op = u.grant.n || u.revoke.n ? KEEL_KV_AUTH_USER_UPDATE
			     : u.roles.n            ? KEEL_KV_AUTH_USER_CREATE
						    : KEEL_KV_AUTH_USER_PUT;
			ret = -1;
		}
		if (ret == -1 && *u.password) {
			/* The password travels hashed: hash it first (on the pool), then come back. */
			struct kv_auth_ctx *c = a->current && a->current->req == req ? a->current : NULL;
			if (c && c->hash_failed) {
				ret = answer_error(s, req, 500, "Internal Server Error");
			} else if (c && c->new_hash && c->password && strcmp(c->password, u.password) == 0) {
				keel_free(u.password);
				u.password = keel_strdup(c->new_hash);
				if (!u.password)
					ret = answer_error(s, req, 500, "Internal Server Error");
			} else {
				int jr = job_submit(a, req, true, NULL, 0, u.password, NULL, true);
				ret = jr == KV_AUTH_WAIT ? KEEL_HTTP_HELD : answer_error(s, req, 500, "Internal Server Error");
			}
		}
		if (ret == -1) {
			struct keel_buf json = KEEL_BUF_INIT;
			if (keel_kv_user_json(&u, &json) < 0)
				ret = answer_error(s, req, 500, "Internal Server Error");
			else
				ret = propose(s, req, op, json.data, json.len);
			keel_buf_free(&json);
		}
		keel_kv_user_free(&u);
	}
	keel_free(cname);
	return ret;
}

static bool perms_empty(const struct keel_kv_perms *p)
{
	return p->read.n == 0 && p->write.n == 0;
}

static int for_role(struct keel_kv_server *s, struct keel_http_req *req, const char *name, size_t len)
{
	if (!allow_method(req, KEEL_HTTP_GET | KEEL_HTTP_PUT | KEEL_HTTP_DELETE, "GET,PUT,DELETE"))
		return KEEL_HTTP_DONE;
	int ar = root_access(s->auth, req, false);
	if (ar != KV_AUTH_ALLOW)
		return ar == KV_AUTH_WAIT ? KEEL_HTTP_HELD : no_auth(req);
	char *cname = keel_strndup(name, len);
	if (!cname)
		return answer_error(s, req, 500, "Internal Server Error");
	int ret = KEEL_HTTP_DONE;
#define IS_ROOT "Cannot modify role %s: is root role."
	if (req->method == KEEL_HTTP_GET) {
		struct keel_kv_role r;
		int g = keel_kv_auth_get_role(s->store, name, len, true, &r);
		if (g != 0) {
			ret = g == KEEL_KV_FAILED ? answer_auth_error(s, req, 404, "Role %s does not exist.", cname)
						  : answer_error(s, req, 500, "Internal Server Error");
		} else {
			struct keel_buf b = KEEL_BUF_INIT;
			ret = keel_kv_role_json(&r, &b) < 0 ? (keel_buf_free(&b), answer_error(s, req, 500, "Internal Server Error"))
							     : answer_json(s, req, 200, &b);
			keel_kv_role_free(&r);
		}
	} else if (req->method == KEEL_HTTP_DELETE) {
		ret = name_is(name, len, KEEL_KV_AUTH_ROOT) ? answer_auth_error(s, req, 403, IS_ROOT, cname)
							    : propose(s, req, KEEL_KV_AUTH_ROLE_DELETE, name, len);
	} else {
		struct keel_kv_role r;
		int pr = keel_kv_role_parse(req->body, req->body_len, &r);
		if (pr == -ENOMEM) {
			ret = answer_error(s, req, 500, "Internal Server Error");
		} else if (pr < 0) {
			ret = answer_error(s, req, 400, "Invalid JSON in request body.");
		} else if (!same_name(r.role, strlen(r.role), name, len)) {
			ret = answer_error(s, req, 400, "Role JSON name does not match the name in the URL");
		} else {
			bool create = (!r.has_grant || perms_empty(&r.grant)) && (!r.has_revoke || perms_empty(&r.revoke));
			struct keel_buf json = KEEL_BUF_INIT;
			if (strcmp(r.role, KEEL_KV_AUTH_ROOT) == 0 && create)
				ret = answer_auth_error(s, req, 403, IS_ROOT, r.role);
			else if (!create && !perms_empty(&r.perms))
				ret = answer_error(s, req, 400, "Role JSON contains both permissions and grant/revoke");
			else if (strcmp(r.role, KEEL_KV_AUTH_ROOT) == 0)
				ret = answer_auth_error(s, req, 403, IS_ROOT, r.role);
			else if (keel_kv_role_json(&r, &json) < 0)
				ret = answer_error(s, req, 500, "Internal Server Error");
			else
				ret = propose(s, req, create ? KEEL_KV_AUTH_ROLE_CREATE : KEEL_KV_AUTH_ROLE_UPDATE, json.data,
					      json.len);
			keel_buf_free(&json);
		}
		keel_kv_role_free(&r);
	}
	keel_free(cname);
	return ret;
}

static int enable_disable(struct keel_kv_server *s, struct keel_http_req *req)
{
	if (!allow_method(req, KEEL_HTTP_GET | KEEL_HTTP_PUT | KEEL_HTTP_DELETE, "GET,PUT,DELETE"))
		return KEEL_HTTP_DONE;
	int ar = root_access(s->auth, req, true);
	if (ar != KV_AUTH_ALLOW)
		return ar == KV_AUTH_WAIT ? KEEL_HTTP_HELD : no_auth(req);
	bool enabled = keel_kv_auth_enabled(s->store, true);
	if (req->method == KEEL_HTTP_GET) {
		struct keel_buf b = KEEL_BUF_INIT;
		if (keel_buf_puts(&b, enabled ? "{\"enabled\":true}" : "{\"enabled\":false}") < 0)
			return answer_error(s, req, 500, "Internal Server Error");
		return answer_json(s, req, 200, &b);
	}
	/* EnableAuth/DisableAuth look again before changing anything. */
	enabled = keel_kv_auth_enabled(s->store, true);
	bool enable = req->method == KEEL_HTTP_PUT;
	if (enable == enabled)
		return answer_auth_error(s, req, 409, "%s", enable ? "already enabled" : "already disabled");
	return propose(s, req, enable ? KEEL_KV_AUTH_ENABLE : KEEL_KV_AUTH_DISABLE, NULL, 0);
}

/* "/users/<name>" and friends: etcd's path.Clean and split on "/". */
static int by_name(struct keel_kv_server *s, struct keel_http_req *req, const char *rest, size_t len, bool users)
{
	while (len && rest[len - 1] == '/')
		len--; /* the path is clean already (lib/http): only a trailing slash can be left */
	if (len == 0)
		return users ? base_users(s, req) : base_roles(s, req);
	if (memchr(rest, '/', len)) {
		/* Before forUser sets any header. */
		static const char body[] = "{\"message\":\"Invalid path\"}";
		return keel_http_respond_json(req, 400, body, sizeof(body) - 1), KEEL_HTTP_DONE;
	}
	return users ? for_user(s, req, rest, len) : for_role(s, req, rest, len);
}

int kv_handle_auth(struct keel_http_req *req, void *ud)
{
	struct keel_kv_server *s = ud;
	const char *p = req->path + strlen(AUTH_PREFIX);
	size_t n = req->path_len - strlen(AUTH_PREFIX);
	if (same_name(p, n, "/enable", 7))
		return enable_disable(s, req);
	if (same_name(p, n, "/users", 6))
		return base_users(s, req);
	if (same_name(p, n, "/roles", 6))
		return base_roles(s, req);
	if (n >= 7 && memcmp(p, "/users/", 7) == 0)
		return by_name(s, req, p + 7, n - 7, true);
	if (n >= 7 && memcmp(p, "/roles/", 7) == 0)
		return by_name(s, req, p + 7, n - 7, false);
	return keel_http_error(req, 404, "404 page not found"), KEEL_HTTP_DONE;
}

int kv_auth_members_write(struct keel_http_req *req, void *ud)
{
	struct keel_kv_server *s = ud;
	int ar = root_access(s->auth, req, true);
	if (ar != KV_AUTH_ALLOW)
		return ar == KV_AUTH_WAIT ? KEEL_HTTP_HELD : no_auth(req);
	return req->method == KEEL_HTTP_POST ? kv_handle_members_add(req, ud) : kv_handle_member(req, ud);
}

/* ---- life cycle ------------------------------------------------------------------------------ */

int kv_auth_new(struct keel_kv_server *s)
{
	struct kv_auth *a = keel_calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	if (getrandom(a->mac_key, sizeof(a->mac_key), 0) != (ssize_t)sizeof(a->mac_key)) {
		keel_free(a);
		return -EIO;
	}
	a->refs = 1;
	a->s = s;
	s->auth = a;
	return 0;
}

static void auth_unref(struct kv_auth *a)
{
	if (--a->refs)
		return;
	for (size_t i = 0; i < CRED_SLOTS; i++)
		keel_free(a->creds[i].user);
	for (size_t i = 0; i < PARSED_SLOTS; i++) {
		keel_free(a->users[i].name);
		keel_kv_user_free(&a->users[i].user);
		keel_free(a->roles[i].name);
		keel_kv_role_free(&a->roles[i].role);
	}
	OPENSSL_cleanse(a, sizeof(*a));
	keel_free(a);
}

void kv_auth_release(struct keel_kv_server *s)
{
	struct kv_auth *a = s->auth;
	if (!a)
		return;
	s->auth = NULL;
	a->s = NULL;
	/* Jobs not started: their requests are gone with the HTTP server already. */
	while (a->queue_head) {
		struct kv_auth_job *j = a->queue_head;
		a->queue_head = j->next;
		struct kv_auth_ctx *c = j->ctx;
		c->pending = false;
		if (!c->req)
			ctx_free(c);
		job_free(j);
		a->refs--;
	}
	a->queue_tail = NULL;
	auth_unref(a);
}
