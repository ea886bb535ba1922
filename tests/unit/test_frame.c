#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/crc32c.h"
#include "base/fault.h"
#include "base/mem.h"
#include "raftio/frame.h"

/* ---- helpers ------------------------------------------------------------------------------ */

static void append(struct keel_buf *b, uint8_t kind, const void *payload, size_t len)
{
	assert_int_equal(keel_frame_append(b, kind, payload, len), 0);
}

static void append_hello(struct keel_buf *b)
{
	const struct keel_frame_hello h = {.cluster_id = 0x1122334455667788ull, .sender = 7,
					   .version = KEEL_FRAME_PROTOCOL_VERSION};
	assert_int_equal(keel_frame_append_hello(b, &h), 0);
}

/* SNAP_BEGIN with a stand-in message (the parser does not decode it) and the size. */
static void append_begin(struct keel_buf *b, uint64_t size)
{
	uint8_t p[3 + 8] = {'m', 's', 'g'};
	for (int i = 0; i < 8; i++)
		p[3 + i] = (uint8_t)(size >> (8 * i));
	append(b, KEEL_FRAME_SNAP_BEGIN, p, sizeof(p));
}

/* Every kind, with a message in the middle of a snapshot. */
static void build_stream(struct keel_buf *b)
{
	append_hello(b);
	append(b, KEEL_FRAME_MSG, "first message", 13);
	append_begin(b, 5);
	append(b, KEEL_FRAME_SNAP_CHUNK, "abc", 3);
	append(b, KEEL_FRAME_MSG, "between", 7);
	append(b, KEEL_FRAME_SNAP_CHUNK, "de", 2);
	assert_int_equal(keel_frame_append_snap_end(b, keel_crc32c(0, "abcde", 5)), 0);
	append(b, KEEL_FRAME_MSG, "last", 4);
}

struct seen {
	uint8_t kinds[16];
	char text[16][32];
	size_t n;
};

static void record(struct seen *s, const struct keel_frame *f)
{
	assert_true(s->n < 16);
	s->kinds[s->n] = f->kind;
	size_t len = f->len < 31 ? f->len : 31;
	memcpy(s->text[s->n], f->payload, len);
	s->text[s->n][len] = '\0';
	s->n++;
}

/* Feed `stream` in pieces of `step` bytes, collecting frames; returns the parser's last result. */
static int parse_in_steps(const struct keel_buf *stream, size_t step, struct seen *s)
{
	struct keel_frame_parser p;
	keel_frame_parser_init(&p);
	int r = 0;
	for (size_t off = 0; off < stream->len && r >= 0; off += step) {
		size_t len = stream->len - off < step ? stream->len - off : step;
		assert_int_equal(keel_frame_parser_feed(&p, stream->data + off, len), 0);
		struct keel_frame f;
		while ((r = keel_frame_parser_next(&p, &f, NULL)) > 0)
			record(s, &f);
	}
	keel_frame_parser_free(&p);
	return r;
}

static void check_stream(const struct seen *s)
{
	static const uint8_t kinds[] = {KEEL_FRAME_HELLO, KEEL_FRAME_MSG, KEEL_FRAME_SNAP_BEGIN,
					KEEL_FRAME_SNAP_CHUNK, KEEL_FRAME_MSG, KEEL_FRAME_SNAP_CHUNK,
					KEEL_FRAME_SNAP_END, KEEL_FRAME_MSG};
	assert_int_equal(s->n, sizeof(kinds));
	assert_memory_equal(s->kinds, kinds, sizeof(kinds));
	assert_string_equal(s->text[1], "first message");
	assert_string_equal(s->text[3], "abc");
	assert_string_equal(s->text[4], "between");
	assert_string_equal(s->text[5], "de");
	assert_string_equal(s->text[7], "last");
}

/* Parse one stream whole and expect `want` as the first non-frame result. */
static int parse_all(const struct keel_buf *stream, size_t *ret_frames)
{
	struct keel_frame_parser p;
	keel_frame_parser_init(&p);
	assert_int_equal(keel_frame_parser_feed(&p, stream->data, stream->len), 0);
	struct keel_frame f;
	int r;
	size_t n = 0;
	while ((r = keel_frame_parser_next(&p, &f, NULL)) > 0)
		n++;
	if (r < 0) /* errors stick */
		assert_int_equal(keel_frame_parser_next(&p, &f, NULL), r);
	keel_frame_parser_free(&p);
	if (ret_frames)
		*ret_frames = n;
	return r;
}

/* ---- tests -------------------------------------------------------------------------------- */

static void frame_round_trip_of_each_kind(void **state)
{
	struct keel_buf b = KEEL_BUF_INIT;
	build_stream(&b);
	struct keel_frame_parser p;
	keel_frame_parser_init(&p);
	assert_int_equal(keel_frame_parser_feed(&p, b.data, b.len), 0);
	struct keel_frame f;

	assert_int_equal(keel_frame_parser_next(&p, &f, NULL), 1);
	struct keel_frame_hello h;
	assert_int_equal(keel_frame_hello_decode(&f, &h), 0);
	assert_true(h.cluster_id == 0x1122334455667788ull);
	assert_true(h.sender == 7);
	assert_int_equal(h.version, KEEL_FRAME_PROTOCOL_VERSION);

	assert_int_equal(keel_frame_parser_next(&p, &f, NULL), 1);
	assert_int_equal(f.kind, KEEL_FRAME_MSG);
	assert_int_equal(f.len, 13);
	assert_memory_equal(f.payload, "first message", 13);

	assert_int_equal(keel_frame_parser_next(&p, &f, NULL), 1);
	assert_int_equal(f.kind, KEEL_FRAME_SNAP_BEGIN);
	assert_int_equal(f.snap_size, 5);
	assert_memory_equal(f.payload, "msg", 3);

	for (int i = 0; i < 3; i++)
		assert_int_equal(keel_frame_parser_next(&p, &f, NULL), 1);
	assert_int_equal(f.kind, KEEL_FRAME_SNAP_CHUNK);
	assert_memory_equal(f.payload, "de", 2);

	assert_int_equal(keel_frame_parser_next(&p, &f, NULL), 1);
	uint32_t crc;
	assert_int_equal(keel_frame_snap_end_decode(&f, &crc), 0);
	assert_int_equal(crc, keel_crc32c(0, "abcde", 5));
	assert_int_equal(keel_frame_hello_decode(&f, &h), -EPROTO);

	assert_int_equal(keel_frame_parser_next(&p, &f, NULL), 1);
	assert_int_equal(f.kind, KEEL_FRAME_MSG);
	assert_int_equal(keel_frame_parser_next(&p, &f, NULL), 0);
	assert_int_equal(p.state, KEEL_FRAME_OPEN);
	keel_frame_parser_free(&p);
	keel_buf_free(&b);

	assert_string_equal(keel_frame_kind_name(KEEL_FRAME_SNAP_END), "SNAP_END");
	assert_string_equal(keel_frame_kind_name(99), "?");
}

static void frame_split_at_every_byte_boundary(void **state)
{
	struct keel_buf b = KEEL_BUF_INIT;
	build_stream(&b);
	struct seen s = {0};
	assert_int_equal(parse_in_steps(&b, 1, &s), 0); /* one byte at a time */
	check_stream(&s);

	/* Two feeds, split at each offset. */
	for (size_t cut = 0; cut <= b.len; cut++) {
		struct keel_frame_parser p;
		keel_frame_parser_init(&p);
		memset(&s, 0, sizeof(s));
		struct keel_frame f;
		assert_int_equal(keel_frame_parser_feed(&p, b.data, cut), 0);
		while (keel_frame_parser_next(&p, &f, NULL) > 0)
			record(&s, &f);
		assert_int_equal(keel_frame_parser_feed(&p, b.data + cut, b.len - cut), 0);
		int r;
		while ((r = keel_frame_parser_next(&p, &f, NULL)) > 0)
			record(&s, &f);
		assert_int_equal(r, 0);
		check_stream(&s);
		keel_frame_parser_free(&p);
	}
	keel_buf_free(&b);
}

static void frame_bad_crc_is_rejected(void **state)
{
	struct keel_buf b = KEEL_BUF_INIT;
	build_stream(&b);
	/* A flipped bit anywhere in a frame's kind or payload: the first frame is 9 + 20 bytes. */
	for (size_t at = 8; at < KEEL_FRAME_HEADER_LEN + KEEL_FRAME_HELLO_LEN; at++) {
		b.data[at] ^= 0x10;
		assert_int_equal(parse_all(&b, NULL), -KEEL_ECORRUPT);
		b.data[at] ^= 0x10;
	}
	/* ... or in the stored crc, in a later frame. */
	b.data[KEEL_FRAME_HEADER_LEN + KEEL_FRAME_HELLO_LEN + 5] ^= 1;
	size_t frames;
	struct keel_err err = {0};
	assert_int_equal(parse_all(&b, &frames), -KEEL_ECORRUPT);
	assert_int_equal(frames, 1);

	struct keel_frame_parser p;
	keel_frame_parser_init(&p);
	assert_int_equal(keel_frame_parser_feed(&p, b.data, b.len), 0);
	struct keel_frame f;
	assert_int_equal(keel_frame_parser_next(&p, &f, &err), 1);
	assert_int_equal(keel_frame_parser_next(&p, &f, &err), -KEEL_ECORRUPT);
	assert_int_equal(err.code, -KEEL_ECORRUPT);
	assert_non_null(strstr(err.msg, "crc mismatch in a MSG frame"));
	/* Dead for good, even when fed more. */
	assert_int_equal(keel_frame_parser_feed(&p, "x", 1), -KEEL_ECORRUPT);
	keel_frame_parser_free(&p);
	keel_buf_free(&b);
}

static void frame_oversize_length_is_rejected_before_allocating(void **state)
{
	static const uint32_t lengths[] = {0, (uint32_t)KEEL_FRAME_MAX_PAYLOAD + 2, 0x7fffffff,
					   0xffffffff};
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(lengths); i++) {
		struct keel_frame_parser p;
		keel_frame_parser_init(&p);
		uint8_t hdr[4];
		for (int k = 0; k < 4; k++)
			hdr[k] = (uint8_t)(lengths[i] >> (8 * k));
		struct keel_frame f;
		struct keel_err err = {0};
		/* Three bytes say nothing yet; the fourth decides, without waiting for the rest. */
		assert_int_equal(keel_frame_parser_feed(&p, hdr, 3), 0);
		assert_int_equal(keel_frame_parser_next(&p, &f, &err), 0);
		assert_int_equal(keel_frame_parser_feed(&p, hdr + 3, 1), 0);
		assert_int_equal(keel_frame_parser_next(&p, &f, &err), -EMSGSIZE);
		assert_non_null(strstr(err.msg, "out of range"));
		assert_true(p.in.cap <= 64); /* nothing was reserved for the announced length */
		keel_frame_parser_free(&p);
	}

	/* The largest allowed frame passes, and only then is room made for it. */
	uint8_t *big = calloc(1, KEEL_FRAME_MAX_PAYLOAD);
	assert_non_null(big);
	struct keel_buf b = KEEL_BUF_INIT;
	append_hello(&b);
	append(&b, KEEL_FRAME_MSG, big, KEEL_FRAME_MAX_PAYLOAD);
	struct keel_frame_parser p;
	keel_frame_parser_init(&p);
	struct keel_frame f;
	assert_int_equal(keel_frame_parser_feed(&p, b.data, KEEL_FRAME_HEADER_LEN + KEEL_FRAME_HELLO_LEN + 4), 0);
	assert_int_equal(keel_frame_parser_next(&p, &f, NULL), 1);
	assert_int_equal(keel_frame_parser_next(&p, &f, NULL), 0);
	assert_true(p.in.cap >= KEEL_FRAME_HEADER_LEN + KEEL_FRAME_MAX_PAYLOAD);
	size_t off = KEEL_FRAME_HEADER_LEN + KEEL_FRAME_HELLO_LEN + 4;
	assert_int_equal(keel_frame_parser_feed(&p, b.data + off, b.len - off), 0);
	assert_int_equal(keel_frame_parser_next(&p, &f, NULL), 1);
	assert_int_equal(f.len, KEEL_FRAME_MAX_PAYLOAD);
	/* Once it is parsed, the big buffer is given back. */
	assert_int_equal(keel_frame_parser_feed(&p, NULL, 0), 0);
	assert_true(p.in.cap <= 64);
	keel_frame_parser_free(&p);
	keel_buf_free(&b);

	/* Builders refuse what the parser would. */
	assert_int_equal(keel_frame_append(&b, KEEL_FRAME_MSG, big, KEEL_FRAME_MAX_PAYLOAD + 1), -EMSGSIZE);
	assert_int_equal(b.len, 0);
	free(big);
}

static void frame_unknown_kind_is_rejected(void **state)
{
	static const uint8_t kinds[] = {0, 9, 0x7f, 0xff};
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(kinds); i++) {
		struct keel_buf b = KEEL_BUF_INIT;
		append_hello(&b);
		append(&b, kinds[i], "x", 1);
		size_t frames;
		struct keel_frame_parser p;
		keel_frame_parser_init(&p);
		assert_int_equal(keel_frame_parser_feed(&p, b.data, b.len), 0);
		struct keel_frame f;
		struct keel_err err = {0};
		assert_int_equal(keel_frame_parser_next(&p, &f, &err), 1);
		assert_int_equal(keel_frame_parser_next(&p, &f, &err), -EPROTO);
		assert_non_null(strstr(err.msg, "unknown frame kind"));
		keel_frame_parser_free(&p);
		assert_int_equal(parse_all(&b, &frames), -EPROTO);
		assert_int_equal(frames, 1);
		keel_buf_free(&b);
	}
}

static void frame_truncated_input_waits_for_more(void **state)
{
	struct keel_buf b = KEEL_BUF_INIT;
	append_hello(&b);
	append(&b, KEEL_FRAME_MSG, "payload", 7);
	struct keel_frame_parser p;
	keel_frame_parser_init(&p);
	struct keel_frame f;
	assert_int_equal(keel_frame_parser_next(&p, &f, NULL), 0); /* nothing at all */
	assert_int_equal(keel_frame_parser_feed(&p, b.data, b.len - 1), 0);
	assert_int_equal(keel_frame_parser_next(&p, &f, NULL), 1);
	assert_int_equal(keel_frame_parser_next(&p, &f, NULL), 0);
	assert_int_equal(keel_frame_parser_next(&p, &f, NULL), 0); /* asking again changes nothing */
	assert_int_equal(keel_frame_parser_feed(&p, b.data + b.len - 1, 1), 0);
	assert_int_equal(keel_frame_parser_next(&p, &f, NULL), 1);
	assert_memory_equal(f.payload, "payload", 7);
	assert_int_equal(keel_frame_parser_next(&p, &f, NULL), 0);
	keel_frame_parser_free(&p);
	keel_buf_free(&b);
}

/* Each case: frames that are fine one by one, in an order the protocol does not allow. */
static void frame_out_of_order_frames_are_rejected(void **state)
{
	uint8_t bigchunk[KEEL_FRAME_MAX_CHUNK + 1] = {0};
	for (int c = 0; c < 11; c++) {
		struct keel_buf b = KEEL_BUF_INIT;
		const char *want = NULL;
		size_t good = 1;
		if (c != 0 && c != 1)
			append_hello(&b);
		switch (c) {
		case 0:
			append(&b, KEEL_FRAME_MSG, "m", 1);
			want = "MSG before HELLO";
			good = 0;
			break;
		case 1:
			append(&b, KEEL_FRAME_HELLO, "short", 5);
			want = "HELLO of 5 bytes";
			good = 0;
			break;
		case 2:
			append_hello(&b);
			want = "second HELLO";
			break;
		case 3:
			append(&b, KEEL_FRAME_SNAP_CHUNK, "abc", 3);
			want = "SNAP_CHUNK outside a snapshot";
			break;
		case 4:
			assert_int_equal(keel_frame_append_snap_end(&b, 0), 0);
			want = "SNAP_END outside a snapshot";
			break;
		case 5:
			append_begin(&b, 10);
			append_begin(&b, 10);
			want = "SNAP_BEGIN inside a snapshot";
			good = 2;
			break;
		case 6:
			append_begin(&b, 2);
			append(&b, KEEL_FRAME_SNAP_CHUNK, "abc", 3);
			want = "beyond the announced size";
			good = 2;
			break;
		case 7:
			append_begin(&b, 4);
			append(&b, KEEL_FRAME_SNAP_CHUNK, "abc", 3);
			assert_int_equal(keel_frame_append_snap_end(&b, 0), 0);
			want = "1 bytes of data missing";
			good = 3;
			break;
		case 8:
			append_begin(&b, sizeof(bigchunk));
			append(&b, KEEL_FRAME_SNAP_CHUNK, bigchunk, sizeof(bigchunk));
			want = "SNAP_CHUNK of 65537 bytes";
			good = 2;
			break;
		case 9:
			append(&b, KEEL_FRAME_MSG, NULL, 0);
			want = "empty MSG";
			break;
		case 10:
			append(&b, KEEL_FRAME_SNAP_BEGIN, "12345678", 8);
			want = "SNAP_BEGIN of 8 bytes";
			break;
		}
		struct keel_frame_parser p;
		keel_frame_parser_init(&p);
		assert_int_equal(keel_frame_parser_feed(&p, b.data, b.len), 0);
		struct keel_frame f;
		struct keel_err err = {0};
		for (size_t i = 0; i < good; i++)
			assert_int_equal(keel_frame_parser_next(&p, &f, &err), 1);
		assert_int_equal(keel_frame_parser_next(&p, &f, &err), -EPROTO);
		if (!strstr(err.msg, want))
			fail_msg("case %d: \"%s\" does not say \"%s\"", c, err.msg, want);
		keel_frame_parser_free(&p);
		keel_buf_free(&b);
	}
}

static void frame_allocation_failures_are_reported_not_fatal(void **state)
{
	struct keel_buf b = KEEL_BUF_INIT;
	append_hello(&b);
	append(&b, KEEL_FRAME_MSG, "small", 5);
	uint8_t *big = calloc(1, 100000);
	assert_non_null(big);
	append(&b, KEEL_FRAME_MSG, big, 100000); /* makes the buffer grow */
	free(big);
	/* Fail the first allocation, then the second, ... until a run sees no failure. */
	for (unsigned skip = 0;; skip++) {
		assert_true(skip < 100);
		struct keel_frame_parser p;
		keel_frame_parser_init(&p);
		keel_fault_arm(KEEL_FAULT_ALLOC, skip, -1, ENOMEM);
		int r = 0;
		size_t frames = 0;
		struct keel_frame f;
		for (size_t off = 0; off < b.len && r >= 0; off += 4096) {
			size_t len = b.len - off < 4096 ? b.len - off : 4096;
			r = keel_frame_parser_feed(&p, b.data + off, len);
			while (r >= 0 && (r = keel_frame_parser_next(&p, &f, NULL)) > 0)
				frames++;
		}
		unsigned long injected = keel_fault_injected(KEEL_FAULT_ALLOC);
		keel_fault_reset();
		if (!injected) {
			assert_int_equal(r, 0);
			assert_int_equal(frames, 3);
			keel_frame_parser_free(&p);
			assert_true(skip > 1);
			break;
		}
		assert_int_equal(r, -ENOMEM);
		assert_int_equal(keel_frame_parser_next(&p, &f, NULL), -ENOMEM);
		keel_frame_parser_free(&p);
	}
	keel_buf_free(&b);
}

/* What an acceptor sends back to a dialer: REMOVED frames only; and REMOVED never travels on a
 * message stream. */
/* A QUERY opens a connection instead of a HELLO and nothing may follow it; the answer comes back
 * as one ANSWER frame, the only kind an answer parser takes. */
static void frame_query_then_answer(void **state)
{
	(void)state;
	struct keel_buf b = KEEL_BUF_INIT;
	assert_int_equal(keel_frame_append_query(&b, 0x1122334455667788ull, KEEL_FRAME_PROTOCOL_VERSION), 0);
	struct keel_frame_parser p;
	keel_frame_parser_init(&p);
	assert_int_equal(keel_frame_parser_feed(&p, b.data, b.len), 0);
	struct keel_frame f;
	struct keel_err err;
	uint64_t cid;
	uint32_t version;
	assert_int_equal(keel_frame_parser_next(&p, &f, NULL), 1);
	assert_string_equal(keel_frame_kind_name(f.kind), "QUERY");
	assert_int_equal(keel_frame_query_decode(&f, &cid, &version), 0);
	assert_true(cid == 0x1122334455667788ull && version == KEEL_FRAME_PROTOCOL_VERSION);
	keel_buf_free(&b);
	append_hello(&b);
	assert_int_equal(keel_frame_parser_feed(&p, b.data, b.len), 0);
	assert_int_equal(keel_frame_parser_next(&p, &f, &err), -EPROTO);
	assert_non_null(strstr(err.msg, "after QUERY"));
	keel_frame_parser_free(&p);
	/* After a HELLO, a QUERY is out of order; an ANSWER never travels that way. */
	keel_buf_free(&b);
	append_hello(&b);
	assert_int_equal(keel_frame_append_query(&b, 1, 1), 0);
	keel_frame_parser_init(&p);
	assert_int_equal(keel_frame_parser_feed(&p, b.data, b.len), 0);
	assert_int_equal(keel_frame_parser_next(&p, &f, NULL), 1);
	assert_int_equal(keel_frame_parser_next(&p, &f, &err), -EPROTO);
	assert_non_null(strstr(err.msg, "QUERY after HELLO"));
	keel_frame_parser_free(&p);
	keel_buf_free(&b);
	append(&b, KEEL_FRAME_ANSWER, "{}", 2);
	keel_frame_parser_init(&p);
	assert_int_equal(keel_frame_parser_feed(&p, b.data, b.len), 0);
	assert_int_equal(keel_frame_parser_next(&p, &f, &err), -EPROTO);
	keel_frame_parser_free(&p);
	/* The dialer's side: ANSWER frames (any size, empty too), nothing else. */
	append(&b, KEEL_FRAME_ANSWER, "", 0);
	keel_frame_parser_init_answer(&p);
	assert_int_equal(keel_frame_parser_feed(&p, b.data, b.len), 0);
	assert_int_equal(keel_frame_parser_next(&p, &f, NULL), 1);
	assert_int_equal(f.kind, KEEL_FRAME_ANSWER);
	assert_int_equal(f.len, 2);
	assert_memory_equal(f.payload, "{}", 2);
	assert_int_equal(keel_frame_parser_next(&p, &f, NULL), 1);
	assert_int_equal(f.len, 0);
	keel_buf_free(&b);
	assert_int_equal(keel_frame_append_removed(&b, 5), 0);
	assert_int_equal(keel_frame_parser_feed(&p, b.data, b.len), 0);
	assert_int_equal(keel_frame_parser_next(&p, &f, &err), -EPROTO);
	assert_non_null(strstr(err.msg, "in answer to a QUERY"));
	keel_frame_parser_free(&p);
	keel_buf_free(&b);
}

static void frame_removed_replies_only_flow_back(void **state)
{
	(void)state;
	struct keel_buf b = KEEL_BUF_INIT;
	assert_int_equal(keel_frame_append_removed(&b, 0xabcdef0123456789ull), 0);
	assert_int_equal(keel_frame_append_removed(&b, 5), 0);
	struct keel_frame_parser p;
	keel_frame_parser_init_replies(&p);
	assert_int_equal(keel_frame_parser_feed(&p, b.data, b.len), 0);
	struct keel_frame f;
	uint64_t id;
	assert_int_equal(keel_frame_parser_next(&p, &f, NULL), 1);
	assert_int_equal(f.kind, KEEL_FRAME_REMOVED);
	assert_string_equal(keel_frame_kind_name(f.kind), "REMOVED");
	assert_int_equal(keel_frame_removed_decode(&f, &id), 0);
	assert_true(id == 0xabcdef0123456789ull);
	assert_int_equal(keel_frame_parser_next(&p, &f, NULL), 1);
	assert_int_equal(keel_frame_removed_decode(&f, &id), 0);
	assert_true(id == 5);
	assert_int_equal(keel_frame_parser_next(&p, &f, NULL), 0);
	/* A HELLO (or anything else) coming back is a protocol error. */
	keel_buf_free(&b);
	append_hello(&b);
	assert_int_equal(keel_frame_parser_feed(&p, b.data, b.len), 0);
	struct keel_err err;
	assert_int_equal(keel_frame_parser_next(&p, &f, &err), -EPROTO);
	assert_non_null(strstr(err.msg, "from an acceptor"));
	keel_frame_parser_free(&p);
	/* A REMOVED of the wrong size, even on a replies stream. */
	keel_buf_free(&b);
	append(&b, KEEL_FRAME_REMOVED, "1234", 4);
	keel_frame_parser_init_replies(&p);
	assert_int_equal(keel_frame_parser_feed(&p, b.data, b.len), 0);
	assert_int_equal(keel_frame_parser_next(&p, &f, &err), -EPROTO);
	assert_non_null(strstr(err.msg, "REMOVED of 4 bytes"));
	keel_frame_parser_free(&p);
	/* REMOVED on a message stream, after a HELLO. */
	keel_buf_free(&b);
	append_hello(&b);
	assert_int_equal(keel_frame_append_removed(&b, 5), 0);
	keel_frame_parser_init(&p);
	assert_int_equal(keel_frame_parser_feed(&p, b.data, b.len), 0);
	assert_int_equal(keel_frame_parser_next(&p, &f, NULL), 1);
	assert_int_equal(keel_frame_parser_next(&p, &f, &err), -EPROTO);
	assert_non_null(strstr(err.msg, "REMOVED on a message stream"));
	keel_frame_parser_free(&p);
	keel_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(frame_round_trip_of_each_kind),
		cmocka_unit_test(frame_split_at_every_byte_boundary),
		cmocka_unit_test(frame_bad_crc_is_rejected),
		cmocka_unit_test(frame_oversize_length_is_rejected_before_allocating),
		cmocka_unit_test(frame_unknown_kind_is_rejected),
		cmocka_unit_test(frame_truncated_input_waits_for_more),
		cmocka_unit_test(frame_out_of_order_frames_are_rejected),
		cmocka_unit_test(frame_removed_replies_only_flow_back),
		cmocka_unit_test(frame_query_then_answer),
		cmocka_unit_test(frame_allocation_failures_are_reported_not_fatal),
	};
	return cmocka_run_group_tests_name("raftio/frame", tests, NULL, NULL);
}
