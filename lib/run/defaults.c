/* What keel-run prints about itself: the default config.json of `spec` (runc's defaults) and
 * the runtime-spec features document of `features` (what this parser accepts). */
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "run/spec.h"

static int dump(json_t *doc, struct keel_buf *out)
{
	if (!doc)
		return -ENOMEM;
	char *s = json_dumps(doc, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
	json_decref(doc);
	if (!s)
		return -ENOMEM;
	int r = keel_buf_puts(out, s);
	r |= keel_buf_putc(out, '\n');
	free(s);
	return r ? -ENOMEM : 0;
}

static json_t *strv(const char *const *v)
{
	json_t *a = json_array();
	for (size_t i = 0; a && v[i]; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

int keel_spec_default(bool rootless, struct keel_buf *out)
{
	static const char *const caps[] = {"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE", NULL};
	static const char *const masked[] = {
		"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
		"/proc/scsi", NULL};
	static const char *const readonly[] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
					       "/proc/sysrq-trigger", NULL};
	json_t *mounts = json_pack(
		"[{ssssss}, {ssssss s[ssss]}, {ssssss s[sssss]}, {ssssss s[sssss]}, {ssssss s[sss]}]",
		"destination", "/proc", "type", "proc", "source", "proc",
		"destination", "/dev", "type", "tmpfs", "source", "tmpfs",
		"options", "nosuid", "strictatime", "mode=755", "size=65536k",
		"destination", "/dev/pts", "type", "devpts", "source", "devpts",
		"options", "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620",
		"destination", "/dev/shm", "type", "tmpfs", "source", "shm",
		"options", "nosuid", "noexec", "nodev", "mode=1777", "size=65536k",
		"destination", "/dev/mqueue", "type", "mqueue", "source", "mqueue",
		"options", "nosuid", "noexec", "nodev");
	if (!mounts)
		return -ENOMEM;
	if (!rootless)
		json_array_append_new(json_object_get(json_array_get(mounts, 2), "options"),
				      json_string("gid=5"));
	json_array_append_new(mounts, rootless
		? json_pack("{ssssss s[sssss]}", "destination", "/sys", "type", "none", "source", "/sys",
			    "options", "rbind", "nosuid", "noexec", "nodev", "ro")
		: json_pack("{ssssss s[ssss]}", "destination", "/sys", "type", "sysfs", "source", "sysfs",
			    "options", "nosuid", "noexec", "nodev", "ro"));
	json_array_append_new(mounts, json_pack("{ssssss s[sssss]}", "destination", "/sys/fs/cgroup",
						"type", "cgroup", "source", "cgroup", "options", "nosuid",
						"noexec", "nodev", "relatime", "ro"));
	json_t *ns = json_pack("[{ss}{ss}{ss}{ss}]", "type", "pid", "type", "ipc", "type", "uts",
			       "type", "mount");
	json_t *lx = json_object();
	if (!ns || !lx) {
		json_decref(mounts);
		json_decref(ns);
		json_decref(lx);
		return -ENOMEM;
	}
	if (rootless) {
		json_object_set_new(lx, "uidMappings", json_pack("[{sisIsi}]", "containerID", 0, "hostID",
								 (json_int_t)geteuid(), "size", 1));
		json_object_set_new(lx, "gidMappings", json_pack("[{sisIsi}]", "containerID", 0, "hostID",
								 (json_int_t)getegid(), "size", 1));
		json_array_append_new(ns, json_pack("{ss}", "type", "user"));
	} else {
		json_object_set_new(lx, "resources",
				    json_pack("{s[{sbss}]}", "devices", "allow", 0, "access", "rwm"));
		json_array_insert_new(ns, 1, json_pack("{ss}", "type", "network"));
	}
	json_object_set_new(lx, "namespaces", ns);
	json_object_set_new(lx, "maskedPaths", strv(masked));
	json_object_set_new(lx, "readonlyPaths", strv(readonly));
	json_t *doc = json_pack(
		"{ss s{sb s{sisi} s[s] s[ss] ss s{sosososo} s[{sssIsI}] sb} s{sssb} ss so so}",
		"ociVersion", "1.0.2",
		"process", "terminal", 1, "user", "uid", 0, "gid", 0, "args", "sh", "env",
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm",
		"cwd", "/", "capabilities", "bounding", strv(caps), "effective", strv(caps),
		"permitted", strv(caps), "ambient", strv(caps), "rlimits", "type", "RLIMIT_NOFILE",
		"hard", (json_int_t)1024, "soft", (json_int_t)1024, "noNewPrivileges", 1,
		"root", "path", "rootfs", "readonly", 1,
		"hostname", "keel-run", "mounts", mounts, "linux", lx);
	return dump(doc, out);
}

int keel_run_features(struct keel_buf *out)
{
	static const char *const hooks[] = {"prestart", "createRuntime", "createContainer",
					    "startContainer", "poststart", "poststop", NULL};
	json_t *mo = json_array(), *ns = json_array(), *caps = json_array();
	json_t *seccomp[3] = {json_array(), json_array(), json_array()};
	for (size_t i = 0; keel_spec_mount_option_name(i); i++)
		json_array_append_new(mo, json_string(keel_spec_mount_option_name(i)));
	for (int k = 0; k < KEEL_NS_KINDS; k++)
		json_array_append_new(ns, json_string(keel_ns_name(k)));
	for (int c = 0; c < 64; c++)
		if (keel_cap_name(c))
			json_array_append_new(caps, json_string(keel_cap_name(c)));
	for (int t = 0; t < 3; t++)
		for (size_t i = 0; keel_spec_seccomp_name(t, i); i++)
			json_array_append_new(seccomp[t], json_string(keel_spec_seccomp_name(t, i)));
	const struct scmp_version *v = seccomp_version();
	char ver[48];
	snprintf(ver, sizeof(ver), "%u.%u.%u", v ? v->major : 0, v ? v->minor : 0, v ? v->micro : 0);
	json_t *doc = json_pack(
		"{ss ss so so s{so so s{sbsbsbsb} s{sb so so so} s{sb} s{sb}} s{ssss}}",
		"ociVersionMin", "1.0.0", "ociVersionMax", "1.1.0", "hooks", strv(hooks),
		"mountOptions", mo, "linux", "namespaces", ns, "capabilities", caps,
		"cgroup", "v1", 1, "v2", 1, "systemd", 0, "systemdUser", 0,
		"seccomp", "enabled", 1, "actions", seccomp[0], "operators", seccomp[1],
		"archs", seccomp[2], "apparmor", "enabled", 0, "selinux", "enabled", 0,
		"annotations", "io.github.seccomp.libseccomp.version", ver,
		"org.opencontainers.runc.checkpoint.enabled", "false");
	return dump(doc, out);
}
