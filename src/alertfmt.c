/* alertfmt: the alert object of design.md as JSON: the same bytes go to Redis, to the agent and out of chatmon replay (pure). */
#include <inttypes.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "chatmon/alertfmt.h"
#include "chatmon/jsonw.h"
#include "chatmon/sla.h"

void
alertfmt_id(char out[ALERTFMT_ID_MAX], int64_t wall_ms, struct alertfmt_ids *ids)
{
	snprintf(out, ALERTFMT_ID_MAX, "%013" PRId64 "-%08" PRIx32 "-%010" PRIu64,
	    wall_ms, ids->instance, ++ids->seq);
}

void
alertfmt_get_id(char out[ALERTFMT_ID_MAX], const char *json, size_t len)
{
	static const char	key[] = "\"id\":\"";
	const char		*p, *e;
	size_t			 n;

	/* ids are made of digits, hex and '-': no escapes to undo */
	if (len > 64)
		len = 64;
	if ((p = memmem(json, len, key, sizeof(key) - 1)) != NULL)
		p += sizeof(key) - 1;
	if (p == NULL ||
	    (e = memchr(p, '"', (size_t)(json + len - p))) == NULL ||
	    (n = (size_t)(e - p)) == 0 || n >= ALERTFMT_ID_MAX) {
		snprintf(out, ALERTFMT_ID_MAX, "-");
		return;
	}
	memcpy(out, p, n);
	out[n] = '\0';
}

void
alertfmt_ts(char out[32], int64_t wall_ms)
{
	time_t		t = (time_t)(wall_ms / 1000);
	struct tm	tm;

	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + strlen(out), 8, ".%03dZ", (int)(wall_ms % 1000));
}

int
alertfmt_rule_hit(struct sbuf *out, const struct alertfmt_turn *t,
    const struct rules_hit *h)
{
	char	ts[32];
	json_t	*o;

	alertfmt_ts(ts, t->wall_ms);
	/* "s#" takes a length, so text with U+0000 stays whole */
	o = json_pack(
	    "{s:i, s:s, s:s, s:s, s:s, s:s, s:s#, s:s, s:s, s:s, s:s, s:s#, "
	    "s:{s:i, s:i}, s:s#, s:s}",
	    "v", 1,
	    "id", t->id,
	    "ts", ts,
	    "type", "rule.hit",
	    "severity", rules_severity_name(h->severity),
	    "agent", t->agent,
	    "conversation", t->conversation, (int)t->conversation_len,
	    "role", t->role,
	    "category", h->category,
	    "rule", h->rule,
	    "action", rules_action_name(h->action),
	    "text", t->text, (int)t->text_len,
	    "match", "start", (json_int_t)h->start, "end", (json_int_t)h->end,
	    "matched", h->match, (int)h->match_len,
	    "message", h->message);
	/* a match across turns: text holds them, newest last, one per line */
	if (o != NULL && t->turns > 1 &&
	    json_object_set_new(o, "turns", json_integer(t->turns)) == -1) {
		json_decref(o);
		o = NULL;
	}
	if (o != NULL && t->vetoed &&
	    json_object_set_new(o, "vetoed", json_true()) == -1) {
		json_decref(o);
		o = NULL;
	}
	return jsonw_dump(out, o);
}

const char *
alertfmt_sla_type(const struct sla_event *e)
{
	static const char *const t[] = { "sla.warn", "sla.breach", "sla.escalate" };

	return t[e->type];
}

/* warn is for the agent, breach for supervisors too, escalate is critical */
const char *
alertfmt_sla_severity(const struct sla_event *e)
{
	static const char *const s[] = { "info", "warn", "critical" };

	return s[e->type];
}

/* The same shape as alertfmt_id's, so ids still sort by time. */
static void
alertfmt_round_id(char out[ALERTFMT_ID_MAX], const struct sla_event *e)
{
	uint32_t	h = util_fnv1a32(e->conversation, e->conversation_len);

	snprintf(out, ALERTFMT_ID_MAX, "%013" PRId64 "-%08" PRIx32 "-%09" PRIu64 "%u",
	    e->due, h, (uint64_t)(e->opened < 0 ? 0 : e->opened) % 1000000000u,
	    (unsigned)e->type);
}

int
alertfmt_sla(struct sbuf *out, struct alertfmt_ids *ids, const struct sla_event *e)
{
	char	ts[32], id[ALERTFMT_ID_MAX];

	if (ids->by_round)
		alertfmt_round_id(id, e);
	else
		alertfmt_id(id, e->due, ids);
	alertfmt_ts(ts, e->due);
	return jsonw_dump(out, json_pack(
	    "{s:i, s:s, s:s, s:s, s:s, s:s, s:s#, s:I, s:I, s:b}",
	    "v", 1,
	    "id", id,
	    "ts", ts,
	    "type", alertfmt_sla_type(e),
	    "severity", alertfmt_sla_severity(e),
	    "agent", e->agent,
	    "conversation", e->conversation, (int)e->conversation_len,
	    "waited_ms", (json_int_t)e->waited_ms,
	    "threshold_ms", (json_int_t)e->threshold_ms,
	    "first", e->first));
}

/*
 * The alert is already JSON: it is pasted in as it is rather than parsed
 * and printed again (this runs for every SLA timer that fires).
 */
int
alertfmt_warning(struct sbuf *out, const char *conversation,
    size_t conversation_len, const char *alert, size_t alert_len, int blocked)
{
	json_t	*c;
	char	*s;
	int	 rc = -1;

	if ((c = json_stringn(conversation, conversation_len)) == NULL)
		return -1;
	if ((s = json_dumps(c, JSON_ENCODE_ANY)) != NULL &&
	    sbuf_printf(out, "{\"type\":\"chatmon.warning\",\"conversation\":%s,"
	    "\"alert\":", s) == 0 && sbuf_append(out, alert, alert_len) == 0 &&
	    sbuf_printf(out, ",\"blocked\":%s}", blocked ? "true" : "false") == 0)
		rc = 0;
	free(s);
	json_decref(c);
	return rc;
}
