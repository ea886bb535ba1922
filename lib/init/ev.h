/* keel-init's event loop: epoll for file descriptors, a binary heap of monotonic timers, and a
 * queue of deferred callbacks run before the loop sleeps (redis' beforeSleep). One thread, no
 * allocation per event; watchers and timers are caller-allocated (libuv's rule). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/epoll.h>

#include "base/macro.h"

struct keel_ev;
struct keel_ev_io;
struct keel_ev_timer;

typedef void (*keel_ev_io_fn)(struct keel_ev_io *io, uint32_t revents);
typedef void (*keel_ev_timer_fn)(struct keel_ev_timer *t);

struct keel_ev_io {
	int fd;
	uint32_t events; /* EPOLLIN ... */
	keel_ev_io_fn cb;
	void *data;
	bool active;
};

struct keel_ev_timer {
	uint64_t when;  /* CLOCK_MONOTONIC µs */
	size_t slot;    /* heap index + 1; 0 when not armed */
	keel_ev_timer_fn cb;
	void *data;
};

/* 0 or -errno. */
int keel_ev_new(struct keel_ev **ret) KEEL_WUR;
void keel_ev_free(struct keel_ev *ev);

/* CLOCK_MONOTONIC and CLOCK_REALTIME in µs. */
uint64_t keel_now_mono(void);
uint64_t keel_now_real(void);

void keel_ev_io_init(struct keel_ev_io *io, int fd, keel_ev_io_fn cb, void *data);
/* Watch io->fd for events (EPOLLIN/EPOLLOUT); a second call changes the set. 0 or -errno. */
int keel_ev_io_start(struct keel_ev *ev, struct keel_ev_io *io, uint32_t events) KEEL_WUR;
void keel_ev_io_stop(struct keel_ev *ev, struct keel_ev_io *io);

void keel_ev_timer_init(struct keel_ev_timer *t, keel_ev_timer_fn cb, void *data);
/* Arm (or re-arm) for the monotonic time `when`; KEEL_USEC_INFINITY disarms. 0 or -ENOMEM. */
int keel_ev_timer_start(struct keel_ev *ev, struct keel_ev_timer *t, uint64_t when) KEEL_WUR;
void keel_ev_timer_stop(struct keel_ev *ev, struct keel_ev_timer *t);
static inline bool keel_ev_timer_armed(const struct keel_ev_timer *t) { return t->slot != 0; }

/* A hook called before every sleep until it returns false (deferred work such as the job run
 * queue). One hook per loop. */
void keel_ev_set_prepare(struct keel_ev *ev, bool (*fn)(void *data), void *data);

/* Wait once (at most timeout_usec, or until the first timer) and dispatch. 0 or -errno. */
int keel_ev_run_once(struct keel_ev *ev, uint64_t timeout_usec);
