/* jwt: verifies an agent's token (a compact JWS: HS256, RS256 or ES256) against the keys of one key file (pure; reading the key file is its only I/O). */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "chatmon/jwt.h"
#include "chatmon/util.h"

/*
 * Written on OpenSSL's EVP interface rather than on Debian's libjwt or
 * cjose: bookworm's libjwt (1.10) reads neither a JWKS nor a clock skew,
 * and cjose reads no PEM and is written on the RSA and EC_KEY calls that
 * OpenSSL 3 deprecates. What is refused is decided here, in one place
 * (docs/security.md, "Agent tokens").
 */

#define JWT_MAX_FILE	(1u << 20)	/* a JWKS of a few hundred keys; a secret or a PEM key is far smaller */
#define JWT_MIN_SECRET	32		/* RFC 7518 3.2: an HS256 key at least as long as the hash */
#define JWT_MIN_RSA	2048		/* bits; RFC 7518 3.3 */
#define JWT_HS_LEN	32		/* HMAC-SHA-256 */
#define JWT_ES_HALF	32		/* r and s of a P-256 signature, JOSE's fixed width (RFC 7518 3.4) */

/*
 * The one alg a key verifies. Each kind of key verifies exactly one of
 * the algs taken here, so a key whose "alg" names another is not loaded:
 * a key never verifies an alg other than its own (no HS256 with an RSA
 * key's bytes as the secret).
 */
enum jwt_alg {
	JWT_NONE = 0,
	JWT_HS256,
	JWT_RS256,
	JWT_ES256
};

struct jwt_key {
	enum jwt_alg	 alg;
	char		*kid;		/* NULL: none; owned */
	int		 anykid;	/* the only key of a PEM or secret file: answers any kid */
	EVP_PKEY	*pkey;		/* RS256, ES256; owned */
	unsigned char	*secret;	/* HS256; owned, wiped on free */
	size_t		 secretlen;
};

struct jwt_keys {
	struct jwt_key	*k;
	size_t		 n;
	size_t		 cap;
};

static void	jwt_err(struct sbuf *, const char *, const char *, ...) UTIL_PRINTF(3, 4);

static void
jwt_err(struct sbuf *errs, const char *path, const char *fmt, ...)
{
	char	msg[256];
	va_list	ap;

	if (errs == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	sbuf_line(errs, "%s: %s", path, msg);
}

static enum jwt_alg
jwt_alg_named(const char *s)
{
	if (strcmp(s, "HS256") == 0)
		return JWT_HS256;
	if (strcmp(s, "RS256") == 0)
		return JWT_RS256;
	if (strcmp(s, "ES256") == 0)
		return JWT_ES256;
	return JWT_NONE;
}

static int
jwt_b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/*
 * base64url without padding (RFC 7515 2), strictly: no '=', nothing out
 * of the alphabet, and the unused low bits of the last character zero,
 * so that every byte string has exactly one encoding. out has room for
 * n * 3 / 4 bytes. -1 when s is not such an encoding.
 */
static int
jwt_b64url(const char *s, size_t n, unsigned char *out, size_t *outlen)
{
	uint32_t	acc = 0;
	unsigned	bits = 0;
	size_t		i, o = 0;
	int		v;

	if (n % 4 == 1)
		return -1;
	for (i = 0; i < n; i++) {
		if ((v = jwt_b64val((unsigned char)s[i])) == -1)
			return -1;
		acc = (acc << 6 | (uint32_t)v) & 0xffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	if ((acc & ((1u << bits) - 1)) != 0)
		return -1;
	*outlen = o;
	return 0;
}

/* A JWKS member decoded into a new buffer the caller frees; NULL when absent or not base64url. */
static unsigned char *
jwt_b64member(const json_t *o, const char *name, size_t *len)
{
	const json_t	*v = json_object_get(o, name);
	unsigned char	*b;
	size_t		 n;

	if (!json_is_string(v))
		return NULL;
	n = json_string_length(v);
	if ((b = malloc(n * 3 / 4 + 1)) == NULL)
		return NULL;
	if (jwt_b64url(json_string_value(v), n, b, len) == -1) {
		free(b);
		return NULL;
	}
	return b;
}

/* A new slot at the end of ks, zeroed; NULL when out of memory. */
static struct jwt_key *
jwt_keys_add(struct jwt_keys *ks)
{
	struct jwt_key	*k;
	size_t		 cap;

	if (ks->n == ks->cap) {
		cap = ks->cap ? ks->cap * 2 : 4;
		if ((k = reallocarray(ks->k, cap, sizeof(*k))) == NULL)
			return NULL;
		ks->k = k;
		ks->cap = cap;
	}
	k = &ks->k[ks->n++];
	memset(k, 0, sizeof(*k));
	return k;
}

/* Which alg a public key verifies, or JWT_NONE with why (static) when it verifies none of ours. */
static enum jwt_alg
jwt_pkey_alg(EVP_PKEY *pk, const char **why)
{
	char	group[64];

	if (EVP_PKEY_is_a(pk, "RSA")) {
		if (EVP_PKEY_get_bits(pk) < JWT_MIN_RSA) {
			*why = "an RSA key shorter than 2048 bits";
			return JWT_NONE;
		}
		return JWT_RS256;
	}
	if (EVP_PKEY_is_a(pk, "EC")) {
		if (EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group,
		    sizeof(group), NULL) != 1 || strcmp(group, "prime256v1") != 0) {
			*why = "an EC key not on P-256 (prime256v1)";
			return JWT_NONE;
		}
		return JWT_ES256;
	}
	*why = "neither an RSA nor an EC P-256 key";
	return JWT_NONE;
}

/* No passphrase is ever asked for: a public key has none, and a daemon has no terminal. */
static int
jwt_nopass(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

static int
jwt_load_pem(struct jwt_keys *ks, const char *path, const unsigned char *b, size_t len,
    struct sbuf *errs)
{
	BIO		*bio = NULL;
	EVP_PKEY	*pk = NULL, *more = NULL;
	struct jwt_key	*k;
	enum jwt_alg	 alg;
	const char	*why;

	if ((bio = BIO_new_mem_buf(b, (int)len)) == NULL)
		goto oom;
	if ((pk = PEM_read_bio_PUBKEY(bio, NULL, jwt_nopass, NULL)) == NULL) {
		if (memmem(b, len, "PRIVATE KEY-----", 16) != NULL)
			jwt_err(errs, path, "a private key: give the public key "
			    "(openssl pkey -pubout), chatmond only verifies");
		else if (memmem(b, len, "CERTIFICATE-----", 16) != NULL)
			jwt_err(errs, path, "a certificate: give its public key "
			    "(openssl x509 -pubkey -noout)");
		else
			jwt_err(errs, path, "no PEM public key (-----BEGIN PUBLIC KEY-----) could be read");
		goto err;
	}
	/* a second key would be silently unused: several keys go in a JWKS, each with its kid */
	if ((more = PEM_read_bio_PUBKEY(bio, NULL, jwt_nopass, NULL)) != NULL) {
		jwt_err(errs, path, "more than one public key: put several keys in a JWKS");
		goto err;
	}
	if ((alg = jwt_pkey_alg(pk, &why)) == JWT_NONE) {
		jwt_err(errs, path, "%s: RSA (2048 bits or more) or EC P-256 only", why);
		goto err;
	}
	if ((k = jwt_keys_add(ks)) == NULL)
		goto oom;
	k->alg = alg;
	k->anykid = 1;
	k->pkey = pk;
	BIO_free(bio);
	return 0;
oom:
	jwt_err(errs, path, "out of memory");
err:
	EVP_PKEY_free(more);
	EVP_PKEY_free(pk);
	BIO_free(bio);
	return -1;
}

static int
jwt_load_secret(struct jwt_keys *ks, const char *path, const unsigned char *b, size_t len,
    struct sbuf *errs)
{
	struct jwt_key	*k;

	/* what `echo secret >file` and editors add is not part of the secret */
	if (len > 0 && b[len - 1] == '\n')
		len--;
	if (len > 0 && b[len - 1] == '\r')
		len--;
	if (len < JWT_MIN_SECRET) {
		jwt_err(errs, path, "an HS256 secret of %zu bytes: %d or more please "
		    "(e.g. openssl rand -base64 48)", len, JWT_MIN_SECRET);
		return -1;
	}
	if ((k = jwt_keys_add(ks)) == NULL || (k->secret = malloc(len)) == NULL) {
		jwt_err(errs, path, "out of memory");
		return -1;
	}
	memcpy(k->secret, b, len);
	k->secretlen = len;
	k->alg = JWT_HS256;
	k->anykid = 1;
	return 0;
}

/*
 * Whether the bytes of a file that is neither PEM nor a JWKS are a key of
 * another form (DER, OpenSSH) or carry a byte order mark: said, and 1;
 * 0 for a secret.
 */
static int
jwt_not_secret(const char *path, const unsigned char *b, size_t len,
    struct sbuf *errs)
{
	static const char *const ssh[] = { "ssh-rsa ", "ssh-ed25519 ",
	    "ecdsa-sha2-", "ssh-dss " };
	const unsigned char	*p;
	EVP_PKEY		*pk;
	X509			*x;
	size_t			 i;

	if (len >= 3 && memcmp(b, "\xef\xbb\xbf", 3) == 0) {
		jwt_err(errs, path, "starts with a byte order mark: an HS256 "
		    "secret is the file's bytes as they are; save it without one");
		return 1;
	}
	for (i = 0; i < UTIL_NELEM(ssh); i++)
		if (len > strlen(ssh[i]) && memcmp(b, ssh[i], strlen(ssh[i])) == 0) {
			jwt_err(errs, path, "an OpenSSH public key: give it as PEM "
			    "(ssh-keygen -e -m PKCS8 -f FILE)");
			return 1;
		}
	if (len > LONG_MAX)
		return 0;
	p = b;
	if ((pk = d2i_PUBKEY(NULL, &p, (long)len)) != NULL) {
		EVP_PKEY_free(pk);
		jwt_err(errs, path, "a DER public key: give it as PEM (openssl pkey "
		    "-pubin -inform DER -outform PEM)");
		return 1;
	}
	p = b;
	if ((x = d2i_X509(NULL, &p, (long)len)) != NULL) {
		X509_free(x);
		jwt_err(errs, path, "a DER certificate: give its public key as PEM "
		    "(openssl x509 -inform DER -pubkey -noout)");
		return 1;
	}
	p = b;
	if ((pk = d2i_AutoPrivateKey(NULL, &p, (long)len)) != NULL) {
		EVP_PKEY_free(pk);
		jwt_err(errs, path, "a DER private key: give the public key as PEM "
		    "(openssl pkey -inform DER -pubout), chatmond only verifies");
		return 1;
	}
	ERR_clear_error();
	return 0;
}

/* An RSA public key from a JWK's n and e; NULL with why (static). */
static EVP_PKEY *
jwt_jwk_rsa(const json_t *jk, const char **why)
{
	OSSL_PARAM_BLD	*bld = NULL;
	OSSL_PARAM	*params = NULL;
	EVP_PKEY_CTX	*ctx = NULL;
	EVP_PKEY	*pk = NULL;
	BIGNUM		*n = NULL, *e = NULL;
	unsigned char	*nb = NULL, *eb = NULL;
	size_t		 nlen, elen;

	*why = "out of memory";
	if ((nb = jwt_b64member(jk, "n", &nlen)) == NULL ||
	    (eb = jwt_b64member(jk, "e", &elen)) == NULL) {
		*why = "\"n\" and \"e\" must be base64url strings";
		goto err;
	}
	if ((n = BN_bin2bn(nb, (int)nlen, NULL)) == NULL ||
	    (e = BN_bin2bn(eb, (int)elen, NULL)) == NULL)
		goto err;
	/* e = 1 would make any message its own signature; OpenSSL takes the key as given */
	if (!BN_is_odd(e) || BN_is_one(e) || !BN_is_odd(n)) {
		*why = "not an RSA public key (\"n\" and \"e\" must be odd, e > 1)";
		goto err;
	}
	if (BN_num_bits(n) < JWT_MIN_RSA) {
		*why = "an RSA key shorter than 2048 bits";
		goto err;
	}
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) != 1 ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) != 1 ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) != 1)
		goto err;
	if (EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1) {
		*why = "OpenSSL refused the RSA key";
		pk = NULL;
	}
err:
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	free(nb);
	free(eb);
	return pk;
}

/* A P-256 public key from a JWK's x and y (32 bytes each), checked to be on the curve; NULL with why (static). */
static EVP_PKEY *
jwt_jwk_ec(const json_t *jk, const char **why)
{
	OSSL_PARAM_BLD	*bld = NULL;
	OSSL_PARAM	*params = NULL;
	EVP_PKEY_CTX	*ctx = NULL, *chk = NULL;
	EVP_PKEY	*pk = NULL;
	unsigned char	*x = NULL, *y = NULL;
	unsigned char	 pt[1 + 2 * JWT_ES_HALF];
	size_t		 xlen, ylen;

	*why = "out of memory";
	if ((x = jwt_b64member(jk, "x", &xlen)) == NULL ||
	    (y = jwt_b64member(jk, "y", &ylen)) == NULL ||
	    xlen != JWT_ES_HALF || ylen != JWT_ES_HALF) {
		*why = "\"x\" and \"y\" must be base64url strings of 32 bytes";
		goto err;
	}
	pt[0] = 0x04;	/* SEC 1 uncompressed point */
	memcpy(pt + 1, x, JWT_ES_HALF);
	memcpy(pt + 1 + JWT_ES_HALF, y, JWT_ES_HALF);
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) != 1 ||
	    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt)) != 1 ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) != 1)
		goto err;
	if (EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1) {
		*why = "not a point of P-256";
		pk = NULL;
		goto err;
	}
	/*
	 * A point off the curve is the invalid-curve attack's way in. OpenSSL
	 * 3.0's decoder refuses one already (test_jwt); checking again keeps
	 * that true whatever a later decoder does.
	 */
	if ((chk = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL)) == NULL ||
	    EVP_PKEY_public_check(chk) != 1) {
		*why = "not a point of P-256";
		EVP_PKEY_free(pk);
		pk = NULL;
	}
err:
	EVP_PKEY_CTX_free(chk);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	free(x);
	free(y);
	return pk;
}

/*
 * One key of a JWKS: 1 added, 0 skipped (*why says why, for the message
 * when no key is left), -1 refused (the message is appended).
 */
static int
jwt_load_jwk(struct jwt_keys *ks, const char *path, size_t i, const json_t *jk,
    const char **skip, struct sbuf *errs)
{
	const json_t	*kty, *use, *alg, *kid, *crv, *ops, *op;
	struct jwt_key	*k;
	enum jwt_alg	 want, named;
	EVP_PKEY	*pk = NULL;
	unsigned char	*secret = NULL;
	size_t		 slen = 0, j;
	const char	*why;
	int		 verify;

	if (!json_is_object(jk)) {
		jwt_err(errs, path, "keys[%zu]: not an object", i);
		return -1;
	}
	kty = json_object_get(jk, "kty");
	use = json_object_get(jk, "use");
	alg = json_object_get(jk, "alg");
	kid = json_object_get(jk, "kid");
	ops = json_object_get(jk, "key_ops");
	if (!json_is_string(kty) || (use != NULL && !json_is_string(use)) ||
	    (alg != NULL && !json_is_string(alg)) || (kid != NULL && !json_is_string(kid)) ||
	    (ops != NULL && !json_is_array(ops))) {
		jwt_err(errs, path, "keys[%zu]: \"kty\" must be a string, and \"use\", \"alg\" "
		    "and \"kid\" strings and \"key_ops\" an array when present", i);
		return -1;
	}
	/* the daemon needs no private key; one here means the wrong file was copied */
	if (json_object_get(jk, "d") != NULL) {
		jwt_err(errs, path, "keys[%zu]: a private key (\"d\"): give the public JWKS", i);
		return -1;
	}
	if (use != NULL && strcmp(json_string_value(use), "sig") != 0) {
		*skip = "\"use\" is not \"sig\"";
		return 0;
	}
	if (ops != NULL) {
		verify = 0;
		json_array_foreach(ops, j, op)
			if (json_is_string(op) && strcmp(json_string_value(op), "verify") == 0)
				verify = 1;
		if (!verify) {
			*skip = "\"key_ops\" has no \"verify\"";
			return 0;
		}
	}
	if (strcmp(json_string_value(kty), "RSA") == 0)
		want = JWT_RS256;
	else if (strcmp(json_string_value(kty), "EC") == 0) {
		crv = json_object_get(jk, "crv");
		if (!json_is_string(crv) || strcmp(json_string_value(crv), "P-256") != 0) {
			*skip = "an EC curve other than P-256";
			return 0;
		}
		want = JWT_ES256;
	} else if (strcmp(json_string_value(kty), "oct") == 0)
		want = JWT_HS256;
	else {
		*skip = "a \"kty\" other than RSA, EC and oct";
		return 0;
	}
	if (alg != NULL) {
		named = jwt_alg_named(json_string_value(alg));
		if (named == JWT_NONE) {
			/* e.g. RS512: this key must not verify RS256 instead */
			*skip = "an \"alg\" other than HS256, RS256 and ES256";
			return 0;
		}
		if (named != want) {
			jwt_err(errs, path, "keys[%zu]: \"alg\" %s does not fit \"kty\" %s", i,
			    json_string_value(alg), json_string_value(kty));
			return -1;
		}
	}
	switch (want) {
	case JWT_RS256:
		pk = jwt_jwk_rsa(jk, &why);
		break;
	case JWT_ES256:
		pk = jwt_jwk_ec(jk, &why);
		break;
	default:
		if ((secret = jwt_b64member(jk, "k", &slen)) == NULL)
			why = "\"k\" must be a base64url string";
		else if (slen < JWT_MIN_SECRET) {
			why = "an HS256 secret shorter than 32 bytes";
			OPENSSL_clear_free(secret, slen);
			secret = NULL;
		}
		break;
	}
	if (pk == NULL && secret == NULL) {
		jwt_err(errs, path, "keys[%zu]%s%s: %s", i, kid ? " " : "",
		    kid ? json_string_value(kid) : "", why);
		return -1;
	}
	if ((k = jwt_keys_add(ks)) == NULL)
		goto oom;
	k->alg = want;
	k->pkey = pk;
	k->secret = secret;
	k->secretlen = secret ? slen : 0;
	if (kid != NULL && (k->kid = strdup(json_string_value(kid))) == NULL) {
		jwt_err(errs, path, "out of memory");
		return -1;	/* the key is in ks, freed with it */
	}
	return 1;
oom:
	jwt_err(errs, path, "out of memory");
	EVP_PKEY_free(pk);
	if (secret != NULL)
		OPENSSL_clear_free(secret, slen);
	return -1;
}

static int
jwt_load_jwks(struct jwt_keys *ks, const char *path, const unsigned char *b, size_t len,
    struct sbuf *errs)
{
	json_t		*root, *keys, *jk;
	json_error_t	 e;
	const char	*skip = NULL;
	size_t		 i, nskip = 0;
	int		 rc;

	if ((root = json_loadb((const char *)b, len, JSON_REJECT_DUPLICATES, &e)) == NULL) {
		if (errs != NULL)
			sbuf_line(errs, "%s:%d: %s", path, e.line, e.text);
		return -1;
	}
	keys = json_object_get(root, "keys");
	if (!json_is_object(root) || !json_is_array(keys)) {
		jwt_err(errs, path, "no \"keys\" array: not a JWKS (RFC 7517)");
		goto err;
	}
	json_array_foreach(keys, i, jk) {
		if ((rc = jwt_load_jwk(ks, path, i, jk, &skip, errs)) == -1)
			goto err;
		if (rc == 0)
			nskip++;
	}
	if (ks->n == 0) {
		if (nskip == 0)
			jwt_err(errs, path, "no key in the JWKS");
		else
			jwt_err(errs, path, "no usable key in the JWKS (%zu skipped, the last for %s)",
			    nskip, skip);
		goto err;
	}
	json_decref(root);
	return 0;
err:
	json_decref(root);
	return -1;
}

struct jwt_keys *
jwt_keys_load(const char *path, struct sbuf *errs)
{
	struct jwt_keys	*ks = NULL;
	unsigned char	*b = NULL;
	size_t		 len = 0, i, j, bom;
	int		 rc;

	if (util_read_file(path, JWT_MAX_FILE, (char **)&b, &len) == -1) {
		if (errno == EFBIG)
			jwt_err(errs, path, "larger than %u bytes: not a key file", JWT_MAX_FILE);
		else if (errno == EISDIR)
			jwt_err(errs, path, "not a regular file");
		else
			jwt_err(errs, path, "cannot read: %s", strerror(errno));
		return NULL;
	}
	if ((ks = calloc(1, sizeof(*ks))) == NULL) {
		jwt_err(errs, path, "out of memory");
		goto err;
	}
	/* an editor's byte order mark is no part of a PEM file or a JWKS */
	bom = len >= 3 && memcmp(b, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;
	for (i = bom; i < len && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r'); i++)
		;
	for (j = len; j > i && (b[j - 1] == ' ' || b[j - 1] == '\t' || b[j - 1] == '\n' ||
	    b[j - 1] == '\r'); j--)
		;
	/*
	 * By content, so the configuration needs no "type": a PEM armour
	 * anywhere (OpenSSL reads one after any text: a comment line first
	 * is still a public key), a JSON object (first and last bytes { and
	 * }: a random binary secret is that by chance once in 65 536, and
	 * then fails loudly as JSON), else a secret. What reads as a key but
	 * is none of these is refused (jwt_not_secret): taken for a secret, a
	 * public key's bytes would let anyone sign tokens.
	 */
	if (memmem(b, len, "-----BEGIN", 10) != NULL)
		rc = jwt_load_pem(ks, path, b, len, errs);
	else if (j > i && b[i] == '{' && b[j - 1] == '}')
		rc = jwt_load_jwks(ks, path, b + bom, len - bom, errs);
	else if (jwt_not_secret(path, b, len, errs))
		rc = -1;
	else
		rc = jwt_load_secret(ks, path, b, len, errs);
	if (rc == -1)
		goto err;
	OPENSSL_clear_free(b, len + 1);
	ERR_clear_error();
	return ks;
err:
	OPENSSL_clear_free(b, len + 1);
	jwt_keys_free(ks);
	ERR_clear_error();
	return NULL;
}

void
jwt_keys_free(struct jwt_keys *ks)
{
	size_t	i;

	if (ks == NULL)
		return;
	for (i = 0; i < ks->n; i++) {
		free(ks->k[i].kid);
		EVP_PKEY_free(ks->k[i].pkey);
		if (ks->k[i].secret != NULL)
			OPENSSL_clear_free(ks->k[i].secret, ks->k[i].secretlen);
	}
	free(ks->k);
	free(ks);
}

size_t
jwt_keys_count(const struct jwt_keys *ks)
{
	return ks ? ks->n : 0;
}

/* RS256 (PKCS #1 v1.5: a key of type "RSA" signs nothing else) and ES256 (DER), with SHA-256. */
static int
jwt_pkey_ok(EVP_PKEY *pk, const unsigned char *msg, size_t mlen, const unsigned char *sig,
    size_t slen)
{
	EVP_MD_CTX	*ctx;
	int		 ok;

	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return 0;
	ok = EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pk) == 1 &&
	    EVP_DigestVerify(ctx, sig, slen, msg, mlen) == 1;
	EVP_MD_CTX_free(ctx);
	return ok;
}

/* JOSE's r || s, 32 bytes each, as the DER sequence OpenSSL verifies. */
static int
jwt_es256_ok(EVP_PKEY *pk, const unsigned char *msg, size_t mlen, const unsigned char *sig,
    size_t slen)
{
	ECDSA_SIG	*es = NULL;
	BIGNUM		*r = NULL, *s = NULL;
	unsigned char	*der = NULL;
	int		 dlen, ok = 0;

	if (slen != 2 * JWT_ES_HALF)
		return 0;
	if ((es = ECDSA_SIG_new()) == NULL ||
	    (r = BN_bin2bn(sig, JWT_ES_HALF, NULL)) == NULL ||
	    (s = BN_bin2bn(sig + JWT_ES_HALF, JWT_ES_HALF, NULL)) == NULL ||
	    ECDSA_SIG_set0(es, r, s) != 1) {
		BN_free(r);
		BN_free(s);
		goto done;
	}
	/* es owns r and s now */
	if ((dlen = i2d_ECDSA_SIG(es, &der)) <= 0)
		goto done;
	ok = jwt_pkey_ok(pk, msg, mlen, der, (size_t)dlen);
done:
	OPENSSL_free(der);
	ECDSA_SIG_free(es);
	return ok;
}

static int
jwt_hs256_ok(const struct jwt_key *k, const unsigned char *msg, size_t mlen,
    const unsigned char *sig, size_t slen)
{
	unsigned char	md[EVP_MAX_MD_SIZE];
	unsigned int	mdlen = 0;
	int		ok;

	if (slen != JWT_HS_LEN)
		return 0;
	if (HMAC(EVP_sha256(), k->secret, (int)k->secretlen, msg, mlen, md, &mdlen) == NULL ||
	    mdlen != JWT_HS_LEN)
		return 0;
	/* constant time: a byte-by-byte early exit would let a client find a MAC byte by byte */
	ok = CRYPTO_memcmp(md, sig, JWT_HS_LEN) == 0;
	OPENSSL_cleanse(md, sizeof(md));
	return ok;
}

static int
jwt_sig_ok(const struct jwt_key *k, const unsigned char *msg, size_t mlen,
    const unsigned char *sig, size_t slen)
{
	switch (k->alg) {
	case JWT_HS256:
		return jwt_hs256_ok(k, msg, mlen, sig, slen);
	case JWT_RS256:
		return (size_t)EVP_PKEY_get_size(k->pkey) == slen &&
		    jwt_pkey_ok(k->pkey, msg, mlen, sig, slen);
	case JWT_ES256:
		return jwt_es256_ok(k->pkey, msg, mlen, sig, slen);
	default:
		return 0;
	}
}

/* t <= lim, for a NumericDate that is an integer or a real. */
static int
jwt_at_or_before(const json_t *t, int64_t lim)
{
	if (json_is_integer(t))
		return json_integer_value(t) <= lim;
	return json_real_value(t) <= (double)lim;
}

/* a - b and a + b, held at the ends of int64_t rather than wrapping. */
static int64_t
jwt_sub_sat(int64_t a, int64_t b)
{
	return a < INT64_MIN + b ? INT64_MIN : a - b;
}

static int64_t
jwt_add_sat(int64_t a, int64_t b)
{
	return a > INT64_MAX - b ? INT64_MAX : a + b;
}

static int
jwt_aud_has(const json_t *aud, const char *want)
{
	const json_t	*v;
	size_t		 i;

	if (json_is_string(aud))
		return strcmp(json_string_value(aud), want) == 0;
	if (json_is_array(aud))
		json_array_foreach(aud, i, v)
			if (json_is_string(v) && strcmp(json_string_value(v), want) == 0)
				return 1;
	return 0;
}

/* The registered claims and the id's claim of a payload whose signature is good; NULL or the reason. */
static const char *
jwt_claims(const json_t *pay, const struct jwt_check *chk, int64_t now, char *id, size_t idlen)
{
	const json_t	*exp, *nbf, *iat, *v;
	int64_t		 leeway = chk->leeway_s > 0 ? chk->leeway_s : 0;
	size_t		 n;

	exp = json_object_get(pay, "exp");
	nbf = json_object_get(pay, "nbf");
	iat = json_object_get(pay, "iat");
	/* agent tokens must expire: one that cannot is a password that leaks forever */
	if (exp == NULL)
		return "no expiry";
	if (!json_is_number(exp) || (nbf != NULL && !json_is_number(nbf)) ||
	    (iat != NULL && !json_is_number(iat)))
		return "malformed";
	if (jwt_at_or_before(exp, jwt_sub_sat(now, leeway)))
		return "expired";
	if (nbf != NULL && !jwt_at_or_before(nbf, jwt_add_sat(now, leeway)))
		return "not yet valid";
	if (chk->issuer != NULL && chk->issuer[0] != '\0') {
		v = json_object_get(pay, "iss");
		if (!json_is_string(v) || strcmp(json_string_value(v), chk->issuer) != 0)
			return "wrong issuer";
	}
	if (chk->audience != NULL && chk->audience[0] != '\0' &&
	    !jwt_aud_has(json_object_get(pay, "aud"), chk->audience))
		return "wrong audience";
	if (chk->claim == NULL || chk->claim[0] == '\0')
		return "no claim configured";
	if ((v = json_object_get(pay, chk->claim)) == NULL)
		return "claim missing";
	if (!json_is_string(v))
		return "claim not a string";
	/* jansson refuses \u0000 in strings unless asked: the value has no NUL to cut it */
	if ((n = json_string_length(v)) == 0)
		return "claim empty";
	if (n >= idlen)
		return "claim too long";
	memcpy(id, json_string_value(v), n + 1);
	return NULL;
}

/* One segment, base64url-decoded into buf at *off; NULL when not base64url. */
static unsigned char *
jwt_segment(const char *s, size_t n, unsigned char *buf, size_t *off, size_t *outlen)
{
	unsigned char	*out = buf + *off;

	if (jwt_b64url(s, n, out, outlen) == -1)
		return NULL;
	*off += *outlen;
	return out;
}

int
jwt_verify(const struct jwt_keys *ks, const struct jwt_check *chk, const char *token,
    size_t len, int64_t now, char *id, size_t idlen, const char **why)
{
	/* every decoded segment fits: base64 shrinks by a quarter */
	unsigned char	 buf[JWT_MAX_TOKEN];
	json_t		*hdr = NULL, *pay = NULL, *v;
	const char	*dot1, *dot2, *r = "malformed", *kid = NULL;
	unsigned char	*h, *p, *sig;
	size_t		 off = 0, hlen, plen, slen, i, nkid = 0, nalg = 0;
	enum jwt_alg	 alg;
	int		 ok = 0;

	if (id != NULL && idlen > 0)
		id[0] = '\0';
	if (ks == NULL || chk == NULL || token == NULL || id == NULL || idlen == 0)
		goto done;
	if (len > JWT_MAX_TOKEN) {
		r = "token too long";
		goto done;
	}
	/* exactly three segments: a JWE (five) or a JWS in JSON form is not a token here */
	if ((dot1 = memchr(token, '.', len)) == NULL ||
	    (dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token))) == NULL ||
	    memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) != NULL)
		goto done;
	if ((h = jwt_segment(token, (size_t)(dot1 - token), buf, &off, &hlen)) == NULL ||
	    (p = jwt_segment(dot1 + 1, (size_t)(dot2 - dot1 - 1), buf, &off, &plen)) == NULL ||
	    (sig = jwt_segment(dot2 + 1, len - (size_t)(dot2 + 1 - token), buf, &off, &slen)) == NULL)
		goto done;
	if ((hdr = json_loadb((const char *)h, hlen, JSON_REJECT_DUPLICATES, NULL)) == NULL ||
	    !json_is_object(hdr))
		goto done;
	if (!json_is_string(v = json_object_get(hdr, "alg")))
		goto done;
	/* "none" in any case: some libraries compared it case-insensitively */
	if (strcasecmp(json_string_value(v), "none") == 0) {
		r = "alg none refused";
		goto done;
	}
	if ((alg = jwt_alg_named(json_string_value(v))) == JWT_NONE) {
		r = "unsupported alg";
		goto done;
	}
	/*
	 * an extension the sender says we must understand, and we understand
	 * none (RFC 7515 4.1.11); an empty list is not allowed there either
	 */
	if (json_object_get(hdr, "crit") != NULL) {
		r = "crit header refused";
		goto done;
	}
	if ((v = json_object_get(hdr, "kid")) != NULL) {
		if (!json_is_string(v))
			goto done;
		kid = json_string_value(v);
	}
	/*
	 * Keys come from the key file only; a header's jwk, jku or x5u is
	 * never looked at. The signature is checked before the payload is
	 * parsed: a forger's JSON never reaches jansson.
	 */
	for (i = 0; i < ks->n && !ok; i++) {
		if (kid != NULL && !ks->k[i].anykid &&
		    (ks->k[i].kid == NULL || strcmp(ks->k[i].kid, kid) != 0))
			continue;
		nkid++;
		if (ks->k[i].alg != alg)
			continue;
		nalg++;
		ok = jwt_sig_ok(&ks->k[i], (const unsigned char *)token,
		    (size_t)(dot2 - token), sig, slen);
	}
	if (!ok) {
		r = nkid == 0 ? "unknown kid" : nalg == 0 ? "alg does not match the key" :
		    "bad signature";
		goto done;
	}
	ok = 0;
	if ((pay = json_loadb((const char *)p, plen, JSON_REJECT_DUPLICATES, NULL)) == NULL ||
	    !json_is_object(pay))
		goto done;
	if ((r = jwt_claims(pay, chk, now, id, idlen)) == NULL)
		ok = 1;
done:
	json_decref(hdr);
	json_decref(pay);
	OPENSSL_cleanse(buf, off);
	ERR_clear_error();
	if (!ok && why != NULL)
		*why = r;
	return ok ? 0 : -1;
}
