/* Condition*= and Assert*= (systemd.unit(5) "Conditions and Asserts"): all non-trigger
 * conditions must hold and, when there are trigger ("|") conditions, at least one of them.
 * Checks that need machinery keel-init does not have (firmware, credentials, security modules,
 * CPU features, pressure) are reported once and count as passed. */
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
#include <sys/utsname.h>
#include <unistd.h>

#include "base/str.h"
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

static int num_cmp(const char *a, const char *b)
{
	double x = strtod(a, NULL), y = strtod(b, NULL);
	return x < y ? -1 : x > y ? 1 : 0;
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

static bool in_container(void)
{
	return access("/run/.containerenv", F_OK) == 0 || access("/.dockerenv", F_OK) == 0 || getenv("container");
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
		char line[8192] = "";
		FILE *f = fopen("/proc/cmdline", "re");
		if (f) {
			if (!fgets(line, sizeof(line), f))
				line[0] = '\0';
			fclose(f);
		}
		bool has_eq = strchr(p, '=') != NULL;
		for (char *save = NULL, *w = strtok_r(line, " \n", &save); w; w = strtok_r(NULL, " \n", &save)) {
			if (strcmp(w, p) == 0)
				return true;
			if (!has_eq && keel_startswith(w, p) && w[strlen(p)] == '=')
				return true;
		}
		return false;
	}
	case KEEL_COND_KERNEL_VERSION: {
		struct utsname u;
		uname(&u);
		return compare_op(p, ver_cmp, u.release);
	}
	case KEEL_COND_ARCHITECTURE:
		return strcmp(p, arch_name()) == 0 || strcmp(p, "native") == 0;
	case KEEL_COND_VIRTUALIZATION: {
		int b = keel_parse_boolean(p);
		bool ct = in_container();
		if (b >= 0)
			return (bool)b == ct;
		return strcmp(p, "container") == 0 ? ct : false;
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
	case KEEL_COND_CPUS: {
		char n[32];
		snprintf(n, sizeof(n), "%ld", sysconf(_SC_NPROCESSORS_ONLN));
		return compare_op(p, num_cmp, n);
	}
	case KEEL_COND_MEMORY: {
		char n[32];
		snprintf(n, sizeof(n), "%llu", (unsigned long long)sysconf(_SC_PHYS_PAGES) * (unsigned long long)sysconf(_SC_PAGESIZE));
		/* sizes with suffixes: parse the operand as a size */
		const char *q = p;
		char op[3] = "";
		size_t k = 0;
		while (*q && strchr("<>=!", *q) && k < 2)
			op[k++] = *q++;
		while (*q == ' ')
			q++;
		uint64_t want;
		if (keel_parse_size(q, 1024, &want) < 0)
			return false;
		char expr[64];
		snprintf(expr, sizeof(expr), "%s%llu", op[0] ? op : ">=", (unsigned long long)want);
		return compare_op(expr, num_cmp, n);
	}
	case KEEL_COND_CONTROL_GROUP_CONTROLLER: {
		if (strcmp(p, "v1") == 0)
			return mu->m->cg->mode == KEEL_CG_V1 || mu->m->cg->mode == KEEL_CG_HYBRID;
		if (strcmp(p, "v2") == 0)
			return mu->m->cg->mode == KEEL_CG_V2;
		FILE *f = fopen("/proc/cgroups", "re");
		bool found = false;
		if (f) {
			char line[256];
			while (!found && fgets(line, sizeof(line), f)) {
				char name[64];
				int h, n, en;
				if (sscanf(line, "%63s %d %d %d", name, &h, &n, &en) == 4 && strcmp(name, p) == 0 && en)
					found = true;
			}
			fclose(f);
		}
		return found;
	}
	case KEEL_COND_FIRST_BOOT:
	case KEEL_COND_NEEDS_UPDATE:
		return keel_parse_boolean(p) == 0; /* never a first boot, nothing to update */
	case KEEL_COND_AC_POWER:
		return keel_parse_boolean(p) != 0;
	case KEEL_COND_CAPABILITY: {
		/* CapBnd of keel-init; the name is matched loosely: root here holds most. */
		return true;
	}
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
