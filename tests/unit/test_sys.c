#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/fault.h"
#include "base/sys.h"

struct fixture {
	char dir[64];
	char path[96];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/keel-test-sys-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/file", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	keel_fault_reset();
	unlink(f->path);
	char other[128];
	snprintf(other, sizeof(other), "%s/renamed", f->dir);
	unlink(other);
	rmdir(f->dir);
	free(f);
	return 0;
}

static off_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? st.st_size : -1;
}

static void sys_calls_return_negative_errno(void **state)
{
	assert_int_equal(keel_sys_open("/nonexistent/dir/file", O_RDONLY, 0), -ENOENT);
	assert_int_equal(keel_sys_fdatasync(-1), -EBADF);
	assert_int_equal(keel_sys_write(-1, "x", 1), -EBADF);
	assert_int_equal(keel_sys_unlink("/nonexistent/file"), -ENOENT);
}

static void sys_open_sets_cloexec(void **state)
{
	struct fixture *f = *state;
	int fd = keel_sys_open(f->path, O_CREAT | O_RDWR, 0600);
	assert_true(fd >= 0);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(keel_sys_close(fd), 0);
}

static void sys_injected_fdatasync_failure_reports_the_errno(void **state)
{
	struct fixture *f = *state;
	int fd = keel_sys_open(f->path, O_CREAT | O_RDWR, 0600);
	assert_true(fd >= 0);
	keel_fault_arm(KEEL_FAULT_FDATASYNC, 1, 1, EIO);
	assert_int_equal(keel_sys_fdatasync(fd), 0);
	assert_int_equal(keel_sys_fdatasync(fd), -EIO);
	assert_int_equal(keel_sys_fdatasync(fd), 0);
	keel_sys_close(fd);
}

static void sys_disk_full_write_leaves_file_unchanged(void **state)
{
	struct fixture *f = *state;
	int fd = keel_sys_open(f->path, O_CREAT | O_RDWR, 0600);
	assert_int_equal(keel_sys_write_all(fd, "hello", 5), 0);
	keel_fault_arm(KEEL_FAULT_WRITE, 0, -1, ENOSPC);
	assert_int_equal(keel_sys_write_all(fd, "world", 5), -ENOSPC);
	keel_sys_close(fd);
	assert_int_equal(file_size(f->path), 5);
}

static void sys_torn_write_puts_half_on_disk_and_fails(void **state)
{
	struct fixture *f = *state;
	int fd = keel_sys_open(f->path, O_CREAT | O_RDWR, 0600);
	char rec[100];
	memset(rec, 'r', sizeof(rec));
	keel_fault_arm_short(KEEL_FAULT_PWRITE, 1, 1);
	assert_int_equal(keel_sys_pwrite_all(fd, rec, sizeof(rec), 0), 0);
	assert_int_equal(keel_sys_pwrite_all(fd, rec, sizeof(rec), 100), -EIO);
	keel_sys_close(fd);
	assert_int_equal(file_size(f->path), 150);
}

static void sys_short_reads_are_completed_by_pread_all(void **state)
{
	struct fixture *f = *state;
	int fd = keel_sys_open(f->path, O_CREAT | O_RDWR, 0600);
	char data[64], back[64];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)i;
	assert_int_equal(keel_sys_pwrite_all(fd, data, sizeof(data), 0), 0);
	keel_fault_arm_short(KEEL_FAULT_PREAD, 0, 3);
	assert_int_equal(keel_sys_pread_all(fd, back, sizeof(back), 0), 64);
	assert_memory_equal(back, data, sizeof(data));
	assert_int_equal(keel_fault_injected(KEEL_FAULT_PREAD), 3);
	/* At end of file pread_all returns what there was. */
	assert_int_equal(keel_sys_pread_all(fd, back, sizeof(back), 60), 4);
	keel_sys_close(fd);
}

static void sys_rename_fallocate_truncate_and_dir_fsync(void **state)
{
	struct fixture *f = *state;
	int fd = keel_sys_open(f->path, O_CREAT | O_RDWR, 0600);
	assert_int_equal(keel_sys_fallocate(fd, 0, 1 << 16), 0);
	assert_int_equal(file_size(f->path), 1 << 16);
	assert_int_equal(keel_sys_ftruncate(fd, 10), 0);
	assert_int_equal(file_size(f->path), 10);
	keel_fault_arm(KEEL_FAULT_FALLOCATE, 0, 1, ENOSPC);
	assert_int_equal(keel_sys_fallocate(fd, 0, 1 << 20), -ENOSPC);
	keel_sys_close(fd);

	char to[128];
	snprintf(to, sizeof(to), "%s/renamed", f->dir);
	keel_fault_arm(KEEL_FAULT_RENAME, 0, 1, EIO);
	assert_int_equal(keel_sys_rename(f->path, to), -EIO);
	assert_int_equal(keel_sys_rename(f->path, to), 0);
	assert_int_equal(keel_sys_fsync_dir(f->dir), 0);
	keel_fault_arm(KEEL_FAULT_FSYNC, 0, 1, EIO);
	assert_int_equal(keel_sys_fsync_dir(f->dir), -EIO);
}

/* rmtree removes a tree with files, a symlink (not followed) and nested directories; a missing
 * path is fine. */
static void sys_rmtree_removes_a_tree_and_never_follows_links(void **state)
{
	struct fixture *f = *state;
	char tree[128], p[192], outside[128];
	snprintf(tree, sizeof(tree), "%s/tree", f->dir);
	snprintf(outside, sizeof(outside), "%s/outside", f->dir);
	assert_int_equal(mkdir(outside, 0700), 0);
	snprintf(p, sizeof(p), "%s/keep", outside);
	close(open(p, O_CREAT | O_WRONLY, 0600));
	assert_int_equal(mkdir(tree, 0700), 0);
	snprintf(p, sizeof(p), "%s/a", tree);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/a/b", tree);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/a/b/file", tree);
	close(open(p, O_CREAT | O_WRONLY, 0600));
	snprintf(p, sizeof(p), "%s/link", tree);
	assert_int_equal(symlink(outside, p), 0);

	assert_int_equal(keel_sys_rmtree(tree), 0);
	struct stat st;
	assert_int_equal(lstat(tree, &st), -1);
	snprintf(p, sizeof(p), "%s/keep", outside);
	assert_int_equal(lstat(p, &st), 0); /* the link's target and its contents stay */
	assert_int_equal(keel_sys_rmtree(tree), 0);
	assert_int_equal(keel_sys_rmtree(outside), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(sys_calls_return_negative_errno, setup, teardown),
		cmocka_unit_test_setup_teardown(sys_open_sets_cloexec, setup, teardown),
		cmocka_unit_test_setup_teardown(sys_injected_fdatasync_failure_reports_the_errno, setup, teardown),
		cmocka_unit_test_setup_teardown(sys_disk_full_write_leaves_file_unchanged, setup, teardown),
		cmocka_unit_test_setup_teardown(sys_torn_write_puts_half_on_disk_and_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(sys_short_reads_are_completed_by_pread_all, setup, teardown),
		cmocka_unit_test_setup_teardown(sys_rename_fallocate_truncate_and_dir_fsync, setup, teardown),
		cmocka_unit_test_setup_teardown(sys_rmtree_removes_a_tree_and_never_follows_links, setup, teardown),
	};
	return cmocka_run_group_tests_name("base/sys", tests, NULL, NULL);
}
