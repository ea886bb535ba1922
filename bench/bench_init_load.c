/* Memory and time to load N unit files with lib/init (the model keel-init keeps for every unit),
 * beside systemd-analyze verify on the same files in the same run. The units are the ones of
 * issue #6's benchmark: oneshot /bin/true services in a random acyclic After=/Requires= graph.
 *
 * Prints heap bytes per loaded unit (glibc's mallinfo2), the process's RSS growth, the pool's
 * share, and the wall time; then systemd-analyze verify's wall time and peak RSS. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/clock.h"
#include "init/load.h"
#include "init/pool.h"
#include "init/unit.h"

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	long v = -1;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &v) == 1)
			break;
	if (f)
		fclose(f);
	return v;
}

static void remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[512];
	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.') {
			snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
			unlink(p);
		}
	if (d)
		closedir(d);
	rmdir(dir);
}

static void quiet(void *ud, const struct keel_diag *d)
{
	(void)ud;
	(void)d;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 1000;
	if (n < 1 || n > 100000) {
		fprintf(stderr, "usage: bench_init_load [N]\n");
		return 2;
	}
	char dir[] = "/tmp/keel-bench-init-XXXXXX";
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	srand(42);
	for (int i = 0; i < n; i++) {
		char path[512];
		snprintf(path, sizeof(path), "%s/u%05d.service", dir, i);
		FILE *f = fopen(path, "w");
		fprintf(f, "[Unit]\nDescription=Benchmark unit %d\n", i);
		int deps = i ? rand() % 4 : 0;
		for (int k = 0; k < deps; k++) {
			int j = rand() % i;
			fprintf(f, "After=u%05d.service\n%s=u%05d.service\n", j, rand() % 2 ? "Requires" : "Wants", j);
		}
		fprintf(f, "[Service]\nType=oneshot\nExecStart=/bin/true\nRemainAfterExit=yes\n"
			   "[Install]\nWantedBy=multi-user.target\n");
		fclose(f);
	}

	long rss0 = rss_kib();
	struct mallinfo2 m0 = mallinfo2();
	int64_t t0 = keel_mono_ns();
	const char *paths[] = {dir, NULL};
	struct keel_loader_config cfg = {.search_path = paths, .sink = {quiet, NULL}};
	struct keel_loader *l;
	if (keel_loader_new(&cfg, &l) < 0) {
		fprintf(stderr, "loader failed\n");
		return 1;
	}
	struct mallinfo2 m1 = mallinfo2();
	struct keel_unit **units = calloc((size_t)n, sizeof(*units));
	int loaded = 0;
	for (int i = 0; i < n; i++) {
		char name[64];
		snprintf(name, sizeof(name), "u%05d.service", i);
		if (keel_loader_load(l, name, &units[i]) == 0 && units[i]->load_state == KEEL_LOAD_LOADED)
			loaded++;
	}
	int64_t t1 = keel_mono_ns();
	struct mallinfo2 m2 = mallinfo2();
	long rss1 = rss_kib();
	struct keel_pool_stats ps;
	keel_pool_stats(keel_loader_pool(l), &ps);

	printf("lib/init: %d units (%d loaded) in %.1f ms\n", n, loaded, (double)(t1 - t0) / 1e6);
	printf("  heap: name map %.1f KiB, units %.1f KiB = %.0f bytes per unit\n",
	       (double)(m1.uordblks - m0.uordblks) / 1024, (double)(m2.uordblks - m1.uordblks) / 1024,
	       (double)(m2.uordblks - m1.uordblks) / n);
	printf("  pool: %zu strings, %zu bytes of text, %zu references\n", ps.strings, ps.bytes, ps.refs);
	printf("  RSS growth: %ld KiB (%ld -> %ld KiB)\n", rss1 - rss0, rss0, rss1);

	/* Again, with the files in the page cache and a warm loader: daemon-reload's cost. */
	for (int i = 0; i < n; i++)
		keel_unit_free(units[i]);
	int64_t w0 = keel_mono_ns();
	if (keel_loader_scan(l) < 0)
		return 1;
	for (int i = 0; i < n; i++) {
		char name[64];
		snprintf(name, sizeof(name), "u%05d.service", i);
		if (keel_loader_load(l, name, &units[i]) < 0)
			return 1;
	}
	printf("  again (rescan and reload, files cached): %.1f ms\n", (double)(keel_mono_ns() - w0) / 1e6);
	for (int i = 0; i < n; i++)
		keel_unit_free(units[i]);
	free(units);
	keel_loader_free(l);

	/* The reference: systemd-analyze verify on the same files. */
	char **av = calloc((size_t)n + 4, sizeof(char *));
	av[0] = "systemd-analyze";
	av[1] = "verify";
	av[2] = "--man=no";
	for (int i = 0; i < n; i++) {
		av[3 + i] = malloc(600);
		snprintf(av[3 + i], 600, "%s/u%05d.service", dir, i);
	}
	int64_t s0 = keel_mono_ns();
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open("/dev/null", 1);
		dup2(fd, 1);
		dup2(fd, 2);
		execvp(av[0], av);
		_exit(127);
	}
	int status;
	struct rusage ru;
	if (pid > 0 && wait4(pid, &status, 0, &ru) == pid && WIFEXITED(status) && WEXITSTATUS(status) != 127)
		printf("systemd-analyze verify: %.1f ms, peak RSS %ld KiB (exit %d)\n",
		       (double)(keel_mono_ns() - s0) / 1e6, ru.ru_maxrss, WEXITSTATUS(status));
	else
		printf("systemd-analyze verify: not available\n");
	for (int i = 0; i < n; i++)
		free(av[3 + i]);
	free(av);
	remove_dir(dir);
	return 0;
}
