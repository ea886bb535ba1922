/* Condition*= and Assert*= (systemd.unit(5) "Conditions and Asserts"): all non-trigger
 * conditions must hold and, when there are trigger ("|") conditions, at least one of them.
 * The machine facts come from condition_probe.c. ConditionFirmware=, ConditionCPUFeature= and
 * the pressure conditions are not checked: they are logged and count as
 * passed (docs/init.md says why). */
#include <errno.h>
#include <fnmatch.h>
#include <glob.h>
#include <dirent.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <linux/netlink.h>

#include "base/str.h"
#include "init/condition.h"
#include "init/mgr-internal.h"

extern char **environ;

static bool path_is_mount_point(const char *p)
{
	struct stat a, b;
	char parent[4096];
	if (stat(p, &a) < 0)
		return false;
	if (strcmp(p, "/") == 0)
		return true;
	snprintf(parent, sizeof(parent), "%s/..", p);
	if (stat(parent, &b) < 0)
		return false;
	return a.st_dev != b.st_dev || a.st_ino == b.st_ino;
}

static bool dir_not_empty(const char *p)
{
	DIR *d = opendir(p);
	if (!d)
		return false;
	struct dirent *de;
	bool any = false;
	while (!any && (de = readdir(d)))
		any = de->d_name[0] != '.' || (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."));
	closedir(d);
	return any;
}

/* "<=5.10", ">= 4", "=x", "!=x", or a glob/plain string compared with versionsort. */
static bool compare_op(const char *param, int (*cmp)(const char *a, const char *b), const char *actual)
{
	const char *p = param;
	while (*p == ' ')
		p++;
	static const char *const ops[] = {"<=", ">=", "!=", "<", ">", "="};
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(ops); i++) {
		const char *rest = keel_startswith(p, ops[i]);
		if (!rest)
			continue;
		while (*rest == ' ')
			rest++;
		int c = cmp(actual, rest);
		switch (i) {
		case 0: return c <= 0;
		case 1: return c >= 0;
		case 2: return c != 0;
		case 3: return c < 0;
		case 4: return c > 0;
		default: return c == 0;
		}
	}
	return fnmatch(p, actual, 0) == 0;
}

static int ver_cmp(const char *a, const char *b) { return strverscmp(a, b); }

static const char *arch_name(void)
{
	static struct utsname u;
	uname(&u);
	if (strcmp(u.machine, "x86_64") == 0)
		return "x86-64";
	if (strcmp(u.machine, "aarch64") == 0)
		return "arm64";
	if (strncmp(u.machine, "i", 1) == 0 && strstr(u.machine, "86"))
		return "x86";
	return u.machine;
}

static void read_cmdline(char *line, size_t size)
{
	line[0] = '\0';
	FILE *f = fopen("/proc/cmdline", "re");
	if (f) {
		if (!fgets(line, (int)size, f))
			line[0] = '\0';
		fclose(f);
	}
}

/* systemd's running_in_userns(). */
static bool in_user_ns(void)
{
	static const char *const maps[] = {"/proc/self/uid_map", "/proc/self/gid_map"};
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(maps); i++) {
		FILE *f = fopen(maps[i], "re");
		unsigned a, b, c;
		if (!f)
			continue;
		int n = fscanf(f, "%u %u %u", &a, &b, &c);
		fclose(f);
		if (n == 3 && !(a == 0 && b == 0 && c == 4294967295u))
			return true;
	}
	char line[32] = "";
	FILE *f = fopen("/proc/self/setgroups", "re");
	if (!f)
		return false;
	if (!fgets(line, sizeof(line), f))
		line[0] = '\0';
	fclose(f);
	return strncmp(line, "deny", 4) == 0;
}

static bool dir_has_entries(const char *p)
{
	return dir_not_empty(p);
}

/* ConditionSecurity= as systemd 252 probes each. */
static bool security_on(const char *p)
{
	if (strcmp(p, "selinux") == 0)
		return access("/sys/fs/selinux/enforce", F_OK) == 0;
	if (strcmp(p, "apparmor") == 0) {
		char b[8] = "";
		FILE *f = fopen("/sys/module/apparmor/parameters/enabled", "re");
		if (!f)
			return false;
		if (!fgets(b, sizeof(b), f))
			b[0] = '\0';
		fclose(f);
		return b[0] == 'Y';
	}
	if (strcmp(p, "tomoyo") == 0)
		return access("/sys/kernel/security/tomoyo/version", F_OK) == 0;
	if (strcmp(p, "ima") == 0)
		return access("/sys/kernel/security/ima/", F_OK) == 0;
	if (strcmp(p, "smack") == 0)
		return access("/sys/fs/smackfs/", F_OK) == 0;
	if (strcmp(p, "audit") == 0) {
		int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_AUDIT);
		if (fd < 0)
			return !(errno == EAFNOSUPPORT || errno == EPROTONOSUPPORT);
		close(fd);
		return true;
	}
	if (strcmp(p, "uefi-secureboot") == 0) {
		FILE *f = fopen("/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c", "re");
		unsigned char b[5];
		if (!f)
			return false;
		size_t n = fread(b, 1, sizeof(b), f);
		fclose(f);
		return n == 5 && b[4] == 1; /* 4 bytes of attributes, then the value */
	}
	if (strcmp(p, "tpm2") == 0)
		return dir_has_entries("/sys/class/tpmrm") || access("/sys/firmware/acpi/tables/TPM2", F_OK) == 0;
	return false;
}

static uint64_t cap_bounding_set(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	uint64_t v = 0;
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (keel_startswith(line, "CapBnd:"))
			v = strtoull(line + 7, NULL, 16);
	fclose(f);
	return v;
}

/* First boot: keel-init as PID 1 decides it at start (manager.c: <runtime_dir>/first-boot when
 * /etc/machine-id was missing or empty); under another init, that init's answer. The kernel
 * command line's systemd.condition-first-boot= overrides both, as in systemd. */
static bool first_boot(struct mu *mu)
{
	char line[8192], flag[4096];
	read_cmdline(line, sizeof(line));
	for (char *save = NULL, *w = strtok_r(line, " \n", &save); w; w = strtok_r(NULL, " \n", &save)) {
		const char *v = keel_startswith(w, "systemd.condition-first-boot");
		if (v && (*v == '\0' || *v == '='))
			return *v == '\0' || keel_parse_boolean(v + 1) > 0;
	}
	snprintf(flag, sizeof(flag), "%s/first-boot", mu->m->runtime_dir);
	if (access(flag, F_OK) == 0)
		return true;
	return !mu->m->cfg.pid1 && access("/run/systemd/first-boot", F_OK) == 0;
}

static bool credential_exists(const char *name)
{
	static const char *const envs[] = {"CREDENTIALS_DIRECTORY", "ENCRYPTED_CREDENTIALS_DIRECTORY"};
	if (!*name || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
		return false;
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(envs); i++) {
		const char *d = getenv(envs[i]);
		char p[4096];
		if (!d)
			continue;
		snprintf(p, sizeof(p), "%s/%s", d, name);
		if (access(p, F_OK) == 0)
			return true;
	}
	return false;
}

/* Physical RAM, or less when the root of our cgroup namespace is limited (a container: "the
 * amount of memory assigned to the container", systemd.unit(5)). */
static uint64_t physical_memory(void)
{
	uint64_t ram = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);
	static const char *const files[] = {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"};
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(files); i++) {
		char b[64] = "";
		FILE *f = fopen(files[i], "re");
		if (!f)
			continue;
		if (!fgets(b, sizeof(b), f))
			b[0] = '\0';
		fclose(f);
		b[strcspn(b, "\n")] = '\0';
		uint64_t lim;
		if (keel_parse_u64(b, &lim) == 0 && lim < ram)
			ram = lim;
	}
	return ram;
}

static int os_release(const char *param)
{
	static const char *const files[] = {"/etc/os-release", "/usr/lib/os-release"};
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(files); i++) {
		FILE *f = fopen(files[i], "re");
		if (!f)
			continue;
		char text[16384];
		size_t n = fread(text, 1, sizeof(text) - 1, f);
		fclose(f);
		text[n] = '\0';
		return keel_cond_os_release(text, param);
	}
	return keel_cond_os_release("", param);
}

static unsigned cpus_in_affinity(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		return (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	return (unsigned)CPU_COUNT(&set);
}

/* The controllers keel-init's cgroups can use: cgroup2's root cgroup.controllers, or the
 * enabled v1 hierarchies of /proc/cgroups. */
static void available_controllers(struct mu *mu, char *out, size_t size)
{
	out[0] = '\0';
	if (mu->m->cg->mode == KEEL_CG_V2) {
		FILE *f = fopen("/sys/fs/cgroup/cgroup.controllers", "re");
		if (f) {
			if (!fgets(out, (int)size, f))
				out[0] = '\0';
			fclose(f);
		}
		return;
	}
	FILE *f = fopen("/proc/cgroups", "re");
	if (!f)
		return;
	char line[256];
	size_t used = 0;
	while (fgets(line, sizeof(line), f)) {
		char name[64];
		int h, n, en;
		if (sscanf(line, "%63s %d %d %d", name, &h, &n, &en) == 4 && en && used + strlen(name) + 2 < size)
			used += (size_t)snprintf(out + used, size - used, "%s ", name);
	}
	fclose(f);
}

static bool check_one(struct mu *mu, const struct keel_condition *c)
{
	const char *p = c->param ? c->param : "";
	struct stat st;
	switch (c->kind) {
	case KEEL_COND_PATH_EXISTS:
		return access(p, F_OK) == 0;
	case KEEL_COND_PATH_EXISTS_GLOB: {
		glob_t g;
		int r = glob(p, GLOB_NOSORT | GLOB_BRACE, NULL, &g);
		bool ok = r == 0 && g.gl_pathc > 0;
		if (r == 0)
			globfree(&g);
		return ok;
	}
	case KEEL_COND_PATH_IS_DIRECTORY:
		return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
	case KEEL_COND_PATH_IS_SYMBOLIC_LINK:
		return lstat(p, &st) == 0 && S_ISLNK(st.st_mode);
	case KEEL_COND_PATH_IS_MOUNT_POINT:
		return path_is_mount_point(p);
	case KEEL_COND_PATH_IS_READ_WRITE: {
		struct statvfs sv;
		return statvfs(p, &sv) == 0 && !(sv.f_flag & ST_RDONLY);
	}
	case KEEL_COND_DIRECTORY_NOT_EMPTY:
		return dir_not_empty(p);
	case KEEL_COND_FILE_NOT_EMPTY:
		return stat(p, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0;
	case KEEL_COND_FILE_IS_EXECUTABLE:
		return stat(p, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111);
	case KEEL_COND_HOST: {
		char h[256] = "";
		gethostname(h, sizeof(h));
		if (fnmatch(p, h, FNM_CASEFOLD) == 0)
			return true;
		char id[64] = "";
		FILE *f = fopen("/etc/machine-id", "re");
		if (f) {
			if (fgets(id, sizeof(id), f))
				id[strcspn(id, "\n")] = '\0';
			fclose(f);
		}
		return id[0] && strcasecmp(id, p) == 0;
	}
	case KEEL_COND_KERNEL_COMMAND_LINE: {
		char line[8192];
		read_cmdline(line, sizeof(line));
		return keel_cond_kernel_cmdline(line, p);
	}
	case KEEL_COND_KERNEL_VERSION: {
		struct utsname u;
		uname(&u);
		return compare_op(p, ver_cmp, u.release);
	}
	case KEEL_COND_ARCHITECTURE:
		return strcmp(p, arch_name()) == 0 || strcmp(p, "native") == 0;
	case KEEL_COND_VIRTUALIZATION: {
		if (strcmp(p, "private-users") == 0)
			return in_user_ns();
		struct keel_virt v;
		keel_virt_detect("", mu->m->cfg.pid1, &v);
		return keel_cond_virtualization(p, &v);
	}
	case KEEL_COND_USER: {
		if (strcmp(p, "@system") == 0)
			return getuid() < 1000;
		struct passwd *pw = getpwuid(getuid());
		char num[32];
		snprintf(num, sizeof(num), "%u", (unsigned)getuid());
		return strcmp(p, num) == 0 || (pw && strcmp(p, pw->pw_name) == 0);
	}
	case KEEL_COND_GROUP: {
		struct group *gr = getgrgid(getgid());
		char num[32];
		snprintf(num, sizeof(num), "%u", (unsigned)getgid());
		return strcmp(p, num) == 0 || (gr && strcmp(p, gr->gr_name) == 0);
	}
	case KEEL_COND_ENVIRONMENT: {
		bool has_eq = strchr(p, '=') != NULL;
		size_t n = strlen(p);
		for (char **e = environ; e && *e; e++) {
			if (has_eq ? strcmp(*e, p) == 0 : strncmp(*e, p, n) == 0 && (*e)[n] == '=')
				return true;
		}
		return false;
	}
	case KEEL_COND_CPUS:
		return keel_cond_order_u64(p, cpus_in_affinity(), false) > 0;
	case KEEL_COND_MEMORY:
		return keel_cond_order_u64(p, physical_memory(), true) > 0;
	case KEEL_COND_CONTROL_GROUP_CONTROLLER: {
		if (strcmp(p, "v1") == 0)
			return mu->m->cg->mode == KEEL_CG_V1 || mu->m->cg->mode == KEEL_CG_HYBRID;
		if (strcmp(p, "v2") == 0)
			return mu->m->cg->mode == KEEL_CG_V2;
		char avail[1024];
		available_controllers(mu, avail, sizeof(avail));
		return keel_cond_cg_controllers(p, avail);
	}
	case KEEL_COND_FIRST_BOOT: {
		int b = keel_parse_boolean(p);
		return b >= 0 && (bool)b == first_boot(mu);
	}
	case KEEL_COND_NEEDS_UPDATE:
		return keel_cond_needs_update("/usr/", p);
	case KEEL_COND_AC_POWER: {
		int b = keel_parse_boolean(p);
		return b >= 0 && (bool)b == keel_on_ac_power("/sys/class/power_supply");
	}
	case KEEL_COND_CAPABILITY:
		return keel_cond_capability(cap_bounding_set(), p);
	case KEEL_COND_SECURITY:
		return security_on(p);
	case KEEL_COND_CREDENTIAL:
		return credential_exists(p);
	case KEEL_COND_OS_RELEASE:
		return os_release(p) > 0;
	default:
		unit_log(mu, 7, "Condition%s= is not supported by keel-init, assuming it holds.",
			 keel_condition_kind_to_string(c->kind));
		return true;
	}
}

int unit_test_conditions(struct mu *mu, bool asserts, const struct keel_condition **failed)
{
	const struct keel_unit *u = mu->u;
	bool have_trigger = false, trigger_ok = false;
	*failed = NULL;
	for (uint32_t i = 0; i < u->n_conditions; i++) {
		const struct keel_condition *c = &u->conditions[i];
		if (!!(c->flags & KEEL_COND_ASSERT) != asserts)
			continue;
		bool ok = check_one(mu, c);
		if (c->flags & KEEL_COND_NEGATE)
			ok = !ok;
		if (c->flags & KEEL_COND_TRIGGER) {
			have_trigger = true;
			trigger_ok |= ok;
			if (!ok && !*failed)
				*failed = c;
			continue;
		}
		if (!ok) {
			*failed = c;
			return 0;
		}
	}
	if (have_trigger && !trigger_ok)
		return 0;
	*failed = NULL;
	return 1;
}
