/* Fuzz the pods' text parsers (lib/run/pod_parse.c): /etc/subuid-style files and --publish's
 * HOSTPORT:PODPORT[/proto]. Properties: no crash; every range parsed is non-empty and ends within
 * the 32-bit id space; a range the check allows lies inside an own range (when there are any) or
 * outside every other one; a parsed port is in 1..65535 and prints back to an accepted spec. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run/pod-internal.h"
#include "run/pod.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4096)
		return 0;
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = 0;

	struct keel__subids ids;
	if (keel__pod_subid_parse(s, "root", 0, &ids) == 0) {
		const struct keel__subid *all[2] = {ids.own, ids.other};
		size_t n[2] = {ids.n_own, ids.n_other};
		for (int k = 0; k < 2; k++)
			for (size_t i = 0; i < n[k]; i++)
				if (all[k][i].count == 0 || (uint64_t)all[k][i].start + all[k][i].count > (uint64_t)UINT32_MAX + 1)
					abort();
		for (size_t i = 0; i < ids.n_own + ids.n_other; i++) {
			const struct keel__subid *r = i < ids.n_own ? &ids.own[i] : &ids.other[i - ids.n_own];
			uint64_t id = r->start;
			if (!keel__pod_subid_allows(&ids, id, 65536))
				continue;
			bool ok = ids.n_own == 0;
			for (size_t j = 0; j < ids.n_own; j++)
				ok |= id >= ids.own[j].start && id + 65536 <= (uint64_t)ids.own[j].start + ids.own[j].count;
			for (size_t j = 0; ids.n_own == 0 && j < ids.n_other; j++)
				ok &= !(id < (uint64_t)ids.other[j].start + ids.other[j].count && ids.other[j].start < id + 65536);
			if (!ok)
				abort();
		}
		keel__pod_subids_free(&ids);
	}

	struct keel_pod_port p;
	if (keel_pod_parse_port(s, &p) == 0) {
		if (p.host == 0 || p.pod == 0)
			abort();
		char back[32];
		snprintf(back, sizeof(back), "%u:%u/%s", p.host, p.pod, p.udp ? "udp" : "tcp");
		struct keel_pod_port q;
		if (keel_pod_parse_port(back, &q) != 0 || q.host != p.host || q.pod != p.pod || q.udp != p.udp)
			abort();
	}
	free(s);
	return 0;
}
