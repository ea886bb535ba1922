/* lib/run's config.json parser: the fields, their types and ranges, the rejections that name the
 * field, contradictions; plus the name tables and the state file round trip. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <seccomp.h>

#include "base/buf.h"
#include "base/errors.h"
#include "run/spec.h"
#include "run/state.h"
#include "testutil.h"

/* What `runc spec` writes (terminal off), the base every test changes one thing in. */
static const char base[] =
	"{\"ociVersion\": \"1.0.2-dev\","
	" \"process\": {\"terminal\": false, \"user\": {\"uid\": 0, \"gid\": 0},"
	"  \"args\": [\"sh\"], \"env\": [\"PATH=/bin\", \"TERM=xterm\"], \"cwd\": \"/\","
	"  \"capabilities\": {\"bounding\": [\"CAP_AUDIT_WRITE\", \"CAP_KILL\"],"
	"   \"effective\": [\"CAP_KILL\"], \"permitted\": [\"CAP_KILL\"], \"ambient\": [\"CAP_KILL\"]},"
	"  \"rlimits\": [{\"type\": \"RLIMIT_NOFILE\", \"hard\": 1024, \"soft\": 512}],"
	"  \"noNewPrivileges\": true},"
	" \"root\": {\"path\": \"rootfs\", \"readonly\": true},"
	" \"hostname\": \"runc\","
	" \"mounts\": ["
	"  {\"destination\": \"/proc\", \"type\": \"proc\", \"source\": \"proc\"},"
	"  {\"destination\": \"/dev\", \"type\": \"tmpfs\", \"source\": \"tmpfs\","
	"   \"options\": [\"nosuid\", \"strictatime\", \"mode=755\", \"size=65536k\"]},"
	"  {\"destination\": \"/data\", \"type\": \"bind\", \"source\": \"/srv\","
	"   \"options\": [\"rbind\", \"ro\", \"rprivate\"]}],"
	" \"linux\": {"
	"  \"resources\": {\"devices\": [{\"allow\": false, \"access\": \"rwm\"}]},"
	"  \"namespaces\": [{\"type\": \"pid\"}, {\"type\": \"network\"}, {\"type\": \"ipc\"},"
	"   {\"type\": \"uts\"}, {\"type\": \"mount\"}],"
	"  \"maskedPaths\": [\"/proc/kcore\"], \"readonlyPaths\": [\"/proc/sys\"]}}";

/* Parse base with the member at dotted `path` replaced by `value` (JSON text), or removed when
 * value is NULL. */
static int parse_mod(const char *path, const char *value, struct keel_spec **ret, struct keel_err *err)
{
	json_t *doc = json_loads(base, 0, NULL);
	assert_non_null(doc);
	if (path) {
		char buf[256];
		snprintf(buf, sizeof(buf), "%s", path);
		json_t *node = doc;
		char *key = buf, *dot;
		while ((dot = strchr(key, '.'))) {
			*dot = 0;
			json_t *next = json_object_get(node, key);
			if (!next) {
				next = json_object();
				json_object_set_new(node, key, next);
			}
			node = next;
			key = dot + 1;
		}
		if (value) {
			json_error_t jerr;
			json_t *v = json_loads(value, JSON_DECODE_ANY, &jerr);
			if (!v)
				fail_msg("bad test value %s: %s", value, jerr.text);
			json_object_set_new(node, key, v);
		} else {
			json_object_del(node, key);
		}
	}
	char *text = json_dumps(doc, 0);
	json_decref(doc);
	keel_err_clear(err);
	int r = keel_spec_parse(text, strlen(text), ret, err);
	free(text);
	return r;
}

static void expect_error(const char *path, const char *value, const char *needle)
{
	struct keel_spec *spec = NULL;
	struct keel_err err;
	int r = parse_mod(path, value, &spec, &err);
	if (r == 0) {
		keel_spec_free(spec);
		fail_msg("%s=%s parsed, expected an error with \"%s\"", path, value ? value : "(removed)",
			 needle);
	}
	if (!strstr(keel_err_msg(&err), needle))
		fail_msg("%s=%s: message \"%s\" lacks \"%s\"", path, value ? value : "(removed)",
			 keel_err_msg(&err), needle);
}

static struct keel_spec *expect_ok(const char *path, const char *value)
{
	struct keel_spec *spec = NULL;
	struct keel_err err;
	if (parse_mod(path, value, &spec, &err) != 0)
		fail_msg("%s=%s: %s", path ? path : "base", value ? value : "", keel_err_msg(&err));
	return spec;
}

static void test_runc_default_spec(void **state)
{
	struct keel_spec *s = expect_ok(NULL, NULL);
	assert_string_equal(s->root_path, "rootfs");
	assert_true(s->root_readonly);
	assert_string_equal(s->hostname, "runc");
	assert_true(s->has_process);
	assert_string_equal(s->process.args[0], "sh");
	assert_null(s->process.args[1]);
	assert_string_equal(s->process.env[1], "TERM=xterm");
	assert_true(s->process.no_new_privileges);
	assert_int_equal(s->process.caps[0], 1ull << 29 | 1ull << 5);
	assert_int_equal(s->process.caps[1], 1ull << 5);
	assert_int_equal(s->process.caps[2], 0);
	assert_int_equal(s->process.n_rlimits, 1);
	assert_int_equal(s->process.rlimits[0].resource, RLIMIT_NOFILE);
	assert_int_equal(s->process.rlimits[0].soft, 512);
	assert_int_equal(s->n_mounts, 3);
	assert_int_equal(s->mounts[1].flags, MS_NOSUID | MS_STRICTATIME);
	assert_string_equal(s->mounts[1].data, "mode=755,size=65536k");
	assert_true(s->mounts[2].bind);
	assert_int_equal(s->mounts[2].flags, MS_REC | MS_RDONLY);
	assert_int_equal(s->mounts[2].propagation, MS_PRIVATE | MS_REC);
	assert_null(s->mounts[2].type);
	assert_int_equal(s->ns_new, 1u << KEEL_NS_PID | 1u << KEEL_NS_NET | 1u << KEEL_NS_IPC |
					     1u << KEEL_NS_UTS | 1u << KEEL_NS_MNT);
	assert_int_equal(s->ns_join, 0);
	assert_int_equal(s->resources.n_devices, 1);
	assert_false(s->resources.devices[0].allow);
	assert_int_equal(s->resources.devices[0].type, 'a');
	assert_int_equal(s->resources.devices[0].major, -1);
	assert_string_equal(s->resources.devices[0].access, "rwm");
	assert_string_equal(s->masked_paths[0], "/proc/kcore");
	assert_null(s->seccomp);
	keel_spec_free(s);
}

static void test_resources_and_namespaces(void **state)
{
	struct keel_spec *s = expect_ok(
		"linux.resources",
		"{\"memory\": {\"limit\": 1048576, \"reservation\": 524288, \"swap\": 2097152},"
		" \"cpu\": {\"shares\": 512, \"quota\": 50000, \"period\": 100000, \"cpus\": \"0-1\","
		"  \"mems\": \"0\"}, \"pids\": {\"limit\": 32}, \"blockIO\": {\"weight\": 300},"
		" \"devices\": [{\"allow\": true, \"type\": \"c\", \"major\": 1, \"minor\": 3,"
		"  \"access\": \"rw\"}]}");
	const struct keel_spec_resources *r = &s->resources;
	assert_true(r->has_memory_limit && r->memory_limit == 1048576);
	assert_true(r->has_memory_swap && r->memory_swap == 2097152);
	assert_true(r->has_cpu_quota && r->cpu_quota == 50000);
	assert_string_equal(r->cpus, "0-1");
	assert_int_equal(r->pids_limit, 32);
	assert_int_equal(r->blkio_weight, 300);
	assert_int_equal(r->devices[0].minor, 3);
	keel_spec_free(s);

	s = expect_ok("linux.namespaces",
		      "[{\"type\": \"mount\"}, {\"type\": \"network\", \"path\": \"/run/netns/x\"},"
		      " {\"type\": \"uts\"}, {\"type\": \"time\"}]");
	assert_int_equal(s->ns_join, 1u << KEEL_NS_NET);
	assert_string_equal(s->ns_path[KEEL_NS_NET], "/run/netns/x");
	assert_true(s->ns_new & (1u << KEEL_NS_TIME));
	keel_spec_free(s);
}

static void test_seccomp_profile(void **state)
{
	struct keel_spec *s = expect_ok(
		"linux.seccomp",
		"{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"defaultErrnoRet\": 38,"
		" \"architectures\": [\"SCMP_ARCH_X86_64\", \"SCMP_ARCH_X86\"],"
		" \"flags\": [\"SECCOMP_FILTER_FLAG_LOG\"],"
		" \"syscalls\": [{\"names\": [\"read\", \"write\"], \"action\": \"SCMP_ACT_ALLOW\"},"
		"  {\"names\": [\"personality\"], \"action\": \"SCMP_ACT_ALLOW\","
		"   \"args\": [{\"index\": 0, \"value\": 8, \"op\": \"SCMP_CMP_EQ\"}]},"
		"  {\"names\": [\"mkdir\"], \"action\": \"SCMP_ACT_ERRNO\"}]}");
	const struct keel_spec_seccomp *sc = s->seccomp;
	assert_non_null(sc);
	assert_int_equal(sc->default_action, SCMP_ACT_ERRNO(38));
	assert_int_equal(sc->n_archs, 2);
	assert_int_equal(sc->archs[0], SCMP_ARCH_X86_64);
	assert_int_equal(sc->n_rules, 3);
	assert_string_equal(sc->rules[0].names[1], "write");
	assert_int_equal(sc->rules[1].n_args, 1);
	assert_int_equal(sc->rules[1].args[0].op, SCMP_CMP_EQ);
	assert_int_equal(sc->rules[1].args[0].value, 8);
	assert_int_equal(sc->rules[2].action, SCMP_ACT_ERRNO(EPERM));
	keel_spec_free(s);
	expect_error("linux.seccomp", "{\"defaultAction\": \"SCMP_ACT_NOPE\"}", "unknown seccomp action");
	expect_error("linux.seccomp", "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"listenerPath\": \"/x\"}",
		     "linux.seccomp.listenerPath is not supported");
	expect_error("linux.seccomp",
		     "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"x\"],"
		     " \"action\": \"SCMP_ACT_ALLOW\", \"args\": [{\"index\": 9, \"value\": 1,"
		     " \"op\": \"SCMP_CMP_EQ\"}]}]}",
		     "syscalls[0].args[0].index must be 0..5");
}

static void test_rejections_name_the_field(void **state)
{
	expect_error("linux.intelRdt", "{\"closID\": \"x\"}", "linux.intelRdt is not supported");
	expect_error("process.bogus", "1", "process.bogus: unknown field");
	expect_error("linux.resources.memory", "{\"kernel\": 100}", "linux.resources.memory.kernel is not supported");
	expect_error("linux.resources.hugepageLimits", "[{\"pageSize\": \"2MB\", \"limit\": 1}]",
		     "hugepageLimits is not supported");
	expect_error("process.cwd", "\"relative\"", "process.cwd must be an absolute path");
	expect_error("process.cwd", "7", "process.cwd must be a string, not an integer");
	expect_error("process.user", NULL, "process.user is required");
	expect_error("process.args", "[]", "process.args must not be empty");
	expect_error("process.args", "[\"a\", 3]", "process.args[1] must be a string");
	expect_error("process.env", "[\"NOEQUALS\"]", "process.env[0]");
	expect_error("process.capabilities.bounding", "[\"CAP_FLY\"]", "unknown capability \"CAP_FLY\"");
	expect_error("process.rlimits", "[{\"type\": \"RLIMIT_NOFILE\", \"hard\": 1, \"soft\": 2}]",
		     "soft limit 2 is above hard limit 1");
	expect_error("process.rlimits", "[{\"type\": \"RLIMIT_BOGUS\", \"hard\": 1, \"soft\": 1}]",
		     "unknown rlimit");
	expect_error("process.oomScoreAdj", "1001", "outside -1000..1000");
	expect_error("linux.namespaces", "[{\"type\": \"mount\"}, {\"type\": \"mount\"}]", "listed twice");
	expect_error("linux.namespaces", "[{\"type\": \"mount\"}, {\"type\": \"bogus\"}]",
		     "linux.namespaces[1].type: unknown namespace type \"bogus\"");
	expect_error("linux.namespaces", "[{\"type\": \"pid\"}, {\"type\": \"uts\"}]", "must include a new mount namespace");
	expect_error("linux.resources.memory", "{\"limit\": 2000000, \"swap\": 1000000}",
		     "must not be below memory.limit");
	expect_error("linux.resources.cpu", "{\"cpus\": \"0-a\"}", "is not a list");
	expect_error("linux.cgroupsPath", "\"system.slice:keel:x\"", "systemd form");
	expect_error("linux.cgroupsPath", "\"/a/../../etc\"", "must not contain \"..\"");
	expect_error("linux.sysctl", "{\"kernel.panic\": \"1\"}", "setting it would change the host");
	expect_error("linux.uidMappings", "[{\"containerID\": 0, \"hostID\": 1000, \"size\": 1}]",
		     "need a new user namespace");
	expect_error("mounts", "[{\"destination\": \"/x\"}]", "a mount needs a type");
	expect_error("mounts", "[{\"destination\": \"x\", \"type\": \"tmpfs\"}]",
		     "mounts[0].destination must be an absolute path");
	expect_error("mounts", "[{\"destination\": \"/x\", \"type\": \"bind\", \"source\": \"/y\","
		     " \"options\": [\"rro\"]}]", "\"rro\" is not supported");
	expect_error("hooks.prestart", "[{\"path\": \"/bin/x\", \"timeout\": 0}]",
		     "hooks.prestart[0].timeout must be a positive number");
	expect_error("hooks.poststop", "[{\"path\": \"bin/x\"}]", "must be an absolute path");
	expect_error("linux.timeOffsets", "{\"monotonic\": {\"secs\": 1}}", "need a new time namespace");
	expect_error("ociVersion", "\"2.0.0\"", "is not supported");
	expect_error("root", NULL, "root is required");
	expect_error("annotations", "{\"a\": 1}", "annotations.a must be a string");
}

static void test_contradictions(void **state)
{
	/* A hostname without a uts namespace would rename the host. */
	expect_error("linux.namespaces", "[{\"type\": \"mount\"}]", "hostname needs a new uts namespace");
	expect_error("linux.namespaces",
		     "[{\"type\": \"mount\"}, {\"type\": \"uts\"}, {\"type\": \"user\"}]",
		     "needs linux.uidMappings and linux.gidMappings");
	/* Empty values of unsupported fields are harmless and accepted. */
	keel_spec_free(expect_ok("linux.intelRdt", "{}"));
	keel_spec_free(expect_ok("process.apparmorProfile", "\"\""));
}

static void test_malformed_json(void **state)
{
	struct keel_spec *s;
	struct keel_err err;
	keel_err_clear(&err);
	assert_int_equal(keel_spec_parse("{\"ociVersion\": ", 15, &s, &err), -KEEL_EPARSE);
	assert_non_null(strstr(keel_err_msg(&err), "line 1"));
	assert_int_equal(keel_spec_parse("[1]", 3, &s, &err), -KEEL_ETYPE);
}

static void test_name_tables(void **state)
{
	assert_int_equal(keel_signal_from_name("SIGTERM"), SIGTERM);
	assert_int_equal(keel_signal_from_name("term"), SIGTERM);
	assert_int_equal(keel_signal_from_name("KILL"), SIGKILL);
	assert_int_equal(keel_signal_from_name("9"), 9);
	assert_int_equal(keel_signal_from_name("RTMIN+2"), SIGRTMIN + 2);
	assert_int_equal(keel_signal_from_name("65"), -1);
	assert_int_equal(keel_signal_from_name("SIGNOPE"), -1);
	assert_int_equal(keel_cap_from_name("CAP_CHECKPOINT_RESTORE"), 40);
	assert_string_equal(keel_cap_name(21), "CAP_SYS_ADMIN");
	assert_int_equal(keel_cap_from_name("cap_chown"), -1);
	assert_int_equal(keel_ns_clone_flag(KEEL_NS_NET), CLONE_NEWNET);
	assert_string_equal(keel_hook_name(KEEL_HOOK_CREATE_RUNTIME), "createRuntime");
	assert_true(keel_cstate_valid_id("a-b_c+d.e9"));
	assert_false(keel_cstate_valid_id(".."));
	assert_false(keel_cstate_valid_id("a/b"));
	assert_false(keel_cstate_valid_id(""));
}

/* `spec` output parses back (both flavours); `features` is JSON naming what the parser takes. */
static void test_default_spec_and_features(void **state)
{
	(void)state;
	struct keel_err err;
	keel_err_clear(&err);
	for (int rootless = 0; rootless < 2; rootless++) {
		struct keel_buf b = KEEL_BUF_INIT;
		struct keel_spec *spec;
		assert_int_equal(keel_spec_default(rootless, &b), 0);
		int r = keel_spec_parse(b.data, b.len, &spec, &err);
		if (r < 0)
			fail_msg("%s", keel_err_msg(&err));
		assert_true(spec->process.terminal && spec->root_readonly);
		assert_string_equal(spec->process.args[0], "sh");
		assert_int_equal(!!(spec->ns_new & (1u << KEEL_NS_USER)), rootless);
		assert_int_equal(!!(spec->ns_new & (1u << KEEL_NS_NET)), !rootless);
		assert_int_equal(spec->n_mounts, 7);
		keel_spec_free(spec);
		keel_buf_free(&b);
	}
	struct keel_buf b = KEEL_BUF_INIT;
	assert_int_equal(keel_run_features(&b), 0);
	json_t *doc = json_loadb(b.data, b.len, 0, NULL);
	assert_non_null(doc);
	json_t *acts = json_object_get(json_object_get(json_object_get(doc, "linux"), "seccomp"), "actions");
	assert_true(json_array_size(acts) >= 7);
	assert_non_null(strstr(b.data, "\"SCMP_CMP_MASKED_EQ\""));
	assert_non_null(strstr(b.data, "\"rslave\""));
	json_decref(doc);
	keel_buf_free(&b);
}

/* `update --resources`: the object alone, with the same checks as inside config.json. */
static void test_resources_alone(void **state)
{
	(void)state;
	struct keel_err err;
	struct keel_spec *spec;
	keel_err_clear(&err);
	json_t *doc = json_loads("{\"memory\": {\"limit\": 1048576, \"swap\": -1}, \"cpu\": "
				 "{\"cpus\": \"0-1\"}, \"pids\": {\"limit\": 9}}", 0, NULL);
	assert_int_equal(keel_spec_parse_resources(doc, &spec, &err), 0);
	assert_true(spec->resources.has_memory_limit && spec->resources.memory_limit == 1048576);
	assert_true(spec->resources.has_memory_swap && spec->resources.memory_swap == -1);
	assert_string_equal(spec->resources.cpus, "0-1");
	assert_int_equal(spec->resources.pids_limit, 9);
	assert_false(spec->resources.has_cpu_shares);
	keel_spec_free(spec);
	doc = json_loads("{\"memory\": {\"kernel\": 5}}", 0, NULL);
	assert_true(keel_spec_parse_resources(doc, &spec, &err) < 0);
	assert_non_null(strstr(keel_err_msg(&err), "linux.resources.memory.kernel"));
	doc = json_loads("[1]", 0, NULL);
	assert_int_equal(keel_spec_parse_resources(doc, &spec, &err), -KEEL_ETYPE);
}

static void test_state_round_trip(void **state)
{
	char dir[64];
	struct keel_err err;
	keel_err_clear(&err);
	assert_int_equal(test_make_tmpdir("runstate", dir, sizeof(dir)), 0);
	int fd = keel_cstate_create_dir(dir, "c1", &err);
	assert_true(fd >= 0);
	assert_int_equal(keel_cstate_create_dir(dir, "c1", &err), -EEXIST);
	assert_string_equal(keel_err_msg(&err), "container with id exists: c1");
	char *dirs[] = {"/sys/fs/cgroup/memory/x/c1", "/sys/fs/cgroup/memory/x", NULL};
	struct keel_cstate st = {
		.id = "c1", .pid = getpid(), .pid_start = keel_pid_start_time(getpid()),
		.bundle = "/b", .rootfs = "/b/rootfs", .created_ns = 1700000000123456789ll,
		.annotations = "{\"k\":\"v\"}", .hooks = "{\"poststop\":[]}", .cgroup_dirs = dirs,
		.cgroup_procs = "/sys/fs/cgroup/pids/x/c1/cgroup.procs", .own_pidns = true,
	};
	struct keel_cstate back;
	/* Half way through a create only creating.json is there: no state yet, but its cgroups. */
	assert_int_equal(keel_cstate_load_creating(fd, "c1", &back, &err), -ENOENT);
	assert_int_equal(keel_cstate_save_creating(fd, &st, &err), 0);
	assert_int_equal(keel_cstate_load(fd, "c1", &back, &err), -ENOENT);
	assert_int_equal(keel_cstate_load_creating(fd, "c1", &back, &err), 0);
	assert_string_equal(back.cgroup_dirs[0], "/sys/fs/cgroup/memory/x/c1");
	assert_string_equal(back.cgroup_procs, st.cgroup_procs);
	keel_cstate_free(&back);
	assert_int_equal(keel_cstate_save(fd, &st, &err), 0);
	assert_int_equal(keel_cstate_load_creating(fd, "c1", &back, &err), -ENOENT);
	assert_int_equal(keel_cstate_save_creating(fd, &st, &err), 0); /* remove_dir takes it too */
	assert_int_equal(keel_cstate_load(fd, "c1", &back, &err), 0);
	assert_string_equal(back.id, "c1");
	assert_int_equal(back.pid, getpid());
	assert_int_equal(back.created_ns, st.created_ns);
	assert_string_equal(back.cgroup_dirs[1], "/sys/fs/cgroup/memory/x");
	assert_string_equal(back.annotations, "{\"k\":\"v\"}");
	assert_true(back.own_pidns);
	/* We are alive and there is no exec.fifo: running. */
	assert_int_equal(keel_cstate_status(fd, &back), KEEL_CSTATUS_RUNNING);
	back.pid_start++; /* another process with our pid */
	assert_int_equal(keel_cstate_status(fd, &back), KEEL_CSTATUS_STOPPED);
	struct keel_buf b = KEEL_BUF_INIT;
	assert_int_equal(keel_cstate_json(&back, KEEL_CSTATUS_STOPPED, false, &b), 0);
	assert_non_null(strstr(b.data, "\"status\":\"stopped\""));
	assert_non_null(strstr(b.data, "\"pid\":0"));
	assert_non_null(strstr(b.data, "\"created\":\"2023-11-14T22:13:20.123456789Z\""));
	assert_non_null(strstr(b.data, "\"annotations\":{\"k\":\"v\"}"));
	keel_buf_free(&b);
	keel_cstate_free(&back);
	assert_int_equal(keel_cstate_remove_dir(dir, "c1", fd, &err), 0);
	close(fd);

	/* The hierarchies' directories survive the round trip, and a frozen freezer makes a live
	 * container paused (a plain directory stands in for the cgroup). */
	char freezer[128], file[160];
	snprintf(freezer, sizeof(freezer), "%s/freezer", dir);
	assert_int_equal(mkdir(freezer, 0700), 0);
	snprintf(file, sizeof(file), "%s/freezer.state", freezer);
	FILE *f = fopen(file, "w");
	assert_non_null(f);
	fputs("FROZEN\n", f);
	fclose(f);
	char *names[] = {"memory", "freezer", NULL}, *paths[] = {"/sys/fs/cgroup/memory/x/c2", freezer, NULL};
	st.id = "c2";
	st.cgroup_mode = 2;
	st.cgroup_names = names;
	st.cgroup_paths = paths;
	fd = keel_cstate_create_dir(dir, "c2", &err);
	assert_true(fd >= 0);
	assert_int_equal(keel_cstate_save(fd, &st, &err), 0);
	assert_int_equal(keel_cstate_load(fd, "c2", &back, &err), 0);
	assert_int_equal(back.cgroup_mode, 2);
	assert_string_equal(back.cgroup_names[1], "freezer");
	assert_string_equal(keel_cstate_cgroup(&back, "freezer"), freezer);
	assert_null(keel_cstate_cgroup(&back, "cpu"));
	assert_int_equal(keel_cstate_status(fd, &back), KEEL_CSTATUS_PAUSED);
	assert_string_equal(keel_cstatus_name(KEEL_CSTATUS_PAUSED), "paused");
	f = fopen(file, "w");
	fputs("THAWED\n", f);
	fclose(f);
	assert_int_equal(keel_cstate_status(fd, &back), KEEL_CSTATUS_RUNNING);
	keel_cstate_free(&back);
	assert_int_equal(keel_cstate_remove_dir(dir, "c2", fd, &err), 0);
	close(fd);
	unlink(file);
	rmdir(freezer);
	assert_int_equal(keel_cstate_lock(dir, "c1", false, &err), -ENOENT);
	assert_string_equal(keel_err_msg(&err), "container does not exist");
	test_remove_tree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_runc_default_spec),
		cmocka_unit_test(test_resources_and_namespaces),
		cmocka_unit_test(test_seccomp_profile),
		cmocka_unit_test(test_rejections_name_the_field),
		cmocka_unit_test(test_contradictions),
		cmocka_unit_test(test_malformed_json),
		cmocka_unit_test(test_name_tables),
		cmocka_unit_test(test_state_round_trip),
		cmocka_unit_test(test_default_spec_and_features),
		cmocka_unit_test(test_resources_alone),
	};
	return cmocka_run_group_tests_name("run/spec", tests, NULL, NULL);
}
