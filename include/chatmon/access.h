/* access: who may connect: address ranges, Origin allow-lists, Host names, agent ids (pure, no I/O). */
#ifndef CHATMON_ACCESS_H
#define CHATMON_ACCESS_H

#include <stddef.h>

struct config_list;

struct access_cidr {			/* 10.0.0.0/8, ::1, 192.0.2.7 */
	int		family;		/* AF_INET or AF_INET6 */
	unsigned char	addr[16];	/* network order, host bits cleared */
	unsigned	bits;		/* prefix length */
};

/* Parses an address or CIDR; 0, or -1 with *why a static reason. */
int	access_cidr_parse(const char *, struct access_cidr *, const char **why);
/*
 * Whether the textual address addr (as getpeername gives it; an IPv4-mapped
 * IPv6 address counts as its IPv4 address) is in one of the n ranges.
 */
int	access_cidr_any(const struct access_cidr *, size_t n, const char *addr);

/* NULL when s is an origin as browsers send it (scheme://host[:port]), else why not. */
const char *access_origin_why(const char *s);
/*
 * Whether a request's Origin header may pass: no Origin (not a browser's
 * page), an empty allow-list, or an origin on it (case-insensitive; the
 * default port written or not). own, when not NULL, is the origin of a
 * page the server itself serves, which always passes.
 */
int	access_origin_ok(const struct config_list *allowed, const char *origin,
	    const char *own);

/*
 * Splits a Host header's value (host, host:port, [v6] or [v6]:port) into
 * the host, lower-cased, without brackets or a trailing dot, in out (n
 * bytes), and the port (0 when not written). 0, or -1 when s is no such
 * thing (a host is ASCII letters, digits, '-', '_' and '.'; a bracketed
 * one hex digits, ':' and '.').
 */
int	access_host_split(const char *s, char *out, size_t n, int *port);
/* The host of an http(s) URL or origin as access_host_split gives it; 0 or -1. */
int	access_url_host(const char *url, char *out, size_t n);
/*
 * The origin of an http(s) URL as a browser sends it for a page there
 * (scheme://host[:port]: lower-cased, no user, path or query) in out (n
 * bytes); 0, or -1 when url is no such URL or out is too small.
 */
int	access_url_origin(const char *url, char *out, size_t n);
/*
 * Whether a request's Host header (NULL: none was sent) names this server
 * rather than a name somebody else points at it (DNS rebinding): no Host,
 * an IP address, localhost, listen_host, the host of public_url or of one
 * of origins (any may be NULL). Names compare case-insensitively; the
 * port is not compared: a rebinding page controls the name only, and a
 * tunnel or a port map (ssh -L 9999:...) changes the port the browser
 * sends.
 */
int	access_host_ok(const char *host, const char *listen_host,
	    const char *public_url, const struct config_list *origins);

#define ACCESS_AGENT_ID_MAX	64	/* bytes */

/*
 * NULL when id (len bytes) may name an agent, else why not: 1 to
 * ACCESS_AGENT_ID_MAX bytes of valid UTF-8; ASCII letters, digits and
 * . _ - @ + : ~; and any other character except controls, spaces,
 * invisible and direction-changing ones. Ids end up in HTML, logs,
 * Redis keys and supervisors' screens.
 */
const char *access_agent_id_why(const char *id, size_t len);

#endif
