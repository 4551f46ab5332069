/* dash_api: the dashboard's HTTP API under /api/ (docs/dashboard.md, "HTTP API"): alerts and their handling, a conversation's history, notes to agents, the report of past days; the login routes are passed on to dashauth. */
#include <stdalign.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <libwebsockets.h>
#include <sodium.h>

#include "chatmon/feed.h"
#include "chatmon/handling.h"
#include "chatmon/jsonw.h"
#include "chatmon/log.h"
#include "chatmon/note.h"
#include "chatmon/rconn.h"
#include "chatmon/report.h"
#include "chatmon/reportdb.h"
#include "chatmon/state.h"
#include "dash_int.h"

/*
 * Who may do what: GET needs a viewer and POST a supervisor when logins
 * are on (dashauth_require). Without logins, the API is as open as the
 * feed for GET (dashboard.token, when set, as "Authorization: Bearer");
 * POST acts in Redis on everyone's behalf, so it needs the token as a
 * Bearer and is refused 403 when no token is set: safe by default.
 * Every POST must also come from the page's own origin (or from no
 * browser at all), as the feed must, and say application/json, which a
 * form of another site cannot (CSRF, twice).
 *
 * A request's state lives apart from lws's per-request space: Redis may
 * answer after the client left, and the reply callbacks must find
 * something that is still allocated. The last reply frees an orphan.
 */

#define DASH_API_BODY_MAX	8192
#define DASH_API_LIMIT		200	/* GET /api/alerts: default, ... */
#define DASH_API_LIMIT_MAX	1000	/* ... and most */
#define DASH_API_ARG		(NOTE_NAME_MAX + 64)	/* a query argument, name= included, and its NUL */
#define DASH_API_ARG_MAX_S	"319"			/* DASH_API_ARG - 1, for messages */
_Static_assert(NOTE_NAME_MAX + 64 == 320, "DASH_API_ARG_MAX_S");
#define DASH_API_CHUNK		16384	/* bytes of a body per write */
#define DASH_API_NOTES		100	/* notes of a conversation read */
#define DASH_API_DAY_MS		86400000ULL
#define DASH_API_ACCEPTED	202	/* not in lws's enum */
#define DASH_API_REPORT_DAYS	366	/* GET /api/report: days at most */
#define DASH_API_LATE_MS	3600000LL	/* a day's alerts reach the stream this late */
#define DASH_API_KEY_MAX	64	/* a note's "key", bytes */
#define DASH_API_AGAIN_MS	600000	/* a note sent again this soon is the same note */
#define DASH_API_DAY_PAGE	1000	/* GET /api/alerts?day=: stream entries read at once, ... */
#define DASH_API_DAY_PAGES	10	/* ... and pages read at most per request */

enum dash_route {
	DR_NONE,		/* not ours: dashauth's */
	DR_ALERTS,		/* GET /api/alerts */
	DR_ALERT,		/* POST /api/alerts/ID */
	DR_CONV,		/* GET /api/conversation?id=ID (or /api/conversations/ID) */
	DR_NOTE,		/* POST /api/notes?agent=AGENT (or /api/agents/AGENT/notes) */
	DR_REPORT,		/* GET /api/report */
};

struct dash_req {
	struct dash		*d;
	struct lws		*wsi;		/* NULL: the client left */
	enum dash_route		 route;
	int			 post, too_big;
	char			*arg;		/* the ID or AGENT of the route */
	char			 who[USERS_NAME_MAX + 16];
	/* the login's shops (a copy: the users file may be read again meanwhile) */
	char			 scopebuf[USERS_SHOPS_MAX];
	const char		*scope;		/* scopebuf, or NULL: every shop */
	char			 body[DASH_API_BODY_MAX];
	size_t			 len;
	/* Redis replies still to come, and whether one failed */
	unsigned		 pending, seen;
	int			 failed;
	/*
	 * a command was sent and its answer never came (the connection went,
	 * or Redis hung past redis.timeout): it may have run
	 */
	int			 unknown;
	/* an action's script ran part of its writes, then Redis refused one */
	int			 partial;
	/* the answer */
	unsigned		 status;
	struct sbuf		 out;
	size_t			 sent;
	int			 answering, headers;
	/* the route's work */
	json_t			*doc;		/* POST alert: the value; conversation: turns */
	json_t			*notes;		/* conversation: note ids, then views */
	char			*conv, *text;	/* note */
	char			 nid[NOTE_ID_MAX];	/* its id */
	char			 nkey[2 * crypto_generichash_BYTES_MIN + 1];	/* what makes it the same note */
	int64_t			 now;
	/* report: the reader (ours until it is done), its days and agent, the format */
	struct reportdb		*rdb;
	char			 from[16], to[16], format[8];
	char			*agent;
	char			*shop, *queue;	/* ?shop=&queue=: that shop's figures only */
	/* ?day=: the day's start (wall ms), the alerts found (oldest first), how many are wanted, pages read */
	int64_t			 day_start;
	json_t			*found;
	size_t			 limit;
	unsigned		 pages;
	/* the answer's type when not JSON, and a file name to save it as */
	const char		*ctype;
	char			 disp[96];
};

/* lws's per-request space of the /api/ mount: ours, then dashauth's. */
struct dash_api_pss {
	struct dash_req		*q;
	int			 mine;
	alignas(max_align_t) unsigned char auth[];
};

size_t
dash_api_pss_size(void)
{
	return sizeof(struct dash_api_pss) + dashauth_pss_size();
}

static void
dash_req_free(struct dash_req *q)
{
	if (q == NULL)
		return;
	reportdb_cancel(q->rdb);
	free(q->agent);
	free(q->shop);
	free(q->queue);
	free(q->arg);
	sbuf_free(&q->out);
	json_decref(q->doc);
	json_decref(q->notes);
	json_decref(q->found);
	free(q->conv);
	free(q->text);
	free(q);
}

static int
dash_api_wants_post(const struct dash_req *q)
{
	return q->route == DR_ALERT || q->route == DR_NOTE;
}

/* --- answers ------------------------------------------------------------------ */

/*
 * Writes what the answer has left: headers first, then a chunk at a time.
 * 1 when all of it is out (the caller ends the transaction), 0 when more
 * is to come, -1 to close.
 */
static int
dash_api_write(struct dash_req *q)
{
	unsigned char	 hbuf[LWS_PRE + 1024], *start = hbuf + LWS_PRE, *p = start;
	unsigned char	*end = hbuf + sizeof(hbuf) - 1, *chunk;
	size_t		 n;
	int		 final;

	if (!q->headers) {
		if (lws_add_http_common_headers(q->wsi, q->status, q->ctype != NULL ?
		    q->ctype : "application/json", q->out.len - LWS_PRE, &p, end) ||
		    (q->disp[0] != '\0' && lws_add_http_header_by_name(q->wsi,
		    (const unsigned char *)"content-disposition:",
		    (const unsigned char *)q->disp, (int)strlen(q->disp), &p, end)) ||
		    /* a report page: its own style, nothing else (docs/report.md) */
		    (q->ctype != NULL && strncmp(q->ctype, "text/html", 9) == 0 &&
		    lws_add_http_header_by_name(q->wsi, (const unsigned char *)
		    "content-security-policy:", (const unsigned char *)
		    "default-src 'none'; style-src 'unsafe-inline'", 45, &p, end)) ||
		    lws_add_http_header_by_name(q->wsi,
		    (const unsigned char *)"cache-control:",
		    (const unsigned char *)"no-store", 8, &p, end) ||
		    lws_add_http_header_by_name(q->wsi,
		    (const unsigned char *)"x-content-type-options:",
		    (const unsigned char *)"nosniff", 7, &p, end) ||
		    (q->status == HTTP_STATUS_METHOD_NOT_ALLOWED &&
		    lws_add_http_header_by_name(q->wsi, (const unsigned char *)"allow:",
		    (const unsigned char *)(dash_api_wants_post(q) ? "POST" : "GET"),
		    dash_api_wants_post(q) ? 4 : 3, &p, end)) ||
		    lws_finalize_write_http_header(q->wsi, start, &p, end))
			return -1;
		q->headers = 1;
	}
	n = q->out.len - LWS_PRE - q->sent;
	if (n > DASH_API_CHUNK)
		n = DASH_API_CHUNK;
	final = q->sent + n == q->out.len - LWS_PRE;
	/* the LWS_PRE bytes before each chunk are lws's to use: already sent */
	chunk = (unsigned char *)q->out.s + LWS_PRE + q->sent;
	if (lws_write(q->wsi, chunk, n, final ? LWS_WRITE_HTTP_FINAL :
	    LWS_WRITE_HTTP) != (int)n)
		return -1;
	q->sent += n;
	if (!final) {
		lws_callback_on_writable(q->wsi);
		return 0;
	}
	return 1;
}

/*
 * The answer: status and body (o, a reference stolen; NULL: ENOMEM, then
 * 503). Written when lws says the client can take it.
 */
static int
dash_api_answer(struct dash_req *q, unsigned status, json_t *o)
{
	static const char	pad[LWS_PRE];

	sbuf_reset(&q->out);
	q->ctype = NULL;
	q->disp[0] = '\0';
	if (o == NULL)
		status = HTTP_STATUS_SERVICE_UNAVAILABLE;
	if (sbuf_append(&q->out, pad, LWS_PRE) == -1) {
		json_decref(o);
		return -1;
	}
	if ((o != NULL ? jsonw_dump(&q->out, o) : sbuf_printf(&q->out,
	    "{\"error\":\"out of memory\"}")) == -1)
		return -1;
	q->status = status;
	q->answering = 1;
	if (q->wsi != NULL)
		lws_callback_on_writable(q->wsi);
	return 0;
}

static int
dash_api_error(struct dash_req *q, unsigned status, const char *msg)
{
	return dash_api_answer(q, status, json_pack("{s:s}", "error", msg));
}

/*
 * The 503 of a request the API's connection is not up for: a replica named
 * by redis.url (the connection is made to a master only) is said as such,
 * because it is a setting to change, not an outage to wait out.
 */
static const char *
dash_api_away(const struct dash *d)
{
	const char	*why = rconn_error(d->wr, NULL);

	/* why is the last failure: only while down is it the reason now */
	if (!rconn_up(d->wr) && why != NULL &&
	    strstr(why, ", not the master") != NULL)
		return "redis is a replica (read-only): the API works on the "
		    "master only (redis.url or redis.sentinels)";
	return "redis is away";
}

/* A reply came: 1 when it was the last one the request waits for, and the client is still there. */
static int
dash_api_replied(struct dash_req *q, const redisReply *r)
{
	if (r == NULL || r->type == REDIS_REPLY_ERROR) {
		if (r != NULL)
			log_warnx("dash_api_replied: redis: %s", r->str);
		q->failed = 1;
		q->unknown |= r == NULL;
	}
	if (--q->pending > 0)
		return 0;
	if (q->wsi == NULL) {
		dash_req_free(q);
		return 0;
	}
	return 1;
}

/* --- an action's writes, all or nothing ---------------------------------------------- */

/*
 * Each action (a handling, a note) is one EVAL of this script, so that
 * Redis takes all of its writes or none: sent one by one, a command
 * Redis refused (an ACL user without it, a key of another type) left the
 * others done, a handling stored without its audit entry, or an audit
 * entry of a change never stored, while the API answered "nothing was
 * written". MULTI/EXEC would not do: a command that fails inside EXEC
 * (WRONGTYPE) does not stop the others. So every check is made before
 * the first write: each key's type, and whether the ACL user may run
 * each command (redis.acl_check_cmd, Redis 7); a refusal then starts
 * with REFUSED and nothing was written. A first write refused (a replica
 * after a failover: READONLY; NOREPLICAS under min-replicas-to-write) is
 * REFUSED too. What could still fail after a write (nothing known: Redis
 * lets a script that wrote go on past maxmemory) stops there and answers
 * PARTIAL, never said as nothing written.
 *
 * KEYS: every key written; ARGV[1..#KEYS]: the type each must have when
 * it exists; then each command as its word count and its words.
 */
static const char dash_api_all_lua[] =
    "local n = #KEYS\n"
    "for i = 1, n do\n"
    "  local t = redis.call('TYPE', KEYS[i])['ok']\n"
    "  local want, new = string.match(ARGV[i], '^(%a+)(!?)$')\n"
    "  if t ~= 'none' and t ~= want then\n"
    "    return redis.error_reply('REFUSED ' .. KEYS[i] .. ' is a ' .. t ..\n"
    "      ', not a ' .. tostring(want) .. ': nothing was written')\n"
    "  end\n"
    "  if new == '!' and t ~= 'none' then return 0 end\n"
    "end\n"
    "local cmds, i = {}, n + 1\n"
    "while i <= #ARGV do\n"
    "  local c = tonumber(ARGV[i])\n"
    "  local cmd = {unpack(ARGV, i + 1, i + c)}\n"
    "  if redis.acl_check_cmd and not redis.acl_check_cmd(unpack(cmd)) then\n"
    "    return redis.error_reply('REFUSED this Redis user may not run ' ..\n"
    "      cmd[1] .. ' on ' .. tostring(cmd[2]) .. ': nothing was written')\n"
    "  end\n"
    "  cmds[#cmds + 1] = cmd\n"
    "  i = i + 1 + c\n"
    "end\n"
    "for k, cmd in ipairs(cmds) do\n"
    "  local r = redis.pcall(unpack(cmd))\n"
    "  if type(r) == 'table' and r.err and k == 1 then\n"
    "    return redis.error_reply('REFUSED ' .. cmd[1] .. ' ' .. tostring(cmd[2]) ..\n"
    "      ': ' .. r.err .. ': nothing was written')\n"
    "  elseif type(r) == 'table' and r.err then\n"
    "    return redis.error_reply('PARTIAL ' .. (k - 1) .. ' of ' .. #cmds ..\n"
    "      ' writes done, then ' .. cmd[1] .. ' ' .. tostring(cmd[2]) .. ': ' .. r.err)\n"
    "  end\n"
    "end\n"
    "return #cmds\n";

#define DASH_ALL_ARGS	96	/* words of one EVAL of dash_api_all_lua (a note: 75) */
#define DASH_ALL_NUMS	24	/* numbers among them (counts, keys) */

struct dash_all {
	const char	*argv[DASH_ALL_ARGS];
	size_t		 len[DASH_ALL_ARGS];
	char		 num[DASH_ALL_NUMS][24];
	int		 argc, nnum, full;
};

static const char *
dash_all_num(struct dash_all *e, size_t v)
{
	if (e->nnum == DASH_ALL_NUMS) {
		e->full = 1;
		return "0";
	}
	snprintf(e->num[e->nnum], sizeof(e->num[0]), "%zu", v);
	return e->num[e->nnum++];
}

static void
dash_all_word(struct dash_all *e, const char *w)
{
	if (e->argc == DASH_ALL_ARGS) {
		e->full = 1;
		return;
	}
	e->argv[e->argc] = w;
	e->len[e->argc++] = strlen(w);
}

/* EVAL dash_api_all_lua over nkeys keys, each of the type of types[i] ("hash!": a hash not there yet, else nothing is written and the answer is 0). */
static void
dash_all_init(struct dash_all *e, size_t nkeys, const char **keys,
    const char **types)
{
	size_t	i;

	memset(e, 0, sizeof(*e));
	dash_all_word(e, "EVAL");
	dash_all_word(e, dash_api_all_lua);
	dash_all_word(e, dash_all_num(e, nkeys));
	for (i = 0; i < nkeys; i++)
		dash_all_word(e, keys[i]);
	for (i = 0; i < nkeys; i++)
		dash_all_word(e, types[i]);
}

/* One command, its words up to a NULL. */
static void
dash_all_cmd(struct dash_all *e, ...)
{
	va_list		 ap;
	const char	*w;
	size_t		 n = 0;
	int		 at;

	va_start(ap, e);
	while (va_arg(ap, const char *) != NULL)
		n++;
	va_end(ap);
	at = e->argc;
	dash_all_word(e, dash_all_num(e, n));
	va_start(ap, e);
	while ((w = va_arg(ap, const char *)) != NULL)
		dash_all_word(e, w);
	va_end(ap);
	if (e->full)
		e->argc = at;
}

/* Sends it (cb gets the one reply); -1 when it cannot go, or did not fit (a bug). */
static int
dash_all_send(struct dash_all *e, struct rconn *rc, rconn_reply_cb cb,
    void *priv)
{
	if (e->full) {
		log_warnx("dash_all_send: too many words for one script");
		return -1;
	}
	return rconn_command_argv(rc, cb, priv, 0, e->argc, e->argv, e->len);
}

/* What the script answered, noted on q: PARTIAL means part of it was written. */
static void
dash_all_reply(struct dash_req *q, const redisReply *r)
{
	if (r != NULL && r->type == REDIS_REPLY_ERROR &&
	    strncmp(r->str, "PARTIAL ", 8) == 0)
		q->partial = 1;
}

/* --- GET /api/alerts ------------------------------------------------------------ */

/* The query argument name (with its '='), or NULL. */
static const char *
dash_api_arg(struct dash_req *q, const char *name, char *buf, int size)
{
	return lws_get_urlarg_by_name(q->wsi, name, buf, size);
}

/*
 * 1 when every query argument fits DASH_API_ARG. lws_get_urlarg_by_name
 * stops at the first argument too long for its buffer: every argument
 * after it would be read as absent, a filter dropped without a word (a
 * long utm= before shop= made /api/report answer every shop's totals).
 * So a request with one is refused whole, before any is read: an API
 * request and the feed's upgrade (since=, token=) alike.
 */
int
dash_args_fit(struct lws *wsi)
{
	char	buf[DASH_API_ARG];
	int	n;

	for (n = 0; ; n++)
		if (lws_hdr_copy_fragment(wsi, buf, (int)sizeof(buf),
		    WSI_TOKEN_HTTP_URI_ARGS, n) < 0)
			/* too long, or there is no such argument: the end */
			return lws_hdr_fragment_length(wsi,
			    WSI_TOKEN_HTTP_URI_ARGS, n) < (int)sizeof(buf);
}

/* "1795342899881-0" after "1795342899880-5"? Both well formed (the feed's). */
static int
dash_api_sid_after(const char *a, const char *b)
{
	unsigned long long	am = strtoull(a, NULL, 10), bm = strtoull(b, NULL, 10);
	const char		*ad = strchr(a, '-'), *bd = strchr(b, '-');

	if (am != bm)
		return am > bm;
	return strtoull(ad != NULL ? ad + 1 : "0", NULL, 10) >
	    strtoull(bd != NULL ? bd + 1 : "0", NULL, 10);
}

/* {"sid","alert","handling"}; alert is stolen. */
static json_t *
dash_api_item(struct dash *d, const char *sid, const char *id, json_t *alert)
{
	json_t	*h = dash_audit_handling(d, id);

	return json_pack("{s:s, s:o, s:O}", "sid", sid, "alert", alert, "handling",
	    h != NULL ? h : json_null());
}

/* Whether v is want (NULL: any); v NULL is no value (jsonw_cstr). */
static int
dash_api_is(const char *v, const char *want)
{
	return want == NULL || (v != NULL && strcmp(v, want) == 0);
}

/* Whether handling h (NULL: none) is in state (NULL: any; "unhandled": none). */
static int
dash_api_in_state(const json_t *h, const char *state)
{
	if (state == NULL)
		return 1;
	if (strcmp(state, "unhandled") == 0)
		return h == NULL;
	return h != NULL && dash_api_is(jsonw_cstr(h, "state"), state);
}

/*
 * Whether an alert of shop sh and queue qu (NULL: none) is of the login's
 * scope and of shop and queue (NULL: any; "": none, the alerts without one).
 */
static int
dash_api_seen(const struct dash_req *q, const char *sh, const char *qu,
    const char *shop, const char *queue)
{
	if (!users_scope_has(q->scope, sh))
		return 0;
	if (shop != NULL && strcmp(shop, sh != NULL ? sh : "") != 0)
		return 0;
	return queue == NULL || strcmp(queue, qu != NULL ? qu : "") == 0;
}

/* Whether a filter's value (NULL: none) is UTF-8. */
static int
dash_api_utf8(const char *v)
{
	return v == NULL || util_utf8_valid(v, strlen(v));
}

/*
 * The last stream id the login may know of (the feed's): the feed's own
 * for every shop; for a login of some shops the id of the newest alert of
 * them ("0-0": none held), because the feed's moves with every other
 * shop's alert. Reading on from either finds the same alerts.
 */
static const char *
dash_api_last(const struct dash_req *q)
{
	const struct feed_item	*it;
	size_t			 i;

	if (q->scope == NULL)
		return feed_last_sid(q->d->feed);
	for (i = feed_size(q->d->feed); i > 0; i--)
		if ((it = feed_item(q->d->feed, i - 1)) != NULL &&
		    users_scope_has(q->scope, it->shop))
			return it->sid;
	return "0-0";
}

static int	dash_api_day_alerts(struct dash_req *, const char *, size_t,
		    const char *, const char *, const char *, const char *,
		    const char *, const char *);

static int
dash_api_alerts(struct dash_req *q)
{
	struct dash	*d = q->d;
	/*
	 * lws stops looking at the first argument that does not fit the
	 * buffer: each gets room for any of them
	 */
	char		 sincebuf[DASH_API_ARG], statebuf[DASH_API_ARG];
	char		 sevbuf[DASH_API_ARG], agentbuf[DASH_API_ARG];
	char		 convbuf[DASH_API_ARG], limbuf[DASH_API_ARG];
	char		 daybuf[DASH_API_ARG], shopbuf[DASH_API_ARG];
	char		 queuebuf[DASH_API_ARG];
	const char	*since, *state, *sev, *agent, *conv, *lim, *day;
	const char	*shop, *queue, *bad;
	const struct feed_item *it;
	const char	*last;
	json_t		*list, *a, *item;
	size_t		 k, n, limit = DASH_API_LIMIT;
	char		*end;
	int		 forward;

	/* lws gives each value at the pointer it returns, inside the buffer */
	since = dash_api_arg(q, "since=", sincebuf, sizeof(sincebuf));
	state = dash_api_arg(q, "state=", statebuf, sizeof(statebuf));
	sev = dash_api_arg(q, "severity=", sevbuf, sizeof(sevbuf));
	agent = dash_api_arg(q, "agent=", agentbuf, sizeof(agentbuf));
	conv = dash_api_arg(q, "conversation=", convbuf, sizeof(convbuf));
	/* a filter within the login's scope, never beyond it (dash_api_seen) */
	shop = dash_api_arg(q, "shop=", shopbuf, sizeof(shopbuf));
	queue = dash_api_arg(q, "queue=", queuebuf, sizeof(queuebuf));
	if ((lim = dash_api_arg(q, "limit=", limbuf, sizeof(limbuf))) != NULL) {
		limit = strtoul(lim, &end, 10);
		if (*lim == '\0' || *end != '\0' || limit == 0 ||
		    limit > DASH_API_LIMIT_MAX)
			return dash_api_error(q, HTTP_STATUS_BAD_REQUEST,
			    "limit: want 1 to 1000");
	}
	if (state != NULL && strcmp(state, "unhandled") != 0 &&
	    handling_state_parse(state) == -1)
		return dash_api_error(q, HTTP_STATUS_BAD_REQUEST, "state: want "
		    "unhandled, acked, assigned, resolved or false_positive");
	if (sev != NULL && strcmp(sev, "info") != 0 && strcmp(sev, "warn") != 0 &&
	    strcmp(sev, "critical") != 0)
		return dash_api_error(q, HTTP_STATUS_BAD_REQUEST,
		    "severity: want info, warn or critical");
	/*
	 * Alerts are JSON: a filter that is not UTF-8 matches none, and a
	 * document cannot hold it (?day= keeps the filters in one). Said, not
	 * answered with an empty list.
	 */
	if ((bad = !dash_api_utf8(agent) ? "agent: not UTF-8" :
	    !dash_api_utf8(conv) ? "conversation: not UTF-8" :
	    !dash_api_utf8(shop) ? "shop: not UTF-8" :
	    !dash_api_utf8(queue) ? "queue: not UTF-8" : NULL) != NULL)
		return dash_api_error(q, HTTP_STATUS_BAD_REQUEST, bad);
	if (since != NULL && since[0] == '\0')
		since = NULL;
	if ((day = dash_api_arg(q, "day=", daybuf, sizeof(daybuf))) != NULL &&
	    day[0] != '\0')
		return dash_api_day_alerts(q, day, limit, state, sev, agent, conv,
		    shop, queue);
	if ((list = json_array()) == NULL)
		return dash_api_answer(q, HTTP_STATUS_OK, NULL);
	/*
	 * Oldest first. With since, the first `limit` after it, read forward
	 * (a client reads on from "last"); without, the newest `limit`, read
	 * backward and put in order. The filters read the feed's own copy of
	 * the fields: only the alerts of the answer are parsed, so that a
	 * filter that matches nothing costs no parsing of thousands.
	 */
	forward = since != NULL;
	n = feed_size(d->feed);
	for (k = 0; k < n && json_array_size(list) < limit; k++) {
		if ((it = feed_item(d->feed, forward ? k : n - 1 - k)) == NULL)
			break;
		if (since != NULL && !dash_api_sid_after(it->sid, since))
			continue;
		if (!dash_api_is(it->severity, sev) || !dash_api_is(it->agent,
		    agent) || !dash_api_is(it->conversation, conv) ||
		    !dash_api_seen(q, it->shop, it->queue, shop, queue) ||
		    !dash_api_in_state(dash_audit_handling(d, it->id), state) ||
		    (a = json_loadb(it->json, it->len, JSON_ALLOW_NUL, NULL)) == NULL)
			continue;
		if ((item = dash_api_item(d, it->sid, it->id, a)) == NULL ||
		    (forward ? json_array_append_new(list, item) :
		    json_array_insert_new(list, 0, item)) == -1) {
			json_decref(list);
			return dash_api_answer(q, HTTP_STATUS_OK, NULL);
		}
	}
	/*
	 * Where to read on: a full page read forward goes on after its last;
	 * otherwise everything up to the last id the login may know of was
	 * looked at.
	 */
	if (forward && json_array_size(list) == limit)
		last = json_string_value(json_object_get(json_array_get(list,
		    json_array_size(list) - 1), "sid"));
	else if (since != NULL && !dash_api_sid_after(dash_api_last(q), since))
		last = since;
	else
		last = dash_api_last(q);
	return dash_api_answer(q, HTTP_STATUS_OK, json_pack("{s:o, s:s}",
	    "alerts", list, "last", last));
}

/* --- POST /api/alerts/ID ---------------------------------------------------------- */

static void
dash_api_on_handled(redisReply *r, void *priv)
{
	struct dash_req	*q = priv;
	json_t		*v, *old;

	dash_all_reply(q, r);
	if (!dash_api_replied(q, r))
		return;
	/*
	 * Sent and not answered is not "not taken": the change may be stored
	 * (setting it again is harmless: the same value, one more audit entry)
	 */
	if (q->partial) {
		(void)dash_api_error(q, HTTP_STATUS_INTERNAL_SERVER_ERROR,
		    "partly stored: redis refused a write after others were "
		    "done (the dashboard's log says which); set it again");
		return;
	}
	if (q->unknown) {
		(void)dash_api_error(q, HTTP_STATUS_GATEWAY_TIMEOUT,
		    "outcome unknown: redis did not answer, the change may have "
		    "been stored; the alert's handling (the feed, GET /api/alerts) "
		    "tells");
		return;
	}
	if (q->failed) {
		(void)dash_api_error(q, HTTP_STATUS_SERVICE_UNAVAILABLE,
		    "redis refused it, nothing was written (the dashboard's log "
		    "says why)");
		return;
	}
	/*
	 * this dashboard's pages see it now; the others' through the audit
	 * stream. Unless the stream brought a later change already: another
	 * supervisor's, stored after this one while this answer was on its
	 * way (found by review: the older one was shown for good).
	 */
	old = dash_audit_handling(q->d, q->arg);
	if (old != NULL && json_integer_value(json_object_get(old, "at")) >
	    json_integer_value(json_object_get(q->doc, "at")))
		log_info("dash_api_on_handled: %s: a later change came first, "
		    "kept", q->arg);
	else if (dash_audit_set(q->d, q->arg, json_incref(q->doc)) == -1)
		log_warnx("dash_api_on_handled: out of memory, the pages not told");
	v = q->doc;
	q->doc = NULL;
	(void)dash_api_answer(q, HTTP_STATUS_OK, json_pack("{s:s, s:o}", "id",
	    q->arg, "handling", v));
}

static int
dash_api_handle(struct dash_req *q)
{
	struct dash		*d = q->d;
	struct handling_req	 hr;
	struct sbuf		 v, a;
	struct dash_all		 e;
	const char		*keys[2], *types[2] = { "hash", "stream" };
	const struct feed_item	*it;
	json_t			*alert, *audit = NULL;
	char			 err[128];
	int			 rc = -1;

	if (handling_req_parse(q->body, q->len, &hr, err, sizeof(err)) == -1)
		return dash_api_error(q, HTTP_STATUS_BAD_REQUEST, err);
	if ((it = dash_feed_find(d, q->arg)) == NULL) {
		handling_req_clear(&hr);
		return dash_api_error(q, HTTP_STATUS_NOT_FOUND, "no such alert "
		    "(among those the dashboard holds)");
	}
	/* the listing's test on the feed's fields: what it does not list is not acted on */
	if (!dash_api_seen(q, it->shop, it->queue, NULL, NULL)) {
		log_warnx("dash_api_handle: %s may not act on alert %s (another "
		    "shop's)", q->who, q->arg);
		handling_req_clear(&hr);
		return dash_api_error(q, HTTP_STATUS_FORBIDDEN,
		    "that alert is of a shop your login does not see");
	}
	if ((alert = json_loadb(it->json, it->len, JSON_ALLOW_NUL, NULL)) == NULL) {
		handling_req_clear(&hr);
		return dash_api_answer(q, HTTP_STATUS_OK, NULL);
	}
	sbuf_init(&v);
	sbuf_init(&a);
	if ((q->doc = handling_value(&hr, q->who, q->now, alert)) == NULL ||
	    (audit = handling_audit(&hr, q->arg, q->who, q->now)) == NULL ||
	    jsonw_dump(&v, json_incref(q->doc)) == -1 ||
	    jsonw_dump(&a, json_incref(audit)) == -1) {
		rc = dash_api_answer(q, HTTP_STATUS_OK, NULL);
		goto out;
	}
	if (!rconn_up(d->wr)) {
		rc = dash_api_error(q, HTTP_STATUS_SERVICE_UNAVAILABLE,
		    dash_api_away(q->d));
		goto out;
	}
	/* the value and its audit entry, both or neither (dash_api_all_lua) */
	keys[0] = d->handling_key;
	keys[1] = d->audit_key;
	dash_all_init(&e, 2, keys, types);
	dash_all_cmd(&e, "HSET", d->handling_key, q->arg, v.s, (char *)NULL);
	dash_all_cmd(&e, "XADD", d->audit_key, "MAXLEN", "~", "100000", "*", "e",
	    a.s, (char *)NULL);
	if (dash_all_send(&e, d->wr, dash_api_on_handled, q) == -1) {
		rc = dash_api_error(q, HTTP_STATUS_SERVICE_UNAVAILABLE,
		    dash_api_away(q->d));
		goto out;
	}
	q->pending++;
	log_info("dash_api_handle: %s set alert %s to %s", q->who, q->arg,
	    handling_state_name(hr.state));
	rc = 0;
out:
	json_decref(audit);
	json_decref(alert);
	handling_req_clear(&hr);
	sbuf_free(&v);
	sbuf_free(&a);
	return rc;
}

/* --- GET /api/conversation?id=ID ----------------------------------------------------- */

/* The round of the waiting message whose conversation is id, or null. */
static json_t *
dash_api_waiting(struct dash *d, const char *id)
{
	json_t		*r;
	const char	*c;
	size_t		 i;

	json_array_foreach(dash_waiting_rounds(d), i, r)
		if ((c = jsonw_cstr(r, "conversation")) != NULL &&
		    strcmp(c, id) == 0)
			return json_incref(r);
	return json_null();
}

static void
dash_api_conv_answer(struct dash_req *q)
{
	struct dash	*d = q->d;
	const struct feed_item *it;
	json_t		*alerts, *a, *waiting, *nick = NULL, *t, *item, *o;
	size_t		 i;

	if ((alerts = json_array()) == NULL) {
		(void)dash_api_answer(q, HTTP_STATUS_OK, NULL);
		return;
	}
	for (i = 0; (it = feed_item(d->feed, i)) != NULL; i++) {
		if (it->conversation == NULL ||
		    strcmp(it->conversation, q->arg) != 0 ||
		    (a = json_loadb(it->json, it->len, JSON_ALLOW_NUL, NULL)) == NULL)
			continue;
		if ((item = dash_api_item(d, it->sid, it->id, a)) != NULL)
			json_array_append_new(alerts, item);
	}
	waiting = dash_api_waiting(d, q->arg);
	/* the buyer's name as the latest turn that carried one gave it */
	for (i = json_array_size(q->doc); i > 0 && nick == NULL; i--) {
		t = json_array_get(q->doc, i - 1);
		if (json_is_string(json_object_get(t, "nick")))
			nick = json_object_get(t, "nick");
	}
	if (json_array_size(q->doc) == 0 && json_array_size(alerts) == 0 &&
	    json_is_null(waiting) && json_array_size(q->notes) == 0) {
		json_decref(alerts);
		json_decref(waiting);
		(void)dash_api_error(q, HTTP_STATUS_NOT_FOUND,
		    "nothing is known of that conversation");
		return;
	}
	o = json_pack("{s:s, s:O, s:O, s:o, s:o, s:O}", "conversation", q->arg,
	    "nick", nick != NULL ? nick : json_null(), "turns", q->doc,
	    "waiting", waiting, "alerts", alerts, "notes", q->notes);
	(void)dash_api_answer(q, HTTP_STATUS_OK, o);
}

/* Every note read: the views oldest first (the ids came newest first), then the answer. */
static void
dash_api_notes_done(struct dash_req *q)
{
	json_t	*v, *rev;
	size_t	 i;

	if (q->failed) {
		(void)dash_api_error(q, HTTP_STATUS_SERVICE_UNAVAILABLE,
		    "redis did not answer");
		return;
	}
	v = json_object_get(q->notes, "views");
	if ((rev = json_array()) == NULL) {
		(void)dash_api_answer(q, HTTP_STATUS_OK, NULL);
		return;
	}
	for (i = json_array_size(v); i > 0; i--)
		json_array_append(rev, json_array_get(v, i - 1));
	json_decref(q->notes);
	q->notes = rev;
	dash_api_conv_answer(q);
}

static void
dash_api_on_note_read(redisReply *r, void *priv)
{
	static redisReply	 none = { .type = REDIS_REPLY_NIL };
	struct dash_req		*q = priv;
	const char		*f[4] = { NULL, NULL, NULL, NULL };
	json_t			*v;
	size_t			 i;

	/*
	 * A key of another type under a note's name (another client's write)
	 * holds no note: skipped as an expired one is, not the whole
	 * conversation answered 503.
	 */
	if (r != NULL && r->type == REDIS_REPLY_ERROR &&
	    strncmp(r->str, "WRONGTYPE", 9) == 0) {
		log_debug("dash_api_on_note_read: conversation=%s: a note id "
		    "names a key that is no note's, skipped", q->arg);
		r = &none;
	}
	if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 4) {
		for (i = 0; i < 4; i++)
			if (r->element[i]->type == REDIS_REPLY_STRING)
				f[i] = r->element[i]->str;
		/* an expired note is gone from the answer, not an error */
		if (f[0] != NULL && (v = note_view(f[0], r->element[0]->len, f[1],
		    f[2], f[3])) != NULL)
			json_array_append_new(json_object_get(q->notes, "views"), v);
	}
	if (dash_api_replied(q, r))
		dash_api_notes_done(q);
}

/* The history (newest first in Redis) oldest first, without what is past history.ttl. */
static int
dash_api_turns(struct dash_req *q, const redisReply *r)
{
	json_t		*turns, *t;
	int64_t		 cutoff = q->now - (int64_t)q->d->cfg->history.ttl_ms;
	size_t		 i;

	if ((turns = json_array()) == NULL)
		return -1;
	for (i = r->elements; i > 0; i--) {
		if (r->element[i - 1]->type != REDIS_REPLY_STRING ||
		    (t = json_loadb(r->element[i - 1]->str, r->element[i - 1]->len,
		    JSON_ALLOW_NUL, NULL)) == NULL)
			continue;
		if (!json_is_object(t) || json_integer_value(json_object_get(t,
		    "ts")) < cutoff) {
			json_decref(t);
			continue;
		}
		json_array_append_new(turns, t);
	}
	q->doc = turns;
	return 0;
}

static void
dash_api_on_conv(redisReply *r, void *priv)
{
	struct dash_req	*q = priv;
	struct dash	*d = q->d;
	json_t		*ids;
	const char	*nid;
	size_t		 i;

	/* two replies, in order: the history, then the conversation's note ids */
	if (q->seen++ == 0) {
		if (r != NULL && r->type == REDIS_REPLY_ARRAY &&
		    dash_api_turns(q, r) == -1)
			q->failed = 1;
	} else if (r != NULL && r->type == REDIS_REPLY_ARRAY &&
	    (ids = json_array()) != NULL) {
		for (i = 0; i < r->elements; i++)
			if (r->element[i]->type == REDIS_REPLY_STRING)
				json_array_append_new(ids,
				    json_string(r->element[i]->str));
		q->notes = ids;
	}
	if (!dash_api_replied(q, r))
		return;
	if (q->failed || q->doc == NULL) {
		(void)dash_api_error(q, HTTP_STATUS_SERVICE_UNAVAILABLE,
		    "redis did not answer");
		return;
	}
	ids = q->notes;
	if ((q->notes = json_pack("{s:O, s:[]}", "ids", ids != NULL ? ids :
	    json_null(), "views")) == NULL) {
		json_decref(ids);
		(void)dash_api_answer(q, HTTP_STATUS_OK, NULL);
		return;
	}
	for (i = 0; i < json_array_size(ids); i++) {
		nid = json_string_value(json_array_get(ids, i));
		if (rconn_command(d->wr, dash_api_on_note_read, q, 0,
		    "HMGET %schatmon:note:%s json state delivered_at read_at",
		    d->prefix, nid) == 0)
			q->pending++;
	}
	if (q->pending < json_array_size(ids))
		q->failed = 1;
	json_decref(ids);
	if (q->pending == 0)	/* no notes (or none could be asked for) */
		dash_api_notes_done(q);
}

static int	dash_api_conv_read(struct dash_req *);

/* The shop of the conversation's record in Redis: read it when it is the login's. */
static void
dash_api_on_conv_shop(redisReply *r, void *priv)
{
	struct dash_req	*q = priv;
	const char	*sh = r != NULL && r->type == REDIS_REPLY_STRING ? r->str : NULL;

	if (!dash_api_replied(q, r))
		return;
	if (q->failed) {
		(void)dash_api_error(q, HTTP_STATUS_SERVICE_UNAVAILABLE, dash_api_away(q->d));
		return;
	}
	if (sh == NULL || sh[0] == '\0' || !users_scope_has(q->scope, sh)) {
		(void)dash_api_error(q, HTTP_STATUS_FORBIDDEN, "that conversation "
		    "is not known to be of a shop your login sees");
		return;
	}
	if (dash_api_conv_read(q) == -1)
		(void)dash_api_error(q, HTTP_STATUS_SERVICE_UNAVAILABLE, dash_api_away(q->d));
}

static int
dash_api_conv(struct dash_req *q)
{
	struct dash	*d = q->d;
	int		 in = dash_scope_conv(d, q->scope, q->arg, NULL);

	if (in == 0)
		return dash_api_error(q, HTTP_STATUS_FORBIDDEN, "that conversation "
		    "is not known to be of a shop your login sees");
	if (!rconn_up(d->wr))
		return dash_api_error(q, HTTP_STATUS_SERVICE_UNAVAILABLE, dash_api_away(q->d));
	/*
	 * Nothing held names it: its SLA record in Redis keeps the shop of its
	 * first turn (while it lives: a day past its idle end).
	 */
	if (in == -1) {
		if (rconn_command(d->wr, dash_api_on_conv_shop, q, 0,
		    "HGET %schatmon:sla:{%u}:c:%s sh", d->prefix,
		    (unsigned)convstore_bucket(q->arg, strlen(q->arg)),
		    q->arg) == -1)
			return dash_api_error(q, HTTP_STATUS_SERVICE_UNAVAILABLE,
			    dash_api_away(q->d));
		q->pending++;
		return 0;
	}
	if (dash_api_conv_read(q) == -1)
		return dash_api_error(q, HTTP_STATUS_SERVICE_UNAVAILABLE, dash_api_away(q->d));
	return 0;
}

/* The conversation's turns and notes; -1 when not one command could be sent. */
static int
dash_api_conv_read(struct dash_req *q)
{
	struct dash	*d = q->d;

	if (rconn_command(d->wr, dash_api_on_conv, q, 0, "LRANGE %schatmon:hist:%s 0 -1",
	    d->prefix, q->arg) == 0)
		q->pending++;
	if (rconn_command(d->wr, dash_api_on_conv, q, 0,
	    "LRANGE %schatmon:notes:conv:%s 0 %d", d->prefix, q->arg,
	    DASH_API_NOTES - 1) == 0)
		q->pending++;
	if (q->pending == 0)
		return -1;
	q->failed |= q->pending < 2;
	return 0;
}

/* --- POST /api/notes?agent=AGENT ---------------------------------------------------- */

/*
 * A note's command was sent and its answer never came: the note may be
 * written (whole or in part) and announced. Not 503: sending it again is
 * safe (dash_api_note_send), and the page must say so, not "not sent".
 */
static void
dash_api_note_unknown(struct dash_req *q)
{
	/* "note": null when no id is known yet (docs/dashboard.md): s:s* left it out */
	(void)dash_api_answer(q, HTTP_STATUS_GATEWAY_TIMEOUT, json_pack(
	    "{s:s, s:o}", "error", "outcome unknown: redis did not answer, the "
	    "note may have been sent; the same request again sends it once",
	    "note", q->nid[0] != '\0' ? json_string(q->nid) : json_null()));
}

static void
dash_api_on_noted(redisReply *r, void *priv)
{
	struct dash_req	*q = priv;
	json_t		*note;

	dash_all_reply(q, r);
	if (!dash_api_replied(q, r))
		return;
	if (q->partial) {
		(void)dash_api_answer(q, HTTP_STATUS_INTERNAL_SERVER_ERROR, json_pack(
		    "{s:s, s:s}", "error", "partly written: redis refused a write "
		    "after others were done (the dashboard's log says which)",
		    "note", q->nid));
		return;
	}
	if (q->unknown) {
		dash_api_note_unknown(q);
		return;
	}
	if (q->failed) {
		(void)dash_api_answer(q, HTTP_STATUS_SERVICE_UNAVAILABLE, json_pack(
		    "{s:s, s:s}", "error", "redis refused it, nothing was written "
		    "(the dashboard's log says why)", "note", q->nid));
		return;
	}
	/* 0: the note was there, written by its first sending meanwhile */
	if (r->type == REDIS_REPLY_INTEGER && r->integer == 0)
		log_info("dash_api_note: %s's note %s to %s was written by its "
		    "first sending meanwhile: not written twice", q->who, q->nid,
		    q->arg);
	note = q->doc;
	q->doc = NULL;
	if (json_object_set_new(note, "state", json_string("sent")) == -1) {
		json_decref(note);
		note = NULL;
	}
	(void)dash_api_answer(q, DASH_API_ACCEPTED, note != NULL ?
	    json_pack("{s:o}", "note", note) : NULL);
}

static int	dash_api_note_send(struct dash_req *);
static int	dash_api_note_write(struct dash_req *);

/*
 * The conversation's record in Redis (its shop, its agent), asked when
 * the dashboard holds nothing of it: a customer past the longest the
 * feed keeps of its shop waits all the same, and a whisper to its agent
 * must not depend on how many others wait longer.
 */
static void
dash_api_on_note_shop(redisReply *r, void *priv)
{
	struct dash_req	*q = priv;
	const char	*sh = NULL, *ag = NULL;

	if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
		if (r->element[0]->type == REDIS_REPLY_STRING)
			sh = r->element[0]->str;
		if (r->element[1]->type == REDIS_REPLY_STRING)
			ag = r->element[1]->str;
	}
	if (!dash_api_replied(q, r))
		return;
	if (q->failed) {
		(void)dash_api_error(q, HTTP_STATUS_SERVICE_UNAVAILABLE, dash_api_away(q->d));
		return;
	}
	if (sh == NULL || sh[0] == '\0' || !users_scope_has(q->scope, sh) ||
	    ag == NULL || strcmp(ag, q->arg) != 0) {
		(void)dash_api_error(q, HTTP_STATUS_FORBIDDEN, "that conversation "
		    "and agent are not known together in a shop your login sees");
		return;
	}
	if (dash_api_note_send(q) == -1)
		(void)dash_api_error(q, HTTP_STATUS_SERVICE_UNAVAILABLE, dash_api_away(q->d));
}

static int
dash_api_note(struct dash_req *q)
{
	struct dash	*d = q->d;
	char		 err[128];
	int		 in;

	if (note_req_parse(q->body, q->len, &q->conv, &q->text, err,
	    sizeof(err)) == -1)
		return dash_api_error(q, HTTP_STATUS_BAD_REQUEST, err);
	/*
	 * a whisper needs what the page shows: an alert or the waiting round
	 * of that conversation and that agent, or, when the dashboard holds
	 * nothing of it, its record in Redis naming both
	 */
	if ((in = dash_scope_conv(d, q->scope, q->conv, q->arg)) == 0)
		return dash_api_error(q, HTTP_STATUS_FORBIDDEN, "that conversation "
		    "and agent are not known together in a shop your login sees");
	if (!rconn_up(d->wr))
		return dash_api_error(q, HTTP_STATUS_SERVICE_UNAVAILABLE, dash_api_away(q->d));
	if (in == -1) {
		if (rconn_command(d->wr, dash_api_on_note_shop, q, 0,
		    "HMGET %schatmon:sla:{%u}:c:%s sh a", d->prefix,
		    (unsigned)convstore_bucket(q->conv, strlen(q->conv)),
		    q->conv) == -1)
			return dash_api_error(q, HTTP_STATUS_SERVICE_UNAVAILABLE,
			    dash_api_away(q->d));
		q->pending++;
		return 0;
	}
	if (dash_api_note_send(q) == -1)
		return dash_api_error(q, HTTP_STATUS_SERVICE_UNAVAILABLE, dash_api_away(q->d));
	return 0;
}

/*
 * What makes two requests one note: the login, the agent, the
 * conversation, the text, and the page's "key" when it sends one (a page
 * that means a second note of the same words sends another key). Into
 * q->nkey; -1 with the reason in err when the key is no key.
 */
static int
dash_api_note_key(struct dash_req *q, char *err, size_t errsize)
{
	unsigned char			 h[crypto_generichash_BYTES_MIN];
	crypto_generichash_state	 st;
	json_t				*o, *v;
	const char			*parts[5];
	size_t				 i;

	o = json_loadb(q->body, q->len, 0, NULL);	/* note_req_parse read it */
	v = json_object_get(o, "key");
	if (v != NULL && (!json_is_string(v) || json_string_length(v) == 0 ||
	    json_string_length(v) > DASH_API_KEY_MAX ||
	    strlen(json_string_value(v)) != json_string_length(v))) {
		snprintf(err, errsize, "key: want a string of 1 to %d bytes",
		    DASH_API_KEY_MAX);
		json_decref(o);
		return -1;
	}
	parts[0] = q->who;
	parts[1] = q->arg;
	parts[2] = q->conv;
	parts[3] = q->text;
	parts[4] = v != NULL ? json_string_value(v) : "";
	crypto_generichash_init(&st, NULL, 0, sizeof(h));
	for (i = 0; i < UTIL_NELEM(parts); i++)	/* each with its NUL: no two splits alike */
		crypto_generichash_update(&st, (const unsigned char *)parts[i],
		    strlen(parts[i]) + 1);
	crypto_generichash_final(&st, h, sizeof(h));
	sodium_bin2hex(q->nkey, sizeof(q->nkey), h, sizeof(h));
	json_decref(o);
	return 0;
}

/* The note a request sent before, when it is in Redis: that one is the answer; else it is written now. */
static void
dash_api_on_note_had(redisReply *r, void *priv)
{
	struct dash_req	*q = priv;
	const char	*f[4] = { NULL, NULL, NULL, NULL };
	json_t		*v = NULL;
	size_t		 i;

	if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 4) {
		for (i = 0; i < 4; i++)
			if (r->element[i]->type == REDIS_REPLY_STRING)
				f[i] = r->element[i]->str;
		if (f[0] != NULL)
			v = note_view(f[0], r->element[0]->len, f[1], f[2], f[3]);
	}
	if (!dash_api_replied(q, r)) {
		json_decref(v);
		return;
	}
	if (q->failed) {
		json_decref(v);
		if (q->unknown)
			dash_api_note_unknown(q);
		else
			(void)dash_api_error(q, HTTP_STATUS_SERVICE_UNAVAILABLE,
			    "redis did not answer");
		return;
	}
	if (v != NULL) {
		log_info("dash_api_note: %s sent note %s to %s again: the same "
		    "note, not sent twice", q->who, q->nid, q->arg);
		(void)dash_api_answer(q, DASH_API_ACCEPTED, json_pack("{s:o}",
		    "note", v));
		return;
	}
	/* its first sending stopped before the note was written: this one writes it */
	if (dash_api_note_write(q) == -1)
		(void)dash_api_error(q, HTTP_STATUS_SERVICE_UNAVAILABLE, dash_api_away(q->d));
}

/* The id of the note this request made before. */
static void
dash_api_on_note_again(redisReply *r, void *priv)
{
	struct dash_req	*q = priv;
	struct dash	*d = q->d;
	int		 ok = r != NULL && r->type == REDIS_REPLY_STRING &&
			    r->len < sizeof(q->nid);

	if (ok)
		snprintf(q->nid, sizeof(q->nid), "%s", r->str);
	if (!dash_api_replied(q, r))
		return;
	if (q->failed || !ok) {
		q->nid[0] = '\0';
		if (q->unknown)
			dash_api_note_unknown(q);
		else	/* it expired just now, or is no id: nothing was written by this one */
			(void)dash_api_error(q, HTTP_STATUS_SERVICE_UNAVAILABLE,
			    "redis did not take it");
		return;
	}
	if (rconn_command(d->wr, dash_api_on_note_had, q, 0,
	    "HMGET %schatmon:note:%s json state delivered_at read_at",
	    d->prefix, q->nid) == -1) {
		(void)dash_api_error(q, HTTP_STATUS_SERVICE_UNAVAILABLE, dash_api_away(q->d));
		return;
	}
	q->pending++;
}

/* The request's mark, set when it is the first: it is then written; else it is the note sent before. */
static void
dash_api_on_note_guard(redisReply *r, void *priv)
{
	struct dash_req	*q = priv;
	struct dash	*d = q->d;
	int		 first = r != NULL && r->type == REDIS_REPLY_STATUS;

	if (!dash_api_replied(q, r))
		return;
	if (q->failed) {
		q->nid[0] = '\0';	/* the mark may hold it, or another's */
		if (q->unknown)
			dash_api_note_unknown(q);
		else
			(void)dash_api_error(q, HTTP_STATUS_SERVICE_UNAVAILABLE,
			    "redis did not take it");
		return;
	}
	if (first) {
		if (dash_api_note_write(q) == -1)
			(void)dash_api_error(q, HTTP_STATUS_SERVICE_UNAVAILABLE,
			    dash_api_away(q->d));
		return;
	}
	if (rconn_command(d->wr, dash_api_on_note_again, q, 0,
	    "GET %schatmon:notes:req:%s", d->prefix, q->nkey) == -1) {
		(void)dash_api_error(q, HTTP_STATUS_SERVICE_UNAVAILABLE, dash_api_away(q->d));
		return;
	}
	q->pending++;
}

/*
 * A note is sent once however often its request comes: an answer lost
 * (504) or a double click sends the same request again, and Redis keeps
 * a mark of each request's note for DASH_API_AGAIN_MS (SET NX): the
 * first writes the note, the others answer it. -1 when nothing could be
 * sent (the caller answers).
 */
static int
dash_api_note_send(struct dash_req *q)
{
	struct dash	*d = q->d;
	char		 err[128];

	if (dash_api_note_key(q, err, sizeof(err)) == -1)
		return dash_api_error(q, HTTP_STATUS_BAD_REQUEST, err);
	note_id(q->nid, q->now, randombytes_random());
	if (rconn_command(d->wr, dash_api_on_note_guard, q, 0,
	    "SET %schatmon:notes:req:%s %s NX PX %d", d->prefix, q->nkey,
	    q->nid, DASH_API_AGAIN_MS) == -1)
		return -1;
	q->pending++;
	return 0;
}

/* The note id q->nid written and announced; -1 when not one command could be sent (the caller answers). */
static int
dash_api_note_write(struct dash_req *q)
{
	struct dash	*d = q->d;
	const struct config *c = d->cfg;
	const char	*id = q->nid;
	struct sbuf	 n, a;
	json_t		*audit;
	uint64_t	 ttl = c->notes.ttl_ms, keep = ttl * 4;
	char		 k1[512], k2[512], k3[512], k4[512], score[32], nttl[32];
	char		 hkeep[32], httl[32], since[32];
	struct dash_all	 e;
	/*
	 * hash! : the note's own, written only when it is not there yet (a
	 * request sent again after a 504, or on another dashboard, while the
	 * first sending's write was still on its way: found by review, the
	 * note was written twice, delivered twice, its read state undone)
	 */
	const char	*keys[5], *types[5] = { "hash!", "zset", "list", "stream",
			    "stream" };
	int		 rc;

	if (keep < DASH_API_DAY_MS)
		keep = DASH_API_DAY_MS;
	json_decref(q->doc);
	if ((q->doc = note_json(id, q->arg, q->conv, q->who, q->text,
	    q->now)) == NULL)
		return dash_api_answer(q, HTTP_STATUS_OK, NULL);
	sbuf_init(&n);
	sbuf_init(&a);
	audit = note_audit(id, q->arg, q->conv, q->who, q->now);
	if (jsonw_dump(&n, json_incref(q->doc)) == -1 ||
	    jsonw_dump(&a, json_incref(audit)) == -1) {
		json_decref(audit);
		sbuf_free(&n);
		sbuf_free(&a);
		return dash_api_answer(q, HTTP_STATUS_OK, NULL);
	}
	json_decref(audit);
	snprintf(k1, sizeof(k1), "%schatmon:note:%s", d->prefix, id);
	snprintf(k2, sizeof(k2), "%schatmon:notes:pending:%s", d->prefix, q->arg);
	snprintf(k3, sizeof(k3), "%schatmon:notes:conv:%s", d->prefix, q->conv);
	snprintf(score, sizeof(score), "%lld", (long long)(q->now + (int64_t)ttl));
	snprintf(nttl, sizeof(nttl), "%llu", (unsigned long long)ttl);
	snprintf(hkeep, sizeof(hkeep), "%llu", (unsigned long long)keep);
	snprintf(httl, sizeof(httl), "%llu", (unsigned long long)c->history.ttl_ms);
	snprintf(k4, sizeof(k4), "%schatmon:notes:log", d->prefix);
	snprintf(since, sizeof(since), "(%lld", (long long)q->now);
	/*
	 * section 3 of the contract, in its order: the note is whole before it
	 * is announced; one script, all of it or nothing (dash_api_all_lua)
	 */
	keys[0] = k1;
	keys[1] = k2;
	keys[2] = k3;
	keys[3] = k4;
	keys[4] = d->audit_key;
	dash_all_init(&e, 5, keys, types);
	dash_all_cmd(&e, "HSET", k1, "json", n.s, "state", "sent", (char *)NULL);
	dash_all_cmd(&e, "PEXPIRE", k1, hkeep, (char *)NULL);
	/*
	 * the agent's waiting notes: those whose time is over go, and the set
	 * lives as long as its longest wait, whatever notes.ttl says here (a
	 * shorter one, after a reload or on another dashboard, would take
	 * the others' notes with it)
	 */
	dash_all_cmd(&e, "ZREMRANGEBYSCORE", k2, "-inf", since, (char *)NULL);
	dash_all_cmd(&e, "ZADD", k2, score, id, (char *)NULL);
	dash_all_cmd(&e, "PEXPIRE", k2, nttl, "NX", (char *)NULL);
	dash_all_cmd(&e, "PEXPIRE", k2, nttl, "GT", (char *)NULL);
	dash_all_cmd(&e, "LPUSH", k3, id, (char *)NULL);
	dash_all_cmd(&e, "LTRIM", k3, "0", "99", (char *)NULL);
	dash_all_cmd(&e, "PEXPIRE", k3, httl, (char *)NULL);
	dash_all_cmd(&e, "XADD", k4, "MAXLEN", "~", "10000", "*", "note", n.s,
	    (char *)NULL);
	dash_all_cmd(&e, "XADD", d->audit_key, "MAXLEN", "~", "100000", "*", "e",
	    a.s, (char *)NULL);
	rc = dash_all_send(&e, d->wr, dash_api_on_noted, q);
	sbuf_free(&n);
	sbuf_free(&a);
	if (rc == -1)
		return dash_api_error(q, HTTP_STATUS_SERVICE_UNAVAILABLE, dash_api_away(q->d));
	q->pending++;
	log_info("dash_api_note: %s sent note %s to %s", q->who, id, q->arg);
	return 0;
}

/* --- GET /api/report ------------------------------------------------------------- */

static void
dash_api_on_report(struct report *rep, const char *err, void *arg)
{
	static const char	 pad[LWS_PRE];
	struct dash_req		*q = arg;
	struct report_meta	 m;
	const char		*ext;
	int			 rc;

	q->rdb = NULL;
	if (rep == NULL) {
		log_warnx("dash_api_report: %s", err);
		(void)dash_api_error(q, HTTP_STATUS_SERVICE_UNAVAILABLE, err);
		return;
	}
	m.from = q->from;
	m.to = q->to;
	m.agent = q->agent;
	m.utc_offset_min = q->d->cfg->sla.utc_offset_min;
	m.generated = util_wall_ms();
	sbuf_reset(&q->out);
	if ((rc = sbuf_append(&q->out, pad, LWS_PRE)) == 0)
		rc = strcmp(q->format, "csv") == 0 ? report_csv(&q->out, rep, &m) :
		    strcmp(q->format, "html") == 0 ? report_html(&q->out, rep, &m) :
		    report_json(&q->out, rep, &m);
	report_free(rep);
	if (rc == -1) {
		(void)dash_api_answer(q, HTTP_STATUS_OK, NULL);
		return;
	}
	q->status = HTTP_STATUS_OK;
	if (strcmp(q->format, "json") != 0) {
		ext = q->format;
		q->ctype = strcmp(ext, "csv") == 0 ? "text/csv; charset=utf-8" :
		    "text/html; charset=utf-8";
		/* the days are digits and dashes: nothing to quote */
		if (strcmp(q->from, q->to) == 0)
			snprintf(q->disp, sizeof(q->disp), "attachment; filename="
			    "\"chatmon-report-%s.%s\"", q->from, ext);
		else
			snprintf(q->disp, sizeof(q->disp), "attachment; filename="
			    "\"chatmon-report-%s_%s.%s\"", q->from, q->to, ext);
	}
	q->answering = 1;
	if (q->wsi != NULL)
		lws_callback_on_writable(q->wsi);
}

/*
 * The report of days from..to (docs/report.md), made by the code of
 * chatmon report on the API's connection, one command at a time: a long
 * range never holds up the loop, and a client that leaves cancels it.
 */
static int
dash_api_report(struct dash_req *q)
{
	struct dash	*d = q->d;
	char		 fbuf[DASH_API_ARG], tbuf[DASH_API_ARG], abuf[DASH_API_ARG];
	char		 obuf[DASH_API_ARG], shbuf[DASH_API_ARG], qbuf[DASH_API_ARG];
	const char	*from, *to, *agent, *fmt, *shop, *queue;
	int64_t		 fs, ts;
	int32_t		 off = d->cfg->sla.utc_offset_min;

	from = dash_api_arg(q, "from=", fbuf, sizeof(fbuf));
	to = dash_api_arg(q, "to=", tbuf, sizeof(tbuf));
	agent = dash_api_arg(q, "agent=", abuf, sizeof(abuf));
	fmt = dash_api_arg(q, "format=", obuf, sizeof(obuf));
	shop = dash_api_arg(q, "shop=", shbuf, sizeof(shbuf));
	queue = dash_api_arg(q, "queue=", qbuf, sizeof(qbuf));
	if (shop != NULL && shop[0] == '\0')
		shop = NULL;
	if (queue != NULL && queue[0] == '\0')
		queue = NULL;
	/*
	 * The stored days sum every shop: a login of some shops reads one of
	 * its shops' own figures (chatmon report --shop), never the sums.
	 */
	if (q->scope != NULL && (shop == NULL || !users_scope_has(q->scope, shop)))
		return dash_api_error(q, HTTP_STATUS_FORBIDDEN, "the report of a "
		    "login of some shops is of one of them: give shop=");
	if (queue != NULL && shop == NULL)
		return dash_api_error(q, HTTP_STATUS_BAD_REQUEST,
		    "queue: needs shop");
	if ((shop != NULL && !note_name_ok(shop, strlen(shop))) ||
	    (queue != NULL && !note_name_ok(queue, strlen(queue))))
		return dash_api_error(q, HTTP_STATUS_BAD_REQUEST,
		    "shop, queue: want an id");
	if (from == NULL || report_parse_day(from, off, &fs) == -1)
		return dash_api_error(q, HTTP_STATUS_BAD_REQUEST,
		    "from: want a day as YYYY-MM-DD");
	if (to == NULL || to[0] == '\0')
		to = from;
	if (report_parse_day(to, off, &ts) == -1)
		return dash_api_error(q, HTTP_STATUS_BAD_REQUEST,
		    "to: want a day as YYYY-MM-DD");
	if (fs > ts)
		return dash_api_error(q, HTTP_STATUS_BAD_REQUEST, "from is after to");
	if ((ts - fs) / STATE_DAY_MS + 1 > DASH_API_REPORT_DAYS)
		return dash_api_error(q, HTTP_STATUS_BAD_REQUEST,
		    "at most 366 days at once");
	if (fmt == NULL || fmt[0] == '\0')
		fmt = "json";
	if (strcmp(fmt, "json") != 0 && strcmp(fmt, "csv") != 0 &&
	    strcmp(fmt, "html") != 0)
		return dash_api_error(q, HTTP_STATUS_BAD_REQUEST,
		    "format: want json, csv or html");
	if (agent != NULL && agent[0] == '\0')
		agent = NULL;
	if (agent != NULL && !note_name_ok(agent, strlen(agent)))
		return dash_api_error(q, HTTP_STATUS_BAD_REQUEST, "agent: want an agent id");
	snprintf(q->from, sizeof(q->from), "%s", from);
	snprintf(q->to, sizeof(q->to), "%s", to);
	snprintf(q->format, sizeof(q->format), "%s", fmt);
	if ((agent != NULL && (q->agent = strdup(agent)) == NULL) ||
	    (shop != NULL && (q->shop = strdup(shop)) == NULL) ||
	    (queue != NULL && (q->queue = strdup(queue)) == NULL))
		return dash_api_answer(q, HTTP_STATUS_OK, NULL);
	if (!rconn_up(d->wr) || (q->rdb = reportdb_start_shop(d->wr, d->cfg,
	    q->from, q->to, q->agent, q->shop, q->queue, q->now,
	    dash_api_on_report, q)) == NULL)
		return dash_api_error(q, HTTP_STATUS_SERVICE_UNAVAILABLE, dash_api_away(q->d));
	return 0;
}

/* --- GET /api/alerts?day=: a day's alerts from the stream ------------------------- */

static void	dash_api_on_day_alerts(redisReply *, void *);

/* The next page of the day, from end ("(SID": before it) down to the day's start. */
static int
dash_api_day_page(struct dash_req *q, const char *end)
{
	struct dash	*d = q->d;
	char		 start[32];

	/* a day before 1970-01-01 UTC (east of UTC, its first hours): no id is */
	snprintf(start, sizeof(start), "%lld",
	    q->day_start < 0 ? 0LL : (long long)q->day_start);
	if (!rconn_up(d->wr) || rconn_command(d->wr, dash_api_on_day_alerts, q, 0,
	    "XREVRANGE %s %s %s COUNT %d", d->key, end, start,
	    DASH_API_DAY_PAGE) == -1)
		return -1;
	q->pending++;
	q->pages++;
	return 0;
}

static void
dash_api_on_day_alerts(redisReply *r, void *priv)
{
	struct dash_req		*q = priv;
	struct dash		*d = q->d;
	const redisReply	*e, *fv;
	const char		*json, *sid, *id, *want;
	json_t			*a, *item, *f = q->doc;
	char			 before[FEED_SID_MAX + 1];
	size_t			 i, k;
	int			 more;

	if (!dash_api_replied(q, r))
		return;
	if (q->failed || r->type != REDIS_REPLY_ARRAY) {
		(void)dash_api_error(q, HTTP_STATUS_SERVICE_UNAVAILABLE,
		    "redis did not answer");
		return;
	}
	/* XREVRANGE: newest first; each goes before the newer ones found */
	for (i = 0; i < r->elements && json_array_size(q->found) < q->limit; i++) {
		e = r->element[i];
		if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
		    e->element[0]->type != REDIS_REPLY_STRING ||
		    (fv = e->element[1])->type != REDIS_REPLY_ARRAY)
			continue;
		sid = e->element[0]->str;
		for (json = NULL, k = 0; k + 1 < fv->elements; k += 2)
			if (fv->element[k]->type == REDIS_REPLY_STRING &&
			    fv->element[k + 1]->type == REDIS_REPLY_STRING &&
			    strcmp(fv->element[k]->str, "alert") == 0)
				json = fv->element[k + 1]->str;
		if (json == NULL || (a = json_loads(json, JSON_ALLOW_NUL, NULL)) == NULL)
			continue;
		id = json_string_value(json_object_get(a, "id"));
		want = json_string_value(json_object_get(f, "state"));
		if (!json_is_object(a) || !dash_api_in_state(id != NULL ?
		    dash_audit_handling(d, id) : NULL, want) ||
		    !dash_api_is(jsonw_cstr(a, "severity"), jsonw_cstr(f,
		    "severity")) || !dash_api_is(jsonw_cstr(a, "agent"),
		    jsonw_cstr(f, "agent")) || !dash_api_is(jsonw_cstr(a,
		    "conversation"), jsonw_cstr(f, "conversation")) ||
		    !dash_api_seen(q, jsonw_cstr(a, "shop"), jsonw_cstr(a, "queue"),
		    jsonw_cstr(f, "shop"), jsonw_cstr(f, "queue"))) {
			json_decref(a);
			continue;
		}
		if ((item = dash_api_item(d, sid, id != NULL ? id : "", a)) == NULL ||
		    json_array_insert_new(q->found, 0, item) == -1) {
			(void)dash_api_answer(q, HTTP_STATUS_OK, NULL);
			return;
		}
	}
	/*
	 * The filters and the scope pass over what they do not want: a full
	 * page that left the answer short is read on, from the entry before
	 * its last, so that a login of one shop finds its alerts behind
	 * another shop's many. Each page is a reply of its own (the loop
	 * parses one page at a time); past DASH_API_DAY_PAGES the answer says
	 * it is partial rather than read the whole stream for one request.
	 */
	more = r->elements == DASH_API_DAY_PAGE &&
	    json_array_size(q->found) < q->limit;
	if (more) {
		e = r->element[r->elements - 1];
		if (e->type == REDIS_REPLY_ARRAY && e->elements == 2 &&
		    e->element[0]->type == REDIS_REPLY_STRING)
			snprintf(before, sizeof(before), "(%s", e->element[0]->str);
		else
			more = 0;	/* not a stream entry: nowhere to read on from */
	}
	if (more && q->pages < DASH_API_DAY_PAGES) {
		if (dash_api_day_page(q, before) == -1)
			(void)dash_api_error(q, HTTP_STATUS_SERVICE_UNAVAILABLE,
			    dash_api_away(q->d));
		return;
	}
	(void)dash_api_answer(q, HTTP_STATUS_OK, json_pack("{s:O, s:O, s:b}",
	    "day", json_object_get(f, "day"), "alerts", q->found, "partial", more));
}

/*
 * The newest `limit` alerts the stream holds from local day `day` that
 * pass the filters and the login's scope, by their stream ids (when
 * Redis took them), oldest first, each with its handling; at most
 * DASH_API_DAY_PAGES pages of the day are read. The alerts of a past day
 * are not in the feed's memory: they are read from Redis, which keeps
 * redis.stream_maxlen of them.
 */
static int
dash_api_day_alerts(struct dash_req *q, const char *day, size_t limit,
    const char *state, const char *sev, const char *agent, const char *conv,
    const char *shop, const char *queue)
{
	struct dash	*d = q->d;
	char		 end[32];

	if (report_parse_day(day, d->cfg->sla.utc_offset_min, &q->day_start) == -1)
		return dash_api_error(q, HTTP_STATUS_BAD_REQUEST,
		    "day: want a day as YYYY-MM-DD");
	if ((q->doc = json_pack("{s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?}",
	    "day", day, "state", state, "severity", sev, "agent", agent,
	    "conversation", conv, "shop", shop, "queue", queue)) == NULL ||
	    (q->found = json_array()) == NULL)
		return dash_api_answer(q, HTTP_STATUS_OK, NULL);
	q->limit = limit;
	snprintf(end, sizeof(end), "%lld",
	    (long long)(q->day_start + STATE_DAY_MS - 1));
	if (dash_api_day_page(q, end) == -1)
		return dash_api_error(q, HTTP_STATUS_SERVICE_UNAVAILABLE, dash_api_away(q->d));
	return 0;
}

/* --- routing ---------------------------------------------------------------------- */

/*
 * in is the path under /api; *arg gets the ID or AGENT of a path route,
 * NULL for the others. lws has decoded the path (%2F is '/') and removed
 * its dot segments and repeated slashes by then, so an id with "/../",
 * "//", or an id "." or "..", would reach a path route as another id or
 * another route: ids travel as query arguments (/conversation?id=,
 * /notes?agent=), which lws decodes but leaves whole. The path forms stay
 * for ids without '/' that are not "." or ".." (docs/dashboard.md).
 */
static enum dash_route
dash_api_route(const char *in, size_t len, char **arg)
{
	static const char	alerts[] = "/alerts", conv[] = "/conversations/";
	static const char	agents[] = "/agents/", notes[] = "/notes";
	size_t			n;

	*arg = NULL;
	if ((len == 7 || (len == 8 && in[7] == '/')) && memcmp(in, alerts, 7) == 0)
		return DR_ALERTS;
	if (len == 7 && memcmp(in, "/report", 7) == 0)
		return DR_REPORT;
	if (len == 13 && memcmp(in, "/conversation", 13) == 0)
		return DR_CONV;		/* ?id= */
	if (len == sizeof(notes) - 1 && memcmp(in, notes, len) == 0)
		return DR_NOTE;		/* ?agent= */
	if (len > 8 && memcmp(in, "/alerts/", 8) == 0) {
		if ((*arg = strndup(in + 8, len - 8)) == NULL)
			return DR_NONE;
		return DR_ALERT;
	}
	if (len > sizeof(conv) - 1 && memcmp(in, conv, sizeof(conv) - 1) == 0) {
		if ((*arg = strndup(in + sizeof(conv) - 1, len - (sizeof(conv) - 1))) == NULL)
			return DR_NONE;
		return DR_CONV;
	}
	if (len > sizeof(agents) - 1 + sizeof(notes) - 1 &&
	    memcmp(in, agents, sizeof(agents) - 1) == 0 &&
	    memcmp(in + len - (sizeof(notes) - 1), notes, sizeof(notes) - 1) == 0) {
		n = len - (sizeof(agents) - 1) - (sizeof(notes) - 1);
		if ((*arg = strndup(in + sizeof(agents) - 1, n)) == NULL)
			return DR_NONE;
		return DR_NOTE;
	}
	return DR_NONE;
}

/* Who may: 0 (q->who set), or the status to refuse with. */
static unsigned
dash_api_allowed(struct dash_req *q)
{
	struct dash	*d = q->d;
	const char	*user;
	int		 st;

	if (dashauth_logins(d->auth)) {
		if ((st = dashauth_require(d->auth, q->wsi, q->post ? USERS_SUPERVISOR :
		    USERS_VIEWER, &user, NULL)) != 0)
			return (unsigned)st;
		snprintf(q->who, sizeof(q->who), "%s", user);
		if (dashauth_scope(d->auth, user) != NULL) {
			snprintf(q->scopebuf, sizeof(q->scopebuf), "%s",
			    dashauth_scope(d->auth, user));
			q->scope = q->scopebuf;
		}
		return 0;
	}
	snprintf(q->who, sizeof(q->who), "dashboard");
	if (dashauth_bearer(d->auth, q->wsi))
		return 0;
	if (q->post)
		return HTTP_STATUS_FORBIDDEN;	/* no logins, no token: nobody acts */
	return dashauth_has_token(d->auth) ? HTTP_STATUS_FORBIDDEN : 0;
}

static int
dash_api_run(struct dash_req *q)
{
	struct dash	*d = q->d;
	unsigned	 st;
	int		 want_post = dash_api_wants_post(q);

	q->now = util_wall_ms();
	if (q->post != want_post)
		return dash_api_error(q, HTTP_STATUS_METHOD_NOT_ALLOWED,
		    "method not allowed");
	if ((st = dash_api_allowed(q)) != 0)
		return dash_api_error(q, st, st == HTTP_STATUS_UNAUTHORIZED ?
		    "not logged in" : q->post && !dashauth_logins(d->auth) ?
		    "actions need logins (dashboard.users) or the dashboard.token "
		    "as a Bearer token" : "your role may not do that");
	if (q->post && !dashauth_json_type(q->wsi))
		return dash_api_error(q, HTTP_STATUS_UNSUPPORTED_MEDIA_TYPE,
		    "want Content-Type: application/json");
	if (q->post && !dash_feed_origin_ok(d, q->wsi)) {
		log_warnx("dash_api_run: a POST from a foreign origin refused "
		    "(dashboard.allowed_origins)");
		return dash_api_error(q, HTTP_STATUS_FORBIDDEN, "origin refused");
	}
	if (q->too_big)
		return dash_api_error(q, HTTP_STATUS_REQ_ENTITY_TOO_LARGE, "too large");
	if (!dash_args_fit(q->wsi))
		return dash_api_error(q, HTTP_STATUS_BAD_REQUEST, "query argument "
		    "too long (name=value: at most " DASH_API_ARG_MAX_S " bytes "
		    "each)");
	switch (q->route) {
	case DR_ALERTS:
		return dash_api_alerts(q);
	case DR_ALERT:
		return dash_api_handle(q);
	case DR_CONV:
		if (q->arg == NULL || !note_name_ok(q->arg, strlen(q->arg)))
			return dash_api_error(q, HTTP_STATUS_BAD_REQUEST,
			    "want a conversation id: /api/conversation?id=ID");
		return dash_api_conv(q);
	case DR_NOTE:
		if (q->arg == NULL || !note_name_ok(q->arg, strlen(q->arg)))
			return dash_api_error(q, HTTP_STATUS_BAD_REQUEST,
			    "want an agent id: /api/notes?agent=AGENT");
		return dash_api_note(q);
	case DR_REPORT:
		return dash_api_report(q);
	default:
		return dash_api_error(q, HTTP_STATUS_NOT_FOUND, "no such route");
	}
}

/* The id of a query route (name= included): a copy, or NULL when absent, too long or out of memory. */
static char *
dash_api_query_id(struct dash_req *q, const char *name)
{
	char		 buf[DASH_API_ARG];
	const char	*v;

	if ((v = dash_api_arg(q, name, buf, (int)sizeof(buf))) == NULL)
		return NULL;
	return strdup(v);
}

/* The client went (or the transaction ended): a request Redis still owes replies to is left to them. */
static void
dash_api_release(struct dash_api_pss *p)
{
	struct dash_req	*q = p->q;

	p->q = NULL;
	if (q == NULL)
		return;
	q->wsi = NULL;
	/* a report nobody waits for any more: stop reading Redis for it */
	reportdb_cancel(q->rdb);
	q->rdb = NULL;
	if (q->pending == 0)
		dash_req_free(q);
}

int
dash_api_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user,
    void *in, size_t len)
{
	struct dash		*d = lws_context_user(lws_get_context(wsi));
	struct dash_api_pss	*p = user;
	struct dash_req		*q;
	enum dash_route		 route;
	char			*arg;
	int			 rc;

	if (p == NULL)		/* no request space: vhost-level callbacks */
		return dashauth_http(d->auth, wsi, (int)reason, NULL, in, len);
	if (reason == LWS_CALLBACK_HTTP) {
		dash_api_release(p);
		route = in != NULL ? dash_api_route(in, len, &arg) : DR_NONE;
		p->mine = route != DR_NONE;
		if (!p->mine)
			return dashauth_http(d->auth, wsi, (int)reason, p->auth, in, len);
		if ((q = calloc(1, sizeof(*q))) == NULL) {
			/* arg: NULL or ours */
			free(arg);
			return -1;
		}
		q->d = d;
		q->wsi = wsi;
		q->route = route;
		q->arg = arg;
		sbuf_init(&q->out);
		p->q = q;
		if (arg == NULL && (route == DR_CONV || route == DR_NOTE))
			q->arg = dash_api_query_id(q, route == DR_CONV ? "id=" :
			    "agent=");
		if (lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0) {
			q->post = 1;
			/* lws would wait for 100 MB of a body without a length */
			if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0) {
				(void)lws_return_http_status(wsi,
				    HTTP_STATUS_LENGTH_REQUIRED, NULL);
				return -1;
			}
			return 0;	/* the body first: HTTP_BODY_COMPLETION runs it */
		}
		if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0) {
			q->post = 1;	/* neither: answered as a method not allowed */
			return dash_api_error(q, HTTP_STATUS_METHOD_NOT_ALLOWED,
			    "method not allowed");
		}
		return dash_api_run(q) == -1 ? -1 : 0;
	}
	if (!p->mine) {
		if (reason == LWS_CALLBACK_CLOSED_HTTP)
			dash_api_release(p);
		return dashauth_http(d->auth, wsi, (int)reason, p->auth, in, len);
	}
	q = p->q;
	switch (reason) {
	case LWS_CALLBACK_HTTP_BODY:
		if (q == NULL)
			return -1;
		if (q->len + len > sizeof(q->body)) {
			/* no reason to read on: answer now and close */
			q->too_big = 1;
			if (dash_api_error(q, HTTP_STATUS_REQ_ENTITY_TOO_LARGE,
			    "too large (8 KiB at most)") == 0)
				(void)dash_api_write(q);
			return -1;
		}
		/* "Content-Length: 0" comes here with in == NULL */
		if (len > 0)
			memcpy(q->body + q->len, in, len);
		q->len += len;
		return 0;
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		if (q == NULL)
			return -1;
		return dash_api_run(q) == -1 ? -1 : 0;
	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (q == NULL || !q->answering)
			return 0;
		if ((rc = dash_api_write(q)) != 1)
			return rc;
		/*
		 * done: the next request on this connection starts afresh;
		 * lws may free this space as the transaction ends, so first
		 */
		dash_api_release(p);
		p->mine = 0;
		return lws_http_transaction_completed(wsi) ? -1 : 0;
	case LWS_CALLBACK_CLOSED_HTTP:
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
		dash_api_release(p);
		return 0;
	default:
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}
