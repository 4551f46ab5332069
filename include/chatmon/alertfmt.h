/* alertfmt: the alert object of design.md as JSON: the same bytes go to Redis, to the agent and out of chatmon replay (pure). */
#ifndef CHATMON_ALERTFMT_H
#define CHATMON_ALERTFMT_H

#include <stddef.h>
#include <stdint.h>

#include "chatmon/rules.h"
#include "chatmon/util.h"

#define ALERTFMT_ID_MAX	48

/*
 * A unique, time-ordered id: the wall-clock milliseconds, the instance's
 * tag and a per-instance sequence, fixed-width so ids sort as text in the
 * order they were made.
 */
struct alertfmt_ids {
	uint32_t	instance;	/* random per process; 0 in chatmon replay */
	uint64_t	seq;
	/*
	 * SLA alerts get ids made of what they are about: the due time, a hash
	 * of the conversation, the round's open time and the event, so that
	 * two instances raising one event raise one alert (consumers drop by
	 * id). chatmon replay keeps the sequence.
	 */
	int		by_round;
};
void	alertfmt_id(char out[ALERTFMT_ID_MAX], int64_t wall_ms,
	    struct alertfmt_ids *);

/*
 * The id of an alert object made here (its "id" comes right after "v")
 * into out, "-" when there is none: what logs and errors may show of an
 * alert, which otherwise carries chat text.
 */
void	alertfmt_get_id(char out[ALERTFMT_ID_MAX], const char *json, size_t len);
/*
 * Its "type" or "severity" (key) the same way, into out of outlen bytes,
 * "-" when there is none or it does not fit: both come before any chat
 * text, so only the head of the object is looked at.
 */
void	alertfmt_get_word(char *out, size_t outlen, const char *json, size_t len,
	    const char *key);

/* "2026-11-22T10:00:00.123Z" into out (at least 25 bytes). */
void	alertfmt_ts(char out[32], int64_t wall_ms);

/*
 * Where a turn's rule hits happened. Strings are the caller's; lengths are
 * bytes. text is what every hit's offsets count in: the turn, or, when a
 * hit spans turns, the speaker's last turns joined (newest last).
 */
struct alertfmt_turn {
	const char	*id;
	int64_t		 wall_ms;
	const char	*agent;
	const char	*conversation;
	size_t		 conversation_len;
	const char	*shop;		/* the conversation's; NULL or "": none */
	const char	*queue;
	const char	*role;		/* "agent" | "customer" */
	const char	*text;
	size_t		 text_len;
	unsigned	 turns;		/* how many turns text holds; 0 or 1: the turn alone */
};

/* One rule a turn broke, its offsets counted in the alert's text. */
struct alertfmt_hit {
	struct rules_hit	 hit;	/* strings borrowed from the rules or the caller */
	unsigned		 turns;	/* > 1: the match spans that many turns, the last ones of text */
	int			 vetoed;	/* a rule's block the model did not back */
};

/*
 * The order of a turn's hits in its alert, strongest first: action (block,
 * warn, flag), then severity (critical, warn, info); a tie keeps the order
 * the hits came in. < 0 when a comes first.
 */
int	alertfmt_hit_cmp(const struct alertfmt_hit *a, const struct alertfmt_hit *b);

struct sla_event;

/* "sla.warn" | "sla.breach" | "sla.escalate", and their severities. */
const char *alertfmt_sla_type(const struct sla_event *);
const char *alertfmt_sla_severity(const struct sla_event *);
/*
 * Appends the alert object of an SLA event (its ts is when it was due) with
 * the next id of ids; 0, or -1 on ENOMEM.
 */
int	alertfmt_sla(struct sbuf *out, struct alertfmt_ids *ids,
	    const struct sla_event *);

/*
 * Appends the one rule.hit alert object (schema v2) of a turn's n >= 1
 * hits, given strongest first (alertfmt_hit_cmp): the strongest's fields at
 * the top, as v1 had them, and every hit in "hits". 0, or -1 on ENOMEM.
 */
int	alertfmt_rule_hit(struct sbuf *out, const struct alertfmt_turn *,
	    const struct alertfmt_hit *hits, size_t n);
/*
 * Appends the frame injected to the agent:
 * {"type":"chatmon.warning","conversation":…,"alert":ALERT,"blocked":…}
 * where alert is an object made by alertfmt_rule_hit or alertfmt_sla.
 */
int	alertfmt_warning(struct sbuf *out, const char *conversation,
	    size_t conversation_len, const char *alert, size_t alert_len,
	    int blocked);

#endif
