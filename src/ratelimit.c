/* ratelimit: failures per key (a client address, a user name) in a sliding window, for refusing a guesser (pure: the caller passes now). */
#include <stdlib.h>
#include <string.h>

#include "chatmon/ratelimit.h"

/*
 * Each key keeps the times of its last `fails` failures, in a ring: it is
 * refused while the oldest of them is still in the window. A plain array
 * searched end to end: a key is looked up only on a login attempt, and the
 * table is bounded, so a guesser who sprays user names costs a scan of
 * max_keys, never memory.
 */
struct ratelimit_key {
	char		 key[RATELIMIT_KEY_MAX];
	uint64_t	 at[RATELIMIT_MAX_FAILS];	/* ring of failure times */
	unsigned	 n, next;			/* held; where the next goes */
	uint64_t	 last;				/* 0: free slot */
};

struct ratelimit {
	struct ratelimit_key	*v;
	size_t			 max;
	unsigned		 fails;
	uint64_t		 window_ms;
};

struct ratelimit *
ratelimit_new(size_t max_keys, unsigned fails, uint64_t window_ms)
{
	struct ratelimit	*r;

	if (max_keys == 0 || fails == 0 || fails > RATELIMIT_MAX_FAILS ||
	    window_ms == 0 || (r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	if ((r->v = calloc(max_keys, sizeof(*r->v))) == NULL) {
		free(r);
		return NULL;
	}
	r->max = max_keys;
	r->fails = fails;
	r->window_ms = window_ms;
	return r;
}

void
ratelimit_free(struct ratelimit *r)
{
	if (r == NULL)
		return;
	free(r->v);
	free(r);
}

static struct ratelimit_key *
ratelimit_find(struct ratelimit *r, const char *key)
{
	size_t	i;

	for (i = 0; i < r->max; i++)
		if (r->v[i].last != 0 &&
		    strncmp(r->v[i].key, key, RATELIMIT_KEY_MAX - 1) == 0)
			return &r->v[i];
	return NULL;
}

uint64_t
ratelimit_wait(struct ratelimit *r, const char *key, uint64_t now)
{
	struct ratelimit_key	*k = ratelimit_find(r, key);
	uint64_t		 oldest;

	if (k == NULL || k->n < r->fails)
		return 0;
	oldest = k->at[k->next];	/* the ring is full: next is the oldest */
	return oldest + r->window_ms > now ? oldest + r->window_ms - now : 0;
}

void
ratelimit_fail(struct ratelimit *r, const char *key, uint64_t now)
{
	struct ratelimit_key	*k;
	size_t			 i;

	if (now == 0)
		now = 1;	/* 0 marks a free slot */
	if ((k = ratelimit_find(r, key)) == NULL) {
		for (i = 0; i < r->max && k == NULL; i++)
			if (r->v[i].last == 0)
				k = &r->v[i];
		if (k == NULL) {
			k = &r->v[0];
			for (i = 1; i < r->max; i++)
				if (r->v[i].last < k->last)
					k = &r->v[i];
		}
		memset(k, 0, sizeof(*k));
		strncpy(k->key, key, RATELIMIT_KEY_MAX - 1);
	}
	k->at[k->next] = now;
	k->next = (k->next + 1) % r->fails;
	if (k->n < r->fails)
		k->n++;
	k->last = now;
}

void
ratelimit_clear(struct ratelimit *r, const char *key)
{
	struct ratelimit_key	*k = ratelimit_find(r, key);

	if (k != NULL)
		memset(k, 0, sizeof(*k));
}

size_t
ratelimit_sweep(struct ratelimit *r, uint64_t now)
{
	size_t	i, left = 0;

	for (i = 0; i < r->max; i++) {
		if (r->v[i].last == 0)
			continue;
		if (r->v[i].last + r->window_ms <= now)
			memset(&r->v[i], 0, sizeof(r->v[i]));
		else
			left++;
	}
	return left;
}
