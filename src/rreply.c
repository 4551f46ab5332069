/* rreply: what Redis's answers mean for where to write: ROLE, SENTINEL get-master-addr-by-name, and the error replies that mean "not here, not now" (pure). */
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "chatmon/rreply.h"

/*
 * Only the reply structure is read here (hiredis.h for its layout, no
 * function of the library), so the rules can be tested on replies built
 * by hand.
 */

/* A string element (bulk or status) equal to s. */
static int
rreply_is(const redisReply *r, const char *s)
{
	size_t	n = strlen(s);

	return r != NULL && (r->type == REDIS_REPLY_STRING ||
	    r->type == REDIS_REPLY_STATUS) && r->len == n &&
	    memcmp(r->str, s, n) == 0;
}

/* A host as a sentinel or ROLE gives it: printable, no space, fits. */
static int
rreply_host(const redisReply *r, size_t sz)
{
	size_t	i;

	if (r == NULL || r->type != REDIS_REPLY_STRING || r->len == 0 ||
	    r->len >= sz)
		return 0;
	for (i = 0; i < r->len; i++)
		if ((unsigned char)r->str[i] <= 0x20 || r->str[i] == 0x7f)
			return 0;
	return 1;
}

/* A port given as an integer (ROLE) or as digits (SENTINEL); 0 when bad. */
static int
rreply_port(const redisReply *r)
{
	long	v = 0;
	size_t	i;

	if (r == NULL)
		return 0;
	if (r->type == REDIS_REPLY_INTEGER)
		return r->integer >= 1 && r->integer <= 65535 ? (int)r->integer : 0;
	if (r->type != REDIS_REPLY_STRING || r->len == 0 || r->len > 5)
		return 0;
	for (i = 0; i < r->len; i++) {
		if (r->str[i] < '0' || r->str[i] > '9')
			return 0;
		v = v * 10 + (r->str[i] - '0');
	}
	return v >= 1 && v <= 65535 ? (int)v : 0;
}

static const char *
rreply_type_name(const redisReply *r)
{
	static const char *const names[] = { "?", "string", "array", "integer",
	    "nil", "status", "error" };

	if (r == NULL)
		return "no reply";
	return r->type >= 1 && r->type <= 6 ? names[r->type] : "?";
}

enum rreply_role
rreply_role(const redisReply *r, char *detail, size_t sz)
{
	const redisReply	*e;

	if (sz > 0)
		detail[0] = '\0';
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
		snprintf(detail, sz, "ROLE answered a%s %s",
		    r != NULL && r->type == REDIS_REPLY_INTEGER ? "n" : "",
		    rreply_type_name(r));
		return RREPLY_UNKNOWN;
	}
	e = r->element[0];
	if (rreply_is(e, "master"))
		return RREPLY_MASTER;
	if (rreply_is(e, "sentinel")) {
		snprintf(detail, sz, "a sentinel, not a data server");
		return RREPLY_SENTINEL;
	}
	/* Redis still says "slave"; "replica" is the word of its docs */
	if (rreply_is(e, "slave") || rreply_is(e, "replica")) {
		if (r->elements >= 4 && rreply_host(r->element[1], 256) &&
		    rreply_port(r->element[2]) != 0 &&
		    (r->element[3]->type == REDIS_REPLY_STRING ||
		    r->element[3]->type == REDIS_REPLY_STATUS))
			snprintf(detail, sz, "replica of %.*s:%d (%.*s)",
			    (int)r->element[1]->len, r->element[1]->str,
			    rreply_port(r->element[2]),
			    (int)(r->element[3]->len > 32 ? 32 : r->element[3]->len),
			    r->element[3]->str);
		else
			snprintf(detail, sz, "a replica");
		return RREPLY_REPLICA;
	}
	snprintf(detail, sz, "ROLE answered an unknown role");
	return RREPLY_UNKNOWN;
}

int
rreply_master_addr(const redisReply *r, char *host, size_t hostsz, int *port,
    char *why, size_t whysz)
{
	int	p;

	if (r == NULL) {
		snprintf(why, whysz, "no reply");
		return -1;
	}
	if (r->type == REDIS_REPLY_NIL) {
		snprintf(why, whysz, "it does not monitor a master of that name");
		return -1;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		snprintf(why, whysz, "%.*s", (int)(r->len > 200 ? 200 : r->len),
		    r->str);
		return -1;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    !rreply_host(r->element[0], hostsz) ||
	    (p = rreply_port(r->element[1])) == 0) {
		snprintf(why, whysz, "not an address (a%s %s)",
		    r->type == REDIS_REPLY_ARRAY || r->type == REDIS_REPLY_INTEGER ?
		    "n" : "", rreply_type_name(r));
		return -1;
	}
	memcpy(host, r->element[0]->str, r->element[0]->len);
	host[r->element[0]->len] = '\0';
	*port = p;
	return 0;
}

enum rreply_error
rreply_error_kind(const char *str)
{
	static const struct {
		const char		*word;
		enum rreply_error	 kind;
	} words[] = {
		{ "READONLY", RREPLY_ERR_READONLY },
		{ "LOADING", RREPLY_ERR_LOADING },
		{ "MASTERDOWN", RREPLY_ERR_MASTERDOWN },
		{ "NOREPLICAS", RREPLY_ERR_NOREPLICAS },
		{ "BUSY", RREPLY_ERR_BUSY },
		{ "TRYAGAIN", RREPLY_ERR_BUSY },
		{ "CLUSTERDOWN", RREPLY_ERR_BUSY },
		{ "OOM", RREPLY_ERR_BUSY },
		/* a restarted server with a password now: AUTH again */
		{ "NOAUTH", RREPLY_ERR_BUSY },
	};
	size_t	i, n;

	if (str == NULL)
		return RREPLY_ERR_OTHER;
	/* the first word of the error, as Redis's clients read it */
	n = strcspn(str, " ");
	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strlen(words[i].word) == n && memcmp(str, words[i].word, n) == 0)
			return words[i].kind;
	return RREPLY_ERR_OTHER;
}

int
rreply_error_transient(enum rreply_error k)
{
	return k != RREPLY_ERR_OTHER;
}

const char *
rreply_field(const redisReply *fv, const char *name, size_t *len)
{
	size_t	i;

	for (i = 0; fv != NULL && fv->type == REDIS_REPLY_ARRAY && i + 1 < fv->elements;
	    i += 2)
		if (fv->element[i]->type == REDIS_REPLY_STRING &&
		    fv->element[i + 1]->type == REDIS_REPLY_STRING &&
		    strcmp(fv->element[i]->str, name) == 0) {
			if (len != NULL)
				*len = fv->element[i + 1]->len;
			return fv->element[i + 1]->str;
		}
	return NULL;
}
