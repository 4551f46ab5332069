/* session: agent <-> backend WebSocket pairs on libwebsockets, on the caller's libevent loop. */
#ifndef CHATMON_SESSION_H
#define CHATMON_SESSION_H

#include <stddef.h>

#include "chatmon/config.h"
#include "chatmon/metrics.h"
#include "chatmon/relay.h"

struct event_base;
struct session_server;

/*
 * Creates the lws context as a foreign loop on base and starts listening on
 * cfg->listen. relay and m are borrowed and must outlive the server; cfg is
 * copied (session_server_set_config applies a reloaded one). NULL with a
 * reason in errs when the context or the listener cannot be made.
 */
struct session_server *session_server_new(struct event_base *base,
    const struct config *cfg, struct relay *relay, struct metrics *m,
    struct sbuf *errs);
/*
 * Reads and checks what cfg's files hold (the listener's certificate and
 * key, the upstream's CA) for session_server_set_config to apply: -1 with
 * every reason in errs, and the running ones untouched. A reload calls it
 * before anything else changes.
 */
int	session_server_prepare(struct session_server *, const struct config *,
	    struct sbuf *errs);
/* The same checks without a server: chatmond -t. */
int	session_check(const struct config *, struct sbuf *errs);
/*
 * Live settings (upstream, agent id source, limits, what was prepared) for
 * new sessions, handshakes and messages. cfg is borrowed until the next
 * call or session_server_free.
 */
void	session_server_set_config(struct session_server *, const struct config *);
/*
 * Stops accepting and closes every session with 1001, flushing what is
 * queued; done(arg) is called once no session is left (at once if none).
 */
void	session_server_drain(struct session_server *, void (*done)(void *),
	    void *arg);
size_t	session_server_count(const struct session_server *);
/* 1 while it listens: from the start until session_server_drain. */
int	session_server_listening(const struct session_server *);
/* The last upstream connect: 1 it worked, 0 it failed, -1 none tried yet. */
int	session_server_upstream(const struct session_server *);
/* Destroys the context; call from the loop's top level, never inside an lws callback. */
void	session_server_free(struct session_server *);

#endif
