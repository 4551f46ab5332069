/* jsonw: writing JSON into an sbuf, the way every JSON writer of chatmon does it (pure). */
#ifndef CHATMON_JSONW_H
#define CHATMON_JSONW_H

#include <jansson.h>

#include "chatmon/util.h"

/*
 * Appends o compactly, keys in insertion order, UTF-8 as is, and drops the
 * reference (o may be NULL: a failed json_pack). 0, or -1 on ENOMEM.
 */
int	jsonw_dump(struct sbuf *out, json_t *o);

/*
 * Appends len bytes of s as a JSON string, quotes included, escaped the way
 * jsonw_dump escapes (", \, control characters; \u00XX in upper-case hex;
 * the rest of UTF-8 as it is), so that a writer without a document gives
 * the same bytes. A byte that is not part of well-formed UTF-8 becomes
 * U+FFFD. 0, or -1 on ENOMEM.
 */
int	jsonw_str(struct sbuf *out, const char *s, size_t len);

/*
 * Reading, the other way: o's member key when it is a string that a C
 * string can stand for, else NULL. A string that holds U+0000 cannot:
 * strcmp would take it for the shorter id before the U+0000 (an alert of
 * conversation "c1\u0000" for conversation "c1"), so it names nothing.
 */
const char *jsonw_cstr(const json_t *o, const char *key);

/* Appends ,"key": (no comma when first): key is a literal that needs no escape. */
int	jsonw_key(struct sbuf *out, const char *key, int first);

#endif
