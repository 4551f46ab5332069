/* note: a supervisor's whisper note as the dashboard makes it (a request checked, its id, its JSON, its audit entry, and the view pages get of it); chatmond's side, the frame to the agent and the ack, is notefmt (pure). */
#ifndef CHATMON_NOTE_H
#define CHATMON_NOTE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define NOTE_TEXT_MAX	1000	/* code points */
#define NOTE_NAME_MAX	256	/* an agent's or a conversation's id, bytes */
#define NOTE_ID_MAX	40	/* "n-1795342899881-0a1b2c3d" and room */

/*
 * Checks a POST /api/agents/AGENT/notes body: {"conversation":..,"text":..},
 * text 1..NOTE_TEXT_MAX code points. 0 with copies in *conversation and
 * *text (the caller frees them), or -1 with the reason in err.
 */
int	note_req_parse(const char *body, size_t len, char **conversation,
	    char **text, char *err, size_t errsize);
/* Whether s (len bytes) may name an agent or a conversation: 1..NOTE_NAME_MAX bytes of UTF-8, no control character. */
int	note_name_ok(const char *s, size_t len);
/* "n-<ms>-<8 hex>". */
void	note_id(char out[NOTE_ID_MAX], int64_t ms, uint32_t rnd);
/* {"id","agent","conversation","from","text","ts"}: a new reference, NULL on ENOMEM. */
json_t	*note_json(const char *id, const char *agent, const char *conversation,
	    const char *from, const char *text, int64_t ts);
/* The audit entry {"ts","who","what":"note.send","note","agent","conversation"}. */
json_t	*note_audit(const char *id, const char *agent, const char *conversation,
	    const char *who, int64_t ts);
/*
 * What pages are shown of a note: its JSON (the hash's json field) with
 * "state", "delivered_at" and "read_at" (null when not yet; the hash keeps
 * them as strings of ms). NULL when json is not a note, or on ENOMEM.
 */
json_t	*note_view(const char *json, size_t len, const char *state,
	    const char *delivered_at, const char *read_at);

#endif
