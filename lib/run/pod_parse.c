/* The pods' small text parsers, pure (no system calls; in the keel-runspec library with the other
 * parsers, unit tested and fuzzed): /etc/subuid and /etc/subgid for --user-ns (shadow's subid
 * files, subuid(5): "name:start:count" lines, the name a user name or a numeric uid), and
 * --publish's HOSTPORT:PODPORT[/tcp|/udp]. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "base/str.h"
#include "run/pod-internal.h"

int keel_pod_parse_port(const char *s, struct keel_pod_port *out)
{
	char host[8], pod[8], proto[8] = "tcp";
	const char *colon = strchr(s, ':'), *slash = strchr(s, '/');
	if (!colon || colon == s || (slash && slash < colon))
		return -EINVAL;
	size_t hl = (size_t)(colon - s), pl = slash ? (size_t)(slash - colon - 1) : strlen(colon + 1);
	if (hl >= sizeof(host) || pl == 0 || pl >= sizeof(pod) || (slash && strlen(slash + 1) >= sizeof(proto)))
		return -EINVAL;
	memcpy(host, s, hl);
	host[hl] = 0;
	memcpy(pod, colon + 1, pl);
	pod[pl] = 0;
	if (slash)
		strcpy(proto, slash + 1);
	uint64_t h, p;
	if (keel_parse_u64(host, &h) < 0 || keel_parse_u64(pod, &p) < 0 || h == 0 || h > 65535 || p == 0 ||
	    p > 65535)
		return -EINVAL;
	if (strcmp(proto, "tcp") != 0 && strcmp(proto, "udp") != 0)
		return -EINVAL;
	*out = (struct keel_pod_port){.host = (uint16_t)h, .pod = (uint16_t)p, .udp = proto[0] == 'u'};
	return 0;
}

static int push(struct keel__subid **v, size_t *n, uint32_t start, uint32_t count)
{
	struct keel__subid *nv = keel_reallocarray(*v, *n + 1, sizeof(**v));
	if (!nv)
		return -ENOMEM;
	nv[(*n)++] = (struct keel__subid){start, count};
	*v = nv;
	return 0;
}

int keel__pod_subid_parse(const char *text, const char *user, uint32_t uid, struct keel__subids *out)
{
	*out = (struct keel__subids){0};
	char uidstr[16];
	snprintf(uidstr, sizeof(uidstr), "%u", uid);
	for (const char *line = text; line && *line;) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		char buf[512], *f[3], *save = NULL;
		if (len < sizeof(buf) && len > 0 && line[0] != '#') {
			memcpy(buf, line, len);
			buf[len] = 0;
			int k = 0;
			for (char *t = strtok_r(buf, ":", &save); t && k < 3; t = strtok_r(NULL, ":", &save))
				f[k++] = keel_strstrip(t);
			uint64_t start, count;
			/* Malformed lines are skipped, as shadow's own parser does. */
			if (k == 3 && keel_parse_u64(f[1], &start) == 0 && keel_parse_u64(f[2], &count) == 0 &&
			    count > 0 && start <= UINT32_MAX && count <= (uint64_t)UINT32_MAX + 1 - start) {
				if (count > UINT32_MAX) /* 0:4294967296, the whole space: id 2^32-1 is no id anyway */
					count = UINT32_MAX;
				bool own = (user && strcmp(f[0], user) == 0) || strcmp(f[0], uidstr) == 0 ||
					   strcmp(f[0], KEEL_POD_SUBID_USER) == 0;
				int r = own ? push(&out->own, &out->n_own, (uint32_t)start, (uint32_t)count)
					    : push(&out->other, &out->n_other, (uint32_t)start, (uint32_t)count);
				if (r < 0) {
					keel__pod_subids_free(out);
					return r;
				}
			}
		}
		line = nl ? nl + 1 : NULL;
	}
	return 0;
}

void keel__pod_subids_free(struct keel__subids *s)
{
	keel_free(s->own);
	keel_free(s->other);
	*s = (struct keel__subids){0};
}

bool keel__pod_subid_allows(const struct keel__subids *s, uint64_t id, uint64_t size)
{
	if (s->n_own > 0) {
		for (size_t i = 0; i < s->n_own; i++)
			if (id >= s->own[i].start && id + size <= (uint64_t)s->own[i].start + s->own[i].count)
				return true;
		return false;
	}
	for (size_t i = 0; i < s->n_other; i++)
		if (id < (uint64_t)s->other[i].start + s->other[i].count && s->other[i].start < id + size)
			return false;
	return true;
}
