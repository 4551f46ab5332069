/* peercount: how many connections each peer address holds (pure). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chatmon/peercount.h"
#include "chatmon/util.h"

/*
 * A chained hash table that doubles when it holds more addresses than
 * buckets. Addresses come from the network, so the hash is keyed
 * (util_hash): a peer cannot pick addresses that share a bucket.
 */
struct peercount_ent {
	struct peercount_ent	*next;
	uint64_t		 hash;
	size_t			 count;
	char			 addr[PEERCOUNT_ADDR_MAX + 1];
};

struct peercount {
	struct peercount_ent	**bucket;
	size_t			 nbuckets;	/* a power of two */
	size_t			 n;
	struct util_hkey	 hkey;
};

#define PEERCOUNT_BUCKETS0	64

struct peercount *
peercount_new(void)
{
	struct peercount	*pc;

	if ((pc = calloc(1, sizeof(*pc))) == NULL)
		return NULL;
	if ((pc->bucket = calloc(PEERCOUNT_BUCKETS0, sizeof(*pc->bucket))) == NULL) {
		free(pc);
		return NULL;
	}
	pc->nbuckets = PEERCOUNT_BUCKETS0;
	util_hkey_random(&pc->hkey);
	return pc;
}

void
peercount_free(struct peercount *pc)
{
	struct peercount_ent	*e, *next;
	size_t			 i;

	if (pc == NULL)
		return;
	for (i = 0; i < pc->nbuckets; i++)
		for (e = pc->bucket[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	free(pc->bucket);
	free(pc);
}

/* The slot that holds addr's entry, or the NULL at the end of its chain. */
static struct peercount_ent **
peercount_slot(const struct peercount *pc, const char *addr, uint64_t *hp)
{
	struct peercount_ent	**pp;
	size_t			  len = strnlen(addr, PEERCOUNT_ADDR_MAX);
	uint64_t		  h = util_hash(&pc->hkey, addr, len);

	*hp = h;
	for (pp = &pc->bucket[h & (pc->nbuckets - 1)]; *pp != NULL;
	    pp = &(*pp)->next)
		if ((*pp)->hash == h && strncmp((*pp)->addr, addr, len) == 0 &&
		    (*pp)->addr[len] == '\0')
			return pp;
	return pp;
}

/* Doubles the table; on failure it stays as it was (only slower). */
static void
peercount_grow(struct peercount *pc)
{
	struct peercount_ent	**nb, *e, *next;
	size_t			  n = pc->nbuckets * 2, i;

	if ((nb = calloc(n, sizeof(*nb))) == NULL)
		return;
	for (i = 0; i < pc->nbuckets; i++)
		for (e = pc->bucket[i]; e != NULL; e = next) {
			next = e->next;
			e->next = nb[e->hash & (n - 1)];
			nb[e->hash & (n - 1)] = e;
		}
	free(pc->bucket);
	pc->bucket = nb;
	pc->nbuckets = n;
}

size_t
peercount_add(struct peercount *pc, const char *addr)
{
	struct peercount_ent	**pp, *e;
	uint64_t		  h;

	pp = peercount_slot(pc, addr, &h);
	if ((e = *pp) != NULL)
		return ++e->count;
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return 0;
	e->hash = h;
	e->count = 1;
	memcpy(e->addr, addr, strnlen(addr, PEERCOUNT_ADDR_MAX));
	*pp = e;
	if (++pc->n > pc->nbuckets)
		peercount_grow(pc);
	return 1;
}

void
peercount_del(struct peercount *pc, const char *addr)
{
	struct peercount_ent	**pp, *e;
	uint64_t		  h;

	pp = peercount_slot(pc, addr, &h);
	if ((e = *pp) == NULL)
		return;
	if (--e->count > 0)
		return;
	*pp = e->next;
	free(e);
	pc->n--;
}

size_t
peercount_get(const struct peercount *pc, const char *addr)
{
	struct peercount_ent	**pp;
	uint64_t		  h;

	pp = peercount_slot(pc, addr, &h);
	return *pp != NULL ? (*pp)->count : 0;
}

size_t
peercount_size(const struct peercount *pc)
{
	return pc->n;
}
