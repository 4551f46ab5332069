/* lwsctx: a libwebsockets context on the caller's libevent loop, listening on one address (chatmond's relay and the dashboard). */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <libwebsockets.h>

#include "chatmon/log.h"
#include "chatmon/lwsctx.h"

static void
lwsctx_log(int level, const char *line)
{
	size_t	n = strlen(line);

	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	if (level & LLL_ERR)
		log_warnx("lws: %.*s", (int)n, line);
	else if (level & LLL_WARN)
		log_info("lws: %.*s", (int)n, line);
	else
		log_debug("lws: %.*s", (int)n, line);
}

/*
 * Why lws could not listen, found by binding the address again the way lws
 * does (it logs the errno but does not return it): 0 when that bind works
 * now, else the errno. Only bound, never listening, and closed at once.
 */
static int
lwsctx_bind_errno(const char *host, int port, int reuseport)
{
	struct addrinfo	 hints, *res;
	char		 serv[16];
	int		 fd, on = 1, e = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(serv, sizeof(serv), "%d", port);
	if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "*") == 0)
		host = "";
	if (getaddrinfo(host[0] != '\0' ? host : NULL, serv, &hints, &res) != 0)
		return 0;	/* nothing to say beyond lws's line */
	if ((fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC,
	    res->ai_protocol)) == -1)
		e = errno;
	else {
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
		if (reuseport)
			(void)setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on,
			    sizeof(on));
		if (bind(fd, res->ai_addr, res->ai_addrlen) == -1)
			e = errno;
		close(fd);
	}
	freeaddrinfo(res);
	return e;
}

static void
lwsctx_listen_error(const struct lwsctx_info *li, struct sbuf *errs)
{
	const char	*host = li->listen->host;
	int		 port = li->listen->port;

	switch (lwsctx_bind_errno(host, port, li->reuseport)) {
	case EADDRINUSE:
		if (li->reuseport)
			sbuf_line(errs, "lwsctx_new: cannot listen on %s:%d: the "
			    "address is in use by a process that does not share "
			    "it (every process on it must set %s and run as the "
			    "same user)", host, port, li->reuseport_key);
		else if (li->reuseport_key != NULL)
			sbuf_line(errs, "lwsctx_new: cannot listen on %s:%d: the "
			    "address is in use by another process (to run "
			    "several chatmond on one port, set %s: true in "
			    "each)", host, port, li->reuseport_key);
		else
			sbuf_line(errs, "lwsctx_new: cannot listen on %s:%d: the "
			    "address is in use by another process", host, port);
		break;
	case EACCES:
		sbuf_line(errs, "lwsctx_new: cannot listen on %s:%d: permission "
		    "denied (a port below 1024 needs CAP_NET_BIND_SERVICE)",
		    host, port);
		break;
	case EADDRNOTAVAIL:
		sbuf_line(errs, "lwsctx_new: cannot listen on %s:%d: no local "
		    "interface has that address", host, port);
		break;
	default:
		sbuf_line(errs, "lwsctx_new: cannot listen on %s:%d (see the "
		    "lws line above)", host, port);
	}
}

struct lws_context *
lwsctx_new(struct event_base *base, const struct lwsctx_info *li,
    struct sbuf *errs)
{
	struct lws_context_creation_info	 info;
	struct lws_context			*ctx;
	struct rlimit				 rl;
	struct in_addr				 v4;
	const char				*host = li->listen->host;
	char					 mapped[sizeof(li->listen->host) + 8];
	void					*loops[1] = { base };

	lws_set_log_level(LLL_ERR | LLL_WARN, lwsctx_log);
	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_LIBEVENT |
	    LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT |
	    LWS_SERVER_OPTION_JUST_USE_RAW_ORIGIN |
	    LWS_SERVER_OPTION_VALIDATE_UTF8;
	/* SO_REUSEPORT with one service thread needs patch 0010 (third_party/) */
	if (li->reuseport)
		info.options |= LWS_SERVER_OPTION_ALLOW_LISTEN_SHARE;
	info.foreign_loops = loops;
	info.port = li->listen->port;
	/* lws takes an interface name or an address; NULL is every address */
	if (strcmp(host, "0.0.0.0") != 0 && strcmp(host, "*") != 0 &&
	    host[0] != '\0')
		info.iface = host;
	/*
	 * lws built with IPv6 makes an IPv6 socket and cannot bind it to an
	 * IPv4 address: it silently listens on every address instead. Given
	 * as v4-mapped, the IPv4 address binds exactly. (Turning IPv6 off
	 * would do it too, but for the whole context: an IPv6 upstream would
	 * then be out of reach.)
	 */
	if (info.iface != NULL && inet_pton(AF_INET, host, &v4) == 1) {
		snprintf(mapped, sizeof(mapped), "::ffff:%s", host);
		info.iface = mapped;
	}
	info.protocols = li->protocols;
	info.mounts = li->mounts;
	info.user = li->user;
	info.vhost_name = li->vhost;
	info.max_http_header_data = 8192;
	info.max_http_header_pool = 64;
	info.timeout_secs = li->timeout_secs;
	/* lws sizes a table by the fd limit: do not let a huge limit cost memory */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur > 65536)
		info.fd_limit_per_thread = 65536;

	if ((ctx = lws_create_context(&info)) == NULL)
		lwsctx_listen_error(li, errs);
	return ctx;
}
