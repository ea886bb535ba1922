/* keelctl: parse the global options, find the verb, run it. Verbs follow systemctl's and
 * systemd-analyze's names, so that what people type for systemd works here. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/str.h"
#include "init/values.h"
#include "keelctl.h"

/* Short global options: those in SHORT_WITH_VALUE take a value. */
#define SHORT_WITH_VALUE "psn"
#define SHORT_OPTS "p:aqs:n:"

static const struct keelctl_verb verbs[] = {
	{"verify", 1, -1, keelctl_verify, "FILE...",
	 "Load unit files as keel-init would and print every problem (systemd-analyze verify)"},
	{"calendar", 1, -1, keelctl_calendar, "SPEC...",
	 "Normalise calendar expressions and show when they elapse next (systemd-analyze calendar)"},
	{"timespan", 1, -1, keelctl_timespan, "SPAN...",
	 "Parse time spans (systemd-analyze timespan)"},
	{"start", 1, -1, keelctl_unit_verb, "UNIT...", "Start units"},
	{"stop", 1, -1, keelctl_unit_verb, "UNIT...", "Stop units"},
	{"restart", 1, -1, keelctl_unit_verb, "UNIT...", "Restart units"},
	{"try-restart", 1, -1, keelctl_unit_verb, "UNIT...", "Restart units that run"},
	{"reload", 1, -1, keelctl_unit_verb, "UNIT...", "Reload units (ExecReload=)"},
	{"reload-or-restart", 1, -1, keelctl_unit_verb, "UNIT...", "Reload units if they can, else restart"},
	{"isolate", 1, 1, keelctl_unit_verb, "TARGET", "Start a unit (AllowIsolate=) and stop all others"},
	{"status", 1, -1, keelctl_unit_verb, "UNIT...", "State, main PID, processes, last log lines"},
	{"show", 1, -1, keelctl_unit_verb, "UNIT...", "Properties (-p NAME,... --value)"},
	{"cat", 1, -1, keelctl_unit_verb, "UNIT...", "Print unit files and drop-ins"},
	{"is-active", 1, -1, keelctl_unit_verb, "UNIT...", "Exit 0 if a unit is active"},
	{"is-failed", 1, -1, keelctl_unit_verb, "UNIT...", "Exit 0 if a unit failed"},
	{"is-enabled", 1, -1, keelctl_unit_verb, "UNIT...", "Exit 0 if a unit is enabled"},
	{"list-units", 0, 0, keelctl_unit_verb, "", "Loaded units (--all: inactive ones too)"},
	{"list-unit-files", 0, 0, keelctl_unit_verb, "", "Unit files and their enablement"},
	{"list-timers", 0, 0, keelctl_unit_verb, "", "Timers and when they elapse"},
	{"list-sockets", 0, 0, keelctl_unit_verb, "", "Listening sockets"},
	{"enable", 1, -1, keelctl_unit_verb, "UNIT...", "Create the [Install] links"},
	{"disable", 1, -1, keelctl_unit_verb, "UNIT...", "Remove the [Install] links"},
	{"mask", 1, -1, keelctl_unit_verb, "UNIT...", "Link units to /dev/null"},
	{"unmask", 1, -1, keelctl_unit_verb, "UNIT...", "Undo mask"},
	{"daemon-reload", 0, 0, keelctl_unit_verb, "", "Re-read unit files"},
	{"kill", 1, -1, keelctl_unit_verb, "UNIT...", "Signal a unit's processes (-s SIG --kill-whom=)"},
	{"reset-failed", 0, -1, keelctl_unit_verb, "[UNIT...]", "Forget failed states"},
	{"load", 2, 2, keelctl_unit_verb, "UNIT FILE", "Load a unit from FILE's content (- for stdin)"},
	{"monitor", 0, 0, keelctl_unit_verb, "", "Print unit and job events as they happen"},
	{"shutdown", 0, 0, keelctl_unit_verb, "", "Stop every unit and make keel-init exit"},
	{"journal", 0, -1, keelctl_journal, "[OPTIONS...]",
	 "Show the units' logs (journalctl; keelctl journal --help)"},
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: keelctl [OPTIONS...] COMMAND ...\n\nCommands:\n");
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		fprintf(f, "  %-18s %-10s %s\n", verbs[i].name, verbs[i].usage, verbs[i].help);
	fprintf(f, "\nOptions:\n"
		   "  --systemd-paths       Search systemd's unit directories instead of keel's\n"
		   "  --unit-path DIR       Search DIR first (repeatable)\n"
		   "  --log-level LEVEL     Print diagnostics of LEVEL and above: err, warning,\n"
		   "                        notice (default), info, debug\n"
		   "  --iterations N        calendar: show N elapses (default 1)\n"
		   "  --base-time TIME      calendar: start from TIME (\"YYYY-MM-DD HH:MM:SS [UTC]\" or @EPOCH)\n"
		   "  --socket PATH         keel-init's control socket (default $KEEL_INIT_SOCKET or\n"
		   "                        /run/keel/keel-init.sock)\n"
		   "  -p --property NAME    show: only these properties (repeatable, comma-separated)\n"
		   "  --value               show: values only\n"
		   "  -a --all              list-units: inactive units too\n"
		   "  --no-block            start & co.: do not wait for the job to finish\n"
		   "  -q --quiet            is-*: print nothing\n"
		   "  -s --signal SIG       kill: the signal (default SIGTERM)\n"
		   "  --kill-whom WHO       kill: all (default), main or control\n"
		   "  -n --lines N          status: log lines to show (default 10)\n"
		   "  -h --help             Show this help\n"
		   "  --version             Show the version\n");
}

int main(int argc, char **argv)
{
	struct keelctl ctl = {.preset = KEEL_PATHS_KEEL, .log_level = "notice", .iterations = 1, .lines = 10};
	enum { OPT_SYSTEMD_PATHS = 256, OPT_UNIT_PATH, OPT_LOG_LEVEL, OPT_ITERATIONS, OPT_BASE_TIME, OPT_VERSION,
	       OPT_SOCKET, OPT_VALUE, OPT_NO_BLOCK, OPT_KILL_WHOM };
	static const struct option opts[] = {
		{"systemd-paths", no_argument, NULL, OPT_SYSTEMD_PATHS},
		{"unit-path", required_argument, NULL, OPT_UNIT_PATH},
		{"log-level", required_argument, NULL, OPT_LOG_LEVEL},
		{"iterations", required_argument, NULL, OPT_ITERATIONS},
		{"base-time", required_argument, NULL, OPT_BASE_TIME},
		{"socket", required_argument, NULL, OPT_SOCKET},
		{"property", required_argument, NULL, 'p'},
		{"value", no_argument, NULL, OPT_VALUE},
		{"all", no_argument, NULL, 'a'},
		{"no-block", no_argument, NULL, OPT_NO_BLOCK},
		{"quiet", no_argument, NULL, 'q'},
		{"signal", required_argument, NULL, 's'},
		{"kill-whom", required_argument, NULL, OPT_KILL_WHOM},
		{"lines", required_argument, NULL, 'n'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, OPT_VERSION},
		{0},
	};
	int c, rc = KEELCTL_USAGE;
	/* journal takes journalctl's options (-u, -n, -p, -f, -o ...), which clash with the global
	 * ones: when it is the command, it gets every argument after its name. */
	for (int i = 1; i < argc; i++) {
		if (argv[i][0] == '-') {
			if (argv[i][1] == '-') {
				/* journal needs --socket too: the journal of that keel-init */
				if (strncmp(argv[i], "--socket=", 9) == 0)
					ctl.socket = argv[i] + 9;
				else if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc)
					ctl.socket = argv[i + 1];
				for (const struct option *o = opts; o->name; o++)
					if (o->has_arg == required_argument && strcmp(argv[i] + 2, o->name) == 0) {
						i++; /* its value */
						break;
					}
			} else {
				/* A cluster like -qn: a short option taking a value ends it; the
				 * value is the rest, or the next argument when nothing is left. */
				for (const char *p = argv[i] + 1; *p; p++)
					if (strchr(SHORT_WITH_VALUE, *p)) {
						if (!p[1])
							i++;
						break;
					}
			}
			continue;
		}
		if (strcmp(argv[i], "journal") == 0)
			return keelctl_journal(&ctl, argc - i - 1, argv + i + 1);
		break;
	}
	while ((c = getopt_long(argc, argv, "h" SHORT_OPTS, opts, NULL)) >= 0) {
		switch (c) {
		case OPT_SOCKET:
			ctl.socket = optarg;
			break;
		case 'p': {
			char **parts = NULL;
			if (keel_strv_split(optarg, ",", &parts) < 0)
				goto out;
			for (size_t i = 0; parts && parts[i]; i++)
				if (keel_strv_push(&ctl.properties, parts[i]) < 0) {
					keel_strv_free(parts);
					goto out;
				}
			keel_strv_free(parts);
			break;
		}
		case OPT_VALUE:
			ctl.value_only = true;
			break;
		case 'a':
			ctl.all = true;
			break;
		case OPT_NO_BLOCK:
			ctl.no_block = true;
			break;
		case 'q':
			ctl.quiet = true;
			break;
		case 's': {
			int sig = keel_signal_from_string(optarg);
			if (sig <= 0) {
				fprintf(stderr, "Failed to parse signal string %s.\n", optarg);
				goto out;
			}
			ctl.signal = sig;
			break;
		}
		case OPT_KILL_WHOM:
			ctl.kill_whom = optarg;
			break;
		case 'n':
			ctl.lines = atoi(optarg);
			break;
		case OPT_SYSTEMD_PATHS:
			ctl.preset = KEEL_PATHS_SYSTEMD;
			break;
		case OPT_UNIT_PATH:
			if (keel_strv_push(&ctl.unit_paths, optarg) < 0) {
				fprintf(stderr, "keelctl: out of memory\n");
				goto out;
			}
			break;
		case OPT_LOG_LEVEL:
			ctl.log_level = optarg;
			break;
		case OPT_ITERATIONS:
			ctl.iterations = atoi(optarg);
			if (ctl.iterations < 1) {
				fprintf(stderr, "keelctl: invalid --iterations: %s\n", optarg);
				goto out;
			}
			break;
		case OPT_BASE_TIME:
			ctl.base_time = optarg;
			break;
		case 'h':
			usage(stdout);
			rc = KEELCTL_OK;
			goto out;
		case OPT_VERSION:
			printf("keelctl 0.1.0\n");
			rc = KEELCTL_OK;
			goto out;
		default:
			usage(stderr);
			goto out;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		goto out;
	}
	const char *verb = argv[optind];
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strcmp(verbs[i].name, verb) != 0)
			continue;
		int n = argc - optind - 1;
		if (n < verbs[i].min_args || (verbs[i].max_args >= 0 && n > verbs[i].max_args)) {
			fprintf(stderr, "keelctl %s: usage: keelctl %s %s\n", verb, verb, verbs[i].usage);
			goto out;
		}
		ctl.verb = verb;
		rc = verbs[i].run(&ctl, n, argv + optind + 1);
		goto out;
	}
	fprintf(stderr, "Unknown command verb '%s'.\n", verb);
out:
	keel_strv_free(ctl.unit_paths);
	keel_strv_free(ctl.properties);
	return rc;
}
