/* Unit names (systemd.unit(5) "Description", unit-name.c): types by suffix, templates and
 * instances, escaping, and the %-specifiers of systemd.unit(5) "Specifiers". */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "base/macro.h"

/* Every type systemd knows, so that dependencies on any of them are valid names; keel-init
 * loads the first four (keel_unit_type_supported). */
enum keel_unit_type {
	KEEL_UNIT_SERVICE,
	KEEL_UNIT_SOCKET,
	KEEL_UNIT_TARGET,
	KEEL_UNIT_TIMER,
	KEEL_UNIT_MOUNT,
	KEEL_UNIT_SWAP,
	KEEL_UNIT_DEVICE,
	KEEL_UNIT_AUTOMOUNT,
	KEEL_UNIT_PATH,
	KEEL_UNIT_SLICE,
	KEEL_UNIT_SCOPE,
	KEEL_UNIT_TYPE_MAX,
	KEEL_UNIT_TYPE_INVALID = -1,
};

#define KEEL_UNIT_NAME_MAX 256 /* names are shorter than this */

const char *keel_unit_type_to_string(enum keel_unit_type t);
enum keel_unit_type keel_unit_type_from_string(const char *s);
/* The type of a name by its suffix ("foo.service"), or KEEL_UNIT_TYPE_INVALID. */
enum keel_unit_type keel_unit_name_type(const char *name);
bool keel_unit_type_supported(enum keel_unit_type t);

enum {
	KEEL_NAME_PLAIN = 1 << 0,    /* foo.service */
	KEEL_NAME_INSTANCE = 1 << 1, /* foo@bar.service */
	KEEL_NAME_TEMPLATE = 1 << 2, /* foo@.service */
	KEEL_NAME_ANY = 7,
};

/* systemd's unit_name_is_valid(): [A-Za-z0-9:_.\\-] and '@' before a known suffix, shorter than
 * 256 bytes, not starting with '@'; the kinds allowed by flags. */
bool keel_unit_name_is_valid(const char *name, unsigned flags);

/* The parts of a valid name, as new strings (keel_free): "foo" of foo@bar.service, "bar" of it
 * (0 and NULL when there is no instance, "" for a template), "foo@.service" of it. -EINVAL for a
 * name that is not valid. */
int keel_unit_name_prefix(const char *name, char **ret) KEEL_WUR;
int keel_unit_name_instance(const char *name, char **ret) KEEL_WUR;
int keel_unit_name_template(const char *name, char **ret) KEEL_WUR;
/* foo@.service + "bar" -> foo@bar.service. */
int keel_unit_name_replace_instance(const char *tmpl, const char *instance, char **ret) KEEL_WUR;
/* foo.socket -> foo.service (instance kept). */
int keel_unit_name_change_suffix(const char *name, const char *suffix, char **ret) KEEL_WUR;

/* systemd-escape: '/' -> '-', other unsafe bytes (and a leading '.') -> \xNN. */
int keel_unit_name_escape(const char *s, char **ret) KEEL_WUR;
/* The reverse: \xNN -> byte, '-' -> '/'. */
int keel_unit_name_unescape(const char *s, char **ret) KEEL_WUR;
/* As a path: "-" is "/", else unescape and prefix "/" (no leading/trailing '/' allowed). */
int keel_unit_name_path_unescape(const char *s, char **ret) KEEL_WUR;

/* What the host-wide specifiers resolve to; keel_host_info_load() reads the running system,
 * tests fill it by hand. NULL fields resolve to "" (os-release fields) or fail the expansion
 * with -ENOENT (machine and boot ids). */
struct keel_host_info {
	char *hostname, *pretty_hostname, *machine_id, *boot_id, *kernel_release, *architecture;
	char *os_id, *os_version_id, *os_variant_id, *os_build_id, *os_image_id, *os_image_version;
	char *user_name, *user_home, *user_shell, *group_name;
	uid_t uid;
	gid_t gid;
};

int keel_host_info_load(struct keel_host_info *ret) KEEL_WUR;
void keel_host_info_clear(struct keel_host_info *h);

/* The specifier tables of systemd, by where a value is used. */
enum keel_spec_table {
	KEEL_SPEC_UNIT_NAME, /* names in dependencies, Unit=, Service=: %n %N %p %i %j + host */
	KEEL_SPEC_FULL,      /* everything else in a unit file */
	KEEL_SPEC_INSTALL,   /* [Install] values: like UNIT_NAME */
};

struct keel_spec_ctx {
	const char *unit_id;       /* "foo@bar.service" */
	const char *fragment_path; /* for %y %Y; may be NULL */
	const struct keel_host_info *host;
	bool system;               /* the system manager's directories (/run, /var/lib, ...) */
};

/* Replace %-specifiers of the table in text (result at most max_len bytes, else -ENAMETOOLONG).
 * "%%" is "%"; an unknown letter or digit is -EBADSLT; any other character after % stays as is,
 * as does a trailing %. Errors of a lookup (-ENOENT, -EINVAL) are returned. Sets *ret_deprecated
 * (may be NULL) when %c, %r or %R were used. */
int keel_specifier_expand(const struct keel_spec_ctx *ctx, enum keel_spec_table table,
			  const char *text, size_t max_len, char **ret, bool *ret_deprecated) KEEL_WUR;
