/* `keel-run pod ...` (for now also the keel-pod binary): run, list, status, stop, rm, logs,
 * enter. Flags are `--flag value` or `--flag=value`, before the arguments. `pod run` takes
 * apps as IMAGE [app flags], separated by `---` (rkt's separator); an app's `--exec CMD ARGS...`
 * takes every word up to the next `---`, so it comes last. */
#include <errno.h>
#include <stdarg.h>
#include <jansson.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/macro.h"
#include "base/mem.h"
#include "base/str.h"
#include "image/image.h"
#include "run/pod.h"

#define POD_ROOT_ENV "KEEL_POD_ROOT"

struct cli {
	const char *prog;
	const char *root, *image_root;
};

KEEL_PRINTF(2, 3) static int usage(const struct cli *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%s: ", c->prog);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nRun '%s help' for usage.\n", c->prog);
	return 2;
}

static int fail(const struct cli *c, const struct keel_err *err)
{
	fprintf(stderr, "%s: %s\n", c->prog, keel_err_msg(err));
	return 1;
}

/* "--name=v" or "--name v": the value (advancing *i), NULL when argv[*i] is not this flag. */
static const char *flag_value(char **argv, int argc, int *i, const char *name, bool *missing)
{
	const char *a = argv[*i];
	size_t n = strlen(name);
	if (strncmp(a, "--", 2) != 0 && !(a[0] == '-' && a[1] != '-'))
		return NULL;
	a += a[1] == '-' ? 2 : 1;
	if (strncmp(a, name, n) != 0)
		return NULL;
	if (a[n] == '=')
		return a + n + 1;
	if (a[n] != 0)
		return NULL;
	if (*i + 1 >= argc) {
		*missing = true;
		return NULL;
	}
	return argv[++*i];
}

static bool is_flag(const char *a, const char *name)
{
	return (strncmp(a, "--", 2) == 0 && strcmp(a + 2, name) == 0) || (a[0] == '-' && strcmp(a + 1, name) == 0);
}

/* "512", "64k", "64m", "1g" (binary units, optional trailing b). */
static int parse_size(const char *s, int64_t *ret)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	uint64_t mul = 1;
	switch (*end) {
	case 'k': case 'K': mul = 1ull << 10; end++; break;
	case 'm': case 'M': mul = 1ull << 20; end++; break;
	case 'g': case 'G': mul = 1ull << 30; end++; break;
	default: break;
	}
	if (*end == 'b' || *end == 'B')
		end++;
	if (*end || v == 0 || v > (uint64_t)INT64_MAX / mul)
		return -EINVAL;
	*ret = (int64_t)(v * mul);
	return 0;
}

static int parse_cpus(const char *s, uint64_t *ret)
{
	char *end;
	errno = 0;
	double d = strtod(s, &end);
	if (errno || end == s || *end || !(d > 0) || d > 1024)
		return -EINVAL;
	*ret = (uint64_t)(d * 1000 + 0.5);
	return *ret ? 0 : -EINVAL;
}

/* Common flags of every subcommand: --root, --image-root. 1 when argv[*i] was one. */
static int common_flag(struct cli *c, char **argv, int argc, int *i, bool *missing)
{
	const char *v;
	if ((v = flag_value(argv, argc, i, "root", missing))) {
		c->root = v;
		return 1;
	}
	if ((v = flag_value(argv, argc, i, "image-root", missing))) {
		c->image_root = v;
		return 1;
	}
	return 0;
}

/* ---- run ---- */

struct run_parse {
	struct keel_pod_opts o;
	struct keel_pod_app apps[64];
	struct keel_pod_volume vols[64];
	struct keel_pod_port ports[64];
	struct keel_pod_mount mounts[64 * 8];
	size_t n_mounts;
	char **to_free; /* strv of strings we made */
	char **vecs[64];
	size_t n_vecs;
	char **envs[64];
};

static int parse_mount(struct run_parse *p, struct keel_pod_app *a, const char *spec)
{
	/* volume=NAME,target=/path[,readonly] */
	char *copy = keel_strdup(spec), *save = NULL;
	if (!copy || keel_strv_consume(&p->to_free, copy) < 0)
		return -ENOMEM;
	struct keel_pod_mount m = {0};
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		const char *v;
		if ((v = keel_startswith(t, "volume=")))
			m.volume = v;
		else if ((v = keel_startswith(t, "target=")))
			m.target = v;
		else if (strcmp(t, "readonly") == 0 || strcmp(t, "ro") == 0)
			m.readonly = true;
		else
			return -EINVAL;
	}
	if (!m.volume || !m.target || !*m.volume || !*m.target)
		return -EINVAL;
	if (p->n_mounts >= KEEL_ARRAY_SIZE(p->mounts))
		return -E2BIG;
	/* An app's mounts are consecutive: apps are parsed one after the other. */
	if (!a->mounts)
		a->mounts = &p->mounts[p->n_mounts];
	p->mounts[p->n_mounts++] = m;
	a->n_mounts++;
	return 0;
}

static int parse_volume(struct run_parse *p, const char *spec, struct keel_pod_volume *v)
{
	/* NAME:/host/path[:ro] */
	char *copy = keel_strdup(spec);
	if (!copy || keel_strv_consume(&p->to_free, copy) < 0)
		return -ENOMEM;
	char *colon = strchr(copy, ':');
	if (!colon || colon == copy || colon[1] != '/')
		return -EINVAL;
	*colon = 0;
	v->name = copy;
	v->host_path = colon + 1;
	char *ro = strrchr(colon + 1, ':');
	if (ro && strcmp(ro, ":ro") == 0) {
		*ro = 0;
		v->readonly = true;
	} else if (ro && strcmp(ro, ":rw") == 0) {
		*ro = 0;
	}
	return 0;
}

static int cmd_run(struct cli *c, int argc, char **argv)
{
	struct run_parse *p = keel_calloc(1, sizeof(*p));
	if (!p)
		return 1;
	struct keel_pod_opts *o = &p->o;
	o->net = KEEL_POD_NET_NONE;
	o->apps = p->apps;
	o->volumes = p->vols;
	o->ports = p->ports;
	int i = 1, ret = 2;
	bool missing = false;
	const char *v;
	/* Pod flags, up to the first image. */
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (common_flag(c, argv, argc, &i, &missing))
			continue;
		if ((v = flag_value(argv, argc, &i, "name", &missing))) {
			o->name = v;
		} else if ((v = flag_value(argv, argc, &i, "hostname", &missing))) {
			o->hostname = v;
		} else if ((v = flag_value(argv, argc, &i, "net", &missing))) {
			if (strcmp(v, "none") == 0)
				o->net = KEEL_POD_NET_NONE;
			else if (strcmp(v, "host") == 0)
				o->net = KEEL_POD_NET_HOST;
			else if (strcmp(v, "bridge") == 0)
				o->net = KEEL_POD_NET_BRIDGE;
			else {
				ret = usage(c, "invalid --net \"%s\": use none, host or bridge", v);
				goto out;
			}
		} else if ((v = flag_value(argv, argc, &i, "volume", &missing))) {
			if (o->n_volumes >= KEEL_ARRAY_SIZE(p->vols) ||
			    parse_volume(p, v, &p->vols[o->n_volumes]) < 0) {
				ret = usage(c, "invalid --volume \"%s\": use NAME:/host/path[:ro]", v);
				goto out;
			}
			o->n_volumes++;
		} else if ((v = flag_value(argv, argc, &i, "memory", &missing))) {
			if (parse_size(v, &o->memory) < 0) {
				ret = usage(c, "invalid --memory \"%s\": use bytes or a k, m, g suffix", v);
				goto out;
			}
		} else if ((v = flag_value(argv, argc, &i, "publish", &missing)) ||
			   (v = flag_value(argv, argc, &i, "p", &missing))) {
			if (o->n_ports >= KEEL_ARRAY_SIZE(p->ports) ||
			    keel_pod_parse_port(v, &p->ports[o->n_ports]) < 0) {
				ret = usage(c, "invalid --publish \"%s\": use HOSTPORT:PODPORT[/tcp|/udp]", v);
				goto out;
			}
			o->n_ports++;
		} else if ((v = flag_value(argv, argc, &i, "log-max-size", &missing))) {
			int64_t size;
			if (parse_size(v, &size) < 0 || size < 4096) {
				ret = usage(c, "invalid --log-max-size \"%s\": bytes (at least 4096) or a k, m, g suffix", v);
				goto out;
			}
			o->log_max_size = (uint64_t)size;
		} else if ((v = flag_value(argv, argc, &i, "cpus", &missing))) {
			if (parse_cpus(v, &o->cpu_millis) < 0) {
				ret = usage(c, "invalid --cpus \"%s\"", v);
				goto out;
			}
		} else if ((v = flag_value(argv, argc, &i, "subnet", &missing))) {
			o->subnet = v;
		} else if ((v = flag_value(argv, argc, &i, "bridge", &missing))) {
			o->bridge = v;
		} else if (is_flag(argv[i], "user-ns")) {
			o->user_ns = true;
		} else if ((v = flag_value(argv, argc, &i, "user-ns-base", &missing))) {
			char *end;
			errno = 0;
			unsigned long long b = strtoull(v, &end, 10);
			if (errno || *end || !*v || b == 0 || b > UINT32_MAX) {
				ret = usage(c, "invalid --user-ns-base \"%s\"", v);
				goto out;
			}
			o->user_ns_base = (uint32_t)b;
		} else if (is_flag(argv[i], "d") || is_flag(argv[i], "detach")) {
			o->detach = true;
		} else {
			ret = usage(c, missing ? "flag needs an argument: %s" : "unknown flag %s for pod run", argv[i]);
			goto out;
		}
	}
	if (missing) {
		ret = usage(c, "flag needs an argument: %s", argv[i - 1]);
		goto out;
	}
	/* Apps. */
	while (i < argc) {
		if (o->n_apps >= KEEL_ARRAY_SIZE(p->apps)) {
			ret = usage(c, "too many apps%s", "");
			goto out;
		}
		struct keel_pod_app *a = &p->apps[o->n_apps++];
		if (strcmp(argv[i], "---") == 0 || argv[i][0] == '-') {
			ret = usage(c, "expected an image, not %s", argv[i]);
			goto out;
		}
		a->image = argv[i++];
		while (i < argc && strcmp(argv[i], "---") != 0) {
			if (is_flag(argv[i], "exec")) {
				char **args = NULL;
				for (i++; i < argc && strcmp(argv[i], "---") != 0; i++)
					if (keel_strv_push(&args, argv[i]) < 0)
						goto oom;
				if (!args) {
					ret = usage(c, "--exec needs a command%s", "");
					goto out;
				}
				p->vecs[p->n_vecs++] = args;
				a->exec = args;
				break;
			}
			if ((v = flag_value(argv, argc, &i, "name", &missing))) {
				a->name = v;
			} else if ((v = flag_value(argv, argc, &i, "env", &missing))) {
				if (!strchr(v, '=') || v[0] == '=') {
					ret = usage(c, "invalid --env \"%s\": use KEY=VALUE", v);
					goto out;
				}
				if (keel_strv_push(&p->envs[o->n_apps - 1], v) < 0)
					goto oom;
				a->env = p->envs[o->n_apps - 1];
			} else if ((v = flag_value(argv, argc, &i, "mount", &missing))) {
				if (parse_mount(p, a, v) < 0) {
					ret = usage(c, "invalid --mount \"%s\": use volume=NAME,target=/path[,readonly]", v);
					goto out;
				}
			} else if ((v = flag_value(argv, argc, &i, "user", &missing))) {
				a->user = v;
			} else if ((v = flag_value(argv, argc, &i, "workdir", &missing))) {
				a->workdir = v;
			} else if ((v = flag_value(argv, argc, &i, "memory", &missing))) {
				if (parse_size(v, &a->memory) < 0) {
					ret = usage(c, "invalid --memory \"%s\": use bytes or a k, m, g suffix", v);
					goto out;
				}
			} else {
				ret = usage(c, missing ? "flag needs an argument: %s" : "unknown app flag %s", argv[i]);
				goto out;
			}
			i++;
		}
		if (i < argc && strcmp(argv[i], "---") == 0) {
			i++;
			if (i >= argc) {
				ret = usage(c, "expected an image after ---%s", "");
				goto out;
			}
		}
	}
	if (o->n_apps == 0) {
		ret = usage(c, "pod run needs at least one image%s", "");
		goto out;
	}
	o->root = c->root;
	o->image_root = c->image_root;
	struct keel_err err;
	keel_err_clear(&err);
	char name[KEEL_POD_NAME_MAX + 1];
	int status = 0;
	if (keel_pod_run(o, name, &status, &err) < 0) {
		ret = fail(c, &err);
		goto out;
	}
	if (o->detach)
		printf("%s\n", name);
	ret = status;
	goto out;
oom:
	fprintf(stderr, "%s: out of memory\n", c->prog);
	ret = 1;
out:
	for (size_t k = 0; k < p->n_vecs; k++)
		keel_strv_free(p->vecs[k]);
	for (size_t k = 0; k < KEEL_ARRAY_SIZE(p->envs); k++)
		keel_strv_free(p->envs[k]);
	keel_strv_free(p->to_free);
	keel_free(p);
	return ret;
}

/* ---- the others ---- */

struct simple {
	const char *format, *app;
	int timeout;
	bool force, quiet;
	int first_arg;
};

static int parse_simple(struct cli *c, int argc, char **argv, struct simple *s, const char *allowed)
{
	bool missing = false;
	const char *v;
	int i = 1;
	s->format = "table";
	s->timeout = 10;
	for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		}
		if (common_flag(c, argv, argc, &i, &missing))
			continue;
		if (strstr(allowed, "format") && (v = flag_value(argv, argc, &i, "format", &missing))) {
			if (strcmp(v, "table") != 0 && strcmp(v, "json") != 0)
				return usage(c, "invalid --format \"%s\": table or json", v);
			s->format = v;
		} else if (strstr(allowed, "app") && (v = flag_value(argv, argc, &i, "app", &missing))) {
			s->app = v;
		} else if (strstr(allowed, "timeout") && (v = flag_value(argv, argc, &i, "timeout", &missing))) {
			uint64_t t;
			if (keel_parse_u64(v, &t) < 0 || t > 3600)
				return usage(c, "invalid --timeout \"%s\" (seconds)", v);
			s->timeout = (int)t;
		} else if (strstr(allowed, "force") && (is_flag(argv[i], "force") || is_flag(argv[i], "f"))) {
			s->force = true;
		} else if (strstr(allowed, "quiet") && (is_flag(argv[i], "quiet") || is_flag(argv[i], "q"))) {
			s->quiet = true;
		} else {
			return usage(c, missing ? "flag needs an argument: %s" : "unknown flag %s", argv[i]);
		}
	}
	if (missing)
		return usage(c, "flag needs an argument: %s", argv[i - 1]);
	s->first_arg = i;
	return 0;
}

static void print_table_row(json_t *pod)
{
	json_t *apps = json_object_get(pod, "apps"), *a;
	size_t i;
	char names[256] = "";
	size_t len = 0;
	json_array_foreach(apps, i, a)
		len += (size_t)snprintf(names + len, len < sizeof(names) ? sizeof(names) - len : 0, "%s%s",
					i ? "," : "", json_string_value(json_object_get(a, "name")));
	printf("%-24s %-9s %-7s %-32s %s\n", json_string_value(json_object_get(pod, "name")),
	       json_string_value(json_object_get(pod, "status")), json_string_value(json_object_get(pod, "net")),
	       names, json_string_value(json_object_get(pod, "created")));
}

static int cmd_list(struct cli *c, int argc, char **argv)
{
	struct simple s = {0};
	int r = parse_simple(c, argc, argv, &s, "format quiet");
	if (r)
		return r;
	if (s.first_arg < argc)
		return usage(c, "pod list takes no arguments: %s", argv[s.first_arg]);
	struct keel_err err;
	struct keel_buf b = KEEL_BUF_INIT;
	if (keel_pod_list_json(c->root, &b, &err) < 0) {
		keel_buf_free(&b);
		return fail(c, &err);
	}
	if (strcmp(s.format, "json") == 0) {
		printf("%s\n", b.data);
	} else {
		json_t *all = json_loads(b.data, 0, NULL), *pod;
		size_t i;
		if (!s.quiet)
			printf("%-24s %-9s %-7s %-32s %s\n", "NAME", "STATUS", "NET", "APPS", "CREATED");
		json_array_foreach(all, i, pod)
		{
			if (s.quiet)
				printf("%s\n", json_string_value(json_object_get(pod, "name")));
			else
				print_table_row(pod);
		}
		json_decref(all);
	}
	keel_buf_free(&b);
	return 0;
}

static int one_pod(struct cli *c, int argc, char **argv, struct simple *s, const char *allowed, const char *what)
{
	int r = parse_simple(c, argc, argv, s, allowed);
	if (r)
		return r;
	if (s->first_arg >= argc)
		return usage(c, "%s needs a pod name", what);
	if (s->first_arg + 1 < argc && strcmp(what, "pod enter") != 0)
		return usage(c, "too many arguments: %s", argv[s->first_arg + 1]);
	return 0;
}

static int cmd_status(struct cli *c, int argc, char **argv)
{
	struct simple s = {0};
	int r = one_pod(c, argc, argv, &s, "format", "pod status");
	if (r)
		return r;
	struct keel_err err;
	struct keel_buf b = KEEL_BUF_INIT;
	if (keel_pod_status_json(c->root, argv[s.first_arg], &b, &err) < 0) {
		keel_buf_free(&b);
		return fail(c, &err);
	}
	if (strcmp(s.format, "json") == 0) {
		printf("%s\n", b.data);
	} else {
		json_t *pod = json_loads(b.data, 0, NULL), *a;
		size_t i;
		printf("pod %s: %s (hostname %s, net %s)\n", json_string_value(json_object_get(pod, "name")),
		       json_string_value(json_object_get(pod, "status")),
		       json_string_value(json_object_get(pod, "hostname")), json_string_value(json_object_get(pod, "net")));
		printf("%-20s %-9s %-8s %-5s %s\n", "APP", "STATUS", "PID", "EXIT", "IMAGE");
		json_array_foreach(json_object_get(pod, "apps"), i, a)
		{
			char exit_s[16] = "-";
			if (json_is_integer(json_object_get(a, "exit_code")))
				snprintf(exit_s, sizeof(exit_s), "%lld",
					 (long long)json_integer_value(json_object_get(a, "exit_code")));
			printf("%-20s %-9s %-8lld %-5s %s\n", json_string_value(json_object_get(a, "name")),
			       json_string_value(json_object_get(a, "status")),
			       (long long)json_integer_value(json_object_get(a, "pid")), exit_s,
			       json_string_value(json_object_get(a, "image")));
		}
		json_decref(pod);
	}
	keel_buf_free(&b);
	return 0;
}

static int cmd_stop(struct cli *c, int argc, char **argv)
{
	struct simple s = {0};
	int r = one_pod(c, argc, argv, &s, "timeout", "pod stop");
	if (r)
		return r;
	struct keel_err err;
	if (keel_pod_stop(c->root, argv[s.first_arg], s.timeout, &err) < 0)
		return fail(c, &err);
	return 0;
}

static int cmd_rm(struct cli *c, int argc, char **argv)
{
	struct simple s = {0};
	int r = one_pod(c, argc, argv, &s, "force", "pod rm");
	if (r)
		return r;
	struct keel_err err;
	if (keel_pod_rm(c->root, c->image_root, argv[s.first_arg], s.force, &err) < 0)
		return fail(c, &err);
	return 0;
}

static int cat_one(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	char buf[65536];
	ssize_t n;
	fflush(stdout);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (write(1, buf, (size_t)n) != n)
			break;
	close(fd);
	return 0;
}

/* An app's log: the rotated part (log.1) first, then the current one. */
static int cat_file(const char *path)
{
	char old[4096 + 4];
	snprintf(old, sizeof(old), "%s.1", path);
	int r = cat_one(old);
	return r < 0 ? r : cat_one(path);
}

static int cmd_logs(struct cli *c, int argc, char **argv)
{
	struct simple s = {0};
	int r = one_pod(c, argc, argv, &s, "app", "pod logs");
	if (r)
		return r;
	const char *pod = argv[s.first_arg];
	struct keel_err err;
	char path[4096];
	if (s.app) {
		if (keel_pod_log_path(c->root, pod, s.app, path, sizeof(path), &err) < 0)
			return fail(c, &err);
		return cat_file(path) < 0 ? 1 : 0;
	}
	char **apps = NULL;
	if (keel_pod_app_names(c->root, pod, &apps, &err) < 0)
		return fail(c, &err);
	size_t n = keel_strv_len(apps);
	for (size_t i = 0; apps && apps[i]; i++) {
		if (keel_pod_log_path(c->root, pod, apps[i], path, sizeof(path), &err) < 0)
			continue;
		if (n > 1) {
			printf("==> %s <==\n", apps[i]);
			fflush(stdout);
		}
		cat_file(path);
	}
	keel_strv_free(apps);
	return 0;
}

static int cmd_enter(struct cli *c, int argc, char **argv)
{
	struct simple s = {0};
	int r = one_pod(c, argc, argv, &s, "app", "pod enter");
	if (r)
		return r;
	int i = s.first_arg + 1;
	if (i < argc && strcmp(argv[i], "--") == 0)
		i++;
	if (i >= argc)
		return usage(c, "pod enter needs a command%s", "");
	struct keel_err err;
	int status = 0;
	if (keel_pod_enter(c->root, argv[s.first_arg], s.app, argv + i, &status, &err) < 0)
		return fail(c, &err);
	return status;
}

static void help(const char *prog)
{
	printf("Usage: %s [--root DIR] [--image-root DIR] COMMAND [FLAGS] ARGS\n\n"
	       "Commands:\n"
	       "  run [POD FLAGS] IMAGE [APP FLAGS] [--- IMAGE [APP FLAGS]]...\n"
	       "      pod flags: --name N, --hostname H, --net none|host|bridge, --volume NAME:/host/path[:ro],\n"
	       "                 --memory SIZE, --cpus N, -d/--detach, --bridge NAME, --subnet CIDR,\n"
	       "                 --user-ns, --user-ns-base ID (first host id of the 65536-id ranges),\n"
	       "                 -p/--publish HOSTPORT:PODPORT[/tcp|/udp] (--net bridge),\n"
	       "                 --log-max-size SIZE (per app log, then rotated to log.1; default 8m)\n"
	       "      app flags: --name A, --env K=V, --mount volume=NAME,target=/path[,readonly],\n"
	       "                 --user U[:G], --workdir DIR, --memory SIZE, --exec CMD [ARGS...] (last)\n"
	       "  list [--format table|json] [-q]\n"
	       "  status [--format table|json] POD\n"
	       "  stop [--timeout SECONDS] POD     SIGTERM, then SIGKILL after the timeout (default 10)\n"
	       "  rm [--force] POD\n"
	       "  logs [--app A] POD\n"
	       "  enter [--app A] POD CMD [ARGS...]\n\n"
	       "State lives under --root (default %s, or $%s); images come from the store at\n"
	       "--image-root (default $%s or %s).\n",
	       prog, KEEL_POD_DEFAULT_ROOT, POD_ROOT_ENV, KEEL_IMAGE_ROOT_ENV, KEEL_IMAGE_DEFAULT_ROOT);
}

int keel_pod_cli(int argc, char **argv)
{
	struct cli c = {.prog = argc > 0 ? argv[0] : "pod"};
	const char *env = getenv(POD_ROOT_ENV);
	if (env && *env)
		c.root = env;
	int i = 1;
	bool missing = false;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (is_flag(argv[i], "help") || is_flag(argv[i], "h")) {
			help(c.prog);
			return 0;
		}
		if (!common_flag(&c, argv, argc, &i, &missing))
			return usage(&c, missing ? "flag needs an argument: %s" : "unknown flag %s", argv[i]);
	}
	if (i >= argc) {
		help(c.prog);
		return 2;
	}
	static const struct {
		const char *name;
		int (*fn)(struct cli *, int, char **);
	} cmds[] = {
		{"run", cmd_run}, {"list", cmd_list}, {"ls", cmd_list}, {"status", cmd_status},
		{"stop", cmd_stop}, {"rm", cmd_rm}, {"logs", cmd_logs}, {"enter", cmd_enter},
	};
	if (strcmp(argv[i], "help") == 0) {
		help(c.prog);
		return 0;
	}
	for (size_t k = 0; k < KEEL_ARRAY_SIZE(cmds); k++)
		if (strcmp(argv[i], cmds[k].name) == 0)
			return cmds[k].fn(&c, argc - i, argv + i);
	return usage(&c, "unknown command %s", argv[i]);
}
