/* slaclock: the SLA engine on the loop and in Redis: turns in, deadlines as libevent timers, due events handed back. */
#ifndef CHATMON_SLACLOCK_H
#define CHATMON_SLACLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "chatmon/config.h"
#include "chatmon/metrics.h"
#include "chatmon/pipeline.h"
#include "chatmon/sla.h"

struct event_base;
struct slaclock;
struct slaclock_conv;

/*
 * Where conversations were last seen: one per agent session, embedded by
 * the caller (zeroed), so that a due warning reaches that agent. The
 * list is the clock's.
 */
struct slaclock_peer {
	struct slaclock_conv	*convs;
};

/*
 * What to do with a due event, handed back to the caller (the relay makes
 * the alert and carries it out): tell the agent of `where` (NULL: nobody
 * to tell), publish it to the supervisors, or both. The two may come
 * apart: the agent is told at once, the supervisors once Redis says this
 * instance is the one that raises it. The event's strings are the clock's.
 */
#define SLACLOCK_TELL		0x1
#define SLACLOCK_PUBLISH	0x2
typedef void (*slaclock_due_cb)(const struct sla_event *, unsigned how,
    struct slaclock_peer *where, void *arg);

/*
 * A conversation ends by its idle end (sla.idle): told before it is
 * forgotten, with its id, for what the caller keeps of it (windows).
 */
typedef void (*slaclock_idle_cb)(const char *conv, size_t len, void *arg);

/*
 * base, m and the callbacks' arg are borrowed and must outlive the clock;
 * cfg is copied; instance tags this process in Redis. NULL with a reason
 * in errs.
 */
struct slaclock *slaclock_new(struct event_base *base, const struct config *cfg,
	    struct metrics *m, uint32_t instance, slaclock_due_cb due,
	    slaclock_idle_cb idle, void *arg, struct sbuf *errs);
/* New thresholds apply to rounds that open from now on. */
void	slaclock_set_config(struct slaclock *, const struct config *cfg);
/* A turn the pipeline says to time, seen on the session of `where`. */
void	slaclock_turn(struct slaclock *, const struct pipeline_turn *,
	    struct slaclock_peer *where);
/* An end frame. */
void	slaclock_end(struct slaclock *, const struct pipeline_turn *);
/*
 * The agent's connection closed: its conversations go on (the customers
 * still wait), with no session to tell.
 */
void	slaclock_peer_closed(struct slaclock *, struct slaclock_peer *);
/*
 * The SLA part of /metrics in the Prometheus text format: open rounds and
 * conversations, the response-time histogram, and the figures per agent.
 */
int	slaclock_metrics(const struct slaclock *, struct sbuf *out);
size_t	slaclock_conversations(const struct slaclock *);
/* Calls to Redis not answered yet: a shutdown lets them finish. */
size_t	slaclock_inflight(const struct slaclock *);
/* Calls waiting for a connection to Redis being made (convstore_connecting). */
size_t	slaclock_connecting(const struct slaclock *);
/* Calls waiting for Redis, connecting or not (convstore_waiting). */
size_t	slaclock_waiting(const struct slaclock *);
/* Calls waiting for Redis between its attempts: one now (convstore_hurry). */
void	slaclock_hurry(struct slaclock *);
size_t	slaclock_open_rounds(const struct slaclock *);
/* One log line per agent with its figures. */
void	slaclock_log_figures(const struct slaclock *);
/*
 * The shop and queue conversation id keeps (its first turn's), when the
 * clock holds it: 1 with *shop and *queue set (the engine's), else 0.
 */
int	slaclock_conv_shop(const struct slaclock *, const char *id, size_t len,
	    const char **shop, const char **queue);
/* The engine, to read (state snapshots); owned by the clock. */
const struct sla *slaclock_engine(const struct slaclock *);
void	slaclock_free(struct slaclock *);

#endif
