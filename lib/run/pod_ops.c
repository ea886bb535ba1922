/* Operations on existing pods: list, status, stop, rm (and the destroy that a failed run uses
 * too), logs, enter. Each takes the pod directory's lock; apps are lib/run containers under the
 * pod's run/ root, so their state comes from lib/run. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <grp.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/json.h"
#include "base/jw.h"
#include "base/mem.h"
#include "base/str.h"
#include "image/image.h"
#include "run/cgroup.h"
#include "run/container-internal.h"
#include "run/container.h"
#include "run/pod-internal.h"
#include "run/state.h"

extern char **environ;

int keel__pod_mkroot(const char *root, struct keel_err *err)
{
	char buf[PATH_MAX];
	snprintf(buf, sizeof(buf), "%s", root);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return keel_err_errno(err, -errno, "creating %s", buf);
		*p = '/';
	}
	/* Searchable, not listable: a --user-ns pod's root must get through to its app's root. */
	if (mkdir(buf, 0711) < 0 && errno != EEXIST)
		return keel_err_errno(err, -errno, "creating %s", buf);
	return 0;
}

int keel__pod_lock_dir(const char *dir, bool exclusive, struct keel_err *err)
{
	char path[PATH_MAX + 8];
	snprintf(path, sizeof(path), "%s/lock", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return keel_err_errno(err, -errno, "opening %s", path);
	while (flock(fd, exclusive ? LOCK_EX : LOCK_SH) < 0) {
		if (errno != EINTR) {
			int r = -errno;
			close(fd);
			return keel_err_errno(err, r, "locking %s", path);
		}
	}
	return fd;
}

int keel__pod_cgroup_lock(struct keel_err *err)
{
	/* One lock for the machine, not one per --root: the /keel-pod parent is shared by the pods
	 * of every root, and a pod of one root must not see it removed between its mkdirs by the
	 * last pod of another. */
	static const char path[] = "/run/lock/keel-pod-cgroup.lock";
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 && errno == ENOENT && mkdir("/run/lock", 01777) == 0) /* FHS; Debian has it */
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return keel_err_errno(err, -errno, "opening %s", path);
	while (flock(fd, LOCK_EX) < 0)
		if (errno != EINTR) {
			int r = -errno;
			close(fd);
			return keel_err_errno(err, r, "locking %s", path);
		}
	return fd;
}

static int pod_dir(const char *root, const char *name, char *out, size_t size, struct keel_err *err)
{
	if (!keel_pod_valid_name(name))
		return keel_err_set(err, -EINVAL, "invalid pod name \"%s\"", name ? name : "");
	snprintf(out, size, "%s/%s", root ? root : KEEL_POD_DEFAULT_ROOT, name);
	struct stat st;
	if (stat(out, &st) < 0)
		return errno == ENOENT ? keel_err_set(err, -ENOENT, "pod %s does not exist", name)
				       : keel_err_errno(err, -errno, "%s", out);
	return 0;
}

static int load_pod_json(const char *dir, json_t **ret, struct keel_err *err)
{
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/pod.json", dir);
	return keel_json_load_file(path, ret, err);
}

/* The apps named in pod.json, in order. */
static int pod_apps(json_t *doc, char ***ret)
{
	json_t *apps = json_object_get(doc, "apps"), *a;
	size_t i;
	char **v = NULL;
	json_array_foreach(apps, i, a)
	{
		const char *n = json_string_value(json_object_get(a, "name"));
		if (n && keel_pod_valid_name(n) && keel_strv_push(&v, n) < 0) {
			keel_strv_free(v);
			return -ENOMEM;
		}
	}
	*ret = v;
	return 0;
}

struct app_state {
	char status[16];
	pid_t pid;
	int exit_code; /* -1 unknown */
};

static void read_app_state(const char *dir, const char *app, struct app_state *s)
{
	char run[PATH_MAX + 8], path[PATH_MAX + 96], buf[32] = "";
	snprintf(run, sizeof(run), "%s/run", dir);
	snprintf(s->status, sizeof(s->status), "exited");
	s->pid = 0;
	s->exit_code = -1;
	struct keel_buf b = KEEL_BUF_INIT;
	struct keel_err e;
	if (keel_container_state(run, app, &b, &e) == 0) {
		json_t *j = json_loads(b.data, 0, NULL);
		const char *st = json_string_value(json_object_get(j, "status"));
		if (st && strcmp(st, "stopped") != 0) {
			snprintf(s->status, sizeof(s->status), "%s", st);
			s->pid = (pid_t)json_integer_value(json_object_get(j, "pid"));
		}
		json_decref(j);
	} else {
		snprintf(s->status, sizeof(s->status), "%s", e.code == -ENOENT ? "exited" : "unknown");
	}
	keel_buf_free(&b);
	snprintf(path, sizeof(path), "%s/apps/%s/exit", dir, app);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n > 0)
			s->exit_code = atoi(buf);
	}
}

/* One pod as JSON into w (the lock held by the caller). */
static int pod_json(const char *dir, struct keel_jw *w, struct keel_err *err)
{
	json_t *doc;
	int r = load_pod_json(dir, &doc, err);
	if (r < 0)
		return r;
	char created[64] = "";
	json_int_t cns = json_integer_value(json_object_get(doc, "created"));
	if (cns <= 0 || keel_fmt_rfc3339(cns, 9, created, sizeof(created)) == 0)
		snprintf(created, sizeof(created), "0001-01-01T00:00:00Z");
	keel_jw_obj_begin(w);
	keel_jw_key(w, "name");
	keel_jw_str(w, json_string_value(json_object_get(doc, "name")));
	keel_jw_key(w, "hostname");
	keel_jw_str(w, json_string_value(json_object_get(doc, "hostname")));
	keel_jw_key(w, "net");
	keel_jw_str(w, json_string_value(json_object_get(doc, "net")));
	const char *ip = json_string_value(json_object_get(doc, "ip"));
	if (ip) {
		keel_jw_key(w, "ip");
		keel_jw_str(w, ip);
	}
	json_t *ports = json_object_get(doc, "ports"), *pt;
	size_t k;
	if (json_array_size(ports)) {
		keel_jw_key(w, "ports"); /* "8080:80/tcp", as given to --publish */
		keel_jw_arr_begin(w);
		json_array_foreach(ports, k, pt) {
			char text[32];
			snprintf(text, sizeof(text), "%lld:%lld/%s", (long long)json_integer_value(json_object_get(pt, "host")),
				 (long long)json_integer_value(json_object_get(pt, "pod")),
				 json_string_value(json_object_get(pt, "proto")) ? json_string_value(json_object_get(pt, "proto"))
										  : "tcp");
			keel_jw_str(w, text);
		}
		keel_jw_arr_end(w);
	}
	keel_jw_key(w, "created");
	keel_jw_str(w, created);
	bool any_running = false;
	json_t *apps = json_object_get(doc, "apps"), *a;
	size_t i;
	keel_jw_key(w, "apps");
	keel_jw_arr_begin(w);
	json_array_foreach(apps, i, a)
	{
		const char *n = json_string_value(json_object_get(a, "name"));
		if (!n || !keel_pod_valid_name(n))
			continue;
		struct app_state s;
		read_app_state(dir, n, &s);
		any_running |= strcmp(s.status, "exited") != 0;
		keel_jw_obj_begin(w);
		keel_jw_key(w, "name");
		keel_jw_str(w, n);
		keel_jw_key(w, "image");
		keel_jw_str(w, json_string_value(json_object_get(a, "image")));
		keel_jw_key(w, "image_id");
		const char *id = json_string_value(json_object_get(a, "image_id"));
		if (id)
			keel_jw_str(w, id);
		else
			keel_jw_null(w);
		keel_jw_key(w, "status");
		keel_jw_str(w, s.status);
		keel_jw_key(w, "pid");
		keel_jw_i64(w, s.pid);
		keel_jw_key(w, "exit_code");
		if (s.exit_code >= 0)
			keel_jw_i64(w, s.exit_code);
		else
			keel_jw_null(w);
		keel_jw_obj_end(w);
	}
	keel_jw_arr_end(w);
	char mon[PATH_MAX + 16];
	snprintf(mon, sizeof(mon), "%s/monitor", dir);
	keel_jw_key(w, "status");
	keel_jw_str(w, any_running ? "running" : access(mon, F_OK) == 0 ? "exited" : "creating");
	keel_jw_obj_end(w);
	json_decref(doc);
	return 0;
}

static int finish_jw(struct keel_jw *w, struct keel_err *err)
{
	int r = keel_jw_finish(w);
	return r < 0 ? keel_err_set(err, r, "out of memory") : 0;
}

int keel_pod_status_json(const char *root, const char *name, struct keel_buf *out, struct keel_err *err)
{
	char dir[PATH_MAX];
	int r = pod_dir(root, name, dir, sizeof(dir), err);
	if (r < 0)
		return r;
	int lock = keel__pod_lock_dir(dir, false, err);
	if (lock < 0)
		return lock;
	struct keel_jw w;
	keel_jw_init(&w, out, 0);
	r = pod_json(dir, &w, err);
	close(lock);
	return r < 0 ? r : finish_jw(&w, err);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int keel_pod_list_json(const char *root, struct keel_buf *out, struct keel_err *err)
{
	root = root ? root : KEEL_POD_DEFAULT_ROOT;
	char **names = NULL;
	DIR *d = opendir(root);
	if (!d && errno != ENOENT)
		return keel_err_errno(err, -errno, "opening %s", root);
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (keel_pod_valid_name(e->d_name) && keel_strv_push(&names, e->d_name) < 0) {
			closedir(d);
			keel_strv_free(names);
			return keel_err_set(err, -ENOMEM, "out of memory");
		}
	if (d)
		closedir(d);
	if (names)
		qsort(names, keel_strv_len(names), sizeof(*names), cmp_str);
	struct keel_jw w;
	keel_jw_init(&w, out, 0);
	keel_jw_arr_begin(&w);
	for (size_t i = 0; names && names[i]; i++) {
		char dir[PATH_MAX];
		snprintf(dir, sizeof(dir), "%s/%s", root, names[i]);
		struct keel_err ignored;
		int lock = keel__pod_lock_dir(dir, false, &ignored);
		if (lock < 0)
			continue;
		pod_json(dir, &w, &ignored); /* a pod being removed is skipped */
		close(lock);
	}
	keel_jw_arr_end(&w);
	keel_strv_free(names);
	return finish_jw(&w, err);
}

/* ---- stop ---- */

static int pidfd_open_(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* Wait up to timeout_ms until every pid (0 entries skipped) has exited; true when all did. */
static bool wait_pids(const pid_t *pids, size_t n, int timeout_ms)
{
	int64_t deadline = keel_mono_ns() + (int64_t)timeout_ms * 1000000;
	for (size_t i = 0; i < n; i++) {
		if (pids[i] <= 0)
			continue;
		int fd = pidfd_open_(pids[i]);
		if (fd < 0)
			continue;
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int r;
		do {
			int64_t left = (deadline - keel_mono_ns()) / 1000000;
			r = poll(&p, 1, left > 0 ? (int)left : 0);
		} while (r < 0 && errno == EINTR);
		close(fd);
		if (r == 0)
			return false;
	}
	return true;
}

static pid_t monitor_pid(const char *dir)
{
	char path[PATH_MAX + 16], buf[64] = "";
	snprintf(path, sizeof(path), "%s/monitor", dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	int pid = 0;
	unsigned long long start = 0;
	if (n <= 0 || sscanf(buf, "%d %llu", &pid, &start) != 2 || !keel_pid_alive(pid, start))
		return 0;
	return pid;
}

/* Signal every running app; then wait for them (and the monitor, which records their exit). */
static void stop_apps(const char *dir, char **apps, int timeout_s)
{
	char run[PATH_MAX + 8];
	snprintf(run, sizeof(run), "%s/run", dir);
	size_t n = keel_strv_len(apps);
	pid_t *pids = keel_calloc(n ? n : 1, sizeof(*pids));
	if (!pids)
		return;
	for (size_t i = 0; i < n; i++) {
		struct app_state s;
		read_app_state(dir, apps[i], &s);
		pids[i] = s.pid;
		if (s.pid > 0 && timeout_s > 0)
			keel_container_kill(run, apps[i], SIGTERM, false, NULL);
	}
	if (timeout_s <= 0 || !wait_pids(pids, n, timeout_s * 1000)) {
		for (size_t i = 0; i < n; i++)
			if (pids[i] > 0)
				keel_container_kill(run, apps[i], SIGKILL, true, NULL);
		wait_pids(pids, n, 10000);
	}
	keel_free(pids);
	pid_t mon = monitor_pid(dir);
	if (mon > 0)
		wait_pids(&mon, 1, 10000);
}

int keel_pod_stop(const char *root, const char *name, int timeout_s, struct keel_err *err)
{
	char dir[PATH_MAX];
	int r = pod_dir(root, name, dir, sizeof(dir), err);
	if (r < 0)
		return r;
	int lock = keel__pod_lock_dir(dir, true, err);
	if (lock < 0)
		return lock;
	json_t *doc = NULL;
	char **apps = NULL;
	if ((r = load_pod_json(dir, &doc, err)) == 0 && (r = pod_apps(doc, &apps)) < 0)
		keel_err_set(err, r, "out of memory");
	if (r == 0)
		stop_apps(dir, apps, timeout_s);
	keel_strv_free(apps);
	json_decref(doc);
	close(lock);
	return r;
}

/* ---- rm ---- */

int keel__pod_destroy(const char *root, const char *image_root, const char *name, struct keel_err *err)
{
	char dir[PATH_MAX], path[PATH_MAX + 128], run[PATH_MAX + 8];
	int r = pod_dir(root, name, dir, sizeof(dir), err);
	if (r < 0)
		return r;
	int lock = keel__pod_lock_dir(dir, true, err);
	if (lock < 0)
		return lock;
	snprintf(run, sizeof(run), "%s/run", dir);
	int first = 0;
	/* Apps: from the directory, so that a half-made pod goes too. */
	char **apps = NULL;
	snprintf(path, sizeof(path), "%s/apps", dir);
	DIR *d = opendir(path);
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (keel_pod_valid_name(e->d_name) && keel_strv_push(&apps, e->d_name) < 0)
			first = first ? first : keel_err_set(err, -ENOMEM, "out of memory");
	if (d)
		closedir(d);
	stop_apps(dir, apps, 0);
	struct keel_image_store *store = NULL;
	struct keel_err e2;
	if (apps && keel_image_store_open(image_root, &store, &e2) < 0 && !first)
		first = keel_err_set(err, e2.code, "%s", keel_err_msg(&e2));
	for (size_t i = 0; apps && apps[i]; i++) {
		int q = keel_container_delete(run, apps[i], true, &e2);
		if (q < 0 && q != -ENOENT && !first)
			first = keel_err_set(err, q, "app %s: %s", apps[i], keel_err_msg(&e2));
		snprintf(path, sizeof(path), "%s/apps/%s/rootfs", dir, apps[i]);
		if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT && !first)
			first = keel_err_errno(err, -errno, "unmounting %s", path);
		char holder[KEEL_POD_NAME_MAX * 2 + 8];
		snprintf(holder, sizeof(holder), "pod.%s.%s", name, apps[i]);
		if (store && (q = keel_image_release(store, holder, &e2)) < 0 && q != -ENOENT && !first)
			first = keel_err_set(err, q, "releasing the image of app %s: %s", apps[i], keel_err_msg(&e2));
	}
	keel_image_store_free(store);
	keel_strv_free(apps);
	pid_t mon = monitor_pid(dir);
	if (mon > 0 && !wait_pids(&mon, 1, 10000))
		kill(mon, SIGKILL);
	for (int k = 0; k <= POD_SHARED_NS; k++) {
		snprintf(path, sizeof(path), "%s/ns/%s", dir, k < POD_SHARED_NS ? keel__pod_ns_names[k] : "user");
		if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT && !first)
			first = keel_err_errno(err, -errno, "unmounting %s", path);
	}
	json_t *doc = NULL;
	struct keel_err ignored;
	if (load_pod_json(dir, &doc, &ignored) == 0) {
		json_t *cg = json_object_get(doc, "cgroups"), *c;
		size_t i;
		char **dirs = NULL;
		json_array_foreach(cg, i, c)
			if (json_string_value(c) && keel_strv_push(&dirs, json_string_value(c)) < 0)
				break;
		if (dirs && (r = keel_cgroup_remove_dirs(dirs, &e2)) < 0 && !first)
			first = keel_err_set(err, r, "%s", keel_err_msg(&e2));
		/* The shared /keel-pod parent goes with the last pod, whichever pod made it; pods
		 * create their cgroups under the same lock, so none is between mkdirs now. */
		int cglock = keel__pod_cgroup_lock(&ignored);
		for (size_t k = 0; cglock >= 0 && dirs && dirs[k]; k++) {
			char parent[PATH_MAX];
			snprintf(parent, sizeof(parent), "%s", dirs[k]);
			char *slash = strrchr(parent, '/');
			if (slash && strcmp(slash + 1, name) == 0) {
				*slash = 0;
				if (keel_endswith(parent, "/" POD_CGROUP_PARENT))
					rmdir(parent); /* EBUSY while other pods exist */
			}
		}
		if (cglock >= 0)
			close(cglock);
		keel_strv_free(dirs);
		json_decref(doc);
	}
	/* The veth and the address (after the namespace files: nothing else holds the netns). */
	if ((r = keel__pod_net_teardown(root ? root : KEEL_POD_DEFAULT_ROOT, name, &e2)) < 0 && !first)
		first = keel_err_set(err, r, "%s", keel_err_msg(&e2));
	if ((r = keel__pod_userns_free(root ? root : KEEL_POD_DEFAULT_ROOT, name, &e2)) < 0 && !first)
		first = keel_err_set(err, r, "%s", keel_err_msg(&e2));
	if ((r = keel__pod_rmtree(dir)) < 0 && !first)
		first = keel_err_errno(err, r, "removing %s", dir);
	close(lock);
	return first;
}

int keel_pod_rm(const char *root, const char *image_root, const char *name, bool force, struct keel_err *err)
{
	char dir[PATH_MAX];
	int r = pod_dir(root, name, dir, sizeof(dir), err);
	if (r < 0)
		return r;
	if (!force) {
		int lock = keel__pod_lock_dir(dir, true, err);
		if (lock < 0)
			return lock;
		json_t *doc = NULL;
		char **apps = NULL;
		if ((r = load_pod_json(dir, &doc, err)) == 0 && (r = pod_apps(doc, &apps)) < 0)
			keel_err_set(err, r, "out of memory");
		for (size_t i = 0; r == 0 && apps && apps[i]; i++) {
			struct app_state s;
			read_app_state(dir, apps[i], &s);
			if (strcmp(s.status, "exited") != 0)
				r = keel_err_set(err, -EBUSY, "pod %s is running (app %s): stop it first or use "
						 "--force", name, apps[i]);
		}
		keel_strv_free(apps);
		json_decref(doc);
		close(lock);
		if (r < 0)
			return r;
	}
	return keel__pod_destroy(root, image_root, name, err);
}

/* ---- logs ---- */

int keel_pod_app_names(const char *root, const char *name, char ***ret, struct keel_err *err)
{
	char dir[PATH_MAX];
	int r = pod_dir(root, name, dir, sizeof(dir), err);
	if (r < 0)
		return r;
	json_t *doc;
	if ((r = load_pod_json(dir, &doc, err)) < 0)
		return r;
	r = pod_apps(doc, ret);
	json_decref(doc);
	return r < 0 ? keel_err_set(err, r, "out of memory") : 0;
}

int keel_pod_log_path(const char *root, const char *name, const char *app, char *out, size_t size,
		      struct keel_err *err)
{
	char **apps = NULL;
	int r = keel_pod_app_names(root, name, &apps, err);
	if (r < 0)
		return r;
	bool found = keel_strv_contains(apps, app);
	keel_strv_free(apps);
	if (!found)
		return keel_err_set(err, -ENOENT, "pod %s has no app %s", name, app);
	snprintf(out, size, "%s/%s/apps/%s/log", root ? root : KEEL_POD_DEFAULT_ROOT, name, app);
	return 0;
}

/* ---- enter ---- */

/* In the entered process: the app's user, capabilities, no_new_privs and seccomp filter, as
 * lib/run's init applies them. Returns only on failure (after printing why). */
static void enter_exec(const struct keel_spec *s, char *const *argv)
{
	struct keel_err err;
	keel_err_clear(&err);
	const uint64_t *caps = s->process.caps;
	for (int cap = 0; cap < 64 && s->process.has_caps; cap++)
		if (!(caps[0] & (1ull << cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL) {
			keel_err_errno(&err, -errno, "dropping capability %d", cap);
			goto fail;
		}
	if (s->process.has_caps && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) {
		keel_err_errno(&err, -errno, "PR_SET_KEEPCAPS");
		goto fail;
	}
	if (setgroups(s->process.n_gids, (const gid_t *)s->process.gids) < 0 ||
	    setresgid(s->process.gid, s->process.gid, s->process.gid) < 0 ||
	    setresuid(s->process.uid, s->process.uid, s->process.uid) < 0) {
		keel_err_errno(&err, -errno, "switching to uid %u gid %u", s->process.uid, s->process.gid);
		goto fail;
	}
	if (s->process.has_caps) {
		struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
		struct __user_cap_data_struct data[2];
		for (int i = 0; i < 2; i++) {
			data[i].effective = (uint32_t)(caps[1] >> (32 * i));
			data[i].inheritable = (uint32_t)(caps[2] >> (32 * i));
			data[i].permitted = (uint32_t)(caps[3] >> (32 * i));
		}
		if (syscall(SYS_capset, &hdr, data) < 0) {
			keel_err_errno(&err, -errno, "capset");
			goto fail;
		}
	}
	if (s->process.no_new_privileges && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		keel_err_errno(&err, -errno, "no_new_privs");
		goto fail;
	}
	environ = (char **)s->process.env;
	if (s->seccomp && keel__seccomp_load(s->seccomp, &err) < 0)
		goto fail;
	execvp(argv[0], argv);
	keel_err_errno(&err, -errno, "exec %s", argv[0]);
fail:
	fprintf(stderr, "pod enter: %s\n", keel_err_msg(&err));
}

int keel_pod_enter(const char *root, const char *name, const char *app, char *const *argv, int *ret_status,
		   struct keel_err *err)
{
	char dir[PATH_MAX], run[PATH_MAX + 8], cfg[PATH_MAX + 96];
	char **apps = NULL;
	int r = keel_pod_app_names(root, name, &apps, err);
	if (r < 0)
		return r;
	if (!argv || !argv[0]) {
		keel_strv_free(apps);
		return keel_err_set(err, -EINVAL, "pod enter needs a command");
	}
	char app_buf[KEEL_POD_NAME_MAX + 1];
	snprintf(app_buf, sizeof(app_buf), "%s", app ? app : apps && apps[0] ? apps[0] : "");
	app = app_buf;
	if (!keel_strv_contains(apps, app)) {
		r = keel_err_set(err, -ENOENT, "pod %s has no app %s", name, app);
		keel_strv_free(apps);
		return r;
	}
	snprintf(dir, sizeof(dir), "%s/%s", root ? root : KEEL_POD_DEFAULT_ROOT, name);
	snprintf(run, sizeof(run), "%s/run", dir);
	snprintf(cfg, sizeof(cfg), "%s/apps/%s/config.json", dir, app);
	struct keel_cstate st;
	struct keel_spec *spec = NULL;
	int pidfd = -1;
	int dirfd = keel_cstate_lock(run, app, false, err);
	if (dirfd < 0) {
		keel_strv_free(apps);
		return dirfd == -ENOENT ? keel_err_set(err, -ENOENT, "app %s of pod %s is not running", app, name)
					: dirfd;
	}
	r = keel_cstate_load(dirfd, app, &st, err);
	keel_strv_free(apps);
	if (r < 0) {
		close(dirfd);
		return r;
	}
	if (keel_cstate_status(dirfd, &st) != KEEL_CSTATUS_RUNNING) {
		r = keel_err_set(err, -ESRCH, "app %s of pod %s is not running", app, name);
		goto out;
	}
	if ((r = keel_spec_load(cfg, &spec, err)) < 0)
		goto out;
	if ((pidfd = pidfd_open_(st.pid)) < 0 || !keel_pid_alive(st.pid, st.pid_start)) {
		r = keel_err_set(err, -ESRCH, "app %s of pod %s is not running", app, name);
		goto out;
	}
	int ns = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET;
	if ((spec->ns_new | spec->ns_join) & (1u << KEEL_NS_USER))
		ns |= CLONE_NEWUSER;
	pid_t child = fork();
	if (child < 0) {
		r = keel_err_errno(err, -errno, "fork");
		goto out;
	}
	if (child == 0) {
		/* The cgroup first (its procs file is a host path), then every namespace at once. */
		int fd = st.cgroup_procs ? open(st.cgroup_procs, O_WRONLY | O_CLOEXEC) : -1;
		if (fd >= 0) {
			char pid[24];
			int n = snprintf(pid, sizeof(pid), "%d", (int)getpid());
			ssize_t w = write(fd, pid, (size_t)n);
			(void)w;
			close(fd);
		}
		if (setns(pidfd, ns) < 0) {
			fprintf(stderr, "pod enter: joining app %s's namespaces: %s\n", app, strerror(errno));
			_exit(126);
		}
		if (chdir(spec->process.cwd ? spec->process.cwd : "/") < 0 && chdir("/") < 0)
			_exit(126);
		/* The pid namespace takes effect for children. */
		pid_t g = fork();
		if (g == 0) {
			enter_exec(spec, argv);
			_exit(127);
		}
		int status = 0;
		while (g > 0 && waitpid(g, &status, 0) < 0 && errno == EINTR)
			;
		_exit(g < 0 ? 126 : WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	}
	int status = 0;
	while (waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	*ret_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	r = 0;
out:
	if (pidfd >= 0)
		close(pidfd);
	keel_spec_free(spec);
	keel_cstate_free(&st);
	close(dirfd);
	return r;
}
