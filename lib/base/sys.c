#include "base/sys.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/fault.h"

/* Fault check for calls that do not transfer bytes: a "short" fault is an EIO for them. */
static int keel__fault(enum keel_fault_point p)
{
	int r = keel_fault_check(p);
	return r == 0 ? 0 : (r < 0 ? -EIO : -r);
}

/* Fault check for transfers: 0 to proceed, -errno to fail, 1 for a torn transfer (only half of
 * the bytes). */
static int keel__fault_xfer(enum keel_fault_point p)
{
	int r = keel_fault_check(p);
	return r > 0 ? -r : (r < 0 ? 1 : 0);
}

#define KEEL__RETRY(expr)                                    \
	({                                                   \
		__typeof__(expr) keel__r;                    \
		do                                           \
			keel__r = (expr);                    \
		while (keel__r < 0 && errno == EINTR);       \
		keel__r < 0 ? (__typeof__(expr))-errno : keel__r; \
	})

int keel_sys_openat(int dirfd, const char *path, int flags, mode_t mode)
{
	int r = keel__fault(KEEL_FAULT_OPEN);
	if (r)
		return r;
	return KEEL__RETRY(openat(dirfd, path, flags | O_CLOEXEC, mode));
}

int keel_sys_open(const char *path, int flags, mode_t mode)
{
	return keel_sys_openat(AT_FDCWD, path, flags, mode);
}

ssize_t keel_sys_read(int fd, void *buf, size_t n)
{
	int r = keel__fault_xfer(KEEL_FAULT_READ);
	if (r < 0)
		return r;
	if (r > 0)
		n /= 2; /* a short read: legal, and callers must loop */
	return KEEL__RETRY(read(fd, buf, n));
}

ssize_t keel_sys_pread(int fd, void *buf, size_t n, off_t off)
{
	int r = keel__fault_xfer(KEEL_FAULT_PREAD);
	if (r < 0)
		return r;
	if (r > 0)
		n /= 2; /* a short read: legal, and callers must loop */
	return KEEL__RETRY(pread(fd, buf, n, off));
}

ssize_t keel_sys_write(int fd, const void *buf, size_t n)
{
	int r = keel__fault_xfer(KEEL_FAULT_WRITE);
	if (r < 0)
		return r;
	if (r > 0) {
		/* A torn write: half the bytes reach the file, then the call fails, as when the
		 * machine dies in the middle of it. */
		n /= 2;
		ssize_t w = KEEL__RETRY(write(fd, buf, n));
		return w < 0 ? w : -EIO;
	}
	return KEEL__RETRY(write(fd, buf, n));
}

ssize_t keel_sys_pwrite(int fd, const void *buf, size_t n, off_t off)
{
	int r = keel__fault_xfer(KEEL_FAULT_PWRITE);
	if (r < 0)
		return r;
	if (r > 0) {
		/* A torn write: half the bytes reach the file, then the call fails, as when the
		 * machine dies in the middle of it. */
		n /= 2;
		ssize_t w = KEEL__RETRY(pwrite(fd, buf, n, off));
		return w < 0 ? w : -EIO;
	}
	return KEEL__RETRY(pwrite(fd, buf, n, off));
}

int keel_sys_fsync(int fd)
{
	int r = keel__fault(KEEL_FAULT_FSYNC);
	return r ? r : KEEL__RETRY(fsync(fd));
}

int keel_sys_fdatasync(int fd)
{
	int r = keel__fault(KEEL_FAULT_FDATASYNC);
	return r ? r : KEEL__RETRY(fdatasync(fd));
}

int keel_sys_ftruncate(int fd, off_t len)
{
	int r = keel__fault(KEEL_FAULT_FTRUNCATE);
	return r ? r : KEEL__RETRY(ftruncate(fd, len));
}

int keel_sys_fallocate(int fd, off_t off, off_t len)
{
	int r = keel__fault(KEEL_FAULT_FALLOCATE);
	if (r)
		return r;
	/* posix_fallocate returns the error instead of setting errno. */
	do
		r = posix_fallocate(fd, off, len);
	while (r == EINTR);
	return -r;
}

int keel_sys_rename(const char *from, const char *to)
{
	int r = keel__fault(KEEL_FAULT_RENAME);
	return r ? r : KEEL__RETRY(rename(from, to));
}

int keel_sys_unlink(const char *path)
{
	int r = keel__fault(KEEL_FAULT_UNLINK);
	return r ? r : KEEL__RETRY(unlink(path));
}

int keel_sys_mkdir(const char *path, mode_t mode)
{
	int r = keel__fault(KEEL_FAULT_MKDIR);
	return r ? r : KEEL__RETRY(mkdir(path, mode));
}

int keel_sys_close(int fd)
{
	int r = keel__fault(KEEL_FAULT_CLOSE);
	/* Linux frees the descriptor even when close fails; never retry it. */
	int c = close(fd);
	if (r)
		return r;
	return c < 0 && errno != EINTR ? -errno : 0;
}

int keel_sys_write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n > 0) {
		ssize_t w = keel_sys_write(fd, p, n);
		if (w < 0)
			return (int)w;
		if (w == 0)
			return -EIO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int keel_sys_pwrite_all(int fd, const void *buf, size_t n, off_t off)
{
	const char *p = buf;
	while (n > 0) {
		ssize_t w = keel_sys_pwrite(fd, p, n, off);
		if (w < 0)
			return (int)w;
		if (w == 0)
			return -EIO;
		p += w;
		off += w;
		n -= (size_t)w;
	}
	return 0;
}

ssize_t keel_sys_pread_all(int fd, void *buf, size_t n, off_t off)
{
	char *p = buf;
	size_t done = 0;
	while (done < n) {
		ssize_t r = keel_sys_pread(fd, p + done, n - done, off + (off_t)done);
		if (r < 0)
			return r;
		if (r == 0)
			break;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

int keel_sys_fsync_dir(const char *path)
{
	int fd = keel_sys_open(path, O_RDONLY | O_DIRECTORY, 0);
	if (fd < 0)
		return fd;
	int r = keel_sys_fsync(fd);
	int c = keel_sys_close(fd);
	return r ? r : c;
}

static int rmtree_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		(void)rmdir(path);
	else
		(void)unlink(path);
	return 0; /* go on: what stays is reported by the caller's lstat */
}

int keel_sys_rmtree(const char *path)
{
	if (nftw(path, rmtree_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0 && errno != ENOENT)
		return -errno;
	struct stat st;
	return lstat(path, &st) == 0 ? -ENOTEMPTY : 0;
}
