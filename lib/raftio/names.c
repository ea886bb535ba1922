#include "raftio/names.h"

#include <string.h>

static bool parse_hex16(const char *s, uint64_t *ret)
{
	uint64_t v = 0;
	for (int i = 0; i < 16; i++) {
		char c = s[i];
		unsigned d;
		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else
			return false;
		v = v << 4 | d;
	}
	*ret = v;
	return true;
}

bool raftio_parse_file_name(const char *name, const char *ext, uint64_t *a, uint64_t *b, bool *tmp)
{
	size_t base = 33 + strlen(ext); /* 16 hex, '-', 16 hex, ext */
	size_t len = strlen(name);
	if (len == base)
		*tmp = false;
	else if (len == base + strlen(RAFTIO_TMP_SUFFIX) && strcmp(name + base, RAFTIO_TMP_SUFFIX) == 0)
		*tmp = true;
	else
		return false;
	return parse_hex16(name, a) && name[16] == '-' && parse_hex16(name + 17, b) &&
	       memcmp(name + 33, ext, strlen(ext)) == 0;
}
