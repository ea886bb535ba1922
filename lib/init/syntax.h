/* The line grammar of systemd unit files (systemd.syntax(7), conf-parser.c): sections, comments,
 * continuation lines, whitespace trimming, "key=value" splitting. Values are handed on verbatim;
 * quoting, escapes and lists belong to each setting's own parser (unit_parse.c), as in systemd.
 *
 * The rules, in systemd's order:
 * - Lines end at \n, \r, NUL, or any run of distinct ones of these (\r\n, \n\r, \n\0, ...).
 *   A line must be shorter than 1 MiB ("Line too long" fails the file).
 * - A line whose first non-whitespace character is # or ; is a comment, also in the middle of
 *   a continuation. A UTF-8 byte order mark is dropped from the first line that has one.
 * - A line ending in an unescaped backslash continues on the next line; the backslash becomes
 *   a space. An empty line ends a continuation; one open at the end of the file is parsed as
 *   if it stood on the line after the last.
 * - Logical lines are trimmed of " \t\n\r". Invalid UTF-8 fails the file. "[Name]" opens a
 *   section (a malformed header fails the file); an assignment outside a known section, a line
 *   without '=' or with nothing before it is warned about and ignored. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "init/diag.h"

#define KEEL_SYNTAX_LINE_MAX (1024u * 1024u) /* systemd's LONG_LINE_MAX */

enum keel_section_kind {
	KEEL_SECTION_KNOWN,   /* its assignments go to the callback */
	KEEL_SECTION_IGNORE,  /* skipped silently */
	KEEL_SECTION_UNKNOWN, /* "Unknown section 'X'. Ignoring." and skipped */
};

struct keel_syntax_item {
	const char *file;
	unsigned line;
	const char *section;
	unsigned section_line;
	const char *key;   /* trimmed, non-empty */
	const char *value; /* trimmed, may be empty */
};

struct keel_syntax_ops {
	enum keel_section_kind (*section)(void *userdata, const char *name);
	/* Return 0 to go on; a negative errno stops parsing and becomes the parse's result (the
	 * callback has reported why through the sink). */
	int (*assign)(void *userdata, const struct keel_syntax_item *item);
};

/* Parse len bytes of data (need not be NUL-terminated) as the file `file` of unit `unit` (both
 * only used in messages; unit may be NULL). Returns 0, or the negative errno that failed the
 * file: -ENOBUFS (line too long), -EBADMSG (bad section header), -EINVAL (not UTF-8), -ENOMEM,
 * or what assign returned. Every problem is reported to sink first. */
int keel_syntax_parse(const char *file, const char *unit, const char *data, size_t len,
		      const struct keel_syntax_ops *ops, void *userdata,
		      const struct keel_diag_sink *sink);

/* Read a whole file (at most KEEL_SYNTAX_FILE_MAX bytes, else -EFBIG) into a new NUL-terminated
 * buffer (free with keel_free). 0 or -errno; -EBADFD for a FIFO or socket, -EISDIR for a
 * directory. */
#define KEEL_SYNTAX_FILE_MAX (64u * 1024u * 1024u)
int keel_syntax_read_file(const char *path, char **ret, size_t *ret_len);

/* systemd's string_is_safe(): no control characters, quotes or backslashes. */
bool keel_string_is_safe(const char *s);
