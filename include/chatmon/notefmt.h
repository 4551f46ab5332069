/* notefmt: whisper notes as chatmond reads and delivers them, and the workbench's acks, as issue 15's contract says; the dashboard's side, making a note, is note (pure). */
#ifndef CHATMON_NOTEFMT_H
#define CHATMON_NOTEFMT_H

#include <stddef.h>
#include <stdint.h>

#include "chatmon/util.h"

/* Ids are the dashboard's n-<ms>-<hex>: anything longer is not one. */
#define NOTEFMT_ID_MAX	64

/* The latest ts a note may carry, in ms: 9999-12-31T23:59:59.999Z. */
#define NOTEFMT_TS_MAX	253402300799999LL

/* A note as the dashboard wrote it, and the frame its agent gets. */
struct notefmt_note {
	char		 id[NOTEFMT_ID_MAX + 1];
	char		*agent;		/* owned: notefmt_note_clear */
	int64_t		 ts;		/* 0..NOTEFMT_TS_MAX */
	char		*frame;		/* owned: {"type":"chatmon.note",...} */
	size_t		 frame_len;
};

/*
 * Reads the note JSON of the stream entry or of the note's hash. 0, or -1
 * with *why (a static string) when it is not a note (a field missing or
 * of the wrong type, a bad id, no agent, a ts out of 0..NOTEFMT_TS_MAX):
 * n is then empty.
 * Either way notefmt_note_clear frees what it holds.
 */
int	notefmt_note_parse(const char *json, size_t len, struct notefmt_note *n,
	    const char **why);
void	notefmt_note_clear(struct notefmt_note *);

enum notefmt_state {
	NOTEFMT_DELIVERED = 1,	/* the workbench has it */
	NOTEFMT_READ = 2,	/* the agent saw it; implies delivered */
};

struct notefmt_ack {
	char			 id[NOTEFMT_ID_MAX + 1];
	enum notefmt_state	 state;
};

/* The type of the workbench's ack, at /type (docs/protocol.md). */
#define NOTEFMT_ACK_TYPE	"chatmon.note_ack"
#define NOTEFMT_ACK_TYPE_LEN	(sizeof(NOTEFMT_ACK_TYPE) - 1)

/*
 * Reads a frame whose type the caller's reader (the codec, which reads
 * every frame) found to be NOTEFMT_ACK_TYPE: such a frame is chatmond's
 * whatever the rest holds. 0: a good ack, in *a. -1: malformed (not JSON
 * jansson reads, a type jansson reads otherwise, the id or state wrong);
 * *why (static) says what, for the log line.
 */
int	notefmt_ack_parse(const char *data, size_t len, struct notefmt_ack *a,
	    const char **why);
const char *notefmt_state_name(enum notefmt_state);
/* An id fit for a Redis key and a log line: [A-Za-z0-9._:-], 1..NOTEFMT_ID_MAX. */
int	notefmt_id_ok(const char *id, size_t len);
/*
 * Appends the audit entry of an agent's ack (contract section 5):
 * {"ts":..,"who":"agent:AGENT","what":"note.state","note":ID,"state":..}.
 * 0, or -1 on ENOMEM.
 */
int	notefmt_audit(struct sbuf *out, int64_t ts, const char *agent,
	    const char *id, enum notefmt_state);

#endif
