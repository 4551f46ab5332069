/* logrepeat: a line logged again and again in a burst is said once per interval, with how many were held back (pure: the caller passes now). */
#include <stdlib.h>
#include <string.h>

#include "chatmon/logrepeat.h"

#define LOGREPEAT_SLOTS_MAX	64

/*
 * A handful of slots searched in order: the lines that repeat in a burst
 * are few (lws's "accept: errno 24", a refusal), and a lookup costs less
 * than the write it saves.
 */
struct logrepeat_slot {
	char		 line[LOGREPEAT_LINE_MAX];
	size_t		 len;		/* the whole line's; 0: slot unused */
	uint64_t	 logged;	/* when it was last logged */
	uint64_t	 seen;		/* when it last came */
	uint64_t	 held;		/* held back since logged */
};

struct logrepeat {
	struct logrepeat_slot	*slot;
	size_t			 nslots;
	uint64_t		 interval_ms;
};

struct logrepeat *
logrepeat_new(size_t slots, uint64_t interval_ms)
{
	struct logrepeat	*r;

	if (slots == 0 || slots > LOGREPEAT_SLOTS_MAX)
		return NULL;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	if ((r->slot = calloc(slots, sizeof(*r->slot))) == NULL) {
		free(r);
		return NULL;
	}
	r->nslots = slots;
	r->interval_ms = interval_ms;
	return r;
}

void
logrepeat_free(struct logrepeat *r)
{
	if (r == NULL)
		return;
	free(r->slot);
	free(r);
}

int
logrepeat_check(struct logrepeat *r, const char *line, size_t len,
    uint64_t now, uint64_t *held)
{
	struct logrepeat_slot	*s, *old = NULL;
	size_t			 i, cmp = len < LOGREPEAT_LINE_MAX ? len :
				    LOGREPEAT_LINE_MAX;

	*held = 0;
	if (len == 0)
		return 1;	/* nothing to tell apart */
	for (i = 0; i < r->nslots; i++) {
		s = &r->slot[i];
		if (s->len == 0) {
			if (old == NULL || old->len != 0)
				old = s;	/* a free slot before any used one */
			continue;
		}
		if (s->len == len && memcmp(s->line, line, cmp) == 0) {
			s->seen = now;
			/* a clock that went back holds nothing back */
			if (now >= s->logged && now - s->logged < r->interval_ms) {
				s->held++;
				return 0;
			}
			*held = s->held;
			s->held = 0;
			s->logged = now;
			return 1;
		}
		if (old == NULL || (old->len != 0 && s->seen < old->seen))
			old = s;
	}
	/* a line not seen lately: logged, in the free or stalest slot */
	memcpy(old->line, line, cmp);
	old->len = len;
	old->logged = old->seen = now;
	old->held = 0;
	return 1;
}
