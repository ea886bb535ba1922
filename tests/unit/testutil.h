/* Helpers the unit tests share: temporary directories that are always cleaned up. */
#pragma once

#include <stddef.h>

/* mkdtemp() a directory "/tmp/keel-test-<what>-XXXXXX" into out (at least 64 bytes). 0 or -1. */
int test_make_tmpdir(const char *what, char *out, size_t size);

/* Remove path and everything below it (files and directories); ignores what is gone. */
void test_remove_tree(const char *path);
