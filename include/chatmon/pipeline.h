/* pipeline: one chat turn through the rules, blocking and the SLA, in that order (pure): what to publish, tell the agent and time. */
#ifndef CHATMON_PIPELINE_H
#define CHATMON_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "chatmon/alertfmt.h"
#include "chatmon/detect.h"
#include "chatmon/sla.h"

/*
 * The one place the order of a turn's handling is written: the live relay
 * (real clock, Redis-backed SLA state) and chatmon replay (the log's clock,
 * in-memory state) both hand each turn here and carry out what comes back.
 * Every rule runs on the turn; a block stops the message and, since the
 * customer never sees it, it answers nothing: only a turn that goes
 * through is timed. Due SLA events come back through here too, so that an
 * SLA alert and its warning are made in one place as well.
 */

/* One chat turn, or the end of a conversation. Strings are the caller's. */
struct pipeline_turn {
	int		 customer;	/* the customer's turn, else the agent's */
	const char	*agent;		/* "" when the agent gave no id */
	const char	*conversation;
	size_t		 conversation_len;
	const char	*text;		/* UTF-8, unescaped; NULL for an end frame */
	size_t		 text_len;
	int64_t		 now_ms;	/* wall clock, or the log's */
	/*
	 * The clock the rules' windows and the copies age turns by: the
	 * monotonic clock live (a step of the wall clock must neither keep
	 * turns past window.time nor empty every window), the log's in replay.
	 */
	int64_t		 clock_ms;
	int		 robot;		/* a robot's or auto-reply: closes no round, joins no window */
	const char	*shop;		/* NUL-terminated, "" none: which rule packs run */
	const char	*queue;		/* NUL-terminated, "" none */
};

/*
 * An alert to publish and, when frame is not NULL, the warning the agent
 * gets. A turn gives at most one rule.hit alert however many rules it
 * broke (docs/alerts.md, schema v2): one event, one alert, one warning.
 */
struct pipeline_alert {
	const char		*json;		/* the alert object of docs/alerts.md */
	size_t			 json_len;
	int			 severity;	/* 0 info, 1 warn, 2 critical */
	const char		*what;		/* the strongest rule's id, or the SLA event's type */
	const struct rules_hit	*hit;		/* the strongest rule's; NULL for an SLA event */
	const struct alertfmt_hit *hits;	/* every rule's, strongest first */
	size_t			 nhits;		/* 0 for an SLA event */
	const char		*frame;		/* {"type":"chatmon.warning",...} or NULL */
	size_t			 frame_len;
	/*
	 * Unordered, the warning goes ahead of the backend's queued messages
	 * (about what the agent just typed); ordered, after them (an SLA
	 * warning must not arrive before the customer turn it is about).
	 */
	int			 ordered;
};

enum pipeline_sla {
	PIPELINE_SLA_NONE,	/* the turn is not timed (blocked) */
	PIPELINE_SLA_TURN,	/* time the turn */
	PIPELINE_SLA_END,	/* the conversation ended */
};

/* What to do with a turn; valid until the next call on the pipeline. */
struct pipeline_out {
	int				 drop;		/* the message must not be forwarded */
	enum pipeline_sla		 sla;
	int				 rule_error;	/* the rules could not run */
	/*
	 * A customer turn that is a copy of one already seen (src/copies.c:
	 * the same text in the conversation within 30 s, as Redis tells
	 * copies for SLA rounds): inspected alone, it joins no window, and
	 * the caller leaves it out of the conversation's history. Still
	 * timed: the SLA tells copies itself.
	 */
	int				 copy;
	const struct pipeline_alert	*alerts;	/* in the order to publish them */
	size_t				 nalerts;
};

struct pipeline;

/* detect and ids are borrowed and must outlive it; NULL on ENOMEM. */
struct pipeline	*pipeline_new(struct detect *, struct alertfmt_ids *);
void		 pipeline_free(struct pipeline *);

/*
 * One turn in, what to do out. -1 when memory ran out for an alert or a
 * warning: out is still what to do, less what could not be made.
 */
int	pipeline_turn(struct pipeline *, const struct pipeline_turn *,
	    struct pipeline_out *);
/*
 * Conversation conv ended at clock_ms (the pipeline_turn clock) without an
 * end frame: its idle end (sla.idle). Its turns are forgotten, as at an end
 * frame, and a message it shows after is the next conversation's.
 */
void	pipeline_end(struct pipeline *, const char *conv, size_t conv_len,
	    int64_t clock_ms);
/*
 * A due SLA event in: its alert, with the agent's warning for sla.warn and
 * sla.breach (an escalation is for supervisors). 0, or -1 on ENOMEM.
 */
int	pipeline_event(struct pipeline *, const struct sla_event *,
	    struct pipeline_out *);

#endif
