/* access: who may connect: address ranges, Origin allow-lists, Host names, agent ids. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include <utf8proc.h>

#include "chatmon/access.h"
#include "chatmon/config.h"
#include "chatmon/util.h"

/* The first 12 bytes of an IPv4 address mapped into IPv6 (::ffff:0:0/96). */
static const unsigned char access_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0xff, 0xff };

int
access_cidr_parse(const char *s, struct access_cidr *c, const char **why)
{
	char		 buf[INET6_ADDRSTRLEN + 8], *slash, *end;
	unsigned long	 bits;
	unsigned	 i, max;

	memset(c, 0, sizeof(*c));
	if (strlen(s) >= sizeof(buf)) {
		*why = "too long for an address";
		return -1;
	}
	strcpy(buf, s);
	if ((slash = strchr(buf, '/')) != NULL)
		*slash++ = '\0';
	if (inet_pton(AF_INET, buf, c->addr) == 1) {
		c->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, c->addr) == 1) {
		c->family = AF_INET6;
		max = 128;
	} else {
		*why = "not an IPv4 or IPv6 address";
		return -1;
	}
	c->bits = max;
	if (slash != NULL) {
		if (!isdigit((unsigned char)*slash) ||
		    (bits = strtoul(slash, &end, 10)) > max || *end != '\0') {
			*why = max == 32 ? "prefix length must be 0 to 32" :
			    "prefix length must be 0 to 128";
			return -1;
		}
		c->bits = (unsigned)bits;
	}
	/*
	 * A range of v4-mapped addresses (::ffff:10.0.0.0/104) is the IPv4
	 * range it maps: a peer is matched as IPv4 whichever way a
	 * dual-stack listener saw it, so the IPv6 spelling must name it too.
	 */
	if (c->family == AF_INET6 && c->bits >= 96 &&
	    memcmp(c->addr, access_mapped, sizeof(access_mapped)) == 0) {
		memmove(c->addr, c->addr + 12, 4);
		memset(c->addr + 4, 0, 12);
		c->family = AF_INET;
		c->bits -= 96;
		max = 32;
	}
	/* 10.1.2.3/8 means 10.0.0.0/8: clear the host bits */
	for (i = c->bits; i < max; i++)
		c->addr[i / 8] &= (unsigned char)~(0x80u >> (i % 8));
	return 0;
}

static int
access_cidr_has(const struct access_cidr *c, const unsigned char *a)
{
	unsigned	i;

	for (i = 0; i < c->bits / 8; i++)
		if (a[i] != c->addr[i])
			return 0;
	return c->bits % 8 == 0 ||
	    ((a[i] ^ c->addr[i]) & (0xff00u >> (c->bits % 8))) == 0;
}

int
access_cidr_any(const struct access_cidr *c, size_t n, const char *addr)
{
	unsigned char	 a4[4], a6[16];
	int		 v4, v6;
	size_t		 i;

	v4 = inet_pton(AF_INET, addr, a4) == 1;
	v6 = !v4 && inet_pton(AF_INET6, addr, a6) == 1;
	if (v6 && memcmp(a6, access_mapped, sizeof(access_mapped)) == 0) {
		memcpy(a4, a6 + 12, 4);
		v4 = 1;
	}
	for (i = 0; i < n; i++)
		if ((c[i].family == AF_INET && v4 && access_cidr_has(&c[i], a4)) ||
		    (c[i].family == AF_INET6 && v6 && access_cidr_has(&c[i], a6)))
			return 1;
	return 0;
}

/* The length of the scheme (with "://") of an http or https origin, or 0. */
static size_t
access_scheme(const char *s, int *https)
{
	if (strncasecmp(s, "http://", 7) == 0) {
		*https = 0;
		return 7;
	}
	if (strncasecmp(s, "https://", 8) == 0) {
		*https = 1;
		return 8;
	}
	return 0;
}

const char *
access_origin_why(const char *s)
{
	const char	*h, *p;
	int		 https;
	size_t		 n;

	if ((n = access_scheme(s, &https)) == 0)
		return "want http://HOST[:PORT] or https://HOST[:PORT]";
	h = s + n;
	if (*h == '\0' || *h == ':' || *h == '/')
		return "the host is missing";
	for (p = h; *p != '\0'; p++)
		if (*p == '/' || *p == '?' || *p == '#' || *p == '@' ||
		    (unsigned char)*p <= 0x20 || *p == 0x7f)
			return "an origin has no path, query, user or space "
			    "(browsers send scheme://host[:port] only)";
	return NULL;
}

/*
 * Whether origins a and b are the same: case-insensitive, with the
 * scheme's default port written or not (https://a:443 is https://a).
 */
static int
access_origin_eq(const char *a, const char *b)
{
	int		 ha, hb;
	size_t		 na, nb, la, lb;
	const char	*da, *db;

	if ((na = access_scheme(a, &ha)) == 0 || (nb = access_scheme(b, &hb)) == 0 ||
	    ha != hb)
		return strcasecmp(a, b) == 0;
	da = ha ? ":443" : ":80";
	db = da;
	la = strlen(a);
	lb = strlen(b);
	if (la > na + strlen(da) && strcasecmp(a + la - strlen(da), da) == 0)
		la -= strlen(da);
	if (lb > nb + strlen(db) && strcasecmp(b + lb - strlen(db), db) == 0)
		lb -= strlen(db);
	return la == lb && strncasecmp(a, b, la) == 0;
}

int
access_origin_ok(const struct config_list *allowed, const char *origin,
    const char *own)
{
	size_t	i;

	if (origin == NULL || (allowed->n == 0 && own == NULL))
		return 1;
	if (own != NULL && access_origin_eq(origin, own))
		return 1;
	for (i = 0; i < allowed->n; i++)
		if (access_origin_eq(origin, allowed->v[i]))
			return 1;
	return 0;
}

int
access_host_split(const char *s, char *out, size_t n, int *port)
{
	const char	*h = s, *p;
	size_t		 len, i;
	unsigned long	 v;
	char		*e;
	int		 v6 = *s == '[', c;

	*port = 0;
	if (v6) {
		if ((p = strchr(s, ']')) == NULL)
			return -1;
		h = s + 1;
		len = (size_t)(p - h);
		p++;
	} else {
		len = strcspn(s, ":");
		p = s + len;
	}
	if (*p == ':' && p[1] != '\0') {
		if (!isdigit((unsigned char)p[1]) ||
		    (v = strtoul(p + 1, &e, 10)) == 0 || v > 65535 || *e != '\0')
			return -1;
		*port = (int)v;
	} else if (*p != '\0' && strcmp(p, ":") != 0)
		return -1;		/* "host:" passes: RFC 3986 allows an empty port */
	if (!v6 && len > 1 && h[len - 1] == '.')
		len--;			/* "localhost." is localhost */
	if (len == 0 || len >= n)
		return -1;
	for (i = 0; i < len; i++) {
		c = (unsigned char)h[i];
		if (v6 ? !isxdigit(c) && c != ':' && c != '.' :
		    !isalnum(c) && c != '-' && c != '_' && c != '.')
			return -1;
		out[i] = (char)tolower(c);
	}
	out[len] = '\0';
	return 0;
}

/*
 * The host[:port] of a URL (what follows "://", up to the path), copied
 * into buf (n bytes); NULL when there is no "://" or it is too long.
 */
static const char *
access_url_authority(const char *url, char *buf, size_t n)
{
	const char	*a, *at;
	size_t		 len;

	if ((a = strstr(url, "://")) == NULL)
		return NULL;
	a += 3;
	len = strcspn(a, "/?#");
	if (len >= n)
		return NULL;
	memcpy(buf, a, len);
	buf[len] = '\0';
	at = strrchr(buf, '@');		/* user:password@ is no part of the host */
	return at != NULL ? at + 1 : buf;
}

int
access_url_host(const char *url, char *out, size_t n)
{
	char		 auth[300];
	const char	*hp;
	int		 port;

	if ((hp = access_url_authority(url, auth, sizeof(auth))) == NULL)
		return -1;
	return access_host_split(hp, out, n, &port);
}

int
access_url_origin(const char *url, char *out, size_t n)
{
	char		 auth[300], h[256], p[8] = "";
	const char	*hp;
	int		 https, port, w, v6;

	if (access_scheme(url, &https) == 0 ||
	    (hp = access_url_authority(url, auth, sizeof(auth))) == NULL ||
	    access_host_split(hp, h, sizeof(h), &port) == -1)
		return -1;
	v6 = strchr(h, ':') != NULL;	/* a name never has one */
	if (port != 0)
		snprintf(p, sizeof(p), ":%d", port);
	w = snprintf(out, n, "%s://%s%s%s%s", https ? "https" : "http",
	    v6 ? "[" : "", h, v6 ? "]" : "", p);
	return w < 0 || (size_t)w >= n ? -1 : 0;
}

/* Whether host (split) is the host of url. */
static int
access_host_of(const char *host, const char *url)
{
	char	h[256];

	return url != NULL && access_url_host(url, h, sizeof(h)) == 0 &&
	    strcmp(h, host) == 0;
}

int
access_host_ok(const char *host, const char *listen_host,
    const char *public_url, const struct config_list *origins)
{
	char		 h[256];
	unsigned char	 a[16];
	int		 port;
	size_t		 i;

	if (host == NULL)
		return 1;		/* not a browser: they all send Host */
	if (access_host_split(host, h, sizeof(h), &port) == -1)
		return 0;
	/* an address cannot be pointed anywhere else; localhost is not in DNS */
	if (inet_pton(AF_INET, h, a) == 1 || inet_pton(AF_INET6, h, a) == 1 ||
	    strcmp(h, "localhost") == 0)
		return 1;
	if (listen_host != NULL && strcasecmp(h, listen_host) == 0)
		return 1;
	if (access_host_of(h, public_url))
		return 1;
	for (i = 0; origins != NULL && i < origins->n; i++)
		if (access_host_of(h, origins->v[i]))
			return 1;
	return 0;
}

/*
 * Whether cp shows as a character of its own: not a control, format
 * (zero-width, direction-changing, the invisible Egyptian and musical
 * format marks), surrogate, private-use or unassigned code point, not a
 * space or separator (Zs holds U+1680 and the ideographic space), and
 * not Default_Ignorable (utf8proc's "ignorable": the Hangul fillers,
 * variation selectors, the combining grapheme joiner, which are letters
 * or marks by category). By Unicode's own tables rather than a list of
 * ranges, which missed every new one (U+13430, U+1BCA0, U+1D173). U+2800,
 * the blank Braille pattern, is a symbol that shows nothing.
 */
static int
access_visible(uint32_t cp)
{
	utf8proc_int32_t	c = (utf8proc_int32_t)cp;

	switch (utf8proc_category(c)) {
	case UTF8PROC_CATEGORY_CC:
	case UTF8PROC_CATEGORY_CF:
	case UTF8PROC_CATEGORY_CS:
	case UTF8PROC_CATEGORY_CO:
	case UTF8PROC_CATEGORY_CN:
	case UTF8PROC_CATEGORY_ZS:
	case UTF8PROC_CATEGORY_ZL:
	case UTF8PROC_CATEGORY_ZP:
		return 0;
	default:
		break;
	}
	return !utf8proc_get_property(c)->ignorable && cp != 0x2800;
}

const char *
access_agent_id_why(const char *id, size_t len)
{
	const unsigned char	*p = (const unsigned char *)id, *end = p + len;
	size_t			 n;
	uint32_t		 cp;

	if (len == 0)
		return "empty";
	if (len > ACCESS_AGENT_ID_MAX)
		return "longer than 64 bytes";
	while (p < end) {
		if (*p < 0x80) {
			if (!isalnum(*p) && (*p == 0 || strchr("._-@+:~", *p) == NULL))
				return "a character other than letters, digits "
				    "and . _ - @ + : ~";
			p++;
			continue;
		}
		if ((n = util_utf8_seq(p, end)) == 0)
			return "not valid UTF-8";
		cp = n == 2 ? (uint32_t)(p[0] & 0x1f) << 6 | (p[1] & 0x3f) :
		    n == 3 ? (uint32_t)(p[0] & 0x0f) << 12 |
		    (uint32_t)(p[1] & 0x3f) << 6 | (p[2] & 0x3f) :
		    (uint32_t)(p[0] & 0x07) << 18 | (uint32_t)(p[1] & 0x3f) << 12 |
		    (uint32_t)(p[2] & 0x3f) << 6 | (p[3] & 0x3f);
		if (!access_visible(cp))
			return "an invisible, direction-changing, unassigned "
			    "or private-use character";
		p += n;
	}
	return NULL;
}
