#include "init/cgroup.h"

/* Paths are cut at PATH_MAX; a cut one fails to open, which is reported. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/mem.h"
#include "base/str.h"
#include "init/values.h"

const char *keel_cg_mode_to_string(enum keel_cg_mode m)
{
	static const char *const names[] = {"none", "v1", "v2", "hybrid"};
	return (unsigned)m < KEEL_ARRAY_SIZE(names) ? names[m] : "?";
}

static unsigned ctrl_bit(const char *name)
{
	static const struct {
		const char *name;
		unsigned bit;
	} t[] = {{"cpu", KEEL_CGC_CPU}, {"cpuacct", KEEL_CGC_CPUACCT}, {"memory", KEEL_CGC_MEMORY},
		 {"pids", KEEL_CGC_PIDS}, {"blkio", KEEL_CGC_BLKIO}, {"io", KEEL_CGC_IO}};
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(t); i++)
		if (strcmp(name, t[i].name) == 0)
			return t[i].bit;
	return 0;
}

static int read_small(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, size - 1);
	int e = errno;
	close(fd);
	if (n < 0)
		return -e;
	buf[n] = '\0';
	return (int)n;
}

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, s, strlen(s));
	int e = errno;
	close(fd);
	return n < 0 ? -e : 0;
}

/* The path of keel-init's own cgroup in a hierarchy, from /proc/self/cgroup: "2:cpu,cpuacct:/x"
 * lines for v1 (matched by controller list or name=), "0::/x" for v2. */
static int own_path(const char *key, bool v2, char *out, size_t size)
{
	FILE *f = fopen("/proc/self/cgroup", "re");
	if (!f)
		return -errno;
	char line[4096];
	int r = -ENOENT;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		char *c1 = strchr(line, ':');
		char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2)
			continue;
		*c1 = '\0';
		*c2 = '\0';
		const char *list = c1 + 1, *path = c2 + 1;
		bool match = false;
		if (v2) {
			match = strcmp(line, "0") == 0 && *list == '\0';
		} else {
			char *copy = keel_strdup(list);
			if (!copy)
				break;
			for (char *tok = strtok(copy, ","); tok; tok = strtok(NULL, ","))
				match |= strcmp(tok, key) == 0;
			keel_free(copy);
		}
		if (match) {
			snprintf(out, size, "%s", path);
			r = 0;
			break;
		}
	}
	fclose(f);
	return r;
}

static char *join_path(const char *mount, const char *own, const char *root)
{
	size_t n = strlen(mount) + strlen(own) + strlen(root) + 3;
	char *p = keel_malloc(n);
	if (!p)
		return NULL;
	snprintf(p, n, "%s%s%s/%s", mount, strcmp(own, "/") == 0 ? "" : own, "", root);
	return keel_path_simplify(p);
}

/* cgroup2: turn on the controllers units need for <own>/<root>'s children. That needs them in
 * <own>'s subtree_control, which the kernel refuses while <own> holds processes (the "no
 * internal processes" rule) unless it is the root: then keel-init moves itself into
 * <own>/init.scope first, as systemd does in a container. */
static unsigned v2_enable(const char *mount, const char *own, const char *base)
{
	char path[4096], buf[512];
	snprintf(path, sizeof(path), "%s%s/cgroup.controllers", mount, strcmp(own, "/") == 0 ? "" : own);
	if (read_small(path, buf, sizeof(buf)) < 0)
		return 0;
	unsigned avail = 0;
	char want[256] = "";
	for (char *tok = strtok(buf, " \n"); tok; tok = strtok(NULL, " \n")) {
		unsigned bit = ctrl_bit(tok);
		if (bit & (KEEL_CGC_CPU | KEEL_CGC_MEMORY | KEEL_CGC_PIDS | KEEL_CGC_IO)) {
			avail |= bit;
			size_t l = strlen(want);
			snprintf(want + l, sizeof(want) - l, "%s+%s", l ? " " : "", tok);
		}
	}
	if (!avail)
		return 0;
	snprintf(path, sizeof(path), "%s%s/cgroup.subtree_control", mount, strcmp(own, "/") == 0 ? "" : own);
	if (write_str(path, want) == -EBUSY && strcmp(own, "/") != 0) {
		char scope[4096], pid[32];
		snprintf(scope, sizeof(scope), "%s%s/init.scope", mount, own);
		mkdir(scope, 0755);
		snprintf(scope, sizeof(scope), "%s%s/init.scope/cgroup.procs", mount, own);
		snprintf(pid, sizeof(pid), "%d", (int)getpid());
		if (write_str(scope, pid) < 0 || write_str(path, want) < 0)
			return 0;
	}
	snprintf(path, sizeof(path), "%s/cgroup.subtree_control", base);
	if (write_str(path, want) < 0)
		return 0;
	return avail;
}

int keel_cg_open(const char *root, struct keel_cg **ret, struct keel_err *err)
{
	return keel_cg_open_v1(root, false, ret, err);
}

int keel_cg_open_v1(const char *root, bool v1_only, struct keel_cg **ret, struct keel_err *err)
{
	struct keel_cg *cg = keel_calloc(1, sizeof(*cg));
	if (!cg || !(cg->root = keel_strdup(root))) {
		keel_free(cg);
		return keel_err_set(err, -ENOMEM, "out of memory");
	}
	cg->track = -1;
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f) {
		int r = -errno;
		keel_cg_free(cg);
		return keel_err_errno(err, r, "reading /proc/self/mountinfo");
	}
	char line[4096];
	bool have_v1 = false, have_v2 = false;
	int named = -1;
	while (fgets(line, sizeof(line), f) && cg->n < KEEL_CG_MAX_HIER) {
		/* id parent maj:min root mountpoint opts ... - fstype source superopts */
		char *fields[6] = {0}, *save = NULL, *p = line;
		for (int i = 0; i < 5; i++)
			fields[i] = strtok_r(i ? NULL : p, " ", &save);
		char *dash = strstr(fields[4] ? fields[4] + strlen(fields[4]) + 1 : "", " - ");
		if (!fields[4] || !dash)
			continue;
		char *fstype = strtok_r(dash + 3, " ", &save);
		strtok_r(NULL, " ", &save); /* source */
		char *super = strtok_r(NULL, " \n", &save);
		if (!fstype || strcmp(fields[3], "/") != 0)
			continue;
		struct keel_cg_hier *h = &cg->h[cg->n];
		char own[4096];
		if (strcmp(fstype, "cgroup2") == 0) {
			if (have_v2 || v1_only || own_path(NULL, true, own, sizeof(own)) < 0)
				continue;
			have_v2 = true;
			h->v2 = true;
			h->join = true;
		} else if (strcmp(fstype, "cgroup") == 0 && super) {
			unsigned bits = 0;
			const char *key = NULL;
			bool is_named = false;
			char *copy = keel_strdup(super);
			if (!copy)
				break;
			char *s2 = NULL;
			for (char *tok = strtok_r(copy, ",", &s2); tok; tok = strtok_r(NULL, ",", &s2)) {
				unsigned b = ctrl_bit(tok);
				if (b && !key)
					key = tok + 0;
				if (keel_startswith(tok, "name="))
					is_named = true;
				bits |= b;
			}
			/* The key to find our path: a controller name, or "name=..". */
			char keybuf[64] = "";
			for (char *tok = strtok_r(super, ",", &s2); tok; tok = strtok_r(NULL, ",", &s2))
				if (ctrl_bit(tok) || keel_startswith(tok, "name=")) {
					snprintf(keybuf, sizeof(keybuf), "%s", tok);
					break;
				}
			keel_free(copy);
			if (!keybuf[0] || own_path(keybuf, false, own, sizeof(own)) < 0)
				continue;
			have_v1 = true;
			h->ctrls = bits;
			/* cpuset, devices, freezer... are left alone: a new cpuset cgroup has no CPUs. */
			h->join = bits != 0;
			if (is_named && named < 0)
				named = (int)cg->n;
		} else {
			continue;
		}
		h->mount = keel_strdup(fields[4]);
		h->base = h->mount ? join_path(fields[4], own, root) : NULL;
		if (!h->mount || !h->base) {
			fclose(f);
			keel_cg_free(cg);
			return keel_err_set(err, -ENOMEM, "out of memory");
		}
		/* The named hierarchy only joins when it tracks (see below). */
		cg->n++;
	}
	fclose(f);
	cg->mode = have_v1 && have_v2 ? KEEL_CG_HYBRID : have_v2 ? KEEL_CG_V2 : have_v1 ? KEEL_CG_V1 : KEEL_CG_NONE;
	for (unsigned i = 0; i < cg->n; i++)
		if (cg->h[i].v2)
			cg->track = (int)i;
	if (cg->track < 0 && named >= 0) {
		cg->track = named;
		cg->h[named].join = true;
	}
	for (unsigned i = 0; cg->track < 0 && i < cg->n; i++)
		if (cg->h[i].join && (cg->h[i].ctrls & KEEL_CGC_PIDS))
			cg->track = (int)i;
	for (unsigned i = 0; cg->track < 0 && i < cg->n; i++)
		if (cg->h[i].join)
			cg->track = (int)i;
	for (unsigned i = 0; i < cg->n; i++) {
		struct keel_cg_hier *h = &cg->h[i];
		if (!h->join)
			continue;
		if (mkdir(h->base, 0755) < 0 && errno != EEXIST) {
			int r = -errno;
			if ((int)i == cg->track) {
				keel_err_errno(err, r, "creating %s", h->base);
				keel_cg_free(cg);
				return r;
			}
			h->join = false;
			continue;
		}
		if (h->v2) {
			char own[4096];
			if (own_path(NULL, true, own, sizeof(own)) == 0)
				h->ctrls = v2_enable(h->mount, own, h->base);
		}
	}
	*ret = cg;
	return 0;
}

void keel_cg_free(struct keel_cg *cg)
{
	if (!cg)
		return;
	for (unsigned i = 0; i < cg->n; i++) {
		if (cg->h[i].join && cg->h[i].base)
			rmdir(cg->h[i].base);
		keel_free(cg->h[i].mount);
		keel_free(cg->h[i].base);
	}
	keel_free(cg->root);
	keel_free(cg);
}

static int unit_dir(const struct keel_cg_hier *h, const char *unit, char *out, size_t size)
{
	if (!unit || !*unit || strchr(unit, '/') || unit[0] == '.')
		return -EINVAL;
	int n = snprintf(out, size, "%s/%s", h->base, unit);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static int write_attr(const struct keel_cg_hier *h, const char *unit, const char *attr, const char *val)
{
	char path[4096];
	int r = unit_dir(h, unit, path, sizeof(path));
	if (r < 0)
		return r;
	size_t l = strlen(path);
	snprintf(path + l, sizeof(path) - l, "/%s", attr);
	return write_str(path, val);
}

static struct keel_cg_hier *hier_with(struct keel_cg *cg, unsigned ctrl)
{
	for (unsigned i = 0; i < cg->n; i++)
		if (cg->h[i].join && (cg->h[i].ctrls & ctrl))
			return &cg->h[i];
	return NULL;
}

static uint64_t physical_memory(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
	return pages > 0 && size > 0 ? (uint64_t)pages * (uint64_t)size : UINT64_MAX;
}

static uint64_t pid_max(void)
{
	char buf[32];
	if (read_small("/proc/sys/kernel/pid_max", buf, sizeof(buf)) > 0)
		return strtoull(buf, NULL, 10);
	return 32768;
}

/* A limit as a number, or UINT64_MAX for none/infinity. */
static uint64_t limit_value(const struct keel_limit *l, uint64_t whole)
{
	switch (l->kind) {
	case KEEL_LIMIT_VALUE:
		return l->value;
	case KEEL_LIMIT_PERMYRIAD:
		return whole == UINT64_MAX ? UINT64_MAX : whole / 10000 * l->value;
	default:
		return UINT64_MAX;
	}
}

static void set_or_warn(const struct keel_cg_hier *h, const char *unit, const char *attr, const char *val,
			void (*warn)(void *, const char *), void *ud)
{
	int r = write_attr(h, unit, attr, val);
	if (r < 0 && warn) {
		char msg[512];
		snprintf(msg, sizeof(msg), "Failed to set %s to %s: %s", attr, val, strerror(-r));
		warn(ud, msg);
	}
}

static void apply(struct keel_cg *cg, const char *unit, const struct keel_cgroup_ctx *res,
		  void (*warn)(void *, const char *), void *ud)
{
	char v[64];
	struct keel_cg_hier *h;
	/* MemoryMax= wins over the older MemoryLimit= when both are set (systemd). */
	const struct keel_limit *mem = res->memory_max.kind != KEEL_LIMIT_UNSET ? &res->memory_max : &res->memory_limit;
	if (mem->kind != KEEL_LIMIT_UNSET) {
		uint64_t b = limit_value(mem, physical_memory());
		if ((h = hier_with(cg, KEEL_CGC_MEMORY))) {
			if (h->v2) {
				if (b == UINT64_MAX)
					snprintf(v, sizeof(v), "max");
				else
					snprintf(v, sizeof(v), "%llu", (unsigned long long)b);
				set_or_warn(h, unit, "memory.max", v, warn, ud);
			} else {
				snprintf(v, sizeof(v), "%lld", b == UINT64_MAX ? -1LL : (long long)b);
				set_or_warn(h, unit, "memory.limit_in_bytes", v, warn, ud);
			}
		} else if (warn) {
			warn(ud, "MemoryMax= set but no memory controller is available, ignoring");
		}
	}
	if (res->memory_high.kind == KEEL_LIMIT_VALUE || res->memory_high.kind == KEEL_LIMIT_PERMYRIAD) {
		h = hier_with(cg, KEEL_CGC_MEMORY);
		if (h && h->v2) {
			snprintf(v, sizeof(v), "%llu", (unsigned long long)limit_value(&res->memory_high, physical_memory()));
			set_or_warn(h, unit, "memory.high", v, warn, ud);
		}
	}
	if (res->tasks_max.kind != KEEL_LIMIT_UNSET) {
		uint64_t t = limit_value(&res->tasks_max, pid_max());
		if ((h = hier_with(cg, KEEL_CGC_PIDS))) {
			if (t == UINT64_MAX)
				snprintf(v, sizeof(v), "max");
			else
				snprintf(v, sizeof(v), "%llu", (unsigned long long)t);
			set_or_warn(h, unit, "pids.max", v, warn, ud);
		} else if (warn) {
			warn(ud, "TasksMax= set but no pids controller is available, ignoring");
		}
	}
	if ((h = hier_with(cg, KEEL_CGC_CPU))) {
		const uint64_t period = 100000; /* µs, systemd's default CPUQuotaPeriodSec= */
		if (res->cpu_quota_per_sec_usec != KEEL_USEC_INFINITY) {
			uint64_t q = res->cpu_quota_per_sec_usec * period / KEEL_USEC_PER_SEC;
			if (q < 1000)
				q = 1000; /* the kernel's minimum */
			if (h->v2) {
				snprintf(v, sizeof(v), "%llu %llu", (unsigned long long)q, (unsigned long long)period);
				set_or_warn(h, unit, "cpu.max", v, warn, ud);
			} else {
				snprintf(v, sizeof(v), "%llu", (unsigned long long)period);
				set_or_warn(h, unit, "cpu.cfs_period_us", v, warn, ud);
				snprintf(v, sizeof(v), "%llu", (unsigned long long)q);
				set_or_warn(h, unit, "cpu.cfs_quota_us", v, warn, ud);
			}
		}
		uint64_t w = res->cpu_weight, s = res->cpu_shares;
		if (h->v2 && (w != KEEL_CGROUP_WEIGHT_UNSET || s != KEEL_CGROUP_WEIGHT_UNSET)) {
			if (w == KEEL_CGROUP_WEIGHT_UNSET) /* cgroup_cpu_shares_to_weight() */
				w = KEEL_MAX(1, KEEL_MIN(10000, s * 100 / 1024));
			snprintf(v, sizeof(v), "%llu", (unsigned long long)(w ? w : 1));
			set_or_warn(h, unit, "cpu.weight", v, warn, ud);
		} else if (!h->v2 && (w != KEEL_CGROUP_WEIGHT_UNSET || s != KEEL_CGROUP_WEIGHT_UNSET)) {
			if (s == KEEL_CGROUP_WEIGHT_UNSET) /* cgroup_cpu_weight_to_shares() */
				s = KEEL_MAX(2, KEEL_MIN(262144, w * 1024 / 100));
			snprintf(v, sizeof(v), "%llu", (unsigned long long)s);
			set_or_warn(h, unit, "cpu.shares", v, warn, ud);
		}
	} else if (warn && (res->cpu_quota_per_sec_usec != KEEL_USEC_INFINITY ||
			    res->cpu_weight != KEEL_CGROUP_WEIGHT_UNSET || res->cpu_shares != KEEL_CGROUP_WEIGHT_UNSET)) {
		warn(ud, "CPU settings given but no cpu controller is available, ignoring");
	}
	uint64_t iow = res->io_weight, bw = res->blockio_weight;
	if (iow != KEEL_CGROUP_WEIGHT_UNSET || bw != KEEL_CGROUP_WEIGHT_UNSET) {
		if ((h = hier_with(cg, KEEL_CGC_IO)) && h->v2) {
			if (iow == KEEL_CGROUP_WEIGHT_UNSET) /* cgroup_weight_blkio_to_io() */
				iow = KEEL_MAX(1, KEEL_MIN(10000, bw * 100 / 500));
			snprintf(v, sizeof(v), "default %llu", (unsigned long long)iow);
			if (write_attr(h, unit, "io.weight", v) < 0) {
				snprintf(v, sizeof(v), "%llu", (unsigned long long)iow);
				set_or_warn(h, unit, "io.bfq.weight", v, warn, ud);
			}
		} else if ((h = hier_with(cg, KEEL_CGC_BLKIO))) {
			if (bw == KEEL_CGROUP_WEIGHT_UNSET) /* cgroup_weight_io_to_blkio() */
				bw = KEEL_MAX(10, KEEL_MIN(1000, iow * 500 / 100));
			snprintf(v, sizeof(v), "%llu", (unsigned long long)bw);
			if (write_attr(h, unit, "blkio.weight", v) < 0)
				set_or_warn(h, unit, "blkio.bfq.weight", v, warn, ud);
		} else if (warn) {
			warn(ud, "IOWeight=/BlockIOWeight= set but no io or blkio controller is available, ignoring");
		}
	}
}

unsigned keel_cg_mask(const struct keel_cg *cg, const struct keel_cgroup_ctx *res)
{
	unsigned want = 0, mask = 0;
	if (res) {
		if (res->memory_max.kind != KEEL_LIMIT_UNSET || res->memory_limit.kind != KEEL_LIMIT_UNSET ||
		    res->memory_high.kind == KEEL_LIMIT_VALUE || res->memory_high.kind == KEEL_LIMIT_PERMYRIAD)
			want |= KEEL_CGC_MEMORY;
		if (res->tasks_max.kind != KEEL_LIMIT_UNSET)
			want |= KEEL_CGC_PIDS;
		if (res->cpu_quota_per_sec_usec != KEEL_USEC_INFINITY || res->cpu_weight != KEEL_CGROUP_WEIGHT_UNSET ||
		    res->cpu_shares != KEEL_CGROUP_WEIGHT_UNSET)
			want |= KEEL_CGC_CPU;
		if (res->io_weight != KEEL_CGROUP_WEIGHT_UNSET || res->blockio_weight != KEEL_CGROUP_WEIGHT_UNSET)
			want |= KEEL_CGC_IO | KEEL_CGC_BLKIO;
	}
	for (unsigned i = 0; i < cg->n; i++) {
		if (!cg->h[i].join)
			continue;
		if ((int)i == cg->track || (cg->h[i].ctrls & want))
			mask |= 1u << i;
	}
	return mask;
}

int keel_cg_open_dir(struct keel_cg *cg, const char *unit)
{
	if (cg->track < 0 || !cg->h[cg->track].v2)
		return -ENOENT;
	char path[4096];
	int r = unit_dir(&cg->h[cg->track], unit, path, sizeof(path));
	if (r < 0)
		return r;
	int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int keel_cg_create(struct keel_cg *cg, const char *unit, unsigned mask, const struct keel_cgroup_ctx *res,
		   void (*warn)(void *ud, const char *msg), void *ud)
{
	for (unsigned i = 0; i < cg->n; i++) {
		if (!cg->h[i].join || !(mask & (1u << i)))
			continue;
		char path[4096];
		int r = unit_dir(&cg->h[i], unit, path, sizeof(path));
		if (r < 0)
			return r;
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return -errno;
	}
	if (res)
		apply(cg, unit, res, warn, ud);
	return 0;
}

int keel_cg_open_procs(struct keel_cg *cg, const char *unit, unsigned mask, int fds[KEEL_CG_MAX_JOIN])
{
	int n = 0;
	for (unsigned i = 0; i < cg->n; i++) {
		if (!cg->h[i].join || !(mask & (1u << i)))
			continue;
		char path[4096];
		int r = unit_dir(&cg->h[i], unit, path, sizeof(path));
		if (r == 0) {
			strncat(path, "/cgroup.procs", sizeof(path) - strlen(path) - 1);
			fds[n] = open(path, O_WRONLY | O_CLOEXEC);
			r = fds[n] < 0 ? -errno : 0;
		}
		if (r < 0) {
			while (n > 0)
				close(fds[--n]);
			return r;
		}
		n++;
	}
	return n;
}

static int procs_path(struct keel_cg *cg, const char *unit, char *path, size_t size)
{
	if (cg->track < 0)
		return -ENOENT;
	int r = unit_dir(&cg->h[cg->track], unit, path, size);
	if (r < 0)
		return r;
	strncat(path, "/cgroup.procs", size - strlen(path) - 1);
	return 0;
}

int keel_cg_pids(struct keel_cg *cg, const char *unit, pid_t **ret, size_t *n)
{
	char path[4096];
	int r = procs_path(cg, unit, path, sizeof(path));
	if (r < 0)
		return r;
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	pid_t *v = NULL;
	size_t len = 0, cap = 0;
	long pid;
	while (fscanf(f, "%ld", &pid) == 1) {
		if (len == cap) {
			cap = cap ? cap * 2 : 16;
			pid_t *nv = keel_reallocarray(v, cap, sizeof(*v));
			if (!nv) {
				keel_free(v);
				fclose(f);
				return -ENOMEM;
			}
			v = nv;
		}
		v[len++] = (pid_t)pid;
	}
	fclose(f);
	*ret = v;
	*n = len;
	return 0;
}

bool keel_cg_is_empty(struct keel_cg *cg, const char *unit)
{
	if (cg->track < 0)
		return true;
	char path[4096], buf[256];
	if (cg->h[cg->track].v2) {
		if (unit_dir(&cg->h[cg->track], unit, path, sizeof(path)) < 0)
			return true;
		strncat(path, "/cgroup.events", sizeof(path) - strlen(path) - 1);
		if (read_small(path, buf, sizeof(buf)) < 0)
			return true;
		const char *p = strstr(buf, "populated ");
		return !p || p[10] == '0';
	}
	if (procs_path(cg, unit, path, sizeof(path)) < 0)
		return true;
	int r = read_small(path, buf, sizeof(buf));
	return r <= 0;
}

int keel_cg_kill(struct keel_cg *cg, const char *unit, int sig, pid_t except, bool cont)
{
	if (cg->track < 0)
		return 0;
	/* cgroup.kill (Linux 5.14) takes the whole v2 cgroup at once, forks racing or not. */
	if (sig == SIGKILL && !except && cg->h[cg->track].v2) {
		char path[4096];
		if (unit_dir(&cg->h[cg->track], unit, path, sizeof(path)) == 0) {
			size_t before = 0;
			pid_t *pids = NULL;
			if (keel_cg_pids(cg, unit, &pids, &before) == 0)
				keel_free(pids);
			strncat(path, "/cgroup.kill", sizeof(path) - strlen(path) - 1);
			if (write_str(path, "1") == 0)
				return (int)before;
		}
	}
	pid_t *done = NULL;
	size_t n_done = 0, cap_done = 0;
	int total = 0;
	for (int round = 0; round < 64; round++) {
		pid_t *pids;
		size_t n;
		int r = keel_cg_pids(cg, unit, &pids, &n);
		if (r < 0) {
			keel_free(done);
			return r == -ENOENT ? total : r;
		}
		bool any = false;
		for (size_t i = 0; i < n; i++) {
			if (pids[i] == except)
				continue;
			bool seen = false;
			for (size_t j = 0; j < n_done && !seen; j++)
				seen = done[j] == pids[i];
			if (seen)
				continue;
			if (kill(pids[i], sig) == 0) {
				total++;
				if (cont && sig != SIGKILL && sig != SIGCONT)
					kill(pids[i], SIGCONT);
			}
			any = true;
			if (n_done == cap_done) {
				cap_done = cap_done ? cap_done * 2 : 32;
				pid_t *nd = keel_reallocarray(done, cap_done, sizeof(*nd));
				if (!nd) {
					keel_free(pids);
					keel_free(done);
					return -ENOMEM;
				}
				done = nd;
			}
			done[n_done++] = pids[i];
		}
		keel_free(pids);
		if (!any)
			break;
	}
	keel_free(done);
	return total;
}

static int rmdir_tree(const char *path)
{
	DIR *d = opendir(path);
	if (d) {
		struct dirent *de;
		while ((de = readdir(d))) {
			if (de->d_type != DT_DIR || de->d_name[0] == '.')
				continue;
			char sub[4096];
			snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
			rmdir_tree(sub);
		}
		closedir(d);
	}
	if (rmdir(path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int keel_cg_remove(struct keel_cg *cg, const char *unit, unsigned mask)
{
	int ret = 0;
	for (unsigned i = 0; i < cg->n; i++) {
		if (!cg->h[i].join || !(mask & (1u << i)))
			continue;
		char path[4096];
		if (unit_dir(&cg->h[i], unit, path, sizeof(path)) < 0)
			continue;
		int r = rmdir_tree(path);
		if (r < 0 && ret == 0)
			ret = r;
	}
	return ret;
}

const char *keel_cg_events_path(struct keel_cg *cg, const char *unit, char *buf, size_t size)
{
	if (cg->track < 0 || !cg->h[cg->track].v2)
		return NULL;
	if (unit_dir(&cg->h[cg->track], unit, buf, size) < 0)
		return NULL;
	strncat(buf, "/cgroup.events", size - strlen(buf) - 1);
	return buf;
}

int keel_cg_unit_of_pid(struct keel_cg *cg, pid_t pid, char *out, size_t size)
{
	if (cg->track < 0)
		return -ENOENT;
	const struct keel_cg_hier *h = &cg->h[cg->track];
	/* The tracking hierarchy's base without its mount point is the prefix to look for. */
	const char *rel = h->base + strlen(h->mount);
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	char line[4096];
	int r = -ENOENT;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		char *c1 = strchr(line, ':');
		char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2)
			continue;
		bool ours = h->v2 ? (strncmp(line, "0:", 2) == 0 && c2 == c1 + 1) : false;
		if (!h->v2) {
			/* match the v1 line by its controller list */
			char key[64] = "";
			if (h->ctrls & KEEL_CGC_PIDS)
				snprintf(key, sizeof(key), "pids");
			*c2 = '\0';
			ours = key[0] ? strstr(c1 + 1, key) != NULL : strstr(c1 + 1, "name=") != NULL;
		}
		if (!ours)
			continue;
		const char *p = c2 + 1;
		const char *rest = keel_startswith(p, *rel ? rel : "/");
		if (rest && *rest == '/') {
			rest++;
			size_t n = strcspn(rest, "/");
			if (n > 0 && n < size) {
				memcpy(out, rest, n);
				out[n] = '\0';
				r = 0;
			}
		}
		break;
	}
	fclose(f);
	return r;
}

int keel_cg_read_attr(struct keel_cg *cg, const char *unit, unsigned ctrl, const char *v1name,
		      const char *v2name, char *out, size_t size)
{
	struct keel_cg_hier *h = hier_with(cg, ctrl);
	if (!h)
		return -ENOENT;
	char path[4096];
	int r = unit_dir(h, unit, path, sizeof(path));
	if (r < 0)
		return r;
	size_t l = strlen(path);
	snprintf(path + l, sizeof(path) - l, "/%s", h->v2 ? v2name : v1name);
	r = read_small(path, out, size);
	if (r > 0 && out[r - 1] == '\n')
		out[r - 1] = '\0';
	return r < 0 ? r : 0;
}
