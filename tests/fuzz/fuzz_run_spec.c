/* Fuzz the OCI config.json parser: any input either parses into a spec whose invariants hold (the
 * runtime relies on them without checking again) or fails with a message. */
#include <stdlib.h>
#include <string.h>

#include "run/spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct keel_spec *s;
	struct keel_err err;
	keel_err_clear(&err);
	if (keel_spec_parse((const char *)data, size, &s, &err) < 0) {
		if (!err.msg[0])
			abort();
		return 0;
	}
	if (!s->root_path || !*s->root_path || !(s->ns_new & (1u << KEEL_NS_MNT)))
		abort();
	if (s->has_process && (!s->process.args || !s->process.args[0] || s->process.cwd[0] != '/'))
		abort();
	for (size_t i = 0; i < s->n_mounts; i++)
		if (s->mounts[i].destination[0] != '/' || (!s->mounts[i].bind && !s->mounts[i].type) ||
		    (s->mounts[i].bind && !s->mounts[i].source))
			abort();
	for (size_t i = 0; i < s->process.n_rlimits; i++)
		if (s->process.rlimits[i].soft > s->process.rlimits[i].hard)
			abort();
	if ((s->ns_new & s->ns_join) != 0)
		abort();
	for (int k = 0; k < KEEL_NS_KINDS; k++)
		if ((s->ns_join & (1u << k)) && (!s->ns_path[k] || s->ns_path[k][0] != '/'))
			abort();
	if ((s->n_uid_map || s->n_gid_map) && !(s->ns_new & (1u << KEEL_NS_USER)))
		abort();
	for (int k = 0; k < KEEL_HOOK_KINDS; k++)
		for (size_t i = 0; i < s->hooks[k].n; i++)
			if (s->hooks[k].v[i].path[0] != '/' || s->hooks[k].v[i].timeout < 0)
				abort();
	if (s->seccomp)
		for (size_t i = 0; i < s->seccomp->n_rules; i++)
			if (!s->seccomp->rules[i].names || !s->seccomp->rules[i].names[0] ||
			    s->seccomp->rules[i].n_args > 6)
				abort();
	keel_spec_free(s);
	return 0;
}
