/* cgroups v1, v2 and hybrid for keel-run (runtime-spec config-linux.md "Control groups"). */
#include "run/cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "base/mem.h"
#include "base/str.h"

#define CG_ROOT "/sys/fs/cgroup"

enum keel_cgroup_mode keel_cgroup_detect(void)
{
	struct statfs s;
	if (statfs(CG_ROOT, &s) == 0 && s.f_type == CGROUP2_SUPER_MAGIC)
		return KEEL_CGROUP_V2;
	if (statfs(CG_ROOT "/unified", &s) == 0 && s.f_type == CGROUP2_SUPER_MAGIC)
		return KEEL_CGROUP_HYBRID;
	return KEEL_CGROUP_V1;
}

/* v1 hierarchies a container joins when they are mounted (runc's list). */
static const char *const v1_names[] = {
	"cpuset", "cpu", "cpuacct", "memory", "devices", "freezer", "blkio", "pids", "net_cls",
	"net_prio", "perf_event", "hugetlb", "rdma", "misc", "systemd",
};

static int write_file(const char *dir, const char *file, const char *value, struct keel_err *err)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return keel_err_errno(err, -errno, "opening %s", path);
	size_t n = strlen(value);
	ssize_t w = write(fd, value, n);
	int r = w < 0 ? -errno : (size_t)w != n ? -EIO : 0;
	close(fd);
	if (r < 0)
		return keel_err_errno(err, r, "writing \"%s\" to %s", value, path);
	return 0;
}

static ssize_t read_file(const char *dir, const char *file, char *buf, size_t size)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, size - 1);
	int e = errno;
	close(fd);
	if (n < 0)
		return -e;
	buf[n] = 0;
	return n;
}

/* keel-run's own cgroup in hierarchy `name` ("" for the unified one) from /proc/self/cgroup. */
static int own_cgroup(const char *name, char *out, size_t size)
{
	char buf[4096];
	ssize_t n = read_file("/proc/self", "cgroup", buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	for (char *line = buf, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		char *c1 = strchr(line, ':');
		char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2)
			continue;
		*c2 = 0;
		const char *ctrls = c1 + 1, *path = c2 + 1;
		bool match = false;
		if (!*name) {
			match = !*ctrls;
		} else {
			char want[32];
			snprintf(want, sizeof(want), "%s%s", strcmp(name, "systemd") == 0 ? "name=" : "", name);
			for (char *tok = (char *)ctrls, *end; tok && !match; tok = end) {
				end = strchr(tok, ',');
				if (end)
					*end++ = 0;
				match = strcmp(tok, want) == 0;
			}
		}
		if (match) {
			snprintf(out, size, "%s", path);
			return 0;
		}
	}
	return -ENOENT;
}

/* mkdir -p below a hierarchy root; counts the levels it made (always the deepest ones). */
static int make_path(const char *base, const char *rel, unsigned *created, struct keel_err *err)
{
	char path[4096];
	size_t blen = (size_t)snprintf(path, sizeof(path), "%s", base);
	*created = 0;
	for (const char *p = rel; *p;) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *e = strchrnul(p, '/');
		if (blen + 1 + (size_t)(e - p) >= sizeof(path))
			return keel_err_set(err, -ENAMETOOLONG, "cgroup path too long");
		path[blen++] = '/';
		memcpy(path + blen, p, (size_t)(e - p));
		blen += (size_t)(e - p);
		path[blen] = 0;
		if (mkdir(path, 0755) == 0)
			(*created)++;
		else if (errno != EEXIST)
			return keel_err_errno(err, -errno, "creating cgroup %s", path);
		else
			*created = 0; /* an existing level below a new one: someone else raced us */
		p = e;
	}
	return 0;
}

/* A new v1 cpuset cgroup starts with no cpus and no memory nodes: each level below the
 * hierarchy's root whose file is still empty gets its parent's, top down. Not only the levels
 * this call made: a parent another process has just made may not be filled yet (its task would
 * then fail with ENOSPC), and writing the same value twice is harmless. As runc does. */
static int cpuset_fill(const char *mnt, const char *leaf, struct keel_err *err)
{
	size_t mlen = strlen(mnt);
	if (strncmp(leaf, mnt, mlen) != 0)
		return 0;
	char path[4096];
	snprintf(path, sizeof(path), "%s", leaf);
	for (char *p = path + mlen; *p;) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		char *e = strchrnul(p, '/');
		char saved = *e;
		*e = 0; /* path is now this level; its parent ends at p - 1 */
		static const char *const files[] = {"cpuset.cpus", "cpuset.mems"};
		for (int f = 0; f < 2; f++) {
			char cur[4096], parent_val[4096], parent[4096];
			ssize_t len = read_file(path, files[f], cur, sizeof(cur));
			if (len < 0)
				return keel_err_errno(err, (int)len, "reading %s/%s", path, files[f]);
			if (*keel_strstrip(cur))
				continue;
			snprintf(parent, sizeof(parent), "%.*s", (int)(p - 1 - path), path);
			len = read_file(parent, files[f], parent_val, sizeof(parent_val));
			if (len < 0)
				return keel_err_errno(err, (int)len, "reading %s/%s", parent, files[f]);
			int r = write_file(path, files[f], keel_strstrip(parent_val), err);
			if (r < 0)
				return r;
		}
		*e = saved;
		p = e;
	}
	return 0;
}

static const struct keel_cgroup_dir *find_dir(const struct keel_cgroup *cg, const char *name)
{
	for (unsigned i = 0; i < cg->n; i++)
		if (strcmp(cg->dirs[i].name, name) == 0)
			return &cg->dirs[i];
	return NULL;
}

static int write_i64(const char *dir, const char *file, int64_t v, struct keel_err *err)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%lld", (long long)v);
	return write_file(dir, file, buf, err);
}

/* ---- v1 ---- */

static const char *const default_allowed_devices[] = {
	"c *:* m", "b *:* m", "c 1:3 rwm", "c 1:8 rwm", "c 1:7 rwm", "c 5:0 rwm", "c 1:5 rwm",
	"c 1:9 rwm", "c 5:1 rwm", "c 136:* rwm", "c 5:2 rwm", "c 10:200 rwm", NULL,
};

static int v1_devices(const char *dir, const struct keel_spec_resources *res, struct keel_err *err)
{
	int r = write_file(dir, "devices.deny", "a", err);
	for (size_t i = 0; r == 0 && i < res->n_devices; i++) {
		const struct keel_spec_devrule *d = &res->devices[i];
		char rule[64], maj[24] = "*", min[24] = "*";
		if (d->major >= 0)
			snprintf(maj, sizeof(maj), "%lld", (long long)d->major);
		if (d->minor >= 0)
			snprintf(min, sizeof(min), "%lld", (long long)d->minor);
		if (d->type == 'a')
			snprintf(rule, sizeof(rule), "a");
		else
			snprintf(rule, sizeof(rule), "%c %s:%s %s", d->type, maj, min, d->access);
		r = write_file(dir, d->allow ? "devices.allow" : "devices.deny", rule, err);
	}
	for (size_t i = 0; r == 0 && default_allowed_devices[i]; i++)
		r = write_file(dir, "devices.allow", default_allowed_devices[i], err);
	return r;
}

static int v1_resources(const struct keel_cgroup *cg, const struct keel_spec_resources *res,
			bool update, struct keel_err *err)
{
	const struct keel_cgroup_dir *d = NULL;
	int r = 0;
	if (update && !res->n_devices)
		; /* an update without device rules keeps the ones the container has */
	else if ((d = find_dir(cg, "devices")))
		r = v1_devices(d->path, res, err);
	else if (res->n_devices)
		return keel_err_set(err, -ENOTSUP, "linux.resources.devices: no devices cgroup controller");
	if (r < 0)
		return r;
	bool mem = res->has_memory_limit || res->has_memory_reservation || res->has_memory_swap;
	if (mem && !(d = find_dir(cg, "memory")))
		return keel_err_set(err, -ENOTSUP, "linux.resources.memory: no memory cgroup controller");
	bool swap_done = false;
	if (res->has_memory_limit &&
	    (r = write_i64(d->path, "memory.limit_in_bytes", res->memory_limit, err)) < 0) {
		/* Raising the limit above the current memory+swap limit fails until that one is
		 * raised first (runc's order for updates). */
		if (r != -EINVAL || !res->has_memory_swap)
			return r;
		if ((r = write_i64(d->path, "memory.memsw.limit_in_bytes", res->memory_swap, err)) < 0 ||
		    (r = write_i64(d->path, "memory.limit_in_bytes", res->memory_limit, err)) < 0)
			return r;
		swap_done = true;
	}
	if (res->has_memory_swap && !swap_done &&
	    (r = write_i64(d->path, "memory.memsw.limit_in_bytes", res->memory_swap, err)) < 0)
		return keel_err_wrap(err, "linux.resources.memory.swap (is swap accounting on?)");
	if (res->has_memory_reservation &&
	    (r = write_i64(d->path, "memory.soft_limit_in_bytes", res->memory_reservation, err)) < 0)
		return r;
	if (res->has_cpu_shares || res->has_cpu_quota || res->has_cpu_period) {
		if (!(d = find_dir(cg, "cpu")))
			return keel_err_set(err, -ENOTSUP, "linux.resources.cpu: no cpu cgroup controller");
		if (res->has_cpu_shares && (r = write_i64(d->path, "cpu.shares", (int64_t)res->cpu_shares, err)) < 0)
			return r;
		if (res->has_cpu_period &&
		    (r = write_i64(d->path, "cpu.cfs_period_us", (int64_t)res->cpu_period, err)) < 0)
			return r;
		if (res->has_cpu_quota && (r = write_i64(d->path, "cpu.cfs_quota_us", res->cpu_quota, err)) < 0)
			return r;
	}
	if (res->cpus || res->mems) {
		if (!(d = find_dir(cg, "cpuset")))
			return keel_err_set(err, -ENOTSUP, "linux.resources.cpu.cpus: no cpuset cgroup controller");
		if (res->cpus && (r = write_file(d->path, "cpuset.cpus", res->cpus, err)) < 0)
			return r;
		if (res->mems && (r = write_file(d->path, "cpuset.mems", res->mems, err)) < 0)
			return r;
	}
	if (res->has_pids_limit) {
		if (!(d = find_dir(cg, "pids")))
			return keel_err_set(err, -ENOTSUP, "linux.resources.pids: no pids cgroup controller");
		if (res->pids_limit > 0)
			r = write_i64(d->path, "pids.max", res->pids_limit, err);
		else
			r = write_file(d->path, "pids.max", "max", err);
		if (r < 0)
			return r;
	}
	if (res->blkio_weight) {
		char buf[16];
		if (!(d = find_dir(cg, "blkio")))
			return keel_err_set(err, -ENOTSUP, "linux.resources.blockIO: no blkio cgroup controller");
		snprintf(buf, sizeof(buf), "%u", res->blkio_weight);
		if (write_file(d->path, "blkio.weight", buf, NULL) < 0 &&
		    write_file(d->path, "blkio.bfq.weight", buf, NULL) < 0)
			return keel_err_set(err, -ENOTSUP, "linux.resources.blockIO.weight: this kernel's blkio "
					    "controller has no weight (no CFQ/BFQ scheduler)");
	}
	return 0;
}

/* ---- v2 ---- */

static int v2_enable(const struct keel_cgroup_dir *d, const char *mnt, const struct keel_spec_resources *res,
		     struct keel_err *err)
{
	/* Controllers must be enabled in every ancestor's subtree_control, from the root down. */
	static const char *const ctrls[] = {"+memory", "+pids", "+cpu", "+cpuset", "+io"};
	char path[4096];
	snprintf(path, sizeof(path), "%s", d->path);
	char *leaf_slash = strrchr(path, '/');
	if (!leaf_slash)
		return 0;
	*leaf_slash = 0;
	size_t mlen = strlen(mnt);
	for (char *p = path + mlen;; p++) {
		char saved = *p;
		if (saved == '/' || saved == 0) {
			*p = 0;
			for (size_t i = 0; i < KEEL_ARRAY_SIZE(ctrls); i++)
				write_file(path, "cgroup.subtree_control", ctrls[i], NULL);
			*p = saved;
		}
		if (!saved)
			break;
	}
	(void)res;
	(void)err;
	return 0;
}

static int v2_resources(const struct keel_cgroup *cg, const struct keel_spec_resources *res,
			bool update, struct keel_err *err)
{
	(void)update;
	const struct keel_cgroup_dir *d = &cg->dirs[0];
	int r;
	if (res->n_devices)
		return keel_err_set(err, -ENOTSUP, "linux.resources.devices: device rules on cgroup v2 need "
				    "an eBPF program, which keel-run does not load yet");
	if ((r = v2_enable(d, cg->mnt_root, res, err)) < 0)
		return r;
	if (res->has_memory_limit &&
	    (r = res->memory_limit < 0 ? write_file(d->path, "memory.max", "max", err)
				       : write_i64(d->path, "memory.max", res->memory_limit, err)) < 0)
		return r;
	if (res->has_memory_reservation && res->memory_reservation >= 0 &&
	    (r = write_i64(d->path, "memory.low", res->memory_reservation, err)) < 0)
		return r;
	if (res->has_memory_swap) {
		if (res->memory_swap < 0)
			r = write_file(d->path, "memory.swap.max", "max", err);
		else
			r = write_i64(d->path, "memory.swap.max",
				      res->memory_swap - (res->has_memory_limit ? res->memory_limit : 0), err);
		if (r < 0)
			return r;
	}
	if (res->has_cpu_shares) {
		/* runc's conversion of shares (2..262144) to weight (1..10000). */
		uint64_t w = 1 + ((res->cpu_shares - 2) * 9999) / 262142;
		if ((r = write_i64(d->path, "cpu.weight", (int64_t)w, err)) < 0)
			return r;
	}
	if (res->has_cpu_quota || res->has_cpu_period) {
		char buf[64];
		uint64_t period = res->has_cpu_period ? res->cpu_period : 100000;
		if (!res->has_cpu_quota || res->cpu_quota < 0)
			snprintf(buf, sizeof(buf), "max %llu", (unsigned long long)period);
		else
			snprintf(buf, sizeof(buf), "%lld %llu", (long long)res->cpu_quota,
				 (unsigned long long)period);
		if ((r = write_file(d->path, "cpu.max", buf, err)) < 0)
			return r;
	}
	if (res->cpus && (r = write_file(d->path, "cpuset.cpus", res->cpus, err)) < 0)
		return r;
	if (res->mems && (r = write_file(d->path, "cpuset.mems", res->mems, err)) < 0)
		return r;
	if (res->has_pids_limit &&
	    (r = res->pids_limit > 0 ? write_i64(d->path, "pids.max", res->pids_limit, err)
				     : write_file(d->path, "pids.max", "max", err)) < 0)
		return r;
	if (res->blkio_weight) {
		char buf[16];
		snprintf(buf, sizeof(buf), "%u", 1 + (res->blkio_weight - 10) * 9999 / 990);
		if ((r = write_file(d->path, "io.weight", buf, err)) < 0)
			return r;
	}
	return 0;
}

/* The layout-specific operations. */
struct cgroup_ops {
	int (*resources)(const struct keel_cgroup *cg, const struct keel_spec_resources *res,
			 bool update, struct keel_err *err);
};

static const struct cgroup_ops v1_ops = {v1_resources};
static const struct cgroup_ops v2_ops = {v2_resources};

static int add_dir(struct keel_cgroup *cg, const char *name, const char *mnt, const char *rel,
		   const char *id, struct keel_err *err)
{
	char full[4096], own[2048];
	if (cg->n >= KEEL_CGROUP_MAX_DIRS)
		return 0;
	if (rel && rel[0] == '/') {
		snprintf(full, sizeof(full), "%s%s", mnt, rel);
	} else {
		if (own_cgroup(strcmp(name, "unified") == 0 ? "" : name, own, sizeof(own)) < 0)
			snprintf(own, sizeof(own), "/");
		snprintf(full, sizeof(full), "%s%s%s%s", mnt, own, strcmp(own, "/") ? "/" : "", rel ? rel : id);
	}
	/* Strip trailing slashes: "/a/" is "/a". */
	size_t len = strlen(full);
	while (len > strlen(mnt) + 1 && full[len - 1] == '/')
		full[--len] = 0;
	struct keel_cgroup_dir *d = &cg->dirs[cg->n];
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->path = keel_strdup(full);
	if (!d->path)
		return keel_err_set(err, -ENOMEM, "out of memory");
	cg->n++;
	int r = make_path(mnt, full + strlen(mnt), &d->created, err);
	if (r == 0 && strcmp(name, "cpuset") == 0 && cg->mode != KEEL_CGROUP_V2)
		r = cpuset_fill(mnt, d->path, err);
	return r;
}

int keel_cgroup_create(struct keel_cgroup *cg, const struct keel_spec *spec, const char *id,
		       struct keel_err *err)
{
	memset(cg, 0, sizeof(*cg));
	cg->v2_fd = -1;
	cg->mode = keel_cgroup_detect();
	cg->mnt_root = CG_ROOT;
	const char *rel = spec->cgroups_path;
	int r = 0;
	if (cg->mode == KEEL_CGROUP_V2) {
		r = add_dir(cg, "", CG_ROOT, rel, id, err);
	} else {
		dev_t seen[KEEL_ARRAY_SIZE(v1_names)];
		unsigned n_seen = 0;
		for (size_t i = 0; i < KEEL_ARRAY_SIZE(v1_names) && r == 0; i++) {
			char mnt[256];
			struct stat st;
			struct statfs sf;
			snprintf(mnt, sizeof(mnt), CG_ROOT "/%s", v1_names[i]);
			if (stat(mnt, &st) < 0 || !S_ISDIR(st.st_mode) || statfs(mnt, &sf) < 0 ||
			    sf.f_type != CGROUP_SUPER_MAGIC)
				continue;
			bool dup = false;
			for (unsigned k = 0; k < n_seen; k++)
				dup |= seen[k] == st.st_dev;
			if (dup)
				continue; /* co-mounted (cpu,cpuacct): one directory serves both */
			seen[n_seen++] = st.st_dev;
			r = add_dir(cg, v1_names[i], mnt, rel, id, err);
		}
		if (r == 0 && cg->mode == KEEL_CGROUP_HYBRID)
			r = add_dir(cg, "unified", CG_ROOT "/unified", rel, id, err);
	}
	if (r == 0 && cg->n == 0)
		r = keel_err_set(err, -ENOTSUP, "no cgroup hierarchy is mounted under " CG_ROOT);
	if (r == 0 && cg->mode != KEEL_CGROUP_V1) {
		const struct keel_cgroup_dir *d = find_dir(cg, cg->mode == KEEL_CGROUP_V2 ? "" : "unified");
		if (d && (cg->v2_fd = open(d->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
			r = keel_err_errno(err, -errno, "opening %s", d->path);
	}
	if (r == 0 && spec->resources.any) {
		const struct cgroup_ops *ops = cg->mode == KEEL_CGROUP_V2 ? &v2_ops : &v1_ops;
		r = ops->resources(cg, &spec->resources, false, err);
	}
	if (r < 0) {
		char **dirs = NULL;
		if (keel_cgroup_dirs(cg, &dirs) == 0)
			keel_cgroup_remove_dirs(dirs, NULL);
		keel_strv_free(dirs);
		keel_cgroup_free(cg);
	}
	return r;
}

int keel_cgroup_v2_fd(const struct keel_cgroup *cg)
{
	return cg->v2_fd;
}

int keel_cgroup_enter_self(const struct keel_cgroup *cg, bool in_v2, struct keel_err *err)
{
	for (unsigned i = 0; i < cg->n; i++) {
		bool v2 = cg->mode == KEEL_CGROUP_V2 || strcmp(cg->dirs[i].name, "unified") == 0;
		if (v2 && in_v2)
			continue;
		int r = write_file(cg->dirs[i].path, v2 ? "cgroup.procs" : "tasks", "0", err);
		if (r < 0)
			return r;
	}
	return 0;
}

void keel_cgroup_procs_path(const struct keel_cgroup *cg, char *out, size_t size)
{
	/* pids or memory are always there on v1; the unified directory on v2. */
	const struct keel_cgroup_dir *d = find_dir(cg, "pids");
	if (!d)
		d = find_dir(cg, "memory");
	if (!d)
		d = &cg->dirs[0];
	snprintf(out, size, "%s/cgroup.procs", d->path);
}

int keel_cgroup_dirs(const struct keel_cgroup *cg, char ***ret)
{
	char **v = NULL;
	for (unsigned i = 0; i < cg->n; i++) {
		char path[4096];
		snprintf(path, sizeof(path), "%s", cg->dirs[i].path);
		for (unsigned level = 0; level < KEEL_MAX(cg->dirs[i].created, 1u); level++) {
			if (keel_strv_push(&v, path) < 0) {
				keel_strv_free(v);
				return -ENOMEM;
			}
			char *slash = strrchr(path, '/');
			if (!slash)
				break;
			*slash = 0;
		}
	}
	*ret = v;
	return 0;
}

void keel_cgroup_free(struct keel_cgroup *cg)
{
	if (cg->v2_fd >= 0)
		close(cg->v2_fd);
	cg->v2_fd = -1;
	for (unsigned i = 0; i < cg->n; i++)
		keel_free(cg->dirs[i].path);
	cg->n = 0;
}

int keel_cgroup_signal_all(const char *procs_path, int sig)
{
	char buf[65536];
	int fd = open(procs_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	int count = 0;
	for (char *p = buf; *p;) {
		char *end;
		long pid = strtol(p, &end, 10);
		if (end == p)
			break;
		if (pid > 0 && kill((pid_t)pid, sig) == 0)
			count++;
		p = end;
		while (*p == '\n')
			p++;
	}
	return count;
}

int keel_cgroup_remove_dirs(char *const *dirs, struct keel_err *err)
{
	int first = 0;
	for (size_t i = 0; dirs && dirs[i]; i++) {
		/* Parents this container created may hold another container by now: EBUSY there is
		 * not ours to fix. Only the leaf (listed first per hierarchy) must go. */
		int r = 0;
		for (int attempt = 0; attempt < 200; attempt++) {
			if (rmdir(dirs[i]) == 0 || errno == ENOENT) {
				r = 0;
				break;
			}
			r = -errno;
			if (r != -EBUSY)
				break;
			/* An exiting task leaves its cgroup a little after it is reaped. */
			struct timespec ts = {0, 10 * 1000 * 1000};
			bool leaf = i == 0 || !keel_startswith(dirs[i - 1], dirs[i]);
			if (!leaf)
				break;
			nanosleep(&ts, NULL);
		}
		bool leaf = i == 0 || !keel_startswith(dirs[i - 1], dirs[i]);
		if (r < 0 && leaf && !first)
			first = keel_err_errno(err, r, "removing cgroup %s", dirs[i]);
	}
	return first;
}

int keel_cgroup_names_paths(const struct keel_cgroup *cg, char ***names, char ***paths)
{
	for (unsigned i = 0; i < cg->n; i++)
		if (keel_strv_push(names, cg->dirs[i].name) < 0 || keel_strv_push(paths, cg->dirs[i].path) < 0)
			return -ENOMEM;
	return 0;
}

int keel_cgroup_load(struct keel_cgroup *cg, int mode, char *const *names, char *const *paths,
		     bool open_v2, struct keel_err *err)
{
	memset(cg, 0, sizeof(*cg));
	cg->v2_fd = -1;
	cg->mode = (enum keel_cgroup_mode)mode;
	cg->mnt_root = CG_ROOT;
	for (size_t i = 0; names && names[i] && paths && paths[i] && cg->n < KEEL_CGROUP_MAX_DIRS; i++) {
		struct keel_cgroup_dir *d = &cg->dirs[cg->n];
		snprintf(d->name, sizeof(d->name), "%s", names[i]);
		if (!(d->path = keel_strdup(paths[i]))) {
			keel_cgroup_free(cg);
			return keel_err_set(err, -ENOMEM, "out of memory");
		}
		cg->n++;
	}
	if (open_v2 && cg->mode != KEEL_CGROUP_V1) {
		const struct keel_cgroup_dir *d = find_dir(cg, cg->mode == KEEL_CGROUP_V2 ? "" : "unified");
		if (d && (cg->v2_fd = open(d->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
			int r = keel_err_errno(err, -errno, "opening %s", d->path);
			keel_cgroup_free(cg);
			return r;
		}
	}
	return 0;
}

int keel_cgroup_set_resources(const struct keel_cgroup *cg, const struct keel_spec_resources *res,
			      struct keel_err *err)
{
	const struct cgroup_ops *ops = cg->mode == KEEL_CGROUP_V2 ? &v2_ops : &v1_ops;
	return ops->resources(cg, res, true, err);
}

int keel_cgroup_freeze(const struct keel_cgroup *cg, bool freeze, struct keel_err *err)
{
	const struct keel_cgroup_dir *d = find_dir(cg, "freezer");
	bool v1 = d != NULL;
	if (!d && cg->mode == KEEL_CGROUP_V2)
		d = find_dir(cg, "");
	if (!d)
		return keel_err_set(err, -ENOTSUP, "no freezer cgroup: the container cannot be paused");
	const char *file = v1 ? "freezer.state" : "cgroup.freeze";
	const char *want = v1 ? (freeze ? "FROZEN" : "THAWED") : (freeze ? "1" : "0");
	/* v1 may sit in FREEZING while a task is busy in the kernel: write again until the
	 * state is reached, as runc does. */
	for (int attempt = 0; attempt < 1000; attempt++) {
		char buf[64];
		int r = write_file(d->path, file, want, err);
		if (r < 0)
			return r;
		ssize_t n = v1 ? read_file(d->path, "freezer.state", buf, sizeof(buf))
			       : read_file(d->path, "cgroup.events", buf, sizeof(buf));
		if (n < 0)
			return keel_err_errno(err, (int)n, "reading the freezer state in %s", d->path);
		bool done = v1 ? strncmp(buf, want, strlen(want)) == 0
			       : (strstr(buf, freeze ? "frozen 1" : "frozen 0") != NULL);
		if (done)
			return 0;
		struct timespec ts = {0, 2 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return keel_err_set(err, -ETIMEDOUT, "the container's cgroup did not reach %s", want);
}
