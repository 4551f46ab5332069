/* users: the dashboard's users file (USER:ROLE:HASH lines, argon2id hashes): parse, look up, verify, rewrite. */
#ifndef CHATMON_USERS_H
#define CHATMON_USERS_H

#include <stddef.h>
#include <time.h>

#include "chatmon/util.h"

#define USERS_NAME_MAX	64	/* bytes of a user name */
#define USERS_HASH_MAX	128	/* crypto_pwhash_STRBYTES, NUL included */
/*
 * Bytes of a new password (chatmon passwd, users_hash): a login sends it
 * in JSON, each byte escaped at worst as \u00XX, and the login's body
 * (dashauth.c's DASHAUTH_BODY_MAX) must hold that with a user name.
 */
#define USERS_PASSWORD_MAX 1024
/*
 * Bytes a login's password is checked up to (argon2 reads all of it):
 * the old limit, so that a password set before the one above still logs in.
 */
#define USERS_VERIFY_MAX 4096
#define USERS_SHOP_MAX	64	/* bytes of a shop id (config.h's shops) */
#define USERS_SHOPS_MAX	1024	/* bytes of a user's list of shops, NUL included */

/* Ordered: a role may do what every lower one may. */
enum users_role {
	USERS_NONE = 0,
	USERS_VIEWER = 1,	/* sees alerts, who waits, the figures */
	USERS_SUPERVISOR = 2,	/* may also act: handle alerts, send notes */
};

struct users;

/*
 * The users of text (the file's contents; file names it in errors). Lines:
 * `USER:ROLE:HASH` or `USER:ROLE:HASH:SHOPS` (SHOPS: shop ids joined by
 * ',', the only shops the user sees; without it every shop), blank lines and `#` comments; every error is added to
 * errs as "FILE:LINE: message" and makes it return NULL, after all lines
 * were read. No password or hash is ever quoted in an error. The caller
 * owns the result (users_free).
 */
struct users	*users_parse(const char *text, size_t len, const char *file,
		    struct sbuf *errs);
/* users_parse of the file at path; NULL with the reason in errs. */
struct users	*users_load(const char *path, struct sbuf *errs);
void		 users_free(struct users *);
size_t		 users_count(const struct users *);

/* user's role, USERS_NONE when there is no such user. */
enum users_role	 users_role(const struct users *, const char *user);

/*
 * user's shops as the file lists them ("tm,jd"; the users'), or NULL when
 * the user sees every shop (or there is no such user).
 */
const char	*users_shops(const struct users *, const char *user);
/* 1 when list is a valid SHOPS field: ids of 1-64 [A-Za-z0-9._-] joined by ','. */
int		 users_shops_ok(const char *list);
/*
 * 1 when a user of scope (users_shops: NULL or "" every shop) may see what
 * belongs to shop (NULL or "": no shop, which only an unscoped user sees).
 */
int		 users_scope_has(const char *scope, const char *shop);

/*
 * 1 when password is user's (its role in *role), 0 when not. An unknown
 * user costs the same argon2id work as a known one (a hash nobody knows
 * the password of), so the time taken does not tell which users exist.
 * -1 when argon2 could not get its memory.
 */
int		 users_verify(const struct users *, const char *user,
		    const char *password, size_t len, enum users_role *role);

/*
 * A digest of user's hash (USERS_STAMP_BYTES into out): what a session
 * logged in against, so that a new password (chatmon passwd draws a new
 * salt each time, so even the same password again) ends the sessions of
 * the old one. The hash itself stays here. 0, or -1 when there is no such
 * user.
 */
#define USERS_STAMP_BYTES	32
int		 users_stamp(const struct users *, const char *user,
		    unsigned char *out);

/* 1 when name is a valid user name: 1-64 bytes of [A-Za-z0-9._@-]. */
int		 users_name_ok(const char *name);
/* "viewer" / "supervisor"; NULL for USERS_NONE. Static strings. */
const char	*users_role_name(enum users_role);
/* The role called name; USERS_NONE when there is none. */
enum users_role	 users_role_parse(const char *name);
/* 1 when a user of role have may do what needs role need. */
int		 users_role_allows(enum users_role have, enum users_role need);

/*
 * password's argon2id hash (crypto_pwhash_str, the INTERACTIVE limits:
 * docs/dashboard.md says why) into out, USERS_HASH_MAX bytes. -1 when
 * argon2 could not get its memory or password is too long.
 */
int		 users_hash(const char *password, size_t len, char *out);

/*
 * text (a users file's contents) with user's line replaced by
 * `user:role:hash[:shops]` (shops NULL or "": none, every shop), or that
 * line added at the end, into out; every other line is kept byte for
 * byte. -1 on ENOMEM.
 */
int		 users_set_line(const char *text, size_t len, const char *user,
		    const char *role, const char *hash, const char *shops,
		    struct sbuf *out);

/*
 * Replace the file at path by text atomically, mode 0600: a temporary file
 * in the same directory, fsync, rename, fsync of the directory. -1 with
 * the reason in errs; the old file is then untouched.
 */
int		 users_write(const char *path, const char *text, size_t len,
		    struct sbuf *errs);

#endif
