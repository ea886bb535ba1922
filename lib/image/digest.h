/* Content digests for the image store: "sha256:<64 lowercase hex>" strings, parsed strictly, and
 * SHA-256 over streams (OpenSSL EVP), so that every blob is checked against the digest that
 * names it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/errors.h"

#define KEEL_DIGEST_HEX_LEN 64
/* "sha256:" + 64 hex + NUL */
#define KEEL_DIGEST_MAX 72

/* Check that s is a digest Keel can verify: "sha256:" then exactly 64 lowercase hex digits.
 * 0; -ENOTSUP for another algorithm that is well-formed per the OCI grammar ("sha512:..."),
 * -EINVAL for anything else. Messages name `what` ("layers[2].digest"). */
int keel_digest_check(const char *s, const char *what, struct keel_err *err);

/* The hex part of a checked digest (s + 7). */
static inline const char *keel_digest_hex(const char *digest)
{
	return digest + 7;
}

/* True when s is 1..64 lowercase hex digits (an id or a prefix of one). */
bool keel_is_hex_prefix(const char *s);

/* Streaming SHA-256. keel_sha256_new returns NULL when out of memory. */
struct keel_sha256;
struct keel_sha256 *keel_sha256_new(void);
void keel_sha256_free(struct keel_sha256 *h);
void keel_sha256_update(struct keel_sha256 *h, const void *data, size_t n);
/* Writes "sha256:<hex>" into out (KEEL_DIGEST_MAX bytes). The context may not be reused. */
void keel_sha256_final(struct keel_sha256 *h, char out[KEEL_DIGEST_MAX]);

/* One-shot digest of a buffer. 0 or -ENOMEM. */
int keel_sha256_buf(const void *data, size_t n, char out[KEEL_DIGEST_MAX]);

/* Digest of everything readable from fd from its current offset; *ret_size gets the byte
 * count. 0, -ENOMEM or -errno of read. */
int keel_sha256_fd(int fd, char out[KEEL_DIGEST_MAX], uint64_t *ret_size);
