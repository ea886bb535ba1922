/* Fuzz WAL recovery. Input: one flag byte, a 16-bit split point, then segment bodies. The body
 * goes into a segment file after a valid header (so the fuzzer spends its time on records, not
 * on the header CRC); with flag bit 0 it is split into two segments at the split point, so damage
 * can land in a segment that is not the last. With flag bit 1 the record CRCs are recomputed
 * first, so that mutations reach the replay rules (overwrites, snapshot records, gaps, terms)
 * instead of stopping at a checksum mismatch.
 *
 * Properties: keel_wal_open never crashes or leaks; if it succeeds, the entries are consecutive
 * from snap_index + 1 with non-decreasing terms; and the WAL it repaired takes an append that a
 * second open then returns along with everything the first open returned. A copy of the same
 * files replayed through a small window (replay_chunk 64-568 bytes, from the flag byte's upper
 * bits) gives the same result or the same error code. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/crc32c.h"
#include "raftio/wal.h"

#define HDR 40

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* A segment file: the header format of lib/raftio/wal.c, the body, and `pad` zero bytes of
 * preallocated space. */
static void write_segment(const char *dir, uint64_t seq, const uint8_t *body, size_t n, size_t pad)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%016llx-%016llx.wal", dir, (unsigned long long)seq, 1ull);
	uint8_t hdr[HDR] = "KEELWAL";
	put32(hdr + 8, 1);
	put64(hdr + 16, seq);
	put64(hdr + 24, 1);
	put32(hdr + 32, keel_crc32c(0, hdr, 32));
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	if (fd < 0)
		abort();
	if (write(fd, hdr, HDR) != HDR || (n && write(fd, body, n) != (ssize_t)n) ||
	    ftruncate(fd, (off_t)(HDR + n + pad)) != 0)
		abort();
	close(fd);
}

/* Re-seal every record that has a plausible frame, walking from the start of the body. */
static void fix_crcs(uint8_t *body, size_t n)
{
	size_t off = 0;
	while (off + 8 <= n) {
		uint32_t len = (uint32_t)body[off] | (uint32_t)body[off + 1] << 8 |
			       (uint32_t)body[off + 2] << 16 | (uint32_t)body[off + 3] << 24;
		if (len == 0 || len > n - off - 8)
			break;
		put32(body + off + 4, keel_crc32c(0, body + off + 8, len));
		off += (8 + (size_t)len + 7) & ~(size_t)7;
	}
}

static void remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char path[512];
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

static void check_log(const struct keel_wal_recovered *rec)
{
	for (size_t i = 0; i < rec->n_entries; i++) {
		const struct keel_raft_entry *e = &rec->entries[i];
		if (e->index != rec->snap_index + 1 + i)
			abort();
		if (i > 0 && e->term < rec->entries[i - 1].term)
			abort();
		if (e->len && !e->data)
			abort();
	}
}

static bool same_entry(const struct keel_raft_entry *a, const struct keel_raft_entry *b)
{
	return a->index == b->index && a->term == b->term && a->type == b->type && a->len == b->len &&
	       (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 3)
		return 0;
	uint8_t flags = data[0];
	size_t split = (size_t)data[1] | (size_t)data[2] << 8;
	data += 3;
	size -= 3;
	uint8_t *body = malloc(size ? size : 1);
	if (!body)
		abort();
	memcpy(body, data, size);
	if (flags & 2)
		fix_crcs(body, size);

	char dir[] = "/tmp/keel-fuzz-wal-XXXXXX", small[] = "/tmp/keel-fuzz-wal-XXXXXX";
	if (!mkdtemp(dir) || !mkdtemp(small))
		abort();
	split = size ? split % size : 0;
	for (int k = 0; k < 2; k++) {
		const char *d = k ? small : dir;
		if (flags & 1) {
			write_segment(d, 0, body, split, 0);
			write_segment(d, 1, body + split, size - split, 1024);
		} else {
			write_segment(d, 0, body, size, 1024);
		}
	}

	struct keel_wal_options opt = {.segment_size = 64 << 10};
	struct keel_wal *w = NULL;
	struct keel_wal_recovered rec, srec;
	struct keel_err err = {0};
	struct keel_wal_options sopt = {.segment_size = 64 << 10, .replay_chunk = 64 + (size_t)(flags >> 2) * 8};
	int sr = keel_wal_open(small, &sopt, &w, &srec, &err);
	if (sr == 0)
		keel_wal_close(w);
	int r = keel_wal_open(dir, &opt, &w, &rec, &err);
	if (r != sr && r != -ENOMEM && sr != -ENOMEM) {
		fprintf(stderr, "replay with a %zu-byte window: %d, whole: %d\n", sopt.replay_chunk, sr, r);
		abort();
	}
	if (r == 0 && sr == 0) {
		if (srec.n_entries != rec.n_entries || srec.snap_index != rec.snap_index ||
		    srec.snap_term != rec.snap_term || srec.has_hs != rec.has_hs ||
		    memcmp(&srec.hs, &rec.hs, sizeof(rec.hs)) != 0)
			abort();
		for (size_t i = 0; i < rec.n_entries; i++)
			if (!same_entry(&srec.entries[i], &rec.entries[i]))
				abort();
	}
	if (sr == 0)
		keel_wal_recovered_free(&srec);
	remove_dir(small);
	if (r == 0) {
		check_log(&rec);
		uint64_t last = rec.n_entries ? rec.entries[rec.n_entries - 1].index : rec.snap_index;
		uint64_t term = rec.n_entries ? rec.entries[rec.n_entries - 1].term : rec.snap_term;
		static uint8_t payload[3] = {'n', 'e', 'w'};
		struct keel_raft_entry next = {.term = term, .index = last + 1, .len = 3, .data = payload};
		bool appended = last < UINT64_MAX;
		if (appended && (keel_wal_append(w, &next, 1, NULL, &err) != 0 ||
				 keel_wal_sync(w, &err) != 0)) {
			fprintf(stderr, "append after repair failed: %s\n", keel_err_msg(&err));
			abort();
		}
		keel_wal_close(w);

		struct keel_wal_recovered again;
		if (keel_wal_open(dir, &opt, &w, &again, &err) != 0) {
			fprintf(stderr, "reopen after repair failed: %s\n", keel_err_msg(&err));
			abort();
		}
		check_log(&again);
		if (again.snap_index != rec.snap_index || again.has_hs != rec.has_hs ||
		    again.n_entries != rec.n_entries + appended)
			abort();
		for (size_t i = 0; i < rec.n_entries; i++)
			if (!same_entry(&again.entries[i], &rec.entries[i]))
				abort();
		if (appended && !same_entry(&again.entries[rec.n_entries], &next))
			abort();
		keel_wal_recovered_free(&again);
		keel_wal_recovered_free(&rec);
		keel_wal_close(w);
	}
	remove_dir(dir);
	free(body);
	return 0;
}
