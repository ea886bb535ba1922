/* A small open-addressing hash map for keel-init's indexes (unit names, PIDs, inotify watch
 * descriptors): keys are strings (borrowed, must outlive their entry) or integers, values are
 * pointers. Linear probing with tombstones; grows at 70% load. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/macro.h"

struct keel_hmap_slot {
	const char *skey; /* string maps */
	int64_t ikey;     /* integer maps */
	void *value;
	uint8_t state;    /* 0 empty, 1 full, 2 deleted */
};

struct keel_hmap {
	struct keel_hmap_slot *slots;
	size_t cap, n, used; /* used: full + deleted */
	bool strings;
};

void keel_hmap_init(struct keel_hmap *m, bool strings);
void keel_hmap_clear(struct keel_hmap *m);
/* Insert or replace. 0 or -ENOMEM. */
int keel_hmap_put_str(struct keel_hmap *m, const char *key, void *value) KEEL_WUR;
int keel_hmap_put_int(struct keel_hmap *m, int64_t key, void *value) KEEL_WUR;
void *keel_hmap_get_str(const struct keel_hmap *m, const char *key);
void *keel_hmap_get_int(const struct keel_hmap *m, int64_t key);
/* Returns the removed value or NULL. */
void *keel_hmap_del_str(struct keel_hmap *m, const char *key);
void *keel_hmap_del_int(struct keel_hmap *m, int64_t key);
/* Iterate: start with *it = 0; returns false at the end. */
bool keel_hmap_next(const struct keel_hmap *m, size_t *it, const char **skey, int64_t *ikey, void **value);
