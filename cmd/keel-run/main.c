/* keel-run: an OCI runtime with runc's command line. A dispatch table of subcommands, each a thin
 * wrapper over lib/run's lifecycle calls; global flags as runc's (urfave/cli style: `-flag`,
 * `--flag`, `--flag=value`, `--flag value`). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/str.h"
#include "run/container.h"
#include "run/spec.h"

#define KEEL_RUN_VERSION "0.1.0"

enum opt_type { OPT_BOOL, OPT_STR, OPT_UINT, OPT_IGNORED_STR, OPT_IGNORED_BOOL };

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
	"\n"
	"global options:\n"
	"  --root DIR          state directory (default " KEEL_RUN_DEFAULT_ROOT ")\n"
	"  --log FILE          log to FILE instead of stderr\n"
	"  --log-format text|json\n"
	"  --debug             log debug messages\n";

static const struct command {
	const char *name;
	const struct opt *opts;
} commands[] = {
	{"create", create_opts}, {"start", no_opts}, {"run", run_opts}, {"state", no_opts},
	{"kill", kill_opts}, {"delete", delete_opts}, {"list", list_opts},
};

/* runc commands keel-run does not have yet: a clear error instead of "unknown command". */
static const char *const later_commands[] = {"exec", "pause", "resume", "ps", "update", "features",
					     "spec", "events", "checkpoint", "restore", NULL};

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
	const struct command *c = NULL;
	for (size_t k = 0; k < KEEL_ARRAY_SIZE(commands); k++)
		if (strcmp(commands[k].name, cmd) == 0)
			c = &commands[k];
	if (!c) {
		bool later = false;
		for (size_t k = 0; later_commands[k]; k++)
			later |= strcmp(later_commands[k], cmd) == 0;
		snprintf(errbuf, sizeof(errbuf), later ? "%s: not implemented in keel-run yet"
						       : "No help topic for '%s'", cmd);
		keel_log(KEEL_LOG_ERROR, errbuf);
		if (log_fd != 2)
			fprintf(stderr, "keel-run: %s\n", errbuf);
		return 1;
	}
	a.help = false;
	r = parse(c->opts, false, argc, argv, &i, &a);
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
		return 1;
	return exit_status;
}
