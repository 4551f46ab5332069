/* jsonw: writing JSON into an sbuf, the way every JSON writer of chatmon does it (pure). */
#include <stdlib.h>
#include <string.h>

#include "chatmon/jsonw.h"

int
jsonw_dump(struct sbuf *out, json_t *o)
{
	char	*s;
	int	 rc = -1;

	if (o == NULL)
		return -1;
	if ((s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER |
	    JSON_REAL_PRECISION(10))) != NULL)
		rc = sbuf_append(out, s, strlen(s));
	free(s);
	json_decref(o);
	return rc;
}

int
jsonw_str(struct sbuf *out, const char *s, size_t len)
{
	static const char	 hex[] = "0123456789ABCDEF";
	const unsigned char	*p = (const unsigned char *)s, *end = p + len, *run;
	char			 esc[6] = { '\\', 'u', '0', '0', 0, 0 };
	size_t			 n;
	int			 rc;

	if (sbuf_append(out, "\"", 1) == -1)
		return -1;
	while (p < end) {
		/* a run that needs no escape goes in as it is */
		for (run = p; p < end; p += n) {
			if (*p < 0x80)
				n = *p >= 0x20 && *p != '"' && *p != '\\';
			else
				n = util_utf8_seq(p, end);
			if (n == 0)
				break;
		}
		if (p > run && sbuf_append(out, (const char *)run, (size_t)(p - run)) == -1)
			return -1;
		if (p == end)
			break;
		switch (*p) {
		case '"':  rc = sbuf_append(out, "\\\"", 2); break;
		case '\\': rc = sbuf_append(out, "\\\\", 2); break;
		case '\b': rc = sbuf_append(out, "\\b", 2); break;
		case '\f': rc = sbuf_append(out, "\\f", 2); break;
		case '\n': rc = sbuf_append(out, "\\n", 2); break;
		case '\r': rc = sbuf_append(out, "\\r", 2); break;
		case '\t': rc = sbuf_append(out, "\\t", 2); break;
		default:
			if (*p < 0x20) {
				esc[4] = hex[*p >> 4];
				esc[5] = hex[*p & 0xf];
				rc = sbuf_append(out, esc, sizeof(esc));
			} else	/* not UTF-8 */
				rc = sbuf_append(out, "\xef\xbf\xbd", 3);
		}
		if (rc == -1)
			return -1;
		p++;
	}
	return sbuf_append(out, "\"", 1);
}

int
jsonw_key(struct sbuf *out, const char *key, int first)
{
	if (!first && sbuf_append(out, ",", 1) == -1)
		return -1;
	return sbuf_append(out, "\"", 1) == -1 ||
	    sbuf_append(out, key, strlen(key)) == -1 ||
	    sbuf_append(out, "\":", 2) == -1 ? -1 : 0;
}

const char *
jsonw_cstr(const json_t *o, const char *key)
{
	const json_t	*v = json_object_get(o, key);
	const char	*s = json_string_value(v);

	return s != NULL && strlen(s) == json_string_length(v) ? s : NULL;
}
