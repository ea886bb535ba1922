/* keelctl: one CLI for people. A verb table in main.c, one file per group of verbs. */
#pragma once

#include <stdbool.h>

#include "init/load.h"

struct keelctl {
	enum keel_paths_preset preset; /* --systemd-paths */
	char **unit_paths;             /* --unit-path DIR..., searched before the preset */
	const char *log_level;         /* which diagnostics to print: notice by default */
	int iterations;                /* calendar --iterations */
	const char *base_time;         /* calendar --base-time */
};

struct keelctl_verb {
	const char *name;
	int min_args, max_args; /* -1: any number */
	int (*run)(struct keelctl *ctl, int argc, char **argv);
	const char *usage;
	const char *help;
};

/* Exit statuses, systemctl's where they apply. */
enum { KEELCTL_OK = 0, KEELCTL_FAILED = 1, KEELCTL_USAGE = 2 };

int keelctl_verify(struct keelctl *ctl, int argc, char **argv);
int keelctl_calendar(struct keelctl *ctl, int argc, char **argv);
int keelctl_timespan(struct keelctl *ctl, int argc, char **argv);
int keelctl_journal(struct keelctl *ctl, int argc, char **argv);

/* Print a diagnostic in systemd's form to stderr, if its level passes ctl->log_level. */
void keelctl_print_diag(void *userdata, const struct keel_diag *d);
