/* rconn: one Redis connection on the loop: connect, AUTH, SELECT, a hung server noticed, reconnects with backoff (Debian's hiredis 0.14 has none of it). */
#ifndef CHATMON_RCONN_H
#define CHATMON_RCONN_H

#include <stddef.h>
#include <stdint.h>

#include "chatmon/config.h"

struct event_base;
struct redisReply;
struct rconn;

/*
 * What becomes of the connection: up once AUTH, SELECT (or a PING) have
 * answered; down when a connect fails (lost 0) or a connection that was
 * made goes away, hung, or is dropped (lost 1). While it is down, rconn
 * retries on its own, 100 ms doubling to 10 s, with jitter.
 */
typedef void	(*rconn_state_cb)(void *arg, int up, int lost);
/*
 * The reply to one command, in the order the commands were sent: reply is
 * hiredis's, valid during the call; NULL when the connection went before
 * it came (commands are never resent: the caller decides).
 */
typedef void	(*rconn_reply_cb)(struct redisReply *reply, void *priv);

/* who names the connection in log lines; base is borrowed. NULL on ENOMEM. */
struct rconn *rconn_new(struct event_base *base, const char *who,
	    rconn_state_cb state, void *arg);
/*
 * Where to connect (copied); a command without a reply for timeout_ms
 * means the server hung and the connection is dropped. Connects the first
 * time, and again when the target or the password changed. -1 on ENOMEM
 * (the old settings stay).
 */
int	rconn_set_target(struct rconn *, const struct config_redis_target *,
	    const char *password, uint64_t timeout_ms);
/* 1 when commands can go; 0 too for NULL (a connection freed). */
int	rconn_up(const struct rconn *);
/* "host" or the socket path, for log lines; owned by rconn. */
const char *rconn_name(const struct rconn *);
/*
 * Sends a command (hiredis's format) while up; cb (may be NULL) gets the
 * reply. block_ms is how long the server may hold it on purpose (XREAD
 * BLOCK), added to the timeout. -1 when down, or when the command cannot
 * be queued (the connection is then dropped).
 */
int	rconn_command(struct rconn *, rconn_reply_cb cb, void *priv,
	    uint64_t block_ms, const char *fmt, ...);
/* The same with the arguments as argc strings (argvlen[i] bytes each). */
int	rconn_command_argv(struct rconn *, rconn_reply_cb cb, void *priv,
	    uint64_t block_ms, int argc, const char **argv, const size_t *argvlen);
/* Drops the connection now (it reconnects later); pending replies get NULL. */
void	rconn_drop(struct rconn *, const char *why);
/* Pending replies get NULL; no state callback. NULL is fine. */
void	rconn_free(struct rconn *);

#endif
