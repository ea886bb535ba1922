/* Image names ("name:tag") and references to images (a name, an id, an id prefix). */
#include <errno.h>
#include <string.h>

#include "base/mem.h"
#include "base/str.h"
#include "image/image-internal.h"

static bool tag_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
	       c == '.' || c == '-';
}

/* One path component of a repository name: [a-z0-9] separated by [._-]+ runs (lenient about
 * which separators, as podman is), or in the first component a registry host with an
 * optional port. */
static bool name_ok(const char *name, size_t len)
{
	if (len == 0 || len > 255 || name[0] == '/' || name[len - 1] == '/')
		return false;
	size_t first_end = 0;
	while (first_end < len && name[first_end] != '/')
		first_end++;
	/* A first component with '.' or ':' or "localhost" is a registry host (docker's rule). */
	bool host = first_end < len && (memchr(name, '.', first_end) || memchr(name, ':', first_end) ||
					(first_end == 9 && !memcmp(name, "localhost", 9)));
	bool seen_colon = false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (c == '/') {
			if (name[i + 1] == '/')
				return false;
			continue;
		}
		bool in_host = host && i < first_end;
		if (seen_colon && in_host) { /* the registry's port */
			if (c < '0' || c > '9')
				return false;
			continue;
		}
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-')
			continue;
		if (in_host && c >= 'A' && c <= 'Z')
			continue;
		if (in_host && c == ':' && !seen_colon && i + 1 < first_end) {
			seen_colon = true;
			continue;
		}
		return false;
	}
	return true;
}

int keel_image_name_normalize(const char *in, char **ret, struct keel_err *err)
{
	if (!in || !*in)
		return keel_err_set(err, -EINVAL, "empty image name");
	if (strchr(in, '@'))
		return keel_err_set(err, -EINVAL, "invalid image name \"%.200s\": digest references are "
				    "not names", in);
	const char *slash = strrchr(in, '/');
	const char *colon = strrchr(in, ':');
	size_t name_len = strlen(in);
	const char *tag = "latest";
	if (colon && (!slash || colon > slash)) {
		name_len = (size_t)(colon - in);
		tag = colon + 1;
	}
	size_t tag_len = strlen(tag);
	if (tag_len == 0 || tag_len > 128 || tag[0] == '.' || tag[0] == '-')
		return keel_err_set(err, -EINVAL, "invalid tag in image name \"%.200s\"", in);
	for (size_t i = 0; i < tag_len; i++)
		if (!tag_char(tag[i]))
			return keel_err_set(err, -EINVAL, "invalid tag in image name \"%.200s\"", in);
	if (!name_ok(in, name_len))
		return keel_err_set(err, -EINVAL, "invalid image name \"%.200s\"", in);
	char *out = keel_malloc(name_len + 1 + tag_len + 1);
	if (!out)
		return keel_err_set(err, -ENOMEM, "out of memory");
	memcpy(out, in, name_len);
	out[name_len] = ':';
	memcpy(out + name_len + 1, tag, tag_len + 1);
	*ret = out;
	return 0;
}

static bool has_name(const struct keel_image *img, const char *name)
{
	return keel_strv_contains(img->names, name);
}

static int find_by_name(const struct image_index *idx, const char *name, size_t *ret_pos)
{
	for (size_t i = 0; i < idx->n; i++)
		if (has_name(idx->images[i], name)) {
			*ret_pos = i;
			return 0;
		}
	return -ENOENT;
}

int index_find(const struct image_index *idx, const char *ref, size_t *ret_pos, char **ret_name,
	       struct keel_err *err)
{
	if (ret_name)
		*ret_name = NULL;
	if (!ref || !*ref)
		return keel_err_set(err, -EINVAL, "empty image reference");
	const char *hex = keel_startswith(ref, "sha256:");
	if (!hex) {
		char *name = NULL;
		if (keel_image_name_normalize(ref, &name, NULL) == 0) {
			size_t pos;
			int r = find_by_name(idx, name, &pos);
			/* A short name, as podman resolves images it made: "bb" -> localhost/bb. */
			if (r < 0 && !strchr(ref, '/')) {
				char *local = keel_malloc(strlen(name) + 11);
				if (!local) {
					keel_free(name);
					return keel_err_set(err, -ENOMEM, "out of memory");
				}
				strcpy(local, "localhost/");
				strcat(local, name);
				keel_free(name);
				name = local;
				r = find_by_name(idx, name, &pos);
			}
			if (r == 0) {
				*ret_pos = pos;
				if (ret_name)
					*ret_name = name;
				else
					keel_free(name);
				return 0;
			}
			keel_free(name);
		}
		hex = ref;
	}
	if (!keel_is_hex_prefix(hex))
		return keel_err_set(err, -ENOENT, "image not known: %.200s", ref);
	size_t found = idx->n, hexlen = strlen(hex);
	for (size_t i = 0; i < idx->n; i++) {
		if (strncmp(keel_digest_hex(idx->images[i]->id), hex, hexlen) != 0)
			continue;
		if (found != idx->n)
			return keel_err_set(err, -EINVAL, "image id prefix %.64s is ambiguous", hex);
		found = i;
	}
	if (found == idx->n)
		return keel_err_set(err, -ENOENT, "image not known: %.200s", ref);
	*ret_pos = found;
	return 0;
}

static void drop_name(struct keel_image *img, const char *name)
{
	size_t j = 0;
	for (size_t i = 0; img->names && img->names[i]; i++) {
		if (strcmp(img->names[i], name) == 0)
			keel_free(img->names[i]);
		else
			img->names[j++] = img->names[i];
	}
	if (img->names)
		img->names[j] = NULL;
}

int index_add(struct image_index *idx, struct keel_image *img, struct keel_err *err)
{
	size_t same = idx->n;
	for (size_t i = 0; i < idx->n; i++) {
		if (strcmp(idx->images[i]->id, img->id) == 0) {
			same = i;
			continue;
		}
		for (size_t k = 0; img->names && img->names[k]; k++)
			drop_name(idx->images[i], img->names[k]);
	}
	if (same < idx->n) {
		struct keel_image *old = idx->images[same];
		for (size_t k = 0; img->names && img->names[k]; k++) {
			if (has_name(old, img->names[k]))
				continue;
			if (keel_strv_push(&old->names, img->names[k]) < 0) {
				keel_image_free(img);
				return keel_err_set(err, -ENOMEM, "out of memory");
			}
		}
		keel_image_free(img);
		return 0;
	}
	struct keel_image **v = keel_reallocarray(idx->images, idx->n + 1, sizeof(*v));
	if (!v) {
		keel_image_free(img);
		return keel_err_set(err, -ENOMEM, "out of memory");
	}
	idx->images = v;
	idx->images[idx->n++] = img;
	return 0;
}

void index_drop(struct image_index *idx, size_t pos)
{
	keel_image_free(idx->images[pos]);
	memmove(&idx->images[pos], &idx->images[pos + 1], (idx->n - pos - 1) * sizeof(idx->images[0]));
	idx->n--;
}

void index_clear(struct image_index *idx)
{
	for (size_t i = 0; i < idx->n; i++)
		keel_image_free(idx->images[i]);
	keel_free(idx->images);
	idx->images = NULL;
	idx->n = 0;
}
