/* replay: `chatmon replay`: a chat log through the rules and SLA engines on a virtual clock, alerts out. */
#include <errno.h>
#include <inttypes.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "chatmon/alertfmt.h"
#include "chatmon/alertline.h"
#include "chatmon/codec.h"
#include "chatmon/detect.h"
#include "chatmon/model.h"
#include "chatmon/config.h"
#include "chatmon/pipeline.h"
#include "chatmon/replay.h"
#include "chatmon/rulebook.h"
#include "chatmon/rules.h"
#include "chatmon/sla.h"
#include "chatmon/state.h"

/*
 * The virtual clock is the log's own: before a line at time T is taken,
 * every deadline up to T fires, earliest first, with the time it was due;
 * nothing fires after the last line. The engines are the daemon's, and
 * alert ids come from the virtual time and a counter, so the same log
 * gives the same output, byte for byte.
 *
 * At a terminal (--format table) the same alerts are readable lines and
 * the summary a table; the JSON stays the default anywhere else, as
 * scripts and the golden tests read it.
 */

struct replay_conv {			/* a conversation's place in the deadline heap */
	struct sla_conv	*conv;
	int64_t		 key;
	size_t		 pos;		/* SIZE_MAX: not in the heap */
};

struct replay {
	struct rulebook		*book;		/* every pack, and which each shop runs */
	struct detect		*detect;	/* the rules, turn by turn, with windows */
	struct model		*model;		/* the second opinion, or NULL */
	struct pipeline		*pipe;		/* the daemon's order of things */
	struct codec		*codec;		/* conversation ids, read as the relay reads them */
	struct sla		*sla;
	struct alertfmt_ids	 ids;
	struct replay_conv	**heap;
	size_t			 nheap, capheap;
	size_t			 conversations;	/* timed; one that ended and came back counts again */
	int			 oom;		/* or a hook's -1 */
	int64_t			 last;		/* the last good line's ts: time runs forward */
	struct replay_hooks	 hooks;
	char			*buf;		/* the line being read */
	size_t			 cap;
};

/* `chatmon replay` itself: the engine's alerts and figures printed. */
struct replay_cli {
	struct replay		*rp;
	int			 table;		/* readable lines, not JSON */
	struct alertline_opts	 fmt;
	struct sbuf		 line;		/* one readable line, reused */
	uint64_t		 rate_ms;	/* sla.rate: the summary's "within" */
};

/* One agent's row of the summary table. */
struct replay_row {
	char			*agent;		/* owned, and the shop and queue after it */
	const char		*shop;		/* "" none */
	const char		*queue;
	struct sla_figures	 f;
};

struct replay_rows {
	struct replay_row	*v;
	size_t			 n, cap;
	int			 shops;		/* some row is a shop's */
	int			 oom;
};

/* --- the deadline heap ---------------------------------------------------- */

static void
replay_swap(struct replay *rp, size_t a, size_t b)
{
	struct replay_conv	*t = rp->heap[a];

	rp->heap[a] = rp->heap[b];
	rp->heap[b] = t;
	rp->heap[a]->pos = a;
	rp->heap[b]->pos = b;
}

static void
replay_fix(struct replay *rp, size_t i)
{
	size_t	l, r, m;

	while (i > 0 && rp->heap[(i - 1) / 2]->key > rp->heap[i]->key) {
		replay_swap(rp, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
	for (;;) {
		l = 2 * i + 1;
		r = l + 1;
		m = i;
		if (l < rp->nheap && rp->heap[l]->key < rp->heap[m]->key)
			m = l;
		if (r < rp->nheap && rp->heap[r]->key < rp->heap[m]->key)
			m = r;
		if (m == i)
			return;
		replay_swap(rp, i, m);
		i = m;
	}
}

static void
replay_remove(struct replay *rp, struct replay_conv *c)
{
	size_t	i = c->pos;

	if (i == SIZE_MAX)
		return;
	replay_swap(rp, i, --rp->nheap);
	c->pos = SIZE_MAX;
	if (i < rp->nheap)
		replay_fix(rp, i);
}

/* Puts c at its conversation's next deadline (or out of the heap). */
static void
replay_schedule(struct replay *rp, struct replay_conv *c)
{
	struct replay_conv	**nh;
	int64_t			  d = sla_conv_deadline(c->conv);

	if (d == INT64_MAX) {
		replay_remove(rp, c);
		return;
	}
	c->key = d;
	if (c->pos != SIZE_MAX) {
		replay_fix(rp, c->pos);
		return;
	}
	if (rp->nheap == rp->capheap) {
		nh = realloc(rp->heap, (rp->capheap ? rp->capheap * 2 : 64) *
		    sizeof(*nh));
		if (nh == NULL) {
			rp->oom = 1;
			return;
		}
		rp->heap = nh;
		rp->capheap = rp->capheap ? rp->capheap * 2 : 64;
	}
	c->pos = rp->nheap;
	rp->heap[rp->nheap++] = c;
	replay_fix(rp, c->pos);
}

/* --- the engines' callbacks ------------------------------------------------ */

/* Every alert the daemon would publish, to the hook; at is its time. */
static void
replay_print(struct replay *rp, const struct pipeline_out *out, int64_t at)
{
	size_t	i;

	for (i = 0; i < out->nalerts && rp->hooks.alert != NULL; i++)
		if (rp->hooks.alert(&out->alerts[i], at, rp->hooks.arg) == -1)
			rp->oom = 1;
}

static void
replay_emit(const struct sla_event *e, void *arg)
{
	struct replay		*rp = arg;
	struct pipeline_out	 out;

	if (rp->hooks.event != NULL && rp->hooks.event(e, rp->hooks.arg) == -1)
		rp->oom = 1;
	if (pipeline_event(rp->pipe, e, &out) == -1)
		rp->oom = 1;
	else
		replay_print(rp, &out, e->due);
}

static void
replay_round(const struct sla_round *r, void *arg)
{
	struct replay	*rp = arg;

	if (rp->hooks.round(r, rp->hooks.arg) == -1)
		rp->oom = 1;
}

static void
replay_release(struct sla_conv *conv, void *udata, void *arg)
{
	struct replay_conv	*c = udata;

	(void)conv;
	if (c == NULL)
		return;
	replay_remove(arg, c);
	free(c);
}

/* Fires, in time order, every deadline at or before t. */
static void
replay_advance(struct replay *rp, int64_t t)
{
	struct replay_conv	*c;
	struct sla_conv_state	 st;
	const char		*id;
	size_t			 len;

	while (rp->nheap > 0 && rp->heap[0]->key <= t) {
		c = rp->heap[0];
		/* its idle end: the rules forget it, as the daemon's do */
		sla_conv_get(c->conv, &st);
		if (c->key >= st.idle_at) {
			id = sla_conv_id(c->conv, &len);
			pipeline_end(rp->pipe, id, len, st.idle_at);
		}
		if (sla_expire(rp->sla, c->conv, c->key) == 0)
			replay_schedule(rp, c);	/* else released */
	}
}

/* --- input ------------------------------------------------------------------ */

/* Room for one more byte and the NUL, never past max + 2; 0 or -1 (ENOMEM). */
static int
replay_grow(char **buf, size_t *cap, size_t max)
{
	char	*nb;
	size_t	 ncap;

	ncap = *cap < 2048 ? 4096 : *cap * 2;
	if (ncap > max + 2)
		ncap = max + 2;
	if ((nb = realloc(*buf, ncap)) == NULL)
		return -1;
	*buf = nb;
	*cap = ncap;
	return 0;
}

/*
 * getline() would hold a line whole, however long; this keeps max + 1
 * bytes (the extra one tells "too long" from "just fits", or is the '\r'
 * of a "\r\n" end) and reads past the rest. Byte by byte from stdio's
 * buffer, not with fgets(): a NUL in a line must reach the JSON parser,
 * which refuses the line, not end it early as a shorter, valid one.
 */
enum replay_read
replay_getline(FILE *f, size_t max, char **buf, size_t *cap, size_t *len)
{
	size_t	n = 0;
	int	c, any = 0, over = 0;

	if (*cap == 0 && replay_grow(buf, cap, max) == -1)
		return REPLAY_READ_ERR;
	while ((c = getc_unlocked(f)) != EOF) {
		any = 1;
		if (c == '\n')
			break;
		if (n > max) {
			over = 1;
			continue;
		}
		if (n + 1 >= *cap && replay_grow(buf, cap, max) == -1)
			return REPLAY_READ_ERR;
		(*buf)[n++] = (char)c;
	}
	if (c == EOF && ferror(f))
		return REPLAY_READ_ERR;
	if (!any)
		return REPLAY_READ_EOF;
	if (!over && n == max + 1 && (*buf)[max] == '\r')
		n = max;
	*len = n;
	if (over || n > max)
		return REPLAY_READ_LONG;
	while (n > 0 && (*buf)[n - 1] == '\r')
		n--;
	(*buf)[n] = '\0';
	*len = n;
	return REPLAY_READ_LINE;
}

int
replay_max_line(const char *arg, size_t *max)
{
	uint64_t	v;

	if (config_parse_size(arg, &v) == -1 || v < 1 || v > REPLAY_MAX_LINE_MAX) {
		fprintf(stderr, "chatmon: --max-line: '%s': a size from 1 byte "
		    "to 1GiB, as 64KiB or 65536\n", arg);
		return -1;
	}
	*max = (size_t)v;
	return 0;
}

int
replay_format(const char *arg, int *table)
{
	if (strcmp(arg, "table") == 0)
		*table = 1;
	else if (strcmp(arg, "json") == 0)
		*table = 0;
	else {
		fprintf(stderr, "chatmon: --format: table or json, not '%s'\n", arg);
		return -1;
	}
	return 0;
}

/*
 * RFC 3339 ("2026-11-22T10:00:00.123Z", "…+08:00", a space for the T) to
 * epoch milliseconds; -1 when it is not one.
 */
static int
replay_rfc3339(const char *s, int64_t *ms)
{
	struct tm	tm;
	int		n = 0, frac = 0, digits = 0, oh, om, mday, leap;
	int64_t		t, off = 0;
	const char	*p;

	memset(&tm, 0, sizeof(tm));
	if (sscanf(s, "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
	    &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6 || n != 19)
		return -1;
	p = s + n;
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++, digits++)
			if (digits < 3)
				frac = frac * 10 + (*p - '0');
		if (digits == 0)
			return -1;
		for (; digits < 3; digits++)
			frac *= 10;
	}
	if ((*p == 'Z' || *p == 'z') && p[1] == '\0')
		off = 0;
	else if ((*p == '+' || *p == '-') && sscanf(p + 1, "%2d:%2d%n", &oh, &om,
	    &n) == 2 && n == 5 && p[6] == '\0' && oh < 24 && om < 60)
		off = (*p == '-' ? -1 : 1) * (int64_t)(oh * 60 + om) * 60000;
	else
		return -1;
	if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
	    tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	mday = tm.tm_mday;
	/*
	 * A leap second (RFC 3339's second 60, always 23:59:60 UTC) is the
	 * second after :59, which Unix time counts as the next day's first:
	 * timegm given 60 rolls the day over, which the check below took for
	 * a day that does not exist.
	 */
	if ((leap = tm.tm_sec == 60))
		tm.tm_sec = 59;
	if ((t = (int64_t)timegm(&tm)) == -1 && errno == EOVERFLOW)
		return -1;
	if (tm.tm_mday != mday)
		return -1;	/* timegm moved 2026-02-30 into March: no such day */
	*ms = (t + leap) * 1000 + frac - off;
	return *ms >= 0 ? 0 : -1;
}

struct replay_line {
	int64_t		 ts;
	const char	*conv;
	size_t		 conv_len;
	int		 end;		/* "type":"end": the conversation ends */
	int		 customer;
	int		 robot;
	const char	*agent;
	const char	*shop;		/* "" none */
	const char	*queue;
	const char	*text;
	size_t		 text_len;
};

/*
 * A ts jansson read as a double, its line read again for a number past 64
 * bits (replay_file): a whole number of milliseconds, past 2^63 the
 * engine's last; -1 when it is not one (1.5, or 1.7e12 as ever).
 */
static int
replay_whole_ms(double d, int64_t *ms)
{
	if (!(d >= 0))
		return -1;	/* NaN too */
	if (d >= 9223372036854775808.0) {
		*ms = sla_clamp(INT64_MAX);
		return 0;
	}
	if ((double)(int64_t)d != d)
		return -1;
	*ms = sla_clamp((int64_t)d);
	return 0;
}

/*
 * Reads one line's fields (o is buf, len read by jansson; reread: its
 * numbers read as doubles); NULL, or what is wrong with it.
 */
static const char *
replay_parse(struct replay *rp, json_t *o, const char *buf, size_t len,
    int reread, struct replay_line *l)
{
	json_t		*v;
	const char	*role, *why;

	if (!json_is_object(o))
		return "not a JSON object";
	v = json_object_get(o, "ts");
	if (json_is_integer(v) && json_integer_value(v) >= 0)
		l->ts = sla_clamp(json_integer_value(v));	/* the engine's range */
	else if (json_is_real(v) && reread && replay_whole_ms(json_real_value(v),
	    &l->ts) == 0)
		;	/* an integer, read as a double with the line (below) */
	else if (!json_is_string(v) || replay_rfc3339(json_string_value(v), &l->ts) == -1)
		return "ts: epoch milliseconds or an RFC 3339 time, after 1970";
	/*
	 * The id as the relay's codec reads a frame's (a number of any size,
	 * 7.0 as 7, 1.5 as sent), by the codec itself: the log and the relay
	 * must name the same conversations.
	 */
	if ((why = codec_conversation_id(rp->codec, buf, len, &l->conv,
	    &l->conv_len)) != NULL)
		return why;
	/* a conversation's end, as a backend's end frame (docs/protocol.md) */
	v = json_object_get(o, "type");
	if (json_is_string(v) && strcmp(json_string_value(v), "end") == 0) {
		l->end = 1;
		v = json_object_get(o, "agent");
		l->agent = json_is_string(v) ? json_string_value(v) : "";
		l->shop = l->queue = "";
		return NULL;
	}
	v = json_object_get(o, "role");
	role = json_is_string(v) ? json_string_value(v) : "";
	if (strcmp(role, "customer") == 0)
		l->customer = 1;
	else if (strcmp(role, "agent") == 0)
		l->customer = 0;
	else
		return "role must be \"customer\" or \"agent\"";
	v = json_object_get(o, "agent");
	l->agent = json_is_string(v) ? json_string_value(v) : "";
	v = json_object_get(o, "shop");
	if (v != NULL && !json_is_string(v))
		return "shop: not a string";
	l->shop = v != NULL ? json_string_value(v) : "";
	v = json_object_get(o, "queue");
	if (v != NULL && !json_is_string(v))
		return "queue: not a string";
	l->queue = v != NULL ? json_string_value(v) : "";
	v = json_object_get(o, "text");
	if (!json_is_string(v))
		return "text missing or not a string";
	l->text = json_string_value(v);
	l->text_len = json_string_length(v);
	l->robot = json_is_true(json_object_get(o, "robot"));
	return NULL;
}

/*
 * An end line: the conversation's windows forgotten and its round ended,
 * as the relay's end frame does. 0, or -1 on ENOMEM.
 */
static int
replay_end(struct replay *rp, const struct replay_line *l)
{
	struct pipeline_turn	 t;
	struct pipeline_out	 out;
	struct sla_conv		*conv;

	memset(&t, 0, sizeof(t));
	t.agent = l->agent;
	t.conversation = l->conv;
	t.conversation_len = l->conv_len;
	t.text = NULL;
	t.now_ms = t.clock_ms = l->ts;
	t.shop = t.queue = "";
	if ((conv = sla_find(rp->sla, l->conv, l->conv_len)) != NULL)
		t.shop = sla_conv_shop(rp->sla, conv, &t.queue);
	if (pipeline_turn(rp->pipe, &t, &out) == -1)
		return -1;
	replay_print(rp, &out, l->ts);
	if (out.sla == PIPELINE_SLA_END && conv != NULL)
		sla_end(rp->sla, conv, l->ts);	/* released: off the heap */
	return rp->oom ? -1 : 0;
}

/* One line through the daemon's pipeline, on the log's clock. 0, or -1 on ENOMEM. */
static int
replay_line(struct replay *rp, const struct replay_line *l)
{
	struct pipeline_turn	 t;
	struct pipeline_out	 out;
	struct replay_conv	*c;
	struct sla_conv		*conv;

	replay_advance(rp, l->ts);
	if (l->end)
		return replay_end(rp, l);
	t.customer = l->customer;
	t.agent = l->agent;
	/* a conversation keeps the shop and queue of its first turn */
	if ((conv = sla_find(rp->sla, l->conv, l->conv_len)) != NULL)
		t.shop = sla_conv_shop(rp->sla, conv, &t.queue);
	else {
		t.shop = l->shop;
		t.queue = l->queue;
	}
	t.conversation = l->conv;
	t.conversation_len = l->conv_len;
	t.text = l->text;
	t.text_len = l->text_len;
	t.now_ms = l->ts;
	t.clock_ms = l->ts;
	t.robot = l->robot;
	if (pipeline_turn(rp->pipe, &t, &out) == -1 || out.rule_error)
		return -1;
	replay_print(rp, &out, l->ts);
	if (out.sla != PIPELINE_SLA_TURN)
		return 0;
	if (sla_find(rp->sla, l->conv, l->conv_len) == NULL)
		rp->conversations++;
	if ((conv = sla_turn(rp->sla, l->conv, l->conv_len, l->agent,
	    t.shop, t.queue, l->customer, !l->robot, l->ts)) == NULL)
		return -1;
	if ((c = sla_conv_udata(conv)) == NULL) {
		if ((c = calloc(1, sizeof(*c))) == NULL)
			return -1;
		c->conv = conv;
		c->pos = SIZE_MAX;
		sla_conv_set_udata(conv, c);
	}
	replay_schedule(rp, c);
	return rp->oom ? -1 : 0;
}

/* --- the engine, for replay and report --log -------------------------------- */

/* A codec that reads a log line's "conversation" as the relay's default protocol does. */
static struct codec *
replay_codec(struct sbuf *errs)
{
	struct config_protocol	p;

	memset(&p, 0, sizeof(p));
	p.type = (char *)"/type";
	p.conversation = (char *)"/conversation";
	p.text = (char *)"/text";
	return codec_new(&p, errs);
}

struct replay *
replay_new(const struct config *cfg, const struct replay_hooks *hooks,
    struct sbuf *errs)
{
	struct replay		*rp;
	struct sla_config	 s;
	struct sla_policy	*pol;
	struct window_conf	 wc;
	size_t			 npol;
	int			 rc;

	if ((rp = calloc(1, sizeof(*rp))) == NULL)
		goto oom;
	rp->last = INT64_MIN;
	if (hooks != NULL)
		rp->hooks = *hooks;
	if ((rp->codec = replay_codec(errs)) == NULL ||
	    (rp->book = rulebook_load(cfg, 0, errs)) == NULL)
		goto err;
	if ((cfg->model != NULL && (rp->model = model_new(cfg->model, errs)) == NULL) ||
	    rulebook_model_off(cfg, rp->model, errs) == -1)
		goto err;
	detect_window_conf(cfg, &wc);
	if ((rp->detect = detect_new(rp->book, &wc)) == NULL ||
	    detect_set_model(rp->detect, rp->model, cfg->model_veto) == -1 ||
	    (rp->pipe = pipeline_new(rp->detect, &rp->ids)) == NULL)
		goto oom;
	sla_config_from(&s, &cfg->sla);
	if ((rp->sla = sla_new(&s, replay_emit, replay_release, rp)) == NULL ||
	    sla_policies_from(cfg, &pol, &npol) == -1)
		goto oom;
	rc = sla_set_policies(rp->sla, pol, npol);
	free(pol);
	if (rc == -1)
		goto oom;
	if (rp->hooks.round != NULL)
		sla_set_round_cb(rp->sla, replay_round, rp);
	return rp;
oom:
	(void)sbuf_printf(errs, "chatmon: out of memory\n");
err:
	replay_free(rp);
	return NULL;
}

void
replay_free(struct replay *rp)
{
	if (rp == NULL)
		return;
	sla_free(rp->sla);	/* releases the conversations off the heap */
	free(rp->heap);
	pipeline_free(rp->pipe);
	codec_free(rp->codec);
	detect_free(rp->detect);
	model_free(rp->model);
	rulebook_free(rp->book);
	free(rp->buf);
	free(rp);
}

const struct sla *
replay_sla(const struct replay *rp)
{
	return rp->sla;
}

size_t
replay_conversations(const struct replay *rp)
{
	return rp->conversations;
}

int
replay_file(struct replay *rp, const char *name, size_t max)
{
	struct replay_line	 l;
	json_error_t		 je;
	json_t			*o;
	const char		*why;
	struct sbuf		 esc;
	size_t			 lineno, n;
	enum replay_read	 rd;
	FILE			*f;
	int			 rc = 0, reread;

	sbuf_init(&esc);
	if (strcmp(name, "-") == 0)
		f = stdin;
	else if ((f = fopen(name, "r")) == NULL) {
		fprintf(stderr, "chatmon: %s: %s\n", name, strerror(errno));
		return 1;
	}
	for (lineno = 1; (rd = replay_getline(f, max, &rp->buf, &rp->cap, &n)) !=
	    REPLAY_READ_EOF && rd != REPLAY_READ_ERR; lineno++) {
		if (rd == REPLAY_READ_LONG) {
			fprintf(stderr, "%s:%zu: " REPLAY_LONG_FMT "\n", name,
			    lineno, max);
			rc = 1;
			continue;
		}
		if (n == 0)
			continue;
		why = NULL;
		memset(&l, 0, sizeof(l));
		util_json_lone_surrogates(rp->buf, n);	/* read as the relay does */
		/*
		 * An integer past 64 bits (a conversation id, as the relay
		 * takes one) is more than jansson reads as an integer: such a
		 * line is read again with its numbers as doubles.
		 */
		reread = 0;
		if ((o = json_loadb(rp->buf, n, JSON_ALLOW_NUL, &je)) == NULL &&
		    json_error_code(&je) == json_error_numeric_overflow) {
			o = json_loadb(rp->buf, n, JSON_ALLOW_NUL |
			    JSON_DECODE_INT_AS_REAL, &je);
			reread = 1;
		}
		if (o == NULL) {
			/* jansson quotes the line ("near '...'"): not for a terminal raw */
			sbuf_reset(&esc);
			if (alertline_text(&esc, je.text, strlen(je.text)) == -1) {
				rp->oom = 1;
				break;
			}
			why = sbuf_str(&esc);
		} else if ((why = replay_parse(rp, o, rp->buf, n, reread,
		    &l)) == NULL && l.ts < rp->last)
			why = "ts goes back in time: a log must be in time order";
		if (why != NULL) {
			/* a bad line is reported and skipped; the rest still counts */
			fprintf(stderr, "%s:%zu: %s\n", name, lineno, why);
			rc = 1;
		} else {
			rp->last = l.ts;
			if (replay_line(rp, &l) == -1)
				rp->oom = 1;
		}
		json_decref(o);
		if (rp->oom)
			break;
	}
	if (rd == REPLAY_READ_ERR) {
		/* a directory opens, then fails here: not an empty log */
		fprintf(stderr, "chatmon: %s: %s\n", name, strerror(errno));
		rc = 1;
	}
	if (f != stdin)
		fclose(f);
	sbuf_free(&esc);
	return rp->oom ? -1 : rc;
}

/* --- chatmon replay: the summary ------------------------------------------- */

/* One alert (the daemon's JSON) as a readable line; 0, or -1 on ENOMEM. */
static int
replay_readable(struct replay_cli *cli, const char *json, size_t len)
{
	json_error_t	 e;
	json_t		*a;
	int		 rc;

	sbuf_reset(&cli->line);
	/* chat text may hold U+0000, and alertfmt keeps it */
	if ((a = json_loadb(json, len, JSON_ALLOW_NUL, &e)) == NULL)
		return -1;	/* alertfmt's own output: only memory can fail */
	rc = alertline_format(&cli->line, &cli->fmt, a);
	json_decref(a);
	if (rc == 0) {
		fwrite(cli->line.s, 1, cli->line.len, stdout);
		fputc('\n', stdout);
	}
	return rc;
}

/* The engine's alert hook: every alert, one per line, JSON or readable. */
static int
replay_cli_alert(const struct pipeline_alert *a, int64_t at, void *arg)
{
	struct replay_cli	*cli = arg;

	(void)at;
	if (cli->table)
		return replay_readable(cli, a->json, a->json_len);
	fwrite(a->json, 1, a->json_len, stdout);
	fputc('\n', stdout);
	return 0;
}

/* The summary's figures: "agents" with no shop, "shops" by shop and queue. */
struct replay_sum {
	json_t	*agents;
	json_t	*shops;
};

/* o[key], an object made on first sight; NULL on ENOMEM. */
static json_t *
replay_obj(json_t *o, const char *key)
{
	json_t	*v;

	if ((v = json_object_get(o, key)) == NULL &&
	    json_object_set_new(o, key, v = json_object()) == -1)
		return NULL;
	return v;
}

static void
replay_figures(const struct sla_account *w, const struct sla_figures *f,
    void *arg)
{
	struct replay_sum	*sum = arg;
	json_t			*o = sum->agents;

	if (w->shop[0] != '\0' && (o = replay_obj(sum->shops, w->shop)) != NULL &&
	    w->queue[0] != '\0' && (o = replay_obj(o, "queues")) != NULL)
		o = replay_obj(o, w->queue);
	if (o != NULL && w->shop[0] != '\0')
		o = replay_obj(o, "agents");
	if (o != NULL)
		json_object_set_new(o, w->agent[0] ? w->agent : "-",
		    state_figures_json(f));
}

/* --- the summary as a table ------------------------------------------------- */

static void
replay_collect(const struct sla_account *w, const struct sla_figures *f,
    void *arg)
{
	struct replay_rows	*rows = arg;
	struct replay_row	*nv, *r;
	size_t			 ncap, la = strlen(w->agent), ls = strlen(w->shop);

	if (rows->oom)
		return;
	if (rows->n == rows->cap) {
		ncap = rows->cap ? rows->cap * 2 : 16;
		if ((nv = realloc(rows->v, ncap * sizeof(*nv))) == NULL) {
			rows->oom = 1;
			return;
		}
		rows->v = nv;
		rows->cap = ncap;
	}
	r = &rows->v[rows->n];
	if ((r->agent = malloc(la + ls + strlen(w->queue) + 3)) == NULL) {
		rows->oom = 1;
		return;
	}
	memcpy(r->agent, w->agent, la + 1);
	r->shop = memcpy(r->agent + la + 1, w->shop, ls + 1);
	r->queue = strcpy(r->agent + la + ls + 2, w->queue);
	r->f = *f;
	rows->shops |= ls > 0;
	rows->n++;
}

enum {
	REPLAY_COL_SHOP, REPLAY_COL_QUEUE,
	REPLAY_COL_AGENT, REPLAY_COL_ROUNDS, REPLAY_COL_ANSWERED, REPLAY_COL_MEAN,
	REPLAY_COL_P90, REPLAY_COL_FIRST, REPLAY_COL_FIRST_MEAN, REPLAY_COL_BREACHES,
	REPLAY_COL_ESCALATIONS, REPLAY_COL_WITHIN, REPLAY_COL_RATE, REPLAY_NCOLS
};

/* One cell of the summary table, or (row NULL) its column's title; 0 or -1. */
static int
replay_cell(struct sbuf *sb, const struct replay_cli *cli,
    const struct replay_rows *rows, const struct replay_row *row, int col)
{
	static const char *const titles[REPLAY_NCOLS] = { "SHOP", "QUEUE",
	    "AGENT", "ROUNDS",
	    "ANSWERED", "MEAN", "P90", "FIRST", "FIRST MEAN", "BREACHES",
	    "ESCALATIONS", "WITHIN ", "RATE" };
	const struct sla_figures	*f;

	if (row == NULL) {
		if (sbuf_printf(sb, "%s", titles[col]) == -1)
			return -1;
		/* shops may each have their own rate: then no one figure */
		return col == REPLAY_COL_WITHIN && !rows->shops ?
		    alertline_ms(sb, cli->rate_ms) : 0;
	}
	f = &row->f;
	switch (col) {
	case REPLAY_COL_SHOP:
		return alertline_pad(sb, row->shop[0] ? row->shop : "-", 0);
	case REPLAY_COL_QUEUE:
		return alertline_pad(sb, row->queue[0] ? row->queue : "-", 0);
	case REPLAY_COL_AGENT:
		return alertline_pad(sb, row->agent, 0);
	case REPLAY_COL_ROUNDS:
		return sbuf_printf(sb, "%" PRIu64, f->rounds);
	case REPLAY_COL_ANSWERED:
		return sbuf_printf(sb, "%" PRIu64, f->answered);
	case REPLAY_COL_MEAN:
		return alertline_ms(sb, f->mean_ms);
	case REPLAY_COL_P90:
		return alertline_ms(sb, f->p90_ms);
	case REPLAY_COL_FIRST:
		return sbuf_printf(sb, "%" PRIu64, f->first_rounds);
	case REPLAY_COL_FIRST_MEAN:
		return alertline_ms(sb, f->first_mean_ms);
	case REPLAY_COL_BREACHES:
		return sbuf_printf(sb, "%" PRIu64, f->breaches);
	case REPLAY_COL_ESCALATIONS:
		return sbuf_printf(sb, "%" PRIu64, f->escalations);
	case REPLAY_COL_WITHIN:
		return sbuf_printf(sb, "%" PRIu64, f->within_rate);
	case REPLAY_COL_RATE:
		return sbuf_printf(sb, "%.1f%%", f->rate * 100);
	}
	return -1;
}

/*
 * Each agent's figures, one aligned row each (widths in terminal columns,
 * so Chinese agent ids line up too), then the conversations: what the
 * JSON summary holds. 0, or -1 on ENOMEM.
 */
static int
replay_summary_table(struct replay_cli *cli)
{
	struct replay_rows	 rows;
	struct sbuf		 cell;
	size_t			 w[REPLAY_NCOLS], cw, i;
	int			 col, col0, rc = -1;

	memset(&rows, 0, sizeof(rows));
	sbuf_init(&cell);
	sla_agents(replay_sla(cli->rp), replay_collect, &rows);
	if (rows.oom)
		goto out;
	/* the shop and queue columns only when some figures are a shop's */
	col0 = rows.shops ? REPLAY_COL_SHOP : REPLAY_COL_AGENT;
	/* two passes over the cells: their widths, then the rows */
	for (col = col0; col < REPLAY_NCOLS; col++) {
		w[col] = 0;
		for (i = 0; i <= rows.n; i++) {
			sbuf_reset(&cell);
			if (replay_cell(&cell, cli, &rows, i == 0 ? NULL :
			    &rows.v[i - 1], col) == -1)
				goto out;
			if ((cw = alertline_width(sbuf_str(&cell), cell.len)) > w[col])
				w[col] = cw;
		}
	}
	fputc('\n', stdout);
	for (i = 0; rows.n > 0 && i <= rows.n; i++) {
		sbuf_reset(&cli->line);
		for (col = col0; col < REPLAY_NCOLS; col++) {
			sbuf_reset(&cell);
			if (replay_cell(&cell, cli, &rows, i == 0 ? NULL :
			    &rows.v[i - 1], col) == -1)
				goto out;
			cw = alertline_width(sbuf_str(&cell), cell.len);
			/* who to the left, the figures to the right */
			if ((col > col0 && sbuf_printf(&cli->line, "  ") == -1) ||
			    (col > REPLAY_COL_AGENT && sbuf_printf(&cli->line,
			    "%*s", (int)(w[col] - cw), "") == -1) ||
			    sbuf_append(&cli->line, sbuf_str(&cell), cell.len) == -1 ||
			    (col <= REPLAY_COL_AGENT && sbuf_printf(&cli->line,
			    "%*s", (int)(w[col] - cw), "") == -1))
				goto out;
		}
		fwrite(cli->line.s, 1, cli->line.len, stdout);
		fputc('\n', stdout);
	}
	printf("%zu conversations\n", replay_conversations(cli->rp));
	rc = 0;
out:
	for (i = 0; i < rows.n; i++)
		free(rows.v[i].agent);
	free(rows.v);
	sbuf_free(&cell);
	return rc;
}

/* --help: stdout and 0; a usage error: stderr and 2. */
static int
replay_usage(FILE *f, const char *default_config)
{
	fprintf(f,
	    "usage: chatmon replay [-c FILE] [--max-line BYTES] [--format table|json]\n"
	    "                      [FILE...]\n"
	    "\n"
	    "Runs a chat log {\"ts\",\"conversation\",\"role\",\"agent\",\"text\"}\n"
	    "(JSON Lines, each FILE in turn, or stdin) through the rules and the SLA\n"
	    "clock of the configuration on the log's own time: every alert the daemon\n"
	    "would have raised, one per line, then a summary (docs/sla.md).\n"
	    "-c FILE     the configuration (default %s)\n"
	    "--max-line  the longest line read, as 64KiB or 65536 (default "
	    REPLAY_MAX_LINE_STR ");\n"
	    "            a longer one is reported and skipped, in bounded memory\n"
	    "--format    json: the alert objects, then {\"type\":\"summary\",...};\n"
	    "            table: readable lines (times in sla.timezone), then each\n"
	    "            agent's figures as a table. Default: table on a terminal,\n"
	    "            else json\n"
	    "\n"
	    "Exit status: 0 every line good; 1 a bad line (FILE:LINE: reason on\n"
	    "stderr; it is skipped and the rest still counts), an input that cannot\n"
	    "be read, or a configuration or rules error; 2 a usage error.\n",
	    default_config);
	return f == stdout ? 0 : 2;
}

int
replay_main(int argc, char **argv, const char *default_config)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "max-line", required_argument, NULL, 'L' },
		{ "format", required_argument, NULL, 'F' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct replay_cli	 cli;
	struct replay_hooks	 hooks;
	struct config		*cfg = NULL;
	struct sbuf		 errs;
	struct replay_sum	 sum;
	json_t			*o;
	const char		*cfgpath = default_config;
	char			*dump;
	size_t			 max = REPLAY_MAX_LINE;
	int			 ch, rc = 0, k, n, table = -1;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			cfgpath = optarg;
			break;
		case 'L':
			if (replay_max_line(optarg, &max) == -1)
				return replay_usage(stderr, default_config);
			break;
		case 'F':
			if (replay_format(optarg, &table) == -1)
				return replay_usage(stderr, default_config);
			break;
		case 'h':
			return replay_usage(stdout, default_config);
		default:
			return replay_usage(stderr, default_config);
		}
	}
	memset(&cli, 0, sizeof(cli));
	memset(&hooks, 0, sizeof(hooks));
	sbuf_init(&cli.line);
	sbuf_init(&errs);
	hooks.alert = replay_cli_alert;
	hooks.arg = &cli;
	if ((cfg = config_load(cfgpath, NULL, 0, &errs)) == NULL ||
	    (cli.rp = replay_new(cfg, &hooks, &errs)) == NULL) {
		fputs(sbuf_str(&errs), stderr);
		rc = 1;
		goto out;
	}
	cli.table = table != -1 ? table : isatty(STDOUT_FILENO);
	cli.fmt.colour = cli.table && alertline_want_colour(isatty(STDOUT_FILENO),
	    getenv("NO_COLOR"), getenv("TERM"));
	cli.fmt.lang = ALERTLINE_ZH;
	cli.fmt.utc_offset_min = cfg->sla.utc_offset_min;
	cli.fmt.now_ms = -1;	/* a log is of some day: every time with its date */
	cli.fmt.agent_w = 10;
	cli.fmt.conv_w = 12;	/* "CONVERSATION" */
	cli.rate_ms = cfg->sla.rate_ms;
	if (cli.table) {
		if (alertline_header(&cli.line, &cli.fmt) == -1)
			goto oom;
		fwrite(cli.line.s, 1, cli.line.len, stdout);
		fputc('\n', stdout);
	}

	for (k = optind; k < argc || (k == optind && optind == argc); k++) {
		if ((n = replay_file(cli.rp, k < argc ? argv[k] : "-", max)) == -1)
			goto oom;	/* or a readable line could not be made */
		if (n != 0)
			rc = 1;
	}

	/* nothing fires after the last line: the summary is as of then */
	if (cli.table) {
		if (replay_summary_table(&cli) == -1)
			goto oom;
		goto out;
	}
	if ((sum.agents = json_object()) == NULL ||
	    (sum.shops = json_object()) == NULL) {
		json_decref(sum.agents);
		goto oom;
	}
	sla_agents(replay_sla(cli.rp), replay_figures, &sum);
	/* "shops" only when some conversation had one: the summary as before */
	o = json_pack("{s:s, s:o, s:o*, s:I}", "type", "summary", "agents",
	    sum.agents, "shops", json_object_size(sum.shops) > 0 ? sum.shops :
	    NULL, "conversations", (json_int_t)replay_conversations(cli.rp));
	if (json_object_size(sum.shops) == 0)
		json_decref(sum.shops);
	if (o == NULL || (dump = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER |
	    JSON_REAL_PRECISION(6))) == NULL) {
		json_decref(o);
		goto oom;
	}
	puts(dump);
	free(dump);
	json_decref(o);
	goto out;
oom:
	fprintf(stderr, "chatmon: replay: out of memory\n");
	rc = 1;
out:
	replay_free(cli.rp);
	config_free(cfg);
	sbuf_free(&errs);
	sbuf_free(&cli.line);
	if (util_stdout_done("replay") == -1)
		rc = 1;
	return rc;
}
