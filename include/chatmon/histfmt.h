/* histfmt: one chat turn as the JSON item of a conversation's history in Redis (pure; issue 15's contract, section 2). */
#ifndef CHATMON_HISTFMT_H
#define CHATMON_HISTFMT_H

#include <stddef.h>
#include <stdint.h>

#include "chatmon/util.h"

/* One turn; every string is the caller's. */
struct histfmt_turn {
	int64_t		 ts;		/* wall clock, ms since the epoch */
	int		 customer;	/* the customer's turn, else the agent's */
	const char	*agent;		/* the connection's agent ("" unknown) */
	const char	*text;		/* UTF-8, unescaped */
	size_t		 text_len;
	const char	*nick;		/* customer turns only; NULL: none */
	size_t		 nick_len;
	int		 blocked;	/* the turn never reached the customer */
	int		 robot;		/* a robot's or an auto-reply (protocol.robot) */
	const char	*alert;		/* the alert raised on it; NULL: none */
};

/*
 * A turn's text is kept to its first HISTFMT_TEXT_MAX bytes (a whole
 * character): an item is read whole by the dashboard's conversation view,
 * which fifty turns of a megabyte stalled for seconds (review).
 */
#define HISTFMT_TEXT_MAX	8192

/*
 * Appends {"ts":..,"role":..,"agent":..,"text":..} plus "nick", "robot",
 * "blocked", "alert" and "cut" (the text's whole length in bytes, when it
 * was cut to HISTFMT_TEXT_MAX) when they apply; the dashboard reads these
 * items back.
 * 0, or -1 on ENOMEM (out may then hold part of it: reset it).
 */
int	histfmt_item(struct sbuf *out, const struct histfmt_turn *);

#endif
