/* Transport frames: how peers cut their byte streams into checked records. Pure code (no
 * sockets, no clock), so the parser can be fuzzed on its own; transport.c does the I/O.
 *
 * A frame is, little-endian:
 *
 *     u32 length   bytes of kind + payload (so at least 1, at most 1 + KEEL_FRAME_MAX_PAYLOAD)
 *     u32 crc      crc32c of kind + payload
 *     u8  kind     enum keel_frame_kind
 *     payload      length - 1 bytes
 *
 * A connection carries messages in one direction only and starts with exactly one HELLO; after
 * it come MSG frames and snapshot streams (SNAP_BEGIN, SNAP_CHUNK..., SNAP_END), with MSG frames
 * allowed in between the pieces of a snapshot so heartbeats keep flowing while one streams. The
 * one frame that travels back, from the acceptor to the dialer, is REMOVED: "you were removed
 * from the cluster" (etcd's peers answer such a member HTTP 410 Gone); a dialer parses what
 * comes back with a parser made by keel_frame_parser_init_replies(). A connection may instead
 * open with a QUERY ("who is in the cluster?", asked by a member that joins before it knows its
 * own id): the acceptor answers with one ANSWER frame and the dialer hangs up; a dialer reads it
 * with a parser made by keel_frame_parser_init_answer(). The parser
 * enforces that order and each kind's payload size, so the transport only ever sees frames that
 * fit the protocol. Anything else is a protocol error after which the connection is closed:
 * nothing in a stream can be trusted once one frame is wrong. Details: docs/raftio.md. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/errors.h"

#define KEEL_FRAME_HEADER_LEN 9u /* length, crc, kind */
/* The biggest payload of any frame: an encoded message (the consensus core's max_msg_bytes is far
 * below; a single entry larger than this cannot be sent). */
#define KEEL_FRAME_MAX_PAYLOAD ((size_t)16 << 20)
#define KEEL_FRAME_MAX_CHUNK ((size_t)64 << 10) /* snapshot data per SNAP_CHUNK */
#define KEEL_FRAME_HELLO_LEN 20u                /* u64 cluster id, u64 sender id, u32 version */
#define KEEL_FRAME_SNAP_END_LEN 4u              /* u32 crc32c of all the snapshot data */
#define KEEL_FRAME_REMOVED_LEN 8u               /* u64 id of the removed node */
#define KEEL_FRAME_QUERY_LEN 12u                /* u64 cluster id, u32 version */
#define KEEL_FRAME_PROTOCOL_VERSION 1u

enum keel_frame_kind {
	KEEL_FRAME_HELLO = 1,      /* cluster id, sender id, protocol version */
	KEEL_FRAME_MSG = 2,        /* keel_raft_msg_encode() of one message */
	KEEL_FRAME_SNAP_BEGIN = 3, /* encoded MSG_SNAPSHOT, then u64 total data size */
	KEEL_FRAME_SNAP_CHUNK = 4, /* 1..KEEL_FRAME_MAX_CHUNK bytes of snapshot data */
	KEEL_FRAME_SNAP_END = 5,   /* u32 crc32c of the data; the chunks must add up to the size */
	KEEL_FRAME_REMOVED = 6,    /* acceptor -> dialer only: u64 id of the dialer, removed for good */
	KEEL_FRAME_QUERY = 7,      /* instead of HELLO: cluster id, version; nothing may follow */
	KEEL_FRAME_ANSWER = 8,     /* acceptor -> dialer after a QUERY: the application's answer */
};

/* One complete frame. payload points into the parser's buffer: valid until the next call of
 * keel_frame_parser_feed() or keel_frame_parser_free(). */
struct keel_frame {
	uint8_t kind;
	const uint8_t *payload;
	size_t len;
	/* SNAP_BEGIN only: the announced data size (the payload's last 8 bytes), which the parser
	 * checks the chunks against. */
	uint64_t snap_size;
};

struct keel_frame_hello {
	uint64_t cluster_id;
	uint64_t sender;
	uint32_t version;
};

enum keel_frame_parser_state {
	KEEL_FRAME_WANT_HELLO,
	KEEL_FRAME_OPEN,    /* HELLO seen, no snapshot streaming */
	KEEL_FRAME_IN_SNAP, /* between SNAP_BEGIN and SNAP_END */
	KEEL_FRAME_REPLIES, /* a dialer reading what the acceptor sends back: REMOVED frames only */
	KEEL_FRAME_QUERIED, /* a QUERY was seen: nothing more may come */
	KEEL_FRAME_ANSWERS, /* a dialer that sent a QUERY: ANSWER frames only */
};

/* Incremental parser for one connection's incoming stream. Caller-allocated; _init, then feed
 * bytes as they arrive and take frames with _next until it returns 0. */
struct keel_frame_parser {
	struct keel_buf in; /* received bytes; in.data[pos..len) not yet parsed */
	size_t pos;
	enum keel_frame_parser_state state;
	uint64_t snap_left; /* IN_SNAP: data bytes still announced */
	int error;          /* sticky: once a stream is broken it stays broken */
	char why[96];
};

void keel_frame_parser_init(struct keel_frame_parser *p);
/* The same for the other direction (what an acceptor sends to the dialer): only REMOVED frames
 * are accepted, anything else is -EPROTO. */
void keel_frame_parser_init_replies(struct keel_frame_parser *p);
/* For a dialer that sent a QUERY: only ANSWER frames are accepted. */
void keel_frame_parser_init_answer(struct keel_frame_parser *p);
/* Releases the buffer. Accepts NULL. */
void keel_frame_parser_free(struct keel_frame_parser *p);

/* Append received bytes. Invalidates frames returned before. Storage only ever grows by what
 * actually arrived, and to a frame's length once its header has been checked, so a peer cannot
 * make us allocate what it merely announces. 0 or -ENOMEM (the parser is then broken: close). */
int keel_frame_parser_feed(struct keel_frame_parser *p, const void *data, size_t len) KEEL_WUR;

/* Take the next complete frame: 1 and *ret filled, 0 when more input is needed, or a negative
 * error after which the stream is dead (every later call returns the same error):
 *   -EMSGSIZE        length 0 or above 1 + KEEL_FRAME_MAX_PAYLOAD (seen as soon as 4 bytes are in)
 *   -KEEL_ECORRUPT   crc mismatch
 *   -EPROTO          unknown kind, a payload size the kind does not allow, or a frame out of order
 *                    (anything before HELLO, a second HELLO, CHUNK/END outside a snapshot, a
 *                    snapshot inside a snapshot, chunks beyond the announced size, END early,
 *                    REMOVED on a message stream, anything but REMOVED on a replies stream,
 *                    anything after a QUERY, anything but ANSWER on an answer stream)
 * err (may be NULL) receives a message naming the problem. */
int keel_frame_parser_next(struct keel_frame_parser *p, struct keel_frame *ret,
			   struct keel_err *err) KEEL_WUR;

/* ---- building frames ---------------------------------------------------------------------- */

/* Fill the header of a frame laid out in memory as header + payload (frame[9..9+payload_len)
 * already holds the payload). The caller guarantees payload_len <= KEEL_FRAME_MAX_PAYLOAD. */
void keel_frame_seal(uint8_t *frame, uint8_t kind, size_t payload_len);

/* Append one whole frame to out. -EMSGSIZE if the payload is too big, -ENOMEM. */
int keel_frame_append(struct keel_buf *out, uint8_t kind, const void *payload,
		      size_t payload_len) KEEL_WUR;

/* Payload codecs of the small kinds. The _decode functions expect a payload the parser passed,
 * but check sizes again (-EPROTO). */
int keel_frame_append_hello(struct keel_buf *out, const struct keel_frame_hello *h) KEEL_WUR;
int keel_frame_hello_decode(const struct keel_frame *f, struct keel_frame_hello *ret);
int keel_frame_append_snap_end(struct keel_buf *out, uint32_t data_crc) KEEL_WUR;
int keel_frame_snap_end_decode(const struct keel_frame *f, uint32_t *ret_crc);
int keel_frame_append_removed(struct keel_buf *out, uint64_t removed_id) KEEL_WUR;
int keel_frame_removed_decode(const struct keel_frame *f, uint64_t *ret_id);
int keel_frame_append_query(struct keel_buf *out, uint64_t cluster_id, uint32_t version) KEEL_WUR;
int keel_frame_query_decode(const struct keel_frame *f, uint64_t *ret_cluster_id, uint32_t *ret_version);

/* The kind's name ("HELLO", ...), or "?" for anything else. */
const char *keel_frame_kind_name(unsigned kind);
