/* fuzz_codec: one WebSocket text frame through codec_decode, under the protocols of test_codec and under pointers taken from the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "chatmon/bintext.h"
#include "chatmon/codec.h"
#include "chatmon/config.h"
#include "chatmon/util.h"

#include "fuzz.h"

/*
 * The input is the frame. When it starts with '/', its first line is a
 * protocol instead: the type, conversation, text and (optional) robot
 * pointers separated by TABs; the frame is the rest. Either way the frame
 * is also decoded under test_codec.c's fixed protocols, and under the
 * default one it is checked against jansson read directly.
 */

static char *msg_types[] = { "message" };
static char *end_types[] = { "end" };
static char *both_msg[] = { "chat", "close" };
static char *both_end[] = { "close", "bye" };

static const struct config_protocol protos[] = {
	/* design.md's default: checked against jansson below */
	{ .type = "/type", .conversation = "/conversation", .text = "/text",
	  .message_types = { msg_types, 1 }, .end_types = { end_types, 1 } },
	/* nested objects and an escaped '/' */
	{ .type = "/meta/t", .conversation = "/a~1b", .text = "/msg/body/text",
	  .message_types = { msg_types, 1 }, .end_types = { end_types, 1 } },
	/* array elements and an escaped '~' */
	{ .type = "/arr/0", .conversation = "/arr/1", .text = "/arr/2/~0x",
	  .message_types = { msg_types, 1 }, .end_types = { end_types, 1 } },
	/* a type in both lists, a robot flag and the buyer's nickname */
	{ .type = "/type", .conversation = "/conversation", .text = "/text",
	  .message_types = { both_msg, 2 }, .end_types = { both_end, 2 },
	  .robot = "/auto", .nickname = "/nick" },
};

/* Reads every byte the frame points at (ASan checks the range) and the terminator. */
static void
check_str(const char *s, size_t len)
{
	char	*copy;

	FUZZ_CHECK(s != NULL);
	FUZZ_CHECK(s[len] == '\0');
	copy = fuzz_strndup(s, len);
	free(copy);
}

static int
names_has(const struct config_list *l, const char *s, size_t len)
{
	size_t	i;

	for (i = 0; i < l->n; i++)
		if (l->v[i] != NULL && strlen(l->v[i]) == len && memcmp(l->v[i], s, len) == 0)
			return 1;
	return 0;
}

/* What the header promises of each kind. */
static void
check_frame(const struct config_protocol *p, enum codec_kind k,
    const struct codec_frame *f)
{
	FUZZ_CHECK(codec_kind_name(k) != NULL);
	switch (k) {
	case CODEC_INVALID:
		FUZZ_CHECK(f->why != NULL);
		check_str(f->why, strlen(f->why));
		FUZZ_CHECK(f->type == NULL && f->conversation == NULL &&
		    f->text == NULL);
		break;
	case CODEC_OTHER:
		FUZZ_CHECK(f->conversation == NULL && f->text == NULL);
		if (f->type != NULL) {
			check_str(f->type, f->type_len);
			FUZZ_CHECK(!names_has(&p->message_types, f->type,
			    f->type_len));
			FUZZ_CHECK(!names_has(&p->end_types, f->type,
			    f->type_len));
		}
		break;
	case CODEC_MALFORMED:
		FUZZ_CHECK(f->why != NULL);
		check_str(f->why, strlen(f->why));
		check_str(f->type, f->type_len);
		FUZZ_CHECK(f->text == NULL);
		break;
	case CODEC_TURN:
		check_str(f->type, f->type_len);
		FUZZ_CHECK(names_has(&p->message_types, f->type, f->type_len));
		check_str(f->conversation, f->conversation_len);
		check_str(f->text, f->text_len);
		FUZZ_CHECK(f->robot == 0 || f->robot == 1);
		if (p->robot == NULL)
			FUZZ_CHECK(f->robot == 0);
		if (f->nick != NULL)
			check_str(f->nick, f->nick_len);
		if (p->nickname == NULL)
			FUZZ_CHECK(f->nick == NULL);
		break;
	case CODEC_END:
		check_str(f->type, f->type_len);
		FUZZ_CHECK(names_has(&p->end_types, f->type, f->type_len));
		FUZZ_CHECK(!names_has(&p->message_types, f->type,
		    f->type_len));
		check_str(f->conversation, f->conversation_len);
		FUZZ_CHECK(f->text == NULL);
		break;
	default:
		FUZZ_CHECK(!"unknown kind");
	}
}

/* A conversation id the codec takes: a string up to CODEC_CONV_MAX bytes, or a number. */
static int
id_ok(const json_t *c)
{
	return (json_is_string(c) && json_string_length(c) <= CODEC_CONV_MAX) ||
	    json_is_number(c);
}

/*
 * The default protocol, read with jansson directly as the oracle: what it
 * takes, the codec reads the same (kind and strings).
 */
static void
check_default(const char *buf, size_t len, enum codec_kind k,
    const struct codec_frame *f)
{
	json_t		*doc, *t, *c, *x;
	json_error_t	 err;
	enum codec_kind	 want;

	doc = json_loadb(buf, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
	if (doc == NULL) {
		/*
		 * What jansson refuses the codec refuses too, except what the
		 * backend's JSON.parse takes (docs/protocol.md): numbers past
		 * its range, escaped lone surrogates, an escaped NUL in a key,
		 * nesting past its depth.
		 */
		FUZZ_CHECK(k == CODEC_INVALID ||
		    strstr(err.text, "too big") != NULL ||
		    strstr(err.text, "overflow") != NULL ||
		    strstr(err.text, "invalid Unicode") != NULL ||
		    strstr(err.text, "NUL byte in object key") != NULL ||
		    strstr(err.text, "maximum parsing depth") != NULL ||
		    memmem(buf, len, "NaN", 3) != NULL ||
		    memmem(buf, len, "Infinity", 8) != NULL);
		return;
	}
	/*
	 * jansson stops reading a number at a raw NUL byte and takes the
	 * rest ({"":0<NUL>} is an object to it); JSON.parse refuses the
	 * byte, and so does the codec.
	 */
	if (!json_is_object(doc) || memchr(buf, '\0', len) != NULL) {
		FUZZ_CHECK(k == CODEC_INVALID);
		json_decref(doc);
		return;
	}
	t = json_object_get(doc, "type");
	c = json_object_get(doc, "conversation");
	x = json_object_get(doc, "text");
	if (!json_is_string(t))
		want = CODEC_OTHER;
	else if (strcmp(json_string_value(t), "message") == 0 &&
	    json_string_length(t) == 7)
		want = id_ok(c) && json_is_string(x) ? CODEC_TURN :
		    CODEC_MALFORMED;
	else if (strcmp(json_string_value(t), "end") == 0 &&
	    json_string_length(t) == 3)
		want = id_ok(c) ? CODEC_END : CODEC_MALFORMED;
	else
		want = CODEC_OTHER;
	/* a real written with more than CODEC_CONV_MAX bytes, kept as sent */
	if (json_is_real(c) && k == CODEC_MALFORMED && want != CODEC_MALFORMED)
		FUZZ_CHECK(strstr(f->why, "longer than") != NULL);
	else
		FUZZ_CHECK(k == want);
	if (k == CODEC_TURN || k == CODEC_END) {
		if (json_is_string(c)) {
			FUZZ_CHECK(f->conversation_len == json_string_length(c));
			FUZZ_CHECK(memcmp(f->conversation, json_string_value(c),
			    f->conversation_len) == 0);
		} else if (json_is_integer(c))
			FUZZ_CHECK(strtoll(f->conversation, NULL, 10) ==
			    json_integer_value(c));
		else
			/* a whole one as an integer, the others as sent */
			FUZZ_CHECK(strtod(f->conversation, NULL) ==
			    json_real_value(c));
	}
	if (k == CODEC_TURN) {
		FUZZ_CHECK(f->text_len == json_string_length(x));
		FUZZ_CHECK(memcmp(f->text, json_string_value(x),
		    f->text_len) == 0);
	}
	json_decref(doc);
}

static void
decode(const struct config_protocol *p, const char *buf, size_t len,
    int against_jansson)
{
	struct sbuf		 errs;
	struct codec		*c;
	struct codec_frame	 f;
	enum codec_kind		 k;

	sbuf_init(&errs);
	c = codec_new(p, &errs);
	if (c == NULL) {
		/* every refusal says why */
		FUZZ_CHECK(errs.lines > 0);
		sbuf_free(&errs);
		return;
	}
	FUZZ_CHECK(errs.lines == 0);
	k = codec_decode(c, buf, len, &f);
	check_frame(p, k, &f);
	if (against_jansson)
		check_default(buf, len, k, &f);
	/* again through the same codec: the first document is released */
	k = codec_decode(c, buf, len, &f);
	check_frame(p, k, &f);
	codec_free(c);
	sbuf_free(&errs);
}

/*
 * The input as a binary message (bintext.h): text comes out only for what
 * can be a JSON object, is well-formed UTF-8, and is the input itself when
 * that was UTF-8 already; the codec reads it as a text frame.
 */
static void
binary(const char *buf, size_t len)
{
	static struct bintext	*bt;
	const char		*text;
	size_t			 tlen;
	int			 rc;

	if (bt == NULL && (bt = bintext_new()) == NULL)
		abort();
	rc = bintext_decode(bt, buf, len, &text, &tlen);
	FUZZ_CHECK(rc == 0 || rc == 1);
	if (rc == 1)
		return;
	FUZZ_CHECK(util_utf8_valid(text, tlen));
	/* UTF-8 without a BOM, and no NUL byte that says UTF-16 or UTF-32 */
	if (util_utf8_valid(buf, len) && (len < 3 || memcmp(buf, "\xef\xbb\xbf", 3) != 0) &&
	    (len != 2 && len < 4 ? 1 : buf[0] != '\0' && buf[1] != '\0'))
		FUZZ_CHECK(text == buf && tlen == len);
	decode(&protos[0], text, tlen, 1);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char		*buf = (const char *)data, *nl;
	char			*line, *ptr[4], *save = NULL, *tok;
	char			*empty[1] = { NULL };
	struct config_protocol	 p;
	size_t			 i, n;

	if (size > 0 && buf[0] == '/') {
		nl = memchr(buf, '\n', size);
		n = nl != NULL ? (size_t)(nl - buf) : size;
		line = fuzz_strndup(buf, n);
		memset(ptr, 0, sizeof(ptr));
		for (i = 0, tok = strtok_r(line, "\t", &save);
		    tok != NULL && i < 4; tok = strtok_r(NULL, "\t", &save))
			ptr[i++] = tok;
		p = protos[3];
		p.type = ptr[0];
		p.conversation = ptr[1];
		p.text = ptr[2];
		p.robot = ptr[3];
		buf += nl != NULL ? n + 1 : n;
		size -= nl != NULL ? n + 1 : n;
		decode(&p, buf, size, 0);
		/* a list with a NULL entry is skipped, an empty list is allowed */
		p.message_types.v = empty;
		p.message_types.n = 1;
		p.end_types.n = 0;
		decode(&p, buf, size, 0);
		free(line);
	}
	for (i = 0; i < UTIL_NELEM(protos); i++)
		decode(&protos[i], buf, size, i == 0);
	/* NULL is read as "" */
	if (size == 0)
		decode(&protos[0], NULL, 0, 0);
	binary(buf, size);
	return 0;
}
