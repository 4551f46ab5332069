/* rconn: one Redis connection on the loop: the master found (redis.url or Sentinel) and its role checked, AUTH, SELECT, a hung server noticed, reconnects with backoff (Debian's hiredis 0.14 has none of it). */
#ifndef CHATMON_RCONN_H
#define CHATMON_RCONN_H

#include <stddef.h>
#include <stdint.h>

#include "chatmon/config.h"

struct event_base;
struct redisReply;
struct rconn;

/*
 * What becomes of the connection: up once AUTH, SELECT and ROLE have
 * answered and ROLE said master; down when a connect fails, the server is
 * not a master, or no sentinel names one (lost 0), or when a connection
 * that was made goes away, hung, or is dropped (lost 1). While it is down,
 * rconn retries on its own, 100 ms doubling to 10 s, with jitter; with
 * Sentinel every retry asks the sentinels again where the master is.
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
/* rconn_set_target's flags */
#define RCONN_ANY_ROLE	0x01	/* the owner only reads: a replica will do */

/*
 * Where to connect and as whom (r is copied: redis.url or redis.sentinels
 * with redis.master_name, the credentials, redis.timeout: a command without
 * a reply that long means the server hung and the connection is dropped).
 * Connects the first time, and again when any of it but the timeout
 * changed. -1 on ENOMEM (the old settings stay).
 */
int	rconn_set_target(struct rconn *, const struct config_redis *r, int flags);
/* 1 when commands can go; 0 too for NULL (a connection freed). */
int	rconn_up(const struct rconn *);
/* 1 while a connection is being made (TCP, AUTH, ROLE; the sentinels asked), not between attempts. */
int	rconn_connecting(const struct rconn *);
/*
 * Between attempts: the next one now, not at the end of its backoff (a
 * shutdown with something still to send). Nothing otherwise.
 */
void	rconn_hurry(struct rconn *);
/*
 * "host:port" or the socket path of the server, for log lines; with
 * Sentinel the master last named ("master NAME" before any). Owned by
 * rconn, valid until its next callback.
 */
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
/*
 * Drops the connection now; pending replies get NULL. It reconnects later,
 * through the sentinels when there are: for an owner told by the server
 * that it cannot write there (READONLY, LOADING, ...; rreply.h).
 */
void	rconn_drop(struct rconn *, const char *why);
/*
 * With Sentinel, while up: asks the sentinels (over a connection of their
 * own) whether the master is still the server this connection goes to;
 * when one names another, the connection is dropped and made to the new
 * master (the owner hears down, then up). For an owner whose writes stop
 * being acknowledged (a WAIT that counts too few replicas): after a
 * failover the old master takes writes, alone, until Sentinel demotes it.
 * Does nothing without Sentinel, while down, or while a question is out.
 */
void	rconn_verify(struct rconn *);
/*
 * Why the connection went down last, in a few words ("Connection refused",
 * "AUTH: WRONGPASS ..."), for an owner that reports outages in its own
 * words (chatmon tail); owned by rconn, valid until its next callback.
 * *refused (when not NULL) is 1 when the server or a sentinel answered
 * the setup with an error reply (AUTH, SELECT, PING, ROLE): a mistake of
 * the configuration more often than an outage, though LOADING and the
 * like pass.
 */
const char *rconn_error(const struct rconn *, int *refused);
/*
 * The name EVALSHA gives a script of len bytes: its SHA1 in hex, into sha
 * (41 bytes, NUL-ended). 0, or -1 when it cannot be made.
 */
int	rconn_script_sha(const char *text, size_t len, char sha[41]);
/* Pending replies get NULL; no state callback. NULL is fine. */
void	rconn_free(struct rconn *);

#endif
