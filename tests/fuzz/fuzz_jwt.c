/* fuzz_jwt: tokens through jwt_verify under fixed key sets, against an oracle that verifies them itself; tokens the harness signs; the input as a key file. */
#include <stdint.h>
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
#include <openssl/pem.h>

#include "chatmon/jwt.h"
#include "chatmon/util.h"

#include "fuzz.h"
#include "../common/b64url.h"

/*
 * Agents' tokens arrive from anyone, before authentication. Every input is
 * verified as a token under five key sets (an HS256 secret file, an RSA and
 * an EC PEM public key, a JWKS with kids, a JWKS without) and four
 * jwt_checks, and the answer is compared with an oracle written from
 * jwt.h: it splits and decodes the token itself, checks the signature with
 * the harness's own private keys (OpenSSL's verification and HMAC, not
 * jwt.c's), then the claims. Accepted exactly when the oracle accepts, with
 * the same id; refused with the oracle's reason; id "" on refusal;
 * OpenSSL's error queue empty after every call.
 *
 * An input that starts with MARK is "MARK SEL HEADER\0CLAIMS": the harness
 * signs the two JSON texts as they are with the key SEL names (bits 0-1:
 * the secret, RSA, EC, the second EC key; bit 2: an ES256 signature in
 * DER rather than JOSE's r || s, which must be refused), so that the claims
 * checks are reached with good signatures; then one bit of the signature
 * (chosen by SEL's high bits) is flipped, and that token must be refused
 * under every set and check.
 *
 * Any other input is also written to a key file (in memory) for
 * jwt_keys_load: a refusal is one line naming the file, a load has keys,
 * and fixed good tokens are verified under the loaded set.
 *
 * The private keys below are the harness's own, made for it
 * (openssl genpkey) and used nowhere else.
 */

#define MARK		0x01
#define NOW		INT64_C(1700000000)
#define SECRET		"fuzz-jwt-hs256-secret-made-for-the-harness-only"

static const char rsa_pem[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC6J/DTJ2Z1VBT/\n"
	"c+iV9X1oO/ThftP1H61Fvt3LboBe6tTPMGARZfuUHzFmToDSahx0roMxUyysbCMh\n"
	"iTclSVSiMKM3wXMQ57PdCjdwn1xPtgKZnNKexwWE4A0fuYFY/5190DFE8p0qCA3I\n"
	"4LbTX994xMX4t7s41Ahp9Bw6aOwkrsyVQiVWSHFLFT3SHZM+OSl4rjx06j3Zm9qe\n"
	"ptQ2wMZZAY5Q5CA8cLTa9QdZT1K8cFddfliXMf+sFh6Alj6GGar2m17JZgbs4b2R\n"
	"udXL5vHapT5Cak8hiPzyL2iybsptiP7bmQzSveC049dHUIP1HRSUpM59G9LtfQ7Y\n"
	"VAkHqrUDAgMBAAECggEARZjlKqySW89BwnfdPyN27V9tIFlAeWaMa4T+ey4nBFWb\n"
	"lpKpeBe+xRQcbflvpDtTxDPyjKBiFVygjcs1ONV/tNumShQjJvDZiAxnyc1qv8p2\n"
	"kmPVQtN5tsHlZjT+rP10LjOGGBb0t2AndzC8aa5waEB5G5Hlh0uOkb5YR2Yu0095\n"
	"vgOIvBgIC9FDxWdbzKxxQ2IhnzndMC3GTKecQFE8PyyynW7hzqUmyDA1arMrtai/\n"
	"00/5pGsw4r3yF8N6NXpLCc8vjO/NxGl6hxI4Jz39I/jTFncfEhW0HeuQz/IwF/OH\n"
	"SxRXn+xyZIbX3YGIgA7jxLQ0luduwXaZEwfznrYNMQKBgQD+SozJ9+hN8F/5WAml\n"
	"Olxg5LQBHyoTTS2zELeJG6+MnHw1Mvxr/jzV8emrBRFU/LMLuH4hTLWSRbTiml8J\n"
	"aYvAEui1UrybaiujJ0ALI7TBVcA0lm3GxyxJcnG3GYBWWHEqFXY/FBE8/CXqWR8I\n"
	"Ki9Vxxz8t5zMbm/Sf6N5IE1LHQKBgQC7aC4BCbzacunDX3G4b89ZDnpGBQimpqUg\n"
	"p3iNKNfhXKOWUhFA9pofQb0WYTvFnOvmRrK5AsLq7KaEaY2Xxg89Mt8YFkYtIg2b\n"
	"XGeet8MkkR6N2RlqhXvgU0xIOQHYQfC9/Z6LQArWJ7AmmbdNmGht1Yi5r/kKyqPk\n"
	"YIk1KlHmnwKBgQDAH70tXyNht2obrntjHavr/P9PFaepe5c6gjfY3FUPDK//Va1H\n"
	"PofiMOsVrjeBGYeBJHwPVrCcehQHXRDOwLK4hNDTJlafqWCc3SvS/sAzjkEwujLo\n"
	"i1UXjOMDrr26/wlI/Xwgfl3j0LIo0/rRJWYsDcsF2QgboJjV1l/BRTmAtQKBgBYu\n"
	"fYt36Jd+lHagfGhVK5ih4w0YmW6IOPFFgTpMBElTWrV3Hz2uMo3SjRvyBE4ehblq\n"
	"0sqdLg76VbdEexLkyXb353oFYOcEqdGivU0G+R0B5Djr4ls+U2w4z8WYocREAcer\n"
	"FjHrMZ0pc2sONKkFig6+AIHh9zs0wvNMDdFyIeGHAoGABZb1T4y81eKYmFHji0aI\n"
	"q46Zna4UAImhHAuf2byF5mWbQzjcjV5LlMXc2SshFLFLVYmhB/y00JoQ/Y+mTldT\n"
	"talAwzW+FUqu2C58pr4Qf6CsGqVGHOnphaL+mIwgX2T44BQkT+UJDGx3p3+2UjmX\n"
	"QdtkCsU1QcR7dmWGJ0zjvyo=\n"
	"-----END PRIVATE KEY-----\n";

static const char ec_pem[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgpT43KCZMnrH/VOa4\n"
	"cKM27KXPwSz9/RuVw2lDqTdbM3qhRANCAATL80Bf/UPfvxmHrGwAWxayi5HAT1H3\n"
	"jan2Ygf3BY6CPawXXp+trPK8xj3NlgCAfegnxfZhJi4/AyBAuJMUCdfE\n"
	"-----END PRIVATE KEY-----\n";

static const char ec2_pem[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgTK8Wnwl75D+BejkN\n"
	"JUzlSC6NgwfwVKbbcIWwOApPfRWhRANCAATKpMkychHftFXB9IT4pdtckEFgBXVA\n"
	"ABwOi7F12RPKUQlLwmTTt+FgVQqfB8C5fRSA3C8UoDBK0rK1e9zeNHq1\n"
	"-----END PRIVATE KEY-----\n";

enum signer { SG_HS, SG_RS, SG_ES, SG_ES2, SG_N };
enum alg { ALG_NONE, ALG_HS, ALG_RS, ALG_ES };

static const enum alg signer_alg[SG_N] = { ALG_HS, ALG_RS, ALG_ES, ALG_ES };

/* What a key set holds, as the oracle knows it: a signer's key, its kid or none, answering any kid (a file of one key). */
struct held {
	int		 signer;
	const char	*kid;
	int		 anykid;
};

#define SET_MAX_KEYS	4

struct set {
	const char	*name;
	struct held	 keys[SET_MAX_KEYS];
	size_t		 n;
	struct jwt_keys	*ks;
};

static struct set sets[] = {
	{ "hs.key", { { SG_HS, NULL, 1 } }, 1, NULL },
	{ "rsa.pem", { { SG_RS, NULL, 1 } }, 1, NULL },
	{ "ec.pem", { { SG_ES, NULL, 1 } }, 1, NULL },
	{ "kids.jwks", { { SG_RS, "rsa-1", 0 }, { SG_ES, "ec-1", 0 }, { SG_ES2, "ec-2", 0 },
	    { SG_HS, "hs-1", 0 } }, 4, NULL },
	{ "nokid.jwks", { { SG_ES2, NULL, 0 }, { SG_HS, "hs-1", 0 } }, 2, NULL },
};

struct chk {
	struct jwt_check c;
	int64_t		 now;
	size_t		 idlen;
};

static const struct chk checks[] = {
	{ { "sub", "chatmon", "https://idp.example", 0 }, NOW, 64 },
	{ { "sub", NULL, "", 60 }, NOW, 8 },
	/* leeway past the end of time: the saturating sums */
	{ { "agent", "", NULL, INT64_MAX }, NOW, 64 },
	/* no claim configured: every good token refused all the same; a negative leeway is 0 */
	{ { NULL, NULL, NULL, -5 }, NOW, 64 },
};

static EVP_PKEY		*pkeys[SG_N];	/* [SG_HS] stays NULL */
static struct fuzz_file	 keyfile;
static char		*good[SG_N];	/* tokens signed at start, for key sets from the input */

/* --- base64url ------------------------------------------------------------ */

/*
 * The bytes of a base64url segment (a new buffer), or NULL when it is not
 * one: decoded leniently, then encoded again, and only an exact match
 * counts, so that one byte string has one encoding (RFC 7515 2, no '=').
 */
static unsigned char *
unb64url(const char *s, size_t n, size_t *outlen)
{
	unsigned char	*out;
	char		*again;
	uint32_t	 acc = 0;
	size_t		 i, o = 0, bits = 0;
	const char	*p;
	static const char a[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

	out = malloc(n * 3 / 4 + 1);
	again = malloc(n + 4);
	if (out == NULL || again == NULL)
		abort();
	for (i = 0; i < n; i++) {
		if (s[i] == '\0' || (p = strchr(a, s[i])) == NULL)
			goto bad;
		acc = acc << 6 | (uint32_t)(p - a);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	b64url(out, o, again);
	if (strlen(again) != n || memcmp(again, s, n) != 0)
		goto bad;
	free(again);
	*outlen = o;
	return out;
bad:
	free(out);
	free(again);
	return NULL;
}

/* --- signing (the harness's, the module only verifies) --------------------- */

/* The signature of msg by signer g into sig (>= 512 bytes); its length. der: ES256 left in DER. */
static size_t
sign(int g, int der, const char *msg, size_t mlen, unsigned char *sig)
{
	EVP_MD_CTX		*ctx;
	ECDSA_SIG		*es;
	const BIGNUM		*r, *s;
	const unsigned char	*p;
	unsigned char		 buf[512];
	unsigned int		 hl = 0;
	size_t			 n = sizeof(buf);

	if (g == SG_HS) {
		FUZZ_CHECK(HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET),
		    (const unsigned char *)msg, mlen, sig, &hl) != NULL);
		return hl;
	}
	FUZZ_CHECK((ctx = EVP_MD_CTX_new()) != NULL);
	FUZZ_CHECK(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, pkeys[g]) == 1);
	FUZZ_CHECK(EVP_DigestSign(ctx, buf, &n, (const unsigned char *)msg, mlen) == 1);
	EVP_MD_CTX_free(ctx);
	if (g == SG_RS || der) {
		memcpy(sig, buf, n);
		return n;
	}
	/* JOSE wants r || s at 32 bytes each */
	p = buf;
	FUZZ_CHECK((es = d2i_ECDSA_SIG(NULL, &p, (long)n)) != NULL);
	ECDSA_SIG_get0(es, &r, &s);
	FUZZ_CHECK(BN_bn2binpad(r, sig, 32) == 32 && BN_bn2binpad(s, sig + 32, 32) == 32);
	ECDSA_SIG_free(es);
	return 64;
}

/* HEADER.CLAIMS.SIG as a new string; the signature's bytes in sig, its length in *slen. */
static char *
make_token(const char *hdr, size_t hlen, const char *pay, size_t plen, int g, int der,
    unsigned char *sig, size_t *slen)
{
	char	*t;
	size_t	 n;

	n = (hlen + plen) * 4 / 3 + 8 + 512 * 4 / 3 + 8;
	if ((t = malloc(n)) == NULL)
		abort();
	b64url((const unsigned char *)hdr, hlen, t);
	strcat(t, ".");
	b64url((const unsigned char *)pay, plen, t + strlen(t));
	*slen = sign(g, der, t, strlen(t), sig);
	strcat(t, ".");
	b64url(sig, *slen, t + strlen(t));
	return t;
}

/* --- the oracle ------------------------------------------------------------ */

static enum alg
alg_named(const char *s)
{
	if (strcmp(s, "HS256") == 0)
		return ALG_HS;
	if (strcmp(s, "RS256") == 0)
		return ALG_RS;
	if (strcmp(s, "ES256") == 0)
		return ALG_ES;
	return ALG_NONE;
}

/* Whether sig is signer g's signature of msg under alg a, checked with the harness's keys. */
static int
oracle_sig(int g, enum alg a, const unsigned char *msg, size_t mlen, const unsigned char *sig,
    size_t slen)
{
	unsigned char	 md[EVP_MAX_MD_SIZE], *der = NULL;
	unsigned int	 mdlen = 0;
	EVP_MD_CTX	*ctx;
	ECDSA_SIG	*es;
	BIGNUM		*r, *s;
	int		 dlen, ok;

	if (a != signer_alg[g])
		return 0;
	if (a == ALG_HS) {
		FUZZ_CHECK(HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), msg, mlen, md,
		    &mdlen) != NULL);
		return slen == mdlen && memcmp(md, sig, slen) == 0;
	}
	if (a == ALG_ES) {
		/* JOSE's r || s, RFC 7518 3.4; DER or any other length is not one */
		if (slen != 64)
			return 0;
		FUZZ_CHECK((es = ECDSA_SIG_new()) != NULL);
		r = BN_bin2bn(sig, 32, NULL);
		s = BN_bin2bn(sig + 32, 32, NULL);
		FUZZ_CHECK(r != NULL && s != NULL && ECDSA_SIG_set0(es, r, s) == 1);
		FUZZ_CHECK((dlen = i2d_ECDSA_SIG(es, &der)) > 0);
		ECDSA_SIG_free(es);
		sig = der;
		slen = (size_t)dlen;
	}
	FUZZ_CHECK((ctx = EVP_MD_CTX_new()) != NULL);
	ok = EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pkeys[g]) == 1 &&
	    EVP_DigestVerify(ctx, sig, slen, msg, mlen) == 1;
	EVP_MD_CTX_free(ctx);
	OPENSSL_free(der);
	ERR_clear_error();
	return ok;
}

/*
 * t <= lim for a NumericDate, lim = now -/+ leeway exactly (the oracle's
 * now is far from the ends of int64_t, so only the leeway saturates). A
 * real is compared as a double, as C compares it with an integer.
 */
static int
at_or_before(const json_t *t, int64_t now, int64_t leeway, int dir)
{
	__int128	lim = (__int128)now + dir * (__int128)leeway;

	if (lim > INT64_MAX)
		lim = INT64_MAX;
	if (json_is_integer(t))
		return (__int128)json_integer_value(t) <= lim;
	return json_real_value(t) <= (double)(int64_t)lim;
}

/* jwt.h's checks of a payload whose signature is good; NULL: accepted, with the claim copied into id. */
static const char *
oracle_claims(const json_t *pay, const struct chk *k, char *id)
{
	const struct jwt_check	*c = &k->c;
	const json_t		*exp, *nbf, *iat, *v, *e;
	int64_t			 leeway = c->leeway_s > 0 ? c->leeway_s : 0;
	size_t			 i;
	int			 found;

	exp = json_object_get(pay, "exp");
	nbf = json_object_get(pay, "nbf");
	iat = json_object_get(pay, "iat");
	if (exp == NULL)
		return "no expiry";
	if (!json_is_number(exp) || (nbf != NULL && !json_is_number(nbf)) ||
	    (iat != NULL && !json_is_number(iat)))
		return "malformed";
	if (at_or_before(exp, k->now, leeway, -1))
		return "expired";
	if (nbf != NULL && !at_or_before(nbf, k->now, leeway, 1))
		return "not yet valid";
	if (c->issuer != NULL && *c->issuer != '\0' &&
	    (!json_is_string(v = json_object_get(pay, "iss")) ||
	    strcmp(json_string_value(v), c->issuer) != 0))
		return "wrong issuer";
	if (c->audience != NULL && *c->audience != '\0') {
		v = json_object_get(pay, "aud");
		found = json_is_string(v) && strcmp(json_string_value(v), c->audience) == 0;
		json_array_foreach(v, i, e)
			found |= json_is_string(e) && strcmp(json_string_value(e), c->audience) == 0;
		if (!found)
			return "wrong audience";
	}
	if (c->claim == NULL || *c->claim == '\0')
		return "no claim configured";
	if ((v = json_object_get(pay, c->claim)) == NULL)
		return "claim missing";
	if (!json_is_string(v))
		return "claim not a string";
	if (json_string_length(v) == 0)
		return "claim empty";
	if (json_string_length(v) >= k->idlen)
		return "claim too long";
	memcpy(id, json_string_value(v), json_string_length(v) + 1);
	return NULL;
}

/* What jwt_verify must answer for tok under set s and check k: NULL (accepted, the id in id) or the reason. */
static const char *
oracle(const struct set *s, const struct chk *k, const char *tok, size_t len, char *id)
{
	const char	*d1, *d2, *r = "malformed", *kid = NULL;
	unsigned char	*h = NULL, *p = NULL, *sig = NULL;
	json_t		*hdr = NULL, *pay = NULL, *v;
	size_t		 hl, pl, sl, i, nkid = 0, nalg = 0;
	enum alg	 a;
	int		 ok = 0;

	id[0] = '\0';
	if (len > JWT_MAX_TOKEN)
		return "token too long";
	if ((d1 = memchr(tok, '.', len)) == NULL ||
	    (d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok))) == NULL ||
	    memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - tok)) != NULL)
		return r;
	if ((h = unb64url(tok, (size_t)(d1 - tok), &hl)) == NULL ||
	    (p = unb64url(d1 + 1, (size_t)(d2 - d1 - 1), &pl)) == NULL ||
	    (sig = unb64url(d2 + 1, len - (size_t)(d2 + 1 - tok), &sl)) == NULL)
		goto done;
	if ((hdr = json_loadb((const char *)h, hl, JSON_REJECT_DUPLICATES, NULL)) == NULL ||
	    !json_is_object(hdr) || !json_is_string(v = json_object_get(hdr, "alg")))
		goto done;
	if (strcasecmp(json_string_value(v), "none") == 0) {
		r = "alg none refused";
		goto done;
	}
	if ((a = alg_named(json_string_value(v))) == ALG_NONE) {
		r = "unsupported alg";
		goto done;
	}
	/* any crit, an empty list too (RFC 7515 4.1.11: it must not be empty) */
	if (json_object_get(hdr, "crit") != NULL) {
		r = "crit header refused";
		goto done;
	}
	if ((v = json_object_get(hdr, "kid")) != NULL) {
		if (!json_is_string(v))
			goto done;
		kid = json_string_value(v);
	}
	for (i = 0; i < s->n && !ok; i++) {
		if (kid != NULL && !s->keys[i].anykid &&
		    (s->keys[i].kid == NULL || strcmp(s->keys[i].kid, kid) != 0))
			continue;
		nkid++;
		if (signer_alg[s->keys[i].signer] != a)
			continue;
		nalg++;
		ok = oracle_sig(s->keys[i].signer, a, (const unsigned char *)tok,
		    (size_t)(d2 - tok), sig, sl);
	}
	if (!ok) {
		r = nkid == 0 ? "unknown kid" : nalg == 0 ? "alg does not match the key" :
		    "bad signature";
		goto done;
	}
	if ((pay = json_loadb((const char *)p, pl, JSON_REJECT_DUPLICATES, NULL)) == NULL ||
	    !json_is_object(pay))
		goto done;
	r = oracle_claims(pay, k, id);
done:
	json_decref(hdr);
	json_decref(pay);
	free(h);
	free(p);
	free(sig);
	return r;
}

/* --- the checks ------------------------------------------------------------ */

/* jwt_verify of tok under every set and check, each against the oracle; how many accepted it. */
static size_t
verify_all(const char *tok, size_t len)
{
	const struct chk	*k;
	const char		*why, *want;
	char			*id, want_id[JWT_MAX_TOKEN];
	size_t			 si, ci, accepted = 0;
	int			 rc;

	for (si = 0; si < UTIL_NELEM(sets); si++)
		for (ci = 0; ci < UTIL_NELEM(checks); ci++) {
			k = &checks[ci];
			/* exactly idlen bytes: a write past them is ASan's */
			if ((id = malloc(k->idlen)) == NULL)
				abort();
			memset(id, 'X', k->idlen);
			why = NULL;
			ERR_clear_error();
			rc = jwt_verify(sets[si].ks, &k->c, tok, len, k->now, id, k->idlen, &why);
			FUZZ_CHECK(ERR_peek_error() == 0);
			want = oracle(&sets[si], k, tok, len, want_id);
			if (getenv("FUZZ_VERBOSE") != NULL)
				fprintf(stderr, "fuzz_jwt: %s check %zu: %s (oracle: %s)\n",
				    sets[si].name, ci, rc == 0 ? "accepted" : why,
				    want ? want : "accepted");
			if (want == NULL) {
				FUZZ_CHECK(rc == 0);
				FUZZ_CHECK(strcmp(id, want_id) == 0);
				accepted++;
			} else {
				FUZZ_CHECK(rc == -1);
				FUZZ_CHECK(why != NULL && *why != '\0');
				FUZZ_CHECK(strcmp(why, want) == 0);
				FUZZ_CHECK(id[0] == '\0');
			}
			free(id);
		}
	return accepted;
}

/* The marked input: sign it, verify it, flip one bit of its signature, verify that. */
static void
signed_input(const uint8_t *data, size_t size)
{
	const uint8_t	*pay;
	unsigned char	 sig[512];
	size_t		 pay_len, hlen, slen, bit;
	char		*tok;
	int		 sel = size > 1 ? data[1] : 0;

	data += size > 1 ? 2 : size;
	size -= size > 1 ? 2 : size;
	if (fuzz_split(data, size, &pay, &pay_len))
		hlen = (size_t)(pay - data) - 1;
	else
		hlen = size;
	tok = make_token((const char *)data, hlen, (const char *)pay, pay_len, sel & 3,
	    sel >> 2 & 1, sig, &slen);
	verify_all(tok, strlen(tok));
	/* one bit of the signature changed: accepted nowhere (the oracle says why) */
	bit = ((size_t)sel >> 3) * 131 % (slen * 8);
	sig[bit / 8] ^= (unsigned char)(1u << (bit % 8));
	b64url(sig, slen, strrchr(tok, '.') + 1);
	FUZZ_CHECK(verify_all(tok, strlen(tok)) == 0);
	free(tok);
}

/* The input as a key file: loaded or refused as jwt.h says, and a loaded set verifies without harm. */
static void
key_file(const uint8_t *data, size_t size)
{
	struct sbuf	 errs;
	struct jwt_keys	*ks, *again;
	char		 id[64];
	const char	*why;
	size_t		 g;
	int		 rc;

	fuzz_file_put(&keyfile, data, size);
	sbuf_init(&errs);
	ERR_clear_error();
	ks = jwt_keys_load(keyfile.path, &errs);
	FUZZ_CHECK(ERR_peek_error() == 0);
	if (getenv("FUZZ_VERBOSE") != NULL)
		fprintf(stderr, "fuzz_jwt: key file: %s%s\n", ks ? "loaded" : "refused: ",
		    sbuf_str(&errs));
	if (ks == NULL) {
		FUZZ_CHECK(errs.lines == 1);
		FUZZ_CHECK(strncmp(sbuf_str(&errs), keyfile.path, strlen(keyfile.path)) == 0);
	} else {
		FUZZ_CHECK(errs.lines == 0);
		FUZZ_CHECK(jwt_keys_count(ks) > 0);
	}
	/* errs may be NULL: the same answer */
	again = jwt_keys_load(keyfile.path, NULL);
	FUZZ_CHECK((again == NULL) == (ks == NULL));
	jwt_keys_free(again);
	for (g = 0; ks != NULL && g < SG_N; g++) {
		why = NULL;
		memset(id, 'X', sizeof(id));
		rc = jwt_verify(ks, &checks[0].c, good[g], strlen(good[g]), NOW, id,
		    sizeof(id), &why);
		FUZZ_CHECK(ERR_peek_error() == 0);
		if (rc == 0)
			FUZZ_CHECK(strcmp(id, "alice") == 0);
		else
			FUZZ_CHECK(why != NULL && *why != '\0' && id[0] == '\0');
	}
	jwt_keys_free(ks);
	sbuf_free(&errs);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 0 && data[0] == MARK) {
		signed_input(data, size);
		return 0;
	}
	verify_all((const char *)data, size);
	key_file(data, size);
	return 0;
}

/* --- the fixed keys ------------------------------------------------------------ */

static EVP_PKEY *
private_key(const char *pem)
{
	BIO		*b;
	EVP_PKEY	*pk;

	FUZZ_CHECK((b = BIO_new_mem_buf(pem, -1)) != NULL);
	FUZZ_CHECK((pk = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL)) != NULL);
	BIO_free(b);
	return pk;
}

/* A big number parameter of pk, base64url, as a JWK writes it (fixed width when width > 0). */
static void
bn_param(EVP_PKEY *pk, const char *name, int width, char *out)
{
	BIGNUM		*bn = NULL;
	unsigned char	 b[512];
	int		 n;

	FUZZ_CHECK(EVP_PKEY_get_bn_param(pk, name, &bn) == 1);
	n = width > 0 ? BN_bn2binpad(bn, b, width) : BN_bn2bin(bn, b);
	FUZZ_CHECK(n > 0);
	b64url(b, (size_t)n, out);
	BN_free(bn);
}

static void
jwk(struct sbuf *sb, int g, const char *kid)
{
	char	a[512], b[512];

	if (sb->len > 0)
		sbuf_printf(sb, ",");
	switch (g) {
	case SG_HS:
		b64url((const unsigned char *)SECRET, strlen(SECRET), a);
		sbuf_printf(sb, "{\"kty\":\"oct\",\"k\":\"%s\"", a);
		break;
	case SG_RS:
		bn_param(pkeys[g], OSSL_PKEY_PARAM_RSA_N, 0, a);
		bn_param(pkeys[g], OSSL_PKEY_PARAM_RSA_E, 0, b);
		sbuf_printf(sb, "{\"kty\":\"RSA\",\"use\":\"sig\",\"alg\":\"RS256\",\"n\":\"%s\","
		    "\"e\":\"%s\"", a, b);
		break;
	default:
		bn_param(pkeys[g], OSSL_PKEY_PARAM_EC_PUB_X, 32, a);
		bn_param(pkeys[g], OSSL_PKEY_PARAM_EC_PUB_Y, 32, b);
		sbuf_printf(sb, "{\"kty\":\"EC\",\"crv\":\"P-256\",\"key_ops\":[\"verify\"],"
		    "\"x\":\"%s\",\"y\":\"%s\"", a, b);
		break;
	}
	if (kid != NULL)
		sbuf_printf(sb, ",\"kid\":\"%s\"", kid);
	sbuf_printf(sb, "}");
}

/* The key file of set s, in memory, loaded. */
static void
load_set(struct set *s)
{
	struct fuzz_file f;
	struct sbuf	 text, keys, errs;
	BIO		*b;
	char		*pem;
	long		 n;
	size_t		 i;

	sbuf_init(&text);
	sbuf_init(&keys);
	sbuf_init(&errs);
	if (s->keys[0].anykid && s->keys[0].signer == SG_HS)
		sbuf_printf(&text, "%s\n", SECRET);
	else if (s->keys[0].anykid) {
		FUZZ_CHECK((b = BIO_new(BIO_s_mem())) != NULL);
		FUZZ_CHECK(PEM_write_bio_PUBKEY(b, pkeys[s->keys[0].signer]) == 1);
		n = BIO_get_mem_data(b, &pem);
		sbuf_append(&text, pem, (size_t)n);
		BIO_free(b);
	} else {
		for (i = 0; i < s->n; i++)
			jwk(&keys, s->keys[i].signer, s->keys[i].kid);
		sbuf_printf(&text, "{\"keys\":[%s]}\n", sbuf_str(&keys));
	}
	fuzz_file_init(&f, s->name);
	fuzz_file_put(&f, text.s, text.len);
	s->ks = jwt_keys_load(f.path, &errs);
	if (s->ks == NULL || jwt_keys_count(s->ks) != s->n) {
		fprintf(stderr, "fuzz_jwt: %s: %s\n", s->name, sbuf_str(&errs));
		abort();
	}
	close(f.fd);
	sbuf_free(&text);
	sbuf_free(&keys);
	sbuf_free(&errs);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char hdr[][40] = { "{\"alg\":\"HS256\"}", "{\"alg\":\"RS256\"}",
	    "{\"alg\":\"ES256\",\"kid\":\"ec-1\"}", "{\"alg\":\"ES256\"}" };
	static const char pay[] = "{\"sub\":\"alice\",\"aud\":\"chatmon\","
	    "\"iss\":\"https://idp.example\",\"exp\":1700000300}";
	unsigned char	 sig[512];
	size_t		 i, slen;

	(void)argc;
	(void)argv;
	pkeys[SG_RS] = private_key(rsa_pem);
	pkeys[SG_ES] = private_key(ec_pem);
	pkeys[SG_ES2] = private_key(ec2_pem);
	for (i = 0; i < UTIL_NELEM(sets); i++)
		load_set(&sets[i]);
	for (i = 0; i < SG_N; i++)
		good[i] = make_token(hdr[i], strlen(hdr[i]), pay, strlen(pay), (int)i, 0, sig,
		    &slen);
	fuzz_file_init(&keyfile, "fuzz-jwt.key");
	return 0;
}
