/* Runs a fuzz target over every file of a corpus directory, once each, printing TAP: the same
 * targets as libFuzzer's, without clang, so seed inputs and past crashes stay regression tests. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return 2;
	}
	DIR *d = opendir(argv[1]);
	if (!d) {
		printf("1..0 # SKIP no corpus at %s\n", argv[1]);
		return 0;
	}
	char *names[4096];
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < sizeof(names) / sizeof(names[0]))
		if (e->d_name[0] != '.')
			names[n++] = strdup(e->d_name);
	closedir(d);
	qsort(names, n, sizeof(names[0]), by_name);

	printf("1..%zu\n", n);
	for (size_t i = 0; i < n; i++) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", argv[1], names[i]);
		FILE *f = fopen(path, "rb");
		uint8_t *buf = NULL;
		size_t len = 0;
		if (f) {
			fseek(f, 0, SEEK_END);
			long sz = ftell(f);
			fseek(f, 0, SEEK_SET);
			buf = malloc(sz > 0 ? (size_t)sz : 1);
			len = fread(buf, 1, sz > 0 ? (size_t)sz : 0, f);
			fclose(f);
		}
		/* A target reports a broken property by aborting, which ends the run here; TAP
		 * then shows the missing lines and meson the crash. */
		fflush(stdout);
		if (buf)
			LLVMFuzzerTestOneInput(buf, len);
		printf("%s %zu - %s\n", buf ? "ok" : "not ok", i + 1, names[i]);
		free(buf);
		free(names[i]);
	}
	return 0;
}
