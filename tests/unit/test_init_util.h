/* Helpers the lib/init tests share: collect diagnostics as systemd-style lines. */
#pragma once

#include <stdbool.h>
#include <string.h>

#include "init/diag.h"

struct diag_log {
	char lines[128][1024];
	int n;
};

static inline void diag_collect(void *userdata, const struct keel_diag *d)
{
	struct diag_log *log = userdata;
	if (log->n < 128)
		keel_diag_format(d, log->lines[log->n++], sizeof(log->lines[0]));
}

/* Whether some collected line contains needle. */
static inline bool diag_has(const struct diag_log *log, const char *needle)
{
	for (int i = 0; i < log->n; i++)
		if (strstr(log->lines[i], needle))
			return true;
	return false;
}
