/* keelctl: one CLI for people. A verb table in main.c, one file per group of verbs. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "base/buf.h"

#include "init/load.h"

struct keelctl {
	enum keel_paths_preset preset; /* --systemd-paths */
	char **unit_paths;             /* --unit-path DIR..., searched before the preset */
	const char *log_level;         /* which diagnostics to print: notice by default */
	int iterations;                /* calendar --iterations */
	const char *base_time;         /* calendar --base-time */
	const char *socket;            /* --socket: keel-init's control socket */
	char **properties;             /* show -p */
	bool value_only;               /* show --value */
	bool all;                      /* -a: list inactive units too */
	bool no_block;                 /* --no-block */
	bool quiet;                    /* -q */
	int signal;                    /* kill -s */
	const char *kill_whom;         /* kill --kill-whom */
	int lines;                     /* status -n */
	const char *verb;              /* the verb being run */
};

/* A connection to keel-init's control socket. */
struct keelctl_conn {
	int fd;
	int next_id;
	struct keel_buf in;
};
const char *keelctl_socket_path(const struct keelctl *ctl);
int keelctl_connect(const struct keelctl *ctl, struct keelctl_conn *c);
void keelctl_disconnect(struct keelctl_conn *c);
/* The journal directory of the keel-init at ctl's socket (its "ping" answer), malloc'ed; NULL
 * when none answers (nothing is printed). */
char *keelctl_journal_dir(const struct keelctl *ctl);
/* Send a request (an "id" is added); returns the id or -errno. */
int keelctl_send(struct keelctl_conn *c, json_t *req);
/* The next message, or the answer with that id (events are skipped). NULL when the connection
 * ended. */
json_t *keelctl_read(struct keelctl_conn *c);
json_t *keelctl_wait(struct keelctl_conn *c, int id);
/* Send, wait for the answer; takes req. NULL (reported) on failure. */
json_t *keelctl_call(struct keelctl_conn *c, json_t *req);

/* Every verb that talks to keel-init (systemctl's), by ctl->verb. */
int keelctl_unit_verb(struct keelctl *ctl, int argc, char **argv);

struct keelctl_verb {
	const char *name;
	int min_args, max_args; /* -1: any number */
	int (*run)(struct keelctl *ctl, int argc, char **argv);
	const char *usage;
	const char *help;
};

/* Exit statuses, systemctl's where they apply. */
enum { KEELCTL_OK = 0, KEELCTL_FAILED = 1, KEELCTL_USAGE = 2, KEELCTL_NOT_RUNNING = 3,
       KEELCTL_NO_SUCH_UNIT = 4, KEELCTL_NOT_INSTALLED = 5 };

int keelctl_verify(struct keelctl *ctl, int argc, char **argv);
int keelctl_calendar(struct keelctl *ctl, int argc, char **argv);
int keelctl_timespan(struct keelctl *ctl, int argc, char **argv);
int keelctl_journal(struct keelctl *ctl, int argc, char **argv);

/* Print a diagnostic in systemd's form to stderr, if its level passes ctl->log_level. */
void keelctl_print_diag(void *userdata, const struct keel_diag *d);
