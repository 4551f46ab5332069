/* lwsctx: a libwebsockets context on the caller's libevent loop, listening on one address (chatmond's relay and the dashboard). */
#ifndef CHATMON_LWSCTX_H
#define CHATMON_LWSCTX_H

#include "chatmon/config.h"

struct event_base;
struct lws_context;
struct lws_protocols;
struct lws_http_mount;

/*
 * What the context is made of; the pointers are borrowed and must outlive
 * it (lws keeps protocols and mounts). vhost names it in lws's own lines.
 */
struct lwsctx_info {
	const struct config_addr	*listen;
	const struct lws_protocols	*protocols;
	const struct lws_http_mount	*mounts;	/* NULL: none */
	void				*user;		/* lws_context_user() */
	const char			*vhost;
	unsigned			 timeout_secs;	/* connects and handshakes, >= 1 */
	/*
	 * How long lws lets a connection sit in its HTTP request head before
	 * it closes it, silently (its header table's idle timeout); 0: lws's
	 * 10 s. A server that times the request itself sets it above its own
	 * limit, so that its timer is the one that fires.
	 */
	unsigned			 head_idle_secs;
	/*
	 * Share the address and port with other processes that set it too
	 * (SO_REUSEPORT: the kernel spreads new connections over them; they
	 * must run as the same user). reuseport_key names the setting in the
	 * error when the address is taken; NULL: sharing is not offered.
	 */
	int				 reuseport;
	const char			*reuseport_key;
	/*
	 * An address this process has bound already (chatmond's admin.listen;
	 * NULL: none): an address in use on its port is said to be perhaps
	 * that one, not "another process's" (the same socket spelt two ways,
	 * localhost and 127.0.0.1, passes the configuration's check).
	 */
	const struct config_addr	*own;
	const char			*own_key;
	/*
	 * Listen with TLS: lws makes the listener's SSL_CTX empty and hands it
	 * to protocols[0]'s callback (LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_
	 * VERIFY_CERTS, user = the SSL_CTX), which puts a certificate in it
	 * with lwsctx_tls_use.
	 */
	int				 tls;
	const char			*client_ca;	/* wss:// connects trust this too; NULL: the system's only */
};

/*
 * A context on base, listening on info->listen exactly (an IPv4 address is
 * bound as v4-mapped, not as every address). lws's errors and warnings go
 * to the log. NULL with the reason in errs (an address in use, a port that
 * needs privilege and an address that is not local are named as such);
 * lws_context_destroy frees it.
 */
struct lws_context *lwsctx_new(struct event_base *base,
	    const struct lwsctx_info *info, struct sbuf *errs);

/*
 * Descriptors kept spare. Out of descriptors, accept() fails (EMFILE) and
 * lws tries it again at once, for ever: the loop spins and the peer waits
 * without an answer. A server keeps spare ones instead and refuses at once
 * the connection it accepted into them: lwsctx_fd_floor once at start,
 * lwsctx_fd_refuse in protocols[0]'s LWS_CALLBACK_FILTER_NETWORK_CONNECTION
 * (in: the fd just accepted, the lowest free one, so every fd below it is
 * in use; returning 1 makes lws close it). accept() then never fails for
 * want of descriptors while the spare ones are not taken by anything else.
 */
/* RLIMIT_NOFILE (INT_MAX when unlimited) less spare: the lowest fd refused; 0 if no room. */
int	lwsctx_fd_floor(int spare);
/*
 * 0 when fd is below floor (serve it); else 1, a 503 sent on it first
 * (best effort: nothing was read from it, and a TLS peer cannot read it).
 */
int	lwsctx_fd_refuse(int fd, int floor);

/*
 * A listener's certificate (with its chain), private key and minimum
 * TLS version, read and checked against each other: what a reload checks
 * before it changes anything.
 */
struct lwsctx_tls;

/*
 * NULL with "tls.cert FILE: why" (or tls.key) in errs; a pair that a
 * listener's SSL_CTX would refuse (OpenSSL's security level: "ee key too
 * small") is refused here, tried in one made the same way.
 */
struct lwsctx_tls *lwsctx_tls_load(const struct config_tls *, struct sbuf *errs);
void	lwsctx_tls_free(struct lwsctx_tls *);
/*
 * Puts t into a listener's SSL_CTX (lws's: void * keeps OpenSSL's headers
 * out of the callers'). Handshakes from now on present it and no other
 * (a pair of another key type before it included); connections already
 * up keep the one they were made with. t is borrowed: it must live until
 * the next lwsctx_tls_use on that SSL_CTX or the context's end. 0, or -1
 * (out of memory).
 */
int	lwsctx_tls_use(const struct lwsctx_tls *, void *ssl_ctx);
/*
 * Why OpenSSL fails a peer's certificate, in a client's
 * LWS_CALLBACK_OPENSSL_PERFORM_SERVER_CERT_VERIFICATION (user: the
 * X509_STORE_CTX, len: preverify_ok): its static text ("hostname
 * mismatch", "certificate has expired"), or NULL when it passes. lws
 * itself reports a failed handshake only as "SSL err 1".
 */
const char *lwsctx_verify_why(void *x509_ctx, int preverify_ok);
/* Whether a CA file can be read and holds a certificate; errors name key. */
int	lwsctx_ca_check(const char *key, const char *path, struct sbuf *errs);

#endif
