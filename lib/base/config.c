#include "base/config.h"

#include <errno.h>
#include <string.h>

#include "base/mem.h"
#include "base/str.h"

extern char **environ;

#define KEEL__ENV_NAME_MAX 128

/* Where a value came from, for messages. */
enum source { SRC_DEFAULT, SRC_ENV, SRC_FLAG };

static void *field(void *cfg, const struct keel_opt *opt)
{
	return (char *)cfg + opt->offset;
}

const char *keel_config_env_name(const struct keel_config_spec *spec, const struct keel_opt *opt,
				 char *out, size_t size)
{
	if ((opt->flags & KEEL_OPT_NOENV) || (!opt->env && !spec->env_prefix)) {
		out[0] = '\0';
	} else if (opt->env) {
		snprintf(out, size, "%s", opt->env);
	} else if (keel_env_name(spec->env_prefix, opt->name, out, size) >= size) {
		out[0] = '\0'; /* a name too long to hold is no name */
	}
	return out;
}

static bool bounded(const struct keel_opt *opt)
{
	return opt->min != opt->max;
}

/* Describe where a bad value came from: "flag --name" or "environment variable ETCD_NAME". */
static int bad_value(const struct keel_config_spec *spec, const struct keel_opt *opt, enum source src,
		     const char *value, const char *why, struct keel_err *err)
{
	char env[KEEL__ENV_NAME_MAX];
	if (src == SRC_ENV)
		return keel_err_set(err, -KEEL_EBAD_VALUE,
				    "invalid value \"%s\" for environment variable %s: %s", value,
				    keel_config_env_name(spec, opt, env, sizeof(env)), why);
	if (src == SRC_DEFAULT)
		return keel_err_set(err, -KEEL_EBAD_VALUE, "invalid default \"%s\" for --%s: %s", value,
				    opt->name, why);
	return keel_err_set(err, -KEEL_EBAD_VALUE, "invalid value \"%s\" for flag --%s: %s", value,
			    opt->name, why);
}

/* Parse value into the option's field. `append` adds to a list instead of replacing it. */
static int set_value(const struct keel_config_spec *spec, void *cfg, const struct keel_opt *opt,
		     const char *value, enum source src, bool append, struct keel_err *err)
{
	void *f = field(cfg, opt);
	int r;
	switch (opt->type) {
	case KEEL_OPT_STRING: {
		char *copy = keel_strdup(value);
		if (!copy)
			return keel_err_set(err, -ENOMEM, "out of memory");
		keel_free(*(char **)f);
		*(char **)f = copy;
		return 0;
	}
	case KEEL_OPT_BOOL:
		if (keel_parse_bool(value, (bool *)f) < 0)
			return bad_value(spec, opt, src, value, "not a boolean (true or false)", err);
		return 0;
	case KEEL_OPT_INT: {
		int64_t v;
		r = keel_parse_i64(value, &v);
		if (r)
			return bad_value(spec, opt, src, value,
					 r == -ERANGE ? "out of range" : "not an integer", err);
		if (bounded(opt) && (v < opt->min || v > opt->max)) {
			char why[96];
			snprintf(why, sizeof(why), "must be between %lld and %lld", (long long)opt->min,
				 (long long)opt->max);
			return bad_value(spec, opt, src, value, why, err);
		}
		*(int64_t *)f = v;
		return 0;
	}
	case KEEL_OPT_UINT: {
		uint64_t v;
		r = keel_parse_u64(value, &v);
		if (r)
			return bad_value(spec, opt, src, value,
					 r == -ERANGE ? "out of range" : "not an unsigned integer", err);
		if (bounded(opt) && (v < (uint64_t)opt->min || v > (uint64_t)opt->max)) {
			char why[96];
			snprintf(why, sizeof(why), "must be between %lld and %lld", (long long)opt->min,
				 (long long)opt->max);
			return bad_value(spec, opt, src, value, why, err);
		}
		*(uint64_t *)f = v;
		return 0;
	}
	case KEEL_OPT_DURATION: {
		int64_t v;
		r = keel_parse_duration(value, &v);
		if (r)
			return bad_value(spec, opt, src, value,
					 r == -ERANGE ? "out of range"
						      : "not a duration (like 500ms, 10s or 1h30m)",
					 err);
		if (bounded(opt) && (v < opt->min || v > opt->max))
			return bad_value(spec, opt, src, value, "out of the allowed range", err);
		*(int64_t *)f = v;
		return 0;
	}
	case KEEL_OPT_ENUM:
		for (int i = 0; opt->choices && opt->choices[i]; i++)
			if (strcmp(opt->choices[i], value) == 0) {
				*(int *)f = i;
				return 0;
			}
		{
			char why[256] = "must be one of:";
			for (int i = 0; opt->choices && opt->choices[i]; i++) {
				size_t n = strlen(why);
				snprintf(why + n, sizeof(why) - n, " %s", opt->choices[i]);
			}
			return bad_value(spec, opt, src, value, why, err);
		}
	case KEEL_OPT_LIST: {
		char **parts;
		if (keel_strv_split(value, ",", &parts) < 0)
			return keel_err_set(err, -ENOMEM, "out of memory");
		char ***list = f;
		if (!append) {
			keel_strv_free(*list);
			*list = parts;
			return 0;
		}
		for (size_t i = 0; parts[i]; i++) {
			if (keel_strv_consume(list, parts[i]) < 0) {
				parts[i] = NULL; /* already freed by consume */
				for (size_t j = i + 1; parts[j]; j++)
					keel_free(parts[j]);
				keel_free(parts);
				return keel_err_set(err, -ENOMEM, "out of memory");
			}
		}
		keel_free(parts); /* the strings moved to the list */
		return 0;
	}
	}
	return keel_err_set(err, -EINVAL, "option --%s has an unknown type", opt->name);
}

static const struct keel_opt *find_long(const struct keel_config_spec *spec, const char *name, size_t n)
{
	for (size_t i = 0; i < spec->n_opts; i++)
		if (strlen(spec->opts[i].name) == n && memcmp(spec->opts[i].name, name, n) == 0)
			return &spec->opts[i];
	return NULL;
}

static const struct keel_opt *find_short(const struct keel_config_spec *spec, char c)
{
	for (size_t i = 0; i < spec->n_opts; i++)
		if (spec->opts[i].short_name && spec->opts[i].short_name == c)
			return &spec->opts[i];
	return NULL;
}

static const char *env_lookup(char *const *envp, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; envp && envp[i]; i++)
		if (strncmp(envp[i], name, n) == 0 && envp[i][n] == '=')
			return envp[i] + n + 1;
	return NULL;
}

static void warn(const struct keel_config_spec *spec, const char *fmt, ...) KEEL_PRINTF(2, 3);
static void warn(const struct keel_config_spec *spec, const char *fmt, ...)
{
	if (!spec->warn)
		return;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	spec->warn(msg, spec->userdata);
}

static int apply_defaults(const struct keel_config_spec *spec, void *cfg, struct keel_err *err)
{
	for (size_t i = 0; i < spec->n_opts; i++) {
		const struct keel_opt *opt = &spec->opts[i];
		if (!opt->def)
			continue;
		int r = set_value(spec, cfg, opt, opt->def, SRC_DEFAULT, false, err);
		if (r)
			return r;
	}
	return 0;
}

/* Apply the environment; the flags seen on the command line mark which variables are shadowed. */
static int apply_env(const struct keel_config_spec *spec, void *cfg, char *const *envp,
		     const bool *on_cmdline, struct keel_err *err)
{
	for (size_t i = 0; i < spec->n_opts; i++) {
		const struct keel_opt *opt = &spec->opts[i];
		char name[KEEL__ENV_NAME_MAX];
		if (!*keel_config_env_name(spec, opt, name, sizeof(name)))
			continue;
		const char *v = env_lookup(envp, name);
		if (!v || !*v)
			continue;
		if (on_cmdline[i]) {
			warn(spec, "environment variable %s is shadowed by flag --%s", name, opt->name);
			continue;
		}
		int r = set_value(spec, cfg, opt, v, SRC_ENV, false, err);
		if (r)
			return r;
	}
	/* A misspelt variable with our prefix would otherwise be ignored without a word. */
	size_t plen = spec->env_prefix ? strlen(spec->env_prefix) : 0;
	for (size_t e = 0; plen && envp && envp[e]; e++) {
		if (strncmp(envp[e], spec->env_prefix, plen) != 0 || envp[e][plen] != '_')
			continue;
		const char *eq = strchr(envp[e], '=');
		size_t nlen = eq ? (size_t)(eq - envp[e]) : strlen(envp[e]);
		bool known = false;
		for (size_t i = 0; i < spec->n_opts && !known; i++) {
			char name[KEEL__ENV_NAME_MAX];
			keel_config_env_name(spec, &spec->opts[i], name, sizeof(name));
			known = strlen(name) == nlen && memcmp(name, envp[e], nlen) == 0;
		}
		if (!known)
			warn(spec, "unrecognized environment variable %.*s", (int)nlen, envp[e]);
	}
	return 0;
}

/* One flag from the command line: it is argv[*i]; may consume argv[*i + 1]. A NULL cfg only
 * checks syntax and records which options appear (the first pass). */
static int parse_flag(const struct keel_config_spec *spec, void *cfg, int argc, char *const *argv, int *i,
		      bool *seen, struct keel_err *err)
{
	const char *arg = argv[*i];
	const char *name = arg + 1 + (arg[1] == '-');
	const char *eq = strchr(name, '=');
	size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
	const char *value = eq ? eq + 1 : NULL;

	if ((nlen == 1 && name[0] == 'h') || (nlen == 4 && memcmp(name, "help", 4) == 0))
		return keel_err_set(err, -KEEL_EHELP, "help requested");
	if (spec->version && nlen == 7 && memcmp(name, "version", 7) == 0 && !find_long(spec, name, nlen))
		return keel_err_set(err, -KEEL_EVERSION, "version requested");

	const struct keel_opt *opt = find_long(spec, name, nlen);
	if (!opt && nlen == 1)
		opt = find_short(spec, name[0]);
	if (!opt || nlen == 0 || name[0] == '-')
		return keel_err_set(err, -KEEL_EUNKNOWN_FLAG, "flag provided but not defined: %.*s",
				    (int)(name - arg + nlen), arg);

	if (!value) {
		if (opt->type == KEEL_OPT_BOOL) {
			value = "true";
		} else {
			if (*i + 1 >= argc)
				return keel_err_set(err, -KEEL_EBAD_VALUE, "flag needs an argument: %s",
						    arg);
			value = argv[++*i];
		}
	}
	size_t idx = (size_t)(opt - spec->opts);
	bool first = !seen[idx];
	seen[idx] = true;
	if (!cfg)
		return 0;
	return set_value(spec, cfg, opt, value, SRC_FLAG, !first, err);
}

static bool is_flag(const char *arg)
{
	return arg[0] == '-' && arg[1] != '\0';
}

/* Walk the flags; returns the index of the first positional argument or a negative error. */
static int walk_flags(const struct keel_config_spec *spec, void *cfg, int argc, char *const *argv,
		      bool *seen, struct keel_err *err)
{
	int i;
	for (i = 1; i < argc; i++) {
		if (!is_flag(argv[i]))
			break;
		if (strcmp(argv[i], "--") == 0)
			return i + 1;
		int r = parse_flag(spec, cfg, argc, argv, &i, seen, err);
		if (r)
			return r;
	}
	return i;
}

int keel_config_parse(const struct keel_config_spec *spec, void *cfg, int argc, char *const *argv,
		      char *const *envp, int *ret_argi, struct keel_err *err)
{
	bool *seen = keel_calloc(spec->n_opts + 1, sizeof(bool));
	if (!seen)
		return keel_err_set(err, -ENOMEM, "out of memory");

	/* First pass: syntax, --help, and which flags are given, so that a bad command line is
	 * reported before a bad environment and shadowed variables are known. */
	int r = walk_flags(spec, NULL, argc, argv, seen, err);
	if (r >= 0)
		r = apply_defaults(spec, cfg, err);
	if (r >= 0)
		r = apply_env(spec, cfg, envp ? envp : environ, seen, err);
	if (r >= 0) {
		memset(seen, 0, (spec->n_opts + 1) * sizeof(bool));
		r = walk_flags(spec, cfg, argc, argv, seen, err);
	}
	keel_free(seen);
	if (r < 0)
		return r;
	if (ret_argi)
		*ret_argi = r;
	return 0;
}

int keel_config_set(const struct keel_config_spec *spec, void *cfg, const char *name, const char *value,
		    struct keel_err *err)
{
	const struct keel_opt *opt = find_long(spec, name, strlen(name));
	if (!opt)
		return keel_err_set(err, -KEEL_EUNKNOWN_FLAG, "unknown option: %s", name);
	return set_value(spec, cfg, opt, value, SRC_FLAG, false, err);
}

void keel_config_free(const struct keel_config_spec *spec, void *cfg)
{
	for (size_t i = 0; i < spec->n_opts; i++) {
		const struct keel_opt *opt = &spec->opts[i];
		void *f = field(cfg, opt);
		if (opt->type == KEEL_OPT_STRING) {
			keel_free(*(char **)f);
			*(char **)f = NULL;
		} else if (opt->type == KEEL_OPT_LIST) {
			keel_strv_free(*(char ***)f);
			*(char ***)f = NULL;
		}
	}
}

static const char *metavar(const struct keel_opt *opt)
{
	if (opt->metavar)
		return opt->metavar;
	switch (opt->type) {
	case KEEL_OPT_BOOL: return NULL;
	case KEEL_OPT_INT: return "INT";
	case KEEL_OPT_UINT: return "UINT";
	case KEEL_OPT_DURATION: return "DURATION";
	case KEEL_OPT_ENUM: return "CHOICE";
	case KEEL_OPT_LIST: return "LIST";
	default: return "STRING";
	}
}

void keel_config_help(const struct keel_config_spec *spec, FILE *out)
{
	fprintf(out, "Usage: %s %s\n", spec->prog, spec->usage ? spec->usage : "[flags]");
	if (spec->summary)
		fprintf(out, "\n%s\n", spec->summary);
	fprintf(out, "\nFlags:\n");
	for (size_t i = 0; i < spec->n_opts; i++) {
		const struct keel_opt *opt = &spec->opts[i];
		if (opt->flags & KEEL_OPT_HIDDEN)
			continue;
		char head[128];
		const char *mv = metavar(opt);
		int n = snprintf(head, sizeof(head), "  %s%c%s--%s%s%s", opt->short_name ? "-" : "",
				 opt->short_name ? opt->short_name : ' ', opt->short_name ? ", " : "",
				 opt->name, mv ? " " : "", mv ? mv : "");
		if (!opt->short_name) /* keep long names aligned whether or not there is a short one */
			n = snprintf(head, sizeof(head), "      --%s%s%s", opt->name, mv ? " " : "",
				     mv ? mv : "");
		fprintf(out, "%s", head);
		if (n < 34)
			fprintf(out, "%*s", 34 - n, "");
		else
			fprintf(out, "\n%34s", "");
		fprintf(out, "%s", opt->help ? opt->help : "");
		if (opt->type == KEEL_OPT_ENUM && opt->choices) {
			fprintf(out, " (one of:");
			for (size_t c = 0; opt->choices[c]; c++)
				fprintf(out, " %s", opt->choices[c]);
			fprintf(out, ")");
		}
		fprintf(out, "\n");
		char env[KEEL__ENV_NAME_MAX];
		keel_config_env_name(spec, opt, env, sizeof(env));
		if (opt->def || *env) {
			fprintf(out, "%34s", "");
			if (opt->def)
				fprintf(out, "default: \"%s\"%s", opt->def, *env ? "; " : "");
			if (*env)
				fprintf(out, "env: %s", env);
			fprintf(out, "\n");
		}
	}
	fprintf(out, "  -h, --help                      Show this help.\n");
	if (spec->version)
		fprintf(out, "      --version                   Print the version.\n");
}
