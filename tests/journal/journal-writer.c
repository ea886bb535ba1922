/* journal-writer: appends records to a keel journal from another process, for the integration
 * tests of `keelctl journal` (tests/integration/test_journal.py).
 *
 *   journal-writer DIR [--unit U] [--priority P] [--pid N] [--ident I] [--count N] [--prefix S]
 *                      [--max-file-size B] [--max-use B] [--realtime-usec T]
 *
 * With --count, writes N records "PREFIX<i>" and exits. Without, appends each line of stdin as it
 * arrives (flushing after each, so followers see it) and prints "ok <i>" on stdout per line. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "init/journal.h"

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: journal-writer DIR [options]\n");
		return 2;
	}
	struct keel_journal_config cfg = {.dir = argv[1]};
	const char *unit = "test.service", *ident = NULL, *prefix = "line ";
	int prio = 6, pid = 0;
	long long count = -1;
	unsigned long long rt = 0;
	for (int i = 2; i + 1 < argc; i += 2) {
		const char *k = argv[i], *v = argv[i + 1];
		if (strcmp(k, "--unit") == 0)
			unit = v;
		else if (strcmp(k, "--priority") == 0)
			prio = atoi(v);
		else if (strcmp(k, "--pid") == 0)
			pid = atoi(v);
		else if (strcmp(k, "--ident") == 0)
			ident = v;
		else if (strcmp(k, "--count") == 0)
			count = atoll(v);
		else if (strcmp(k, "--prefix") == 0)
			prefix = v;
		else if (strcmp(k, "--max-file-size") == 0)
			cfg.max_file_size = strtoull(v, NULL, 10);
		else if (strcmp(k, "--max-use") == 0)
			cfg.max_use = strtoull(v, NULL, 10);
		else if (strcmp(k, "--realtime-usec") == 0)
			rt = strtoull(v, NULL, 10);
		else {
			fprintf(stderr, "journal-writer: unknown option %s\n", k);
			return 2;
		}
	}
	struct keel_journal *j;
	struct keel_err err = {0};
	if (keel_journal_open(&cfg, &j, &err) < 0) {
		fprintf(stderr, "journal-writer: %s\n", keel_err_msg(&err));
		return 1;
	}
	int r = 0;
	if (count >= 0) {
		for (long long i = 0; i < count && r == 0; i++) {
			char line[256];
			int n = snprintf(line, sizeof(line), "%s%lld", prefix, i);
			r = keel_journal_append_ident(j, unit, ident, prio, pid, rt, 0, line, (size_t)n);
		}
	} else {
		char *line = NULL;
		size_t cap = 0;
		ssize_t n;
		long long i = 0;
		setvbuf(stdout, NULL, _IOLBF, 0);
		while (r == 0 && (n = getline(&line, &cap, stdin)) >= 0) {
			r = keel_journal_append_ident(j, unit, ident, prio, pid, rt, 0, line, (size_t)n);
			if (r == 0)
				r = keel_journal_flush(j);
			printf("ok %lld\n", i++);
		}
		free(line);
	}
	if (r < 0)
		fprintf(stderr, "journal-writer: append: %s\n", keel_strerror(r));
	keel_journal_close(j);
	return r < 0;
}
