/* alertfmt: the alert object of design.md as JSON: the same bytes go to Redis, to the agent and out of chatmon replay (pure). */
#include <inttypes.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

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
alertfmt_get_word(char *out, size_t outlen, const char *json, size_t len,
    const char *key)
{
	char		 pat[32];
	const char	*p, *e;
	size_t		 n;
	int		 plen;

	/* v, id, ts, type, severity: well within the first 192 bytes */
	if (len > 192)
		len = 192;
	/* a quote inside a string is escaped: "key":" is a key, not chat text */
	plen = snprintf(pat, sizeof(pat), "\"%s\":\"", key);
	if (plen < 0 || (size_t)plen >= sizeof(pat) ||
	    (p = memmem(json, len, pat, (size_t)plen)) == NULL ||
	    (e = memchr(p + plen, '"', (size_t)(json + len - (p + plen)))) == NULL ||
	    (n = (size_t)(e - (p + plen))) == 0 || n >= outlen ||
	    memchr(p + plen, '\\', n) != NULL) {
		snprintf(out, outlen, "-");
		return;
	}
	memcpy(out, p + plen, n);
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

/* A string literal, its length counted by the compiler. */
#define ALERTFMT_LIT(out, lit)	sbuf_append((out), (lit), sizeof(lit) - 1)

/* ,"key":"value" (no comma when first); a NULL value is written as "". */
static int
alertfmt_kv(struct sbuf *out, const char *key, const char *v, size_t len, int first)
{
	return jsonw_key(out, key, first) == -1 ||
	    jsonw_str(out, v != NULL ? v : "", v != NULL ? len : 0) == -1 ? -1 : 0;
}

static int
alertfmt_kvs(struct sbuf *out, const char *key, const char *v)
{
	return alertfmt_kv(out, key, v, v != NULL ? strlen(v) : 0, 0);
}

int
alertfmt_hit_cmp(const struct alertfmt_hit *a, const struct alertfmt_hit *b)
{
	if (a->hit.action != b->hit.action)
		return a->hit.action > b->hit.action ? -1 : 1;
	if (a->hit.severity != b->hit.severity)
		return a->hit.severity > b->hit.severity ? -1 : 1;
	return 0;
}

/*
 * What follows a hit's rule, category, severity, action (and, at the top,
 * the text): where it matched, the coaching, and the two marks a hit may
 * carry. The same names at the top of the alert (the strongest hit's) and
 * in "hits"; turns is the hit's span in "hits", the text's at the top.
 */
static int
alertfmt_hit_rest(struct sbuf *out, const struct alertfmt_hit *x,
    unsigned turns)
{
	const struct rules_hit	*h = &x->hit;

	if (sbuf_printf(out, ",\"match\":{\"start\":%" PRIu32 ",\"end\":%" PRIu32 "}",
	    h->start, h->end) == -1 ||
	    alertfmt_kv(out, "matched", h->match, h->match_len, 0) == -1 ||
	    alertfmt_kvs(out, "message", h->message) == -1)
		return -1;
	/* a match across turns: the alert's text holds them, newest last, one per line */
	if (turns > 1 && sbuf_printf(out, ",\"turns\":%u", turns) == -1)
		return -1;
	if (x->vetoed && ALERTFMT_LIT(out, ",\"vetoed\":true") == -1)
		return -1;
	return 0;
}

/* One entry of "hits". */
static int
alertfmt_hit(struct sbuf *out, const struct alertfmt_hit *x)
{
	const struct rules_hit	*h = &x->hit;

	if (ALERTFMT_LIT(out, "{") == -1 ||
	    alertfmt_kv(out, "rule", h->rule, strlen(h->rule), 1) == -1 ||
	    alertfmt_kvs(out, "category", h->category) == -1 ||
	    alertfmt_kvs(out, "severity", rules_severity_name(h->severity)) == -1 ||
	    alertfmt_kvs(out, "action", rules_action_name(h->action)) == -1 ||
	    alertfmt_hit_rest(out, x, x->turns) == -1)
		return -1;
	return ALERTFMT_LIT(out, "}");
}

/*
 * Written field by field into out, with no document in between. The top
 * keeps v1's fields in v1's order (the strongest hit's), so a reader of v1
 * still reads the alert; "hits" comes last.
 */
/* ,"shop":…,"queue":… of a conversation that has them: nothing when it has none. */
static int
alertfmt_shop(struct sbuf *out, const char *shop, const char *queue)
{
	return (shop != NULL && *shop != '\0' &&
	    alertfmt_kvs(out, "shop", shop) == -1) ||
	    (queue != NULL && *queue != '\0' &&
	    alertfmt_kvs(out, "queue", queue) == -1) ? -1 : 0;
}

int
alertfmt_rule_hit(struct sbuf *out, const struct alertfmt_turn *t,
    const struct alertfmt_hit *hits, size_t n)
{
	const struct alertfmt_hit	*x = &hits[0];
	const struct rules_hit		*h = &x->hit;
	char				 ts[32];
	size_t				 i;

	alertfmt_ts(ts, t->wall_ms);
	if (ALERTFMT_LIT(out, "{\"v\":2") == -1 ||
	    alertfmt_kvs(out, "id", t->id) == -1 ||
	    alertfmt_kvs(out, "ts", ts) == -1 ||
	    alertfmt_kvs(out, "type", "rule.hit") == -1 ||
	    alertfmt_kvs(out, "severity", rules_severity_name(h->severity)) == -1 ||
	    alertfmt_kvs(out, "agent", t->agent) == -1 ||
	    alertfmt_kv(out, "conversation", t->conversation, t->conversation_len, 0) == -1 ||
	    alertfmt_shop(out, t->shop, t->queue) == -1 ||
	    alertfmt_kvs(out, "role", t->role) == -1 ||
	    alertfmt_kvs(out, "category", h->category) == -1 ||
	    alertfmt_kvs(out, "rule", h->rule) == -1 ||
	    alertfmt_kvs(out, "action", rules_action_name(h->action)) == -1 ||
	    /* the length goes along, so text with U+0000 stays whole */
	    alertfmt_kv(out, "text", t->text, t->text_len, 0) == -1 ||
	    /* the top's turns are the text's: how to read it whole */
	    alertfmt_hit_rest(out, x, t->turns) == -1 ||
	    ALERTFMT_LIT(out, ",\"hits\":[") == -1)
		return -1;
	for (i = 0; i < n; i++)
		if ((i > 0 && ALERTFMT_LIT(out, ",") == -1) ||
		    alertfmt_hit(out, &hits[i]) == -1)
			return -1;
	return ALERTFMT_LIT(out, "]}");
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
	return ALERTFMT_LIT(out, "{\"v\":2") == -1 ||
	    alertfmt_kvs(out, "id", id) == -1 ||
	    alertfmt_kvs(out, "ts", ts) == -1 ||
	    alertfmt_kvs(out, "type", alertfmt_sla_type(e)) == -1 ||
	    alertfmt_kvs(out, "severity", alertfmt_sla_severity(e)) == -1 ||
	    alertfmt_kvs(out, "agent", e->agent) == -1 ||
	    alertfmt_kv(out, "conversation", e->conversation, e->conversation_len, 0) == -1 ||
	    alertfmt_shop(out, e->shop, e->queue) == -1 ||
	    sbuf_printf(out, ",\"waited_ms\":%" PRId64 ",\"threshold_ms\":%" PRId64
	    ",\"first\":%s}", (int64_t)e->waited_ms, (int64_t)e->threshold_ms,
	    e->first ? "true" : "false") == -1 ? -1 : 0;
}

/*
 * The alert is already JSON: it is pasted in as it is rather than parsed
 * and printed again (this runs for every SLA timer that fires).
 */
int
alertfmt_warning(struct sbuf *out, const char *conversation,
    size_t conversation_len, const char *alert, size_t alert_len, int blocked)
{
	return ALERTFMT_LIT(out, "{\"type\":\"chatmon.warning\"") == -1 ||
	    alertfmt_kv(out, "conversation", conversation, conversation_len, 0) == -1 ||
	    ALERTFMT_LIT(out, ",\"alert\":") == -1 ||
	    sbuf_append(out, alert, alert_len) == -1 ||
	    sbuf_printf(out, ",\"blocked\":%s}", blocked ? "true" : "false") == -1 ? -1 : 0;
}
