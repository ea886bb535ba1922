/* The OCI runtime-spec 1.1 config.json, Linux parts, as a typed struct. Parsing checks types,
 * ranges and contradictions and rejects fields that would change isolation but that keel-run does
 * not implement, naming them; nothing that matters is silently ignored. No system calls. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/errors.h"

/* Kinds of hooks, in the order the runtime-spec's lifecycle runs them. */
enum keel_hook_kind {
	KEEL_HOOK_PRESTART,
	KEEL_HOOK_CREATE_RUNTIME,
	KEEL_HOOK_CREATE_CONTAINER,
	KEEL_HOOK_START_CONTAINER,
	KEEL_HOOK_POSTSTART,
	KEEL_HOOK_POSTSTOP,
	KEEL_HOOK_KINDS,
};

/* Namespace kinds; bits in keel_spec.ns_new / ns_join. */
enum keel_ns_kind {
	KEEL_NS_USER,
	KEEL_NS_PID,
	KEEL_NS_NET,
	KEEL_NS_MNT,
	KEEL_NS_IPC,
	KEEL_NS_UTS,
	KEEL_NS_CGROUP,
	KEEL_NS_TIME,
	KEEL_NS_KINDS,
};

/* Strings point into the parsed JSON document the spec keeps (spec->json); arrays of strings are
 * NULL-terminated arrays of such pointers. */
struct keel_spec_hook {
	const char *path;
	const char **args; /* NULL-terminated; argv[0] defaults to path when absent */
	const char **env;
	int timeout;       /* seconds, 0 for none */
};

struct keel_spec_hooks {
	struct keel_spec_hook *v;
	size_t n;
};

struct keel_spec_rlimit {
	int resource; /* RLIMIT_* */
	uint64_t soft, hard;
};

struct keel_spec_mount {
	const char *destination;
	const char *type;   /* may be NULL for bind mounts */
	const char *source; /* may be NULL */
	unsigned long flags;       /* MS_* to set */
	unsigned long clear_flags; /* MS_* named as "rw", "suid", ...: only for the remount of binds */
	unsigned long propagation; /* MS_SHARED/MS_SLAVE/MS_PRIVATE/MS_UNBINDABLE | MS_REC, or 0 */
	bool bind;                 /* bind or rbind (then flags has MS_REC) */
	char *data;                /* the options the kernel does not know as flags, comma-joined */
};

struct keel_spec_idmap {
	uint32_t container, host, size;
};

struct keel_spec_device {
	const char *path;
	char type; /* 'c', 'b', 'u' or 'p' */
	int64_t major, minor;
	uint32_t mode; /* permission bits; 0666 when absent */
	uint32_t uid, gid;
	bool has_uid, has_gid;
};

/* A linux.resources.devices rule; major/minor -1 mean "*". */
struct keel_spec_devrule {
	bool allow;
	char type; /* 'a', 'c' or 'b' */
	int64_t major, minor;
	char access[4];
};

struct keel_spec_resources {
	bool has_memory_limit, has_memory_reservation, has_memory_swap;
	int64_t memory_limit, memory_reservation, memory_swap; /* bytes; -1 unlimited */
	bool has_cpu_shares, has_cpu_quota, has_cpu_period;
	uint64_t cpu_shares, cpu_period;
	int64_t cpu_quota; /* -1 unlimited */
	const char *cpus, *mems;
	bool has_pids_limit;
	int64_t pids_limit; /* <= 0 unlimited */
	uint16_t blkio_weight; /* 0 when absent */
	struct keel_spec_devrule *devices;
	size_t n_devices;
	bool any; /* the object was present */
};

struct keel_spec_seccomp_arg {
	unsigned index;
	uint64_t value, value_two;
	int op; /* enum scmp_compare, 1..7 */
};

struct keel_spec_seccomp_rule {
	const char **names; /* NULL-terminated */
	uint32_t action;    /* SCMP_ACT_* (with the errno folded in for ERRNO/TRACE) */
	struct keel_spec_seccomp_arg *args;
	size_t n_args;
};

struct keel_spec_seccomp {
	uint32_t default_action;
	uint32_t *archs; /* SCMP_ARCH_* */
	size_t n_archs;
	unsigned flags;  /* SECCOMP_FILTER_FLAG_* */
	struct keel_spec_seccomp_rule *rules;
	size_t n_rules;
};

struct keel_spec_sysctl {
	const char *key, *value;
};

struct keel_spec {
	json_t *json; /* the document; the strings below live in it */
	const char *oci_version;
	const char *root_path;
	bool root_readonly;
	const char *hostname, *domainname;

	bool has_process;
	struct {
		bool terminal;
		unsigned console_height, console_width;
		uint32_t uid, gid;
		bool has_umask;
		uint32_t umask;
		uint32_t *gids;
		size_t n_gids;
		const char **args, **env;
		const char *cwd;
		bool has_caps;
		uint64_t caps[5]; /* bounding, effective, inheritable, permitted, ambient */
		struct keel_spec_rlimit *rlimits;
		size_t n_rlimits;
		bool no_new_privileges;
		bool has_oom_score_adj;
		int oom_score_adj;
		const char *apparmor, *selinux; /* only accepted where the LSM is off; see keel-run */
	} process;

	struct keel_spec_mount *mounts;
	size_t n_mounts;
	struct keel_spec_hooks hooks[KEEL_HOOK_KINDS];
	json_t *annotations; /* borrowed from json, or NULL */

	unsigned ns_new;  /* bit (1 << KEEL_NS_*) for each namespace to create */
	unsigned ns_join; /* bit for each namespace to join by path */
	const char *ns_path[KEEL_NS_KINDS];
	struct keel_spec_idmap *uid_map, *gid_map;
	size_t n_uid_map, n_gid_map;
	struct {
		bool set;
		int64_t mono_secs, boot_secs;
		uint32_t mono_nanos, boot_nanos;
	} time_offsets;
	struct keel_spec_device *devices;
	size_t n_devices;
	const char *cgroups_path;
	struct keel_spec_resources resources;
	struct keel_spec_sysctl *sysctl;
	size_t n_sysctl;
	struct keel_spec_seccomp *seccomp; /* NULL when absent */
	unsigned long rootfs_propagation;  /* MS_* or 0 for the default (rslave) */
	const char **masked_paths, **readonly_paths;
};

/* Parse a config.json document. On success *ret owns a new spec (keel_spec_free) that keeps the
 * parsed JSON. Errors: -KEEL_EPARSE (syntax, unknown or unsupported field, contradiction),
 * -KEEL_ETYPE, -KEEL_EMISSING, -KEEL_ERANGE, -ENOMEM; the message names the field
 * ("linux.namespaces[2].type: unknown namespace type \"foo\""). */
int keel_spec_parse(const char *data, size_t len, struct keel_spec **ret, struct keel_err *err);
/* keel_spec_parse on a file's contents (errors as above, plus -errno from reading it). */
int keel_spec_load(const char *path, struct keel_spec **ret, struct keel_err *err);
void keel_spec_free(struct keel_spec *spec);
/* keel_spec_parse on a document already parsed; takes doc (also on failure). */
int keel_spec_parse_json(json_t *doc, struct keel_spec **ret, struct keel_err *err);
/* A linux.resources object alone (`update --resources`): fills only ret->resources; takes doc. */
int keel_spec_parse_resources(json_t *doc, struct keel_spec **ret, struct keel_err *err);

/* One array of hooks ("hooks.poststop", or a copy kept in state.json) into out (zeroed); `where`
 * names it in messages. keel_spec_hooks_free releases it. */
int keel_spec_parse_hook_array(const json_t *arr, const char *where, struct keel_spec_hooks *out,
			       struct keel_err *err);
void keel_spec_hooks_free(struct keel_spec_hooks *hooks);

/* Name tables, for the CLI and tests. */
/* The i-th mount option keel-run knows (flags, propagation, bind), NULL past the end. */
const char *keel_spec_mount_option_name(size_t i);
/* The i-th seccomp name keel-run knows: table 0 actions, 1 operators, 2 architectures. */
const char *keel_spec_seccomp_name(int table, size_t i);
/* runc's default config.json (`spec`, `spec --rootless`), indented. */
struct keel_buf;
int keel_spec_default(bool rootless, struct keel_buf *out);
/* The runtime-spec features document (`features`), indented. */
int keel_run_features(struct keel_buf *out);
const char *keel_ns_name(enum keel_ns_kind kind);     /* "pid", "network", ... */
int keel_ns_clone_flag(enum keel_ns_kind kind);       /* CLONE_NEWPID, ... */
const char *keel_hook_name(enum keel_hook_kind kind); /* "prestart", ... */
/* "CAP_CHOWN" -> 0; -1 for an unknown name. */
int keel_cap_from_name(const char *name);
const char *keel_cap_name(int cap);
/* "SIGTERM", "TERM", "15" -> 15; -1 when unknown. */
int keel_signal_from_name(const char *name);
