/* bench_sla: a million open rounds: memory per round, sla_turn cost, deadline heap cost (Markdown out). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chatmon/dueheap.h"
#include "chatmon/sla.h"
#include "chatmon/util.h"

/*
 * What the daemon holds per timed conversation: the engine's record (with
 * its share of the hash table) and slaclock's record, which holds the
 * conversation's place in the deadline heap (allocated the same way here),
 * plus the heap's pointer to it. Memory is the growth of the resident set
 * (/proc/self/statm) divided by the count; times are CLOCK_MONOTONIC over
 * the whole loop divided by the count.
 */

#define IDLEN	16			/* "conv-00000000001": a realistic id */
#define NAGENTS	200

struct link_rec {			/* the size of slaclock.c's per-conversation record */
	void			*clk, *conv;
	struct dueheap_node	 due;
	void			*peer;
	int			 overdue;
	void			*prev, *next;
};

static size_t	 fired;

static double
now_s(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long
rss_bytes(void)
{
	FILE	*f = fopen("/proc/self/statm", "r");
	long	 size = 0, res = 0;

	if (f == NULL)
		return 0;
	if (fscanf(f, "%ld %ld", &size, &res) != 2)
		res = 0;
	fclose(f);
	return res * sysconf(_SC_PAGESIZE);
}

static void
emit_count(const struct sla_event *e, void *arg)
{
	(void)e;
	(void)arg;
	fired++;
}

static void
row(const char *what, size_t n, double secs)
{
	printf("| %s | %zu | %.0f |\n", what, n, secs * 1e9 / (double)n);
}

int
main(int argc, char **argv)
{
	size_t			 n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000, i;
	struct sla_config	 cfg;
	struct sla		*s;
	struct sla_conv		**convs;
	struct link_rec		**links;
	struct dueheap		 heap;
	size_t			*perm;
	char			*ids, agents[NAGENTS][16];
	long			 r0, r1, r2, r3;
	int64_t			 t0 = 1795341600000LL;
	double			 a, b;
	size_t			 open_rounds;

	if (n == 0)
		return 2;
	memset(&cfg, 0, sizeof(cfg));
	cfg.first_response_ms = 15000;
	cfg.reply_ms = 30000;
	cfg.warn_at = 0.8;
	cfg.escalate_ms = 180000;
	cfg.idle_ms = 1800000;
	cfg.cap_ms = 600000;
	cfg.rate_ms = 180000;
	cfg.utc_offset_min = 480;

	/* the inputs are made before the first measure: not counted */
	if ((ids = malloc(n * (IDLEN + 1))) == NULL ||
	    (convs = calloc(n, sizeof(*convs))) == NULL ||
	    (links = calloc(n, sizeof(*links))) == NULL ||
	    (perm = calloc(n, sizeof(*perm))) == NULL) {
		fprintf(stderr, "bench_sla: out of memory\n");
		return 1;
	}
	if (n > 99999999999ULL)
		return 2;
	for (i = 0; i < n; i++)
		snprintf(ids + i * (IDLEN + 1), IDLEN + 1, "conv-%011u",
		    (unsigned)(i % 4000000000u));
	for (i = 0; i < NAGENTS; i++)
		snprintf(agents[i], sizeof(agents[i]), "agent-%03u", (unsigned)i);
	/* a fixed shuffle: the order deadlines move in when hours move them */
	for (i = 0; i < n; i++)
		perm[i] = i;
	for (i = n - 1; i > 0; i--) {
		size_t	j = (size_t)(((uint64_t)i * 2654435761u + 12345) % (i + 1)), t;

		t = perm[i];
		perm[i] = perm[j];
		perm[j] = t;
	}
	if ((s = sla_new(&cfg, emit_count, NULL, NULL)) == NULL)
		return 1;
	dueheap_init(&heap);

	printf("## SLA engine and timers: %zu open rounds\n\n", n);
	printf("| operation | ops | ns/op |\n|---|---:|---:|\n");

	/* one customer turn each: a conversation is made and its round opens */
	r0 = rss_bytes();
	a = now_s();
	for (i = 0; i < n; i++)
		if ((convs[i] = sla_turn(s, ids + i * (IDLEN + 1), IDLEN,
		    agents[i % NAGENTS], NULL, NULL, 1, 1, t0)) == NULL)
			return 1;
	b = now_s();
	r1 = rss_bytes();
	open_rounds = sla_open_rounds(s);
	row("`sla_turn`, new conversation, round opens", n, b - a);

	a = now_s();
	for (i = 0; i < n; i++)
		(void)sla_find(s, ids + i * (IDLEN + 1), IDLEN);
	row("`sla_find`", n, now_s() - a);

	a = now_s();
	for (i = 0; i < n; i++)
		(void)sla_turn(s, ids + i * (IDLEN + 1), IDLEN,
		    agents[i % NAGENTS], NULL, NULL, 1, 1, t0 + 1000);
	row("`sla_turn`, customer again (burst, round already open)", n, now_s() - a);

	a = now_s();
	for (i = 0; i < n; i++)
		(void)sla_conv_deadline(convs[i]);
	row("`sla_conv_deadline`", n, now_s() - a);

	a = now_s();
	for (i = 0; i < n; i++)
		(void)sla_turn(s, ids + i * (IDLEN + 1), IDLEN,
		    agents[i % NAGENTS], NULL, NULL, 0, 1, t0 + 5000);
	row("`sla_turn`, agent reply closes the round", n, now_s() - a);

	a = now_s();
	for (i = 0; i < n; i++)
		(void)sla_turn(s, ids + i * (IDLEN + 1), IDLEN,
		    agents[i % NAGENTS], NULL, NULL, 1, 1, t0 + 10000);
	row("`sla_turn`, customer opens a later round", n, now_s() - a);

	fired = 0;
	a = now_s();
	for (i = 0; i < n; i++)
		(void)sla_expire(s, convs[i], t0 + 10000 + 24000);
	row("`sla_expire`, the warn fires", n, now_s() - a);
	if (fired != n) {
		fprintf(stderr, "bench_sla: %zu warnings fired, expected %zu\n", fired, n);
		return 1;
	}

	/* slaclock's records, each conversation's deadline in the heap */
	r2 = rss_bytes();
	for (i = 0; i < n; i++)
		if ((links[i] = calloc(1, sizeof(*links[i]))) == NULL)
			return 1;
	/* deadlines as turns set them: each later than those before */
	a = now_s();
	for (i = 0; i < n; i++)
		if (dueheap_set(&heap, &links[i]->due, t0 + 12000 + (int64_t)i) == -1)
			return 1;
	row("`dueheap_set`, a deadline after the others (a turn's)", n, now_s() - a);
	r3 = rss_bytes();
	/* the warn fires and the same conversation waits for its breach */
	a = now_s();
	for (i = 0; i < n; i++)
		(void)dueheap_set(&heap, &links[i]->due, t0 + 15000 + (int64_t)i);
	row("`dueheap_set`, the earliest moved later (a warn fired)", n, now_s() - a);
	/* distinct deadlines in no order, as when service hours move them */
	a = now_s();
	for (i = 0; i < n; i++)
		(void)dueheap_set(&heap, &links[perm[i]]->due,
		    t0 + 24000 + (int64_t)((perm[i] * 7919) % 5000000));
	row("`dueheap_set`, a deadline moved anywhere", n, now_s() - a);
	a = now_s();
	for (i = 0; i < n; i++)
		dueheap_del(&heap, &links[perm[i]]->due);
	row("`dueheap_del`, anywhere (a conversation ends)", n, now_s() - a);

	a = now_s();
	for (i = 0; i < n; i++)
		sla_end(s, convs[i], t0 + 60000);
	row("`sla_end` (frees the conversation)", n, now_s() - a);

	printf("\n| memory per open round | bytes |\n|---|---:|\n");
	printf("| SLA engine (record, id, hash table), %zu open | %.1f |\n",
	    open_rounds, (double)(r1 - r0) / (double)n);
	printf("| slaclock's record with its place in the deadline heap | %.1f |\n",
	    (double)(r3 - r2) / (double)n);
	printf("| daemon total | %.1f |\n",
	    (double)(r1 - r0 + r3 - r2) / (double)n);

	for (i = 0; i < n; i++)
		free(links[i]);
	dueheap_free(&heap);
	sla_free(s);
	free(perm);
	free(links);
	free(convs);
	free(ids);
	return 0;
}
