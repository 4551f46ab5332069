/* seen: the ids seen most recently, to drop the repeats of at-least-once delivery (pure). */
#ifndef CHATMON_SEEN_H
#define CHATMON_SEEN_H

#include <stddef.h>

struct seen;

/* Remembers the last max ids (max >= 1). NULL on ENOMEM; seen_free frees it. */
struct seen *seen_new(size_t max);
/* 1 when id is among those remembered, 0 when new (and now remembered), -1 on ENOMEM. */
int	seen_add(struct seen *, const char *id);
/* Forgets them all. */
void	seen_clear(struct seen *);
void	seen_free(struct seen *);

#endif
