/* The bytes etcd 3.4's v2 API writes: errors (error/error.go), events and nodes (Go's
 * encoding/json on Event and NodeExtern: field order, omitempty, HTML-safe escaping, RFC3339Nano
 * times, json.Encoder's trailing newline) and /v2/stats/store. Node trees are written by hand
 * rather than with keel_jw, whose nesting limit a deep key would pass. */
#include "kv/store-internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/jw.h"
#include "base/mem.h"

/* ---- errors --------------------------------------------------------------------------------- */

static const struct {
	int code;
	int status;
	const char *message;
} kv_errors[] = {
	{100, 404, "Key not found"},
	{101, 412, "Compare failed"},
	{102, 403, "Not a file"},
	{103, 400, "Reached the max number of peers in the cluster"},
	{104, 400, "Not a directory"},
	{105, 412, "Key already exists"},
	{106, 400, "The prefix of given key is a keyword in etcd"},
	{107, 400, "Root is read only"},
	{108, 403, "Directory not empty"},
	{109, 400, "Peer address has existed"},
	{110, 401, "The request requires user authentication"},
	{200, 400, "Value is Required in POST form"},
	{201, 400, "PrevValue is Required in POST form"},
	{202, 400, "The given TTL in POST form is not a number"},
	{203, 400, "The given index in POST form is not a number"},
	{204, 400, "Value or TTL is required in POST form"},
	{205, 400, "The given timeout in POST form is not a number"},
	{206, 400, "Name is required in POST form"},
	{207, 400, "Index or value is required"},
	{208, 400, "Index and value cannot both be specified"},
	{209, 400, "Invalid field"},
	{210, 400, "Invalid POST form"},
	{211, 400, "Value provided on refresh"},
	{212, 400, "A TTL must be provided on refresh"},
	{300, 500, "Raft Internal Error"},
	{301, 500, "During Leader Election"},
	{400, 400, "watcher is cleared due to etcd recovery"},
	{401, 400, "The event in requested index is outdated and cleared"},
	{402, 400, "Standby Internal Error"},
	{403, 400, "Invalid active size"},
	{404, 400, "Standby remove delay"},
	{500, 400, "Client Internal Error"},
};

const char *keel_kv_error_message(int code)
{
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(kv_errors); i++)
		if (kv_errors[i].code == code)
			return kv_errors[i].message;
	return "";
}

int keel_kv_error_status(int code)
{
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(kv_errors); i++)
		if (kv_errors[i].code == code)
			return kv_errors[i].status;
	return 400;
}

int keel_kv_error_set(struct keel_kv_error *e, int code, const char *cause, size_t cause_len,
		      uint64_t index)
{
	char *copy = NULL;
	if (cause && cause_len) {
		copy = keel_malloc(cause_len + 1);
		if (!copy)
			return -ENOMEM;
		memcpy(copy, cause, cause_len);
		copy[cause_len] = '\0';
	}
	keel_free(e->cause);
	e->code = code;
	e->index = index;
	e->cause = copy;
	e->cause_len = copy ? cause_len : 0;
	return 0;
}

void keel_kv_error_clear(struct keel_kv_error *e)
{
	if (!e)
		return;
	keel_free(e->cause);
	*e = (struct keel_kv_error){0};
}

size_t kv_strip_len(const struct keel_kv_store *s, const char *key, size_t len)
{
	if (s->prefix_len && len >= s->prefix_len && memcmp(key, s->prefix, s->prefix_len) == 0)
		return s->prefix_len;
	return 0;
}

int kv_fail(const struct keel_kv_store *s, struct keel_kv_error *e, int code, const char *cause,
	    size_t cause_len, uint64_t index)
{
	size_t strip = kv_strip_len(s, cause, cause_len);
	int r = keel_kv_error_set(e, code, cause + strip, cause_len - strip, index);
	return r < 0 ? r : KEEL_KV_FAILED;
}

int keel_kv_error_json(const struct keel_kv_error *e, struct keel_buf *out)
{
	struct keel_jw w;
	keel_jw_init(&w, out, KEEL_JW_GO_ESCAPE);
	keel_jw_obj_begin(&w);
	keel_jw_ki64(&w, "errorCode", e->code);
	keel_jw_kstr(&w, "message", keel_kv_error_message(e->code));
	if (e->cause_len) {
		keel_jw_key(&w, "cause");
		keel_jw_strn(&w, e->cause, e->cause_len);
	}
	keel_jw_ku64(&w, "index", e->index);
	keel_jw_obj_end(&w);
	int r = keel_jw_finish(&w);
	if (r == 0 && keel_buf_putc(out, '\n') < 0)
		r = -ENOMEM;
	return r;
}

/* ---- nodes ---------------------------------------------------------------------------------- */

static const char *const kv_action_names[] = {
	[KEEL_KV_ACTION_GET] = "get",
	[KEEL_KV_ACTION_SET] = "set",
	[KEEL_KV_ACTION_CREATE] = "create",
	[KEEL_KV_ACTION_UPDATE] = "update",
	[KEEL_KV_ACTION_DELETE] = "delete",
	[KEEL_KV_ACTION_CAS] = "compareAndSwap",
	[KEEL_KV_ACTION_CAD] = "compareAndDelete",
	[KEEL_KV_ACTION_EXPIRE] = "expire",
};

const char *keel_kv_action_name(enum keel_kv_action a)
{
	if ((unsigned)a >= KEEL_ARRAY_SIZE(kv_action_names))
		return "";
	return kv_action_names[a];
}

/* A writer with a sticky error, like keel_jw but without containers. */
struct kv_out {
	struct keel_buf *b;
	int err;
};

static void kv_put(struct kv_out *o, const char *s, size_t n)
{
	if (!o->err && keel_buf_append(o->b, s, n) < 0)
		o->err = -ENOMEM;
}

#define KV_PUTS(o, lit) kv_put((o), (lit), sizeof(lit) - 1)

static void kv_put_str(struct kv_out *o, const char *s, size_t n)
{
	KV_PUTS(o, "\"");
	if (!o->err && keel_json_escape(o->b, s, n, KEEL_JW_GO_ESCAPE) < 0)
		o->err = -ENOMEM;
	KV_PUTS(o, "\"");
}

static void kv_put_u64(struct kv_out *o, uint64_t v)
{
	if (!o->err && keel_buf_put_u64(o->b, v) < 0)
		o->err = -ENOMEM;
}

static void kv_put_i64(struct kv_out *o, int64_t v)
{
	if (!o->err && keel_buf_put_i64(o->b, v) < 0)
		o->err = -ENOMEM;
}

/* `"expiration":"...","ttl":N` for a node with an expiration (ttl omitted when 0). */
static void kv_put_expiry(struct kv_out *o, int64_t expire, int64_t ttl, bool *comma)
{
	char t[KEEL_RFC3339_MAX];
	size_t n = keel_fmt_rfc3339(expire, 1, t, sizeof(t));
	if (!n) {
		if (!o->err)
			o->err = -ERANGE; /* Go's Time.MarshalJSON refuses years past 9999 */
		return;
	}
	if (*comma)
		KV_PUTS(o, ",");
	KV_PUTS(o, "\"expiration\":\"");
	kv_put(o, t, n);
	KV_PUTS(o, "\"");
	*comma = true;
	if (ttl) {
		KV_PUTS(o, ",\"ttl\":");
		kv_put_i64(o, ttl);
	}
}

/* The members of a NodeExtern up to (not including) "nodes". */
static void kv_put_head(struct kv_out *o, const char *key, size_t key_len, const char *value,
			size_t value_len, bool has_value, bool dir, int64_t expire, int64_t ttl,
			bool *comma)
{
	*comma = false;
	KV_PUTS(o, "{");
	if (key_len) {
		KV_PUTS(o, "\"key\":");
		kv_put_str(o, key, key_len);
		*comma = true;
	}
	if (has_value) {
		if (*comma)
			KV_PUTS(o, ",");
		KV_PUTS(o, "\"value\":");
		kv_put_str(o, value, value_len);
		*comma = true;
	}
	if (dir) {
		if (*comma)
			KV_PUTS(o, ",");
		KV_PUTS(o, "\"dir\":true");
		*comma = true;
	}
	if (expire)
		kv_put_expiry(o, expire, ttl, comma);
}

/* The members after "nodes", and the closing brace. */
static void kv_put_tail(struct kv_out *o, uint64_t modified, uint64_t created, bool comma)
{
	if (modified) {
		if (comma)
			KV_PUTS(o, ",");
		KV_PUTS(o, "\"modifiedIndex\":");
		kv_put_u64(o, modified);
		comma = true;
	}
	if (created) {
		if (comma)
			KV_PUTS(o, ",");
		KV_PUTS(o, "\"createdIndex\":");
		kv_put_u64(o, created);
	}
	KV_PUTS(o, "}");
}

static void kv_put_enode(struct kv_out *o, const struct keel_kv_enode *n, size_t strip)
{
	bool comma;
	kv_put_head(o, n->key + strip, n->key_len - strip, n->value, n->value_len, n->value != NULL,
		    n->dir, n->expiration, n->ttl, &comma);
	kv_put_tail(o, n->modified_index, n->created_index, comma);
}

int keel_kv_event_json(const struct keel_kv_event *ev, unsigned flags, struct keel_buf *out)
{
	struct kv_out o = {out, 0};
	size_t start = out->len;
	KV_PUTS(&o, "{\"action\":\"");
	kv_put(&o, keel_kv_action_name(ev->action), strlen(keel_kv_action_name(ev->action)));
	KV_PUTS(&o, "\"");
	bool bare = (flags & KEEL_KV_JSON_NO_VALUE) &&
		    (ev->action == KEEL_KV_ACTION_SET || ev->action == KEEL_KV_ACTION_CAS ||
		     ev->action == KEEL_KV_ACTION_CREATE || ev->action == KEEL_KV_ACTION_UPDATE);
	if (!bare) {
		KV_PUTS(&o, ",\"node\":");
		if (ev->get_json)
			kv_put(&o, ev->get_json, ev->get_json_len);
		else
			kv_put_enode(&o, &ev->node, ev->strip);
		if (ev->has_prev) {
			KV_PUTS(&o, ",\"prevNode\":");
			kv_put_enode(&o, &ev->prev, ev->strip);
		}
	}
	KV_PUTS(&o, "}\n");
	if (o.err)
		keel_buf_truncate(out, start);
	return o.err;
}

/* ---- trees (Get) ---------------------------------------------------------------------------- */

static int kv_by_name(const void *a, const void *b)
{
	const struct kv_node *x = *(const struct kv_node *const *)a;
	const struct kv_node *y = *(const struct kv_node *const *)b;
	size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
	int c = memcmp(kv_name(x), kv_name(y), n);
	if (c)
		return c;
	return x->name_len < y->name_len ? -1 : x->name_len > y->name_len;
}

/* One directory being listed: its visible children, in the order they are written. */
struct kv_frame {
	const struct kv_node *dir;
	const struct kv_node **kids;
	uint32_t count, next;
	size_t path_len;        /* the directory's path length in the path buffer */
};

/* The visible (not hidden) children of d, sorted by name when asked. */
static int kv_list(const struct kv_node *d, bool sorted, struct kv_frame *f)
{
	f->dir = d;
	f->kids = NULL;
	f->count = f->next = 0;
	if (d->u.dir.count == 0)
		return 0;
	f->kids = keel_malloc((size_t)d->u.dir.count * sizeof(*f->kids));
	if (!f->kids)
		return -ENOMEM;
	for (uint32_t i = 0; i < d->u.dir.cap; i++) {
		const struct kv_node *c = d->u.dir.slots[i];
		if (c && kv_name(c)[0] != '_')
			f->kids[f->count++] = c;
	}
	if (sorted && f->count > 1)
		qsort(f->kids, f->count, sizeof(*f->kids), kv_by_name);
	return 0;
}

/* Write n's members up to "nodes" with the key in path[0, len) (after the prefix). */
static void kv_put_node_head(const struct keel_kv_store *s, struct kv_out *o,
			     const struct kv_node *n, const char *path, size_t len, int64_t now,
			     bool *comma)
{
	size_t strip = kv_strip_len(s, path, len);
	kv_put_head(o, path + strip, len - strip, kv_value(n), n->is_dir ? 0 : n->u.value_len,
		    !n->is_dir, n->is_dir, n->expire, n->expire ? kv_ttl(n->expire, now) : 0,
		    comma);
}

int kv_render_tree(const struct keel_kv_store *s, const struct kv_node *n, const char *path,
		   size_t len, bool recursive, bool sorted, int64_t now, struct keel_buf *out)
{
	struct kv_out o = {out, 0};
	struct keel_buf pb = KEEL_BUF_INIT;
	struct kv_frame *stack = NULL;
	size_t depth = 0, cap = 8;
	bool comma;
	if (keel_buf_append(&pb, path, len) < 0)
		return -ENOMEM;
	kv_put_node_head(s, &o, n, pb.data, pb.len, now, &comma);
	if (!n->is_dir) {
		kv_put_tail(&o, n->modified, n->created, comma);
		goto out;
	}
	/* A directory lists its children (etcd's loadInternalNode), which show their own only
	 * when recursive. Each frame is a directory whose "nodes" array is open; one with no
	 * visible child has none (omitempty on an empty slice). A directory always wrote
	 * "dir":true, so a comma always comes before "nodes" and the indexes. */
	stack = keel_malloc(cap * sizeof(*stack));
	if (!stack || kv_list(n, sorted, &stack[0]) < 0) {
		o.err = -ENOMEM;
		goto out;
	}
	stack[0].path_len = pb.len;
	depth = 1;
	if (stack[0].count)
		KV_PUTS(&o, ",\"nodes\":[");
	while (depth && !o.err) {
		struct kv_frame *f = &stack[depth - 1];
		if (f->next == f->count) {
			if (f->count)
				KV_PUTS(&o, "]");
			kv_put_tail(&o, f->dir->modified, f->dir->created, true);
			keel_free(f->kids);
			f->kids = NULL;
			depth--;
			continue;
		}
		const struct kv_node *c = f->kids[f->next++];
		if (f->next > 1)
			KV_PUTS(&o, ",");
		pb.len = f->path_len;
		if ((f->path_len > 1 && keel_buf_putc(&pb, '/') < 0) ||
		    keel_buf_append(&pb, kv_name(c), c->name_len) < 0) {
			o.err = -ENOMEM;
			break;
		}
		kv_put_node_head(s, &o, c, pb.data, pb.len, now, &comma);
		if (!c->is_dir || !recursive) {
			kv_put_tail(&o, c->modified, c->created, comma);
			continue;
		}
		if (depth == cap) {
			struct kv_frame *ns = keel_reallocarray(stack, cap * 2, sizeof(*stack));
			if (!ns) {
				o.err = -ENOMEM;
				break;
			}
			stack = ns;
			cap *= 2;
		}
		struct kv_frame *nf = &stack[depth];
		if (kv_list(c, sorted, nf) < 0) {
			o.err = -ENOMEM;
			break;
		}
		nf->path_len = pb.len;
		depth++;
		if (nf->count)
			KV_PUTS(&o, ",\"nodes\":[");
	}
out:
	for (size_t i = 0; i < depth; i++)
		keel_free(stack[i].kids);
	keel_free(stack);
	keel_buf_free(&pb);
	return o.err;
}

/* ---- statistics ----------------------------------------------------------------------------- */

int keel_kv_store_stats_json(const struct keel_kv_store *s, struct keel_buf *out)
{
	const struct keel_kv_stats *st = &s->stats;
	struct keel_jw w;
	keel_jw_init(&w, out, KEEL_JW_GO_ESCAPE);
	keel_jw_obj_begin(&w);
	keel_jw_ku64(&w, "getsSuccess", st->gets_success);
	keel_jw_ku64(&w, "getsFail", st->gets_fail);
	keel_jw_ku64(&w, "setsSuccess", st->sets_success);
	keel_jw_ku64(&w, "setsFail", st->sets_fail);
	keel_jw_ku64(&w, "deleteSuccess", st->delete_success);
	keel_jw_ku64(&w, "deleteFail", st->delete_fail);
	keel_jw_ku64(&w, "updateSuccess", st->update_success);
	keel_jw_ku64(&w, "updateFail", st->update_fail);
	keel_jw_ku64(&w, "createSuccess", st->create_success);
	keel_jw_ku64(&w, "createFail", st->create_fail);
	keel_jw_ku64(&w, "compareAndSwapSuccess", st->cas_success);
	keel_jw_ku64(&w, "compareAndSwapFail", st->cas_fail);
	keel_jw_ku64(&w, "compareAndDeleteSuccess", st->cad_success);
	keel_jw_ku64(&w, "compareAndDeleteFail", st->cad_fail);
	keel_jw_ku64(&w, "expireCount", st->expire_count);
	keel_jw_ku64(&w, "watchers", s->watchers);
	keel_jw_obj_end(&w);
	return keel_jw_finish(&w);
}
