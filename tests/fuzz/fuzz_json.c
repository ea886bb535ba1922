/* Fuzz JSON reading and the fast writer together: whatever jansson accepts, writing it back with
 * keel_jw (with and without Go escaping) must produce JSON that parses to an equal value. */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/json.h"
#include "base/jw.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void write_value(struct keel_jw *w, json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		const char *key;
		size_t klen;
		json_t *m;
		keel_jw_obj_begin(w);
		json_object_keylen_foreach(v, key, klen, m) {
			keel_jw_keyn(w, key, klen);
			write_value(w, m);
		}
		keel_jw_obj_end(w);
		break;
	}
	case JSON_ARRAY: {
		size_t i;
		json_t *m;
		keel_jw_arr_begin(w);
		json_array_foreach(v, i, m)
			write_value(w, m);
		keel_jw_arr_end(w);
		break;
	}
	case JSON_STRING:
		keel_jw_strn(w, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		keel_jw_i64(w, json_integer_value(v));
		break;
	case JSON_REAL: {
		/* The writer has no floats (Keel's formats have none); write what jansson would. */
		char *text = json_dumps(v, JSON_ENCODE_ANY);
		keel_jw_raw(w, text, strlen(text));
		free(text);
		break;
	}
	case JSON_TRUE:
	case JSON_FALSE:
		keel_jw_bool(w, json_is_true(v));
		break;
	case JSON_NULL:
		keel_jw_null(w);
		break;
	}
}

static unsigned depth(json_t *v)
{
	unsigned d = 0;
	if (json_is_object(v)) {
		const char *k;
		json_t *m;
		json_object_foreach(v, k, m) {
			unsigned c = depth(m);
			d = c > d ? c : d;
		}
		return d + 1;
	}
	if (json_is_array(v)) {
		size_t i;
		json_t *m;
		json_array_foreach(v, i, m) {
			unsigned c = depth(m);
			d = c > d ? c : d;
		}
		return d + 1;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *v;
	struct keel_err err;
	if (keel_json_parse((const char *)data, size, true, &v, &err) < 0) {
		if (!err.msg[0])
			abort();
		return 0;
	}
	if (depth(v) <= KEEL_JW_MAX_DEPTH) {
		for (unsigned flags = 0; flags <= KEEL_JW_GO_ESCAPE; flags += KEEL_JW_GO_ESCAPE) {
			struct keel_buf b = KEEL_BUF_INIT;
			struct keel_jw w;
			keel_jw_init(&w, &b, flags);
			write_value(&w, v);
			if (keel_jw_finish(&w) != 0)
				abort();
			json_t *back;
			if (keel_json_parse(b.data, b.len, true, &back, &err) < 0 || !json_equal(v, back))
				abort();
			json_decref(back);
			keel_buf_free(&b);
		}
	}
	/* The typed getters must hold up on any object. */
	const char *s;
	int64_t i;
	uint64_t u;
	bool bo;
	json_t *o;
	keel_json_get_str(v, "", "a", false, &s, &err);
	keel_json_get_i64(v, "", "b", true, &i, &err);
	keel_json_get_u64(v, "", "c", false, &u, &err);
	keel_json_get_bool(v, "", "d", false, &bo, &err);
	keel_json_get_obj(v, "", "e", false, &o, &err);
	keel_json_get_arr(v, "", "f", false, &o, &err);
	if (json_is_object(v)) {
		static const char *const known[] = {"a", "b", NULL};
		keel_json_only_keys(v, "x", known, &err);
	}
	json_decref(v);
	return 0;
}
