/* The machine facts behind Condition*= (lib/init/condition_probe.c), on made-up roots: what
 * systemd 252's virt.c, proc-cmdline.c, cap-list.c, on_ac_power() and
 * condition_test_needs_update() answer for the same files. */
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
#include <sys/time.h>
#include <unistd.h>

#include "init/condition.h"

static char root[256];

static void put(const char *rel, const char *text)
{
	char p[512], dir[512];
	snprintf(p, sizeof(p), "%s%s", root, rel);
	snprintf(dir, sizeof(dir), "%s", p);
	for (char *s = dir + strlen(root) + 1; (s = strchr(s, '/')); s++) {
		*s = '\0';
		mkdir(dir, 0755);
		*s = '/';
	}
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **state)
{
	(void)state;
	snprintf(root, sizeof(root), "/tmp/keel-cond-XXXXXX");
	return mkdtemp(root) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	return system(cmd) == 0 ? 0 : -1;
}

static void virt_container_files_and_names(void **state)
{
	(void)state;
	struct keel_virt v;
	keel_virt_detect(root, false, &v);
	assert_string_equal(v.container, "");
	assert_string_equal(v.vm, "");
	assert_false(keel_cond_virtualization("yes", &v));
	assert_true(keel_cond_virtualization("no", &v));
	put("/.dockerenv", "");
	keel_virt_detect(root, false, &v);
	assert_string_equal(v.container, "docker");
	put("/run/.containerenv", "");
	keel_virt_detect(root, false, &v);
	assert_string_equal(v.container, "podman"); /* checked before /.dockerenv */
	/* what PID 1 left in /run/systemd/container wins over the files */
	put("/run/systemd/container", "lxc\n");
	keel_virt_detect(root, false, &v);
	assert_string_equal(v.container, "lxc");
	put("/run/systemd/container", "oci\n"); /* not a manager: the files say which */
	keel_virt_detect(root, false, &v);
	assert_string_equal(v.container, "podman");
	put("/run/systemd/container", "something-new\n");
	keel_virt_detect(root, false, &v);
	assert_string_equal(v.container, "container-other");
	put("/run/host/container-manager", "systemd-nspawn\n");
	keel_virt_detect(root, false, &v);
	assert_string_equal(v.container, "systemd-nspawn");
	assert_true(keel_cond_virtualization("container", &v));
	assert_true(keel_cond_virtualization("systemd-nspawn", &v));
	assert_true(keel_cond_virtualization("yes", &v));
	assert_false(keel_cond_virtualization("vm", &v));
	assert_false(keel_cond_virtualization("docker", &v));
	assert_string_equal(keel_virt_container_name("rkt"), "rkt");
	assert_string_equal(keel_virt_container_name("Docker"), "container-other");
}

static void virt_vm_dmi_and_cpuid(void **state)
{
	(void)state;
	struct keel_virt v;
	put("/sys/class/dmi/id/sys_vendor", "QEMU\n");
	keel_virt_detect(root, false, &v);
	assert_string_equal(v.vm, "qemu");
	assert_true(keel_cond_virtualization("vm", &v));
	assert_true(keel_cond_virtualization("qemu", &v));
	assert_true(keel_cond_virtualization("1", &v));
	assert_false(keel_cond_virtualization("container", &v));
	assert_false(keel_cond_virtualization("kvm", &v));
	/* VirtualBox is reported as such even though its CPUID may say KVM */
	put("/sys/class/dmi/id/product_name", "VirtualBox\n");
	keel_virt_detect(root, false, &v);
	assert_string_equal(v.vm, "oracle");
	/* inside a VM's container, the container is what counts */
	put("/.dockerenv", "");
	keel_virt_detect(root, false, &v);
	assert_string_equal(v.container, "docker");
	assert_false(keel_cond_virtualization("vm", &v));
	assert_false(keel_cond_virtualization("oracle", &v));
	assert_true(keel_cond_virtualization("docker", &v));
	assert_string_equal(keel_virt_dmi_vendor("Amazon EC2"), "amazon");
	assert_string_equal(keel_virt_dmi_vendor("VMware, Inc."), "vmware");
	assert_null(keel_virt_dmi_vendor("Microsoft Corporation Hyper-V")); /* prefixes only */
	assert_null(keel_virt_dmi_vendor("Dell Inc."));
	assert_string_equal(keel_virt_cpuid_vendor("KVMKVMKVM"), "kvm");
	assert_string_equal(keel_virt_cpuid_vendor("Microsoft Hv"), "microsoft");
	assert_string_equal(keel_virt_cpuid_vendor("TCGTCGTCGTCG"), "qemu");
	assert_string_equal(keel_virt_cpuid_vendor("GenuineIntel"), "vm-other");
}

static void kernel_cmdline_words(void **state)
{
	(void)state;
	const char *line = "BOOT_IMAGE=/vmlinuz root=UUID=1234 ro quiet foo.bar=\"a b\" splash\n";
	assert_true(keel_cond_kernel_cmdline(line, "quiet"));
	assert_true(keel_cond_kernel_cmdline(line, "ro"));
	assert_true(keel_cond_kernel_cmdline(line, "root"));          /* a key matches key=... */
	assert_true(keel_cond_kernel_cmdline(line, "root=UUID=1234"));
	assert_false(keel_cond_kernel_cmdline(line, "root=UUID=12"));
	assert_false(keel_cond_kernel_cmdline(line, "roo"));          /* not a prefix match */
	assert_true(keel_cond_kernel_cmdline(line, "foo.bar=a b"));   /* quotes removed */
	assert_true(keel_cond_kernel_cmdline(line, "splash"));
	assert_false(keel_cond_kernel_cmdline(line, "b\""));
	assert_false(keel_cond_kernel_cmdline("", "quiet"));
}

static void capabilities(void **state)
{
	(void)state;
	assert_int_equal(keel_capability_from_name("CAP_CHOWN"), 0);
	assert_int_equal(keel_capability_from_name("cap_net_admin"), 12);
	assert_int_equal(keel_capability_from_name("CAP_SYS_ADMIN"), 21);
	assert_int_equal(keel_capability_from_name("CAP_CHECKPOINT_RESTORE"), 40);
	assert_int_equal(keel_capability_from_name("21"), 21);
	assert_int_equal(keel_capability_from_name("CAP_NOPE"), -1);
	uint64_t bnd = 0x000001fffeffffffULL; /* this machine's CapBnd: all but bit 24, CAP_SYS_RESOURCE */
	assert_true(keel_cond_capability(bnd, "CAP_NET_ADMIN"));
	assert_false(keel_cond_capability(bnd, "CAP_SYS_RESOURCE")); /* bit 24 is clear */
	assert_false(keel_cond_capability(bnd, "CAP_NOPE"));
	assert_false(keel_cond_capability(0, "CAP_CHOWN"));
}

static void ac_power(void **state)
{
	(void)state;
	char dir[300];
	snprintf(dir, sizeof(dir), "%s/ps", root);
	assert_true(keel_on_ac_power(dir)); /* no class directory: assume mains */
	put("/ps/BAT0/type", "Battery\n");
	put("/ps/BAT0/online", "0\n");
	assert_true(keel_on_ac_power(dir)); /* batteries do not count */
	put("/ps/AC/type", "Mains\n");
	put("/ps/AC/online", "0\n");
	assert_false(keel_on_ac_power(dir));
	put("/ps/AC2/type", "Mains\n");
	put("/ps/AC2/online", "1\n");
	assert_true(keel_on_ac_power(dir));
}

static void needs_update(void **state)
{
	(void)state;
	char usr[300], etc[300], upd[300];
	snprintf(usr, sizeof(usr), "%s/usr", root);
	snprintf(etc, sizeof(etc), "%s/etc", root);
	snprintf(upd, sizeof(upd), "%s/etc/.updated", root);
	mkdir(usr, 0755);
	mkdir(etc, 0755);
	assert_true(keel_cond_needs_update(usr, etc)); /* never updated */
	put("/etc/.updated", "");
	struct timeval t[2] = {{1000, 0}, {1000, 0}};
	assert_int_equal(utimes(usr, t), 0);
	struct timeval t2[2] = {{2000, 0}, {2000, 0}};
	assert_int_equal(utimes(upd, t2), 0);
	assert_false(keel_cond_needs_update(usr, etc)); /* updated after /usr changed */
	struct timeval t3[2] = {{3000, 0}, {3000, 0}};
	assert_int_equal(utimes(usr, t3), 0);
	assert_true(keel_cond_needs_update(usr, etc)); /* /usr is newer */
	/* the same second: .updated without nanoseconds says TIMESTAMP_NSEC= */
	struct timeval t4[2] = {{3000, 500}, {3000, 500}};
	assert_int_equal(utimes(usr, t4), 0);
	put("/etc/.updated", "# written by systemd-update-done\nTIMESTAMP_NSEC=3000000600000\n");
	struct timeval t5[2] = {{3000, 0}, {3000, 0}};
	assert_int_equal(utimes(upd, t5), 0);
	assert_false(keel_cond_needs_update(usr, etc));
	put("/etc/.updated", "TIMESTAMP_NSEC=3000000400000\n");
	assert_int_equal(utimes(upd, t5), 0);
	assert_true(keel_cond_needs_update(usr, etc));
}

static void cgroup_controllers(void **state)
{
	(void)state;
	const char *avail = "cpuset cpu io memory pids\n";
	assert_true(keel_cond_cg_controllers("memory", avail));
	assert_true(keel_cond_cg_controllers("cpu memory pids", avail));
	assert_false(keel_cond_cg_controllers("cpu devices", avail));
	assert_false(keel_cond_cg_controllers("cpuacct", avail)); /* not "cpu"'s prefix match */
	assert_true(keel_cond_cg_controllers("memory bogus", avail)); /* unknown names ignored */
	assert_true(keel_cond_cg_controllers("bogus", avail));
}

static void ordered_comparisons(void **state)
{
	(void)state;
	assert_int_equal(keel_cond_order_u64("2", 4, false), 1); /* no operator: >= */
	assert_int_equal(keel_cond_order_u64("8", 4, false), 0);
	assert_int_equal(keel_cond_order_u64("<=4", 4, false), 1);
	assert_int_equal(keel_cond_order_u64("< 4", 4, false), 0);
	assert_int_equal(keel_cond_order_u64("=4", 4, false), 1);
	assert_int_equal(keel_cond_order_u64("==4", 4, false), 1);
	assert_int_equal(keel_cond_order_u64("!=4", 4, false), 0);
	assert_int_equal(keel_cond_order_u64(">3", 4, false), 1);
	assert_int_equal(keel_cond_order_u64("1G", 2ULL << 30, true), 1);
	assert_int_equal(keel_cond_order_u64("<1G", 2ULL << 30, true), 0);
	assert_int_equal(keel_cond_order_u64(">= 512M", 1ULL << 30, true), 1);
	assert_int_equal(keel_cond_order_u64("lots", 1, false), -1);
	assert_int_equal(keel_cond_order_u64("<>4", 4, false), 0); /* "<>" is "!=" */
	assert_int_equal(keel_cond_order_u64("<>5", 4, false), 1);
}

static void os_release(void **state)
{
	(void)state;
	const char *t = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n"
			"VERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nID=debian\nHOME_URL='https://x/'\n";
	assert_int_equal(keel_cond_os_release(t, "ID=debian"), 1);
	assert_int_equal(keel_cond_os_release(t, "ID!=debian"), 0);
	assert_int_equal(keel_cond_os_release(t, "ID=fedora"), 0);
	assert_int_equal(keel_cond_os_release(t, "VERSION_ID>=11"), 1);
	assert_int_equal(keel_cond_os_release(t, "VERSION_ID<12"), 0);
	assert_int_equal(keel_cond_os_release(t, "VERSION_ID>9"), 1); /* versions, not strings */
	assert_int_equal(keel_cond_os_release(t, "VERSION_ID==12"), 1);
	assert_int_equal(keel_cond_os_release(t, "VERSION_ID<>12"), 0);
	assert_int_equal(keel_cond_os_release(t, "NAME$=Debian*"), 1);
	assert_int_equal(keel_cond_os_release(t, "NAME!$=Debian*"), 0);
	assert_int_equal(keel_cond_os_release(t, "\"PRETTY_NAME=Debian GNU/Linux 12 (bookworm)\""), 1);
	assert_int_equal(keel_cond_os_release(t, "ID=debian VERSION_CODENAME=bookworm"), 1); /* all */
	assert_int_equal(keel_cond_os_release(t, "ID=debian VERSION_CODENAME=trixie"), 0);
	assert_int_equal(keel_cond_os_release(t, "HOME_URL=https://x/"), 1);
	assert_int_equal(keel_cond_os_release(t, "VARIANT_ID="), 1); /* missing: "" */
	assert_int_equal(keel_cond_os_release(t, "debian"), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(virt_container_files_and_names, setup, teardown),
		cmocka_unit_test_setup_teardown(virt_vm_dmi_and_cpuid, setup, teardown),
		cmocka_unit_test(kernel_cmdline_words),
		cmocka_unit_test(capabilities),
		cmocka_unit_test_setup_teardown(ac_power, setup, teardown),
		cmocka_unit_test_setup_teardown(needs_update, setup, teardown),
		cmocka_unit_test(cgroup_controllers),
		cmocka_unit_test(ordered_comparisons),
		cmocka_unit_test(os_release),
	};
	return cmocka_run_group_tests_name("init/condition", tests, NULL, NULL);
}
