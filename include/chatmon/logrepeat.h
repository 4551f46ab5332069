/* logrepeat: a line logged again and again in a burst is said once per interval, with how many were held back (pure: the caller passes now). */
#ifndef CHATMON_LOGREPEAT_H
#define CHATMON_LOGREPEAT_H

#include <stddef.h>
#include <stdint.h>

/*
 * Lines are told apart by their first LOGREPEAT_LINE_MAX bytes and their
 * length: two longer lines that differ only past that are one line here.
 */
#define LOGREPEAT_LINE_MAX	256

struct logrepeat;

/*
 * Remembers the last slots distinct lines (1..64; when full, the one seen
 * longest ago is forgotten, with its count of held-back lines), each said
 * at most once per interval_ms. Owned by the caller (logrepeat_free);
 * NULL on a bad argument or ENOMEM.
 */
struct logrepeat *logrepeat_new(size_t slots, uint64_t interval_ms);
void	logrepeat_free(struct logrepeat *);
/*
 * Whether line (len bytes) is to be logged at now (ms, any monotonic
 * clock): 1, with *held the number of the same line held back since it
 * was last logged (0 for a new line), or 0: held back and counted. The
 * count of a burst comes with the line's next logging, one interval on:
 * a line that never comes again takes its count with it.
 */
int	logrepeat_check(struct logrepeat *, const char *line, size_t len,
	    uint64_t now, uint64_t *held);

#endif
