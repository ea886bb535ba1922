/* config.json's linux object (runtime-spec config-linux.md): namespaces, id mappings, devices,
 * cgroupsPath and resources, sysctl, seccomp, masked and read-only paths, rootfs propagation. */
#include <errno.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <string.h>
#include <sys/mount.h>

#include "base/json.h"
#include "base/mem.h"
#include "base/str.h"
#include "run/spec-internal.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

unsigned long keel__spec_propagation(const char *name);

static const struct {
	const char *name;
	int flag;
} ns_table[KEEL_NS_KINDS] = {
	[KEEL_NS_USER] = {"user", CLONE_NEWUSER},
	[KEEL_NS_PID] = {"pid", CLONE_NEWPID},
	[KEEL_NS_NET] = {"network", CLONE_NEWNET},
	[KEEL_NS_MNT] = {"mount", CLONE_NEWNS},
	[KEEL_NS_IPC] = {"ipc", CLONE_NEWIPC},
	[KEEL_NS_UTS] = {"uts", CLONE_NEWUTS},
	[KEEL_NS_CGROUP] = {"cgroup", CLONE_NEWCGROUP},
	[KEEL_NS_TIME] = {"time", CLONE_NEWTIME},
};

const char *keel_ns_name(enum keel_ns_kind kind)
{
	return (unsigned)kind < KEEL_NS_KINDS ? ns_table[kind].name : "?";
}

int keel_ns_clone_flag(enum keel_ns_kind kind)
{
	return (unsigned)kind < KEEL_NS_KINDS ? ns_table[kind].flag : 0;
}

static int parse_namespaces(struct keel_spec *spec, const json_t *arr, struct keel_err *err)
{
	static const char *const known[] = {"type", "path", NULL};
	size_t i;
	json_t *o;
	json_array_foreach(arr, i, o) {
		char where[KEEL__WHERE_MAX];
		const char *type, *path = NULL;
		int r, kind = -1;
		keel__where(where, "linux.namespaces[%zu]", i);
		if (!json_is_object(o))
			return keel_err_set(err, -KEEL_ETYPE, "%s must be an object", where);
		if ((r = keel__spec_fields(o, where, known, NULL, err)) < 0 ||
		    (r = keel_json_get_str(o, where, "type", true, &type, err)) < 0 ||
		    (r = keel_json_get_str(o, where, "path", false, &path, err)) < 0)
			return r;
		for (int k = 0; k < KEEL_NS_KINDS; k++)
			if (strcmp(ns_table[k].name, type) == 0)
				kind = k;
		if (kind < 0)
			return keel_err_set(err, -KEEL_EPARSE, "%s.type: unknown namespace type \"%s\"",
					    where, type);
		if ((spec->ns_new | spec->ns_join) & (1u << kind))
			return keel_err_set(err, -KEEL_EPARSE, "%s: the %s namespace is listed twice",
					    where, type);
		if (path && *path) {
			if (path[0] != '/')
				return keel_err_set(err, -KEEL_EPARSE,
						    "%s.path must be an absolute path, not \"%s\"", where, path);
			spec->ns_join |= 1u << kind;
			spec->ns_path[kind] = path;
		} else {
			spec->ns_new |= 1u << kind;
		}
	}
	return 0;
}

static int parse_idmaps(const json_t *arr, const char *where0, struct keel_spec_idmap **ret,
			size_t *ret_n, struct keel_err *err)
{
	static const char *const known[] = {"containerID", "hostID", "size", NULL};
	size_t n = json_array_size(arr);
	if (!n)
		return 0;
	if (n > 340) /* the kernel's limit on lines in uid_map */
		return keel_err_set(err, -KEEL_ERANGE, "%s: more than 340 mappings", where0);
	struct keel_spec_idmap *v = keel_calloc(n, sizeof(*v));
	if (!v)
		return keel_err_set(err, -ENOMEM, "out of memory");
	*ret = v;
	for (size_t i = 0; i < n; i++) {
		char where[KEEL__WHERE_MAX];
		uint64_t c, h, s;
		int r;
		json_t *o = json_array_get(arr, i);
		keel__where(where, "%s[%zu]", where0, i);
		if (!json_is_object(o))
			return keel_err_set(err, -KEEL_ETYPE, "%s must be an object", where);
		if ((r = keel__spec_fields(o, where, known, NULL, err)) < 0 ||
		    (r = keel_json_get_u64(o, where, "containerID", true, &c, err)) < 0 ||
		    (r = keel_json_get_u64(o, where, "hostID", true, &h, err)) < 0 ||
		    (r = keel_json_get_u64(o, where, "size", true, &s, err)) < 0)
			return r;
		if (s == 0 || c > UINT32_MAX || h > UINT32_MAX || s > UINT32_MAX || c + s > 1ull << 32 ||
		    h + s > 1ull << 32)
			return keel_err_set(err, -KEEL_ERANGE, "%s: mapping out of range", where);
		v[i] = (struct keel_spec_idmap){(uint32_t)c, (uint32_t)h, (uint32_t)s};
		*ret_n = i + 1;
	}
	return 0;
}

static int parse_devices(struct keel_spec *spec, const json_t *arr, struct keel_err *err)
{
	static const char *const known[] = {"path", "type", "major", "minor", "fileMode", "uid",
					    "gid", NULL};
	size_t n = json_array_size(arr);
	if (!n)
		return 0;
	spec->devices = keel_calloc(n, sizeof(*spec->devices));
	if (!spec->devices)
		return keel_err_set(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		char where[KEEL__WHERE_MAX];
		struct keel_spec_device *d = &spec->devices[i];
		json_t *o = json_array_get(arr, i);
		const char *type;
		uint64_t v;
		int r;
		keel__where(where, "linux.devices[%zu]", i);
		if (!json_is_object(o))
			return keel_err_set(err, -KEEL_ETYPE, "%s must be an object", where);
		spec->n_devices = i + 1;
		if ((r = keel__spec_fields(o, where, known, NULL, err)) < 0 ||
		    (r = keel_json_get_str(o, where, "path", true, &d->path, err)) < 0 ||
		    (r = keel_json_get_str(o, where, "type", true, &type, err)) < 0)
			return r;
		if (d->path[0] != '/' || strlen(d->path) < 2)
			return keel_err_set(err, -KEEL_EPARSE, "%s.path must be an absolute path, not \"%s\"",
					    where, d->path);
		if (strlen(type) != 1 || !strchr("cbup", type[0]))
			return keel_err_set(err, -KEEL_EPARSE, "%s.type: \"%s\" is not c, b, u or p", where,
					    type);
		d->type = type[0];
		bool need_numbers = d->type != 'p';
		if ((r = keel_json_get_i64(o, where, "major", need_numbers, &d->major, err)) < 0 ||
		    (r = keel_json_get_i64(o, where, "minor", need_numbers, &d->minor, err)) < 0)
			return r;
		if (d->major < 0 || d->major > 4095 || d->minor < 0 || d->minor > 1048575)
			return keel_err_set(err, -KEEL_ERANGE, "%s: device number out of range", where);
		d->mode = 0666;
		if ((r = keel__spec_uint(o, where, "fileMode", 07777, &v, err)) < 0)
			return r;
		if (r == 0)
			d->mode = (uint32_t)v;
		if ((r = keel__spec_uint(o, where, "uid", UINT32_MAX - 1, &v, err)) < 0)
			return r;
		if (r == 0) {
			d->has_uid = true;
			d->uid = (uint32_t)v;
		}
		if ((r = keel__spec_uint(o, where, "gid", UINT32_MAX - 1, &v, err)) < 0)
			return r;
		if (r == 0) {
			d->has_gid = true;
			d->gid = (uint32_t)v;
		}
	}
	return 0;
}

static int parse_devrules(struct keel_spec_resources *res, const json_t *arr, struct keel_err *err)
{
	static const char *const known[] = {"allow", "type", "major", "minor", "access", NULL};
	size_t n = json_array_size(arr);
	if (!n)
		return 0;
	res->devices = keel_calloc(n, sizeof(*res->devices));
	if (!res->devices)
		return keel_err_set(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		char where[KEEL__WHERE_MAX];
		struct keel_spec_devrule *d = &res->devices[i];
		json_t *o = json_array_get(arr, i);
		const char *type = "a", *access = "rwm";
		int r;
		keel__where(where, "linux.resources.devices[%zu]", i);
		if (!json_is_object(o))
			return keel_err_set(err, -KEEL_ETYPE, "%s must be an object", where);
		res->n_devices = i + 1;
		d->major = d->minor = -1;
		if ((r = keel__spec_fields(o, where, known, NULL, err)) < 0 ||
		    (r = keel_json_get_bool(o, where, "allow", true, &d->allow, err)) < 0 ||
		    (r = keel_json_get_str(o, where, "type", false, &type, err)) < 0 ||
		    (r = keel_json_get_i64(o, where, "major", false, &d->major, err)) < 0 ||
		    (r = keel_json_get_i64(o, where, "minor", false, &d->minor, err)) < 0 ||
		    (r = keel_json_get_str(o, where, "access", false, &access, err)) < 0)
			return r;
		if (strlen(type) != 1 || !strchr("acb", type[0]))
			return keel_err_set(err, -KEEL_EPARSE, "%s.type: \"%s\" is not a, c or b", where, type);
		d->type = type[0];
		if (d->major < -1 || d->major > 4095 || d->minor < -1 || d->minor > 1048575)
			return keel_err_set(err, -KEEL_ERANGE, "%s: device number out of range", where);
		size_t alen = strlen(access);
		if (alen == 0 || alen > 3 || strspn(access, "rwm") != alen)
			return keel_err_set(err, -KEEL_EPARSE, "%s.access: \"%s\" is not made of r, w and m",
					    where, access);
		memcpy(d->access, access, alen + 1);
	}
	return 0;
}

static int get_i64_or_absent(const json_t *o, const char *where, const char *key, bool *has,
			     int64_t *v, struct keel_err *err)
{
	int r = keel_json_get_i64(o, where, key, false, v, err);
	if (r == 0)
		*has = true;
	return r < 0 ? r : 0;
}

static int parse_resources(struct keel_spec *spec, const json_t *res, struct keel_err *err)
{
	static const char *const known[] = {"devices", "memory", "cpu", "pids", "blockIO", NULL};
	static const char *const unsupported[] = {"hugepageLimits", "network", "rdma", "unified", NULL};
	struct keel_spec_resources *r = &spec->resources;
	json_t *o;
	int rc;
	uint64_t u;
	r->any = true;
	if ((rc = keel__spec_fields(res, "linux.resources", known, unsupported, err)) < 0)
		return rc;
	if ((rc = keel_json_get_arr(res, "linux.resources", "devices", false, &o, err)) < 0)
		return rc;
	if (rc == 0 && (rc = parse_devrules(r, o, err)) < 0)
		return rc;

	if ((rc = keel_json_get_obj(res, "linux.resources", "memory", false, &o, err)) < 0)
		return rc;
	if (rc == 0) {
		static const char *const mk[] = {"limit", "reservation", "swap", "useHierarchy",
						 "checkBeforeUpdate", NULL};
		static const char *const mu[] = {"kernel", "kernelTCP", "swappiness",
						 "disableOOMKiller", NULL};
		const char *w = "linux.resources.memory";
		if ((rc = keel__spec_fields(o, w, mk, mu, err)) < 0 ||
		    (rc = get_i64_or_absent(o, w, "limit", &r->has_memory_limit, &r->memory_limit, err)) < 0 ||
		    (rc = get_i64_or_absent(o, w, "reservation", &r->has_memory_reservation,
					    &r->memory_reservation, err)) < 0 ||
		    (rc = get_i64_or_absent(o, w, "swap", &r->has_memory_swap, &r->memory_swap, err)) < 0)
			return rc;
		if ((r->has_memory_limit && r->memory_limit < -1) ||
		    (r->has_memory_reservation && r->memory_reservation < -1) ||
		    (r->has_memory_swap && r->memory_swap < -1))
			return keel_err_set(err, -KEEL_ERANGE, "%s: a limit must be -1 or positive", w);
		if (r->has_memory_limit && r->memory_limit == 0)
			r->has_memory_limit = false; /* 0 means "not set", as in runc */
		if (r->has_memory_swap && r->memory_swap == 0)
			r->has_memory_swap = false;
		if (r->has_memory_swap && r->memory_swap > 0 && r->has_memory_limit &&
		    r->memory_limit > 0 && r->memory_swap < r->memory_limit)
			return keel_err_set(err, -KEEL_EPARSE,
					    "%s.swap (%lld) must not be below memory.limit (%lld): it is "
					    "the limit of memory plus swap",
					    w, (long long)r->memory_swap, (long long)r->memory_limit);
		if (r->has_memory_swap && r->memory_swap > 0 &&
		    (!r->has_memory_limit || r->memory_limit == -1))
			return keel_err_set(err, -KEEL_EPARSE, "%s.swap needs a memory.limit", w);
	}

	if ((rc = keel_json_get_obj(res, "linux.resources", "cpu", false, &o, err)) < 0)
		return rc;
	if (rc == 0) {
		static const char *const ck[] = {"shares", "quota", "period", "cpus", "mems", NULL};
		static const char *const cu[] = {"realtimeRuntime", "realtimePeriod", "idle", NULL};
		const char *w = "linux.resources.cpu";
		if ((rc = keel__spec_fields(o, w, ck, cu, err)) < 0)
			return rc;
		if ((rc = keel__spec_uint(o, w, "shares", 262144, &r->cpu_shares, err)) < 0)
			return rc;
		r->has_cpu_shares = rc == 0 && r->cpu_shares;
		if ((rc = get_i64_or_absent(o, w, "quota", &r->has_cpu_quota, &r->cpu_quota, err)) < 0)
			return rc;
		if (r->has_cpu_quota && r->cpu_quota != -1 && r->cpu_quota < 1000) {
			if (r->cpu_quota == 0)
				r->has_cpu_quota = false;
			else
				return keel_err_set(err, -KEEL_ERANGE, "%s.quota must be -1 or at least 1000 (µs)",
						    w);
		}
		if ((rc = keel__spec_uint(o, w, "period", 1000000, &r->cpu_period, err)) < 0)
			return rc;
		r->has_cpu_period = rc == 0 && r->cpu_period;
		if (r->has_cpu_period && r->cpu_period < 1000)
			return keel_err_set(err, -KEEL_ERANGE, "%s.period must be 1000..1000000 (µs)", w);
		if ((rc = keel_json_get_str(o, w, "cpus", false, &r->cpus, err)) < 0 ||
		    (rc = keel_json_get_str(o, w, "mems", false, &r->mems, err)) < 0)
			return rc;
		if (r->cpus && !*r->cpus)
			r->cpus = NULL;
		if (r->mems && !*r->mems)
			r->mems = NULL;
		const char *lists[2] = {r->cpus, r->mems};
		for (int k = 0; k < 2; k++)
			if (lists[k] && strspn(lists[k], "0123456789,-") != strlen(lists[k]))
				return keel_err_set(err, -KEEL_EPARSE, "%s.%s: \"%s\" is not a list like 0-3,5",
						    w, k ? "mems" : "cpus", lists[k]);
	}

	if ((rc = keel_json_get_obj(res, "linux.resources", "pids", false, &o, err)) < 0)
		return rc;
	if (rc == 0) {
		static const char *const pk[] = {"limit", NULL};
		if ((rc = keel__spec_fields(o, "linux.resources.pids", pk, NULL, err)) < 0 ||
		    (rc = keel_json_get_i64(o, "linux.resources.pids", "limit", true, &r->pids_limit,
					    err)) < 0)
			return rc;
		r->has_pids_limit = true;
	}

	if ((rc = keel_json_get_obj(res, "linux.resources", "blockIO", false, &o, err)) < 0)
		return rc;
	if (rc == 0) {
		static const char *const bk[] = {"weight", NULL};
		static const char *const bu[] = {"leafWeight", "weightDevice", "throttleReadBpsDevice",
						 "throttleWriteBpsDevice", "throttleReadIOPSDevice",
						 "throttleWriteIOPSDevice", NULL};
		const char *w = "linux.resources.blockIO";
		if ((rc = keel__spec_fields(o, w, bk, bu, err)) < 0 ||
		    (rc = keel__spec_uint(o, w, "weight", 1000, &u, err)) < 0)
			return rc;
		if (rc == 0 && u) {
			if (u < 10)
				return keel_err_set(err, -KEEL_ERANGE, "%s.weight must be 10..1000", w);
			r->blkio_weight = (uint16_t)u;
		}
	}
	return 0;
}

static int parse_sysctl(struct keel_spec *spec, const json_t *o, struct keel_err *err)
{
	size_t n = json_object_size(o);
	if (!n)
		return 0;
	spec->sysctl = keel_calloc(n, sizeof(*spec->sysctl));
	if (!spec->sysctl)
		return keel_err_set(err, -ENOMEM, "out of memory");
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)o, k, v) {
		if (!json_is_string(v))
			return keel_err_set(err, -KEEL_ETYPE, "linux.sysctl.%s must be a string", k);
		if (!*k || strstr(k, "..") || strchr(k, '/') || k[0] == '.')
			return keel_err_set(err, -KEEL_EPARSE, "linux.sysctl: \"%s\" is not a sysctl name", k);
		spec->sysctl[spec->n_sysctl++] = (struct keel_spec_sysctl){k, json_string_value(v)};
	}
	return 0;
}

/* ---- seccomp ---- */

static const struct {
	const char *name;
	uint32_t action;
	bool takes_errno;
} seccomp_actions[] = {
	{"SCMP_ACT_KILL", SCMP_ACT_KILL_THREAD, false},
	{"SCMP_ACT_KILL_THREAD", SCMP_ACT_KILL_THREAD, false},
	{"SCMP_ACT_KILL_PROCESS", SCMP_ACT_KILL_PROCESS, false},
	{"SCMP_ACT_TRAP", SCMP_ACT_TRAP, false},
	{"SCMP_ACT_ERRNO", SCMP_ACT_ERRNO(0), true},
	{"SCMP_ACT_TRACE", SCMP_ACT_TRACE(0), true},
	{"SCMP_ACT_ALLOW", SCMP_ACT_ALLOW, false},
	{"SCMP_ACT_LOG", SCMP_ACT_LOG, false},
};

static const struct {
	const char *name;
	uint32_t arch;
} seccomp_archs[] = {
	{"SCMP_ARCH_X86", SCMP_ARCH_X86}, {"SCMP_ARCH_X86_64", SCMP_ARCH_X86_64},
	{"SCMP_ARCH_X32", SCMP_ARCH_X32}, {"SCMP_ARCH_ARM", SCMP_ARCH_ARM},
	{"SCMP_ARCH_AARCH64", SCMP_ARCH_AARCH64}, {"SCMP_ARCH_MIPS", SCMP_ARCH_MIPS},
	{"SCMP_ARCH_MIPS64", SCMP_ARCH_MIPS64}, {"SCMP_ARCH_MIPS64N32", SCMP_ARCH_MIPS64N32},
	{"SCMP_ARCH_MIPSEL", SCMP_ARCH_MIPSEL}, {"SCMP_ARCH_MIPSEL64", SCMP_ARCH_MIPSEL64},
	{"SCMP_ARCH_MIPSEL64N32", SCMP_ARCH_MIPSEL64N32}, {"SCMP_ARCH_PPC", SCMP_ARCH_PPC},
	{"SCMP_ARCH_PPC64", SCMP_ARCH_PPC64}, {"SCMP_ARCH_PPC64LE", SCMP_ARCH_PPC64LE},
	{"SCMP_ARCH_S390", SCMP_ARCH_S390}, {"SCMP_ARCH_S390X", SCMP_ARCH_S390X},
	{"SCMP_ARCH_RISCV64", SCMP_ARCH_RISCV64},
};

static const char *const seccomp_ops[] = {
	NULL, "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE",
	"SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ",
};

const char *keel_spec_seccomp_name(int table, size_t i)
{
	switch (table) {
	case 0:
		return i < KEEL_ARRAY_SIZE(seccomp_actions) ? seccomp_actions[i].name : NULL;
	case 1:
		return i + 1 < KEEL_ARRAY_SIZE(seccomp_ops) ? seccomp_ops[i + 1] : NULL;
	default:
		return i < KEEL_ARRAY_SIZE(seccomp_archs) ? seccomp_archs[i].name : NULL;
	}
}

/* "SCMP_ACT_ERRNO" with errnoRet (default EPERM) -> the action value. */
static int seccomp_action(const char *name, const json_t *errno_ret, const char *where,
			  uint32_t *ret, struct keel_err *err)
{
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(seccomp_actions); i++) {
		if (strcmp(seccomp_actions[i].name, name) != 0)
			continue;
		uint32_t a = seccomp_actions[i].action;
		if (seccomp_actions[i].takes_errno) {
			json_int_t e = EPERM;
			if (errno_ret && !json_is_null(errno_ret)) {
				if (!json_is_integer(errno_ret) || json_integer_value(errno_ret) < 0 ||
				    json_integer_value(errno_ret) > 0xffff)
					return keel_err_set(err, -KEEL_ERANGE, "%s.errnoRet must be 0..65535",
							    where);
				e = json_integer_value(errno_ret);
			}
			a |= (uint32_t)e;
		} else if (errno_ret && !json_is_null(errno_ret)) {
			return keel_err_set(err, -KEEL_EPARSE, "%s.errnoRet is only valid with "
					    "SCMP_ACT_ERRNO or SCMP_ACT_TRACE", where);
		}
		*ret = a;
		return 0;
	}
	if (strcmp(name, "SCMP_ACT_NOTIFY") == 0)
		return keel_err_set(err, -KEEL_EPARSE, "%s: SCMP_ACT_NOTIFY is not supported by keel-run",
				    where);
	return keel_err_set(err, -KEEL_EPARSE, "%s: unknown seccomp action \"%s\"", where, name);
}

static int parse_seccomp_rule(struct keel_spec_seccomp_rule *rule, const json_t *o, const char *where,
			      struct keel_err *err)
{
	static const char *const known[] = {"names", "action", "errnoRet", "args", "comment",
					    "includes", "excludes", NULL};
	const char *action;
	json_t *args;
	int r;
	if ((r = keel__spec_fields(o, where, known, NULL, err)) < 0 ||
	    (r = keel__spec_strv(o, where, "names", &rule->names, err)) < 0 ||
	    (r = keel_json_get_str(o, where, "action", true, &action, err)) < 0 ||
	    (r = seccomp_action(action, json_object_get(o, "errnoRet"), where, &rule->action, err)) < 0 ||
	    (r = keel_json_get_arr(o, where, "args", false, &args, err)) < 0)
		return r;
	if (!rule->names || !rule->names[0])
		return keel_err_set(err, -KEEL_EMISSING, "%s.names must not be empty", where);
	if (r > 0 || !json_array_size(args))
		return 0;
	size_t n = json_array_size(args);
	if (n > 6)
		return keel_err_set(err, -KEEL_ERANGE, "%s.args: a system call has at most 6 arguments",
				    where);
	rule->args = keel_calloc(n, sizeof(*rule->args));
	if (!rule->args)
		return keel_err_set(err, -ENOMEM, "out of memory");
	static const char *const ak[] = {"index", "value", "valueTwo", "op", NULL};
	for (size_t i = 0; i < n; i++) {
		char w[KEEL__WHERE_MAX + 32];
		struct keel_spec_seccomp_arg *a = &rule->args[i];
		json_t *ao = json_array_get(args, i);
		const char *op;
		uint64_t idx;
		snprintf(w, sizeof(w), "%s.args[%zu]", where, i);
		if (!json_is_object(ao))
			return keel_err_set(err, -KEEL_ETYPE, "%s must be an object", w);
		/* jansson holds integers as int64: values above INT64_MAX (masks like
		 * 0xffffffff00000000 fit) come as negative numbers and are taken bit for bit. */
		json_t *val = json_object_get(ao, "value"), *val2 = json_object_get(ao, "valueTwo");
		if ((r = keel__spec_fields(ao, w, ak, NULL, err)) < 0 ||
		    (r = keel_json_get_u64(ao, w, "index", true, &idx, err)) < 0 ||
		    (r = keel_json_get_str(ao, w, "op", true, &op, err)) < 0)
			return r;
		if (idx > 5)
			return keel_err_set(err, -KEEL_ERANGE, "%s.index must be 0..5", w);
		if (!json_is_integer(val) || (val2 && !json_is_null(val2) && !json_is_integer(val2)))
			return keel_err_set(err, -KEEL_ETYPE, "%s.value must be an integer", w);
		a->index = (unsigned)idx;
		a->value = (uint64_t)json_integer_value(val);
		a->value_two = val2 ? (uint64_t)json_integer_value(val2) : 0;
		a->op = 0;
		for (int k = 1; k < (int)KEEL_ARRAY_SIZE(seccomp_ops); k++)
			if (strcmp(seccomp_ops[k], op) == 0)
				a->op = k;
		if (!a->op)
			return keel_err_set(err, -KEEL_EPARSE, "%s.op: unknown operator \"%s\"", w, op);
		rule->n_args = i + 1;
	}
	return 0;
}

static int parse_seccomp(struct keel_spec *spec, const json_t *o, struct keel_err *err)
{
	static const char *const known[] = {"defaultAction", "defaultErrnoRet", "architectures",
					    "flags", "syscalls", NULL};
	static const char *const unsupported[] = {"listenerPath", "listenerMetadata", NULL};
	const char *w = "linux.seccomp";
	const char *def;
	const char **names = NULL;
	json_t *arr;
	int r;
	struct keel_spec_seccomp *sc = keel_calloc(1, sizeof(*sc));
	if (!sc)
		return keel_err_set(err, -ENOMEM, "out of memory");
	spec->seccomp = sc;
	if ((r = keel__spec_fields(o, w, known, unsupported, err)) < 0 ||
	    (r = keel_json_get_str(o, w, "defaultAction", true, &def, err)) < 0 ||
	    (r = seccomp_action(def, json_object_get(o, "defaultErrnoRet"), w, &sc->default_action,
				err)) < 0)
		return r;
	if ((r = keel__spec_strv(o, w, "architectures", &names, err)) < 0)
		return r;
	size_t n = keel_strv_len((char **)names);
	if (n) {
		sc->archs = keel_calloc(n, sizeof(*sc->archs));
		if (!sc->archs) {
			keel_free(names);
			return keel_err_set(err, -ENOMEM, "out of memory");
		}
		for (size_t i = 0; i < n; i++) {
			bool found = false;
			for (size_t k = 0; k < KEEL_ARRAY_SIZE(seccomp_archs) && !found; k++)
				if (strcmp(seccomp_archs[k].name, names[i]) == 0) {
					sc->archs[sc->n_archs++] = seccomp_archs[k].arch;
					found = true;
				}
			if (!found) {
				r = keel_err_set(err, -KEEL_EPARSE, "%s.architectures[%zu]: unknown architecture \"%s\"",
						 w, i, names[i]);
				keel_free(names);
				return r;
			}
		}
	}
	keel_free(names);
	names = NULL;
	if ((r = keel__spec_strv(o, w, "flags", &names, err)) < 0)
		return r;
	for (size_t i = 0; names && names[i]; i++) {
		if (strcmp(names[i], "SECCOMP_FILTER_FLAG_TSYNC") == 0)
			sc->flags |= SECCOMP_FILTER_FLAG_TSYNC;
		else if (strcmp(names[i], "SECCOMP_FILTER_FLAG_LOG") == 0)
			sc->flags |= SECCOMP_FILTER_FLAG_LOG;
		else if (strcmp(names[i], "SECCOMP_FILTER_FLAG_SPEC_ALLOW") == 0)
			sc->flags |= SECCOMP_FILTER_FLAG_SPEC_ALLOW;
		else {
			r = keel_err_set(err, -KEEL_EPARSE, "%s.flags[%zu]: \"%s\" is not supported", w, i,
					 names[i]);
			keel_free(names);
			return r;
		}
	}
	keel_free(names);
	if ((r = keel_json_get_arr(o, w, "syscalls", false, &arr, err)) < 0)
		return r;
	if (r > 0 || !(n = json_array_size(arr)))
		return 0;
	sc->rules = keel_calloc(n, sizeof(*sc->rules));
	if (!sc->rules)
		return keel_err_set(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		char where[KEEL__WHERE_MAX];
		json_t *ro = json_array_get(arr, i);
		keel__where(where, "linux.seccomp.syscalls[%zu]", i);
		if (!json_is_object(ro))
			return keel_err_set(err, -KEEL_ETYPE, "%s must be an object", where);
		sc->n_rules = i + 1;
		if ((r = parse_seccomp_rule(&sc->rules[i], ro, where, err)) < 0)
			return r;
	}
	return 0;
}

/* ---- the linux object ---- */

static int check_paths(const char **v, const char *what, struct keel_err *err)
{
	for (size_t i = 0; v && v[i]; i++)
		if (v[i][0] != '/')
			return keel_err_set(err, -KEEL_EPARSE, "linux.%s[%zu] must be an absolute path, not \"%s\"",
					    what, i, v[i]);
	return 0;
}

int keel__spec_parse_linux(struct keel_spec *spec, const json_t *lx, struct keel_err *err)
{
	static const char *const known[] = {"namespaces", "uidMappings", "gidMappings", "devices",
					    "cgroupsPath", "resources", "sysctl", "seccomp",
					    "rootfsPropagation", "maskedPaths", "readonlyPaths",
					    "timeOffsets", "mountLabel", NULL};
	static const char *const unsupported[] = {"intelRdt", "personality", "memoryPolicy",
						  "netDevices", NULL};
	json_t *o;
	const char *s;
	int r;
	if (!lx)
		return 0;
	if ((r = keel__spec_fields(lx, "linux", known, unsupported, err)) < 0)
		return r;
	if ((r = keel_json_get_arr(lx, "linux", "namespaces", false, &o, err)) < 0)
		return r;
	if (r == 0 && (r = parse_namespaces(spec, o, err)) < 0)
		return r;
	if ((r = keel_json_get_arr(lx, "linux", "uidMappings", false, &o, err)) < 0)
		return r;
	if (r == 0 && (r = parse_idmaps(o, "linux.uidMappings", &spec->uid_map, &spec->n_uid_map, err)) < 0)
		return r;
	if ((r = keel_json_get_arr(lx, "linux", "gidMappings", false, &o, err)) < 0)
		return r;
	if (r == 0 && (r = parse_idmaps(o, "linux.gidMappings", &spec->gid_map, &spec->n_gid_map, err)) < 0)
		return r;
	if ((r = keel_json_get_arr(lx, "linux", "devices", false, &o, err)) < 0)
		return r;
	if (r == 0 && (r = parse_devices(spec, o, err)) < 0)
		return r;
	if ((r = keel_json_get_str(lx, "linux", "cgroupsPath", false, &spec->cgroups_path, err)) < 0)
		return r;
	if (spec->cgroups_path && !*spec->cgroups_path)
		spec->cgroups_path = NULL;
	if (spec->cgroups_path) {
		/* systemd's "slice:prefix:name" form needs the systemd cgroup driver. */
		if (strchr(spec->cgroups_path, ':'))
			return keel_err_set(err, -KEEL_EPARSE, "linux.cgroupsPath \"%s\": the systemd form "
					    "slice:prefix:name is not supported by keel-run", spec->cgroups_path);
		for (const char *p = spec->cgroups_path; *p; p++)
			if ((p[0] == '.' && p[1] == '.' && (p == spec->cgroups_path || p[-1] == '/') &&
			     (p[2] == '/' || !p[2])))
				return keel_err_set(err, -KEEL_EPARSE, "linux.cgroupsPath \"%s\" must not contain \"..\"",
						    spec->cgroups_path);
	}
	if ((r = keel_json_get_obj(lx, "linux", "resources", false, &o, err)) < 0)
		return r;
	if (r == 0 && (r = parse_resources(spec, o, err)) < 0)
		return r;
	if ((r = keel_json_get_obj(lx, "linux", "sysctl", false, &o, err)) < 0)
		return r;
	if (r == 0 && (r = parse_sysctl(spec, o, err)) < 0)
		return r;
	if ((r = keel_json_get_obj(lx, "linux", "seccomp", false, &o, err)) < 0)
		return r;
	if (r == 0 && (r = parse_seccomp(spec, o, err)) < 0)
		return r;
	if ((r = keel_json_get_str(lx, "linux", "rootfsPropagation", false, &s, err)) < 0)
		return r;
	if (r == 0 && *s && !(spec->rootfs_propagation = keel__spec_propagation(s)))
		return keel_err_set(err, -KEEL_EPARSE, "linux.rootfsPropagation: unknown propagation \"%s\"", s);
	if ((r = keel__spec_strv(lx, "linux", "maskedPaths", &spec->masked_paths, err)) < 0 ||
	    (r = check_paths(spec->masked_paths, "maskedPaths", err)) < 0 ||
	    (r = keel__spec_strv(lx, "linux", "readonlyPaths", &spec->readonly_paths, err)) < 0 ||
	    (r = check_paths(spec->readonly_paths, "readonlyPaths", err)) < 0)
		return r;
	if ((r = keel_json_get_str(lx, "linux", "mountLabel", false, &s, err)) < 0)
		return r;
	if (r == 0 && *s)
		return keel_err_set(err, -KEEL_EPARSE, "linux.mountLabel is not supported by keel-run "
				    "(no SELinux)");
	if ((r = keel_json_get_obj(lx, "linux", "timeOffsets", false, &o, err)) < 0)
		return r;
	if (r == 0) {
		static const char *const tk[] = {"monotonic", "boottime", NULL};
		static const char *const ok[] = {"secs", "nanosecs", NULL};
		if ((r = keel__spec_fields(o, "linux.timeOffsets", tk, NULL, err)) < 0)
			return r;
		spec->time_offsets.set = true;
		for (int k = 0; k < 2; k++) {
			json_t *c;
			char w[KEEL__WHERE_MAX];
			int64_t secs = 0;
			uint64_t ns = 0;
			keel__where(w, "linux.timeOffsets.%s", tk[k]);
			if ((r = keel_json_get_obj(o, "linux.timeOffsets", tk[k], false, &c, err)) < 0)
				return r;
			if (r > 0)
				continue;
			if ((r = keel__spec_fields(c, w, ok, NULL, err)) < 0 ||
			    (r = keel_json_get_i64(c, w, "secs", false, &secs, err)) < 0 ||
			    (r = keel__spec_uint(c, w, "nanosecs", 999999999, &ns, err)) < 0)
				return r;
			if (k == 0) {
				spec->time_offsets.mono_secs = secs;
				spec->time_offsets.mono_nanos = (uint32_t)ns;
			} else {
				spec->time_offsets.boot_secs = secs;
				spec->time_offsets.boot_nanos = (uint32_t)ns;
			}
		}
	}
	return 0;
}

/* Is a sysctl allowed given the namespaces? The rule runc applies: only keys that a namespace of
 * the container's own scopes may be set. */
static int check_sysctl(const struct keel_spec *spec, const char *key, struct keel_err *err)
{
	unsigned ns = spec->ns_new | spec->ns_join;
	static const char *const ipc_keys[] = {"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni",
					       "kernel.sem", "kernel.shmall", "kernel.shmmax",
					       "kernel.shmmni", "kernel.shm_rmid_forced", NULL};
	for (size_t i = 0; ipc_keys[i]; i++)
		if (strcmp(ipc_keys[i], key) == 0)
			goto ipc;
	if (keel_startswith(key, "fs.mqueue."))
		goto ipc;
	if (keel_startswith(key, "net.")) {
		if (ns & (1u << KEEL_NS_NET))
			return 0;
		return keel_err_set(err, -KEEL_EPARSE, "linux.sysctl.%s needs a network namespace", key);
	}
	if (strcmp(key, "kernel.hostname") == 0 || strcmp(key, "kernel.domainname") == 0) {
		if (ns & (1u << KEEL_NS_UTS))
			return 0;
		return keel_err_set(err, -KEEL_EPARSE, "linux.sysctl.%s needs a uts namespace", key);
	}
	return keel_err_set(err, -KEEL_EPARSE, "linux.sysctl.%s is not in a namespace of the container: "
			    "setting it would change the host", key);
ipc:
	if (ns & (1u << KEEL_NS_IPC))
		return 0;
	return keel_err_set(err, -KEEL_EPARSE, "linux.sysctl.%s needs an ipc namespace", key);
}

int keel__spec_check_linux(const struct keel_spec *spec, struct keel_err *err)
{
	bool new_user = spec->ns_new & (1u << KEEL_NS_USER);
	if ((spec->n_uid_map || spec->n_gid_map) && !new_user)
		return keel_err_set(err, -KEEL_EPARSE,
				    "linux.uidMappings/gidMappings need a new user namespace in linux.namespaces");
	if (new_user && (!spec->n_uid_map || !spec->n_gid_map))
		return keel_err_set(err, -KEEL_EPARSE,
				    "a new user namespace needs linux.uidMappings and linux.gidMappings");
	if ((spec->hostname && *spec->hostname) && !(spec->ns_new & (1u << KEEL_NS_UTS)))
		return keel_err_set(err, -KEEL_EPARSE, "hostname needs a new uts namespace");
	if ((spec->domainname && *spec->domainname) && !(spec->ns_new & (1u << KEEL_NS_UTS)))
		return keel_err_set(err, -KEEL_EPARSE, "domainname needs a new uts namespace");
	if (spec->time_offsets.set && !(spec->ns_new & (1u << KEEL_NS_TIME)))
		return keel_err_set(err, -KEEL_EPARSE, "linux.timeOffsets need a new time namespace");
	/* The root file system is set up (pivot_root, mounts, masks) in a mount namespace of the
	 * container's own; joining another one would mean running in someone else's root. */
	if (!(spec->ns_new & (1u << KEEL_NS_MNT)))
		return keel_err_set(err, -KEEL_EPARSE, "linux.namespaces must include a new mount namespace "
				    "(type \"mount\" without a path)");
	for (size_t i = 0; i < spec->n_sysctl; i++) {
		int r = check_sysctl(spec, spec->sysctl[i].key, err);
		if (r < 0)
			return r;
	}
	return 0;
}

int keel_spec_parse_resources(json_t *doc, struct keel_spec **ret, struct keel_err *err)
{
	struct keel_spec *spec = keel_calloc(1, sizeof(*spec));
	if (!spec) {
		json_decref(doc);
		return keel_err_set(err, -ENOMEM, "out of memory");
	}
	spec->json = doc;
	int r = json_is_object(doc) ? parse_resources(spec, doc, err)
				    : keel_err_set(err, -KEEL_ETYPE, "linux.resources must be an object");
	if (r < 0) {
		keel_spec_free(spec);
		return r;
	}
	*ret = spec;
	return 0;
}

void keel__spec_free_linux(struct keel_spec *spec)
{
	keel_free(spec->uid_map);
	keel_free(spec->gid_map);
	keel_free(spec->devices);
	keel_free(spec->resources.devices);
	keel_free(spec->sysctl);
	if (spec->seccomp) {
		for (size_t i = 0; i < spec->seccomp->n_rules; i++) {
			keel_free(spec->seccomp->rules[i].names);
			keel_free(spec->seccomp->rules[i].args);
		}
		keel_free(spec->seccomp->rules);
		keel_free(spec->seccomp->archs);
		keel_free(spec->seccomp);
	}
	keel_free(spec->masked_paths);
	keel_free(spec->readonly_paths);
}
