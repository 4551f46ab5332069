/* lwsctx: a libwebsockets context on the caller's libevent loop, listening on one address (chatmond's relay and the dashboard). */
#ifndef CHATMON_LWSCTX_H
#define CHATMON_LWSCTX_H

#include "chatmon/config.h"

struct event_base;
struct lws_context;
struct lws_protocols;
struct lws_http_mount;

/*
 * What the context is made of; the pointers are borrowed and must outlive
 * it (lws keeps protocols and mounts). vhost names it in lws's own lines.
 */
struct lwsctx_info {
	const struct config_addr	*listen;
	const struct lws_protocols	*protocols;
	const struct lws_http_mount	*mounts;	/* NULL: none */
	void				*user;		/* lws_context_user() */
	const char			*vhost;
	unsigned			 timeout_secs;	/* connects and handshakes, >= 1 */
	/*
	 * Share the address and port with other processes that set it too
	 * (SO_REUSEPORT: the kernel spreads new connections over them; they
	 * must run as the same user). reuseport_key names the setting in the
	 * error when the address is taken; NULL: sharing is not offered.
	 */
	int				 reuseport;
	const char			*reuseport_key;
};

/*
 * A context on base, listening on info->listen exactly (an IPv4 address is
 * bound as v4-mapped, not as every address). lws's errors and warnings go
 * to the log. NULL with the reason in errs (an address in use, a port that
 * needs privilege and an address that is not local are named as such);
 * lws_context_destroy frees it.
 */
struct lws_context *lwsctx_new(struct event_base *base,
	    const struct lwsctx_info *info, struct sbuf *errs);

#endif
