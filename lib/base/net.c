#include "base/net.h"

#include <errno.h>
#include <netinet/in.h>
#include <unistd.h>

socklen_t keel_net_addr_len(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

int keel_net_listen(const struct sockaddr_storage *ss, int backlog, uint16_t *ret_port)
{
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1, r = 0;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (const struct sockaddr *)ss, keel_net_addr_len(ss)) < 0 || listen(fd, backlog) < 0)
		r = -errno;
	struct sockaddr_storage bound;
	socklen_t len = sizeof(bound);
	if (!r && getsockname(fd, (struct sockaddr *)&bound, &len) < 0)
		r = -errno;
	if (r) {
		close(fd);
		return r;
	}
	*ret_port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
						      : ((struct sockaddr_in *)&bound)->sin_port);
	return fd;
}
