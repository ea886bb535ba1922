/* pod run --user-ns: a range of 65536 host ids per pod (allocated under <root>/.userns), and the
 * apps' overlay roots made of id-mapped image layers, so that the image's root-owned files belong
 * to the pod's root (host uid <base>) without copying or chowning a layer. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
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

/* One subid file's ranges for the calling user and for the others (a missing file lists none). */
static int load_subids(const char *env, const char *deflt, struct keel__subids *out, const char **path,
		       char *user, size_t usize, struct keel_err *err)
{
	*path = getenv(env) && *getenv(env) ? getenv(env) : deflt;
	struct passwd pw, *res = NULL;
	char pwbuf[4096];
	uid_t uid = geteuid();
	if (getpwuid_r(uid, &pw, pwbuf, sizeof(pwbuf), &res) == 0 && res)
		snprintf(user, usize, "%s", pw.pw_name);
	else
		snprintf(user, usize, "%u", (unsigned)uid);
	char *text = NULL;
	FILE *f = fopen(*path, "re");
	if (!f && errno != ENOENT)
		return keel_err_errno(err, -errno, "reading %s", *path);
	size_t len = 0;
	if (f) {
		FILE *m = open_memstream(&text, &len);
		char buf[4096];
		size_t k;
		while (m && (k = fread(buf, 1, sizeof(buf), f)) > 0)
			fwrite(buf, 1, k, m);
		if (m)
			fclose(m);
		fclose(f);
	}
	int r = keel__pod_subid_parse(text ? text : "", user, (uint32_t)uid, out);
	free(text);
	return r < 0 ? keel_err_set(err, r, "out of memory") : 0;
}

int keel__pod_userns_alloc(struct keel__pod_ctx *p, const char *root, uint32_t base, struct keel_err *err)
{
	char dir[PATH_MAX], path[PATH_MAX + 32], user[256];
	struct keel__subids su = {0}, sg = {0};
	const char *su_path, *sg_path;
	int r = userns_dir(root, dir, sizeof(dir), err);
	if (r < 0 || (r = load_subids("KEEL_SUBUID_FILE", "/etc/subuid", &su, &su_path, user, sizeof(user), err)) < 0 ||
	    (r = load_subids("KEEL_SUBGID_FILE", "/etc/subgid", &sg, &sg_path, user, sizeof(user), err)) < 0) {
		keel__pod_subids_free(&su);
		return r;
	}
	int lock = lock_userns(dir, err);
	if (lock < 0) {
		keel__pod_subids_free(&su);
		keel__pod_subids_free(&sg);
		return lock;
	}
	/* Candidates in steps of the range size: inside the user's own uid ranges when the files
	 * list any for it (both files must then allow it), else from the base up. */
	bool own = su.n_own > 0 || sg.n_own > 0;
	uint64_t lo = base ? base : own ? 0 : KEEL_POD_USERNS_BASE_DEFAULT;
	/* Own ranges count only when both files have some (as podman and shadow's newuidmap want). */
	size_t n_cand = own ? (su.n_own && sg.n_own ? su.n_own : 0) : 1, taken = 0, allowed = 0;
	r = 1;
	for (size_t c = 0; c < n_cand && r > 0; c++) {
		uint64_t first = own ? su.own[c].start : lo, end = own ? (uint64_t)su.own[c].start + su.own[c].count
									: (uint64_t)UINT32_MAX;
		if (own && first < lo)
			first = lo;
		for (uint64_t id = first; id + KEEL_POD_USERNS_SIZE <= end && r > 0; id += KEEL_POD_USERNS_SIZE) {
			if (id == 0 || /* never the host's root */
			    !keel__pod_subid_allows(&su, id, KEEL_POD_USERNS_SIZE) ||
			    !keel__pod_subid_allows(&sg, id, KEEL_POD_USERNS_SIZE))
				continue;
			allowed++;
			snprintf(path, sizeof(path), "%s/%llu", dir, (unsigned long long)id);
			int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
			if (fd < 0 && errno == EEXIST) {
				taken++;
				continue;
			}
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
			r = 0;
		}
	}
	if (r > 0 && own)
		r = keel_err_set(err, -ENOSPC, "--user-ns: no free range of %u ids in what %s and %s give %s or "
				 KEEL_POD_SUBID_USER "%s (%zu usable, %zu in use by other pods; add a range of a multiple of "
				 "%u ids for %s or " KEEL_POD_SUBID_USER " to both files)", KEEL_POD_USERNS_SIZE, su_path,
				 sg_path, user, base ? " above --user-ns-base" : "", allowed, taken, KEEL_POD_USERNS_SIZE, user);
	else if (r > 0)
		r = keel_err_set(err, -ENOSPC, "--user-ns: no free range of %u ids from %llu that %s and %s leave to "
				 "%s (%zu in use by other pods)", KEEL_POD_USERNS_SIZE, (unsigned long long)lo, su_path,
				 sg_path, user, taken);
	close(lock);
	keel__pod_subids_free(&su);
	keel__pod_subids_free(&sg);
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
