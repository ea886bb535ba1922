/* Parsing of the sandboxing settings (lib/init/unit_parse_sandbox.c): capabilities with "~" and
 * several lines, SecureBits=, ProtectSystem=/ProtectHome=, the path lists with "-"/"+",
 * BindPaths=, TemporaryFileSystem=, SystemCallFilter= allow and deny lists with systemd's groups,
 * SystemCallErrorNumber=, SystemCallArchitectures=, RuntimeDirectory= & co.; bad values are
 * reported in systemd's words and ignored. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/mem.h"
#include "init/load.h"
#include "init/unit-internal.h"
#include "init/unit.h"
#include "test_init_util.h"

static struct keel_host_info host = {
	.hostname = "node1", .machine_id = "0123456789abcdef0123456789abcdef",
	.boot_id = "fedcba9876543210fedcba9876543210", .kernel_release = "6.1.0-test",
	.architecture = "x86-64", .os_id = "debian", .os_version_id = "12",
	.user_name = "root", .user_home = "/root", .user_shell = "/bin/sh", .group_name = "root",
};

struct fixture {
	struct keel_loader *l;
	struct keel_unit *u;
	struct diag_log log;
};

static int setup(void **state)
{
	struct fixture *f = keel_calloc(1, sizeof(*f));
	static const char *const none[] = {"/nonexistent-keel-test-dir", NULL};
	struct keel_loader_config cfg = {.search_path = none, .host = &host, .sink = {diag_collect, &f->log}};
	assert_int_equal(keel_loader_new(&cfg, &f->l), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	keel_unit_free(f->u);
	keel_loader_free(f->l);
	keel_free(f);
	return 0;
}

static const struct keel_exec_sandbox *load(struct fixture *f, const char *text)
{
	keel_unit_free(f->u);
	f->u = NULL;
	memset(&f->log, 0, sizeof(f->log));
	char buf[4096];
	snprintf(buf, sizeof(buf), "[Service]\nExecStart=/bin/true\n%s", text);
	assert_int_equal(keel_loader_load_text(f->l, "a.service", "/test/unit", buf, strlen(buf), &f->u), 0);
	assert_int_equal(f->u->load_state, KEEL_LOAD_LOADED);
	return keel_unit_service(f->u)->exec_ctx.sandbox;
}

static bool has(const char *const *v, const char *s)
{
	for (size_t i = 0; v && v[i]; i++)
		if (strcmp(v[i], s) == 0)
			return true;
	return false;
}

#define BIT(c) (1ULL << (c))

static void sandbox_none_means_no_allocation(void **state)
{
	struct fixture *f = *state;
	assert_null(load(f, "PrivateTmp=yes\n"));
}

static void sandbox_capabilities(void **state)
{
	struct fixture *f = *state;
	const struct keel_exec_sandbox *sb =
		load(f, "CapabilityBoundingSet=CAP_CHOWN CAP_KILL\nCapabilityBoundingSet=cap_net_raw\n"
			"AmbientCapabilities=CAP_NET_BIND_SERVICE\nAmbientCapabilities=12\n");
	assert_int_equal(f->log.n, 0);
	assert_true(sb->cap_bounding == (BIT(0) | BIT(5) | BIT(13)));
	assert_true(sb->cap_ambient == (BIT(10) | BIT(12)));
	/* "~" from the default (all) removes; a second "~" line removes more */
	sb = load(f, "CapabilityBoundingSet=~CAP_SYS_ADMIN\nCapabilityBoundingSet=~CAP_NET_RAW CAP_BOGUS\n");
	assert_true(sb->cap_bounding == ~(BIT(21) | BIT(13)));
	assert_true(diag_has(&f->log, "Failed to parse capability 'CAP_BOGUS' in CapabilityBoundingSet=, ignoring")); /* debug */
	/* an empty value is the empty set; "~" alone every capability */
	sb = load(f, "CapabilityBoundingSet=CAP_KILL\nCapabilityBoundingSet=\n");
	assert_true(sb->cap_bounding == 0);
	sb = load(f, "CapabilityBoundingSet=CAP_KILL\nCapabilityBoundingSet=~\n");
	assert_true(sb->cap_bounding == UINT64_MAX);
	assert_int_equal(keel_capability_from_name("CAP_CHECKPOINT_RESTORE"), 40);
	assert_int_equal(keel_capability_from_name("sys_admin"), -1); /* systemd-analyze capability: not known */
	assert_int_equal(keel_capability_from_name("cap_nope"), -1);
	assert_string_equal(keel_capability_to_name(10), "cap_net_bind_service");
}

static void sandbox_booleans_and_enums(void **state)
{
	struct fixture *f = *state;
	const struct keel_exec_sandbox *sb =
		load(f, "NoNewPrivileges=yes\nPrivateDevices=1\nPrivateNetwork=on\nProtectKernelTunables=true\n"
			"ProtectKernelModules=yes\nProtectControlGroups=yes\nProtectSystem=strict\n"
			"ProtectHome=read-only\nSecureBits=keep-caps noroot-locked\nRuntimeDirectoryPreserve=restart\n");
	assert_int_equal(f->log.n, 0);
	assert_true(sb->no_new_privileges && sb->private_devices && sb->private_network);
	assert_true(sb->protect_kernel_tunables && sb->protect_kernel_modules && sb->protect_control_groups);
	assert_int_equal(sb->protect_system, KEEL_PROTECT_SYSTEM_STRICT);
	assert_int_equal(sb->protect_home, KEEL_PROTECT_HOME_READ_ONLY);
	assert_int_equal(sb->secure_bits, (1u << 4) | (1u << 1));
	assert_int_equal(sb->runtime_preserve, KEEL_PRESERVE_RESTART);
	sb = load(f, "ProtectSystem=full\nProtectSystem=sometimes\nProtectHome=tmpfs\nProtectHome=maybe\n"
		     "NoNewPrivileges=perhaps\nSecureBits=keep-caps bogus\n");
	assert_int_equal(sb->protect_system, KEEL_PROTECT_SYSTEM_FULL);
	assert_int_equal(sb->protect_home, KEEL_PROTECT_HOME_TMPFS);
	assert_false(sb->no_new_privileges);
	assert_int_equal(sb->secure_bits, 1u << 4); /* the unknown word is skipped, as systemd does */
	assert_true(diag_has(&f->log, "/test/unit:4: Failed to parse protect system value, ignoring: sometimes"));
	assert_true(diag_has(&f->log, "/test/unit:6: Failed to parse protect home value, ignoring: maybe"));
	assert_true(diag_has(&f->log, "/test/unit:7: Failed to parse boolean value, ignoring: perhaps"));
	assert_true(diag_has(&f->log, "/test/unit:8: Unknown secure bit 'bogus', ignoring"));
	sb = load(f, "ProtectSystem=yes\nProtectHome=no\n");
	assert_int_equal(sb->protect_system, KEEL_PROTECT_SYSTEM_YES);
	assert_int_equal(sb->protect_home, KEEL_PROTECT_HOME_NO);
}

static void sandbox_paths(void **state)
{
	struct fixture *f = *state;
	const struct keel_exec_sandbox *sb =
		load(f, "ReadOnlyPaths=/a -/b//c/ \"/with space\"\nReadOnlyPaths=+/in-root relative\n"
			"ReadWritePaths=/var/lib/x\nInaccessiblePaths=-/secret\nReadWriteDirectories=/old\n"
			"TemporaryFileSystem=/scratch:ro,size=1M /t2\n"
			"BindPaths=/src -/opt/a:/opt/b:norbind /x:/y:bogus\nBindReadOnlyPaths=/etc/ssl:/ssl\n");
	assert_true(has(sb->read_only_paths, "/a"));
	assert_true(has(sb->read_only_paths, "-/b/c"));
	assert_true(has(sb->read_only_paths, "/with space"));
	assert_true(has(sb->read_only_paths, "+/in-root"));
	assert_int_equal(keel_pool_strv_len(sb->read_only_paths), 4);
	assert_true(diag_has(&f->log, "ReadOnlyPaths= path is not absolute, ignoring: relative"));
	assert_true(has(sb->read_write_paths, "/var/lib/x") && has(sb->read_write_paths, "/old"));
	assert_true(has(sb->inaccessible_paths, "-/secret"));
	assert_true(has(sb->temporary_fs, "/scratch:ro,size=1M") && has(sb->temporary_fs, "/t2"));
	assert_true(has(sb->bind_paths, "/src:/src:rbind"));
	assert_true(has(sb->bind_paths, "-/opt/a:/opt/b:norbind"));
	assert_int_equal(keel_pool_strv_len(sb->bind_paths), 2);
	assert_true(diag_has(&f->log, "Invalid option string, ignoring setting: bogus"));
	assert_true(has(sb->bind_ro_paths, "/etc/ssl:/ssl:rbind"));
	/* an empty assignment resets the list */
	sb = load(f, "ReadOnlyPaths=/a\nReadOnlyPaths=\nReadOnlyPaths=/b\n");
	assert_int_equal(keel_pool_strv_len(sb->read_only_paths), 1);
	assert_true(has(sb->read_only_paths, "/b"));
}

static void sandbox_syscall_filter(void **state)
{
	struct fixture *f = *state;
	/* an allow list starts with @default and grows with the groups named */
	const struct keel_exec_sandbox *sb =
		load(f, "SystemCallFilter=@basic-io @network-io\nSystemCallFilter=~connect\n"
			"SystemCallErrorNumber=EPERM\nSystemCallArchitectures=native\n");
	assert_int_equal(f->log.n, 0);
	assert_true(sb->syscall_filter_set && sb->syscall_allow_list && sb->syscall_arch_native);
	assert_true(has(sb->syscall_filter, "execve"));     /* @default */
	assert_true(has(sb->syscall_filter, "read"));       /* @basic-io */
	assert_true(has(sb->syscall_filter, "sendmsg"));    /* @network-io */
	assert_false(has(sb->syscall_filter, "connect"));   /* taken out again */
	assert_false(has(sb->syscall_filter, "mount"));
	assert_int_equal(sb->syscall_errno, EPERM);
	/* a deny list: "~" first; a later line without "~" takes names out of it */
	sb = load(f, "SystemCallFilter=~@mount\nSystemCallFilter=umount2\nSystemCallFilter=~unlink:EXDEV reboot\n"
		     "SystemCallErrorNumber=kill\n");
	assert_true(sb->syscall_filter_set && !sb->syscall_allow_list);
	assert_true(has(sb->syscall_filter, "mount") && has(sb->syscall_filter, "pivot_root"));
	assert_false(has(sb->syscall_filter, "umount2"));
	assert_true(has(sb->syscall_filter, "unlink:18") && has(sb->syscall_filter, "reboot"));
	assert_false(has(sb->syscall_filter, "execve"));
	assert_int_equal(sb->syscall_errno, KEEL_SECCOMP_KILL);
	/* @system-service holds its nested groups */
	sb = load(f, "SystemCallFilter=@system-service\n");
	assert_true(has(sb->syscall_filter, "io_setup"));   /* @aio */
	assert_true(has(sb->syscall_filter, "setresuid"));  /* @setuid */
	assert_false(has(sb->syscall_filter, "kexec_load"));
	/* an empty assignment resets; bad names and groups are reported */
	sb = load(f, "SystemCallFilter=~mount\nSystemCallFilter=\nSystemCallFilter=~@nope frobnicate\n"
		     "SystemCallErrorNumber=EWHAT\nSystemCallArchitectures=arm sparc-ish\n");
	assert_true(sb->syscall_filter_set && !sb->syscall_allow_list);
	assert_int_equal(keel_pool_strv_len(sb->syscall_filter), 0);
	assert_true(diag_has(&f->log, "/test/unit:5: Unknown system call group, ignoring: @nope"));
	assert_true(diag_has(&f->log, "/test/unit:5: Failed to parse system call, ignoring: frobnicate"));
	assert_true(diag_has(&f->log, "/test/unit:6: Failed to parse error number, ignoring: EWHAT"));
	assert_true(diag_has(&f->log, "/test/unit:7: SystemCallArchitectures=arm is not supported by keel-init (only native), ignoring"));
	assert_true(diag_has(&f->log, "/test/unit:7: Failed to parse system call architecture \"sparc-ish\", ignoring: Invalid argument"));
	assert_false(sb->syscall_arch_native);
}

static void sandbox_directories(void **state)
{
	struct fixture *f = *state;
	const struct keel_exec_sandbox *sb =
		load(f, "RuntimeDirectory=foo bar/baz\nRuntimeDirectory=/abs ../up\nRuntimeDirectoryMode=0700\n"
			"StateDirectory=%n\nCacheDirectory=c\nLogsDirectory=l\nLogsDirectoryMode=0750\n"
			"CacheDirectoryMode=099\n");
	assert_true(has(sb->dirs[KEEL_DIR_RUNTIME], "foo") && has(sb->dirs[KEEL_DIR_RUNTIME], "bar/baz"));
	assert_int_equal(keel_pool_strv_len(sb->dirs[KEEL_DIR_RUNTIME]), 2);
	assert_true(diag_has(&f->log, "RuntimeDirectory= path is absolute, ignoring: /abs"));
	assert_true(diag_has(&f->log, "RuntimeDirectory= path is not normalized, ignoring: ../up"));
	assert_true(has(sb->dirs[KEEL_DIR_STATE], "a.service"));
	assert_int_equal(sb->dir_mode[KEEL_DIR_RUNTIME], 0700);
	assert_int_equal(sb->dir_mode[KEEL_DIR_STATE], 0755);
	assert_int_equal(sb->dir_mode[KEEL_DIR_LOGS], 0750);
	assert_int_equal(sb->dir_mode[KEEL_DIR_CACHE], 0755);
	assert_true(diag_has(&f->log, "Failed to parse mode value, ignoring: 099"));
	assert_int_equal(sb->runtime_preserve, KEEL_PRESERVE_NO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(sandbox_none_means_no_allocation, setup, teardown),
		cmocka_unit_test_setup_teardown(sandbox_capabilities, setup, teardown),
		cmocka_unit_test_setup_teardown(sandbox_booleans_and_enums, setup, teardown),
		cmocka_unit_test_setup_teardown(sandbox_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(sandbox_syscall_filter, setup, teardown),
		cmocka_unit_test_setup_teardown(sandbox_directories, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
