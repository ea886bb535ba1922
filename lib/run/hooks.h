/* Running OCI hooks (runtime-spec config.md "POSIX-platform Hooks"): each hook is executed with
 * the container's state JSON on its standard input, and must exit 0 within its timeout. */
#pragma once

#include <sys/types.h>

#include "base/buf.h"
#include "base/errors.h"
#include "run/spec.h"

/* The state document hooks receive. */
int keel_hook_state_json(const char *id, const char *status, pid_t pid, const char *bundle,
			 const json_t *annotations, struct keel_buf *out);

/* Run the hooks in order; stops at the first that fails (exit status, signal, timeout) and returns
 * its error ("poststart hook /bin/x exited with status 3"). */
int keel_hooks_run(const struct keel_spec_hooks *hooks, enum keel_hook_kind kind,
		   const char *state_json, struct keel_err *err);

