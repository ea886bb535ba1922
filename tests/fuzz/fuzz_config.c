/* Fuzz the flag/environment parser: input is NUL-separated words; the first word that starts
 * with "ENV:" and those after it are environment entries. Properties: never crashes or leaks,
 * and a successful parse leaves every field in its declared type's domain. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/config.h"
#include "base/str.h"

struct cfg {
	char *name;
	uint64_t u;
	int64_t i;
	int64_t d;
	bool b;
	int e;
	char **list;
};

static const char *const choices[] = {"new", "existing", NULL};

static const struct keel_opt opts[] = {
	{.name = "name", .short_name = 'n', .type = KEEL_OPT_STRING, .offset = offsetof(struct cfg, name), .def = "x"},
	{.name = "u", .type = KEEL_OPT_UINT, .offset = offsetof(struct cfg, u), .min = 1, .max = 100},
	{.name = "i", .type = KEEL_OPT_INT, .offset = offsetof(struct cfg, i)},
	{.name = "d", .type = KEEL_OPT_DURATION, .offset = offsetof(struct cfg, d)},
	{.name = "b", .type = KEEL_OPT_BOOL, .offset = offsetof(struct cfg, b)},
	{.name = "e", .type = KEEL_OPT_ENUM, .offset = offsetof(struct cfg, e), .choices = choices},
	{.name = "list", .type = KEEL_OPT_LIST, .offset = offsetof(struct cfg, list), .def = "a,b"},
};

static const struct keel_config_spec spec = {
	.prog = "fuzz", .version = "1", .env_prefix = "FZ", .opts = opts, .n_opts = 7,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4096)
		return 0;
	char *copy = malloc(size + 1);
	memcpy(copy, data, size);
	copy[size] = '\0';

	char *argv[130], *envp[130];
	int argc = 0, envc = 0;
	argv[argc++] = "fuzz";
	bool in_env = false;
	for (char *p = copy; p < copy + size + 1 && argc < 128 && envc < 128; p += strlen(p) + 1) {
		if (strncmp(p, "ENV:", 4) == 0) {
			in_env = true;
			p += 4;
		}
		if (in_env)
			envp[envc++] = p;
		else
			argv[argc++] = p;
		if (p + strlen(p) >= copy + size)
			break;
	}
	argv[argc] = NULL;
	envp[envc] = NULL;

	struct cfg c = {0};
	struct keel_err err;
	int argi;
	int r = keel_config_parse(&spec, &c, argc, argv, envp, &argi, &err);
	if (r == 0) {
		if (argi < 1 || argi > argc || !c.name || (c.u != 0 && (c.u < 1 || c.u > 100)) ||
		    c.e < 0 || c.e > 1)
			abort();
		for (size_t i = 0; c.list && c.list[i]; i++)
			if (!*c.list[i] || strchr(c.list[i], ','))
				abort();
	} else if (err.code != r || !err.msg[0]) {
		abort(); /* every failure explains itself */
	}
	keel_config_free(&spec, &c);
	free(copy);
	return 0;
}
