/* Parsers of [Socket] and [Timer] (systemd.socket(5), systemd.timer(5)). */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "base/mem.h"
#include "base/str.h"
#include "init/unit-internal.h"
#include "init/words.h"

bool keel__fdname_is_valid(const char *s);

/* NETLINK_* numbers by name (linux/netlink.h), as systemd's netlink_family table has them. */
static const struct {
	const char *name;
	uint16_t family;
} netlink_families[] = {
	{"route", 0}, {"firewall", 3}, {"inet-diag", 4}, {"nflog", 5}, {"xfrm", 6},
	{"selinux", 7}, {"iscsi", 8}, {"audit", 9}, {"fib-lookup", 10}, {"connector", 11},
	{"netfilter", 12}, {"ip6-fw", 13}, {"dnrtmsg", 14}, {"kobject-uevent", 15},
	{"generic", 16}, {"scsitransport", 18}, {"ecryptfs", 19}, {"rdma", 20}, {"crypto", 21},
	{"smc", 22},
};

/* "FAMILY [GROUP]" */
static int parse_netlink(const char *s, struct keel_listen *l)
{
	char *word;
	int r = keel_extract_word(&s, &word, NULL, 0);
	if (r < 0)
		return r;
	if (r == 0)
		return -EINVAL;
	int family = -1;
	for (size_t i = 0; i < KEEL_ARRAY_SIZE(netlink_families); i++)
		if (strcmp(word, netlink_families[i].name) == 0)
			family = netlink_families[i].family;
	if (family < 0) {
		uint64_t n;
		if (keel_safe_atou64(word, &n) == 0 && n <= 31)
			family = (int)n;
	}
	keel_free(word);
	if (family < 0)
		return -EINVAL;
	uint64_t group = 0;
	if (s && *s && (r = keel_safe_atou64(s, &group)) < 0)
		return r;
	if (group > UINT32_MAX)
		return -ERANGE;
	l->netlink_family = (uint16_t)family;
	l->netlink_group = (uint32_t)group;
	return 0;
}

int keel__parse_listen(struct keel__pctx *c, const char *v, void *data, int ltype)
{
	struct keel_socket *s = data;
	if (!*v) {
		keel__listen_clear(c->u->pool, s);
		return 0;
	}
	if (s->n_listen == UINT16_MAX) {
		keel__pwarn(c, KEEL_DIAG_WARNING, "Too many listening sockets, ignoring: %s", v);
		return 0;
	}
	char *k;
	int r = keel__expand_or_ignore(c, KEEL_SPEC_FULL, v, PATH_MAX, &k);
	if (r != 0)
		return r < 0 ? r : 0;
	struct keel_listen l = {.kind = (uint8_t)ltype};
	bool is_socket = ltype == KEEL_LISTEN_STREAM || ltype == KEEL_LISTEN_DATAGRAM ||
			 ltype == KEEL_LISTEN_SEQPACKET;
	bool has_path;
	if (ltype == KEEL_LISTEN_NETLINK) {
		r = parse_netlink(k, &l);
		if (r == -ENOMEM) {
			keel_free(k);
			return r;
		}
		if (r < 0) {
			keel__pwarn(c, KEEL_DIAG_WARNING, "Failed to parse address value in '%s', ignoring: %s", k,
				    strerror(-r));
			keel_free(k);
			return 0;
		}
		has_path = false;
	} else if (is_socket) {
		r = keel_sockaddr_parse(k, &l.addr);
		if (r == -EAFNOSUPPORT) {
			keel__pwarn(c, KEEL_DIAG_NOTICE, "%s= address family is not supported by keel-init, ignoring: %s",
				    c->key, k);
			keel_free(k);
			return 0;
		}
		if (r < 0) {
			keel__pwarn(c, KEEL_DIAG_WARNING, "Failed to parse address value in '%s', ignoring: %s", k,
				    strerror(-r));
			keel_free(k);
			return 0;
		}
		if (ltype == KEEL_LISTEN_SEQPACKET && l.addr.kind != KEEL_SOCKADDR_UNIX &&
		    l.addr.kind != KEEL_SOCKADDR_ABSTRACT) {
			keel__pwarn(c, KEEL_DIAG_WARNING, "Address family not supported, ignoring: %s", v);
			keel_free(k);
			return 0;
		}
		has_path = l.addr.kind == KEEL_SOCKADDR_UNIX || l.addr.kind == KEEL_SOCKADDR_ABSTRACT;
	} else {
		if (keel__path_check(c, k, true, false) < 0) {
			keel_free(k);
			return 0;
		}
		has_path = true;
	}
	if (has_path && !(l.path = keel_pool_intern(c->u->pool, k))) {
		keel_free(k);
		return -ENOMEM;
	}
	keel_free(k);
	struct keel_listen *nl = keel_reallocarray(s->listen, s->n_listen + 1u, sizeof(*nl));
	if (!nl) {
		keel_pool_unref(c->u->pool, l.path);
		return -ENOMEM;
	}
	s->listen = nl;
	s->listen[s->n_listen++] = l;
	return 0;
}

int keel__parse_socket_service(struct keel__pctx *c, const char *v, void *data, int ltype)
{
	struct keel_socket *s = data;
	char *k;
	int r = keel__expand(c, KEEL_SPEC_UNIT_NAME, v, SIZE_MAX, &k);
	if (r < 0) {
		if (r == -ENOMEM)
			return r;
		keel__pwarn(c, KEEL_DIAG_WARNING, "Failed to resolve unit specifiers in %s, ignoring: %s", v,
			    strerror(-r));
		return 0;
	}
	if (!keel_endswith(k, ".service")) {
		keel__pwarn(c, KEEL_DIAG_WARNING, "Unit must be of type service, ignoring: %s", v);
		keel_free(k);
		return 0;
	}
	if (!keel_unit_name_is_valid(k, KEEL_NAME_PLAIN | KEEL_NAME_INSTANCE)) {
		keel__pwarn(c, KEEL_DIAG_WARNING, "Failed to load unit %s, ignoring: %s", v, strerror(EINVAL));
		keel_free(k);
		return 0;
	}
	const char *n = keel_pool_intern(c->u->pool, k);
	keel_free(k);
	if (!n)
		return -ENOMEM;
	keel_pool_unref(c->u->pool, s->service);
	s->service = n;
	return 0;
}

int keel__parse_bind_ipv6_only(struct keel__pctx *c, const char *v, void *data, int ltype)
{
	struct keel_socket *s = data;
	if (strcmp(v, "default") == 0) {
		s->bind_ipv6_only = KEEL_BIND_IPV6_DEFAULT;
	} else if (strcmp(v, "both") == 0) {
		s->bind_ipv6_only = KEEL_BIND_IPV6_BOTH;
	} else if (strcmp(v, "ipv6-only") == 0) {
		s->bind_ipv6_only = KEEL_BIND_IPV6_ONLY;
	} else {
		int b = keel_parse_boolean(v);
		if (b < 0) {
			keel__pwarn(c, KEEL_DIAG_WARNING, "Failed to parse bind IPv6 only value, ignoring: %s", v);
			return 0;
		}
		s->bind_ipv6_only = b ? KEEL_BIND_IPV6_ONLY : KEEL_BIND_IPV6_BOTH;
	}
	return 0;
}

int keel__parse_fd_name(struct keel__pctx *c, const char *v, void *data, int ltype)
{
	const char **slot = data;
	char *k;
	int r = keel__expand_or_ignore(c, KEEL_SPEC_FULL, v, SIZE_MAX, &k);
	if (r != 0)
		return r < 0 ? r : 0;
	if (*k && !keel__fdname_is_valid(k)) {
		keel__pwarn(c, KEEL_DIAG_WARNING, "Invalid file descriptor name, ignoring: %s", k);
		keel_free(k);
		return 0;
	}
	const char *n = NULL;
	if (*k && !(n = keel_pool_intern(c->u->pool, k))) {
		keel_free(k);
		return -ENOMEM;
	}
	keel_free(k);
	keel_pool_unref(c->u->pool, *slot);
	*slot = n;
	return 0;
}

static int add_timer_value(struct keel_timer *t, struct keel_timer_value v)
{
	if (t->n_values == UINT16_MAX)
		return -E2BIG;
	struct keel_timer_value *nv = keel_reallocarray(t->values, t->n_values + 1u, sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	t->values = nv;
	t->values[t->n_values++] = v;
	return 0;
}

/* ltype: the enum keel_timer_base. An empty value clears every value of every base. */
int keel__parse_timer_value(struct keel__pctx *c, const char *v, void *data, int ltype)
{
	struct keel_timer *t = data;
	if (!*v) {
		keel__timer_values_clear(c->u->pool, t);
		return 0;
	}
	char *k;
	int r = keel__expand_or_ignore(c, KEEL_SPEC_FULL, v, SIZE_MAX, &k);
	if (r != 0)
		return r < 0 ? r : 0;
	struct keel_timer_value tv = {.base = (uint8_t)ltype};
	if (ltype == KEEL_TIMER_CALENDAR) {
		r = keel_calendar_parse(k, &tv.calendar);
		if (r < 0) {
			if (r != -ENOMEM)
				keel__pwarn(c, KEEL_DIAG_WARNING, "Failed to parse calendar specification, ignoring: %s", k);
			keel_free(k);
			return r == -ENOMEM ? r : 0;
		}
	} else if (keel_parse_sec(k, &tv.usec) < 0) {
		keel__pwarn(c, KEEL_DIAG_WARNING, "Failed to parse timer value, ignoring: %s", k);
		keel_free(k);
		return 0;
	}
	keel_free(k);
	r = add_timer_value(t, tv);
	if (r < 0) {
		keel_calendar_free(tv.calendar);
		if (r == -E2BIG) {
			keel__pwarn(c, KEEL_DIAG_WARNING, "Too many timer values, ignoring: %s", v);
			return 0;
		}
	}
	return r;
}

int keel__parse_trigger_unit(struct keel__pctx *c, const char *v, void *data, int ltype)
{
	struct keel_timer *t = data;
	if (t->unit) {
		keel__pwarn(c, KEEL_DIAG_WARNING, "Multiple units to trigger specified, ignoring: %s", v);
		return 0;
	}
	char *k;
	int r = keel__expand(c, KEEL_SPEC_UNIT_NAME, v, SIZE_MAX, &k);
	if (r < 0) {
		if (r == -ENOMEM)
			return r;
		keel__pwarn(c, KEEL_DIAG_WARNING, "Failed to resolve unit specifiers in %s, ignoring: %s", v,
			    strerror(-r));
		return 0;
	}
	if (keel_unit_name_type(k) < 0) {
		keel__pwarn(c, KEEL_DIAG_WARNING, "Unit type not valid, ignoring: %s", v);
		keel_free(k);
		return 0;
	}
	if (strcmp(k, c->u->id) == 0) {
		keel__pwarn(c, KEEL_DIAG_WARNING, "Units cannot trigger themselves, ignoring: %s", v);
		keel_free(k);
		return 0;
	}
	if (!keel_unit_name_is_valid(k, KEEL_NAME_PLAIN | KEEL_NAME_INSTANCE)) {
		keel__pwarn(c, KEEL_DIAG_WARNING, "Failed to add trigger on %s, ignoring: %s", k, strerror(EINVAL));
		keel_free(k);
		return 0;
	}
	t->unit = keel_pool_intern(c->u->pool, k);
	keel_free(k);
	return t->unit ? 0 : -ENOMEM;
}
