/* What the pieces of the config.json parser share (spec.c: the document, process, root, mounts,
 * hooks; spec_linux.c: the linux object). */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "run/spec.h"

/* Builds the dotted names used in messages: "linux.resources.memory", "mounts[3]". */
#define KEEL__WHERE_MAX 128
#define keel__where(buf, fmt, ...) snprintf((buf), KEEL__WHERE_MAX, fmt, __VA_ARGS__)

/* Check obj's members: those in `known` are fine; those in `unsupported` fail with "… is not
 * supported by keel-run" unless null, false, 0 or empty; anything else fails as unknown. */
int keel__spec_fields(const json_t *obj, const char *where, const char *const *known,
		      const char *const *unsupported, struct keel_err *err);
/* An optional array of strings as a NULL-terminated array of pointers into the document (an
 * absent member gives NULL). */
int keel__spec_strv(const json_t *obj, const char *where, const char *key, const char ***ret,
		    struct keel_err *err);
/* An optional unsigned integer that must fit in `max`. 1 when absent. */
int keel__spec_uint(const json_t *obj, const char *where, const char *key, uint64_t max,
		    uint64_t *ret, struct keel_err *err);

int keel__spec_parse_linux(struct keel_spec *spec, const json_t *linux_obj, struct keel_err *err);
/* Checks across sections, run once everything is parsed. */
int keel__spec_check_linux(const struct keel_spec *spec, struct keel_err *err);
void keel__spec_free_linux(struct keel_spec *spec);
