/* codec: recognises chat turns in JSON text frames by configured JSON pointers (pure; no I/O). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "chatmon/codec.h"
#include "chatmon/util.h"

/*
 * Decoding flags. JSON_DECODE_ANY so that a scalar document parses and is
 * reported as "not a JSON object" rather than as a syntax error;
 * JSON_ALLOW_NUL so that U+0000 inside a string is kept (its length comes
 * from json_string_length). Duplicate keys are accepted and the last one
 * wins, as in JavaScript's JSON.parse and Python's json: the backend most
 * likely reads the same value we monitor.
 */
#define CODEC_JSON_FLAGS	(JSON_DECODE_ANY | JSON_ALLOW_NUL)

/* One reference token of a JSON pointer, unescaped once in codec_new. */
struct codec_tok {
	const char	*s;		/* points into codec_ptr.buf */
	size_t		 len;
	int		 is_index;	/* a valid RFC 6901 array index */
	size_t		 index;
};

struct codec_ptr {
	char		*buf;		/* the unescaped tokens, NUL-separated */
	struct codec_tok *tok;
	size_t		 ntok;
};

struct codec_name {
	char		*s;
	size_t		 len;
};

struct codec {
	struct codec_ptr	 type;
	struct codec_ptr	 conv;
	struct codec_ptr	 text;
	struct codec_ptr	 robot;		/* ntok 0 and buf NULL: not configured */
	int			 has_robot;
	struct codec_name	*msg;
	size_t			 nmsg;
	struct codec_name	*end;
	size_t			 nend;
	json_t			*doc;	/* the last document; backs every frame pointer */
	char			 convbuf[32];	/* an integer conversation in decimal */
	char			 why[JSON_ERROR_TEXT_LENGTH + 64];
};

static int
codec_ptr_parse(struct codec_ptr *p, const char *key, const char *spec,
    struct sbuf *errs)
{
	const char	*s;
	char		*d;
	size_t		 i, n;
	struct codec_tok *t;

	memset(p, 0, sizeof(*p));
	if (spec == NULL || *spec == '\0') {
		/* "" would point at the whole document, never a string field. */
		sbuf_line(errs, "protocol.%s: a JSON pointer is required", key);
		return -1;
	}
	if (*spec != '/') {
		sbuf_line(errs, "protocol.%s: invalid JSON pointer \"%s\": "
		    "must start with '/'", key, spec);
		return -1;
	}
	for (s = spec; *s != '\0'; s++) {
		if (*s == '~' && s[1] != '0' && s[1] != '1') {
			sbuf_line(errs, "protocol.%s: invalid JSON pointer "
			    "\"%s\": '~' must be followed by 0 or 1", key, spec);
			return -1;
		}
	}

	for (n = 0, s = spec; *s != '\0'; s++)
		if (*s == '/')
			n++;
	/* Unescaping only shrinks, and each '/' becomes one NUL. */
	if ((p->buf = malloc(strlen(spec) + 1)) == NULL ||
	    (p->tok = calloc(n, sizeof(*p->tok))) == NULL)
		goto nomem;
	p->ntok = n;

	d = p->buf;
	s = spec + 1;
	for (i = 0; i < n; i++) {
		t = &p->tok[i];
		t->s = d;
		for (; *s != '\0' && *s != '/'; s++) {
			if (*s == '~') {
				s++;
				*d++ = *s == '0' ? '~' : '/';
			} else
				*d++ = *s;
		}
		t->len = (size_t)(d - t->s);
		*d++ = '\0';
		if (*s == '/')
			s++;

		/* RFC 6901 §4: "0" or digits without a leading zero. */
		if (t->len > 0 && (t->s[0] != '0' || t->len == 1)) {
			size_t	 j, v = 0;

			t->is_index = 1;
			for (j = 0; j < t->len; j++) {
				unsigned char c = (unsigned char)t->s[j];

				if (c < '0' || c > '9' ||
				    v > (SIZE_MAX - (c - '0')) / 10) {
					t->is_index = 0;
					break;
				}
				v = v * 10 + (c - '0');
			}
			t->index = t->is_index ? v : 0;
		}
	}
	return 0;

 nomem:
	sbuf_line(errs, "protocol.%s: out of memory", key);
	return -1;
}

static void
codec_ptr_free(struct codec_ptr *p)
{
	free(p->buf);
	free(p->tok);
	memset(p, 0, sizeof(*p));
}

/* NULL when any step is missing, or crosses a scalar, or misses an array. */
static json_t *
codec_ptr_get(json_t *v, const struct codec_ptr *p)
{
	const struct codec_tok	*t;
	size_t			 i;

	for (i = 0; i < p->ntok && v != NULL; i++) {
		t = &p->tok[i];
		if (json_is_object(v))
			v = json_object_getn(v, t->s, t->len);
		else if (json_is_array(v) && t->is_index)
			v = json_array_get(v, t->index);
		else
			return NULL;
	}
	return v;
}

static int
codec_names_copy(struct codec_name **dst, size_t *ndst,
    const struct config_list *src, const char *key, struct sbuf *errs)
{
	size_t	 i;

	*dst = NULL;
	*ndst = 0;
	if (src->n == 0)
		return 0;
	if ((*dst = calloc(src->n, sizeof(**dst))) == NULL)
		goto nomem;
	for (i = 0; i < src->n; i++) {
		if (src->v[i] == NULL)
			continue;
		if (((*dst)[*ndst].s = strdup(src->v[i])) == NULL)
			goto nomem;
		(*dst)[*ndst].len = strlen(src->v[i]);
		(*ndst)++;
	}
	return 0;

 nomem:
	sbuf_line(errs, "protocol.%s: out of memory", key);
	return -1;
}

static void
codec_names_free(struct codec_name *v, size_t n)
{
	size_t	 i;

	if (v == NULL)
		return;
	for (i = 0; i < n; i++)
		free(v[i].s);
	free(v);
}

static int
codec_names_has(const struct codec_name *v, size_t n, const char *s,
    size_t len)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (v[i].len == len && memcmp(v[i].s, s, len) == 0)
			return 1;
	return 0;
}

/*
 * The codec owns copies of the pointers (split and unescaped) and of the
 * type names; the caller keeps proto. Free with codec_free.
 */
struct codec *
codec_new(const struct config_protocol *proto, struct sbuf *errs)
{
	struct codec	*c;
	int		 bad = 0;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		sbuf_line(errs, "protocol: out of memory");
		return NULL;
	}
	/* Check all three so that every bad pointer is reported at once. */
	if (codec_ptr_parse(&c->type, "type", proto->type, errs) == -1)
		bad = 1;
	if (codec_ptr_parse(&c->conv, "conversation", proto->conversation,
	    errs) == -1)
		bad = 1;
	if (codec_ptr_parse(&c->text, "text", proto->text, errs) == -1)
		bad = 1;
	if (proto->robot != NULL) {
		if (codec_ptr_parse(&c->robot, "robot", proto->robot, errs) == -1)
			bad = 1;
		c->has_robot = 1;
	}
	if (bad)
		goto err;
	if (codec_names_copy(&c->msg, &c->nmsg, &proto->message_types,
	    "message_types", errs) == -1)
		goto err;
	if (codec_names_copy(&c->end, &c->nend, &proto->end_types,
	    "end_types", errs) == -1)
		goto err;
	return c;

 err:
	codec_free(c);
	return NULL;
}

void
codec_free(struct codec *c)
{
	if (c == NULL)
		return;
	json_decref(c->doc);
	codec_ptr_free(&c->type);
	codec_ptr_free(&c->conv);
	codec_ptr_free(&c->text);
	codec_ptr_free(&c->robot);
	/* The counts are only set once a copy succeeded; free what exists. */
	codec_names_free(c->msg, c->nmsg);
	codec_names_free(c->end, c->nend);
	free(c);
}

/* A conversation is a string or a JSON integer; NULL on success. */
static const char *
codec_conversation(struct codec *c, struct codec_frame *out)
{
	json_t	*v;
	int	 n;

	if ((v = codec_ptr_get(c->doc, &c->conv)) == NULL)
		return "conversation missing";
	if (json_is_string(v)) {
		out->conversation = json_string_value(v);
		out->conversation_len = json_string_length(v);
		return NULL;
	}
	if (json_is_integer(v)) {
		n = snprintf(c->convbuf, sizeof(c->convbuf),
		    "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		if (n < 0 || (size_t)n >= sizeof(c->convbuf))
			return "conversation integer too long";
		out->conversation = c->convbuf;
		out->conversation_len = (size_t)n;
		return NULL;
	}
	return "conversation is not a string or an integer";
}

/*
 * The hot path: one json_loadb and a few lookups, no allocation of our own.
 * The previous document is released first, so the previous frame's pointers
 * die here, as the header says.
 */
enum codec_kind
codec_decode(struct codec *c, const char *buf, size_t len,
    struct codec_frame *out)
{
	json_error_t	 error;
	json_t		*v;
	const char	*type, *why;
	size_t		 type_len;
	int		 is_msg;

	memset(out, 0, sizeof(*out));
	json_decref(c->doc);
	c->doc = NULL;
	c->why[0] = '\0';

	if (buf == NULL)
		buf = "";
	/*
	 * jansson leaves the error untouched when some allocations fail, so
	 * mark it first: an empty text after a failure means out of memory.
	 * Others surface as a syntax error at the failing token; both are
	 * INVALID, only the reason differs.
	 */
	error.text[0] = '\0';
	error.text[JSON_ERROR_TEXT_LENGTH - 1] = json_error_unknown;
	if ((c->doc = json_loadb(buf, len, CODEC_JSON_FLAGS, &error)) == NULL) {
		if (error.text[0] == '\0' ||
		    json_error_code(&error) == json_error_out_of_memory)
			out->why = "out of memory";
		else {
			snprintf(c->why, sizeof(c->why),
			    "invalid JSON: %s at offset %d", error.text,
			    error.position);
			out->why = c->why;
		}
		return CODEC_INVALID;
	}
	if (!json_is_object(c->doc)) {
		out->why = "not a JSON object";
		return CODEC_INVALID;
	}

	if ((v = codec_ptr_get(c->doc, &c->type)) == NULL ||
	    !json_is_string(v))
		return CODEC_OTHER;
	type = json_string_value(v);
	type_len = json_string_length(v);
	out->type = type;
	out->type_len = type_len;

	/* A type listed in both is a message: a turn carries more than an end. */
	if (codec_names_has(c->msg, c->nmsg, type, type_len))
		is_msg = 1;
	else if (codec_names_has(c->end, c->nend, type, type_len))
		is_msg = 0;
	else
		return CODEC_OTHER;

	if ((why = codec_conversation(c, out)) != NULL)
		goto malformed;
	if (!is_msg)
		return CODEC_END;

	if ((v = codec_ptr_get(c->doc, &c->text)) == NULL) {
		why = "text missing";
		goto malformed;
	}
	if (!json_is_string(v)) {
		why = "text is not a string";
		goto malformed;
	}
	out->text = json_string_value(v);
	out->text_len = json_string_length(v);
	/* a robot's reply: true, a non-zero number or a non-empty string */
	if (c->has_robot && (v = codec_ptr_get(c->doc, &c->robot)) != NULL)
		out->robot = json_is_true(v) ||
		    (json_is_integer(v) && json_integer_value(v) != 0) ||
		    (json_is_real(v) && json_real_value(v) != 0) ||
		    (json_is_string(v) && json_string_length(v) > 0);
	return CODEC_TURN;

 malformed:
	out->conversation = NULL;
	out->conversation_len = 0;
	out->why = why;
	return CODEC_MALFORMED;
}

const char *
codec_kind_name(enum codec_kind k)
{
	switch (k) {
	case CODEC_INVALID:
		return "invalid";
	case CODEC_OTHER:
		return "other";
	case CODEC_MALFORMED:
		return "malformed";
	case CODEC_TURN:
		return "turn";
	case CODEC_END:
		return "end";
	}
	return "unknown";
}
