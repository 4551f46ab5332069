/* admin: /metrics, /healthz and /readyz over HTTP on the one loop (libevent's evhttp). */
#ifndef CHATMON_ADMIN_H
#define CHATMON_ADMIN_H

#include "chatmon/config.h"
#include "chatmon/metrics.h"
#include "chatmon/relay.h"
#include "chatmon/session.h"

struct event_base;
struct admin;

/*
 * Listens on cfg->admin. m, relay and srv are borrowed and must outlive it;
 * srv may be set later (admin_set_server) because it is made after. NULL
 * with the reason in errs when the address cannot be bound.
 */
struct admin *admin_new(struct event_base *, const struct config *cfg,
	    struct metrics *m, struct relay *relay, struct sbuf *errs);
void	admin_set_server(struct admin *, struct session_server *);
/* The token may change live; the address may not. */
void	admin_set_config(struct admin *, const struct config *cfg);
void	admin_free(struct admin *);

#endif
