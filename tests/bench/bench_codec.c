/* bench_codec: the codec against the way it read frames before (a jansson document and three lookups), in one run (Markdown out). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "chatmon/codec.h"
#include "chatmon/config.h"
#include "chatmon/util.h"

/*
 * Frames as a chat backend sends them: a customer's turn of about 150
 * bytes of Chinese, a longer agent reply with escapes, a typing frame
 * (not a turn) and an end. The baseline is what codec.c did until
 * 2026-12-04: json_loadb, the pointers looked up in the document,
 * json_decref. Wall clock: best of 7 runs of 0.3 s; `--passes N --mode M`
 * runs one mode N times over the frames for callgrind (bench target).
 */

static const char *const frames[] = {
	"{\"type\":\"message\",\"conversation\":\"tb-2026120400017\",\"id\":\"m-88213\","
	"\"ts\":1796342400123,\"text\":\"亲，您好，这款保温杯是304不锈钢的，"
	"保温效果六到八小时，今天下单明天就能发货哦\"}",
	"{\"type\":\"message\",\"conversation\":\"tb-2026120400018\",\"id\":\"m-88214\","
	"\"text\":\"\\u4eb2\\uff0c\\u8fd9\\u8fb9\\u5e2e\\u60a8\\u5907\\u6ce8\\u4e86 "
	"\\\"\\u7c89\\u8272+\\u767d\\u8272\\\"\\n\\u8bf7\\u95ee\\u8fd8\\u6709\\u4ec0\\u4e48"
	"\\u9700\\u8981\\u5417\",\"meta\":{\"shop\":\"s-1\",\"queue\":\"presale\",\"tags\":[1,2,3]}}",
	"{\"type\":\"typing\",\"conversation\":\"tb-2026120400017\"}",
	"{\"type\":\"end\",\"conversation\":\"tb-2026120400017\",\"reason\":\"buyer left\"}",
};
#define NFRAMES	(sizeof(frames) / sizeof(frames[0]))

static size_t	sink;

/* The old codec's work for one frame, for the default pointers. */
static void
jansson_frame(const char *s, size_t len)
{
	json_error_t	 err;
	json_t		*doc, *v;

	if ((doc = json_loadb(s, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err)) == NULL)
		return;
	if ((v = json_object_get(doc, "type")) != NULL && json_is_string(v))
		sink += json_string_length(v);
	if ((v = json_object_get(doc, "conversation")) != NULL && json_is_string(v))
		sink += json_string_length(v);
	if ((v = json_object_get(doc, "text")) != NULL && json_is_string(v))
		sink += json_string_length(v);
	json_decref(doc);
}

static void
pass(struct codec *c, int jansson, const size_t *lens)
{
	struct codec_frame	f;
	size_t			i;

	for (i = 0; i < NFRAMES; i++) {
		if (jansson)
			jansson_frame(frames[i], lens[i]);
		else {
			(void)codec_decode(c, frames[i], lens[i], &f);
			sink += f.text_len;
		}
	}
}

static double
now_s(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Frames a second, best of 7 runs of about 0.3 s each. */
static double
rate(struct codec *c, int jansson, const size_t *lens)
{
	double	best = 0, t0, dt;
	size_t	n;
	int	run;

	for (run = 0; run < 7; run++) {
		n = 0;
		t0 = now_s();
		do {
			pass(c, jansson, lens);
			n += NFRAMES;
		} while ((dt = now_s() - t0) < 0.3);
		if (n / dt > best)
			best = n / dt;
	}
	return best;
}

int
main(int argc, char **argv)
{
	static char		*msg[] = { "message" }, *end[] = { "end" };
	struct config_protocol	 p = { .type = "/type", .conversation = "/conversation",
				       .text = "/text", .message_types = { msg, 1 },
				       .end_types = { end, 1 } };
	struct sbuf		 errs;
	struct codec		*c;
	size_t			 lens[NFRAMES], i, passes = 0, total = 0;
	double			 cr, jr;
	int			 jansson = 0;

	for (i = 1; i + 1 < (size_t)argc; i += 2) {
		if (strcmp(argv[i], "--passes") == 0)
			passes = strtoul(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--mode") == 0)
			jansson = strcmp(argv[i + 1], "jansson") == 0;
	}
	sbuf_init(&errs);
	if ((c = codec_new(&p, &errs)) == NULL) {
		fputs(sbuf_str(&errs), stderr);
		return 1;
	}
	for (i = 0; i < NFRAMES; i++) {
		lens[i] = strlen(frames[i]);
		total += lens[i];
	}
	if (argc > 1) {
		for (i = 0; i < passes; i++)
			pass(c, jansson, lens);
	} else {
		cr = rate(c, 0, lens);
		jr = rate(c, 1, lens);
		printf("\n| frames (%zu, %.0f bytes on average) | codec frames/s | jansson frames/s | codec / jansson |\n",
		    NFRAMES, (double)total / NFRAMES);
		printf("|---|---:|---:|---:|\n");
		printf("| turn, turn with escapes, typing, end | %.0f | %.0f | %.1f× |\n",
		    cr, jr, cr / jr);
	}
	codec_free(c);
	sbuf_free(&errs);
	return sink == 42;	/* keeps the work from being optimised away */
}
