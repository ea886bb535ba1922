/* File names shared by the WAL and the snapshot directory: two 64-bit numbers in fixed-width
 * hex, an extension, and an optional temp suffix, so that names sort in number order. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define RAFTIO_TMP_SUFFIX ".tmp"

/* Accepts exactly "%016llx-%016llx<ext>", optionally followed by RAFTIO_TMP_SUFFIX (lowercase
 * hex only, as the writers make them). */
bool raftio_parse_file_name(const char *name, const char *ext, uint64_t *a, uint64_t *b, bool *tmp);
