/* systemd's named system call groups (@system-service, @basic-io, ...) for SystemCallFilter=. */
#pragma once

struct keel_syscall_group {
	const char *name;    /* "@basic-io" */
	const char *members; /* space-separated system call names and "@group" references */
};

extern const struct keel_syscall_group keel_syscall_groups[];
extern const unsigned keel_n_syscall_groups;
