#include "base/buf.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/mem.h"

void keel_buf_init(struct keel_buf *b)
{
	*b = (struct keel_buf)KEEL_BUF_INIT;
}

void keel_buf_free(struct keel_buf *b)
{
	if (!b)
		return;
	keel_free(b->data);
	keel_buf_init(b);
}

void keel_buf_reset(struct keel_buf *b)
{
	b->len = 0;
	if (b->cap)
		b->data[0] = '\0';
}

int keel_buf_reserve(struct keel_buf *b, size_t extra)
{
	if (extra >= SIZE_MAX / 2 - b->len)
		return -ENOMEM;
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	char *d = keel_realloc(b->data, cap);
	if (!d)
		return -ENOMEM;
	b->data = d;
	b->cap = cap;
	b->data[b->len] = '\0';
	return 0;
}

int keel_buf_append(struct keel_buf *b, const void *data, size_t n)
{
	int r = keel_buf_reserve(b, n);
	if (r)
		return r;
	if (n)
		memcpy(b->data + b->len, data, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int keel_buf_puts(struct keel_buf *b, const char *s)
{
	return keel_buf_append(b, s, strlen(s));
}

int keel_buf_putc(struct keel_buf *b, char c)
{
	return keel_buf_append(b, &c, 1);
}

int keel_buf_vprintf(struct keel_buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	char small[256];
	int n = vsnprintf(small, sizeof(small), fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n < sizeof(small))
		return keel_buf_append(b, small, (size_t)n);
	int r = keel_buf_reserve(b, (size_t)n);
	if (r)
		return r;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int keel_buf_printf(struct keel_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = keel_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return r;
}

size_t keel_u64_to_dec(uint64_t v, char *out)
{
	char tmp[20];
	size_t n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (size_t i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	return n;
}

int keel_buf_put_u64(struct keel_buf *b, uint64_t v)
{
	char tmp[20];
	return keel_buf_append(b, tmp, keel_u64_to_dec(v, tmp));
}

int keel_buf_put_i64(struct keel_buf *b, int64_t v)
{
	if (v >= 0)
		return keel_buf_put_u64(b, (uint64_t)v);
	char tmp[21];
	tmp[0] = '-';
	/* Negate in unsigned arithmetic: -INT64_MIN does not fit an int64_t. */
	size_t n = keel_u64_to_dec(0 - (uint64_t)v, tmp + 1);
	return keel_buf_append(b, tmp, n + 1);
}

int keel_buf_put_le32(struct keel_buf *b, uint32_t v)
{
	uint8_t t[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
	return keel_buf_append(b, t, sizeof(t));
}

int keel_buf_put_le64(struct keel_buf *b, uint64_t v)
{
	int r = keel_buf_put_le32(b, (uint32_t)v);
	return r ? r : keel_buf_put_le32(b, (uint32_t)(v >> 32));
}

void keel_buf_consume(struct keel_buf *b, size_t n)
{
	if (n >= b->len) {
		keel_buf_reset(b);
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	b->data[b->len] = '\0';
}

void keel_buf_truncate(struct keel_buf *b, size_t len)
{
	keel_assert(len <= b->len);
	b->len = len;
	if (b->cap)
		b->data[len] = '\0';
}

char *keel_buf_steal(struct keel_buf *b, size_t *ret_len)
{
	if (!b->data && keel_buf_reserve(b, 0) < 0)
		return NULL;
	char *d = b->data;
	if (ret_len)
		*ret_len = b->len;
	keel_buf_init(b);
	return d;
}
