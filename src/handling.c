/* handling: what supervisors did with an alert (acked, assigned, resolved, false_positive): the request checked, the stored value and the audit entry made, false positives counted per rule (pure). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chatmon/handling.h"
#include "chatmon/util.h"

static const char *const handling_names[] = {
	"acked", "assigned", "resolved", "false_positive",
};

const char *
handling_state_name(enum handling_state s)
{
	return (size_t)s < UTIL_NELEM(handling_names) ? handling_names[s] : "?";
}

int
handling_state_parse(const char *name)
{
	size_t	i;

	for (i = 0; name != NULL && i < UTIL_NELEM(handling_names); i++)
		if (strcmp(name, handling_names[i]) == 0)
			return (int)i;
	return -1;
}

static int
handling_err(char *err, size_t errsize, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(err, errsize, fmt, ap);
	va_end(ap);
	return -1;
}

/*
 * The string field key of o into *out (a copy; absent or null leaves
 * NULL): -1 when it is not a string, is empty while required, or is
 * longer than max (code points when cp, else bytes).
 */
static int
handling_field(const json_t *o, const char *key, int required, size_t max,
    int cp, char **out, char *err, size_t errsize)
{
	const json_t	*v = json_object_get(o, key);
	const char	*s;
	size_t		 len, n;

	*out = NULL;
	if (v == NULL || json_is_null(v)) {
		if (required)
			return handling_err(err, errsize, "%s is required", key);
		return 0;
	}
	if (!json_is_string(v))
		return handling_err(err, errsize, "%s: want a string", key);
	s = json_string_value(v);
	len = json_string_length(v);
	if (memchr(s, '\0', len) != NULL)
		return handling_err(err, errsize, "%s: holds U+0000", key);
	n = cp ? util_utf8_count(s, len) : len;
	if (n > max)
		return handling_err(err, errsize, "%s: longer than %zu", key, max);
	if (n == 0 && required)
		return handling_err(err, errsize, "%s is required", key);
	if ((*out = strdup(s)) == NULL)
		return handling_err(err, errsize, "out of memory");
	return 0;
}

int
handling_req_parse(const char *body, size_t len, struct handling_req *q,
    char *err, size_t errsize)
{
	json_t	*o;
	int	 st;

	memset(q, 0, sizeof(*q));
	if ((o = json_loadb(body, len, 0, NULL)) == NULL || !json_is_object(o)) {
		json_decref(o);
		return handling_err(err, errsize, "want a JSON object");
	}
	if ((st = handling_state_parse(json_string_value(json_object_get(o,
	    "state")))) == -1) {
		json_decref(o);
		return handling_err(err, errsize, "state: want acked, assigned, "
		    "resolved or false_positive");
	}
	q->state = (enum handling_state)st;
	if (handling_field(o, "note", 0, HANDLING_TEXT_MAX, 1, &q->note, err,
	    errsize) == -1 ||
	    handling_field(o, "assignee", q->state == HANDLING_ASSIGNED,
	    HANDLING_NAME_MAX, 0, &q->assignee, err, errsize) == -1 ||
	    handling_field(o, "reason", q->state == HANDLING_FALSE_POSITIVE,
	    HANDLING_TEXT_MAX, 1, &q->reason, err, errsize) == -1) {
		json_decref(o);
		handling_req_clear(q);
		return -1;
	}
	json_decref(o);
	return 0;
}

void
handling_req_clear(struct handling_req *q)
{
	free(q->note);
	free(q->assignee);
	free(q->reason);
	q->note = q->assignee = q->reason = NULL;
}

/* key: s, or nothing when s is NULL; -1 on ENOMEM. */
static int
handling_set_opt(json_t *o, const char *key, const char *s)
{
	return s == NULL ? 0 : json_object_set_new(o, key, json_string(s));
}

/* key copied from the alert when it is there. */
static int
handling_copy(json_t *o, const json_t *alert, const char *key)
{
	json_t	*v = json_object_get(alert, key);

	return v == NULL ? 0 : json_object_set(o, key, v);
}

json_t *
handling_value(const struct handling_req *q, const char *by, int64_t at,
    const json_t *alert)
{
	json_t		*o, *rules, *hits;
	const char	*r;
	size_t		 i;

	if ((o = json_pack("{s:s, s:s, s:I}", "state", handling_state_name(q->state),
	    "by", by, "at", (json_int_t)at)) == NULL)
		return NULL;
	if (handling_set_opt(o, "note", q->note) == -1 ||
	    handling_set_opt(o, "assignee", q->assignee) == -1 ||
	    handling_set_opt(o, "reason", q->reason) == -1 ||
	    handling_copy(o, alert, "rule") == -1 ||
	    handling_copy(o, alert, "category") == -1 ||
	    handling_copy(o, alert, "severity") == -1 ||
	    json_object_set_new(o, "rules", rules = json_array()) == -1)
		goto err;
	/* v2: every rule of hits (strongest first); v1 and SLA alerts: the one or none */
	hits = json_object_get(alert, "hits");
	for (i = 0; json_is_array(hits) && i < json_array_size(hits); i++)
		if ((r = json_string_value(json_object_get(json_array_get(hits, i),
		    "rule"))) != NULL && json_array_append_new(rules,
		    json_string(r)) == -1)
			goto err;
	if (json_array_size(rules) == 0 &&
	    (r = json_string_value(json_object_get(alert, "rule"))) != NULL &&
	    json_array_append_new(rules, json_string(r)) == -1)
		goto err;
	return o;
err:
	json_decref(o);
	return NULL;
}

json_t *
handling_audit(const struct handling_req *q, const char *alert_id,
    const char *who, int64_t ts)
{
	json_t	*o;

	if ((o = json_pack("{s:I, s:s, s:s, s:s, s:s}", "ts", (json_int_t)ts,
	    "who", who, "what", "alert.state", "alert", alert_id, "state",
	    handling_state_name(q->state))) == NULL)
		return NULL;
	if (handling_set_opt(o, "note", q->note) == -1 ||
	    handling_set_opt(o, "assignee", q->assignee) == -1 ||
	    handling_set_opt(o, "reason", q->reason) == -1) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int64_t
handling_id_ms(const char *id)
{
	int64_t	ms = 0;
	size_t	i;

	/* chatmond's ids: 13 digits of wall ms, then '-' (alertfmt.c) */
	for (i = 0; id[i] >= '0' && id[i] <= '9'; i++) {
		if (i >= 15)
			return -1;
		ms = ms * 10 + (id[i] - '0');
	}
	return i >= 10 && id[i] == '-' ? ms : -1;
}

/* One more for rule in counts. */
static int
handling_fp_one(json_t *counts, const char *rule)
{
	json_int_t	n = json_integer_value(json_object_get(counts, rule));

	return json_object_set_new(counts, rule, json_integer(n + 1));
}

int
handling_fp_add(json_t *counts, const char *value, size_t len, int64_t since_ms,
    int *handled)
{
	json_t		*o, *rules;
	const char	*r;
	size_t		 i;
	int		 rc = 0, st;

	*handled = 0;
	if ((o = json_loadb(value, len, 0, NULL)) == NULL)
		return 0;
	if (!json_is_object(o) || (st = handling_state_parse(json_string_value(
	    json_object_get(o, "state")))) == -1 ||
	    json_integer_value(json_object_get(o, "at")) < since_ms)
		goto out;
	*handled = 1;
	if (st != HANDLING_FALSE_POSITIVE)
		goto out;
	rules = json_object_get(o, "rules");
	for (i = 0; json_is_array(rules) && i < json_array_size(rules); i++)
		if ((r = json_string_value(json_array_get(rules, i))) != NULL) {
			if (handling_fp_one(counts, r) == -1)
				goto oom;
			rc = 1;
		}
	if (rc == 0 && (r = json_string_value(json_object_get(o, "rule"))) != NULL) {
		if (handling_fp_one(counts, r) == -1)
			goto oom;
		rc = 1;
	}
out:
	json_decref(o);
	return rc;
oom:
	json_decref(o);
	return -1;
}
