/* rreply: what Redis's answers mean for where to write: ROLE, SENTINEL get-master-addr-by-name, and the error replies that mean "not here, not now" (pure). */
#ifndef CHATMON_RREPLY_H
#define CHATMON_RREPLY_H

#include <stddef.h>

struct redisReply;

enum rreply_role {
	RREPLY_MASTER,
	RREPLY_REPLICA,
	RREPLY_SENTINEL,
	RREPLY_UNKNOWN,		/* not a ROLE answer we know */
};

/*
 * The role in a ROLE reply. detail (sz bytes, always terminated) says what
 * a log line needs: "replica of HOST:PORT (STATE)" for a replica, the
 * reply's shape for an unknown one, "" for a master.
 */
enum rreply_role rreply_role(const struct redisReply *, char *detail, size_t sz);

/*
 * The master's address in a SENTINEL get-master-addr-by-name reply: 0 with
 * host (hostsz bytes) and port set, or -1 with the reason in why (whysz
 * bytes): an unknown master name (a nil reply), an error reply, a malformed
 * address.
 */
int	rreply_master_addr(const struct redisReply *, char *host, size_t hostsz,
	    int *port, char *why, size_t whysz);

/*
 * Error replies by what they say about the server. The first four are the
 * server telling that it cannot take writes now (a replica, a dataset
 * still loading, a replica cut from its master, too few replicas for
 * min-replicas-to-write): somewhere else, or the same server later, will.
 */
enum rreply_error {
	RREPLY_ERR_READONLY,
	RREPLY_ERR_LOADING,
	RREPLY_ERR_MASTERDOWN,
	RREPLY_ERR_NOREPLICAS,
	RREPLY_ERR_BUSY,	/* BUSY, TRYAGAIN, CLUSTERDOWN, OOM, NOAUTH: transient too */
	RREPLY_ERR_OTHER,	/* WRONGTYPE, NOPERM, ERR ...: a configuration to fix */
};

/*
 * The value of field name in a stream entry's [field, value, ...] array
 * (fv may be NULL or not an array), *len (may be NULL) its length; NULL
 * when it is not there as a string.
 */
const char *rreply_field(const struct redisReply *fv, const char *name, size_t *len);
/* The kind of an error reply's text (NULL is OTHER). */
enum rreply_error rreply_error_kind(const char *str);
/* 1 when a reconnect (to the same server, or the master Sentinel names) may cure it. */
int	rreply_error_transient(enum rreply_error);

#endif
