#include "image/digest.h"

#include <errno.h>
#include <openssl/evp.h>
#include <string.h>

#include "base/mem.h"
#include "base/sys.h"

struct keel_sha256 {
	EVP_MD_CTX *ctx;
};

static bool is_lower_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

bool keel_is_hex_prefix(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++)
		if (!is_lower_hex(s[n]))
			return false;
	return n >= 1 && n <= KEEL_DIGEST_HEX_LEN;
}

/* The OCI image-spec grammar (descriptor.md "Digests"): algorithm ":" encoded, where
 * algorithm = component ([+._-] component)*, component = [a-z0-9]+, encoded = [a-zA-Z0-9=_-]+. */
static bool oci_digest_grammar(const char *s)
{
	const char *colon = strchr(s, ':');
	if (!colon || colon == s || !colon[1])
		return false;
	bool need_component = true;
	for (const char *p = s; p < colon; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')) {
			need_component = false;
		} else if (strchr("+._-", *p) && !need_component) {
			need_component = true;
		} else {
			return false;
		}
	}
	if (need_component)
		return false;
	for (const char *p = colon + 1; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      strchr("=_-", *p)))
			return false;
	return true;
}

int keel_digest_check(const char *s, const char *what, struct keel_err *err)
{
	if (!s)
		return keel_err_set(err, -EINVAL, "%s: missing digest", what);
	const char *hex = NULL;
	if (strncmp(s, "sha256:", 7) == 0)
		hex = s + 7;
	if (hex) {
		size_t n = 0;
		while (hex[n] && is_lower_hex(hex[n]))
			n++;
		if (n == KEEL_DIGEST_HEX_LEN && !hex[n])
			return 0;
		return keel_err_set(err, -EINVAL, "%s: invalid sha256 digest \"%.80s\"", what, s);
	}
	if (oci_digest_grammar(s)) {
		const char *colon = strchr(s, ':');
		return keel_err_set(err, -ENOTSUP, "%s: unsupported digest algorithm \"%.*s\"", what,
				    (int)KEEL_MIN((size_t)(colon - s), 40), s);
	}
	return keel_err_set(err, -EINVAL, "%s: invalid digest \"%.80s\"", what, s);
}

struct keel_sha256 *keel_sha256_new(void)
{
	struct keel_sha256 *h = keel_calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->ctx = EVP_MD_CTX_new();
	if (!h->ctx || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(h->ctx);
		keel_free(h);
		return NULL;
	}
	return h;
}

void keel_sha256_free(struct keel_sha256 *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->ctx);
	keel_free(h);
}

void keel_sha256_update(struct keel_sha256 *h, const void *data, size_t n)
{
	/* EVP_DigestUpdate on an initialised SHA-256 context cannot fail. */
	(void)EVP_DigestUpdate(h->ctx, data, n);
}

void keel_sha256_final(struct keel_sha256 *h, char out[KEEL_DIGEST_MAX])
{
	static const char hexdig[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned len = 0;
	(void)EVP_DigestFinal_ex(h->ctx, md, &len);
	keel_assert(len == 32);
	memcpy(out, "sha256:", 7);
	for (unsigned i = 0; i < len; i++) {
		out[7 + 2 * i] = hexdig[md[i] >> 4];
		out[8 + 2 * i] = hexdig[md[i] & 15];
	}
	out[7 + 2 * len] = '\0';
}

int keel_sha256_buf(const void *data, size_t n, char out[KEEL_DIGEST_MAX])
{
	struct keel_sha256 *h = keel_sha256_new();
	if (!h)
		return -ENOMEM;
	keel_sha256_update(h, data, n);
	keel_sha256_final(h, out);
	keel_sha256_free(h);
	return 0;
}

int keel_sha256_fd(int fd, char out[KEEL_DIGEST_MAX], uint64_t *ret_size)
{
	enum { CHUNK = 128 * 1024 };
	char *buf = keel_malloc(CHUNK);
	struct keel_sha256 *h = keel_sha256_new();
	int r = 0;
	uint64_t total = 0;
	if (!buf || !h) {
		r = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n = keel_sys_read(fd, buf, CHUNK);
		if (n < 0) {
			r = (int)n;
			goto out;
		}
		if (n == 0)
			break;
		keel_sha256_update(h, buf, (size_t)n);
		total += (uint64_t)n;
	}
	keel_sha256_final(h, out);
	if (ret_size)
		*ret_size = total;
out:
	keel_sha256_free(h);
	keel_free(buf);
	return r;
}
