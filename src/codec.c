/* codec: recognises chat turns in JSON text frames by configured JSON pointers (pure; no I/O). */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chatmon/codec.h"
#include "chatmon/util.h"

/*
 * One pass over the frame, no document built (docs/protocol.md, "How a
 * frame is read"): the scanner checks the whole frame against RFC 8259,
 * notes where the values the pointers name lie, and only those strings are
 * unescaped, into buffers the codec keeps. Nothing is allocated per frame
 * once the buffers have grown to the frames seen.
 *
 * What it accepts is what the backend most likely accepts, JavaScript's
 * JSON.parse and Python's json, so that no frame the backend reads as a
 * chat turn passes unmonitored: duplicate keys (the last one wins), numbers
 * of any size (1e400, 2^64) and Python's NaN and Infinity, escaped lone surrogates (read as U+FFFD in the
 * strings it returns), U+0000 escaped anywhere, any depth. What they refuse
 * it refuses: bytes that are not UTF-8, raw control characters in strings,
 * a byte order mark, anything after the value.
 */

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

/*
 * The pointers, as bits of a mask; CODEC_NPTR of them. CODEC_P_OWN is
 * /type, where chatmond's own frames name theirs, whatever protocol.type
 * says (not tracked when protocol.type is /type itself).
 */
enum { CODEC_P_TYPE, CODEC_P_CONV, CODEC_P_TEXT, CODEC_P_ROBOT, CODEC_P_NICK,
	CODEC_P_SHOP, CODEC_P_QUEUE, CODEC_P_OWN, CODEC_NPTR };	/* at most 8: codec_level.mask */

enum codec_jtype { CODEC_J_NONE, CODEC_J_STRING, CODEC_J_NUMBER, CODEC_J_TRUE,
	CODEC_J_FALSE, CODEC_J_NULL, CODEC_J_OBJECT, CODEC_J_ARRAY };

/* Where a pointer's value lies in the frame: a string's bytes between its quotes. */
struct codec_val {
	enum codec_jtype type;
	size_t		 start, end;
	int		 esc;		/* a string with a backslash in it */
	int		 integer;	/* a number without fraction or exponent */
};

/* An open object or array, with the pointers whose path still runs through it. */
struct codec_level {
	unsigned char	 obj;		/* 1 object, 0 array */
	unsigned char	 mask;		/* pointers with more tokens below this level */
	size_t		 index;		/* an array's element being read */
};

/* A growable byte buffer the codec keeps across frames. */
struct codec_buf {
	char		*s;
	size_t		 cap;
};

struct codec {
	struct codec_ptr	 ptr[CODEC_NPTR];	/* robot, nick, shop, queue, own: ntok 0 when not configured */
	int			 has_robot;
	int			 own_is_type;	/* protocol.type is /type */
	struct codec_name	*msg;
	size_t			 nmsg;
	struct codec_name	*end;
	size_t			 nend;
	/* per frame, reused */
	struct codec_val	 val[CODEC_NPTR];
	struct codec_level	*stack;
	size_t			 stackcap;
	struct codec_buf	 out[CODEC_NPTR];	/* the unescaped strings */
	struct codec_buf	 key;			/* an escaped key, unescaped to compare */
	char			 why[96];
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
	if (codec_ptr_parse(&c->ptr[CODEC_P_TYPE], "type", proto->type, errs) == -1)
		bad = 1;
	if (codec_ptr_parse(&c->ptr[CODEC_P_CONV], "conversation",
	    proto->conversation, errs) == -1)
		bad = 1;
	if (codec_ptr_parse(&c->ptr[CODEC_P_TEXT], "text", proto->text, errs) == -1)
		bad = 1;
	if (proto->robot != NULL) {
		if (codec_ptr_parse(&c->ptr[CODEC_P_ROBOT], "robot", proto->robot,
		    errs) == -1)
			bad = 1;
		c->has_robot = 1;
	}
	if (proto->nickname != NULL && codec_ptr_parse(&c->ptr[CODEC_P_NICK],
	    "nickname", proto->nickname, errs) == -1)
		bad = 1;
	if (proto->shop != NULL && codec_ptr_parse(&c->ptr[CODEC_P_SHOP],
	    "shop", proto->shop, errs) == -1)
		bad = 1;
	if (proto->queue != NULL && codec_ptr_parse(&c->ptr[CODEC_P_QUEUE],
	    "queue", proto->queue, errs) == -1)
		bad = 1;
	if (proto->type != NULL && strcmp(proto->type, "/type") == 0)
		c->own_is_type = 1;
	else if (codec_ptr_parse(&c->ptr[CODEC_P_OWN], "type", "/type",
	    errs) == -1)
		bad = 1;
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
	size_t	i;

	if (c == NULL)
		return;
	for (i = 0; i < CODEC_NPTR; i++) {
		codec_ptr_free(&c->ptr[i]);
		free(c->out[i].s);
	}
	free(c->key.s);
	free(c->stack);
	/* The counts are only set once a copy succeeded; free what exists. */
	codec_names_free(c->msg, c->nmsg);
	codec_names_free(c->end, c->nend);
	free(c);
}

/* --- the scanner ---------------------------------------------------------- */

/* Room for n bytes in b; 0, or -1 on ENOMEM (b unchanged). */
static int
codec_buf_reserve(struct codec_buf *b, size_t n)
{
	char	*s;
	size_t	 cap;

	if (n <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < n)
		cap = cap > SIZE_MAX / 2 ? n : 2 * cap;
	if ((s = realloc(b->s, cap)) == NULL)
		return -1;
	b->s = s;
	b->cap = cap;
	return 0;
}

/*
 * A string whose opening quote is at *i: *i goes past the closing one,
 * *esc says whether it holds a backslash. NULL, or what is wrong with
 * *i at the offending byte.
 */
static const char *
codec_scan_string(const unsigned char *b, size_t len, size_t *i, int *esc)
{
	const unsigned char	*p = b + *i + 1, *end = b + len;
	uint32_t		 v;
	size_t			 n;

	*esc = 0;
	for (;;) {
		/* the common case: printable ASCII */
		while (p < end && *p >= 0x20 && *p != '"' && *p != '\\' && *p < 0x80)
			p++;
		if (p == end) {
			*i = len;
			return "unterminated string";
		}
		if (*p == '"')
			break;
		if (*p == '\\') {
			*esc = 1;
			if (end - p < 2)
				goto cut;
			switch (p[1]) {
			case '"': case '\\': case '/': case 'b': case 'f':
			case 'n': case 'r': case 't':
				p += 2;
				continue;
			case 'u':
				if (end - p < 6 || util_hex4((const char *)p + 2, &v) == -1) {
					*i = (size_t)(p - b);
					return "invalid \\u escape";
				}
				p += 6;
				continue;
			default:
				*i = (size_t)(p - b);
				return "invalid escape";
			}
		}
		if (*p < 0x20) {
			*i = (size_t)(p - b);
			return "control character in a string";
		}
		/*
		 * The common case of Chinese text: a run of 3-byte characters
		 * whose lead byte allows any continuation (not E0 or ED), read
		 * four bytes at a time while four are left; the last character
		 * and every other sequence go through util_utf8_seq below.
		 */
		while (end - p >= 4) {
			memcpy(&v, p, 4);
			v = le32toh(v);
			if ((v & 0xc0c000) != 0x808000 || (v & 0xff) - 0xe1 >= 0x0f ||
			    (v & 0xff) == 0xed)
				break;
			p += 3;
		}
		if (p == end || *p < 0x80)
			continue;
		if ((n = util_utf8_seq(p, end)) == 0) {
			*i = (size_t)(p - b);
			return "invalid UTF-8";
		}
		p += n;
	}
	*i = (size_t)(p - b) + 1;
	return NULL;
 cut:
	*i = len;
	return "unterminated string";
}

/* A number at *i (RFC 8259 §6, any magnitude); *integer: no fraction or exponent. */
static const char *
codec_scan_number(const unsigned char *b, size_t len, size_t *i, int *integer)
{
	size_t	p = *i;

	*integer = 1;
	if (p < len && b[p] == '-')
		p++;
	/*
	 * Python's json reads NaN, Infinity and -Infinity as numbers (a frame
	 * with one is a chat turn to a Python backend); JSON.parse refuses them.
	 */
	if (len - p >= 8 && memcmp(b + p, "Infinity", 8) == 0) {
		*integer = 0;
		*i = p + 8;
		return NULL;
	}
	if (p == *i && len - p >= 3 && memcmp(b + p, "NaN", 3) == 0) {
		*integer = 0;
		*i = p + 3;
		return NULL;
	}
	if (p < len && b[p] == '0')
		p++;
	else if (p < len && b[p] >= '1' && b[p] <= '9')
		while (p < len && b[p] >= '0' && b[p] <= '9')
			p++;
	else
		goto bad;
	if (p < len && b[p] == '.') {
		*integer = 0;
		if (++p >= len || b[p] < '0' || b[p] > '9')
			goto bad;
		while (p < len && b[p] >= '0' && b[p] <= '9')
			p++;
	}
	if (p < len && (b[p] == 'e' || b[p] == 'E')) {
		*integer = 0;
		if (++p < len && (b[p] == '+' || b[p] == '-'))
			p++;
		if (p >= len || b[p] < '0' || b[p] > '9')
			goto bad;
		while (p < len && b[p] >= '0' && b[p] <= '9')
			p++;
	}
	*i = p;
	return NULL;
 bad:
	*i = p;
	return "invalid number";
}

/*
 * Unescapes the string bytes [s, e) (checked by codec_scan_string) into
 * out, NUL-terminated; a lone surrogate becomes U+FFFD. The length, or
 * (size_t)-1 on ENOMEM.
 */
static size_t
codec_unescape(const unsigned char *s, const unsigned char *e, struct codec_buf *out)
{
	char		*d;
	uint32_t	 cp, lo;

	/* escapes only shrink: a lone surrogate's six-byte \u escape gives three bytes */
	if (codec_buf_reserve(out, (size_t)(e - s) + 1) == -1)
		return (size_t)-1;
	d = out->s;
	while (s < e) {
		if (*s != '\\') {
			*d++ = (char)*s++;
			continue;
		}
		switch (s[1]) {
		case 'b': *d++ = '\b'; break;
		case 'f': *d++ = '\f'; break;
		case 'n': *d++ = '\n'; break;
		case 'r': *d++ = '\r'; break;
		case 't': *d++ = '\t'; break;
		case 'u':
			(void)util_hex4((const char *)s + 2, &cp);
			s += 6;
			if (cp >= 0xd800 && cp <= 0xdbff && e - s >= 6 &&
			    s[0] == '\\' && s[1] == 'u' &&
			    util_hex4((const char *)s + 2, &lo) == 0 &&
			    lo >= 0xdc00 && lo <= 0xdfff) {
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				s += 6;
			} else if (cp >= 0xd800 && cp <= 0xdfff)
				cp = 0xfffd;
			if (cp < 0x80)
				*d++ = (char)cp;
			else if (cp < 0x800) {
				*d++ = (char)(0xc0 | cp >> 6);
				*d++ = (char)(0x80 | (cp & 0x3f));
			} else if (cp < 0x10000) {
				*d++ = (char)(0xe0 | cp >> 12);
				*d++ = (char)(0x80 | (cp >> 6 & 0x3f));
				*d++ = (char)(0x80 | (cp & 0x3f));
			} else {
				*d++ = (char)(0xf0 | cp >> 18);
				*d++ = (char)(0x80 | (cp >> 12 & 0x3f));
				*d++ = (char)(0x80 | (cp >> 6 & 0x3f));
				*d++ = (char)(0x80 | (cp & 0x3f));
			}
			continue;
		default: *d++ = (char)s[1]; break;	/* " \ / */
		}
		s += 2;
	}
	*d = '\0';
	return (size_t)(d - out->s);
}

/* The pointers of mask whose token at depth d names object key [k, ke). */
static unsigned
codec_key_mask(struct codec *c, unsigned mask, size_t d, const unsigned char *k,
    const unsigned char *ke, int esc, int *oom)
{
	const struct codec_tok	*t;
	const char		*key = (const char *)k;
	size_t			 klen = (size_t)(ke - k), p;
	unsigned		 m = 0;

	if (mask == 0)
		return 0;
	if (esc) {
		if ((klen = codec_unescape(k, ke, &c->key)) == (size_t)-1) {
			*oom = 1;
			return 0;
		}
		key = c->key.s;
	}
	for (; mask != 0; mask &= mask - 1) {
		p = (size_t)__builtin_ctz(mask);
		t = &c->ptr[p].tok[d];
		if (t->len == klen && (klen == 0 || (t->s[0] == key[0] &&
		    memcmp(t->s, key, klen) == 0)))
			m |= 1u << p;
	}
	return m;
}

/* The pointers of mask whose token at depth d is array index i. */
static unsigned
codec_index_mask(const struct codec *c, unsigned mask, size_t d, size_t i)
{
	const struct codec_tok	*t;
	size_t			 p;
	unsigned		 m = 0;

	for (p = 0; mask != 0 && p < CODEC_NPTR; p++) {
		if (!(mask & 1u << p))
			continue;
		t = &c->ptr[p].tok[d];
		if (t->is_index && t->index == i)
			m |= 1u << p;
	}
	return m;
}

/* Of mask, the pointers with more than d tokens: those that go below depth d. */
static unsigned
codec_deeper(const struct codec *c, unsigned mask, size_t d)
{
	size_t		p;
	unsigned	m = 0;

	for (p = 0; mask != 0 && p < CODEC_NPTR; p++)
		if ((mask & 1u << p) && c->ptr[p].ntok > d)
			m |= 1u << p;
	return m;
}

static int
codec_push(struct codec *c, size_t depth, int obj, unsigned mask)
{
	struct codec_level	*n;
	size_t			 cap;

	if (depth == c->stackcap) {
		cap = c->stackcap ? 2 * c->stackcap : 64;
		if ((n = realloc(c->stack, cap * sizeof(*n))) == NULL)
			return -1;
		c->stack = n;
		c->stackcap = cap;
	}
	c->stack[depth].obj = (unsigned char)obj;
	c->stack[depth].mask = (unsigned char)mask;
	c->stack[depth].index = 0;
	return 0;
}

#define CODEC_WS(b, len, i) \
	while ((i) < (len) && ((b)[i] == ' ' || (b)[i] == '\t' || \
	    (b)[i] == '\n' || (b)[i] == '\r')) (i)++

/* Records, for the pointers of mask that end at depth d, a value of type t. */
static void
codec_record(struct codec *c, unsigned mask, size_t d, enum codec_jtype t,
    size_t start, size_t end, int esc, int integer)
{
	size_t	p;

	for (p = 0; mask != 0 && p < CODEC_NPTR; p++)
		if ((mask & 1u << p) && c->ptr[p].ntok == d) {
			c->val[p].type = t;
			c->val[p].start = start;
			c->val[p].end = end;
			c->val[p].esc = esc;
			c->val[p].integer = integer;
		}
}

/*
 * Scans the whole frame; c->val[p] is where pointer p's value lies (type
 * CODEC_J_NONE: absent) and *root the type of the frame's value. NULL, or
 * the reason it is not JSON with the offset in *at ("out of memory" when
 * a buffer could not grow).
 */
static const char *
codec_scan(struct codec *c, const unsigned char *b, size_t len, size_t *at,
    enum codec_jtype *root)
{
	const char	*why;
	size_t		 i = 0, d = 0, p, ks;
	unsigned	 here = 0;	/* the pointers whose path leads to this value */
	int		 esc, integer, oom = 0;
	enum codec_jtype t;

	for (p = 0; p < CODEC_NPTR; p++) {
		c->val[p].type = CODEC_J_NONE;
		if (c->ptr[p].ntok > 0)
			here |= 1u << p;	/* every path starts at the root */
	}
	CODEC_WS(b, len, i);
 value:
	if (i >= len) {
		why = "unexpected end of input";
		goto bad;
	}
	/* a later duplicate key replaces all that the earlier one held */
	for (p = 0; here != 0 && p < CODEC_NPTR; p++)
		if (here & 1u << p)
			c->val[p].type = CODEC_J_NONE;
	ks = i;
	esc = integer = 0;
	switch (b[i]) {
	case '{':
	case '[':
		t = b[i] == '{' ? CODEC_J_OBJECT : CODEC_J_ARRAY;
		codec_record(c, here, d, t, i, i, 0, 0);
		if (codec_push(c, d, t == CODEC_J_OBJECT, codec_deeper(c, here, d)) == -1)
			goto oom;
		d++;
		i++;
		CODEC_WS(b, len, i);
		if (i < len && b[i] == (t == CODEC_J_OBJECT ? '}' : ']')) {
			i++;
			d--;
			goto after;
		}
		if (t == CODEC_J_OBJECT)
			goto key;
		here = codec_index_mask(c, c->stack[d - 1].mask, d - 1, 0);
		goto value;
	case '"':
		if ((why = codec_scan_string(b, len, &i, &esc)) != NULL)
			goto bad;
		t = CODEC_J_STRING;
		codec_record(c, here, d, t, ks + 1, i - 1, esc, 0);
		goto after;
	case 't':
	case 'f':
	case 'n':
		t = b[i] == 't' ? CODEC_J_TRUE : b[i] == 'f' ? CODEC_J_FALSE :
		    CODEC_J_NULL;
		p = t == CODEC_J_FALSE ? 5 : 4;
		if (len - i < p || memcmp(b + i, t == CODEC_J_TRUE ? "true" :
		    t == CODEC_J_FALSE ? "false" : "null", p) != 0) {
			why = "invalid literal";
			goto bad;
		}
		i += p;
		codec_record(c, here, d, t, ks, i, 0, 0);
		goto after;
	default:
		if ((why = codec_scan_number(b, len, &i, &integer)) != NULL)
			goto bad;
		t = CODEC_J_NUMBER;
		codec_record(c, here, d, t, ks, i, 0, integer);
		goto after;
	}
 key:
	/* inside an object at depth d - 1: "key" : value */
	if (i >= len || b[i] != '"') {
		why = i >= len ? "unexpected end of input" : "a key (a string) expected";
		goto bad;
	}
	ks = i;
	if ((why = codec_scan_string(b, len, &i, &esc)) != NULL)
		goto bad;
	here = codec_key_mask(c, c->stack[d - 1].mask, d - 1, b + ks + 1, b + i - 1,
	    esc, &oom);
	if (oom)
		goto oom;
	CODEC_WS(b, len, i);
	if (i >= len || b[i] != ':') {
		why = "':' expected";
		goto bad;
	}
	i++;
	CODEC_WS(b, len, i);
	goto value;
 after:
	/* after a value of type t: the end, or what its container says next */
	CODEC_WS(b, len, i);
	if (d == 0) {
		if (i != len) {
			why = "end of input expected";
			goto bad;
		}
		*root = t;
		return NULL;
	}
	if (i < len && b[i] == ',') {
		i++;
		CODEC_WS(b, len, i);
		if (c->stack[d - 1].obj)
			goto key;
		here = codec_index_mask(c, c->stack[d - 1].mask, d - 1,
		    ++c->stack[d - 1].index);
		goto value;
	}
	if (i < len && b[i] == (c->stack[d - 1].obj ? '}' : ']')) {
		i++;
		d--;
		t = c->stack[d].obj ? CODEC_J_OBJECT : CODEC_J_ARRAY;
		goto after;
	}
	why = i >= len ? "unexpected end of input" : c->stack[d - 1].obj ?
	    "',' or '}' expected" : "',' or ']' expected";
	goto bad;
 oom:
	*at = i;
	return "out of memory";
 bad:
	*at = i;
	return why;
}

/* The string value of pointer p, unescaped into c->out[p]; -1 on ENOMEM. */
static int
codec_string(struct codec *c, size_t p, const char *buf, const char **s,
    size_t *len)
{
	const struct codec_val	*v = &c->val[p];
	const unsigned char	*b = (const unsigned char *)buf;

	if (!v->esc) {
		/* the frame's own bytes, copied so that they end with a NUL */
		if (codec_buf_reserve(&c->out[p], v->end - v->start + 1) == -1)
			return -1;
		memcpy(c->out[p].s, buf + v->start, v->end - v->start);
		c->out[p].s[v->end - v->start] = '\0';
		*len = v->end - v->start;
	} else if ((*len = codec_unescape(b + v->start, b + v->end,
	    &c->out[p])) == (size_t)-1)
		return -1;
	*s = c->out[p].s;
	return 0;
}

/*
 * An id at pointer p, a string or a number: a whole number within 64 bits
 * is written as C writes an integer (-0 and 7.0 and 7e0 are 0 and 7, as
 * JSON.parse reads them), any other number as it was sent, so that 7 and
 * "7" name the same conversation or shop. Every number is an id: a frame
 * whose conversation the backend can read is never relayed unread. 0; 1
 * when absent or of another type; -1 on ENOMEM. The text is in c->out[p],
 * reused per frame.
 */
static int
codec_id(struct codec *c, size_t p, const char *buf, const char **s,
    size_t *slen)
{
	const struct codec_val	*v = &c->val[p];
	struct codec_buf	*o = &c->out[p];
	char			*end;
	long long		 n;
	double			 d;
	size_t			 len = v->end - v->start;

	if (v->type == CODEC_J_STRING)
		return codec_string(c, p, buf, s, slen);
	if (v->type != CODEC_J_NUMBER)
		return 1;
	/* room for the literal or for any long long, whichever is longer */
	if (codec_buf_reserve(o, (len > 20 ? len : 20) + 1) == -1)
		return -1;
	memcpy(o->s, buf + v->start, len);
	o->s[len] = '\0';
	errno = 0;
	if (v->integer) {
		n = strtoll(o->s, &end, 10);
		if (errno == 0 && *end == '\0')
			len = (size_t)snprintf(o->s, o->cap, "%lld", n);
	} else {
		/* NaN fails every comparison; 2^63 is not a long long */
		d = strtod(o->s, &end);
		if (*end == '\0' && d >= -9223372036854775808.0 &&
		    d < 9223372036854775808.0 && (double)(long long)d == d)
			len = (size_t)snprintf(o->s, o->cap, "%lld", (long long)d);
	}
	*s = o->s;
	*slen = len;
	return 0;
}

#define CODEC_STR_(x)	#x
#define CODEC_STR(x)	CODEC_STR_(x)

/* A conversation is an id (codec_id). NULL, or why not; "out of memory" too. */
static const char *
codec_conversation(struct codec *c, const char *buf, struct codec_frame *out)
{
	if (c->val[CODEC_P_CONV].type == CODEC_J_NONE)
		return "conversation missing";
	switch (codec_id(c, CODEC_P_CONV, buf, &out->conversation,
	    &out->conversation_len)) {
	case 0:
		return out->conversation_len > CODEC_CONV_MAX ?
		    "conversation longer than " CODEC_STR(CODEC_CONV_MAX) " bytes" :
		    NULL;
	case 1:
		return "conversation is not a string or a number";
	default:
		return "out of memory";
	}
}

/*
 * The optional shop or queue id at pointer p: absent when not configured,
 * not in the frame, empty, of another type, or not copied for want of
 * memory (the turn is still a turn; it falls back to the session's).
 */
static void
codec_opt_id(struct codec *c, size_t p, const char *buf, const char **s,
    size_t *len)
{
	if (c->ptr[p].ntok == 0 || codec_id(c, p, buf, s, len) != 0 ||
	    *len == 0) {
		*s = NULL;
		*len = 0;
	}
}

/* A robot's reply: true, a non-zero number or a non-empty string. */
static int
codec_robot(const struct codec *c, const char *buf)
{
	const struct codec_val	*v = &c->val[CODEC_P_ROBOT];
	size_t			 i;

	if (v->type == CODEC_J_TRUE)
		return 1;
	if (v->type == CODEC_J_STRING)
		return v->end > v->start;
	if (v->type != CODEC_J_NUMBER)
		return 0;
	/*
	 * zero when every digit before the exponent is 0; Infinity is not
	 * zero, NaN is taken as zero (JSON.parse's falsy, Python's truthy: a
	 * round counted rather than one missed)
	 */
	for (i = v->start; i < v->end && buf[i] != 'e' && buf[i] != 'E'; i++)
		if ((buf[i] >= '1' && buf[i] <= '9') || buf[i] == 'I')
			return 1;
	return 0;
}

/*
 * The hot path: one scan, then only the fields it names are copied out;
 * the previous frame's strings are overwritten here, as the header says.
 */
enum codec_kind
codec_decode(struct codec *c, const char *buf, size_t len,
    struct codec_frame *out)
{
	enum codec_jtype	 root;
	const char		*why;
	size_t			 at;
	int			 is_msg;

	memset(out, 0, sizeof(*out));
	if (buf == NULL)
		buf = "";
	if ((why = codec_scan(c, (const unsigned char *)buf, len, &at, &root)) != NULL) {
		if (strcmp(why, "out of memory") == 0)
			out->why = why;
		else {
			snprintf(c->why, sizeof(c->why), "invalid JSON: %s at offset %zu",
			    why, at);
			out->why = c->why;
		}
		return CODEC_INVALID;
	}
	if (root != CODEC_J_OBJECT) {
		out->why = "not a JSON object";
		return CODEC_INVALID;
	}
	if (!c->own_is_type && c->val[CODEC_P_OWN].type == CODEC_J_STRING &&
	    codec_string(c, CODEC_P_OWN, buf, &out->own_type,
	    &out->own_type_len) == -1) {
		out->own_type = NULL;
		out->own_type_len = 0;
		out->why = "out of memory";
		return CODEC_INVALID;
	}
	if (c->val[CODEC_P_TYPE].type != CODEC_J_STRING)
		return CODEC_OTHER;
	if (codec_string(c, CODEC_P_TYPE, buf, &out->type, &out->type_len) == -1) {
		out->type = NULL;
		out->type_len = 0;
		out->own_type = NULL;
		out->own_type_len = 0;
		out->why = "out of memory";
		return CODEC_INVALID;
	}
	if (c->own_is_type) {
		out->own_type = out->type;
		out->own_type_len = out->type_len;
	}
	/* A type listed in both is a message: a turn carries more than an end. */
	if (codec_names_has(c->msg, c->nmsg, out->type, out->type_len))
		is_msg = 1;
	else if (codec_names_has(c->end, c->nend, out->type, out->type_len))
		is_msg = 0;
	else
		return CODEC_OTHER;

	if ((why = codec_conversation(c, buf, out)) != NULL)
		goto malformed;
	/* an end too: it may be the first frame seen of its conversation */
	codec_opt_id(c, CODEC_P_SHOP, buf, &out->shop, &out->shop_len);
	codec_opt_id(c, CODEC_P_QUEUE, buf, &out->queue, &out->queue_len);
	if (!is_msg)
		return CODEC_END;
	if (c->val[CODEC_P_TEXT].type == CODEC_J_NONE) {
		why = "text missing";
		goto malformed;
	}
	if (c->val[CODEC_P_TEXT].type != CODEC_J_STRING) {
		why = "text is not a string";
		goto malformed;
	}
	if (codec_string(c, CODEC_P_TEXT, buf, &out->text, &out->text_len) == -1) {
		why = "out of memory";
		goto malformed;
	}
	out->robot = c->has_robot && codec_robot(c, buf);
	/* a nickname that is no string, or cannot be copied, is simply absent */
	if (c->val[CODEC_P_NICK].type == CODEC_J_STRING &&
	    codec_string(c, CODEC_P_NICK, buf, &out->nick, &out->nick_len) == -1) {
		out->nick = NULL;
		out->nick_len = 0;
	}
	return CODEC_TURN;

 malformed:
	out->conversation = NULL;
	out->conversation_len = 0;
	out->text = NULL;
	out->shop = out->queue = NULL;
	out->shop_len = out->queue_len = 0;
	out->why = why;
	return CODEC_MALFORMED;
}

const char *
codec_conversation_id(struct codec *c, const char *buf, size_t len,
    const char **conv, size_t *conv_len)
{
	struct codec_frame	 f;
	enum codec_jtype	 root;
	const char		*why;
	size_t			 at;

	memset(&f, 0, sizeof(f));
	if ((why = codec_scan(c, (const unsigned char *)buf, len, &at,
	    &root)) != NULL)
		return strcmp(why, "out of memory") == 0 ? why : "invalid JSON";
	if (root != CODEC_J_OBJECT)
		return "not a JSON object";
	if ((why = codec_conversation(c, buf, &f)) != NULL)
		return why;
	*conv = f.conversation;
	*conv_len = f.conversation_len;
	return NULL;
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
