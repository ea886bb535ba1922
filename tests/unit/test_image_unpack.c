/* Layer unpacking: OCI whiteouts become overlayfs whiteouts, metadata survives, and entries that
 * would land outside the layer directory are refused. Needs root (mknod, chown, trusted.*
 * xattrs); skipped otherwise. */
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
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "image/image-internal.h"
#include "image_testutil.h"
#include "testutil.h"

struct fx {
	char dir[64];
	char dest[128];    /* the layer directory */
	char outside[128]; /* a directory next to it that must stay untouched */
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (test_make_tmpdir("image-unpack", f->dir, sizeof(f->dir)) < 0)
		return -1;
	snprintf(f->dest, sizeof(f->dest), "%s/layer", f->dir);
	snprintf(f->outside, sizeof(f->outside), "%s/outside", f->dir);
	mkdir(f->dest, 0755);
	mkdir(f->outside, 0755);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	test_remove_tree(f->dir);
	free(f);
	return 0;
}

static int unpack(struct fx *f, const struct tu_entry *e, size_t n, bool gzip, struct keel_err *err)
{
	size_t len;
	char *tar = tu_tar(e, n, gzip, &len);
	char path[160];
	snprintf(path, sizeof(path), "%s/layer.tar", f->dir);
	assert_int_equal(tu_write(f->dir, "layer.tar", tar, len), 0);
	free(tar);
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	int r = keel_image_unpack_layer(fd, f->dest, err);
	if (r < 0)
		print_message("unpack: %s\n", err->msg);
	close(fd);
	unlink(path);
	return r;
}

static bool exists_in(const char *dir, const char *rel, struct stat *st)
{
	char path[512];
	struct stat tmp;
	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	return lstat(path, st ? st : &tmp) == 0;
}

static bool skip_unless_root(void)
{
	if (geteuid() == 0)
		return false;
	skip();
	return true;
}

static void image_unpack_converts_whiteouts_for_overlayfs(void **state)
{
	struct fx *f = *state;
	if (skip_unless_root())
		return;
	const struct tu_entry e[] = {
		{"etc", 'd'},
		{"etc/.wh.passwd", 'f', ""},
		{".wh.gone", 'f', ""},
		{"data", 'd', NULL, 0750},
		{"data/.wh..wh..opq", 'f', ""},
		{"data/new", 'f', "new\n"},
		{"var/.wh..wh.plnk", 'd'}, /* aufs bookkeeping: ignored */
	};
	struct keel_err err;
	assert_int_equal(unpack(f, e, KEEL_ARRAY_SIZE(e), false, &err), 0);
	struct stat st;
	assert_true(exists_in(f->dest, "etc/passwd", &st));
	assert_true(S_ISCHR(st.st_mode));
	assert_int_equal(st.st_rdev, makedev(0, 0));
	assert_true(exists_in(f->dest, "gone", &st));
	assert_true(S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0));
	assert_false(exists_in(f->dest, "etc/.wh.passwd", NULL));
	assert_false(exists_in(f->dest, ".wh.gone", NULL));
	assert_false(exists_in(f->dest, "data/.wh..wh..opq", NULL));
	assert_false(exists_in(f->dest, "var/.wh..wh.plnk", NULL));
	char path[256], val[8] = "";
	snprintf(path, sizeof(path), "%s/data", f->dest);
	assert_int_equal(lgetxattr(path, "trusted.overlay.opaque", val, sizeof(val)), 1);
	assert_int_equal(val[0], 'y');
	assert_true(exists_in(f->dest, "data/new", NULL));
	/* Only directories that carry the marker are opaque. */
	snprintf(path, sizeof(path), "%s/etc", f->dest);
	assert_int_equal(lgetxattr(path, "trusted.overlay.opaque", val, sizeof(val)), -1);
}

static void image_unpack_keeps_owners_modes_links_devices_and_xattrs(void **state)
{
	struct fx *f = *state;
	if (skip_unless_root())
		return;
	const struct tu_entry e[] = {
		{"./", 'd', NULL, 0755},
		{"bin", 'd'},
		{"bin/tool", 'f', "#!/bin/sh\n", 04755, 0, 0},
		{"bin/alias", 'h', "bin/tool"},
		{"bin/sh", 'l', "/bin/tool"},
		{"home/u/file", 'f', "mine\n", 0600, 1234, 5678},
		{"dev/null", 'c', NULL, 0666, 0, 0, 1, 3},
		{"run/fifo", 'p', NULL, 0600},
		{"caps", 'f', "x", 0755, 0, 0, 0, 0, "user.keel.test", "hello"},
		/* An image must not smuggle in its own overlayfs attributes. */
		{"sneaky", 'd', NULL, 0755, 0, 0, 0, 0, "trusted.overlay.opaque", "y"},
	};
	struct keel_err err;
	assert_int_equal(unpack(f, e, KEEL_ARRAY_SIZE(e), true, &err), 0);
	struct stat st, st2;
	assert_true(exists_in(f->dest, "bin/tool", &st));
	assert_int_equal(st.st_mode & 07777, 04755);
	assert_true(exists_in(f->dest, "bin/alias", &st2));
	assert_int_equal(st.st_ino, st2.st_ino);
	assert_int_equal(st.st_nlink, 2);
	assert_true(exists_in(f->dest, "bin/sh", &st));
	assert_true(S_ISLNK(st.st_mode));
	char target[64] = "", path[256];
	snprintf(path, sizeof(path), "%s/bin/sh", f->dest);
	assert_int_equal(readlink(path, target, sizeof(target) - 1), 9);
	assert_string_equal(target, "/bin/tool");
	assert_true(exists_in(f->dest, "home/u/file", &st));
	assert_int_equal(st.st_uid, 1234);
	assert_int_equal(st.st_gid, 5678);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_true(exists_in(f->dest, "dev/null", &st));
	assert_true(S_ISCHR(st.st_mode));
	assert_int_equal(st.st_rdev, makedev(1, 3));
	assert_true(exists_in(f->dest, "run/fifo", &st));
	assert_true(S_ISFIFO(st.st_mode));
	assert_true(exists_in(f->dest, "home/u/file", &st));
	assert_int_equal(st.st_mtim.tv_sec, 1700000000);
	char val[16] = "";
	snprintf(path, sizeof(path), "%s/caps", f->dest);
	assert_int_equal(lgetxattr(path, "user.keel.test", val, sizeof(val)), 5);
	assert_memory_equal(val, "hello", 5);
	snprintf(path, sizeof(path), "%s/sneaky", f->dest);
	assert_int_equal(lgetxattr(path, "trusted.overlay.opaque", val, sizeof(val)), -1);
}

static void image_unpack_refuses_dotdot(void **state)
{
	struct fx *f = *state;
	const struct tu_entry e[] = {{"ok", 'f', "x"}, {"../outside/evil", 'f', "pwned\n"}};
	struct keel_err err;
	assert_int_equal(unpack(f, e, 2, false, &err), -EPERM);
	assert_non_null(strstr(err.msg, "../outside/evil"));
	assert_false(exists_in(f->outside, "evil", NULL));
	const struct tu_entry e2[] = {{"a/../../outside/evil2", 'f', "pwned\n"}};
	assert_int_equal(unpack(f, e2, 1, false, &err), -EPERM);
	assert_false(exists_in(f->outside, "evil2", NULL));
}

/* A symlink to a directory outside, then an entry through it: the classic escape. */
static void image_unpack_refuses_paths_through_symlinks(void **state)
{
	struct fx *f = *state;
	const struct tu_entry e[] = {{"link", 'l', f->outside}, {"link/evil", 'f', "pwned\n"}};
	struct keel_err err;
	assert_int_equal(unpack(f, e, 2, false, &err), -EPERM);
	assert_non_null(strstr(err.msg, "symlink"));
	assert_false(exists_in(f->outside, "evil", NULL));

	/* Relative symlinks that climb out are no better. */
	test_remove_tree(f->dest);
	mkdir(f->dest, 0755);
	const struct tu_entry e2[] = {{"up", 'l', "../outside"}, {"up/evil", 'f', "pwned\n"}};
	assert_int_equal(unpack(f, e2, 2, false, &err), -EPERM);
	assert_false(exists_in(f->outside, "evil", NULL));

	/* Nor symlinks inside the layer: a later entry never goes through one. */
	test_remove_tree(f->dest);
	mkdir(f->dest, 0755);
	const struct tu_entry e3[] = {{"real", 'd'}, {"alias", 'l', "real"}, {"alias/file", 'f', "x"}};
	assert_int_equal(unpack(f, e3, 3, false, &err), -EPERM);
	assert_false(exists_in(f->dest, "real/file", NULL));
}

static void image_unpack_refuses_whiteouts_through_symlinks(void **state)
{
	struct fx *f = *state;
	assert_int_equal(tu_write(f->outside, "precious", "keep\n", 5), 0);
	const struct tu_entry e[] = {{"link", 'l', f->outside}, {"link/.wh.precious", 'f', ""}};
	struct keel_err err;
	assert_int_equal(unpack(f, e, 2, false, &err), -EPERM);
	struct stat st;
	assert_true(exists_in(f->outside, "precious", &st));
	assert_true(S_ISREG(st.st_mode));
	const struct tu_entry e2[] = {{"link2", 'l', f->outside}, {"link2/.wh..wh..opq", 'f', ""}};
	assert_int_equal(unpack(f, e2, 2, false, &err), -EPERM);
	char val[4];
	assert_int_equal(lgetxattr(f->outside, "trusted.overlay.opaque", val, sizeof(val)), -1);
}

static void image_unpack_refuses_hardlinks_to_outside(void **state)
{
	struct fx *f = *state;
	assert_int_equal(tu_write(f->outside, "secret", "s3cret\n", 7), 0);
	char target[256];
	snprintf(target, sizeof(target), "%s/secret", f->outside);
	struct keel_err err;
	/* By "..": */
	const struct tu_entry e[] = {{"grab", 'h', "../outside/secret"}};
	assert_int_equal(unpack(f, e, 1, false, &err), -EPERM);
	assert_false(exists_in(f->dest, "grab", NULL));
	/* By a symlink made first: */
	const struct tu_entry e2[] = {{"out", 'l', f->outside}, {"grab", 'h', "out/secret"}};
	assert_int_equal(unpack(f, e2, 2, false, &err), -EPERM);
	assert_false(exists_in(f->dest, "grab", NULL));
	/* An absolute target is taken inside the layer, where there is no such file. */
	const struct tu_entry e3[] = {{"grab", 'h', target}};
	assert_int_equal(unpack(f, e3, 1, false, &err), -EPERM);
	assert_false(exists_in(f->dest, "grab", NULL));
	struct stat st;
	assert_true(exists_in(f->outside, "secret", &st));
	assert_int_equal(st.st_nlink, 1);
}

static void image_unpack_puts_absolute_paths_inside(void **state)
{
	struct fx *f = *state;
	const struct tu_entry e[] = {{"/etc/abs", 'f', "inside\n"}, {"./rel//x", 'f', "x"}};
	struct keel_err err;
	assert_int_equal(unpack(f, e, 2, false, &err), 0);
	assert_true(exists_in(f->dest, "etc/abs", NULL));
	assert_true(exists_in(f->dest, "rel/x", NULL));
}

static void image_unpack_refuses_a_non_tar(void **state)
{
	struct fx *f = *state;
	char path[160];
	assert_int_equal(tu_write(f->dir, "junk", "this is not a tar archive at all", 32), 0);
	snprintf(path, sizeof(path), "%s/junk", f->dir);
	int fd = open(path, O_RDONLY);
	struct keel_err err;
	assert_int_equal(keel_image_unpack_layer(fd, f->dest, &err), -KEEL_ECORRUPT);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(image_unpack_converts_whiteouts_for_overlayfs, setup, teardown),
		cmocka_unit_test_setup_teardown(image_unpack_keeps_owners_modes_links_devices_and_xattrs, setup,
						teardown),
		cmocka_unit_test_setup_teardown(image_unpack_refuses_dotdot, setup, teardown),
		cmocka_unit_test_setup_teardown(image_unpack_refuses_paths_through_symlinks, setup, teardown),
		cmocka_unit_test_setup_teardown(image_unpack_refuses_whiteouts_through_symlinks, setup, teardown),
		cmocka_unit_test_setup_teardown(image_unpack_refuses_hardlinks_to_outside, setup, teardown),
		cmocka_unit_test_setup_teardown(image_unpack_puts_absolute_paths_inside, setup, teardown),
		cmocka_unit_test_setup_teardown(image_unpack_refuses_a_non_tar, setup, teardown),
	};
	return cmocka_run_group_tests_name("image/unpack", tests, NULL, NULL);
}
