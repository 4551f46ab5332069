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

/* "2026-11-22T10:00:00.123Z" into out (at least 25 bytes). */
void	alertfmt_ts(char out[32], int64_t wall_ms);

/* Where a rule hit happened. Strings are the caller's; lengths are bytes. */
struct alertfmt_turn {
	const char	*id;
	int64_t		 wall_ms;
	const char	*agent;
	const char	*conversation;
	size_t		 conversation_len;
	const char	*role;		/* "agent" | "customer" */
	const char	*text;		/* the turn, or the turns a match spans, joined */
	size_t		 text_len;
	unsigned	 turns;		/* > 1: "turns" is in the alert */
	int		 vetoed;	/* a rule's block the model did not back */
};

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

/* Appends the rule.hit alert object to out; 0, or -1 on ENOMEM. */
int	alertfmt_rule_hit(struct sbuf *out, const struct alertfmt_turn *,
	    const struct rules_hit *);
/*
 * Appends the frame injected to the agent:
 * {"type":"chatmon.warning","conversation":…,"alert":ALERT,"blocked":…}
 * where alert is an object made by alertfmt_rule_hit.
 */
int	alertfmt_warning(struct sbuf *out, const char *conversation,
	    size_t conversation_len, const char *alert, size_t alert_len,
	    int blocked);

#endif
