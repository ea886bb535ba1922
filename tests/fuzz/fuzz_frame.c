/* Fuzz the transport's frame parser: what a peer (or anyone who reaches the port) sends. Input:
 * one control byte, then the byte stream. The control byte's low 6 bits pick how the stream is
 * cut into feeds (0: all at once, n: n bytes at a time), so splits land everywhere; bit 6 parses
 * the stream as a dialer reads its acceptor's replies (keel_frame_parser_init_replies); with bit
 * 7 set the frame CRCs are recomputed first, so mutations reach the order and size rules instead
 * of stopping at a checksum mismatch.
 *
 * Properties: the parser never crashes, reads out of bounds or leaks; every frame it yields has
 * a known kind and a payload inside the input; re-encoding a frame gives back exactly the bytes
 * it was parsed from (so frames tile the stream with nothing skipped); once it reports an error
 * it keeps reporting it; the payload decoders never fail on a frame the parser passed, and MSG
 * and SNAP_BEGIN payloads either decode or are refused by the codec without crashing. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/crc32c.h"
#include "raftio/codec.h"
#include "raftio/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_frame(const struct keel_frame *f, const uint8_t *at, size_t left, bool replies)
{
	if (f->kind < KEEL_FRAME_HELLO || f->kind > KEEL_FRAME_QUERY)
		abort(); /* ANSWER only comes to a parser made for it, which this one never is */
	if ((f->kind == KEEL_FRAME_REMOVED) != replies)
		abort(); /* REMOVED flows only the other way, and nothing else does */
	if (KEEL_FRAME_HEADER_LEN + f->len > left)
		abort();
	struct keel_buf b = KEEL_BUF_INIT;
	if (keel_frame_append(&b, f->kind, f->payload, f->len) < 0)
		abort();
	if (b.len != KEEL_FRAME_HEADER_LEN + f->len || memcmp(b.data, at, b.len) != 0)
		abort();
	keel_buf_free(&b);

	struct keel_raft_msg m;
	switch (f->kind) {
	case KEEL_FRAME_HELLO: {
		struct keel_frame_hello h;
		if (keel_frame_hello_decode(f, &h) < 0)
			abort();
		break;
	}
	case KEEL_FRAME_SNAP_END: {
		uint32_t crc;
		if (keel_frame_snap_end_decode(f, &crc) < 0)
			abort();
		break;
	}
	case KEEL_FRAME_REMOVED: {
		uint64_t id;
		if (keel_frame_removed_decode(f, &id) < 0)
			abort();
		break;
	}
	case KEEL_FRAME_QUERY: {
		uint64_t cid;
		uint32_t version;
		if (keel_frame_query_decode(f, &cid, &version) < 0)
			abort();
		break;
	}
	case KEEL_FRAME_MSG:
		if (keel_raft_msg_decode(f->payload, f->len, &m) == 0)
			keel_raft_msg_decoded_free(&m);
		break;
	case KEEL_FRAME_SNAP_BEGIN:
		if (f->len < 9 || f->snap_size != keel_le64(f->payload + f->len - 8))
			abort();
		if (keel_raft_msg_decode(f->payload, f->len - 8, &m) == 0)
			keel_raft_msg_decoded_free(&m);
		break;
	default:
		break;
	}
}

/* Give every frame that fits in the input a correct CRC. */
static void reseal(uint8_t *in, size_t n)
{
	size_t off = 0;
	while (n - off >= KEEL_FRAME_HEADER_LEN) {
		uint32_t length = keel_le32(in + off);
		if (length == 0 || length > n - off - 8)
			break;
		uint32_t crc = keel_crc32c(0, in + off + 8, length);
		for (int i = 0; i < 4; i++)
			in[off + 4 + i] = (uint8_t)(crc >> (8 * i));
		off += 8 + (size_t)length;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t step = data[0] & 0x3f ? data[0] & 0x3f : size;
	bool replies = data[0] & 0x40;
	size_t n = size - 1;
	uint8_t *in = malloc(n ? n : 1);
	if (!in)
		abort();
	memcpy(in, data + 1, n);
	if (data[0] & 0x80)
		reseal(in, n);

	struct keel_frame_parser p;
	if (replies)
		keel_frame_parser_init_replies(&p);
	else
		keel_frame_parser_init(&p);
	size_t fed = 0, parsed = 0;
	int error = 0;
	while (fed < n && !error) {
		size_t len = n - fed < step ? n - fed : step;
		if (keel_frame_parser_feed(&p, in + fed, len) < 0)
			abort(); /* no allocation failures are injected here */
		fed += len;
		for (;;) {
			struct keel_frame f;
			struct keel_err err;
			int r = keel_frame_parser_next(&p, &f, &err);
			if (r == 0)
				break;
			if (r < 0) {
				if (err.code != r)
					abort();
				error = r;
				break;
			}
			check_frame(&f, in + parsed, n - parsed, replies);
			parsed += KEEL_FRAME_HEADER_LEN + f.len;
			if (parsed > fed)
				abort();
		}
	}
	if (error) {
		struct keel_frame f;
		if (keel_frame_parser_next(&p, &f, NULL) != error)
			abort();
	}
	keel_frame_parser_free(&p);
	free(in);
	return 0;
}
