/* notefmt: supervisors' whisper notes and the workbench's acks, read and written as issue 15's contract says (pure). */
#include <inttypes.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "chatmon/jsonw.h"
#include "chatmon/notefmt.h"

/*
 * Notes and acks are rare (a supervisor types each one), so they go
 * through jansson; the chat turns around them never do.
 */

int
notefmt_id_ok(const char *id, size_t len)
{
	size_t	i;

	if (len == 0 || len > NOTEFMT_ID_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' &&
		    id[i] <= 'Z') || (id[i] >= '0' && id[i] <= '9') ||
		    id[i] == '.' || id[i] == '_' || id[i] == ':' || id[i] == '-'))
			return 0;
	return 1;
}

void
notefmt_note_clear(struct notefmt_note *n)
{
	free(n->agent);
	free(n->frame);
	memset(n, 0, sizeof(*n));
}

int
notefmt_note_parse(const char *json, size_t len, struct notefmt_note *n,
    const char **why)
{
	json_t		*o, *f = NULL;
	const char	*id, *agent, *conv, *text, *from = "dashboard";
	size_t		 idlen;
	json_int_t	 ts;
	char		*s;

	memset(n, 0, sizeof(*n));
	if ((o = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL)) == NULL ||
	    !json_is_object(o)) {
		*why = "not a JSON object";
		goto err;
	}
	*why = "a field is missing or of the wrong type";
	if (!json_is_string(json_object_get(o, "id")) ||
	    !json_is_string(json_object_get(o, "agent")) ||
	    !json_is_string(json_object_get(o, "conversation")) ||
	    !json_is_string(json_object_get(o, "text")) ||
	    !json_is_integer(json_object_get(o, "ts")))
		goto err;
	id = json_string_value(json_object_get(o, "id"));
	idlen = json_string_length(json_object_get(o, "id"));
	agent = json_string_value(json_object_get(o, "agent"));
	conv = json_string_value(json_object_get(o, "conversation"));
	text = json_string_value(json_object_get(o, "text"));
	ts = json_integer_value(json_object_get(o, "ts"));
	if (json_is_string(json_object_get(o, "from")))
		from = json_string_value(json_object_get(o, "from"));
	if (!notefmt_id_ok(id, idlen)) {
		*why = "a bad id";
		goto err;
	}
	if (agent[0] == '\0') {
		*why = "no agent";
		goto err;
	}
	/*
	 * The dashboard writes its clock's ms: a ts before 1970 or past
	 * year 9999 is no note's, and ages computed from it could overflow.
	 */
	if (ts < 0 || ts > NOTEFMT_TS_MAX) {
		*why = "ts out of range";
		goto err;
	}
	/* the frame names only what the workbench shows: the agent is itself */
	f = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I}", "type", "chatmon.note",
	    "id", id, "conversation", conv, "from", from, "text", text,
	    "ts", ts);
	if (f == NULL || (s = json_dumps(f, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL) {
		*why = "out of memory";
		goto err;
	}
	n->frame = s;
	n->frame_len = strlen(s);
	if ((n->agent = strdup(agent)) == NULL) {
		*why = "out of memory";
		goto err;
	}
	memcpy(n->id, id, idlen);
	n->id[idlen] = '\0';
	n->ts = (int64_t)ts;
	json_decref(f);
	json_decref(o);
	return 0;
err:
	json_decref(f);
	json_decref(o);
	notefmt_note_clear(n);
	return -1;
}

int
notefmt_ack_parse(const char *data, size_t len, struct notefmt_ack *a,
    const char **why)
{
	json_t		*o, *v;
	const char	*type, *state;
	size_t		 slen;
	int		 rc = -1;

	memset(a, 0, sizeof(*a));
	/*
	 * The caller's reader found the type; jansson reads the rest. What it
	 * cannot read (\u0000 in a key, a number past a double, deep nesting)
	 * is no ack chatmond can record: dropped as malformed, like a wrong
	 * id. Duplicate keys: the last one wins, as in the caller's reader.
	 */
	if ((o = json_loadb(data, len, JSON_ALLOW_NUL, NULL)) == NULL ||
	    !json_is_object(o)) {
		*why = "JSON that chatmond cannot read";
		goto out;
	}
	v = json_object_get(o, "type");
	type = json_string_value(v);
	if (type == NULL || json_string_length(v) != NOTEFMT_ACK_TYPE_LEN ||
	    memcmp(type, NOTEFMT_ACK_TYPE, NOTEFMT_ACK_TYPE_LEN) != 0) {
		*why = "type is not " NOTEFMT_ACK_TYPE;
		goto out;
	}
	v = json_object_get(o, "id");
	if (!json_is_string(v) || !notefmt_id_ok(json_string_value(v),
	    json_string_length(v))) {
		*why = "id missing or not a note id";
		goto out;
	}
	memcpy(a->id, json_string_value(v), json_string_length(v));
	a->id[json_string_length(v)] = '\0';
	v = json_object_get(o, "state");
	if ((state = json_string_value(v)) == NULL) {
		*why = "state missing or not a string";
		goto out;
	}
	/* a NUL inside would end the string early for strcmp */
	slen = json_string_length(v);
	if (slen == 9 && memcmp(state, "delivered", 9) == 0)
		a->state = NOTEFMT_DELIVERED;
	else if (slen == 4 && memcmp(state, "read", 4) == 0)
		a->state = NOTEFMT_READ;
	else {
		*why = "state is neither delivered nor read";
		goto out;
	}
	rc = 0;
out:
	json_decref(o);
	return rc;
}

const char *
notefmt_state_name(enum notefmt_state s)
{
	return s == NOTEFMT_READ ? "read" : "delivered";
}

int
notefmt_audit(struct sbuf *out, int64_t ts, const char *agent, const char *id,
    enum notefmt_state state)
{
	char	*who;
	int	 rc;

	if (asprintf(&who, "agent:%s", agent) == -1)
		return -1;
	rc = jsonw_dump(out, json_pack("{s:I,s:s,s:s,s:s,s:s}", "ts",
	    (json_int_t)ts, "who", who, "what", "note.state", "note", id,
	    "state", notefmt_state_name(state)));
	free(who);
	return rc;
}
