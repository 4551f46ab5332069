/* slaclock: the SLA engine on the loop: turns in, deadlines as libevent timers, events out to the agent and the alert sink. */
#ifndef CHATMON_SLACLOCK_H
#define CHATMON_SLACLOCK_H

#include <stddef.h>

#include "chatmon/alertfmt.h"
#include "chatmon/config.h"
#include "chatmon/metrics.h"
#include "chatmon/relay.h"

struct event_base;
struct slaclock;

/*
 * Where finished alert objects go (the relay's alert sink): severity 0 info,
 * 1 warn, 2 critical; what is the event type. Strings are the caller's.
 */
typedef void (*slaclock_publish_cb)(const char *json, size_t len, int severity,
    const char *what, const char *agent, const char *conversation,
    size_t conversation_len, void *arg);

/*
 * base, m, ids and the callback's arg are borrowed and must outlive the
 * clock; cfg is copied. NULL with a reason in errs.
 */
struct slaclock *slaclock_new(struct event_base *base, const struct config *cfg,
	    struct metrics *m, struct alertfmt_ids *ids, slaclock_publish_cb publish,
	    void *arg, struct sbuf *errs);
/* New thresholds apply to rounds that open from now on. */
void	slaclock_set_config(struct slaclock *, const struct config *cfg);
/* A turn (robot: a robot's or auto-reply that does not close a round). */
void	slaclock_turn(struct slaclock *, const struct relay_turn *, int robot);
/* An end frame. */
void	slaclock_end(struct slaclock *, const struct relay_turn *);
/*
 * The agent's connection closed: its conversations go on (the customers
 * still wait), with no session to tell.
 */
void	slaclock_peer_closed(struct slaclock *, struct relay_peer *);
/*
 * The SLA part of /metrics in the Prometheus text format: open rounds and
 * conversations, the response-time histogram, and the figures per agent.
 */
int	slaclock_metrics(const struct slaclock *, struct sbuf *out);
size_t	slaclock_conversations(const struct slaclock *);
/* Calls to Redis not answered yet: a shutdown lets them finish. */
size_t	slaclock_inflight(const struct slaclock *);
size_t	slaclock_open_rounds(const struct slaclock *);
/* One log line per agent with its figures. */
void	slaclock_log_figures(const struct slaclock *);
/* The engine, to read (state snapshots); owned by the clock. */
const struct sla *slaclock_engine(const struct slaclock *);
void	slaclock_free(struct slaclock *);

#endif
