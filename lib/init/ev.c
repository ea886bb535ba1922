#include "init/ev.h"

#include <errno.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "base/mem.h"
#include "init/values.h"

struct keel_ev {
	int epfd;
	struct keel_ev_timer **heap;
	size_t n_heap, cap_heap;
	bool (*prepare)(void *data);
	void *prepare_data;
};

static uint64_t clock_usec(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * KEEL_USEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000;
}

uint64_t keel_now_mono(void) { return clock_usec(CLOCK_MONOTONIC); }
uint64_t keel_now_real(void) { return clock_usec(CLOCK_REALTIME); }

int keel_ev_new(struct keel_ev **ret)
{
	struct keel_ev *ev = keel_calloc(1, sizeof(*ev));
	if (!ev)
		return -ENOMEM;
	ev->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (ev->epfd < 0) {
		int r = -errno;
		keel_free(ev);
		return r;
	}
	*ret = ev;
	return 0;
}

void keel_ev_free(struct keel_ev *ev)
{
	if (!ev)
		return;
	for (size_t i = 0; i < ev->n_heap; i++)
		ev->heap[i]->slot = 0;
	keel_free(ev->heap);
	close(ev->epfd);
	keel_free(ev);
}

void keel_ev_io_init(struct keel_ev_io *io, int fd, keel_ev_io_fn cb, void *data)
{
	*io = (struct keel_ev_io){.fd = fd, .cb = cb, .data = data};
}

int keel_ev_io_start(struct keel_ev *ev, struct keel_ev_io *io, uint32_t events)
{
	struct epoll_event e = {.events = events, .data.ptr = io};
	if (epoll_ctl(ev->epfd, io->active ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, io->fd, &e) < 0)
		return -errno;
	io->events = events;
	io->active = true;
	return 0;
}

void keel_ev_io_stop(struct keel_ev *ev, struct keel_ev_io *io)
{
	if (!io->active)
		return;
	epoll_ctl(ev->epfd, EPOLL_CTL_DEL, io->fd, NULL);
	io->active = false;
}

void keel_ev_timer_init(struct keel_ev_timer *t, keel_ev_timer_fn cb, void *data)
{
	*t = (struct keel_ev_timer){.cb = cb, .data = data};
}

static void heap_set(struct keel_ev *ev, size_t i, struct keel_ev_timer *t)
{
	ev->heap[i] = t;
	t->slot = i + 1;
}

static void sift_up(struct keel_ev *ev, size_t i)
{
	struct keel_ev_timer *t = ev->heap[i];
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (ev->heap[p]->when <= t->when)
			break;
		heap_set(ev, i, ev->heap[p]);
		i = p;
	}
	heap_set(ev, i, t);
}

static void sift_down(struct keel_ev *ev, size_t i)
{
	struct keel_ev_timer *t = ev->heap[i];
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= ev->n_heap)
			break;
		if (c + 1 < ev->n_heap && ev->heap[c + 1]->when < ev->heap[c]->when)
			c++;
		if (t->when <= ev->heap[c]->when)
			break;
		heap_set(ev, i, ev->heap[c]);
		i = c;
	}
	heap_set(ev, i, t);
}

void keel_ev_timer_stop(struct keel_ev *ev, struct keel_ev_timer *t)
{
	if (!t->slot)
		return;
	size_t i = t->slot - 1;
	t->slot = 0;
	ev->n_heap--;
	if (i == ev->n_heap)
		return;
	heap_set(ev, i, ev->heap[ev->n_heap]);
	struct keel_ev_timer *moved = ev->heap[i];
	sift_up(ev, i);
	sift_down(ev, moved->slot - 1);
}

int keel_ev_timer_start(struct keel_ev *ev, struct keel_ev_timer *t, uint64_t when)
{
	keel_ev_timer_stop(ev, t);
	if (when == KEEL_USEC_INFINITY)
		return 0;
	if (ev->n_heap == ev->cap_heap) {
		size_t cap = ev->cap_heap ? ev->cap_heap * 2 : 64;
		struct keel_ev_timer **h = keel_reallocarray(ev->heap, cap, sizeof(*h));
		if (!h)
			return -ENOMEM;
		ev->heap = h;
		ev->cap_heap = cap;
	}
	t->when = when;
	heap_set(ev, ev->n_heap++, t);
	sift_up(ev, ev->n_heap - 1);
	return 0;
}

void keel_ev_set_prepare(struct keel_ev *ev, bool (*fn)(void *data), void *data)
{
	ev->prepare = fn;
	ev->prepare_data = data;
}

int keel_ev_run_once(struct keel_ev *ev, uint64_t timeout_usec)
{
	/* Deferred work first; it may arm timers or make more work. */
	bool more = false;
	if (ev->prepare)
		more = ev->prepare(ev->prepare_data);
	uint64_t now = keel_now_mono();
	int timeout_ms;
	if (more) {
		timeout_ms = 0;
	} else {
		uint64_t wait = timeout_usec;
		if (ev->n_heap) {
			uint64_t first = ev->heap[0]->when;
			uint64_t d = first > now ? first - now : 0;
			if (d < wait)
				wait = d;
		}
		if (wait == KEEL_USEC_INFINITY)
			timeout_ms = -1;
		else
			timeout_ms = (int)KEEL_MIN((wait + 999) / 1000, (uint64_t)INT32_MAX);
	}
	struct epoll_event evs[32];
	int n = epoll_wait(ev->epfd, evs, KEEL_ARRAY_SIZE(evs), timeout_ms);
	if (n < 0) {
		if (errno != EINTR)
			return -errno;
		n = 0;
	}
	for (int i = 0; i < n; i++) {
		struct keel_ev_io *io = evs[i].data.ptr;
		/* A callback earlier in this batch may have stopped (or freed and replaced) a
		 * watcher: callers stop watchers before freeing them, and epoll drops them. */
		if (io->active)
			io->cb(io, evs[i].events);
	}
	now = keel_now_mono();
	while (ev->n_heap && ev->heap[0]->when <= now) {
		struct keel_ev_timer *t = ev->heap[0];
		keel_ev_timer_stop(ev, t);
		t->cb(t);
	}
	return 0;
}
