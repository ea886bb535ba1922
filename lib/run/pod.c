/* `pod run` and `pod rm`: a pod's state directory, its shared namespaces (made by a short-lived
 * child and kept as bind-mounted nsfs files), its cgroup, one overlayfs root and bundle per app,
 * and the monitor: a detached process that creates and starts the apps through lib/run (so it
 * is their parent), records each app's exit status and exits with the last of them. Removal
 * works from what is on disk, so it also cleans up after a run that failed half way. */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/json.h"
#include "base/mem.h"
#include "base/sys.h"
#include "base/str.h"
#include "image/image.h"
#include "run/cgroup.h"
#include "run/container.h"
#include "run/pod-internal.h"
#include "run/state.h"

bool keel_pod_valid_name(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n > KEEL_POD_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || (c != '-' && c != '_')))
			return false;
	}
	return true;
}

int keel__pod_rmtree(const char *path)
{
	return keel_sys_rmtree(path);
}

/* ---- reading files inside an app's rootfs (never following links out of it) ---- */

struct open_how_compat {
	uint64_t flags, mode, resolve;
};

static int open_in_rootfs(const char *rootfs, const char *path)
{
	int rfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rfd < 0)
		return -errno;
	struct open_how_compat how = {.flags = O_RDONLY | O_CLOEXEC, .resolve = 0x10 /* IN_ROOT */};
	int fd = (int)syscall(SYS_openat2, rfd, path, &how, sizeof(how));
	int e = errno;
	close(rfd);
	return fd < 0 ? -e : fd;
}

/* Find a line of an /etc/passwd-style file whose field `key_field` is key; fields into f. */
static bool find_entry(const char *rootfs, const char *file, const char *key, int key_field, char *line,
		       size_t size, char *f[7])
{
	int fd = open_in_rootfs(rootfs, file);
	if (fd < 0)
		return false;
	FILE *fp = fdopen(fd, "r");
	if (!fp) {
		close(fd);
		return false;
	}
	bool found = false;
	while (!found && fgets(line, (int)size, fp)) {
		line[strcspn(line, "\n")] = 0;
		int n = 0;
		char *p = line;
		for (; n < 7; n++) {
			f[n] = p;
			char *c = p ? strchr(p, ':') : NULL;
			if (c)
				*c = 0;
			p = c ? c + 1 : NULL;
		}
		found = f[key_field] && strcmp(f[key_field], key) == 0;
	}
	fclose(fp);
	return found;
}

static bool parse_id(const char *s, uint32_t *ret)
{
	uint64_t v;
	if (keel_parse_u64(s, &v) < 0 || v > UINT32_MAX - 1)
		return false;
	*ret = (uint32_t)v;
	return true;
}

/* "user[:group]" with names looked up in the rootfs' /etc/passwd and /etc/group. */
static int resolve_user(const char *rootfs, const char *spec, uint32_t *uid, uint32_t *gid, struct keel_err *err)
{
	char user[256], line[1024], *f[7];
	const char *colon = strchr(spec, ':');
	snprintf(user, sizeof(user), "%.*s", (int)(colon ? (size_t)(colon - spec) : strlen(spec)), spec);
	bool have_gid = false;
	*uid = *gid = 0;
	if (parse_id(user, uid)) {
		if (find_entry(rootfs, "/etc/passwd", user, 2, line, sizeof(line), f) && f[3])
			have_gid = parse_id(f[3], gid);
	} else if (find_entry(rootfs, "/etc/passwd", user, 0, line, sizeof(line), f) && f[2] &&
		   parse_id(f[2], uid)) {
		have_gid = f[3] && parse_id(f[3], gid);
	} else {
		return keel_err_set(err, -ENOENT, "user %s: no such user in the image's /etc/passwd", user);
	}
	if (colon) {
		const char *g = colon + 1;
		if (!parse_id(g, gid)) {
			if (!find_entry(rootfs, "/etc/group", g, 0, line, sizeof(line), f) || !f[2] ||
			    !parse_id(f[2], gid))
				return keel_err_set(err, -ENOENT, "group %s: no such group in the image's /etc/group", g);
		}
	} else if (!have_gid) {
		*gid = 0;
	}
	return 0;
}

/* ---- the app's process from image config + overrides ---- */

static int env_set(char ***env, const char *kv)
{
	const char *eq = strchr(kv, '=');
	size_t klen = eq ? (size_t)(eq - kv) : strlen(kv);
	for (size_t i = 0; *env && (*env)[i]; i++) {
		if (strncmp((*env)[i], kv, klen) == 0 && (*env)[i][klen] == '=') {
			char *c = keel_strdup(kv);
			if (!c)
				return -ENOMEM;
			keel_free((*env)[i]);
			(*env)[i] = c;
			return 0;
		}
	}
	return keel_strv_push(env, kv);
}

static int resolve_process(const char *rootfs, const struct keel_image_config *ic, const char *image,
			   struct keel__pod_app *a, struct keel_err *err)
{
	const struct keel_pod_app *in = a->in;
	int r = 0;
	if (in->exec) {
		for (size_t i = 0; r == 0 && in->exec[i]; i++)
			r = keel_strv_push(&a->args, in->exec[i]);
	} else {
		for (size_t i = 0; r == 0 && ic->entrypoint && ic->entrypoint[i]; i++)
			r = keel_strv_push(&a->args, ic->entrypoint[i]);
		for (size_t i = 0; r == 0 && ic->cmd && ic->cmd[i]; i++)
			r = keel_strv_push(&a->args, ic->cmd[i]);
	}
	if (r < 0)
		return keel_err_set(err, -ENOMEM, "out of memory");
	if (!a->args || !a->args[0])
		return keel_err_set(err, -EINVAL, "app %s: image %s has no Entrypoint or Cmd; give a command "
				    "with --exec", a->name, image);
	bool has_path = false;
	for (size_t i = 0; r == 0 && ic->env && ic->env[i]; i++)
		r = env_set(&a->env, ic->env[i]);
	for (size_t i = 0; r == 0 && in->env && in->env[i]; i++)
		r = env_set(&a->env, in->env[i]);
	for (size_t i = 0; a->env && a->env[i]; i++)
		has_path |= keel_startswith(a->env[i], "PATH=") != NULL;
	if (r == 0 && !has_path)
		r = keel_strv_push(&a->env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	if (r == 0 && !a->env)
		r = -ENOMEM;
	const char *wd = in->workdir ? in->workdir : ic->working_dir && *ic->working_dir ? ic->working_dir : "/";
	char cwd[PATH_MAX];
	snprintf(cwd, sizeof(cwd), "%s%s", wd[0] == '/' ? "" : "/", wd);
	if (r < 0 || !(a->cwd = keel_strdup(cwd)))
		return keel_err_set(err, -ENOMEM, "out of memory");
	const char *user = in->user ? in->user : ic->user && *ic->user ? ic->user : "0";
	if ((r = resolve_user(rootfs, user, &a->uid, &a->gid, err)) < 0)
		return keel_err_wrap(err, "app %s", a->name);
	a->memory = in->memory;
	return 0;
}

/* ---- namespaces ---- */

static int loopback_up(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct ifreq ifr = {0};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	int r = ioctl(fd, SIOCGIFFLAGS, &ifr);
	if (r == 0) {
		ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
		r = ioctl(fd, SIOCSIFFLAGS, &ifr);
	}
	r = r < 0 ? -errno : 0;
	close(fd);
	return r;
}

static int write_idmaps(pid_t pid, uint32_t base, struct keel_err *err)
{
	static const char *const files[] = {"gid_map", "uid_map"};
	char path[64], map[64];
	int n = snprintf(map, sizeof(map), "0 %u %u\n", base, KEEL_POD_USERNS_SIZE);
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(files); i++) {
		snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, files[i]);
		int fd = open(path, O_WRONLY | O_CLOEXEC);
		int r = fd < 0 || write(fd, map, (size_t)n) != n ? -errno : 0;
		if (fd >= 0)
			close(fd);
		if (r < 0)
			return keel_err_errno(err, r, "writing %s", path);
	}
	return 0;
}

/* A child makes the pod's namespaces (with --user-ns a user namespace first, which then owns the
 * others) and sets them up; we pin each on a file under ns/ from /proc/<child>/ns (mounting
 * needs the host's root, which a child inside a user namespace is not). Messages from the
 * child: "U" (user namespace made, waiting for its maps), "K" (done) or "E<why>". */
static int make_namespaces(const struct keel__pod_ctx *p, const char *hostname, struct keel_err *err)
{
	static const char *const all[] = {"net", "ipc", "uts", "user"};
	char path[PATH_MAX + 32];
	bool userns = p->o->user_ns;
	snprintf(path, sizeof(path), "%s/ns", p->dir);
	if (mkdir(path, 0700) < 0)
		return keel_err_errno(err, -errno, "creating %s", path);
	for (size_t k = 0; k < KEEL_ARRAY_SIZE(all); k++) {
		if ((k == 0 && !p->has_netns) || (k == 3 && !userns))
			continue;
		snprintf(path, sizeof(path), "%s/ns/%s", p->dir, all[k]);
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0400);
		if (fd < 0)
			return keel_err_errno(err, -errno, "creating %s", path);
		close(fd);
	}
	int up[2], down[2];
	if (pipe2(up, O_CLOEXEC) < 0)
		return keel_err_errno(err, -errno, "pipe");
	if (pipe2(down, O_CLOEXEC) < 0) {
		close(up[0]);
		close(up[1]);
		return keel_err_errno(err, -errno, "pipe");
	}
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(up[0]);
		close(up[1]);
		close(down[0]);
		close(down[1]);
		return keel_err_errno(err, -e, "fork");
	}
	if (pid == 0) {
		struct keel_err e;
		char b;
		keel_err_clear(&e);
		close(up[0]);
		close(down[1]);
		int flags = CLONE_NEWIPC | CLONE_NEWUTS | (p->has_netns ? CLONE_NEWNET : 0);
		if (userns) {
			if (unshare(CLONE_NEWUSER) < 0)
				keel_err_errno(&e, -errno, "unshare(CLONE_NEWUSER)");
			else if (write(up[1], "U", 1) != 1 || read(down[0], &b, 1) != 1)
				_exit(1);
		}
		if (e.code)
			;
		else if (unshare(flags) < 0)
			keel_err_errno(&e, -errno, "unshare");
		else if (sethostname(hostname, strlen(hostname)) < 0)
			keel_err_errno(&e, -errno, "sethostname(%s)", hostname);
		else if (p->has_netns && loopback_up() < 0)
			keel_err_errno(&e, -errno, "bringing lo up");
		char msg[KEEL_ERR_MSG_SIZE + 1];
		int n = snprintf(msg, sizeof(msg), "%s%s", e.code ? "E" : "K", e.code ? keel_err_msg(&e) : "");
		if (write(up[1], msg, (size_t)n) != n)
			_exit(1);
		/* Stay until the namespaces are pinned (the parent closes its end). */
		while (read(down[0], &b, 1) > 0)
			;
		_exit(0);
	}
	close(up[1]);
	close(down[0]);
	char msg[KEEL_ERR_MSG_SIZE + 1] = "";
	ssize_t n = read(up[0], msg, sizeof(msg) - 1);
	int r = 0;
	if (userns && n == 1 && msg[0] == 'U') {
		if ((r = write_idmaps(pid, p->uid_base, err)) == 0 && write(down[1], "G", 1) != 1)
			r = keel_err_errno(err, -errno, "making the pod's namespaces");
		n = r ? 0 : read(up[0], msg, sizeof(msg) - 1);
	}
	if (!r) {
		msg[n > 0 ? n : 0] = 0;
		if (n <= 0)
			r = keel_err_set(err, -KEEL_EBASE, "making the pod's namespaces: the helper process died");
		else if (msg[0] != 'K')
			r = keel_err_set(err, -KEEL_EBASE, "making the pod's namespaces: %s", msg + 1);
	}
	for (size_t k = 0; !r && k < KEEL_ARRAY_SIZE(all); k++) {
		if ((k == 0 && !p->has_netns) || (k == 3 && !userns))
			continue;
		char src[64];
		snprintf(src, sizeof(src), "/proc/%d/ns/%s", (int)pid, all[k]);
		snprintf(path, sizeof(path), "%s/ns/%s", p->dir, all[k]);
		if (mount(src, path, NULL, MS_BIND, NULL) < 0)
			r = keel_err_errno(err, -errno, "bind-mounting %s on %s", src, path);
	}
	close(down[1]);
	close(up[0]);
	if (r)
		kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	return r;
}

/* ---- the pod's cgroup ---- */

static int make_pod_cgroup(const struct keel__pod_ctx *p, char ***ret_dirs, struct keel_err *err)
{
	const struct keel_pod_opts *o = p->o;
	char cgpath[256];
	snprintf(cgpath, sizeof(cgpath), "/%s/%s", POD_CGROUP_PARENT, p->name);
	json_t *res = json_object();
	if (o->memory > 0)
		json_object_set_new(res, "memory", json_pack("{s:I, s:I}", "limit", (json_int_t)o->memory, "swap",
							     (json_int_t)o->memory));
	if (o->cpu_millis > 0)
		json_object_set_new(res, "cpu", json_pack("{s:I, s:I}", "quota", (json_int_t)(o->cpu_millis * 100),
							  "period", (json_int_t)100000));
	json_t *doc = json_pack("{s:s, s:{s:s}, s:{s:[{s:s}], s:s, s:o}}", "ociVersion", "1.0.2", "root", "path",
				"/", "linux", "namespaces", "type", "mount", "cgroupsPath", cgpath, "resources", res);
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	if (!text)
		return keel_err_set(err, -ENOMEM, "out of memory");
	struct keel_spec *spec = NULL;
	int r = keel_spec_parse(text, strlen(text), &spec, err);
	free(text);
	if (r < 0)
		return keel_err_wrap(err, "the pod's resources");
	struct keel_cgroup cg;
	r = keel_cgroup_create(&cg, spec, p->name, err);
	keel_spec_free(spec);
	if (r < 0)
		return keel_err_wrap(err, "the pod's cgroup");
	r = keel_cgroup_dirs(&cg, ret_dirs);
	if (r < 0) {
		char **dirs = NULL;
		if (keel_cgroup_dirs(&cg, &dirs) == 0)
			keel_cgroup_remove_dirs(dirs, NULL);
		keel_strv_free(dirs);
		keel_err_set(err, r, "out of memory");
	}
	keel_cgroup_free(&cg);
	return r;
}

/* ---- one app's root and bundle ---- */

static int prepare_app(const struct keel__pod_ctx *p, struct keel_image_store *store, struct keel__pod_app *a,
		       size_t index, struct keel_err *err)
{
	const char *ref = a->in->image;
	char holder[KEEL_POD_NAME_MAX * 2 + 8], id[KEEL_DIGEST_MAX], dir[PATH_MAX], path[PATH_MAX + 32];
	snprintf(holder, sizeof(holder), "pod.%s.%s", p->name, a->name);
	int r = keel_image_hold(store, ref, holder, id, err);
	if (r < 0)
		return r == -ENOENT ? keel_err_set(err, -ENOENT, "app %s: unknown image %s", a->name, ref)
				    : keel_err_wrap(err, "app %s: image %s", a->name, ref);
	struct keel_image *img = NULL;
	struct keel_image_config *ic = NULL;
	char **layers = NULL, *lower = NULL, *opts = NULL;
	if ((r = keel_image_lookup(store, id, &img, err)) < 0 ||
	    (r = keel_image_read_config(store, img, &ic, err)) < 0 ||
	    (r = keel_image_layer_dirs(store, img, &layers, err)) < 0) {
		keel_err_wrap(err, "app %s: image %s", a->name, ref);
		goto out;
	}
	if (!(a->image_id = keel_strdup(id))) {
		r = keel_err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	snprintf(dir, sizeof(dir), "%s/apps/%s", p->dir, a->name);
	static const char *const sub[] = {"", "/upper", "/work", "/rootfs", "/empty"};
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(sub); i++) {
		snprintf(path, sizeof(path), "%s%s", dir, sub[i]);
		if (mkdir(path, i == 2 ? 0700 : 0755) < 0) {
			r = keel_err_errno(err, -errno, "creating %s", path);
			goto out;
		}
	}
	/* An image without layers still gets a root: an empty lower directory. */
	if (!layers[0]) {
		snprintf(path, sizeof(path), "%s/empty", dir);
		if ((r = keel_strv_push(&layers, path)) < 0) {
			r = keel_err_set(err, r, "out of memory");
			goto out;
		}
	}
	if ((r = keel_image_lowerdir(layers, &lower)) < 0) {
		keel_err_set(err, r, "app %s: layer paths unusable for overlayfs", a->name);
		goto out;
	}
	size_t olen = strlen(lower) + 2 * strlen(dir) + 64;
	if (!(opts = keel_malloc(olen))) {
		r = keel_err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	/* Always an upper layer: one-layer images could not be mounted otherwise, and apps write. */
	snprintf(opts, olen, "lowerdir=%s,upperdir=%s/upper,workdir=%s/work", lower, dir, dir);
	snprintf(path, sizeof(path), "%s/rootfs", dir);
	if (p->o->user_ns) {
		/* The pod's root owns what its apps write; the layers stay as unpacked, seen
		 * through id-mapped mounts. */
		char upper[PATH_MAX + 16], work[PATH_MAX + 16], ns[PATH_MAX + 16], tmp[PATH_MAX + 16];
		snprintf(tmp, sizeof(tmp), "%s/layers", dir);
		snprintf(upper, sizeof(upper), "%s/upper", dir);
		snprintf(work, sizeof(work), "%s/work", dir);
		snprintf(ns, sizeof(ns), "%s/ns/user", p->dir);
		if (chown(upper, p->uid_base, p->uid_base) < 0 || chown(work, p->uid_base, p->uid_base) < 0) {
			r = keel_err_errno(err, -errno, "app %s: chown of %s", a->name, upper);
			goto out;
		}
		int nsfd = open(ns, O_RDONLY | O_CLOEXEC);
		if (nsfd < 0) {
			r = keel_err_errno(err, -errno, "opening %s", ns);
			goto out;
		}
		r = keel__pod_idmapped_overlay(layers, upper, work, tmp, path, nsfd, err);
		close(nsfd);
		if (r < 0) {
			keel_err_wrap(err, "app %s", a->name);
			goto out;
		}
	} else if (mount("overlay", path, "overlay", 0, opts) < 0) {
		r = keel_err_errno(err, -errno, "app %s: mounting the overlay root", a->name);
		goto out;
	}
	if ((r = resolve_process(path, ic, ref, a, err)) < 0)
		goto out;
	(void)index;
	json_t *cfg = NULL;
	if ((r = keel__pod_app_config(p, a, &cfg, err)) < 0)
		goto out;
	snprintf(path, sizeof(path), "%s/config.json", dir);
	if (json_dump_file(cfg, path, JSON_INDENT(1)) < 0)
		r = keel_err_errno(err, -EIO, "writing %s", path);
	json_decref(cfg);
out:
	keel_free(opts);
	keel_free(lower);
	keel_strv_free(layers);
	keel_image_config_free(ic);
	keel_image_free(img);
	return r;
}

/* ---- the monitor ---- */

static void write_small(const char *path, const char *text)
{
	char tmp[PATH_MAX + 8];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	ssize_t w = write(fd, text, strlen(text));
	close(fd);
	if (w == (ssize_t)strlen(text))
		rename(tmp, path);
	else
		unlink(tmp);
}

/* The app's init pid from its state, whatever its status: one that exited at once is still
 * our child to reap. */
static pid_t app_pid(const char *run_root, const char *app)
{
	struct keel_err e;
	struct keel_cstate st;
	pid_t pid = 0;
	int dirfd = keel_cstate_lock(run_root, app, false, &e);
	if (dirfd < 0)
		return 0;
	if (keel_cstate_load(dirfd, app, &st, &e) == 0) {
		pid = st.pid;
		keel_cstate_free(&st);
	}
	close(dirfd);
	return pid;
}

/* An app's stdout and stderr: a pipe the monitor copies into apps/<app>/log, which is renamed
 * to log.1 (replacing the one before) whenever the next bytes would take it past max bytes. */
struct app_log {
	int in, out;
	uint64_t size, max;
	char path[PATH_MAX + 64];
};

static void log_open(struct app_log *l, bool truncate)
{
	l->out = open(l->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (truncate ? O_TRUNC : 0), 0640);
	struct stat st;
	l->size = l->out >= 0 && fstat(l->out, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static void log_write(struct app_log *l, const char *buf, size_t n)
{
	while (n > 0) {
		if (l->size >= l->max) {
			char old[sizeof(l->path) + 4];
			snprintf(old, sizeof(old), "%s.1", l->path);
			if (l->out >= 0)
				close(l->out);
			rename(l->path, old);
			log_open(l, true);
		}
		size_t k = n < l->max - l->size ? n : (size_t)(l->max - l->size);
		ssize_t w = l->out >= 0 ? write(l->out, buf, k) : (ssize_t)k; /* no log: dropped */
		if (w <= 0)
			w = (ssize_t)k;
		l->size += (uint64_t)w;
		buf += w;
		n -= (size_t)w;
	}
}

/* Read what is there; false at end of file (every writer gone). */
static bool log_pump(struct app_log *l)
{
	char buf[65536];
	ssize_t n = read(l->in, buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return true;
	if (n <= 0)
		return false;
	log_write(l, buf, (size_t)n);
	return true;
}

/* Runs in the forked monitor; reports "" (all started) or an error message on fd 3. */
KEEL_NORETURN static void monitor_main(const struct keel__pod_ctx *p, struct keel__pod_app *apps, size_t n)
{
	char run_root[PATH_MAX + 8], path[PATH_MAX + 64];
	struct keel_err err;
	keel_err_clear(&err);
	setsid();
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	snprintf(run_root, sizeof(run_root), "%s/run", p->dir);
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	size_t created = 0;
	pid_t *pids = calloc(n, sizeof(*pids));
	int *pidfds = calloc(n, sizeof(*pidfds));
	struct app_log *logs = calloc(n, sizeof(*logs));
	struct pollfd *pfds = calloc(2 * n, sizeof(*pfds));
	if (!pids || !pidfds || !logs || !pfds)
		keel_err_set(&err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n && !err.code; i++, created++) {
		char bundle[PATH_MAX + 16];
		struct app_log *l = &logs[i];
		int pipefd[2];
		snprintf(bundle, sizeof(bundle), "%s/apps/%s", p->dir, apps[i].name);
		snprintf(l->path, sizeof(l->path), "%s/log", bundle);
		l->max = p->o->log_max_size ? p->o->log_max_size : KEEL_POD_LOG_MAX_DEFAULT;
		log_open(l, false);
		if (l->out < 0 || pipe2(pipefd, O_CLOEXEC) < 0) {
			keel_err_errno(&err, -errno, "creating %s", l->path);
			l->in = -1;
			break;
		}
		l->in = pipefd[0];
		dup2(devnull, 0);
		dup2(pipefd[1], 1);
		dup2(pipefd[1], 2);
		close(pipefd[1]);
		struct keel_run_opts ro = {.root = run_root, .id = apps[i].name, .bundle = bundle};
		if (keel_container_create(&ro, &err) < 0)
			keel_err_wrap(&err, "app %s", apps[i].name);
	}
	dup2(devnull, 1);
	dup2(devnull, 2);
	for (size_t i = 0; i < n && !err.code; i++) {
		if (keel_container_start(run_root, apps[i].name, &err) < 0)
			keel_err_wrap(&err, "starting app %s", apps[i].name);
		pids[i] = app_pid(run_root, apps[i].name);
		pidfds[i] = pids[i] > 0 ? (int)syscall(SYS_pidfd_open, pids[i], 0) : -1;
		if (pidfds[i] < 0 && !err.code)
			keel_err_errno(&err, -errno, "pidfd_open of app %s", apps[i].name);
	}
	if (err.code) {
		for (size_t i = 0; i < created; i++)
			keel_container_delete(run_root, apps[i].name, true, NULL);
		ssize_t w = write(3, keel_err_msg(&err), strlen(keel_err_msg(&err)));
		(void)w;
		_exit(1);
	}
	snprintf(path, sizeof(path), "%s/monitor", p->dir);
	char text[64];
	snprintf(text, sizeof(text), "%d %llu\n", (int)getpid(), (unsigned long long)keel_pid_start_time(getpid()));
	write_small(path, text);
	close(3);
	/* Until every app has exited and every log pipe has reached its end (the app's pid
	 * namespace dies with its init, so that follows soon; 5 s at most once all have exited). */
	size_t left = n, open_logs = n;
	int64_t drain_until = 0;
	while (left > 0 || open_logs > 0) {
		nfds_t k = 0;
		for (size_t i = 0; i < n; i++) {
			if (pidfds[i] >= 0)
				pfds[k++] = (struct pollfd){.fd = pidfds[i], .events = POLLIN};
			if (logs[i].in >= 0)
				pfds[k++] = (struct pollfd){.fd = logs[i].in, .events = POLLIN};
		}
		int timeout = -1;
		if (left == 0) {
			int64_t now = keel_mono_ns();
			if (!drain_until)
				drain_until = now + 5000000000LL;
			if (now >= drain_until)
				break;
			timeout = (int)((drain_until - now) / 1000000) + 1;
		}
		if (poll(pfds, k, timeout) < 0 && errno != EINTR)
			break;
		for (size_t i = 0; i < n; i++) {
			if (logs[i].in >= 0) {
				struct pollfd q = {.fd = logs[i].in, .events = POLLIN};
				if (poll(&q, 1, 0) > 0 && !log_pump(&logs[i])) {
					close(logs[i].in);
					logs[i].in = -1;
					open_logs--;
				}
			}
			if (pidfds[i] < 0)
				continue;
			struct pollfd q = {.fd = pidfds[i], .events = POLLIN};
			int status;
			if (poll(&q, 1, 0) <= 0 || waitpid(pids[i], &status, WNOHANG) != pids[i])
				continue;
			int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
			snprintf(path, sizeof(path), "%s/apps/%s/exit", p->dir, apps[i].name);
			snprintf(text, sizeof(text), "%d\n", code);
			write_small(path, text);
			close(pidfds[i]);
			pidfds[i] = -1;
			left--;
		}
	}
	_exit(0);
}

/* ---- run ---- */

static int save_pod_json(const struct keel__pod_ctx *p, const char *hostname, struct keel__pod_app *apps,
			 size_t n, char **cg_dirs, struct keel_err *err)
{
	const struct keel_pod_opts *o = p->o;
	static const char *const nets[] = {"none", "host", "bridge"};
	json_t *japps = json_array(), *jcg = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(japps, json_pack("{s:s, s:s, s:s?}", "name", apps[i].name, "image",
						       apps[i].in->image, "image_id", apps[i].image_id));
	for (size_t i = 0; cg_dirs && cg_dirs[i]; i++)
		json_array_append_new(jcg, json_string(cg_dirs[i]));
	json_t *doc = json_pack("{s:s, s:s, s:s, s:I, s:o, s:o}", "name", p->name, "hostname", hostname, "net",
				nets[o->net], "created", (json_int_t)keel_wall_ns(), "apps", japps, "cgroups", jcg);
	if (doc && o->user_ns && p->uid_base)
		json_object_set_new(doc, "userns", json_pack("{s:I, s:I}", "base", (json_int_t)p->uid_base, "size",
							     (json_int_t)KEEL_POD_USERNS_SIZE));
	if (doc && p->ip[0])
		json_object_update_new(doc, json_pack("{s:s, s:s, s:s}", "ip", p->ip, "veth", p->veth, "bridge",
						      p->bridge));
	if (doc && o->n_ports) {
		json_t *jp = json_array();
		for (size_t i = 0; i < o->n_ports; i++)
			json_array_append_new(jp, json_pack("{s:i, s:i, s:s}", "host", o->ports[i].host, "pod",
							    o->ports[i].pod, "proto", o->ports[i].udp ? "udp" : "tcp"));
		json_object_set_new(doc, "ports", jp);
	}
	char path[PATH_MAX + 16], tmp[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/pod.json", p->dir);
	snprintf(tmp, sizeof(tmp), "%s/pod.json.tmp", p->dir);
	int r = 0;
	if (!doc || json_dump_file(doc, tmp, JSON_INDENT(1)) < 0 || rename(tmp, path) < 0)
		r = keel_err_errno(err, errno ? -errno : -ENOMEM, "writing %s", path);
	json_decref(doc);
	return r;
}

static void free_apps(struct keel__pod_app *apps, size_t n)
{
	for (size_t i = 0; apps && i < n; i++) {
		keel_free(apps[i].image_id);
		keel_strv_free(apps[i].args);
		keel_strv_free(apps[i].env);
		keel_free(apps[i].cwd);
		keel_free(apps[i].gids);
	}
	keel_free(apps);
}

static void default_app_name(const char *ref, size_t index, char *out, size_t size)
{
	const char *slash = strrchr(ref, '/');
	const char *base = slash ? slash + 1 : ref;
	size_t len = strcspn(base, ":@");
	snprintf(out, size, "%.*s", (int)len, base);
	if (keel_startswith(ref, "sha256:") || !keel_pod_valid_name(out))
		snprintf(out, size, "app%zu", index + 1);
}

static int check_opts(const struct keel_pod_opts *o, struct keel__pod_app *apps, struct keel_err *err)
{
	if (o->n_apps == 0)
		return keel_err_set(err, -EINVAL, "a pod needs at least one app (an image)");
	if (o->user_ns && o->net == KEEL_POD_NET_HOST)
		return keel_err_set(err, -EINVAL, "--user-ns cannot be used with --net host (the host's "
				    "network namespace does not belong to the pod's user namespace)");
	if (o->user_ns_base && (uint64_t)o->user_ns_base + KEEL_POD_USERNS_SIZE > UINT32_MAX)
		return keel_err_set(err, -EINVAL, "--user-ns-base %u leaves no room for %u ids", o->user_ns_base,
				    KEEL_POD_USERNS_SIZE);
	int r = keel__pod_net_check(o, err);
	if (r < 0 || (r = keel__pod_ports_check(o, err)) < 0)
		return r;
	if (o->name && !keel_pod_valid_name(o->name))
		return keel_err_set(err, -EINVAL, "invalid pod name \"%s\": use letters, digits, - and _ "
				    "(starting with a letter or digit), at most %d", o->name, KEEL_POD_NAME_MAX);
	if (o->hostname && (strlen(o->hostname) == 0 || strlen(o->hostname) > 64))
		return keel_err_set(err, -EINVAL, "invalid hostname \"%s\"", o->hostname);
	for (size_t i = 0; i < o->n_volumes; i++) {
		const struct keel_pod_volume *v = &o->volumes[i];
		struct stat st;
		if (!keel_pod_valid_name(v->name))
			return keel_err_set(err, -EINVAL, "invalid volume name \"%s\"", v->name);
		if (v->host_path[0] != '/')
			return keel_err_set(err, -EINVAL, "volume %s: the host path %s is not absolute", v->name,
					    v->host_path);
		if (stat(v->host_path, &st) < 0)
			return keel_err_errno(err, -errno, "volume %s: %s", v->name, v->host_path);
		for (size_t k = 0; k < i; k++)
			if (strcmp(o->volumes[k].name, v->name) == 0)
				return keel_err_set(err, -EINVAL, "duplicate volume name %s", v->name);
	}
	for (size_t i = 0; i < o->n_apps; i++) {
		struct keel__pod_app *a = &apps[i];
		a->in = &o->apps[i];
		if (a->in->name) {
			if (!keel_pod_valid_name(a->in->name))
				return keel_err_set(err, -EINVAL, "invalid app name \"%s\"", a->in->name);
			snprintf(a->name, sizeof(a->name), "%s", a->in->name);
		} else {
			default_app_name(a->in->image, i, a->name, sizeof(a->name));
		}
		for (size_t k = 0; k < i; k++)
			if (strcmp(apps[k].name, a->name) == 0)
				return keel_err_set(err, -EINVAL, "duplicate app name %s in the pod (name one with "
						    "--name)", a->name);
		for (size_t m = 0; m < a->in->n_mounts; m++) {
			const struct keel_pod_mount *mt = &a->in->mounts[m];
			bool found = false;
			for (size_t v = 0; v < o->n_volumes; v++)
				found |= strcmp(o->volumes[v].name, mt->volume) == 0;
			if (!found)
				return keel_err_set(err, -EINVAL, "app %s: no volume named %s (declare it with "
						    "--volume %s:/host/path)", a->name, mt->volume, mt->volume);
			if (mt->target[0] != '/')
				return keel_err_set(err, -EINVAL, "app %s: mount target %s is not absolute", a->name,
						    mt->target);
		}
	}
	return 0;
}

int keel_pod_run(const struct keel_pod_opts *o, char *ret_name, int *ret_status, struct keel_err *err)
{
	const char *root = o->root ? o->root : KEEL_POD_DEFAULT_ROOT;
	struct keel__pod_ctx p = {.o = o, .has_netns = o->net != KEEL_POD_NET_HOST};
	struct keel__pod_app *apps = keel_calloc(o->n_apps ? o->n_apps : 1, sizeof(*apps));
	struct keel_image_store *store = NULL;
	char **cg_dirs = NULL;
	int r, lock = -1, pfd[2] = {-1, -1};
	bool made = false;
	if (!apps)
		return keel_err_set(err, -ENOMEM, "out of memory");
	if ((r = check_opts(o, apps, err)) < 0)
		goto out;
	if (o->name) {
		snprintf(p.name, sizeof(p.name), "%s", o->name);
	} else {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		snprintf(p.name, sizeof(p.name), "pod-%08lx", (unsigned long)((ts.tv_nsec ^ (getpid() << 12)) & 0xffffffff));
	}
	const char *hostname = o->hostname ? o->hostname : p.name;
	if (strlen(root) > 2900) {
		r = keel_err_set(err, -ENAMETOOLONG, "the pods' root %s is too long", root);
		goto out;
	}
	if ((r = keel__pod_mkroot(root, err)) < 0)
		goto out;
	snprintf(p.dir, sizeof(p.dir), "%s/%s", root, p.name);
	if (mkdir(p.dir, 0700) < 0) {
		r = errno == EEXIST ? keel_err_set(err, -EEXIST, "pod %s already exists", p.name)
				    : keel_err_errno(err, -errno, "creating %s", p.dir);
		goto out;
	}
	made = true;
	if ((r = lock = keel__pod_lock_dir(p.dir, true, err)) < 0)
		goto out;
	/* The apps' init runs as the pod's root, not the host's: it must get through to the app's
	 * root and the pod's etc/ (nothing here can be listed by it). */
	if (o->user_ns &&
	    (chmod(p.dir, 0711) < 0 ||
	     (r = keel__pod_userns_alloc(&p, root, o->user_ns_base, err)) < 0)) {
		if (!r)
			r = keel_err_errno(err, -errno, "chmod %s", p.dir);
		goto out;
	}
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/apps", p.dir);
	if (mkdir(path, 0755) < 0) {
		r = keel_err_errno(err, -errno, "creating %s", path);
		goto out;
	}
	if ((r = save_pod_json(&p, hostname, apps, o->n_apps, NULL, err)) < 0)
		goto out;
	/* The namespaces first: with --user-ns the layers are id-mapped through the user one. */
	if ((r = make_namespaces(&p, hostname, err)) < 0)
		goto out;
	if ((r = keel_image_store_open(o->image_root, &store, err)) < 0)
		goto out;
	for (size_t i = 0; i < o->n_apps; i++)
		if ((r = prepare_app(&p, store, &apps[i], i, err)) < 0)
			goto out;
	int cglock = keel__pod_cgroup_lock(err);
	if (cglock < 0) {
		r = cglock;
		goto out;
	}
	r = make_pod_cgroup(&p, &cg_dirs, err);
	close(cglock);
	if (r < 0)
		goto out;
	if ((r = save_pod_json(&p, hostname, apps, o->n_apps, cg_dirs, err)) < 0)
		goto out;
	if (o->net == KEEL_POD_NET_BRIDGE &&
	    ((r = keel__pod_net_setup(&p, err)) < 0 ||
	     (r = save_pod_json(&p, hostname, apps, o->n_apps, cg_dirs, err)) < 0 ||
	     (r = keel__pod_ports_add(&p, err)) < 0))
		goto out;
	if ((r = keel__pod_etc_files(&p, hostname, err)) < 0)
		goto out;
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		r = keel_err_errno(err, -errno, "pipe");
		goto out;
	}
	keel_image_store_free(store);
	store = NULL;
	pid_t mon = fork();
	if (mon < 0) {
		r = keel_err_errno(err, -errno, "fork");
		goto out;
	}
	if (mon == 0) {
		if (dup2(pfd[1], 3) < 0 || fcntl(3, F_SETFD, FD_CLOEXEC) < 0)
			_exit(1);
		syscall(SYS_close_range, 4, ~0u, 0);
		monitor_main(&p, apps, o->n_apps);
	}
	close(pfd[1]);
	pfd[1] = -1;
	char msg[KEEL_ERR_MSG_SIZE] = "";
	ssize_t n = read(pfd[0], msg, sizeof(msg) - 1);
	if (n > 0) {
		msg[n] = 0;
		waitpid(mon, NULL, 0);
		r = keel_err_set(err, -KEEL_EBASE, "%s", msg);
		goto out;
	}
	r = 0;
	if (ret_name)
		snprintf(ret_name, KEEL_POD_NAME_MAX + 1, "%s", p.name);
	if (ret_status)
		*ret_status = 0;
	/* The pod is made: others may look at it while it runs. */
	close(lock);
	lock = -1;
	if (!o->detach) {
		int st;
		while (waitpid(mon, &st, 0) < 0 && errno == EINTR)
			;
		for (size_t i = 0; ret_status && i < o->n_apps; i++) {
			char f[PATH_MAX + 96], buf[32] = "";
			snprintf(f, sizeof(f), "%s/apps/%s/exit", p.dir, apps[i].name);
			int fd = open(f, O_RDONLY | O_CLOEXEC);
			ssize_t k = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
			if (fd >= 0)
				close(fd);
			int code = k > 0 ? atoi(buf) : 255;
			if (code && !*ret_status)
				*ret_status = code;
		}
	}
out:
	if (pfd[0] >= 0)
		close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
	keel_image_store_free(store);
	keel_strv_free(cg_dirs);
	if (r < 0 && made) {
		if (lock >= 0)
			close(lock);
		lock = -1;
		keel__pod_destroy(root, o->image_root, p.name, NULL);
	}
	if (lock >= 0)
		close(lock);
	free_apps(apps, o->n_apps);
	return r;
}
