/* The floor for bench_init.py: fork+exec /bin/true N times, at most two at a time - what any
 * service manager must at least spend to run N oneshot units on this machine. Prints the
 * elapsed seconds. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 1000;
	int par = argc > 2 ? atoi(argv[2]) : 2;
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	int running = 0, started = 0;
	while (started < n || running > 0) {
		while (started < n && running < par) {
			pid_t pid = fork();
			if (pid == 0) {
				execl("/bin/true", "/bin/true", (char *)NULL);
				_exit(127);
			}
			if (pid < 0) {
				perror("fork");
				return 1;
			}
			started++;
			running++;
		}
		int st;
		if (wait(&st) > 0)
			running--;
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%.6f\n", (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9);
	return 0;
}
