/* note: a supervisor's whisper note to an agent (a request checked, its id, its JSON, its audit entry, and the view pages get of it) (pure). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chatmon/note.h"
#include "chatmon/util.h"

int
note_name_ok(const char *s, size_t len)
{
	size_t	i;

	if (len == 0 || len > NOTE_NAME_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	/* a name goes into JSON: bytes that are not UTF-8 cannot */
	return util_utf8_valid(s, len);
}

int
note_req_parse(const char *body, size_t len, char **conversation, char **text,
    char *err, size_t errsize)
{
	json_t		*o, *c, *t;
	size_t		 n;

	*conversation = *text = NULL;
	if ((o = json_loadb(body, len, 0, NULL)) == NULL || !json_is_object(o)) {
		snprintf(err, errsize, "want a JSON object");
		goto err;
	}
	c = json_object_get(o, "conversation");
	t = json_object_get(o, "text");
	if (!json_is_string(c) || !note_name_ok(json_string_value(c),
	    json_string_length(c)) ||
	    strlen(json_string_value(c)) != json_string_length(c)) {
		snprintf(err, errsize, "conversation: want a conversation id");
		goto err;
	}
	if (!json_is_string(t) ||
	    strlen(json_string_value(t)) != json_string_length(t)) {
		snprintf(err, errsize, "text: want a string");
		goto err;
	}
	n = util_utf8_count(json_string_value(t), json_string_length(t));
	if (n == 0 || n > NOTE_TEXT_MAX) {
		snprintf(err, errsize, "text: want 1 to %d characters", NOTE_TEXT_MAX);
		goto err;
	}
	if ((*conversation = strdup(json_string_value(c))) == NULL ||
	    (*text = strdup(json_string_value(t))) == NULL) {
		snprintf(err, errsize, "out of memory");
		goto err;
	}
	json_decref(o);
	return 0;
err:
	free(*conversation);
	*conversation = NULL;
	json_decref(o);
	return -1;
}

void
note_id(char out[NOTE_ID_MAX], int64_t ms, uint32_t rnd)
{
	snprintf(out, NOTE_ID_MAX, "n-%" PRId64 "-%08" PRIx32, ms, rnd);
}

json_t *
note_json(const char *id, const char *agent, const char *conversation,
    const char *from, const char *text, int64_t ts)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "id", id, "agent", agent,
	    "conversation", conversation, "from", from, "text", text,
	    "ts", (json_int_t)ts);
}

json_t *
note_audit(const char *id, const char *agent, const char *conversation,
    const char *who, int64_t ts)
{
	return json_pack("{s:I, s:s, s:s, s:s, s:s, s:s}", "ts", (json_int_t)ts,
	    "who", who, "what", "note.send", "note", id, "agent", agent,
	    "conversation", conversation);
}

/* A time the hash holds as a string of ms: a number, or null. */
static json_t *
note_ms(const char *s)
{
	char		*end;
	long long	 v;

	if (s == NULL || *s == '\0')
		return json_null();
	v = strtoll(s, &end, 10);
	return *end == '\0' ? json_integer(v) : json_null();
}

json_t *
note_view(const char *json, size_t len, const char *state,
    const char *delivered_at, const char *read_at)
{
	json_t	*o;

	if ((o = json_loadb(json, len, 0, NULL)) == NULL)
		return NULL;
	if (!json_is_object(o) || !json_is_string(json_object_get(o, "id")) ||
	    json_object_set_new(o, "state", json_string(state != NULL ? state :
	    "sent")) == -1 ||
	    json_object_set_new(o, "delivered_at", note_ms(delivered_at)) == -1 ||
	    json_object_set_new(o, "read_at", note_ms(read_at)) == -1) {
		json_decref(o);
		return NULL;
	}
	return o;
}
