/* images.json: the store's index of images, read and rewritten whole (it is small: one record
 * per image), always replaced atomically. */
#include <errno.h>
#include <string.h>

#include "base/json.h"
#include "base/mem.h"
#include "base/str.h"
#include "image/image-internal.h"

#define INDEX_VERSION 1

void keel_image_free(struct keel_image *img)
{
	if (!img)
		return;
	keel_free(img->manifest_media_type);
	keel_strv_free(img->names);
	keel_free(img->os);
	keel_free(img->arch);
	keel_free(img->variant);
	for (size_t i = 0; i < img->n_layers; i++)
		keel_free(img->layers[i].media_type);
	keel_free(img->layers);
	keel_free(img);
}

static int dup_or_null(const char *s, char **ret)
{
	*ret = NULL;
	if (!s)
		return 0;
	*ret = keel_strdup(s);
	return *ret ? 0 : -ENOMEM;
}

struct keel_image *image_dup(const struct keel_image *img)
{
	struct keel_image *c = keel_calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	memcpy(c->id, img->id, sizeof(c->id));
	memcpy(c->manifest, img->manifest, sizeof(c->manifest));
	c->created_ns = img->created_ns;
	c->imported_ns = img->imported_ns;
	c->size = img->size;
	if (dup_or_null(img->manifest_media_type, &c->manifest_media_type) < 0 ||
	    dup_or_null(img->os, &c->os) < 0 || dup_or_null(img->arch, &c->arch) < 0 ||
	    dup_or_null(img->variant, &c->variant) < 0)
		goto fail;
	for (size_t i = 0; img->names && img->names[i]; i++)
		if (keel_strv_push(&c->names, img->names[i]) < 0)
			goto fail;
	c->layers = keel_calloc(img->n_layers + 1, sizeof(*c->layers));
	if (!c->layers)
		goto fail;
	for (size_t i = 0; i < img->n_layers; i++) {
		c->layers[i] = img->layers[i];
		c->layers[i].media_type = NULL;
		c->n_layers++;
		if (dup_or_null(img->layers[i].media_type, &c->layers[i].media_type) < 0)
			goto fail;
	}
	return c;
fail:
	keel_image_free(c);
	return NULL;
}

static int get_digest(const json_t *obj, const char *where, const char *key, char out[KEEL_DIGEST_MAX],
		      struct keel_err *err)
{
	const char *s;
	int r = keel_json_get_str(obj, where, key, true, &s, err);
	if (r < 0)
		return r;
	char what[64];
	snprintf(what, sizeof(what), "%s.%s", where, key);
	if ((r = keel_digest_check(s, what, err)) < 0)
		return r;
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

static int get_dup(const json_t *obj, const char *where, const char *key, bool required, char **ret,
		   struct keel_err *err)
{
	const char *s;
	int r = keel_json_get_str(obj, where, key, required, &s, err);
	if (r)
		return r < 0 ? r : 0;
	*ret = keel_strdup(s);
	return *ret ? 0 : keel_err_set(err, -ENOMEM, "out of memory");
}

static int image_from_json(const json_t *o, size_t pos, struct keel_image **ret, struct keel_err *err)
{
	char where[48];
	snprintf(where, sizeof(where), "images[%zu]", pos);
	if (!json_is_object(o))
		return keel_err_set(err, -KEEL_ETYPE, "%s must be an object", where);
	struct keel_image *img = keel_calloc(1, sizeof(*img));
	if (!img)
		return keel_err_set(err, -ENOMEM, "out of memory");
	json_t *names, *layers;
	uint64_t size;
	int r;
	if ((r = get_digest(o, where, "id", img->id, err)) < 0 ||
	    (r = get_digest(o, where, "manifest", img->manifest, err)) < 0 ||
	    (r = get_dup(o, where, "manifestMediaType", false, &img->manifest_media_type, err)) < 0 ||
	    (r = get_dup(o, where, "os", false, &img->os, err)) < 0 ||
	    (r = get_dup(o, where, "architecture", false, &img->arch, err)) < 0 ||
	    (r = get_dup(o, where, "variant", false, &img->variant, err)) < 0 ||
	    (r = keel_json_get_i64(o, where, "created", true, &img->created_ns, err)) < 0 ||
	    (r = keel_json_get_i64(o, where, "imported", true, &img->imported_ns, err)) < 0 ||
	    (r = keel_json_get_u64(o, where, "size", true, &size, err)) < 0 ||
	    (r = keel_json_get_arr(o, where, "names", true, &names, err)) < 0 ||
	    (r = keel_json_get_arr(o, where, "layers", true, &layers, err)) < 0)
		goto fail;
	img->size = size;
	for (size_t i = 0; i < json_array_size(names); i++) {
		json_t *n = json_array_get(names, i);
		if (!json_is_string(n)) {
			r = keel_err_set(err, -KEEL_ETYPE, "%s.names[%zu] must be a string", where, i);
			goto fail;
		}
		if ((r = keel_strv_push(&img->names, json_string_value(n))) < 0) {
			r = keel_err_set(err, -ENOMEM, "out of memory");
			goto fail;
		}
	}
	img->layers = keel_calloc(json_array_size(layers) + 1, sizeof(*img->layers));
	if (!img->layers) {
		r = keel_err_set(err, -ENOMEM, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < json_array_size(layers); i++) {
		json_t *l = json_array_get(layers, i);
		struct keel_image_layer *L = &img->layers[i];
		char lw[80];
		snprintf(lw, sizeof(lw), "%s.layers[%zu]", where, i);
		img->n_layers++;
		if (!json_is_object(l)) {
			r = keel_err_set(err, -KEEL_ETYPE, "%s must be an object", lw);
			goto fail;
		}
		if ((r = get_digest(l, lw, "digest", L->digest, err)) < 0 ||
		    (r = get_digest(l, lw, "diffID", L->diff_id, err)) < 0 ||
		    (r = get_dup(l, lw, "mediaType", true, &L->media_type, err)) < 0 ||
		    (r = keel_json_get_u64(l, lw, "size", true, &L->size, err)) < 0 ||
		    (r = keel_json_get_u64(l, lw, "tarSize", true, &L->tar_size, err)) < 0)
			goto fail;
	}
	*ret = img;
	return 0;
fail:
	keel_image_free(img);
	return r;
}

int index_load(struct keel_image_store *s, struct image_index *idx, struct keel_err *err)
{
	memset(idx, 0, sizeof(*idx));
	char *data;
	size_t len;
	struct keel_err e;
	int r = read_file_beneath(s->root_fd, KEEL_IMAGE_INDEX, 1u << 30, &data, &len, &e);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return keel_err_set(err, r, "%s/%s", s->root, e.msg);
	json_t *doc;
	r = keel_json_parse(data, len, false, &doc, &e);
	keel_free(data);
	if (r < 0)
		return keel_err_set(err, r == -ENOMEM ? r : -KEEL_ECORRUPT, "%s/" KEEL_IMAGE_INDEX ": %s",
				    s->root, e.msg);
	int64_t version;
	json_t *images;
	if ((r = keel_json_get_i64(doc, "", "version", true, &version, &e)) < 0 ||
	    (r = keel_json_get_arr(doc, "", "images", true, &images, &e)) < 0)
		goto bad;
	if (version != INDEX_VERSION) {
		r = keel_err_set(&e, -KEEL_ECORRUPT, "version %lld, this keel-run reads %d",
				 (long long)version, INDEX_VERSION);
		goto bad;
	}
	idx->images = keel_calloc(json_array_size(images) + 1, sizeof(*idx->images));
	if (!idx->images) {
		r = keel_err_set(&e, -ENOMEM, "out of memory");
		goto bad;
	}
	for (size_t i = 0; i < json_array_size(images); i++) {
		if ((r = image_from_json(json_array_get(images, i), i, &idx->images[i], &e)) < 0)
			goto bad;
		idx->n++;
	}
	json_decref(doc);
	return 0;
bad:
	json_decref(doc);
	index_clear(idx);
	return keel_err_set(err, r == -ENOMEM ? r : -KEEL_ECORRUPT, "%s/" KEEL_IMAGE_INDEX ": %s",
			    s->root, e.msg);
}

static int set_str(json_t *o, const char *key, const char *v)
{
	if (!v)
		return 0;
	return json_object_set_new(o, key, json_string(v));
}

static json_t *image_to_json(const struct keel_image *img)
{
	json_t *o = json_object(), *names = json_array(), *layers = json_array();
	int bad = !o || !names || !layers;
	bad |= set_str(o, "id", img->id);
	bad |= set_str(o, "manifest", img->manifest);
	bad |= set_str(o, "manifestMediaType", img->manifest_media_type);
	bad |= set_str(o, "os", img->os);
	bad |= set_str(o, "architecture", img->arch);
	bad |= set_str(o, "variant", img->variant);
	bad |= json_object_set_new(o, "created", json_integer(img->created_ns));
	bad |= json_object_set_new(o, "imported", json_integer(img->imported_ns));
	bad |= json_object_set_new(o, "size", json_integer((json_int_t)img->size));
	for (size_t i = 0; !bad && img->names && img->names[i]; i++)
		bad |= json_array_append_new(names, json_string(img->names[i]));
	for (size_t i = 0; !bad && i < img->n_layers; i++) {
		const struct keel_image_layer *L = &img->layers[i];
		json_t *l = json_object();
		bad |= !l;
		bad |= set_str(l, "digest", L->digest);
		bad |= set_str(l, "diffID", L->diff_id);
		bad |= set_str(l, "mediaType", L->media_type);
		bad |= json_object_set_new(l, "size", json_integer((json_int_t)L->size));
		bad |= json_object_set_new(l, "tarSize", json_integer((json_int_t)L->tar_size));
		bad |= json_array_append_new(layers, l);
	}
	bad |= json_object_set(o, "names", names);
	bad |= json_object_set(o, "layers", layers);
	json_decref(names);
	json_decref(layers);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int index_save(struct keel_image_store *s, const struct image_index *idx, struct keel_err *err)
{
	json_t *doc = json_object(), *arr = json_array();
	int bad = !doc || !arr;
	bad |= json_object_set_new(doc, "version", json_integer(INDEX_VERSION));
	for (size_t i = 0; !bad && i < idx->n; i++) {
		json_t *o = image_to_json(idx->images[i]);
		bad |= !o || json_array_append_new(arr, o);
	}
	bad |= json_object_set(doc, "images", arr);
	json_decref(arr);
	char *text = NULL;
	size_t len = 0;
	if (!bad)
		bad = image_json_dump(doc, JSON_INDENT(1) | JSON_SORT_KEYS, &text, &len) < 0;
	json_decref(doc);
	if (bad)
		return keel_err_set(err, -ENOMEM, "out of memory writing the image index");
	int r = write_file_atomic(s->root_fd, KEEL_IMAGE_INDEX, text, len, err);
	keel_free(text);
	return r;
}
