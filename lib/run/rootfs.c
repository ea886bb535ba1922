/* The container's root file system, built by its init inside the new mount namespace
 * (runtime-spec config.md "Mounts", config-linux.md "Devices", "Masked/Readonly Paths"):
 * mounts, device nodes and /dev links, pivot_root, then masks and read-only remounts.
 * Destinations are resolved with openat2(RESOLVE_IN_ROOT), so a symlink in an image cannot
 * send a mount outside the rootfs. */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "run/container-internal.h"

static int open_in_root(int rootfd, const char *path, int flags)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	while (*path == '/')
		path++;
	if (!*path)
		path = ".";
	int fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
	return fd < 0 ? -errno : fd;
}

/* An O_PATH fd for `path` below the root, creating missing directories (and the last component as
 * a directory or an empty file). */
static int make_in_root(int rootfd, const char *path, bool dir, struct keel_err *err)
{
	int fd = open_in_root(rootfd, path, O_PATH);
	if (fd >= 0 || fd != -ENOENT) {
		if (fd < 0)
			return keel_err_errno(err, fd, "resolving %s in the rootfs", path);
		return fd;
	}
	char prefix[4096];
	size_t len = strlen(path);
	if (len >= sizeof(prefix))
		return keel_err_set(err, -ENAMETOOLONG, "%s: path too long", path);
	int parent = open_in_root(rootfd, "/", O_PATH | O_DIRECTORY);
	if (parent < 0)
		return keel_err_errno(err, parent, "opening the rootfs");
	for (const char *p = path; *p;) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *e = strchrnul(p, '/');
		const char *rest = e;
		while (*rest == '/')
			rest++;
		bool last = !*rest;
		char comp[256];
		if ((size_t)(e - p) >= sizeof(comp)) {
			close(parent);
			return keel_err_set(err, -ENAMETOOLONG, "%s: name too long", path);
		}
		memcpy(comp, p, (size_t)(e - p));
		comp[e - p] = 0;
		memcpy(prefix, path, (size_t)(e - path));
		prefix[e - path] = 0;
		int next = open_in_root(rootfd, prefix, O_PATH);
		if (next == -ENOENT) {
			int r;
			if (!last || dir) {
				r = mkdirat(parent, comp, 0755) < 0 && errno != EEXIST ? -errno : 0;
			} else {
				int f = openat(parent, comp, O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY | O_CLOEXEC, 0644);
				r = f < 0 && errno != EEXIST ? -errno : 0;
				if (f >= 0)
					close(f);
			}
			if (r < 0) {
				close(parent);
				return keel_err_errno(err, r, "creating %s in the rootfs", prefix);
			}
			next = open_in_root(rootfd, prefix, O_PATH);
		}
		close(parent);
		if (next < 0)
			return keel_err_errno(err, next, "resolving %s in the rootfs", prefix);
		parent = next;
		p = e;
	}
	return parent;
}

static void fd_path(int fd, char *out, size_t size)
{
	snprintf(out, size, "/proc/self/fd/%d", fd);
}

/* Flags a bind remount must keep: in a user namespace the kernel locks nosuid, nodev, noexec,
 * the atime flags and ro on mounts inherited from a more privileged namespace. */
static unsigned long locked_flags(const char *path)
{
	struct statvfs s;
	unsigned long f = 0;
	if (statvfs(path, &s) < 0)
		return 0;
	if (s.f_flag & ST_NOSUID)
		f |= MS_NOSUID;
	if (s.f_flag & ST_NODEV)
		f |= MS_NODEV;
	if (s.f_flag & ST_NOEXEC)
		f |= MS_NOEXEC;
	if (s.f_flag & ST_RDONLY)
		f |= MS_RDONLY;
	if (s.f_flag & ST_NOATIME)
		f |= MS_NOATIME;
	if (s.f_flag & ST_NODIRATIME)
		f |= MS_NODIRATIME;
	if (s.f_flag & ST_RELATIME)
		f |= MS_RELATIME;
	return f;
}

static int bind_remount(const char *target, unsigned long flags, struct keel_err *err)
{
	unsigned long f = MS_BIND | MS_REMOUNT | (flags & ~(MS_REC | MS_BIND | MS_REMOUNT));
	if (mount(NULL, target, NULL, f, NULL) == 0)
		return 0;
	if (errno == EPERM && mount(NULL, target, NULL, f | locked_flags(target), NULL) == 0)
		return 0;
	return keel_err_errno(err, -errno, "remounting %s", target);
}

static int do_bind(struct keel__init *c, int rootfd, const struct keel_spec_mount *m,
		   struct keel_err *err)
{
	char src[4096], target[64];
	struct stat st;
	if (m->source[0] == '/')
		snprintf(src, sizeof(src), "%s", m->source);
	else
		snprintf(src, sizeof(src), "%s/%s", c->bundle, m->source);
	if (stat(src, &st) < 0)
		return keel_err_errno(err, -errno, "bind mount source %s", src);
	int fd = make_in_root(rootfd, m->destination, S_ISDIR(st.st_mode), err);
	if (fd < 0)
		return fd;
	fd_path(fd, target, sizeof(target));
	int r = mount(src, target, NULL, MS_BIND | (m->flags & MS_REC), NULL) < 0 ? -errno : 0;
	close(fd);
	if (r < 0)
		return keel_err_errno(err, r, "bind mounting %s on %s", src, m->destination);
	if (!(m->flags & ~(MS_REC | MS_BIND)) && !m->propagation)
		return 0;
	/* The fd above names the directory under the new mount; look the path up again to get
	 * the mount itself. */
	if ((fd = open_in_root(rootfd, m->destination, O_PATH)) < 0)
		return keel_err_errno(err, fd, "resolving %s", m->destination);
	fd_path(fd, target, sizeof(target));
	r = 0;
	if (m->flags & ~(MS_REC | MS_BIND))
		r = bind_remount(target, m->flags, err);
	if (r == 0 && m->propagation && mount(NULL, target, NULL, m->propagation, NULL) < 0)
		r = keel_err_errno(err, -errno, "setting propagation of %s", m->destination);
	close(fd);
	return r;
}

/* type "cgroup": the container's own cgroup directories, one per hierarchy, under a tmpfs (v1 and
 * hybrid), or cgroup2 itself (v2, in a cgroup namespace) — what runc gives a container. */
static int do_cgroup_mount(struct keel__init *c, int rootfd, const struct keel_spec_mount *m,
			   struct keel_err *err)
{
	char target[64], sub[4096];
	int fd = make_in_root(rootfd, m->destination, true, err);
	if (fd < 0)
		return fd;
	fd_path(fd, target, sizeof(target));
	unsigned long flags = m->flags & ~(MS_REC | MS_BIND);
	int r = 0;
	if (c->cg->mode == KEEL_CGROUP_V2) {
		if (c->new_cgroupns)
			r = mount("cgroup2", target, "cgroup2", flags, NULL) < 0 ? -errno : 0;
		else if ((r = mount(c->cg->dirs[0].path, target, NULL, MS_BIND, NULL) < 0 ? -errno : 0) == 0) {
			close(fd);
			if ((fd = open_in_root(rootfd, m->destination, O_PATH)) < 0)
				return keel_err_errno(err, fd, "resolving %s", m->destination);
			fd_path(fd, target, sizeof(target));
			r = bind_remount(target, flags, err);
		}
		close(fd);
		if (r < 0 && !err->msg[0])
			return keel_err_errno(err, r, "mounting cgroup2 on %s", m->destination);
		return r;
	}
	r = mount("tmpfs", target, "tmpfs", flags & ~MS_RDONLY, "mode=755") < 0 ? -errno : 0;
	close(fd);
	if (r < 0)
		return keel_err_errno(err, r, "mounting a tmpfs for cgroups on %s", m->destination);
	for (unsigned i = 0; i < c->cg->n; i++) {
		snprintf(sub, sizeof(sub), "%s/%s", m->destination, c->cg->dirs[i].name);
		if ((fd = make_in_root(rootfd, sub, true, err)) < 0)
			return fd;
		fd_path(fd, target, sizeof(target));
		r = mount(c->cg->dirs[i].path, target, NULL, MS_BIND, NULL) < 0 ? -errno : 0;
		close(fd);
		if (r < 0)
			return keel_err_errno(err, r, "bind mounting %s", c->cg->dirs[i].path);
		if ((fd = open_in_root(rootfd, sub, O_PATH)) < 0)
			return keel_err_errno(err, fd, "resolving %s", sub);
		fd_path(fd, target, sizeof(target));
		r = bind_remount(target, flags | MS_NOSUID | MS_NODEV | MS_NOEXEC, err);
		close(fd);
		if (r < 0)
			return r;
	}
	if (flags & MS_RDONLY) {
		if ((fd = open_in_root(rootfd, m->destination, O_PATH)) < 0)
			return keel_err_errno(err, fd, "resolving %s", m->destination);
		fd_path(fd, target, sizeof(target));
		r = mount(NULL, target, NULL, MS_REMOUNT | flags, "mode=755") < 0 ? -errno : 0;
		close(fd);
		if (r < 0)
			return keel_err_errno(err, r, "remounting %s read-only", m->destination);
	}
	return 0;
}

static int do_mount(struct keel__init *c, int rootfd, const struct keel_spec_mount *m,
		    struct keel_err *err)
{
	char target[64];
	if (m->bind)
		return do_bind(c, rootfd, m, err);
	if (strcmp(m->type, "cgroup") == 0 || strcmp(m->type, "cgroup2") == 0)
		return do_cgroup_mount(c, rootfd, m, err);
	int fd = make_in_root(rootfd, m->destination, true, err);
	if (fd < 0)
		return fd;
	fd_path(fd, target, sizeof(target));
	unsigned long flags = m->flags & ~MS_REC;
	int r = mount(m->source ? m->source : m->type, target, m->type, flags, m->data) < 0 ? -errno : 0;
	if (r == -EPERM && strcmp(m->type, "sysfs") == 0) {
		/* sysfs belongs to the network namespace: without a new one (or in a user namespace
		 * that does not own it) bind the host's /sys instead, as runc does. */
		r = mount("/sys", target, NULL, MS_BIND | MS_REC, NULL) < 0 ? -errno : 0;
		if (r == 0) {
			close(fd);
			if ((fd = open_in_root(rootfd, m->destination, O_PATH)) < 0)
				return keel_err_errno(err, fd, "resolving %s", m->destination);
			fd_path(fd, target, sizeof(target));
			r = bind_remount(target, flags, err);
			if (r < 0) {
				close(fd);
				return r;
			}
		}
	}
	close(fd);
	if (r < 0)
		return keel_err_errno(err, r, "mounting %s on %s", m->type, m->destination);
	if (m->propagation) {
		if ((fd = open_in_root(rootfd, m->destination, O_PATH)) < 0)
			return keel_err_errno(err, fd, "resolving %s", m->destination);
		fd_path(fd, target, sizeof(target));
		r = mount(NULL, target, NULL, m->propagation, NULL) < 0 ? -errno : 0;
		close(fd);
		if (r < 0)
			return keel_err_errno(err, r, "setting propagation of %s", m->destination);
	}
	if (strcmp(m->type, "devpts") == 0) {
		/* /dev/ptmx must lead to this instance's ptmx (runtime-spec config-linux.md). */
		int dev = make_in_root(rootfd, "/dev", true, err);
		if (dev < 0)
			return dev;
		int d = openat(dev, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		close(dev);
		if (d < 0)
			return keel_err_errno(err, -errno, "opening /dev");
		unlinkat(d, "ptmx", 0);
		r = symlinkat("pts/ptmx", d, "ptmx") < 0 ? -errno : 0;
		close(d);
		if (r < 0)
			return keel_err_errno(err, r, "linking /dev/ptmx");
	}
	return 0;
}

static const struct keel_spec_device default_devices[] = {
	{"/dev/null", 'c', 1, 3, 0666, 0, 0, false, false},
	{"/dev/zero", 'c', 1, 5, 0666, 0, 0, false, false},
	{"/dev/full", 'c', 1, 7, 0666, 0, 0, false, false},
	{"/dev/random", 'c', 1, 8, 0666, 0, 0, false, false},
	{"/dev/urandom", 'c', 1, 9, 0666, 0, 0, false, false},
	{"/dev/tty", 'c', 5, 0, 0666, 0, 0, false, false},
};

static int make_device(struct keel__init *c, int rootfd, const struct keel_spec_device *d,
		       struct keel_err *err)
{
	char dir[4096], target[64];
	const char *slash = strrchr(d->path, '/');
	const char *name = slash + 1;
	snprintf(dir, sizeof(dir), "%.*s", (int)(slash - d->path), d->path);
	int pfd = make_in_root(rootfd, *dir ? dir : "/", true, err);
	if (pfd < 0)
		return pfd;
	int dfd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	close(pfd);
	if (dfd < 0)
		return keel_err_errno(err, -errno, "opening %s", dir);
	int r = 0;
	bool userns = c->spec->ns_new & (1u << KEEL_NS_USER) || c->spec->ns_join & (1u << KEEL_NS_USER);
	if (userns) {
		/* mknod is not allowed in a user namespace: bind the host's node onto a file. */
		int f = openat(dfd, name, O_CREAT | O_NOFOLLOW | O_WRONLY | O_CLOEXEC, 0000);
		if (f < 0 && errno != EEXIST)
			r = keel_err_errno(err, -errno, "creating %s", d->path);
		else {
			if (f >= 0)
				close(f);
			int t = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
			if (t < 0)
				r = keel_err_errno(err, -errno, "opening %s", d->path);
			else {
				fd_path(t, target, sizeof(target));
				if (mount(d->path, target, NULL, MS_BIND, NULL) < 0)
					r = keel_err_errno(err, -errno, "bind mounting %s", d->path);
				close(t);
			}
		}
		close(dfd);
		return r;
	}
	mode_t type = d->type == 'b' ? S_IFBLK : d->type == 'p' ? S_IFIFO : S_IFCHR;
	if (mknodat(dfd, name, type | (d->mode & 07777), makedev(d->major, d->minor)) < 0) {
		if (errno != EEXIST)
			r = keel_err_errno(err, -errno, "creating device %s", d->path);
	} else {
		if (fchmodat(dfd, name, d->mode & 07777, 0) < 0)
			r = keel_err_errno(err, -errno, "chmod %s", d->path);
		if (r == 0 && (d->has_uid || d->has_gid) &&
		    fchownat(dfd, name, d->has_uid ? d->uid : (uid_t)-1, d->has_gid ? d->gid : (gid_t)-1,
			     AT_SYMLINK_NOFOLLOW) < 0)
			r = keel_err_errno(err, -errno, "chown %s", d->path);
	}
	close(dfd);
	return r;
}

static int setup_dev(struct keel__init *c, int rootfd, struct keel_err *err)
{
	const struct keel_spec *s = c->spec;
	int r;
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(default_devices); i++) {
		bool overridden = false;
		for (size_t k = 0; k < s->n_devices; k++)
			overridden |= strcmp(s->devices[k].path, default_devices[i].path) == 0;
		if (!overridden && (r = make_device(c, rootfd, &default_devices[i], err)) < 0)
			return r;
	}
	for (size_t k = 0; k < s->n_devices; k++)
		if ((r = make_device(c, rootfd, &s->devices[k], err)) < 0)
			return r;
	static const char *const links[][2] = {
		{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
		{"/proc/self/fd/2", "stderr"}, {"/proc/kcore", "core"},
	};
	int dev = make_in_root(rootfd, "/dev", true, err);
	if (dev < 0)
		return dev;
	int d = openat(dev, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	close(dev);
	if (d < 0)
		return keel_err_errno(err, -errno, "opening /dev");
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(links); i++)
		if (symlinkat(links[i][0], d, links[i][1]) < 0 && errno != EEXIST) {
			r = keel_err_errno(err, -errno, "linking /dev/%s", links[i][1]);
			close(d);
			return r;
		}
	close(d);
	return 0;
}

int keel__rootfs_prepare(struct keel__init *c, struct keel_err *err)
{
	const struct keel_spec *s = c->spec;
	/* Nothing this namespace mounts may reach the host: make every mount a slave (or what
	 * rootfsPropagation asks for, if private), before touching anything. */
	unsigned long prop = MS_SLAVE | MS_REC;
	if (s->rootfs_propagation & MS_PRIVATE)
		prop = MS_PRIVATE | MS_REC;
	if (mount(NULL, "/", NULL, prop, NULL) < 0)
		return keel_err_errno(err, -errno, "making / a slave mount");
	if (mount(c->rootfs, c->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
		return keel_err_errno(err, -errno, "bind mounting the rootfs %s", c->rootfs);
	int rootfd = open(c->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return keel_err_errno(err, -errno, "opening the rootfs %s", c->rootfs);
	int r = 0;
	for (size_t i = 0; i < s->n_mounts && r == 0; i++) {
		r = do_mount(c, rootfd, &s->mounts[i], err);
		if (r < 0)
			keel_err_wrap(err, "mounts[%zu] (%s)", i, s->mounts[i].destination);
	}
	if (r == 0)
		r = setup_dev(c, rootfd, err);
	close(rootfd);
	return r;
}

int keel__rootfs_pivot(struct keel__init *c, struct keel_err *err)
{
	if (chdir(c->rootfs) < 0)
		return keel_err_errno(err, -errno, "chdir to the rootfs");
	if (c->no_pivot) {
		if (mount(c->rootfs, "/", NULL, MS_MOVE, NULL) < 0)
			return keel_err_errno(err, -errno, "moving the rootfs to /");
		if (chroot(".") < 0)
			return keel_err_errno(err, -errno, "chroot");
	} else {
		/* pivot_root(".", ".") stacks the old root on top of the new one; detaching it
		 * (after making it a slave so that the unmount does not reach the host) leaves
		 * only the new root. No directory for the old root is needed in the image. */
		if (syscall(SYS_pivot_root, ".", ".") < 0)
			return keel_err_errno(err, -errno, "pivot_root");
		if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
			return keel_err_errno(err, -errno, "making the old root a slave");
		if (umount2(".", MNT_DETACH) < 0)
			return keel_err_errno(err, -errno, "detaching the old root");
	}
	if (chdir("/") < 0)
		return keel_err_errno(err, -errno, "chdir /");
	return 0;
}

static int write_sysctl(const char *key, const char *value, struct keel_err *err)
{
	char path[512];
	int n = snprintf(path, sizeof(path), "/proc/sys/%s", key);
	for (char *p = path + 10; p < path + n; p++)
		if (*p == '.')
			*p = '/';
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return keel_err_errno(err, -errno, "sysctl %s", key);
	size_t len = strlen(value);
	ssize_t w = write(fd, value, len);
	int r = w < 0 ? -errno : 0;
	close(fd);
	if (r < 0)
		return keel_err_errno(err, r, "sysctl %s=%s", key, value);
	return 0;
}

int keel__rootfs_finish(struct keel__init *c, struct keel_err *err)
{
	const struct keel_spec *s = c->spec;
	int r;
	for (size_t i = 0; i < s->n_sysctl; i++)
		if ((r = write_sysctl(s->sysctl[i].key, s->sysctl[i].value, err)) < 0)
			return r;
	for (size_t i = 0; s->masked_paths && s->masked_paths[i]; i++) {
		const char *p = s->masked_paths[i];
		struct stat st;
		if (stat(p, &st) < 0) {
			if (errno == ENOENT)
				continue;
			return keel_err_errno(err, -errno, "masking %s", p);
		}
		if (S_ISDIR(st.st_mode))
			r = mount("tmpfs", p, "tmpfs", MS_RDONLY, "size=0") < 0 ? -errno : 0;
		else
			r = mount("/dev/null", p, NULL, MS_BIND, NULL) < 0 ? -errno : 0;
		if (r < 0)
			return keel_err_errno(err, r, "masking %s", p);
	}
	for (size_t i = 0; s->readonly_paths && s->readonly_paths[i]; i++) {
		const char *p = s->readonly_paths[i];
		if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0) {
			if (errno == ENOENT)
				continue;
			return keel_err_errno(err, -errno, "making %s read-only", p);
		}
		if ((r = bind_remount(p, MS_RDONLY, err)) < 0)
			return r;
	}
	if (s->root_readonly && (r = bind_remount("/", MS_RDONLY, err)) < 0)
		return keel_err_wrap(err, "making the root read-only");
	if (s->rootfs_propagation && mount(NULL, "/", NULL, s->rootfs_propagation, NULL) < 0)
		return keel_err_errno(err, -errno, "setting rootfsPropagation");
	return 0;
}
