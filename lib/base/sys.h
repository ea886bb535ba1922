/* System-call wrappers for the calls whose failures matter to durability (the WAL, snapshots,
 * state files). They return -errno instead of setting errno, retry EINTR, and consult the fault
 * table so tests can make any of them fail, or tear a write in half. */
#pragma once

#include <fcntl.h>
#include <sys/types.h>

int keel_sys_open(const char *path, int flags, mode_t mode);            /* fd or -errno; adds O_CLOEXEC */
int keel_sys_openat(int dirfd, const char *path, int flags, mode_t mode);
ssize_t keel_sys_read(int fd, void *buf, size_t n);
ssize_t keel_sys_pread(int fd, void *buf, size_t n, off_t off);
ssize_t keel_sys_write(int fd, const void *buf, size_t n);
ssize_t keel_sys_pwrite(int fd, const void *buf, size_t n, off_t off);
int keel_sys_fsync(int fd);
int keel_sys_fdatasync(int fd);
int keel_sys_ftruncate(int fd, off_t len);
int keel_sys_fallocate(int fd, off_t off, off_t len);  /* posix_fallocate semantics */
int keel_sys_rename(const char *from, const char *to);
int keel_sys_unlink(const char *path);
int keel_sys_mkdir(const char *path, mode_t mode);
int keel_sys_close(int fd);                             /* the fd is closed even if this fails */

/* Write all n bytes, looping over short writes. An injected torn write (KEEL_FAULT_SHORT) leaves
 * half of that chunk in the file and fails with -EIO, as a crash at that point would. */
int keel_sys_write_all(int fd, const void *buf, size_t n);
int keel_sys_pwrite_all(int fd, const void *buf, size_t n, off_t off);
/* Returns bytes read (less than n only at end of file) or -errno. */
ssize_t keel_sys_pread_all(int fd, void *buf, size_t n, off_t off);

/* fsync a directory, so that a rename or a new file in it survives a crash. */
int keel_sys_fsync_dir(const char *path);

/* rm -rf on one file system: never follows links, never descends into mounts. 0 when path is
 * gone (or never was), -ENOTEMPTY when something stayed (a mount point, say), else -errno. */
int keel_sys_rmtree(const char *path);
