/* convstore: each conversation's SLA state in Redis, the source of truth (design.md): one script per turn, the deadlines swept with a lease. */
#ifndef CHATMON_CONVSTORE_H
#define CHATMON_CONVSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "chatmon/config.h"
#include "chatmon/sla.h"
#include "chatmon/util.h"

struct event_base;
struct convstore;

/* The buckets conversations are spread over (keys: docs/operations.md). */
#define CONVSTORE_BUCKETS	16

/* The bucket of conversation id: the hash tag of its keys (readers use it too). */
static inline uint32_t
convstore_bucket(const char *id, size_t len)
{
	return util_fnv1a32(id, len) % CONVSTORE_BUCKETS;
}

/*
 * What Redis answered about one conversation. ok 0: no answer (Redis went
 * away, or refused): the caller's memory decides. Strings are the
 * store's, valid during the callback.
 */
struct convstore_reply {
	int			 ok;
	int			 done;		/* turn: 1; fire: this caller marked the event; end: it ended */
	int			 exists;	/* the conversation is (still) in Redis */
	/*
	 * turn, end: Redis had this call already (it was sent again after its
	 * connection went); fire: Redis had it, and it marked the event then:
	 * the caller charges (and raises) what it did itself, once
	 */
	int			 stale;
	/*
	 * turn, end answered stale: Redis's run of it then closed or ended a
	 * round (its answer went with the connection): the caller charges it;
	 * otherwise another call did, and it charges nothing
	 */
	int			 stale_closed;
	/*
	 * turn: it opened a round of another shop's conversation (shop,
	 * queue) with no deadline: the caller plans it by that shop
	 * (convstore_plan)
	 */
	int			 other_shop;
	/*
	 * claim: that round is still unplanned (its instance died before
	 * convstore_plan): the claimer plans it by the record's shop
	 */
	int			 unplanned;
	struct sla_conv_state	 st;
	const char		*agent;		/* the conversation's agent ("" unknown) */
	const char		*shop;		/* its shop and queue ("" none) */
	const char		*queue;
	/* a round this call closed (answered) or ended (unanswered): charge it once */
	int			 charged;
	int			 answered;
	int			 first;
	int64_t			 opened;
	int64_t			 at;
	const char		*charged_agent;
	const char		*charged_shop;	/* the round's conversation's */
	const char		*charged_queue;
	/*
	 * turn, end: the events of the round this call closed or ended (or
	 * found ended idle) that were due by then and that nobody had raised
	 * (no instance ran, or none swept it yet): this call marked them, and
	 * logged the breach and escalation; the caller publishes and charges
	 * them, once, in this (time) order. Each as the sweep would have
	 * raised it; conversation is not set (the caller's id), conv is NULL.
	 */
	size_t			 nraised;
	struct sla_event	 raised[3];
};

typedef void	(*convstore_cb)(const struct convstore_reply *, void *priv);
/*
 * A conversation another instance left behind: one of its deadlines is
 * past by more than redis.takeover and nobody raised it. The caller takes
 * it over (loads it and raises what is due). id is the store's.
 */
typedef void	(*convstore_claim_cb)(const char *id, size_t len,
		    const struct convstore_reply *, void *arg);

/*
 * A connection of its own on base (borrowed); cfg is copied; instance tags
 * the records this process writes (as it tags alert ids). redis.takeover
 * 0 turns the store off: convstore_up is then always 0. NULL with a reason
 * in errs.
 */
struct convstore *convstore_new(struct event_base *base, const struct config *cfg,
	    uint32_t instance, convstore_claim_cb claim, void *arg,
	    struct sbuf *errs);
void	convstore_set_config(struct convstore *, const struct config *cfg);
/* 1 when calls are answered now: on, and connected. */
int	convstore_up(const struct convstore *);
/*
 * 1 when calls are taken: on, and not too many waiting for Redis. A call
 * taken while Redis is away waits, and its callback comes when Redis is
 * back (ok 0 only if it never is before convstore_free).
 */
int	convstore_on(const struct convstore *);
/* Calls sent on a live connection and not answered yet. */
size_t	convstore_pending(const struct convstore *);
/*
 * Calls waiting for a connection that is being made: they go when it is
 * up. 0 while Redis is down between attempts (they would wait for nothing).
 */
size_t	convstore_connecting(const struct convstore *);
/* Calls waiting for Redis, whatever its state (CONVSTORE_WAIT_MAX at most). */
size_t	convstore_waiting(const struct convstore *);
/* With calls waiting, Redis tried again now, not after its backoff (a shutdown). */
void	convstore_hurry(struct convstore *);

enum convstore_turn_kind {
	CONVSTORE_CUSTOMER = 'c',	/* opens a round unless one is open */
	CONVSTORE_REPLY = 'a',		/* closes the open round */
	CONVSTORE_OTHER = 'r',		/* a robot's turn, either side: opens or closes nothing */
};

/*
 * Applies a turn at now to conversation id (len bytes) atomically: first
 * and later are the rounds a customer turn would open now (sla_round_plan),
 * with when the conversation ends unless another turn comes while a round
 * is open; idle_none is when it ends if the turn leaves none open
 * (sla_idle_at: wall time, not service time); text_hash
 * tells a customer turn sent again from a new one. agent may be "";
 * shop and queue (NULL or "": none) are kept by a record the turn creates.
 * holds: the caller holds the round this turn closes, and charges it itself
 * should the answer be lost; else Redis keeps what it charged for this
 * call, for the call sent again (stale: charged, with what it raised). cb
 * gets exactly one call (ok 0 if the store never answers). 0, or -1 when
 * the call was not taken (cb is not called).
 */
int	convstore_turn(struct convstore *, const char *id, size_t len,
	    const char *agent, const char *shop, const char *queue,
	    enum convstore_turn_kind, uint64_t text_hash,
	    const struct sla_conv_state *first, const struct sla_conv_state *later,
	    int64_t idle_none, int64_t now, int holds, convstore_cb cb, void *priv);
/*
 * Marks event type of the round held (the engine's state: the round that
 * opened at held->opened) as raised; done 1 when this call marked it
 * (raise it; with stale, it did so before its answer was lost), 0 when it
 * was already marked or that round is over. A Redis with no record of the
 * conversation at all (it lost it) is given held's round, with its agent,
 * shop and queue, and the event is marked on it. As convstore_turn
 * otherwise.
 */
int	convstore_fire(struct convstore *, const char *id, size_t len,
	    enum sla_event_type type, const struct sla_conv_state *held,
	    const char *agent, const char *shop, const char *queue,
	    convstore_cb cb, void *priv);
/*
 * The deadlines (plan: due and ms by event, opened the round's start) of
 * the round a turn answered other_shop opened, if it is still open, and
 * its idle end by the record's shop (plan's idle_at: the conversation
 * then ends no sooner).
 */
int	convstore_plan(struct convstore *, const char *id, size_t len,
	    const struct sla_conv_state *plan, convstore_cb, void *priv);
/*
 * Ends the conversation at `at` (an end frame), or, with idle set, only
 * if its idle end is at or before `at`; an open round is charged
 * unanswered; holds: the caller holds that round. As convstore_turn
 * otherwise.
 */
int	convstore_end(struct convstore *, const char *id, size_t len,
	    int64_t at, int idle, int holds, convstore_cb cb, void *priv);
/* Pending calls get ok 0. NULL is fine. */
void	convstore_free(struct convstore *);

#endif
