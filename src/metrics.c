/* metrics: the daemon's counters and gauges in one plain struct, rendered as text (pure; no I/O). */
#include <inttypes.h>

#include "chatmon/metrics.h"

int
metrics_format_line(const struct metrics *m, struct sbuf *out)
{
	const char	*sep = "";

#define METRICS_LINE(name, kind, help)					\
	if (sbuf_printf(out, "%s" #name "=%" PRIu64, sep, m->name) == -1) \
		return -1;						\
	sep = " ";
	METRICS_FIELDS(METRICS_LINE)
#undef METRICS_LINE
	return 0;
}

int
metrics_format_prometheus(const struct metrics *m, struct sbuf *out)
{
	/* counters get the conventional _total suffix */
#define METRICS_PROM(name, kind, help)					\
	if (sbuf_printf(out, "# HELP chatmon_%s%s %s\n# TYPE chatmon_%s%s %s\n" \
	    "chatmon_%s%s %" PRIu64 "\n",					\
	    #name, metrics_suffix(#kind), help,				\
	    #name, metrics_suffix(#kind), #kind,				\
	    #name, metrics_suffix(#kind), m->name) == -1)		\
		return -1;
#define metrics_suffix(kind) (kind[0] == 'c' ? "_total" : "")
	METRICS_FIELDS(METRICS_PROM)
#undef metrics_suffix
#undef METRICS_PROM
	return 0;
}
