/* raft-sim: run the consensus simulator over many seeds.
 *
 *   raft-sim [--seeds FIRST..LAST | --seed N] [--nodes 1,3,5] [--duration MS] [--loss P]
 *            [--no-faults] [--verbose] [--quiet] [--tap]
 *
 * Each seed runs once per cluster size. A failing run prints the violation and the exact command
 * that replays it, and the exit status is 1. The closing line counts runs: "N passed, N failed". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [--seeds FIRST..LAST | --seed N] [--nodes 1,3,5] [--duration MS]\n"
		"          [--loss P] [--no-faults] [--verbose] [--quiet] [--tap]\n",
		prog);
	exit(2);
}

int main(int argc, char **argv)
{
	uint64_t first = 1, last = 100, duration = 10000;
	unsigned sizes[8] = {1, 3, 5};
	unsigned n_sizes = 3;
	double loss = -1;
	bool faults = true, verbose = false, quiet = false, tap = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--seeds") && v) {
			if (sscanf(v, "%lu..%lu", &first, &last) != 2 || last < first)
				usage(argv[0]);
			i++;
		} else if (!strcmp(a, "--seed") && v) {
			first = last = strtoull(v, NULL, 10);
			i++;
		} else if (!strcmp(a, "--nodes") && v) {
			n_sizes = 0;
			for (char *tok = strtok(argv[++i], ","); tok && n_sizes < 8; tok = strtok(NULL, ","))
				sizes[n_sizes++] = (unsigned)atoi(tok);
		} else if (!strcmp(a, "--duration") && v) {
			duration = strtoull(v, NULL, 10);
			i++;
		} else if (!strcmp(a, "--loss") && v) {
			loss = atof(v);
			i++;
		} else if (!strcmp(a, "--no-faults")) {
			faults = false;
		} else if (!strcmp(a, "--verbose")) {
			verbose = true;
		} else if (!strcmp(a, "--quiet")) {
			quiet = true;
		} else if (!strcmp(a, "--tap")) {
			tap = true; /* one TAP line per run, for meson test */
		} else {
			usage(argv[0]);
		}
	}

	unsigned passed = 0, failed = 0;
	if (tap)
		printf("1..%lu\n", (unsigned long)((last - first + 1) * n_sizes));
	for (uint64_t seed = first; seed <= last; seed++) {
		for (unsigned k = 0; k < n_sizes; k++) {
			struct sim_opts o;
			sim_opts_default(&o, seed, sizes[k]);
			o.duration_ms = duration;
			o.verbose = verbose;
			if (loss >= 0)
				o.loss = loss;
			if (!faults)
				o.crash_every_ms = o.partition_every_ms = o.member_every_ms =
					o.transfer_every_ms = o.disk_fault_every_ms = 0;
			struct sim *s;
			int r = sim_new(&o, &s);
			if (r == 0)
				r = sim_run_workload(s);
			char stats[512];
			sim_stats(s, stats, sizeof(stats));
			if (tap)
				printf("%s %u - seed=%lu nodes=%u\n", r == 0 ? "ok" : "not ok", passed + failed + 1,
				       (unsigned long)seed, sizes[k]);
			if (r == 0) {
				passed++;
				if (!quiet && !tap)
					printf("ok seed=%lu nodes=%u %s\n", (unsigned long)seed, sizes[k], stats);
			} else {
				failed++;
				const char *pfx = tap ? "# " : "";
				printf("%sFAIL seed=%lu nodes=%u: %s\n", pfx, (unsigned long)seed, sizes[k],
				       sim_error(s) ? sim_error(s) : "setup failed");
				printf("%s  %s\n", pfx, stats);
				printf("%s  replay: %s --seed %lu --nodes %u --duration %lu%s", pfx, argv[0],
				       (unsigned long)seed, sizes[k], (unsigned long)duration,
				       faults ? "" : " --no-faults");
				if (loss >= 0)
					printf(" --loss %g", loss);
				printf("\n");
			}
			fflush(stdout);
			sim_free(s);
		}
	}
	if (!tap)
		printf("%u passed, %u failed\n", passed, failed);
	return failed ? 1 : 0;
}
