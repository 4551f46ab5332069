/* ratelimit: failures per key (a client address, a user name) in a sliding window, for refusing a guesser (pure: the caller passes now). */
#ifndef CHATMON_RATELIMIT_H
#define CHATMON_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#define RATELIMIT_MAX_FAILS	16	/* the most a key may be allowed */
#define RATELIMIT_KEY_MAX	128	/* bytes of a key; longer ones are cut */

struct ratelimit;

/*
 * At most fails failures (1..RATELIMIT_MAX_FAILS) per key in any window_ms,
 * remembered for at most max_keys keys (when full, the key whose last
 * failure is oldest is forgotten). NULL on a bad argument or ENOMEM.
 */
struct ratelimit *ratelimit_new(size_t max_keys, unsigned fails,
		    uint64_t window_ms);
void		 ratelimit_free(struct ratelimit *);

/* 0 when key may try now; else the ms until it may (Retry-After). */
uint64_t	 ratelimit_wait(struct ratelimit *, const char *key, uint64_t now);
/* Counts a failure of key at now. */
void		 ratelimit_fail(struct ratelimit *, const char *key, uint64_t now);
/* Forgets key's failures (it proved itself). */
void		 ratelimit_clear(struct ratelimit *, const char *key);
/* Forgets the keys with no failure in the window; how many are left. */
size_t		 ratelimit_sweep(struct ratelimit *, uint64_t now);

#endif
