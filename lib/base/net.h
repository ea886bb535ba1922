/* Socket helpers that the HTTP server and the peer transport share. */
#pragma once

#include <stdint.h>
#include <sys/socket.h>

/* The length of the sockaddr an AF_INET or AF_INET6 storage holds. */
socklen_t keel_net_addr_len(const struct sockaddr_storage *ss);

/* A non-blocking, close-on-exec listening TCP socket on ss (SO_REUSEADDR, so that a restarted
 * daemon does not wait for TIME_WAIT), with the port it got in *ret_port (ss may ask for 0).
 * Returns the fd or -errno. */
int keel_net_listen(const struct sockaddr_storage *ss, int backlog, uint16_t *ret_port);
