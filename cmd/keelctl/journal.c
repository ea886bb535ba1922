/* keelctl journal: journalctl for keel-init's journal (docs/init.md, "Logs"): -u, -n, -f, --since,
 * --until, -p and the short, json and cat output formats, with journalctl's field names. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/jw.h"
#include "base/str.h"
#include "init/journal.h"
#include "init/words.h"
#include "keelctl.h"

enum output { OUT_SHORT, OUT_JSON, OUT_CAT };

static const char *const prio_names[] = {"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"};

static int parse_priority(const char *s)
{
	for (int i = 0; i < 8; i++)
		if (strcmp(s, prio_names[i]) == 0)
			return i;
	if (s[0] >= '0' && s[0] <= '7' && s[1] == '\0')
		return s[0] - '0';
	return -1;
}

/* journalctl's -u: a name without a type suffix means NAME.service; globs are kept. */
static int push_unit(char ***units, const char *u)
{
	if (strchr(u, '.') || strpbrk(u, "*?[")) 
		return keel_strv_push(units, u);
	char buf[512];
	snprintf(buf, sizeof(buf), "%s.service", u);
	return keel_strv_push(units, buf);
}

/* utf8_is_printable() in systemd: valid UTF-8 without control characters but tab. */
static bool printable(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return false;
	}
	return keel_utf8_is_valid_n(s, n);
}

static void print_short(const struct keel_journal_entry *e, bool all)
{
	time_t t = (time_t)(e->realtime_usec / 1000000);
	struct tm tm;
	char ts[64] = "";
	if (localtime_r(&t, &tm))
		strftime(ts, sizeof(ts), "%b %d %H:%M:%S", &tm);
	const char *ident = e->identifier[0] ? e->identifier : e->unit;
	if (e->pid > 0)
		printf("%s %s %s[%d]: ", ts, e->hostname, ident, (int)e->pid);
	else
		printf("%s %s %s: ", ts, e->hostname, ident);
	if (all || printable(e->msg, e->len)) {
		fwrite(e->msg, 1, e->len, stdout);
	} else if (e->len < 1024) {
		printf("[%zuB blob data]", e->len);
	} else {
		printf("[%.1fK blob data]", (double)e->len / 1024);
	}
	putchar('\n');
}

static int print_json(struct keel_buf *b, const struct keel_journal_entry *e)
{
	struct keel_jw w;
	char num[128];
	keel_buf_reset(b);
	keel_jw_init(&w, b, 0);
	keel_jw_obj_begin(&w);
	snprintf(num, sizeof(num), "s=%s;f=%" PRIx64 ";o=%" PRIx64, e->boot_id, e->file_seq, e->offset);
	keel_jw_kstr(&w, "__CURSOR", num);
	snprintf(num, sizeof(num), "%" PRIu64, e->realtime_usec);
	keel_jw_kstr(&w, "__REALTIME_TIMESTAMP", num);
	snprintf(num, sizeof(num), "%" PRIu64, e->mono_usec);
	keel_jw_kstr(&w, "__MONOTONIC_TIMESTAMP", num);
	keel_jw_kstr(&w, "_BOOT_ID", e->boot_id);
	snprintf(num, sizeof(num), "%d", e->priority);
	keel_jw_kstr(&w, "PRIORITY", num);
	keel_jw_kstr(&w, "_HOSTNAME", e->hostname);
	keel_jw_kstr(&w, "_SYSTEMD_UNIT", e->unit);
	keel_jw_kstr(&w, "SYSLOG_IDENTIFIER", e->identifier[0] ? e->identifier : e->unit);
	if (e->pid > 0) {
		snprintf(num, sizeof(num), "%d", (int)e->pid);
		keel_jw_kstr(&w, "_PID", num);
	}
	keel_jw_key(&w, "MESSAGE");
	if (printable(e->msg, e->len)) {
		keel_jw_strn(&w, e->msg, e->len);
	} else {
		/* journalctl's form for binary data: an array of the bytes */
		keel_jw_arr_begin(&w);
		for (size_t i = 0; i < e->len; i++)
			keel_jw_u64(&w, (unsigned char)e->msg[i]);
		keel_jw_arr_end(&w);
	}
	keel_jw_obj_end(&w);
	int r = keel_jw_finish(&w);
	if (r < 0)
		return r;
	fwrite(b->data, 1, b->len, stdout);
	putchar('\n');
	return 0;
}

/* systemd's format_bytes(): "512B", "1.5K", "16.0M" (base 1024). */
static const char *format_bytes(uint64_t v, char *out, size_t size)
{
	static const char units[] = "KMGTPE";
	if (v < 1024) {
		snprintf(out, size, "%lluB", (unsigned long long)v);
		return out;
	}
	double d = (double)v / 1024;
	int u = 0;
	while (d >= 1024 && units[u + 1]) {
		d /= 1024;
		u++;
	}
	snprintf(out, size, "%.1f%c", d, units[u]);
	return out;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: keelctl journal [OPTIONS...]\n\n"
		   "  -u --unit=UNIT          Show records of UNIT (repeatable; globs allowed)\n"
		   "  -n --lines[=N]          Show the last N records (default 10; \"all\")\n"
		   "  -f --follow             Wait for and show new records\n"
		   "  -S --since=TIME         Records at or after TIME\n"
		   "  -U --until=TIME         Records at or before TIME\n"
		   "  -p --priority=PRIO      Records of PRIO (0-7 or emerg..debug) or more urgent\n"
		   "  -o --output=FORMAT      short (default), json, cat\n"
		   "  -D --directory=DIR      Read DIR (default: the journal of the keel-init at --socket,\n"
		   "                          else " KEEL_JOURNAL_DEFAULT_DIR ")\n"
		   "  -a --all                Show messages with control characters as they are\n"
		   "  -q --quiet              Do not say \"-- No entries --\"\n"
		   "     --disk-usage         Show what the journal's files take on disk\n"
		   "     --vacuum-size=SIZE   Delete the oldest files until they take at most SIZE\n"
		   "                          (K, M, G; the newest file, keel-init's, always stays)\n");
}

int keelctl_journal(struct keelctl *ctl, int argc, char **argv)
{
	enum { OPT_NO_PAGER = 256, OPT_DISK_USAGE, OPT_VACUUM_SIZE };
	static const struct option opts[] = {
		{"unit", required_argument, NULL, 'u'},
		{"lines", optional_argument, NULL, 'n'},
		{"follow", no_argument, NULL, 'f'},
		{"since", required_argument, NULL, 'S'},
		{"until", required_argument, NULL, 'U'},
		{"priority", required_argument, NULL, 'p'},
		{"output", required_argument, NULL, 'o'},
		{"directory", required_argument, NULL, 'D'},
		{"all", no_argument, NULL, 'a'},
		{"quiet", no_argument, NULL, 'q'},
		{"no-pager", no_argument, NULL, OPT_NO_PAGER},
		{"disk-usage", no_argument, NULL, OPT_DISK_USAGE},
		{"vacuum-size", required_argument, NULL, OPT_VACUUM_SIZE},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	char **av = calloc((size_t)argc + 2, sizeof(*av));
	if (!av)
		return KEELCTL_FAILED;
	av[0] = "keelctl journal";
	for (int i = 0; i < argc; i++)
		av[i + 1] = argv[i];
	int ac = argc + 1, rc = KEELCTL_USAGE, c;
	struct keel_journal_filter filter = {.max_priority = -1};
	const char *dir = NULL;
	char *asked = NULL;
	bool follow = false, all = false, quiet = false, lines_set = false, disk_usage = false;
	uint64_t vacuum = UINT64_MAX;
	uint64_t lines = 0; /* 0 with lines_set: all */
	enum output out = OUT_SHORT;
	uint64_t now = (uint64_t)keel_wall_ns() / 1000;
	struct keel_journal_reader *r = NULL;
	struct keel_buf jbuf = KEEL_BUF_INIT;

	optind = 0;
	while ((c = getopt_long(ac, av, "u:n::fS:U:p:o:D:aqh", opts, NULL)) >= 0) {
		switch (c) {
		case 'u':
			if (push_unit(&filter.units, optarg) < 0)
				goto oom;
			break;
		case 'n': {
			const char *arg = optarg;
			if (!arg && optind < ac && av[optind][0] != '-' &&
			    (strcmp(av[optind], "all") == 0 || keel_parse_u64(av[optind], &lines) == 0))
				arg = av[optind++];
			lines_set = true;
			lines = 10;
			if (arg && strcmp(arg, "all") == 0)
				lines = 0;
			else if (arg && keel_parse_u64(arg, &lines) < 0) {
				fprintf(stderr, "Failed to parse lines '%s'\n", arg);
				goto out;
			}
			if (arg && strcmp(arg, "all") != 0 && lines == 0)
				lines = UINT64_MAX; /* -n 0: nothing old */
			break;
		}
		case 'f':
			follow = true;
			break;
		case 'S':
		case 'U': {
			uint64_t t;
			if (keel_journal_parse_time(optarg, now, &t) < 0) {
				fprintf(stderr, "Failed to parse timestamp: %s\n", optarg);
				goto out;
			}
			if (c == 'S')
				filter.since_usec = t ? t : 1;
			else
				filter.until_usec = t ? t : 1;
			break;
		}
		case 'p':
			if ((filter.max_priority = parse_priority(optarg)) < 0) {
				fprintf(stderr, "Unknown log level %s\n", optarg);
				goto out;
			}
			break;
		case 'o':
			if (strcmp(optarg, "short") == 0)
				out = OUT_SHORT;
			else if (strcmp(optarg, "json") == 0)
				out = OUT_JSON;
			else if (strcmp(optarg, "cat") == 0)
				out = OUT_CAT;
			else {
				fprintf(stderr, "Unknown output format '%s'.\n", optarg);
				goto out;
			}
			break;
		case 'D':
			dir = optarg;
			break;
		case 'a':
			all = true;
			break;
		case 'q':
			quiet = true;
			break;
		case OPT_NO_PAGER:
			break;
		case OPT_DISK_USAGE:
			disk_usage = true;
			break;
		case OPT_VACUUM_SIZE:
			if (keel_parse_size(optarg, 1024, &vacuum) < 0) {
				fprintf(stderr, "Failed to parse vacuum size: %s\n", optarg);
				goto out;
			}
			break;
		case 'h':
			usage(stdout);
			rc = KEELCTL_OK;
			goto out;
		default:
			usage(stderr);
			goto out;
		}
	}
	if (optind < ac) {
		fprintf(stderr, "keelctl journal: unexpected argument '%s'\n", av[optind]);
		goto out;
	}
	if (filter.since_usec && filter.until_usec && filter.since_usec > filter.until_usec) {
		fprintf(stderr, "--since= must be before --until=.\n");
		goto out;
	}
	if (!dir)
		dir = (asked = keelctl_journal_dir(ctl)) ? asked : KEEL_JOURNAL_DEFAULT_DIR;
	rc = KEELCTL_FAILED;
	if (disk_usage || vacuum != UINT64_MAX) {
		char sz[32];
		int e = 0;
		if (vacuum != UINT64_MAX) {
			uint64_t freed = 0;
			if ((e = keel_journal_vacuum_size(dir, vacuum, &freed)) < 0) {
				fprintf(stderr, "Failed to vacuum %s: %s\n", dir, keel_strerror(e));
				goto out;
			}
			fprintf(stderr, "Vacuuming done, freed %s of archived journals from %s.\n",
				format_bytes(freed, sz, sizeof(sz)), dir);
		}
		if (disk_usage) {
			uint64_t used = 0;
			if ((e = keel_journal_disk_usage(dir, &used)) < 0) {
				fprintf(stderr, "Failed to get disk usage of %s: %s\n", dir, keel_strerror(e));
				goto out;
			}
			printf("Archived and active journals take up %s in the file system.\n",
			       format_bytes(used, sz, sizeof(sz)));
		}
		rc = KEELCTL_OK;
		goto out;
	}
	struct keel_err err = {0};
	int e = keel_journal_reader_open(dir, &filter, follow, &r, &err);
	if (e == -ENOENT && !follow) {
		fprintf(stderr, "No journal files were found.\n");
		if (!quiet)
			printf("-- No entries --\n");
		rc = KEELCTL_OK;
		goto out;
	}
	if (e < 0) {
		fprintf(stderr, "Failed to open journal %s: %s\n", dir, keel_err_msg(&err));
		goto out;
	}
	if (follow && !lines_set)
		lines = 10, lines_set = true;
	if (lines_set && lines != 0) {
		e = keel_journal_reader_tail(r, lines == UINT64_MAX ? 0 : lines);
		if (e < 0) {
			fprintf(stderr, "Failed to seek in the journal: %s\n", keel_strerror(e));
			goto out;
		}
	}
	if (follow)
		signal(SIGPIPE, SIG_DFL);
	uint64_t shown = 0;
	for (;;) {
		struct keel_journal_entry ent;
		while ((e = keel_journal_reader_next(r, &ent)) == 1) {
			shown++;
			if (out == OUT_SHORT) {
				print_short(&ent, all);
			} else if (out == OUT_CAT) {
				fwrite(ent.msg, 1, ent.len, stdout);
				putchar('\n');
			} else if (print_json(&jbuf, &ent) < 0) {
				goto oom;
			}
		}
		if (e < 0) {
			fprintf(stderr, "Failed to read the journal: %s\n", keel_strerror(e));
			goto out;
		}
		if (!follow)
			break;
		if (fflush(stdout) != 0 || ferror(stdout))
			goto out;
		if ((e = keel_journal_reader_wait(r, -1)) < 0) {
			fprintf(stderr, "Failed to wait for the journal: %s\n", keel_strerror(e));
			goto out;
		}
	}
	if (shown == 0 && !quiet)
		printf("-- No entries --\n");
	rc = KEELCTL_OK;
	goto out;
oom:
	fprintf(stderr, "keelctl journal: out of memory\n");
	rc = KEELCTL_FAILED;
out:
	keel_journal_reader_free(r);
	keel_strv_free(filter.units);
	keel_buf_free(&jbuf);
	free(av);
	free(asked);
	fflush(stdout);
	return rc;
}
