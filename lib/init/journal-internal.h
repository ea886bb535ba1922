/* What the journal's writer and reader share: the file format (docs/init.md, "Logs").
 *
 * A directory holds journal-<seq>.kj data files and journal-<seq>.kji seek-point files, seq as 16
 * lowercase hex digits so names sort in order. All integers are little-endian.
 *
 * Data file: a 128-byte header, then records.
 *   header: "KEELJRN1" | u32 version (1) | u32 header size (128) | u64 seq | u64 created realtime
 *           usec | 16 bytes boot id | 64 bytes hostname (NUL-padded) | u32 crc32c of the bytes
 *           before it | 12 reserved zero bytes
 *   record: u32 magic KEEL_JREC_MAGIC | u32 payload length | u32 crc32c(length bytes ++ payload)
 *           | payload
 *   payload: u8 type (1) | u8 priority | u16 unit length | u16 identifier length | u16 zero |
 *            u32 pid | u64 realtime usec | u64 monotonic usec | unit | identifier | message
 * The magic lets a reader find the next record after damage; the CRC covers the length too, so a
 * torn or overwritten length is caught as well.
 *
 * Seek-point file: 32-byte entries: u64 record offset | u64 realtime usec | u32 magic
 * KEEL_JIDX_MAGIC | u32 zero | u32 zero | u32 crc32c of the 28 bytes before it. One entry for the
 * first record of a file and then one per index_every bytes. Readers check the record an entry
 * points at, so a stale or torn seek-point file only costs speed. */
#pragma once

#include <stdint.h>
#include <string.h>

#define KEEL_JHDR_MAGIC "KEELJRN1"
#define KEEL_JHDR_SIZE 128
#define KEEL_JHDR_VERSION 1
#define KEEL_JREC_MAGIC 0x524a4b4bu /* "KKJR" on disk */
#define KEEL_JREC_FRAME 12
#define KEEL_JREC_FIXED 28
#define KEEL_JREC_MAX_PAYLOAD (4u << 20)
#define KEEL_JIDX_MAGIC 0x58444a4bu /* "KJDX" */
#define KEEL_JIDX_SIZE 32
#define KEEL_J_HOST_MAX 64

struct keel_jhdr {
	uint64_t seq;
	uint64_t created_usec;
	uint8_t boot_id[16];
	char hostname[KEEL_J_HOST_MAX + 1];
};

/* A decoded record; pointers into the buffer it was decoded from. */
struct keel_jrec {
	int priority;
	uint32_t pid;
	uint64_t realtime_usec, mono_usec;
	const char *unit, *ident, *msg;
	size_t unit_len, ident_len, msg_len;
};

static inline uint32_t keel__get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t keel__get64(const uint8_t *p)
{
	return (uint64_t)keel__get32(p) | (uint64_t)keel__get32(p + 4) << 32;
}

static inline void keel__put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void keel__put64(uint8_t *p, uint64_t v)
{
	keel__put32(p, (uint32_t)v);
	keel__put32(p + 4, (uint32_t)(v >> 32));
}

/* File names: "journal-%016llx.kj" / ".kji". Returns seq and 0 (data) / 1 (index), or -1. */
int keel__jname_parse(const char *name, uint64_t *ret_seq);
#define KEEL_JNAME_MAX 40
void keel__jname(char *out, uint64_t seq, int index);

void keel__jhdr_encode(const struct keel_jhdr *h, uint8_t out[KEEL_JHDR_SIZE]);
/* 0 or -KEEL_ECORRUPT. */
int keel__jhdr_decode(const uint8_t *in, size_t len, struct keel_jhdr *h);

/* Encode one record (payload KEEL_JREC_FIXED + lengths) into out, which has room for
 * KEEL_JREC_FRAME + payload. Returns the bytes written. */
size_t keel__jrec_encode(uint8_t *out, int priority, uint32_t pid, uint64_t realtime_usec,
			 uint64_t mono_usec, const char *unit, size_t unit_len, const char *ident,
			 size_t ident_len, const char *msg, size_t msg_len);

enum { KEEL_JREC_OK = 0, KEEL_JREC_SHORT = 1, KEEL_JREC_BAD = 2 };
/* Decode the record at the start of buf. KEEL_JREC_OK with *ret_size (frame + payload),
 * KEEL_JREC_SHORT when buf ends before the record does (a complete record may follow once more is
 * read, or the file ends torn), KEEL_JREC_BAD when it is damaged. */
int keel__jrec_decode(const uint8_t *buf, size_t len, struct keel_jrec *rec, size_t *ret_size);

void keel__jidx_encode(uint8_t out[KEEL_JIDX_SIZE], uint64_t offset, uint64_t realtime_usec);
/* 0 or -KEEL_ECORRUPT. */
int keel__jidx_decode(const uint8_t *in, uint64_t *ret_offset, uint64_t *ret_realtime);
