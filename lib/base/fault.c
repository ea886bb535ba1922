#include "base/fault.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/macro.h"

struct keel__fault {
	bool armed;
	enum keel_fault_mode mode;
	unsigned skip;
	int count; /* remaining injections, -1 forever */
	int err;
	unsigned long calls;
	unsigned long injected;
};

unsigned keel__fault_armed; /* number of armed points */
static struct keel__fault keel__faults[KEEL_FAULT__MAX];

static const char *const keel__fault_names[KEEL_FAULT__MAX] = {
	[KEEL_FAULT_ALLOC] = "alloc",
	[KEEL_FAULT_OPEN] = "open",
	[KEEL_FAULT_READ] = "read",
	[KEEL_FAULT_PREAD] = "pread",
	[KEEL_FAULT_WRITE] = "write",
	[KEEL_FAULT_PWRITE] = "pwrite",
	[KEEL_FAULT_FSYNC] = "fsync",
	[KEEL_FAULT_FDATASYNC] = "fdatasync",
	[KEEL_FAULT_FTRUNCATE] = "ftruncate",
	[KEEL_FAULT_FALLOCATE] = "fallocate",
	[KEEL_FAULT_RENAME] = "rename",
	[KEEL_FAULT_UNLINK] = "unlink",
	[KEEL_FAULT_MKDIR] = "mkdir",
	[KEEL_FAULT_CLOSE] = "close",
};

const char *keel_fault_point_name(enum keel_fault_point point)
{
	if ((unsigned)point >= KEEL_FAULT__MAX)
		return "?";
	return keel__fault_names[point];
}

static void keel__fault_set(enum keel_fault_point point, enum keel_fault_mode mode, unsigned skip,
			    int count, int err)
{
	keel_assert((unsigned)point < KEEL_FAULT__MAX);
	struct keel__fault *f = &keel__faults[point];
	if (!f->armed)
		keel__fault_armed++;
	*f = (struct keel__fault){
		.armed = true, .mode = mode, .skip = skip, .count = count, .err = err,
	};
}

void keel_fault_arm(enum keel_fault_point point, unsigned skip, int count, int err)
{
	keel__fault_set(point, KEEL_FAULT_FAIL, skip, count, err > 0 ? err : EIO);
}

void keel_fault_arm_short(enum keel_fault_point point, unsigned skip, int count)
{
	keel__fault_set(point, KEEL_FAULT_SHORT, skip, count, EIO);
}

void keel_fault_disarm(enum keel_fault_point point)
{
	keel_assert((unsigned)point < KEEL_FAULT__MAX);
	struct keel__fault *f = &keel__faults[point];
	if (f->armed)
		keel__fault_armed--;
	f->armed = false;
}

void keel_fault_reset(void)
{
	memset(keel__faults, 0, sizeof(keel__faults));
	keel__fault_armed = 0;
}

unsigned long keel_fault_calls(enum keel_fault_point point)
{
	return (unsigned)point < KEEL_FAULT__MAX ? keel__faults[point].calls : 0;
}

unsigned long keel_fault_injected(enum keel_fault_point point)
{
	return (unsigned)point < KEEL_FAULT__MAX ? keel__faults[point].injected : 0;
}

int keel__fault_hit(enum keel_fault_point point)
{
	struct keel__fault *f = &keel__faults[point];
	f->calls++;
	if (!f->armed)
		return 0;
	if (f->skip > 0) {
		f->skip--;
		return 0;
	}
	if (f->count == 0)
		return 0;
	if (f->count > 0)
		f->count--;
	f->injected++;
	if (f->mode == KEEL_FAULT_SHORT)
		return -1;
	return f->err;
}

static int keel__natural_errno(enum keel_fault_point point)
{
	switch (point) {
	case KEEL_FAULT_ALLOC:
		return ENOMEM;
	case KEEL_FAULT_WRITE:
	case KEEL_FAULT_PWRITE:
	case KEEL_FAULT_FALLOCATE:
		return ENOSPC;
	default:
		return EIO;
	}
}

static const struct {
	const char *name;
	int value;
} keel__errno_names[] = {
	{"ENOSPC", ENOSPC}, {"EIO", EIO},       {"ENOMEM", ENOMEM}, {"EINTR", EINTR},
	{"EAGAIN", EAGAIN}, {"EACCES", EACCES}, {"EROFS", EROFS},   {"EDQUOT", EDQUOT},
	{"EPERM", EPERM},   {"ENOENT", ENOENT}, {"EEXIST", EEXIST}, {"EBADF", EBADF},
};

static bool keel__parse_int(const char *s, size_t n, long *ret)
{
	char tmp[24];
	if (n == 0 || n >= sizeof(tmp))
		return false;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	char *end;
	errno = 0;
	long v = strtol(tmp, &end, 10);
	if (errno || *end)
		return false;
	*ret = v;
	return true;
}

struct keel__fault_req {
	enum keel_fault_point point;
	enum keel_fault_mode mode;
	unsigned skip;
	int count;
	int err;
};

/* Parse one "point:skip[:count[:errno]]" item of length n. */
static int keel__parse_item(const char *s, size_t n, struct keel__fault_req *req)
{
	const char *fields[4];
	size_t lens[4];
	size_t nf = 0;
	const char *p = s, *end = s + n;
	for (;;) {
		const char *colon = memchr(p, ':', (size_t)(end - p));
		const char *stop = colon ? colon : end;
		if (nf == 4)
			return -EINVAL; /* more than four fields */
		fields[nf] = p;
		lens[nf++] = (size_t)(stop - p);
		if (!colon)
			break;
		p = colon + 1;
	}
	if (nf < 2)
		return -EINVAL;

	int point = -1;
	for (int i = 0; i < KEEL_FAULT__MAX; i++)
		if (strlen(keel__fault_names[i]) == lens[0] &&
		    memcmp(keel__fault_names[i], fields[0], lens[0]) == 0)
			point = i;
	if (point < 0)
		return -EINVAL;

	long skip, count = 1;
	if (!keel__parse_int(fields[1], lens[1], &skip) || skip < 0 || skip > (long)1e9)
		return -EINVAL;
	if (nf >= 3 && (!keel__parse_int(fields[2], lens[2], &count) || count < -1 || count > (long)1e9))
		return -EINVAL;

	*req = (struct keel__fault_req){
		.point = point, .mode = KEEL_FAULT_FAIL, .skip = (unsigned)skip, .count = (int)count,
		.err = keel__natural_errno(point),
	};
	if (nf == 4) {
		bool found = false;
		if (lens[3] == 5 && memcmp(fields[3], "short", 5) == 0) {
			req->mode = KEEL_FAULT_SHORT;
			found = true;
		}
		for (size_t i = 0; !found && i < KEEL_ARRAY_SIZE(keel__errno_names); i++) {
			if (strlen(keel__errno_names[i].name) == lens[3] &&
			    memcmp(keel__errno_names[i].name, fields[3], lens[3]) == 0) {
				req->err = keel__errno_names[i].value;
				found = true;
			}
		}
		if (!found)
			return -EINVAL;
	}
	return 0;
}

int keel_fault_parse(const char *spec)
{
	if (!spec || !*spec)
		return 0;
	struct keel__fault_req reqs[KEEL_FAULT__MAX * 2];
	size_t nreq = 0;
	const char *p = spec;
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		if (nreq == KEEL_ARRAY_SIZE(reqs))
			return -EINVAL;
		int r = keel__parse_item(p, n, &reqs[nreq]);
		if (r < 0)
			return r;
		nreq++;
		if (!comma)
			break;
		p = comma + 1;
	}
	/* All or nothing: arm only once the whole spec has parsed. */
	for (size_t i = 0; i < nreq; i++)
		keel__fault_set(reqs[i].point, reqs[i].mode, reqs[i].skip, reqs[i].count, reqs[i].err);
	return 0;
}
