/* --net bridge for pods. Not implemented yet: refused with an error that says so, before
 * anything is made that would need undoing. */
#include <errno.h>

#include "run/pod-internal.h"

int keel__pod_net_setup(const struct keel__pod_ctx *p, struct keel_err *err)
{
	(void)p;
	return keel_err_set(err, -ENOTSUP, "--net bridge is not implemented yet; use --net none or --net host");
}
