/* Pods (rkt's model): several apps from images sharing one network, IPC and UTS namespace (one
 * IP, one hostname), each app with its own mount and pid namespace on an overlayfs root made from
 * its image's layers, run through lib/run's container lifecycle with secure defaults (the OCI
 * default capabilities, a default seccomp profile, no-new-privileges, masked and read-only
 * paths). docs/run.md "Pods" is the user's page and describes the state directory.
 *
 * Every function returns 0 or a negative code with a message in the caller's struct keel_err:
 * -ENOENT (no such pod, app or image), -EEXIST (a pod of that name exists), -EINVAL (bad
 * argument), -EBUSY (the pod still runs), or -errno from the system. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/buf.h"
#include "base/errors.h"

#define KEEL_POD_DEFAULT_ROOT "/run/keel-run/pods"
#define KEEL_POD_NAME_MAX 63
#define KEEL_POD_LOG_MAX_DEFAULT (8u << 20) /* an app log is rotated to log.1 at this size */
#define KEEL_POD_USERNS_BASE_DEFAULT 1073741824u /* 2^30: far above /etc/subuid's usual ranges */

enum keel_pod_net { KEEL_POD_NET_NONE, KEEL_POD_NET_HOST, KEEL_POD_NET_BRIDGE };

/* An app's view of a pod volume. */
struct keel_pod_mount {
	const char *volume; /* a name from keel_pod_opts.volumes */
	const char *target; /* absolute path in the app */
	bool readonly;
};

struct keel_pod_volume {
	const char *name;
	const char *host_path; /* absolute, must exist */
	bool readonly;
};

struct keel_pod_app {
	const char *image;      /* reference: name[:tag], sha256:<hex> or an id prefix */
	const char *name;       /* NULL: from the image's name */
	char **exec;            /* NULL-terminated, or NULL: the image's Entrypoint + Cmd */
	char **env;             /* "K=V" overriding the image's Env, or NULL */
	struct keel_pod_mount *mounts;
	size_t n_mounts;
	const char *user;       /* "uid[:gid]" or "name[:group]", NULL: the image's User */
	const char *workdir;    /* NULL: the image's WorkingDir or "/" */
	int64_t memory;         /* bytes, 0 for no app limit */
};

/* --publish HOSTPORT:PODPORT[/tcp|/udp] (bridge pods). */
struct keel_pod_port {
	uint16_t host, pod;
	bool udp;
};
/* "8080:80", "53:53/udp"; -EINVAL when malformed. */
int keel_pod_parse_port(const char *s, struct keel_pod_port *out);

struct keel_pod_opts {
	const char *root;       /* pods' state (NULL: KEEL_POD_DEFAULT_ROOT) */
	const char *image_root; /* NULL: keel_image_default_root() */
	const char *name;       /* NULL: a generated one */
	const char *hostname;   /* NULL: the pod's name */
	enum keel_pod_net net;
	const char *bridge;     /* bridge name for KEEL_POD_NET_BRIDGE (NULL: keel-pod0) */
	const char *subnet;     /* "10.88.0.0/16" style, for the bridge (NULL: that one) */
	struct keel_pod_volume *volumes;
	size_t n_volumes;
	int64_t memory;         /* bytes for the whole pod, 0 for none */
	uint64_t cpu_millis;    /* CPU quota for the pod in thousandths of a CPU, 0 for none */
	bool user_ns;           /* a user namespace of the pod's own (root = a free host id range) */
	uint32_t user_ns_base;  /* first host id of the ranges to pick from (0: the default) */
	struct keel_pod_port *ports; /* published with DNAT to the pod's bridge address */
	size_t n_ports;
	uint64_t log_max_size;  /* bytes per app log before it is rotated (0: the default) */
	bool detach;
	struct keel_pod_app *apps;
	size_t n_apps;
};

/* Pod and app names: [A-Za-z0-9][A-Za-z0-9_-]*, at most KEEL_POD_NAME_MAX bytes. */
bool keel_pod_valid_name(const char *name);

/* Set the pod up and start its apps. Detached, returns once every app runs (the pod's name in
 * ret_name, KEEL_POD_NAME_MAX + 1 bytes); otherwise waits until all apps have exited and puts
 * the first non-zero exit status (128+n for signal n), or 0, in *ret_status. A pod that fails
 * to start leaves nothing behind. */
int keel_pod_run(const struct keel_pod_opts *o, char *ret_name, int *ret_status, struct keel_err *err);

/* JSON: all pods (an array) or one pod with its apps' states (an object). */
int keel_pod_list_json(const char *root, struct keel_buf *out, struct keel_err *err);
int keel_pod_status_json(const char *root, const char *name, struct keel_buf *out, struct keel_err *err);

/* SIGTERM every app, then SIGKILL whatever is left after timeout_s seconds. */
int keel_pod_stop(const char *root, const char *name, int timeout_s, struct keel_err *err);
/* Remove a stopped pod (force: stop it first with SIGKILL): apps' containers, cgroups, mounts,
 * overlay directories, namespaces, the bridge's veth, state; releases the image holds. */
int keel_pod_rm(const char *root, const char *image_root, const char *name, bool force,
		struct keel_err *err);

/* The path of one app's log file (stdout and stderr) into out; -ENOENT for an unknown app. */
int keel_pod_log_path(const char *root, const char *name, const char *app, char *out, size_t size,
		      struct keel_err *err);
/* The names of a pod's apps, in the order they were given (NULL-terminated, keel_strv_free). */
int keel_pod_app_names(const char *root, const char *name, char ***ret, struct keel_err *err);

/* Run argv inside a running app (all its namespaces, its cgroup, its capabilities, seccomp
 * filter and no-new-privileges), wait for it and put its exit status in *ret_status. app NULL:
 * the pod's only (or first) app. */
int keel_pod_enter(const char *root, const char *name, const char *app, char *const *argv,
		   int *ret_status, struct keel_err *err);

/* The CLI: argv[0] is the name usage messages show ("keel-pod", or "pod" when keel-run
 * dispatches `keel-run pod ...` here), argv[1] the subcommand. Returns the exit status. */
int keel_pod_cli(int argc, char **argv);
