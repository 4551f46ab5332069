/* snapshot: every redis.snapshot, who waits now and the day's figures of this instance to Redis, for dashboards. */
#ifndef CHATMON_SNAPSHOT_H
#define CHATMON_SNAPSHOT_H

#include <stdint.h>

#include "chatmon/config.h"

struct event_base;
struct sla;
struct snapshot;

/*
 * Writes the documents of docs/dashboard.md for engine s (borrowed: it must
 * outlive the snapshot) over a Redis connection of its own, so a slow
 * snapshot never holds up an alert. instance tags the keys, as it tags the
 * alert ids. cfg is copied; redis.snapshot 0 writes nothing. NULL on ENOMEM.
 */
struct snapshot *snapshot_new(struct event_base *base, const struct config *cfg,
	    const struct sla *s, uint32_t instance, struct sbuf *errs);
void	snapshot_set_config(struct snapshot *, const struct config *cfg);
/*
 * At exit, once no turn comes any more: the day's figures as they end (the
 * rounds closed since the last tick would be lost), sent behind any
 * snapshot still unanswered; snapshot_inflight says when Redis answered.
 */
void	snapshot_final(struct snapshot *);
size_t	snapshot_inflight(const struct snapshot *);
void	snapshot_free(struct snapshot *);

#endif
