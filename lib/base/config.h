/* Configuration from one table per binary: command-line flags, the matching environment variables
 * (`--data-dir` <-> ETCD_DATA_DIR), defaults, and --help, all from the same rows. Precedence is
 * flag > environment > default. Flags follow Go's flag package, as etcd's do: `-name v`,
 * `--name v`, `--name=v`, bools as `--flag` or `--flag=false`, parsing stops at the first
 * non-flag argument or after `--`. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/errors.h"

enum keel_opt_type {
	KEEL_OPT_STRING,   /* char * (owned copy; NULL when unset and no default) */
	KEEL_OPT_BOOL,     /* bool */
	KEEL_OPT_INT,      /* int64_t, bounded by min/max when they differ */
	KEEL_OPT_UINT,     /* uint64_t, bounded by min/max when they differ */
	KEEL_OPT_DURATION, /* int64_t nanoseconds, Go syntax ("500ms", "1h30m") */
	KEEL_OPT_ENUM,     /* int: index into choices */
	KEEL_OPT_LIST,     /* char ** (strv): comma-separated; a repeated flag appends */
};

enum {
	KEEL_OPT_HIDDEN = 1 << 0, /* accepted, not shown in --help */
	KEEL_OPT_NOENV = 1 << 1,  /* no environment variable */
};

struct keel_opt {
	const char *name;        /* long name without dashes: "data-dir" */
	char short_name;         /* one-letter alias ('d' for -d), or 0 */
	enum keel_opt_type type;
	size_t offset;           /* offsetof(struct my_config, field) */
	const char *def;         /* default, as text parsed like a flag value; NULL for none */
	const char *help;
	const char *metavar;     /* shown in --help: "--data-dir DIR"; defaults to the type */
	const char *env;         /* explicit variable name; NULL derives it from the spec's prefix */
	const char *const *choices; /* KEEL_OPT_ENUM: NULL-terminated */
	int64_t min, max;
	unsigned flags;
};

struct keel_config_spec {
	const char *prog;        /* "keel-kv" */
	const char *usage;       /* "[flags]" */
	const char *summary;     /* one paragraph for --help */
	const char *version;     /* printed for --version when set */
	const char *env_prefix;  /* "ETCD": --data-dir reads ETCD_DATA_DIR; NULL for no variables */
	const struct keel_opt *opts;
	size_t n_opts;
	/* Called for notable but harmless things (an environment variable shadowed by a flag, an
	 * unknown variable with our prefix). May be NULL. */
	void (*warn)(const char *msg, void *userdata);
	void *userdata;
};

/* Fill cfg (zeroed, or cleared with keel_config_free) from defaults, then envp (NULL: environ),
 * then argv[1..argc-1]. On success returns 0 and sets *ret_argi to the index of the first
 * positional argument (argc if none). Errors: -KEEL_EUNKNOWN_FLAG, -KEEL_EBAD_VALUE, -ENOMEM,
 * -KEEL_EHELP for -h/--help, -KEEL_EVERSION for --version (when the spec has one), each with a
 * message in err. After any return, keel_config_free releases what cfg holds. */
int keel_config_parse(const struct keel_config_spec *spec, void *cfg, int argc, char *const *argv,
		      char *const *envp, int *ret_argi, struct keel_err *err);

/* Parse one value as opt would, into cfg (for config files and tests). */
int keel_config_set(const struct keel_config_spec *spec, void *cfg, const char *name, const char *value,
		    struct keel_err *err);

/* Free the strings and lists in cfg and zero them. */
void keel_config_free(const struct keel_config_spec *spec, void *cfg);

/* The help text, generated from the table. */
void keel_config_help(const struct keel_config_spec *spec, FILE *out);

/* The environment variable an option reads ("" when none); out should hold 128 bytes. */
const char *keel_config_env_name(const struct keel_config_spec *spec, const struct keel_opt *opt,
				 char *out, size_t size);
