/* pipeline: one chat turn through the rules, blocking and the SLA, in that order (pure): what to publish, tell the agent and time. */
#include <stdlib.h>
#include <string.h>

#include "chatmon/copies.h"
#include "chatmon/normalize.h"
#include "chatmon/pipeline.h"

/*
 * Customer messages remembered for telling copies (src/copies.c): far more
 * than 30 s of any one process's chats; past it the oldest are forgotten
 * (a copy of those then counts again, as before copies were told).
 */
#define PIPELINE_COPIES_MAX	200000

/*
 * Alerts and warnings are written one after another into two buffers kept
 * from call to call, so a turn allocates nothing once they have grown;
 * while they grow the pointers may move, so an alert remembers offsets
 * and gets its pointers when the turn is done.
 */
struct pipeline_span {
	size_t	json, frame;		/* offsets; frame SIZE_MAX: none */
};

struct pipeline {
	struct detect		*detect;
	struct alertfmt_ids	*ids;
	struct copies		*copies;	/* customer messages of the last 30 s */
	struct sbuf		 json, frames;
	struct alertfmt_hit	*group;		/* the turn's hits, strongest first */
	size_t			 gcap;
	struct pipeline_alert	*alerts;
	struct pipeline_span	*spans;
	size_t			 nalerts, cap;
};

struct pipeline *
pipeline_new(struct detect *detect, struct alertfmt_ids *ids)
{
	struct pipeline	*p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->detect = detect;
	p->ids = ids;
	if ((p->copies = copies_new(PIPELINE_COPIES_MAX)) == NULL) {
		free(p);
		return NULL;
	}
	return p;
}

void
pipeline_free(struct pipeline *p)
{
	if (p == NULL)
		return;
	copies_free(p->copies);
	sbuf_free(&p->json);
	sbuf_free(&p->frames);
	free(p->group);
	free(p->alerts);
	free(p->spans);
	free(p);
}

static void
pipeline_begin(struct pipeline *p, struct pipeline_out *out)
{
	sbuf_reset(&p->json);
	sbuf_reset(&p->frames);
	p->nalerts = 0;
	memset(out, 0, sizeof(*out));
}

/* Back to len bytes: what a failed append left is not an alert. */
static void
pipeline_cut(struct sbuf *b, size_t len)
{
	if (b->s != NULL) {
		b->len = len;
		b->s[len] = '\0';
	}
}

/* A slot for one more alert, its json and frame offsets set; NULL on ENOMEM. */
static struct pipeline_alert *
pipeline_slot(struct pipeline *p)
{
	struct pipeline_alert	*a;
	struct pipeline_span	*s;
	size_t			 ncap;

	if (p->nalerts == p->cap) {
		ncap = p->cap ? p->cap * 2 : 4;
		if ((a = realloc(p->alerts, ncap * sizeof(*a))) == NULL)
			return NULL;
		p->alerts = a;
		if ((s = realloc(p->spans, ncap * sizeof(*s))) == NULL)
			return NULL;
		p->spans = s;
		p->cap = ncap;
	}
	a = &p->alerts[p->nalerts];
	memset(a, 0, sizeof(*a));
	p->spans[p->nalerts].json = p->json.len;
	p->spans[p->nalerts].frame = SIZE_MAX;
	return a;
}

/*
 * The alert just written after the slot's json offset is kept; with
 * warn, the agent's warning (blocked or not) is made of it. 0, or -1 when
 * the warning could not be made (the alert stays).
 */
static int
pipeline_keep(struct pipeline *p, struct pipeline_alert *a, const char *conv,
    size_t conv_len, int warn, int blocked)
{
	struct pipeline_span	*s = &p->spans[p->nalerts];
	size_t			 flen = p->frames.len;
	int			 rc = 0;

	a->json_len = p->json.len - s->json;
	p->nalerts++;
	if (!warn)
		return 0;
	if (alertfmt_warning(&p->frames, conv, conv_len, p->json.s + s->json,
	    a->json_len, blocked) == -1) {
		pipeline_cut(&p->frames, flen);
		rc = -1;
	} else {
		s->frame = flen;
		a->frame_len = p->frames.len - flen;
	}
	return rc;
}

/* The buffers are final: the alerts get their pointers. */
static void
pipeline_done(struct pipeline *p, struct pipeline_out *out)
{
	size_t	i;

	for (i = 0; i < p->nalerts; i++) {
		p->alerts[i].json = p->json.s + p->spans[i].json;
		p->alerts[i].frame = p->spans[i].frame == SIZE_MAX ? NULL :
		    p->frames.s + p->spans[i].frame;
	}
	out->alerts = p->alerts;
	out->nalerts = p->nalerts;
}

/*
 * The one text every offset of the alert counts in: the turn, or, when a
 * hit spans turns, the widest such hit's (src/detect.c: the turns its
 * match spans joined, this turn whole and last), which holds every other
 * hit's text; NULL for the turn.
 */
static const struct detect_hit *
pipeline_text(const struct pipeline_turn *t, const struct detect_hit *dh,
    size_t n)
{
	const struct detect_hit	*w = NULL;
	size_t			 i;

	for (i = 0; i < n; i++)
		if (dh[i].text != t->text && (w == NULL || dh[i].turns > w->turns))
			w = &dh[i];
	return w;
}

/*
 * The turn's hits into p->group, strongest first, their offsets moved
 * into w's text (the turn's own and the model's by where the turn starts
 * in it, a narrower one across turns by where its turns start); a tie
 * keeps detect's order (the turn's own hits by longest match, then those
 * across turns, then the model's). Insertion: a turn breaks a handful of
 * rules at most.
 */
static int
pipeline_group(struct pipeline *p, const struct pipeline_turn *t,
    const struct detect_hit *dh, size_t n, const struct detect_hit *w)
{
	struct alertfmt_hit	*g, x;
	size_t			 i, j;
	uint32_t		 by;

	if (n > p->gcap) {
		if ((g = realloc(p->group, n * sizeof(*g))) == NULL)
			return -1;
		p->group = g;
		p->gcap = n;
	}
	for (i = 0; i < n; i++) {
		x.hit = dh[i].hit;
		x.turns = dh[i].turns;
		x.vetoed = dh[i].vetoed;
		if (w != NULL && &dh[i] != w) {
			/* both in the window's one buffer, dh[i]'s a suffix of w's */
			by = (uint32_t)util_utf8_count(w->text,
			    dh[i].text == t->text ? w->last :
			    (size_t)(dh[i].text - w->text));
			x.hit.start += by;
			x.hit.end += by;
		}
		for (j = i; j > 0 && alertfmt_hit_cmp(&x, &p->group[j - 1]) < 0; j--)
			p->group[j] = p->group[j - 1];
		p->group[j] = x;
	}
	return 0;
}

/*
 * The turn's one alert, every hit in it, and the agent's warning unless
 * every rule only flags (then the strongest, first, is a flag).
 */
static int
pipeline_rule_hits(struct pipeline *p, const struct pipeline_turn *t,
    const struct detect_hit *dh, size_t n, int blocked)
{
	struct pipeline_alert	*a;
	struct alertfmt_turn	 at;
	const struct detect_hit	*w;
	char			 id[ALERTFMT_ID_MAX];
	size_t			 len = p->json.len;

	w = pipeline_text(t, dh, n);
	if (pipeline_group(p, t, dh, n, w) == -1 ||
	    (a = pipeline_slot(p)) == NULL)
		return -1;
	alertfmt_id(id, t->now_ms, p->ids);
	at.id = id;
	at.wall_ms = t->now_ms;
	at.agent = t->agent;
	at.conversation = t->conversation;
	at.conversation_len = t->conversation_len;
	at.shop = t->shop;
	at.queue = t->queue;
	at.role = t->customer ? "customer" : "agent";
	at.text = w != NULL ? w->text : t->text;
	at.text_len = w != NULL ? w->text_len : t->text_len;
	at.turns = w != NULL ? w->turns : 1;
	if (alertfmt_rule_hit(&p->json, &at, p->group, n) == -1) {
		pipeline_cut(&p->json, len);
		return -1;
	}
	a->severity = (int)p->group[0].hit.severity;
	a->what = p->group[0].hit.rule;
	a->hit = &p->group[0].hit;
	a->hits = p->group;
	a->nhits = n;
	return pipeline_keep(p, a, t->conversation, t->conversation_len,
	    p->group[0].hit.action != RULES_FLAG, blocked);
}

void
pipeline_end(struct pipeline *p, const char *conv, size_t conv_len,
    int64_t clock_ms)
{
	detect_end(p->detect, conv, conv_len);
	copies_end(p->copies, conv, conv_len, clock_ms);
}

int
pipeline_turn(struct pipeline *p, const struct pipeline_turn *t,
    struct pipeline_out *out)
{
	const struct detect_hit	*hits;
	const char		*conv;
	ssize_t			 n, i;
	int			 rc = 0;

	pipeline_begin(p, out);
	if (t->text == NULL) {
		pipeline_end(p, t->conversation, t->conversation_len,
		    t->clock_ms);
		out->sla = PIPELINE_SLA_END;
		return 0;
	}
	/*
	 * A message the customer said once is one turn of theirs however
	 * many of the agent's tabs showed it: a copy taking a window slot
	 * would push out what the customer really said before it.
	 */
	out->copy = t->customer && !t->robot && copies_seen(p->copies, t->conversation,
	    t->conversation_len, t->text, t->text_len, t->clock_ms) == 1;
	/*
	 * A robot's turn (the platform's greeting, an auto-reply) is nobody's
	 * words: inspected alone, it is no part of the customer's or the
	 * agent's last turns, so 定制商品不退款 from the robot and the
	 * customer's 那我差评 do not make the customer's threat.
	 */
	conv = out->copy || t->robot ? NULL : t->conversation;
	/* a block across turns stops the message that completes it */
	if ((n = detect_turn(p->detect, t->customer ? RULES_CUSTOMER :
	    RULES_AGENT, t->customer ? "" : t->agent,
	    t->shop != NULL ? t->shop : "", conv,
	    t->conversation_len, t->text,
	    t->text_len, t->clock_ms, &hits)) == -1) {
		out->rule_error = 1;
		n = 0;
	}
	for (i = 0; i < n; i++)
		if (hits[i].hit.action == RULES_BLOCK)
			out->drop = 1;	/* rules never block a customer */
	if (n > 0 && pipeline_rule_hits(p, t, hits, (size_t)n, out->drop) == -1)
		rc = -1;
	/* what the customer never saw is no part of what the agent said */
	if (out->drop)
		detect_forget(p->detect);
	/*
	 * the customer never saw a blocked reply: it answers nothing; nor
	 * does one that says nothing (found by review: a space, or "", closed
	 * the round, and an agent could stop every clock so)
	 */
	out->sla = out->drop || (!t->customer && !t->robot &&
	    norm_blank_text(t->text, t->text_len)) ? PIPELINE_SLA_NONE :
	    PIPELINE_SLA_TURN;
	pipeline_done(p, out);
	return rc;
}

int
pipeline_event(struct pipeline *p, const struct sla_event *e,
    struct pipeline_out *out)
{
	struct pipeline_alert	*a;
	size_t			 len;
	int			 rc = 0;

	pipeline_begin(p, out);
	len = p->json.len;
	if ((a = pipeline_slot(p)) == NULL ||
	    alertfmt_sla(&p->json, p->ids, e) == -1) {
		pipeline_cut(&p->json, len);
		return -1;
	}
	a->severity = (int)e->type;
	a->what = alertfmt_sla_type(e);
	a->ordered = 1;
	/* an escalation is for supervisors */
	if (pipeline_keep(p, a, e->conversation, e->conversation_len,
	    e->type != SLA_ESCALATE, 0) == -1)
		rc = -1;
	pipeline_done(p, out);
	return rc;
}
