/* Reading JSON with jansson, with errors that name the offending field the way a user wrote it
 * ("process.args[2] must be a string"). Writing hot-path JSON is jw.h's job. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/errors.h"

/* Parse a whole document (objects and arrays, or any value with `any`). On failure the message
 * says where: "line 3 column 7: unexpected token". Returns 0 or -KEEL_EPARSE/-ENOMEM; the caller
 * owns *ret (json_decref). */
int keel_json_parse(const char *data, size_t len, bool any, json_t **ret, struct keel_err *err);
int keel_json_load_file(const char *path, json_t **ret, struct keel_err *err);

/* Typed member lookups. `where` names the object for messages ("process", "" for the top level).
 * Each returns 0 when the member is present and has the right type, 1 when it is absent or null
 * and not `required` (*ret untouched), -KEEL_EMISSING when absent and required, -KEEL_ETYPE when
 * of another type, -KEEL_ERANGE for integers that do not fit. */
int keel_json_get_str(const json_t *obj, const char *where, const char *key, bool required,
		      const char **ret, struct keel_err *err);
int keel_json_get_i64(const json_t *obj, const char *where, const char *key, bool required,
		      int64_t *ret, struct keel_err *err);
int keel_json_get_u64(const json_t *obj, const char *where, const char *key, bool required,
		      uint64_t *ret, struct keel_err *err);
int keel_json_get_bool(const json_t *obj, const char *where, const char *key, bool required,
		       bool *ret, struct keel_err *err);
int keel_json_get_obj(const json_t *obj, const char *where, const char *key, bool required,
		      json_t **ret, struct keel_err *err);
int keel_json_get_arr(const json_t *obj, const char *where, const char *key, bool required,
		      json_t **ret, struct keel_err *err);

/* Fail with -KEEL_EPARSE naming the first member of obj that is not in `known` (NULL-terminated):
 * for formats where silently ignoring a field would be wrong. */
int keel_json_only_keys(const json_t *obj, const char *where, const char *const *known,
			struct keel_err *err);
