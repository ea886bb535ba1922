#include "base/json.h"

#include <errno.h>
#include <string.h>

static const char *json_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	default: return "null";
	}
}

/* jansson's loader does not report running out of memory reliably: a failure while starting the
 * lexer returns NULL with the error code left unset, most others come back as syntax errors, and
 * one (a byte the lexer could not store) is dropped silently from a document that then parses.
 * Every failed allocation sets errno to ENOMEM (keel_malloc as malloc does), so that is the test:
 * true when the load ran out of memory, whatever it returned. */
static bool load_ran_out_of_memory(int saved_errno)
{
	bool oom = errno == ENOMEM;
	errno = saved_errno;
	return oom;
}

int keel_json_parse(const char *data, size_t len, bool any, json_t **ret, struct keel_err *err)
{
	json_error_t jerr;
	memset(&jerr, 0, sizeof(jerr));
	int saved_errno = errno;
	errno = 0;
	json_t *v = json_loadb(data, len, JSON_REJECT_DUPLICATES | (any ? JSON_DECODE_ANY : 0), &jerr);
	bool oom = load_ran_out_of_memory(saved_errno);
	if (oom || (!v && json_error_code(&jerr) == json_error_out_of_memory)) {
		json_decref(v);
		return keel_err_set(err, -ENOMEM, "out of memory parsing JSON");
	}
	if (!v)
		return keel_err_set(err, -KEEL_EPARSE, "line %d column %d: %s", jerr.line, jerr.column,
				    jerr.text);
	*ret = v;
	return 0;
}

int keel_json_load_file(const char *path, json_t **ret, struct keel_err *err)
{
	json_error_t jerr;
	memset(&jerr, 0, sizeof(jerr));
	int saved_errno = errno;
	errno = 0;
	json_t *v = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	int open_errno = errno; /* what fopen() said, when the file could not be opened */
	if (load_ran_out_of_memory(saved_errno)) {
		json_decref(v);
		return keel_err_set(err, -ENOMEM, "%s: out of memory parsing JSON", path);
	}
	if (!v) {
		switch (json_error_code(&jerr)) {
		case json_error_out_of_memory:
			return keel_err_set(err, -ENOMEM, "%s: out of memory parsing JSON", path);
		case json_error_cannot_open_file:
			return keel_err_set(err, open_errno > 0 ? -open_errno : -ENOENT, "%s", jerr.text);
		default:
			return keel_err_set(err, -KEEL_EPARSE, "%s: line %d column %d: %s", path,
					    jerr.line, jerr.column, jerr.text);
		}
	}
	*ret = v;
	return 0;
}

/* Look up key; 0 with *v set, 1 absent-and-optional, or the missing error. */
static int lookup(const json_t *obj, const char *where, const char *key, bool required,
		  json_t **v, struct keel_err *err)
{
	*v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
	if (*v && !json_is_null(*v))
		return 0;
	if (!required)
		return 1;
	return keel_err_set(err, -KEEL_EMISSING, "%s%s%s is required", where, *where ? "." : "", key);
}

static int wrong_type(const char *where, const char *key, const char *want, const json_t *got,
		      struct keel_err *err)
{
	return keel_err_set(err, -KEEL_ETYPE, "%s%s%s must be %s, not %s", where, *where ? "." : "",
			    key, want, json_type_name(got));
}

int keel_json_get_str(const json_t *obj, const char *where, const char *key, bool required,
		      const char **ret, struct keel_err *err)
{
	json_t *v;
	int r = lookup(obj, where, key, required, &v, err);
	if (r)
		return r;
	if (!json_is_string(v))
		return wrong_type(where, key, "a string", v, err);
	*ret = json_string_value(v);
	return 0;
}

int keel_json_get_i64(const json_t *obj, const char *where, const char *key, bool required,
		      int64_t *ret, struct keel_err *err)
{
	json_t *v;
	int r = lookup(obj, where, key, required, &v, err);
	if (r)
		return r;
	if (!json_is_integer(v))
		return wrong_type(where, key, "an integer", v, err);
	*ret = json_integer_value(v);
	return 0;
}

int keel_json_get_u64(const json_t *obj, const char *where, const char *key, bool required,
		      uint64_t *ret, struct keel_err *err)
{
	json_t *v;
	int r = lookup(obj, where, key, required, &v, err);
	if (r)
		return r;
	if (!json_is_integer(v))
		return wrong_type(where, key, "an integer", v, err);
	/* jansson stores integers as long long: values past INT64_MAX do not parse at all. */
	if (json_integer_value(v) < 0)
		return keel_err_set(err, -KEEL_ERANGE, "%s%s%s must not be negative", where,
				    *where ? "." : "", key);
	*ret = (uint64_t)json_integer_value(v);
	return 0;
}

int keel_json_get_bool(const json_t *obj, const char *where, const char *key, bool required,
		       bool *ret, struct keel_err *err)
{
	json_t *v;
	int r = lookup(obj, where, key, required, &v, err);
	if (r)
		return r;
	if (!json_is_boolean(v))
		return wrong_type(where, key, "a boolean", v, err);
	*ret = json_is_true(v);
	return 0;
}

int keel_json_get_obj(const json_t *obj, const char *where, const char *key, bool required,
		      json_t **ret, struct keel_err *err)
{
	json_t *v;
	int r = lookup(obj, where, key, required, &v, err);
	if (r)
		return r;
	if (!json_is_object(v))
		return wrong_type(where, key, "an object", v, err);
	*ret = v;
	return 0;
}

int keel_json_get_arr(const json_t *obj, const char *where, const char *key, bool required,
		      json_t **ret, struct keel_err *err)
{
	json_t *v;
	int r = lookup(obj, where, key, required, &v, err);
	if (r)
		return r;
	if (!json_is_array(v))
		return wrong_type(where, key, "an array", v, err);
	*ret = v;
	return 0;
}

int keel_json_only_keys(const json_t *obj, const char *where, const char *const *known,
			struct keel_err *err)
{
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)obj, key, v) {
		bool ok = false;
		for (size_t i = 0; known[i] && !ok; i++)
			ok = strcmp(known[i], key) == 0;
		if (!ok)
			return keel_err_set(err, -KEEL_EPARSE, "%s%s%s: unknown field", where,
					    *where ? "." : "", key);
	}
	return 0;
}
