/* bench_journal: how fast keel-init's journal takes lines and gives them back.
 *
 *   bench_journal [DIR] [RECORDS]     (default: a new directory under /tmp, 1,000,000)
 *
 * Appends RECORDS lines of ~100 bytes from 50 units, once batched (written every 64 KiB, the
 * engine flushing before it sleeps) and once written through (one write(2) per line, as the log
 * sink does by default), with rotation at 8 MiB files and a 64 MiB total; then reads: everything,
 * one unit, the last 10 lines (-n 10) and --since the time the last 10% began. Prints the rates
 * and the process's RSS, beside the floor: the same lines appended as plain text. Not a test:
 * numbers go to docs/BENCHMARKS.md. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "init/journal.h"

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &v) == 1)
			break;
	if (f)
		fclose(f);
	return v;
}

static void clear_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[4200];
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.' && (e->d_name[1] == '\0' || e->d_name[1] == '.'))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
}

static uint64_t mark_usec; /* wall time when 90% of the records were in */

static double append_run(const char *dir, long n, int write_through, long *rss)
{
	clear_dir(dir);
	struct keel_journal_config cfg = {.dir = dir, .max_file_size = 8 << 20, .max_use = 64 << 20};
	struct keel_journal *j;
	struct keel_err err = {0};
	if (keel_journal_open(&cfg, &j, &err) < 0) {
		fprintf(stderr, "bench_journal: %s\n", keel_err_msg(&err));
		exit(1);
	}
	char units[50][32], msg[128];
	for (int u = 0; u < 50; u++)
		snprintf(units[u], sizeof(units[u]), "service-%02d.service", u);
	int64_t t0 = keel_mono_ns();
	for (long i = 0; i < n; i++) {
		if (i == n / 10 * 9)
			mark_usec = (uint64_t)keel_wall_ns() / 1000;
		int len = snprintf(msg, sizeof(msg),
				   "GET /api/v1/items/%ld HTTP/1.1 200 1532 \"-\" \"curl/7.88.1\" rt=0.%03ld", i,
				   i % 1000);
		if (keel_journal_append(j, units[i % 50], 6, 1000 + (pid_t)(i % 50), 0, 0, msg, (size_t)len) < 0 ||
		    (write_through && keel_journal_flush(j) < 0)) {
			fprintf(stderr, "bench_journal: append failed\n");
			exit(1);
		}
	}
	keel_journal_flush(j);
	double secs = (double)(keel_mono_ns() - t0) / 1e9;
	*rss = rss_kib();
	keel_journal_close(j);
	return secs;
}

/* The floor: the same lines as plain text, "unit[pid]: msg\n", through stdio (one write(2) per
 * 64 KiB) or with one write(2) per line. No framing, no CRC, no rotation. */
static double floor_run(const char *dir, long n, int per_line)
{
	char path[4200], line[256];
	snprintf(path, sizeof(path), "%s/floor.txt", dir);
	FILE *f = fopen(path, "w");
	if (!f)
		exit(1);
	setvbuf(f, NULL, _IOFBF, 64 * 1024);
	int fd = fileno(f);
	int64_t t0 = keel_mono_ns();
	for (long i = 0; i < n; i++) {
		int len = snprintf(line, sizeof(line),
				   "service-%02ld.service[%ld]: GET /api/v1/items/%ld HTTP/1.1 200 1532 \"-\" "
				   "\"curl/7.88.1\" rt=0.%03ld\n",
				   i % 50, 1000 + i % 50, i, i % 1000);
		if (per_line ? write(fd, line, (size_t)len) != len : fwrite(line, 1, (size_t)len, f) != (size_t)len)
			exit(1);
	}
	fflush(f);
	double secs = (double)(keel_mono_ns() - t0) / 1e9;
	fclose(f);
	unlink(path);
	return secs;
}

static double read_run(const char *dir, const struct keel_journal_filter *flt, long tail, long *count)
{
	int64_t t0 = keel_mono_ns();
	struct keel_journal_reader *r;
	if (keel_journal_reader_open(dir, flt, false, &r, NULL) < 0)
		exit(1);
	if (tail >= 0 && keel_journal_reader_tail(r, (uint64_t)tail) < 0)
		exit(1);
	struct keel_journal_entry e;
	long c = 0;
	while (keel_journal_reader_next(r, &e) == 1)
		c++;
	keel_journal_reader_free(r);
	*count = c;
	return (double)(keel_mono_ns() - t0) / 1e9;
}

int main(int argc, char **argv)
{
	char tmp[] = "/tmp/keel-bench-journal-XXXXXX";
	const char *dir = argc > 1 ? argv[1] : mkdtemp(tmp);
	long n = argc > 2 ? atol(argv[2]) : 1000000;
	if (!dir)
		return 1;
	long rss0 = rss_kib(), rss;
	printf("records: %ld of ~100 bytes, 50 units; files 8 MiB, total 64 MiB; dir %s\n", n, dir);
	double s = append_run(dir, n, 1, &rss);
	printf("append, write-through:  %.2f s, %.0f records/s, %.1f MB/s (RSS %ld KiB)\n", s, n / s,
	       n * 100.0 / s / 1e6, rss);
	s = append_run(dir, n, 0, &rss);
	printf("append, batched 64 KiB: %.2f s, %.0f records/s, %.1f MB/s (RSS %ld KiB; %ld at start)\n",
	       s, n / s, n * 100.0 / s / 1e6, rss, rss0);

	s = floor_run(dir, n, 1);
	printf("floor, text, write(2) per line: %.2f s, %.0f lines/s\n", s, n / s);
	s = floor_run(dir, n, 0);
	printf("floor, text, stdio 64 KiB:      %.2f s, %.0f lines/s\n", s, n / s);

	long c;
	s = read_run(dir, NULL, -1, &c);
	printf("read all (what the limits kept): %ld records in %.3f s, %.0f records/s\n", c, s, c / s);
	char *units[] = {"service-07.service", NULL};
	struct keel_journal_filter one = {.units = units, .max_priority = -1};
	s = read_run(dir, &one, -1, &c);
	printf("read -u one unit: %ld records in %.3f s\n", c, s);
	s = read_run(dir, NULL, 10, &c);
	printf("read -n 10: %ld records in %.6f s\n", c, s);
	s = read_run(dir, &one, 10, &c);
	printf("read -n 10 -u one unit: %ld records in %.6f s\n", c, s);
	struct keel_journal_filter since = {.max_priority = -1, .since_usec = mark_usec};
	s = read_run(dir, &since, -1, &c);
	printf("read --since (the last 10%% written): %ld records in %.3f s\n", c, s);
	printf("RSS at the end: %ld KiB\n", rss_kib());
	if (argc <= 1) {
		clear_dir(dir);
		rmdir(dir);
	}
	return 0;
}
