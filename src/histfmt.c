/* histfmt: one chat turn as the JSON item of a conversation's history in Redis (pure; issue 15's contract, section 2). */
#include <inttypes.h>
#include <stdint.h>
#include <string.h>

#include "chatmon/histfmt.h"
#include "chatmon/jsonw.h"
#include "chatmon/util.h"

/*
 * Written by hand with jsonw_str, not through a jansson document: it runs
 * on every chat turn, and the hot path builds no document (design.md).
 */
int
histfmt_item(struct sbuf *out, const struct histfmt_turn *t)
{
	const char	*agent = t->agent != NULL ? t->agent : "";
	size_t		 len = t->text != NULL ? t->text_len : 0;

	if (len > HISTFMT_TEXT_MAX)
		len = util_utf8_trim(t->text, HISTFMT_TEXT_MAX);
	if (sbuf_printf(out, "{\"ts\":%" PRId64 ",\"role\":\"%s\",\"agent\":",
	    t->ts, t->customer ? "customer" : "agent") == -1 ||
	    jsonw_str(out, agent, strlen(agent)) == -1 ||
	    jsonw_key(out, "text", 0) == -1 ||
	    jsonw_str(out, t->text != NULL ? t->text : "", len) == -1)
		return -1;
	if (len < (t->text != NULL ? t->text_len : 0) &&
	    sbuf_printf(out, ",\"cut\":%zu", t->text_len) == -1)
		return -1;
	/* the shop's own robot, not the buyer (nor the agent) */
	if (t->robot && sbuf_printf(out, ",\"robot\":true") == -1)
		return -1;
	/* the nickname is the buyer's: an agent's or a robot's turn never carries one */
	if (t->customer && !t->robot && t->nick != NULL && t->nick_len > 0 &&
	    (jsonw_key(out, "nick", 0) == -1 ||
	    jsonw_str(out, t->nick, t->nick_len) == -1))
		return -1;
	if (t->blocked && sbuf_printf(out, ",\"blocked\":true") == -1)
		return -1;
	if (t->alert != NULL && t->alert[0] != '\0' &&
	    (jsonw_key(out, "alert", 0) == -1 ||
	    jsonw_str(out, t->alert, strlen(t->alert)) == -1))
		return -1;
	return sbuf_append(out, "}", 1);
}
