/* dashauth: who may use the dashboard: logins (dashboard.users), sessions, the shared wallboard token, and the /api/ routes that serve them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <jansson.h>
#include <libwebsockets.h>
#include <sodium.h>

#include "chatmon/dashauth.h"
#include "chatmon/log.h"
#include "chatmon/ratelimit.h"

/*
 * Sessions live in this process's memory: there is one dashboard process
 * (it holds no state a second one could share), and a restart logging
 * everyone out is the price of keeping no session secret on disk.
 */
#define DASHAUTH_IDLE_MS	(60 * 60 * 1000ULL)	/* unused this long: logged out */
#define DASHAUTH_SESSIONS	1000	/* at most in all... */
#define DASHAUTH_SESSIONS_USER	20	/* ...and of one user: their least used goes first */
#define DASHAUTH_FAILS		5	/* failed logins per address and per user name... */
#define DASHAUTH_WINDOW_MS	(15 * 60 * 1000ULL)	/* ...in any 15 minutes */
#define DASHAUTH_KEYS		4096	/* addresses and names counted at most */
/*
 * A login's JSON: a password of USERS_PASSWORD_MAX bytes escaped at worst
 * (6 bytes each), a user name and the rest; also a password of before
 * that limit (USERS_VERIFY_MAX) written plainly
 */
#define DASHAUTH_BODY_MAX	8192
_Static_assert(USERS_STAMP_BYTES == WEBSESS_STAMP_BYTES, "a session keeps a users_stamp");
#define DASHAUTH_TOO_MANY	429	/* not in lws's table: its line has no reason phrase */

struct dashauth {
	char			*path;		/* the users file; NULL: logins off */
	char			*token;		/* the wallboard token; NULL: none */
	int			 tls;		/* the cookie is Secure */
	uint64_t		 ttl_ms;
	struct users		*users;
	struct stat		 st;		/* of the file users was read from */
	int			 st_bad;	/* the file as it is now did not load */
	int			 gone;		/* stat failed: said once, until it is back */
	struct websess		*sess;
	struct ratelimit	*rl;
	uint64_t		 ok, failed, limited;	/* logins, since start */
	int			(*origin_ok)(void *, struct lws *);
	void			*origin_arg;
};

enum dashauth_route { DA_OTHER, DA_LOGIN, DA_LOGOUT, DA_ME };

struct dashauth_req {		/* a POST's body, while it comes */
	enum dashauth_route	 route;
	int			 post, too_big;
	size_t			 len;
	char			 body[DASHAUTH_BODY_MAX];
};

/* The clock of sessions and counters: monotonic, so a clock step logs nobody out. */
static uint64_t
dashauth_now(void)
{
	return util_mono_ns() / 1000000 + 1;
}

static int
dashauth_same_file(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev &&
	    a->st_size == b->st_size && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	    a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/*
 * errs's lines as one, joined by "; ": a log message is one line, and a
 * newline in it is escaped (the last one showed as a trailing \x0a).
 */
static void
dashauth_one_line(const struct sbuf *errs, struct sbuf *out)
{
	const char	*p = sbuf_str(errs), *nl;

	for (; *p != '\0'; p = *nl != '\0' ? nl + 1 : nl) {
		if ((nl = strchr(p, '\n')) == NULL)
			nl = p + strlen(p);
		if ((out->len > 0 && sbuf_append(out, "; ", 2) == -1) ||
		    sbuf_append(out, p, (size_t)(nl - p)) == -1)
			return;		/* out of memory: what fitted */
	}
}

/* The users file again when it changed (chatmon passwd renames a new one in). */
static void
dashauth_reload(struct dashauth *a)
{
	struct stat	 st;
	struct sbuf	 errs, line;
	struct users	*u;

	if (a->path == NULL)
		return;
	/*
	 * Gone (deleted, its directory unmounted): the users read before stay,
	 * as for a file that does not load (docs/dashboard.md), and the log
	 * says so once; and once more when it is back.
	 */
	if (stat(a->path, &st) == -1) {
		if (!a->gone)
			log_warnx("dashauth_reload: %s: %s; keeping the %zu users "
			    "read before", a->path, strerror(errno),
			    users_count(a->users));
		a->gone = 1;
		a->st_bad = 0;	/* what comes back is judged afresh */
		return;
	}
	if (a->gone) {
		log_warnx("dashauth_reload: %s is back", a->path);
		a->gone = 0;
	}
	if (dashauth_same_file(&st, &a->st))
		return;
	sbuf_init(&errs);
	if ((u = users_load(a->path, &errs)) == NULL) {
		if (!a->st_bad) {
			sbuf_init(&line);
			dashauth_one_line(&errs, &line);
			log_warnx("dashauth_reload: %s changed and does not load, "
			    "keeping the users read before: %s", a->path,
			    sbuf_str(&line));
			sbuf_free(&line);
		}
		a->st_bad = 1;
	} else {
		users_free(a->users);
		a->users = u;
		a->st = st;
		a->st_bad = 0;
		log_info("dashauth_reload: %s read again, %zu users", a->path,
		    users_count(u));
	}
	sbuf_free(&errs);
}

struct dashauth *
dashauth_new(const char *users_path, const char *token, uint64_t ttl_ms,
    int tls, struct sbuf *errs)
{
	struct dashauth	*a;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		goto oom;
	a->tls = tls;
	a->ttl_ms = ttl_ms;
	if (token != NULL && token[0] != '\0' && (a->token = strdup(token)) == NULL)
		goto oom;
	if (users_path == NULL)
		return a;
	if ((a->path = strdup(users_path)) == NULL)
		goto oom;
	if (stat(users_path, &a->st) == -1) {
		sbuf_line(errs, "%s: %s (dashboard.users; chatmon passwd makes it)",
		    users_path, strerror(errno));
		goto err;
	}
	if ((a->users = users_load(users_path, errs)) == NULL)
		goto err;
	if (a->st.st_mode & 077)
		log_warnx("dashauth_new: %s is readable by others than its owner: "
		    "chmod 600 it (it holds password hashes)", users_path);
	if (users_count(a->users) == 0)
		log_warnx("dashauth_new: %s has no users: nobody can log in "
		    "(chatmon passwd adds one)", users_path);
	if ((a->sess = websess_new(DASHAUTH_SESSIONS, DASHAUTH_SESSIONS_USER, ttl_ms,
	    ttl_ms < DASHAUTH_IDLE_MS ? ttl_ms : DASHAUTH_IDLE_MS)) == NULL ||
	    (a->rl = ratelimit_new(DASHAUTH_KEYS, DASHAUTH_FAILS,
	    DASHAUTH_WINDOW_MS)) == NULL)
		goto oom;
	return a;
oom:
	sbuf_line(errs, "dashauth_new: out of memory");
err:
	dashauth_free(a);
	return NULL;
}

void
dashauth_free(struct dashauth *a)
{
	if (a == NULL)
		return;
	free(a->path);
	if (a->token != NULL)
		sodium_memzero(a->token, strlen(a->token));
	free(a->token);
	users_free(a->users);
	websess_free(a->sess);
	ratelimit_free(a->rl);
	free(a);
}

void
dashauth_set_origin_check(struct dashauth *a, int (*ok)(void *, struct lws *),
    void *arg)
{
	a->origin_ok = ok;
	a->origin_arg = arg;
}

/*
 * A POST from another site's page: refused as the API's other POSTs are.
 * SameSite=Strict and the JSON type already stop a form; this is the
 * third check docs/security.md promises, and it keeps a page of another
 * origin from logging a browser in as someone else (login CSRF) or out.
 */
static int
dashauth_origin_ok(struct dashauth *a, struct lws *wsi)
{
	if (a->origin_ok == NULL || a->origin_ok(a->origin_arg, wsi))
		return 1;
	log_warnx("dashauth_origin_ok: a login or logout from a foreign origin "
	    "refused (dashboard.allowed_origins)");
	return 0;
}

int
dashauth_logins(const struct dashauth *a)
{
	return a->path != NULL;
}

/* A constant-time comparison: the token must not leak by timing. */
static int
dashauth_token_ok(const char *given, const char *want)
{
	size_t		 gl = strlen(given), wl = strlen(want), i;
	unsigned char	 diff = gl != wl;

	for (i = 0; i < wl; i++)
		diff |= (unsigned char)want[i] ^ (unsigned char)(i < gl ? given[i] : 0);
	return diff == 0;
}

/*
 * The live session of sid and its user's role now (a user taken out of
 * the file, or demoted, loses it at once; a session of a password that
 * is no longer the user's ends): the user, or NULL.
 */
static const char *
dashauth_session(struct dashauth *a, const char *sid, int touch,
    enum users_role *role)
{
	unsigned char		 now[USERS_STAMP_BYTES];
	const unsigned char	*was;
	const char		*user;

	*role = USERS_NONE;
	if ((user = websess_get(a->sess, sid, dashauth_now(), touch,
	    &was)) == NULL)
		return NULL;
	if ((*role = users_role(a->users, user)) == USERS_NONE) {
		log_info("dashauth_session: %s is no longer a user: logged out", user);
		websess_end_user(a->sess, user);
		return NULL;
	}
	/*
	 * Only this session: the user may have logged in with the new
	 * password already, and the other old ones end as they are used (a
	 * feed's every DASH_AUTH_MS).
	 */
	if (users_stamp(a->users, user, now) == -1 ||
	    sodium_memcmp(now, was, sizeof(now)) != 0) {
		log_info("dashauth_session: %s's password changed: a session of "
		    "the old one ended", user);
		*role = USERS_NONE;
		websess_end(a->sess, sid);
		return NULL;
	}
	return user;
}

/*
 * The session of the request on wsi: the first value of the session
 * cookie that is a live session (dashauth_session), its id in sid
 * (DASHAUTH_SID_MAX bytes, "" for none); the user, or NULL. Every value
 * is tried: a browser sends the cookies of other paths and domains too,
 * a stale one may come first. The header is read whole, as long as lws
 * takes it (lwsctx.c's max_http_header_data), each Cookie line apart
 * (lws joins them with no ';').
 */
static const char *
dashauth_cookie_session(struct dashauth *a, struct lws *wsi, int touch,
    char *sid, enum users_role *role)
{
	const char	*pos, *user = NULL;
	char		*hdr;
	int		 size, i;

	*role = USERS_NONE;
	sid[0] = '\0';
	if ((size = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_COOKIE)) <= 0 ||
	    (hdr = malloc((size_t)++size)) == NULL)
		return NULL;
	for (i = 0; user == NULL && lws_hdr_copy_fragment(wsi, hdr, size,
	    WSI_TOKEN_HTTP_COOKIE, i) >= 0; i++)
		for (pos = hdr; user == NULL && websess_cookie(&pos,
		    DASHAUTH_COOKIE, sid, DASHAUTH_SID_MAX) == 0; )
			user = dashauth_session(a, sid, touch, role);
	sodium_memzero(hdr, (size_t)size);
	free(hdr);
	if (user == NULL)
		sid[0] = '\0';
	return user;
}

int
dashauth_require(struct dashauth *a, struct lws *wsi, enum users_role need,
    const char **user, enum users_role *role)
{
	char		 sid[DASHAUTH_SID_MAX];
	const char	*u;
	enum users_role	 r;

	if (user != NULL)
		*user = "";
	if (role != NULL)
		*role = USERS_NONE;
	if (a->path == NULL)
		return 0;
	if ((u = dashauth_cookie_session(a, wsi, 1, sid, &r)) == NULL)
		return HTTP_STATUS_UNAUTHORIZED;
	if (!users_role_allows(r, need))
		return HTTP_STATUS_FORBIDDEN;
	if (user != NULL)
		*user = u;
	if (role != NULL)
		*role = r;
	return 0;
}

int
dashauth_feed(struct dashauth *a, struct lws *wsi, char *sid)
{
	char		 buf[512];
	const char	*tok;
	enum users_role	 r;
	int		 token_ok;

	if (a->path != NULL && dashauth_cookie_session(a, wsi, 1, sid,
	    &r) != NULL && users_role_allows(r, USERS_VIEWER))
		return 0;
	sid[0] = '\0';
	/* the wallboard's token: the feed, read-only, and nothing of /api/ */
	token_ok = a->token != NULL &&
	    (tok = lws_get_urlarg_by_name(wsi, "token=", buf, sizeof(buf))) != NULL &&
	    dashauth_token_ok(tok, a->token);
	if (token_ok || (a->path == NULL && a->token == NULL))
		return 0;
	return a->path != NULL ? HTTP_STATUS_UNAUTHORIZED : HTTP_STATUS_FORBIDDEN;
}

int
dashauth_has_token(const struct dashauth *a)
{
	return a->token != NULL;
}

int
dashauth_bearer(struct dashauth *a, struct lws *wsi)
{
	char	hdr[512];
	int	n, ok;

	if (a->token == NULL ||
	    (n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION)) <= 0 ||
	    (size_t)n >= sizeof(hdr) ||
	    lws_hdr_copy(wsi, hdr, sizeof(hdr), WSI_TOKEN_HTTP_AUTHORIZATION) < 0 ||
	    strncasecmp(hdr, "Bearer ", 7) != 0)
		return 0;
	ok = dashauth_token_ok(hdr + 7, a->token);
	sodium_memzero(hdr, sizeof(hdr));
	return ok;
}

int
dashauth_feed_live(struct dashauth *a, const char *sid)
{
	enum users_role	r;

	return sid[0] == '\0' || dashauth_session(a, sid, 1, &r) != NULL;
}

void
dashauth_tick(struct dashauth *a)
{
	uint64_t	now = dashauth_now();

	if (a->path == NULL)
		return;
	dashauth_reload(a);
	websess_sweep(a->sess, now);
	ratelimit_sweep(a->rl, now);
}

size_t
dashauth_pss_size(void)
{
	return sizeof(struct dashauth_req);
}

/* --- the /api/ routes ----------------------------------------------------- */

/*
 * One JSON answer, whole, and the transaction ends. cookie: a Set-Cookie
 * value or NULL; retry_s > 0: a Retry-After. -1 closes the connection.
 * The longest is a whoami of a long shop list, a few KiB: one write (lws
 * keeps what the socket did not take and sends it before anything else).
 */
static int
dashauth_answer(struct lws *wsi, unsigned status, const char *json,
    const char *cookie, unsigned long retry_s)
{
	unsigned char	 hbuf[LWS_PRE + 1024], *start = hbuf + LWS_PRE, *p = start;
	unsigned char	*end = hbuf + sizeof(hbuf) - 1, *bbuf;
	char		 retry[24];
	size_t		 len = strlen(json);
	int		 rc = -1;

	/* lws writes its framing into the LWS_PRE bytes before the body */
	if ((bbuf = malloc(LWS_PRE + len)) == NULL) {
		log_warnx("dashauth_answer: out of memory");
		return -1;
	}
	memcpy(bbuf + LWS_PRE, json, len);
	snprintf(retry, sizeof(retry), "%lu", retry_s);
	if (lws_add_http_common_headers(wsi, status, "application/json", len, &p,
	    end) ||
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
	    (const unsigned char *)"no-store", 8, &p, end) ||
	    lws_add_http_header_by_name(wsi,
	    (const unsigned char *)"x-content-type-options:",
	    (const unsigned char *)"nosniff", 7, &p, end) ||
	    (cookie != NULL && lws_add_http_header_by_name(wsi,
	    (const unsigned char *)"set-cookie:", (const unsigned char *)cookie,
	    (int)strlen(cookie), &p, end)) ||
	    (retry_s > 0 && lws_add_http_header_by_name(wsi,
	    (const unsigned char *)"retry-after:", (const unsigned char *)retry,
	    (int)strlen(retry), &p, end)) ||
	    (status == HTTP_STATUS_METHOD_NOT_ALLOWED &&
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"allow:",
	    (const unsigned char *)"POST", 4, &p, end)) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		goto out;
	if (lws_write(wsi, bbuf + LWS_PRE, len, LWS_WRITE_HTTP_FINAL) != (int)len)
		goto out;
	rc = lws_http_transaction_completed(wsi) ? -1 : 0;
out:
	free(bbuf);
	return rc;
}

static int
dashauth_status(struct lws *wsi, unsigned status)
{
	const char	*json;

	switch (status) {
	case HTTP_STATUS_UNAUTHORIZED:
		json = "{\"error\":\"not logged in\"}";
		break;
	case HTTP_STATUS_FORBIDDEN:
		json = "{\"error\":\"your role may not do that\"}";
		break;
	case HTTP_STATUS_NOT_FOUND:
		json = "{\"error\":\"no such route\"}";
		break;
	case HTTP_STATUS_METHOD_NOT_ALLOWED:
		json = "{\"error\":\"method not allowed\"}";
		break;
	case HTTP_STATUS_UNSUPPORTED_MEDIA_TYPE:
		json = "{\"error\":\"want Content-Type: application/json\"}";
		break;
	case HTTP_STATUS_REQ_ENTITY_TOO_LARGE:
		json = "{\"error\":\"too large\"}";
		break;
	case HTTP_STATUS_BAD_REQUEST:
		json = "{\"error\":\"want {\\\"user\\\":…,\\\"password\\\":…}\"}";
		break;
	default:
		json = "{\"error\":\"unavailable\"}";
		break;
	}
	return dashauth_answer(wsi, status, json, NULL, 0);
}

/*
 * {"user":…,"role":…[,"shops":[…]]} appended to out, its '{' given as open
 * (shops: the user's list, NULL every shop). An sbuf: a list the users
 * file accepts (USERS_SHOPS_MAX) is about three times as long quoted.
 * -1 out of memory.
 */
static int
dashauth_whoami(struct sbuf *out, const char *open, const char *user,
    enum users_role role, const char *shops)
{
	const char	*p, *comma;

	/* user names are [A-Za-z0-9._@-] and shop ids [A-Za-z0-9._-]: nothing to escape */
	if (sbuf_printf(out, "%s\"user\":\"%s\",\"role\":\"%s\"", open, user,
	    users_role_name(role)) == -1)
		return -1;
	if (shops != NULL) {
		if (sbuf_printf(out, ",\"shops\":[") == -1)
			return -1;
		for (p = shops; ; p = comma + 1) {
			comma = strchr(p, ',');
			if (sbuf_printf(out, "%s\"%.*s\"", p == shops ? "" : ",",
			    (int)(comma != NULL ? (size_t)(comma - p) : strlen(p)),
			    p) == -1)
				return -1;
			if (comma == NULL)
				break;
		}
		if (sbuf_printf(out, "]") == -1)
			return -1;
	}
	return sbuf_printf(out, "}");
}

/* The whoami of user (open: what comes before it), answered 200; 503 out of memory. */
static int
dashauth_answer_whoami(struct dashauth *a, struct lws *wsi, const char *open,
    const char *user, enum users_role role, const char *cookie)
{
	struct sbuf	me;
	int		rc;

	sbuf_init(&me);
	if (dashauth_whoami(&me, open, user, role, users_shops(a->users,
	    user)) == -1) {
		sbuf_free(&me);
		log_warnx("dashauth_answer_whoami: out of memory");
		return dashauth_status(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE);
	}
	rc = dashauth_answer(wsi, HTTP_STATUS_OK, sbuf_str(&me), cookie, 0);
	sbuf_free(&me);
	return rc;
}

const char *
dashauth_scope(const struct dashauth *a, const char *user)
{
	if (a->path == NULL || user == NULL || user[0] == '\0')
		return NULL;
	return users_shops(a->users, user);
}

const char *
dashauth_sid_scope(struct dashauth *a, const char *sid)
{
	enum users_role	 r;
	const char	*user;

	/* the token's wallboard and an open dashboard see every shop */
	if (a->path == NULL || sid[0] == '\0')
		return NULL;
	/* a login that ended sees nothing until its feed is closed, not everything */
	if ((user = dashauth_session(a, sid, 0, &r)) == NULL)
		return DASHAUTH_SCOPE_NONE;
	return users_shops(a->users, user);
}

/*
 * The CSRF defence with SameSite=Strict: a cross-site form can only send
 * text/plain, urlencoded or multipart bodies; application/json from
 * another site needs a CORS preflight this server never grants.
 */
int
dashauth_json_type(struct lws *wsi)
{
	char	ct[128];

	if (lws_hdr_copy(wsi, ct, sizeof(ct), WSI_TOKEN_HTTP_CONTENT_TYPE) <= 0)
		return 0;
	return strncasecmp(ct, "application/json", 16) == 0 &&
	    (ct[16] == '\0' || ct[16] == ';' || ct[16] == ' ');
}

static enum dashauth_route
dashauth_route(const char *in, size_t len)
{
	if (len == 6 && memcmp(in, "/login", 6) == 0)
		return DA_LOGIN;
	if (len == 7 && memcmp(in, "/logout", 7) == 0)
		return DA_LOGOUT;
	if (len == 3 && memcmp(in, "/me", 3) == 0)
		return DA_ME;
	return DA_OTHER;
}

static int
dashauth_login(struct dashauth *a, struct lws *wsi, struct dashauth_req *q)
{
	char		 ip[64], ukey[RATELIMIT_KEY_MAX], akey[RATELIMIT_KEY_MAX];
	char		 sid[DASHAUTH_SID_MAX], cookie[256];
	char		 shown[USERS_NAME_MAX + 1];	/* outlives the document */
	unsigned char	 stamp[USERS_STAMP_BYTES];
	const char	*user, *pw;
	json_t		*doc, *ju, *jp;
	uint64_t	 wait, w2, now = dashauth_now();
	enum users_role	 role;
	int		 rc, evicted;

	if ((doc = json_loadb(q->body, q->len, 0, NULL)) == NULL ||
	    !json_is_object(doc) ||
	    !json_is_string(ju = json_object_get(doc, "user")) ||
	    !json_is_string(jp = json_object_get(doc, "password"))) {
		json_decref(doc);
		return dashauth_status(wsi, HTTP_STATUS_BAD_REQUEST);
	}
	user = json_string_value(ju);
	pw = json_string_value(jp);
	snprintf(shown, sizeof(shown), "%s", users_name_ok(user) ? user :
	    "(not a user name)");
	if (lws_get_peer_simple(wsi, ip, sizeof(ip)) == NULL)
		snprintf(ip, sizeof(ip), "?");
	snprintf(akey, sizeof(akey), "a:%s", ip);
	snprintf(ukey, sizeof(ukey), "u:%.64s", user);
	wait = ratelimit_wait(a->rl, akey, now);
	if ((w2 = ratelimit_wait(a->rl, ukey, now)) > wait)
		wait = w2;
	if (wait > 0) {
		a->limited++;
		log_warnx("dashauth_login: %s from %s refused: too many failed "
		    "logins (%d in %llu min), %llu s to wait", shown, ip,
		    DASHAUTH_FAILS, (unsigned long long)(DASHAUTH_WINDOW_MS / 60000),
		    (unsigned long long)((wait + 999) / 1000));
		json_decref(doc);
		return dashauth_answer(wsi, DASHAUTH_TOO_MANY,
		    "{\"error\":\"too many failed logins\"}", NULL,
		    (unsigned long)((wait + 999) / 1000));
	}
	dashauth_reload(a);
	/* an invalid name is looked up as no one: the same work, the same answer */
	rc = users_verify(a->users, users_name_ok(user) ? user : "", pw,
	    json_string_length(jp), &role);
	json_decref(doc);	/* the password with it */
	if (rc == -1) {
		log_warnx("dashauth_login: argon2id could not get its memory");
		return dashauth_status(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE);
	}
	if (rc == 0) {
		a->failed++;
		ratelimit_fail(a->rl, akey, now);
		ratelimit_fail(a->rl, ukey, now);
		log_warnx("dashauth_login: a failed login for %s from %s (%llu "
		    "failed since start)", shown, ip, (unsigned long long)a->failed);
		return dashauth_answer(wsi, HTTP_STATUS_UNAUTHORIZED,
		    "{\"error\":\"wrong user or password\"}", NULL, 0);
	}
	/* the user proved the password: their name's count starts over, not the address's */
	ratelimit_clear(a->rl, ukey);
	/* the hash just verified: users is not read again in between */
	if (users_stamp(a->users, shown, stamp) == -1 ||
	    websess_create(a->sess, shown, stamp, now, sid, &evicted) == -1)
		return dashauth_status(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE);
	if (evicted == WEBSESS_EVICTED_OWN)
		log_info("dashauth_login: %s has %d sessions: their least used "
		    "one ended", shown, DASHAUTH_SESSIONS_USER);
	else if (evicted)
		log_warnx("dashauth_login: %d sessions: the least used one of "
		    "the user who has the most ended", DASHAUTH_SESSIONS);
	a->ok++;
	log_info("dashauth_login: %s (%s) logged in from %s", shown,
	    users_role_name(role), ip);
	snprintf(cookie, sizeof(cookie), "%s=%s; Path=/; Max-Age=%llu; HttpOnly; "
	    "SameSite=Strict%s", DASHAUTH_COOKIE, sid,
	    (unsigned long long)(a->ttl_ms / 1000), a->tls ? "; Secure" : "");
	sodium_memzero(sid, sizeof(sid));
	return dashauth_answer_whoami(a, wsi, "{", shown, role, cookie);
}

static int
dashauth_logout(struct dashauth *a, struct lws *wsi)
{
	char		 sid[DASHAUTH_SID_MAX], cookie[160];
	const char	*user;
	enum users_role	 r;

	/* the session the request is of: the one dashauth_require found */
	if ((user = dashauth_cookie_session(a, wsi, 0, sid, &r)) == NULL)
		return dashauth_status(wsi, HTTP_STATUS_UNAUTHORIZED);
	log_info("dashauth_logout: %s logged out", user);
	websess_end(a->sess, sid);
	snprintf(cookie, sizeof(cookie), "%s=; Path=/; Max-Age=0; HttpOnly; "
	    "SameSite=Strict%s", DASHAUTH_COOKIE, a->tls ? "; Secure" : "");
	return dashauth_answer(wsi, HTTP_STATUS_OK, "{\"ok\":true}", cookie, 0);
}

/* A request whose body is in (a POST) or that has none. */
static int
dashauth_route_run(struct dashauth *a, struct lws *wsi, struct dashauth_req *q)
{
	const char	*user;
	enum users_role	 role;
	int		 st;

	/*
	 * GET /api/login: whether logins are on and who is logged in, never
	 * 401, so that the page can ask without the browser logging an error.
	 */
	if (q->route == DA_LOGIN && !q->post) {
		if (a->path == NULL ||
		    dashauth_require(a, wsi, USERS_VIEWER, &user, &role) != 0)
			return dashauth_answer(wsi, HTTP_STATUS_OK, a->path == NULL ?
			    "{\"logins\":false}" : "{\"logins\":true}", NULL, 0);
		return dashauth_answer_whoami(a, wsi, "{\"logins\":true,", user,
		    role, NULL);
	}
	if (a->path == NULL)
		return dashauth_answer(wsi, HTTP_STATUS_NOT_FOUND,
		    "{\"error\":\"logins are off (dashboard.users)\"}", NULL, 0);
	switch (q->route) {
	case DA_LOGIN:
		if (!dashauth_json_type(wsi))
			return dashauth_status(wsi, HTTP_STATUS_UNSUPPORTED_MEDIA_TYPE);
		if (!dashauth_origin_ok(a, wsi))
			return dashauth_answer(wsi, HTTP_STATUS_FORBIDDEN,
			    "{\"error\":\"origin refused\"}", NULL, 0);
		if (q->too_big)
			return dashauth_status(wsi, HTTP_STATUS_REQ_ENTITY_TOO_LARGE);
		return dashauth_login(a, wsi, q);
	case DA_LOGOUT:
		if ((st = dashauth_require(a, wsi, USERS_VIEWER, NULL, NULL)) != 0)
			return dashauth_status(wsi, (unsigned)st);
		if (!q->post)
			return dashauth_status(wsi, HTTP_STATUS_METHOD_NOT_ALLOWED);
		if (!dashauth_json_type(wsi))
			return dashauth_status(wsi, HTTP_STATUS_UNSUPPORTED_MEDIA_TYPE);
		if (!dashauth_origin_ok(a, wsi))
			return dashauth_answer(wsi, HTTP_STATUS_FORBIDDEN,
			    "{\"error\":\"origin refused\"}", NULL, 0);
		return dashauth_logout(a, wsi);
	case DA_ME:
		if ((st = dashauth_require(a, wsi, USERS_VIEWER, &user, &role)) != 0)
			return dashauth_status(wsi, (unsigned)st);
		return dashauth_answer_whoami(a, wsi, "{", user, role, NULL);
	default:
		/* nothing else exists; without a login that is not said either */
		if ((st = dashauth_require(a, wsi, USERS_VIEWER, NULL, NULL)) != 0)
			return dashauth_status(wsi, (unsigned)st);
		return dashauth_status(wsi, HTTP_STATUS_NOT_FOUND);
	}
}

int
dashauth_http(struct dashauth *a, struct lws *wsi, int reason, void *pss,
    void *in, size_t len)
{
	struct dashauth_req	*q = pss;

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		memset(q, 0, sizeof(*q));
		q->route = in != NULL ? dashauth_route(in, len) : DA_OTHER;
		if (lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0) {
			q->post = 1;
			/* lws would wait for 100 MB of a body without a length */
			if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0) {
				(void)lws_return_http_status(wsi,
				    HTTP_STATUS_LENGTH_REQUIRED, NULL);
				return -1;
			}
			return 0;	/* the body first: HTTP_BODY_COMPLETION answers */
		}
		if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0)
			return dashauth_status(wsi, HTTP_STATUS_METHOD_NOT_ALLOWED);
		return dashauth_route_run(a, wsi, q);
	case LWS_CALLBACK_HTTP_BODY:
		if (q->len + len > sizeof(q->body)) {
			/* a login is a few hundred bytes: no reason to read on */
			q->too_big = 1;
			(void)dashauth_status(wsi, HTTP_STATUS_REQ_ENTITY_TOO_LARGE);
			return -1;
		}
		if (len > 0)
			memcpy(q->body + q->len, in, len);
		q->len += len;
		return 0;
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		return dashauth_route_run(a, wsi, q);
	default:
		return lws_callback_http_dummy(wsi, (enum lws_callback_reasons)reason,
		    pss, in, len);
	}
}
