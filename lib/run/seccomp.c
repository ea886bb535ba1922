/* linux.seccomp with libseccomp: the filter is built and loaded by the container's init, as close
 * to exec as the no_new_privileges rules allow (see init.c). */
#include <errno.h>
#include <linux/seccomp.h>
#include <seccomp.h>

#include "run/container-internal.h"

int keel__seccomp_load(const struct keel_spec_seccomp *sc, struct keel_err *err)
{
	scmp_filter_ctx ctx = seccomp_init(sc->default_action);
	int r = 0;
	if (!ctx)
		return keel_err_set(err, -ENOMEM, "seccomp: cannot create a filter");
	for (size_t i = 0; i < sc->n_archs; i++) {
		r = seccomp_arch_add(ctx, sc->archs[i]);
		if (r < 0 && r != -EEXIST) {
			keel_err_errno(err, r, "seccomp: adding architecture %zu", i);
			goto out;
		}
	}
	/* The filter's own flags: none of these may weaken it, so an old kernel's refusal is an
	 * error rather than a silent downgrade. */
	if ((sc->flags & SECCOMP_FILTER_FLAG_LOG) && (r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_LOG, 1)) < 0) {
		keel_err_errno(err, r, "seccomp: SECCOMP_FILTER_FLAG_LOG");
		goto out;
	}
	if ((sc->flags & SECCOMP_FILTER_FLAG_SPEC_ALLOW) &&
	    (r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_SSB, 1)) < 0) {
		keel_err_errno(err, r, "seccomp: SECCOMP_FILTER_FLAG_SPEC_ALLOW");
		goto out;
	}
	if ((sc->flags & SECCOMP_FILTER_FLAG_TSYNC) && (r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1)) < 0) {
		keel_err_errno(err, r, "seccomp: SECCOMP_FILTER_FLAG_TSYNC");
		goto out;
	}
	for (size_t i = 0; i < sc->n_rules; i++) {
		const struct keel_spec_seccomp_rule *rule = &sc->rules[i];
		struct scmp_arg_cmp cmp[6];
		for (size_t a = 0; a < rule->n_args; a++)
			cmp[a] = (struct scmp_arg_cmp){rule->args[a].index, (enum scmp_compare)rule->args[a].op,
						       rule->args[a].value, rule->args[a].value_two};
		for (size_t k = 0; rule->names[k]; k++) {
			int nr = seccomp_syscall_resolve_name(rule->names[k]);
			/* A profile lists calls of every architecture and kernel version; those this
			 * one does not know cannot be made, so there is nothing to filter (as runc). */
			if (nr == __NR_SCMP_ERROR)
				continue;
			if (rule->action == sc->default_action)
				continue; /* libseccomp refuses rules that repeat the default */
			r = seccomp_rule_add_array(ctx, rule->action, nr, (unsigned)rule->n_args, cmp);
			if (r < 0) {
				keel_err_errno(err, r, "seccomp: rule %zu for %s", i, rule->names[k]);
				goto out;
			}
		}
	}
	r = seccomp_load(ctx);
	if (r < 0)
		keel_err_errno(err, r, "seccomp: loading the filter");
out:
	seccomp_release(ctx);
	return r < 0 ? r : 0;
}
