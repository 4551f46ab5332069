/* copies: a customer message shown again (on another tab of the agent, a burst the backend sends again) told from a new one (pure). */
#ifndef CHATMON_COPIES_H
#define CHATMON_COPIES_H

#include <stddef.h>
#include <stdint.h>

/*
 * The backend sends a customer's message down every connection that shows
 * the conversation (one agent, two tabs), and again after a reconnect:
 * chatmond sees it as often as it is shown, and must count it once. Frames
 * carry no message id, so a copy is known the way Redis knows one for SLA
 * rounds (src/convstore.c, docs/sla.md): the same text in the same
 * conversation within COPIES_MS of its first showing. A customer who
 * really repeats a message that soon repeats nothing new.
 */
#define COPIES_MS	30000

struct copies;

/* Remembers at most max messages (the oldest forgotten first). NULL on ENOMEM. */
struct copies *copies_new(size_t max);
void	copies_free(struct copies *);
/*
 * text in conversation conv at now_ms: 1 when a copy of one seen within
 * COPIES_MS before (its first showing's time is kept: copies do not
 * lengthen it), 0 when new (now remembered), -1 on ENOMEM (then taken for
 * new, not remembered). now_ms only needs to be monotonic.
 */
int	copies_seen(struct copies *, const char *conv, size_t conv_len,
	    const char *text, size_t len, int64_t now_ms);
/*
 * Conversation conv ended at now_ms (an end frame, its idle end): what it
 * shows again after is the next conversation's, not a copy.
 */
void	copies_end(struct copies *, const char *conv, size_t conv_len,
	    int64_t now_ms);
/* Messages remembered, ends included (for tests). */
size_t	copies_count(const struct copies *);

#endif
