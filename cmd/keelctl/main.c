/* keelctl: parse the global options, find the verb, run it. Verbs follow systemctl's and
 * systemd-analyze's names, so that what people type for systemd works here. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/str.h"
#include "keelctl.h"

static const struct keelctl_verb verbs[] = {
	{"verify", 1, -1, keelctl_verify, "FILE...",
	 "Load unit files as keel-init would and print every problem (systemd-analyze verify)"},
	{"calendar", 1, -1, keelctl_calendar, "SPEC...",
	 "Normalise calendar expressions and show when they elapse next (systemd-analyze calendar)"},
	{"timespan", 1, -1, keelctl_timespan, "SPAN...",
	 "Parse time spans (systemd-analyze timespan)"},
	{"journal", 0, -1, keelctl_journal, "[OPTIONS...]",
	 "Show the units' logs (journalctl; keelctl journal --help)"},
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: keelctl [OPTIONS...] COMMAND ...\n\nCommands:\n");
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		fprintf(f, "  %-10s %-10s %s\n", verbs[i].name, verbs[i].usage, verbs[i].help);
	fprintf(f, "\nOptions:\n"
		   "  --systemd-paths       Search systemd's unit directories instead of keel's\n"
		   "  --unit-path DIR       Search DIR first (repeatable)\n"
		   "  --log-level LEVEL     Print diagnostics of LEVEL and above: err, warning,\n"
		   "                        notice (default), info, debug\n"
		   "  --iterations N        calendar: show N elapses (default 1)\n"
		   "  --base-time TIME      calendar: start from TIME (\"YYYY-MM-DD HH:MM:SS [UTC]\" or @EPOCH)\n"
		   "  -h --help             Show this help\n"
		   "  --version             Show the version\n");
}

int main(int argc, char **argv)
{
	struct keelctl ctl = {.preset = KEEL_PATHS_KEEL, .log_level = "notice", .iterations = 1};
	enum { OPT_SYSTEMD_PATHS = 256, OPT_UNIT_PATH, OPT_LOG_LEVEL, OPT_ITERATIONS, OPT_BASE_TIME, OPT_VERSION };
	static const struct option opts[] = {
		{"systemd-paths", no_argument, NULL, OPT_SYSTEMD_PATHS},
		{"unit-path", required_argument, NULL, OPT_UNIT_PATH},
		{"log-level", required_argument, NULL, OPT_LOG_LEVEL},
		{"iterations", required_argument, NULL, OPT_ITERATIONS},
		{"base-time", required_argument, NULL, OPT_BASE_TIME},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, OPT_VERSION},
		{0},
	};
	int c, rc = KEELCTL_USAGE;
	/* journal takes journalctl's options (-u, -n, -p, -f, -o ...), which clash with the global
	 * ones: when it is the command, it gets every argument after its name. */
	for (int i = 1; i < argc; i++) {
		if (argv[i][0] == '-') {
			for (const struct option *o = opts; argv[i][1] == '-' && o->name; o++)
				if (o->has_arg == required_argument && strcmp(argv[i] + 2, o->name) == 0) {
					i++; /* its value */
					break;
				}
			continue;
		}
		if (strcmp(argv[i], "journal") == 0)
			return keelctl_journal(&ctl, argc - i - 1, argv + i + 1);
		break;
	}
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
		switch (c) {
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
		rc = verbs[i].run(&ctl, n, argv + optind + 1);
		goto out;
	}
	fprintf(stderr, "Unknown command verb '%s'.\n", verb);
out:
	keel_strv_free(ctl.unit_paths);
	return rc;
}
