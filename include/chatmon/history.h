/* history: each conversation's last chat turns, both sides, written to Redis for the dashboard's conversation view (issue 15's contract, section 2). */
#ifndef CHATMON_HISTORY_H
#define CHATMON_HISTORY_H

#include <stddef.h>

#include "chatmon/config.h"
#include "chatmon/histfmt.h"
#include "chatmon/metrics.h"

struct event_base;
struct history;

/*
 * A Redis connection of its own on base; base and m are borrowed and must
 * outlive it, cfg is copied. history.turns 0 writes nothing and connects
 * nowhere. NULL on ENOMEM, with the reason in errs.
 */
struct history *history_new(struct event_base *base, const struct config *cfg,
	    struct metrics *m, struct sbuf *errs);
/* A reloaded configuration: bounds, prefix, and a new Redis target. */
void	history_set_config(struct history *, const struct config *cfg);
/*
 * Records turn t of conversation conv (conv_len bytes): LPUSH, LTRIM and
 * PEXPIRE in one MULTI, sent with the other turns of the same 5 ms. Never
 * waits and never keeps a turn longer: with Redis away, or too many turns
 * unanswered, the turn is counted lost and forgotten (a history is a
 * convenience; chat traffic never waits on it). Everything is the
 * caller's and copied.
 */
void	history_turn(struct history *, const char *conv, size_t conv_len,
	    const struct histfmt_turn *t);
/* Before the event base goes; turns gathered or unanswered are counted lost. NULL is fine. */
void	history_free(struct history *);

#endif
