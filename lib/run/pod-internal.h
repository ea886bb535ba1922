/* What the pod files share: the layout of a pod's state directory, the resolved form of an app,
 * the per-app config.json builder (pod_spec.c) and the state file (pod.c). */
#pragma once

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/errors.h"
#include "run/pod.h"

/* <root>/<pod>/
 *   pod.json            what the pod is (name, net, apps, cgroup dirs, monitor pid)
 *   lock                flock()ed by every operation on the pod
 *   ns/{net,ipc,uts}    the shared namespaces, bind-mounted nsfs files (and user with --user-ns)
 *   run/                lib/run's --root for the apps' containers (ids = app names)
 *   etc/{hosts,resolv.conf}  bind-mounted read-only into every app
 *   apps/<app>/         config.json (the bundle), rootfs/ (overlay), upper/, work/, log, exit */
#define POD_CGROUP_PARENT "keel-pod"
#define POD_SHARED_NS 3

/* The namespaces a pod shares, in the order they are made and joined. */
extern const char *const keel__pod_ns_names[POD_SHARED_NS]; /* "net", "ipc", "uts" */

/* An app once its image and overrides are resolved. */
struct keel__pod_app {
	char name[KEEL_POD_NAME_MAX + 1];
	char *image_id;
	char **args, **env;
	char *cwd;
	uint32_t uid, gid;
	uint32_t *gids;
	size_t n_gids;
	int64_t memory;
	const struct keel_pod_app *in; /* the caller's description */
};

/* Everything a per-app config.json needs to know about the pod. */
struct keel__pod_ctx {
	const struct keel_pod_opts *o;
	char dir[3072];       /* <root>/<pod> (the root is at most 2900 bytes) */
	char name[KEEL_POD_NAME_MAX + 1];
	bool has_netns;
	char ip[16];          /* --net bridge: the pod's address, its veth's host end, the bridge */
	char veth[16];
	char bridge[16];
	uint32_t uid_base;    /* --user-ns: host id of the pod's root (KEEL_POD_USERNS_SIZE ids) */
};

#define KEEL_POD_USERNS_SIZE 65536u

/* pod_userns.c: --user-ns. A free range of KEEL_POD_USERNS_SIZE host ids from base up (into
 * p->uid_base), recorded as <root>/.userns/<first id> holding the pod's name, made under
 * <root>/.userns/lock; _free removes the pod's record(s). */
/* The ranges are checked against /etc/subuid and /etc/subgid ($KEEL_SUBUID_FILE,
 * $KEEL_SUBGID_FILE): when they list ranges for the calling user (by name or uid), only those
 * are used (from base up when base is not 0); otherwise ranges from base (0: the default) up
 * that no other user's entry overlaps. */
int keel__pod_userns_alloc(struct keel__pod_ctx *p, const char *root, uint32_t base, struct keel_err *err);

/* pod_parse.c: subuid(5)/subgid(5) text split into the ranges of one user (name, or uid) or of
 * KEEL_POD_SUBID_USER (keel-pod's own name, as podman has "containers") and everyone else's; _allows: [id, id + size) lies inside one own range when there are any, else
 * overlaps no other range. */
#define KEEL_POD_SUBID_USER "keel-pod"
struct keel__subid {
	uint32_t start, count;
};
struct keel__subids {
	struct keel__subid *own, *other;
	size_t n_own, n_other;
};
int keel__pod_subid_parse(const char *text, const char *user, uint32_t uid, struct keel__subids *out);
void keel__pod_subids_free(struct keel__subids *s);
bool keel__pod_subid_allows(const struct keel__subids *s, uint64_t id, uint64_t size);
int keel__pod_userns_free(const char *root, const char *pod, struct keel_err *err);
/* Mount an overlay on target: the layers (base first, NULL-terminated) id-mapped through the user
 * namespace userns_fd, with upper and work directories; tmp (made and removed again) is where
 * the id-mapped layers are attached while the overlay is made. */
int keel__pod_idmapped_overlay(char *const *layers, const char *upper, const char *work, const char *tmp,
			       const char *target, int userns_fd, struct keel_err *err);

/* The config.json for one app into *ret (a new JSON object). */
int keel__pod_app_config(const struct keel__pod_ctx *p, const struct keel__pod_app *a, json_t **ret,
			 struct keel_err *err);
/* The default seccomp profile (docs/run.md "Pods"), a runtime-spec linux.seccomp object. */
json_t *keel__pod_seccomp_profile(void);
/* The OCI default capability set as a bit mask. */
uint64_t keel__pod_default_caps(void);

/* Recursive removal that stays on one filesystem (mount points are left alone, and then their
 * parents fail with EBUSY/ENOTEMPTY). */
int keel__pod_rmtree(const char *path);

/* Make the pods' root (0700) when missing. */
int keel__pod_mkroot(const char *root, struct keel_err *err);
/* flock() <dir>/lock (created when missing); the fd, or -errno. */
int keel__pod_lock_dir(const char *dir, bool exclusive, struct keel_err *err);
/* flock() /run/lock/keel-pod-cgroup.lock (one for every --root): held while a pod makes its
 * cgroups and while one removes the shared /keel-pod parent. */
int keel__pod_cgroup_lock(struct keel_err *err);
/* Remove everything of a pod that exists (see keel_pod_rm); takes the pod's lock. */
int keel__pod_destroy(const char *root, const char *image_root, const char *name, struct keel_err *err);

/* pod_net.c: --net bridge: the bridge, a veth pair into the pod's netns, an address (into
 * p->ip, p->veth, p->bridge). keel__pod_net_check validates --bridge/--subnet before anything
 * is made; keel__pod_net_teardown frees what a pod of that name holds under <root>/.net. */
int keel__pod_net_check(const struct keel_pod_opts *o, struct keel_err *err);
int keel__pod_net_setup(struct keel__pod_ctx *p, struct keel_err *err);
int keel__pod_net_teardown(const char *root, const char *pod, struct keel_err *err);
/* pod_ports.c: --publish. _check validates the ports against the options; _add publishes them
 * for the pod's address (p->ip, after keel__pod_net_setup); _remove withdraws every port
 * published for the address ip (called where the address is freed). */
int keel__pod_ports_check(const struct keel_pod_opts *o, struct keel_err *err);
int keel__pod_ports_add(const struct keel__pod_ctx *p, struct keel_err *err);
int keel__pod_ports_remove(const char *ip, struct keel_err *err);
/* The index of ifname inside the network namespace at nspath, or -errno. */
int keel__pod_ifindex_in(const char *nspath, const char *ifname);
/* <pod>/etc/hosts (localhost and the pod's hostname) and, unless --net none, etc/resolv.conf
 * (a copy of the host's); the apps get them read-only. */
int keel__pod_etc_files(const struct keel__pod_ctx *p, const char *hostname, struct keel_err *err);
