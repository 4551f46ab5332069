/* notes: supervisors' whisper notes delivered to the agents connected here, and the workbench's acks written back (issue 15's contract, section 3). */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "chatmon/log.h"
#include "chatmon/notes.h"
#include "chatmon/rconn.h"
#include "chatmon/xfollow.h"

/*
 * Every instance follows the one stream of notes (the dashboard writes
 * each note there once) and hands each to the connections of its agent
 * that are here; an agent connected to no instance finds its notes in
 * its pending set when it connects. The stream is followed on a
 * connection of its own, because XREAD BLOCK holds its connection; the
 * look-ups and the acks go on another. Delivery is at least once: a
 * note may reach a workbench twice (its pending set read while the
 * stream brings it, or again after a reconnect), and the workbench keeps
 * one per id. The reading itself is xfollow's, as for the dashboard and
 * chatmon tail: it starts after the stream's last entry when chatmond
 * starts, and goes on from the last id read after a reconnect, so notes
 * written during an outage still come (those past notes.ttl are skipped
 * here).
 */

#define NOTES_BLOCK_MS		5000	/* how long one XREAD waits */
#define NOTES_PAGE_N		100	/* entries per XREAD */
#define NOTES_PAGE_PENDING	100	/* notes per page of a pending look-up */
#define NOTES_SCORE_MAX		63	/* bytes of a score Redis writes */
#define NOTES_AUDIT_MAXLEN	"100000"
/*
 * Acks of one connection waiting for Redis: at NOTES_ACKS_BUSY its reading
 * pauses until half are answered (an agent that floods acks is held back
 * by TCP, as one that floods messages is by limits.queue_bytes); past
 * NOTES_ACKS_MAX, for a peer that cannot pause, they are dropped.
 */
#define NOTES_ACKS_BUSY		32
#define NOTES_ACKS_MAX		(2 * NOTES_ACKS_BUSY)
#define NOTES_REFUSED_MS	60000	/* one warning a minute of Redis refusing acks */

/*
 * The ack, in one script over the note's hash alone (so that it runs on a
 * Cluster too): the note must be the acking agent's; times are set once;
 * the state only goes forward (sent, delivered, read). Answers what the
 * state became when it moved, "same" when it did not, "foreign" or
 * "missing" when nothing was done. ARGV: agent, state, now in ms.
 */
static const char notes_ack_lua[] =
    "local j = redis.call('HGET', KEYS[1], 'json')\n"
    "if not j then return 'missing' end\n"
    "local ok, n = pcall(cjson.decode, j)\n"
    "if not ok or type(n) ~= 'table' or n.agent ~= ARGV[1] then return 'foreign' end\n"
    "local rank = {sent = 0, delivered = 1, read = 2}\n"
    "local cur = rank[redis.call('HGET', KEYS[1], 'state') or 'sent'] or 0\n"
    "redis.call('HSETNX', KEYS[1], 'delivered_at', ARGV[3])\n"
    "if ARGV[2] == 'read' then redis.call('HSETNX', KEYS[1], 'read_at', ARGV[3]) end\n"
    "if rank[ARGV[2]] > cur then\n"
    "  redis.call('HSET', KEYS[1], 'state', ARGV[2])\n"
    "  return ARGV[2]\n"
    "end\n"
    "return 'same'\n";

struct notes {
	struct event_base	*base;
	struct metrics		*m;
	struct rconn		*follow;	/* XREAD BLOCK only */
	struct xfollow		*xf;		/* the notes' stream, on follow */
	struct rconn		*cmd;		/* look-ups and acks */
	struct notes_peer	*peers;
	char			*prefix;	/* redis.prefix, "" none */
	char			*log_key;	/* the notes' stream */
	char			*audit_key;
	uint64_t		 ttl_ms;	/* notes.ttl */
	char			 ack_sha[41];	/* notes_ack_lua's SHA1, for EVALSHA */
	int			 ack_loaded;	/* sent with its text on this connection */
	int64_t			 refused_ms;	/* the last warning of a refused ack */
	unsigned long		 refused;	/* refused since */
	int			 moved;		/* redis.prefix changed: look up every peer */
};

/*
 * A look-up of an agent's pending notes, for the connection that asked,
 * a page at a time: the next page starts at the score of the last one
 * read (ties there are read again: at least once), and past the first
 * skip notes when a whole page had that one score.
 */
struct notes_req {
	struct notes	*n;
	uint64_t	 session;
	size_t		 left;		/* replies still to come */
	char		 from[NOTES_SCORE_MAX + 1];	/* the page's lowest score */
	size_t		 skip;
	char		 agent[];
};

/*
 * An ack out to Redis, on its connection's list (p) while that is open:
 * the connection is told when few enough are left.
 */
struct notes_ackreq {
	struct notes		*n;
	struct notes_peer	*p;		/* NULL once the connection is gone */
	struct notes_ackreq	*prev, *next;	/* p's */
	enum notefmt_state	 state;
	int64_t			 at;		/* when it came, ms */
	int			 again;		/* sent again after NOSCRIPT */
	char			 id[NOTEFMT_ID_MAX + 1];
	char			 agent[];
};

/* prefix + mid + tail into out (reset first); -1 on ENOMEM. */
static int
notes_key(const struct notes *n, struct sbuf *out, const char *mid,
    const char *tail)
{
	sbuf_reset(out);
	return sbuf_printf(out, "%s%s%s", n->prefix, mid, tail);
}

/* The note json to every connection of its agent here; fresh: from the stream. */
static void
notes_deliver(struct notes *n, const char *json, size_t len, uint64_t session,
    int fresh)
{
	struct notefmt_note	 note;
	struct notes_peer	*p;
	const char		*why;
	unsigned		 sent = 0;

	if (notefmt_note_parse(json, len, &note, &why) == -1) {
		log_warnx("notes_deliver: a note that is not one skipped: %s", why);
		return;
	}
	/*
	 * An entry read after an outage may be older than its agent was meant
	 * to wait. Its age as a difference: ts is within 0..NOTEFMT_TS_MAX,
	 * so nothing here can overflow, whatever the entry says.
	 */
	if (fresh && util_wall_ms() - note.ts > (int64_t)n->ttl_ms) {
		log_debug("notes_deliver: note=%s agent=%s past notes.ttl, skipped",
		    note.id, note.agent);
		goto out;
	}
	for (p = n->peers; p != NULL; p = p->next) {
		if ((session != 0 && p->session != session) ||
		    strcmp(p->agent, note.agent) != 0)
			continue;
		p->inject(p->ctx, note.frame, note.frame_len, 0);
		n->m->notes_delivered++;
		sent++;
	}
	if (sent > 0)
		log_info("notes_deliver: note=%s agent=%s sent to %u connection%s",
		    note.id, note.agent, sent, sent == 1 ? "" : "s");
out:
	notefmt_note_clear(&note);
}

/* One entry of the notes' stream: its note to the agent's connections here. */
static void
notes_on_entry(void *arg, const char *sid, const struct redisReply *f)
{
	struct notes	*n = arg;
	size_t		 k;

	(void)sid;
	for (k = 0; k + 1 < f->elements; k += 2)
		if (f->element[k]->type == REDIS_REPLY_STRING &&
		    strcmp(f->element[k]->str, "note") == 0 &&
		    f->element[k + 1]->type == REDIS_REPLY_STRING)
			notes_deliver(n, f->element[k + 1]->str,
			    f->element[k + 1]->len, 0, 1);
}

static void	notes_pending(struct notes *, const struct notes_peer *,
		    struct rconn *);

static void
notes_on_follow_state(void *arg, int up, int lost)
{
	struct notes		*n = arg;
	struct notes_peer	*p;

	(void)lost;
	if (!up)
		return;
	log_info("notes_on_follow_state: redis %s connected: following %s%s%s",
	    rconn_name(n->follow), n->log_key, xfollow_last(n->xf)[0] ?
	    " after " : "", xfollow_last(n->xf));
	xfollow_resume(n->xf);
	/*
	 * Another prefix: the new stream is followed from its end (the
	 * XREVRANGE just sent), so a note written there before is only in
	 * its agent's pending set. Asked on this connection, behind the
	 * XREVRANGE, the look-ups see every note the stream will not bring.
	 */
	if (n->moved && rconn_up(n->cmd)) {
		n->moved = 0;
		for (p = n->peers; p != NULL; p = p->next)
			notes_pending(n, p, n->follow);
	}
}

/*
 * A follower of the notes' stream, from after its last entry (XREAD's $,
 * without its gap between reads); -1 on ENOMEM.
 */
static int
notes_follower(struct notes *n, struct event_base *base)
{
	if ((n->xf = xfollow_new(base, n->follow, n->log_key, notes_on_entry,
	    NULL, n)) == NULL)
		return -1;
	xfollow_set_read(n->xf, NOTES_BLOCK_MS, NOTES_PAGE_N);
	xfollow_follow(n->xf, NULL);
	return 0;
}

static void
notes_req_done(struct notes_req *r)
{
	if (--r->left == 0)
		free(r);
}

/* HMGET json state of one pending note: sent only if nobody has it yet. */
static void
notes_on_note(struct redisReply *reply, void *priv)
{
	struct notes_req	*r = priv;
	struct redisReply	*j, *st;

	if (reply != NULL && reply->type == REDIS_REPLY_ARRAY &&
	    reply->elements == 2) {
		j = reply->element[0];
		st = reply->element[1];
		if (j->type == REDIS_REPLY_STRING && st->type ==
		    REDIS_REPLY_STRING && strcmp(st->str, "sent") == 0)
			notes_deliver(r->n, j->str, j->len, r->session, 0);
	}
	notes_req_done(r);
}

static void	notes_on_pending(struct redisReply *, void *);

/* Asks conn for r's next page of pending ids; 0, or -1 when it cannot go. */
static int
notes_page(struct notes_req *r, struct rconn *conn)
{
	struct notes	*n = r->n;
	struct sbuf	 key = { 0 };
	int		 rc = -1;

	if (notes_key(n, &key, "chatmon:notes:pending:", r->agent) == -1)
		goto out;
	r->left++;
	if (rconn_command(conn, notes_on_pending, r, 0, "ZRANGEBYSCORE %s %s "
	    "+inf WITHSCORES LIMIT %lu %d", sbuf_str(&key), r->from,
	    (unsigned long)r->skip, NOTES_PAGE_PENDING) == -1) {
		r->left--;
		goto out;
	}
	rc = 0;
out:
	sbuf_free(&key);
	return rc;
}

/* Whether the connection r is for is still here. */
static int
notes_req_open(const struct notes_req *r)
{
	const struct notes_peer	*p;

	for (p = r->n->peers; p != NULL; p = p->next)
		if (p->session == r->session)
			return 1;
	return 0;
}

/*
 * A page of the ids waiting for the agent, by when they stop waiting
 * (id, score, ...): each one looked up; after a full page, the next one,
 * so that a long backlog is read a page per reply, the loop free between.
 */
static void
notes_on_pending(struct redisReply *reply, void *priv)
{
	struct notes_req	*r = priv;
	struct notes		*n = r->n;
	struct redisReply	*last;
	struct sbuf		 key = { 0 };
	size_t			 i;

	if (reply != NULL && reply->type == REDIS_REPLY_ARRAY) {
		for (i = 0; i + 1 < reply->elements; i += 2) {
			if (reply->element[i]->type != REDIS_REPLY_STRING ||
			    notes_key(n, &key, "chatmon:note:",
			    reply->element[i]->str) == -1)
				continue;
			r->left++;
			if (rconn_command(n->cmd, notes_on_note, r, 0,
			    "HMGET %s json state", sbuf_str(&key)) == -1) {
				r->left--;
				goto out;
			}
		}
		if (reply->elements < 2 * NOTES_PAGE_PENDING || !notes_req_open(r))
			goto out;
		last = reply->element[reply->elements - 1];
		if (last->type != REDIS_REPLY_STRING || last->len > NOTES_SCORE_MAX) {
			log_warnx("notes_on_pending: agent=%s: redis %s: a score "
			    "that is none, the rest of the notes not looked up",
			    r->agent, rconn_name(n->cmd));
			goto out;
		}
		/* a whole page of one score: the next one goes past it */
		if (strcmp(last->str, r->from) == 0)
			r->skip += NOTES_PAGE_PENDING;
		else {
			memcpy(r->from, last->str, last->len + 1);
			r->skip = 0;
		}
		if (notes_page(r, n->cmd) == -1)
			log_warnx("notes_on_pending: agent=%s: redis went away, "
			    "the rest of the notes not looked up", r->agent);
	} else if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
		log_warnx("notes_on_pending: agent=%s: redis %s: %s", r->agent,
		    rconn_name(n->cmd), reply->str);
out:
	sbuf_free(&key);
	notes_req_done(r);
}

/*
 * Looks up the notes waiting for p's agent; they go to p alone. The first
 * page is asked of rc (the notes' look-ups go on n->cmd, the rest of them
 * too).
 */
static void
notes_pending(struct notes *n, const struct notes_peer *p, struct rconn *rc)
{
	struct notes_req	*r;
	size_t			 alen = strlen(p->agent);

	if (!rconn_up(n->cmd) || !rconn_up(rc))
		return;		/* looked up for every peer when it is up */
	if ((r = calloc(1, sizeof(*r) + alen + 1)) == NULL) {
		log_warnx("notes_pending: agent=%s: out of memory, its waiting "
		    "notes not looked up", p->agent);
		return;
	}
	r->n = n;
	r->session = p->session;
	memcpy(r->agent, p->agent, alen + 1);
	snprintf(r->from, sizeof(r->from), "%" PRId64, util_wall_ms());
	if (notes_page(r, rc) == -1) {
		log_warnx("notes_pending: agent=%s: out of memory or redis away, "
		    "its waiting notes not looked up", p->agent);
		free(r);
	}
}

static void
notes_on_cmd_state(void *arg, int up, int lost)
{
	struct notes		*n = arg;
	struct notes_peer	*p;

	(void)lost;
	if (!up)
		return;
	n->ack_loaded = 0;	/* a new server, or one restarted, may not have it */
	/* agents that connected while Redis was away */
	for (p = n->peers; p != NULL; p = p->next)
		notes_pending(n, p, n->cmd);
}

void
notes_peer_open(struct notes *n, struct notes_peer *p)
{
	if (n == NULL || p->linked || p->agent == NULL || p->agent[0] == '\0')
		return;
	p->prev = NULL;
	p->next = n->peers;
	if (n->peers != NULL)
		n->peers->prev = p;
	n->peers = p;
	p->linked = 1;
	notes_pending(n, p, n->cmd);
}

/* The acks of p out to Redis forget it: it is going. */
static void
notes_peer_forget(struct notes_peer *p)
{
	struct notes_ackreq	*r;

	for (r = p->acks; r != NULL; r = r->next)
		r->p = NULL;
	p->acks = NULL;
	p->nacks = 0;
	p->busy = 0;
}

void
notes_peer_close(struct notes *n, struct notes_peer *p)
{
	if (n == NULL || !p->linked)
		return;
	notes_peer_forget(p);
	if (p->prev != NULL)
		p->prev->next = p->next;
	else
		n->peers = p->next;
	if (p->next != NULL)
		p->next->prev = p->prev;
	p->prev = p->next = NULL;
	p->linked = 0;
}

/* r is answered (or lost): off its connection's list, which may read again. */
static void
notes_ack_detach(struct notes_ackreq *r)
{
	struct notes_peer	*p = r->p;

	if (p == NULL)
		return;
	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		p->acks = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	r->p = NULL;
	p->nacks--;
	if (p->busy && p->nacks <= NOTES_ACKS_BUSY / 2) {
		p->busy = 0;
		if (p->flow != NULL)
			p->flow(p->ctx, 0);
	}
}

static void	notes_on_ack(struct redisReply *, void *);

/*
 * The script by its SHA1, but with its text the first time on a
 * connection, so that Redis has it before the EVALSHAs behind it. -1 when
 * it cannot go (out of memory, Redis away).
 */
static int
notes_ack_send(struct notes *n, struct notes_ackreq *r)
{
	struct sbuf	 key = { 0 };
	char		 at[24];
	int		 rc;

	if (notes_key(n, &key, "chatmon:note:", r->id) == -1)
		return -1;
	snprintf(at, sizeof(at), "%" PRId64, r->at);
	if (n->ack_loaded)
		rc = rconn_command(n->cmd, notes_on_ack, r, 0,
		    "EVALSHA %s 1 %s %s %s %s", n->ack_sha, sbuf_str(&key),
		    r->agent, notefmt_state_name(r->state), at);
	else if ((rc = rconn_command(n->cmd, notes_on_ack, r, 0,
	    "EVAL %s 1 %s %s %s %s", notes_ack_lua, sbuf_str(&key), r->agent,
	    notefmt_state_name(r->state), at)) == 0)
		n->ack_loaded = 1;
	sbuf_free(&key);
	return rc;
}

/*
 * Redis answered the ack with an error: a configuration to fix (NOPERM,
 * say) that would otherwise write a line for every ack, so one warning a
 * minute, with how many since; the rest at debug.
 */
static void
notes_ack_refused(struct notes *n, const struct notes_ackreq *r,
    const struct redisReply *reply)
{
	int64_t	 now = (int64_t)(util_mono_ns() / 1000000);
	int	 len = reply->type == REDIS_REPLY_ERROR ? (int)reply->len : 14;
	const char *what = reply->type == REDIS_REPLY_ERROR ? reply->str :
		    "unknown answer";

	n->m->note_acks_lost++;
	n->refused++;
	if (n->refused_ms != 0 && now - n->refused_ms < NOTES_REFUSED_MS) {
		log_debug("notes_on_ack: agent=%s note=%s: redis %s refused the "
		    "ack: %.*s", r->agent, r->id, rconn_name(n->cmd), len, what);
		return;
	}
	log_warnx("notes_on_ack: agent=%s note=%s: redis %s refused the ack: "
	    "%.*s (%lu refused since the last such line)", r->agent, r->id,
	    rconn_name(n->cmd), len, what, n->refused);
	n->refused_ms = now;
	n->refused = 0;
}

/*
 * The script's answer; a moved state is taken off the pending set and
 * audited. Lines per ack are at debug (an agent can send any number);
 * the counts are in /metrics.
 */
static void
notes_on_ack(struct redisReply *reply, void *priv)
{
	struct notes_ackreq	*r = priv;
	struct notes		*n = r->n;
	struct sbuf		 key = { 0 }, audit = { 0 };
	const char		*st = notefmt_state_name(r->state);

	if (reply == NULL) {
		n->m->note_acks_lost++;
		log_debug("notes_on_ack: agent=%s note=%s: redis went away, the "
		    "%s ack is lost", r->agent, r->id, st);
		goto out;
	}
	/* flushed (SCRIPT FLUSH) behind our back: once more, with its text */
	if (reply->type == REDIS_REPLY_ERROR && !r->again &&
	    strncmp(reply->str, "NOSCRIPT", 8) == 0) {
		n->ack_loaded = 0;
		r->again = 1;
		if (notes_ack_send(n, r) == 0)
			return;
	}
	if (reply->type != REDIS_REPLY_STRING && reply->type != REDIS_REPLY_STATUS) {
		notes_ack_refused(n, r, reply);
		goto out;
	}
	if (strcmp(reply->str, "foreign") == 0) {
		n->m->note_acks_foreign++;
		log_debug("notes_on_ack: agent=%s note=%s: the note is another "
		    "agent's, ack ignored", r->agent, r->id);
		goto out;
	}
	if (strcmp(reply->str, "missing") == 0) {
		log_debug("notes_on_ack: agent=%s note=%s: no such note (expired?), "
		    "ack ignored", r->agent, r->id);
		goto out;
	}
	/* delivered either way: it waits for nobody now */
	if (notes_key(n, &key, "chatmon:notes:pending:", r->agent) == -1 ||
	    rconn_command(n->cmd, NULL, NULL, 0, "ZREM %s %s", sbuf_str(&key),
	    r->id) == -1)
		goto out;
	if (strcmp(reply->str, st) != 0)
		goto out;	/* "same": nothing new to audit */
	/* at most twice a note: what operations look for */
	log_info("notes_on_ack: agent=%s note=%s %s", r->agent, r->id, st);
	if (notefmt_audit(&audit, util_wall_ms(), r->agent, r->id, r->state) == -1 ||
	    rconn_command(n->cmd, NULL, NULL, 0, "XADD %s MAXLEN ~ "
	    NOTES_AUDIT_MAXLEN " * e %b", n->audit_key, sbuf_str(&audit),
	    audit.len) == -1)
		log_warnx("notes_on_ack: agent=%s note=%s: the audit entry is lost",
		    r->agent, r->id);
out:
	notes_ack_detach(r);
	sbuf_free(&key);
	sbuf_free(&audit);
	free(r);
}

void
notes_ack(struct notes *n, struct notes_peer *p, const struct notefmt_ack *a)
{
	struct notes_ackreq	*r;
	size_t			 alen;

	if (p->agent == NULL || p->agent[0] == '\0') {
		n->m->note_acks_foreign++;
		log_debug("notes_ack: note=%s: an ack from a connection without "
		    "an agent id, ignored", a->id);
		return;
	}
	/* a connection that cannot pause (or did not yet): no more than this */
	if (!p->linked || p->nacks >= NOTES_ACKS_MAX || !rconn_up(n->cmd)) {
		n->m->note_acks_lost++;
		log_debug("notes_ack: agent=%s note=%s: %s, the %s ack is lost",
		    p->agent, a->id, !rconn_up(n->cmd) ? "redis is away" :
		    "too many acks wait for redis", notefmt_state_name(a->state));
		return;
	}
	alen = strlen(p->agent);
	if ((r = calloc(1, sizeof(*r) + alen + 1)) == NULL) {
		n->m->note_acks_lost++;
		log_warnx("notes_ack: agent=%s note=%s: out of memory, ack lost",
		    p->agent, a->id);
		return;
	}
	r->n = n;
	r->state = a->state;
	r->at = util_wall_ms();
	memcpy(r->id, a->id, sizeof(r->id));
	memcpy(r->agent, p->agent, alen + 1);
	if (notes_ack_send(n, r) == -1) {
		n->m->note_acks_lost++;
		log_debug("notes_ack: agent=%s note=%s: redis went away, ack lost",
		    p->agent, a->id);
		free(r);
		return;
	}
	n->m->note_acks++;
	r->p = p;
	r->next = p->acks;
	if (p->acks != NULL)
		p->acks->prev = r;
	p->acks = r;
	if (++p->nacks >= NOTES_ACKS_BUSY && !p->busy && p->flow != NULL) {
		p->busy = 1;
		p->flow(p->ctx, 1);
	}
}

static int
notes_settings(struct notes *n, const struct config *cfg)
{
	const char	*pre = cfg->redis.prefix != NULL ? cfg->redis.prefix : "";
	char		*p = NULL, *l = NULL, *a = NULL;

	/* asprintf leaves its pointer undefined when it fails: NULL it again */
	if (asprintf(&l, "%schatmon:notes:log", pre) == -1)
		l = NULL;
	if (asprintf(&a, "%schatmon:audit", pre) == -1)
		a = NULL;
	if ((p = strdup(pre)) == NULL || l == NULL || a == NULL) {
		free(p);
		free(l);
		free(a);
		return -1;
	}
	free(n->prefix);
	free(n->log_key);
	free(n->audit_key);
	n->prefix = p;
	n->log_key = l;
	n->audit_key = a;
	n->ttl_ms = cfg->notes.ttl_ms;
	return 0;
}

struct notes *
notes_new(struct event_base *base, const struct config *cfg, struct metrics *m,
    struct sbuf *errs)
{
	struct notes	*n;

	if ((n = calloc(1, sizeof(*n))) == NULL)
		goto oom;
	n->m = m;
	n->base = base;
	if (rconn_script_sha(notes_ack_lua, sizeof(notes_ack_lua) - 1,
	    n->ack_sha) == -1 ||
	    notes_settings(n, cfg) == -1 ||
	    (n->follow = rconn_new(base, "notes-follow", notes_on_follow_state,
	    n)) == NULL ||
	    notes_follower(n, base) == -1 ||
	    (n->cmd = rconn_new(base, "notes", notes_on_cmd_state, n)) == NULL ||
	    rconn_set_target(n->follow, &cfg->redis, 0) == -1 ||
	    rconn_set_target(n->cmd, &cfg->redis, 0) == -1)
		goto oom;
	return n;
oom:
	sbuf_line(errs, "notes_new: out of memory");
	notes_free(n);
	return NULL;
}

void
notes_set_config(struct notes *n, const struct config *cfg)
{
	struct xfollow	*old = n->xf;

	if (notes_settings(n, cfg) == -1) {
		log_warnx("notes_set_config: out of memory, settings kept");
		return;
	}
	if (strcmp(xfollow_key(old), n->log_key) != 0) {
		/*
		 * Another stream (redis.prefix): start again at its end. The
		 * read out for the old one goes with the connection, so that
		 * the old follower is freed with nothing of it pending.
		 */
		rconn_drop(n->follow, "the notes' stream changed");
		if (notes_follower(n, n->base) == -1) {
			n->xf = old;
			log_warnx("notes_set_config: out of memory, still "
			    "following %s", xfollow_key(old));
		} else {
			xfollow_free(old);
			n->moved = 1;	/* notes_on_follow_state */
		}
	}
	if (rconn_set_target(n->follow, &cfg->redis, 0) == -1 ||
	    rconn_set_target(n->cmd, &cfg->redis, 0) == -1)
		log_warnx("notes_set_config: out of memory, Redis settings kept");
}

void
notes_free(struct notes *n)
{
	struct notes_peer	*p;

	if (n == NULL)
		return;
	for (p = n->peers; p != NULL; p = p->next)
		notes_peer_forget(p);
	/* the callbacks of what is out run now, with NULL, and free their requests */
	rconn_free(n->follow);
	n->follow = NULL;
	xfollow_free(n->xf);
	rconn_free(n->cmd);
	n->cmd = NULL;
	free(n->prefix);
	free(n->log_key);
	free(n->audit_key);
	free(n);
}
