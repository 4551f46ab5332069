/* jsonw: writing JSON with jansson into an sbuf, the way every JSON writer of chatmon does it (pure). */
#ifndef CHATMON_JSONW_H
#define CHATMON_JSONW_H

#include <jansson.h>

#include "chatmon/util.h"

/*
 * Appends o compactly, keys in insertion order, UTF-8 as is, and drops the
 * reference (o may be NULL: a failed json_pack). 0, or -1 on ENOMEM.
 */
int	jsonw_dump(struct sbuf *out, json_t *o);

#endif
