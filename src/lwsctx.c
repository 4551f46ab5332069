/* lwsctx: a libwebsockets context on the caller's libevent loop, listening on one address (chatmond's relay and the dashboard). */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <libwebsockets.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "chatmon/jwt.h"
#include "chatmon/log.h"
#include "chatmon/logrepeat.h"
#include "chatmon/lwsctx.h"
#include "chatmon/util.h"

/*
 * lws logs some failures at every turn of the loop while they last (a
 * failing accept() is retried at once, for ever): each distinct line at
 * most once per LWSCTX_REPEAT_MS, with the count held back, so that a spin
 * costs a line every ten seconds rather than megabytes. lws's log is the
 * process's, as is this: made by the first lwsctx_new and kept (lws may
 * log until the process ends).
 */
#define LWSCTX_REPEAT_MS	10000
#define LWSCTX_REPEAT_SLOTS	16
static struct logrepeat	*lwsctx_repeat;

static void
lwsctx_log(int level, const char *line)
{
	size_t		n = strlen(line);
	uint64_t	held = 0;
	char		more[80];

	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	/* without the table (out of memory at start) every line is logged */
	if (lwsctx_repeat != NULL && !logrepeat_check(lwsctx_repeat, line, n,
	    util_mono_ns() / 1000000, &held))
		return;
	more[0] = '\0';
	if (held > 0)
		snprintf(more, sizeof(more), " (and %llu more like it since "
		    "it was last logged)", (unsigned long long)held);
	if (level & LLL_ERR)
		log_warnx("lws: %.*s%s", (int)n, line, more);
	else if (level & LLL_WARN)
		log_info("lws: %.*s%s", (int)n, line, more);
	else
		log_debug("lws: %.*s%s", (int)n, line, more);
}

int
lwsctx_fd_floor(int spare)
{
	struct rlimit	rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur > INT_MAX)
		rl.rlim_cur = INT_MAX;
	return (int)rl.rlim_cur > spare ? (int)rl.rlim_cur - spare : 0;
}

int
lwsctx_fd_refuse(int fd, int floor)
{
	static const char	busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
	    "Connection: close\r\nContent-Length: 0\r\n\r\n";

	if (fd < floor)
		return 0;
	(void)send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	return 1;
}

/*
 * Why lws could not listen, found by binding the address again the way lws
 * does (it logs the errno but does not return it): 0 when that bind works
 * now, else the errno. Only bound, never listening, and closed at once.
 */
static int
lwsctx_bind_errno(const char *host, int port, int reuseport)
{
	struct addrinfo	 hints, *res;
	char		 serv[16];
	int		 fd, on = 1, e = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(serv, sizeof(serv), "%d", port);
	if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "*") == 0)
		host = "";
	if (getaddrinfo(host[0] != '\0' ? host : NULL, serv, &hints, &res) != 0)
		return 0;	/* nothing to say beyond lws's line */
	if ((fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC,
	    res->ai_protocol)) == -1)
		e = errno;
	else {
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
		if (reuseport)
			(void)setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on,
			    sizeof(on));
		if (bind(fd, res->ai_addr, res->ai_addrlen) == -1)
			e = errno;
		close(fd);
	}
	freeaddrinfo(res);
	return e;
}

/*
 * Why lws could not listen on li->listen, bound as addr (the address a
 * name resolved to, else the host as written).
 */
static void
lwsctx_listen_error(const struct lwsctx_info *li, const char *addr,
    struct sbuf *errs)
{
	char	 where[NI_MAXHOST + 300];
	int	 port = li->listen->port;

	/* a name says the address it was taken for */
	if (strcmp(addr, li->listen->host) != 0)
		snprintf(where, sizeof(where), "%s:%d (%s)", li->listen->host,
		    port, addr);
	else
		snprintf(where, sizeof(where), "%s:%d", addr, port);
	switch (lwsctx_bind_errno(addr, port, li->reuseport)) {
	case EADDRINUSE:
		if (li->own != NULL && li->own->port == port)
			sbuf_line(errs, "lwsctx_new: cannot listen on %s: the "
			    "address is in use, perhaps by this chatmond's own %s "
			    "(%s:%d): give each a port of its own", where,
			    li->own_key, li->own->host, li->own->port);
		else if (li->reuseport)
			sbuf_line(errs, "lwsctx_new: cannot listen on %s: the "
			    "address is in use by a process that does not share "
			    "it (every process on it must set %s and run as the "
			    "same user)", where, li->reuseport_key);
		else if (li->reuseport_key != NULL)
			sbuf_line(errs, "lwsctx_new: cannot listen on %s: the "
			    "address is in use by another process (to run "
			    "several chatmond on one port, set %s: true in "
			    "each)", where, li->reuseport_key);
		else
			sbuf_line(errs, "lwsctx_new: cannot listen on %s: the "
			    "address is in use by another process", where);
		break;
	case EACCES:
		sbuf_line(errs, "lwsctx_new: cannot listen on %s: permission "
		    "denied (a port below 1024 needs CAP_NET_BIND_SERVICE)",
		    where);
		break;
	case EADDRNOTAVAIL:
		sbuf_line(errs, "lwsctx_new: cannot listen on %s: no local "
		    "interface has that address", where);
		break;
	default:
		sbuf_line(errs, "lwsctx_new: cannot listen on %s (see the "
		    "lws line above)", where);
	}
}

/*
 * What lws is to bind for host, into addr: lws takes an address or an
 * interface's name and nothing else. Given a host name it found no
 * interface of that name and, but for FAIL_UPON_UNABLE_TO_BIND, went on
 * listening nowhere; so a name is resolved here, once, at start: its
 * first IPv4 address (the one clients of "localhost" reach too), else its
 * first IPv6 one. An address, or an interface's name, is kept as written.
 * 0, or -1 with the reason in errs.
 */
static int
lwsctx_resolve(const char *host, int port, char *addr, size_t addrsz,
    struct sbuf *errs)
{
	struct addrinfo	 hints, *res, *ai, *pick = NULL;
	int		 e;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST;
	snprintf(addr, addrsz, "%s", host);
	if (getaddrinfo(host, NULL, &hints, &res) == 0) {
		freeaddrinfo(res);
		return 0;
	}
	if (if_nametoindex(host) != 0)
		return 0;
	hints.ai_flags = 0;
	if ((e = getaddrinfo(host, NULL, &hints, &res)) != 0) {
		sbuf_line(errs, "lwsctx_new: cannot listen on %s:%d: the name "
		    "does not resolve: %s", host, port, e == EAI_SYSTEM ?
		    strerror(errno) : gai_strerror(e));
		return -1;
	}
	for (ai = res; ai != NULL && pick == NULL; ai = ai->ai_next)
		if (ai->ai_family == AF_INET)
			pick = ai;
	for (ai = res; ai != NULL && pick == NULL; ai = ai->ai_next)
		if (ai->ai_family == AF_INET6)
			pick = ai;
	if (pick == NULL || (e = getnameinfo(pick->ai_addr, pick->ai_addrlen,
	    addr, (socklen_t)addrsz, NULL, 0, NI_NUMERICHOST)) != 0) {
		sbuf_line(errs, "lwsctx_new: cannot listen on %s:%d: the name "
		    "has no IPv4 or IPv6 address", host, port);
		freeaddrinfo(res);
		return -1;
	}
	freeaddrinfo(res);
	log_info("lwsctx_new: %s is %s: listening there", host, addr);
	return 0;
}

#define LWSCTX_HEAD_MAX	(JWT_MAX_TOKEN + 8192)

struct lws_context *
lwsctx_new(struct event_base *base, const struct lwsctx_info *li,
    struct sbuf *errs)
{
	struct lws_context_creation_info	 info;
	struct lws_context			*ctx;
	struct rlimit				 rl;
	struct in_addr				 v4;
	const char				*host = li->listen->host;
	char					 addr[NI_MAXHOST];
	char					 mapped[NI_MAXHOST + 8];
	void					*loops[1] = { base };

	if (lwsctx_repeat == NULL)
		lwsctx_repeat = logrepeat_new(LWSCTX_REPEAT_SLOTS, LWSCTX_REPEAT_MS);
	lws_set_log_level(LLL_ERR | LLL_WARN, lwsctx_log);
	memset(&info, 0, sizeof(info));
	/*
	 * An address lws cannot bind is an error, not a listener deferred
	 * until it can (lws's default): the process started, said READY and
	 * "listening", and nothing listened.
	 */
	info.options = LWS_SERVER_OPTION_LIBEVENT |
	    LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT |
	    LWS_SERVER_OPTION_JUST_USE_RAW_ORIGIN |
	    LWS_SERVER_OPTION_VALIDATE_UTF8 |
	    LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND;
	/* SO_REUSEPORT with one service thread needs patch 0010 (third_party/) */
	if (li->reuseport)
		info.options |= LWS_SERVER_OPTION_ALLOW_LISTEN_SHARE;
	/* the certificate is ours to load, at start and at every reload */
	if (li->tls)
		info.options |= LWS_SERVER_OPTION_CREATE_VHOST_SSL_CTX;
	info.client_ssl_ca_filepath = li->client_ca;
	info.foreign_loops = loops;
	info.port = li->listen->port;
	/* lws takes an interface name or an address; NULL is every address */
	if (strcmp(host, "0.0.0.0") != 0 && strcmp(host, "*") != 0 &&
	    host[0] != '\0') {
		if (lwsctx_resolve(host, li->listen->port, addr, sizeof(addr),
		    errs) == -1)
			return NULL;
		info.iface = addr;
	} else
		snprintf(addr, sizeof(addr), "%s", host);
	/*
	 * lws built with IPv6 makes an IPv6 socket and cannot bind it to an
	 * IPv4 address: it silently listens on every address instead. Given
	 * as v4-mapped, the IPv4 address binds exactly. (Turning IPv6 off
	 * would do it too, but for the whole context: an IPv6 upstream would
	 * then be out of reach.)
	 */
	if (info.iface != NULL && inet_pton(AF_INET, addr, &v4) == 1) {
		snprintf(mapped, sizeof(mapped), "::ffff:%s", addr);
		info.iface = mapped;
	}
	info.protocols = li->protocols;
	info.mounts = li->mounts;
	info.user = li->user;
	info.vhost_name = li->vhost;
	/*
	 * A request head may hold a token of up to JWT_MAX_TOKEN, which must
	 * reach chatmond to be refused 401 (docs/security.md), and beside it
	 * the rest of a browser's head (cookies, user agent): 8 KiB each. A
	 * longer head is closed by lws without an answer.
	 */
	info.max_http_header_data = LWSCTX_HEAD_MAX;
	/*
	 * No pool of request-head buffers smaller than the connection limits:
	 * with a fixed pool, that many silent connections made every new
	 * handshake wait for a slot. 0 is lws's default, one per connection
	 * still in its HTTP request (allocated on accept, freed at the
	 * upgrade) up to the fd limit, which the limits stay within.
	 */
	info.max_http_header_pool = 0;
	/*
	 * The one buffer per thread lws writes a client's handshake into: the
	 * agent's Authorization and Cookie go on to the backend, so the
	 * largest head taken above must fit in it with the request line and
	 * lws's own headers. At the default 4 KiB a workbench with a few
	 * kilobytes of its domain's cookies could not be connected (1013).
	 * Receive buffers do not grow with it: every protocol names its own.
	 */
	info.pt_serv_buf_size = LWSCTX_HEAD_MAX + 4096;
	info.timeout_secs = li->timeout_secs;
	info.timeout_secs_ah_idle = li->head_idle_secs;
	/* lws sizes a table by the fd limit: do not let a huge limit cost memory */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur > 65536)
		info.fd_limit_per_thread = 65536;

	if ((ctx = lws_create_context(&info)) == NULL)
		lwsctx_listen_error(li, addr, errs);
	return ctx;
}

/* --- TLS ------------------------------------------------------------------ */

struct lwsctx_tls {
	X509		*cert;
	STACK_OF(X509)	*chain;		/* the certificates after the first */
	EVP_PKEY	*key;
	int		 min_version;	/* TLS1_2_VERSION or TLS1_3_VERSION */
};

/* OpenSSL's reason for the last error, its queue emptied. */
static const char *
lwsctx_ssl_why(void)
{
	unsigned long	 e = ERR_peek_last_error();
	const char	*why = e != 0 ? ERR_reason_error_string(e) : NULL;

	ERR_clear_error();
	return why != NULL ? why : "no PEM data";
}

/* An encrypted key would need a passphrase typed at start: refuse it. */
static int
lwsctx_no_passphrase(char *buf, int size, int rw, void *u)
{
	(void)buf;
	(void)size;
	(void)rw;
	*(int *)u = 1;
	return -1;
}

/*
 * A PEM file's bytes: the system's bundle of every CA (about 200 KiB) fits
 * many times over; what is larger is no certificate or key.
 */
#define LWSCTX_PEM_MAX	(4u << 20)

/*
 * The file a key names, whole, in a memory BIO over *bufp (the caller frees
 * both, the buffer wiped: it may be a private key). util_read_file, not
 * fopen: that blocks on a FIFO nobody writes to, and this runs on the
 * loop's thread at every reload, where it froze every chat and SIGTERM
 * with it. NULL (and *bufp) with "KEY PATH: why" in errs.
 */
static BIO *
lwsctx_read(const char *key, const char *path, char **bufp, size_t *lenp,
    struct sbuf *errs)
{
	BIO	*b;

	*bufp = NULL;
	*lenp = 0;
	if (util_read_file(path, LWSCTX_PEM_MAX, bufp, lenp) == -1) {
		if (errno == EFBIG)
			sbuf_line(errs, "%s %s: larger than %u bytes: not a PEM "
			    "file", key, path, LWSCTX_PEM_MAX);
		else if (errno == EISDIR)
			sbuf_line(errs, "%s %s: not a regular file", key, path);
		else
			sbuf_line(errs, "%s %s: %s", key, path, strerror(errno));
		return NULL;
	}
	/* a FIFO with no writer reads as empty: say so, not "no PEM data" */
	if (*lenp == 0) {
		sbuf_line(errs, "%s %s: empty (or a pipe nobody writes to)", key,
		    path);
		goto err;
	}
	if (*lenp > INT_MAX || (b = BIO_new_mem_buf(*bufp, (int)*lenp)) == NULL) {
		sbuf_line(errs, "%s %s: out of memory", key, path);
		goto err;
	}
	return b;
err:
	OPENSSL_clear_free(*bufp, *lenp + 1);
	*bufp = NULL;
	return NULL;
}

static void
lwsctx_read_free(BIO *b, char *buf, size_t len)
{
	BIO_free(b);
	if (buf != NULL)
		OPENSSL_clear_free(buf, len + 1);
}

/*
 * t put into ctx the way every listener's SSL_CTX takes it. 0, or -1 with
 * OpenSSL's error queue holding why.
 */
static int
lwsctx_tls_put(const struct lwsctx_tls *t, SSL_CTX *ctx)
{
	if (SSL_CTX_use_certificate(ctx, t->cert) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, t->key) != 1 ||
	    SSL_CTX_set1_chain(ctx, t->chain) != 1 ||
	    SSL_CTX_set_min_proto_version(ctx, t->min_version) != 1)
		return -1;
	return 0;
}

/*
 * Whether a listener's SSL_CTX takes t: one made here as lws makes it
 * (the same method, so the same security level from OpenSSL's
 * configuration) is given t and thrown away. Parsed and matched, a pair
 * can still be refused there (an RSA key of 1024 bits: "ee key too
 * small"): found only by lws, it failed the start as "cannot listen",
 * naming no file, and a reload warned, kept the old pair and reported
 * the rest of it done. Said here, -t, the start and a reload refuse it
 * alike, at tls.cert's line. 0, or -1 with "tls.cert FILE: why" in errs.
 */
static int
lwsctx_tls_try(const struct lwsctx_tls *t, const char *path,
    struct sbuf *errs)
{
	SSL_CTX	*ctx;
	int	 level;

	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		sbuf_line(errs, "tls.cert %s: cannot be tried: %s", path,
		    lwsctx_ssl_why());
		return -1;
	}
	level = SSL_CTX_get_security_level(ctx);
	if (lwsctx_tls_put(t, ctx) == -1) {
		sbuf_line(errs, "tls.cert %s: refused by OpenSSL (security "
		    "level %d): %s", path, level, lwsctx_ssl_why());
		SSL_CTX_free(ctx);
		return -1;
	}
	SSL_CTX_free(ctx);
	return 0;
}

struct lwsctx_tls *
lwsctx_tls_load(const struct config_tls *c, struct sbuf *errs)
{
	struct lwsctx_tls	*t;
	BIO			*b = NULL;
	char			*buf = NULL;
	size_t			 len = 0;
	X509			*x;
	int			 encrypted = 0;

	if ((t = calloc(1, sizeof(*t))) == NULL ||
	    (t->chain = sk_X509_new_null()) == NULL) {
		sbuf_line(errs, "tls: out of memory");
		goto err;
	}
	t->min_version = strcmp(c->min_version, "1.3") == 0 ? TLS1_3_VERSION :
	    TLS1_2_VERSION;
	if ((b = lwsctx_read("tls.cert", c->cert, &buf, &len, errs)) == NULL)
		goto err;
	if ((t->cert = PEM_read_bio_X509(b, NULL, NULL, NULL)) == NULL) {
		sbuf_line(errs, "tls.cert %s: no certificate: %s", c->cert,
		    lwsctx_ssl_why());
		goto err;
	}
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
		if (!sk_X509_push(t->chain, x)) {
			X509_free(x);
			sbuf_line(errs, "tls: out of memory");
			goto err;
		}
	ERR_clear_error();	/* the end of the file */
	lwsctx_read_free(b, buf, len);
	if ((b = lwsctx_read("tls.key", c->key, &buf, &len, errs)) == NULL)
		goto err;
	if ((t->key = PEM_read_bio_PrivateKey(b, NULL, lwsctx_no_passphrase,
	    &encrypted)) == NULL) {
		sbuf_line(errs, "tls.key %s: %s", c->key, encrypted ?
		    "the key is encrypted (chatmond starts unattended: store "
		    "it without a passphrase, readable by its user only)" :
		    lwsctx_ssl_why());
		goto err;
	}
	lwsctx_read_free(b, buf, len);
	b = NULL;
	buf = NULL;
	if (X509_check_private_key(t->cert, t->key) != 1) {
		ERR_clear_error();
		sbuf_line(errs, "tls.key %s: not the key of the certificate in "
		    "%s", c->key, c->cert);
		goto err;
	}
	if (lwsctx_tls_try(t, c->cert, errs) == -1)
		goto err;
	/* served anyway (clients will say why), but said here first */
	if (X509_cmp_current_time(X509_get0_notAfter(t->cert)) < 0)
		log_warnx("lwsctx_tls_load: tls.cert %s has expired", c->cert);
	else if (X509_cmp_current_time(X509_get0_notBefore(t->cert)) > 0)
		log_warnx("lwsctx_tls_load: tls.cert %s is not valid yet",
		    c->cert);
	return t;
err:
	lwsctx_read_free(b, buf, len);
	lwsctx_tls_free(t);
	return NULL;
}

void
lwsctx_tls_free(struct lwsctx_tls *t)
{
	if (t == NULL)
		return;
	X509_free(t->cert);
	sk_X509_pop_free(t->chain, X509_free);
	EVP_PKEY_free(t->key);
	free(t);
}

/* Where a listener's SSL_CTX keeps its lwsctx_tls for lwsctx_tls_cert. */
static int	lwsctx_tls_index = -1;

/*
 * Each handshake's certificate, set on its SSL before one is chosen: the
 * SSL_CTX's current pair only. SSL_CTX_use_certificate fills the slot of
 * its key's type and leaves the others, so after a rotation from an RSA
 * to an EC pair the SSL_CTX holds both, and a client that offers only RSA
 * signatures would be served the old certificate; SSL_certs_clear empties
 * every slot of this connection first.
 */
static int
lwsctx_tls_cert(SSL *ssl, void *arg)
{
	const struct lwsctx_tls	*t;

	(void)arg;
	t = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), lwsctx_tls_index);
	if (t == NULL)
		return 1;
	SSL_certs_clear(ssl);
	if (SSL_use_cert_and_key(ssl, t->cert, t->key, t->chain, 1) != 1) {
		log_warnx("lwsctx_tls_cert: %s", lwsctx_ssl_why());
		return 0;	/* the handshake fails */
	}
	return 1;
}

int
lwsctx_tls_use(const struct lwsctx_tls *t, void *ssl_ctx)
{
	SSL_CTX	*ctx = ssl_ctx;

	if (lwsctx_tls_index == -1 && (lwsctx_tls_index =
	    SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL)) == -1) {
		log_warnx("lwsctx_tls_use: %s", lwsctx_ssl_why());
		return -1;
	}
	/*
	 * In the SSL_CTX too, for lws and as a fallback; SSL_new copies them:
	 * a connection keeps what it started with.
	 */
	if (lwsctx_tls_put(t, ctx) == -1 ||
	    SSL_CTX_set_ex_data(ctx, lwsctx_tls_index, (void *)t) != 1) {
		log_warnx("lwsctx_tls_use: %s", lwsctx_ssl_why());
		return -1;
	}
	SSL_CTX_set_cert_cb(ctx, lwsctx_tls_cert, NULL);
	return 0;
}

const char *
lwsctx_verify_why(void *x509_ctx, int preverify_ok)
{
	int	e;

	if (preverify_ok || x509_ctx == NULL ||
	    (e = X509_STORE_CTX_get_error(x509_ctx)) == X509_V_OK)
		return NULL;
	return X509_verify_cert_error_string(e);
}

int
lwsctx_ca_check(const char *key, const char *path, struct sbuf *errs)
{
	X509	*x;
	BIO	*b;
	char	*buf;
	size_t	 len;

	if ((b = lwsctx_read(key, path, &buf, &len, errs)) == NULL)
		return -1;
	x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	lwsctx_read_free(b, buf, len);
	if (x == NULL) {
		sbuf_line(errs, "%s %s: no certificate: %s", key, path,
		    lwsctx_ssl_why());
		return -1;
	}
	X509_free(x);
	return 0;
}
