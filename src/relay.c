/* relay: the pipeline every complete message passes through; the only file that knows its order. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chatmon/alert.h"
#include "chatmon/alertfmt.h"
#include "chatmon/codec.h"
#include "chatmon/detect.h"
#include "chatmon/log.h"
#include "chatmon/model.h"
#include "chatmon/relay.h"
#include "chatmon/rules.h"
#include "chatmon/slaclock.h"
#include "chatmon/snapshot.h"

struct relay_hits {
	char		*category;
	int		 severity, action;
	uint64_t	 n;
};

struct relay {
	struct codec	*codec;
	struct rules	*rules;
	struct detect	*detect;	/* the rules on a turn and on its speaker's last turns */
	struct model	*model;		/* the second opinion, or NULL */
	struct slaclock	*sla;
	struct alert	*sink;
	struct snapshot	*snap;
	struct metrics	*metrics;
	struct alertfmt_ids ids;	/* every alert of this process */
	struct relay_hits *hits;	/* rule hits by category, severity, action */
	size_t		 nhits;
	struct sbuf	 alert;		/* scratch, reused */
	struct sbuf	 frame;
};

/*
 * Every alert, rule hits and SLA events alike, leaves through here: one log
 * line, then Redis (src/alert.c). The alert holds chat text, personal data
 * that must not reach the journal at info: the line names the alert, and
 * the whole object is logged at debug only.
 */
static void
relay_publish(const char *json, size_t len, int severity, const char *what,
    const char *agent, const char *conv, size_t conv_len, void *arg)
{
	struct relay	*r = arg;
	char		 id[ALERTFMT_ID_MAX];
	int		 sla = strncmp(what, "sla.", 4) == 0;

	alertfmt_get_id(id, json, len);
	log_info("alert: id=%s type=%s%s%s agent=%s conversation=%.*s", id,
	    sla ? what : "rule.hit", sla ? "" : " rule=", sla ? "" : what,
	    agent[0] ? agent : "-", (int)conv_len, conv);
	log_debug("alert: %.*s", (int)len, json);
	alert_publish(r->sink, json, len, (enum alert_severity)severity, agent,
	    what, conv, conv_len);
}

struct relay *
relay_new(struct event_base *base, const struct config *cfg, struct metrics *m,
    struct sbuf *errs)
{
	struct relay	*r;

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		sbuf_line(errs, "relay_new: out of memory");
		return NULL;
	}
	r->metrics = m;
	/* distinct enough across instances started in the same second */
	r->ids.instance = (uint32_t)time(NULL) * 2654435761u ^
	    (uint32_t)getpid() << 16 ^ (uint32_t)util_mono_ns();
	r->ids.by_round = 1;	/* one event raised by two instances is one alert */
	if (relay_set_config(r, cfg, errs) == -1 ||
	    (r->sink = alert_new(base, cfg, m, errs)) == NULL ||
	    (r->sla = slaclock_new(base, cfg, m, &r->ids, relay_publish, r,
	    errs)) == NULL ||
	    (r->snap = snapshot_new(base, cfg, slaclock_engine(r->sla),
	    r->ids.instance, errs)) == NULL) {
		relay_free(r);
		return NULL;
	}
	return r;
}

/*
 * What relay_set_config would load, loaded and thrown away: chatmond -t
 * checks with it, and must not open the spool or reach Redis (systemd runs
 * -t on every ExecStartPre and ExecReload, next to the running daemon).
 */
int
relay_check(const struct config *cfg, struct sbuf *errs)
{
	struct codec	*c;
	struct rules	*ru = NULL;
	struct model	*m = NULL;
	int		 rc;

	if ((c = codec_new(&cfg->protocol, errs)) != NULL)
		ru = rules_load_dir(cfg->rules, 0, errs);
	if (cfg->model != NULL)
		m = model_new(cfg->model, errs);
	rc = c != NULL && ru != NULL && (cfg->model == NULL || m != NULL) ? 0 : -1;
	codec_free(c);
	rules_free(ru);
	model_free(m);
	return rc;
}

int
relay_set_config(struct relay *r, const struct config *cfg, struct sbuf *errs)
{
	struct codec		*c;
	struct rules		*ru = NULL;
	struct model		*m = NULL;
	struct window_conf	 wc;

	if ((c = codec_new(&cfg->protocol, errs)) == NULL ||
	    (ru = rules_load_dir(cfg->rules, 0, errs)) == NULL ||
	    (cfg->model != NULL && (m = model_new(cfg->model, errs)) == NULL))
		goto err;
	detect_window_conf(cfg, &wc);
	if (r->detect == NULL && (r->detect = detect_new(ru, &wc)) == NULL) {
		sbuf_line(errs, "relay_set_config: out of memory");
		goto err;
	}
	if (detect_set_model(r->detect, m) == -1) {
		sbuf_line(errs, "relay_set_config: out of memory");
		(void)detect_set_model(r->detect, r->model);	/* the old one stays */
		goto err;
	}
	detect_set_rules(r->detect, ru);
	detect_set_window(r->detect, &wc);
	codec_free(r->codec);
	rules_free(r->rules);
	model_free(r->model);
	r->codec = c;
	r->rules = ru;
	r->model = m;
	if (r->sla != NULL)
		slaclock_set_config(r->sla, cfg);
	if (r->sink != NULL)
		alert_set_config(r->sink, cfg);
	if (r->snap != NULL)
		snapshot_set_config(r->snap, cfg);
	log_info("relay_set_config: %zu rules from %s (%s)%s%s", rules_count(ru),
	    cfg->rules, rules_jit(ru) ? "JIT" : "interpreter: JIT unavailable",
	    m != NULL ? ", second opinion from " : "", m != NULL ? cfg->model : "");
	return 0;
err:
	codec_free(c);
	rules_free(ru);
	model_free(m);
	return -1;
}

void
relay_free(struct relay *r)
{
	if (r == NULL)
		return;
	snapshot_free(r->snap);	/* it reads the clock's engine */
	slaclock_free(r->sla);
	alert_free(r->sink);
	while (r->nhits > 0)
		free(r->hits[--r->nhits].category);
	free(r->hits);	/* after the clock: its last events still go out */
	codec_free(r->codec);
	detect_free(r->detect);
	rules_free(r->rules);
	model_free(r->model);
	sbuf_free(&r->alert);
	sbuf_free(&r->frame);
	free(r);
}

/* Counts a hit under its labels (a handful of combinations: a short array). */
static void
relay_count_hit(struct relay *r, const struct rules_hit *h)
{
	struct relay_hits	*nh;
	size_t			 i;

	for (i = 0; i < r->nhits; i++)
		if (r->hits[i].severity == (int)h->severity &&
		    r->hits[i].action == (int)h->action &&
		    strcmp(r->hits[i].category, h->category) == 0) {
			r->hits[i].n++;
			return;
		}
	if ((nh = realloc(r->hits, (r->nhits + 1) * sizeof(*nh))) == NULL)
		return;
	r->hits = nh;
	if ((nh[r->nhits].category = strdup(h->category)) == NULL)
		return;
	nh[r->nhits].severity = (int)h->severity;
	nh[r->nhits].action = (int)h->action;
	nh[r->nhits].n = 1;
	r->nhits++;
}

int
relay_metrics(const struct relay *r, struct sbuf *out)
{
	size_t	i;

	if (sbuf_printf(out, "# HELP chatmon_rule_hits_total Rule hits, by category, "
	    "severity and action\n# TYPE chatmon_rule_hits_total counter\n") == -1)
		return -1;
	/* categories are rule-file words ([A-Za-z0-9_.-]): no escaping needed */
	for (i = 0; i < r->nhits; i++)
		if (sbuf_printf(out, "chatmon_rule_hits_total{category=\"%s\","
		    "severity=\"%s\",action=\"%s\"} %llu\n", r->hits[i].category,
		    rules_severity_name((enum rules_severity)r->hits[i].severity),
		    rules_action_name((enum rules_action)r->hits[i].action),
		    (unsigned long long)r->hits[i].n) == -1)
			return -1;
	return slaclock_metrics(r->sla, out);
}

size_t
relay_conversations(const struct relay *r)
{
	return slaclock_conversations(r->sla);
}

size_t
relay_open_rounds(const struct relay *r)
{
	return slaclock_open_rounds(r->sla);
}

size_t
relay_rules(const struct relay *r)
{
	return rules_count(r->rules);
}

size_t
relay_inflight(const struct relay *r)
{
	return slaclock_inflight(r->sla);
}

int
relay_alerts_ready(const struct relay *r)
{
	return alert_ready(r->sink);
}

/*
 * One rule hit: the alert is made once and logged (the alert sink takes it
 * from here), and for warn and block the agent is told at once.
 */
static void
relay_rule_hit(struct relay *r, const struct relay_turn *t,
    const struct detect_hit *dh, int blocked)
{
	const struct rules_hit	*h = &dh->hit;
	struct alertfmt_turn	 at;
	char			 id[ALERTFMT_ID_MAX];

	r->metrics->rule_hits++;
	relay_count_hit(r, h);
	alertfmt_id(id, t->wall_ms, &r->ids);
	at.id = id;
	at.wall_ms = t->wall_ms;
	at.agent = t->peer->agent;
	at.conversation = t->conversation;
	at.conversation_len = t->conversation_len;
	at.role = t->role == RELAY_ROLE_AGENT ? "agent" : "customer";
	at.text = dh->text;
	at.text_len = dh->text_len;
	at.turns = dh->turns;
	sbuf_reset(&r->alert);
	if (alertfmt_rule_hit(&r->alert, &at, h) == -1) {
		log_warnx("relay_rule_hit: out of memory, alert for %s lost", h->rule);
		return;
	}
	relay_publish(r->alert.s, r->alert.len, (int)h->severity, h->rule,
	    t->peer->agent, t->conversation, t->conversation_len, r);
	if (h->action == RULES_FLAG || t->peer->inject == NULL)
		return;
	sbuf_reset(&r->frame);
	if (alertfmt_warning(&r->frame, t->conversation, t->conversation_len,
	    r->alert.s, r->alert.len, blocked) == -1) {
		log_warnx("relay_rule_hit: out of memory, warning for %s lost", h->rule);
		return;
	}
	t->peer->inject(t->peer->ctx, r->frame.s, r->frame.len, 0);
	r->metrics->rule_warnings++;
}

/*
 * The pipeline hook: every chat turn and every end of a conversation lands
 * here, in the order the relay saw them. The rules run on every turn for
 * its role; the SLA clock plugs in here too.
 */
static enum relay_verdict
relay_turn(struct relay *r, const struct relay_turn *t)
{
	const struct detect_hit	*hits;
	ssize_t			 n, i;
	int			 block = 0;

	if (t->text == NULL) {
		log_debug("relay_end: agent=%s conversation=%.*s role=%s",
		    t->peer->agent[0] ? t->peer->agent : "-",
		    (int)t->conversation_len, t->conversation,
		    t->role == RELAY_ROLE_AGENT ? "agent" : "customer");
		detect_end(r->detect, t->conversation, t->conversation_len);
		slaclock_end(r->sla, t);
		return RELAY_PASS;
	}
	log_debug("relay_turn: agent=%s conversation=%.*s role=%s bytes=%zu "
	    "wall_ms=%lld mono_ns=%llu",
	    t->peer->agent[0] ? t->peer->agent : "-",
	    (int)t->conversation_len, t->conversation,
	    t->role == RELAY_ROLE_AGENT ? "agent" : "customer", t->text_len,
	    (long long)t->wall_ms, (unsigned long long)t->mono_ns);

	/* a block across turns stops the message that completes it */
	if ((n = detect_turn(r->detect, t->role == RELAY_ROLE_AGENT ?
	    RULES_AGENT : RULES_CUSTOMER, t->conversation, t->conversation_len,
	    t->text, t->text_len, t->wall_ms, &hits)) == -1) {
		r->metrics->rule_errors++;
		n = 0;
	}
	for (i = 0; i < n; i++)
		if (hits[i].hit.action == RULES_BLOCK)
			block = 1;	/* rules never block a customer */
	for (i = 0; i < n; i++)
		relay_rule_hit(r, t, &hits[i], block);
	if (block) {
		/* the customer never saw it: it answers nothing */
		r->metrics->rule_blocks++;
		return RELAY_DROP;
	}
	slaclock_turn(r->sla, t, t->robot);
	return RELAY_PASS;
}

void
relay_peer_closed(struct relay *r, struct relay_peer *peer)
{
	slaclock_peer_closed(r->sla, peer);
}

void
relay_log_figures(const struct relay *r)
{
	slaclock_log_figures(r->sla);
}

enum relay_verdict
relay_message(struct relay *r, const struct relay_peer *peer,
    enum relay_dir dir, int binary, const char *data, size_t len)
{
	struct codec_frame	f;
	struct relay_turn	t;
	enum codec_kind		k;

	if (binary) {
		r->metrics->binary_messages++;
		return RELAY_PASS;
	}
	k = codec_decode(r->codec, data, len, &f);
	switch (k) {
	case CODEC_INVALID:
		r->metrics->frames_invalid++;
		return RELAY_PASS;
	case CODEC_OTHER:
		r->metrics->frames_other++;
		return RELAY_PASS;
	case CODEC_MALFORMED:
		r->metrics->frames_malformed++;
		log_debug("relay_message: agent=%s: chat frame passed untouched: %s",
		    peer->agent[0] ? peer->agent : "-", f.why);
		return RELAY_PASS;
	case CODEC_TURN:
	case CODEC_END:
		break;
	}
	t.peer = peer;
	t.role = dir == RELAY_UP ? RELAY_ROLE_AGENT : RELAY_ROLE_CUSTOMER;
	t.conversation = f.conversation;
	t.conversation_len = f.conversation_len;
	t.text = k == CODEC_TURN ? f.text : NULL;
	t.text_len = k == CODEC_TURN ? f.text_len : 0;
	t.mono_ns = util_mono_ns();
	t.wall_ms = util_wall_ms();
	t.robot = k == CODEC_TURN && f.robot;
	if (k == CODEC_TURN) {
		if (dir == RELAY_UP)
			r->metrics->turns_agent++;
		else
			r->metrics->turns_customer++;
	} else
		r->metrics->conversations_ended++;
	return relay_turn(r, &t);
}
