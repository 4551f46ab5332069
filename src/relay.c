/* relay: every complete message through the pipeline, and what it says done: forward or drop, alerts out, warnings in, turns timed. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chatmon/access.h"
#include "chatmon/alert.h"
#include "chatmon/alertfmt.h"
#include "chatmon/bintext.h"
#include "chatmon/codec.h"
#include "chatmon/detect.h"
#include "chatmon/history.h"
#include "chatmon/log.h"
#include "chatmon/model.h"
#include "chatmon/notefmt.h"
#include "chatmon/notes.h"
#include "chatmon/pipeline.h"
#include "chatmon/relay.h"
#include "chatmon/rulebook.h"
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
	struct rulebook	*book;		/* every pack, and which each shop runs */
	struct detect	*detect;	/* the rules on a turn and on its speaker's last turns */
	struct model	*model;		/* the second opinion, or NULL */
	double		 veto;		/* and the probability a block needs from it */
	struct pipeline	*pipe;		/* what to do with a turn or a due event */
	struct slaclock	*sla;
	struct alert	*sink;
	struct snapshot	*snap;
	struct history	*hist;		/* every chat turn, for the dashboard's conversation view */
	struct notes	*notes;		/* supervisors' notes in, the workbench's acks out */
	struct metrics	*metrics;
	struct alertfmt_ids ids;	/* every alert of this process */
	struct relay_hits *hits;	/* rule hits by category, severity, action */
	size_t		 nhits;
	char		**shops;	/* the configured shop ids, sorted */
	size_t		 nshops;
	int		 shops_refuse;	/* shops_unknown: refuse */
	struct bintext	*bt;		/* a binary message's text, as the backend reads it */
	int		 binary_pass;	/* protocol.binary: pass */
};

static int
relay_strcmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
relay_shops_free(char **v, size_t n)
{
	while (n > 0)
		free(v[--n]);
	free(v);
}

/* The configured shop ids, sorted, into *out; -1 on ENOMEM. */
static int
relay_shops_copy(const struct config *cfg, char ***out)
{
	char	**v = NULL;
	size_t	  i;

	*out = NULL;
	if (cfg->nshops == 0)
		return 0;
	if ((v = calloc(cfg->nshops, sizeof(*v))) == NULL)
		return -1;
	for (i = 0; i < cfg->nshops; i++)
		if ((v[i] = strdup(cfg->shops[i].id)) == NULL) {
			relay_shops_free(v, i);
			return -1;
		}
	qsort(v, cfg->nshops, sizeof(*v), relay_strcmp);
	*out = v;
	return 0;
}

/*
 * The shop or queue a frame names, when it is one (at most 64 bytes of an
 * agent id's characters: it goes into Redis keys, metric labels and logs);
 * else "" and the connection's counts.
 */
static const char *
relay_label(const char *s, size_t len)
{
	return s != NULL && access_agent_id_why(s, len) == NULL ? s : "";
}

/*
 * Every alert, rule hits and SLA events alike, leaves through here: one log
 * line, then Redis (src/alert.c). The alert holds chat text, personal data
 * that must not reach the journal at info: the line names the alert, and
 * the whole object is logged at debug only.
 */
static void
relay_publish(struct relay *r, const struct pipeline_alert *a,
    const char *agent, const char *conv, size_t conv_len)
{
	char	id[ALERTFMT_ID_MAX];
	int	sla = a->hit == NULL;

	alertfmt_get_id(id, a->json, a->json_len);
	log_info("alert: id=%s type=%s%s%s agent=%s conversation=%.*s", id,
	    sla ? a->what : "rule.hit", sla ? "" : " rule=", sla ? "" : a->what,
	    agent[0] ? agent : "-", (int)conv_len, conv);
	log_debug("alert: %.*s", (int)a->json_len, a->json);
	alert_publish(r->sink, a->json, a->json_len,
	    (enum alert_severity)a->severity, agent, a->what, conv, conv_len);
}

static void	relay_due(const struct sla_event *, unsigned, struct slaclock_peer *,
		    void *);
static void	relay_idle(const char *, size_t, void *);

/*
 * The spool's errors since mark (they begin with its path) put on the
 * configuration's redis.spool line, as the other files' are.
 */
static void
relay_spool_blame(const struct config *cfg, struct sbuf *errs, size_t mark)
{
	const char	*spool = cfg->redis.spool;

	if (spool != NULL && errs->len > mark &&
	    strncmp(errs->s + mark, spool, strlen(spool)) == 0)
		(void)config_blame(cfg, "redis.spool", errs, mark);
}

struct relay *
relay_new(struct event_base *base, const struct config *cfg, struct metrics *m,
    struct sbuf *errs)
{
	struct relay	*r;
	size_t		 mark;

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		sbuf_line(errs, "relay_new: out of memory");
		return NULL;
	}
	r->metrics = m;
	/* distinct enough across instances started in the same second */
	r->ids.instance = (uint32_t)time(NULL) * 2654435761u ^
	    (uint32_t)getpid() << 16 ^ (uint32_t)util_mono_ns();
	r->ids.by_round = 1;	/* one event raised by two instances is one alert */
	if ((r->bt = bintext_new()) == NULL) {
		sbuf_line(errs, "relay_new: out of memory (or no UTF-16 converter)");
		goto err;
	}
	if (relay_set_config(r, cfg, errs) == -1)
		goto err;
	if ((r->pipe = pipeline_new(r->detect, &r->ids)) == NULL) {
		sbuf_line(errs, "relay_new: out of memory");
		goto err;
	}
	mark = errs->len;
	if ((r->sink = alert_new(base, cfg, m, errs)) == NULL) {
		relay_spool_blame(cfg, errs, mark);
		goto err;
	}
	if ((r->sla = slaclock_new(base, cfg, m, r->ids.instance, relay_due,
	    relay_idle, r, errs)) == NULL ||
	    (r->snap = snapshot_new(base, cfg, slaclock_engine(r->sla),
	    r->ids.instance, errs)) == NULL ||
	    (r->hist = history_new(base, cfg, m, errs)) == NULL ||
	    (r->notes = notes_new(base, cfg, m, errs)) == NULL)
		goto err;
	return r;
err:
	relay_free(r);
	return NULL;
}

/*
 * What relay_set_config would load, loaded and thrown away: chatmond -t
 * checks with it, and must not open the spool or reach Redis (systemd runs
 * -t on every ExecStartPre and ExecReload, next to the running daemon,
 * which holds the spool locked); that the spool could be opened is checked
 * without opening it.
 */
/*
 * The top-level pack can be opened; else the error is put on the
 * configuration's rules line (config_blame), as a shop's pack's is
 * (rulebook.c, which the tool shares without a configuration's lines).
 */
static int
relay_rules_open(const struct config *cfg, struct sbuf *errs)
{
	size_t	mark = errs->len;
	int	fd;

	if ((fd = open(cfg->rules, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) != -1) {
		close(fd);
		return 0;
	}
	sbuf_line(errs, "%s: cannot open the rules directory: %s", cfg->rules,
	    strerror(errno));
	(void)config_blame(cfg, "rules", errs, mark);
	return -1;
}

/* The packs, the top level's being a directory that opens (relay_rules_open). */
static struct rulebook *
relay_rules_load(const struct config *cfg, struct sbuf *errs)
{
	struct rulebook	*b;
	size_t		 mark = errs->len;

	if (relay_rules_open(cfg, errs) == -1)
		return NULL;
	/* one without rule files is said at the rules line too */
	if ((b = rulebook_load(cfg, 0, errs)) == NULL &&
	    rulebook_no_files(errs, mark, cfg->rules))
		(void)config_blame(cfg, "rules", errs, mark);
	return b;
}

int
relay_check(const struct config *cfg, struct sbuf *errs)
{
	struct codec	*c;
	struct rulebook	*ru = NULL;
	struct model	*m = NULL;
	int		 rc;

	size_t		 mark;

	if ((c = codec_new(&cfg->protocol, errs)) != NULL)
		ru = relay_rules_load(cfg, errs);
	mark = errs->len;
	if (cfg->model != NULL && (m = model_new(cfg->model, errs)) == NULL)
		(void)config_blame(cfg, "model", errs, mark);
	rc = c != NULL && ru != NULL && (cfg->model == NULL || m != NULL) ? 0 : -1;
	if ((cfg->model == NULL || m != NULL) && rulebook_model_off(cfg, m, errs) == -1)
		rc = -1;
	mark = errs->len;
	if (alert_spool_check(cfg, errs) == -1) {
		relay_spool_blame(cfg, errs, mark);
		rc = -1;
	}
	codec_free(c);
	rulebook_free(ru);
	model_free(m);
	return rc;
}

/*
 * What a configuration needs compiled (the codec, the rule packs, the
 * model, the shops' names): pure work, no I/O beyond reading the files
 * and nothing of a running relay, so a reload makes it on a thread of its
 * own while the relay goes on (src/main.c).
 */
struct relay_next {
	struct codec	*codec;
	struct rulebook	*book;
	struct model	*model;
	char		**shops;
	size_t		  nshops;
};

struct relay_next *
relay_prepare(const struct config *cfg, struct sbuf *errs)
{
	struct relay_next	*n;
	size_t			 mark;

	if ((n = calloc(1, sizeof(*n))) == NULL ||
	    relay_shops_copy(cfg, &n->shops) == -1) {
		free(n);
		sbuf_line(errs, "relay_prepare: out of memory");
		return NULL;
	}
	n->nshops = cfg->nshops;
	if ((n->codec = codec_new(&cfg->protocol, errs)) == NULL ||
	    (n->book = relay_rules_load(cfg, errs)) == NULL) {
		relay_next_free(n);
		return NULL;
	}
	mark = errs->len;
	if (cfg->model != NULL && (n->model = model_new(cfg->model, errs)) == NULL) {
		(void)config_blame(cfg, "model", errs, mark);
		relay_next_free(n);
		return NULL;
	}
	if (rulebook_model_off(cfg, n->model, errs) == -1) {
		relay_next_free(n);
		return NULL;
	}
	return n;
}

void
relay_next_free(struct relay_next *n)
{
	if (n == NULL)
		return;
	relay_shops_free(n->shops, n->nshops);
	codec_free(n->codec);
	rulebook_free(n->book);
	model_free(n->model);
	free(n);
}

int
relay_apply(struct relay *r, const struct config *cfg, struct relay_next *n,
    struct relay_next **old, struct sbuf *errs)
{
	struct window_conf	 wc;
	struct relay_next	 was;

	/* the whole book is swapped at once, or the old one stays */
	detect_window_conf(cfg, &wc);
	if (r->detect == NULL && (r->detect = detect_new(n->book, &wc)) == NULL) {
		sbuf_line(errs, "relay_apply: out of memory");
		goto err;
	}
	if (detect_set_model(r->detect, n->model, cfg->model_veto) == -1) {
		sbuf_line(errs, "relay_apply: out of memory");
		/* the old one stays */
		(void)detect_set_model(r->detect, r->model, r->veto);
		goto err;
	}
	detect_set_book(r->detect, n->book);
	detect_set_window(r->detect, &wc);
	was.codec = r->codec;
	was.book = r->book;
	was.model = r->model;
	was.shops = r->shops;
	was.nshops = r->nshops;
	r->codec = n->codec;
	r->book = n->book;
	r->model = n->model;
	r->veto = cfg->model_veto;
	r->shops = n->shops;
	r->nshops = n->nshops;
	r->shops_refuse = cfg->shops_refuse;
	r->binary_pass = cfg->protocol.binary_pass;
	*n = was;		/* n now holds what was replaced */
	if (old != NULL)
		*old = n;
	else
		relay_next_free(n);
	if (r->sla != NULL)
		slaclock_set_config(r->sla, cfg);
	if (r->sink != NULL)
		alert_set_config(r->sink, cfg);
	if (r->snap != NULL)
		snapshot_set_config(r->snap, cfg);
	if (r->hist != NULL)
		history_set_config(r->hist, cfg);
	if (r->notes != NULL)
		notes_set_config(r->notes, cfg);
	log_info("relay_apply: %zu rules from %s (%s)%s%s", rulebook_count(r->book),
	    cfg->rules, rules_jit(rulebook_base(r->book)) ? "JIT" :
	    "interpreter: JIT unavailable",
	    r->model != NULL ? ", second opinion from " : "",
	    r->model != NULL ? cfg->model : "");
	return 0;
err:
	relay_next_free(n);
	return -1;
}

int
relay_set_config(struct relay *r, const struct config *cfg, struct sbuf *errs)
{
	struct relay_next	*n;

	if ((n = relay_prepare(cfg, errs)) == NULL)
		return -1;
	return relay_apply(r, cfg, n, NULL, errs);
}

void
relay_free(struct relay *r)
{
	if (r == NULL)
		return;
	notes_free(r->notes);
	history_free(r->hist);
	snapshot_free(r->snap);	/* it reads the clock's engine */
	slaclock_free(r->sla);
	alert_free(r->sink);
	while (r->nhits > 0)
		free(r->hits[--r->nhits].category);
	free(r->hits);	/* after the clock: its last events still go out */
	codec_free(r->codec);
	pipeline_free(r->pipe);
	detect_free(r->detect);
	rulebook_free(r->book);
	model_free(r->model);
	relay_shops_free(r->shops, r->nshops);
	bintext_free(r->bt);
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
	return rulebook_count(r->book);
}

void
relay_final(struct relay *r)
{
	snapshot_final(r->snap);
}

size_t
relay_inflight(const struct relay *r)
{
	return slaclock_inflight(r->sla) + snapshot_inflight(r->snap);
}

size_t
relay_connecting(const struct relay *r)
{
	return slaclock_connecting(r->sla) + (size_t)alert_connecting(r->sink);
}

void
relay_hurry(struct relay *r)
{
	slaclock_hurry(r->sla);
	alert_hurry(r->sink);
}

size_t
relay_waiting(const struct relay *r)
{
	return slaclock_waiting(r->sla);
}

int
relay_alerts_ready(const struct relay *r)
{
	return alert_ready(r->sink);
}

void
relay_alerts_flush(struct relay *r)
{
	alert_flush(r->sink);
}

int
relay_alerts_in_flight(const struct relay *r)
{
	return alert_in_flight(r->sink);
}

/*
 * Carries out the alerts the pipeline made: each is published, and the
 * agent gets the warnings (when the session has a way to be told).
 */
static void
relay_alerts(struct relay *r, const struct pipeline_out *out,
    const struct relay_peer *peer, const char *agent, const char *conv,
    size_t conv_len)
{
	const struct pipeline_alert	*a;
	size_t				 i, k;

	for (i = 0; i < out->nalerts; i++) {
		a = &out->alerts[i];
		/* one alert for the turn; the rules it broke are counted one by one */
		if (a->hit != NULL)
			r->metrics->rule_alerts++;
		for (k = 0; k < a->nhits; k++) {
			r->metrics->rule_hits++;
			r->metrics->rule_vetoes += a->hits[k].vetoed != 0;
			relay_count_hit(r, &a->hits[k].hit);
		}
		relay_publish(r, a, agent, conv, conv_len);
		if (a->frame == NULL || peer == NULL || peer->inject == NULL)
			continue;
		peer->inject(peer->ctx, a->frame, a->frame_len, a->ordered);
		if (a->hit != NULL)
			r->metrics->rule_warnings++;
	}
}

/* A conversation ended by its idle end: the rules forget it, as at an end frame. */
static void
relay_idle(const char *conv, size_t len, void *arg)
{
	struct relay	*r = arg;

	pipeline_end(r->pipe, conv, len, (int64_t)(util_mono_ns() / 1000000));
}

/* The SLA clock hands back a due event: its alert, to the agent and/or the supervisors. */
static void
relay_due(const struct sla_event *e, unsigned how, struct slaclock_peer *where,
    void *arg)
{
	struct relay		*r = arg;
	struct pipeline_out	 out;
	struct pipeline_alert	 a;
	const struct relay_peer	*peer = NULL;

	if (pipeline_event(r->pipe, e, &out) == -1)
		log_warnx("relay_due: out of memory, %s %s", alertfmt_sla_type(e),
		    out.nalerts == 1 ? "not told to the agent" : "lost");
	if (out.nalerts != 1)
		return;
	a = out.alerts[0];
	if (how & SLACLOCK_TELL)	/* where is a session's, inside its relay_peer */
		peer = (const struct relay_peer *)(void *)((char *)where -
		    offsetof(struct relay_peer, sla));
	if (how & SLACLOCK_PUBLISH) {
		switch (e->type) {
		case SLA_WARN:
			r->metrics->sla_warnings++;
			break;
		case SLA_BREACH:
			r->metrics->sla_breaches++;
			break;
		case SLA_ESCALATE:
			r->metrics->sla_escalations++;
			break;
		}
		relay_publish(r, &a, e->agent, e->conversation,
		    e->conversation_len);
	}
	if (peer != NULL && peer->inject != NULL && a.frame != NULL)
		peer->inject(peer->ctx, a.frame, a.frame_len, a.ordered);
}

/*
 * The turn, blocked or not, into the conversation's history, with the
 * alert raised on it: the dashboard shows what the agent tried to send.
 */
static void
relay_history(struct relay *r, const struct pipeline_turn *t,
    const struct pipeline_out *out, const char *nick, size_t nick_len)
{
	struct histfmt_turn	h;
	char			id[ALERTFMT_ID_MAX];
	size_t			i;

	memset(&h, 0, sizeof(h));
	h.ts = t->now_ms;
	h.customer = t->customer;
	h.robot = t->robot;
	h.agent = t->agent;
	h.text = t->text;
	h.text_len = t->text_len;
	h.nick = nick;
	h.nick_len = nick_len;
	h.blocked = out->drop;
	/* a turn raises one rule.hit alert (the hits grouped): the first is it */
	for (i = 0; i < out->nalerts; i++)
		if (out->alerts[i].hit != NULL) {
			alertfmt_get_id(id, out->alerts[i].json,
			    out->alerts[i].json_len);
			h.alert = id;
			break;
		}
	history_turn(r->hist, t->conversation, t->conversation_len, &h);
}

/*
 * Every chat turn and every end of a conversation lands here, in the order
 * the relay saw them; the pipeline says what to do and the relay does it.
 */
static enum relay_verdict
relay_turn(struct relay *r, struct relay_peer *peer,
    const struct pipeline_turn *t, const char *nick, size_t nick_len)
{
	struct pipeline_out	out;

	if (t->text == NULL)
		log_debug("relay_end: agent=%s conversation=%.*s role=%s",
		    t->agent[0] ? t->agent : "-", (int)t->conversation_len,
		    t->conversation, t->customer ? "customer" : "agent");
	else
		log_debug("relay_turn: agent=%s conversation=%.*s role=%s "
		    "bytes=%zu wall_ms=%lld mono_ns=%llu",
		    t->agent[0] ? t->agent : "-", (int)t->conversation_len,
		    t->conversation, t->customer ? "customer" : "agent",
		    t->text_len, (long long)t->now_ms,
		    (unsigned long long)util_mono_ns());
	if (pipeline_turn(r->pipe, t, &out) == -1)
		log_warnx("relay_turn: out of memory, an alert or warning lost");
	if (out.rule_error)
		r->metrics->rule_errors++;
	relay_alerts(r, &out, peer, t->agent, t->conversation,
	    t->conversation_len);
	/* a copy (another tab showing it) is in the history once already */
	if (t->text != NULL && !out.copy)
		relay_history(r, t, &out, nick, nick_len);
	switch (out.sla) {
	case PIPELINE_SLA_TURN:
		slaclock_turn(r->sla, t, &peer->sla);
		break;
	case PIPELINE_SLA_END:
		slaclock_end(r->sla, t);
		break;
	case PIPELINE_SLA_NONE:
		break;
	}
	if (out.drop) {
		r->metrics->rule_blocks++;
		return RELAY_DROP;
	}
	return RELAY_PASS;
}

void
relay_peer_opened(struct relay *r, struct relay_peer *peer)
{
	peer->notes.agent = peer->agent;
	peer->notes.session = peer->session;
	peer->notes.inject = peer->inject;
	peer->notes.flow = peer->flow;
	peer->notes.ctx = peer->ctx;
	notes_peer_open(r->notes, &peer->notes);
}

void
relay_peer_closed(struct relay *r, struct relay_peer *peer)
{
	slaclock_peer_closed(r->sla, &peer->sla);
	notes_peer_close(r->notes, &peer->notes);
}

/*
 * The workbench's answer to a note is chatmond's, never the backend's:
 * a frame whose type (at /type, as the codec reads it: escapes resolved,
 * the last of duplicate keys) is chatmon.note_ack is always dropped. A
 * well-formed one is recorded; a malformed one is counted and logged at
 * debug, per frame (the connection stays: a workbench bug is no reason
 * to cut an agent off).
 */
static void
relay_note_ack(struct relay *r, struct relay_peer *peer, const char *data,
    size_t len)
{
	struct notefmt_ack	a;
	const char		*why = NULL;

	if (notefmt_ack_parse(data, len, &a, &why) == -1) {
		r->metrics->note_acks_bad++;
		log_debug("relay_note_ack: agent=%s: a malformed chatmon.note_ack "
		    "dropped: %s", peer->agent[0] ? peer->agent : "-", why);
		return;
	}
	notes_ack(r->notes, &peer->notes, &a);
}

/* Whether f's own type (at /type) says it is the workbench's ack. */
static int
relay_is_note_ack(const struct codec_frame *f)
{
	return f->own_type != NULL && f->own_type_len == NOTEFMT_ACK_TYPE_LEN &&
	    memcmp(f->own_type, NOTEFMT_ACK_TYPE, NOTEFMT_ACK_TYPE_LEN) == 0;
}

void
relay_log_figures(const struct relay *r)
{
	slaclock_log_figures(r->sla);
}

/*
 * What an agent's own frame may say of its shop and queue: with shop_id
 * (queue_id) a claim of its verified token, nothing. The token is the
 * authority, so a frame naming another shop (to escape its shop's rules
 * and SLA, or to be charged to another) is not believed; the backend's
 * frames still name the shop, as documented. Told once per connection.
 */
static void
relay_own_labels(struct relay_peer *peer, const char **shop,
    const char **queue)
{
	const char	*ps = peer->shop != NULL ? peer->shop : "";
	const char	*pq = peer->queue != NULL ? peer->queue : "";
	int		 other;

	other = (peer->shop_fixed && **shop != '\0' && strcmp(*shop, ps) != 0) ||
	    (peer->queue_fixed && **queue != '\0' && strcmp(*queue, pq) != 0);
	if (other && !peer->label_told) {
		peer->label_told = 1;
		log_warnx("relay_message: agent=%s: its frame names shop \"%s\" "
		    "queue \"%s\", its token shop \"%s\" queue \"%s\": the "
		    "token's are used (shop_id, queue_id from a claim; logged once "
		    "per connection)", peer->agent[0] ? peer->agent : "-", *shop,
		    *queue, ps, pq);
	}
	if (peer->shop_fixed)
		*shop = "";
	if (peer->queue_fixed)
		*queue = "";
}

enum relay_verdict
relay_message(struct relay *r, struct relay_peer *peer,
    enum relay_dir dir, int binary, const char *data, size_t len)
{
	struct codec_frame	f;
	struct pipeline_turn	t;
	enum codec_kind		k;

	if (binary) {
		r->metrics->binary_messages++;
		/*
		 * a backend whose JSON reader takes it (a Buffer to JSON.parse,
		 * bytes to Python's json.loads) reads it as a chat turn: so
		 * does chatmond, and it is relayed as it came
		 */
		if (r->binary_pass)
			return RELAY_PASS;
		switch (bintext_decode(r->bt, data, len, &data, &len)) {
		case 0:
			break;
		case 1:
			return RELAY_PASS;	/* not a JSON object */
		default:
			log_warnx("relay_message: agent=%s: out of memory: a binary "
			    "message passed unread", peer->agent[0] ?
			    peer->agent : "-");
			return RELAY_PASS;
		}
	}
	k = codec_decode(r->codec, data, len, &f);
	if (dir == RELAY_UP && relay_is_note_ack(&f)) {
		relay_note_ack(r, peer, data, len);
		return RELAY_DROP;
	}
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
	t.customer = dir == RELAY_DOWN;
	t.agent = peer->agent;
	t.conversation = f.conversation;
	t.conversation_len = f.conversation_len;
	/* a conversation keeps the shop and queue of its first turn */
	if (!slaclock_conv_shop(r->sla, f.conversation, f.conversation_len,
	    &t.shop, &t.queue)) {
		t.shop = relay_label(f.shop, f.shop_len);
		t.queue = relay_label(f.queue, f.queue_len);
		if (dir == RELAY_UP)
			relay_own_labels(peer, &t.shop, &t.queue);
		if (*t.shop == '\0')
			t.shop = peer->shop != NULL ? peer->shop : "";
		if (*t.queue == '\0')
			t.queue = peer->queue != NULL ? peer->queue : "";
		if (*t.shop != '\0' && r->shops_refuse &&
		    bsearch(&t.shop, r->shops, r->nshops, sizeof(*r->shops),
		    relay_strcmp) == NULL) {
			r->metrics->frames_unknown_shop++;
			log_warnx("relay_message: agent=%s: a frame of shop %s, "
			    "not configured (shops_unknown: refuse), not "
			    "forwarded", peer->agent[0] ? peer->agent : "-",
			    t.shop);
			return RELAY_DROP;
		}
	}
	t.text = k == CODEC_TURN ? f.text : NULL;
	t.text_len = k == CODEC_TURN ? f.text_len : 0;
	t.now_ms = util_wall_ms();
	t.clock_ms = (int64_t)(util_mono_ns() / 1000000);
	t.robot = k == CODEC_TURN && f.robot;
	if (k == CODEC_TURN) {
		if (dir == RELAY_UP)
			r->metrics->turns_agent++;
		else
			r->metrics->turns_customer++;
	} else
		r->metrics->conversations_ended++;
	return relay_turn(r, peer, &t, t.customer ? f.nick : NULL,
	    t.customer ? f.nick_len : 0);
}
