/* Growable byte buffers: the one way Keel builds responses, records and messages in memory. */
#pragma once

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "base/macro.h"

struct keel_buf {
	char *data; /* always NUL-terminated when cap > 0, so text can be used as a C string */
	size_t len;
	size_t cap;
};

#define KEEL_BUF_INIT {NULL, 0, 0}

void keel_buf_init(struct keel_buf *b);
/* Frees the storage and re-initialises; accepts NULL. */
void keel_buf_free(struct keel_buf *b);
/* Keeps the storage, forgets the contents. */
void keel_buf_reset(struct keel_buf *b);

/* Make room for `extra` more bytes (plus the terminating NUL). 0 or -ENOMEM; on failure the
 * buffer is unchanged. */
int keel_buf_reserve(struct keel_buf *b, size_t extra) KEEL_WUR;
int keel_buf_append(struct keel_buf *b, const void *data, size_t n) KEEL_WUR;
int keel_buf_puts(struct keel_buf *b, const char *s) KEEL_WUR;
int keel_buf_putc(struct keel_buf *b, char c) KEEL_WUR;
int keel_buf_printf(struct keel_buf *b, const char *fmt, ...) KEEL_PRINTF(2, 3) KEEL_WUR;
int keel_buf_vprintf(struct keel_buf *b, const char *fmt, va_list ap) KEEL_PRINTF(2, 0) KEEL_WUR;
/* Decimal text of an integer, without printf's cost (hot path of JSON responses and headers). */
int keel_buf_put_u64(struct keel_buf *b, uint64_t v) KEEL_WUR;
int keel_buf_put_i64(struct keel_buf *b, int64_t v) KEEL_WUR;
/* Fixed-width little-endian integers, for on-disk and wire records. */
int keel_buf_put_le32(struct keel_buf *b, uint32_t v) KEEL_WUR;
int keel_buf_put_le64(struct keel_buf *b, uint64_t v) KEEL_WUR;

/* Drop the first n bytes (consumed input). */
void keel_buf_consume(struct keel_buf *b, size_t n);
/* Shorten to len bytes (len <= b->len). */
void keel_buf_truncate(struct keel_buf *b, size_t len);

/* Hand the storage to the caller (free with keel_free); the buffer is left empty. Returns a
 * valid empty string, or NULL on allocation failure, when nothing was ever appended. */
char *keel_buf_steal(struct keel_buf *b, size_t *ret_len);

/* Write v's decimal digits into out (at least 20 bytes), no NUL; returns the digit count. */
size_t keel_u64_to_dec(uint64_t v, char *out);

static inline uint32_t keel_le32(const void *p)
{
	const uint8_t *b = p;
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static inline uint64_t keel_le64(const void *p)
{
	const uint8_t *b = p;
	return (uint64_t)keel_le32(b) | (uint64_t)keel_le32(b + 4) << 32;
}
