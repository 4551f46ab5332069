/* jsonw: writing JSON with jansson into an sbuf, the way every JSON writer of chatmon does it (pure). */
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
