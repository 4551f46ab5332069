/* metrics: the daemon's counters and gauges in one plain struct, rendered as text (pure; no I/O). */
#include <inttypes.h>
#include <string.h>

#include "chatmon/metrics.h"

int
metrics_format_line(const struct metrics *m, struct sbuf *out)
{
	const char	*sep = "";

#define METRICS_LINE(name, kind, prom, labels, scale, help)		\
	if (sbuf_printf(out, "%s" #name "=%" PRIu64, sep, m->name) == -1) \
		return -1;						\
	sep = " ";
	METRICS_FIELDS(METRICS_LINE)
#undef METRICS_LINE
	return 0;
}

/* One exported series: the table, flattened. */
struct metrics_series {
	const char	*kind, *name, *labels, *help;
	double		 scale;
	size_t		 off;
};

static const struct metrics_series metrics_series[] = {
#define METRICS_ROW(field, kind, prom, labels, scale, help)		\
	{ #kind, prom, labels, help, scale, offsetof(struct metrics, field) },
	METRICS_FIELDS(METRICS_ROW)
#undef METRICS_ROW
};

/*
 * Several fields may be one metric with labels (messages_total{direction}):
 * HELP and TYPE go once, before the first of them, and the rest follow it
 * wherever they stand in the table.
 */
int
metrics_format_prometheus(const struct metrics *m, struct sbuf *out)
{
	const size_t	n = sizeof(metrics_series) / sizeof(metrics_series[0]);
	size_t		i, k;
	uint64_t	v;
	int		seen;

	for (i = 0; i < n; i++) {
		const struct metrics_series *s = &metrics_series[i];

		if (s->name[0] == '\0')
			continue;
		for (k = 0, seen = 0; k < i && !seen; k++)
			seen = strcmp(metrics_series[k].name, s->name) == 0;
		if (seen)
			continue;
		if (sbuf_printf(out, "# HELP chatmon_%s %s\n# TYPE chatmon_%s %s\n",
		    s->name, s->help, s->name, s->kind) == -1)
			return -1;
		for (k = i; k < n; k++) {
			const struct metrics_series *t = &metrics_series[k];

			if (strcmp(t->name, s->name) != 0)
				continue;
			memcpy(&v, (const char *)m + t->off, sizeof(v));
			if ((t->scale == 1 ? sbuf_printf(out, "chatmon_%s%s%s%s %" PRIu64 "\n",
			    t->name, t->labels[0] ? "{" : "", t->labels,
			    t->labels[0] ? "}" : "", v) :
			    sbuf_printf(out, "chatmon_%s%s%s%s %.6f\n", t->name,
			    t->labels[0] ? "{" : "", t->labels, t->labels[0] ? "}" : "",
			    (double)v / t->scale)) == -1)
				return -1;
		}
	}
	return 0;
}
