/* bintext: a binary WebSocket message as the text a chat backend's JSON reader makes of it (pure but for bintext_new, where glibc's iconv_open may read its converters' list). */
#ifndef CHATMON_BINTEXT_H
#define CHATMON_BINTEXT_H

#include <stddef.h>

/*
 * A backend that reads every message with its JSON reader reads a binary
 * one as a chat turn too: Node's `JSON.parse(data)` (a Buffer, taken as
 * UTF-8, bytes that are not as U+FFFD) and Python's `json.loads(data)`
 * (bytes: UTF-8, or UTF-16 or UTF-32 found by RFC 4627's rule, a BOM or
 * the NUL bytes among the first four). chatmond reads such a message's
 * text the same way, so that a phrase cannot pass the rules by being sent
 * as binary (docs/protocol.md, "Binary messages").
 */
struct bintext;

/* NULL on ENOMEM. */
struct bintext	*bintext_new(void);
void		 bintext_free(struct bintext *);

/*
 * The UTF-8 text of binary message [data, data + len), BOM removed, when
 * it can be a JSON object (its first character after white space is '{'):
 * 0 with *text and *tlen (data itself when it is UTF-8 already; otherwise
 * the bintext's buffer, valid until the next call); 1 when it cannot be
 * one (nothing copied, most binary messages are rejected by their first
 * bytes); -1 on ENOMEM. UTF-8 that is not well formed has U+FFFD for each
 * byte that does not start a sequence; UTF-16 or UTF-32 that does not
 * decode (a lone surrogate) loses those units, as nothing can be matched
 * against them.
 */
int	bintext_decode(struct bintext *, const char *data, size_t len,
	    const char **text, size_t *tlen);

#endif
