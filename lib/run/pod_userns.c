/* pod run --user-ns: a range of 65536 host ids per pod (allocated under <root>/.userns), and the
 * apps' overlay roots made of id-mapped image layers, so that the image's root-owned files belong
 * to the pod's root (host uid <base>) without copying or chowning a layer. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "run/pod-internal.h"

#define USERNS_DIR ".userns"

static int userns_dir(const char *root, char *out, size_t size, struct keel_err *err)
{
	snprintf(out, size, "%s/%s", root, USERNS_DIR);
	if (mkdir(out, 0700) < 0 && errno != EEXIST)
		return keel_err_errno(err, -errno, "creating %s", out);
	return 0;
}

static int lock_userns(const char *dir, struct keel_err *err)
{
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/lock", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return keel_err_errno(err, -errno, "opening %s", path);
	if (flock(fd, LOCK_EX) < 0) {
		int r = -errno;
		close(fd);
		return keel_err_errno(err, r, "locking %s", path);
	}
	return fd;
}

int keel__pod_userns_alloc(struct keel__pod_ctx *p, const char *root, uint32_t base, struct keel_err *err)
{
	char dir[PATH_MAX], path[PATH_MAX + 32];
	int r = userns_dir(root, dir, sizeof(dir), err);
	if (r < 0)
		return r;
	int lock = lock_userns(dir, err);
	if (lock < 0)
		return lock;
	/* The lowest free slot: <dir>/<first host id> holds the pod's name. */
	r = keel_err_set(err, -ENOSPC, "no free range of %u user ids from %u", KEEL_POD_USERNS_SIZE, base);
	for (uint64_t id = base; id + KEEL_POD_USERNS_SIZE <= UINT32_MAX; id += KEEL_POD_USERNS_SIZE) {
		snprintf(path, sizeof(path), "%s/%llu", dir, (unsigned long long)id);
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 && errno == EEXIST)
			continue;
		if (fd < 0) {
			r = keel_err_errno(err, -errno, "creating %s", path);
			break;
		}
		char text[KEEL_POD_NAME_MAX + 2];
		int n = snprintf(text, sizeof(text), "%s\n", p->name);
		bool ok = write(fd, text, (size_t)n) == n;
		close(fd);
		if (!ok) {
			r = keel_err_errno(err, -EIO, "writing %s", path);
			unlink(path);
			break;
		}
		p->uid_base = (uint32_t)id;
		keel_err_clear(err);
		r = 0;
		break;
	}
	close(lock);
	return r;
}

int keel__pod_userns_free(const char *root, const char *pod, struct keel_err *err)
{
	char dir[PATH_MAX], path[PATH_MAX + 300];
	snprintf(dir, sizeof(dir), "%s/%s", root, USERNS_DIR);
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : keel_err_errno(err, -errno, "opening %s", dir);
	int lock = lock_userns(dir, err);
	if (lock < 0) {
		closedir(d);
		return lock;
	}
	int r = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		char text[KEEL_POD_NAME_MAX + 2] = "";
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd >= 0 ? read(fd, text, sizeof(text) - 1) : -1;
		if (fd >= 0)
			close(fd);
		if (n <= 0)
			continue;
		text[n] = 0;
		text[strcspn(text, "\n")] = 0;
		if (strcmp(text, pod) == 0 && unlink(path) < 0 && errno != ENOENT && !r)
			r = keel_err_errno(err, -errno, "removing %s", path);
	}
	closedir(d);
	close(lock);
	return r;
}

/* overlayfs from the new mount API, its lower layers id-mapped clones of the image's layers
 * (open_tree + mount_setattr with MOUNT_ATTR_IDMAP through the pod's user namespace). overlayfs
 * refuses a detached mount as a layer, so each clone is attached below <tmp> just long enough
 * for the overlay to take its own private copy, then unmounted again: nothing is left to clean
 * up but the overlay itself. Layers go in top first ("lowerdir+"), so there is no lowerdir=
 * string and its one-page limit. */
int keel__pod_idmapped_overlay(char *const *layers, const char *upper, const char *work, const char *tmp,
			       const char *target, int userns_fd, struct keel_err *err)
{
	int fsfd = fsopen("overlay", FSOPEN_CLOEXEC);
	if (fsfd < 0)
		return keel_err_errno(err, -errno, "fsopen(overlay)");
	size_t n = 0, attached = 0;
	while (layers[n])
		n++;
	char path[PATH_MAX + 32];
	int r = 0;
	if (mkdir(tmp, 0700) < 0)
		r = keel_err_errno(err, -errno, "creating %s", tmp);
	for (size_t i = n; !r && i-- > 0;) {
		snprintf(path, sizeof(path), "%s/%zu", tmp, i);
		if (mkdir(path, 0700) < 0) {
			r = keel_err_errno(err, -errno, "creating %s", path);
			break;
		}
		int fd = open_tree(AT_FDCWD, layers[i], OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
		if (fd < 0) {
			r = keel_err_errno(err, -errno, "open_tree(%s)", layers[i]);
			break;
		}
		struct mount_attr attr = {.attr_set = MOUNT_ATTR_IDMAP | MOUNT_ATTR_RDONLY,
					  .userns_fd = (uint64_t)userns_fd};
		if (mount_setattr(fd, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0)
			r = keel_err_errno(err, -errno, "id-mapping the layer %s", layers[i]);
		else if (move_mount(fd, "", AT_FDCWD, path, MOVE_MOUNT_F_EMPTY_PATH) < 0)
			r = keel_err_errno(err, -errno, "attaching the layer %s", layers[i]);
		else if (attached++, fsconfig(fsfd, FSCONFIG_SET_STRING, "lowerdir+", path, 0) < 0)
			r = keel_err_errno(err, -errno, "overlay lowerdir+ %s", layers[i]);
		close(fd);
	}
	if (!r && (fsconfig(fsfd, FSCONFIG_SET_STRING, "upperdir", upper, 0) < 0 ||
		   fsconfig(fsfd, FSCONFIG_SET_STRING, "workdir", work, 0) < 0))
		r = keel_err_errno(err, -errno, "overlay upperdir/workdir %s", upper);
	if (!r && fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		r = keel_err_errno(err, -errno, "creating the overlay");
	int mfd = r ? -1 : fsmount(fsfd, FSMOUNT_CLOEXEC, 0);
	if (!r && mfd < 0)
		r = keel_err_errno(err, -errno, "fsmount(overlay)");
	if (!r && move_mount(mfd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		r = keel_err_errno(err, -errno, "mounting the overlay on %s", target);
	if (mfd >= 0)
		close(mfd);
	close(fsfd);
	/* The overlay holds private clones of its layers: the attached ones can go. */
	for (size_t i = n; i-- > 0;) {
		snprintf(path, sizeof(path), "%s/%zu", tmp, i);
		if (attached > 0 && i >= n - attached)
			umount2(path, MNT_DETACH);
		rmdir(path);
	}
	rmdir(tmp);
	return r;
}
