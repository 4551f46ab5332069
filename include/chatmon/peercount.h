/* peercount: how many connections each peer address holds (pure). */
#ifndef CHATMON_PEERCOUNT_H
#define CHATMON_PEERCOUNT_H

#include <stddef.h>

#define PEERCOUNT_ADDR_MAX	63	/* longest address kept; longer ones are cut */

struct peercount;

/* An empty table, owned by the caller (peercount_free); NULL out of memory. */
struct peercount *peercount_new(void);
void	peercount_free(struct peercount *);
/* One more connection from addr: the new count, or 0 when out of memory. */
size_t	peercount_add(struct peercount *, const char *addr);
/* One less; an address at zero is forgotten. Unknown addresses are ignored. */
void	peercount_del(struct peercount *, const char *addr);
size_t	peercount_get(const struct peercount *, const char *addr);
/* Addresses with at least one connection. */
size_t	peercount_size(const struct peercount *);

#endif
