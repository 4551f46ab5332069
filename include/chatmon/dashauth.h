/* dashauth: who may use the dashboard: logins (dashboard.users), sessions, the shared wallboard token, and the /api/ routes that serve them. */
#ifndef CHATMON_DASHAUTH_H
#define CHATMON_DASHAUTH_H

#include <stddef.h>

#include "chatmon/users.h"
#include "chatmon/util.h"
#include "chatmon/websess.h"

struct lws;

#define DASHAUTH_PROTOCOL	"chatmon-dashboard-api"
#define DASHAUTH_COOKIE		"chatmon_session"
#define DASHAUTH_SID_MAX	(WEBSESS_ID_LEN + 1)

struct dashauth;

/*
 * Logins from the users file at users_path (NULL: logins are off), the
 * wallboard token (NULL: none), sessions of ttl_ms; tls says the page is
 * served over TLS (the cookie is then Secure). NULL with every error in
 * errs (FILE:LINE for the users file). The strings are copied; the caller
 * frees the result with dashauth_free.
 */
struct dashauth	*dashauth_new(const char *users_path, const char *token,
		    uint64_t ttl_ms, int tls, struct sbuf *errs);
void		 dashauth_free(struct dashauth *);
/*
 * The Origin check of every POST (the feed's: the page's own origin,
 * dashboard.public_url's, dashboard.allowed_origins): ok(arg, wsi) is 1
 * when the request may come from where it says. POST /api/login and
 * /api/logout are refused 403 when it says 0; without one set, none is
 * refused.
 */
void		 dashauth_set_origin_check(struct dashauth *,
		    int (*ok)(void *arg, struct lws *wsi), void *arg);
/* 1 when dashboard.users is set: the data needs a login (or the token). */
int		 dashauth_logins(const struct dashauth *);

/*
 * The role helper every route that needs a login calls: 0 when the
 * request carries a live session whose user has at least role need (the
 * user and role then in *user and *role when not NULL; the user string is
 * valid until the next dashauth call), else the HTTP status to answer:
 * 401 without a live session, 403 when the role is too low. With logins
 * off: 0, user "" and role USERS_NONE.
 */
int		 dashauth_require(struct dashauth *, struct lws *wsi,
		    enum users_role need, const char **user, enum users_role *role);

/*
 * What a login sees (docs/dashboard.md, "Scope"): the shops of user as the
 * users file lists them ("tm,jd", valid until the next dashauth call), or
 * NULL when it sees every shop (no shops listed, logins off, no user).
 */
const char	*dashauth_scope(const struct dashauth *, const char *user);
/*
 * The same of the session sid ("": the token or an open feed, NULL); a
 * session that is no longer live gets DASHAUTH_SCOPE_NONE, a scope no
 * shop is in (users_scope_has), until its feed is closed.
 */
#define DASHAUTH_SCOPE_NONE	","
const char	*dashauth_sid_scope(struct dashauth *, const char *sid);

/*
 * Whether the /feed upgrade on wsi may go on: 0, with the session's id in
 * sid (DASHAUTH_SID_MAX bytes; "" when the token or no check let it in);
 * else the HTTP status to refuse it with (401 with logins on, 403 for a
 * wrong token without them).
 */
int		 dashauth_feed(struct dashauth *, struct lws *wsi, char *sid);
/*
 * 1 when the request on wsi carries "Authorization: Bearer TOKEN" with
 * dashboard.token (compared in constant time); 0 without a token set.
 */
int		 dashauth_bearer(struct dashauth *, struct lws *wsi);
/*
 * 1 when the request's Content-Type is application/json: a form of
 * another site cannot send one (CSRF), so every POST of /api/ wants it.
 */
int		 dashauth_json_type(struct lws *wsi);
/* 1 when dashboard.token is set. */
int		 dashauth_has_token(const struct dashauth *);
/* 1 while the session sid of an open feed lives (an open feed is use: it is touched). */
int		 dashauth_feed_live(struct dashauth *, const char *sid);

/* Every few seconds: expired sessions and stale counters go, the users file is read again if it changed. */
void		 dashauth_tick(struct dashauth *);

/* The per-request space of DASHAUTH_PROTOCOL. */
size_t		 dashauth_pss_size(void);
/* The /api/ mount's lws callback (its wsi's protocol is DASHAUTH_PROTOCOL). */
int		 dashauth_http(struct dashauth *, struct lws *wsi, int reason,
		    void *pss, void *in, size_t len);

#endif
