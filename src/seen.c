/* seen: the ids seen most recently, to drop the repeats of at-least-once delivery (pure). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chatmon/seen.h"
#include "chatmon/util.h"

/*
 * The ids in insertion order, a ring of max, with a chained hash over it:
 * adding one past max forgets the oldest. Repeats of an alert come soon
 * after it (a redelivery after a reconnect), well within the window.
 */
struct seen {
	char		**id;		/* owned */
	uint32_t	 *hash;
	int32_t		 *next;		/* chain; -1 ends it */
	int32_t		 *head;		/* nbuckets */
	size_t		  max, nbuckets, pos, n;
	struct util_hkey  hkey;
};

struct seen *
seen_new(size_t max)
{
	struct seen	*s;
	size_t		 i;

	if (max == 0 || max > INT32_MAX / 2 || (s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->max = max;
	util_hkey_random(&s->hkey);
	for (s->nbuckets = 16; s->nbuckets < max; s->nbuckets *= 2)
		;
	if ((s->id = calloc(max, sizeof(*s->id))) == NULL ||
	    (s->hash = calloc(max, sizeof(*s->hash))) == NULL ||
	    (s->next = calloc(max, sizeof(*s->next))) == NULL ||
	    (s->head = calloc(s->nbuckets, sizeof(*s->head))) == NULL) {
		seen_free(s);
		return NULL;
	}
	for (i = 0; i < s->nbuckets; i++)
		s->head[i] = -1;
	return s;
}

void
seen_clear(struct seen *s)
{
	size_t	i;

	for (i = 0; i < s->n; i++) {
		free(s->id[i]);
		s->id[i] = NULL;
	}
	for (i = 0; i < s->nbuckets; i++)
		s->head[i] = -1;
	s->n = s->pos = 0;
}

void
seen_free(struct seen *s)
{
	if (s == NULL)
		return;
	if (s->id != NULL && s->head != NULL)
		seen_clear(s);
	free(s->id);
	free(s->hash);
	free(s->next);
	free(s->head);
	free(s);
}

int
seen_add(struct seen *s, const char *id)
{
	uint32_t	 h = (uint32_t)util_hash(&s->hkey, id, strlen(id));
	size_t		 b = h & (s->nbuckets - 1), slot;
	int32_t		*pp, i;
	char		*copy;

	for (i = s->head[b]; i != -1; i = s->next[i])
		if (s->hash[i] == h && strcmp(s->id[i], id) == 0)
			return 1;
	if ((copy = strdup(id)) == NULL)
		return -1;
	slot = s->pos;
	if (s->n == s->max) {		/* forget the oldest */
		pp = &s->head[s->hash[slot] & (s->nbuckets - 1)];
		while (*pp != (int32_t)slot)
			pp = &s->next[*pp];
		*pp = s->next[slot];
		free(s->id[slot]);
	} else
		s->n++;
	s->id[slot] = copy;
	s->hash[slot] = h;
	s->next[slot] = s->head[b];
	s->head[b] = (int32_t)slot;
	s->pos = (slot + 1) % s->max;
	return 0;
}
