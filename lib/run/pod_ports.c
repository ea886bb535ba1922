/* `pod run --publish HOSTPORT:PODPORT[/tcp|/udp]`: DNAT from the host's addresses (127.0.0.1
 * too) to a bridge pod's address, in an nftables table of keel's own (`inet keel-pod`, through
 * libnftables). Nothing else of the ruleset is read or changed.
 *
 *   map publish    inet_proto . host port : pod address . pod port   (one element per port)
 *   set published  pod addresses with published ports
 *   set bridges    bridges whose route_localnet keel-pod turned on
 *   chain prerouting / output (nat): local destination -> dnat through @publish
 *   chain postrouting (nat): from 127.0.0.0/8, DNATed, to @published -> masquerade
 *   chain localnet (filter, prerouting, before NAT): from @bridges to 127.0.0.0/8 -> drop
 *
 * Connections to 127.0.0.1 are routed out of the bridge with their loopback source, which the
 * kernel allows only with route_localnet on the outgoing interface; the masquerade then gives
 * them the bridge's address. route_localnet also lets packets from the bridge towards
 * 127.0.0.0/8 in, which the localnet chain drops (kube-proxy's CVE-2020-8558 guard).
 *
 * Elements are removed by pod address (keel__pod_ports_remove, called where the address is
 * freed), so a pod whose keel-pod was killed loses its ports at `pod rm`; the table goes with
 * its last element. A global lock file serialises all of this between pods of every --root. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <nftables/libnftables.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/str.h"
#include "run/pod-internal.h"

#define TABLE "inet keel-pod"
#define LOCK_PATH "/run/lock/keel-pod-nft.lock"

int keel__pod_ports_check(const struct keel_pod_opts *o, struct keel_err *err)
{
	if (o->n_ports && o->net != KEEL_POD_NET_BRIDGE)
		return keel_err_set(err, -EINVAL, "--publish needs --net bridge");
	for (size_t i = 0; i < o->n_ports; i++)
		for (size_t k = 0; k < i; k++)
			if (o->ports[k].host == o->ports[i].host && o->ports[k].udp == o->ports[i].udp)
				return keel_err_set(err, -EINVAL, "host port %u/%s is published twice",
						    o->ports[i].host, o->ports[i].udp ? "udp" : "tcp");
	return 0;
}

/* ---- libnftables ---- */

struct nft {
	struct nft_ctx *ctx;
};

static int nft_open(struct nft *n, bool json, struct keel_err *err)
{
	n->ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	if (!n->ctx)
		return keel_err_set(err, -ENOMEM, "nftables: cannot make a context");
	if (nft_ctx_buffer_output(n->ctx) < 0 || nft_ctx_buffer_error(n->ctx) < 0) {
		nft_ctx_free(n->ctx);
		return keel_err_set(err, -ENOMEM, "nftables: cannot buffer output");
	}
	if (json)
		nft_ctx_output_set_flags(n->ctx, NFT_CTX_OUTPUT_JSON);
	return 0;
}

/* Run cmd; on failure the first line of nftables' message goes into err. */
static int nft_run(struct nft *n, const char *cmd, struct keel_err *err)
{
	if (nft_run_cmd_from_buffer(n->ctx, cmd) == 0)
		return 0;
	if (err) {
		const char *msg = nft_ctx_get_error_buffer(n->ctx);
		size_t len = msg ? strcspn(msg, "\n") : 0;
		keel_err_set(err, -KEEL_EBASE, "nftables: %.*s", (int)len, len ? msg : "command failed");
	}
	return -KEEL_EBASE;
}

static int lock_global(struct keel_err *err)
{
	int fd = open(LOCK_PATH, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 && errno == ENOENT && mkdir("/run/lock", 01777) == 0) /* FHS; Debian has it */
		fd = open(LOCK_PATH, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return keel_err_errno(err, -errno, "opening %s", LOCK_PATH);
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			int e = keel_err_errno(err, -errno, "locking %s", LOCK_PATH);
			close(fd);
			return e;
		}
	}
	return fd;
}

static const char table_def[] =
	"table " TABLE " {\n"
	"  map publish { type inet_proto . inet_service : ipv4_addr . inet_service; }\n"
	"  set published { type ipv4_addr; }\n"
	"  set bridges { type ifname; }\n"
	"  chain prerouting { type nat hook prerouting priority dstnat; policy accept;\n"
	"    meta nfproto ipv4 fib daddr type local dnat ip to meta l4proto . th dport map @publish; }\n"
	"  chain output { type nat hook output priority -100; policy accept;\n"
	"    meta nfproto ipv4 fib daddr type local dnat ip to meta l4proto . th dport map @publish; }\n"
	"  chain postrouting { type nat hook postrouting priority srcnat; policy accept;\n"
	"    ip saddr 127.0.0.0/8 ip daddr @published ct status dnat masquerade; }\n"
	"  chain localnet { type filter hook prerouting priority -110; policy accept;\n"
	"    iifname @bridges ip daddr 127.0.0.0/8 drop; }\n"
	"}\n";

/* The elements of a set or map of the table as JSON (NULL when the table does not exist). */
static json_t *list_elems(struct nft *n, const char *kind, const char *name)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "list %s " TABLE " %s", kind, name);
	if (nft_run(n, cmd, NULL) < 0)
		return NULL;
	json_t *doc = json_loads(nft_ctx_get_output_buffer(n->ctx), 0, NULL);
	json_t *items = json_object_get(doc, "nftables"), *it, *elem = NULL;
	size_t i;
	json_array_foreach(items, i, it) {
		json_t *obj = json_object_get(it, kind);
		if (obj)
			elem = json_object_get(obj, "elem");
	}
	json_t *ret = elem ? json_incref(elem) : json_array();
	json_decref(doc);
	return ret;
}

/* One element of @publish: its protocol, host port, address and pod port. */
static bool publish_elem(json_t *e, const char **proto, json_int_t *hport, const char **ip, json_int_t *pport)
{
	json_t *k = json_object_get(json_array_get(e, 0), "concat");
	json_t *v = json_object_get(json_array_get(e, 1), "concat");
	*proto = json_string_value(json_array_get(k, 0));
	*hport = json_integer_value(json_array_get(k, 1));
	*ip = json_string_value(json_array_get(v, 0));
	*pport = json_integer_value(json_array_get(v, 1));
	return *proto && *ip;
}

static bool sysctl_localnet(const char *ifname, const char *value)
{
	char path[128], cur[8] = "";
	snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s/route_localnet", ifname);
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return false;
	bool ok = true;
	if (!value) { /* query: on? */
		ok = read(fd, cur, sizeof(cur) - 1) > 0 && cur[0] == '1';
	} else if (write(fd, value, strlen(value)) < 0) {
		ok = false;
	}
	close(fd);
	return ok;
}

/* Is anything on the host bound to the port already? DNAT would hide it. */
static bool port_in_use(const struct keel_pod_port *pt)
{
	int s = socket(AF_INET, (pt->udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
	if (s < 0)
		return false;
	int one = 1;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(pt->host)};
	bool used = bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno == EADDRINUSE;
	close(s);
	return used;
}

int keel__pod_ports_add(const struct keel__pod_ctx *p, struct keel_err *err)
{
	const struct keel_pod_opts *o = p->o;
	if (!o->n_ports)
		return 0;
	int lock = lock_global(err);
	if (lock < 0)
		return lock;
	struct nft n;
	struct keel_buf b = KEEL_BUF_INIT;
	json_t *elems = NULL;
	int r = nft_open(&n, true, err);
	if (r < 0) {
		close(lock);
		return r;
	}
	if (!(elems = list_elems(&n, "map", "publish"))) {
		if ((r = nft_run(&n, table_def, err)) < 0) {
			keel_err_wrap(err, "creating table %s", TABLE);
			goto out;
		}
		elems = json_array();
	}
	for (size_t i = 0; i < o->n_ports; i++) {
		const struct keel_pod_port *pt = &o->ports[i];
		const char *proto = pt->udp ? "udp" : "tcp", *ep, *eip;
		json_int_t eh, epp;
		size_t k;
		json_t *e;
		json_array_foreach(elems, k, e) {
			if (publish_elem(e, &ep, &eh, &eip, &epp) && strcmp(ep, proto) == 0 && eh == pt->host) {
				r = keel_err_set(err, -EADDRINUSE, "host port %u/%s is already published (to %s:%lld)",
						 pt->host, proto, eip, (long long)epp);
				goto out;
			}
		}
		if (port_in_use(pt)) {
			r = keel_err_set(err, -EADDRINUSE, "host port %u/%s is in use on the host", pt->host, proto);
			goto out;
		}
	}
	/* The bridge's route_localnet: recorded in @bridges before it is turned on, so that the
	 * drop rule is in place first and the table's removal turns it off again. */
	bool localnet = !sysctl_localnet(p->bridge, NULL);
	r = keel_buf_printf(&b, "add element " TABLE " published { %s }\n", p->ip);
	if (localnet && r >= 0)
		r = keel_buf_printf(&b, "add element " TABLE " bridges { \"%s\" }\n", p->bridge);
	for (size_t i = 0; i < o->n_ports && r >= 0; i++)
		r = keel_buf_printf(&b, "create element " TABLE " publish { %s . %u : %s . %u }\n",
				    o->ports[i].udp ? "udp" : "tcp", o->ports[i].host, p->ip, o->ports[i].pod);
	if (r < 0) {
		r = keel_err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	if ((r = nft_run(&n, b.data, err)) < 0) {
		keel_err_wrap(err, "publishing ports");
		goto out;
	}
	if (localnet && !sysctl_localnet(p->bridge, "1"))
		r = keel_err_errno(err, -errno, "setting route_localnet on %s", p->bridge);
out:
	json_decref(elems);
	keel_buf_free(&b);
	nft_ctx_free(n.ctx);
	close(lock);
	return r;
}

int keel__pod_ports_remove(const char *ip, struct keel_err *err)
{
	int lock = lock_global(err);
	if (lock < 0)
		return lock;
	struct nft n;
	struct keel_buf b = KEEL_BUF_INIT;
	json_t *elems = NULL, *published = NULL, *bridges = NULL;
	int r = nft_open(&n, true, err);
	if (r < 0) {
		close(lock);
		return r;
	}
	if (!(elems = list_elems(&n, "map", "publish")))
		goto out; /* no table: nothing was ever published, or it is gone already */
	published = list_elems(&n, "set", "published");
	bridges = list_elems(&n, "set", "bridges");
	size_t i, left = 0;
	json_t *e;
	json_array_foreach(elems, i, e) {
		const char *proto, *eip;
		json_int_t h, pp;
		if (!publish_elem(e, &proto, &h, &eip, &pp))
			continue;
		if (strcmp(eip, ip) == 0)
			r = keel_buf_printf(&b, "delete element " TABLE " publish { %s . %lld }\n", proto, (long long)h);
		else
			left++;
		if (r < 0)
			break;
	}
	json_array_foreach(published, i, e)
		if (r >= 0 && json_is_string(e) && strcmp(json_string_value(e), ip) == 0)
			r = keel_buf_printf(&b, "delete element " TABLE " published { %s }\n", ip);
	if (r < 0) {
		r = keel_err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	if (left == 0) {
		/* The last published port: the table goes, and the bridges get their
		 * route_localnet back (drop rule last, so it is never off while it is on). */
		json_array_foreach(bridges, i, e)
			if (json_is_string(e))
				sysctl_localnet(json_string_value(e), "0");
		keel_buf_free(&b);
		r = nft_run(&n, "delete table " TABLE "\n", err);
	} else if (b.len) {
		r = nft_run(&n, b.data, err);
	}
	if (r < 0)
		keel_err_wrap(err, "removing the published ports of %s", ip);
out:
	json_decref(elems);
	json_decref(published);
	json_decref(bridges);
	keel_buf_free(&b);
	nft_ctx_free(n.ctx);
	close(lock);
	return r;
}
