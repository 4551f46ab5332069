/* jwt: verifies an agent's token (a compact JWS: HS256, RS256 or ES256) against the keys of one key file (pure; reading the key file is its only I/O). */
#ifndef CHATMON_JWT_H
#define CHATMON_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "chatmon/util.h"

/* Longer tokens are refused before any work: a header line's worth, far above any real token. */
#define JWT_MAX_TOKEN	8192

/* The verification keys of one key file; immutable once loaded, so one set may serve any number of verifications. */
struct jwt_keys;

/*
 * Reads the key file at path and tells its kind by its content:
 *   - "-----BEGIN PUBLIC KEY-----" (PEM SubjectPublicKeyInfo): RSA of 2048
 *     bits or more verifies RS256, EC P-256 verifies ES256;
 *   - a JSON object with "keys" (a JWKS, RFC 7517): kty RSA (n, e), EC
 *     (crv P-256, x, y) or oct (k), each with optional kid, alg and use;
 *     keys with use other than "sig", or an alg, kty or crv not listed
 *     here are skipped; a private key ("d") refuses the file;
 *   - anything else: an HS256 shared secret, the file's bytes with one
 *     trailing newline stripped, at least 32 bytes.
 * Returns a set the caller owns (jwt_keys_free), or NULL with one line
 * appended to errs (which may be NULL): "PATH: why", or "PATH:LINE: why"
 * for a JWKS that is not valid JSON.
 */
struct jwt_keys	*jwt_keys_load(const char *path, struct sbuf *errs);
/* Accepts NULL; wipes the secrets. */
void		 jwt_keys_free(struct jwt_keys *);
/* The usable keys in the set (never 0 for a loaded set). */
size_t		 jwt_keys_count(const struct jwt_keys *);

/* What a token must say, besides a good signature. The strings are the caller's. */
struct jwt_check {
	const char	*claim;		/* the agent id's claim, e.g. "sub" */
	const char	*audience;	/* NULL or "": not checked; else "aud" (string or array) must contain it */
	const char	*issuer;	/* NULL or "": not checked; else "iss" must equal it */
	int64_t		 leeway_s;	/* allowed clock skew for exp and nbf, >= 0 */
};

/*
 * Verifies token (len bytes, need not be NUL-terminated) at now (Unix
 * seconds): the signature with the key the header's kid names (or, with
 * no kid, any key of the alg's type), then exp (required), nbf, iss, aud,
 * and that the claim is a non-empty string. Returns 0 with the claim's
 * value copied into id (NUL-terminated; a value that does not fit in
 * idlen is refused), or -1 with *why (when why is not NULL) set to a
 * short static English reason for logs, e.g. "expired", "bad signature",
 * "alg none refused", "unknown kid", "malformed". id is "" on failure.
 * Never logs, keeps nothing of the token, and leaves OpenSSL's error
 * queue empty (the TLS code on the same thread reads it).
 */
int		 jwt_verify(const struct jwt_keys *, const struct jwt_check *, const char *token,
		    size_t len, int64_t now, char *id, size_t idlen, const char **why);

#endif
