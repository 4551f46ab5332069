/* test_jwt: agent tokens are accepted only with a good signature by a key of their own alg, unexpired, for our audience and issuer; bad key files are refused by name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "chatmon/jwt.h"
#include "chatmon/util.h"
#include "../common/b64url.h"

/*
 * The keys are made here, the tokens signed here with OpenSSL's signing
 * calls (the module only verifies): RSA 2048 twice (two kids), EC P-256,
 * and an HS256 secret of 64 base64url characters (what `openssl rand
 * -base64 48` gives, as text: binary bytes could look like PEM or JSON).
 */
#define NOW		INT64_C(1700000000)
#define ISS		"https://idp.example"
#define AUD		"chatmon"

static char		 tmpdir[] = "/tmp/test_jwt.XXXXXX";
static EVP_PKEY		*rsa, *rsa2, *ec;
static char		 secret[65];
static size_t		 secretlen;

enum signer { S_NONE, S_HS, S_RS, S_ES, S_ES_DER };

static const struct jwt_check	 check = { "sub", AUD, ISS, 0 };
static size_t			 sig_cut;	/* bytes token() drops from the end of the signature */

static void
b64url_str(const char *s, char *out)
{
	b64url((const unsigned char *)s, strlen(s), out);
}

/* The signature of msg; its length. */
static size_t
sign(enum signer how, const void *key, size_t keylen, const char *msg, unsigned char *sig)
{
	EVP_MD_CTX		*ctx;
	ECDSA_SIG		*es;
	const BIGNUM		*r, *s;
	const unsigned char	*p;
	unsigned char		 der[512];
	unsigned int		 hl;
	size_t			 n = sizeof(der);

	switch (how) {
	case S_NONE:
		return 0;
	case S_HS:
		assert_non_null(HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg,
		    strlen(msg), sig, &hl));
		return hl;
	default:
		break;
	}
	assert_non_null(ctx = EVP_MD_CTX_new());
	assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, (EVP_PKEY *)key), 1);
	assert_int_equal(EVP_DigestSign(ctx, der, &n, (const unsigned char *)msg, strlen(msg)), 1);
	EVP_MD_CTX_free(ctx);
	if (how == S_RS || how == S_ES_DER) {
		memcpy(sig, der, n);
		return n;
	}
	/* JOSE wants r || s at 32 bytes each, not DER */
	p = der;
	assert_non_null(es = d2i_ECDSA_SIG(NULL, &p, (long)n));
	ECDSA_SIG_get0(es, &r, &s);
	assert_int_equal(BN_bn2binpad(r, sig, 32), 32);
	assert_int_equal(BN_bn2binpad(s, sig + 32, 32), 32);
	ECDSA_SIG_free(es);
	return 64;
}

/*
 * header.payload.signature from the JSON texts as given (so that a test
 * can write duplicate keys); flip >= 0 flips that bit of the signature.
 */
static char *
token(char *out, size_t cap, const char *hdr, const char *pay, enum signer how,
    const void *key, size_t keylen, int flip)
{
	unsigned char	sig[512];
	char		*msg;
	size_t		 n, slen;

	n = (strlen(hdr) + strlen(pay)) * 4 / 3 + 8;
	assert_non_null(msg = malloc(n));
	b64url_str(hdr, msg);
	strcat(msg, ".");
	b64url_str(pay, msg + strlen(msg));
	slen = sign(how, key, keylen, msg, sig);
	slen -= sig_cut < slen ? sig_cut : slen;
	if (flip >= 0)
		sig[flip / 8] ^= (unsigned char)(1u << (flip % 8));
	assert_true(strlen(msg) + 1 + slen * 4 / 3 + 4 < cap);
	snprintf(out, cap, "%s.", msg);
	b64url(sig, slen, out + strlen(out));
	free(msg);
	return out;
}

/* The usual payload: alice, ours, valid for five minutes from NOW. */
static const char *
payload(char *buf, size_t cap)
{
	snprintf(buf, cap, "{\"sub\":\"alice\",\"aud\":\"" AUD "\",\"iss\":\"" ISS "\","
	    "\"iat\":%lld,\"exp\":%lld}", (long long)NOW, (long long)(NOW + 300));
	return buf;
}

/* NULL when accepted (id then "alice"-like, in id), else the reason. */
static const char *
verify_with(const struct jwt_keys *ks, const struct jwt_check *c, const char *tok, char *id,
    size_t idlen)
{
	const char	*why = "(not set)";

	if (jwt_verify(ks, c, tok, strlen(tok), NOW, id, idlen, &why) == 0)
		return NULL;
	assert_string_equal(id, "");	/* nothing of a refused token is handed out */
	return why;
}

static const char *
verify(const struct jwt_keys *ks, const char *tok)
{
	char	id[64];

	return verify_with(ks, &check, tok, id, sizeof(id));
}

static void
accepts(const struct jwt_keys *ks, const char *tok, const char *want_id)
{
	char		 id[64];
	const char	*why;

	why = verify_with(ks, &check, tok, id, sizeof(id));
	if (why != NULL)
		fail_msg("refused (%s): %s", why, tok);
	assert_string_equal(id, want_id);
}

static void
refuses(const struct jwt_keys *ks, const char *tok, const char *want_why)
{
	const char	*why = verify(ks, tok);

	if (why == NULL)
		fail_msg("accepted, wanted \"%s\": %s", want_why, tok);
	assert_string_equal(why, want_why);
}

static char *
path_of(const char *name)
{
	static char	buf[sizeof(tmpdir) + 64];

	snprintf(buf, sizeof(buf), "%s/%s", tmpdir, name);
	return buf;
}

static const char *
write_file(const char *name, const void *data, size_t len)
{
	const char	*p = path_of(name);
	FILE		*f;

	assert_non_null(f = fopen(p, "w"));
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	return p;
}

static const char *
write_str(const char *name, const char *s)
{
	return write_file(name, s, strlen(s));
}

static void
write_pem(const char *name, EVP_PKEY *pk, int private)
{
	BIO	*b;

	assert_non_null(b = BIO_new_file(path_of(name), "w"));
	if (private)
		assert_int_equal(PEM_write_bio_PrivateKey(b, pk, NULL, NULL, 0, NULL, NULL), 1);
	else
		assert_int_equal(PEM_write_bio_PUBKEY(b, pk), 1);
	BIO_free(b);
}

static char *
read_file(const char *name, size_t *len)
{
	FILE	*f;
	char	*b;
	long	 n;

	assert_non_null(f = fopen(path_of(name), "r"));
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	assert_non_null(b = malloc((size_t)n + 1));
	assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
	b[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return b;
}

/* A big number parameter of pk, base64url, as a JWK writes it (no leading zeros; fixed width when width > 0). */
static void
bn_param(EVP_PKEY *pk, const char *name, int width, char *out)
{
	BIGNUM		*bn = NULL;
	unsigned char	 b[512];
	int		 n;

	assert_int_equal(EVP_PKEY_get_bn_param(pk, name, &bn), 1);
	n = width > 0 ? BN_bn2binpad(bn, b, width) : BN_bn2bin(bn, b);
	assert_true(n > 0);
	b64url(b, (size_t)n, out);
	BN_free(bn);
}

static void
jwk_rsa(EVP_PKEY *pk, const char *kid, const char *extra, char *out, size_t cap)
{
	char	n[512], e[16];

	bn_param(pk, OSSL_PKEY_PARAM_RSA_N, 0, n);
	bn_param(pk, OSSL_PKEY_PARAM_RSA_E, 0, e);
	snprintf(out, cap, "{\"kty\":\"RSA\",\"kid\":\"%s\",\"n\":\"%s\",\"e\":\"%s\"%s}",
	    kid, n, e, extra);
}

static void
jwk_ec(EVP_PKEY *pk, const char *kid, const char *extra, char *out, size_t cap)
{
	char	x[64], y[64];

	bn_param(pk, OSSL_PKEY_PARAM_EC_PUB_X, 32, x);
	bn_param(pk, OSSL_PKEY_PARAM_EC_PUB_Y, 32, y);
	snprintf(out, cap, "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"%s\",\"x\":\"%s\",\"y\":\"%s\"%s}",
	    kid, x, y, extra);
}

static int
setup(void **state)
{
	unsigned char	b[48];

	(void)state;
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	rsa2 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (rsa == NULL || rsa2 == NULL || ec == NULL || RAND_bytes(b, sizeof(b)) != 1)
		return -1;
	b64url(b, sizeof(b), secret);
	secretlen = strlen(secret);
	return 0;
}

static int
teardown(void **state)
{
	char	cmd[sizeof(tmpdir) + 16];

	(void)state;
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(rsa2);
	EVP_PKEY_free(ec);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct jwt_keys *
load_ok(const char *path)
{
	struct sbuf	 errs;
	struct jwt_keys	*ks;

	sbuf_init(&errs);
	ks = jwt_keys_load(path, &errs);
	if (ks == NULL)
		fail_msg("%s", sbuf_str(&errs));
	assert_int_equal(errs.lines, 0);
	sbuf_free(&errs);
	return ks;
}

/* The key file is refused with one line that names it and says want. */
static void
load_fails(const char *path, const char *want)
{
	struct sbuf	 errs;

	sbuf_init(&errs);
	if (jwt_keys_load(path, &errs) != NULL)
		fail_msg("%s: loaded, wanted \"%s\"", path, want);
	assert_int_equal(errs.lines, 1);
	assert_int_equal(strncmp(sbuf_str(&errs), path, strlen(path)), 0);
	if (strstr(sbuf_str(&errs), want) == NULL)
		fail_msg("\"%s\" does not say \"%s\"", sbuf_str(&errs), want);
	sbuf_free(&errs);
	/* errs may be NULL */
	assert_null(jwt_keys_load(path, NULL));
}

static void
test_hs256(void **state)
{
	struct jwt_keys	*ks;
	char		 line[128], pay[256], tok[1024], buf[1100];
	char		 id[64];
	const char	*why;

	(void)state;
	snprintf(line, sizeof(line), "%s\n", secret);
	ks = load_ok(write_str("hs.key", line));
	assert_int_equal(jwt_keys_count(ks), 1);
	payload(pay, sizeof(pay));
	accepts(ks, token(tok, sizeof(tok), "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", pay, S_HS,
	    secret, secretlen, -1), "alice");
	/* a file of one key answers whatever kid the issuer writes */
	accepts(ks, token(tok, sizeof(tok), "{\"alg\":\"HS256\",\"kid\":\"2024-01\"}", pay, S_HS,
	    secret, secretlen, -1), "alice");
	/* the length is what counts, not a NUL: the rest of a header line follows the token */
	snprintf(buf, sizeof(buf), "%s, more", tok);
	assert_int_equal(jwt_verify(ks, &check, buf, strlen(tok), NOW, id, sizeof(id), &why), 0);
	assert_string_equal(id, "alice");
	assert_int_equal(jwt_verify(ks, &check, buf, strlen(tok) + 1, NOW, id, sizeof(id), &why), -1);
	assert_string_equal(why, "malformed");
	/* why may be NULL */
	assert_int_equal(jwt_verify(ks, &check, buf, 3, NOW, id, sizeof(id), NULL), -1);
	/* the newline was not part of the secret; a token HMAC'd with it is refused */
	refuses(ks, token(tok, sizeof(tok), "{\"alg\":\"HS256\"}", pay, S_HS, line,
	    strlen(line), -1), "bad signature");
	jwt_keys_free(ks);
}

static void
test_rs256(void **state)
{
	struct jwt_keys	*ks;
	char		 pay[256], tok[1024];

	(void)state;
	write_pem("rsa.pem", rsa, 0);
	ks = load_ok(path_of("rsa.pem"));
	assert_int_equal(jwt_keys_count(ks), 1);
	payload(pay, sizeof(pay));
	accepts(ks, token(tok, sizeof(tok), "{\"alg\":\"RS256\",\"typ\":\"JWT\"}", pay, S_RS,
	    rsa, 0, -1), "alice");
	/* another RSA key's signature */
	refuses(ks, token(tok, sizeof(tok), "{\"alg\":\"RS256\"}", pay, S_RS, rsa2, 0, -1),
	    "bad signature");
	jwt_keys_free(ks);
}

/* Many signatures: r and s with the top bit set, or leading zero bytes, all convert. */
static void
test_es256(void **state)
{
	struct jwt_keys	*ks;
	char		 pay[256], tok[1024];
	int		 i;

	(void)state;
	write_pem("ec.pem", ec, 0);
	ks = load_ok(path_of("ec.pem"));
	assert_int_equal(jwt_keys_count(ks), 1);
	payload(pay, sizeof(pay));
	for (i = 0; i < 64; i++)
		accepts(ks, token(tok, sizeof(tok), "{\"alg\":\"ES256\"}", pay, S_ES, ec, 0, -1),
		    "alice");
	/* OpenSSL's DER form is not JOSE's: refused by its length */
	refuses(ks, token(tok, sizeof(tok), "{\"alg\":\"ES256\"}", pay, S_ES_DER, ec, 0, -1),
	    "bad signature");
	jwt_keys_free(ks);
}

static void
test_jwks(void **state)
{
	struct jwt_keys	*ks;
	unsigned char	 raw[48];
	char		 k1[1024], k2[1024], k3[256], k4[256], k5[2048], k6[256], k7[256];
	char		 file[8192], pay[256], tok[1024], kbuf[128];

	(void)state;
	jwk_rsa(rsa, "r1", ",\"use\":\"sig\",\"alg\":\"RS256\"", k1, sizeof(k1));
	jwk_rsa(rsa2, "r2", ",\"key_ops\":[\"verify\"]", k2, sizeof(k2));
	jwk_ec(ec, "e1", ",\"alg\":\"ES256\"", k3, sizeof(k3));
	b64url_str(secret, kbuf);
	snprintf(k4, sizeof(k4), "{\"kty\":\"oct\",\"kid\":\"h1\",\"k\":\"%s\"}", kbuf);
	/* skipped: an encryption key, an alg we do not take, a curve we do not take, an unknown kty */
	jwk_rsa(rsa, "enc1", ",\"use\":\"enc\"", k5, sizeof(k5));
	jwk_rsa(rsa, "r512", ",\"alg\":\"RS512\"", k5 + strlen(k5), sizeof(k5) - strlen(k5));
	snprintf(k6, sizeof(k6), "{\"kty\":\"EC\",\"crv\":\"P-384\",\"kid\":\"e384\",\"x\":\"AA\",\"y\":\"AA\"}");
	snprintf(k7, sizeof(k7), "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"ed\",\"x\":\"AA\"}");
	/* k5 holds two keys: split it with a comma */
	{
		char	*p = strstr(k5, "}{");

		assert_non_null(p);
		memmove(p + 2, p + 1, strlen(p + 1) + 1);
		p[1] = ',';
	}
	snprintf(file, sizeof(file), "{\"keys\":[\n%s,\n%s,\n%s,\n%s,\n%s,\n%s,\n%s\n]}\n",
	    k1, k2, k3, k4, k5, k6, k7);
	ks = load_ok(write_str("jwks.json", file));
	assert_int_equal(jwt_keys_count(ks), 4);
	payload(pay, sizeof(pay));

	accepts(ks, token(tok, sizeof(tok), "{\"alg\":\"RS256\",\"kid\":\"r1\"}", pay, S_RS, rsa, 0, -1), "alice");
	accepts(ks, token(tok, sizeof(tok), "{\"alg\":\"RS256\",\"kid\":\"r2\"}", pay, S_RS, rsa2, 0, -1), "alice");
	accepts(ks, token(tok, sizeof(tok), "{\"alg\":\"ES256\",\"kid\":\"e1\"}", pay, S_ES, ec, 0, -1), "alice");
	accepts(ks, token(tok, sizeof(tok), "{\"alg\":\"HS256\",\"kid\":\"h1\"}", pay, S_HS, secret, secretlen, -1), "alice");
	/* the kid picks the key: r2's signature under r1's kid is not tried against r2 */
	refuses(ks, token(tok, sizeof(tok), "{\"alg\":\"RS256\",\"kid\":\"r1\"}", pay, S_RS, rsa2, 0, -1), "bad signature");
	/* without a kid every key of the alg's type is tried */
	accepts(ks, token(tok, sizeof(tok), "{\"alg\":\"RS256\"}", pay, S_RS, rsa2, 0, -1), "alice");
	accepts(ks, token(tok, sizeof(tok), "{\"alg\":\"ES256\"}", pay, S_ES, ec, 0, -1), "alice");
	refuses(ks, token(tok, sizeof(tok), "{\"alg\":\"RS256\",\"kid\":\"zz\"}", pay, S_RS, rsa, 0, -1), "unknown kid");
	/* skipped keys are not there: RS512's key does not verify RS256, an encryption key nothing */
	refuses(ks, token(tok, sizeof(tok), "{\"alg\":\"RS256\",\"kid\":\"r512\"}", pay, S_RS, rsa, 0, -1), "unknown kid");
	refuses(ks, token(tok, sizeof(tok), "{\"alg\":\"RS256\",\"kid\":\"enc1\"}", pay, S_RS, rsa, 0, -1), "unknown kid");
	/* a kid names a key of another type: never tried with this alg */
	refuses(ks, token(tok, sizeof(tok), "{\"alg\":\"HS256\",\"kid\":\"r1\"}", pay, S_HS, secret, secretlen, -1),
	    "alg does not match the key");
	refuses(ks, token(tok, sizeof(tok), "{\"alg\":\"RS256\",\"kid\":\"h1\"}", pay, S_RS, rsa, 0, -1),
	    "alg does not match the key");
	jwt_keys_free(ks);

	/* keys without a kid answer tokens without one only */
	jwk_rsa(rsa, "x", "", k1, sizeof(k1));
	memcpy(strstr(k1, "\"kid\":\"x\""), "\"Kid\"", 5);
	snprintf(file, sizeof(file), "{\"keys\":[%s]}", k1);
	ks = load_ok(write_str("jwks-nokid.json", file));
	accepts(ks, token(tok, sizeof(tok), "{\"alg\":\"RS256\"}", pay, S_RS, rsa, 0, -1), "alice");
	refuses(ks, token(tok, sizeof(tok), "{\"alg\":\"RS256\",\"kid\":\"x\"}", pay, S_RS, rsa, 0, -1), "unknown kid");
	jwt_keys_free(ks);

	/* an oct key of binary bytes: its k is base64url, the secret is the raw bytes */
	assert_int_equal(RAND_bytes(raw, sizeof(raw)), 1);
	b64url(raw, sizeof(raw), kbuf);
	snprintf(file, sizeof(file), "{\"keys\":[{\"kty\":\"oct\",\"k\":\"%s\",\"alg\":\"HS256\"}]}", kbuf);
	ks = load_ok(write_str("jwks-oct.json", file));
	accepts(ks, token(tok, sizeof(tok), "{\"alg\":\"HS256\"}", pay, S_HS, raw, sizeof(raw), -1), "alice");
	refuses(ks, token(tok, sizeof(tok), "{\"alg\":\"HS256\"}", pay, S_HS, kbuf, strlen(kbuf), -1), "bad signature");
	jwt_keys_free(ks);
}

static void
test_times(void **state)
{
	struct jwt_keys		*ks;
	struct jwt_check	 c = check;
	char			 pay[256], tok[1024], id[64];
	const char		*hdr = "{\"alg\":\"HS256\"}";

	(void)state;
	ks = load_ok(write_str("hs-t.key", secret));
#define TOK(...) (snprintf(pay, sizeof(pay), __VA_ARGS__), \
	    token(tok, sizeof(tok), hdr, pay, S_HS, secret, secretlen, -1))
#define SUB "\"sub\":\"alice\",\"aud\":\"" AUD "\",\"iss\":\"" ISS "\""
	refuses(ks, TOK("{" SUB ",\"exp\":%lld}", (long long)NOW - 1), "expired");
	/* exp is the first second the token is no good (RFC 7519 4.1.4) */
	refuses(ks, TOK("{" SUB ",\"exp\":%lld}", (long long)NOW), "expired");
	accepts(ks, TOK("{" SUB ",\"exp\":%lld}", (long long)NOW + 1), "alice");
	refuses(ks, TOK("{" SUB ",\"exp\":%lld,\"nbf\":%lld}", (long long)NOW + 300,
	    (long long)NOW + 100), "not yet valid");
	accepts(ks, TOK("{" SUB ",\"exp\":%lld,\"nbf\":%lld}", (long long)NOW + 300,
	    (long long)NOW), "alice");
	/* within the leeway both ways, and just past it */
	c.leeway_s = 30;
	TOK("{" SUB ",\"exp\":%lld}", (long long)NOW - 10);
	assert_null(verify_with(ks, &c, tok, id, sizeof(id)));
	TOK("{" SUB ",\"exp\":%lld}", (long long)NOW - 30);
	assert_string_equal(verify_with(ks, &c, tok, id, sizeof(id)), "expired");
	TOK("{" SUB ",\"exp\":%lld,\"nbf\":%lld}", (long long)NOW + 300, (long long)NOW + 30);
	assert_null(verify_with(ks, &c, tok, id, sizeof(id)));
	TOK("{" SUB ",\"exp\":%lld,\"nbf\":%lld}", (long long)NOW + 300, (long long)NOW + 31);
	assert_string_equal(verify_with(ks, &c, tok, id, sizeof(id)), "not yet valid");
	/* no overflow at the ends of the clock; a negative leeway is none */
	c.leeway_s = INT64_MAX;
	TOK("{" SUB ",\"exp\":%lld}", (long long)NOW - 1000000);
	assert_null(verify_with(ks, &c, tok, id, sizeof(id)));
	c.leeway_s = -1000;
	TOK("{" SUB ",\"exp\":%lld}", (long long)NOW + 1);
	assert_null(verify_with(ks, &c, tok, id, sizeof(id)));
	TOK("{" SUB ",\"exp\":%lld}", (long long)NOW);
	assert_string_equal(verify_with(ks, &c, tok, id, sizeof(id)), "expired");
	/* NumericDate may be real */
	accepts(ks, TOK("{" SUB ",\"exp\":%lld.5,\"iat\":1.5e9}", (long long)NOW), "alice");
	refuses(ks, TOK("{" SUB ",\"exp\":%lld.5}", (long long)NOW - 1), "expired");
	refuses(ks, TOK("{" SUB ",\"exp\":%lld.0}", (long long)NOW), "expired");
	accepts(ks, TOK("{" SUB ",\"exp\":%lld.0,\"nbf\":%lld.0}", (long long)NOW + 1, (long long)NOW), "alice");
	refuses(ks, TOK("{" SUB ",\"exp\":%lld.0,\"nbf\":%lld.5}", (long long)NOW + 9, (long long)NOW), "not yet valid");
	accepts(ks, TOK("{" SUB ",\"exp\":1e300}"), "alice");
	accepts(ks, TOK("{" SUB ",\"exp\":9223372036854775807}"), "alice");
	/* agent tokens must expire */
	refuses(ks, TOK("{" SUB "}"), "no expiry");
	refuses(ks, TOK("{" SUB ",\"exp\":null}"), "malformed");
	refuses(ks, TOK("{" SUB ",\"exp\":\"%lld\"}", (long long)NOW + 300), "malformed");
	refuses(ks, TOK("{" SUB ",\"exp\":%lld,\"nbf\":\"0\"}", (long long)NOW + 300), "malformed");
	refuses(ks, TOK("{" SUB ",\"exp\":%lld,\"iat\":\"now\"}", (long long)NOW + 300), "malformed");
	/* iat is not checked beyond being a number: one in the future is not refused */
	accepts(ks, TOK("{" SUB ",\"exp\":%lld,\"iat\":%lld}", (long long)NOW + 300,
	    (long long)NOW + 3600), "alice");
#undef TOK
#undef SUB
	jwt_keys_free(ks);
}

/* One bit of the signature flipped, or the payload swapped under a good signature. */
static void
test_bad_signature(void **state)
{
	struct jwt_keys	*hs, *rs, *es;
	char		 pay[256], tok[1024], tok2[1024], spliced[2048];
	char		*d1, *d2;
	int		 bit;

	(void)state;
	hs = load_ok(write_str("hs-s.key", secret));
	write_pem("rsa-s.pem", rsa, 0);
	write_pem("ec-s.pem", ec, 0);
	rs = load_ok(path_of("rsa-s.pem"));
	es = load_ok(path_of("ec-s.pem"));
	payload(pay, sizeof(pay));
	for (bit = 0; bit < 256; bit += 37)
		refuses(hs, token(tok, sizeof(tok), "{\"alg\":\"HS256\"}", pay, S_HS, secret,
		    secretlen, bit), "bad signature");
	for (bit = 0; bit < 2048; bit += 301)
		refuses(rs, token(tok, sizeof(tok), "{\"alg\":\"RS256\"}", pay, S_RS, rsa, 0, bit),
		    "bad signature");
	for (bit = 0; bit < 512; bit += 73)
		refuses(es, token(tok, sizeof(tok), "{\"alg\":\"ES256\"}", pay, S_ES, ec, 0, bit),
		    "bad signature");

	/* alice's signature on mallory's claims */
	token(tok, sizeof(tok), "{\"alg\":\"RS256\"}", pay, S_RS, rsa, 0, -1);
	token(tok2, sizeof(tok2), "{\"alg\":\"RS256\"}",
	    "{\"sub\":\"mallory\",\"aud\":\"" AUD "\",\"iss\":\"" ISS "\",\"exp\":4000000000}",
	    S_RS, rsa, 0, -1);
	d1 = strchr(tok, '.');
	d2 = strrchr(tok2, '.');
	*d1 = '\0';
	snprintf(spliced, sizeof(spliced), "%s.%.*s%s", tok, (int)(d2 - strchr(tok2, '.') - 1),
	    strchr(tok2, '.') + 1, strrchr(d1 + 1, '.'));
	refuses(rs, spliced, "bad signature");

	/* a signature cut short, and none at all */
	sig_cut = 1;
	refuses(rs, token(tok, sizeof(tok), "{\"alg\":\"RS256\"}", pay, S_RS, rsa, 0, -1), "bad signature");
	refuses(es, token(tok, sizeof(tok), "{\"alg\":\"ES256\"}", pay, S_ES, ec, 0, -1), "bad signature");
	refuses(hs, token(tok, sizeof(tok), "{\"alg\":\"HS256\"}", pay, S_HS, secret, secretlen, -1),
	    "bad signature");
	sig_cut = 0;
	token(tok, sizeof(tok), "{\"alg\":\"RS256\"}", pay, S_NONE, NULL, 0, -1);
	refuses(rs, tok, "bad signature");
	token(tok, sizeof(tok), "{\"alg\":\"HS256\"}", pay, S_NONE, NULL, 0, -1);
	refuses(hs, tok, "bad signature");
	/* r = s = 0 */
	token(tok, sizeof(tok), "{\"alg\":\"ES256\"}", pay, S_NONE, NULL, 0, -1);
	strcat(tok, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
	refuses(es, tok, "bad signature");
	jwt_keys_free(hs);
	jwt_keys_free(rs);
	jwt_keys_free(es);
}

static void
test_alg_none_and_others(void **state)
{
	static const char	*nones[] = { "none", "None", "NONE", "nOnE" };
	static const char	*others[] = { "HS384", "HS512", "RS384", "RS512", "PS256",
	    "ES384", "ES256K", "EdDSA", "hs256", "", "HS256 " };
	struct jwt_keys		*ks;
	char			 hdr[64], pay[256], tok[1024];
	size_t			 i;

	(void)state;
	ks = load_ok(write_str("hs-n.key", secret));
	payload(pay, sizeof(pay));
	for (i = 0; i < UTIL_NELEM(nones); i++) {
		snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\"}", nones[i]);
		refuses(ks, token(tok, sizeof(tok), hdr, pay, S_NONE, NULL, 0, -1), "alg none refused");
		/* not even with a good HMAC after it */
		refuses(ks, token(tok, sizeof(tok), hdr, pay, S_HS, secret, secretlen, -1),
		    "alg none refused");
	}
	for (i = 0; i < UTIL_NELEM(others); i++) {
		snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\"}", others[i]);
		refuses(ks, token(tok, sizeof(tok), hdr, pay, S_HS, secret, secretlen, -1),
		    "unsupported alg");
	}
	refuses(ks, token(tok, sizeof(tok), "{\"typ\":\"JWT\"}", pay, S_HS, secret, secretlen, -1),
	    "malformed");
	refuses(ks, token(tok, sizeof(tok), "{\"alg\":null}", pay, S_HS, secret, secretlen, -1),
	    "malformed");
	refuses(ks, token(tok, sizeof(tok), "{\"alg\":[\"HS256\"]}", pay, S_HS, secret, secretlen, -1),
	    "malformed");
	/* crit: an extension we would have to understand */
	refuses(ks, token(tok, sizeof(tok), "{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", pay, S_HS,
	    secret, secretlen, -1), "crit header refused");
	refuses(ks, token(tok, sizeof(tok), "{\"alg\":\"HS256\",\"b64\":false,\"crit\":[\"b64\"]}",
	    pay, S_HS, secret, secretlen, -1), "crit header refused");
	refuses(ks, token(tok, sizeof(tok), "{\"alg\":\"HS256\",\"crit\":\"exp\"}", pay, S_HS,
	    secret, secretlen, -1), "crit header refused");
	/* RFC 7515 4.1.11: "MUST NOT" be empty; docs/security.md: any crit is refused */
	refuses(ks, token(tok, sizeof(tok), "{\"alg\":\"HS256\",\"crit\":[]}", pay, S_HS,
	    secret, secretlen, -1), "crit header refused");
	refuses(ks, token(tok, sizeof(tok), "{\"alg\":\"HS256\",\"kid\":7}", pay, S_HS,
	    secret, secretlen, -1), "malformed");
	jwt_keys_free(ks);
}

/*
 * The classic confusion: the verifier is given the RSA public key, the
 * attacker (who has it, it is public) signs HS256 with its bytes as the
 * HMAC secret. Any of its encodings.
 */
static void
test_alg_confusion(void **state)
{
	struct jwt_keys	*ks, *jw;
	char		 pay[256], tok[4096], file[2048], n[512];
	char		*pem;
	unsigned char	*der = NULL;
	size_t		 pemlen;
	int		 derlen;

	(void)state;
	write_pem("rsa-c.pem", rsa, 0);
	ks = load_ok(path_of("rsa-c.pem"));
	pem = read_file("rsa-c.pem", &pemlen);
	payload(pay, sizeof(pay));
	refuses(ks, token(tok, sizeof(tok), "{\"alg\":\"HS256\"}", pay, S_HS, pem, pemlen, -1),
	    "alg does not match the key");
	refuses(ks, token(tok, sizeof(tok), "{\"alg\":\"HS256\"}", pay, S_HS, pem, pemlen - 1, -1),
	    "alg does not match the key");
	assert_true((derlen = i2d_PUBKEY(rsa, &der)) > 0);
	refuses(ks, token(tok, sizeof(tok), "{\"alg\":\"HS256\"}", pay, S_HS, der, (size_t)derlen, -1),
	    "alg does not match the key");
	/* and an EC signature for an RSA key, and back */
	refuses(ks, token(tok, sizeof(tok), "{\"alg\":\"ES256\"}", pay, S_ES, ec, 0, -1),
	    "alg does not match the key");
	jwt_keys_free(ks);

	/* the same through a JWKS: the modulus as an HMAC secret */
	bn_param(rsa, OSSL_PKEY_PARAM_RSA_N, 0, n);
	jwk_rsa(rsa, "r1", "", file + 9, sizeof(file) - 16);
	memcpy(file, "{\"keys\":[", 9);
	strcat(file, "]}");
	jw = load_ok(write_str("jwks-c.json", file));
	refuses(jw, token(tok, sizeof(tok), "{\"alg\":\"HS256\",\"kid\":\"r1\"}", pay, S_HS, n,
	    strlen(n), -1), "alg does not match the key");
	refuses(jw, token(tok, sizeof(tok), "{\"alg\":\"HS256\"}", pay, S_HS, pem, pemlen, -1),
	    "alg does not match the key");
	jwt_keys_free(jw);

	/* an HS secret file does not verify RS256 */
	ks = load_ok(write_str("hs-c.key", secret));
	refuses(ks, token(tok, sizeof(tok), "{\"alg\":\"RS256\"}", pay, S_RS, rsa, 0, -1),
	    "alg does not match the key");
	jwt_keys_free(ks);
	OPENSSL_free(der);
	free(pem);
}

static void
test_audience_issuer(void **state)
{
	struct jwt_keys		*ks;
	struct jwt_check	 c = check;
	char			 pay[256], tok[1024], id[64];
	const char		*hdr = "{\"alg\":\"HS256\"}";

	(void)state;
	ks = load_ok(write_str("hs-a.key", secret));
#define TOK(...) (snprintf(pay, sizeof(pay), __VA_ARGS__), \
	    token(tok, sizeof(tok), hdr, pay, S_HS, secret, secretlen, -1))
#define REST "\"sub\":\"alice\",\"exp\":4000000000"
	refuses(ks, TOK("{" REST ",\"iss\":\"" ISS "\",\"aud\":\"other\"}"), "wrong audience");
	refuses(ks, TOK("{" REST ",\"iss\":\"" ISS "\",\"aud\":[\"a\",\"b\"]}"), "wrong audience");
	refuses(ks, TOK("{" REST ",\"iss\":\"" ISS "\",\"aud\":[]}"), "wrong audience");
	refuses(ks, TOK("{" REST ",\"iss\":\"" ISS "\"}"), "wrong audience");
	refuses(ks, TOK("{" REST ",\"iss\":\"" ISS "\",\"aud\":7}"), "wrong audience");
	refuses(ks, TOK("{" REST ",\"iss\":\"" ISS "\",\"aud\":\"chatmonx\"}"), "wrong audience");
	refuses(ks, TOK("{" REST ",\"iss\":\"" ISS "\",\"aud\":[[\"" AUD "\"]]}"), "wrong audience");
	accepts(ks, TOK("{" REST ",\"iss\":\"" ISS "\",\"aud\":[\"a\",7,\"" AUD "\"]}"), "alice");
	refuses(ks, TOK("{" REST ",\"aud\":\"" AUD "\",\"iss\":\"https://evil.example\"}"), "wrong issuer");
	refuses(ks, TOK("{" REST ",\"aud\":\"" AUD "\",\"iss\":\"" ISS "/\"}"), "wrong issuer");
	refuses(ks, TOK("{" REST ",\"aud\":\"" AUD "\"}"), "wrong issuer");
	refuses(ks, TOK("{" REST ",\"aud\":\"" AUD "\",\"iss\":[\"" ISS "\"]}"), "wrong issuer");
	/* not configured: not checked */
	TOK("{" REST "}");
	c.audience = NULL;
	c.issuer = "";
	assert_null(verify_with(ks, &c, tok, id, sizeof(id)));
	c.audience = "";
	c.issuer = NULL;
	assert_null(verify_with(ks, &c, tok, id, sizeof(id)));
#undef TOK
#undef REST
	jwt_keys_free(ks);
}

static void
test_claim(void **state)
{
	struct jwt_keys		*ks;
	struct jwt_check	 c = check;
	char			 pay[512], tok[2048], id[64], small[6];
	const char		*hdr = "{\"alg\":\"HS256\"}";

	(void)state;
	ks = load_ok(write_str("hs-cl.key", secret));
#define TOK(...) (snprintf(pay, sizeof(pay), __VA_ARGS__), \
	    token(tok, sizeof(tok), hdr, pay, S_HS, secret, secretlen, -1))
#define OURS "\"exp\":4000000000,\"aud\":\"" AUD "\",\"iss\":\"" ISS "\""
	refuses(ks, TOK("{" OURS "}"), "claim missing");
	refuses(ks, TOK("{" OURS ",\"sub\":42}"), "claim not a string");
	refuses(ks, TOK("{" OURS ",\"sub\":null}"), "claim not a string");
	refuses(ks, TOK("{" OURS ",\"sub\":[\"alice\"]}"), "claim not a string");
	refuses(ks, TOK("{" OURS ",\"sub\":\"\"}"), "claim empty");
	/* \u0000 would cut the id short: jansson refuses it, so the whole payload is malformed */
	refuses(ks, TOK("{" OURS ",\"sub\":\"al\\u0000ice\"}"), "malformed");
	accepts(ks, TOK("{" OURS ",\"sub\":\"\\u5c0f\\u738b\"}"), "\xe5\xb0\x8f\xe7\x8e\x8b");
	/* the id and its NUL fit, or the token is refused: never cut */
	TOK("{" OURS ",\"sub\":\"abcdef\"}");
	assert_string_equal(verify_with(ks, &c, tok, small, sizeof(small)), "claim too long");
	TOK("{" OURS ",\"sub\":\"abcde\"}");
	assert_null(verify_with(ks, &c, tok, small, sizeof(small)));
	assert_string_equal(small, "abcde");
	/* another claim */
	c.claim = "agent";
	TOK("{" OURS ",\"sub\":\"u-1\",\"agent\":\"bob\"}");
	assert_null(verify_with(ks, &c, tok, id, sizeof(id)));
	assert_string_equal(id, "bob");
	TOK("{" OURS ",\"sub\":\"u-1\"}");
	assert_string_equal(verify_with(ks, &c, tok, id, sizeof(id)), "claim missing");
	/* the payload must be an object, parsed only after the signature */
	refuses(ks, TOK("[\"alice\"]"), "malformed");
	refuses(ks, TOK("{" OURS ",\"sub\":\"alice\""), "malformed");
#undef TOK
#undef OURS
	jwt_keys_free(ks);
}

static void
test_malformed(void **state)
{
	static const char	*bad[] = { "", ".", "..", "...", "a", "a.b", "a.b.c.d",
	    "a.b.c.d.e" };
	struct jwt_keys		*ks;
	char			 pay[9000], tok[13000], t2[13100], pad[8192];
	char			 id[64];
	const char		*why;
	size_t			 i, n;

	(void)state;
	ks = load_ok(write_str("hs-m.key", secret));
	for (i = 0; i < UTIL_NELEM(bad); i++)
		refuses(ks, bad[i], "malformed");

	/* the size cap comes before anything else: a good token just over it is refused */
	for (n = 5800; ; n++) {
		memset(pad, 'x', n);
		pad[n] = '\0';
		snprintf(pay, sizeof(pay), "{\"sub\":\"alice\",\"aud\":\"" AUD "\",\"iss\":\"" ISS
		    "\",\"exp\":4000000000,\"pad\":\"%s\"}", pad);
		token(tok, sizeof(tok), "{\"alg\":\"HS256\"}", pay, S_HS, secret, secretlen, -1);
		if (strlen(tok) > JWT_MAX_TOKEN)
			break;
		accepts(ks, tok, "alice");
	}
	assert_true(strlen(tok) <= JWT_MAX_TOKEN + 2);
	refuses(ks, tok, "token too long");
	/* checked by the length given, before any byte is looked at */
	assert_int_equal(jwt_verify(ks, &check, "x", (size_t)1 << 40, NOW, id, sizeof(id), &why), -1);
	assert_string_equal(why, "token too long");

	/* base64url, strictly */
	payload(pay, sizeof(pay));
	token(tok, sizeof(tok), "{\"alg\":\"HS256\"}", pay, S_HS, secret, secretlen, -1);
	accepts(ks, tok, "alice");
	snprintf(t2, sizeof(t2), "%s=", tok);		/* padding */
	refuses(ks, t2, "malformed");
	for (i = 0; tok[i] != '\0'; i++) {
		static const char	subst[] = { '+', '/', '=', ' ', '\n', '\0', '\xc3', '*' };
		size_t			j;

		if (tok[i] == '.' || i % 7 != 0)
			continue;
		for (j = 0; j < sizeof(subst); j++) {
			memcpy(t2, tok, strlen(tok) + 1);
			t2[i] = subst[j];
			assert_int_equal(jwt_verify(ks, &check, t2, strlen(tok), NOW, id,
			    sizeof(id), &why), -1);
			assert_string_equal(why, "malformed");
		}
	}
	/* a 32-byte MAC is 43 characters, the last with 2 unused bits: set, they make a second encoding */
	{
		static const char	a[] =
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

		memcpy(t2, tok, strlen(tok) + 1);
		n = strlen(t2) - 1;
		assert_int_equal((strchr(a, t2[n]) - a) & 3, 0);
		t2[n] = a[(strchr(a, t2[n]) - a) | 1];
		refuses(ks, t2, "malformed");
	}
	/* a length no encoding has (4k + 1): the 20 characters of {"alg":"HS256"} and one more */
	snprintf(t2, sizeof(t2), "A%s", tok);
	assert_int_equal(strchr(tok, '.') - tok, 20);
	refuses(ks, t2, "malformed");
	/* the same in the signature: 30 bytes are 40 characters, and an "A" that adds no byte */
	sig_cut = 2;
	token(t2, sizeof(t2), "{\"alg\":\"HS256\"}", pay, S_HS, secret, secretlen, -1);
	sig_cut = 0;
	assert_int_equal(strlen(strrchr(t2, '.') + 1), 40);
	strcat(t2, "A");
	refuses(ks, t2, "malformed");

	/* the header: JSON, an object, no key twice */
	refuses(ks, token(tok, sizeof(tok), "[\"HS256\"]", pay, S_HS, secret, secretlen, -1), "malformed");
	refuses(ks, token(tok, sizeof(tok), "{\"alg\":\"HS256\"", pay, S_HS, secret, secretlen, -1), "malformed");
	refuses(ks, token(tok, sizeof(tok), "{\"alg\":\"HS256\",\"alg\":\"HS256\"}", pay, S_HS,
	    secret, secretlen, -1), "malformed");
	refuses(ks, token(tok, sizeof(tok), "{\"alg\":\"HS256\",\"alg\":\"none\"}", pay, S_NONE,
	    NULL, 0, -1), "malformed");
	/* the payload: a second sub, well signed, is not read either way */
	refuses(ks, token(tok, sizeof(tok), "{\"alg\":\"HS256\"}",
	    "{\"sub\":\"alice\",\"sub\":\"root\",\"aud\":\"" AUD "\",\"iss\":\"" ISS "\",\"exp\":4000000000}",
	    S_HS, secret, secretlen, -1), "malformed");
	refuses(ks, token(tok, sizeof(tok), "{\"alg\":\"HS256\"}",
	    "{\"sub\":\"alice\",\"aud\":\"" AUD "\",\"iss\":\"" ISS "\",\"exp\":4000000000,\"exp\":4000000001}",
	    S_HS, secret, secretlen, -1), "malformed");
	/* a null handle, an id with no room */
	assert_int_equal(jwt_verify(NULL, &check, tok, strlen(tok), NOW, id, sizeof(id), &why), -1);
	assert_int_equal(jwt_verify(ks, &check, tok, strlen(tok), NOW, id, 0, &why), -1);
	jwt_keys_free(ks);
}

static void
test_key_files(void **state)
{
	EVP_PKEY	*small, *p384;
	char		 buf[4096], jwk[1024], tok[256], *pem, *two;
	size_t		 len, len2;
	const char	*p;
	struct jwt_keys	*ks;

	(void)state;
	load_fails(path_of("missing.key"), "cannot read");
	load_fails(tmpdir, "not a regular file");
	load_fails(write_str("empty.key", ""), "HS256 secret of 0 bytes");
	load_fails(write_str("short.key", "0123456789012345678901234567890\n"),
	    "HS256 secret of 31 bytes: 32 or more");
	/* exactly 32, with "\r\n" stripped, is enough; the "\r" is no part of the secret */
	ks = load_ok(write_str("crlf.key", "01234567890123456789012345678901\r\n"));
	assert_int_equal(jwt_keys_count(ks), 1);
	payload(tok, sizeof(tok));
	accepts(ks, token(buf, sizeof(buf), "{\"alg\":\"HS256\"}", tok, S_HS,
	    "01234567890123456789012345678901", 32, -1), "alice");
	jwt_keys_free(ks);
	memset(buf, 'a', sizeof(buf));
	for (len = 0; len < (1u << 20) + 1; len += sizeof(buf)) {
		FILE	*f = fopen(path_of("big.key"), len ? "a" : "w");

		assert_non_null(f);
		fwrite(buf, 1, sizeof(buf), f);
		fclose(f);
	}
	load_fails(path_of("big.key"), "larger than");

	/* PEM */
	load_fails(write_str("garbage.pem", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"),
	    "no PEM public key");
	write_pem("private.pem", rsa, 1);
	load_fails(path_of("private.pem"), "a private key");
	write_pem("ecpriv.pem", ec, 1);
	load_fails(path_of("ecpriv.pem"), "a private key");
	assert_non_null(small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024));
	write_pem("rsa1024.pem", small, 0);
	load_fails(path_of("rsa1024.pem"), "shorter than 2048 bits");
	assert_non_null(p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384"));
	write_pem("p384.pem", p384, 0);
	load_fails(path_of("p384.pem"), "not on P-256");
	write_pem("one.pem", rsa, 0);
	write_pem("two.pem", rsa2, 0);
	pem = read_file("one.pem", &len);
	two = read_file("two.pem", &len2);
	snprintf(buf, sizeof(buf), "%s%s", pem, two);
	load_fails(write_str("both.pem", buf), "more than one public key");
	/* a PEM file with blank lines around it still is one */
	snprintf(buf, sizeof(buf), "\n\n%s\n", pem);
	ks = load_ok(write_str("spaced.pem", buf));
	jwt_keys_free(ks);
	/*
	 * so is one after a comment line or a byte order mark, as OpenSSL
	 * reads it: never an HS256 secret of the public key's bytes, with
	 * which anyone could sign a token
	 */
	snprintf(buf, sizeof(buf), "# the issuer's key\n%s", pem);
	ks = load_ok(write_str("comment.pem", buf));
	payload(tok, sizeof(tok));
	refuses(ks, token(jwk, sizeof(jwk), "{\"alg\":\"HS256\"}", tok, S_HS, buf,
	    strlen(buf), -1), "alg does not match the key");
	jwt_keys_free(ks);
	snprintf(buf, sizeof(buf), "\xef\xbb\xbf%s", pem);
	ks = load_ok(write_str("bom.pem", buf));
	refuses(ks, token(jwk, sizeof(jwk), "{\"alg\":\"HS256\"}", tok, S_HS, buf,
	    strlen(buf), -1), "alg does not match the key");
	jwt_keys_free(ks);
	free(pem);
	free(two);
	/* keys in other forms are refused, not taken for secrets */
	{
		unsigned char	*der = NULL;
		int		 n;

		assert_true((n = i2d_PUBKEY(rsa, &der)) > 0);
		load_fails(write_file("pub.der", der, (size_t)n), "a DER public key");
		OPENSSL_free(der);
		der = NULL;
		assert_true((n = i2d_PrivateKey(ec, &der)) > 0);
		load_fails(write_file("priv.der", der, (size_t)n), "a DER private key");
		OPENSSL_free(der);
	}
	load_fails(write_str("id_rsa.pub", "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 me@host\n"),
	    "an OpenSSH public key");
	load_fails(write_str("bom.key", "\xef\xbb\xbf" "01234567890123456789012345678901\n"),
	    "byte order mark");

	/* a JWKS after a byte order mark is one */
	jwk_rsa(rsa, "bom", "", jwk, sizeof(jwk));
	snprintf(buf, sizeof(buf), "\xef\xbb\xbf{\"keys\":[%s]}\n", jwk);
	ks = load_ok(write_str("bom.json", buf));
	assert_int_equal(jwt_keys_count(ks), 1);
	refuses(ks, token(tok, sizeof(tok), "{\"alg\":\"HS256\",\"kid\":\"bom\"}",
	    "{\"sub\":\"alice\",\"exp\":4000000000}", S_HS, buf, strlen(buf), -1), "alg does not match the key");
	jwt_keys_free(ks);

	/* JWKS: a syntax error names its line */
	p = write_str("syntax.json", "{\"keys\": [\n  {\"kty\": \"RSA\",\n   \"n\": ,\n}]}\n");
	snprintf(buf, sizeof(buf), "%s:3: ", p);
	load_fails(p, buf);
	p = write_str("dup.json", "{\"keys\": [],\n\"keys\": []}");
	snprintf(buf, sizeof(buf), "%s:2: duplicate object key", p);
	load_fails(p, buf);
	load_fails(write_str("nokeys.json", "{\"kty\":\"RSA\"}"), "no \"keys\" array");
	load_fails(write_str("keysobj.json", "{\"keys\":{}}"), "no \"keys\" array");
	load_fails(write_str("zero.json", "{\"keys\":[]}"), "no key in the JWKS");
	jwk_rsa(rsa, "e", ",\"use\":\"enc\"", jwk, sizeof(jwk));
	snprintf(buf, sizeof(buf), "{\"keys\":[%s]}", jwk);
	load_fails(write_str("enc.json", buf), "no usable key in the JWKS (1 skipped, the last for \"use\" is not \"sig\")");
	load_fails(write_str("notobj.json", "{\"keys\":[\"abc\"]}"), "keys[0]: not an object");
	load_fails(write_str("nokty.json", "{\"keys\":[{\"n\":\"AQAB\"}]}"), "keys[0]: \"kty\" must be a string");
	load_fails(write_str("kidnum.json", "{\"keys\":[{\"kty\":\"oct\",\"kid\":1}]}"), "keys[0]");
	load_fails(write_str("non.json", "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"a\",\"e\":\"AQAB\"}]}"),
	    "keys[0] a: \"n\" and \"e\" must be base64url strings");
	load_fails(write_str("padn.json", "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB=\",\"e\":\"AQAB\"}]}"),
	    "\"n\" and \"e\" must be base64url");
	load_fails(write_str("shortn.json", "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}"),
	    "shorter than 2048 bits");
	jwk_rsa(rsa, "e1", "", jwk, sizeof(jwk));
	memcpy(strstr(jwk, "\"e\":\"AQAB\""), "\"e\":\"AQAA\"", 10);
	snprintf(buf, sizeof(buf), "{\"keys\":[%s]}", jwk);
	load_fails(write_str("evenexp.json", buf), "must be odd");
	jwk_rsa(rsa, "e1", "", jwk, sizeof(jwk));
	memcpy(strstr(jwk, "\"e\":\"AQAB\""), "\"e\":\"AQ\"  ", 10);
	snprintf(buf, sizeof(buf), "{\"keys\":[%s]}", jwk);
	load_fails(write_str("exp1.json", buf), "e > 1");
	load_fails(write_str("shortk.json", "{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2hvcnQ\"}]}"),
	    "an HS256 secret shorter than 32 bytes");
	load_fails(write_str("nok.json", "{\"keys\":[{\"kty\":\"oct\"}]}"), "\"k\" must be a base64url string");
	jwk_ec(ec, "e1", "", jwk, sizeof(jwk));
	*strstr(jwk, "\"y\":\"") = '\0';
	snprintf(buf, sizeof(buf), "{\"keys\":[%s\"y\":\"AAAA\"}]}", jwk);
	load_fails(write_str("ecy.json", buf), "\"x\" and \"y\" must be base64url strings of 32 bytes");
	/* a point off the curve: y changed */
	jwk_ec(ec, "e1", "", jwk, sizeof(jwk));
	{
		char	*y = strstr(jwk, "\"y\":\"") + 5;

		y[10] = y[10] == 'A' ? 'B' : 'A';
	}
	snprintf(buf, sizeof(buf), "{\"keys\":[%s]}", jwk);
	load_fails(write_str("offcurve.json", buf), "not a point of P-256");
	jwk_ec(ec, "e1", ",\"d\":\"AAAA\"", jwk, sizeof(jwk));
	snprintf(buf, sizeof(buf), "{\"keys\":[%s]}", jwk);
	load_fails(write_str("private.json", buf), "keys[0]: a private key");
	jwk_rsa(rsa, "r1", ",\"alg\":\"ES256\"", jwk, sizeof(jwk));
	snprintf(buf, sizeof(buf), "{\"keys\":[%s]}", jwk);
	load_fails(write_str("mismatch.json", buf), "keys[0]: \"alg\" ES256 does not fit \"kty\" RSA");
	jwk_rsa(rsa, "r1", ",\"key_ops\":[\"encrypt\"]", jwk, sizeof(jwk));
	snprintf(buf, sizeof(buf), "{\"keys\":[%s]}", jwk);
	load_fails(write_str("ops.json", buf), "no usable key");
	/* a key the file cannot use is an error only when no key is left */
	load_fails(write_str("okp.json", "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AA\"}]}"),
	    "1 skipped, the last for a \"kty\" other than RSA, EC and oct");

	jwt_keys_free(NULL);
	assert_int_equal(jwt_keys_count(NULL), 0);
	EVP_PKEY_free(small);
	EVP_PKEY_free(p384);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hs256),
		cmocka_unit_test(test_rs256),
		cmocka_unit_test(test_es256),
		cmocka_unit_test(test_jwks),
		cmocka_unit_test(test_times),
		cmocka_unit_test(test_bad_signature),
		cmocka_unit_test(test_alg_none_and_others),
		cmocka_unit_test(test_alg_confusion),
		cmocka_unit_test(test_audience_issuer),
		cmocka_unit_test(test_claim),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_key_files),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
