/* dash_int: what the files of `chatmon dashboard` share (private: src/dash_*.c and dashboard.c only). */
#ifndef CHATMON_DASH_INT_H
#define CHATMON_DASH_INT_H

#include <limits.h>
#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>
#include <libwebsockets.h>

#include "chatmon/config.h"
#include "chatmon/convstore.h"
#include "chatmon/dashauth.h"
#include "chatmon/feed.h"
#include "chatmon/util.h"

/*
 * The files and their arrows (each calls only downward, and into
 * dashboard.c's struct):
 *   dashboard.c   start, stop, the wiring of the rest
 *   dash_files.c  the page's files: where they are, their headers
 *   dash_feed.c   the pages' /feed: hello, alerts, waiting, agents, ...;
 *                 it reads what the others keep in struct dash, and they
 *                 wake it (dash_feed_notify): it calls none of them
 *   dash_alerts.c the alert stream into the feed (history, then followed
 *                 with src/xfollow.c, the follower chatmond's notes and
 *                 chatmon tail ride on too)
 *   dash_state.c  the state poll: who waits, the day's figures
 *   dash_audit.c  the audit stream followed: alert handling and notes,
 *                 kept and pushed to the pages
 *   dash_api.c    the HTTP API under /api/ (logins stay in dashauth.c)
 *   dash_scope.c  what a login of some shops may see (the feed and the API ask it)
 *
 * Redis connections. One reads the alert stream: the history first
 * (the last dashboard.history alerts, and the whole local day for the rule
 * hits), then XREAD BLOCK from the last id, for ever; after an outage it
 * goes on from there. The other polls the state chatmond writes, every
 * redis.snapshot: who waits and the day's figures in Redis, the instances'
 * documents from their index (ZRANGEBYSCORE), MGET, merge.
 *
 * Pages connect to /feed. Each has its place in the feed (src/feed.c); new
 * alerts wake the pages at most every DASH_FLUSH_MS, so a burst goes out in
 * batches. The waiting and agents messages are made once per poll and sent
 * to each page that has not had that version. One lws_write per WRITEABLE
 * callback: a slow page only falls behind (and starts over), it holds up
 * nobody.
 */

#define DASH_PROTOCOL	"chatmon-dashboard"
#define DASH_FLUSH_MS	100
#define DASH_PAGE	1000		/* entries per XRANGE / XREAD, documents per index read */
#define DASH_POLL_MS	2000		/* when redis.snapshot is 0 */
#define DASH_RETRY_MS	1000		/* after Redis refused a stream read */
#define DASH_AUTH_MS	2000		/* sessions swept, feeds of ended ones closed */
/*
 * Alerts kept beyond the history: how far a page may fall behind before
 * it starts over. A burst comes in DASH_PAGE at a time, faster than any
 * page reads; ten pages of it is a few MB.
 */
#define DASH_SLACK	(10 * DASH_PAGE)

/*
 * Descriptors kept spare below RLIMIT_NOFILE (lwsctx_fd_floor): a
 * connection accepted into them gets 503 at once. They are for what the
 * dashboard opens while it is full: Redis reconnects (four connections),
 * the page's files as lws sends them, the users file read again.
 */
#define DASH_FD_SPARE		32
#define DASH_REFUSED_LOG_MS	10000

#define DASH_MISDIRECTED	421	/* Misdirected Request: not in lws's enum */
#define DASH_MISDIR_LOGGED	16	/* refused Host names logged, each once */
#define DASH_MISDIR_LEN		64	/* bytes of one kept (longer ones: cut) */

struct dash;
struct xfollow;
struct event;
struct event_base;
struct feed;
struct logrepeat;
struct lwsctx_tls;
struct rconn;
struct redisReply;
struct sla;

struct dash_client {		/* a page's feed (lws's per-connection space) */
	struct dash		*d;
	struct lws		*wsi;		/* NULL until established */
	struct dash_client	*prev, *next;
	uint64_t		 pos;		/* its place in the feed */
	/*
	 * The page's since= while the history is not in yet (it can only be
	 * placed in a feed that holds it): placed by dash_feed_loaded
	 */
	char			 since[FEED_SID_MAX + 1];
	int			 unplaced;
	int			 hello;		/* hello sent */
	int			 ended;		/* its login ended: close it */
	char			 sid[DASHAUTH_SID_MAX];	/* its session; "": token or open */
	unsigned		 status_v, waiting_v, agents_v;	/* versions sent */
	unsigned		 handling_v;	/* the handling reset sent */
	uint64_t		 evpos;		/* its place in the events (dash_audit.c) */
};

enum dash_doc {
	DASH_SCAN_WAITING,
	DASH_SCAN_AGENTS,
};

/* convstore's buckets and fields (docs/operations.md, "Running many instances") */
#define DASH_BUCKETS	CONVSTORE_BUCKETS
#define DASH_NOPEN_F	8
/*
 * Open rounds read of each bucket, longest first (each new one, and the
 * longest of each shop, one HMGET a poll): past 16 times this many
 * customers waiting, a shop's count and longest are of the longest waits
 * of each bucket only.
 */
#define DASH_OPEN_MAX	10000

/* An open round in Redis, while a poll reads it. */
struct dash_open {
	struct dash	*d;
	char		*id;
	size_t		 len;
	int		 bucket;
	int64_t		 opened;
	char		*f[DASH_NOPEN_F];	/* HMGET dash_open_fields; NULL nil */
	int		 known;		/* its shop and queue (f) from the last poll */
	int		 read;		/* its record asked for */
};

struct dash_bucket {		/* a ZRANGE's context */
	struct dash	*d;
	int		 b;
};

struct dash {
	struct config		*cfg;
	struct lwsctx_tls	*tlsc;		/* dashboard.tls: tls.cert and tls.key */
	char			 root[PATH_MAX];
	struct event_base	*base;
	struct lws_context	*ctx;
	struct feed		*feed;
	struct rconn		*stream, *state;
	struct xfollow		*alerts;	/* the alert stream followed, once loaded */
	char			*key;		/* the alert stream, prefix included */
	const char		*prefix;	/* redis.prefix or "" */
	int			 loaded;	/* the history is in: follow */
	char			 day[16];
	int64_t			 day_start;
	uint64_t		 poll_ms;
	/* the poll under way */
	int			 polling;
	enum dash_doc		 scan;	/* which documents are being read */
	char			**keys;
	size_t			 nkeys, capkeys;
	/* who waits, read from the conversations' state in Redis */
	struct dash_bucket	 bk[DASH_BUCKETS];
	struct dash_open	*open;
	size_t			 nopen, capopen;
	uint64_t		 open_total;
	unsigned		 open_wait;	/* replies still to come */
	int			 open_failed;
	struct sbuf		 opendoc;	/* this poll's document of them */
	/*
	 * The rounds the last poll found open, with their shop and queue, in
	 * dash_open_cmp's order: a round's shop never changes, so only a
	 * round opened since, and the longest of each shop, are read again.
	 */
	struct dash_open	*seen;
	size_t			 nseen;
	/* the day's figures, summed from the rounds and events Redis logged */
	struct sla		*figs;
	int64_t			 figs_day;	/* the day_start figs counts from */
	struct sla_policy	*pol;		/* the shops' settings (strings: cfg's), figs has them */
	size_t			 npol;
	char			 log_id[DASH_BUCKETS][48];	/* read up to */
	struct sbuf		 figsdoc;
	/* what every page is sent (a scoped page: made of waiting_all) */
	struct sbuf		 waiting, agents;
	struct sbuf		 waiting_all;	/* the longest of each shop (state_waiting_msg) */
	unsigned		 waiting_v, agents_v, status_v;
	json_t			*waiting_doc;	/* waiting_all, parsed (dash_waiting_rounds) */
	unsigned		 waiting_doc_v;	/* the waiting_v it was parsed at */
	int			 redis_up;
	struct dash_client	*clients;
	struct lws_http_mount	 mount;		/* the page's files: lws keeps a pointer */
	struct lws_http_mount	 api;		/* /api/: logins (src/dashauth.c) */
	struct dashauth		*auth;
	/* the page is served over TLS: the session cookie is then Secure (0 until the dashboard's TLS lands) */
	int			 tls;
	struct sbuf		 out;		/* LWS_PRE bytes, then a message */
	struct event		*ev_poll, *ev_flush, *ev_stream, *ev_term, *ev_int;
	struct event		*ev_auth;
	/*
	 * The API's writes and reads (a master: read what was just written);
	 * the handling and notes pushed to the pages are read on state, which
	 * a replica serves too (dash_audit_on_read)
	 */
	struct rconn		*wr;
	/* the audit stream, on a connection of its own (XREAD BLOCK) */
	struct rconn		*auditc;
	struct xfollow		*audit;
	int			 audit_following;	/* xfollow_follow was called */
	char			*audit_key, *handling_key;
	json_t			*handling;	/* {alert id: value} of the handling hash */
	unsigned		 handling_v;	/* the hash read whole: pages get a reset */
	/* messages to every page besides the alerts: handling updates, notes */
	char			**ev;		/* ring of DASH_EVENTS, NUL-terminated */
	uint64_t		 evnext;	/* the sequence number of the next event */
	struct event		*ev_prune;
	int			 prune_refused;	/* a prune's Redis error logged */
	/* requests refused for their Host (dash_files_host_ok), the names logged */
	uint64_t		 misdirected;
	char			 misdir[DASH_MISDIR_LOGGED][DASH_MISDIR_LEN];
	size_t			 nmisdir;
	/* connections refused for want of descriptors (dash_feed_cb) */
	int			 fd_floor;	/* the lowest fd refused (lwsctx_fd_floor) */
	struct logrepeat	*refused_log;	/* their line, once per DASH_REFUSED_LOG_MS */
};

#define DASH_EVENTS	1024	/* handling and note messages a page may fall behind by */

/* dashboard.c: the vhost's protocols; [0] is the pages' feed */
extern struct lws_protocols dash_protocols[];

/* dash_files.c */
int	dash_files_root(struct dash *);
void	dash_files_mount(struct dash *);
int	dash_files_headers(struct lws *, struct lws_process_html_args *);
/* 1 when the request's Host names the dashboard, else 0 with 421 answered (the caller closes). */
int	dash_files_host_ok(struct dash *, struct lws *);
/* 1 when every query argument of wsi's request fits what the API and the feed read (dash_api.c). */
int	dash_args_fit(struct lws *);

/* dash_feed.c */
void	dash_feed_notify(struct dash *);
int	dash_feed_origin_ok(struct dash *, struct lws *);
int	dash_feed_cb(struct lws *, enum lws_callback_reasons, void *, void *,
	    size_t);
void	dash_feed_on_auth(evutil_socket_t, short, void *);
/* The history is in: the pages that came before it are placed and told. */
void	dash_feed_loaded(struct dash *);
/* The feed's item of alert id want (the alerts held), or NULL. */
struct feed_item;
const struct feed_item *dash_feed_find(struct dash *, const char *want);

/* dash_alerts.c */
void	dash_alerts_on_conn(void *arg, int up, int lost);	/* rconn's state callback */
void	dash_alerts_on_flush(evutil_socket_t, short, void *);
void	dash_alerts_on_retry(evutil_socket_t, short, void *);
void	dash_alerts_entry(void *arg, const char *sid, const struct redisReply *fields);
void	dash_alerts_came(void *arg);

/* dash_audit.c */
void	dash_audit_on_conn(void *arg, int up, int lost);	/* the audit follower's rconn */
void	dash_audit_on_wr(void *arg, int up, int lost);		/* the API's rconn */
/* The state poll's connection is up: the handling hash is read whole on it. */
void	dash_audit_on_read(struct dash *);
void	dash_audit_on_prune(evutil_socket_t, short, void *);
void	dash_audit_entry(void *arg, const char *sid, const struct redisReply *fields);
/* The value of alert id now stored (borrowed), or NULL. */
json_t	*dash_audit_handling(struct dash *, const char *id);
/* The value of alert id set (the reference is stolen) and pushed to the pages; 0 or -1. */
int	dash_audit_set(struct dash *, const char *id, json_t *value);
void	dash_audit_clear(struct dash *);

/* dash_api.c */
size_t	dash_api_pss_size(void);
int	dash_api_cb(struct lws *, enum lws_callback_reasons, void *, void *,
	    size_t);

/* dash_scope.c: scope is a login's shops (dashauth_scope), NULL every shop */
/* 1 when a login of scope may see alert id (one the feed holds; an unknown one: 0). */
int	dash_scope_alert(struct dash *, const char *scope, const char *id);
/*
 * Whether a login of scope may see conversation conv by what the dashboard
 * holds of it (its alerts, its waiting round): 1 it names the login's
 * shops only, 0 it names another, -1 nothing is held (Redis may still
 * know: dash_api asks its record). With agent, only what names that agent
 * as the conversation's counts for 1: a whisper goes to the agent the
 * page shows, never to one of another shop by way of a conversation of
 * the login's.
 */
int	dash_scope_conv(struct dash *, const char *scope, const char *conv,
	    const char *agent);
/*
 * A handling or note message of the events (ev) as a page of scope sees
 * it, appended to out: 1 appended, 0 none of it is the page's, -1 ENOMEM.
 */
int	dash_scope_event(struct dash *, const char *scope, const char *ev,
	    struct sbuf *out);

/* dash_state.c */
void	dash_state_on_conn(void *arg, int up, int lost);	/* rconn's state callback */
void	dash_state_on_poll(evutil_socket_t, short, void *);
void	dash_state_status(struct dash *);
void	dash_state_day(struct dash *, int64_t now);
void	dash_state_clear(struct dash *);
/*
 * The rounds of the waiting message (every shop's longest, waiting_all), parsed once per message rather than
 * once per request that looks a conversation up (a few thousand rounds);
 * borrowed until the next poll. NULL when there are none to read.
 */
json_t	*dash_waiting_rounds(struct dash *);

#endif
