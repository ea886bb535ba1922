/* What `events` reports from a container's cgroups: runc's stats object (cpu, memory, pids) and
 * OOM notifications (v1: an eventfd on memory.oom_control through cgroup.event_control; v2: the
 * oom_kill counter of memory.events, watched with inotify). */
#include "run/cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "base/jw.h"

static ssize_t read_text(const char *dir, const char *file, char *buf, size_t size)
{
	char path[4096];
	if (!dir)
		return -ENOENT;
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t n = 0;
	while (n < size - 1) {
		ssize_t k = read(fd, buf + n, size - 1 - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		n += (size_t)k;
	}
	close(fd);
	buf[n] = 0;
	return (ssize_t)n;
}

static bool read_u64(const char *dir, const char *file, uint64_t *v)
{
	char buf[64];
	if (read_text(dir, file, buf, sizeof(buf)) <= 0)
		return false;
	if (strncmp(buf, "max", 3) == 0) {
		*v = UINT64_MAX;
		return true;
	}
	*v = strtoull(buf, NULL, 10);
	return true;
}

/* The value of `key` in a flat keyed file ("key value\n" lines). */
static bool keyed_u64(const char *text, const char *key, uint64_t *v)
{
	size_t kl = strlen(key);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, key, kl) == 0 && p[kl] == ' ') {
			*v = strtoull(p + kl + 1, NULL, 10);
			return true;
		}
	}
	return false;
}

static const char *dir_of(const struct keel_cgroup *cg, const char *v1name)
{
	const char *want = cg->mode == KEEL_CGROUP_V2 ? "" : v1name;
	for (unsigned i = 0; i < cg->n; i++)
		if (strcmp(cg->dirs[i].name, want) == 0)
			return cg->dirs[i].path;
	return NULL;
}

/* A space-separated list of numbers as a JSON array (cpuacct.usage_percpu*). */
static void u64_list(struct keel_jw *w, const char *key, const char *dir, const char *file)
{
	char buf[8192];
	if (read_text(dir, file, buf, sizeof(buf)) <= 0)
		return;
	keel_jw_key(w, key);
	keel_jw_arr_begin(w);
	char *p = buf, *end;
	for (;;) {
		uint64_t v = strtoull(p, &end, 10);
		if (end == p)
			break;
		keel_jw_u64(w, v);
		p = end;
	}
	keel_jw_arr_end(w);
}

/* runc's MemoryEntry: limit and failcnt always, usage and max when not zero. */
static void mem_entry(struct keel_jw *w, const char *key, const char *dir, const char *prefix, bool v2)
{
	char f[64];
	uint64_t v;
	keel_jw_key(w, key);
	keel_jw_obj_begin(w);
	if (v2) {
		snprintf(f, sizeof(f), "%s.max", prefix);
		keel_jw_ku64(w, "limit", read_u64(dir, f, &v) ? v : 0);
		snprintf(f, sizeof(f), "%s.current", prefix);
		if (read_u64(dir, f, &v) && v)
			keel_jw_ku64(w, "usage", v);
		if (strcmp(prefix, "memory") == 0 && read_u64(dir, "memory.peak", &v) && v)
			keel_jw_ku64(w, "max", v);
		keel_jw_ku64(w, "failcnt", 0);
	} else {
		snprintf(f, sizeof(f), "%s.limit_in_bytes", prefix);
		keel_jw_ku64(w, "limit", read_u64(dir, f, &v) ? v : 0);
		snprintf(f, sizeof(f), "%s.usage_in_bytes", prefix);
		if (read_u64(dir, f, &v) && v)
			keel_jw_ku64(w, "usage", v);
		snprintf(f, sizeof(f), "%s.max_usage_in_bytes", prefix);
		if (read_u64(dir, f, &v) && v)
			keel_jw_ku64(w, "max", v);
		snprintf(f, sizeof(f), "%s.failcnt", prefix);
		keel_jw_ku64(w, "failcnt", read_u64(dir, f, &v) ? v : 0);
	}
	keel_jw_obj_end(w);
}

static void cpu_stats(const struct keel_cgroup *cg, struct keel_jw *w, bool v2)
{
	char buf[1024];
	uint64_t v;
	const char *acct = dir_of(cg, "cpuacct"), *cpu = dir_of(cg, "cpu");
	if (!acct)
		acct = cpu;
	keel_jw_key(w, "cpu");
	keel_jw_obj_begin(w);
	keel_jw_key(w, "usage");
	keel_jw_obj_begin(w);
	if (v2) {
		bool ok = read_text(cpu, "cpu.stat", buf, sizeof(buf)) > 0;
		if (ok && keyed_u64(buf, "usage_usec", &v) && v)
			keel_jw_ku64(w, "total", v * 1000);
		keel_jw_ku64(w, "kernel", ok && keyed_u64(buf, "system_usec", &v) ? v * 1000 : 0);
		keel_jw_ku64(w, "user", ok && keyed_u64(buf, "user_usec", &v) ? v * 1000 : 0);
	} else {
		if (read_u64(acct, "cpuacct.usage", &v) && v)
			keel_jw_ku64(w, "total", v);
		u64_list(w, "percpu", acct, "cpuacct.usage_percpu");
		u64_list(w, "percpu_kernel", acct, "cpuacct.usage_percpu_sys");
		u64_list(w, "percpu_user", acct, "cpuacct.usage_percpu_user");
		/* cpuacct.stat counts USER_HZ (100/s) ticks; runc reports nanoseconds. */
		bool ok = read_text(acct, "cpuacct.stat", buf, sizeof(buf)) > 0;
		keel_jw_ku64(w, "kernel", ok && keyed_u64(buf, "system", &v) ? v * 10000000 : 0);
		keel_jw_ku64(w, "user", ok && keyed_u64(buf, "user", &v) ? v * 10000000 : 0);
	}
	keel_jw_obj_end(w);
	keel_jw_key(w, "throttling");
	keel_jw_obj_begin(w);
	if (read_text(cpu, "cpu.stat", buf, sizeof(buf)) > 0) {
		if (keyed_u64(buf, "nr_periods", &v) && v)
			keel_jw_ku64(w, "periods", v);
		if (keyed_u64(buf, "nr_throttled", &v) && v)
			keel_jw_ku64(w, "throttledPeriods", v);
		if (keyed_u64(buf, v2 ? "throttled_usec" : "throttled_time", &v) && v)
			keel_jw_ku64(w, "throttledTime", v2 ? v * 1000 : v);
	}
	keel_jw_obj_end(w);
	keel_jw_obj_end(w);
}

static void memory_stats(const struct keel_cgroup *cg, struct keel_jw *w, bool v2)
{
	static char stat[16384];
	const char *mem = dir_of(cg, "memory");
	uint64_t v;
	bool have_stat = read_text(mem, "memory.stat", stat, sizeof(stat)) > 0;
	keel_jw_key(w, "memory");
	keel_jw_obj_begin(w);
	if (have_stat && keyed_u64(stat, v2 ? "file" : "cache", &v) && v)
		keel_jw_ku64(w, "cache", v);
	mem_entry(w, "usage", mem, "memory", v2);
	mem_entry(w, "swap", mem, v2 ? "memory.swap" : "memory.memsw", v2);
	if (!v2) {
		mem_entry(w, "kernel", mem, "memory.kmem", false);
		mem_entry(w, "kernelTCP", mem, "memory.kmem.tcp", false);
	}
	if (have_stat) {
		keel_jw_key(w, "raw");
		keel_jw_obj_begin(w);
		for (char *line = stat; *line;) {
			char *nl = strchr(line, '\n'), *sp = strchr(line, ' ');
			if (nl)
				*nl = 0;
			if (sp) {
				keel_jw_keyn(w, line, (size_t)(sp - line));
				keel_jw_u64(w, strtoull(sp + 1, NULL, 10));
			}
			if (!nl)
				break;
			line = nl + 1;
		}
		keel_jw_obj_end(w);
	}
	keel_jw_obj_end(w);
}

void keel_cgroup_stats(const struct keel_cgroup *cg, struct keel_jw *w)
{
	bool v2 = cg->mode == KEEL_CGROUP_V2;
	uint64_t v;
	const char *pids = dir_of(cg, "pids");
	cpu_stats(cg, w, v2);
	memory_stats(cg, w, v2);
	keel_jw_key(w, "pids");
	keel_jw_obj_begin(w);
	if (read_u64(pids, "pids.current", &v) && v)
		keel_jw_ku64(w, "current", v);
	if (read_u64(pids, "pids.max", &v) && v && v != UINT64_MAX) /* "max": 0, left out as runc does */
		keel_jw_ku64(w, "limit", v);
	keel_jw_obj_end(w);
}

/* ---- OOM notifications ---- */

int keel_cgroup_oom_open(const struct keel_cgroup *cg, struct keel_cgroup_oom *o, struct keel_err *err)
{
	const char *mem = dir_of(cg, "memory");
	char path[4096], text[64];
	*o = (struct keel_cgroup_oom){.fd = -1, .ctl_fd = -1, .v2 = cg->mode == KEEL_CGROUP_V2};
	if (!mem)
		return keel_err_set(err, -ENOENT, "the container has no memory cgroup");
	if (o->v2) {
		snprintf(o->path, sizeof(o->path), "%s/memory.events", mem);
		o->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		if (o->fd < 0)
			return keel_err_errno(err, -errno, "inotify_init1");
		if (inotify_add_watch(o->fd, o->path, IN_MODIFY) < 0) {
			int e = keel_err_errno(err, -errno, "watching %s", o->path);
			keel_cgroup_oom_close(o);
			return e;
		}
		if (read_text(mem, "memory.events", text, sizeof(text)) > 0)
			keyed_u64(text, "oom_kill", &o->count);
		return 0;
	}
	snprintf(o->path, sizeof(o->path), "%s/memory.oom_control", mem);
	o->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	o->ctl_fd = open(o->path, O_RDONLY | O_CLOEXEC);
	if (o->fd < 0 || o->ctl_fd < 0) {
		int e = keel_err_errno(err, -errno, "opening %s", o->path);
		keel_cgroup_oom_close(o);
		return e;
	}
	snprintf(path, sizeof(path), "%s/cgroup.event_control", mem);
	snprintf(text, sizeof(text), "%d %d", o->fd, o->ctl_fd);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t w = fd >= 0 ? write(fd, text, strlen(text)) : -1;
	int e = errno;
	if (fd >= 0)
		close(fd);
	if (w < 0) {
		keel_cgroup_oom_close(o);
		return keel_err_errno(err, -e, "writing %s", path);
	}
	return 0;
}

int keel_cgroup_oom_read(struct keel_cgroup_oom *o)
{
	if (o->fd < 0)
		return -EBADF;
	if (o->v2) {
		char ev[4096], text[512];
		while (read(o->fd, ev, sizeof(ev)) > 0)
			;
		char *slash = strrchr(o->path, '/');
		*slash = 0;
		ssize_t n = read_text(o->path, "memory.events", text, sizeof(text));
		*slash = '/';
		uint64_t v;
		if (n < 0)
			return -ENOENT;
		if (!keyed_u64(text, "oom_kill", &v) || v <= o->count)
			return 0;
		int k = (int)(v - o->count);
		o->count = v;
		return k;
	}
	uint64_t v = 0;
	if (read(o->fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
		return errno == EAGAIN ? 0 : -errno;
	/* The eventfd is also signalled when the cgroup goes away. */
	if (access(o->path, F_OK) < 0)
		return -ENOENT;
	return v > INT32_MAX ? INT32_MAX : (int)v;
}

void keel_cgroup_oom_close(struct keel_cgroup_oom *o)
{
	if (o->fd >= 0)
		close(o->fd);
	if (o->ctl_fd >= 0)
		close(o->ctl_fd);
	o->fd = o->ctl_fd = -1;
}
