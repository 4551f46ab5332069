/* rconn: one Redis connection on the loop: the master found (redis.url or Sentinel) and its role checked, AUTH, SELECT, a hung server noticed, reconnects with backoff (Debian's hiredis 0.14 has none of it). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <hiredis/adapters/libevent.h>
#include <openssl/evp.h>

#include "chatmon/log.h"
#include "chatmon/rconn.h"
#include "chatmon/rreply.h"

/*
 * Redis answers in the order it was asked, so the callbacks of the commands
 * in flight wait in a FIFO and every reply is for its head: one hiredis
 * callback for all, and no allocation per command once the FIFO has grown.
 *
 * A context rconn gives up on is unhooked (ctx = NULL) before hiredis frees
 * it; the callbacks hiredis then runs for it see a context that is not
 * theirs and return, and rconn itself tells the owners of the commands in
 * flight (reply NULL).
 *
 * With Sentinel (redis.sentinels) every connection starts with asking: the
 * sentinels in turn, one at a time, until one names the master (SENTINEL
 * get-master-addr-by-name); the one that did is asked first next time, as
 * Redis's guidelines for Sentinel clients say. Whatever the source of the
 * address, a connection is up only once ROLE says master: after a failover
 * the old master is a replica that would answer every write with
 * READONLY, and a sentinel cut off from the others may still name it. A
 * server that is not the master, like any lost connection, sends rconn
 * back to asking. While up, an owner that suspects a failover (its writes
 * not acknowledged by the replicas) has the sentinels asked again without
 * dropping anything (rconn_verify).
 */

#define RCONN_BACKOFF_MIN_MS	100
#define RCONN_BACKOFF_MAX_MS	10000
/* a connection up this long was a success: the next retry starts over */
#define RCONN_STABLE_MS		5000

struct rconn_pending {
	rconn_reply_cb	 cb;
	void		*priv;
	uint64_t	 block_ms;
};

enum rconn_state {
	RCONN_DOWN,		/* waiting to reconnect */
	RCONN_ASKING,		/* no ctx: the sentinels are asked where the master is */
	RCONN_CONNECTING,	/* TCP, then AUTH, SELECT and ROLE */
	RCONN_UP,
};

enum rconn_goal {			/* of the question to the sentinels */
	RCONN_IDLE,		/* none out */
	RCONN_FIND,		/* where to connect */
	RCONN_CHECK,		/* whether the master moved while up */
};

/* What rconn_set_target copies; compared whole to see if the target moved. */
struct rconn_settings {
	struct config_redis_target target;	/* redis.url; db only with Sentinel */
	struct config_addr	 sentinel[CONFIG_MAX_SENTINELS];
	size_t			 nsentinels;
	char			*master_name;
	char			*username;
	char			*password;
	char			*sentinel_username;
	char			*sentinel_password;
	int			 flags;
};

struct rconn {
	struct event_base	*base;
	char			*who;
	rconn_state_cb		 state_cb;
	void			*arg;
	/* settings */
	struct rconn_settings	 set;
	uint64_t		 timeout_ms;
	int			 configured;
	/* the connection */
	redisAsyncContext	*ctx;		/* ours; NULL once given up */
	enum rconn_state	 state;
	int			 setup_pending;	/* AUTH/SELECT replies to come before ROLE */
	unsigned		 failures;	/* in a row: the backoff's exponent */
	uint64_t		 up_since_ns;	/* when it came up (monotonic) */
	struct event		*ev_retry;
	struct event		*ev_timeout;
	char			 name[300];	/* rconn_name */
	char			 why[400];	/* rconn_error: the last failure */
	int			 refused;	/* ... was the server's error reply */
	const char		*bad_reply;	/* rconn_guard refused a reply: why */
	const char		*setup_cmd[4];	/* the setup commands out, in order */
	int			 setup_done;	/* ... answered */
	/* Sentinel */
	redisAsyncContext	*sctx;		/* the sentinel being asked; ours */
	enum rconn_goal		 goal;
	int			 ssetup_pending;	/* AUTH reply to come before the answer */
	struct event		*ev_stimeout;
	struct config_addr	 master;	/* the address the sentinels gave last */
	size_t			 sfirst;	/* asked first: the last that answered */
	size_t			 sasked;	/* asked in this round */
	size_t			 scur;		/* being asked, or the one that answered */
	/* commands in flight, oldest first */
	struct rconn_pending	*fifo;
	size_t			 cap, head, n;
};

static void	rconn_connect(struct rconn *);
static void	rconn_guard(redisAsyncContext *);
static void	rconn_ask_next(struct rconn *);
static void	rconn_why(struct rconn *, int refused, const char *, ...)
		    UTIL_PRINTF(3, 4);

/*
 * Why the connection is not up, for an owner that reports outages itself
 * (chatmon tail); the log has the same in its own words.
 */
static void
rconn_why(struct rconn *rc, int refused, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(rc->why, sizeof(rc->why), fmt, ap);
	va_end(ap);
	rc->refused = refused;
}

const char *
rconn_error(const struct rconn *rc, int *refused)
{
	if (refused != NULL)
		*refused = rc->refused;
	return rc->why;
}

/* "host:port", brackets around an IPv6 address. */
static void
rconn_addr_name(char *buf, size_t sz, const char *host, int port)
{
	snprintf(buf, sz, strchr(host, ':') != NULL ? "[%s]:%d" : "%s:%d", host,
	    port);
}

static void
rconn_set_name(struct rconn *rc)
{
	if (rc->set.nsentinels > 0 && rc->master.host[0] == '\0')
		snprintf(rc->name, sizeof(rc->name), "master %s",
		    rc->set.master_name);
	else if (rc->set.nsentinels > 0)
		rconn_addr_name(rc->name, sizeof(rc->name), rc->master.host,
		    rc->master.port);
	else if (rc->set.target.path[0])
		snprintf(rc->name, sizeof(rc->name), "%s", rc->set.target.path);
	else
		rconn_addr_name(rc->name, sizeof(rc->name), rc->set.target.host,
		    rc->set.target.port);
}

const char *
rconn_name(const struct rconn *rc)
{
	return rc->name;
}

int
rconn_up(const struct rconn *rc)
{
	return rc != NULL && rc->state == RCONN_UP;
}

int
rconn_connecting(const struct rconn *rc)
{
	return rc != NULL && (rc->state == RCONN_CONNECTING ||
	    rc->state == RCONN_ASKING);
}

static void
rconn_arm_timeout(struct rconn *rc, uint64_t extra_ms)
{
	struct timeval	tv;
	uint64_t	ms = rc->timeout_ms + extra_ms;

	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000 * 1000);
	evtimer_add(rc->ev_timeout, &tv);
}

/* The timeout follows the oldest command in flight. */
static void
rconn_rearm(struct rconn *rc)
{
	if (rc->n > 0)
		rconn_arm_timeout(rc, rc->fifo[rc->head].block_ms);
	else
		evtimer_del(rc->ev_timeout);
}

static int
rconn_push(struct rconn *rc, rconn_reply_cb cb, void *priv, uint64_t block_ms)
{
	struct rconn_pending	*nf;
	size_t			 i, cap;

	if (rc->n == rc->cap) {
		cap = rc->cap ? rc->cap * 2 : 64;
		if ((nf = calloc(cap, sizeof(*nf))) == NULL)
			return -1;
		for (i = 0; i < rc->n; i++)
			nf[i] = rc->fifo[(rc->head + i) % rc->cap];
		free(rc->fifo);
		rc->fifo = nf;
		rc->cap = cap;
		rc->head = 0;
	}
	rc->fifo[(rc->head + rc->n++) % rc->cap] =
	    (struct rconn_pending){ cb, priv, block_ms };
	return 0;
}

static struct rconn_pending
rconn_pop(struct rconn *rc)
{
	struct rconn_pending	p = rc->fifo[rc->head];

	rc->head = (rc->head + 1) % rc->cap;
	rc->n--;
	return p;
}

/* Every command in flight is lost: its owner hears NULL. */
static void
rconn_flush(struct rconn *rc)
{
	struct rconn_pending	p;

	while (rc->n > 0) {
		p = rconn_pop(rc);
		if (p.cb != NULL)
			p.cb(NULL, p.priv);
	}
}

static void
rconn_schedule_retry(struct rconn *rc)
{
	struct timeval	tv;
	uint64_t	ms = RCONN_BACKOFF_MIN_MS;
	unsigned	i;

	/*
	 * Only a connection that lasted resets the backoff: one that comes up
	 * and is dropped at once (a server that refuses every write, a master
	 * whose replica does not acknowledge) must not be retried ten times a
	 * second.
	 */
	if (rc->state == RCONN_UP &&
	    util_mono_ns() - rc->up_since_ns >= RCONN_STABLE_MS * 1000000ULL)
		rc->failures = 0;
	rc->state = RCONN_DOWN;
	evtimer_del(rc->ev_timeout);
	if (evtimer_pending(rc->ev_retry, NULL))
		return;
	for (i = 0; i < rc->failures && ms < RCONN_BACKOFF_MAX_MS; i++)
		ms *= 2;
	if (ms > RCONN_BACKOFF_MAX_MS)
		ms = RCONN_BACKOFF_MAX_MS;
	/* jitter: many instances must not come back at the same moment */
	ms = ms / 2 + (uint64_t)random() % (ms / 2 + 1);
	rc->failures++;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000 * 1000);
	evtimer_add(rc->ev_retry, &tv);
}

/* The context is given up: unhooked first, so its callbacks ignore it. */
static void
rconn_unhook(struct rconn *rc)
{
	redisAsyncContext	*ac = rc->ctx;

	rc->ctx = NULL;
	if (ac != NULL)
		redisAsyncFree(ac);	/* deferred by hiredis inside its callbacks */
}

static void	rconn_unhook_sentinel(struct rconn *);

static void
rconn_down(struct rconn *rc, int lost)
{
	rconn_unhook(rc);
	if (rc->goal != RCONN_IDLE) {		/* moot: reconnecting asks anew */
		rconn_unhook_sentinel(rc);
		rc->goal = RCONN_IDLE;
	}
	rconn_schedule_retry(rc);
	rconn_flush(rc);
	rc->state_cb(rc->arg, 0, lost);
}

void
rconn_drop(struct rconn *rc, const char *why)
{
	int	lost = rc->ctx != NULL;

	if (lost)
		log_warnx("rconn_drop: %s redis %s: %s", rc->who, rconn_name(rc),
		    why);
	rconn_why(rc, 0, "%s", why);
	rconn_down(rc, lost);
}

/* --- asking the sentinels --------------------------------------------------- */

/*
 * The sentinels are asked over a context of their own (sctx), so that a
 * question can go while the connection to the master stays up: to find
 * the master (goal RCONN_FIND, the connection down) or to check that it
 * has not moved (RCONN_CHECK, rconn_verify, the connection up).
 */

static void	rconn_on_sentinel_connect(const redisAsyncContext *, int);
static void	rconn_on_sentinel_disconnect(const redisAsyncContext *, int);

static void
rconn_unhook_sentinel(struct rconn *rc)
{
	redisAsyncContext	*ac = rc->sctx;

	rc->sctx = NULL;
	evtimer_del(rc->ev_stimeout);
	if (ac != NULL)
		redisAsyncFree(ac);
}

static const char *
rconn_sentinel_name(struct rconn *rc, char *buf, size_t sz)
{
	rconn_addr_name(buf, sz, rc->set.sentinel[rc->scur].host,
	    rc->set.sentinel[rc->scur].port);
	return buf;
}

/* This round is over without an answer. */
static void
rconn_ask_failed(struct rconn *rc)
{
	if (rc->goal == RCONN_CHECK) {
		rc->goal = RCONN_IDLE;
		log_warnx("rconn_ask_failed: %s: no sentinel answered whether "
		    "master %s is still %s", rc->who, rc->set.master_name,
		    rconn_name(rc));
		return;
	}
	rc->goal = RCONN_IDLE;
	log_warnx("rconn_ask_failed: %s: no sentinel named master %s; asking "
	    "again later", rc->who, rc->set.master_name);
	/* the last sentinel's failure (rconn_sentinel_fail) stays the reason */
	rconn_down(rc, 0);
}

/* Asks the next sentinel of this round. */
static void
rconn_ask_next(struct rconn *rc)
{
	const struct config_addr	*s;
	redisAsyncContext		*ac;
	struct timeval			 tv;
	char				 addr[300];

	for (;;) {
		if (rc->sasked == rc->set.nsentinels) {
			rconn_ask_failed(rc);
			return;
		}
		rc->scur = (rc->sfirst + rc->sasked++) % rc->set.nsentinels;
		s = &rc->set.sentinel[rc->scur];
		/* hiredis 0.14 resolves a name here, blocking (docs/operations.md) */
		ac = redisAsyncConnect(s->host, s->port);
		if (ac == NULL || ac->err) {
			log_warnx("rconn_ask_next: %s sentinel %s: %s", rc->who,
			    rconn_sentinel_name(rc, addr, sizeof(addr)),
			    ac ? ac->errstr : "out of memory");
			rconn_why(rc, 0, "sentinel %s: %s", addr,
			    ac ? ac->errstr : "out of memory");
			if (ac != NULL)
				redisAsyncFree(ac);
			continue;
		}
		ac->data = rc;
		rc->sctx = ac;
		rconn_guard(ac);
		if (redisLibeventAttach(ac, rc->base) != REDIS_OK) {
			rconn_unhook_sentinel(rc);
			continue;
		}
		redisAsyncSetConnectCallback(ac, rconn_on_sentinel_connect);
		redisAsyncSetDisconnectCallback(ac, rconn_on_sentinel_disconnect);
		tv.tv_sec = (time_t)(rc->timeout_ms / 1000);
		tv.tv_usec = (suseconds_t)(rc->timeout_ms % 1000 * 1000);
		evtimer_add(rc->ev_stimeout, &tv);
		return;
	}
}

/* A round of questions, from the sentinel that answered last. */
static void
rconn_ask(struct rconn *rc, enum rconn_goal goal)
{
	rconn_unhook_sentinel(rc);
	rc->goal = goal;
	rc->sasked = 0;
	rconn_ask_next(rc);
}

/* The sentinel being asked failed us (its sctx already unhooked or not): the next. */
static void
rconn_sentinel_fail(struct rconn *rc, int refused, const char *why)
{
	char	addr[300];

	log_warnx("rconn_sentinel_fail: %s sentinel %s: %s", rc->who,
	    rconn_sentinel_name(rc, addr, sizeof(addr)), why);
	rconn_why(rc, refused, "sentinel %s: %s", addr, why);
	rconn_unhook_sentinel(rc);
	rconn_ask_next(rc);
}

static void
rconn_on_stimeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	rconn_sentinel_fail(arg, 0, "no answer within redis.timeout");
}

static void	rconn_connect_master(struct rconn *);

static void
rconn_on_sentinel(redisAsyncContext *ac, void *r, void *privdata)
{
	struct rconn	*rc = privdata;
	redisReply	*reply = r;
	struct config_addr m;
	char		 why[320], addr[300], sname[300], msg[600];
	int		 moved;

	if (reply == NULL || ac != rc->sctx)
		return;
	if (--rc->ssetup_pending > 0) {
		/* AUTH */
		if (reply->type == REDIS_REPLY_ERROR) {
			snprintf(why, sizeof(why), "refused AUTH: %s", reply->str);
			rconn_sentinel_fail(rc, 1, why);
		}
		return;
	}
	memset(&m, 0, sizeof(m));
	if (rreply_master_addr(reply, m.host, sizeof(m.host), &m.port, why,
	    sizeof(why)) == -1) {
		snprintf(msg, sizeof(msg), "where is master %.200s? %s",
		    rc->set.master_name, why);
		rconn_sentinel_fail(rc, 0, msg);
		return;
	}
	rconn_unhook_sentinel(rc);
	rc->sfirst = rc->scur;
	moved = strcmp(m.host, rc->master.host) != 0 || m.port != rc->master.port;
	if (moved) {
		rconn_addr_name(addr, sizeof(addr), m.host, m.port);
		if (rc->master.host[0])
			snprintf(why, sizeof(why), " (was %s)", rc->name);
		else
			why[0] = '\0';
		log_info("rconn_on_sentinel: %s sentinel %s: master %s is at %s%s",
		    rc->who, rconn_sentinel_name(rc, sname, sizeof(sname)),
		    rc->set.master_name, addr, why);
	}
	if (rc->goal == RCONN_CHECK) {
		rc->goal = RCONN_IDLE;
		if (!moved)
			return;
		/* failed over under us: the old master will be a replica */
		rconn_drop(rc, "Sentinel names another master");
		evtimer_del(rc->ev_retry);
	}
	rc->goal = RCONN_IDLE;
	rc->master = m;
	rconn_set_name(rc);
	rconn_connect_master(rc);
}

/* AUTH to a sentinel, then the question. */
static void
rconn_on_sentinel_connect(const redisAsyncContext *ac, int status)
{
	struct rconn	*rc = ac->data;

	if (ac != rc->sctx)
		return;
	if (status != REDIS_OK) {
		rc->sctx = NULL;	/* hiredis frees a context whose connect failed */
		rconn_sentinel_fail(rc, 0, ac->errstr);
		return;
	}
	rc->ssetup_pending = 1;
	if (rc->set.sentinel_password != NULL) {
		if (rc->set.sentinel_username != NULL)
			redisAsyncCommand(rc->sctx, rconn_on_sentinel, rc,
			    "AUTH %s %s", rc->set.sentinel_username,
			    rc->set.sentinel_password);
		else
			redisAsyncCommand(rc->sctx, rconn_on_sentinel, rc,
			    "AUTH %s", rc->set.sentinel_password);
		rc->ssetup_pending++;
	}
	redisAsyncCommand(rc->sctx, rconn_on_sentinel, rc,
	    "SENTINEL get-master-addr-by-name %s", rc->set.master_name);
}

static void
rconn_on_sentinel_disconnect(const redisAsyncContext *ac, int status)
{
	struct rconn	*rc = ac->data;

	(void)status;
	if (ac != rc->sctx)
		return;		/* one we gave up ourselves */
	rc->sctx = NULL;	/* hiredis frees it after this */
	rconn_sentinel_fail(rc, 0, rc->bad_reply != NULL ? rc->bad_reply :
	    ac->errstr[0] ? ac->errstr : "connection lost");
	rc->bad_reply = NULL;
}

void
rconn_verify(struct rconn *rc)
{
	if (rc->set.nsentinels == 0 || rc->state != RCONN_UP ||
	    rc->goal != RCONN_IDLE)
		return;
	rconn_ask(rc, RCONN_CHECK);
}

/* --- what a server may answer -------------------------------------------- */

/*
 * hiredis 0.14 trusts a server's replies further than a daemon can
 * (docs/operations.md, "What a bad Redis cannot do"): an array's header
 * allocates its slots before one element has come (`*50000000` is 400 MB,
 * and freeing them at redis.timeout walks every one: the loop stalled
 * 10 s at each reconnect), and a reply nobody asked for fails an assert()
 * that aborts the process. The reader's object functions are the hook it
 * gives: these refuse both before hiredis builds anything, which it takes
 * as a reader error, so the connection is dropped and made again like
 * any other that failed.
 */
#define RCONN_ARRAY_MAX	(1 << 22)	/* elements; the largest read is HGETALL of the alerts' handling, 2 a handled alert */

static redisReplyObjectFunctions	 rconn_fns;
static redisReplyObjectFunctions	*rconn_fns_hiredis;

/* This reply is not built: why, for the disconnect's log line. */
static void
rconn_refuse(const redisReadTask *task, const char *why)
{
	const redisAsyncContext	*ac = task->privdata;

	((struct rconn *)ac->data)->bad_reply = why;
}

/* A whole reply (not an element) with no command waiting for it. */
static int
rconn_unasked(const redisReadTask *task)
{
	const redisAsyncContext	*ac = task->privdata;

	if (task->parent != NULL || ac->replies.head != NULL ||
	    (ac->c.flags & (REDIS_SUBSCRIBED | REDIS_MONITORING)) != 0)
		return 0;
	rconn_refuse(task, "a reply to no command");
	return 1;
}

static void *
rconn_create_string(const redisReadTask *task, char *str, size_t len)
{
	/* an error nobody asked for is hiredis's own case: "max clients", LOADING */
	if (task->type != REDIS_REPLY_ERROR && rconn_unasked(task))
		return NULL;
	return rconn_fns_hiredis->createString(task, str, len);
}

static void *
rconn_create_array(const redisReadTask *task, int elements)
{
	if (elements > RCONN_ARRAY_MAX) {
		rconn_refuse(task, "an array of over 4194304 elements");
		return NULL;
	}
	if (rconn_unasked(task))
		return NULL;
	return rconn_fns_hiredis->createArray(task, elements);
}

static void *
rconn_create_integer(const redisReadTask *task, long long value)
{
	if (rconn_unasked(task))
		return NULL;
	return rconn_fns_hiredis->createInteger(task, value);
}

static void *
rconn_create_nil(const redisReadTask *task)
{
	if (rconn_unasked(task))
		return NULL;
	return rconn_fns_hiredis->createNil(task);
}

/* A new context reads through the functions above (hiredis's own behind them). */
static void
rconn_guard(redisAsyncContext *ac)
{
	if (rconn_fns_hiredis == NULL) {
		rconn_fns_hiredis = ac->c.reader->fn;	/* the same for every context */
		rconn_fns = *rconn_fns_hiredis;
		rconn_fns.createString = rconn_create_string;
		rconn_fns.createArray = rconn_create_array;
		rconn_fns.createInteger = rconn_create_integer;
		rconn_fns.createNil = rconn_create_nil;
	}
	ac->c.reader->fn = &rconn_fns;
	ac->c.reader->privdata = ac;
}

/* --- the server -------------------------------------------------------------- */

static void
rconn_on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct rconn	*rc = arg;

	(void)fd;
	(void)what;
	rconn_drop(rc, "no reply within redis.timeout");
}

static void
rconn_on_retry(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	rconn_connect(arg);
}

void
rconn_hurry(struct rconn *rc)
{
	if (rc == NULL || rc->state != RCONN_DOWN ||
	    !evtimer_pending(rc->ev_retry, NULL))
		return;
	evtimer_del(rc->ev_retry);
	rconn_connect(rc);
}

static void
rconn_on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
	struct rconn		*rc = privdata;
	struct rconn_pending	 p;

	if (ac != rc->ctx || rc->n == 0)
		return;		/* a context given up: rconn_down told the owners */
	if (r == NULL)
		rc->state = RCONN_DOWN;	/* hiredis is freeing it: send nothing more */
	p = rconn_pop(rc);
	rconn_rearm(rc);
	if (p.cb != NULL)
		p.cb(r, p.priv);
}

/* The server is not one to write to: with Sentinel, ask another sentinel first next time. */
static void
rconn_not_master(struct rconn *rc, const char *detail)
{
	log_warnx("rconn_on_role: %s redis %s is %s, not the master%s", rc->who,
	    rconn_name(rc), detail, rc->set.nsentinels > 0 ?
	    ": asking the sentinels again" : ": will check again later");
	rconn_why(rc, 0, "%s, not the master", detail);
	if (rc->set.nsentinels > 0)
		rc->sfirst = (rc->scur + 1) % rc->set.nsentinels;
	rconn_down(rc, 0);
}

static void
rconn_up_now(struct rconn *rc)
{
	evtimer_del(rc->ev_timeout);
	rc->state = RCONN_UP;
	rc->up_since_ns = util_mono_ns();
	rc->state_cb(rc->arg, 1, 0);
}

static void
rconn_on_role(redisAsyncContext *ac, void *r, void *privdata)
{
	struct rconn	*rc = privdata;
	redisReply	*reply = r;
	char		 detail[300];

	if (reply == NULL || ac != rc->ctx)
		return;
	if (reply->type == REDIS_REPLY_ERROR &&
	    strncmp(reply->str, "NOPERM", 6) != 0 &&
	    strncmp(reply->str, "ERR unknown command", 19) != 0) {
		/* NOAUTH (no redis.password), LOADING, ...: not usable yet */
		log_warnx("rconn_on_role: %s redis %s refused the connection: %s",
		    rc->who, rconn_name(rc), reply->str);
		rconn_why(rc, 1, "ROLE: %s", reply->str);
		rconn_down(rc, 0);
		return;
	}
	if (reply->type == REDIS_REPLY_ERROR) {
		/*
		 * ROLE denied to an ACL user, or renamed: the role cannot be
		 * known here, and a replica still shows as READONLY on the
		 * first write, which the owner answers by dropping.
		 */
		log_warnx("rconn_on_role: %s redis %s: cannot check that it is the "
		    "master (%s); going on", rc->who, rconn_name(rc), reply->str);
		rconn_up_now(rc);
		return;
	}
	if (rreply_role(reply, detail, sizeof(detail)) != RREPLY_MASTER) {
		rconn_not_master(rc, detail);
		return;
	}
	rconn_up_now(rc);
}

static void
rconn_on_setup(redisAsyncContext *ac, void *r, void *privdata)
{
	struct rconn	*rc = privdata;
	redisReply	*reply = r;

	if (reply == NULL || ac != rc->ctx)
		return;
	if (reply->type == REDIS_REPLY_ERROR) {
		log_warnx("rconn_on_setup: %s redis %s refused the connection: %s",
		    rc->who, rconn_name(rc), reply->str);
		rconn_why(rc, 1, "%s: %s", rc->setup_done < 4 &&
		    rc->setup_cmd[rc->setup_done] != NULL ?
		    rc->setup_cmd[rc->setup_done] : "setup", reply->str);
		rconn_down(rc, 0);
		return;
	}
	rc->setup_done++;
	if (--rc->setup_pending == 0 && (rc->set.flags & RCONN_ANY_ROLE))
		rconn_up_now(rc);
}

static void
rconn_on_connect(const redisAsyncContext *ac, int status)
{
	struct rconn	*rc = ac->data;

	if (ac != rc->ctx)
		return;
	if (status != REDIS_OK) {
		rc->ctx = NULL;		/* hiredis frees a context whose connect failed */
		log_warnx("rconn_on_connect: %s redis %s: %s", rc->who,
		    rconn_name(rc), ac->errstr);
		rconn_why(rc, 0, "%s", ac->errstr);
		rconn_down(rc, 0);
		return;
	}
	rc->setup_pending = 0;
	rc->setup_done = 0;
	if (rc->set.password != NULL) {
		if (rc->set.username != NULL)
			redisAsyncCommand(rc->ctx, rconn_on_setup, rc, "AUTH %s %s",
			    rc->set.username, rc->set.password);
		else
			redisAsyncCommand(rc->ctx, rconn_on_setup, rc, "AUTH %s",
			    rc->set.password);
		rc->setup_cmd[rc->setup_pending++] = "AUTH";
	}
	if (rc->set.target.db != 0) {
		redisAsyncCommand(rc->ctx, rconn_on_setup, rc, "SELECT %d",
		    rc->set.target.db);
		rc->setup_cmd[rc->setup_pending++] = "SELECT";
	}
	if (rc->set.flags & RCONN_ANY_ROLE) {
		/* nothing else to ask: ping, so a hung server is noticed here too */
		redisAsyncCommand(rc->ctx, rconn_on_setup, rc, "PING");
		rc->setup_cmd[rc->setup_pending++] = "PING";
	} else
		redisAsyncCommand(rc->ctx, rconn_on_role, rc, "ROLE");
}

static void
rconn_on_disconnect(const redisAsyncContext *ac, int status)
{
	struct rconn	*rc = ac->data;
	const char	*why;

	(void)status;
	if (ac != rc->ctx)
		return;		/* one we gave up ourselves */
	rc->ctx = NULL;		/* hiredis frees it after this */
	why = rc->bad_reply != NULL ? rc->bad_reply : ac->errstr;
	rc->bad_reply = NULL;
	log_warnx("rconn_on_disconnect: %s redis %s: connection lost%s%s",
	    rc->who, rconn_name(rc), why[0] ? ": " : "", why);
	rconn_why(rc, 0, "connection lost%s%s", why[0] ? ": " : "", why);
	rconn_down(rc, 1);
}

/* A context to the server (host:port, or path when host is NULL), hooked to the loop. */
static void
rconn_open(struct rconn *rc, const char *host, int port, const char *path)
{
	redisAsyncContext	*ac;

	rc->state = RCONN_CONNECTING;
	/* hiredis 0.14 resolves a name here, blocking (docs/operations.md) */
	if (host == NULL)
		ac = redisAsyncConnectUnix(path);
	else
		ac = redisAsyncConnect(host, port);
	if (ac == NULL || ac->err) {
		log_warnx("rconn_connect: %s redis %s: %s", rc->who, rconn_name(rc),
		    ac ? ac->errstr : "out of memory");
		rconn_why(rc, 0, "%s", ac ? ac->errstr : "out of memory");
		if (ac != NULL)
			redisAsyncFree(ac);
		rconn_down(rc, 0);
		return;
	}
	ac->data = rc;
	rc->ctx = ac;
	rconn_guard(ac);
	if (redisLibeventAttach(ac, rc->base) != REDIS_OK) {
		rconn_down(rc, 0);
		return;
	}
	redisAsyncSetConnectCallback(ac, rconn_on_connect);
	redisAsyncSetDisconnectCallback(ac, rconn_on_disconnect);
	rconn_arm_timeout(rc, 0);	/* the connect and the setup too */
}

/* To the master the sentinels named. */
static void
rconn_connect_master(struct rconn *rc)
{
	rconn_open(rc, rc->master.host, rc->master.port, NULL);
}

/* One attempt: the sentinels first when there are, else the server itself. */
static void
rconn_connect(struct rconn *rc)
{
	if (rc->set.nsentinels > 0) {
		rc->state = RCONN_ASKING;
		rconn_ask(rc, RCONN_FIND);
	} else if (rc->set.target.path[0])
		rconn_open(rc, NULL, 0, rc->set.target.path);
	else
		rconn_open(rc, rc->set.target.host, rc->set.target.port, NULL);
}

/* Before a command: room for its callback; -1 when it cannot go. */
static int
rconn_begin(struct rconn *rc, rconn_reply_cb cb, void *priv, uint64_t block_ms)
{
	if (rc->state != RCONN_UP || rc->ctx == NULL)
		return -1;
	if (rconn_push(rc, cb, priv, block_ms) == -1) {
		rconn_drop(rc, "out of memory");
		return -1;
	}
	return 0;
}

/* After it: hiredis took it (rv REDIS_OK), or the connection goes. */
static int
rconn_end(struct rconn *rc, int rv)
{
	if (rv != REDIS_OK) {
		rc->n--;	/* never sent: not its owner's loss to hear of */
		rconn_drop(rc, "cannot queue a command");
		return -1;
	}
	if (rc->n == 1)
		rconn_rearm(rc);
	return 0;
}

int
rconn_command(struct rconn *rc, rconn_reply_cb cb, void *priv,
    uint64_t block_ms, const char *fmt, ...)
{
	va_list	ap;
	int	rv;

	if (rconn_begin(rc, cb, priv, block_ms) == -1)
		return -1;
	va_start(ap, fmt);
	rv = redisvAsyncCommand(rc->ctx, rconn_on_reply, rc, fmt, ap);
	va_end(ap);
	return rconn_end(rc, rv);
}

int
rconn_command_argv(struct rconn *rc, rconn_reply_cb cb, void *priv,
    uint64_t block_ms, int argc, const char **argv, const size_t *argvlen)
{
	if (rconn_begin(rc, cb, priv, block_ms) == -1)
		return -1;
	return rconn_end(rc, redisAsyncCommandArgv(rc->ctx, rconn_on_reply, rc,
	    argc, argv, argvlen));
}

struct rconn *
rconn_new(struct event_base *base, const char *who, rconn_state_cb state,
    void *arg)
{
	struct rconn	*rc;

	if ((rc = calloc(1, sizeof(*rc))) == NULL)
		return NULL;
	rc->base = base;
	rc->state_cb = state;
	rc->arg = arg;
	if ((rc->who = strdup(who)) == NULL ||
	    (rc->ev_retry = evtimer_new(base, rconn_on_retry, rc)) == NULL ||
	    (rc->ev_timeout = evtimer_new(base, rconn_on_timeout, rc)) == NULL ||
	    (rc->ev_stimeout = evtimer_new(base, rconn_on_stimeout, rc)) == NULL) {
		rconn_free(rc);
		return NULL;
	}
	return rc;
}

static void
rconn_settings_free(struct rconn_settings *s)
{
	free(s->master_name);
	free(s->username);
	free(s->password);
	free(s->sentinel_username);
	free(s->sentinel_password);
	memset(s, 0, sizeof(*s));
}

/* *dst = a copy of s (NULL stays NULL); -1 on ENOMEM. */
static int
rconn_dup(char **dst, const char *s)
{
	*dst = NULL;
	return s != NULL && (*dst = strdup(s)) == NULL ? -1 : 0;
}

static int
rconn_streq(const char *a, const char *b)
{
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static int
rconn_settings_equal(const struct rconn_settings *a,
    const struct rconn_settings *b)
{
	return memcmp(&a->target, &b->target, sizeof(a->target)) == 0 &&
	    a->nsentinels == b->nsentinels &&
	    memcmp(a->sentinel, b->sentinel,
	    a->nsentinels * sizeof(a->sentinel[0])) == 0 &&
	    rconn_streq(a->master_name, b->master_name) &&
	    rconn_streq(a->username, b->username) &&
	    rconn_streq(a->password, b->password) &&
	    rconn_streq(a->sentinel_username, b->sentinel_username) &&
	    rconn_streq(a->sentinel_password, b->sentinel_password) &&
	    a->flags == b->flags;
}

int
rconn_set_target(struct rconn *rc, const struct config_redis *r, int flags)
{
	struct rconn_settings	s;
	size_t			i;
	int			moved;

	memset(&s, 0, sizeof(s));
	s.target = r->target;
	s.nsentinels = r->nsentinels;
	for (i = 0; i < s.nsentinels && i < CONFIG_MAX_SENTINELS; i++)
		s.sentinel[i] = r->sentinel[i];
	s.flags = flags;
	if (rconn_dup(&s.master_name, r->master_name) == -1 ||
	    rconn_dup(&s.username, r->username) == -1 ||
	    rconn_dup(&s.password, r->password) == -1 ||
	    rconn_dup(&s.sentinel_username, r->sentinel_username) == -1 ||
	    rconn_dup(&s.sentinel_password, r->sentinel_password) == -1) {
		rconn_settings_free(&s);
		return -1;
	}
	/* config_load refuses it; a caller that built its own must not crash us */
	if (s.master_name == NULL)
		s.nsentinels = 0;
	rc->timeout_ms = r->timeout_ms;
	moved = !rc->configured || !rconn_settings_equal(&s, &rc->set);
	if (!moved) {
		rconn_settings_free(&s);
		return 0;
	}
	if (rc->configured)
		rconn_drop(rc, "the configuration names another target");
	rconn_unhook_sentinel(rc);	/* a question about the old target */
	rc->goal = RCONN_IDLE;
	rconn_settings_free(&rc->set);
	rc->set = s;
	memset(&rc->master, 0, sizeof(rc->master));
	rc->sfirst = 0;
	rconn_set_name(rc);
	rc->configured = 1;
	rc->failures = 0;
	rc->state = RCONN_DOWN;
	evtimer_del(rc->ev_retry);
	rconn_connect(rc);
	return 0;
}

void
rconn_free(struct rconn *rc)
{
	if (rc == NULL)
		return;
	rconn_unhook(rc);
	if (rc->ev_stimeout != NULL)
		rconn_unhook_sentinel(rc);
	rconn_flush(rc);
	if (rc->ev_stimeout)
		event_free(rc->ev_stimeout);
	if (rc->ev_retry)
		event_free(rc->ev_retry);
	if (rc->ev_timeout)
		event_free(rc->ev_timeout);
	rconn_settings_free(&rc->set);
	free(rc->fifo);
	free(rc->who);
	free(rc);
}

int
rconn_script_sha(const char *text, size_t len, char sha[41])
{
	unsigned char	md[EVP_MAX_MD_SIZE];
	unsigned int	mdlen, k;

	if (EVP_Digest(text, len, md, &mdlen, EVP_sha1(), NULL) != 1 ||
	    mdlen != 20)
		return -1;
	for (k = 0; k < mdlen; k++)
		snprintf(sha + 2 * k, 3, "%02x", md[k]);
	return 0;
}
