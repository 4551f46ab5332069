/* relay: the pipeline every complete message passes through; the only file that knows its order. */
#include <stdlib.h>

#include "chatmon/codec.h"
#include "chatmon/log.h"
#include "chatmon/relay.h"

struct relay {
	struct codec	*codec;
	struct metrics	*metrics;
};

struct relay *
relay_new(const struct config *cfg, struct metrics *m, struct sbuf *errs)
{
	struct relay	*r;

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		sbuf_line(errs, "relay_new: out of memory");
		return NULL;
	}
	r->metrics = m;
	if (relay_set_config(r, cfg, errs) == -1) {
		free(r);
		return NULL;
	}
	return r;
}

int
relay_set_config(struct relay *r, const struct config *cfg, struct sbuf *errs)
{
	struct codec	*c;

	if ((c = codec_new(&cfg->protocol, errs)) == NULL)
		return -1;
	codec_free(r->codec);
	r->codec = c;
	return 0;
}

void
relay_free(struct relay *r)
{
	if (r == NULL)
		return;
	codec_free(r->codec);
	free(r);
}

/*
 * The pipeline hook: every chat turn and every end of a conversation lands
 * here, in the order the relay saw them. The rules and the SLA clock plug in
 * at this point.
 */
static enum relay_verdict
relay_turn(struct relay *r, const struct relay_turn *t)
{
	(void)r;
	if (t->text == NULL) {
		log_debug("relay_end: agent=%s conversation=%.*s role=%s",
		    t->peer->agent[0] ? t->peer->agent : "-",
		    (int)t->conversation_len, t->conversation,
		    t->role == RELAY_ROLE_AGENT ? "agent" : "customer");
		return RELAY_PASS;
	}
	log_debug("relay_turn: agent=%s conversation=%.*s role=%s bytes=%zu "
	    "wall_ms=%lld mono_ns=%llu",
	    t->peer->agent[0] ? t->peer->agent : "-",
	    (int)t->conversation_len, t->conversation,
	    t->role == RELAY_ROLE_AGENT ? "agent" : "customer", t->text_len,
	    (long long)t->wall_ms, (unsigned long long)t->mono_ns);
	return RELAY_PASS;
}

enum relay_verdict
relay_message(struct relay *r, const struct relay_peer *peer,
    enum relay_dir dir, int binary, const char *data, size_t len)
{
	struct codec_frame	f;
	struct relay_turn	t;
	enum codec_kind		k;

	if (binary) {
		r->metrics->binary_messages++;
		return RELAY_PASS;
	}
	k = codec_decode(r->codec, data, len, &f);
	switch (k) {
	case CODEC_INVALID:
		r->metrics->frames_invalid++;
		return RELAY_PASS;
	case CODEC_OTHER:
		r->metrics->frames_other++;
		return RELAY_PASS;
	case CODEC_MALFORMED:
		r->metrics->frames_malformed++;
		log_debug("relay_message: agent=%s: chat frame passed untouched: %s",
		    peer->agent[0] ? peer->agent : "-", f.why);
		return RELAY_PASS;
	case CODEC_TURN:
	case CODEC_END:
		break;
	}
	t.peer = peer;
	t.role = dir == RELAY_UP ? RELAY_ROLE_AGENT : RELAY_ROLE_CUSTOMER;
	t.conversation = f.conversation;
	t.conversation_len = f.conversation_len;
	t.text = k == CODEC_TURN ? f.text : NULL;
	t.text_len = k == CODEC_TURN ? f.text_len : 0;
	t.mono_ns = util_mono_ns();
	t.wall_ms = util_wall_ms();
	if (k == CODEC_TURN) {
		if (dir == RELAY_UP)
			r->metrics->turns_agent++;
		else
			r->metrics->turns_customer++;
	} else
		r->metrics->conversations_ended++;
	return relay_turn(r, &t);
}
