/* Fuzz string escaping: any bytes, escaped and quoted, must be one valid JSON string, and valid
 * UTF-8 must come back byte for byte. */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/json.h"
#include "base/jw.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (unsigned flags = 0; flags <= KEEL_JW_GO_ESCAPE; flags += KEEL_JW_GO_ESCAPE) {
		struct keel_buf b = KEEL_BUF_INIT;
		if (keel_buf_putc(&b, '"') || keel_json_escape(&b, (const char *)data, size, flags) ||
		    keel_buf_putc(&b, '"'))
			abort();
		json_error_t jerr;
		json_t *v = json_loadb(b.data, b.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
		if (!v || !json_is_string(v))
			abort();
		/* If the input was valid UTF-8, jansson accepts it raw too; compare the two. */
		struct keel_buf raw = KEEL_BUF_INIT;
		bool plain = true;
		for (size_t i = 0; i < size; i++)
			if (data[i] < 0x20 || data[i] == '"' || data[i] == '\\')
				plain = false;
		if (plain && !keel_buf_putc(&raw, '"') && !keel_buf_append(&raw, data, size) &&
		    !keel_buf_putc(&raw, '"')) {
			json_t *r = json_loadb(raw.data, raw.len, JSON_DECODE_ANY, &jerr);
			if (r && (json_string_length(r) != json_string_length(v) ||
				  memcmp(json_string_value(r), json_string_value(v), json_string_length(v))))
				abort();
			json_decref(r);
		}
		keel_buf_free(&raw);
		json_decref(v);
		keel_buf_free(&b);
	}
	return 0;
}
