/* Parsers of [Service]: command lines, the execution, kill and resource-control settings
 * (systemd.service(5), systemd.exec(5), systemd.kill(5), systemd.resource-control(5)). */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>

#include "base/mem.h"
#include "base/str.h"
#include "init/unit-internal.h"
#include "init/words.h"

#define WHITESPACE " \t\n\r"

static int set_pool_string(struct keel__pctx *c, const char **slot, const char *s)
{
	const char *n = NULL;
	if (s && !(n = keel_pool_intern(c->u->pool, s)))
		return -ENOMEM;
	keel_pool_unref(c->u->pool, *slot);
	*slot = n;
	return 0;
}

static int enum_from(const char *const *names, int n, const char *v)
{
	for (int i = 0; i < n; i++)
		if (names[i] && strcmp(names[i], v) == 0)
			return i;
	return -1;
}

static const char *const service_types[] = {
	"simple", "exec", "forking", "oneshot", "dbus", "notify", "idle",
};

int keel__parse_service_type(struct keel__pctx *c, const char *v, void *data, int ltype)
{
	struct keel_service *s = data;
	int t = enum_from(service_types, KEEL_SERVICE_TYPE_MAX, v);
	if (t < 0) {
		keel__pwarn(c, KEEL_DIAG_WARNING, "Failed to parse service type, ignoring: %s", v);
		return 0;
	}
	s->type = (uint8_t)t;
	s->type_set = true;
	return 0;
}

/* systemd's extract_first_word_and_warn(): retry with unknown escapes kept, and say which
 * problem it was. */
static int extract_and_warn(struct keel__pctx *c, const char **p, char **ret, unsigned flags,
			    const char *rvalue)
{
	const char *save = *p;
	int r = keel_extract_word(p, ret, NULL, flags);
	if (r >= 0)
		return r;
	if (r == -EINVAL && !(flags & KEEL_EXTRACT_UNESCAPE_RELAX)) {
		*p = save;
		r = keel_extract_word(p, ret, NULL, flags | KEEL_EXTRACT_UNESCAPE_RELAX);
		if (r >= 0) {
			keel__pwarn(c, KEEL_DIAG_WARNING, "Ignoring unknown escape sequences: \"%s\"", *ret);
			return r;
		}
		if (r == -EINVAL) {
			keel__pwarn(c, KEEL_DIAG_ERR, "Unbalanced quoting, ignoring: \"%s\"", rvalue);
			return r;
		}
	}
	if (r != -ENOMEM)
		keel__pwarn(c, KEEL_DIAG_ERR, "Unable to decode word \"%s\", ignoring: %s", rvalue, strerror(-r));
	return r;
}

/* Pack path and argv into one allocation. */
static struct keel_exec_cmd *exec_cmd_new(const char *path, char **argv, uint8_t flags)
{
	size_t argc = keel_strv_len(argv), bytes = strlen(path) + 1;
	for (size_t i = 0; i < argc; i++)
		bytes += strlen(argv[i]) + 1;
	struct keel_exec_cmd *c = keel_malloc(sizeof(*c) + (argc + 1) * sizeof(char *) + bytes);
	if (!c)
		return NULL;
	c->next = NULL;
	c->argv = (char **)(c + 1);
	char *t = (char *)(c->argv + argc + 1);
	c->path = t;
	t = stpcpy(t, path) + 1;
	for (size_t i = 0; i < argc; i++) {
		c->argv[i] = t;
		t = stpcpy(t, argv[i]) + 1;
	}
	c->argv[argc] = NULL;
	c->argc = (uint32_t)argc;
	c->flags = flags;
	return c;
}

/* One command of a command line; *p is moved past it and past a ';' separator. Returns 1 when
 * a separator followed, 0 at the end, -ENOEXEC for a bad setting, -ENOMEM. */
static int parse_one_command(struct keel__pctx *c, const char **p, const char **rvalue,
			     struct keel_exec_cmd ***tail)
{
	char *firstword = NULL, *path = NULL;
	char **argv = NULL;
	int r, result = 0;
	bool separate_argv0 = false, semicolon = false;
	uint8_t flags = 0;

	r = extract_and_warn(c, p, &firstword, KEEL_EXTRACT_UNQUOTE | KEEL_EXTRACT_CUNESCAPE, *rvalue);
	if (r <= 0)
		return r == -ENOMEM ? r : 0; /* a bad first word drops the command but not the unit */
	if (strcmp(firstword, ";") == 0) {
		keel_free(firstword);
		return 1;
	}

	/* The prefixes, each at most once: "-" "@" ":" "+" "!" "!!" (systemd.service(5)). */
	const char *f = firstword;
	for (;; f++) {
		if (*f == '-' && !(flags & KEEL_EXEC_IGNORE_FAILURE))
			flags |= KEEL_EXEC_IGNORE_FAILURE;
		else if (*f == '@' && !separate_argv0)
			separate_argv0 = true;
		else if (*f == ':' && !(flags & KEEL_EXEC_NO_ENV_EXPAND))
			flags |= KEEL_EXEC_NO_ENV_EXPAND;
		else if (*f == '+' && !(flags & (KEEL_EXEC_FULLY_PRIVILEGED | KEEL_EXEC_NO_SETUID | KEEL_EXEC_AMBIENT_MAGIC)))
			flags |= KEEL_EXEC_FULLY_PRIVILEGED;
		else if (*f == '!' && !(flags & (KEEL_EXEC_FULLY_PRIVILEGED | KEEL_EXEC_NO_SETUID | KEEL_EXEC_AMBIENT_MAGIC)))
			flags |= KEEL_EXEC_NO_SETUID;
		else if (*f == '!' && !(flags & (KEEL_EXEC_FULLY_PRIVILEGED | KEEL_EXEC_AMBIENT_MAGIC))) {
			flags &= (uint8_t)~KEEL_EXEC_NO_SETUID;
			flags |= KEEL_EXEC_AMBIENT_MAGIC;
		} else
			break;
	}
	bool ignore = flags & KEEL_EXEC_IGNORE_FAILURE;
	const char *ign = ignore ? ", ignoring" : "";
	enum keel_diag_level lvl = ignore ? KEEL_DIAG_WARNING : KEEL_DIAG_ERR;
	int bad = ignore ? 0 : -ENOEXEC;

	r = keel__expand(c, KEEL_SPEC_FULL, f, PATH_MAX, &path);
	if (r < 0) {
		if (r == -ENOMEM) {
			result = r;
			goto out;
		}
		keel__pwarn(c, lvl, "Failed to resolve unit specifiers in '%s'%s: %s", f, ign, strerror(-r));
		result = bad;
		goto out;
	}
	if (!*path) {
		keel__pwarn(c, lvl, "Empty path in command line%s: '%s'", ign, *rvalue);
		result = bad;
		goto out;
	}
	if (!keel_string_is_safe(path)) {
		keel__pwarn(c, lvl, "Executable name contains special characters%s: %s", ign, path);
		result = bad;
		goto out;
	}
	if (keel_endswith(path, "/")) {
		keel__pwarn(c, lvl, "Executable path specifies a directory%s: %s", ign, path);
		result = bad;
		goto out;
	}
	if (!(keel_path_is_absolute(path) ? keel_path_is_valid(path) : keel_filename_is_valid(path))) {
		keel__pwarn(c, lvl, "Neither a valid executable name nor an absolute path%s: %s", ign, path);
		result = bad;
		goto out;
	}
	if (!separate_argv0 && (r = keel_strv_push(&argv, path)) < 0) {
		result = r;
		goto out;
	}
	keel_path_simplify(path);

	while (*p && **p) {
		const char *q = *p;
		/* An unquoted ";" alone separates commands; "\;" alone is a literal ";" argument. */
		if (q[0] == ';' && (!q[1] || strchr(WHITESPACE, q[1]))) {
			q++;
			*p = q + strspn(q, WHITESPACE);
			semicolon = true;
			break;
		}
		if (q[0] == '\\' && q[1] == ';' && (!q[2] || strchr(WHITESPACE, q[2]))) {
			q += 2;
			*p = q + strspn(q, WHITESPACE);
			if ((r = keel_strv_push(&argv, ";")) < 0) {
				result = r;
				goto out;
			}
			continue;
		}
		char *word, *resolved;
		r = extract_and_warn(c, p, &word, KEEL_EXTRACT_UNQUOTE | KEEL_EXTRACT_CUNESCAPE, *rvalue);
		if (r == 0)
			break;
		if (r < 0) {
			result = r == -ENOMEM ? r : bad;
			goto out;
		}
		r = keel__expand(c, KEEL_SPEC_FULL, word, SIZE_MAX, &resolved);
		if (r < 0) {
			if (r != -ENOMEM)
				keel__pwarn(c, lvl, "Failed to resolve unit specifiers in %s%s: %s", word, ign,
					    strerror(-r));
			keel_free(word);
			result = r == -ENOMEM ? r : bad;
			goto out;
		}
		keel_free(word);
		if ((r = keel_strv_consume(&argv, resolved)) < 0) {
			result = r;
			goto out;
		}
	}
	if (!argv || !argv[0]) {
		keel__pwarn(c, lvl, "Empty executable name or zeroeth argument%s: %s", ign, *rvalue);
		result = bad;
		goto out;
	}
	struct keel_exec_cmd *cmd = exec_cmd_new(path, argv, flags);
	if (!cmd) {
		result = -ENOMEM;
		goto out;
	}
	**tail = cmd;
	*tail = &cmd->next;
	*rvalue = *p ? *p : "";
	result = semicolon ? 1 : 0;
out:
	keel_free(firstword);
	keel_free(path);
	keel_strv_free(argv);
	return result;
}

int keel__parse_exec(struct keel__pctx *c, const char *v, void *data, int ltype)
{
	struct keel_exec_cmd **list = data;
	if (!*v) {
		keel__exec_cmd_free_list(*list);
		*list = NULL;
		return 0;
	}
	struct keel_exec_cmd **tail = list;
	while (*tail)
		tail = &(*tail)->next;
	const char *p = v, *rvalue = v;
	int r;
	do {
		r = parse_one_command(c, &p, &rvalue, &tail);
	} while (r == 1 && p);
	return r < 0 ? r : 0;
}

int keel__parse_pid_file(struct keel__pctx *c, const char *v, void *data, int ltype)
{
	const char **slot = data;
	if (!*v)
		return set_pool_string(c, slot, NULL);
	char *k;
	int r = keel__expand_or_ignore(c, KEEL_SPEC_FULL, v, PATH_MAX, &k);
	if (r != 0)
		return r < 0 ? r : 0;
	/* A relative PID file lives below /run. */
	if (k[0] != '/') {
		char *n = keel_malloc(strlen(k) + 6);
		if (!n) {
			keel_free(k);
			return -ENOMEM;
		}
		strcpy(n, "/run/");
		strcat(n, k);
		keel_free(k);
		k = n;
	}
	/* systemd fails the whole file here, not just the setting. */
	r = keel__path_check(c, k, true, false);
	if (r == 0)
		r = set_pool_string(c, slot, k);
	keel_free(k);
	return r;
}

static const char *const restarts[] = {
	"no", "on-success", "on-failure", "on-abnormal", "on-watchdog", "on-abort", "always",
};

int keel__parse_restart(struct keel__pctx *c, const char *v, void *data, int ltype)
{
	int t = enum_from(restarts, KEEL_RESTART_MAX, v);
	if (t < 0) {
		keel__pwarn(c, KEEL_DIAG_WARNING, "Failed to parse service restart specifier, ignoring: %s", v);
		return 0;
	}
	((struct keel_service *)data)->restart = (uint8_t)t;
	return 0;
}

/* ltype: 0 TimeoutSec=, 1 TimeoutStartSec=, 2 TimeoutStopSec=, 3 TimeoutAbortSec=. */
int keel__parse_service_timeout(struct keel__pctx *c, const char *v, void *data, int ltype)
{
	struct keel_service *s = data;
	uint64_t usec;
	if (ltype == 3 && !*v) {
		s->timeout_abort_set = false;
		return 0;
	}
	if (keel_parse_sec_fix_0(v, &usec) < 0) {
		if (ltype == 2)
			keel__pwarn(c, KEEL_DIAG_WARNING, "Failed to parse time value, ignoring: %s", v);
		else if (ltype == 3)
			keel__pwarn(c, KEEL_DIAG_WARNING, "Failed to parse TimeoutAbortSec= setting, ignoring: %s", v);
		else
			keel__pwarn(c, KEEL_DIAG_WARNING, "Failed to parse %s= parameter, ignoring: %s", c->key, v);
		return 0;
	}
	switch (ltype) {
	case 0:
		s->timeout_stop_usec = usec;
		/* fall through */
	case 1:
		s->timeout_start_usec = usec;
		s->timeout_start_set = true;
		break;
	case 2:
		s->timeout_stop_usec = usec;
		break;
	case 3:
		s->timeout_abort_usec = usec;
		s->timeout_abort_set = true;
		break;
	}
	return 0;
}

int keel__parse_exit_status(struct keel__pctx *c, const char *v, void *data, int ltype)
{
	struct keel_exit_status_set **set = data;
	if (!*v) {
		keel_free(*set);
		*set = NULL;
		return 0;
	}
	for (const char *p = v;;) {
		char *word;
		int r = keel_extract_word(&p, &word, NULL, 0);
		if (r == -ENOMEM)
			return r;
		if (r < 0) {
			keel__pwarn(c, KEEL_DIAG_WARNING, "Failed to parse %s=%s, ignoring: %s", c->key, v, strerror(-r));
			return 0;
		}
		if (r == 0)
			return 0;
		/* Numbers are exit codes, never signals; names are tried as exit codes first. */
		bool is_signal = false;
		int n = keel_exit_status_from_string(word);
		if (n < 0) {
			n = keel_signal_from_string(word);
			is_signal = true;
		}
		if (n < 0 || (is_signal && n >= 64)) {
			keel__pwarn(c, KEEL_DIAG_WARNING, "Failed to parse value, ignoring: %s", word);
			keel_free(word);
			continue;
		}
		keel_free(word);
		if (!*set && !(*set = keel_calloc(1, sizeof(**set))))
			return -ENOMEM;
		if (is_signal)
			(*set)->signal[n / 8] |= (uint8_t)(1u << (n % 8));
		else
			(*set)->status[n / 8] |= (uint8_t)(1u << (n % 8));
	}
}

static const char *const kill_modes[] = {"control-group", "process", "mixed", "none"};

int keel__parse_kill_mode(struct keel__pctx *c, const char *v, void *data, int ltype)
{
	struct keel_kill_ctx *k = data;
	if (!*v) {
		k->kill_mode = KEEL_KILL_CONTROL_GROUP;
		return 0;
	}
	int m = enum_from(kill_modes, KEEL_KILL_MODE_MAX, v);
	if (m < 0) {
		keel__pwarn(c, KEEL_DIAG_WARNING, "Failed to parse kill mode specification, ignoring: %s", v);
		return 0;
	}
	if (m == KEEL_KILL_NONE)
		keel__pwarn(c, KEEL_DIAG_WARNING,
			    "Unit uses KillMode=none. This is unsafe, as it disables systemd's process lifecycle management for the service. Please update the service to use a safer KillMode=, such as 'mixed' or 'control-group'. Support for KillMode=none is deprecated and will eventually be removed.");
	k->kill_mode = (uint8_t)m;
	return 0;
}

int keel__parse_signal(struct keel__pctx *c, const char *v, void *data, int ltype)
{
	int sig = keel_signal_from_string(v);
	if (sig <= 0) {
		keel__pwarn(c, KEEL_DIAG_WARNING, "Failed to parse signal name, ignoring: %s", v);
		return 0;
	}
	*(uint8_t *)data = (uint8_t)sig;
	return 0;
}

int keel__parse_environ(struct keel__pctx *c, const char *v, void *data, int ltype)
{
	const char ***env = data;
	if (!*v) {
		keel_pool_strv_clear(c->u->pool, env);
		return 0;
	}
	for (const char *p = v;;) {
		char *word, *resolved;
		int r = keel_extract_word(&p, &word, NULL, KEEL_EXTRACT_CUNESCAPE | KEEL_EXTRACT_UNQUOTE);
		if (r == -ENOMEM)
			return r;
		if (r < 0) {
			keel__pwarn(c, KEEL_DIAG_WARNING, "Invalid syntax, ignoring: %s", v);
			return 0;
		}
		if (r == 0)
			return 0;
		r = keel__expand(c, KEEL_SPEC_FULL, word, SIZE_MAX, &resolved);
		if (r < 0) {
			if (r != -ENOMEM)
				keel__pwarn(c, KEEL_DIAG_WARNING, "Failed to resolve specifiers in %s, ignoring: %s", word,
					    strerror(-r));
			keel_free(word);
			if (r == -ENOMEM)
				return r;
			continue;
		}
		keel_free(word);
		if (!keel_env_assignment_is_valid(resolved)) {
			keel__pwarn(c, KEEL_DIAG_WARNING, "Invalid environment assignment, ignoring: %s", resolved);
			keel_free(resolved);
			continue;
		}
		r = keel__env_set(c->u->pool, env, resolved);
		keel_free(resolved);
		if (r < 0)
			return r;
	}
}

int keel__parse_env_file(struct keel__pctx *c, const char *v, void *data, int ltype)
{
	const char ***list = data;
	if (!*v) {
		keel_pool_strv_clear(c->u->pool, list);
		return 0;
	}
	char *n;
	int r = keel__expand_or_ignore(c, KEEL_SPEC_FULL, v, PATH_MAX, &n);
	if (r != 0)
		return r < 0 ? r : 0;
	if (keel__path_check(c, n[0] == '-' ? n + 1 : n, true, false) == 0)
		r = keel_pool_strv_add(c->u->pool, list, n);
	keel_free(n);
	return r;
}

int keel__parse_supplementary_groups(struct keel__pctx *c, const char *v, void *data, int ltype)
{
	const char ***list = data;
	if (!*v) {
		keel_pool_strv_clear(c->u->pool, list);
		return 0;
	}
	for (const char *p = v;;) {
		char *word, *k;
		int r = keel_extract_word(&p, &word, NULL, 0);
		if (r == -ENOMEM)
			return r;
		if (r < 0) {
			keel__pwarn(c, KEEL_DIAG_ERR, "Invalid syntax: %s", v);
			return -ENOEXEC;
		}
		if (r == 0)
			return 0;
		r = keel__expand(c, KEEL_SPEC_FULL, word, SIZE_MAX, &k);
		if (r < 0) {
			if (r != -ENOMEM)
				keel__pwarn(c, KEEL_DIAG_ERR, "Failed to resolve unit specifiers in %s: %s", word,
					    strerror(-r));
			keel_free(word);
			return r == -ENOMEM ? r : -ENOEXEC;
		}
		keel_free(word);
		if (!keel__user_group_name_is_valid(k)) {
			keel__pwarn(c, KEEL_DIAG_ERR, "Invalid user/group name or numeric ID: %s", k);
			keel_free(k);
			return -ENOEXEC;
		}
		r = keel_pool_strv_add(c->u->pool, list, k);
		keel_free(k);
		if (r < 0)
			return r;
	}
}

int keel__parse_working_directory(struct keel__pctx *c, const char *v, void *data, int ltype)
{
	struct keel_exec_ctx *e = data;
	if (!*v) {
		e->working_directory_home = false;
		return set_pool_string(c, &e->working_directory, NULL);
	}
	bool missing_ok = v[0] == '-';
	if (missing_ok)
		v++;
	if (strcmp(v, "~") == 0) {
		e->working_directory_home = true;
		int r = set_pool_string(c, &e->working_directory, NULL);
		if (r < 0)
			return r;
	} else {
		char *k;
		int r = keel__expand(c, KEEL_SPEC_FULL, v, PATH_MAX, &k);
		if (r < 0) {
			if (r == -ENOMEM)
				return r;
			keel__pwarn(c, missing_ok ? KEEL_DIAG_WARNING : KEEL_DIAG_ERR,
				    "Failed to resolve unit specifiers in working directory path '%s'%s: %s", v,
				    missing_ok ? ", ignoring" : "", strerror(-r));
			return missing_ok ? 0 : -ENOEXEC;
		}
		if (keel__path_check(c, k, true, !missing_ok) < 0) {
			keel_free(k);
			return missing_ok ? 0 : -ENOEXEC;
		}
		e->working_directory_home = false;
		r = set_pool_string(c, &e->working_directory, k);
		keel_free(k);
		if (r < 0)
			return r;
	}
	e->working_directory_missing_ok = missing_ok;
	return 0;
}

/* ltype: 1 when a bad path fails the unit (RootDirectory=). */
int keel__parse_unit_path(struct keel__pctx *c, const char *v, void *data, int ltype)
{
	bool fatal = ltype;
	char *k;
	int r = keel__expand(c, KEEL_SPEC_FULL, v, PATH_MAX, &k);
	if (r < 0) {
		if (r == -ENOMEM)
			return r;
		keel__pwarn(c, fatal ? KEEL_DIAG_ERR : KEEL_DIAG_WARNING,
			    "Failed to resolve unit specifiers in '%s'%s: %s", v, fatal ? "" : ", ignoring",
			    strerror(-r));
		return fatal ? -ENOEXEC : 0;
	}
	if (!*k) {
		keel_free(k);
		return set_pool_string(c, data, NULL);
	}
	if (keel__path_check(c, k, true, fatal) < 0) {
		keel_free(k);
		return fatal ? -ENOEXEC : 0;
	}
	r = set_pool_string(c, data, k);
	keel_free(k);
	return r;
}

int keel__parse_umask(struct keel__pctx *c, const char *v, void *data, int ltype)
{
	return keel__parse_mode(c, v, data, ltype);
}

int keel__parse_nice(struct keel__pctx *c, const char *v, void *data, int ltype)
{
	struct keel_exec_ctx *e = data;
	if (!*v) {
		e->nice_set = false;
		return 0;
	}
	int n;
	int r = keel_parse_nice(v, &n);
	if (r < 0) {
		if (r == -ERANGE)
			keel__pwarn(c, KEEL_DIAG_WARNING, "Nice priority out of range, ignoring: %s", v);
		else
			keel__pwarn(c, KEEL_DIAG_WARNING, "Failed to parse nice priority '%s', ignoring: %s", v,
				    strerror(-r));
		return 0;
	}
	e->nice = (int8_t)n;
	e->nice_set = true;
	return 0;
}

int keel__parse_rlimit(struct keel__pctx *c, const char *v, void *data, int ltype)
{
	struct keel_exec_ctx *e = data;
	uint64_t soft, hard;
	int r = keel_rlimit_parse(ltype, v, &soft, &hard);
	if (r == -EILSEQ) {
		keel__pwarn(c, KEEL_DIAG_WARNING, "Soft resource limit chosen higher than hard limit, ignoring: %s", v);
		return 0;
	}
	if (r < 0) {
		keel__pwarn(c, KEEL_DIAG_WARNING, "Failed to parse resource value, ignoring: %s", v);
		return 0;
	}
	for (uint8_t i = 0; i < e->n_rlimits; i++) {
		if (e->rlimits[i].resource == ltype) {
			e->rlimits[i].soft = soft;
			e->rlimits[i].hard = hard;
			return 0;
		}
	}
	struct keel_rlimit *nr = keel_reallocarray(e->rlimits, e->n_rlimits + 1u, sizeof(*nr));
	if (!nr)
		return -ENOMEM;
	e->rlimits = nr;
	e->rlimits[e->n_rlimits++] = (struct keel_rlimit){(uint8_t)ltype, soft, hard};
	return 0;
}

/* FileDescriptorName= and fd: names: printable ASCII without ':', at most 255 bytes. */
bool keel__fdname_is_valid(const char *s);
bool keel__fdname_is_valid(const char *s)
{
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++, n++)
		if (*p < ' ' || *p >= 127 || *p == ':')
			return false;
	return n <= 255;
}

/* The "fd:NAME" and "file:PATH" forms shared by input and output; 1 when v had one of the
 * given prefixes (handled, *ret_kind set), 0 when not, -ENOMEM. */
static int parse_stdio_target(struct keel__pctx *c, const char *v, const char **slot, bool *ret_ok,
			      const char *prefix)
{
	const char *n = keel_startswith(v, prefix);
	if (!n)
		return 0;
	*ret_ok = false;
	char *k;
	bool fd = strcmp(prefix, "fd:") == 0;
	int r = keel__expand_or_ignore(c, KEEL_SPEC_FULL, n, fd ? SIZE_MAX : PATH_MAX, &k);
	if (r != 0)
		return r;
	if (fd) {
		if (*k && !keel__fdname_is_valid(k)) {
			keel__pwarn(c, KEEL_DIAG_WARNING, "Invalid file descriptor name, ignoring: %s", k);
			keel_free(k);
			return 1;
		}
	} else if (keel__path_check(c, k, true, true) < 0) {
		keel_free(k);
		return 1;
	}
	r = set_pool_string(c, slot, *k ? k : NULL);
	keel_free(k);
	if (r < 0)
		return r;
	*ret_ok = true;
	return 1;
}

static const char *const inputs[] = {"null", "tty", "tty-force", "tty-fail", "socket", "fd", "data", "file"};

int keel__parse_input(struct keel__pctx *c, const char *v, void *data, int ltype)
{
	struct keel_exec_ctx *e = data;
	bool ok;
	int r;
	if ((r = parse_stdio_target(c, v, &e->stdin_path, &ok, "fd:")) != 0) {
		if (r > 0 && ok)
			e->std_input = KEEL_INPUT_NAMED_FD;
		return r < 0 ? r : 0;
	}
	if ((r = parse_stdio_target(c, v, &e->stdin_path, &ok, "file:")) != 0) {
		if (r > 0 && ok)
			e->std_input = KEEL_INPUT_FILE;
		return r < 0 ? r : 0;
	}
	int i = enum_from(inputs, KEEL_INPUT_MAX, v);
	if (i < 0) {
		keel__pwarn(c, KEEL_DIAG_WARNING, "Failed to parse input specifier, ignoring: %s", v);
		return 0;
	}
	e->std_input = (uint8_t)i;
	return 0;
}

static const char *const outputs[] = {
	"inherit", "null", "tty", "kmsg", "kmsg+console", "journal", "journal+console", "socket",
	"fd", "file", "append", "truncate",
};

/* ltype: 1 StandardOutput=, 2 StandardError=. */
int keel__parse_output(struct keel__pctx *c, const char *v, void *data, int ltype)
{
	struct keel_exec_ctx *e = data;
	const char **slot = ltype == 1 ? &e->stdout_path : &e->stderr_path;
	uint8_t *kind = ltype == 1 ? &e->std_output : &e->std_error;
	static const struct {
		const char *prefix;
		uint8_t kind;
	} forms[] = {
		{"fd:", KEEL_OUTPUT_NAMED_FD}, {"file:", KEEL_OUTPUT_FILE},
		{"append:", KEEL_OUTPUT_FILE_APPEND}, {"truncate:", KEEL_OUTPUT_FILE_TRUNCATE},
	};
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(forms); i++) {
		bool ok;
		int r = parse_stdio_target(c, v, slot, &ok, forms[i].prefix);
		if (r < 0)
			return r;
		if (r > 0) {
			if (ok) {
				*kind = forms[i].kind;
				if (ltype == 2)
					e->std_error_set = true;
			}
			return 0;
		}
	}
	int o = enum_from(outputs, KEEL_OUTPUT_MAX, v);
	if (o < 0 && (strcmp(v, "syslog") == 0 || strcmp(v, "syslog+console") == 0)) {
		o = strcmp(v, "syslog") == 0 ? KEEL_OUTPUT_JOURNAL : KEEL_OUTPUT_JOURNAL_AND_CONSOLE;
		keel__pwarn(c, KEEL_DIAG_NOTICE,
			    "Standard output type %s is obsolete, automatically updating to %s. Please update your unit file, and consider removing the setting altogether.",
			    v, outputs[o]);
	}
	if (o < 0) {
		keel__pwarn(c, KEEL_DIAG_WARNING, "Failed to parse output specifier, ignoring: %s", v);
		return 0;
	}
	*kind = (uint8_t)o;
	if (ltype == 2)
		e->std_error_set = true;
	return 0;
}

static const char *const notify_accesses[] = {"none", "main", "exec", "all"};

int keel__parse_notify_access(struct keel__pctx *c, const char *v, void *data, int ltype)
{
	struct keel_service *s = data;
	int a = enum_from(notify_accesses, KEEL_NOTIFY_MAX, v);
	if (a < 0) {
		keel__pwarn(c, KEEL_DIAG_WARNING, "Failed to parse notify access specifier, ignoring: %s", v);
		return 0;
	}
	s->notify_access = (uint8_t)a;
	s->notify_access_set = true;
	return 0;
}

int keel__parse_memory_limit(struct keel__pctx *c, const char *v, void *data, int ltype)
{
	struct keel_limit *l = data;
	struct keel_limit n = {0, KEEL_LIMIT_INFINITY};
	if (*v && strcmp(v, "infinity") != 0) {
		int pm = keel_parse_permyriad(v);
		if (pm >= 0) {
			n = (struct keel_limit){(uint64_t)pm, KEEL_LIMIT_PERMYRIAD};
		} else {
			uint64_t bytes;
			int r = keel_parse_size(v, 1024, &bytes);
			if (r < 0) {
				keel__pwarn(c, KEEL_DIAG_WARNING, "Invalid memory limit '%s', ignoring: %s", v, strerror(-r));
				return 0;
			}
			n = (struct keel_limit){bytes, KEEL_LIMIT_VALUE};
		}
		if (n.value == 0 || (n.kind == KEEL_LIMIT_VALUE && n.value == UINT64_MAX)) {
			keel__pwarn(c, KEEL_DIAG_WARNING, "Memory limit '%s' out of range, ignoring.", v);
			return 0;
		}
	}
	*l = n;
	if (strcmp(c->key, "MemoryLimit") == 0)
		keel__pwarn(c, KEEL_DIAG_WARNING,
			    "Unit uses MemoryLimit=; please use MemoryMax= instead. Support for MemoryLimit= will be removed soon.");
	return 0;
}

int keel__parse_tasks_max(struct keel__pctx *c, const char *v, void *data, int ltype)
{
	struct keel_limit *l = data;
	if (!*v) {
		*l = (struct keel_limit){0, KEEL_LIMIT_UNSET};
		return 0;
	}
	if (strcmp(v, "infinity") == 0) {
		*l = (struct keel_limit){0, KEEL_LIMIT_INFINITY};
		return 0;
	}
	int pm = keel_parse_permyriad(v);
	if (pm >= 0) {
		*l = (struct keel_limit){(uint64_t)pm, KEEL_LIMIT_PERMYRIAD};
		return 0;
	}
	uint64_t n;
	int r = keel_safe_atou64(v, &n);
	if (r < 0) {
		keel__pwarn(c, KEEL_DIAG_WARNING, "Invalid maximum tasks value '%s', ignoring: %s", v, strerror(-r));
		return 0;
	}
	if (n == 0 || n == UINT64_MAX) {
		keel__pwarn(c, KEEL_DIAG_WARNING, "Maximum tasks value '%s' out of range, ignoring.", v);
		return 0;
	}
	*l = (struct keel_limit){n, KEEL_LIMIT_VALUE};
	return 0;
}

int keel__parse_cpu_quota(struct keel__pctx *c, const char *v, void *data, int ltype)
{
	uint64_t *usec = data;
	if (!*v) {
		*usec = KEEL_USEC_INFINITY;
		return 0;
	}
	int pm = keel_parse_permyriad_unbounded(v);
	if (pm <= 0) {
		keel__pwarn(c, KEEL_DIAG_WARNING, "Invalid CPU quota '%s', ignoring.", v);
		return 0;
	}
	*usec = (uint64_t)pm * KEEL_USEC_PER_SEC / 10000;
	return 0;
}

/* ltype: 0 CPUWeight=, 1 IOWeight=, 2 CPUShares=, 3 BlockIOWeight=. */
int keel__parse_cg_weight(struct keel__pctx *c, const char *v, void *data, int ltype)
{
	uint64_t *w = data;
	if (ltype == 2)
		keel__pwarn(c, KEEL_DIAG_WARNING,
			    "Unit uses CPUShares=; please use CPUWeight= instead. Support for CPUShares= will be removed soon.");
	if (!*v) {
		*w = KEEL_CGROUP_WEIGHT_UNSET;
		return 0;
	}
	static const char *const what[] = {"CPU weight", "weight", "CPU shares", "block IO weight"};
	uint64_t n;
	int r = ltype == 0 ? keel_cg_cpu_weight_parse(v, &n)
		: ltype == 1 ? keel_cg_weight_parse(v, &n)
		: ltype == 2 ? keel_cg_cpu_shares_parse(v, &n)
		: keel_cg_blkio_weight_parse(v, &n);
	if (r < 0) {
		keel__pwarn(c, KEEL_DIAG_WARNING, "Invalid %s, ignoring: %s", what[ltype], v);
		return 0;
	}
	*w = n;
	return 0;
}

int keel__parse_service_sockets(struct keel__pctx *c, const char *v, void *data, int ltype)
{
	struct keel_service *s = data;
	for (const char *p = v;;) {
		char *word, *k;
		int r = keel_extract_word(&p, &word, NULL, KEEL_EXTRACT_RETAIN_ESCAPE);
		if (r == -ENOMEM)
			return r;
		if (r < 0) {
			keel__pwarn(c, KEEL_DIAG_WARNING, "Trailing garbage in sockets, ignoring: %s", v);
			return 0;
		}
		if (r == 0)
			return 0;
		r = keel__expand_or_ignore(c, KEEL_SPEC_UNIT_NAME, word, SIZE_MAX, &k);
		if (r != 0) {
			keel_free(word);
			if (r < 0)
				return r;
			continue;
		}
		keel_free(word);
		if (!keel_endswith(k, ".socket")) {
			keel__pwarn(c, KEEL_DIAG_WARNING, "Unit must be of type socket, ignoring: %s", k);
			keel_free(k);
			continue;
		}
		if (!keel_unit_name_is_valid(k, KEEL_NAME_PLAIN | KEEL_NAME_INSTANCE)) {
			keel__pwarn(c, KEEL_DIAG_WARNING, "Failed to add dependency on %s, ignoring: %s", k,
				    strerror(EINVAL));
			keel_free(k);
			continue;
		}
		r = keel_pool_strv_add(c->u->pool, &s->sockets, k);
		if (r == 0)
			r = keel_unit_add_dep(c->u, KEEL_DEP_WANTS, k, KEEL_DEP_FROM_FILE);
		if (r == 0)
			r = keel_unit_add_dep(c->u, KEEL_DEP_AFTER, k, KEEL_DEP_FROM_FILE);
		keel_free(k);
		if (r < 0)
			return r;
	}
}

/* D-Bus well-known names: two or more dot-separated elements of [A-Za-z0-9_-], not starting with
 * a digit, at most 255 bytes. */
static bool bus_name_is_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 255 || s[0] == '.' || s[n - 1] == '.')
		return false;
	int dots = 0;
	bool start = true;
	for (const char *p = s; *p; p++) {
		char ch = *p;
		if (ch == '.') {
			if (start)
				return false;
			dots++;
			start = true;
			continue;
		}
		bool alpha = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' || ch == '-';
		bool digit = ch >= '0' && ch <= '9';
		if (!alpha && !digit)
			return false;
		if (start && digit)
			return false;
		start = false;
	}
	return dots >= 1;
}

int keel__parse_bus_name(struct keel__pctx *c, const char *v, void *data, int ltype)
{
	char *k;
	int r = keel__expand_or_ignore(c, KEEL_SPEC_FULL, v, SIZE_MAX, &k);
	if (r != 0)
		return r < 0 ? r : 0;
	if (*k && !bus_name_is_valid(k)) {
		keel__pwarn(c, KEEL_DIAG_WARNING, "Invalid bus name, ignoring: %s", k);
		keel_free(k);
		return 0;
	}
	r = set_pool_string(c, data, *k ? k : NULL);
	keel_free(k);
	return r;
}
