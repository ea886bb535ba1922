/* Machine facts for Condition*= (condition.h), following systemd 252's virt.c, condition.c,
 * proc-cmdline.c, cap-list.c and on_ac_power(). */
#include <dirent.h>
#include <fnmatch.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "base/macro.h"
#include "base/str.h"
#include "init/condition.h"
#include "init/values.h"
#include "init/words.h"

/* ---- small file helpers ---- */

static int read_line_at(const char *root, const char *path, char *buf, size_t size)
{
	char full[4096];
	snprintf(full, sizeof(full), "%s%s", root, path);
	FILE *f = fopen(full, "re");
	if (!f)
		return -errno;
	if (!fgets(buf, (int)size, f))
		buf[0] = '\0';
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	return (int)strlen(buf);
}

static bool exists_at(const char *root, const char *path)
{
	char full[4096];
	snprintf(full, sizeof(full), "%s%s", root, path);
	return access(full, F_OK) == 0;
}

/* ---- virtualization ---- */

const char *keel_virt_container_name(const char *value)
{
	static const char *const known[] = {"openvz", "lxc", "lxc-libvirt", "systemd-nspawn", "docker",
					    "podman", "rkt", "wsl", "proot", "pouch"};
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(known); i++)
		if (strcmp(value, known[i]) == 0)
			return known[i];
	return "container-other";
}

const char *keel_virt_dmi_vendor(const char *s)
{
	static const struct { const char *prefix, *id; } t[] = {
		{"KVM", "kvm"}, {"OpenStack", "kvm"}, {"KubeVirt", "kvm"}, {"Amazon EC2", "amazon"},
		{"QEMU", "qemu"}, {"VMware", "vmware"}, {"VMW", "vmware"}, {"innotek GmbH", "oracle"},
		{"VirtualBox", "oracle"}, {"Xen", "xen"}, {"Bochs", "bochs"}, {"Parallels", "parallels"},
		{"BHYVE", "bhyve"}, {"Hyper-V", "microsoft"}, {"Apple Virtualization", "apple"},
	};
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(t); i++)
		if (keel_startswith(s, t[i].prefix))
			return t[i].id;
	return NULL;
}

const char *keel_virt_cpuid_vendor(const char *sig)
{
	static const struct { const char *sig, *id; } t[] = {
		{"XenVMMXenVMM", "xen"}, {"KVMKVMKVM", "kvm"}, {"Linux KVM Hv", "kvm"},
		{"TCGTCGTCGTCG", "qemu"}, {"VMwareVMware", "vmware"}, {"Microsoft Hv", "microsoft"},
		{"bhyve bhyve ", "bhyve"}, {"QNXQVMBSQG", "qnx"}, {"ACRNACRNACRN", "acrn"},
		{"SRESRESRESRE", "sre"},
	};
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(t); i++)
		if (strcmp(sig, t[i].sig) == 0)
			return t[i].id;
	return "vm-other";
}

static const char *detect_dmi(const char *root)
{
	static const char *const files[] = {
		"/sys/class/dmi/id/product_name", "/sys/class/dmi/id/sys_vendor",
		"/sys/class/dmi/id/board_vendor", "/sys/class/dmi/id/bios_vendor",
		"/sys/class/dmi/id/product_version",
	};
	char buf[256];
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(files); i++) {
		if (read_line_at(root, files[i], buf, sizeof(buf)) <= 0)
			continue;
		const char *id = keel_virt_dmi_vendor(buf);
		if (id)
			return id;
	}
	return NULL;
}

/* NULL: no hypervisor bit. Only on the live system (root ""). */
static const char *detect_cpuid(const char *root)
{
	if (*root)
		return NULL;
#if defined(__x86_64__) || defined(__i386__)
	unsigned a, b, c, d;
	if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & 0x80000000u))
		return NULL;
	union { unsigned r[3]; char s[13]; } sig;
	memset(&sig, 0, sizeof(sig));
	__cpuid(0x40000000, a, sig.r[0], sig.r[1], sig.r[2]);
	sig.s[12] = '\0';
	return keel_virt_cpuid_vendor(sig.s);
#else
	return NULL;
#endif
}

static const char *container_files(const char *root)
{
	if (exists_at(root, "/run/.containerenv"))
		return "podman";
	if (exists_at(root, "/.dockerenv"))
		return "docker";
	return NULL;
}

static const char *translate(const char *root, const char *value)
{
	if (strcmp(value, "oci") == 0) {
		const char *f = container_files(root);
		return f ? f : "container-other";
	}
	return keel_virt_container_name(value);
}

/* $container of PID 1, from /proc/1/environ. */
static int pid1_container_env(const char *root, char *out, size_t size)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/proc/1/environ", root);
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	char buf[65536];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	for (size_t i = 0; i < n; i += strlen(buf + i) + 1) {
		const char *v = keel_startswith(buf + i, "container=");
		if (v) {
			snprintf(out, size, "%s", v);
			return 1;
		}
	}
	return 0;
}

static void detect_container(const char *root, bool pid1, char *out, size_t size)
{
	char buf[256];
	const char *id = NULL;
	out[0] = '\0';
	if (exists_at(root, "/proc/vz") && !exists_at(root, "/proc/bc")) {
		id = "openvz";
	} else if (read_line_at(root, "/proc/sys/kernel/osrelease", buf, sizeof(buf)) >= 0 &&
		   (strstr(buf, "Microsoft") || strstr(buf, "WSL"))) {
		id = "wsl";
	} else if (read_line_at(root, "/run/host/container-manager", buf, sizeof(buf)) > 0) {
		id = translate(root, buf);
	} else if (pid1 && !*root) {
		const char *e = getenv("container");
		if (e && !*e)
			return; /* set and empty: not in a container */
		id = e ? translate(root, e) : container_files(root);
	} else if (read_line_at(root, "/run/systemd/container", buf, sizeof(buf)) > 0) {
		id = translate(root, buf);
	} else if (pid1_container_env(root, buf, sizeof(buf)) > 0 && *buf) {
		id = translate(root, buf);
	} else {
		id = container_files(root);
	}
	if (id)
		snprintf(out, size, "%s", id);
}

static const char *detect_vm(const char *root)
{
	const char *dmi = detect_dmi(root);
	char buf[256];
	if (dmi && (!strcmp(dmi, "oracle") || !strcmp(dmi, "xen") || !strcmp(dmi, "amazon") || !strcmp(dmi, "parallels")))
		return dmi;
	char path[4096];
	snprintf(path, sizeof(path), "%s/proc/cpuinfo", root);
	FILE *f = fopen(path, "re");
	if (f) {
		bool uml = false;
		while (!uml && fgets(buf, sizeof(buf), f))
			uml = keel_startswith(buf, "vendor_id") && strstr(buf, "User Mode Linux");
		fclose(f);
		if (uml)
			return "uml";
	}
	if (exists_at(root, "/proc/xen"))
		return "xen";
	const char *cpu = detect_cpuid(root);
	if (cpu && strcmp(cpu, "vm-other") != 0)
		return cpu;
	if (dmi)
		return dmi;
	if (read_line_at(root, "/sys/hypervisor/type", buf, sizeof(buf)) > 0)
		return strcmp(buf, "xen") == 0 ? "xen" : "vm-other";
	return cpu; /* "vm-other" or NULL */
}

void keel_virt_detect(const char *root, bool pid1, struct keel_virt *ret)
{
	memset(ret, 0, sizeof(*ret));
	detect_container(root, pid1, ret->container, sizeof(ret->container));
	const char *vm = detect_vm(root);
	if (vm)
		snprintf(ret->vm, sizeof(ret->vm), "%s", vm);
}

bool keel_cond_virtualization(const char *param, const struct keel_virt *v)
{
	/* systemd's detect_virtualization(): a container wins over the VM it runs in */
	const char *id = v->container[0] ? v->container : v->vm;
	int b = keel_parse_boolean(param);
	if (b >= 0)
		return (bool)b == (id[0] != '\0');
	if (strcmp(param, "vm") == 0)
		return !v->container[0] && v->vm[0];
	if (strcmp(param, "container") == 0)
		return v->container[0] != '\0';
	return id[0] && strcmp(param, id) == 0;
}

/* ---- kernel command line ---- */

bool keel_cond_kernel_cmdline(const char *cmdline, const char *param)
{
	bool has_eq = strchr(param, '=') != NULL;
	size_t n = strlen(param);
	const char *p = cmdline;
	for (;;) {
		/* a word: quotes removed ('a="b c"' is one word a=b c), as systemd's EXTRACT_UNQUOTE */
		while (*p == ' ' || *p == '\t' || *p == '\n')
			p++;
		if (!*p)
			return false;
		char word[4096];
		size_t k = 0;
		char quote = 0;
		for (; *p && (quote || (*p != ' ' && *p != '\t' && *p != '\n')); p++) {
			if (quote && *p == quote)
				quote = 0;
			else if (!quote && (*p == '"' || *p == '\''))
				quote = *p;
			else if (k + 1 < sizeof(word))
				word[k++] = *p;
		}
		word[k] = '\0';
		if (has_eq ? strcmp(word, param) == 0 : strncmp(word, param, n) == 0 && (word[n] == '\0' || word[n] == '='))
			return true;
	}
}

/* ---- capabilities ---- */

/* keel_capability_from_name() lives with the other capability parsing (unit_parse_sandbox.c). */

bool keel_cond_capability(uint64_t capbnd, const char *name)
{
	int c = keel_capability_from_name(name);
	return c >= 0 && (capbnd & (1ULL << c));
}

/* ---- AC power ---- */

bool keel_on_ac_power(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return true; /* nothing to ask: assume mains (systemd does the same) */
	bool online = false, offline = false;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char base[4096], buf[64];
		snprintf(base, sizeof(base), "%s/%s", dir, de->d_name);
		if (read_line_at(base, "/type", buf, sizeof(buf)) < 0 || strcmp(buf, "Mains") != 0)
			continue;
		if (read_line_at(base, "/online", buf, sizeof(buf)) < 0)
			continue;
		if (strcmp(buf, "1") == 0)
			online = true;
		else if (strcmp(buf, "0") == 0)
			offline = true;
	}
	closedir(d);
	return online || !offline;
}

/* ---- NeedsUpdate ---- */

bool keel_cond_needs_update(const char *usr, const char *dir)
{
	struct statvfs sv;
	if (statvfs(dir, &sv) == 0 && (sv.f_flag & ST_RDONLY))
		return false;
	char p[4096];
	snprintf(p, sizeof(p), "%s/.updated", dir);
	struct stat u, o;
	if (stat(usr, &u) < 0 || lstat(p, &o) < 0)
		return true; /* rather too many update runs than too few */
	if (u.st_mtim.tv_sec != o.st_mtim.tv_sec)
		return u.st_mtim.tv_sec > o.st_mtim.tv_sec;
	if (o.st_mtim.tv_nsec > 0)
		return u.st_mtim.tv_nsec > o.st_mtim.tv_nsec;
	/* a file system without sub-second times: systemd-update-done writes TIMESTAMP_NSEC= */
	FILE *f = fopen(p, "re");
	if (!f)
		return true;
	char line[256];
	uint64_t ts = 0;
	bool have = false;
	while (!have && fgets(line, sizeof(line), f)) {
		const char *v = keel_startswith(line, "TIMESTAMP_NSEC=");
		if (v) {
			line[strcspn(line, "\n")] = '\0';
			have = keel_parse_u64(v, &ts) == 0;
		}
	}
	fclose(f);
	if (!have)
		return true;
	return (uint64_t)u.st_mtim.tv_sec * 1000000000ULL + (uint64_t)u.st_mtim.tv_nsec > ts;
}

/* ---- cgroup controllers ---- */

static bool in_list(const char *list, const char *w)
{
	size_t n = strlen(w);
	for (const char *p = list; (p = strstr(p, w)); p += n)
		if ((p == list || p[-1] == ' ' || p[-1] == '\n') && (p[n] == '\0' || p[n] == ' ' || p[n] == '\n'))
			return true;
	return false;
}

bool keel_cond_cg_controllers(const char *param, const char *available)
{
	static const char *const known[] = {"cpu", "cpuacct", "cpuset", "io", "blkio", "memory", "devices", "pids"};
	char buf[1024];
	snprintf(buf, sizeof(buf), "%s", param);
	for (char *save = NULL, *w = strtok_r(buf, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
		bool is_known = false;
		for (size_t i = 0; i < KEEL_ARRAY_SIZE(known) && !is_known; i++)
			is_known = strcmp(w, known[i]) == 0;
		if (is_known && !in_list(available, w))
			return false;
	}
	return true;
}

/* ---- ordered comparisons ---- */

int keel_cond_order_u64(const char *param, uint64_t actual, bool size)
{
	/* index: 0 <=, 1 >=, 2 ==, 3 !=, 4 <, 5 >, 6 =, 7 <>; tried longest first */
	static const char *const ops[] = {"<=", ">=", "==", "!=", "<", ">", "=", "<>"};
	static const int order[] = {7, 0, 1, 2, 3, 4, 5, 6};
	const char *p = param;
	while (*p == ' ')
		p++;
	int op = 1; /* >= */
	for (size_t k = 0; k < KEEL_ARRAY_SIZE(order); k++) {
		const char *rest = keel_startswith(p, ops[order[k]]);
		if (rest) {
			op = order[k];
			p = rest;
			break;
		}
	}
	while (*p == ' ')
		p++;
	uint64_t want;
	if (size ? keel_parse_size(p, 1024, &want) < 0 : keel_parse_u64(p, &want) < 0)
		return -1;
	switch (op) {
	case 0: return actual <= want;
	case 1: return actual >= want;
	case 3: case 7: return actual != want;
	case 4: return actual < want;
	case 5: return actual > want;
	default: return actual == want;
	}
}

/* ---- os-release ---- */

/* The value of key in os-release text (quotes and backslashes removed); "" when absent. */
static void os_release_get(const char *text, const char *key, char *out, size_t size)
{
	size_t kl = strlen(key);
	out[0] = '\0';
	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		while (*l == ' ' || *l == '\t')
			l++;
		if (strncmp(l, key, kl) != 0 || l[kl] != '=')
			continue;
		const char *v = l + kl + 1;
		size_t k = 0;
		char quote = 0;
		for (; *v && *v != '\n'; v++) {
			if (quote && *v == quote) {
				quote = 0;
			} else if (!quote && (*v == '"' || *v == '\'')) {
				quote = *v;
			} else {
				if (*v == '\\' && quote != '\'' && v[1] && v[1] != '\n')
					v++;
				if (k + 1 < size)
					out[k++] = *v;
			}
		}
		out[k] = '\0';
	}
}

int keel_cond_os_release(const char *text, const char *param)
{
	/* each word: KEY OP VALUE; all must hold (systemd 252's condition_test_osrelease) */
	static const struct { const char *op; int kind; } ops[] = {
		{"!$=", 1}, {"$=", 0}, {"<>", 3}, {"<=", 4}, {">=", 5}, {"==", 2}, {"!=", 7}, {"<", 8},
		{">", 9}, {"=", 6},
	};
	const char *p = param;
	bool any = false;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			return any ? 1 : -1;
		char word[1024];
		size_t k = 0;
		char quote = 0;
		for (; *p && (quote || (*p != ' ' && *p != '\t')); p++) {
			if (quote && *p == quote)
				quote = 0;
			else if (!quote && (*p == '"' || *p == '\''))
				quote = *p;
			else if (k + 1 < sizeof(word))
				word[k++] = *p;
		}
		word[k] = '\0';
		size_t klen = strcspn(word, "!<=>$");
		if (!klen || !word[klen])
			return -1; /* "key/value format expected" */
		int kind = -1;
		const char *value = NULL;
		for (size_t i = 0; i < KEEL_ARRAY_SIZE(ops) && kind < 0; i++)
			if ((value = keel_startswith(word + klen, ops[i].op)))
				kind = ops[i].kind;
		if (kind < 0)
			return -1;
		word[klen] = '\0';
		char actual[512];
		os_release_get(text, word, actual, sizeof(actual));
		int c = strverscmp(actual, value);
		bool ok;
		switch (kind) {
		case 0: ok = fnmatch(value, actual, 0) == 0; break;
		case 1: ok = fnmatch(value, actual, 0) != 0; break;
		case 6: ok = strcmp(actual, value) == 0; break;
		case 7: ok = strcmp(actual, value) != 0; break;
		case 2: ok = c == 0; break;
		case 3: ok = c != 0; break;
		case 4: ok = c <= 0; break;
		case 5: ok = c >= 0; break;
		case 8: ok = c < 0; break;
		default: ok = c > 0; break;
		}
		if (!ok)
			return 0;
		any = true;
	}
}
