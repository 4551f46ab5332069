/* relay: every complete message through the pipeline, and what it says done: forward or drop, alerts out, warnings in, turns timed. */
#ifndef CHATMON_RELAY_H
#define CHATMON_RELAY_H

#include <stddef.h>
#include <stdint.h>

#include "chatmon/config.h"
#include "chatmon/metrics.h"
#include "chatmon/notes.h"
#include "chatmon/slaclock.h"

enum relay_dir {
	RELAY_UP,	/* agent -> backend: chat turns by the agent */
	RELAY_DOWN,	/* backend -> agent: chat turns by the customer */
};

enum relay_verdict {
	RELAY_PASS,
	RELAY_DROP,	/* the message must not be forwarded */
};

/*
 * Who a message belongs to, and how to reach the agent: inject queues a
 * text frame to the agent only (never to the backend), unordered ahead of
 * the backend's queued messages or ordered after them (struct
 * pipeline_alert); flow (may be NULL) pauses reading from the agent (busy
 * 1) while what it sent keeps chatmond busy (its note acks wait for
 * Redis), and lets it go on (0). The strings are the session's; the
 * session zeroes it.
 */
struct relay_peer {
	const char	*agent;		/* "" when the agent gave no id */
	const char	*shop;		/* what the connection names (shop_id); "" none */
	const char	*queue;		/* (queue_id); "" none */
	/*
	 * shop_id (queue_id) is a claim of the agent's verified token: the
	 * agent's own frames do not choose another (relay_message)
	 */
	int		 shop_fixed;
	int		 queue_fixed;
	int		 label_told;	/* a frame's other shop or queue was logged */
	uint64_t	 session;	/* the session's serial number */
	void		(*inject)(void *ctx, const char *frame, size_t len,
			    int ordered);
	void		(*flow)(void *ctx, int busy);
	void		*ctx;
	struct slaclock_peer sla;	/* the SLA clock's: conversations last seen here */
	struct notes_peer notes;	/* the notes' (relay_peer_opened): where this agent's notes go */
};

/*
 * The relay keeps a pointer to metrics (owned by the caller, outliving the
 * relay) and builds its own codec and rule set from cfg (cfg may be freed
 * afterwards). relay_set_config swaps both at once, or neither.
 */
struct event_base;

struct relay *relay_new(struct event_base *base, const struct config *cfg,
    struct metrics *m, struct sbuf *errs);
/* Loads what cfg names (codec, rules) and frees it: 0, or -1 with errs. No I/O beyond the files. */
int	relay_check(const struct config *cfg, struct sbuf *errs);
/* Applies a reloaded configuration; on failure the old one stays. */
int	relay_set_config(struct relay *, const struct config *cfg,
	    struct sbuf *errs);
/*
 * relay_set_config in two steps, for a reload that compiles off the loop:
 * relay_prepare reads and compiles what cfg names (codec, rule packs,
 * model) and touches nothing else, so any thread may run it; relay_apply
 * (the loop's thread) swaps it in, or keeps the old on failure, and takes
 * next in either case. NULL or -1 with errs. With old non-NULL, what was
 * replaced is not freed but handed back in *old (the caller's: freeing a
 * pack takes the loop a few hundred milliseconds, mostly PCRE2's JIT
 * code unmapped), else freed.
 */
struct relay_next;
struct relay_next *relay_prepare(const struct config *cfg, struct sbuf *errs);
int	relay_apply(struct relay *, const struct config *cfg,
	    struct relay_next *next, struct relay_next **old, struct sbuf *errs);
void	relay_next_free(struct relay_next *);
/* Inspects one complete message; data stays the caller's. */
enum relay_verdict relay_message(struct relay *, struct relay_peer *,
	    enum relay_dir, int binary, const char *data, size_t len);
/*
 * The agent's connection is upgraded and takes frames: supervisors' notes
 * for its agent come to it from now on, those waiting first.
 */
void	relay_peer_opened(struct relay *, struct relay_peer *);
/* The agent's connection is gone: its conversations go on without it. */
void	relay_peer_closed(struct relay *, struct relay_peer *);
/* The relay's part of /metrics: rule hits by category, severity and action, and the SLA's. */
int	relay_metrics(const struct relay *, struct sbuf *out);
/* For STATUS= and /readyz. */
size_t	relay_conversations(const struct relay *);
size_t	relay_open_rounds(const struct relay *);
size_t	relay_rules(const struct relay *);
/*
 * At exit, once no turn comes: the last snapshot of the day's figures
 * (redis.takeover 0) goes to Redis.
 */
void	relay_final(struct relay *);
/*
 * Calls to Redis about conversations, and the last snapshot, not answered
 * yet (a shutdown waits for them).
 */
size_t	relay_inflight(const struct relay *);
/*
 * Calls about conversations, and alerts, waiting for a connection to Redis
 * that is being made: a stop waits for it, within the shutdown grace.
 */
size_t	relay_connecting(const struct relay *);
/*
 * A shutdown's: the connections to Redis between attempts that have turns
 * or alerts waiting try again now, not after their backoff; and how many
 * turns still wait for Redis (at exit: never sent, the next instance will
 * not know them).
 */
void	relay_hurry(struct relay *);
size_t	relay_waiting(const struct relay *);
/* 1 when Redis is connected or alerts are being spooled. */
int	relay_alerts_ready(const struct relay *);
/* The folded alerts still owed sent now (alert_flush): a shutdown's. */
void	relay_alerts_flush(struct relay *);
/* 1 while alerts sent to Redis wait for its answer (alert_in_flight). */
int	relay_alerts_in_flight(const struct relay *);
/* One log line per agent with its SLA figures. */
void	relay_log_figures(const struct relay *);
/* Before the event base: the SLA timers are events on it. */
void	relay_free(struct relay *);

#endif
