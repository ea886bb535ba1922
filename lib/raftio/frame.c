/* Transport frames: the incremental parser and the builders. The format and the order rules are
 * in frame.h. */
#include "raftio/frame.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/crc32c.h"

/* Input storage kept between frames; more is released once a big frame has been parsed. */
#define PARSER_KEEP_CAP ((size_t)256 << 10)

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

const char *keel_frame_kind_name(unsigned kind)
{
	switch (kind) {
	case KEEL_FRAME_HELLO:
		return "HELLO";
	case KEEL_FRAME_MSG:
		return "MSG";
	case KEEL_FRAME_SNAP_BEGIN:
		return "SNAP_BEGIN";
	case KEEL_FRAME_SNAP_CHUNK:
		return "SNAP_CHUNK";
	case KEEL_FRAME_SNAP_END:
		return "SNAP_END";
	case KEEL_FRAME_REMOVED:
		return "REMOVED";
	case KEEL_FRAME_QUERY:
		return "QUERY";
	case KEEL_FRAME_ANSWER:
		return "ANSWER";
	default:
		return "?";
	}
}

/* ---- parser ------------------------------------------------------------------------------- */

void keel_frame_parser_init(struct keel_frame_parser *p)
{
	memset(p, 0, sizeof(*p));
	keel_buf_init(&p->in);
	p->state = KEEL_FRAME_WANT_HELLO;
}

void keel_frame_parser_init_replies(struct keel_frame_parser *p)
{
	keel_frame_parser_init(p);
	p->state = KEEL_FRAME_REPLIES;
}

void keel_frame_parser_init_answer(struct keel_frame_parser *p)
{
	keel_frame_parser_init(p);
	p->state = KEEL_FRAME_ANSWERS;
}

void keel_frame_parser_free(struct keel_frame_parser *p)
{
	if (!p)
		return;
	keel_buf_free(&p->in);
	p->pos = 0;
}

int keel_frame_parser_feed(struct keel_frame_parser *p, const void *data, size_t len)
{
	if (p->error)
		return p->error;
	/* Forget what was parsed: the frames handed out before are invalid from here on, so the
	 * unparsed tail (at most one partial frame) can move to the front. */
	if (p->pos) {
		keel_buf_consume(&p->in, p->pos);
		p->pos = 0;
		/* A big frame left a big buffer behind: give it back rather than keep it per
		 * connection for good. */
		if (p->in.len == 0 && p->in.cap > PARSER_KEEP_CAP)
			keel_buf_free(&p->in);
	}
	if (!len)
		return 0;
	int r = keel_buf_append(&p->in, data, len);
	if (r < 0) {
		p->error = r;
		snprintf(p->why, sizeof(p->why), "out of memory buffering input");
	}
	return r;
}

/* Record a stream error: it sticks, and the message says what broke. */
static int fail(struct keel_frame_parser *p, struct keel_err *err, int code, const char *fmt, ...)
	KEEL_PRINTF(4, 5);

static int fail(struct keel_frame_parser *p, struct keel_err *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->why, sizeof(p->why), fmt, ap);
	va_end(ap);
	p->error = code;
	return keel_err_set(err, code, "frame: %s", p->why);
}

/* Checks a frame's kind against the stream state and its payload size against the kind, and
 * moves the state on. The CRC has been checked already. */
static int accept_frame(struct keel_frame_parser *p, struct keel_frame *f, struct keel_err *err)
{
	const char *name = keel_frame_kind_name(f->kind);
	if (p->state == KEEL_FRAME_REPLIES) {
		if (f->kind != KEEL_FRAME_REMOVED)
			return fail(p, err, -EPROTO, "%s frame (kind %u) from an acceptor", name, f->kind);
		if (f->len != KEEL_FRAME_REMOVED_LEN)
			return fail(p, err, -EPROTO, "REMOVED of %zu bytes", f->len);
		return 1;
	}
	if (p->state == KEEL_FRAME_ANSWERS) {
		if (f->kind != KEEL_FRAME_ANSWER)
			return fail(p, err, -EPROTO, "%s frame (kind %u) in answer to a QUERY", name, f->kind);
		return 1;
	}
	if (p->state == KEEL_FRAME_QUERIED)
		return fail(p, err, -EPROTO, "%s after QUERY", name);
	switch (f->kind) {
	case KEEL_FRAME_QUERY:
		if (p->state != KEEL_FRAME_WANT_HELLO)
			return fail(p, err, -EPROTO, "QUERY after HELLO");
		if (f->len != KEEL_FRAME_QUERY_LEN)
			return fail(p, err, -EPROTO, "QUERY of %zu bytes", f->len);
		p->state = KEEL_FRAME_QUERIED;
		return 1;
	case KEEL_FRAME_ANSWER:
		return fail(p, err, -EPROTO, "ANSWER on a message stream");
	case KEEL_FRAME_HELLO:
		if (p->state != KEEL_FRAME_WANT_HELLO)
			return fail(p, err, -EPROTO, "second HELLO");
		if (f->len != KEEL_FRAME_HELLO_LEN)
			return fail(p, err, -EPROTO, "HELLO of %zu bytes", f->len);
		p->state = KEEL_FRAME_OPEN;
		return 1;
	case KEEL_FRAME_MSG:
	case KEEL_FRAME_SNAP_BEGIN:
	case KEEL_FRAME_SNAP_CHUNK:
	case KEEL_FRAME_SNAP_END:
		break;
	case KEEL_FRAME_REMOVED:
		return fail(p, err, -EPROTO, "REMOVED on a message stream");
	default:
		return fail(p, err, -EPROTO, "unknown frame kind %u", f->kind);
	}
	if (p->state == KEEL_FRAME_WANT_HELLO)
		return fail(p, err, -EPROTO, "%s before HELLO", name);

	switch (f->kind) {
	case KEEL_FRAME_MSG:
		if (f->len == 0)
			return fail(p, err, -EPROTO, "empty MSG");
		return 1;
	case KEEL_FRAME_SNAP_BEGIN:
		if (p->state == KEEL_FRAME_IN_SNAP)
			return fail(p, err, -EPROTO, "SNAP_BEGIN inside a snapshot");
		if (f->len < 8 + 1)
			return fail(p, err, -EPROTO, "SNAP_BEGIN of %zu bytes", f->len);
		f->snap_size = keel_le64(f->payload + f->len - 8);
		p->snap_left = f->snap_size;
		p->state = KEEL_FRAME_IN_SNAP;
		return 1;
	case KEEL_FRAME_SNAP_CHUNK:
		if (p->state != KEEL_FRAME_IN_SNAP)
			return fail(p, err, -EPROTO, "SNAP_CHUNK outside a snapshot");
		if (f->len == 0 || f->len > KEEL_FRAME_MAX_CHUNK)
			return fail(p, err, -EPROTO, "SNAP_CHUNK of %zu bytes", f->len);
		if (f->len > p->snap_left)
			return fail(p, err, -EPROTO, "snapshot data beyond the announced size");
		p->snap_left -= f->len;
		return 1;
	default: /* KEEL_FRAME_SNAP_END */
		if (p->state != KEEL_FRAME_IN_SNAP)
			return fail(p, err, -EPROTO, "SNAP_END outside a snapshot");
		if (f->len != KEEL_FRAME_SNAP_END_LEN)
			return fail(p, err, -EPROTO, "SNAP_END of %zu bytes", f->len);
		if (p->snap_left)
			return fail(p, err, -EPROTO, "SNAP_END with %llu bytes of data missing",
				    (unsigned long long)p->snap_left);
		p->state = KEEL_FRAME_OPEN;
		return 1;
	}
}

int keel_frame_parser_next(struct keel_frame_parser *p, struct keel_frame *ret,
			   struct keel_err *err)
{
	if (p->error)
		return keel_err_set(err, p->error, "frame: %s", p->why);
	const uint8_t *base = (const uint8_t *)p->in.data + p->pos;
	size_t avail = p->in.len - p->pos;
	if (avail < 4)
		return 0;
	/* The length is judged before anything is waited for or allocated. */
	uint32_t length = keel_le32(base);
	if (length == 0 || length > 1 + KEEL_FRAME_MAX_PAYLOAD)
		return fail(p, err, -EMSGSIZE, "frame length %u out of range", length);
	size_t total = KEEL_FRAME_HEADER_LEN - 1 + (size_t)length;
	if (avail < total) {
		/* Make room for the rest once, instead of growing step by step as it arrives. */
		int r = keel_buf_reserve(&p->in, total - avail);
		if (r < 0)
			return fail(p, err, r, "out of memory for a frame of %u bytes", length);
		return 0;
	}
	uint32_t want = keel_le32(base + 4);
	uint32_t got = keel_crc32c(0, base + 8, length);
	if (want != got)
		return fail(p, err, -KEEL_ECORRUPT, "crc mismatch in a %s frame of %u bytes",
			    keel_frame_kind_name(base[8]), length);
	struct keel_frame f = {
		.kind = base[8],
		.payload = base + KEEL_FRAME_HEADER_LEN,
		.len = length - 1,
	};
	int r = accept_frame(p, &f, err);
	if (r < 0)
		return r;
	p->pos += total;
	*ret = f;
	return 1;
}

/* ---- builders ----------------------------------------------------------------------------- */

void keel_frame_seal(uint8_t *frame, uint8_t kind, size_t payload_len)
{
	put32(frame, (uint32_t)(payload_len + 1));
	frame[8] = kind;
	put32(frame + 4, keel_crc32c(0, frame + 8, payload_len + 1));
}

int keel_frame_append(struct keel_buf *out, uint8_t kind, const void *payload, size_t payload_len)
{
	if (payload_len > KEEL_FRAME_MAX_PAYLOAD)
		return -EMSGSIZE;
	int r = keel_buf_reserve(out, KEEL_FRAME_HEADER_LEN + payload_len);
	if (r < 0)
		return r;
	uint8_t *frame = (uint8_t *)out->data + out->len;
	if (payload_len)
		memcpy(frame + KEEL_FRAME_HEADER_LEN, payload, payload_len);
	keel_frame_seal(frame, kind, payload_len);
	out->len += KEEL_FRAME_HEADER_LEN + payload_len;
	out->data[out->len] = '\0';
	return 0;
}

int keel_frame_append_hello(struct keel_buf *out, const struct keel_frame_hello *h)
{
	uint8_t p[KEEL_FRAME_HELLO_LEN];
	for (int i = 0; i < 8; i++) {
		p[i] = (uint8_t)(h->cluster_id >> (8 * i));
		p[8 + i] = (uint8_t)(h->sender >> (8 * i));
	}
	put32(p + 16, h->version);
	return keel_frame_append(out, KEEL_FRAME_HELLO, p, sizeof(p));
}

int keel_frame_hello_decode(const struct keel_frame *f, struct keel_frame_hello *ret)
{
	if (f->kind != KEEL_FRAME_HELLO || f->len != KEEL_FRAME_HELLO_LEN)
		return -EPROTO;
	ret->cluster_id = keel_le64(f->payload);
	ret->sender = keel_le64(f->payload + 8);
	ret->version = keel_le32(f->payload + 16);
	return 0;
}

int keel_frame_append_snap_end(struct keel_buf *out, uint32_t data_crc)
{
	uint8_t p[KEEL_FRAME_SNAP_END_LEN];
	put32(p, data_crc);
	return keel_frame_append(out, KEEL_FRAME_SNAP_END, p, sizeof(p));
}

int keel_frame_snap_end_decode(const struct keel_frame *f, uint32_t *ret_crc)
{
	if (f->kind != KEEL_FRAME_SNAP_END || f->len != KEEL_FRAME_SNAP_END_LEN)
		return -EPROTO;
	*ret_crc = keel_le32(f->payload);
	return 0;
}

int keel_frame_append_removed(struct keel_buf *out, uint64_t removed_id)
{
	uint8_t p[KEEL_FRAME_REMOVED_LEN];
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(removed_id >> (8 * i));
	return keel_frame_append(out, KEEL_FRAME_REMOVED, p, sizeof(p));
}

int keel_frame_removed_decode(const struct keel_frame *f, uint64_t *ret_id)
{
	if (f->kind != KEEL_FRAME_REMOVED || f->len != KEEL_FRAME_REMOVED_LEN)
		return -EPROTO;
	*ret_id = keel_le64(f->payload);
	return 0;
}

int keel_frame_append_query(struct keel_buf *out, uint64_t cluster_id, uint32_t version)
{
	uint8_t p[KEEL_FRAME_QUERY_LEN];
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(cluster_id >> (8 * i));
	put32(p + 8, version);
	return keel_frame_append(out, KEEL_FRAME_QUERY, p, sizeof(p));
}

int keel_frame_query_decode(const struct keel_frame *f, uint64_t *ret_cluster_id, uint32_t *ret_version)
{
	if (f->kind != KEEL_FRAME_QUERY || f->len != KEEL_FRAME_QUERY_LEN)
		return -EPROTO;
	*ret_cluster_id = keel_le64(f->payload);
	*ret_version = keel_le32(f->payload + 8);
	return 0;
}
