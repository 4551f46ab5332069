/* tail: `chatmon tail`: the supervisors' live feed of alerts, read from the Redis stream. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <jansson.h>

#include "chatmon/alertline.h"
#include "chatmon/config.h"
#include "chatmon/log.h"
#include "chatmon/rconn.h"
#include "chatmon/seen.h"
#include "chatmon/tail.h"
#include "chatmon/util.h"
#include "chatmon/xfollow.h"

/*
 * The stream, not the pub/sub channel, is the source: it keeps what was
 * sent while nobody listened, so `tail` can show history and, after an
 * outage, pick up exactly where it stopped (the last stream id it saw).
 * The price is at-least-once delivery: the daemon re-sends an alert it was
 * not sure of, so alert ids seen recently are remembered and repeats dropped.
 *
 * It runs on one libevent loop, as the dashboard does: the connection is
 * an rconn (redis.url or Sentinel, AUTH, SELECT, a hung server noticed,
 * reconnects with backoff), the history is read with one command out at a
 * time, and following is xfollow's, the reader the dashboard and
 * chatmond's notes use. SIGINT and SIGTERM are evsignals: they end the
 * loop at once, whatever is out. A reader has no need of ROLE: a replica
 * would serve (RCONN_ANY_ROLE).
 *
 * An outage is reported once, in tail's own words, and rconn's log lines
 * are kept quiet (level error). What changed with the port from the
 * blocking client it replaced: reconnects back off from 100 ms to 10 s
 * with jitter (it was every second); a connect, and a hung server, are
 * timed by redis.timeout (+ the 1 s block while following) instead of a
 * fixed 1 s connect and 6 s silence; "connected" is said when the setup
 * answered, not after the first read. A server that answers the setup
 * with an error (a wrong password, NOAUTH, now named as an error of AUTH,
 * SELECT or PING), like a key that is not a stream, is a mistake of the
 * configuration: fatal, unless it is one Redis raises while starting or
 * busy.
 */

#define TAIL_SEEN_MAX		10000	/* alert ids remembered for de-duplication */
#define TAIL_PAGE_N		1000	/* entries per XRANGE / XREVRANGE / XREAD */
#define TAIL_PAGE		"1000"
/* XREAD BLOCK: added to redis.timeout before a quiet server counts as hung */
#define TAIL_BLOCK_MS		1000
/* clocks of chatmond and Redis may differ: search an alert id this far back */
#define TAIL_SKEW_MS		60000
#define TAIL_ID_MAX		64

enum tail_rc {
	TAIL_OK = 0,
	TAIL_FATAL = -2,		/* already reported: exit 1 */
	TAIL_STOP = -3,			/* stdout closed: exit 0 */
};

enum tail_since {
	TAIL_SINCE_LAST,		/* -N: the last N entries */
	TAIL_SINCE_ALERT,		/* an alert id: what the stream holds after it */
	TAIL_SINCE_STREAM,		/* a stream id: what the stream holds after it */
};

/* An alert kept while --since -N with a filter reads back page by page. */
struct tail_kept {
	char		*raw;
	size_t		 len;
};

struct tail {
	/* options */
	int		 json;
	struct alertline_opts fmt;		/* the readable lines */
	int		 min_severity;		/* 0 info, 1 warn, 2 critical */
	const char	*agent;			/* NULL: any */
	const char	*type;			/* NULL: any; exact or a dotted prefix */
	enum tail_since	 since;
	uint64_t	 since_n;
	uint64_t	 since_ms, since_seq;	/* the id's parts (alert or stream) */
	const char	*since_id;		/* as given */

	/* the loop and Redis */
	const char	*url;			/* for messages */
	char		 urlbuf[300];
	char		*key;			/* prefix + stream; owned */
	struct event_base *base;
	struct rconn	*rc;
	struct xfollow	*xf;
	struct event	*ev_int, *ev_term;
	int		 exit;			/* -1 running, else the exit code */
	int		 down;			/* an outage was reported */

	/* position */
	int		 have_pos;		/* the history is shown: following */
	char		 last[TAIL_ID_MAX];	/* where following starts */
	/* --since -N, with a filter: the pages read back */
	char		 end[TAIL_ID_MAX + 1];	/* the next page's newest: "+" or "(id" */
	int		 first_page;
	struct seen	*ids;			/* the alerts counted */
	struct tail_kept *kept;			/* newest first */
	size_t		 nkept, keptcap;
	/* --since ALERT-ID: the scan */
	int		 pass;			/* 0 from its time, 1 from the start */
	char		 start[TAIL_ID_MAX];

	struct seen	*seen;
	struct sbuf	 line;
};

/* --- ids ------------------------------------------------------------------ */

/* Digits only, at least one, no overflow; 0 or -1. */
static int
tail_u64(const char *s, size_t len, uint64_t *v)
{
	size_t	i;

	if (len == 0 || len > 20)
		return -1;
	*v = 0;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (*v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -1;
		*v = *v * 10 + (uint64_t)(s[i] - '0');
	}
	return 0;
}

static int
tail_is_hex(const char *s, size_t len)
{
	size_t	i;

	for (i = 0; i < len; i++)
		if (!isxdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

/*
 * --since: "-N", an alert id (<ms>-<8 hex>-<seq>) or a stream id
 * (<ms>[-<seq>]). Alert and stream ids differ in their part count, so
 * either can be pasted from `--json` output or from redis-cli.
 */
static int
tail_parse_since(struct tail *t, const char *s)
{
	const char	*d1, *d2;

	t->since_id = s;
	if (s[0] == '-') {
		t->since = TAIL_SINCE_LAST;
		/* it is XREVRANGE's COUNT, a signed 64-bit number to Redis */
		return tail_u64(s + 1, strlen(s + 1), &t->since_n) == -1 ||
		    t->since_n > INT64_MAX ? -1 : 0;
	}
	d1 = strchr(s, '-');
	d2 = d1 != NULL ? strchr(d1 + 1, '-') : NULL;
	if (d2 != NULL) {
		t->since = TAIL_SINCE_ALERT;
		if (tail_u64(s, (size_t)(d1 - s), &t->since_ms) == -1 ||
		    d2 - d1 - 1 != 8 || !tail_is_hex(d1 + 1, 8) ||
		    tail_u64(d2 + 1, strlen(d2 + 1), &t->since_seq) == -1)
			return -1;
		return 0;
	}
	t->since = TAIL_SINCE_STREAM;
	if (d1 == NULL) {
		t->since_seq = 0;		/* Redis reads "<ms>" as "<ms>-0" */
		return tail_u64(s, strlen(s), &t->since_ms);
	}
	if (tail_u64(s, (size_t)(d1 - s), &t->since_ms) == -1 ||
	    tail_u64(d1 + 1, strlen(d1 + 1), &t->since_seq) == -1)
		return -1;
	return 0;
}

/* The stream id right after ms-seq, in place: XRANGE's start is inclusive (no "(" before Redis 6.2). */
static void
tail_id_next(char id[TAIL_ID_MAX])
{
	const char	*d = strchr(id, '-');
	uint64_t	 ms, seq;

	if (d == NULL || tail_u64(id, (size_t)(d - id), &ms) == -1 ||
	    tail_u64(d + 1, strlen(d + 1), &seq) == -1)
		return;		/* Redis never sends that */
	if (seq == UINT64_MAX)
		snprintf(id, TAIL_ID_MAX, "%" PRIu64 "-0", ms + 1);
	else
		snprintf(id, TAIL_ID_MAX, "%" PRIu64 "-%" PRIu64, ms, seq + 1);
}

/* The stream id right before ms-0, for XREAD (which reads what comes after). */
static void
tail_id_before(char out[TAIL_ID_MAX], uint64_t ms)
{
	if (ms == 0)
		snprintf(out, TAIL_ID_MAX, "0-0");
	else
		snprintf(out, TAIL_ID_MAX, "%" PRIu64 "-%" PRIu64, ms - 1, UINT64_MAX);
}

/* --- output --------------------------------------------------------------- */

static const char *
tail_jstr(json_t *o, const char *key)
{
	json_t	*v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

/*
 * Writes the line, unless making it ran out of memory (oom); TAIL_STOP when
 * stdout is gone (`| head`), TAIL_FATAL on another error.
 */
static int
tail_flush(struct tail *t, int oom)
{
	if (oom || sbuf_append(&t->line, "\n", 1) == -1) {
		fprintf(stderr, "chatmon: tail: out of memory\n");
		return TAIL_FATAL;
	}
	if (fwrite(t->line.s, 1, t->line.len, stdout) != t->line.len ||
	    fflush(stdout) == EOF) {
		if (errno == EPIPE)
			return TAIL_STOP;
		fprintf(stderr, "chatmon: tail: stdout: %s\n", strerror(errno));
		return TAIL_FATAL;
	}
	return TAIL_OK;
}


/* --- entries -------------------------------------------------------------- */

/* The stream id of an entry [id, [field, value, ...]]; NULL when it is not one. */
static const char *
tail_entry_id(const redisReply *e)
{
	if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
	    e->element[0]->type != REDIS_REPLY_STRING ||
	    e->element[0]->len >= TAIL_ID_MAX ||
	    e->element[1]->type != REDIS_REPLY_ARRAY)
		return NULL;
	return e->element[0]->str;
}

/* The alert object of raw, owned by the caller; NULL (warned unless quiet) when there is none. */
static json_t *
tail_parse(const char *id, const char *raw, size_t rawlen, int quiet)
{
	json_error_t	 err;
	json_t		*a;
	char		 why[6 * JSON_ERROR_TEXT_LENGTH];
	size_t		 n;

	/* chat text may hold U+0000, and chatmond keeps it whole */
	if ((a = json_loadb(raw, rawlen, JSON_ALLOW_NUL, &err)) == NULL) {
		/* jansson quotes the byte it stopped at: shown escaped (review) */
		n = util_escape(why, sizeof(why) - 1, 0, err.text, strlen(err.text), 0);
		why[n] = '\0';
		if (!quiet)
			fprintf(stderr, "chatmon: tail: entry %s: not JSON (%s): "
			    "skipped\n", id, why);
		return NULL;
	}
	if (!json_is_object(a)) {
		if (!quiet)
			fprintf(stderr, "chatmon: tail: entry %s: not a JSON object: skipped\n", id);
		json_decref(a);
		return NULL;
	}
	return a;
}

/*
 * The alert object of stream entry id (NULL: the entry was malformed) with
 * its fields f, owned by the caller; *raw points into the reply. NULL,
 * with a warning unless quiet, when the entry holds none: one bad producer
 * must not stop the feed.
 */
static json_t *
tail_entry_alert(const char *id, const redisReply *f, const char **raw,
    size_t *rawlen, int quiet)
{
	size_t	i;

	if (id == NULL) {
		if (!quiet)
			fprintf(stderr, "chatmon: tail: malformed stream entry: skipped\n");
		return NULL;
	}
	for (i = 0; i + 1 < f->elements; i += 2)
		if (f->element[i]->type == REDIS_REPLY_STRING &&
		    strcmp(f->element[i]->str, "alert") == 0 &&
		    f->element[i + 1]->type == REDIS_REPLY_STRING)
			break;
	if (i + 1 >= f->elements) {
		if (!quiet)
			fprintf(stderr, "chatmon: tail: entry %s: no alert field: skipped\n", id);
		return NULL;
	}
	*raw = f->element[i + 1]->str;
	*rawlen = f->element[i + 1]->len;
	return tail_parse(id, *raw, *rawlen, quiet);
}

static int
tail_wanted(struct tail *t, json_t *a)
{
	const char	*v;
	size_t		 n;

	if (t->min_severity > 0 &&
	    alertline_rank(tail_jstr(a, "severity")) < t->min_severity)
		return 0;
	if (t->agent != NULL &&
	    ((v = tail_jstr(a, "agent")) == NULL || strcmp(v, t->agent) != 0))
		return 0;
	if (t->type != NULL) {
		if ((v = tail_jstr(a, "type")) == NULL)
			return 0;
		n = strlen(t->type);
		/* "sla" and "sla." both mean every sla.* type; "rule" is not "rules.x" */
		if (strcmp(v, t->type) != 0 && !(strncmp(v, t->type, n) == 0 &&
		    (t->type[n - 1] == '.' || v[n] == '.')))
			return 0;
	}
	return 1;
}

/* Prints alert a (raw as stored) unless it repeats one already shown or is filtered out. */
static int
tail_show(struct tail *t, json_t *a, const char *raw, size_t rawlen)
{
	const char	*id;
	int		 dup = 0, oom;

	if ((id = tail_jstr(a, "id")) != NULL &&
	    (dup = seen_add(t->seen, id)) == -1) {
		fprintf(stderr, "chatmon: tail: out of memory\n");
		return TAIL_FATAL;
	}
	if (dup != 0 || !tail_wanted(t, a))
		return TAIL_OK;
	sbuf_reset(&t->line);
	if (t->json) {
		if (rawlen > 0 && raw[rawlen - 1] == '\n')
			rawlen--;
		oom = sbuf_append(&t->line, raw, rawlen) == -1;
	} else {
		/* today is the day of this line, not of the run */
		t->fmt.now_ms = util_wall_ms();
		oom = alertline_format(&t->line, &t->fmt, a) == -1;
	}
	return tail_flush(t, oom);
}

/* One stream entry (id NULL: a malformed one) to stdout, as tail_show says. */
static int
tail_entry(struct tail *t, const char *id, const redisReply *fields)
{
	json_t		*a;
	const char	*raw;
	size_t		 rawlen;
	int		 rc;

	if ((a = tail_entry_alert(id, fields, &raw, &rawlen, 0)) == NULL)
		return TAIL_OK;
	rc = tail_show(t, a, raw, rawlen);
	json_decref(a);
	return rc;
}

/* --- the loop ------------------------------------------------------------- */

/* Ends the run with this exit code; the first reason stays. */
static void
tail_end(struct tail *t, int code)
{
	if (t->exit < 0)
		t->exit = code;
	event_base_loopbreak(t->base);
}

/* A tail_rc that is not TAIL_OK ends the run. */
static void
tail_check(struct tail *t, int rc)
{
	if (rc == TAIL_STOP)
		tail_end(t, 0);
	else if (rc != TAIL_OK)
		tail_end(t, 1);
}

static void
tail_on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	tail_end(arg, 0);
}

/* Errors Redis raises while it is starting, failing over or busy: outages. */
static int
tail_transient(const char *err)
{
	return strstr(err, "LOADING") != NULL || strstr(err, "BUSY") != NULL ||
	    strstr(err, "MASTERDOWN") != NULL || strstr(err, "TRYAGAIN") != NULL;
}

/*
 * Redis answered cmd with r, not what was asked for: an error of the
 * configuration (a key that is not a stream, NOPERM) is fatal; one it
 * raises while starting or busy, or a reply that makes no sense, is an
 * outage: the connection is dropped and made again.
 */
static void
tail_refused(struct tail *t, const char *cmd, const redisReply *r)
{
	char	why[300];

	if (r->type != REDIS_REPLY_ERROR) {
		snprintf(why, sizeof(why), "%s: unexpected reply", cmd);
		rconn_drop(t->rc, why);
		return;
	}
	snprintf(why, sizeof(why), "%s: %s", cmd, r->str);
	if (tail_transient(r->str)) {
		rconn_drop(t->rc, why);
		return;
	}
	fprintf(stderr, "chatmon: tail: redis %s: %s\n", t->url, why);
	tail_end(t, 1);
}

/*
 * A history command's reply: 0 when it is an array to read. Otherwise it
 * is dealt with here and -1: NULL means the connection went, and the
 * history is read again when it is back (nothing of it was shown yet but
 * what the seen set remembers).
 */
static int
tail_reply(struct tail *t, const redisReply *r, const char *cmd)
{
	if (r == NULL || t->exit >= 0)
		return -1;
	if (r->type == REDIS_REPLY_ARRAY)
		return 0;
	tail_refused(t, cmd, r);
	return -1;
}

static void
tail_history_reset(struct tail *t)
{
	size_t	i;

	for (i = 0; i < t->nkept; i++)
		free(t->kept[i].raw);
	free(t->kept);
	t->kept = NULL;
	t->nkept = t->keptcap = 0;
	seen_free(t->ids);
	t->ids = NULL;
}

/* The history is shown: follow from t->last on. */
static void
tail_follow(struct tail *t)
{
	tail_history_reset(t);
	t->have_pos = 1;
	xfollow_follow(t->xf, t->last);
}

/* --- the history ---------------------------------------------------------- */

/* Whether a filter is set: --since -N then counts the alerts it lets through. */
static int
tail_filtered(const struct tail *t)
{
	return t->min_severity > 0 || t->agent != NULL || t->type != NULL;
}

/*
 * With a filter, whether entry e counts towards --since -N: an alert the
 * filters let through that is not a re-sent copy of one already counted;
 * kept (a copy) when it does. -1 on ENOMEM.
 */
static int
tail_keep(struct tail *t, const redisReply *e)
{
	struct tail_kept *nk;
	const char	*raw, *id;
	json_t		*a;
	size_t		 rawlen;
	int		 yes, rc = 0;

	if ((id = tail_entry_id(e)) == NULL ||
	    (a = tail_entry_alert(id, e->element[1], &raw, &rawlen, 1)) == NULL)
		return 0;
	yes = tail_wanted(t, a);
	if (yes && (id = tail_jstr(a, "id")) != NULL) {
		if ((rc = seen_add(t->ids, id)) == 1)
			yes = 0;
	}
	json_decref(a);
	if (rc == -1)
		return -1;
	if (!yes)
		return 0;
	if (t->nkept == t->keptcap) {
		t->keptcap = t->keptcap ? 2 * t->keptcap : 64;
		if ((nk = realloc(t->kept, t->keptcap * sizeof(*nk))) == NULL)
			return -1;
		t->kept = nk;
	}
	if ((t->kept[t->nkept].raw = malloc(rawlen ? rawlen : 1)) == NULL)
		return -1;
	memcpy(t->kept[t->nkept].raw, raw, rawlen);
	t->kept[t->nkept++].len = rawlen;
	return 0;
}

/* The alerts kept, oldest first. */
static int
tail_show_kept(struct tail *t)
{
	json_t	*a;
	size_t	 i;
	int	 rc = TAIL_OK;

	for (i = t->nkept; rc == TAIL_OK && i-- > 0; ) {
		if ((a = tail_parse("?", t->kept[i].raw, t->kept[i].len, 1)) == NULL)
			continue;
		rc = tail_show(t, a, t->kept[i].raw, t->kept[i].len);
		json_decref(a);
	}
	return rc;
}

static void	tail_last_page(struct tail *);

/*
 * --since -N: the last N entries, oldest first; following starts after the
 * newest. With a filter, the last N alerts it lets through: the stream is
 * read backwards a page at a time until N are found or it ends, so that
 * `--since -5 --type sla` shows 5 when the stream holds 5.
 */
static void
tail_on_last_page(redisReply *r, void *priv)
{
	struct tail	*t = priv;
	const char	*id;
	size_t		 i, n;
	int		 rc = TAIL_OK;

	if (tail_reply(t, r, "XREVRANGE") == -1)
		return;
	if (t->first_page && r->elements > 0 &&
	    (id = tail_entry_id(r->element[0])) != NULL)
		snprintf(t->last, sizeof(t->last), "%s", id);
	t->first_page = 0;
	if (!tail_filtered(t)) {
		n = r->elements < t->since_n ? r->elements : (size_t)t->since_n;
		for (i = n; rc == TAIL_OK && i-- > 0; )
			rc = tail_entry(t, tail_entry_id(r->element[i]),
			    r->element[i]->type == REDIS_REPLY_ARRAY &&
			    r->element[i]->elements == 2 ? r->element[i]->element[1] :
			    NULL);
		if (rc != TAIL_OK)
			tail_check(t, rc);
		else
			tail_follow(t);
		return;
	}
	for (i = 0; i < r->elements && t->nkept < t->since_n; i++)
		if (tail_keep(t, r->element[i]) == -1) {
			fprintf(stderr, "chatmon: tail: out of memory\n");
			tail_end(t, 1);
			return;
		}
	if (t->nkept < t->since_n && r->elements == TAIL_PAGE_N &&
	    (id = tail_entry_id(r->element[r->elements - 1])) != NULL) {
		/* the next page: what is older than this one's oldest */
		snprintf(t->end, sizeof(t->end), "(%s", id);
		tail_last_page(t);
		return;
	}
	if ((rc = tail_show_kept(t)) != TAIL_OK)
		tail_check(t, rc);
	else
		tail_follow(t);
}

static void
tail_last_page(struct tail *t)
{
	const char	*argv[6] = { "XREVRANGE", t->key, t->end, "-", "COUNT", NULL };
	char		 count[24];

	/* at least one, for the position to follow from */
	snprintf(count, sizeof(count), "%" PRIu64, tail_filtered(t) ?
	    (uint64_t)TAIL_PAGE_N : t->since_n > 0 ? t->since_n : 1);
	argv[5] = count;
	/* -1: the connection is down; its coming back starts the history again */
	(void)rconn_command_argv(t->rc, tail_on_last_page, t, 0, 6, argv, NULL);
}

static void	tail_scan(struct tail *);

/*
 * --since ALERT-ID: the entry is searched from the id's own millisecond
 * forwards (an alert held back by an outage is stored later than it was
 * made, never earlier), less TAIL_SKEW_MS as the id is chatmond's clock and
 * the stream id Redis's. Clocks further apart cost a scan of the whole
 * stream, once. The alerts passed on the way were shown before the given
 * one, so they count as seen: their re-sent copies are dropped.
 */
static void
tail_on_scan(redisReply *r, void *priv)
{
	struct tail	*t = priv;
	const char	*raw, *aid, *id;
	json_t		*a;
	size_t		 i, rawlen;
	int		 found = 0, more;

	if (tail_reply(t, r, "XRANGE") == -1)
		return;
	more = r->elements == TAIL_PAGE_N;
	for (i = 0; i < r->elements && !found; i++) {
		if ((id = tail_entry_id(r->element[i])) == NULL)
			continue;
		snprintf(t->start, sizeof(t->start), "%s", id);
		if ((a = tail_entry_alert(id, r->element[i]->element[1], &raw,
		    &rawlen, 1)) == NULL)
			continue;
		if ((aid = tail_jstr(a, "id")) != NULL) {
			if (seen_add(t->seen, aid) == -1) {
				json_decref(a);
				fprintf(stderr, "chatmon: tail: out of memory\n");
				tail_end(t, 1);
				return;
			}
			found = strcmp(aid, t->since_id) == 0;
		}
		json_decref(a);
	}
	if (found) {
		snprintf(t->last, sizeof(t->last), "%s", t->start);
		tail_follow(t);
		return;
	}
	if (more) {
		tail_id_next(t->start);
		tail_scan(t);
		return;
	}
	if (t->pass == 0) {
		seen_clear(t->seen);	/* they may come after it now */
		t->pass = 1;
		snprintf(t->start, sizeof(t->start), "-");
		tail_scan(t);
		return;
	}
	/* trimmed away, or not sent yet: the best guess is its time */
	fprintf(stderr, "chatmon: tail: alert %s is not in %s: showing what "
	    "came after its time\n", t->since_id, t->key);
	seen_clear(t->seen);
	tail_id_before(t->last, t->since_ms);
	tail_follow(t);
}

static void
tail_scan(struct tail *t)
{
	const char	*argv[6] = { "XRANGE", t->key, t->start, "+", "COUNT",
	    TAIL_PAGE };

	(void)rconn_command_argv(t->rc, tail_on_scan, t, 0, 6, argv, NULL);
}

/* Connected and no position yet: the history, from the start. */
static void
tail_position(struct tail *t)
{
	tail_history_reset(t);
	switch (t->since) {
	case TAIL_SINCE_LAST:
		snprintf(t->last, sizeof(t->last), "0-0");	/* empty: all that comes is new */
		snprintf(t->end, sizeof(t->end), "+");
		t->first_page = 1;
		if (tail_filtered(t) && (t->ids = seen_new(TAIL_SEEN_MAX)) == NULL) {
			fprintf(stderr, "chatmon: tail: out of memory\n");
			tail_end(t, 1);
			return;
		}
		tail_last_page(t);
		return;
	case TAIL_SINCE_ALERT:
		t->pass = 0;
		snprintf(t->start, sizeof(t->start), "%" PRIu64 "-0",
		    t->since_ms > TAIL_SKEW_MS ? t->since_ms - TAIL_SKEW_MS : 0);
		tail_scan(t);
		return;
	case TAIL_SINCE_STREAM:
		/* XREAD returns what is after it: following shows the history too */
		snprintf(t->last, sizeof(t->last), "%" PRIu64 "-%" PRIu64,
		    t->since_ms, t->since_seq);
		tail_follow(t);
		return;
	}
}

/* --- following ------------------------------------------------------------ */

static void
tail_on_entry(void *arg, const char *sid, const redisReply *fields)
{
	struct tail	*t = arg;

	if (t->exit < 0)
		tail_check(t, tail_entry(t, sid, fields));
}

static int
tail_on_read_error(void *arg, const redisReply *r)
{
	tail_refused(arg, "XREAD", r);
	return -1;	/* dropped (read on when it is back) or ended */
}

/*
 * The connection's news: an outage is reported once, with rconn's reason;
 * a setup the server refused is fatal unless Redis was only busy.
 */
static void
tail_on_conn(void *arg, int up, int lost)
{
	struct tail	*t = arg;
	const char	*why;
	int		 refused;

	(void)lost;
	if (t->exit >= 0)
		return;
	if (!up) {
		why = rconn_error(t->rc, &refused);
		tail_history_reset(t);
		if (refused && !tail_transient(why)) {
			fprintf(stderr, "chatmon: tail: redis %s: %s\n", t->url, why);
			tail_end(t, 1);
			return;
		}
		if (!t->down)
			fprintf(stderr, "chatmon: tail: redis %s: %s: retrying\n",
			    t->url, why[0] ? why : "connection lost");
		t->down = 1;
		return;
	}
	if (t->down) {
		fprintf(stderr, "chatmon: tail: redis %s: connected\n", t->url);
		t->down = 0;
	}
	if (t->have_pos)
		xfollow_resume(t->xf);
	else
		tail_position(t);
}

/* --- the command ---------------------------------------------------------- */

/* --help: stdout and 0; a usage error: stderr and 2. */
static int
tail_usage(FILE *f)
{
	fprintf(f,
	    "usage: chatmon tail [-c FILE] [--redis URL] [--since ID|-N] "
	    "[--severity LEVEL]\n"
	    "                    [--agent ID] [--type TYPE] [--lang zh|en] [--json]\n"
	    "\n"
	    "Shows the alerts of the Redis stream (redis.stream) as they come:\n"
	    "first the history (--since: -N the last N, default -10; an alert id\n"
	    "or a stream id: what came after it), then each new alert.\n"
	    "--severity  info, warn or critical: that and above\n"
	    "--agent     one agent's alerts\n"
	    "--type      rule.hit, sla.breach, ... or a prefix: sla\n"
	    "--lang      the categories' names in readable lines, the dashboard's:\n"
	    "            zh (default) or en; the rule id follows in either\n"
	    "--json      the alert objects as stored, one per line, instead of\n"
	    "            readable lines (one line an alert, times in sla.timezone)\n"
	    "--redis     redis://host[:port][/db] or unix:/path, instead of redis.url\n");
	return f == stdout ? 0 : 2;
}

/* Settings from the configuration, or from the defaults when --redis makes a file unnecessary. */
static struct config *
tail_config(const char *path, int explicit, const char *redis_url)
{
	struct config	*cfg;
	struct sbuf	 errs;

	sbuf_init(&errs);
	if (!explicit && redis_url != NULL && access(path, F_OK) == -1 &&
	    errno == ENOENT)
		path = NULL;
	if ((cfg = config_load(path, NULL, 0, &errs)) == NULL) {
		fputs(sbuf_str(&errs), stderr);
		if (!explicit && access(path, F_OK) == -1)
			fprintf(stderr, "chatmon: tail: no %s: name the "
			    "configuration (-c FILE) or the server (--redis URL)\n",
			    path);
	}
	sbuf_free(&errs);
	return cfg;
}

int
tail_main(int argc, char **argv, const char *default_config)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "redis", required_argument, NULL, 'r' },
		{ "since", required_argument, NULL, 's' },
		{ "severity", required_argument, NULL, 'S' },
		{ "agent", required_argument, NULL, 'a' },
		{ "type", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "lang", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct sigaction	 sa, old_pipe;
	struct config		*cfg = NULL;
	struct config_redis	 redis;
	struct tail		 t;
	const char		*path = default_config, *redis_url = NULL;
	const char		*prefix;
	enum alertline_lang	 lang = ALERTLINE_ZH;	/* the dashboard's default */
	int			 ch, explicit = 0, rc = 1, level = log_get_level();
	size_t			 n;

	memset(&t, 0, sizeof(t));
	sbuf_init(&t.line);
	t.since = TAIL_SINCE_LAST;
	t.since_n = 10;
	t.exit = -1;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			explicit = 1;
			break;
		case 'r':
			redis_url = optarg;
			break;
		case 's':
			if (tail_parse_since(&t, optarg) == -1) {
				fprintf(stderr, "chatmon: tail: --since: want -N, an alert "
				    "id or a stream id, not '%s'\n", optarg);
				return 2;
			}
			break;
		case 'S':
			if ((t.min_severity = alertline_rank(optarg)) == -1) {
				fprintf(stderr, "chatmon: tail: --severity: info, warn "
				    "or critical, not '%s'\n", optarg);
				return 2;
			}
			break;
		case 'a':
			t.agent = optarg;
			break;
		case 't':
			if (*optarg == '\0') {
				fprintf(stderr, "chatmon: tail: --type: empty\n");
				return 2;
			}
			t.type = optarg;
			break;
		case 'j':
			t.json = 1;
			break;
		case 'l':
			if (strcmp(optarg, "zh") == 0)
				lang = ALERTLINE_ZH;
			else if (strcmp(optarg, "en") == 0)
				lang = ALERTLINE_EN;
			else {
				fprintf(stderr, "chatmon: tail: --lang: zh or en, "
				    "not '%s'\n", optarg);
				return 2;
			}
			break;
		case 'h':
			return tail_usage(stdout);
		default:
			return tail_usage(stderr);
		}
	}
	if (optind != argc)
		return tail_usage(stderr);

	if ((cfg = tail_config(path, explicit, redis_url)) == NULL)
		return 1;
	/* borrowed strings: rconn_set_target copies what it keeps */
	redis = cfg->redis;
	t.url = cfg->redis.url;
	if (redis_url != NULL) {
		if (config_parse_redis_url(redis_url, &redis.target) == -1) {
			fprintf(stderr, "chatmon: tail: --redis: want redis://host[:port][/db] "
			    "or unix:/path, not '%s'\n", redis_url);
			config_free(cfg);
			return 2;
		}
		redis.nsentinels = 0;		/* the server named is the one */
		t.url = redis_url;
	} else if (cfg->redis.nsentinels > 0) {
		snprintf(t.urlbuf, sizeof(t.urlbuf), "master %s (Sentinel)",
		    cfg->redis.master_name);
		t.url = t.urlbuf;
	}
	prefix = cfg->redis.prefix != NULL ? cfg->redis.prefix : "";
	n = strlen(prefix) + strlen(cfg->redis.stream) + 1;
	if ((t.key = malloc(n)) == NULL || (t.seen = seen_new(TAIL_SEEN_MAX)) == NULL)
		goto oom;
	snprintf(t.key, n, "%s%s", prefix, cfg->redis.stream);
	t.fmt.colour = alertline_want_colour(isatty(STDOUT_FILENO),
	    getenv("NO_COLOR"), getenv("TERM"));
	t.fmt.lang = lang;
	/* the shop's zone, as the dashboard and the SLA hours: not the machine's TZ */
	t.fmt.utc_offset_min = cfg->sla.utc_offset_min;

	if ((t.base = event_base_new()) == NULL ||
	    (t.rc = rconn_new(t.base, "tail", tail_on_conn, &t)) == NULL ||
	    (t.xf = xfollow_new(t.base, t.rc, t.key, tail_on_entry, NULL,
	    &t)) == NULL ||
	    (t.ev_int = evsignal_new(t.base, SIGINT, tail_on_signal, &t)) == NULL ||
	    (t.ev_term = evsignal_new(t.base, SIGTERM, tail_on_signal, &t)) == NULL ||
	    evsignal_add(t.ev_int, NULL) == -1 || evsignal_add(t.ev_term, NULL) == -1)
		goto oom;
	xfollow_set_read(t.xf, TAIL_BLOCK_MS, TAIL_PAGE_N);
	xfollow_set_error(t.xf, tail_on_read_error);

	/*
	 * SIGPIPE ignored: hiredis writes with write(2), and a Redis that went
	 * away must be an outage, not the end of the program; stdout gone
	 * shows as EPIPE (tail_flush). rconn's own lines are quiet: tail
	 * reports outages itself, once each.
	 */
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, &old_pipe);
	log_set_level(LOG_LVL_ERR);

	if (rconn_set_target(t.rc, &redis, RCONN_ANY_ROLE) == -1) {
		sigaction(SIGPIPE, &old_pipe, NULL);
		goto oom;
	}
	/* a connect that failed at once may have ended it already */
	if (t.exit < 0)
		event_base_dispatch(t.base);
	rc = t.exit < 0 ? 1 : t.exit;

	log_set_level(level);
	sigaction(SIGPIPE, &old_pipe, NULL);
	goto out;
oom:
	fprintf(stderr, "chatmon: tail: out of memory\n");
	rc = 1;
out:
	/* the rconn first: what is out hears NULL while the follower still exists */
	rconn_free(t.rc);
	xfollow_free(t.xf);
	if (t.ev_int != NULL)
		event_free(t.ev_int);
	if (t.ev_term != NULL)
		event_free(t.ev_term);
	if (t.base != NULL)
		event_base_free(t.base);
	tail_history_reset(&t);
	seen_free(t.seen);
	sbuf_free(&t.line);
	free(t.key);
	config_free(cfg);
	return rc;
}
