/* state.json under the runtime root, container directories and their locks. */
#include "run/state.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/json.h"
#include "base/jw.h"
#include "base/mem.h"
#include "base/str.h"
#include "base/sys.h"

const char *keel_cstatus_name(enum keel_cstatus s)
{
	switch (s) {
	case KEEL_CSTATUS_CREATING: return "creating";
	case KEEL_CSTATUS_CREATED: return "created";
	case KEEL_CSTATUS_RUNNING: return "running";
	case KEEL_CSTATUS_PAUSED: return "paused";
	default: return "stopped";
	}
}

void keel_cstate_free(struct keel_cstate *st)
{
	if (!st)
		return;
	keel_free(st->id);
	keel_free(st->bundle);
	keel_free(st->rootfs);
	keel_free(st->annotations);
	keel_free(st->hooks);
	keel_strv_free(st->cgroup_dirs);
	keel_free(st->cgroup_procs);
	keel_strv_free(st->cgroup_names);
	keel_strv_free(st->cgroup_paths);
	memset(st, 0, sizeof(*st));
}

bool keel_cstate_valid_id(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > 1024 || strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '+' || c == '-' || c == '.'))
			return false;
	}
	return true;
}

static int lock_fd(int fd, bool exclusive)
{
	while (flock(fd, exclusive ? LOCK_EX : LOCK_SH) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

int keel_cstate_create_dir(const char *root, const char *id, struct keel_err *err)
{
	if (!keel_cstate_valid_id(id))
		return keel_err_set(err, -EINVAL, "invalid container id \"%s\"", id);
	if (mkdir(root, 0700) < 0 && errno != EEXIST) {
		/* A missing parent (/run/keel-run under a fresh /run/x): make the whole path. */
		char path[4096];
		snprintf(path, sizeof(path), "%s", root);
		for (char *p = path + 1; *p; p++)
			if (*p == '/') {
				*p = 0;
				mkdir(path, 0755);
				*p = '/';
			}
		if (mkdir(root, 0700) < 0 && errno != EEXIST)
			return keel_err_errno(err, -errno, "creating state root %s", root);
	}
	int rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return keel_err_errno(err, -errno, "opening state root %s", root);
	int r = mkdirat(rootfd, id, 0700);
	if (r < 0) {
		r = -errno;
		close(rootfd);
		if (r == -EEXIST)
			return keel_err_set(err, -EEXIST, "container with id exists: %s", id);
		return keel_err_errno(err, r, "creating %s/%s", root, id);
	}
	int fd = openat(rootfd, id, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	r = fd < 0 ? -errno : 0;
	close(rootfd);
	if (fd < 0)
		return keel_err_errno(err, r, "opening %s/%s", root, id);
	if ((r = lock_fd(fd, true)) < 0) {
		close(fd);
		return keel_err_errno(err, r, "locking %s/%s", root, id);
	}
	return fd;
}

int keel_cstate_lock(const char *root, const char *id, bool exclusive, struct keel_err *err)
{
	char path[4096];
	if (!keel_cstate_valid_id(id))
		return keel_err_set(err, -EINVAL, "invalid container id \"%s\"", id);
	snprintf(path, sizeof(path), "%s/%s", root, id);
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return keel_err_set(err, -ENOENT, "container does not exist");
		return keel_err_errno(err, -errno, "opening %s", path);
	}
	int r = lock_fd(fd, exclusive);
	if (r < 0) {
		close(fd);
		return keel_err_errno(err, r, "locking %s", path);
	}
	/* The directory may have been removed by a delete we waited for. */
	struct stat s;
	if (fstat(fd, &s) < 0 || s.st_nlink == 0) {
		close(fd);
		return keel_err_set(err, -ENOENT, "container does not exist");
	}
	return fd;
}

/* Write st as JSON into `name` of the locked directory, atomically (through name.tmp). */
static int save_as(int dirfd, const char *name, const struct keel_cstate *st, struct keel_err *err)
{
	struct keel_buf b = KEEL_BUF_INIT;
	struct keel_jw w;
	char created[KEEL_RFC3339_MAX];
	keel_fmt_rfc3339(st->created_ns, 1, created, sizeof(created));
	keel_jw_init(&w, &b, 0);
	keel_jw_obj_begin(&w);
	keel_jw_kstr(&w, "id", st->id);
	keel_jw_ki64(&w, "pid", st->pid);
	keel_jw_ku64(&w, "pidStart", st->pid_start);
	keel_jw_kstr(&w, "bundle", st->bundle);
	keel_jw_kstr(&w, "rootfs", st->rootfs);
	keel_jw_kstr(&w, "created", created);
	keel_jw_kbool(&w, "ownPidNamespace", st->own_pidns);
	if (st->annotations) {
		keel_jw_key(&w, "annotations");
		keel_jw_raw(&w, st->annotations, strlen(st->annotations));
	}
	if (st->hooks) {
		keel_jw_key(&w, "hooks");
		keel_jw_raw(&w, st->hooks, strlen(st->hooks));
	}
	if (st->cgroup_procs)
		keel_jw_kstr(&w, "cgroupProcs", st->cgroup_procs);
	keel_jw_key(&w, "cgroupDirs");
	keel_jw_arr_begin(&w);
	for (size_t i = 0; st->cgroup_dirs && st->cgroup_dirs[i]; i++)
		keel_jw_str(&w, st->cgroup_dirs[i]);
	keel_jw_arr_end(&w);
	keel_jw_ki64(&w, "cgroupMode", st->cgroup_mode);
	keel_jw_key(&w, "cgroups");
	keel_jw_arr_begin(&w);
	for (size_t i = 0; st->cgroup_names && st->cgroup_names[i] && st->cgroup_paths[i]; i++) {
		keel_jw_arr_begin(&w);
		keel_jw_str(&w, st->cgroup_names[i]);
		keel_jw_str(&w, st->cgroup_paths[i]);
		keel_jw_arr_end(&w);
	}
	keel_jw_arr_end(&w);
	keel_jw_obj_end(&w);
	int r = keel_jw_finish(&w);
	if (r < 0) {
		keel_buf_free(&b);
		return keel_err_set(err, r, "encoding %s", name);
	}
	char tmp[64];
	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		keel_buf_free(&b);
		return keel_err_errno(err, -errno, "writing %s", name);
	}
	r = keel_sys_write_all(fd, b.data, b.len);
	keel_buf_free(&b);
	close(fd);
	if (r == 0 && renameat(dirfd, tmp, dirfd, name) < 0)
		r = -errno;
	if (r < 0)
		return keel_err_errno(err, r, "writing %s", name);
	return 0;
}

int keel_cstate_save(int dirfd, const struct keel_cstate *st, struct keel_err *err)
{
	int r = save_as(dirfd, "state.json", st, err);
	if (r == 0)
		unlinkat(dirfd, "creating.json", 0); /* state.json says all it did */
	return r;
}

int keel_cstate_save_creating(int dirfd, const struct keel_cstate *st, struct keel_err *err)
{
	return save_as(dirfd, "creating.json", st, err);
}

static int dup_str(const json_t *o, const char *key, char **ret)
{
	const json_t *v = json_object_get(o, key);
	if (!json_is_string(v))
		return -KEEL_ECORRUPT;
	*ret = keel_strdup(json_string_value(v));
	return *ret ? 0 : -ENOMEM;
}

static int load_from(int dirfd, const char *file, const char *id, struct keel_cstate *st,
		     struct keel_err *err)
{
	char buf[65536];
	int fd = openat(dirfd, file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return keel_err_set(err, -ENOENT, "container does not exist");
		return keel_err_errno(err, -errno, "reading state of %s", id);
	}
	ssize_t n = keel_sys_pread_all(fd, buf, sizeof(buf), 0);
	close(fd);
	if (n < 0)
		return keel_err_errno(err, (int)n, "reading state of %s", id);
	if ((size_t)n == sizeof(buf))
		return keel_err_set(err, -KEEL_ECORRUPT, "state of %s is too large", id);
	json_t *doc;
	int r = keel_json_parse(buf, (size_t)n, false, &doc, err);
	if (r < 0)
		return keel_err_wrap(err, "state of %s", id);
	memset(st, 0, sizeof(*st));
	json_t *v;
	if ((r = dup_str(doc, "id", &st->id)) < 0 || (r = dup_str(doc, "bundle", &st->bundle)) < 0 ||
	    (r = dup_str(doc, "rootfs", &st->rootfs)) < 0)
		goto bad;
	v = json_object_get(doc, "pid");
	st->pid = json_is_integer(v) ? (pid_t)json_integer_value(v) : 0;
	v = json_object_get(doc, "pidStart");
	st->pid_start = json_is_integer(v) ? (uint64_t)json_integer_value(v) : 0;
	st->own_pidns = json_is_true(json_object_get(doc, "ownPidNamespace"));
	v = json_object_get(doc, "created");
	if (!json_is_string(v) || keel_parse_rfc3339(json_string_value(v), &st->created_ns) < 0)
		st->created_ns = 0;
	if ((v = json_object_get(doc, "annotations")) && json_is_object(v) &&
	    !(st->annotations = json_dumps(v, JSON_COMPACT))) {
		r = -ENOMEM;
		goto bad;
	}
	if ((v = json_object_get(doc, "hooks")) && json_is_object(v) &&
	    !(st->hooks = json_dumps(v, JSON_COMPACT))) {
		r = -ENOMEM;
		goto bad;
	}
	if (json_is_string(json_object_get(doc, "cgroupProcs")) &&
	    (r = dup_str(doc, "cgroupProcs", &st->cgroup_procs)) < 0)
		goto bad;
	size_t i;
	json_array_foreach(json_object_get(doc, "cgroupDirs"), i, v) {
		if (json_is_string(v) && (r = keel_strv_push(&st->cgroup_dirs, json_string_value(v))) < 0)
			goto bad;
	}
	v = json_object_get(doc, "cgroupMode");
	st->cgroup_mode = json_is_integer(v) ? (int)json_integer_value(v) : 0;
	json_array_foreach(json_object_get(doc, "cgroups"), i, v) {
		json_t *name = json_array_get(v, 0), *path = json_array_get(v, 1);
		if (!json_is_string(name) || !json_is_string(path))
			continue;
		if ((r = keel_strv_push(&st->cgroup_names, json_string_value(name))) < 0 ||
		    (r = keel_strv_push(&st->cgroup_paths, json_string_value(path))) < 0)
			goto bad;
	}
	json_decref(doc);
	return 0;
bad:
	json_decref(doc);
	keel_cstate_free(st);
	if (r == -ENOMEM)
		return keel_err_set(err, r, "out of memory");
	return keel_err_set(err, -KEEL_ECORRUPT, "state of %s is damaged", id);
}

int keel_cstate_load(int dirfd, const char *id, struct keel_cstate *st, struct keel_err *err)
{
	return load_from(dirfd, "state.json", id, st, err);
}

int keel_cstate_load_creating(int dirfd, const char *id, struct keel_cstate *st,
			      struct keel_err *err)
{
	return load_from(dirfd, "creating.json", id, st, err);
}

/* jansson's json_dumps allocates with its allocator: free what it gave with free() unless the
 * allocator was routed to keel_malloc, which is malloc-compatible anyway. */

uint64_t keel_pid_start_time(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	/* The command name is in parentheses and may hold anything: start after the last ')'. */
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return 0;
	p += 2;
	char state = *p;
	if (state == 'Z' || state == 'X')
		return 0;
	/* Field 3 is the state; the start time is field 22. */
	for (int field = 3; field < 22 && p; field++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	if (!p)
		return 0;
	return strtoull(p, NULL, 10);
}

bool keel_pid_alive(pid_t pid, uint64_t start)
{
	if (pid <= 0)
		return false;
	uint64_t now = keel_pid_start_time(pid);
	return now != 0 && (start == 0 || now == start);
}

enum keel_cstatus keel_cstate_status(int dirfd, const struct keel_cstate *st)
{
	if (!keel_pid_alive(st->pid, st->pid_start))
		return KEEL_CSTATUS_STOPPED;
	if (faccessat(dirfd, "exec.fifo", F_OK, AT_SYMLINK_NOFOLLOW) == 0)
		return KEEL_CSTATUS_CREATED;
	if (keel_cstate_frozen(st))
		return KEEL_CSTATUS_PAUSED;
	return KEEL_CSTATUS_RUNNING;
}

const char *keel_cstate_cgroup(const struct keel_cstate *st, const char *name)
{
	for (size_t i = 0; st->cgroup_names && st->cgroup_names[i] && st->cgroup_paths[i]; i++)
		if (strcmp(st->cgroup_names[i], name) == 0)
			return st->cgroup_paths[i];
	return NULL;
}

bool keel_cstate_frozen(const struct keel_cstate *st)
{
	char path[4200], buf[64];
	const char *dir = keel_cstate_cgroup(st, "freezer");
	bool v1 = dir != NULL;
	if (!dir && !(dir = keel_cstate_cgroup(st, "")))
		return false;
	snprintf(path, sizeof(path), "%s/%s", dir, v1 ? "freezer.state" : "cgroup.freeze");
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	return v1 ? strncmp(buf, "THAWED", 6) != 0 : buf[0] == '1';
}

int keel_cstate_json(const struct keel_cstate *st, enum keel_cstatus status, bool indent,
		     struct keel_buf *out)
{
	char created[KEEL_RFC3339_MAX];
	const char *nl = indent ? "\n  " : "";
	const char *sp = indent ? " " : "";
	int r = 0;
	keel_fmt_rfc3339(st->created_ns, 1, created, sizeof(created));
	/* Go prints all nine digits of the fraction in runc's state; keep the trimmed form Go's
	 * RFC3339Nano gives, which every client parses alike. */
	struct {
		const char *key;
		const char *str;
		long long num;
	} fields[] = {
		{"ociVersion", "1.0.2", 0},
		{"id", st->id, 0},
		{"pid", NULL, status == KEEL_CSTATUS_STOPPED ? 0 : st->pid},
		{"status", keel_cstatus_name(status), 0},
		{"bundle", st->bundle, 0},
		{"rootfs", st->rootfs, 0},
		{"created", created, 0},
		{"owner", "", 0},
	};
	r |= keel_buf_putc(out, '{');
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(fields); i++) {
		r |= keel_buf_printf(out, "%s%s\"%s\":%s", i ? "," : "", nl, fields[i].key, sp);
		if (fields[i].str) {
			r |= keel_buf_putc(out, '"');
			r |= keel_json_escape(out, fields[i].str, strlen(fields[i].str), 0);
			r |= keel_buf_putc(out, '"');
		} else {
			r |= keel_buf_printf(out, "%lld", fields[i].num);
		}
	}
	if (st->annotations && strcmp(st->annotations, "{}") != 0) {
		r |= keel_buf_printf(out, ",%s\"annotations\":%s", nl, sp);
		r |= keel_buf_puts(out, st->annotations);
	}
	r |= keel_buf_puts(out, indent ? "\n}" : "}");
	return r ? -ENOMEM : 0;
}

int keel_cstate_remove_dir(const char *root, const char *id, int dirfd, struct keel_err *err)
{
	static const char *const files[] = {"state.json", "state.json.tmp", "creating.json",
					    "creating.json.tmp", "exec.fifo", NULL};
	for (size_t i = 0; files[i]; i++)
		if (unlinkat(dirfd, files[i], 0) < 0 && errno != ENOENT)
			return keel_err_errno(err, -errno, "removing %s/%s/%s", root, id, files[i]);
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", root, id);
	if (rmdir(path) < 0 && errno != ENOENT)
		return keel_err_errno(err, -errno, "removing %s", path);
	return 0;
}
