/* handling: what supervisors did with an alert (acked, assigned, resolved, false_positive): the request checked, the stored value and the audit entry made, false positives counted per rule (pure). */
#ifndef CHATMON_HANDLING_H
#define CHATMON_HANDLING_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

enum handling_state {
	HANDLING_ACKED,
	HANDLING_ASSIGNED,
	HANDLING_RESOLVED,
	HANDLING_FALSE_POSITIVE,
};

#define HANDLING_TEXT_MAX	1000	/* note and reason, in code points */
#define HANDLING_NAME_MAX	128	/* assignee, in bytes */

/* A POST /api/alerts/ID body, checked. The strings are owned (handling_req_clear); NULL when absent. */
struct handling_req {
	enum handling_state	 state;
	char			*note, *assignee, *reason;
};

/* "acked" ... "false_positive". */
const char *handling_state_name(enum handling_state);
/* The state named name; -1 for none. */
int	handling_state_parse(const char *name);

/*
 * Checks a request body (docs/dashboard.md, "HTTP API"): a JSON object
 * with "state", and "assignee" for assigned, "reason" for false_positive;
 * "note" optional; every field a string of its size. 0 with q filled, or
 * -1 with the reason (for the 400 answer) in err.
 */
int	handling_req_parse(const char *body, size_t len, struct handling_req *q,
	    char *err, size_t errsize);
void	handling_req_clear(struct handling_req *);

/*
 * The value stored for the alert (the field of P chatmon:alerts:handling):
 * the request, by and at, and the alert's strongest rule, category and
 * severity with every rule of its hits (one rule without hits: a v1
 * alert). A new reference, NULL on ENOMEM.
 */
json_t	*handling_value(const struct handling_req *, const char *by, int64_t at,
	    const json_t *alert);
/* The audit entry of it: {"ts","who","what":"alert.state","alert",...}. A new reference, NULL on ENOMEM. */
json_t	*handling_audit(const struct handling_req *, const char *alert_id,
	    const char *who, int64_t ts);

/* The wall ms an alert id starts with (chatmond's ids do), or -1. */
int64_t	handling_id_ms(const char *alert_id);

/*
 * One stored value into counts ({rule: n}): a false_positive whose "at"
 * is at or after since_ms counts once for each rule of "rules" (or its
 * "rule"). *handled is set to 1 when the value is a handling of any state
 * at or after since_ms (the alerts the false positives are a share of),
 * else 0. 1 counted, 0 not a false positive (or too old, or unreadable),
 * -1 on ENOMEM.
 */
int	handling_fp_add(json_t *counts, const char *value, size_t len,
	    int64_t since_ms, int *handled);

#endif
