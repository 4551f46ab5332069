/* rconn: one Redis connection on the loop: connect, AUTH, SELECT, a hung server noticed, reconnects with backoff (Debian's hiredis 0.14 has none of it). */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <hiredis/adapters/libevent.h>

#include "chatmon/log.h"
#include "chatmon/rconn.h"

/*
 * Redis answers in the order it was asked, so the callbacks of the commands
 * in flight wait in a FIFO and every reply is for its head: one hiredis
 * callback for all, and no allocation per command once the FIFO has grown.
 *
 * A context rconn gives up on is unhooked (ctx = NULL) before hiredis frees
 * it; the callbacks hiredis then runs for it see a context that is not
 * theirs and return, and rconn itself tells the owners of the commands in
 * flight (reply NULL).
 */

#define RCONN_BACKOFF_MIN_MS	100
#define RCONN_BACKOFF_MAX_MS	10000

struct rconn_pending {
	rconn_reply_cb	 cb;
	void		*priv;
	uint64_t	 block_ms;
};

enum rconn_state {
	RCONN_DOWN,		/* waiting to reconnect */
	RCONN_CONNECTING,	/* TCP, then AUTH and SELECT */
	RCONN_UP,
};

struct rconn {
	struct event_base	*base;
	char			*who;
	rconn_state_cb		 state_cb;
	void			*arg;
	/* settings */
	struct config_redis_target target;
	char			*password;
	uint64_t		 timeout_ms;
	int			 configured;
	/* the connection */
	redisAsyncContext	*ctx;		/* ours; NULL once given up */
	enum rconn_state	 state;
	int			 setup_pending;	/* AUTH/SELECT/PING replies to come */
	unsigned		 failures;	/* in a row: the backoff's exponent */
	struct event		*ev_retry;
	struct event		*ev_timeout;
	/* commands in flight, oldest first */
	struct rconn_pending	*fifo;
	size_t			 cap, head, n;
};

static void	rconn_connect(struct rconn *);

const char *
rconn_name(const struct rconn *rc)
{
	return rc->target.path[0] ? rc->target.path : rc->target.host;
}

int
rconn_up(const struct rconn *rc)
{
	return rc != NULL && rc->state == RCONN_UP;
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
rconn_down(struct rconn *rc, int lost)
{
	redisAsyncContext	*ac = rc->ctx;

	rc->ctx = NULL;
	if (ac != NULL)
		redisAsyncFree(ac);	/* deferred by hiredis inside its callbacks */
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
	rconn_down(rc, lost);
}

static void
rconn_on_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	rconn_drop(arg, "no reply within redis.timeout");
}

static void
rconn_on_retry(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	rconn_connect(arg);
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
	else
		rc->failures = 0;
	p = rconn_pop(rc);
	rconn_rearm(rc);
	if (p.cb != NULL)
		p.cb(r, p.priv);
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
		rconn_down(rc, 0);
		return;
	}
	if (--rc->setup_pending > 0)
		return;
	evtimer_del(rc->ev_timeout);
	rc->state = RCONN_UP;
	rc->state_cb(rc->arg, 1, 0);
}

static void
rconn_on_connect(const redisAsyncContext *ac, int status)
{
	struct rconn	*rc = ac->data;

	if (ac != rc->ctx)
		return;
	if (status != REDIS_OK) {
		log_warnx("rconn_on_connect: %s redis %s: %s", rc->who,
		    rconn_name(rc), ac->errstr);
		rc->ctx = NULL;		/* hiredis frees a context whose connect failed */
		rconn_down(rc, 0);
		return;
	}
	rc->setup_pending = 0;
	if (rc->password != NULL) {
		redisAsyncCommand(rc->ctx, rconn_on_setup, rc, "AUTH %s",
		    rc->password);
		rc->setup_pending++;
	}
	if (rc->target.db != 0) {
		redisAsyncCommand(rc->ctx, rconn_on_setup, rc, "SELECT %d",
		    rc->target.db);
		rc->setup_pending++;
	}
	if (rc->setup_pending == 0) {
		/* nothing to set up: ping, so a hung server is noticed here too */
		redisAsyncCommand(rc->ctx, rconn_on_setup, rc, "PING");
		rc->setup_pending++;
	}
}

static void
rconn_on_disconnect(const redisAsyncContext *ac, int status)
{
	struct rconn	*rc = ac->data;

	(void)status;
	if (ac != rc->ctx)
		return;		/* one we gave up ourselves */
	log_warnx("rconn_on_disconnect: %s redis %s: connection lost%s%s",
	    rc->who, rconn_name(rc), ac->errstr[0] ? ": " : "", ac->errstr);
	rc->ctx = NULL;		/* hiredis frees it after this */
	rconn_down(rc, 1);
}

static void
rconn_connect(struct rconn *rc)
{
	redisAsyncContext	*ac;

	if (rc->target.path[0])
		ac = redisAsyncConnectUnix(rc->target.path);
	else
		ac = redisAsyncConnect(rc->target.host, rc->target.port);
	if (ac == NULL || ac->err) {
		log_warnx("rconn_connect: %s redis %s: %s", rc->who, rconn_name(rc),
		    ac ? ac->errstr : "out of memory");
		if (ac != NULL)
			redisAsyncFree(ac);
		rconn_down(rc, 0);
		return;
	}
	ac->data = rc;
	rc->ctx = ac;
	rc->state = RCONN_CONNECTING;
	if (redisLibeventAttach(ac, rc->base) != REDIS_OK) {
		rconn_down(rc, 0);
		return;
	}
	redisAsyncSetConnectCallback(ac, rconn_on_connect);
	redisAsyncSetDisconnectCallback(ac, rconn_on_disconnect);
	rconn_arm_timeout(rc, 0);	/* the connect and the setup too */
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
	    (rc->ev_timeout = evtimer_new(base, rconn_on_timeout, rc)) == NULL) {
		rconn_free(rc);
		return NULL;
	}
	return rc;
}

int
rconn_set_target(struct rconn *rc, const struct config_redis_target *t,
    const char *password, uint64_t timeout_ms)
{
	char	*pw = NULL;
	int	 moved;

	if (password != NULL && (pw = strdup(password)) == NULL)
		return -1;
	moved = !rc->configured || memcmp(t, &rc->target, sizeof(*t)) != 0 ||
	    (pw == NULL) != (rc->password == NULL) ||
	    (pw != NULL && strcmp(pw, rc->password) != 0);
	free(rc->password);
	rc->password = pw;
	rc->target = *t;
	rc->timeout_ms = timeout_ms;
	if (!moved)
		return 0;
	if (rc->configured)
		rconn_drop(rc, "the configuration names another target");
	rc->configured = 1;
	rc->failures = 0;
	evtimer_del(rc->ev_retry);
	rconn_connect(rc);
	return 0;
}

void
rconn_free(struct rconn *rc)
{
	redisAsyncContext	*ac;

	if (rc == NULL)
		return;
	if ((ac = rc->ctx) != NULL) {
		rc->ctx = NULL;
		redisAsyncFree(ac);
	}
	rconn_flush(rc);
	if (rc->ev_retry)
		event_free(rc->ev_retry);
	if (rc->ev_timeout)
		event_free(rc->ev_timeout);
	free(rc->fifo);
	free(rc->password);
	free(rc->who);
	free(rc);
}
