/* The binary form of a request, as it travels through the Raft log and to peers
 * (docs/kv-store.md, "Commands"). The decoder takes bytes from the network and the disk: it
 * accepts only the one canonical encoding of each request and never reads past the input. */
#include "kv/store-internal.h"

#include <errno.h>
#include <string.h>

#define KV_CMD_VERSION 1

/* The common flags come first, so a typical request's flags fit in one varint byte. */
enum {
	KV_F_VALUE = 1 << 0,
	KV_F_TTL = 1 << 1,
	KV_F_DIR = 1 << 2,
	KV_F_PREV_EXIST = 1 << 3,
	KV_F_PREV_EXIST_TRUE = 1 << 4,
	KV_F_PREV_VALUE = 1 << 5,
	KV_F_PREV_INDEX = 1 << 6,
	KV_F_RECURSIVE = 1 << 7,
	KV_F_SORTED = 1 << 8,
	KV_F_REFRESH = 1 << 9,
	KV_F_ALL = (1 << 10) - 1,
};

static int kv_put_varint(struct keel_buf *b, uint64_t v)
{
	unsigned char tmp[10];
	size_t n = 0;
	do {
		tmp[n] = (unsigned char)(v & 0x7f);
		v >>= 7;
		if (v)
			tmp[n] |= 0x80;
		n++;
	} while (v);
	return keel_buf_append(b, tmp, n);
}

static int kv_put_bytes(struct keel_buf *b, const char *s, size_t n)
{
	int r = kv_put_varint(b, n);
	if (r == 0 && n)
		r = keel_buf_append(b, s, n);
	return r;
}

int keel_kv_cmd_encode(const struct keel_kv_req *req, struct keel_buf *out)
{
	if (!req || !out || req->method < KEEL_KV_PUT || req->method > KEEL_KV_SYNC ||
	    req->prev_exist < KEEL_KV_PREV_EXIST_UNSET || req->prev_exist > 1 ||
	    (!req->path && req->path_len) || (!req->value && req->value_len) ||
	    (!req->prev_value && req->prev_value_len))
		return -EINVAL;
	uint64_t flags = 0;
	if (req->has_ttl)
		flags |= KV_F_TTL;
	if (req->dir)
		flags |= KV_F_DIR;
	if (req->recursive)
		flags |= KV_F_RECURSIVE;
	if (req->sorted)
		flags |= KV_F_SORTED;
	if (req->refresh)
		flags |= KV_F_REFRESH;
	if (req->prev_exist != KEEL_KV_PREV_EXIST_UNSET)
		flags |= KV_F_PREV_EXIST;
	if (req->prev_exist == 1)
		flags |= KV_F_PREV_EXIST_TRUE;
	if (req->value_len)
		flags |= KV_F_VALUE;
	if (req->prev_value_len)
		flags |= KV_F_PREV_VALUE;
	if (req->prev_index)
		flags |= KV_F_PREV_INDEX;
	size_t start = out->len;
	unsigned char head[2] = {KV_CMD_VERSION, (unsigned char)req->method};
	int r = keel_buf_append(out, head, 2);
	r = r ? r : kv_put_varint(out, flags);
	r = r ? r : keel_buf_put_le64(out, (uint64_t)req->time);
	r = r ? r : kv_put_bytes(out, req->path, req->path_len);
	if (!r && (flags & KV_F_VALUE))
		r = kv_put_bytes(out, req->value, req->value_len);
	if (!r && (flags & KV_F_PREV_VALUE))
		r = kv_put_bytes(out, req->prev_value, req->prev_value_len);
	if (!r && (flags & KV_F_PREV_INDEX))
		r = kv_put_varint(out, req->prev_index);
	if (!r && (flags & KV_F_TTL))
		r = kv_put_varint(out, req->ttl);
	if (r) {
		keel_buf_truncate(out, start);
		return -ENOMEM;
	}
	return 0;
}

struct kv_rd {
	const unsigned char *p;
	size_t left;
};

/* A canonical LEB128 varint: at most 10 bytes, no padding with zero groups, no overflow. */
static int kv_get_varint(struct kv_rd *rd, uint64_t *ret)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < 10; i++) {
		if (!rd->left)
			return -KEEL_ECORRUPT;
		unsigned char c = *rd->p++;
		rd->left--;
		if (i == 9 && c > 1)
			return -KEEL_ECORRUPT;
		v |= (uint64_t)(c & 0x7f) << (7 * i);
		if (!(c & 0x80)) {
			if (c == 0 && i > 0)
				return -KEEL_ECORRUPT;
			*ret = v;
			return 0;
		}
	}
	return -KEEL_ECORRUPT;
}

static int kv_get_bytes(struct kv_rd *rd, const char **ret, size_t *ret_len)
{
	uint64_t n;
	if (kv_get_varint(rd, &n) < 0 || n > rd->left)
		return -KEEL_ECORRUPT;
	*ret = (const char *)rd->p;
	*ret_len = (size_t)n;
	rd->p += n;
	rd->left -= (size_t)n;
	return 0;
}

int keel_kv_cmd_decode(const void *data, size_t len, struct keel_kv_req *ret)
{
	struct kv_rd rd = {data, len};
	struct keel_kv_req q = {.prev_exist = KEEL_KV_PREV_EXIST_UNSET};
	uint64_t flags, t;
	if (!data || !ret || len < 2 || rd.p[0] != KV_CMD_VERSION || rd.p[1] < KEEL_KV_PUT ||
	    rd.p[1] > KEEL_KV_SYNC)
		return -KEEL_ECORRUPT;
	q.method = (enum keel_kv_method)rd.p[1];
	rd.p += 2;
	rd.left -= 2;
	if (kv_get_varint(&rd, &flags) < 0 || (flags & ~(uint64_t)KV_F_ALL) ||
	    ((flags & KV_F_PREV_EXIST_TRUE) && !(flags & KV_F_PREV_EXIST)) || rd.left < 8)
		return -KEEL_ECORRUPT;
	t = keel_le64(rd.p);
	rd.p += 8;
	rd.left -= 8;
	q.time = (int64_t)t;
	q.has_ttl = flags & KV_F_TTL;
	q.dir = flags & KV_F_DIR;
	q.recursive = flags & KV_F_RECURSIVE;
	q.sorted = flags & KV_F_SORTED;
	q.refresh = flags & KV_F_REFRESH;
	if (flags & KV_F_PREV_EXIST)
		q.prev_exist = (flags & KV_F_PREV_EXIST_TRUE) ? 1 : 0;
	if (kv_get_bytes(&rd, &q.path, &q.path_len) < 0)
		return -KEEL_ECORRUPT;
	if ((flags & KV_F_VALUE) &&
	    (kv_get_bytes(&rd, &q.value, &q.value_len) < 0 || q.value_len == 0))
		return -KEEL_ECORRUPT;
	if ((flags & KV_F_PREV_VALUE) &&
	    (kv_get_bytes(&rd, &q.prev_value, &q.prev_value_len) < 0 || q.prev_value_len == 0))
		return -KEEL_ECORRUPT;
	if ((flags & KV_F_PREV_INDEX) && (kv_get_varint(&rd, &q.prev_index) < 0 || !q.prev_index))
		return -KEEL_ECORRUPT;
	if ((flags & KV_F_TTL) && kv_get_varint(&rd, &q.ttl) < 0)
		return -KEEL_ECORRUPT;
	if (rd.left)
		return -KEEL_ECORRUPT;
	if (!q.path_len)
		q.path = "";
	*ret = q;
	return 0;
}
