/* dash_scope: what a login limited to some shops may see (docs/dashboard.md, "Scope"): alerts, conversations and the feed's events of its shops only. */
#include <string.h>

#include <jansson.h>

#include "chatmon/feed.h"
#include "chatmon/jsonw.h"
#include "chatmon/users.h"
#include "dash_int.h"

/*
 * A scope is a login's list of shops (users_shops); NULL sees everything.
 * What the dashboard holds tells whose a thing is: an alert carries its
 * shop; a conversation is of the shop its alerts and its waiting round
 * name. What names no shop of the scope is refused, the unknown included:
 * a scoped login that guesses an id learns nothing.
 */

int
dash_scope_alert(struct dash *d, const char *scope, const char *id)
{
	const struct feed_item	*it;
	size_t			 i;

	if (scope == NULL)
		return 1;
	for (i = feed_size(d->feed); i > 0; i--)
		if ((it = feed_item(d->feed, i - 1)) != NULL &&
		    strcmp(it->id, id) == 0)
			return users_scope_has(scope, it->shop);
	return 0;
}

/*
 * shop, a shop seen of conv: *out when it is not of scope, else *in when
 * it names the agent asked for (named).
 */
static void
dash_scope_saw(const char *scope, const char *shop, int named, int *in,
    int *out)
{
	if (!users_scope_has(scope, shop))
		*out = 1;
	else if (named)
		*in = 1;
}

/* Whether have is the agent asked for (want NULL: any). */
static int
dash_scope_named(const char *have, const char *want)
{
	return want == NULL || (have != NULL && strcmp(have, want) == 0);
}

int
dash_scope_conv(struct dash *d, const char *scope, const char *conv,
    const char *agent)
{
	const struct feed_item	*it;
	const char		*c;
	json_t			*r;
	size_t			 i;
	int			 in = 0, out = 0;

	if (scope == NULL)
		return 1;
	for (i = 0; (it = feed_item(d->feed, i)) != NULL; i++)
		if (it->conversation != NULL && strcmp(it->conversation, conv) == 0)
			dash_scope_saw(scope, it->shop,
			    dash_scope_named(it->agent, agent), &in, &out);
	json_array_foreach(dash_waiting_rounds(d), i, r)
		if ((c = jsonw_cstr(r, "conversation")) != NULL &&
		    strcmp(c, conv) == 0)
			dash_scope_saw(scope, jsonw_cstr(r, "shop"),
			    dash_scope_named(jsonw_cstr(r, "agent"), agent),
			    &in, &out);
	/* a conversation keeps its first shop: two shops seen is someone's mischief */
	if (out)
		return 0;
	return in ? 1 : -1;
}

int
dash_scope_event(struct dash *d, const char *scope, const char *ev,
    struct sbuf *out)
{
	json_t		*m, *alerts, *kept, *v, *note;
	const char	*type, *id;
	int		 rc = 0;

	if (scope == NULL)
		return sbuf_append(out, ev, strlen(ev)) == -1 ? -1 : 1;
	if ((m = json_loads(ev, JSON_ALLOW_NUL, NULL)) == NULL)
		return 0;
	type = json_string_value(json_object_get(m, "type"));
	if (type != NULL && strcmp(type, "handling") == 0 &&
	    json_is_object(alerts = json_object_get(m, "alerts"))) {
		if ((kept = json_object()) == NULL) {
			rc = -1;
			goto out;
		}
		json_object_foreach(alerts, id, v)
			if (dash_scope_alert(d, scope, id))
				json_object_set(kept, id, v);
		if (json_object_size(kept) == 0) {
			json_decref(kept);
			goto out;	/* none of its shops': not sent */
		}
		if (json_object_set_new(m, "alerts", kept) == -1) {
			rc = -1;
			goto out;
		}
	} else if (type != NULL && strcmp(type, "note") == 0) {
		note = json_object_get(m, "note");
		if ((id = json_string_value(json_object_get(note,
		    "conversation"))) == NULL || dash_scope_conv(d, scope, id, NULL) != 1)
			goto out;
	} else
		goto out;	/* a kind it does not know: kept from a scoped page */
	rc = jsonw_dump(out, json_incref(m)) == -1 ? -1 : 1;
out:
	json_decref(m);
	return rc;
}
