/* The config.json of one pod app: the image's process merged with the user's overrides, the
 * pod's shared namespaces joined by path, and the security defaults every pod app gets (the OCI
 * default capability set, the default seccomp profile, no-new-privileges, runc's masked and
 * read-only paths). Read by lib/run like any other bundle, so a pod app is inspectable as a
 * plain OCI bundle under the pod's directory. */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

#include "run/pod-internal.h"
#include "run/spec.h"

const char *const keel__pod_ns_names[POD_SHARED_NS] = {"net", "ipc", "uts"};

/* runc spec's (and podman's) default: what a container may do as root without reaching into
 * the host. */
static const char *const default_caps[] = {
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
};

/* runc spec's lists. */
static const char *const masked_paths[] = {
	"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
	"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
};
static const char *const readonly_paths[] = {
	"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};

/* Calls denied outright with EPERM: they act on the whole machine (kernel modules, clocks,
 * swap, reboot, kexec, accounting, quotas), on keyrings the kernel does not namespace, on other
 * processes' memory (ptrace, process_vm_*, kcmp), or on mounts and namespaces (the app keeps the
 * ones it was given), or they are old attack surface (bpf, perf_event_open, userfaultfd,
 * handles, uselib, ...). Names this architecture does not have are skipped by lib/run. */
static const char *const denied_syscalls[] = {
	"acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module",
	"delete_module", "finit_module", "fsconfig", "fsmount", "fsopen", "fspick",
	"get_kernel_syms", "init_module", "ioperm", "iopl", "kcmp", "kexec_file_load",
	"kexec_load", "keyctl", "lookup_dcookie", "mount", "mount_setattr", "move_mount",
	"name_to_handle_at", "nfsservctl", "open_by_handle_at", "open_tree", "perf_event_open",
	"pivot_root", "process_vm_readv", "process_vm_writev", "ptrace", "query_module",
	"quotactl", "quotactl_fd", "reboot", "request_key", "setns", "settimeofday", "stime",
	"swapoff", "swapon", "_sysctl", "sysfs", "syslog", "umount", "umount2", "unshare",
	"uselib", "userfaultfd", "ustat", "vhangup", "vm86", "vm86old", "fanotify_init",
	"open_tree_attr", "pidfd_getfd",
};

/* clone() with any of these makes a namespace: each is one rule, arg0 & flag == flag. */
static const uint64_t clone_ns_flags[] = {
	CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET,
	CLONE_NEWCGROUP, 0x00000080 /* CLONE_NEWTIME */,
};

/* personality() flags that weaken address-space protections (ADDR_NO_RANDOMIZE,
 * FDPIC_FUNCPTRS, MMAP_PAGE_ZERO, ADDR_COMPAT_LAYOUT, READ_IMPLIES_EXEC, ADDR_LIMIT_32BIT,
 * ADDR_LIMIT_3GB). Each rule matches the flag set with bit 31 clear, so the query
 * personality(0xffffffff) stays allowed. */
static const uint64_t personality_flags[] = {
	0x0040000, 0x0080000, 0x0100000, 0x0200000, 0x0400000, 0x0800000, 0x8000000,
};

uint64_t keel__pod_default_caps(void)
{
	uint64_t m = 0;
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(default_caps); i++)
		m |= 1ull << keel_cap_from_name(default_caps[i]);
	return m;
}

static json_t *strv_json(const char *const *v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; a && (n == (size_t)-1 ? v && v[i] : i < n); i++)
		if (json_array_append_new(a, json_string(v[i])) < 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

static json_t *masked_rule(const char *name, unsigned index, uint64_t mask, uint64_t value)
{
	return json_pack("{s:[s], s:s, s:i, s:[{s:i, s:I, s:I, s:s}]}", "names", name, "action",
			 "SCMP_ACT_ERRNO", "errnoRet", EPERM, "args", "index", index, "value",
			 (json_int_t)mask, "valueTwo", (json_int_t)value, "op", "SCMP_CMP_MASKED_EQ");
}

json_t *keel__pod_seccomp_profile(void)
{
	json_t *rules = json_array();
	json_t *p = json_pack("{s:s, s:[s, s, s], s:o}", "defaultAction", "SCMP_ACT_ALLOW",
			      "architectures", "SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32",
			      "syscalls", rules);
	if (!p)
		return NULL;
	bool ok = json_array_append_new(rules, json_pack("{s:o, s:s, s:i}", "names",
					strv_json(denied_syscalls, KEEL_ARRAY_SIZE(denied_syscalls)),
					"action", "SCMP_ACT_ERRNO", "errnoRet", EPERM)) == 0;
	/* clone3 passes its flags in memory, which a filter cannot read: ENOSYS makes the C
	 * libraries fall back to clone(), whose flags it can. */
	ok = ok && json_array_append_new(rules, json_pack("{s:[s], s:s, s:i}", "names", "clone3", "action",
							  "SCMP_ACT_ERRNO", "errnoRet", ENOSYS)) == 0;
	for (size_t i = 0; ok && i < KEEL_ARRAY_SIZE(clone_ns_flags); i++)
		ok = json_array_append_new(rules, masked_rule("clone", 0, clone_ns_flags[i],
							      clone_ns_flags[i])) == 0;
	for (size_t i = 0; ok && i < KEEL_ARRAY_SIZE(personality_flags); i++)
		ok = json_array_append_new(rules, masked_rule("personality", 0,
							      personality_flags[i] | 0x80000000u,
							      personality_flags[i])) == 0;
	if (!ok) {
		json_decref(p);
		return NULL;
	}
	return p;
}

static json_t *mount_json(const char *dest, const char *type, const char *source, const char *opts)
{
	json_t *m = json_pack("{s:s, s:s, s:s}", "destination", dest, "type", type, "source", source);
	char *copy = opts ? strdup(opts) : NULL, *save = NULL;
	json_t *o = json_array();
	for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t; t = strtok_r(NULL, ",", &save))
		json_array_append_new(o, json_string(t));
	free(copy);
	if (m && o)
		json_object_set_new(m, "options", o);
	else
		json_decref(o);
	return m;
}

static json_t *default_mounts(void)
{
	json_t *a = json_array();
	json_array_append_new(a, mount_json("/proc", "proc", "proc", NULL));
	json_array_append_new(a, mount_json("/dev", "tmpfs", "tmpfs", "nosuid,strictatime,mode=755,size=65536k"));
	json_array_append_new(a, mount_json("/dev/pts", "devpts", "devpts",
					    "nosuid,noexec,newinstance,ptmxmode=0666,mode=0620,gid=5"));
	json_array_append_new(a, mount_json("/dev/shm", "tmpfs", "shm", "nosuid,noexec,nodev,mode=1777,size=65536k"));
	json_array_append_new(a, mount_json("/dev/mqueue", "mqueue", "mqueue", "nosuid,noexec,nodev"));
	json_array_append_new(a, mount_json("/sys", "sysfs", "sysfs", "nosuid,noexec,nodev,ro"));
	json_array_append_new(a, mount_json("/sys/fs/cgroup", "cgroup", "cgroup", "nosuid,noexec,nodev,relatime,ro"));
	return a;
}

static const struct keel_pod_volume *find_volume(const struct keel_pod_opts *o, const char *name)
{
	for (size_t i = 0; i < o->n_volumes; i++)
		if (strcmp(o->volumes[i].name, name) == 0)
			return &o->volumes[i];
	return NULL;
}

int keel__pod_app_config(const struct keel__pod_ctx *p, const struct keel__pod_app *a, json_t **ret,
			 struct keel_err *err)
{
	const struct keel_pod_opts *o = p->o;
	char path[PATH_MAX + 64], cgpath[256];
	json_t *caps = strv_json(default_caps, KEEL_ARRAY_SIZE(default_caps));
	json_t *gids = json_array();
	for (size_t i = 0; gids && i < a->n_gids; i++)
		json_array_append_new(gids, json_integer(a->gids[i]));
	json_t *process = json_pack(
		"{s:b, s:{s:I, s:I, s:o}, s:o, s:o, s:s, s:{s:O, s:O, s:O, s:[]}, s:[{s:s, s:i, s:i}],"
		" s:b}",
		"terminal", 0, "user", "uid", (json_int_t)a->uid, "gid", (json_int_t)a->gid,
		"additionalGids", gids, "args", strv_json((const char *const *)a->args, (size_t)-1),
		"env", strv_json((const char *const *)a->env, (size_t)-1), "cwd", a->cwd,
		"capabilities", "bounding", caps, "effective", caps, "permitted", caps, "ambient",
		"rlimits", "type", "RLIMIT_NOFILE", "hard", 1024, "soft", 1024,
		"noNewPrivileges", 1);
	json_decref(caps);

	json_t *mounts = default_mounts();
	for (size_t i = 0; mounts && i < a->in->n_mounts; i++) {
		const struct keel_pod_mount *m = &a->in->mounts[i];
		const struct keel_pod_volume *v = find_volume(o, m->volume);
		if (!v) {
			json_decref(mounts);
			json_decref(process);
			return keel_err_set(err, -EINVAL, "app %s: no volume named %s (declare it with "
					    "--volume %s:/host/path)", a->name, m->volume, m->volume);
		}
		json_array_append_new(mounts, mount_json(m->target, "bind", v->host_path,
							 m->readonly || v->readonly ? "rbind,rprivate,ro"
										    : "rbind,rprivate"));
	}

	/* The pod's /etc/hosts and /etc/resolv.conf (none with --net none), read-only. */
	static const char *const etc[] = {"hosts", "resolv.conf"};
	for (size_t i = 0; mounts && i < KEEL_ARRAY_SIZE(etc); i++) {
		if (i == 1 && o->net == KEEL_POD_NET_NONE)
			continue;
		char dest[32];
		snprintf(dest, sizeof(dest), "/etc/%s", etc[i]);
		snprintf(path, sizeof(path), "%s/etc/%s", p->dir, etc[i]);
		json_array_append_new(mounts, mount_json(dest, "bind", path, "bind,rprivate,ro"));
	}

	json_t *ns = json_pack("[{s:s}, {s:s}]", "type", "pid", "type", "mount");
	if (ns && o->user_ns) {
		/* The pod's user namespace owns its other namespaces; lib/run makes the app's pid
		 * and mount namespaces inside it. */
		snprintf(path, sizeof(path), "%s/ns/user", p->dir);
		json_array_append_new(ns, json_pack("{s:s, s:s}", "type", "user", "path", path));
	}
	static const char *const oci_ns[POD_SHARED_NS] = {"network", "ipc", "uts"};
	for (int k = 0; ns && k < POD_SHARED_NS; k++) {
		if (k == 0 && !p->has_netns)
			continue; /* --net host: the host's network namespace */
		snprintf(path, sizeof(path), "%s/ns/%s", p->dir, keel__pod_ns_names[k]);
		json_array_append_new(ns, json_pack("{s:s, s:s}", "type", oci_ns[k], "path", path));
	}
	snprintf(cgpath, sizeof(cgpath), "/%s/%s/%s", POD_CGROUP_PARENT, p->name, a->name);
	json_t *resources = json_pack("{s:[{s:b, s:s}]}", "devices", "allow", 0, "access", "rwm");
	if (resources && a->memory > 0)
		json_object_set_new(resources, "memory", json_pack("{s:I, s:I}", "limit", (json_int_t)a->memory,
									   "swap", (json_int_t)a->memory));
	snprintf(path, sizeof(path), "%s/apps/%s/rootfs", p->dir, a->name);
	json_t *cfg = json_pack(
		"{s:s, s:o, s:{s:s, s:b}, s:o, s:{s:o, s:s, s:o, s:o, s:o, s:o},"
		" s:{s:s, s:s}}",
		"ociVersion", "1.0.2", "process", process, "root", "path", path, "readonly", 0,
		"mounts", mounts, "linux", "namespaces", ns, "cgroupsPath", cgpath, "resources", resources,
		"seccomp", keel__pod_seccomp_profile(),
		"maskedPaths", strv_json(masked_paths, KEEL_ARRAY_SIZE(masked_paths)),
		"readonlyPaths", strv_json(readonly_paths, KEEL_ARRAY_SIZE(readonly_paths)),
		"annotations", "io.keel.pod", p->name, "io.keel.pod.app", a->name);
	if (!cfg)
		return keel_err_set(err, -ENOMEM, "building app %s's config.json", a->name);
	*ret = cfg;
	return 0;
}
