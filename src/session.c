/* session: agent <-> backend WebSocket pairs on libwebsockets, on the caller's libevent loop. */
#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <sys/resource.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <libwebsockets.h>

#include "chatmon/log.h"
#include "chatmon/logrepeat.h"
#include "chatmon/access.h"
#include "chatmon/jwt.h"
#include "chatmon/lwsctx.h"
#include "chatmon/msgq.h"
#include "chatmon/peercount.h"
#include "chatmon/session.h"
#include "chatmon/util.h"

/*
 * One session is one agent connection and the upstream connection opened
 * for it. Each direction has a msgq: a message is reassembled at the tail of
 * the queue towards its destination, offered to the relay when complete,
 * and sent from the head, one lws_write per WRITEABLE callback, in chunks so
 * that one big message does not hold the loop; a message that finds its
 * destination idle is written at once (session_kick).
 *
 * A session starts when its agent's TCP connection is accepted (so that
 * the handshake is timed and counted against the limits), becomes an agent
 * when the WebSocket upgrade is accepted, and connects upstream then.
 *
 * Lifetime: the session is freed when both of its connections are gone.
 * Each lws callback that ends a connection (CLOSED, CLIENT_CLOSED,
 * CLIENT_CONNECTION_ERROR, and WSI_DESTROY as the last word) detaches that
 * side; a close the other side must send is stored on the session and sent
 * from that side's own WRITEABLE callback, after its queue has drained.
 */

#define SESSION_PROTOCOL	"chatmon-relay"
/*
 * lws's per-connection receive buffer: a message longer than this comes
 * in several callbacks and is put together in the msgq. 4 KiB holds a chat
 * turn whole and is a quarter of what 16 KiB cost each connection.
 */
#define SESSION_RX_BUFFER	4096
/* idle queue buffers kept for the next messages (4 KiB each: 4 MiB at most) */
#define SESSION_POOL_BUFS	1024
#define SESSION_WRITE_CHUNK	65536
#define SESSION_ID_MAX		ACCESS_AGENT_ID_MAX
#define SESSION_TOKEN_MAX	JWT_MAX_TOKEN
#define SESSION_REASON_MAX	123	/* RFC 6455: close payload <= 125 */
/*
 * The longest backend path and query lws 4.1.6's client sends whole: it
 * writes the request line "GET PATH HTTP/1.1\r\n" with a 2048-byte
 * snprintf and cuts the rest. A longer one is refused 414, never cut.
 */
#define SESSION_PATH_MAX	(2047 - 15)
/*
 * File descriptors: an agent costs two (its own, its upstream's). Agents
 * are admitted while RLIMIT_NOFILE, less what was open at start and
 * SESSION_FD_RESERVE (admin clients, Redis reconnects, the spool), has
 * room for them; past that they get 503. Whatever else happens, an
 * accepted fd within SESSION_FD_SPARE of the limit is answered 503 and
 * closed at once, so accept() itself never fails (lws would retry it for
 * ever and the agent would hang).
 */
#define SESSION_FD_RESERVE	16
#define SESSION_FD_SPARE	8
/*
 * A connection refused at accept for its address's limit is logged once
 * per address and interval, with how many more were refused since: a
 * flood of connections must not become a flood of lines.
 */
#define SESSION_REFUSED_LOG_MS		10000
#define SESSION_REFUSED_LOG_SLOTS	16
#define SESSION_MSG_BINARY	1u

enum session_side {
	SIDE_AGENT,
	SIDE_UP,
};

enum session_up_state {
	UP_NONE,	/* not asked yet */
	UP_CONNECTING,
	UP_OPEN,
	UP_GONE,
};

struct session_close {
	int		 pending;
	uint16_t	 code;		/* 0: close without a status code */
	char		 reason[SESSION_REASON_MAX + 1];
	size_t		 reason_len;
};

struct session_hdr {			/* a request header passed upstream */
	const char	*name;		/* lws form: "authorization:" */
	char		*value;
};

struct session {
	struct session_server	*srv;
	struct session		*prev, *next;
	struct lws		*wsi[2];	/* by enum session_side */
	struct msgq		*q[2];		/* messages towards that side */
	struct msgq		*inj;		/* chatmond's own frames to the agent */
	uint32_t		 to_agent_queued;	/* backend messages queued to the agent, ever */
	uint32_t		 to_agent_sent;		/* and sent in full */
	struct session_close	 close[2];	/* to send to that side */
	int			 closing[2];	/* lws is closing that side: ask nothing more of it */
	int			 agent;		/* upgraded: counted in agents_active */
	int			 in_msg[2];	/* a message from that side is under way */
	uint64_t		 msg_ms[2];	/* and the message_timeout it started under */
	int			 rx_dead[2];	/* that side timed out: drop what it sends */
	struct event		*tmo[2];	/* handshake, then that side's message */
	char			 addr[64];	/* the agent's address */
	int			 paused[2];	/* reading from that side stopped */
	int			 agent_busy;	/* the relay holds the agent's reading (session_busy) */
	/*
	 * The stall watch (limits.stall_timeout), made the first time a
	 * producer is paused or leaves with something still queued for the
	 * other side; NULL in a session that has always flowed.
	 */
	struct event		*stall;
	uint64_t		 took_ns[2];	/* while watched: when that side last took a chunk */
	enum session_up_state	 up;
	int			 up_connected;	/* TCP up: a later failure is a refusal */
	unsigned		 up_gen;	/* the upstream it was sent to (srv->up_gen then) */
	const char		*up_cert_why;	/* OpenSSL's reason for failing the backend's certificate */
	struct relay_peer	 peer;
	char			 agent_id[SESSION_ID_MAX + 1];
	char			 shop[SESSION_ID_MAX + 1];	/* shop_id's ("" none) */
	char			 queue[SESSION_ID_MAX + 1];	/* queue_id's */
	char			*up_path;	/* upstream path + agent's path and query */
	char			*offered;	/* Sec-WebSocket-Protocol offered by the agent */
	char			*answered;	/* the one the agent was answered with */
	char			*origin;
	struct session_hdr	 hdrs[3];	/* Authorization, Cookie, X-Forwarded-For */
	size_t			 nhdrs;
};

/* The live settings, copied from a config so a reload never leaves a session dangling. */
struct session_settings {
	struct config_ws_url	 upstream;
	enum config_agent_id_from agent_id_from;
	char			 agent_id_name[128];
	int			 agent_id_jwt;		/* the source holds a token */
	enum config_agent_id_from shop_id_from;
	char			 shop_id_name[128];	/* "": the connection names no shop */
	enum config_agent_id_from queue_id_from;
	char			 queue_id_name[128];
	uint64_t		 max_message;
	uint64_t		 queue_bytes;
	uint64_t		 max_connections;
	uint64_t		 max_per_ip;		/* 0: no limit */
	uint64_t		 handshake_ms;
	uint64_t		 message_ms;
	uint64_t		 stall_ms;
	int			 upstream_verify;	/* upstream_tls.verify */
};

struct session_server {
	struct event_base	*base;
	struct lws_context	*ctx;
	struct peercount	*peers;		/* connections by agent address */
	struct logrepeat	*refused_log;	/* session_peer_check's lines */
	struct msgq_pool	*bufs;		/* the idle sessions' queue buffers, shared */
	const struct timeval	*tmo_handshake;	/* libevent common timeouts */
	const struct timeval	*tmo_message;
	uint64_t		 fd_sessions;	/* sessions the fd limit has room for */
	int			 fd_floor;	/* an accepted fd this high is refused */
	struct relay		*relay;
	struct metrics		*metrics;
	struct session_settings	 set;
	/*
	 * The running configuration, for what a handshake reads of it (the
	 * allowed origins, the trusted proxies): borrowed, replaced by
	 * session_server_set_config before the old one is freed.
	 */
	const struct config	*cfg;
	int			 listen_tls;	/* the listener speaks TLS (fixed at start) */
	void			*ssl_ctx;	/* the listener's SSL_CTX, lws's */
	struct lwsctx_tls	*tls;		/* its certificate */
	struct lwsctx_tls	*tls_next;	/* read by session_server_prepare */
	struct jwt_keys		*jwt;		/* the agents' token keys */
	struct jwt_keys		*jwt_next;
	struct session		*sessions;
	size_t			 count;
	uint64_t		 serial;
	int			 draining;
	int			 upstream_ok;	/* the last connect: 1, 0, or -1 none yet */
	unsigned		 up_gen;	/* counts the reloads that changed the upstream */
	void			(*drained)(void *);
	void			*drained_arg;
};

static int	session_cb(struct lws *, enum lws_callback_reasons, void *,
		    void *, size_t);
static void	session_up_failed(struct session *, const char *);
static int	session_waiting(struct session *, enum session_side);
static void	session_watch(struct session *);
static void	session_stall_arm(struct session *, uint64_t);

static const struct lws_protocols session_protocols[] = {
	{ SESSION_PROTOCOL, session_cb, 0, SESSION_RX_BUFFER, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static const char *
session_side_name(enum session_side side)
{
	return side == SIDE_AGENT ? "agent" : "upstream";
}

static const char *
session_agent_name(const struct session *s)
{
	return s->agent_id[0] ? s->agent_id : "-";
}

/*
 * Has lws close wsi from its loop, not from inside the caller (which may
 * be an lws callback on it). lws_set_timeout only schedules that: on a
 * foreign loop nothing wakes lws for it, so from a libevent callback (a
 * timer, a signal) the socket stayed open until lws next woke, up to its
 * 10 s idle timer, holding its place in the limits. lws_cancel_service
 * wakes it now; inside an lws callback it costs one spare wakeup.
 */
static void
session_kill(struct lws *wsi, enum pending_timeout why)
{
	lws_set_timeout(wsi, why, LWS_TO_KILL_ASYNC);
	lws_cancel_service(lws_get_context(wsi));
}

/* --- settings ----------------------------------------------------------- */

static void
session_settings_from(struct session_settings *set, const struct config *cfg)
{
	memset(set, 0, sizeof(*set));
	set->upstream = cfg->upstream_url;
	set->agent_id_from = cfg->agent_id_from;
	set->agent_id_jwt = cfg->agent_id_jwt;
	snprintf(set->agent_id_name, sizeof(set->agent_id_name), "%s",
	    cfg->agent_id_name);
	set->shop_id_from = cfg->shop_id_from;
	snprintf(set->shop_id_name, sizeof(set->shop_id_name), "%s",
	    cfg->shop_id_name != NULL ? cfg->shop_id_name : "");
	set->queue_id_from = cfg->queue_id_from;
	snprintf(set->queue_id_name, sizeof(set->queue_id_name), "%s",
	    cfg->queue_id_name != NULL ? cfg->queue_id_name : "");
	set->max_message = cfg->limits.max_message;
	set->queue_bytes = cfg->limits.queue_bytes;
	set->max_connections = cfg->limits.max_connections;
	set->max_per_ip = cfg->limits.max_connections_per_ip;
	set->handshake_ms = cfg->limits.handshake_timeout_ms;
	set->message_ms = cfg->limits.message_timeout_ms;
	set->stall_ms = cfg->limits.stall_timeout_ms;
	set->upstream_verify = cfg->upstream_tls.verify;
}

/*
 * Every handshake and every message waits the same time: libevent's common
 * timeouts keep each in a queue instead of its heap. A new duration gets a
 * new queue; timers already running keep theirs.
 */
static const struct timeval *
session_common_timeout(struct session_server *srv, uint64_t ms)
{
	struct timeval	tv;

	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000 * 1000);
	return event_base_init_common_timeout(srv->base, &tv);
}

void
session_server_set_config(struct session_server *srv, const struct config *cfg)
{
	struct session_settings	old = srv->set;
	struct session		*s;

	session_settings_from(&srv->set, cfg);
	srv->cfg = cfg;
	/* another upstream: not tried yet, whatever the old one did */
	if (old.upstream.tls != srv->set.upstream.tls ||
	    old.upstream.port != srv->set.upstream.port ||
	    strcmp(old.upstream.host, srv->set.upstream.host) != 0 ||
	    strcmp(old.upstream.path, srv->set.upstream.path) != 0) {
		srv->up_gen++;
		srv->upstream_ok = -1;
	}
	/* a reload to a source without tokens drops the keys */
	jwt_keys_free(srv->jwt);
	srv->jwt = srv->jwt_next;
	srv->jwt_next = NULL;
	if (srv->tls_next != NULL) {
		/* before the listener exists, its callback takes it from srv->tls */
		if (srv->ssl_ctx == NULL || lwsctx_tls_use(srv->tls_next,
		    srv->ssl_ctx) == 0) {
			if (srv->ssl_ctx != NULL)
				log_info("session_server_set_config: tls: new "
				    "handshakes present the certificate of %s",
				    cfg->tls.cert);
			lwsctx_tls_free(srv->tls);
			srv->tls = srv->tls_next;
		} else
			log_warnx("session_server_set_config: tls: keeping the "
			    "certificate in use");
		srv->tls_next = NULL;
	}
	/*
	 * limits.stall_timeout applies at once: a stall being watched is
	 * judged again now by the new limit (found by review: a timer armed
	 * for the old 30 s ran out, and the log named the new 1 s)
	 */
	if (old.stall_ms != srv->set.stall_ms)
		for (s = srv->sessions; s != NULL; s = s->next)
			if (s->stall != NULL && evtimer_pending(s->stall, NULL))
				session_stall_arm(s, 0);
	if (srv->tmo_handshake == NULL || old.handshake_ms != srv->set.handshake_ms)
		srv->tmo_handshake = session_common_timeout(srv, srv->set.handshake_ms);
	if (srv->tmo_message == NULL || old.message_ms != srv->set.message_ms)
		srv->tmo_message = session_common_timeout(srv, srv->set.message_ms);
}

/*
 * What cfg's files hold, read and checked: the agents' token keys, the
 * listener's certificate and key, the upstream's CA. *jwt and *tls are
 * NULL when the configuration has none; the caller frees them.
 */
static int
session_read_files(const struct config *cfg, struct lwsctx_tls **tls,
    struct jwt_keys **jwt, struct sbuf *errs)
{
	size_t	mark = errs->len;
	int	rc = 0;

	/* each error where the configuration names the file */
	*tls = NULL;
	*jwt = NULL;
	if (cfg->agent_id_jwt && (*jwt = jwt_keys_load(cfg->auth.jwt_key,
	    errs)) == NULL) {
		(void)config_blame(cfg, "auth.jwt_key", errs, mark);
		rc = -1;
	}
	mark = errs->len;
	if (cfg->tls.cert != NULL && (*tls = lwsctx_tls_load(&cfg->tls,
	    errs)) == NULL) {
		/* the key's errors name it: the rest are the certificate's */
		(void)config_blame(cfg, strncmp(sbuf_str(errs) + mark,
		    "tls.key ", 8) == 0 ? "tls.key" : "tls.cert", errs, mark);
		rc = -1;
	}
	mark = errs->len;
	if (cfg->upstream_tls.ca != NULL &&
	    lwsctx_ca_check("upstream_tls.ca", cfg->upstream_tls.ca, errs) == -1) {
		(void)config_blame(cfg, "upstream_tls.ca", errs, mark);
		rc = -1;
	}
	return rc;
}

int
session_check(const struct config *cfg, struct sbuf *errs)
{
	struct lwsctx_tls	*tls;
	struct jwt_keys		*jwt;
	int			 rc;

	rc = session_read_files(cfg, &tls, &jwt, errs);
	lwsctx_tls_free(tls);
	jwt_keys_free(jwt);
	return rc;
}

int
session_server_prepare(struct session_server *srv, const struct config *cfg,
    struct sbuf *errs)
{
	struct lwsctx_tls	*tls;
	struct jwt_keys		*jwt;

	lwsctx_tls_free(srv->tls_next);
	jwt_keys_free(srv->jwt_next);
	srv->tls_next = NULL;
	srv->jwt_next = NULL;
	if (session_read_files(cfg, &tls, &jwt, errs) == -1) {
		lwsctx_tls_free(tls);
		jwt_keys_free(jwt);
		return -1;
	}
	srv->jwt_next = jwt;
	if (srv->ctx != NULL && (tls != NULL) != srv->listen_tls) {
		/* the listener was made with TLS or without: that stays */
		log_warnx("session_server_prepare: tls cannot be turned %s live "
		    "(restart chatmond)", srv->listen_tls ? "off" : "on");
		lwsctx_tls_free(tls);
		tls = NULL;
	}
	srv->tls_next = tls;
	return 0;
}

/* --- closing ------------------------------------------------------------ */

/*
 * Asks `side` to close with code and reason once its queue has drained.
 * The first request wins: it carries the real cause (a peer's own close
 * code, a size violation) and later generic ones must not replace it.
 * An upstream still connecting is aborted only when nothing is queued for
 * it: the agent's early messages are promised to the backend (docs/relay.md)
 * even when the agent closes or drops before the backend answers, so the
 * connect goes on (limits.connect_timeout bounds it) and CLIENT_ESTABLISHED
 * sends them, then this close.
 */
static void
session_close_side(struct session *s, enum session_side side, uint16_t code,
    const char *fmt, ...)
{
	struct session_close	*c = &s->close[side];
	va_list			 ap;
	int			 n;

	if (c->pending || s->closing[side] || s->wsi[side] == NULL)
		return;
	c->pending = 1;
	c->code = code;
	va_start(ap, fmt);
	n = vsnprintf(c->reason, sizeof(c->reason), fmt, ap);
	va_end(ap);
	c->reason_len = n < 0 ? 0 : (size_t)n < sizeof(c->reason) ?
	    (size_t)n : sizeof(c->reason) - 1;
	if (side == SIDE_UP && s->up == UP_CONNECTING) {
		if (msgq_count(s->q[side]) > 0)
			return;
		/* nothing to flush: abort the connect attempt */
		s->closing[side] = 1;	/* its error is no upstream failure */
		session_kill(s->wsi[side], PENDING_TIMEOUT_CLOSE_SEND);
		return;
	}
	lws_callback_on_writable(s->wsi[side]);
}

/* Forwards a peer's close frame payload (code + reason) to the other side. */
static void
session_forward_close(struct session *s, enum session_side to,
    const unsigned char *in, size_t len)
{
	uint16_t	code;

	if (len < 2) {
		session_close_side(s, to, 0, "%s", "");
		return;
	}
	code = (uint16_t)(in[0] << 8 | in[1]);
	/*
	 * Only a code RFC 6455 7.4 lets an endpoint send goes on: never 1005,
	 * 1006 or 1015, nor one it does not define (below 1000, 1004,
	 * 1016-2999, above 4999). lws fails a peer that sends one (patch
	 * 0018), so this only guards the rule.
	 */
	if (code < 1000 || code == 1004 || code == 1005 || code == 1006 ||
	    (code >= 1015 && code < 3000) || code > 4999)
		code = 1001;
	session_close_side(s, to, code, "%.*s",
	    (int)(len - 2 > SESSION_REASON_MAX ? SESSION_REASON_MAX : len - 2),
	    (const char *)in + 2);
}

/* Frees what a session owns; it must already be off the server's list. */
static void
session_release(struct session *s)
{
	size_t	i;

	if (s->tmo[0] != NULL)
		event_free(s->tmo[0]);
	if (s->tmo[1] != NULL)
		event_free(s->tmo[1]);
	if (s->stall != NULL)
		event_free(s->stall);
	msgq_free(s->q[SIDE_AGENT]);
	msgq_free(s->q[SIDE_UP]);
	msgq_free(s->inj);
	for (i = 0; i < s->nhdrs; i++)
		free(s->hdrs[i].value);
	free(s->up_path);
	free(s->offered);
	free(s->answered);
	free(s->origin);
	free(s);
}

static void
session_free(struct session *s)
{
	struct session_server	*srv = s->srv;

	if (s->prev)
		s->prev->next = s->next;
	else
		srv->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	srv->count--;
	peercount_del(srv->peers, s->addr);
	srv->metrics->queued_bytes -= msgq_bytes(s->q[SIDE_AGENT]) +
	    msgq_bytes(s->q[SIDE_UP]);
	if (s->agent) {
		/* per connection: debug; the counts are in /metrics */
		log_debug("session_free: agent=%s session=%" PRIu64 " closed",
		    session_agent_name(s), s->peer.session);
		/* a session torn down with the context never saw its agent detach */
		relay_peer_closed(srv->relay, &s->peer);
	}
	session_release(s);
	if (srv->draining && srv->count == 0 && srv->drained != NULL) {
		void (*done)(void *) = srv->drained;

		srv->drained = NULL;
		done(srv->drained_arg);
	}
}

/*
 * One side's connection is gone: forget it, tell the other side, and free
 * the session when neither is left. Idempotent, so every lws callback that
 * may end a connection can call it.
 */
static void
session_detach(struct session *s, enum session_side side)
{
	enum session_side	 other = side == SIDE_AGENT ? SIDE_UP : SIDE_AGENT;
	struct metrics		*m = s->srv->metrics;

	if (s->wsi[side] == NULL)
		return;
	lws_set_opaque_user_data(s->wsi[side], NULL);
	s->wsi[side] = NULL;
	evtimer_del(s->tmo[side]);
	if (side == SIDE_AGENT) {
		if (s->agent) {
			m->agents_active--;
			relay_peer_closed(s->srv->relay, &s->peer);
		}
	} else {
		if (s->up == UP_OPEN)
			m->upstream_active--;
		else if (s->up == UP_CONNECTING && !s->closing[SIDE_UP])
			session_up_failed(s, "no answer to the upgrade");
		s->up = UP_GONE;
	}
	/* what was waiting to go to the gone side is lost with it */
	m->queued_bytes -= msgq_bytes(s->q[side]);
	msgq_clear(s->q[side]);
	if (side == SIDE_AGENT)
		msgq_clear(s->inj);
	if (s->wsi[other] != NULL) {
		if (side == SIDE_AGENT)
			session_close_side(s, other, 1001, "agent went away");
		else
			session_close_side(s, other, 1011,
			    "upstream connection lost");
		/* its close waits behind that: a side that never reads holds it */
		if (session_waiting(s, other))
			session_watch(s);
		return;
	}
	session_free(s);
}

/*
 * What a connect says of the upstream (/readyz): only of the one
 * configured now. One to an upstream a reload replaced says nothing of
 * it (found by review: a connect to the old one timing out took the
 * instance out of its load balancer's pool for good).
 */
static void
session_up_says(struct session *s, int ok)
{
	if (s->up_gen == s->srv->up_gen)
		s->srv->upstream_ok = ok;
}

/*
 * The upstream failed before it was open: counted, logged, and the agent
 * is told to come back later (1013), as for a refused connect. A refusal
 * after the backend answered is 1011 instead (session_cb).
 */
static void
session_up_failed(struct session *s, const char *why)
{
	struct session_server	*srv = s->srv;

	srv->metrics->upstream_failures++;
	session_up_says(s, 0);
	if (s->up_gen == srv->up_gen)
		log_warnx("session_up_failed: agent=%s: upstream %s:%d: %s",
		    session_agent_name(s), srv->set.upstream.host,
		    srv->set.upstream.port, why);
	else
		log_warnx("session_up_failed: agent=%s: the upstream before "
		    "the reload: %s", session_agent_name(s), why);
	session_close_side(s, SIDE_AGENT, 1013, "upstream unavailable: %s", why);
}

/* --- the request, copied for the upstream ------------------------------- */

/*
 * Percent-encodes src into out, keeping RFC 3986 unreserved characters and
 * those in keep. lws has lws_urlencode, but it encodes '/' and truncates
 * silently; a relay must neither change a path's shape nor cut it.
 */
static int
session_urlencode(struct sbuf *out, const char *src, size_t len,
    const char *keep)
{
	static const char	 hex[] = "0123456789ABCDEF";
	size_t			 i;
	unsigned char		 c;
	char			 e[3];

	for (i = 0; i < len; i++) {
		c = (unsigned char)src[i];
		if (isalnum(c) || strchr("-._~", c) != NULL ||
		    (c != '\0' && strchr(keep, c) != NULL)) {
			if (sbuf_append(out, (const char *)&c, 1) == -1)
				return -1;
			continue;
		}
		e[0] = '%';
		e[1] = hex[c >> 4];
		e[2] = hex[c & 15];
		if (sbuf_append(out, e, 3) == -1)
			return -1;
	}
	return 0;
}

/* A copy of a request header (all its occurrences), or NULL. */
static char *
session_hdr_dup(struct lws *wsi, enum lws_token_indexes tok)
{
	int	 n = lws_hdr_total_length(wsi, tok);
	char	*v;

	if (n <= 0 || (v = malloc((size_t)n + 1)) == NULL)
		return NULL;
	if (lws_hdr_copy(wsi, v, n + 1, tok) < 0) {
		free(v);
		return NULL;
	}
	return v;
}

/*
 * Whether the token chatmond verified comes in a source of this kind and
 * stays here: the backend has no use for it (auth.forward_token).
 */
static int
session_keeps_token(const struct session_server *srv,
    enum config_agent_id_from from)
{
	return srv->set.agent_id_jwt && !srv->cfg->auth.forward_token &&
	    srv->set.agent_id_from == from;
}

/* Whether the query argument "name=value" is the agent's token and stays here. */
static int
session_token_arg(const struct session_server *srv, const char *arg)
{
	size_t	n = strlen(srv->set.agent_id_name);

	return session_keeps_token(srv, CONFIG_AGENT_ID_QUERY) &&
	    strncmp(arg, srv->set.agent_id_name, n) == 0 &&
	    (arg[n] == '=' || arg[n] == '\0');
}

/*
 * The backend's path: the upstream URL's path, then the agent's path and
 * query. lws hands both over decoded, so they are encoded again. Each is
 * read whole, into room for all of it: nothing is cut.
 */
static char *
session_build_path(struct session_server *srv, struct lws *wsi)
{
	const char	*base = srv->set.upstream.path, *q, *path;
	char		*uri = NULL, *frag = NULL;
	struct sbuf	 p;
	size_t		 blen;
	int		 i, n, sep, size;
	char		*eq;

	sbuf_init(&p);
	q = strchr(base, '?');
	blen = q ? (size_t)(q - base) : strlen(base);
	if (blen > 0 && base[blen - 1] == '/')
		blen--;
	if (sbuf_append(&p, base, blen) == -1)
		goto err;
	size = lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) + 1;
	if ((uri = malloc((size_t)size)) == NULL)
		goto err;
	n = lws_hdr_copy(wsi, uri, size, WSI_TOKEN_GET_URI);
	path = n > 0 && uri[0] == '/' ? uri : "/";
	if (session_urlencode(&p, path, strlen(path), "/!$&'()*+,;=:@") == -1)
		goto err;
	sep = '?';
	if (q != NULL) {
		if (sbuf_append(&p, q, strlen(q)) == -1)
			goto err;
		sep = '&';
	}
	/* room for the whole query: any one argument fits */
	size = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS) + 1;
	if ((frag = malloc((size_t)size)) == NULL)
		goto err;
	for (i = 0; lws_hdr_copy_fragment(wsi, frag, size,
	    WSI_TOKEN_HTTP_URI_ARGS, i) >= 0; i++) {
		if (session_token_arg(srv, frag))
			continue;	/* the backend has no use for it */
		if (sbuf_printf(&p, "%c", sep) == -1)
			goto err;
		sep = '&';
		if ((eq = strchr(frag, '=')) == NULL) {
			if (session_urlencode(&p, frag, strlen(frag), "") == -1)
				goto err;
			continue;
		}
		if (session_urlencode(&p, frag, (size_t)(eq - frag), "") == -1 ||
		    sbuf_append(&p, "=", 1) == -1 ||
		    session_urlencode(&p, eq + 1, strlen(eq + 1), "") == -1)
			goto err;
	}
	if (p.s == NULL && sbuf_append(&p, "/", 1) == -1)
		goto err;
	free(uri);
	free(frag);
	return p.s;	/* ownership passes to the caller */
err:
	free(uri);
	free(frag);
	sbuf_free(&p);
	return NULL;
}

/*
 * The value of query argument `name` in out: its length, 0 when there is
 * none (or it is empty), -1 when it does not fit in out, or -2 when the
 * request has it more than once. Every argument is looked at, empty ones
 * too: every one goes to the backend (session_build_path), so a second
 * one could not be told from the one checked here. "name" without '=' is
 * the argument too, empty.
 */
static int
session_query_arg(struct lws *wsi, const char *name, char *out,
    size_t outlen)
{
	size_t	 klen = strlen(name), vlen;
	char	*arg;
	int	 i, n, size, rc = 0, found = 0;

	out[0] = '\0';
	/* room for the whole query: any one argument fits */
	size = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS) + 1;
	if ((arg = malloc((size_t)size)) == NULL)
		return -1;
	for (i = 0; (n = lws_hdr_copy_fragment(wsi, arg, size,
	    WSI_TOKEN_HTTP_URI_ARGS, i)) >= 0; i++) {
		if ((size_t)n < klen || strncmp(arg, name, klen) != 0 ||
		    (arg[klen] != '=' && arg[klen] != '\0'))
			continue;
		if (found++) {
			rc = -2;
			break;
		}
		vlen = (size_t)n - klen - (arg[klen] == '=');
		if (vlen >= outlen) {
			rc = -1;
			break;
		}
		memcpy(out, arg + (size_t)n - vlen, vlen + 1);
		rc = (int)vlen;
	}
	free(arg);
	if (rc < 0)
		out[0] = '\0';
	return rc;
}

/* session_hdr_custom_times's count of one custom header's name. */
struct session_hdr_count {
	const char	*name;		/* lower case, with its ':' */
	int		 nlen;
	int		 n;
};

static void
session_hdr_count_one(const char *name, int nlen, void *arg)
{
	struct session_hdr_count	*c = arg;

	if (nlen == c->nlen && memcmp(name, c->name, (size_t)nlen) == 0)
		c->n++;
}

/*
 * How many times the request has custom header key (lower case, with its
 * ':'). lws keeps each one given and lws_hdr_custom_copy reads the first
 * only (patch 0028 lists them all).
 */
static int
session_hdr_custom_times(struct lws *wsi, const char *key)
{
	struct session_hdr_count	c = { key, (int)strlen(key), 0 };

	if (lws_hdr_custom_name_foreach(wsi, session_hdr_count_one, &c) == -1)
		return 0;
	return c.n;
}

/*
 * The value of query argument or header `name` (from), as sent: its
 * length, 0 when there is none, -1 when it does not fit in out, or -2
 * when the request gives it more than once: chatmond would read one, and
 * the backend, or a proxy before chatmond that added its own after the
 * client's, might believe another (found by review for a header).
 */
static int
session_id_source(struct lws *wsi, enum config_agent_id_from from,
    const char *name, char *out, size_t outlen)
{
	char		 key[160], *p;
	int		 t, n;
	const unsigned char *ts;

	if (from == CONFIG_AGENT_ID_QUERY)
		return session_query_arg(wsi, name, out, outlen);
	out[0] = '\0';
	snprintf(key, sizeof(key), "%s:", name);
	/* a header lws knows by name is not among the custom ones */
	for (t = 0; t < WSI_TOKEN_COUNT; t++) {
		ts = lws_token_to_string((enum lws_token_indexes)t);
		if (ts != NULL && strcasecmp((const char *)ts, key) == 0) {
			/* lws links each repeat as a fragment of its own */
			if (lws_hdr_fragment_length(wsi,
			    (enum lws_token_indexes)t, 1) > 0)
				return -2;
			if (lws_hdr_total_length(wsi, (enum lws_token_indexes)t) >=
			    (int)outlen)
				return -1;
			n = lws_hdr_copy(wsi, out, (int)outlen,
			    (enum lws_token_indexes)t);
			return n < 0 ? 0 : n;
		}
	}
	for (p = key; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	if (session_hdr_custom_times(wsi, key) > 1)
		return -2;
	if ((n = lws_hdr_custom_length(wsi, key, (int)strlen(key))) >= (int)outlen)
		return -1;
	n = lws_hdr_custom_copy(wsi, out, (int)outlen, key, (int)strlen(key));
	return n < 0 ? 0 : n;
}

/*
 * The agent id a token names, verified (docs/security.md, "Agent
 * tokens"): 0 with s->agent_id set and *raw, *rawlen narrowed to the
 * token itself, or -1 with *why. The token comes as the query argument,
 * as "Bearer TOKEN" in Authorization, or as itself in another header
 * ("Bearer " before it taken off too: a token has no space).
 */
static int
session_token_id(struct session *s, const char **raw, size_t *rawlen,
    const char **why)
{
	const struct config	*cfg = s->srv->cfg;
	struct jwt_check	 chk = { cfg->auth.jwt_claim, cfg->auth.jwt_audience,
				    cfg->auth.jwt_issuer,
				    (int64_t)(cfg->auth.jwt_leeway_ms / 1000) };
	const char		*tok = *raw;
	size_t			 len = *rawlen;
	int			 bearer;

	if (s->srv->set.agent_id_from == CONFIG_AGENT_ID_HEADER) {
		bearer = len >= 7 && strncasecmp(tok, "Bearer ", 7) == 0;
		if (!bearer && len > 0 &&
		    strcasecmp(s->srv->set.agent_id_name, "Authorization") == 0) {
			*why = "not a Bearer token";
			return -1;
		}
		if (bearer) {
			tok += 7;
			len -= 7;
		}
		while (len > 0 && *tok == ' ') {
			tok++;
			len--;
		}
	}
	if (len == 0) {
		*why = "no token";
		return -1;
	}
	if (jwt_verify(s->srv->jwt, &chk, tok, len, (int64_t)time(NULL),
	    s->agent_id, sizeof(s->agent_id), why) == -1)
		return -1;
	if (access_agent_id_why(s->agent_id, strlen(s->agent_id)) != NULL) {
		s->agent_id[0] = '\0';
		*why = "its claim is not a valid agent id";
		return -1;
	}
	*raw = tok;
	*rawlen = len;
	return 0;
}

/*
 * The shop or queue the agent's connection names (shop_id, queue_id:
 * name "" for none): a query argument, a header, or a claim of the token
 * already verified (tok, NULL without one; a token without that claim
 * names none). 0 with out set ("" none), or -1 with *why.
 */
static int
session_label(struct session *s, struct lws *wsi,
    enum config_agent_id_from from, const char *name, const char *tok,
    size_t toklen, char *out, size_t outlen, const char **why)
{
	const struct config	*cfg = s->srv->cfg;
	struct jwt_check	 chk = { name, cfg->auth.jwt_audience,
				    cfg->auth.jwt_issuer,
				    (int64_t)(cfg->auth.jwt_leeway_ms / 1000) };
	const char		*why_claim;
	char			 raw[SESSION_TOKEN_MAX + 1];
	int			 n = 0;

	out[0] = '\0';
	if (name[0] == '\0')
		return 0;
	raw[0] = '\0';
	if (from == CONFIG_ID_CLAIM) {
		/*
		 * the token passed already: only its claim is read again. One
		 * it does not have (or "") names none; one that is no string
		 * (a number, a list) is refused, not taken for none: that
		 * would pass shops_unknown: refuse and the shop's rules
		 */
		if (tok != NULL && jwt_verify(s->srv->jwt, &chk, tok, toklen,
		    (int64_t)time(NULL), raw, sizeof(raw), &why_claim) == -1) {
			raw[0] = '\0';
			if (strcmp(why_claim, "claim missing") != 0 &&
			    strcmp(why_claim, "claim empty") != 0) {
				*why = why_claim;
				return -1;
			}
		}
		n = (int)strlen(raw);
	} else if ((n = session_id_source(wsi, from, name, raw,
	    sizeof(raw))) < 0) {
		*why = n == -2 ? "given more than once" : "too long";
		return -1;
	}
	raw[n] = '\0';
	if (n > 0 && (*why = access_agent_id_why(raw, (size_t)n)) != NULL)
		return -1;
	if ((size_t)n >= outlen) {
		*why = "too long";
		return -1;
	}
	memcpy(out, raw, (size_t)n + 1);
	return 0;
}

/* Refuses the handshake: the metric counted, the reason logged, the status returned. */
static int
session_refuse(struct session *s, uint64_t *metric, int status, const char *fmt,
    ...)
{
	char	why[256];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	(*metric)++;
	log_warnx("session_allow: %s: agent refused (%d): %s", s->addr, status,
	    why);
	return status;
}

/*
 * The shop and queue the connection names, if any (docs/configuration.md,
 * "Many shops"): 0, or an HTTP status for a bad one, or for a shop not
 * configured under shops_unknown: refuse.
 */
static int
session_allow_shop(struct session *s, struct lws *wsi, const char *tok,
    size_t toklen)
{
	struct session_server	*srv = s->srv;
	const char		*why;

	if (session_label(s, wsi, srv->set.shop_id_from, srv->set.shop_id_name,
	    tok, toklen, s->shop, sizeof(s->shop), &why) == -1)
		return session_refuse(s, &srv->metrics->refused_shop,
		    HTTP_STATUS_BAD_REQUEST, "bad shop id: %s", why);
	if (session_label(s, wsi, srv->set.queue_id_from, srv->set.queue_id_name,
	    tok, toklen, s->queue, sizeof(s->queue), &why) == -1)
		return session_refuse(s, &srv->metrics->refused_shop,
		    HTTP_STATUS_BAD_REQUEST, "bad queue id: %s", why);
	/* a verified claim is the agent's shop: its own frames cannot change it */
	s->peer.shop_fixed = srv->set.shop_id_from == CONFIG_ID_CLAIM &&
	    srv->set.shop_id_name[0] != '\0';
	s->peer.queue_fixed = srv->set.queue_id_from == CONFIG_ID_CLAIM &&
	    srv->set.queue_id_name[0] != '\0';
	if (s->shop[0] != '\0' && srv->cfg->shops_refuse &&
	    config_shop_find(srv->cfg, s->shop) == NULL)
		return session_refuse(s, &srv->metrics->refused_shop,
		    HTTP_STATUS_FORBIDDEN, "shop %s is not configured "
		    "(shops_unknown: refuse)", s->shop);
	return 0;
}

/*
 * Whether this agent may connect, decided before the upgrade and before
 * anything goes upstream (docs/security.md): its page's origin, then who
 * it is. 0 with s->agent_id set (empty when the request names none), or
 * an HTTP status. What is logged never holds a token.
 */
static int
session_allow(struct session *s, struct lws *wsi)
{
	struct session_server	*srv = s->srv;
	const struct config	*cfg = srv->cfg;
	struct metrics		*m = srv->metrics;
	/* room for "Bearer " before a token of the most it may be */
	char			 origin[256], raw[SESSION_TOKEN_MAX + 8];
	const char		*why, *tok;
	size_t			 i, toklen;
	int			 n;

	if ((n = lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN)) > 0) {
		if ((size_t)n >= sizeof(origin) || lws_hdr_copy(wsi, origin,
		    sizeof(origin), WSI_TOKEN_ORIGIN) < 0)
			return session_refuse(s, &m->refused_origin,
			    HTTP_STATUS_FORBIDDEN, "Origin too long");
		if (!access_origin_ok(&cfg->allowed_origins, origin, NULL)) {
			for (i = 0; origin[i] != '\0'; i++)	/* the log's */
				if ((unsigned char)origin[i] < 0x20 ||
				    origin[i] == 0x7f)
					origin[i] = '?';
			return session_refuse(s, &m->refused_origin,
			    HTTP_STATUS_FORBIDDEN, "Origin %.*s is not in "
			    "allowed_origins", (int)util_utf8_cut(origin, 100),
			    origin);
		}
	}
	/* a front proxy that authenticates names the agent in a header */
	if (srv->set.agent_id_from == CONFIG_AGENT_ID_HEADER &&
	    !srv->set.agent_id_jwt && cfg->ntrusted > 0 &&
	    !access_cidr_any(cfg->trusted, cfg->ntrusted, s->addr))
		return session_refuse(s, &m->refused_untrusted,
		    HTTP_STATUS_UNAUTHORIZED, "the %s header comes from an "
		    "address not in trusted_proxies", srv->set.agent_id_name);
	if ((n = session_id_source(wsi, srv->set.agent_id_from,
	    srv->set.agent_id_name, raw, sizeof(raw))) < 0)
		/* twice: which one would the backend believe? */
		return session_refuse(s, srv->set.agent_id_jwt ?
		    &m->refused_token : &m->refused_agent_id,
		    srv->set.agent_id_jwt && n == -1 ? HTTP_STATUS_UNAUTHORIZED :
		    HTTP_STATUS_BAD_REQUEST, "the agent id source %s is %s",
		    srv->set.agent_id_name, n == -2 ? "given more than once" :
		    "too long");
	tok = raw;
	toklen = (size_t)n;
	if (srv->set.agent_id_jwt) {
		if (session_token_id(s, &tok, &toklen, &why) == -1)
			return session_refuse(s, &m->refused_token,
			    HTTP_STATUS_UNAUTHORIZED, "token refused: %s", why);
	} else {
		if (n > 0 && (why = access_agent_id_why(raw, (size_t)n)) != NULL)
			return session_refuse(s, &m->refused_agent_id,
			    HTTP_STATUS_BAD_REQUEST, "bad agent id: %s", why);
		memcpy(s->agent_id, raw, (size_t)n);
		s->agent_id[n] = '\0';
		tok = NULL;
	}
	return session_allow_shop(s, wsi, tok, toklen);
}

/*
 * The backend's path and query (s->up_path), made before the upgrade so
 * that one that cannot be sent whole is refused: 0 or an HTTP status.
 */
static int
session_allow_path(struct session *s, struct lws *wsi)
{
	struct session_server	*srv = s->srv;
	size_t			 len;

	free(s->up_path);
	if ((s->up_path = session_build_path(srv, wsi)) == NULL) {
		log_warnx("session_allow_path: %s: out of memory", s->addr);
		return HTTP_STATUS_SERVICE_UNAVAILABLE;
	}
	if ((len = strlen(s->up_path)) > SESSION_PATH_MAX)
		return session_refuse(s, &srv->metrics->refused_uri,
		    HTTP_STATUS_REQ_URI_TOO_LONG, "the backend's path and query "
		    "would be %zu bytes, over the %d that can be sent whole",
		    len, SESSION_PATH_MAX);
	return 0;
}

/* First entry of a comma-separated Sec-WebSocket-Protocol list. */
static char *
session_first_protocol(const char *list)
{
	size_t	n;

	list += strspn(list, " \t");
	n = strcspn(list, ", \t");
	return n ? strndup(list, n) : NULL;
}

/*
 * The relay's way to tell the agent something: a whole text frame, never
 * inside a backend message. An ordered frame carries, in its flags, a
 * barrier: the count of backend messages queued to the agent so far; it
 * waits until that many have been sent (counters wrap; compared by
 * difference).
 */
static void
session_inject(void *ctx, const char *frame, size_t len, int ordered)
{
	struct session	*s = ctx;

	if (s->wsi[SIDE_AGENT] == NULL || s->close[SIDE_AGENT].pending)
		return;
	if (msgq_append(s->inj, frame, len) == -1) {
		log_warnx("session_inject: agent=%s: out of memory, frame dropped",
		    session_agent_name(s));
		msgq_discard(s->inj);
		return;
	}
	msgq_commit(s->inj, ordered ? s->to_agent_queued | 1u << 31 : 0);
	lws_callback_on_writable(s->wsi[SIDE_AGENT]);
}

/* Whether the injected frame with these flags may go now. */
static int
session_inject_ready(const struct session *s, unsigned flags)
{
	uint32_t	barrier = flags & ~(1u << 31);

	if (!(flags & 1u << 31))
		return 1;
	/* sent >= barrier, modulo 2^31 */
	return ((s->to_agent_sent - barrier) & ~(1u << 31)) < (1u << 30);
}

static void	session_on_agent_timeout(evutil_socket_t, short, void *);
static void	session_on_up_timeout(evutil_socket_t, short, void *);

/*
 * The peer address of an accepted socket, as the limits count it: an
 * IPv4 peer of a dual-stack listener without its ::ffff: prefix.
 */
static void
session_peer_name(int fd, char *addr, size_t len)
{
	lws_get_peer_simple_fd(fd, addr, len);
	if (strncmp(addr, "::ffff:", 7) == 0 && strchr(addr + 7, ':') == NULL)
		memmove(addr, addr + 7, strlen(addr + 7) + 1);	/* v4-mapped */
}

/*
 * A session for a connection just accepted: its address counted, its
 * handshake timed. NULL out of memory. The request is read later
 * (session_setup), once lws has it.
 */
static struct session *
session_new(struct session_server *srv, struct lws *wsi)
{
	struct session	*s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->srv = srv;
	s->q[SIDE_AGENT] = msgq_new(LWS_PRE, srv->bufs);
	s->q[SIDE_UP] = msgq_new(LWS_PRE, srv->bufs);
	s->inj = msgq_new(LWS_PRE, srv->bufs);
	s->tmo[SIDE_AGENT] = evtimer_new(srv->base, session_on_agent_timeout, s);
	s->tmo[SIDE_UP] = evtimer_new(srv->base, session_on_up_timeout, s);
	if (s->q[SIDE_AGENT] == NULL || s->q[SIDE_UP] == NULL || s->inj == NULL ||
	    s->tmo[SIDE_AGENT] == NULL || s->tmo[SIDE_UP] == NULL)
		goto err;
	session_peer_name(lws_get_socket_fd(wsi), s->addr, sizeof(s->addr));
	if (peercount_add(srv->peers, s->addr) == 0)
		goto err;
	s->wsi[SIDE_AGENT] = wsi;
	lws_set_opaque_user_data(wsi, s);
	evtimer_add(s->tmo[SIDE_AGENT], srv->tmo_handshake);

	s->next = srv->sessions;
	if (s->next)
		s->next->prev = s;
	srv->sessions = s;
	srv->count++;
	return s;
err:
	session_release(s);
	return NULL;
}

/* The request, read when the upgrade is accepted; -1 out of memory. */
static void	session_busy(void *, int);

static int
session_setup(struct session *s, struct lws *wsi)
{
	struct session_server	*srv = s->srv;
	char			*xff, *v;
	size_t			 n;

	s->peer.agent = s->agent_id;	/* read by session_allow */
	s->peer.shop = s->shop;
	s->peer.queue = s->queue;
	s->peer.session = ++srv->serial;
	s->peer.inject = session_inject;
	s->peer.flow = session_busy;
	s->peer.ctx = s;
	if ((s->offered = session_hdr_dup(wsi, WSI_TOKEN_PROTOCOL)) != NULL)
		s->answered = session_first_protocol(s->offered);
	s->origin = session_hdr_dup(wsi, WSI_TOKEN_ORIGIN);
	if (!(session_keeps_token(srv, CONFIG_AGENT_ID_HEADER) &&
	    strcasecmp(srv->set.agent_id_name, "Authorization") == 0) &&
	    (v = session_hdr_dup(wsi, WSI_TOKEN_HTTP_AUTHORIZATION)) != NULL)
		s->hdrs[s->nhdrs++] = (struct session_hdr){ "authorization:", v };
	if ((v = session_hdr_dup(wsi, WSI_TOKEN_HTTP_COOKIE)) != NULL)
		s->hdrs[s->nhdrs++] = (struct session_hdr){ "cookie:", v };
	/*
	 * X-Forwarded-For: the agent's address, after the proxies before us,
	 * which only a trusted proxy may name: anyone else could write any.
	 */
	xff = access_cidr_any(srv->cfg->trusted, srv->cfg->ntrusted, s->addr) ?
	    session_hdr_dup(wsi, WSI_TOKEN_X_FORWARDED_FOR) : NULL;
	n = (xff ? strlen(xff) + 2 : 0) + strlen(s->addr) + 1;
	if ((v = malloc(n)) == NULL) {
		free(xff);
		return -1;
	}
	snprintf(v, n, "%s%s%s", xff ? xff : "", xff ? ", " : "", s->addr);
	free(xff);
	s->hdrs[s->nhdrs++] = (struct session_hdr){ "x-forwarded-for:", v };
	return 0;
}

/*
 * Whether one more agent may be upgraded: 0, or an HTTP status with the
 * metric counted and the reason logged. The session being decided is
 * already counted, so the limits compare with >.
 */
static int
session_admit(struct session *s)
{
	struct session_server	*srv = s->srv;
	uint64_t		 cap = srv->set.max_connections;
	const char		*why;

	if (cap > srv->fd_sessions)
		cap = srv->fd_sessions;
	if (srv->draining) {
		srv->metrics->refused_draining++;
		why = "shutting down";
	} else if (srv->count > cap) {
		if (cap == srv->set.max_connections)
			srv->metrics->refused_max++;
		else
			srv->metrics->refused_fds++;
		why = cap == srv->set.max_connections ?
		    "limits.max_connections reached" :
		    "no file descriptors left for another agent";
	} else if (srv->set.max_per_ip > 0 &&
	    peercount_get(srv->peers, s->addr) > srv->set.max_per_ip) {
		srv->metrics->refused_per_ip++;
		why = "limits.max_connections_per_ip reached";
	} else
		return 0;
	log_warnx("session_admit: %s: agent refused (503): %s", s->addr, why);
	return HTTP_STATUS_SERVICE_UNAVAILABLE;
}

/*
 * A handshake or a message took too long (limits.handshake_timeout,
 * limits.message_timeout). A handshake is dropped; a message's sender is
 * closed with 1008 and the other side told, as for an oversized message.
 */
static void
session_timeout(struct session *s, enum session_side from)
{
	struct session_server	*srv = s->srv;
	enum session_side	 to = from == SIDE_AGENT ? SIDE_UP : SIDE_AGENT;
	size_t			 have;

	if (from == SIDE_AGENT && !s->in_msg[SIDE_AGENT]) {	/* the handshake's */
		srv->metrics->timeouts_handshake++;
		log_info("session_on_timeout: %s: no WebSocket upgrade within "
		    "%" PRIu64 " ms, dropped", s->addr, srv->set.handshake_ms);
		session_kill(s->wsi[SIDE_AGENT], PENDING_TIMEOUT_HTTP_CONTENT);
		return;
	}
	srv->metrics->timeouts_message++;
	/* the limit it started under: a reload since changes new messages' */
	log_warnx("session_on_timeout: agent=%s: %s message not complete within "
	    "%" PRIu64 " ms, closing 1008", session_agent_name(s),
	    session_side_name(from), s->msg_ms[from]);
	msgq_open(s->q[to], &have);
	srv->metrics->queued_bytes -= have;
	msgq_discard(s->q[to]);
	s->in_msg[from] = 0;
	s->rx_dead[from] = 1;
	session_close_side(s, from, 1008, "message not complete within %" PRIu64
	    " ms", s->msg_ms[from]);
	if (from == SIDE_AGENT)
		session_close_side(s, to, 1001, "agent closed: message timeout");
	else
		session_close_side(s, to, 1011, "upstream message timed out");
}

static void
session_on_agent_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	session_timeout(arg, SIDE_AGENT);
}

static void
session_on_up_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	session_timeout(arg, SIDE_UP);
}

/* --- upstream ------------------------------------------------------------ */

static void
session_connect_upstream(struct session *s)
{
	struct session_server		*srv = s->srv;
	struct lws_client_connect_info	 ci;
	char				 host[300];
	int				 v6;

	memset(&ci, 0, sizeof(ci));
	ci.context = srv->ctx;
	ci.address = srv->set.upstream.host;
	ci.port = srv->set.upstream.port;
	/*
	 * A redirect is a refusal: lws followed one to any host it named and
	 * sent it the agent's request again, Authorization and Cookie with it.
	 */
	ci.ssl_connection = LCCSCF_HTTP_NO_FOLLOW_REDIRECT |
	    (srv->set.upstream.tls ? LCCSCF_USE_SSL : 0);
	if (srv->set.upstream.tls && !srv->set.upstream_verify)
		ci.ssl_connection |= LCCSCF_ALLOW_SELFSIGNED |
		    LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK |
		    LCCSCF_ALLOW_EXPIRED | LCCSCF_ALLOW_INSECURE;
	ci.path = s->up_path;
	/* Host: an IPv6 address in brackets (RFC 3986), the default port left out */
	v6 = strchr(srv->set.upstream.host, ':') != NULL;
	if ((srv->set.upstream.tls && srv->set.upstream.port == 443) ||
	    (!srv->set.upstream.tls && srv->set.upstream.port == 80))
		snprintf(host, sizeof(host), v6 ? "[%s]" : "%s",
		    srv->set.upstream.host);
	else
		snprintf(host, sizeof(host), v6 ? "[%s]:%d" : "%s:%d",
		    srv->set.upstream.host, srv->set.upstream.port);
	ci.host = host;
	ci.origin = s->origin;
	ci.protocol = s->offered;
	ci.local_protocol_name = SESSION_PROTOCOL;
	ci.ietf_version_or_minus_one = -1;
	ci.opaque_user_data = s;

	s->up = UP_CONNECTING;
	s->up_gen = srv->up_gen;
	/* not ci.pwsi: lws clears that pointer before telling us the wsi closed */
	if ((s->wsi[SIDE_UP] = lws_client_connect_via_info(&ci)) == NULL) {
		/* a connect that fails at once gets no error callback */
		s->up = UP_GONE;
		session_up_says(s, 0);
		srv->metrics->upstream_failures++;
		log_warnx("session_connect_upstream: agent=%s: cannot connect "
		    "to %s:%d", session_agent_name(s), srv->set.upstream.host,
		    srv->set.upstream.port);
		session_close_side(s, SIDE_AGENT, 1013,
		    "upstream unavailable: connect failed");
	}
}

/* --- data ---------------------------------------------------------------- */

static void
session_flow(struct session *s, enum session_side producer, int enable)
{
	if (s->wsi[producer] == NULL || s->paused[producer] == !enable)
		return;
	s->paused[producer] = !enable;
	if (!enable) {
		s->srv->metrics->flow_pauses++;
		/* a paused producer's hang-up is not read: its consumer must move */
		session_watch(s);
	}
	lws_rx_flow_control(s->wsi[producer], enable);
}

/*
 * Whether what `producer` sent waits within limit bytes: the messages
 * queued towards the other side, and for the agent also chatmond's own
 * frames to it (a warning for every message a rule blocked: an agent
 * that sends and never reads would pile them up for ever). Only committed
 * messages count: the one still arriving is bounded by max_message, and a
 * pause for it would wait for a write that can never come.
 */
static int
session_within(const struct session *s, enum session_side producer,
    uint64_t limit)
{
	enum session_side	to = producer == SIDE_AGENT ? SIDE_UP : SIDE_AGENT;

	return msgq_committed_bytes(s->q[to]) <= limit &&
	    (producer != SIDE_AGENT || msgq_bytes(s->inj) <= limit);
}

/*
 * Whether reading from producer may go on: its queue is within half of
 * limits.queue_bytes (the hysteresis of the pause) and, for the agent, the
 * relay does not hold it (session_busy).
 */
static int
session_may_read(const struct session *s, enum session_side producer)
{
	return session_within(s, producer, s->srv->set.queue_bytes / 2) &&
	    (producer != SIDE_AGENT || !s->agent_busy);
}

/*
 * The relay's say on reading from the agent: paused while what it sent
 * keeps chatmond busy (note acks waiting for Redis), the way a full queue
 * pauses it; both must let it go before it reads again.
 */
static void
session_busy(void *ctx, int busy)
{
	struct session	*s = ctx;

	s->agent_busy = busy;
	if (busy)
		session_flow(s, SIDE_AGENT, 0);
	else if (s->paused[SIDE_AGENT] && session_may_read(s, SIDE_AGENT))
		session_flow(s, SIDE_AGENT, 1);
}

static int	session_writeable(struct session *, enum session_side);

/*
 * Has `to` send the message just queued for it. When that message is all
 * its queue holds, nothing of chatmond's own waits before it and the
 * socket took everything it was last given (the common case of chat: one
 * small message on an idle connection), it is written now, from the
 * callback that read it: no POLLOUT switched on and off around the write
 * and no loop iteration in between. A write the socket does not take whole
 * is kept by lws, which asks for POLLOUT itself. Otherwise the message
 * goes from to's WRITEABLE callback, as every later chunk does.
 */
static void
session_kick(struct session *s, enum session_side to)
{
	struct lws	*wsi = s->wsi[to];

	if (msgq_count(s->q[to]) != 1 || s->close[to].pending || s->closing[to] ||
	    (to == SIDE_AGENT && msgq_count(s->inj) > 0) ||
	    lws_partial_buffered(wsi)) {
		lws_callback_on_writable(wsi);
		return;
	}
	if (session_writeable(s, to) == -1)
		/* what its WRITEABLE callback's -1 would do: close it, from the loop */
		session_kill(wsi, PENDING_TIMEOUT_CLOSE_SEND);
}

/*
 * A chunk of a message from `from`: appended to the queue towards the other
 * side; on the message's last chunk, offered to the relay, then queued or
 * dropped. Returns -1 to close `from` (its close reason is set).
 */
static int
session_rx(struct session *s, enum session_side from, struct lws *wsi,
    const void *in, size_t len)
{
	struct session_server	*srv = s->srv;
	enum session_side	 to = from == SIDE_AGENT ? SIDE_UP : SIDE_AGENT;
	struct msgq		*q = s->q[to];
	enum relay_verdict	 v;
	size_t			 have;
	char			*data;
	int			 binary;

	if (s->rx_dead[from])
		return 0;
	msgq_open(q, &have);
	if (have + len > srv->set.max_message) {
		srv->metrics->queued_bytes -= have;
		msgq_discard(q);
		srv->metrics->closes_too_big++;
		log_warnx("session_rx: agent=%s: %s message over %" PRIu64
		    " bytes, closing 1009", session_agent_name(s),
		    session_side_name(from), srv->set.max_message);
		if (from == SIDE_AGENT)
			session_close_side(s, to, 1001, "agent closed: message too big");
		else
			session_close_side(s, to, 1011, "upstream message too big");
		lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
		    (unsigned char *)"message too big", 15);
		s->closing[from] = 1;
		return -1;
	}
	if (msgq_append(q, in, len) == -1) {
		log_warnx("session_rx: agent=%s: out of memory", session_agent_name(s));
		lws_close_reason(wsi, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION,
		    (unsigned char *)"out of memory", 13);
		s->closing[from] = 1;
		return -1;
	}
	srv->metrics->queued_bytes += len;
	if (!lws_is_final_fragment(wsi))
		goto flow;
	s->in_msg[from] = 0;
	evtimer_del(s->tmo[from]);

	binary = lws_frame_is_binary(wsi);
	data = msgq_open(q, &have);
	v = relay_message(srv->relay, &s->peer, from == SIDE_AGENT ? RELAY_UP :
	    RELAY_DOWN, binary, data, have);
	if (v == RELAY_DROP || s->wsi[to] == NULL) {
		srv->metrics->queued_bytes -= have;
		msgq_discard(q);
		return 0;
	}
	msgq_commit(q, binary ? SESSION_MSG_BINARY : 0);
	if (from == SIDE_AGENT)
		srv->metrics->messages_up++;
	else {
		srv->metrics->messages_down++;
		s->to_agent_queued = (s->to_agent_queued + 1) & ~(1u << 31);
	}
	if (to == SIDE_AGENT || s->up == UP_OPEN)
		session_kick(s, to);
flow:
	if (!session_within(s, from, srv->set.queue_bytes))
		session_flow(s, from, 0);
	return 0;
}

/* Sends the next chunk queued for `side`, or its pending close. */
static int
session_writeable(struct session *s, enum session_side side)
{
	struct session_server	*srv = s->srv;
	enum session_side	 producer = side == SIDE_AGENT ? SIDE_UP : SIDE_AGENT;
	struct msgq		*q = s->q[side];
	struct lws		*wsi = s->wsi[side];
	struct session_close	*c = &s->close[side];
	char			*data;
	size_t			 len, done, n;
	unsigned		 flags;
	int			 wp, own = 0;

	/*
	 * chatmond's own frames go first when they may (session_inject), but
	 * never into a half-sent message
	 */
	if (side == SIDE_AGENT && msgq_head(s->inj, &data, &len, &flags, &done) == 0 &&
	    session_inject_ready(s, flags) &&
	    (msgq_head(q, &data, &len, &flags, &done) == -1 || done == 0)) {
		q = s->inj;
		own = 1;
	}
	if (msgq_head(q, &data, &len, &flags, &done) == 0) {
		n = len - done;
		if (n > SESSION_WRITE_CHUNK)
			n = SESSION_WRITE_CHUNK;
		if (done > 0)
			wp = LWS_WRITE_CONTINUATION;
		else	/* an injected frame's flags are its barrier: always text */
			wp = !own && flags & SESSION_MSG_BINARY ?
			    LWS_WRITE_BINARY : LWS_WRITE_TEXT;
		if (done + n < len)
			wp |= LWS_WRITE_NO_FIN;
		/* the bytes before data + done are headroom or already sent */
		if (lws_write(wsi, (unsigned char *)data + done, n,
		    (enum lws_write_protocol)wp) < (int)n) {
			log_warnx("session_writeable: agent=%s: write to %s failed",
			    session_agent_name(s), session_side_name(side));
			s->closing[side] = 1;
			return -1;
		}
		msgq_consume(q, n);
		if (s->stall != NULL)
			s->took_ns[side] = util_mono_ns();
		if (!own && side == SIDE_AGENT && done + n == len)
			s->to_agent_sent = (s->to_agent_sent + 1) & ~(1u << 31);
		if (!own) {
			srv->metrics->queued_bytes -= n;
			if (side == SIDE_UP)
				srv->metrics->bytes_up += n;
			else
				srv->metrics->bytes_down += n;
		} else
			producer = SIDE_AGENT;	/* its turns made chatmond's frames */
		if (s->paused[producer] && session_may_read(s, producer))
			session_flow(s, producer, 1);
		if (msgq_count(s->q[side]) > 0 || (side == SIDE_AGENT &&
		    msgq_count(s->inj) > 0) || c->pending)
			lws_callback_on_writable(wsi);
		return 0;
	}
	if (c->pending) {
		/* code 0: a close without a code, an empty payload (patch 0019) */
		lws_close_reason(wsi, c->code ? (enum lws_close_status)c->code :
		    LWS_CLOSE_STATUS_NOSTATUS, (unsigned char *)c->reason,
		    c->reason_len);
		s->closing[side] = 1;
		return -1;
	}
	return 0;
}

/* --- stalls -------------------------------------------------------------- */

/*
 * Whether something waits for `side` that only its reading lets go: queued
 * messages, chatmond's own frames, or a chunk lws holds half-written.
 */
static int
session_waiting(struct session *s, enum session_side side)
{
	return msgq_count(s->q[side]) > 0 ||
	    (side == SIDE_AGENT && msgq_count(s->inj) > 0) ||
	    lws_partial_buffered(s->wsi[side]);
}

static void
session_stall_arm(struct session *s, uint64_t ms)
{
	struct timeval	tv;

	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000 * 1000);
	evtimer_add(s->stall, &tv);
}

static void	session_on_stall(evutil_socket_t, short, void *);

/*
 * Starts watching for a side that takes nothing of what waits for it
 * (limits.stall_timeout). Only needed once its producer is paused (whose
 * hang-up chatmond then does not read) or gone (whose session then waits
 * for that side's close): a producer that is read ends the session itself
 * when it leaves. Out of memory the session goes unwatched, as before.
 */
static void
session_watch(struct session *s)
{
	if (s->stall != NULL && evtimer_pending(s->stall, NULL))
		return;
	if (s->stall == NULL &&
	    (s->stall = evtimer_new(s->srv->base, session_on_stall, s)) == NULL) {
		log_warnx("session_watch: agent=%s: out of memory",
		    session_agent_name(s));
		return;
	}
	s->took_ns[SIDE_AGENT] = s->took_ns[SIDE_UP] = util_mono_ns();
	session_stall_arm(s, s->srv->set.stall_ms);
}

/*
 * `side` took nothing for limits.stall_timeout: no close frame can reach
 * it through what waits, so its connection is dropped. The other side is
 * closed with the cause once its own queue is sent, and read again so
 * that its close, or its hang-up, ends the session.
 */
static void
session_stalled(struct session *s, enum session_side side)
{
	enum session_side	other = side == SIDE_AGENT ? SIDE_UP : SIDE_AGENT;

	s->srv->metrics->timeouts_stall++;
	log_warnx("session_stalled: agent=%s: %s took nothing for %" PRIu64
	    " ms, dropped", session_agent_name(s), session_side_name(side),
	    s->srv->set.stall_ms);
	s->closing[side] = 1;
	session_kill(s->wsi[side], PENDING_TIMEOUT_CLOSE_SEND);
	if (s->wsi[other] == NULL)
		return;
	s->rx_dead[other] = 1;		/* what it sends has nowhere to go */
	if (side == SIDE_UP)
		session_close_side(s, other, 1011, "upstream stalled");
	else
		session_close_side(s, other, 1001, "agent stalled");
	session_flow(s, other, 1);
}

static void
session_on_stall(evutil_socket_t fd, short what, void *arg)
{
	struct session		*s = arg;
	uint64_t		 now = util_mono_ns(), idle, next = UINT64_MAX;
	uint64_t		 limit = s->srv->set.stall_ms * 1000000;
	enum session_side	 side;

	(void)fd;
	(void)what;
	for (side = SIDE_AGENT; side <= SIDE_UP; side++) {
		if (s->wsi[side] == NULL || s->closing[side] ||
		    !session_waiting(s, side))
			continue;
		/* a backend still connecting is limits.connect_timeout's */
		if (side == SIDE_UP && s->up != UP_OPEN)
			s->took_ns[side] = now;
		if ((idle = now - s->took_ns[side]) >= limit)
			session_stalled(s, side);
		else if (limit - idle < next)
			next = limit - idle;
	}
	/* nothing waits any more: the next pause watches again */
	if (next != UINT64_MAX)
		session_stall_arm(s, (next + 999999) / 1000000);
}

/* --- limits and protocol errors ---------------------------------------- */

/*
 * An accepted connection that leaves fewer than SESSION_FD_SPARE file
 * descriptors is answered 503 at once and closed (lws closes it when this
 * returns 1): the fds left are for the agents already connected. Nothing
 * has been read from it yet; the answer is best effort.
 */
static int
session_fd_check(struct session_server *srv, int fd)
{
	if (!lwsctx_fd_refuse(fd, srv->fd_floor))
		return 0;
	srv->metrics->refused_fds++;
	log_warnx("session_fd_check: fd %d of %d: no file descriptors left, "
	    "agent refused (503)", fd, srv->fd_floor + SESSION_FD_SPARE);
	return 1;
}

/*
 * An accepted connection from an address that already holds
 * limits.max_connections_per_ip connections is closed at once (lws closes
 * it when this returns 1), before it has a session or a request buffer:
 * checked only at the upgrade, connections that never send a request kept
 * their places until limits.handshake_timeout, and one address could hold
 * every place of limits.max_connections, again each time they timed out
 * (found by review). A trusted proxy's address carries many agents: its
 * connections are counted but refused only at the upgrade, with the 503 a
 * proxy can pass on (session_admit).
 */
static int
session_peer_check(struct session_server *srv, int fd)
{
	char		addr[64], line[160];
	uint64_t	held = 0;
	int		n;

	if (srv->set.max_per_ip == 0)
		return 0;
	session_peer_name(fd, addr, sizeof(addr));
	if (peercount_get(srv->peers, addr) < srv->set.max_per_ip ||
	    access_cidr_any(srv->cfg->trusted, srv->cfg->ntrusted, addr))
		return 0;
	srv->metrics->refused_per_ip++;
	n = snprintf(line, sizeof(line), "session_peer_check: %s: connection "
	    "closed at accept: limits.max_connections_per_ip %" PRIu64
	    " reached", addr, srv->set.max_per_ip);
	if (n < 0 || (size_t)n >= sizeof(line))
		n = (int)strlen(line);
	if (srv->refused_log != NULL && !logrepeat_check(srv->refused_log, line,
	    (size_t)n, util_mono_ns() / 1000000, &held))
		return 1;
	if (held > 0)
		log_warnx("%s (and %" PRIu64 " more since it was last logged)",
		    line, held);
	else
		log_warnx("%s", line);
	return 1;
}

/*
 * lws is failing side's connection for breaking RFC 6455 (patch 0007): it
 * sends the close frame itself; the other side is told at once.
 */
static void
session_protocol_error(struct session *s, enum session_side side,
    const unsigned char *in, size_t len)
{
	unsigned	code = len >= 2 ? (unsigned)(in[0] << 8 | in[1]) : 0;
	int		rlen = len > 2 ? (int)(len - 2) : 0;

	s->closing[side] = 1;
	s->rx_dead[side] = 1;
	if (side == SIDE_AGENT)
		s->srv->metrics->protocol_errors_agent++;
	else
		s->srv->metrics->protocol_errors_up++;
	log_warnx("session_protocol_error: agent=%s: %s broke the protocol, "
	    "closing %u: %.*s", session_agent_name(s), session_side_name(side),
	    code, rlen, (const char *)in + 2);
	if (side == SIDE_AGENT)
		session_close_side(s, SIDE_UP, 1001,
		    "agent closed: protocol error (%.*s)", rlen, (const char *)in + 2);
	else
		session_close_side(s, SIDE_AGENT, 1011,
		    "upstream protocol error: %.*s", rlen, (const char *)in + 2);
}

/*
 * A request without "Upgrade: websocket" (a browser, a health check pointed
 * at this port): chatmond serves nothing over plain HTTP, and lws left the
 * connection without a word until its idle timeout (10 s). It is told at
 * once what to speak instead, 426 with the Upgrade header RFC 7231 6.5.15
 * asks for, and closed.
 */
static int
session_not_websocket(struct session *s, struct lws *wsi)
{
	static const char body[] = "chatmond relays WebSocket connections "
	    "only: connect with a WebSocket client (Upgrade: websocket).\n";
	unsigned char	 hbuf[LWS_PRE + 512], bbuf[LWS_PRE + sizeof(body)];
	unsigned char	*start = hbuf + LWS_PRE, *p = start;
	unsigned char	*end = hbuf + sizeof(hbuf);
	size_t		 len = sizeof(body) - 1;

	log_debug("session_not_websocket: %s: a plain HTTP request, answered "
	    "426", s != NULL ? s->addr : "-");
	if (lws_add_http_common_headers(wsi, HTTP_STATUS_UPGRADE_REQUIRED,
	    "text/plain; charset=utf-8", len, &p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_UPGRADE,
	    (const unsigned char *)"websocket", 9, &p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION,
	    (const unsigned char *)"Upgrade, close", 14, &p, end) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	/* HEAD: the headers of the answer a GET gets, no body */
	if (lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI) <= 0) {
		memcpy(bbuf + LWS_PRE, body, len);
		(void)lws_write(wsi, bbuf + LWS_PRE, len, LWS_WRITE_HTTP_FINAL);
	}
	return -1;
}

/* --- the lws callback ---------------------------------------------------- */

static int
session_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user,
    void *in, size_t len)
{
	struct session_server	*srv = lws_context_user(lws_get_context(wsi));
	struct session		*s = lws_get_opaque_user_data(wsi);
	struct lws_process_html_args *args;
	char			 buf[256], *chosen = NULL;
	unsigned		 st;
	int			 n;

	/* a callback may come before lws_client_connect_via_info returns */
	if (s != NULL && s->up == UP_CONNECTING && s->wsi[SIDE_UP] == NULL &&
	    wsi != s->wsi[SIDE_AGENT])
		s->wsi[SIDE_UP] = wsi;
	switch (reason) {
	case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS:
		/* the listener's SSL_CTX, empty: kept for reloads */
		srv->ssl_ctx = user;
		return srv->tls == NULL || lwsctx_tls_use(srv->tls, user) == -1;

	case LWS_CALLBACK_OPENSSL_PERFORM_SERVER_CERT_VERIFICATION:
		/*
		 * The backend's certificate, once per certificate of its
		 * chain; 0 leaves OpenSSL's verdict as it is. lws reports a
		 * failed one only as "SSL err 1": its reason is kept here for
		 * the agent's close and the log.
		 */
		if (s != NULL && s->up_cert_why == NULL)
			s->up_cert_why = lwsctx_verify_why(user, (int)len);
		return 0;

	case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
		/* in: the fd just accepted, the lowest free one */
		return session_fd_check(srv, (int)(lws_intptr_t)in) ||
		    session_peer_check(srv, (int)(lws_intptr_t)in);

	case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
		/* lws says this of its client connections too: ours have s */
		if (s != NULL)
			return 0;
		if (session_new(srv, wsi) == NULL) {
			log_warnx("session_cb: cannot set up a session: out of memory");
			return -1;
		}
		return 0;

	case LWS_CALLBACK_HTTP:		/* a request that asked for no upgrade */
		return session_not_websocket(s, wsi);

	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		if (s == NULL)
			return 1;
		if ((n = session_admit(s)) != 0 || (n = session_allow(s, wsi)) != 0 ||
		    (n = session_allow_path(s, wsi)) != 0) {
			lws_return_http_status(wsi, (unsigned)n, NULL);
			return 1;
		}
		return 0;

	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		if (s == NULL)
			return 1;
		if (session_setup(s, wsi) == -1) {
			log_warnx("session_cb: cannot set up a session: out of memory");
			return 1;
		}
		s->agent = 1;
		srv->metrics->agents_total++;
		srv->metrics->agents_active++;
		return 0;

	case LWS_CALLBACK_ADD_HEADERS:
		/* the agent is answered with its own first choice (see docs/relay.md) */
		if (s == NULL || s->answered == NULL)
			return 0;
		args = in;
		if (lws_add_http_header_by_name(wsi,
		    (const unsigned char *)"sec-websocket-protocol:",
		    (const unsigned char *)s->answered, (int)strlen(s->answered),
		    (unsigned char **)&args->p,
		    (unsigned char *)args->p + args->max_len))
			return 1;
		return 0;

	case LWS_CALLBACK_ESTABLISHED:
		if (s == NULL)
			return -1;
		evtimer_del(s->tmo[SIDE_AGENT]);	/* the handshake's */
		/* from here on frames can be injected: the agent's notes may come */
		relay_peer_opened(srv->relay, &s->peer);
		/* the path only: the query may carry a forwarded token or other secrets */
		log_debug("session_cb: agent=%s session=%" PRIu64 " connected "
		    "from %s, upstream path %.*s", session_agent_name(s),
		    s->peer.session, s->hdrs[s->nhdrs - 1].value,
		    (int)strcspn(s->up_path, "?"), s->up_path);
		session_connect_upstream(s);
		return 0;

	case LWS_CALLBACK_RECEIVE:
		if (s == NULL)
			return -1;
		return session_rx(s, SIDE_AGENT, wsi, in, len);

	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (s == NULL)
			return -1;
		return session_rx(s, SIDE_UP, wsi, in, len);

	case LWS_CALLBACK_SERVER_WRITEABLE:
		if (s == NULL)
			return -1;
		return session_writeable(s, SIDE_AGENT);

	case LWS_CALLBACK_CLIENT_WRITEABLE:
		if (s == NULL)
			return -1;
		return session_writeable(s, SIDE_UP);

	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		if (s != NULL)
			session_forward_close(s, wsi == s->wsi[SIDE_AGENT] ?
			    SIDE_UP : SIDE_AGENT, in, len);
		return 0;

	case LWS_CALLBACK_WS_MESSAGE_START:	/* patch 0008 */
		if (s == NULL)
			return -1;
		n = wsi == s->wsi[SIDE_AGENT] ? SIDE_AGENT : SIDE_UP;
		if (!s->in_msg[n] && !s->rx_dead[n]) {
			s->in_msg[n] = 1;
			s->msg_ms[n] = srv->set.message_ms;
			evtimer_add(s->tmo[n], srv->tmo_message);
		}
		return 0;

	case LWS_CALLBACK_WS_PEER_PROTOCOL_ERROR:	/* patch 0007 */
		if (s != NULL)
			session_protocol_error(s, wsi == s->wsi[SIDE_AGENT] ?
			    SIDE_AGENT : SIDE_UP, in, len);
		return 0;

	case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
		if (s == NULL)
			return -1;
		s->up_connected = 1;
		for (size_t i = 0; i < s->nhdrs; i++)
			if (lws_add_http_header_by_name(wsi,
			    (const unsigned char *)s->hdrs[i].name,
			    (const unsigned char *)s->hdrs[i].value,
			    (int)strlen(s->hdrs[i].value), (unsigned char **)in,
			    *(unsigned char **)in + len))
				return -1;
		return 0;

	case LWS_CALLBACK_CLIENT_FILTER_PRE_ESTABLISH:
		/*
		 * the backend's response headers are only here. Its choice is
		 * read whole, whatever its length: one of 256 bytes or more
		 * did not fit a buffer here and was taken for no choice.
		 */
		if (s == NULL)
			return -1;
		if (s->answered == NULL)
			return 0;
		n = lws_hdr_total_length(wsi, WSI_TOKEN_PROTOCOL);
		chosen = n > 0 ? session_hdr_dup(wsi, WSI_TOKEN_PROTOCOL) : NULL;
		if (n > 0 && (chosen == NULL || strcmp(chosen, s->answered) != 0)) {
			log_warnx("session_cb: agent=%s: backend chose subprotocol "
			    "%s, the agent was answered %s", session_agent_name(s),
			    chosen != NULL ? chosen : "(out of memory)",
			    s->answered);
			session_close_side(s, SIDE_AGENT, 1002,
			    "subprotocol mismatch: backend chose %s",
			    chosen != NULL ? chosen : "?");
			session_close_side(s, SIDE_UP, 1001,
			    "subprotocol mismatch");
		} else if (n <= 0)
			log_warnx("session_cb: agent=%s: backend chose no "
			    "subprotocol, the agent was answered %s",
			    session_agent_name(s), s->answered);
		free(chosen);
		return 0;

	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		if (s == NULL)
			return -1;
		s->up = UP_OPEN;
		session_up_says(s, 1);
		srv->metrics->upstream_active++;
		if (msgq_count(s->q[SIDE_UP]) > 0 || s->close[SIDE_UP].pending)
			lws_callback_on_writable(wsi);
		return 0;

	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		if (s == NULL)
			return 0;
		if (s->closing[SIDE_UP]) {
			/* we aborted it: the agent left or chatmond is stopping */
			session_detach(s, SIDE_UP);
			return 0;
		}
		/* a refusal after TCP was up will not go away by retrying */
		if (s->up_connected) {
			st = lws_http_client_http_response(wsi);
			/*
			 * An HTTP answer below 500 other than 101 refuses this
			 * agent (its path, its credential, a header too long for
			 * the backend): the backend is up and takes others. Only
			 * no answer, a 5xx or a broken handshake says the
			 * upstream is down (/readyz: a load balancer would take
			 * the instance out, and no agent would come to bring it
			 * back).
			 */
			if (st >= 100 && st < 500 && st != 101) {
				srv->metrics->upstream_refused++;
				session_up_says(s, 1);
			} else {
				srv->metrics->upstream_failures++;
				session_up_says(s, 0);
			}
			buf[0] = '\0';
			if (st != 0)
				snprintf(buf, sizeof(buf), ": HTTP %u", st);
			log_warnx("session_cb: agent=%s: upstream %s:%d: %s%s",
			    session_agent_name(s), srv->set.upstream.host,
			    srv->set.upstream.port, in ? (const char *)in : "error",
			    buf);
			session_close_side(s, SIDE_AGENT, 1011, "upstream refused: %s",
			    in ? (const char *)in : "handshake failed");
		} else if (s->up_cert_why != NULL) {
			snprintf(buf, sizeof(buf), "certificate verify failed: %s",
			    s->up_cert_why);
			session_up_failed(s, buf);
		} else
			session_up_failed(s, in ? (const char *)in : "connect failed");
		s->up = UP_GONE;	/* counted: session_detach must not again */
		session_detach(s, SIDE_UP);
		return 0;

	case LWS_CALLBACK_CLOSED:
		if (s != NULL)
			session_detach(s, SIDE_AGENT);
		return 0;

	case LWS_CALLBACK_CLIENT_CLOSED:
		if (s != NULL)
			session_detach(s, SIDE_UP);
		return 0;

	case LWS_CALLBACK_WSI_DESTROY:
		/* the last word on any connection, whatever came before */
		if (s != NULL)
			session_detach(s, wsi == s->wsi[SIDE_AGENT] ? SIDE_AGENT :
			    SIDE_UP);
		return 0;

	default:
		return 0;
	}
}

/* --- the server ----------------------------------------------------------- */

static void
session_server_free_keys(struct session_server *srv)
{
	lwsctx_tls_free(srv->tls);
	lwsctx_tls_free(srv->tls_next);
	jwt_keys_free(srv->jwt);
	jwt_keys_free(srv->jwt_next);
}

struct session_server *
session_server_new(struct event_base *base, const struct config *cfg,
    struct relay *relay, struct metrics *m, struct sbuf *errs)
{
	struct session_server	*srv;
	struct rlimit		 rl;
	int			 used;
	struct lwsctx_info	 li = {
		.listen = &cfg->listen,
		.protocols = session_protocols,
		.vhost = "chatmond",
		/* lws applies this to connects and handshakes; seconds, at least 1 */
		.timeout_secs = (unsigned)((cfg->limits.connect_timeout_ms + 999) / 1000),
		/*
		 * limits.handshake_timeout times a request (session_timeout,
		 * counted and logged): lws's own 10 s fired first, uncounted,
		 * and cut a longer limit short. Above the limit's largest.
		 */
		.head_idle_secs = 3601,
		.reuseport = cfg->listen_reuseport,
		.reuseport_key = "listen_reuseport",
		.own = &cfg->admin,
		.own_key = "admin.listen",
		.tls = cfg->tls.cert != NULL,
		.client_ca = cfg->upstream_tls.ca,
	};

	if ((srv = calloc(1, sizeof(*srv))) == NULL) {
		sbuf_line(errs, "session_server_new: out of memory");
		return NULL;
	}
	srv->base = base;
	srv->relay = relay;
	srv->metrics = m;
	srv->upstream_ok = -1;
	srv->listen_tls = cfg->tls.cert != NULL;
	if (session_server_prepare(srv, cfg, errs) == -1)
		goto err;
	session_server_set_config(srv, cfg);
	if (srv->tmo_handshake == NULL || srv->tmo_message == NULL ||
	    (srv->peers = peercount_new()) == NULL ||
	    (srv->refused_log = logrepeat_new(SESSION_REFUSED_LOG_SLOTS,
	    SESSION_REFUSED_LOG_MS)) == NULL ||
	    (srv->bufs = msgq_pool_new(SESSION_POOL_BUFS)) == NULL) {
		sbuf_line(errs, "session_server_new: out of memory");
		goto err;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur > INT_MAX)
		rl.rlim_cur = INT_MAX;
	/* the lowest free fd: about as many as are open now */
	if ((used = dup(2)) == -1)
		used = 0;
	else
		close(used);
	srv->fd_floor = lwsctx_fd_floor(SESSION_FD_SPARE);
	srv->fd_sessions = (int)rl.rlim_cur > used + SESSION_FD_RESERVE ?
	    (uint64_t)((int)rl.rlim_cur - used - SESSION_FD_RESERVE) / 2 : 0;
	if (srv->fd_sessions < srv->set.max_connections)
		log_warnx("session_server_new: RLIMIT_NOFILE %llu has room for %"
		    PRIu64 " agents, below limits.max_connections %" PRIu64
		    " (raise LimitNOFILE)", (unsigned long long)rl.rlim_cur,
		    srv->fd_sessions, srv->set.max_connections);
	li.user = srv;
	if ((srv->ctx = lwsctx_new(base, &li, errs)) == NULL)
		goto err;
	return srv;
err:
	session_server_free_keys(srv);
	peercount_free(srv->peers);
	logrepeat_free(srv->refused_log);
	msgq_pool_free(srv->bufs);
	free(srv);
	return NULL;
}

void
session_server_drain(struct session_server *srv, void (*done)(void *),
    void *arg)
{
	struct session	*s, *next;

	if (!srv->draining) {
		srv->draining = 1;
		lws_context_deprecate(srv->ctx, NULL);	/* closes the listener */
	}
	srv->drained = done;
	srv->drained_arg = arg;
	for (s = srv->sessions; s != NULL; s = next) {
		next = s->next;	/* closing may free s */
		if (!s->agent) {	/* still in its handshake: just drop it */
			session_kill(s->wsi[SIDE_AGENT],
			    PENDING_TIMEOUT_HTTP_CONTENT);
			continue;
		}
		session_close_side(s, SIDE_AGENT, 1001, "chatmond shutting down");
		session_close_side(s, SIDE_UP, 1001, "chatmond shutting down");
	}
	if (srv->count == 0 && srv->drained != NULL) {
		srv->drained = NULL;
		done(arg);
	}
}

size_t
session_server_count(const struct session_server *srv)
{
	return srv->count;
}

int
session_server_listening(const struct session_server *srv)
{
	return !srv->draining;
}

int
session_server_upstream(const struct session_server *srv)
{
	return srv->upstream_ok;
}

void
session_server_free(struct session_server *srv)
{
	if (srv == NULL)
		return;
	srv->drained = NULL;
	lws_context_destroy(srv->ctx);
	/* lws reports every connection's end while destroying; none is left */
	while (srv->sessions != NULL)
		session_free(srv->sessions);
	session_server_free_keys(srv);
	peercount_free(srv->peers);
	logrepeat_free(srv->refused_log);
	msgq_pool_free(srv->bufs);
	free(srv);
}
