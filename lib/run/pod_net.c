/* A pod's network beyond its namespace: --net bridge (a Linux bridge in the host's network
 * namespace, a veth pair per pod with its inner end as eth0 in the pod's namespace, an address
 * from the bridge's subnet and a default route via the bridge), done over rtnetlink with
 * libmnl; and the /etc/hosts and /etc/resolv.conf every app gets read-only from the pod's
 * directory.
 *
 * Addresses are allocated under <root>/.net/<bridge>/: one file per address in use, named by
 * the address and holding "<pod> <veth>", made with O_EXCL under <root>/.net/lock. Removal
 * works from those files, so a pod that failed half way through its network is cleaned up the
 * same way as one that ran. The bridge goes when its last address is freed and no port is left
 * on it. No NAT: pods reach each other and the bridge's address, nothing beyond. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <net/if.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "run/pod-internal.h"

#define DEFAULT_BRIDGE "keel-pod0"
#define DEFAULT_SUBNET "10.88.0.0/16"

/* ---- rtnetlink ---- */

struct nl {
	struct mnl_socket *sock;
	unsigned seq, portid;
	char buf[8192];
};

static int nl_open(struct nl *n)
{
	n->sock = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!n->sock)
		return -errno;
	if (mnl_socket_bind(n->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
		int r = -errno;
		mnl_socket_close(n->sock);
		n->sock = NULL;
		return r;
	}
	n->portid = mnl_socket_get_portid(n->sock);
	n->seq = (unsigned)time(NULL);
	return 0;
}

static void nl_close(struct nl *n)
{
	if (n->sock)
		mnl_socket_close(n->sock);
	n->sock = NULL;
}

static struct nlmsghdr *nl_msg(struct nl *n, uint16_t type, uint16_t flags)
{
	struct nlmsghdr *h = mnl_nlmsg_put_header(n->buf);
	h->nlmsg_type = type;
	h->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	h->nlmsg_seq = ++n->seq;
	return h;
}

/* Send one request and wait for its acknowledgement: 0 or -errno from the kernel. */
static int nl_talk(struct nl *n, struct nlmsghdr *h)
{
	if (mnl_socket_sendto(n->sock, h, h->nlmsg_len) < 0)
		return -errno;
	unsigned seq = h->nlmsg_seq;
	for (;;) {
		ssize_t k = mnl_socket_recvfrom(n->sock, n->buf, sizeof(n->buf));
		if (k < 0)
			return -errno;
		int r = mnl_cb_run(n->buf, (size_t)k, seq, n->portid, NULL, NULL);
		if (r <= MNL_CB_STOP)
			return r < 0 ? -errno : 0;
	}
}

static int link_set(struct nl *n, const char *ifname, int master, bool up)
{
	struct nlmsghdr *h = nl_msg(n, RTM_NEWLINK, 0);
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(h, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_change = up ? IFF_UP : 0;
	ifi->ifi_flags = up ? IFF_UP : 0;
	mnl_attr_put_strz(h, IFLA_IFNAME, ifname);
	if (master > 0)
		mnl_attr_put_u32(h, IFLA_MASTER, (uint32_t)master);
	return nl_talk(n, h);
}

static int link_del(struct nl *n, const char *ifname)
{
	struct nlmsghdr *h = nl_msg(n, RTM_DELLINK, 0);
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(h, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(h, IFLA_IFNAME, ifname);
	return nl_talk(n, h);
}

static int bridge_add(struct nl *n, const char *name)
{
	struct nlmsghdr *h = nl_msg(n, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(h, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(h, IFLA_IFNAME, name);
	struct nlattr *li = mnl_attr_nest_start(h, IFLA_LINKINFO);
	mnl_attr_put_strz(h, IFLA_INFO_KIND, "bridge");
	mnl_attr_nest_end(h, li);
	return nl_talk(n, h);
}

/* A veth pair: host_name here, peer_name in the namespace netns_fd. */
static int veth_add(struct nl *n, const char *host_name, const char *peer_name, int netns_fd)
{
	struct nlmsghdr *h = nl_msg(n, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(h, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(h, IFLA_IFNAME, host_name);
	struct nlattr *li = mnl_attr_nest_start(h, IFLA_LINKINFO);
	mnl_attr_put_strz(h, IFLA_INFO_KIND, "veth");
	struct nlattr *data = mnl_attr_nest_start(h, IFLA_INFO_DATA);
	struct nlattr *peer = mnl_attr_nest_start(h, VETH_INFO_PEER);
	struct ifinfomsg *pifi = mnl_nlmsg_put_extra_header(h, sizeof(*pifi));
	pifi->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(h, IFLA_IFNAME, peer_name);
	mnl_attr_put_u32(h, IFLA_NET_NS_FD, (uint32_t)netns_fd);
	mnl_attr_nest_end(h, peer);
	mnl_attr_nest_end(h, data);
	mnl_attr_nest_end(h, li);
	return nl_talk(n, h);
}

static int addr_add(struct nl *n, int ifindex, struct in_addr a, unsigned prefix)
{
	struct nlmsghdr *h = nl_msg(n, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
	struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(h, sizeof(*ifa));
	ifa->ifa_family = AF_INET;
	ifa->ifa_prefixlen = (unsigned char)prefix;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	ifa->ifa_index = (unsigned)ifindex;
	mnl_attr_put(h, IFA_LOCAL, sizeof(a), &a);
	mnl_attr_put(h, IFA_ADDRESS, sizeof(a), &a);
	return nl_talk(n, h);
}

static int default_route(struct nl *n, int ifindex, struct in_addr gw)
{
	struct nlmsghdr *h = nl_msg(n, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
	struct rtmsg *rt = mnl_nlmsg_put_extra_header(h, sizeof(*rt));
	rt->rtm_family = AF_INET;
	rt->rtm_table = RT_TABLE_MAIN;
	rt->rtm_protocol = RTPROT_BOOT;
	rt->rtm_scope = RT_SCOPE_UNIVERSE;
	rt->rtm_type = RTN_UNICAST;
	mnl_attr_put(h, RTA_GATEWAY, sizeof(gw), &gw);
	mnl_attr_put_u32(h, RTA_OIF, (uint32_t)ifindex);
	return nl_talk(n, h);
}

/* ---- options ---- */

struct subnet {
	uint32_t net; /* host order */
	unsigned prefix;
};

static bool valid_ifname(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= IFNAMSIZ)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
		      c == '_' || c == '.'))
			return false;
	}
	return strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

static int parse_subnet(const char *s, struct subnet *sn, struct keel_err *err)
{
	char addr[32];
	const char *slash = strchr(s, '/');
	char *end;
	if (!slash || (size_t)(slash - s) >= sizeof(addr))
		goto bad;
	snprintf(addr, sizeof(addr), "%.*s", (int)(slash - s), s);
	struct in_addr a;
	if (inet_pton(AF_INET, addr, &a) != 1)
		goto bad;
	errno = 0;
	long p = strtol(slash + 1, &end, 10);
	if (errno || *end || end == slash + 1 || p < 8 || p > 29)
		goto bad;
	sn->prefix = (unsigned)p;
	uint32_t mask = 0xffffffffu << (32 - p);
	sn->net = ntohl(a.s_addr) & mask;
	return 0;
bad:
	return keel_err_set(err, -EINVAL, "invalid --subnet \"%s\": use an IPv4 network like %s (prefix 8 to 29)",
			    s, DEFAULT_SUBNET);
}

static int net_opts(const struct keel_pod_opts *o, const char **bridge, struct subnet *sn, struct keel_err *err)
{
	*bridge = o->bridge ? o->bridge : DEFAULT_BRIDGE;
	if (!valid_ifname(*bridge))
		return keel_err_set(err, -EINVAL, "invalid --bridge \"%s\": an interface name of at most %d "
				    "letters, digits, -, _ or .", *bridge, IFNAMSIZ - 1);
	return parse_subnet(o->subnet ? o->subnet : DEFAULT_SUBNET, sn, err);
}

int keel__pod_net_check(const struct keel_pod_opts *o, struct keel_err *err)
{
	const char *bridge;
	struct subnet sn;
	if (o->net != KEEL_POD_NET_BRIDGE) {
		if (o->bridge || o->subnet)
			return keel_err_set(err, -EINVAL, "--bridge and --subnet need --net bridge");
		return 0;
	}
	return net_opts(o, &bridge, &sn, err);
}

/* ---- address allocation ---- */

static void root_of(const struct keel__pod_ctx *p, char *out, size_t size)
{
	snprintf(out, size, "%s", p->o->root ? p->o->root : KEEL_POD_DEFAULT_ROOT);
}

static int net_lock(const char *root, struct keel_err *err)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/.net", root);
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return keel_err_errno(err, -errno, "creating %s", path);
	snprintf(path, sizeof(path), "%s/.net/lock", root);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return keel_err_errno(err, -errno, "opening %s", path);
	while (flock(fd, LOCK_EX) < 0)
		if (errno != EINTR) {
			int r = -errno;
			close(fd);
			return keel_err_errno(err, r, "locking %s", path);
		}
	return fd;
}

static void ip_str(uint32_t host_order, char *out, size_t size)
{
	struct in_addr a = {.s_addr = htonl(host_order)};
	inet_ntop(AF_INET, &a, out, (socklen_t)size);
}

/* Claim the lowest free address (network + 2 on; + 1 is the bridge's): its file holds the pod
 * and the veth's host name, written before anything is made so that removal finds it. */
static int allocate(const char *root, const char *bridge, const struct subnet *sn, const char *pod,
		    uint32_t *ret, char *veth, struct keel_err *err)
{
	char dir[PATH_MAX + 32], path[PATH_MAX + 64], ip[INET_ADDRSTRLEN];
	snprintf(dir, sizeof(dir), "%s/.net/%s", root, bridge);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return keel_err_errno(err, -errno, "creating %s", dir);
	uint32_t size = 1u << (32 - sn->prefix);
	for (uint32_t off = 2; off < size - 1; off++) {
		uint32_t a = sn->net + off;
		ip_str(a, ip, sizeof(ip));
		snprintf(path, sizeof(path), "%s/%s", dir, ip);
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0) {
			if (errno == EEXIST)
				continue;
			return keel_err_errno(err, -errno, "creating %s", path);
		}
		snprintf(veth, IFNAMSIZ, "kv%08x", a);
		char text[KEEL_POD_NAME_MAX + IFNAMSIZ + 4];
		int n = snprintf(text, sizeof(text), "%s %s\n", pod, veth);
		ssize_t w = write(fd, text, (size_t)n);
		int e = errno;
		close(fd);
		if (w != n) {
			unlink(path);
			return keel_err_errno(err, w < 0 ? -e : -EIO, "writing %s", path);
		}
		*ret = a;
		return 0;
	}
	return keel_err_set(err, -EADDRNOTAVAIL, "no free address left in bridge %s's subnet", bridge);
}

/* Ports still on the bridge (from sysfs); -1 when it cannot tell. */
static int bridge_ports(const char *bridge)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "/sys/class/net/%s/brif", bridge);
	DIR *d = opendir(path);
	if (!d)
		return errno == ENOENT ? 0 : -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static bool dir_empty(const char *path)
{
	DIR *d = opendir(path);
	if (!d)
		return true;
	struct dirent *e;
	bool empty = true;
	while (empty && (e = readdir(d)))
		empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
	closedir(d);
	return empty;
}

/* ---- setup ---- */

static int in_netns(const char *nspath, struct nl *n, struct keel_err *err)
{
	int own = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	int fd = open(nspath, O_RDONLY | O_CLOEXEC);
	int r = 0;
	if (own < 0 || fd < 0)
		r = keel_err_errno(err, -errno, "opening %s", own < 0 ? "/proc/self/ns/net" : nspath);
	else if (setns(fd, CLONE_NEWNET) < 0)
		r = keel_err_errno(err, -errno, "joining %s", nspath);
	else {
		/* A netlink socket stays in the namespace it was made in. */
		if ((r = nl_open(n)) < 0)
			keel_err_errno(err, r, "netlink socket in the pod's network namespace");
		if (setns(own, CLONE_NEWNET) < 0)
			keel_assert(!"cannot return to our own network namespace");
	}
	if (own >= 0)
		close(own);
	if (fd >= 0)
		close(fd);
	return r;
}

int keel__pod_net_setup(struct keel__pod_ctx *p, struct keel_err *err)
{
	const char *bridge;
	struct subnet sn;
	char root[PATH_MAX], nspath[PATH_MAX + 32], veth[IFNAMSIZ];
	int r = net_opts(p->o, &bridge, &sn, err);
	if (r < 0)
		return r;
	root_of(p, root, sizeof(root));
	snprintf(nspath, sizeof(nspath), "%s/ns/net", p->dir);
	struct nl host = {0}, pod = {0};
	int lock = net_lock(root, err);
	if (lock < 0)
		return lock;
	uint32_t addr = 0;
	if ((r = allocate(root, bridge, &sn, p->name, &addr, veth, err)) < 0)
		goto out;
	if ((r = nl_open(&host)) < 0) {
		keel_err_errno(err, r, "netlink socket");
		goto out;
	}
	struct in_addr gw = {.s_addr = htonl(sn.net + 1)}, me = {.s_addr = htonl(addr)};
	/* Made when missing; an existing one gets the subnet's first address and is set up too
	 * (a pod that failed between creating and configuring it left it bare). */
	r = bridge_add(&host, bridge);
	if (r < 0 && r != -EEXIST) {
		keel_err_errno(err, r, "creating bridge %s", bridge);
		goto out;
	}
	int bi = (int)if_nametoindex(bridge);
	if (bi <= 0) {
		r = keel_err_errno(err, -ENODEV, "bridge %s", bridge);
		goto out;
	}
	if (((r = addr_add(&host, bi, gw, sn.prefix)) < 0 && r != -EEXIST) ||
	    (r = link_set(&host, bridge, 0, true)) < 0) {
		keel_err_errno(err, r, "setting up bridge %s", bridge);
		goto out;
	}
	int nsfd = open(nspath, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0) {
		r = keel_err_errno(err, -errno, "opening %s", nspath);
		goto out;
	}
	r = veth_add(&host, veth, "eth0", nsfd);
	close(nsfd);
	if (r < 0) {
		keel_err_errno(err, r, "creating the veth pair %s/eth0", veth);
		goto out;
	}
	if ((r = link_set(&host, veth, bi, true)) < 0) {
		keel_err_errno(err, r, "attaching %s to bridge %s", veth, bridge);
		goto out;
	}
	if ((r = in_netns(nspath, &pod, err)) < 0)
		goto out;
	/* eth0's index inside: a netlink request by name works in the socket's namespace. */
	struct nlmsghdr *h = nl_msg(&pod, RTM_NEWLINK, 0);
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(h, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_change = ifi->ifi_flags = IFF_UP;
	mnl_attr_put_strz(h, IFLA_IFNAME, "eth0");
	if ((r = nl_talk(&pod, h)) < 0) {
		keel_err_errno(err, r, "bringing eth0 up in the pod");
		goto out;
	}
	int eth0 = keel__pod_ifindex_in(nspath, "eth0");
	if (eth0 <= 0) {
		r = keel_err_errno(err, eth0 < 0 ? eth0 : -ENODEV, "eth0 in the pod");
		goto out;
	}
	if ((r = addr_add(&pod, eth0, me, sn.prefix)) < 0 || (r = default_route(&pod, eth0, gw)) < 0) {
		keel_err_errno(err, r, "configuring eth0 in the pod");
		goto out;
	}
	ip_str(addr, p->ip, sizeof(p->ip));
	snprintf(p->veth, sizeof(p->veth), "%s", veth);
	snprintf(p->bridge, sizeof(p->bridge), "%s", bridge);
out:
	nl_close(&pod);
	nl_close(&host);
	close(lock);
	return r;
}

int keel__pod_ifindex_in(const char *nspath, const char *ifname)
{
	int own = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	int fd = open(nspath, O_RDONLY | O_CLOEXEC);
	int r = -ENOENT;
	if (own >= 0 && fd >= 0 && setns(fd, CLONE_NEWNET) == 0) {
		r = (int)if_nametoindex(ifname);
		if (r == 0)
			r = -errno;
		if (setns(own, CLONE_NEWNET) < 0)
			keel_assert(!"cannot return to our own network namespace");
	} else {
		r = -errno;
	}
	if (own >= 0)
		close(own);
	if (fd >= 0)
		close(fd);
	return r;
}

/* ---- teardown ---- */

int keel__pod_net_teardown(const char *root, const char *pod, struct keel_err *err)
{
	char dir[PATH_MAX], sub[PATH_MAX + 300], path[PATH_MAX + 600];
	snprintf(dir, sizeof(dir), "%s/.net", root);
	DIR *d = opendir(dir);
	if (!d)
		return 0; /* no pod of this root ever had a bridge */
	int lock = net_lock(root, err);
	if (lock < 0) {
		closedir(d);
		return lock;
	}
	struct nl n = {0};
	int first = 0, r;
	struct dirent *b;
	while ((b = readdir(d))) {
		if (b->d_name[0] == '.' || !valid_ifname(b->d_name))
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", dir, b->d_name);
		DIR *ad = opendir(sub);
		struct dirent *a;
		bool freed = false;
		while (ad && (a = readdir(ad))) {
			if (a->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", sub, a->d_name);
			char text[128] = "", owner[KEEL_POD_NAME_MAX + 1] = "", veth[IFNAMSIZ] = "";
			int fd = open(path, O_RDONLY | O_CLOEXEC);
			ssize_t k = fd >= 0 ? read(fd, text, sizeof(text) - 1) : -1;
			if (fd >= 0)
				close(fd);
			if (k <= 0 || sscanf(text, "%63s %15s", owner, veth) != 2 || strcmp(owner, pod) != 0)
				continue;
			/* Ports first: they point at the address that is about to be freed. */
			if ((r = keel__pod_ports_remove(a->d_name, err)) < 0) {
				first = first ? first : r;
				continue;
			}
			if (!n.sock && (r = nl_open(&n)) < 0) {
				first = first ? first : keel_err_errno(err, r, "netlink socket");
				continue;
			}
			r = link_del(&n, veth);
			if (r < 0 && r != -ENODEV) {
				first = first ? first : keel_err_errno(err, r, "removing %s", veth);
				continue;
			}
			if (unlink(path) < 0 && !first)
				first = keel_err_errno(err, -errno, "removing %s", path);
			freed = true;
		}
		if (ad)
			closedir(ad);
		/* The bridge goes with its last pod (under the lock no pod is between allocating
		 * and attaching); one with ports this root does not know of stays. */
		if (freed && dir_empty(sub) && bridge_ports(b->d_name) == 0) {
			r = n.sock ? link_del(&n, b->d_name) : 0;
			if (r < 0 && r != -ENODEV && !first)
				first = keel_err_errno(err, r, "removing bridge %s", b->d_name);
			rmdir(sub);
		}
	}
	closedir(d);
	nl_close(&n);
	close(lock);
	return first;
}

/* ---- /etc/hosts and /etc/resolv.conf ---- */

static int write_file(const char *path, const char *text, size_t len, struct keel_err *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return keel_err_errno(err, -errno, "creating %s", path);
	ssize_t w = write(fd, text, len);
	int e = errno;
	close(fd);
	if (w != (ssize_t)len)
		return keel_err_errno(err, w < 0 ? -e : -EIO, "writing %s", path);
	return 0;
}

int keel__pod_etc_files(const struct keel__pod_ctx *p, const char *hostname, struct keel_err *err)
{
	char path[PATH_MAX + 32], text[1024];
	snprintf(path, sizeof(path), "%s/etc", p->dir);
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return keel_err_errno(err, -errno, "creating %s", path);
	/* The pod's own name resolves to its address on the bridge, else to a loopback one. */
	int n = snprintf(text, sizeof(text),
			 "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n%s\t%s\n",
			 p->ip[0] ? p->ip : "127.0.1.1", hostname);
	snprintf(path, sizeof(path), "%s/etc/hosts", p->dir);
	int r = write_file(path, text, (size_t)n, err);
	if (r < 0 || p->o->net == KEEL_POD_NET_NONE)
		return r;
	/* A copy of the host's (taken now: later changes on the host are not seen). */
	snprintf(path, sizeof(path), "%s/etc/resolv.conf", p->dir);
	static char conf[65536];
	size_t len = 0;
	int fd = open("/etc/resolv.conf", O_RDONLY | O_CLOEXEC);
	while (fd >= 0 && len < sizeof(conf)) {
		ssize_t k = read(fd, conf + len, sizeof(conf) - len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		len += (size_t)k;
	}
	if (fd >= 0)
		close(fd);
	return write_file(path, conf, len, err);
}
