/* websess: the dashboard's login sessions in memory: random ids, a whole-life and an idle bound, a bounded count in all and per user, what each logged in against (pure: the caller passes now). */
#ifndef CHATMON_WEBSESS_H
#define CHATMON_WEBSESS_H

#include <stddef.h>
#include <stdint.h>

#define WEBSESS_ID_BYTES	32
#define WEBSESS_ID_LEN		43	/* base64url of 32 bytes, no padding */
#define WEBSESS_NAME_MAX	64
#define WEBSESS_STAMP_BYTES	32	/* what a session logged in against: a digest */

struct websess;

/*
 * A table of at most max sessions (max >= 1), at most per_user of them
 * one user's (1 <= per_user <= max); a session lives ttl_ms from its
 * login, and ends sooner when unused for idle_ms. NULL on ENOMEM or bad
 * bounds; websess_free frees it.
 */
struct websess	*websess_new(size_t max, size_t per_user, uint64_t ttl_ms,
		    uint64_t idle_ms);
void		 websess_free(struct websess *);

/*
 * A new session for user (at most WEBSESS_NAME_MAX bytes) from a fresh
 * 32-byte random id (libsodium), whose base64url form goes to id
 * (WEBSESS_ID_LEN + 1 bytes); stamp (WEBSESS_STAMP_BYTES, NULL: zeros)
 * is kept with it, for the caller to tell later whether what the user
 * logged in against (the password) is still the user's. Room is made so
 * that no login ends another user's session while others are many: when
 * user has per_user sessions already, user's own least used one ends
 * (*evicted = WEBSESS_EVICTED_OWN); else when the table is full, the
 * least used session of the user who holds the most
 * (WEBSESS_EVICTED_FULL); else *evicted is 0. 0, or -1 when user is too
 * long.
 */
#define WEBSESS_EVICTED_OWN	1
#define WEBSESS_EVICTED_FULL	2
int		 websess_create(struct websess *, const char *user,
		    const unsigned char *stamp, uint64_t now, char *id,
		    int *evicted);

/*
 * The user of the live session of id (the cookie's value, as the browser
 * sent it), or NULL: unknown, malformed, or expired (then ended). With
 * touch, the session counts as used now. With stamp not NULL, *stamp is
 * the session's stamp (WEBSESS_STAMP_BYTES). The strings are the table's
 * and valid until the next call that changes it.
 */
const char	*websess_get(struct websess *, const char *id, uint64_t now,
		    int touch, const unsigned char **stamp);

/* Ends the session of id: 1 when there was one, 0 when not. */
int		 websess_end(struct websess *, const char *id);
/* Ends every session of user; how many. */
size_t		 websess_end_user(struct websess *, const char *user);
/* Ends the expired sessions; how many. */
size_t		 websess_sweep(struct websess *, uint64_t now);
size_t		 websess_count(const struct websess *);
/* How many live sessions user has (expired ones not yet swept included). */
size_t		 websess_count_user(const struct websess *, const char *user);

/*
 * The values of cookie name in a Cookie request header (RFC 6265:
 * `a=1; b=2`), one a call: *pos starts at the header and is moved past
 * the value found, which goes to out (outsz bytes, NUL-terminated). 0, or
 * -1 when there is none left; a value that does not fit is passed over.
 * A header may name a cookie more than once (a browser sends those of
 * other paths or domains too, and a stale one may come first): the
 * caller tries each.
 */
int		 websess_cookie(const char **pos, const char *name, char *out,
		    size_t outsz);

#endif
