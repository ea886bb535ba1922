/* keel-run: an OCI runtime with runc's command line. A dispatch table of subcommands, each a thin
 * wrapper over lib/run's lifecycle calls; global flags as runc's (urfave/cli style: `-flag`,
 * `--flag`, `--flag=value`, `--flag value`). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "base/jw.h"
#include "run/cgroup.h"
#include "run/container.h"
#include "run/spec.h"

#define KEEL_RUN_VERSION "0.1.0"

enum opt_type { OPT_BOOL, OPT_STR, OPT_UINT, OPT_IGNORED_STR, OPT_IGNORED_BOOL, OPT_LIST };

/* A flag given several times (--env A=1 --env B=2): NULL-terminated. */
struct strlist {
	char *v[65];
	int n;
};

struct opt {
	const char *name;
	char short_name;
	enum opt_type type;
	size_t offset;
};

struct args {
	/* global */
	const char *root, *log, *log_format;
	bool debug, systemd_cgroup, help, version;
	/* command */
	const char *bundle, *pid_file, *console_socket, *format;
	uint64_t preserve_fds;
	bool detach, keep, no_pivot, all, force, quiet;
	const char *pos[4];
	int n_pos;
	/* exec */
	const char *process, *cwd, *user, *apparmor, *label;
	bool tty, no_new_privs;
	struct strlist env, cap, gids;
	char **rest; /* exec: the command after the id */
	/* update */
	const char *resources, *memory, *memory_swap, *memory_reservation, *kernel_memory,
		*cpu_shares, *cpu_quota, *cpu_period, *cpuset_cpus, *cpuset_mems, *pids_limit,
		*blkio_weight, *cpu_rt_period, *cpu_rt_runtime, *l3, *membw;
	/* events, spec */
	bool stats, rootless;
	const char *interval;
};

#define O(name, s, type, field) {name, s, type, offsetof(struct args, field)}

static const struct opt global_opts[] = {
	O("root", 0, OPT_STR, root),
	O("log", 0, OPT_STR, log),
	O("log-format", 0, OPT_STR, log_format),
	O("debug", 0, OPT_BOOL, debug),
	O("systemd-cgroup", 0, OPT_BOOL, systemd_cgroup),
	O("criu", 0, OPT_IGNORED_STR, root),
	O("rootless", 0, OPT_IGNORED_STR, root),
	O("help", 'h', OPT_BOOL, help),
	O("version", 'v', OPT_BOOL, version),
	{NULL, 0, OPT_BOOL, 0},
};

static const struct opt create_opts[] = {
	O("bundle", 'b', OPT_STR, bundle),
	O("pid-file", 0, OPT_STR, pid_file),
	O("console-socket", 0, OPT_STR, console_socket),
	O("preserve-fds", 0, OPT_UINT, preserve_fds),
	O("no-pivot", 0, OPT_BOOL, no_pivot),
	O("no-new-keyring", 0, OPT_IGNORED_BOOL, help),
	O("help", 'h', OPT_BOOL, help),
	{NULL, 0, OPT_BOOL, 0},
};

static const struct opt run_opts[] = {
	O("bundle", 'b', OPT_STR, bundle),
	O("pid-file", 0, OPT_STR, pid_file),
	O("console-socket", 0, OPT_STR, console_socket),
	O("preserve-fds", 0, OPT_UINT, preserve_fds),
	O("no-pivot", 0, OPT_BOOL, no_pivot),
	O("no-new-keyring", 0, OPT_IGNORED_BOOL, help),
	O("no-subreaper", 0, OPT_IGNORED_BOOL, help),
	O("detach", 'd', OPT_BOOL, detach),
	O("keep", 0, OPT_BOOL, keep),
	O("help", 'h', OPT_BOOL, help),
	{NULL, 0, OPT_BOOL, 0},
};

static const struct opt kill_opts[] = {
	O("all", 'a', OPT_BOOL, all),
	O("help", 'h', OPT_BOOL, help),
	{NULL, 0, OPT_BOOL, 0},
};

static const struct opt delete_opts[] = {
	O("force", 'f', OPT_BOOL, force),
	O("help", 'h', OPT_BOOL, help),
	{NULL, 0, OPT_BOOL, 0},
};

static const struct opt list_opts[] = {
	O("format", 'f', OPT_STR, format),
	O("quiet", 'q', OPT_BOOL, quiet),
	O("help", 'h', OPT_BOOL, help),
	{NULL, 0, OPT_BOOL, 0},
};

static const struct opt exec_opts[] = {
	O("process", 'p', OPT_STR, process),
	O("console-socket", 0, OPT_STR, console_socket),
	O("pid-file", 0, OPT_STR, pid_file),
	O("preserve-fds", 0, OPT_UINT, preserve_fds),
	O("detach", 'd', OPT_BOOL, detach),
	O("tty", 't', OPT_BOOL, tty),
	O("cwd", 0, OPT_STR, cwd),
	O("env", 'e', OPT_LIST, env),
	O("user", 'u', OPT_STR, user),
	O("additional-gids", 'g', OPT_LIST, gids),
	O("cap", 'c', OPT_LIST, cap),
	O("no-new-privs", 0, OPT_BOOL, no_new_privs),
	O("apparmor", 0, OPT_STR, apparmor),
	O("process-label", 0, OPT_STR, label),
	O("help", 'h', OPT_BOOL, help),
	{NULL, 0, OPT_BOOL, 0},
};

static const struct opt update_opts[] = {
	O("resources", 'r', OPT_STR, resources),
	O("memory", 0, OPT_STR, memory),
	O("memory-swap", 0, OPT_STR, memory_swap),
	O("memory-reservation", 0, OPT_STR, memory_reservation),
	O("kernel-memory", 0, OPT_STR, kernel_memory),
	O("kernel-memory-tcp", 0, OPT_STR, kernel_memory),
	O("cpu-shares", 0, OPT_STR, cpu_shares),
	O("cpu-quota", 0, OPT_STR, cpu_quota),
	O("cpu-period", 0, OPT_STR, cpu_period),
	O("cpuset-cpus", 0, OPT_STR, cpuset_cpus),
	O("cpuset-mems", 0, OPT_STR, cpuset_mems),
	O("pids-limit", 0, OPT_STR, pids_limit),
	O("blkio-weight", 0, OPT_STR, blkio_weight),
	O("cpu-rt-period", 0, OPT_STR, cpu_rt_period),
	O("cpu-rt-runtime", 0, OPT_STR, cpu_rt_runtime),
	O("l3-cache-schema", 0, OPT_STR, l3),
	O("mem-bw-schema", 0, OPT_STR, membw),
	O("help", 'h', OPT_BOOL, help),
	{NULL, 0, OPT_BOOL, 0},
};

static const struct opt ps_opts[] = {
	O("format", 'f', OPT_STR, format),
	O("help", 'h', OPT_BOOL, help),
	{NULL, 0, OPT_BOOL, 0},
};

static const struct opt events_opts[] = {
	O("stats", 0, OPT_BOOL, stats),
	O("interval", 0, OPT_STR, interval),
	O("help", 'h', OPT_BOOL, help),
	{NULL, 0, OPT_BOOL, 0},
};

static const struct opt spec_opts[] = {
	O("bundle", 'b', OPT_STR, bundle),
	O("rootless", 0, OPT_BOOL, rootless),
	O("help", 'h', OPT_BOOL, help),
	{NULL, 0, OPT_BOOL, 0},
};

static const struct opt no_opts[] = {
	O("help", 'h', OPT_BOOL, help),
	{NULL, 0, OPT_BOOL, 0},
};

static char errbuf[512];

static int usage_error(const char *fmt, ...) KEEL_PRINTF(1, 2);
static int usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errbuf, sizeof(errbuf), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* Parse flags from argv[*i] on. Global parsing stops at the first non-flag (the command);
 * command parsing collects positionals anywhere (runc accepts flags only before them, but
 * being lenient here costs nothing). */
static int parse(const struct opt *opts, bool stop_at_positional, int argc, char **argv, int *i,
		 struct args *a)
{
	for (; *i < argc; (*i)++) {
		char *arg = argv[*i];
		if (strcmp(arg, "--") == 0) {
			for ((*i)++; *i < argc; (*i)++) {
				if (a->n_pos >= (int)KEEL_ARRAY_SIZE(a->pos))
					return usage_error("too many arguments: %s", argv[*i]);
				a->pos[a->n_pos++] = argv[*i];
			}
			return 0;
		}
		if (arg[0] != '-' || arg[1] == 0) {
			if (stop_at_positional)
				return 0;
			if (a->n_pos >= (int)KEEL_ARRAY_SIZE(a->pos))
				return usage_error("too many arguments: %s", arg);
			a->pos[a->n_pos++] = arg;
			continue;
		}
		const char *name = arg + 1 + (arg[1] == '-');
		const char *eq = strchr(name, '=');
		size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
		const struct opt *o = NULL;
		for (const struct opt *p = opts; p->name && !o; p++)
			if ((strlen(p->name) == nlen && strncmp(p->name, name, nlen) == 0) ||
			    (nlen == 1 && p->short_name == name[0]))
				o = p;
		if (!o)
			return usage_error("flag provided but not defined: %s", arg);
		void *dst = (char *)a + o->offset;
		const char *val = eq ? eq + 1 : NULL;
		if (o->type == OPT_BOOL || o->type == OPT_IGNORED_BOOL) {
			bool b = true;
			if (val && keel_parse_bool(val, &b) < 0)
				return usage_error("invalid boolean value for %s", arg);
			if (o->type == OPT_BOOL)
				*(bool *)dst = b;
			continue;
		}
		if (!val) {
			if (*i + 1 >= argc)
				return usage_error("flag needs an argument: %s", arg);
			val = argv[++(*i)];
		}
		if (o->type == OPT_STR) {
			*(const char **)dst = val;
		} else if (o->type == OPT_LIST) {
			struct strlist *l = dst;
			if (l->n >= 64)
				return usage_error("too many %s flags", arg);
			l->v[l->n++] = (char *)val;
		} else if (o->type == OPT_UINT) {
			if (keel_parse_u64(val, (uint64_t *)dst) < 0 || *(uint64_t *)dst > 65536)
				return usage_error("invalid value for %s", arg);
		}
	}
	return 0;
}

static void warn_cb(const char *msg, void *ud)
{
	(void)ud;
	keel_log(KEEL_LOG_WARN, msg);
}

static int need_id(const struct args *a, int n, const char *cmd)
{
	if (a->n_pos < 1)
		return usage_error("%s: container id cannot be empty", cmd);
	if (a->n_pos > n)
		return usage_error("%s: too many arguments", cmd);
	return 0;
}

static void print_created(int64_t ns, char *out, size_t size)
{
	if (!keel_fmt_rfc3339(ns, 1, out, size))
		snprintf(out, size, "-");
}

static int cmd_list(const struct args *a, struct keel_err *err)
{
	struct keel_container_info *v;
	size_t n;
	int r = keel_container_list(a->root, &v, &n, err);
	if (r < 0)
		return r;
	struct keel_buf b = KEEL_BUF_INIT;
	if (a->quiet) {
		for (size_t i = 0; i < n; i++)
			r |= keel_buf_printf(&b, "%s\n", v[i].id);
	} else if (a->format && strcmp(a->format, "json") == 0) {
		r |= keel_buf_putc(&b, '[');
		for (size_t i = 0; i < n; i++)
			r |= keel_buf_printf(&b, "%s%s", i ? "," : "", v[i].json);
		r |= keel_buf_puts(&b, "]\n");
	} else if (a->format && strcmp(a->format, "table") != 0) {
		keel_container_list_free(v, n);
		return keel_err_set(err, -EINVAL, "invalid format option");
	} else {
		/* runc's tabwriter: columns at least 12 wide, 3 spaces of padding. */
		static const char *const head[] = {"ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"};
		size_t w[6];
		char created[KEEL_RFC3339_MAX], pid[24];
		for (int c = 0; c < 6; c++)
			w[c] = strlen(head[c]);
		for (size_t i = 0; i < n; i++) {
			print_created(v[i].created_ns, created, sizeof(created));
			snprintf(pid, sizeof(pid), "%d", (int)v[i].pid);
			size_t len[6] = {strlen(v[i].id), strlen(pid), strlen(v[i].status),
					 strlen(v[i].bundle), strlen(created), 4};
			for (int c = 0; c < 6; c++)
				w[c] = KEEL_MAX(w[c], len[c]);
		}
		for (int c = 0; c < 6; c++)
			w[c] = KEEL_MAX(w[c] + 3, 12u);
		for (size_t i = 0; i <= n; i++) {
			const char *cols[6];
			if (i == 0) {
				memcpy(cols, head, sizeof(cols));
			} else {
				print_created(v[i - 1].created_ns, created, sizeof(created));
				snprintf(pid, sizeof(pid), "%d", (int)v[i - 1].pid);
				const char *row[6] = {v[i - 1].id, pid, v[i - 1].status, v[i - 1].bundle,
						      created, "root"};
				memcpy(cols, row, sizeof(cols));
			}
			for (int c = 0; c < 5; c++)
				r |= keel_buf_printf(&b, "%-*s", (int)w[c], cols[c]);
			r |= keel_buf_printf(&b, "%s\n", cols[5]);
		}
	}
	keel_container_list_free(v, n);
	if (r)
		return keel_err_set(err, -ENOMEM, "out of memory");
	fwrite(b.data, 1, b.len, stdout);
	keel_buf_free(&b);
	return 0;
}


/* ---- exec ---- */

static int cmd_exec(struct args *a, int *exit_status, struct keel_err *err)
{
	struct keel_exec_opts o = {
		.root = a->root, .id = a->pos[0], .process_file = a->process, .args = a->rest,
		.env = a->env.n ? a->env.v : NULL, .cwd = a->cwd, .user = a->user,
		.caps = a->cap.n ? a->cap.v : NULL, .gids = a->gids.n ? a->gids.v : NULL,
		.no_new_privs = a->no_new_privs, .tty = a->tty, .detach = a->detach,
		.apparmor = a->apparmor, .label = a->label, .console_socket = a->console_socket,
		.pid_file = a->pid_file, .preserve_fds = (unsigned)a->preserve_fds,
	};
	int r;
	if (a->process && a->rest && a->rest[0])
		r = keel_err_set(err, -EINVAL, "give either --process or a command, not both");
	else if (a->detach && a->tty && !a->console_socket)
		r = keel_err_set(err, -EINVAL, "cannot allocate tty if keel-run will detach without "
				 "setting console socket");
	else
		r = keel_container_exec(&o, exit_status, err);
	if (r < 0) {
		/* runc's exit status and prefix for a failed exec, which podman and conmon read. */
		*exit_status = 255;
		keel_err_wrap(err, "exec failed");
	}
	return r;
}

/* ---- update ---- */

/* runc's sizes: a number with an optional k/m/g/t suffix (powers of 1024, an optional "b"
 * after it), or -1 for unlimited. */
static int parse_size(const char *s, int64_t *ret)
{
	if (strcmp(s, "-1") == 0) {
		*ret = -1;
		return 0;
	}
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || v < 0)
		return -EINVAL;
	double mul = 1;
	switch (*end | 0x20) {
	case 'k': mul = 1024.0; end++; break;
	case 'm': mul = 1024.0 * 1024; end++; break;
	case 'g': mul = 1024.0 * 1024 * 1024; end++; break;
	case 't': mul = 1024.0 * 1024 * 1024 * 1024; end++; break;
	default: break;
	}
	if ((*end | 0x20) == 'b')
		end++;
	if (*end || v * mul > 9.2e18)
		return -EINVAL;
	*ret = (int64_t)(v * mul);
	return 0;
}

static int set_num(json_t *parent, const char *obj, const char *key, const char *val, bool size,
		   const char *flag, struct keel_err *err)
{
	if (!val)
		return 0;
	int64_t v;
	uint64_t u;
	if (size) {
		if (parse_size(val, &v) < 0)
			return keel_err_set(err, -EINVAL, "invalid value for --%s: %s", flag, val);
	} else if (val[0] == '-') {
		if (keel_parse_u64(val + 1, &u) < 0 || u > INT64_MAX)
			return keel_err_set(err, -EINVAL, "invalid value for --%s: %s", flag, val);
		v = -(int64_t)u;
	} else {
		if (keel_parse_u64(val, &u) < 0 || u > INT64_MAX)
			return keel_err_set(err, -EINVAL, "invalid value for --%s: %s", flag, val);
		v = (int64_t)u;
	}
	json_t *o = json_object_get(parent, obj);
	if (!o) {
		o = json_object();
		json_object_set_new(parent, obj, o);
	}
	json_object_set_new(o, key, json_integer(v));
	return 0;
}

static int cmd_update(struct args *a, struct keel_err *err)
{
	json_t *res;
	int r = 0;
	if (a->kernel_memory || a->cpu_rt_period || a->cpu_rt_runtime || a->l3 || a->membw)
		return keel_err_set(err, -ENOTSUP, "update: kernel memory, realtime cpu and Intel RDT limits "
				    "are not supported by keel-run");
	if (a->resources) {
		json_error_t je;
		res = strcmp(a->resources, "-") == 0 ? json_loadf(stdin, 0, &je)
						     : json_load_file(a->resources, 0, &je);
		if (!res)
			return keel_err_set(err, -KEEL_EPARSE, "update --resources %s: %s (line %d)",
					    a->resources, je.text, je.line);
	} else {
		res = json_object();
		if (!res)
			return keel_err_set(err, -ENOMEM, "out of memory");
		if ((r = set_num(res, "memory", "limit", a->memory, true, "memory", err)) < 0 ||
		    (r = set_num(res, "memory", "swap", a->memory_swap, true, "memory-swap", err)) < 0 ||
		    (r = set_num(res, "memory", "reservation", a->memory_reservation, true,
				 "memory-reservation", err)) < 0 ||
		    (r = set_num(res, "cpu", "shares", a->cpu_shares, false, "cpu-shares", err)) < 0 ||
		    (r = set_num(res, "cpu", "quota", a->cpu_quota, false, "cpu-quota", err)) < 0 ||
		    (r = set_num(res, "cpu", "period", a->cpu_period, false, "cpu-period", err)) < 0 ||
		    (r = set_num(res, "pids", "limit", a->pids_limit, false, "pids-limit", err)) < 0 ||
		    (r = set_num(res, "blockIO", "weight", a->blkio_weight, false, "blkio-weight", err)) < 0) {
			json_decref(res);
			return r;
		}
		if (a->cpuset_cpus || a->cpuset_mems) {
			json_t *cpu = json_object_get(res, "cpu");
			if (!cpu) {
				cpu = json_object();
				json_object_set_new(res, "cpu", cpu);
			}
			if (a->cpuset_cpus)
				json_object_set_new(cpu, "cpus", json_string(a->cpuset_cpus));
			if (a->cpuset_mems)
				json_object_set_new(cpu, "mems", json_string(a->cpuset_mems));
		}
	}
	return keel_container_update(a->root, a->pos[0], res, err);
}

/* ---- ps ---- */

static int cmd_ps(struct args *a, struct keel_err *err)
{
	pid_t *pids;
	size_t n;
	int r = keel_container_pids(a->root, a->pos[0], &pids, &n, err);
	if (r < 0)
		return r;
	if (a->format && strcmp(a->format, "json") == 0) {
		fputc('[', stdout);
		for (size_t i = 0; i < n; i++)
			printf("%s%d", i ? "," : "", (int)pids[i]);
		fputs("]\n", stdout);
		keel_free(pids);
		return 0;
	}
	if (a->format && strcmp(a->format, "table") != 0) {
		keel_free(pids);
		return keel_err_set(err, -EINVAL, "invalid format option");
	}
	/* runc's table: the host's ps (default -ef), its header and the lines of our pids. */
	char *argv[70] = {"ps"};
	int argc = 1;
	for (size_t i = 0; a->rest && a->rest[i] && argc < 68; i++)
		argv[argc++] = a->rest[i];
	if (argc == 1)
		argv[argc++] = "-ef";
	argv[argc] = NULL;
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		keel_free(pids);
		return keel_err_errno(err, -errno, "pipe");
	}
	pid_t child = fork();
	if (child == 0) {
		dup2(pfd[1], 1);
		execvp("ps", argv);
		_exit(127);
	}
	close(pfd[1]);
	FILE *f = fdopen(pfd[0], "r");
	char line[8192];
	int pid_col = -1;
	bool header = true;
	while (f && fgets(line, sizeof(line), f)) {
		if (header) {
			char copy[8192], *save, *tok;
			snprintf(copy, sizeof(copy), "%s", line);
			int col = 0;
			for (tok = strtok_r(copy, " \t\n", &save); tok; tok = strtok_r(NULL, " \t\n", &save), col++)
				if (strcmp(tok, "PID") == 0)
					pid_col = col;
			fputs(line, stdout);
			header = false;
			continue;
		}
		char copy[8192], *save, *tok;
		snprintf(copy, sizeof(copy), "%s", line);
		tok = strtok_r(copy, " \t\n", &save);
		for (int col = 0; tok && col < pid_col; col++)
			tok = strtok_r(NULL, " \t\n", &save);
		long p = tok ? strtol(tok, NULL, 10) : -1;
		for (size_t i = 0; i < n; i++)
			if (pids[i] == p) {
				fputs(line, stdout);
				break;
			}
	}
	if (f)
		fclose(f);
	else
		close(pfd[0]);
	int status = 0;
	while (child > 0 && waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	keel_free(pids);
	if (child < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return keel_err_set(err, -KEEL_EBASE, "ps failed");
	if (pid_col < 0)
		return keel_err_set(err, -KEEL_EBASE, "couldn't find PID field in ps output");
	return 0;
}

/* ---- events ---- */

static int cmd_events(struct args *a, struct keel_err *err)
{
	uint64_t interval_ms = 5000;
	if (a->interval) {
		char *end;
		double v = strtod(a->interval, &end);
		double mul = strcmp(end, "ms") == 0 ? 1 : strcmp(end, "s") == 0 || !*end ? 1000
			   : strcmp(end, "m") == 0 ? 60000 : -1;
		if (end == a->interval || mul < 0 || v <= 0)
			return keel_err_set(err, -EINVAL, "invalid value for --interval: %s", a->interval);
		interval_ms = (uint64_t)(v * mul);
	}
	/* runc's events: a stats line every interval and an oom line whenever the container's
	 * memory cgroup reports one, until the container stops. */
	struct keel_cgroup_oom oom = {.fd = -1, .ctl_fd = -1};
	if (!a->stats) {
		struct keel_err oerr;
		keel_err_clear(&oerr);
		if (keel_container_oom_open(a->root, a->pos[0], &oom, &oerr) < 0 && oerr.code != -ENOENT &&
		    oerr.code != -EINVAL)
			keel_log(KEEL_LOG_WARN, keel_err_msg(&oerr));
	}
	uint64_t next = keel_mono_ns();
	int r = 0;
	for (;;) {
		uint64_t now = keel_mono_ns();
		if (now >= next) {
			struct keel_buf b = KEEL_BUF_INIT;
			r = keel_container_stats(a->root, a->pos[0], &b, err);
			if (r == 0) {
				fwrite(b.data, 1, b.len, stdout);
				fputc('\n', stdout);
				fflush(stdout);
			}
			keel_buf_free(&b);
			if (r < 0)
				break;
			if (r == 1) { /* stopped */
				r = a->stats ? keel_err_set(err, -EINVAL, "container not running") : 0;
				break;
			}
			if (a->stats)
				break;
			next = now + interval_ms * 1000000;
		}
		struct pollfd pfd = {.fd = oom.fd, .events = POLLIN};
		uint64_t wait_ms = (next - now) / 1000000 + 1;
		int n = poll(&pfd, 1, wait_ms > INT32_MAX ? INT32_MAX : (int)wait_ms);
		if (n > 0) {
			int k = keel_cgroup_oom_read(&oom);
			if (k < 0) { /* the cgroup is gone: the stats say so next */
				keel_cgroup_oom_close(&oom);
				next = 0;
			}
			for (int i = 0; i < k; i++) {
				printf("{\"type\":\"oom\",\"id\":");
				struct keel_buf b = KEEL_BUF_INIT;
				struct keel_jw w;
				keel_jw_init(&w, &b, 0);
				keel_jw_str(&w, a->pos[0]);
				if (keel_jw_finish(&w) == 0)
					fwrite(b.data, 1, b.len, stdout);
				keel_buf_free(&b);
				printf("}\n");
				fflush(stdout);
			}
		}
	}
	keel_cgroup_oom_close(&oom);
	return r;
}

/* ---- spec, features ---- */

static int cmd_spec(struct args *a, struct keel_err *err)
{
	struct keel_buf b = KEEL_BUF_INIT;
	int r = keel_spec_default(a->rootless, &b);
	if (r < 0)
		return keel_err_set(err, r, "out of memory");
	char path[4096];
	snprintf(path, sizeof(path), "%s/config.json", a->bundle ? a->bundle : ".");
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
	if (fd < 0) {
		r = errno == EEXIST ? keel_err_set(err, -EEXIST, "File %s exists. Remove it first", path)
				    : keel_err_errno(err, -errno, "creating %s", path);
	} else {
		ssize_t w = write(fd, b.data, b.len);
		if (w < 0 || (size_t)w != b.len)
			r = keel_err_errno(err, w < 0 ? -errno : -EIO, "writing %s", path);
		close(fd);
	}
	keel_buf_free(&b);
	return r;
}

static int cmd_features(struct keel_err *err)
{
	struct keel_buf b = KEEL_BUF_INIT;
	int r = keel_run_features(&b);
	if (r < 0)
		return keel_err_set(err, r, "out of memory");
	fwrite(b.data, 1, b.len, stdout);
	keel_buf_free(&b);
	return 0;
}

static const char usage[] =
	"usage: keel-run [global options] command [command options] [arguments...]\n"
	"\n"
	"An OCI container runtime with runc's command line.\n"
	"\n"
	"commands:\n"
	"  create [--bundle DIR] [--pid-file F] [--console-socket S] [--preserve-fds N] ID\n"
	"  start ID\n"
	"  run [--bundle DIR] [--detach] [--keep] [--pid-file F] [--console-socket S] ID\n"
	"  state ID\n"
	"  kill [--all] ID [SIGNAL]\n"
	"  delete [--force] ID\n"
	"  list [--format table|json] [--quiet]\n"
	"  exec [--process P.json | --env E --cwd D --user U[:G] --cap C --no-new-privs --tty]\n"
	"       [--detach] [--console-socket S] [--pid-file F] [--preserve-fds N] ID [COMMAND...]\n"
	"  ps [--format table|json] ID [PS-ARGS...]\n"
	"  pause ID | resume ID\n"
	"  update [--resources FILE|-] [--memory N] [--memory-swap N] [--memory-reservation N]\n"
	"         [--cpu-shares N] [--cpu-quota N] [--cpu-period N] [--cpuset-cpus L]\n"
	"         [--cpuset-mems L] [--pids-limit N] [--blkio-weight N] ID\n"
	"  events [--stats] [--interval 5s] ID\n"
	"  spec [--bundle DIR] [--rootless]\n"
	"  features\n"
	"  image COMMAND ...   the image store (keel-image: import, list, inspect, rm, gc)\n"
	"  pod COMMAND ...     pods of apps from images (keel-pod: run, list, status, stop, rm, ...)\n"
	"\n"
	"global options:\n"
	"  --root DIR          state directory (default " KEEL_RUN_DEFAULT_ROOT ")\n"
	"  --log FILE          log to FILE instead of stderr\n"
	"  --log-format text|json\n"
	"  --debug             log debug messages\n";

static const struct command {
	const char *name;
	const struct opt *opts;
	bool command_after_id; /* exec, ps: flags end at the id, the rest is a command line */
} commands[] = {
	{"create", create_opts, false}, {"start", no_opts, false}, {"run", run_opts, false},
	{"state", no_opts, false}, {"kill", kill_opts, false}, {"delete", delete_opts, false},
	{"list", list_opts, false}, {"exec", exec_opts, true}, {"ps", ps_opts, true},
	{"pause", no_opts, false}, {"resume", no_opts, false}, {"update", update_opts, false},
	{"events", events_opts, false}, {"spec", spec_opts, false}, {"features", no_opts, false},
};

/* runc commands keel-run does not have: a clear error instead of "unknown command". podman
 * probes `checkpoint --help` and takes a failure as "no checkpoint support" (no CRIU). */
static const char *const later_commands[] = {"checkpoint", "restore", NULL};

static int dispatch(const char *cmd, struct args *a, int *exit_status, struct keel_err *err)
{
	struct keel_run_opts o = {
		.root = a->root, .id = a->pos[0], .bundle = a->bundle, .pid_file = a->pid_file,
		.console_socket = a->console_socket, .preserve_fds = (unsigned)a->preserve_fds,
		.no_pivot = a->no_pivot, .detach = a->detach, .keep = a->keep,
	};
	int r;
	if (strcmp(cmd, "list") == 0)
		return cmd_list(a, err);
	if (strcmp(cmd, "spec") == 0)
		return a->n_pos ? keel_err_set(err, -EINVAL, "spec: too many arguments") : cmd_spec(a, err);
	if (strcmp(cmd, "features") == 0)
		return a->n_pos ? keel_err_set(err, -EINVAL, "features: too many arguments")
				: cmd_features(err);
	if ((r = need_id(a, strcmp(cmd, "kill") == 0 ? 2 : 1, cmd)) < 0)
		return keel_err_set(err, r, "%s", errbuf);
	if (strcmp(cmd, "create") == 0)
		return keel_container_create(&o, err);
	if (strcmp(cmd, "start") == 0)
		return keel_container_start(a->root, o.id, err);
	if (strcmp(cmd, "run") == 0)
		return keel_container_run(&o, exit_status, err);
	if (strcmp(cmd, "delete") == 0)
		return keel_container_delete(a->root, o.id, a->force, err);
	if (strcmp(cmd, "exec") == 0)
		return cmd_exec(a, exit_status, err);
	if (strcmp(cmd, "ps") == 0)
		return cmd_ps(a, err);
	if (strcmp(cmd, "pause") == 0 || strcmp(cmd, "resume") == 0)
		return keel_container_pause(a->root, o.id, cmd[0] == 'p', err);
	if (strcmp(cmd, "update") == 0)
		return cmd_update(a, err);
	if (strcmp(cmd, "events") == 0)
		return cmd_events(a, err);
	if (strcmp(cmd, "kill") == 0) {
		const char *name = a->n_pos > 1 ? a->pos[1] : "SIGTERM";
		int sig = keel_signal_from_name(name);
		if (sig < 0)
			return keel_err_set(err, -EINVAL, "unknown signal \"%s\"", name);
		return keel_container_kill(a->root, o.id, sig, a->all, err);
	}
	/* state */
	struct keel_buf b = KEEL_BUF_INIT;
	r = keel_container_state(a->root, o.id, &b, err);
	if (r == 0) {
		fwrite(b.data, 1, b.len, stdout);
		fputc('\n', stdout);
	}
	keel_buf_free(&b);
	return r;
}

/* `keel-run image ...` and `keel-run pod ...` run the image store's and the pods' own binaries,
 * so that libarchive and the image code are not loaded by every runc-style command (each
 * `create` or `exec` pays for every library it links). They live beside keel-run once
 * installed, and in sibling directories of the build tree. */
static int exec_sibling(const char *name, char **argv)
{
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			char path[2][4096 + 64];
			snprintf(path[0], sizeof(path[0]), "%s/%s", self, name);
			snprintf(path[1], sizeof(path[1]), "%s/../%s/%s", self, name, name);
			for (size_t k = 0; k < 2; k++) {
				argv[0] = path[k];
				execv(path[k], argv);
			}
		}
	}
	argv[0] = (char *)name;
	execvp(name, argv);
	fprintf(stderr, "keel-run: cannot run %s: %s\n", name, strerror(errno));
	return 1;
}

int main(int argc, char **argv)
{
	struct args a = {.root = KEEL_RUN_DEFAULT_ROOT};
	struct keel_err err;
	int i = 1, exit_status = 0, log_fd = 2;
	keel_err_clear(&err);
	keel_log_setup("keel-run", KEEL_LOG_WARN, KEEL_LOG_TEXT, 2);

	int r = parse(global_opts, true, argc, argv, &i, &a);
	enum keel_log_format fmt = KEEL_LOG_TEXT;
	if (r == 0 && a.log_format && keel_log_parse_format(a.log_format, &fmt) < 0)
		r = usage_error("invalid log format \"%s\"", a.log_format);
	if (r == 0 && a.log) {
		log_fd = open(a.log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
		if (log_fd < 0) {
			r = usage_error("cannot open log file %s", a.log);
			log_fd = 2;
		}
	}
	keel_log_setup("keel-run", a.debug ? KEEL_LOG_DEBUG : KEEL_LOG_WARN, fmt, log_fd);
	keel_run_set_warn(warn_cb, NULL);
	if (r < 0) {
		keel_log(KEEL_LOG_ERROR, errbuf);
		if (log_fd != 2)
			fprintf(stderr, "keel-run: %s\n", errbuf);
		return 1;
	}
	if (a.version) {
		printf("keel-run version " KEEL_RUN_VERSION "\nspec: 1.1.0\n");
		return 0;
	}
	if (i >= argc || a.help) {
		fputs(usage, a.help ? stdout : stderr);
		return a.help ? 0 : 1;
	}
	if (a.systemd_cgroup) {
		keel_log(KEEL_LOG_ERROR, "--systemd-cgroup is not supported by keel-run (no systemd here); "
				       "use the cgroupfs manager");
		return 1;
	}
	const char *cmd = argv[i++];
	if (strcmp(cmd, "image") == 0 || strcmp(cmd, "pod") == 0)
		return exec_sibling(cmd[0] == 'i' ? "keel-image" : "keel-pod", argv + i - 1);
	const struct command *c = NULL;
	for (size_t k = 0; k < KEEL_ARRAY_SIZE(commands); k++)
		if (strcmp(commands[k].name, cmd) == 0)
			c = &commands[k];
	if (!c) {
		bool later = false;
		for (size_t k = 0; later_commands[k]; k++)
			later |= strcmp(later_commands[k], cmd) == 0;
		snprintf(errbuf, sizeof(errbuf), later ? "%s: not supported by keel-run (no CRIU support)"
						       : "No help topic for '%s'", cmd);
		keel_log(KEEL_LOG_ERROR, errbuf);
		if (log_fd != 2)
			fprintf(stderr, "keel-run: %s\n", errbuf);
		return 1;
	}
	a.help = false;
	r = parse(c->opts, c->command_after_id, argc, argv, &i, &a);
	if (r == 0 && c->command_after_id && i < argc) {
		a.pos[a.n_pos++] = argv[i++];
		if (i < argc && strcmp(argv[i], "--") == 0)
			i++;
		a.rest = argv + i;
	}
	if (r == 0 && a.help) {
		fputs(usage, stdout);
		return 0;
	}
	if (r < 0) {
		keel_err_set(&err, r, "%s", errbuf);
	} else {
		keel_log(KEEL_LOG_DEBUG, "command", KEEL_LF_STR("cmd", cmd),
			 KEEL_LF_STR("id", a.n_pos ? a.pos[0] : ""), KEEL_LF_STR("root", a.root),
			 KEEL_LF_STR("bundle", a.bundle ? a.bundle : "."));
		r = dispatch(cmd, &a, &exit_status, &err);
		keel_log(KEEL_LOG_DEBUG, "done", KEEL_LF_STR("cmd", cmd), KEEL_LF_INT("result", r),
			 KEEL_LF_INT("status", exit_status));
	}
	if (r < 0) {
		const char *msg = keel_err_msg(&err);
		keel_log(KEEL_LOG_ERROR, msg);
		if (log_fd != 2)
			fprintf(stderr, "keel-run: %s\n", msg);
	}
	if (log_fd != 2)
		close(log_fd);
	if (r < 0)
		return exit_status == 255 ? 255 : 1;
	return exit_status;
}
