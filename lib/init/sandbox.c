#include "init/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <linux/seccomp.h>

#include <seccomp.h>

#include "base/buf.h"
#include "base/mem.h"
#include "base/str.h"

#define MAX_MOUNTS 256

/* ---- the plan (parent) ---- */

struct builder {
	struct keel_sandbox_plan *p;
	const char *root;
	keel_sandbox_warn_fn warn;
	void *ud;
	int err;
};

static void warnf(struct builder *b, const char *fmt, ...) KEEL_PRINTF(2, 3);
static void warnf(struct builder *b, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (b->warn)
		b->warn(b->ud, msg);
}

/* path may carry "-" and "+" (ReadOnlyPaths= & co.); "+" puts it below RootDirectory=. An
 * existing path is resolved (so /lib/modules and /usr/lib/modules are one entry); a missing
 * one is dropped when "-" allows, else kept for the child to fail on, as systemd does. */
static void add(struct builder *b, const char *path, const char *source, int kind, bool ignore,
		bool recursive, bool ro)
{
	if (b->err || b->p->n_mounts >= MAX_MOUNTS) {
		if (!b->err)
			warnf(b, "More than %d mount entries, ignoring the rest", MAX_MOUNTS);
		return;
	}
	if (*path == '-') {
		ignore = true;
		path++;
	}
	char full[PATH_MAX];
	if (*path == '+') {
		path++;
		snprintf(full, sizeof(full), "%s%s", b->root ? b->root : "", path);
	} else {
		snprintf(full, sizeof(full), "%s", path);
	}
	char resolved[PATH_MAX];
	const char *use = full;
	if (realpath(full, resolved))
		use = resolved;
	else if (errno == ENOENT && ignore)
		return;
	char *src = NULL;
	if (source) {
		char rs[PATH_MAX];
		if (kind == KEEL_MNT_BIND || kind == KEEL_MNT_BIND_RO) {
			if (realpath(source, rs))
				source = rs;
			else if (errno == ENOENT && ignore)
				return;
		}
		if (!(src = keel_strdup(source))) {
			b->err = -ENOMEM;
			return;
		}
	}
	struct keel_sandbox_mount *m = keel_realloc(b->p->mounts, (size_t)(b->p->n_mounts + 1) * sizeof(*m));
	char *dup = keel_strdup(use);
	if (!m || !dup) {
		if (m)
			b->p->mounts = m;
		keel_free(src);
		keel_free(dup);
		b->err = -ENOMEM;
		return;
	}
	b->p->mounts = m;
	m[b->p->n_mounts++] = (struct keel_sandbox_mount){
		.path = dup, .source = src, .kind = (uint8_t)kind, .ignore_missing = ignore,
		.recursive = recursive, .read_only = ro,
	};
}

static void add_list(struct builder *b, const char *const *list, int kind)
{
	for (size_t i = 0; list && list[i]; i++)
		add(b, list[i], NULL, kind, false, false, false);
}

static int cmp_mount(const void *a, const void *b)
{
	const struct keel_sandbox_mount *x = a, *y = b;
	int r = strcmp(x->path, y->path);
	return r ? r : (int)y->kind - (int)x->kind; /* same path: the stronger first */
}

static int last_cap(void)
{
	int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
	char buf[16] = {0};
	int v = 40;
	if (fd >= 0) {
		if (read(fd, buf, sizeof(buf) - 1) > 0)
			v = atoi(buf);
		close(fd);
	}
	return v > 0 && v < 63 ? v : 40;
}

static int seccomp_compile(const struct keel_exec_sandbox *sb, struct sock_fprog *ret)
{
	uint32_t def = sb->syscall_errno == KEEL_SECCOMP_KILL ? SCMP_ACT_KILL_PROCESS : SCMP_ACT_ERRNO((uint32_t)sb->syscall_errno);
	bool allow = sb->syscall_filter_set && sb->syscall_allow_list;
	scmp_filter_ctx ctx = seccomp_init(allow ? def : SCMP_ACT_ALLOW);
	if (!ctx)
		return -ENOMEM;
	int r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	if (r == 0)
		r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, sb->syscall_arch_native ? def : SCMP_ACT_KILL_PROCESS);
	if (r == 0 && !sb->syscall_arch_native && seccomp_arch_native() == SCMP_ARCH_X86_64) {
		/* Without SystemCallArchitectures=native the compat ABIs stay usable, filtered alike. */
		if ((r = seccomp_arch_add(ctx, SCMP_ARCH_X86)) == 0)
			r = seccomp_arch_add(ctx, SCMP_ARCH_X32);
	}
	for (size_t i = 0; r == 0 && sb->syscall_filter_set && sb->syscall_filter && sb->syscall_filter[i]; i++) {
		char name[96];
		snprintf(name, sizeof(name), "%s", sb->syscall_filter[i]);
		uint32_t act = allow ? SCMP_ACT_ALLOW : def;
		char *colon = strchr(name, ':');
		if (colon) {
			*colon = '\0';
			act = SCMP_ACT_ERRNO((uint32_t)atoi(colon + 1));
		}
		int nr = seccomp_syscall_resolve_name(name);
		if (nr == __NR_SCMP_ERROR)
			continue;
		int e = seccomp_rule_add(ctx, act, nr, 0);
		if (e == -ENOMEM)
			r = e;
		/* else: a call this architecture does not have, or one equal to the default */
	}
	int fd = -1;
	if (r == 0 && (fd = memfd_create("keel-seccomp", MFD_CLOEXEC)) < 0)
		r = -errno;
	if (r == 0)
		r = seccomp_export_bpf(ctx, fd);
	seccomp_release(ctx);
	if (r == 0) {
		struct stat st;
		if (fstat(fd, &st) < 0 || st.st_size <= 0 || st.st_size % (off_t)sizeof(struct sock_filter)) {
			r = -EINVAL;
		} else {
			struct sock_filter *f = keel_malloc((size_t)st.st_size);
			if (!f)
				r = -ENOMEM;
			else if (pread(fd, f, (size_t)st.st_size, 0) != st.st_size)
				r = -EIO;
			if (r == 0) {
				ret->filter = f;
				ret->len = (unsigned short)(st.st_size / (off_t)sizeof(struct sock_filter));
			} else {
				keel_free(f);
			}
		}
	}
	if (fd >= 0)
		close(fd);
	return r;
}

/* Compiling a filter costs ~20 ms for @system-service on three ABIs (libseccomp's BPF
 * generation), more than the rest of a spawn: the last few programs are kept, keyed by
 * everything that goes into them, since a unit's filter only changes on daemon-reload. */
#define SECCOMP_CACHE 16
static struct {
	char *key;
	struct sock_filter *filter;
	unsigned short len;
} cache[SECCOMP_CACHE];
static unsigned cache_next;

static char *seccomp_key(const struct keel_exec_sandbox *sb)
{
	struct keel_buf k = KEEL_BUF_INIT;
	int r = keel_buf_printf(&k, "%d|%d|%d|%d|", sb->syscall_filter_set, sb->syscall_allow_list,
				sb->syscall_arch_native, sb->syscall_errno);
	for (size_t i = 0; r == 0 && sb->syscall_filter && sb->syscall_filter[i]; i++)
		r = keel_buf_printf(&k, "%s,", sb->syscall_filter[i]);
	if (r < 0) {
		keel_buf_free(&k);
		return NULL;
	}
	return k.data; /* the buffer's allocation, NUL-terminated */
}

static int seccomp_build(const struct keel_exec_sandbox *sb, struct builder *b, struct sock_fprog *ret)
{
	char *key = seccomp_key(sb);
	if (!key)
		return -ENOMEM;
	for (unsigned i = 0; i < SECCOMP_CACHE; i++) {
		if (cache[i].key && strcmp(cache[i].key, key) == 0) {
			keel_free(key);
			size_t bytes = cache[i].len * sizeof(struct sock_filter);
			if (!(ret->filter = keel_malloc(bytes)))
				return -ENOMEM;
			memcpy(ret->filter, cache[i].filter, bytes);
			ret->len = cache[i].len;
			return 0;
		}
	}
	int r = seccomp_compile(sb, ret);
	if (r < 0) {
		keel_free(key);
		warnf(b, "Failed to build the system call filter: %s", strerror(-r));
		return r;
	}
	size_t bytes = ret->len * sizeof(struct sock_filter);
	struct sock_filter *copy = keel_malloc(bytes);
	if (!copy) {
		keel_free(key);
		return 0; /* not cached; the program itself is fine */
	}
	memcpy(copy, ret->filter, bytes);
	unsigned slot = cache_next++ % SECCOMP_CACHE;
	keel_free(cache[slot].key);
	keel_free(cache[slot].filter);
	cache[slot].key = key;
	cache[slot].filter = copy;
	cache[slot].len = ret->len;
	return 0;
}

void keel_sandbox_cache_clear(void)
{
	for (unsigned i = 0; i < SECCOMP_CACHE; i++) {
		keel_free(cache[i].key);
		keel_free(cache[i].filter);
		cache[i].key = NULL;
		cache[i].filter = NULL;
	}
}

static int make_inaccessible_nodes(const char *dir, char **ret_dir, char **ret_reg)
{
	char d[PATH_MAX], f[PATH_MAX];
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	snprintf(d, sizeof(d), "%s/dir", dir);
	snprintf(f, sizeof(f), "%s/reg", dir);
	if (mkdir(d, 0) < 0 && errno != EEXIST)
		return -errno;
	int fd = open(f, O_CREAT | O_WRONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	close(fd);
	chmod(d, 0);
	chmod(f, 0);
	*ret_dir = keel_strdup(d);
	*ret_reg = keel_strdup(f);
	return *ret_dir && *ret_reg ? 0 : -ENOMEM;
}

int keel_sandbox_plan_make(const struct keel_exec_sandbox *sb, bool private_tmp, bool with_user,
			   uid_t uid, const char *root_directory, const char *inaccessible_dir,
			   keel_sandbox_warn_fn warn, void *userdata, struct keel_sandbox_plan *ret)
{
	*ret = (struct keel_sandbox_plan){.netns_fd = -1};
	if (!sb)
		return 0;
	struct builder b = {.p = ret, .root = root_directory, .warn = warn, .ud = userdata};
	static const char *const tunables_ro[] = {
		"/proc/sys", "/proc/sysrq-trigger", "/proc/latency_stats", "/proc/mtrr", "/proc/apm",
		"/proc/acpi", "/proc/timer_stats", "/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq",
		"/sys",
	};
	static const char *const homes[] = {"/home", "/root", "/run/user"};

	switch (sb->protect_system) {
	case KEEL_PROTECT_SYSTEM_STRICT:
		add(&b, "/", NULL, KEEL_MNT_READ_ONLY, false, false, false);
		add(&b, "/proc", NULL, KEEL_MNT_READ_WRITE_IMPLICIT, true, false, false);
		add(&b, "/sys", NULL, KEEL_MNT_READ_WRITE_IMPLICIT, true, false, false);
		add(&b, "/dev", NULL, KEEL_MNT_READ_WRITE_IMPLICIT, true, false, false);
		if (private_tmp) {
			add(&b, "/tmp", NULL, KEEL_MNT_READ_WRITE_IMPLICIT, true, false, false);
			add(&b, "/var/tmp", NULL, KEEL_MNT_READ_WRITE_IMPLICIT, true, false, false);
		}
		/* the unit's own directories stay writable (systemd.exec(5), ProtectSystem=strict) */
		static const char *const bases[KEEL_DIR_MAX] = {"/run", "/var/lib", "/var/cache", "/var/log"};
		for (int d = 0; d < KEEL_DIR_MAX; d++)
			for (size_t i = 0; sb->dirs[d] && sb->dirs[d][i]; i++) {
				char p[PATH_MAX];
				snprintf(p, sizeof(p), "%s/%s", bases[d], sb->dirs[d][i]);
				add(&b, p, NULL, KEEL_MNT_READ_WRITE_IMPLICIT, true, false, false);
			}
		break;
	case KEEL_PROTECT_SYSTEM_FULL:
		add(&b, "/etc", NULL, KEEL_MNT_READ_ONLY, false, false, false);
		/* fall through */
	case KEEL_PROTECT_SYSTEM_YES:
		add(&b, "/usr", NULL, KEEL_MNT_READ_ONLY, false, false, false);
		add(&b, "/boot", NULL, KEEL_MNT_READ_ONLY, true, false, false);
		add(&b, "/efi", NULL, KEEL_MNT_READ_ONLY, true, false, false);
		break;
	default:
		break;
	}
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(homes); i++) {
		if (sb->protect_home == KEEL_PROTECT_HOME_YES)
			add(&b, homes[i], NULL, KEEL_MNT_INACCESSIBLE, true, false, false);
		else if (sb->protect_home == KEEL_PROTECT_HOME_READ_ONLY)
			add(&b, homes[i], NULL, KEEL_MNT_READ_ONLY, true, false, false);
		else if (sb->protect_home == KEEL_PROTECT_HOME_TMPFS)
			add(&b, homes[i], "mode=0755", KEEL_MNT_TMPFS, true, false, true);
	}
	if (sb->protect_kernel_tunables) {
		for (size_t i = 0; i < KEEL_ARRAY_SIZE(tunables_ro); i++)
			add(&b, tunables_ro[i], NULL, KEEL_MNT_READ_ONLY, true, false, false);
		add(&b, "/proc/kallsyms", NULL, KEEL_MNT_INACCESSIBLE, true, false, false);
		add(&b, "/proc/kcore", NULL, KEEL_MNT_INACCESSIBLE, true, false, false);
	}
	if (sb->protect_kernel_modules) {
		add(&b, "/usr/lib/modules", NULL, KEEL_MNT_INACCESSIBLE, true, false, false);
		add(&b, "/lib/modules", NULL, KEEL_MNT_INACCESSIBLE, true, false, false);
	}
	if (sb->protect_control_groups)
		add(&b, "/sys/fs/cgroup", NULL, KEEL_MNT_READ_ONLY, true, false, false);
	if (sb->private_devices)
		add(&b, "/dev", NULL, KEEL_MNT_PRIVATE_DEV, false, false, false);
	add_list(&b, sb->read_write_paths, KEEL_MNT_READ_WRITE);
	add_list(&b, sb->read_only_paths, KEEL_MNT_READ_ONLY);
	add_list(&b, sb->inaccessible_paths, KEEL_MNT_INACCESSIBLE);
	for (size_t i = 0; sb->temporary_fs && sb->temporary_fs[i]; i++) {
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s", sb->temporary_fs[i]);
		char *opts = strchr(path, ':');
		if (opts)
			*opts++ = '\0';
		/* "ro" is ours to apply after the mount; the rest goes to tmpfs */
		char o[512] = "mode=0755";
		bool ro = false;
		for (char *save = NULL, *w = opts ? strtok_r(opts, ",", &save) : NULL; w; w = strtok_r(NULL, ",", &save)) {
			if (strcmp(w, "ro") == 0)
				ro = true;
			else if (strcmp(w, "rw") != 0 && strlen(o) + strlen(w) + 2 < sizeof(o))
				strcat(strcat(o, ","), w);
		}
		add(&b, path, o, KEEL_MNT_TMPFS, false, false, ro);
	}
	for (int ro = 0; ro < 2; ro++) {
		const char *const *list = ro ? sb->bind_ro_paths : sb->bind_paths;
		for (size_t i = 0; list && list[i]; i++) {
			char spec[PATH_MAX * 2 + 16];
			snprintf(spec, sizeof(spec), "%s", list[i]);
			bool ignore = spec[0] == '-';
			char *src = spec + ignore;
			char *dst = strchr(src, ':');
			if (!dst)
				continue;
			*dst++ = '\0';
			char *opt = strchr(dst, ':');
			if (opt)
				*opt++ = '\0';
			add(&b, dst, src, ro ? KEEL_MNT_BIND_RO : KEEL_MNT_BIND, ignore,
			    !opt || strcmp(opt, "norbind") != 0, ro);
		}
	}
	if (b.err)
		goto fail;
	if (ret->n_mounts > 0) {
		qsort(ret->mounts, (size_t)ret->n_mounts, sizeof(ret->mounts[0]), cmp_mount);
		/* one entry per path: the strongest */
		int j = 0;
		for (int i = 0; i < ret->n_mounts; i++) {
			if (j > 0 && strcmp(ret->mounts[j - 1].path, ret->mounts[i].path) == 0) {
				keel_free(ret->mounts[i].path);
				keel_free(ret->mounts[i].source);
				continue;
			}
			ret->mounts[j++] = ret->mounts[i];
		}
		ret->n_mounts = j;
		ret->mount_ns = true;
		for (int i = 0; i < ret->n_mounts; i++)
			if (ret->mounts[i].kind == KEEL_MNT_INACCESSIBLE && !ret->inaccessible_dir) {
				char *d = NULL, *f = NULL;
				int r = make_inaccessible_nodes(inaccessible_dir, &d, &f);
				if (r < 0) {
					keel_free(d);
					keel_free(f);
					warnf(&b, "Failed to create the inaccessible nodes in %s: %s", inaccessible_dir, strerror(-r));
					b.err = r;
					goto fail;
				}
				ret->inaccessible_dir = d;
				ret->inaccessible_reg = f;
			}
	}

	/* capabilities */
	int lc = last_cap();
	uint64_t all = lc >= 63 ? UINT64_MAX : (1ULL << (lc + 1)) - 1;
	uint64_t bset = sb->cap_bounding & all;
	if (sb->protect_kernel_modules)
		bset &= ~(1ULL << CAP_SYS_MODULE);
	if (sb->private_devices)
		bset &= ~((1ULL << CAP_MKNOD) | (1ULL << CAP_SYS_RAWIO));
	uint64_t amb = sb->cap_ambient & all;
	if (amb & ~bset) {
		warnf(&b, "AmbientCapabilities= names capabilities outside the bounding set, ignoring those");
		amb &= bset;
	}
	ret->cap_bounding = bset;
	ret->cap_ambient = amb;
	ret->caps = bset != all || amb;
	ret->secure_bits = sb->secure_bits;
	ret->secure_bits_set = sb->secure_bits != 0;

	bool filter = sb->syscall_filter_set || sb->syscall_arch_native;
	ret->no_new_privs = sb->no_new_privileges || (filter && with_user && uid != 0);
	if (filter) {
		int r = seccomp_build(sb, &b, &ret->seccomp);
		if (r < 0) {
			b.err = r;
			goto fail;
		}
	}
	return 0;
fail:
	keel_sandbox_plan_free(ret);
	return b.err;
}

void keel_sandbox_plan_free(struct keel_sandbox_plan *p)
{
	for (int i = 0; i < p->n_mounts; i++) {
		keel_free(p->mounts[i].path);
		keel_free(p->mounts[i].source);
	}
	keel_free(p->mounts);
	keel_free((char *)p->inaccessible_dir);
	keel_free((char *)p->inaccessible_reg);
	keel_free(p->seccomp.filter);
	*p = (struct keel_sandbox_plan){.netns_fd = -1};
}

int keel_sandbox_netns_new(void)
{
	int orig = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (orig < 0)
		return -errno;
	if (unshare(CLONE_NEWNET) < 0) {
		int e = -errno;
		close(orig);
		return e;
	}
	int r = 0;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr = {0};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		r = -errno;
	if (r == 0) {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
			r = -errno;
	}
	if (s >= 0)
		close(s);
	int fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (fd < 0 && r == 0)
		r = -errno;
	/* back to keel-init's own namespace; keel-init is single-threaded, so nothing else ran in
	 * the new one meanwhile */
	if (setns(orig, CLONE_NEWNET) < 0)
		abort(); /* keel-init cut off from its own network: nothing sane is left to do */
	close(orig);
	if (r < 0) {
		if (fd >= 0)
			close(fd);
		return r;
	}
	return fd;
}

/* ---- the child: system calls only ---- */

static bool is_under(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	if (n == 1 && dir[0] == '/')
		return path[0] == '/';
	return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static bool is_writable_kind(const struct keel_sandbox_mount *m)
{
	switch (m->kind) {
	case KEEL_MNT_READ_WRITE_IMPLICIT:
	case KEEL_MNT_READ_WRITE:
	case KEEL_MNT_BIND:
	case KEEL_MNT_PRIVATE_DEV:
		return true;
	case KEEL_MNT_TMPFS:
		return !m->read_only;
	default:
		return false;
	}
}

static bool is_read_only_kind(const struct keel_sandbox_mount *m)
{
	return m->kind == KEEL_MNT_READ_ONLY || m->kind == KEEL_MNT_BIND_RO ||
	       m->kind == KEEL_MNT_INACCESSIBLE || (m->kind == KEEL_MNT_TMPFS && m->read_only);
}

/* Whether path is a mount point: its mount id differs from its parent's (statx STATX_MNT_ID),
 * or it is "/". */
static bool is_mount_point(const char *path)
{
	if (strcmp(path, "/") == 0)
		return true;
	struct statx a, b;
	char parent[PATH_MAX];
	size_t n = strlen(path);
	if (n >= sizeof(parent))
		return false;
	memcpy(parent, path, n + 1);
	char *slash = strrchr(parent, '/');
	if (!slash)
		return false;
	if (slash == parent)
		slash[1] = '\0';
	else
		*slash = '\0';
	if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &a) < 0 ||
	    statx(AT_FDCWD, parent, 0, STATX_MNT_ID, &b) < 0)
		return false;
	return a.stx_mnt_id != b.stx_mnt_id;
}

static int bind_self(const char *path)
{
	if (is_mount_point(path))
		return 0;
	return mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0 ? errno : 0;
}

/* The mount point field of a mountinfo line, unescaped (\040 & co.) into out. */
static const char *mountinfo_point(const char *line, const char *end, char *out, size_t size)
{
	const char *p = line;
	for (int f = 0; f < 4; f++) {
		while (p < end && *p != ' ')
			p++;
		if (p < end)
			p++;
	}
	size_t n = 0;
	while (p < end && *p != ' ' && n + 1 < size) {
		if (*p == '\\' && end - p >= 4) {
			out[n++] = (char)(((p[1] - '0') << 6) | ((p[2] - '0') << 3) | (p[3] - '0'));
			p += 4;
		} else {
			out[n++] = *p++;
		}
	}
	out[n] = '\0';
	return out;
}

/* Read-only for the mount at m->path and every mount below it, except below the writable
 * entries deeper than it (ReadWritePaths=, binds, ...). */
static int make_read_only(const struct keel_sandbox_plan *p, int idx, const bool *skip)
{
	const char *root = p->mounts[idx].path;
	size_t cap = 4 << 20;
	char *buf = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		return errno;
	int fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		munmap(buf, cap);
		return e;
	}
	size_t len = 0;
	ssize_t n;
	while (len < cap && (n = read(fd, buf + len, cap - len)) > 0)
		len += (size_t)n;
	close(fd);
	int err = 0;
	struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};
	for (const char *line = buf; line < buf + len && !err;) {
		const char *end = memchr(line, '\n', (size_t)(buf + len - line));
		if (!end)
			end = buf + len;
		char mp[PATH_MAX];
		mountinfo_point(line, end, mp, sizeof(mp));
		line = end + 1;
		if (!is_under(mp, root))
			continue;
		bool excluded = false;
		for (int j = 0; j < p->n_mounts && !excluded; j++)
			excluded = j != idx && !skip[j] && is_writable_kind(&p->mounts[j]) &&
				   is_under(p->mounts[j].path, root) && strcmp(p->mounts[j].path, root) != 0 &&
				   is_under(mp, p->mounts[j].path);
		if (excluded)
			continue;
		if (mount_setattr(AT_FDCWD, mp, AT_SYMLINK_NOFOLLOW, &attr, sizeof(attr)) < 0 &&
		    errno != ENOENT && errno != EACCES)
			err = errno;
	}
	munmap(buf, cap);
	return err;
}

static int private_dev(void)
{
	static const char *const nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
	int fds[KEEL_ARRAY_SIZE(nodes)];
	char path[64];
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(nodes); i++) {
		snprintf(path, sizeof(path), "/dev/%s", nodes[i]);
		fds[i] = open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	}
	int err = 0;
	if (mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC | MS_STRICTATIME, "mode=0755,size=4m") < 0)
		err = errno;
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(nodes); i++) {
		if (fds[i] < 0)
			continue;
		snprintf(path, sizeof(path), "/dev/%s", nodes[i]);
		if (!err) {
			int f = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0666);
			if (f < 0 || move_mount(fds[i], "", AT_FDCWD, path, MOVE_MOUNT_F_EMPTY_PATH) < 0)
				err = errno;
			if (f >= 0)
				close(f);
		}
		close(fds[i]);
	}
	if (err)
		return err;
	if (mkdir("/dev/pts", 0755) < 0 ||
	    mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620") < 0 ||
	    symlink("pts/ptmx", "/dev/ptmx") < 0)
		return errno;
	if (mkdir("/dev/shm", 01777) < 0 ||
	    mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_STRICTATIME, "mode=1777") < 0)
		return errno;
	if (symlink("/proc/self/fd", "/dev/fd") < 0 || symlink("/proc/self/fd/0", "/dev/stdin") < 0 ||
	    symlink("/proc/self/fd/1", "/dev/stdout") < 0 || symlink("/proc/self/fd/2", "/dev/stderr") < 0)
		return errno;
	return 0;
}

int keel_sandbox_child_mounts(const struct keel_sandbox_plan *p)
{
	bool skip[MAX_MOUNTS] = {0};
	for (int i = 0; i < p->n_mounts; i++) {
		const struct keel_sandbox_mount *m = &p->mounts[i];
		int e = 0;
		struct stat st;
		switch (m->kind) {
		case KEEL_MNT_READ_WRITE_IMPLICIT:
		case KEEL_MNT_READ_WRITE:
		case KEEL_MNT_READ_ONLY:
			e = bind_self(m->path);
			if (e == 0 && access(m->path, F_OK) < 0)
				e = errno;
			break;
		case KEEL_MNT_BIND:
		case KEEL_MNT_BIND_RO:
			if (stat(m->source, &st) < 0) {
				e = errno;
				break;
			}
			if (S_ISDIR(st.st_mode) && mkdir(m->path, 0755) < 0 && errno != EEXIST)
				e = errno;
			if (!e && mount(m->source, m->path, NULL, MS_BIND | (m->recursive ? MS_REC : 0), NULL) < 0)
				e = errno;
			break;
		case KEEL_MNT_TMPFS:
			if (mount("tmpfs", m->path, "tmpfs", MS_NODEV | MS_STRICTATIME, m->source) < 0)
				e = errno;
			break;
		case KEEL_MNT_INACCESSIBLE:
			if (lstat(m->path, &st) < 0) {
				e = errno;
				break;
			}
			if (mount(S_ISDIR(st.st_mode) ? p->inaccessible_dir : p->inaccessible_reg, m->path, NULL,
				  MS_BIND, NULL) < 0)
				e = errno;
			break;
		case KEEL_MNT_PRIVATE_DEV:
			e = private_dev();
			break;
		}
		if (e == ENOENT && m->ignore_missing) {
			skip[i] = true;
			continue;
		}
		if (e)
			return e;
	}
	for (int i = 0; i < p->n_mounts; i++) {
		if (skip[i] || !is_read_only_kind(&p->mounts[i]))
			continue;
		int e = make_read_only(p, i, skip);
		if (e)
			return e;
	}
	return 0;
}

static int capget_all(struct __user_cap_data_struct d[2])
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
	return syscall(SYS_capget, &h, d) < 0 ? errno : 0;
}

static int capset_all(struct __user_cap_data_struct d[2])
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
	return syscall(SYS_capset, &h, d) < 0 ? errno : 0;
}

int keel_sandbox_child_caps_before(const struct keel_sandbox_plan *p, bool changing_user)
{
	if (p->caps) {
		for (int c = 0; c < 63; c++) {
			if (p->cap_bounding & (1ULL << c))
				continue;
			if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0) {
				if (errno == EINVAL)
					break; /* past the kernel's last capability */
				return errno;
			}
		}
		/* an inheritable capability outside the bounding set would survive execve for root */
		struct __user_cap_data_struct d[2];
		int e = capget_all(d);
		if (e)
			return e;
		d[0].inheritable &= (uint32_t)p->cap_bounding;
		d[1].inheritable &= (uint32_t)(p->cap_bounding >> 32);
		if ((e = capset_all(d)))
			return e;
	}
	uint32_t bits = p->secure_bits;
	if (p->cap_ambient && changing_user)
		bits |= SECBIT_KEEP_CAPS; /* the permitted set must survive setresuid() */
	if (bits && prctl(PR_SET_SECUREBITS, bits, 0, 0, 0) < 0)
		return errno;
	return 0;
}

int keel_sandbox_child_caps_after(const struct keel_sandbox_plan *p, bool changing_user)
{
	if (p->cap_ambient) {
		struct __user_cap_data_struct d[2];
		int e = capget_all(d);
		if (e)
			return e;
		uint32_t lo = (uint32_t)p->cap_ambient, hi = (uint32_t)(p->cap_ambient >> 32);
		d[0].inheritable |= lo;
		d[1].inheritable |= hi;
		if (changing_user) {
			/* a user other than root keeps exactly the ambient set */
			d[0].permitted = d[0].effective = lo;
			d[1].permitted = d[1].effective = hi;
		}
		if ((e = capset_all(d)))
			return e;
		for (int c = 0; c < 63; c++)
			if ((p->cap_ambient & (1ULL << c)) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0)
				return errno;
		/* SECBIT_KEEP_CAPS set for the user change is cleared by execve() */
	}
	if (p->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return errno;
	return 0;
}

int keel_sandbox_child_seccomp(const struct keel_sandbox_plan *p)
{
	if (!p->seccomp.len)
		return 0;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &p->seccomp, 0, 0) < 0 ? errno : 0;
}
