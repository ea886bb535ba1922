/* config.json: the document, process, root, hostname, mounts and hooks (runtime-spec config.md).
 * The linux object is in spec_linux.c. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>

#include "base/buf.h"
#include "base/json.h"
#include "base/mem.h"
#include "base/str.h"
#include "run/spec-internal.h"

static const char *const cap_names[] = {
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
	"CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
	"CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
	"CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
	"CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
	"CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
};

int keel_cap_from_name(const char *name)
{
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(cap_names); i++)
		if (strcmp(cap_names[i], name) == 0)
			return (int)i;
	return -1;
}

const char *keel_cap_name(int cap)
{
	return cap >= 0 && (size_t)cap < KEEL_ARRAY_SIZE(cap_names) ? cap_names[cap] : NULL;
}

static const struct {
	const char *name;
	int sig;
} signals[] = {
	{"HUP", SIGHUP}, {"INT", SIGINT}, {"QUIT", SIGQUIT}, {"ILL", SIGILL}, {"TRAP", SIGTRAP},
	{"ABRT", SIGABRT}, {"IOT", SIGIOT}, {"BUS", SIGBUS}, {"FPE", SIGFPE}, {"KILL", SIGKILL},
	{"USR1", SIGUSR1}, {"SEGV", SIGSEGV}, {"USR2", SIGUSR2}, {"PIPE", SIGPIPE},
	{"ALRM", SIGALRM}, {"TERM", SIGTERM}, {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD},
	{"CONT", SIGCONT}, {"STOP", SIGSTOP}, {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN},
	{"TTOU", SIGTTOU}, {"URG", SIGURG}, {"XCPU", SIGXCPU}, {"XFSZ", SIGXFSZ},
	{"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"IO", SIGIO},
	{"POLL", SIGPOLL}, {"PWR", SIGPWR}, {"SYS", SIGSYS},
};

int keel_signal_from_name(const char *name)
{
	uint64_t n;
	if (keel_parse_u64(name, &n) == 0)
		return n >= 1 && n <= 64 ? (int)n : -1;
	const char *s = keel_startswith(name, "SIG") ? name + 3 : name;
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(signals); i++)
		if (strcasecmp(signals[i].name, s) == 0)
			return signals[i].sig;
	/* RTMIN+n and RTMAX-n, as runc accepts them. */
	const char *rest;
	if ((rest = keel_startswith(s, "RTMIN"))) {
		if (!*rest)
			return SIGRTMIN;
		if (*rest == '+' && keel_parse_u64(rest + 1, &n) == 0 && SIGRTMIN + (int64_t)n <= SIGRTMAX)
			return SIGRTMIN + (int)n;
	} else if ((rest = keel_startswith(s, "RTMAX"))) {
		if (!*rest)
			return SIGRTMAX;
		if (*rest == '-' && keel_parse_u64(rest + 1, &n) == 0 && SIGRTMAX - (int64_t)n >= SIGRTMIN)
			return SIGRTMAX - (int)n;
	}
	return -1;
}

static const char *const hook_names[KEEL_HOOK_KINDS] = {
	"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop",
};

const char *keel_hook_name(enum keel_hook_kind kind)
{
	return (unsigned)kind < KEEL_HOOK_KINDS ? hook_names[kind] : "?";
}

/* ---- shared helpers ---- */

static bool is_empty_value(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_NULL:
	case JSON_FALSE: return true;
	case JSON_OBJECT: return json_object_size(v) == 0;
	case JSON_ARRAY: return json_array_size(v) == 0;
	case JSON_STRING: return json_string_length(v) == 0;
	case JSON_INTEGER: return json_integer_value(v) == 0;
	default: return false;
	}
}

int keel__spec_fields(const json_t *obj, const char *where, const char *const *known,
		      const char *const *unsupported, struct keel_err *err)
{
	const char *key;
	json_t *v;
	const char *dot = *where ? "." : "";
	json_object_foreach((json_t *)obj, key, v) {
		bool ok = false;
		for (size_t i = 0; known && known[i] && !ok; i++)
			ok = strcmp(known[i], key) == 0;
		if (ok)
			continue;
		for (size_t i = 0; unsupported && unsupported[i]; i++)
			if (strcmp(unsupported[i], key) == 0) {
				if (is_empty_value(v))
					goto next;
				return keel_err_set(err, -KEEL_EPARSE,
						    "%s%s%s is not supported by keel-run", where, dot, key);
			}
		return keel_err_set(err, -KEEL_EPARSE, "%s%s%s: unknown field", where, dot, key);
next:;
	}
	return 0;
}

int keel__spec_strv(const json_t *obj, const char *where, const char *key, const char ***ret,
		    struct keel_err *err)
{
	json_t *arr;
	int r = keel_json_get_arr(obj, where, key, false, &arr, err);
	if (r < 0)
		return r;
	if (r > 0) {
		*ret = NULL;
		return 0;
	}
	size_t n = json_array_size(arr);
	const char **v = keel_calloc(n + 1, sizeof(*v));
	if (!v)
		return keel_err_set(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		json_t *s = json_array_get(arr, i);
		if (!json_is_string(s)) {
			keel_free(v);
			return keel_err_set(err, -KEEL_ETYPE, "%s%s%s[%zu] must be a string", where,
					    *where ? "." : "", key, i);
		}
		if (strlen(json_string_value(s)) != json_string_length(s)) {
			keel_free(v);
			return keel_err_set(err, -KEEL_EPARSE, "%s%s%s[%zu] contains a NUL byte",
					    where, *where ? "." : "", key, i);
		}
		v[i] = json_string_value(s);
	}
	*ret = v;
	return 0;
}

int keel__spec_uint(const json_t *obj, const char *where, const char *key, uint64_t max,
		    uint64_t *ret, struct keel_err *err)
{
	uint64_t v;
	int r = keel_json_get_u64(obj, where, key, false, &v, err);
	if (r)
		return r;
	if (v > max)
		return keel_err_set(err, -KEEL_ERANGE, "%s%s%s: %llu is out of range (max %llu)", where,
				    *where ? "." : "", key, (unsigned long long)v, (unsigned long long)max);
	*ret = v;
	return 0;
}

/* A string member that must not contain NUL bytes (jansson allows them; C paths do not). */
static int get_cstr(const json_t *obj, const char *where, const char *key, bool required,
		    const char **ret, struct keel_err *err)
{
	int r = keel_json_get_str(obj, where, key, required, ret, err);
	if (r == 0 && strlen(*ret) != json_string_length(json_object_get(obj, key)))
		return keel_err_set(err, -KEEL_EPARSE, "%s%s%s contains a NUL byte", where,
				    *where ? "." : "", key);
	return r;
}

/* ---- process ---- */

static const struct {
	const char *name;
	int resource;
} rlimit_names[] = {
	{"RLIMIT_AS", RLIMIT_AS}, {"RLIMIT_CORE", RLIMIT_CORE}, {"RLIMIT_CPU", RLIMIT_CPU},
	{"RLIMIT_DATA", RLIMIT_DATA}, {"RLIMIT_FSIZE", RLIMIT_FSIZE}, {"RLIMIT_LOCKS", RLIMIT_LOCKS},
	{"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK}, {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
	{"RLIMIT_NICE", RLIMIT_NICE}, {"RLIMIT_NOFILE", RLIMIT_NOFILE}, {"RLIMIT_NPROC", RLIMIT_NPROC},
	{"RLIMIT_RSS", RLIMIT_RSS}, {"RLIMIT_RTPRIO", RLIMIT_RTPRIO}, {"RLIMIT_RTTIME", RLIMIT_RTTIME},
	{"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING}, {"RLIMIT_STACK", RLIMIT_STACK},
};

static int parse_caps(struct keel_spec *spec, const json_t *caps, struct keel_err *err)
{
	static const char *const sets[] = {"bounding", "effective", "inheritable", "permitted",
					   "ambient", NULL};
	int r = keel__spec_fields(caps, "process.capabilities", sets, NULL, err);
	if (r < 0)
		return r;
	spec->process.has_caps = true;
	for (int s = 0; s < 5; s++) {
		json_t *arr;
		char where[KEEL__WHERE_MAX];
		keel__where(where, "process.capabilities.%s", sets[s]);
		r = keel_json_get_arr(caps, "process.capabilities", sets[s], false, &arr, err);
		if (r < 0)
			return r;
		if (r > 0)
			continue;
		size_t i;
		json_t *v;
		json_array_foreach(arr, i, v) {
			if (!json_is_string(v))
				return keel_err_set(err, -KEEL_ETYPE, "%s[%zu] must be a string", where, i);
			int cap = keel_cap_from_name(json_string_value(v));
			if (cap < 0)
				return keel_err_set(err, -KEEL_EPARSE, "%s[%zu]: unknown capability \"%s\"",
						    where, i, json_string_value(v));
			spec->process.caps[s] |= 1ull << cap;
		}
	}
	return 0;
}

static int parse_user(struct keel_spec *spec, const json_t *user, struct keel_err *err)
{
	static const char *const known[] = {"uid", "gid", "umask", "additionalGids", NULL};
	static const char *const unsupported[] = {"username", NULL};
	int r = keel__spec_fields(user, "process.user", known, unsupported, err);
	uint64_t v;
	if (r < 0)
		return r;
	if ((r = keel_json_get_u64(user, "process.user", "uid", true, &v, err)) < 0)
		return r;
	if (v > UINT32_MAX - 1)
		return keel_err_set(err, -KEEL_ERANGE, "process.user.uid: %llu is out of range",
				    (unsigned long long)v);
	spec->process.uid = (uint32_t)v;
	if ((r = keel_json_get_u64(user, "process.user", "gid", true, &v, err)) < 0)
		return r;
	if (v > UINT32_MAX - 1)
		return keel_err_set(err, -KEEL_ERANGE, "process.user.gid: %llu is out of range",
				    (unsigned long long)v);
	spec->process.gid = (uint32_t)v;
	if ((r = keel__spec_uint(user, "process.user", "umask", 0777, &v, err)) < 0)
		return r;
	if (r == 0) {
		spec->process.has_umask = true;
		spec->process.umask = (uint32_t)v;
	}
	json_t *gids;
	if ((r = keel_json_get_arr(user, "process.user", "additionalGids", false, &gids, err)) < 0)
		return r;
	if (r == 0 && json_array_size(gids)) {
		size_t n = json_array_size(gids);
		if (n > 65536)
			return keel_err_set(err, -KEEL_ERANGE, "process.user.additionalGids: too many");
		spec->process.gids = keel_calloc(n, sizeof(uint32_t));
		if (!spec->process.gids)
			return keel_err_set(err, -ENOMEM, "out of memory");
		for (size_t i = 0; i < n; i++) {
			json_t *g = json_array_get(gids, i);
			if (!json_is_integer(g) || json_integer_value(g) < 0 ||
			    json_integer_value(g) >= UINT32_MAX)
				return keel_err_set(err, -KEEL_ETYPE,
						    "process.user.additionalGids[%zu] must be a gid", i);
			spec->process.gids[i] = (uint32_t)json_integer_value(g);
		}
		spec->process.n_gids = n;
	}
	return 0;
}

static int parse_rlimits(struct keel_spec *spec, const json_t *arr, struct keel_err *err)
{
	size_t n = json_array_size(arr);
	if (!n)
		return 0;
	spec->process.rlimits = keel_calloc(n, sizeof(*spec->process.rlimits));
	if (!spec->process.rlimits)
		return keel_err_set(err, -ENOMEM, "out of memory");
	static const char *const known[] = {"type", "soft", "hard", NULL};
	for (size_t i = 0; i < n; i++) {
		char where[KEEL__WHERE_MAX];
		keel__where(where, "process.rlimits[%zu]", i);
		json_t *o = json_array_get(arr, i);
		const char *type;
		struct keel_spec_rlimit *rl = &spec->process.rlimits[i];
		int r;
		if (!json_is_object(o))
			return keel_err_set(err, -KEEL_ETYPE, "%s must be an object", where);
		if ((r = keel__spec_fields(o, where, known, NULL, err)) < 0 ||
		    (r = keel_json_get_str(o, where, "type", true, &type, err)) < 0 ||
		    (r = keel_json_get_u64(o, where, "soft", true, &rl->soft, err)) < 0 ||
		    (r = keel_json_get_u64(o, where, "hard", true, &rl->hard, err)) < 0)
			return r;
		rl->resource = -1;
		for (size_t k = 0; k < KEEL_ARRAY_SIZE(rlimit_names); k++)
			if (strcmp(rlimit_names[k].name, type) == 0)
				rl->resource = rlimit_names[k].resource;
		if (rl->resource < 0)
			return keel_err_set(err, -KEEL_EPARSE, "%s.type: unknown rlimit \"%s\"", where, type);
		if (rl->soft > rl->hard)
			return keel_err_set(err, -KEEL_EPARSE, "%s: soft limit %llu is above hard limit %llu",
					    where, (unsigned long long)rl->soft,
					    (unsigned long long)rl->hard);
		for (size_t k = 0; k < i; k++)
			if (spec->process.rlimits[k].resource == rl->resource)
				return keel_err_set(err, -KEEL_EPARSE, "%s: %s given twice", where, type);
		spec->process.n_rlimits = i + 1;
	}
	return 0;
}

static int parse_process(struct keel_spec *spec, const json_t *p, struct keel_err *err)
{
	static const char *const known[] = {
		"terminal", "consoleSize", "user", "args", "env", "cwd", "capabilities", "rlimits",
		"noNewPrivileges", "oomScoreAdj", "apparmorProfile", "selinuxLabel", NULL};
	static const char *const unsupported[] = {"commandLine", "ioPriority", "scheduler",
						  "execCPUAffinity", NULL};
	int r;
	json_t *o;
	int64_t i64;
	if ((r = keel__spec_fields(p, "process", known, unsupported, err)) < 0)
		return r;
	spec->has_process = true;
	if ((r = keel_json_get_bool(p, "process", "terminal", false, &spec->process.terminal, err)) < 0)
		return r;
	if ((r = keel_json_get_obj(p, "process", "consoleSize", false, &o, err)) < 0)
		return r;
	if (r == 0) {
		static const char *const cs[] = {"height", "width", NULL};
		uint64_t h = 0, w = 0;
		if ((r = keel__spec_fields(o, "process.consoleSize", cs, NULL, err)) < 0 ||
		    (r = keel__spec_uint(o, "process.consoleSize", "height", UINT16_MAX, &h, err)) < 0 ||
		    (r = keel__spec_uint(o, "process.consoleSize", "width", UINT16_MAX, &w, err)) < 0)
			return r;
		spec->process.console_height = (unsigned)h;
		spec->process.console_width = (unsigned)w;
	}
	if ((r = keel_json_get_obj(p, "process", "user", true, &o, err)) < 0 ||
	    (r = parse_user(spec, o, err)) < 0)
		return r;
	if ((r = keel__spec_strv(p, "process", "args", &spec->process.args, err)) < 0)
		return r;
	if (!spec->process.args || !spec->process.args[0])
		return keel_err_set(err, -KEEL_EMISSING, "process.args must not be empty");
	if ((r = keel__spec_strv(p, "process", "env", &spec->process.env, err)) < 0)
		return r;
	for (size_t i = 0; spec->process.env && spec->process.env[i]; i++)
		if (!strchr(spec->process.env[i], '=') || spec->process.env[i][0] == '=')
			return keel_err_set(err, -KEEL_EPARSE, "process.env[%zu]: \"%s\" is not NAME=VALUE",
					    i, spec->process.env[i]);
	if ((r = get_cstr(p, "process", "cwd", true, &spec->process.cwd, err)) < 0)
		return r;
	if (spec->process.cwd[0] != '/')
		return keel_err_set(err, -KEEL_EPARSE, "process.cwd must be an absolute path, not \"%s\"",
				    spec->process.cwd);
	if ((r = keel_json_get_obj(p, "process", "capabilities", false, &o, err)) < 0)
		return r;
	if (r == 0 && (r = parse_caps(spec, o, err)) < 0)
		return r;
	if ((r = keel_json_get_arr(p, "process", "rlimits", false, &o, err)) < 0)
		return r;
	if (r == 0 && (r = parse_rlimits(spec, o, err)) < 0)
		return r;
	if ((r = keel_json_get_bool(p, "process", "noNewPrivileges", false,
				    &spec->process.no_new_privileges, err)) < 0)
		return r;
	if ((r = keel_json_get_i64(p, "process", "oomScoreAdj", false, &i64, err)) < 0)
		return r;
	if (r == 0) {
		if (i64 < -1000 || i64 > 1000)
			return keel_err_set(err, -KEEL_ERANGE,
					    "process.oomScoreAdj: %lld is outside -1000..1000", (long long)i64);
		spec->process.has_oom_score_adj = true;
		spec->process.oom_score_adj = (int)i64;
	}
	if ((r = keel_json_get_str(p, "process", "apparmorProfile", false, &spec->process.apparmor,
				   err)) < 0 ||
	    (r = keel_json_get_str(p, "process", "selinuxLabel", false, &spec->process.selinux, err)) < 0)
		return r;
	return 0;
}

/* ---- mounts ---- */

static const struct mount_opt {
	const char *name;
	bool clear; /* the option removes the flag ("rw" clears MS_RDONLY) */
	unsigned long flag;
} mount_opts[] = {
	{"ro", false, MS_RDONLY}, {"rw", true, MS_RDONLY},
	{"nosuid", false, MS_NOSUID}, {"suid", true, MS_NOSUID},
	{"nodev", false, MS_NODEV}, {"dev", true, MS_NODEV},
	{"noexec", false, MS_NOEXEC}, {"exec", true, MS_NOEXEC},
	{"sync", false, MS_SYNCHRONOUS}, {"async", true, MS_SYNCHRONOUS},
	{"dirsync", false, MS_DIRSYNC}, {"remount", false, MS_REMOUNT},
	{"mand", false, MS_MANDLOCK}, {"nomand", true, MS_MANDLOCK},
	{"noatime", false, MS_NOATIME}, {"atime", true, MS_NOATIME},
	{"nodiratime", false, MS_NODIRATIME}, {"diratime", true, MS_NODIRATIME},
	{"relatime", false, MS_RELATIME}, {"norelatime", true, MS_RELATIME},
	{"strictatime", false, MS_STRICTATIME}, {"nostrictatime", true, MS_STRICTATIME},
	{"silent", false, MS_SILENT}, {"loud", true, MS_SILENT},
	{"defaults", false, 0},
};

static const struct {
	const char *name;
	unsigned long flags;
} propagation_opts[] = {
	{"private", MS_PRIVATE}, {"rprivate", MS_PRIVATE | MS_REC},
	{"shared", MS_SHARED}, {"rshared", MS_SHARED | MS_REC},
	{"slave", MS_SLAVE}, {"rslave", MS_SLAVE | MS_REC},
	{"unbindable", MS_UNBINDABLE}, {"runbindable", MS_UNBINDABLE | MS_REC},
};

const char *keel_spec_mount_option_name(size_t i)
{
	if (i < KEEL_ARRAY_SIZE(mount_opts))
		return mount_opts[i].name;
	i -= KEEL_ARRAY_SIZE(mount_opts);
	if (i < KEEL_ARRAY_SIZE(propagation_opts))
		return propagation_opts[i].name;
	i -= KEEL_ARRAY_SIZE(propagation_opts);
	static const char *const more[] = {"bind", "rbind"};
	return i < KEEL_ARRAY_SIZE(more) ? more[i] : NULL;
}

/* "rprivate" -> MS_PRIVATE|MS_REC; 0 when not a propagation name. */
unsigned long keel__spec_propagation(const char *name);
unsigned long keel__spec_propagation(const char *name)
{
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(propagation_opts); i++)
		if (strcmp(propagation_opts[i].name, name) == 0)
			return propagation_opts[i].flags;
	return 0;
}

/* Options runc knows that keel-run does not implement: failing is better than a mount that is
 * less restricted (or differently owned) than the config asked for. */
static const char *const unsupported_mount_opts[] = {
	"rro", "rrw", "rnosuid", "rsuid", "rnodev", "rdev", "rnoexec", "rexec", "rnoatime",
	"ratime", "rrelatime", "rnorelatime", "rstrictatime", "rnostrictatime", "rnodiratime",
	"rdiratime", "tmpcopyup", "idmap", "ridmap", NULL};

static int parse_mount(struct keel_spec_mount *m, const json_t *o, const char *where,
		       struct keel_err *err)
{
	static const char *const known[] = {"destination", "type", "source", "options", NULL};
	static const char *const unsupported[] = {"uidMappings", "gidMappings", NULL};
	const char **opts = NULL;
	struct keel_buf data = KEEL_BUF_INIT;
	int r;
	if ((r = keel__spec_fields(o, where, known, unsupported, err)) < 0 ||
	    (r = get_cstr(o, where, "destination", true, &m->destination, err)) < 0 ||
	    (r = get_cstr(o, where, "type", false, &m->type, err)) < 0 ||
	    (r = get_cstr(o, where, "source", false, &m->source, err)) < 0 ||
	    (r = keel__spec_strv(o, where, "options", &opts, err)) < 0)
		return r;
	if (m->destination[0] != '/') {
		r = keel_err_set(err, -KEEL_EPARSE, "%s.destination must be an absolute path, not \"%s\"",
				 where, m->destination);
		goto out;
	}
	if (m->type && !*m->type)
		m->type = NULL;
	if (m->type && strcmp(m->type, "bind") == 0) {
		m->bind = true;
		m->type = NULL;
	}
	for (size_t i = 0; opts && opts[i]; i++) {
		const char *opt = opts[i];
		unsigned long prop;
		bool done = false;
		if (strcmp(opt, "bind") == 0) {
			m->bind = true;
			continue;
		}
		if (strcmp(opt, "rbind") == 0) {
			m->bind = true;
			m->flags |= MS_REC;
			continue;
		}
		if ((prop = keel__spec_propagation(opt))) {
			m->propagation = prop;
			continue;
		}
		for (size_t k = 0; k < KEEL_ARRAY_SIZE(mount_opts) && !done; k++) {
			if (strcmp(mount_opts[k].name, opt) != 0)
				continue;
			done = true;
			if (mount_opts[k].clear) {
				m->flags &= ~mount_opts[k].flag;
				m->clear_flags |= mount_opts[k].flag;
			} else {
				m->flags |= mount_opts[k].flag;
				m->clear_flags &= ~mount_opts[k].flag;
			}
		}
		if (done)
			continue;
		for (size_t k = 0; unsupported_mount_opts[k]; k++)
			if (strcmp(unsupported_mount_opts[k], opt) == 0) {
				r = keel_err_set(err, -KEEL_EPARSE,
						 "%s.options[%zu]: \"%s\" is not supported by keel-run",
						 where, i, opt);
				goto out;
			}
		if ((data.len && keel_buf_putc(&data, ',') < 0) || keel_buf_puts(&data, opt) < 0) {
			r = keel_err_set(err, -ENOMEM, "out of memory");
			goto out;
		}
	}
	if (!m->bind && !m->type) {
		r = keel_err_set(err, -KEEL_EPARSE, "%s: a mount needs a type (or the bind option)", where);
		goto out;
	}
	if (m->bind && !m->source) {
		r = keel_err_set(err, -KEEL_EMISSING, "%s.source is required for a bind mount", where);
		goto out;
	}
	if (data.len)
		m->data = keel_buf_steal(&data, NULL);
	r = 0;
out:
	keel_buf_free(&data);
	keel_free(opts);
	return r;
}

static int parse_mounts(struct keel_spec *spec, const json_t *arr, struct keel_err *err)
{
	size_t n = json_array_size(arr);
	if (!n)
		return 0;
	spec->mounts = keel_calloc(n, sizeof(*spec->mounts));
	if (!spec->mounts)
		return keel_err_set(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		char where[KEEL__WHERE_MAX];
		keel__where(where, "mounts[%zu]", i);
		json_t *o = json_array_get(arr, i);
		if (!json_is_object(o))
			return keel_err_set(err, -KEEL_ETYPE, "%s must be an object", where);
		spec->n_mounts = i + 1;
		int r = parse_mount(&spec->mounts[i], o, where, err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- hooks ---- */

int keel_spec_parse_hook_array(const json_t *arr, const char *where0, struct keel_spec_hooks *hs,
			       struct keel_err *err)
{
	static const char *const hook_fields[] = {"path", "args", "env", "timeout", NULL};
	size_t n = json_array_size(arr);
	int r;
	if (!n)
		return 0;
	hs->v = keel_calloc(n, sizeof(*hs->v));
	if (!hs->v)
		return keel_err_set(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		char where[KEEL__WHERE_MAX];
		keel__where(where, "%s[%zu]", where0, i);
		json_t *o = json_array_get(arr, i);
		struct keel_spec_hook *h = &hs->v[i];
		int64_t timeout = 0;
		if (!json_is_object(o))
			return keel_err_set(err, -KEEL_ETYPE, "%s must be an object", where);
		hs->n = i + 1;
		if ((r = keel__spec_fields(o, where, hook_fields, NULL, err)) < 0 ||
		    (r = get_cstr(o, where, "path", true, &h->path, err)) < 0 ||
		    (r = keel__spec_strv(o, where, "args", &h->args, err)) < 0 ||
		    (r = keel__spec_strv(o, where, "env", &h->env, err)) < 0 ||
		    (r = keel_json_get_i64(o, where, "timeout", false, &timeout, err)) < 0)
			return r;
		if (h->path[0] != '/')
			return keel_err_set(err, -KEEL_EPARSE, "%s.path must be an absolute path, not \"%s\"",
					    where, h->path);
		if (r == 0 && timeout <= 0)
			return keel_err_set(err, -KEEL_ERANGE,
					    "%s.timeout must be a positive number of seconds", where);
		if (timeout > 86400 * 365)
			return keel_err_set(err, -KEEL_ERANGE, "%s.timeout is too large", where);
		h->timeout = (int)timeout;
	}
	return 0;
}

void keel_spec_hooks_free(struct keel_spec_hooks *hs)
{
	for (size_t i = 0; i < hs->n; i++) {
		keel_free(hs->v[i].args);
		keel_free(hs->v[i].env);
	}
	keel_free(hs->v);
	hs->v = NULL;
	hs->n = 0;
}

static int parse_hooks(struct keel_spec *spec, const json_t *hooks, struct keel_err *err)
{
	static const char *const known[] = {"prestart", "createRuntime", "createContainer",
					    "startContainer", "poststart", "poststop", NULL};
	int r = keel__spec_fields(hooks, "hooks", known, NULL, err);
	if (r < 0)
		return r;
	for (int k = 0; k < KEEL_HOOK_KINDS; k++) {
		json_t *arr;
		char where[KEEL__WHERE_MAX];
		if ((r = keel_json_get_arr(hooks, "hooks", hook_names[k], false, &arr, err)) < 0)
			return r;
		if (r > 0)
			continue;
		keel__where(where, "hooks.%s", hook_names[k]);
		if ((r = keel_spec_parse_hook_array(arr, where, &spec->hooks[k], err)) < 0)
			return r;
	}
	return 0;
}

/* ---- the document ---- */

static int parse_doc(struct keel_spec *spec, struct keel_err *err)
{
	static const char *const known[] = {"ociVersion", "process", "root", "hostname",
					    "domainname", "mounts", "hooks", "annotations", "linux",
					    NULL};
	/* Other platforms' sections: a Linux runtime has nothing to apply from them. */
	static const char *const unsupported[] = {"solaris", "windows", "vm", "zos", "freebsd",
						  "scheduler", NULL};
	const json_t *doc = spec->json;
	json_t *o;
	int r;
	if (!json_is_object(doc))
		return keel_err_set(err, -KEEL_ETYPE, "config.json must hold an object");
	if ((r = keel__spec_fields(doc, "", known, unsupported, err)) < 0)
		return r;
	if ((r = keel_json_get_str(doc, "", "ociVersion", true, &spec->oci_version, err)) < 0)
		return r;
	if (!keel_startswith(spec->oci_version, "1."))
		return keel_err_set(err, -KEEL_EPARSE, "ociVersion \"%s\" is not supported (want 1.x)",
				    spec->oci_version);
	if ((r = keel_json_get_obj(doc, "", "root", true, &o, err)) < 0)
		return r;
	static const char *const root_known[] = {"path", "readonly", NULL};
	if ((r = keel__spec_fields(o, "root", root_known, NULL, err)) < 0 ||
	    (r = get_cstr(o, "root", "path", true, &spec->root_path, err)) < 0 ||
	    (r = keel_json_get_bool(o, "root", "readonly", false, &spec->root_readonly, err)) < 0)
		return r;
	if (!*spec->root_path)
		return keel_err_set(err, -KEEL_EPARSE, "root.path must not be empty");
	if ((r = get_cstr(doc, "", "hostname", false, &spec->hostname, err)) < 0 ||
	    (r = get_cstr(doc, "", "domainname", false, &spec->domainname, err)) < 0)
		return r;
	if (spec->hostname && strlen(spec->hostname) > 64)
		return keel_err_set(err, -KEEL_ERANGE, "hostname is longer than 64 bytes");
	if (spec->domainname && strlen(spec->domainname) > 64)
		return keel_err_set(err, -KEEL_ERANGE, "domainname is longer than 64 bytes");
	if ((r = keel_json_get_obj(doc, "", "process", false, &o, err)) < 0)
		return r;
	if (r == 0 && (r = parse_process(spec, o, err)) < 0)
		return r;
	if ((r = keel_json_get_arr(doc, "", "mounts", false, &o, err)) < 0)
		return r;
	if (r == 0 && (r = parse_mounts(spec, o, err)) < 0)
		return r;
	if ((r = keel_json_get_obj(doc, "", "hooks", false, &o, err)) < 0)
		return r;
	if (r == 0 && (r = parse_hooks(spec, o, err)) < 0)
		return r;
	if ((r = keel_json_get_obj(doc, "", "annotations", false, &spec->annotations, err)) < 0)
		return r;
	if (spec->annotations) {
		const char *k;
		json_t *v;
		json_object_foreach(spec->annotations, k, v)
			if (!json_is_string(v))
				return keel_err_set(err, -KEEL_ETYPE, "annotations.%s must be a string", k);
	}
	if ((r = keel_json_get_obj(doc, "", "linux", false, &o, err)) < 0)
		return r;
	if ((r = keel__spec_parse_linux(spec, r == 0 ? o : NULL, err)) < 0)
		return r;
	return keel__spec_check_linux(spec, err);
}

int keel_spec_parse(const char *data, size_t len, struct keel_spec **ret, struct keel_err *err)
{
	struct keel_spec *spec = keel_calloc(1, sizeof(*spec));
	if (!spec)
		return keel_err_set(err, -ENOMEM, "out of memory");
	int r = keel_json_parse(data, len, false, &spec->json, err);
	if (r < 0) {
		keel_free(spec);
		return r;
	}
	r = parse_doc(spec, err);
	if (r < 0) {
		keel_spec_free(spec);
		return r;
	}
	*ret = spec;
	return 0;
}

int keel_spec_parse_json(json_t *doc, struct keel_spec **ret, struct keel_err *err)
{
	struct keel_spec *spec = keel_calloc(1, sizeof(*spec));
	if (!spec) {
		json_decref(doc);
		return keel_err_set(err, -ENOMEM, "out of memory");
	}
	spec->json = doc;
	int r = parse_doc(spec, err);
	if (r < 0) {
		keel_spec_free(spec);
		return r;
	}
	*ret = spec;
	return 0;
}

int keel_spec_load(const char *path, struct keel_spec **ret, struct keel_err *err)
{
	struct keel_spec *spec = keel_calloc(1, sizeof(*spec));
	if (!spec)
		return keel_err_set(err, -ENOMEM, "out of memory");
	int r = keel_json_load_file(path, &spec->json, err);
	if (r < 0) {
		keel_free(spec);
		return r;
	}
	r = parse_doc(spec, err);
	if (r < 0) {
		keel_spec_free(spec);
		return r;
	}
	*ret = spec;
	return 0;
}

void keel_spec_free(struct keel_spec *spec)
{
	if (!spec)
		return;
	keel_free(spec->process.gids);
	keel_free(spec->process.args);
	keel_free(spec->process.env);
	keel_free(spec->process.rlimits);
	for (size_t i = 0; i < spec->n_mounts; i++)
		keel_free(spec->mounts[i].data);
	keel_free(spec->mounts);
	for (int k = 0; k < KEEL_HOOK_KINDS; k++)
		keel_spec_hooks_free(&spec->hooks[k]);
	keel__spec_free_linux(spec);
	json_decref(spec->json);
	keel_free(spec);
}
