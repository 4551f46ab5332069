/* codec: recognises chat turns in JSON text frames by configured JSON pointers (pure; no I/O). */
#ifndef CHATMON_CODEC_H
#define CHATMON_CODEC_H

#include <stddef.h>

#include "chatmon/config.h"

/*
 * The longest conversation id, in bytes: every conversation is remembered
 * (its SLA record, its window, its key in Redis) for as long as it lives,
 * so a longer one is malformed rather than megabytes kept for half an hour.
 */
#define CODEC_CONV_MAX	512

enum codec_kind {
	CODEC_INVALID,		/* not JSON (or not a JSON object) */
	CODEC_OTHER,		/* JSON, but its type is in neither list */
	CODEC_MALFORMED,	/* a message/end type, but a required field is missing or not a string */
	CODEC_TURN,		/* type in message_types: conversation and text set */
	CODEC_END,		/* type in end_types: conversation set, text NULL */
};

/*
 * What a decoded frame holds. Every pointer is owned by the codec and stays
 * valid until the next codec_decode or codec_free. Strings are UTF-8, JSON
 * escapes resolved (\uXXXX and surrogate pairs included), NUL-terminated, and
 * their lengths exclude the terminator (a text may contain U+0000).
 */
struct codec_frame {
	const char	*type;
	size_t		 type_len;
	/*
	 * The string at /type, where chatmond's own frames (chatmon.*) name
	 * their type whatever protocol.type says, read as type is (escapes
	 * resolved, the last of duplicate keys); NULL when the frame is
	 * INVALID or /type is absent or not a string.
	 */
	const char	*own_type;
	size_t		 own_type_len;
	const char	*conversation;	/* a whole JSON number in decimal, another as sent */
	size_t		 conversation_len;
	const char	*text;
	size_t		 text_len;
	const char	*why;		/* for INVALID and MALFORMED: a short reason */
	int		 robot;		/* TURN: protocol.robot says a robot wrote it */
	const char	*nick;		/* TURN: the string at protocol.nickname, or NULL */
	size_t		 nick_len;
	/*
	 * TURN and END: the id at protocol.shop / protocol.queue, a string or
	 * a number (written as conversation is); NULL when the
	 * pointer is not configured or the value is absent, empty or of
	 * another type.
	 */
	const char	*shop;
	size_t		 shop_len;
	const char	*queue;
	size_t		 queue_len;
};

/*
 * Builds a codec for proto; the codec copies what it needs (proto may be
 * freed afterwards). NULL with a message in errs when a pointer is invalid.
 */
struct codec *codec_new(const struct config_protocol *proto, struct sbuf *errs);
enum codec_kind codec_decode(struct codec *, const char *buf, size_t len,
    struct codec_frame *out);
void	codec_free(struct codec *);
/*
 * The conversation id of the JSON object buf at protocol.conversation,
 * read exactly as a chat frame's is (a string, or a number: a whole one
 * written as JSON.parse reads it, any other as sent; at most
 * CODEC_CONV_MAX bytes), whatever else the object holds: chatmon replay
 * reads its log's ids with it, so that it names the conversations the
 * relay named. NULL, or why not (a MALFORMED frame's why, or the JSON's
 * fault); *conv is the codec's until its next call.
 */
const char *codec_conversation_id(struct codec *, const char *buf, size_t len,
	    const char **conv, size_t *conv_len);
const char *codec_kind_name(enum codec_kind);

#endif
