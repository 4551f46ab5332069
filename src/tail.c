/* tail: `chatmon tail`: the supervisors' live feed of alerts, read from the Redis stream. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "chatmon/alertline.h"
#include "chatmon/config.h"
#include "chatmon/rreply.h"
#include "chatmon/seen.h"
#include "chatmon/tail.h"
#include "chatmon/util.h"

/*
 * The stream, not the pub/sub channel, is the source: it keeps what was
 * sent while nobody listened, so `tail` can show history and, after an
 * outage, pick up exactly where it stopped (the last stream id it saw).
 * The price is at-least-once delivery: the daemon re-sends an alert it was
 * not sure of, so alert ids seen recently are remembered and repeats dropped.
 *
 * The Redis connection is hiredis's blocking context driven by hand
 * (append, write, then ppoll + read): ppoll with SIGINT/SIGTERM unblocked
 * only while waiting is what lets a signal end a 1 s XREAD BLOCK at once,
 * with no window where it could be missed.
 *
 * With redis.sentinels every connection starts by asking them, in turn,
 * where the master is; a reader has no need of ROLE: a replica would serve.
 */

#define TAIL_SEEN_MAX		10000	/* alert ids remembered for de-duplication */
#define TAIL_PAGE_N		1000	/* entries per XRANGE / XREAD */
#define TAIL_PAGE		"1000"
#define TAIL_BLOCK_MS		"1000"	/* XREAD BLOCK: how often a quiet loop wakes */
#define TAIL_IDLE_MS		6000	/* no byte from Redis this long (block included): hung */
#define TAIL_CONNECT_S		1
#define TAIL_RETRY_MS		1000
/* clocks of chatmond and Redis may differ: search an alert id this far back */
#define TAIL_SKEW_MS		60000
#define TAIL_ID_MAX		64

enum tail_rc {
	TAIL_OK = 0,
	TAIL_RETRY = -1,		/* Redis unreachable or lost: report, wait, reconnect */
	TAIL_FATAL = -2,		/* already reported: exit 1 */
	TAIL_STOP = -3,			/* a signal, or stdout closed: exit 0 */
};

enum tail_since {
	TAIL_SINCE_LAST,		/* -N: the last N entries */
	TAIL_SINCE_ALERT,		/* an alert id: what the stream holds after it */
	TAIL_SINCE_STREAM,		/* a stream id: what the stream holds after it */
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

	/* Redis */
	const char	*url;			/* for messages */
	struct config_redis_target target;	/* with Sentinel: found each time */
	const char	*username;
	const char	*password;
	const struct config_redis *sentinel;	/* redis.sentinels; NULL: none */
	char		 urlbuf[300];
	char		*key;			/* prefix + stream; owned */
	redisContext	*c;
	sigset_t	 waitmask;		/* the mask while waiting: signals let in */
	char		 why[256];		/* the last failure */
	int		 down;			/* an outage was reported */

	/* position */
	int		 have_pos;
	char		 last[TAIL_ID_MAX];	/* the last stream id read */

	struct seen	*seen;
	struct sbuf	 line;
};

static volatile sig_atomic_t tail_stop;

static void
tail_onsignal(int sig)
{
	(void)sig;
	tail_stop = 1;
}

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
		return tail_u64(s + 1, strlen(s + 1), &t->since_n);
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
	    e->element[0]->len >= TAIL_ID_MAX)
		return NULL;
	return e->element[0]->str;
}

/*
 * The alert object of a stream entry, owned by the caller; *raw points
 * into the reply. NULL, with a warning unless quiet, when the entry holds
 * none: one bad producer must not stop the feed.
 */
static json_t *
tail_entry_alert(const redisReply *e, const char **raw, size_t *rawlen, int quiet)
{
	const redisReply	*f;
	const char		*id = tail_entry_id(e);
	json_error_t		 err;
	json_t			*a;
	size_t			 i;

	if (id == NULL) {
		if (!quiet)
			fprintf(stderr, "chatmon: tail: malformed stream entry: skipped\n");
		return NULL;
	}
	f = e->element[1];
	for (i = 0; f->type == REDIS_REPLY_ARRAY && i + 1 < f->elements; i += 2)
		if (f->element[i]->type == REDIS_REPLY_STRING &&
		    strcmp(f->element[i]->str, "alert") == 0 &&
		    f->element[i + 1]->type == REDIS_REPLY_STRING)
			break;
	if (f->type != REDIS_REPLY_ARRAY || i + 1 >= f->elements) {
		if (!quiet)
			fprintf(stderr, "chatmon: tail: entry %s: no alert field: skipped\n", id);
		return NULL;
	}
	*raw = f->element[i + 1]->str;
	*rawlen = f->element[i + 1]->len;
	/* chat text may hold U+0000, and chatmond keeps it whole */
	if ((a = json_loadb(*raw, *rawlen, JSON_ALLOW_NUL, &err)) == NULL) {
		if (!quiet)
			fprintf(stderr, "chatmon: tail: entry %s: not JSON (%s): "
			    "skipped\n", id, err.text);
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

/* Prints one entry unless it repeats an alert already shown or is filtered out. */
static int
tail_entry(struct tail *t, const redisReply *e)
{
	json_t		*a;
	const char	*raw, *id;
	size_t		 rawlen;
	int		 rc = TAIL_OK, dup = 0, oom;

	if ((a = tail_entry_alert(e, &raw, &rawlen, 0)) == NULL)
		return TAIL_OK;
	if ((id = tail_jstr(a, "id")) != NULL &&
	    (dup = seen_add(t->seen, id)) == -1) {
		fprintf(stderr, "chatmon: tail: out of memory\n");
		rc = TAIL_FATAL;
	} else if (dup == 0 && tail_wanted(t, a)) {
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
		rc = tail_flush(t, oom);
	}
	json_decref(a);
	return rc;
}

/* --- Redis ---------------------------------------------------------------- */

static void
tail_disconnect(struct tail *t)
{
	redisFree(t->c);
	t->c = NULL;
}

static int
tail_ioerr(struct tail *t)
{
	snprintf(t->why, sizeof(t->why), "%s",
	    t->c->errstr[0] != '\0' ? t->c->errstr : "connection lost");
	return TAIL_RETRY;
}

/*
 * Sends one command and waits for its reply, which the caller frees; a
 * signal ends the wait (TAIL_STOP). Errors Redis raises while it is
 * starting or busy are outages; any other error reply is a mistake of the
 * configuration (a wrong password, a key that is not a stream): fatal.
 */
static int
tail_cmd(struct tail *t, redisReply **rp, int argc, const char **argv)
{
	redisContext	*c = t->c;
	struct pollfd	 pfd;
	struct timespec	 ts;
	uint64_t	 deadline, now;
	void		*aux = NULL;
	redisReply	*r;
	int		 done, n;

	*rp = NULL;
	if (redisAppendCommandArgv(c, argc, argv, NULL) != REDIS_OK)
		return tail_ioerr(t);
	do {
		if (redisBufferWrite(c, &done) != REDIS_OK)
			return tail_ioerr(t);
	} while (!done);
	deadline = util_mono_ns() + (uint64_t)TAIL_IDLE_MS * 1000000;
	for (;;) {
		if (redisGetReplyFromReader(c, &aux) != REDIS_OK)
			return tail_ioerr(t);
		if (aux != NULL)
			break;
		if (tail_stop)
			return TAIL_STOP;
		if ((now = util_mono_ns()) >= deadline) {
			snprintf(t->why, sizeof(t->why), "no reply for %d s",
			    TAIL_IDLE_MS / 1000);
			return TAIL_RETRY;
		}
		ts.tv_sec = (time_t)((deadline - now) / 1000000000);
		ts.tv_nsec = (long)((deadline - now) % 1000000000);
		pfd.fd = c->fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		if ((n = ppoll(&pfd, 1, &ts, &t->waitmask)) == -1 && errno != EINTR) {
			snprintf(t->why, sizeof(t->why), "poll: %s", strerror(errno));
			return TAIL_RETRY;
		}
		if (n > 0) {
			if (redisBufferRead(c) != REDIS_OK)
				return tail_ioerr(t);
			deadline = util_mono_ns() + (uint64_t)TAIL_IDLE_MS * 1000000;
		}
	}
	r = aux;
	if (r->type != REDIS_REPLY_ERROR) {
		*rp = r;
		return TAIL_OK;
	}
	snprintf(t->why, sizeof(t->why), "%s: %s", argv[0], r->str);
	n = strncmp(r->str, "LOADING", 7) == 0 || strncmp(r->str, "BUSY", 4) == 0 ||
	    strncmp(r->str, "MASTERDOWN", 10) == 0 || strncmp(r->str, "TRYAGAIN", 8) == 0;
	freeReplyObject(r);
	if (n)
		return TAIL_RETRY;
	fprintf(stderr, "chatmon: tail: redis %s: %s\n", t->url, t->why);
	return TAIL_FATAL;
}

/* A command whose reply only matters for its errors. */
static int
tail_cmd_ok(struct tail *t, int argc, const char **argv)
{
	redisReply	*r;
	int		 rc;

	if ((rc = tail_cmd(t, &r, argc, argv)) == TAIL_OK)
		freeReplyObject(r);
	return rc;
}

/* AUTH [username] password, as the configuration says. */
static int
tail_auth(struct tail *t, const char *user, const char *password)
{
	const char	*auth[3] = { "AUTH", user, password };

	if (user == NULL) {
		auth[1] = password;
		return tail_cmd_ok(t, 2, auth);
	}
	return tail_cmd_ok(t, 3, auth);
}

/* With Sentinel: the first sentinel that names the master sets t->target. */
static int
tail_find_master(struct tail *t)
{
	const struct config_redis	*r = t->sentinel;
	const struct config_addr	*s;
	const char			*ask[3] = { "SENTINEL",
	    "get-master-addr-by-name", r->master_name };
	struct timeval			 tv = { TAIL_CONNECT_S, 0 };
	redisReply			*reply;
	char				 why[128];
	size_t				 i;
	int				 rc, port;

	for (i = 0; i < r->nsentinels; i++) {
		s = &r->sentinel[i];
		if ((t->c = redisConnectWithTimeout(s->host, s->port, tv)) == NULL ||
		    t->c->err != 0) {
			snprintf(t->why, sizeof(t->why), "sentinel %s:%d: %s", s->host,
			    s->port, t->c != NULL ? t->c->errstr : "out of memory");
			if (t->c != NULL)
				tail_disconnect(t);
			continue;
		}
		rc = r->sentinel_password == NULL ? TAIL_OK :
		    tail_auth(t, r->sentinel_username, r->sentinel_password);
		if (rc == TAIL_OK && (rc = tail_cmd(t, &reply, 3, ask)) == TAIL_OK) {
			rc = rreply_master_addr(reply, t->target.host,
			    sizeof(t->target.host), &port, why, sizeof(why)) == 0 ?
			    TAIL_OK : TAIL_RETRY;
			if (rc == TAIL_OK)
				t->target.port = port;
			else
				snprintf(t->why, sizeof(t->why), "sentinel %s:%d: "
				    "where is master %s? %s", s->host, s->port,
				    r->master_name, why);
			freeReplyObject(reply);
		}
		tail_disconnect(t);
		if (rc == TAIL_OK || rc == TAIL_FATAL || rc == TAIL_STOP)
			return rc;
	}
	return TAIL_RETRY;	/* t->why: the last sentinel's failure */
}

static int
tail_connect(struct tail *t)
{
	struct timeval	 tv = { TAIL_CONNECT_S, 0 };
	const char	*sel[2] = { "SELECT", NULL };
	char		 db[16];
	int		 rc;

	if (t->sentinel != NULL && (rc = tail_find_master(t)) != TAIL_OK)
		return rc;
	if (t->target.path[0] != '\0')
		t->c = redisConnectUnixWithTimeout(t->target.path, tv);
	else
		t->c = redisConnectWithTimeout(t->target.host, t->target.port, tv);
	if (t->c == NULL) {
		snprintf(t->why, sizeof(t->why), "out of memory");
		return TAIL_RETRY;
	}
	if (t->c->err != 0) {
		snprintf(t->why, sizeof(t->why), "%s", t->c->errstr);
		tail_disconnect(t);
		return TAIL_RETRY;
	}
	if (t->password != NULL &&
	    (rc = tail_auth(t, t->username, t->password)) != TAIL_OK)
		return rc;
	if (t->target.db != 0) {
		snprintf(db, sizeof(db), "%d", t->target.db);
		sel[1] = db;
		if ((rc = tail_cmd_ok(t, 2, sel)) != TAIL_OK)
			return rc;
	}
	return TAIL_OK;
}

/* --- reading the stream --------------------------------------------------- */

/* Whether a filter is set: --since -N then counts the alerts it lets through. */
static int
tail_filtered(const struct tail *t)
{
	return t->min_severity > 0 || t->agent != NULL || t->type != NULL;
}

/*
 * Whether entry e counts towards --since -N: any entry without a filter
 * (as shown, the last N), else an alert the filters let through that is
 * not a re-sent copy of one already counted.
 */
static int
tail_counts(struct tail *t, const redisReply *e, struct seen *ids)
{
	json_t		*a;
	const char	*raw, *id;
	size_t		 rawlen;
	int		 yes;

	if (!tail_filtered(t))
		return 1;
	if ((a = tail_entry_alert(e, &raw, &rawlen, 1)) == NULL)
		return 0;
	yes = tail_wanted(t, a) &&
	    ((id = tail_jstr(a, "id")) == NULL || seen_add(ids, id) == 0);
	json_decref(a);
	return yes;
}

/*
 * --since -N: the last N entries, oldest first; following starts after the
 * newest. With a filter, the last N alerts it lets through: the stream is
 * read backwards a page at a time until N are found or it ends, so that
 * `--since -5 --type sla` shows 5 when the stream holds 5.
 */
static int
tail_history_last(struct tail *t)
{
	const char	 *argv[6] = { "XREVRANGE", t->key, NULL, "-", "COUNT", NULL };
	redisReply	**pages = NULL, **np, *r;
	const redisReply **want = NULL, **nw;
	struct seen	 *ids = NULL;
	char		  count[24], end[TAIL_ID_MAX + 1] = "+";
	size_t		  npages = 0, nwant = 0, wantcap = 0, i, pagen;
	int		  rc = TAIL_OK;

	/* at least one, for the position to follow from */
	pagen = tail_filtered(t) ? TAIL_PAGE_N : t->since_n > 0 ? (size_t)t->since_n : 1;
	snprintf(count, sizeof(count), "%zu", pagen);
	argv[2] = end;
	argv[5] = count;
	snprintf(t->last, sizeof(t->last), "0-0");	/* empty: all that comes is new */
	if (tail_filtered(t) && (ids = seen_new(TAIL_SEEN_MAX)) == NULL)
		goto oom;
	for (;;) {
		if ((rc = tail_cmd(t, &r, 6, argv)) != TAIL_OK)
			goto done;
		if (r->type != REDIS_REPLY_ARRAY) {
			freeReplyObject(r);
			snprintf(t->why, sizeof(t->why), "XREVRANGE: unexpected reply");
			rc = TAIL_RETRY;
			goto done;
		}
		if ((np = realloc(pages, (npages + 1) * sizeof(*pages))) == NULL) {
			freeReplyObject(r);
			goto oom;
		}
		pages = np;
		pages[npages++] = r;
		if (npages == 1 && r->elements > 0 && tail_entry_id(r->element[0]) != NULL)
			snprintf(t->last, sizeof(t->last), "%s", tail_entry_id(r->element[0]));
		for (i = 0; i < r->elements && nwant < t->since_n; i++) {
			if (!tail_counts(t, r->element[i], ids))
				continue;
			if (nwant == wantcap) {
				wantcap = wantcap ? 2 * wantcap : 64;
				if ((nw = realloc(want, wantcap * sizeof(*want))) == NULL)
					goto oom;
				want = nw;
			}
			want[nwant++] = r->element[i];
		}
		if (!tail_filtered(t) || nwant >= t->since_n || r->elements < pagen ||
		    tail_entry_id(r->element[r->elements - 1]) == NULL)
			break;
		/* the next page: what is older than this one's oldest */
		snprintf(end, sizeof(end), "(%s", tail_entry_id(r->element[r->elements - 1]));
	}
	while (rc == TAIL_OK && nwant-- > 0)
		rc = tail_entry(t, want[nwant]);
	goto done;
oom:
	fprintf(stderr, "chatmon: tail: out of memory\n");
	rc = TAIL_FATAL;
done:
	for (i = 0; i < npages; i++)
		freeReplyObject(pages[i]);
	free(pages);
	free(want);
	seen_free(ids);
	t->have_pos = rc == TAIL_OK;
	return rc;
}

/*
 * Scans the stream from start for the entry holding alert id since_id;
 * 1 and t->last set to it when found, 0 when not. The alerts passed on the
 * way were shown before the given one, so they count as seen: their
 * re-sent copies are dropped.
 */
static int
tail_scan_alert(struct tail *t, const char *from, int *found)
{
	const char	*argv[6] = { "XRANGE", t->key, NULL, "+", "COUNT", TAIL_PAGE };
	char		 start[TAIL_ID_MAX];
	const char	*raw, *aid;
	redisReply	*r;
	json_t		*a;
	size_t		 i, rawlen;
	int		 rc, more = 1;

	*found = 0;
	snprintf(start, sizeof(start), "%s", from);
	while (more && !*found) {
		argv[2] = start;
		if ((rc = tail_cmd(t, &r, 6, argv)) != TAIL_OK)
			return rc;
		more = r->type == REDIS_REPLY_ARRAY && r->elements == TAIL_PAGE_N;
		for (i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements && !*found; i++) {
			if (tail_entry_id(r->element[i]) == NULL)
				continue;
			snprintf(start, sizeof(start), "%s", tail_entry_id(r->element[i]));
			if ((a = tail_entry_alert(r->element[i], &raw, &rawlen, 1)) == NULL)
				continue;
			if ((aid = tail_jstr(a, "id")) != NULL) {
				if (seen_add(t->seen, aid) == -1) {
					json_decref(a);
					freeReplyObject(r);
					fprintf(stderr, "chatmon: tail: out of memory\n");
					return TAIL_FATAL;
				}
				*found = strcmp(aid, t->since_id) == 0;
			}
			json_decref(a);
		}
		freeReplyObject(r);
		if (!*found)
			tail_id_next(start);
	}
	if (*found)
		snprintf(t->last, sizeof(t->last), "%s", start);
	return TAIL_OK;
}

/*
 * --since ALERT-ID: the entry is searched from the id's own millisecond
 * forwards (an alert held back by an outage is stored later than it was
 * made, never earlier), less TAIL_SKEW_MS as the id is chatmond's clock and
 * the stream id Redis's. Clocks further apart cost a scan of the whole
 * stream, once.
 */
static int
tail_history_alert(struct tail *t)
{
	char	from[TAIL_ID_MAX];
	int	rc, found;

	snprintf(from, sizeof(from), "%" PRIu64 "-0",
	    t->since_ms > TAIL_SKEW_MS ? t->since_ms - TAIL_SKEW_MS : 0);
	if ((rc = tail_scan_alert(t, from, &found)) != TAIL_OK)
		return rc;
	if (!found) {
		seen_clear(t->seen);	/* they may come after it now */
		if ((rc = tail_scan_alert(t, "-", &found)) != TAIL_OK)
			return rc;
	}
	if (!found) {
		/* trimmed away, or not sent yet: the best guess is its time */
		fprintf(stderr, "chatmon: tail: alert %s is not in %s: showing what "
		    "came after its time\n", t->since_id, t->key);
		seen_clear(t->seen);
		tail_id_before(t->last, t->since_ms);
	}
	t->have_pos = 1;
	return TAIL_OK;
}

static int
tail_position(struct tail *t)
{
	switch (t->since) {
	case TAIL_SINCE_LAST:
		return tail_history_last(t);
	case TAIL_SINCE_ALERT:
		return tail_history_alert(t);
	case TAIL_SINCE_STREAM:
		/* XREAD returns what is after it: following shows the history too */
		snprintf(t->last, sizeof(t->last), "%" PRIu64 "-%" PRIu64,
		    t->since_ms, t->since_seq);
		t->have_pos = 1;
		return TAIL_OK;
	}
	return TAIL_FATAL;
}

/* One XREAD: whatever came after the last entry, or nothing within a second. */
static int
tail_follow(struct tail *t)
{
	const char	*argv[8] = { "XREAD", "COUNT", TAIL_PAGE, "BLOCK",
			    TAIL_BLOCK_MS, "STREAMS", t->key, t->last };
	const redisReply *s, *entries;
	redisReply	*r;
	const char	*id;
	size_t		 i, j;
	int		 rc;

	if ((rc = tail_cmd(t, &r, 8, argv)) != TAIL_OK)
		return rc;
	for (i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements && rc == TAIL_OK; i++) {
		s = r->element[i];
		if (s->type != REDIS_REPLY_ARRAY || s->elements != 2 ||
		    s->element[1]->type != REDIS_REPLY_ARRAY)
			continue;
		entries = s->element[1];
		for (j = 0; j < entries->elements && rc == TAIL_OK; j++) {
			if ((id = tail_entry_id(entries->element[j])) != NULL)
				snprintf(t->last, sizeof(t->last), "%s", id);
			rc = tail_entry(t, entries->element[j]);
		}
	}
	freeReplyObject(r);
	return rc;
}

/* Sleeps up to ms; a signal ends it early. */
static void
tail_sleep(struct tail *t, int ms)
{
	struct timespec	ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	if (!tail_stop)
		ppoll(NULL, 0, &ts, &t->waitmask);
}

/* Connects (again) when needed, then one step; outages are retried, once reported. */
static int
tail_run(struct tail *t)
{
	int	rc;

	while (!tail_stop) {
		rc = TAIL_OK;
		if (t->c == NULL)
			rc = tail_connect(t);
		if (rc == TAIL_OK)
			rc = t->have_pos ? tail_follow(t) : tail_position(t);
		if (rc == TAIL_OK && t->down) {
			fprintf(stderr, "chatmon: tail: redis %s: connected\n", t->url);
			t->down = 0;
		}
		if (rc == TAIL_FATAL || rc == TAIL_STOP)
			return rc;
		if (rc == TAIL_RETRY) {
			if (!t->down)
				fprintf(stderr, "chatmon: tail: redis %s: %s: retrying\n",
				    t->url, t->why);
			t->down = 1;
			if (t->c != NULL)
				tail_disconnect(t);
			tail_sleep(t, TAIL_RETRY_MS);
		}
	}
	return TAIL_STOP;
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
	struct sigaction	 sa, old_int, old_term, old_pipe;
	sigset_t		 block, old_mask;
	struct config		*cfg = NULL;
	struct tail		 t;
	const char		*path = default_config, *redis_url = NULL;
	const char		*prefix;
	enum alertline_lang	 lang = ALERTLINE_ZH;	/* the dashboard's default */
	int			 ch, explicit = 0, rc = 1;
	size_t			 n;

	memset(&t, 0, sizeof(t));
	sbuf_init(&t.line);
	t.since = TAIL_SINCE_LAST;
	t.since_n = 10;
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
	t.url = cfg->redis.url;
	t.target = cfg->redis.target;
	if (redis_url != NULL) {
		if (config_parse_redis_url(redis_url, &t.target) == -1) {
			fprintf(stderr, "chatmon: tail: --redis: want redis://host[:port][/db] "
			    "or unix:/path, not '%s'\n", redis_url);
			config_free(cfg);
			return 2;
		}
		t.url = redis_url;
	} else if (cfg->redis.nsentinels > 0) {
		t.sentinel = &cfg->redis;
		snprintf(t.urlbuf, sizeof(t.urlbuf), "master %s (Sentinel)",
		    cfg->redis.master_name);
		t.url = t.urlbuf;
	}
	t.username = cfg->redis.username;
	t.password = cfg->redis.password;
	prefix = cfg->redis.prefix != NULL ? cfg->redis.prefix : "";
	n = strlen(prefix) + strlen(cfg->redis.stream) + 1;
	if ((t.key = malloc(n)) == NULL || (t.seen = seen_new(TAIL_SEEN_MAX)) == NULL) {
		fprintf(stderr, "chatmon: tail: out of memory\n");
		goto out;
	}
	snprintf(t.key, n, "%s%s", prefix, cfg->redis.stream);
	t.fmt.colour = alertline_want_colour(isatty(STDOUT_FILENO),
	    getenv("NO_COLOR"), getenv("TERM"));
	t.fmt.lang = lang;
	/* the shop's zone, as the dashboard and the SLA hours: not the machine's TZ */
	t.fmt.utc_offset_min = cfg->sla.utc_offset_min;

	/*
	 * SIGINT and SIGTERM stay blocked except inside ppoll, so one arriving
	 * between a check of tail_stop and the wait cannot be lost. SIGPIPE is
	 * ignored: hiredis writes with write(2), and a Redis that went away
	 * must be an outage, not the end of the program.
	 */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = tail_onsignal;
	sigemptyset(&sa.sa_mask);
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, &old_mask);
	t.waitmask = old_mask;
	sigdelset(&t.waitmask, SIGINT);
	sigdelset(&t.waitmask, SIGTERM);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, &old_pipe);
	tail_stop = 0;

	rc = tail_run(&t) == TAIL_FATAL ? 1 : 0;

	sigprocmask(SIG_SETMASK, &old_mask, NULL);	/* a pending signal lands in our handler */
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	sigaction(SIGPIPE, &old_pipe, NULL);
out:
	if (t.c != NULL)
		tail_disconnect(&t);
	seen_free(t.seen);
	sbuf_free(&t.line);
	free(t.key);
	config_free(cfg);
	return rc;
}
