/* Fuzz the small text parsers: numbers, bools, durations, RFC 3339 times and fault specs. The
 * first byte picks the parser. Properties: no crash, and what parses round-trips. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/fault.h"
#include "base/str.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 512)
		return 0;
	char s[513];
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';

	switch (data[0] % 6) {
	case 0: {
		uint64_t u;
		if (keel_parse_u64(s, &u) == 0) {
			char back[24] = {0};
			keel_u64_to_dec(u, back);
			if (strcmp(back, s) != 0 && s[0] != '0') /* leading zeros are the only slack */
				abort();
		}
		break;
	}
	case 1: {
		int64_t i;
		if (keel_parse_i64(s, &i) == 0) {
			char back[24];
			snprintf(back, sizeof(back), "%lld", (long long)i);
			int64_t again;
			if (keel_parse_i64(back, &again) != 0 || again != i)
				abort();
		}
		break;
	}
	case 2: {
		bool b;
		keel_parse_bool(s, &b);
		break;
	}
	case 3: {
		int64_t ns;
		if (keel_parse_duration(s, &ns) == 0) {
			/* Any parsed duration, printed in ns, parses to the same value. */
			char back[32];
			snprintf(back, sizeof(back), "%lldns", (long long)ns);
			int64_t again;
			if (ns != INT64_MIN && (keel_parse_duration(back, &again) != 0 || again != ns))
				abort();
		}
		break;
	}
	case 4: {
		int64_t ns;
		if (keel_parse_rfc3339(s, &ns) == 0) {
			char text[KEEL_RFC3339_MAX];
			int64_t again;
			if (keel_fmt_rfc3339(ns, 1, text, sizeof(text)) &&
			    (keel_parse_rfc3339(text, &again) != 0 || again != ns))
				abort();
		}
		break;
	}
	case 5:
		keel_fault_parse(s);
		keel_fault_reset();
		break;
	}
	return 0;
}
