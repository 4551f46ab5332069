/* notes: supervisors' whisper notes delivered to the agents connected here, and the workbench's acks written back (issue 15's contract, section 3). */
#ifndef CHATMON_NOTES_H
#define CHATMON_NOTES_H

#include <stddef.h>
#include <stdint.h>

#include "chatmon/config.h"
#include "chatmon/metrics.h"
#include "chatmon/notefmt.h"

struct event_base;
struct notes;

struct notes_ackreq;

/*
 * One agent connection as notes knows it, kept inside the session's
 * relay_peer: agent, session, inject and flow are the session's (inject
 * sends a text frame to the agent only; flow, when not NULL, pauses
 * reading from the agent with busy 1 and lets it go on with 0); the rest
 * is notes's.
 */
struct notes_peer {
	const char		*agent;
	uint64_t		 session;
	void			(*inject)(void *ctx, const char *frame,
				    size_t len, int ordered);
	void			(*flow)(void *ctx, int busy);
	void			*ctx;
	struct notes_peer	*prev, *next;
	int			 linked;
	struct notes_ackreq	*acks;		/* out to Redis */
	unsigned		 nacks;
	int			 busy;		/* flow told to pause */
};

/*
 * Two Redis connections of their own on base: one follows the notes'
 * stream (XREAD BLOCK), one asks and writes. base and m are borrowed and
 * must outlive it; cfg is copied. NULL on ENOMEM, with errs.
 */
struct notes *notes_new(struct event_base *base, const struct config *cfg,
	    struct metrics *m, struct sbuf *errs);
void	notes_set_config(struct notes *, const struct config *cfg);
/*
 * An agent's connection is ready for frames: from now on its notes come to
 * it, and the ones waiting for it (sent while it was away) are looked up.
 * A peer without an agent id is never registered. p is borrowed until
 * notes_peer_close.
 */
void	notes_peer_open(struct notes *, struct notes_peer *p);
/* Idempotent: the session may say it twice. */
void	notes_peer_close(struct notes *, struct notes_peer *p);
/*
 * The workbench of p says it has (or the agent has read) a note: recorded
 * in Redis, forward only, when the note is p's agent's; ignored otherwise.
 * Nothing waits for it; with Redis away the ack is lost (counted). While
 * many of p's acks wait for Redis, p's flow is told to pause.
 */
void	notes_ack(struct notes *, struct notes_peer *p,
	    const struct notefmt_ack *);
/* Before the event base goes. NULL is fine. */
void	notes_free(struct notes *);

#endif
