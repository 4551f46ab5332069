/* alert: the alert sink: every alert to Redis (PUBLISH + XADD) on the one loop, kept in a bounded outbox and an optional disk spool while Redis is away. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "chatmon/alert.h"
#include "chatmon/alertfmt.h"
#include "chatmon/log.h"
#include "chatmon/logrepeat.h"
#include "chatmon/rconn.h"
#include "chatmon/rreply.h"

/*
 * Delivery is at least once. An alert leaves the outbox only when XADD has
 * returned an id for it; PUBLISH goes with it, for whoever listens live,
 * once: pub/sub is at most once, and an alert sent again after a
 * reconnect is not published again.
 * Replies come back in the order the commands went, so the oldest alert in
 * flight is always the one a reply is for.
 *
 * While Redis is away the alerts wait in the outbox (redis.outbox of them);
 * past that the oldest not yet sent spill to the spool file (redis.spool,
 * JSON Lines, append-only), or the newcomer when all are in flight, which a
 * restart reads back; past redis.spool_max the oldest info alert is
 * dropped, then warn, and critical last. The spool is always older than
 * the outbox's alerts not yet sent, so it is sent first, and cleared once
 * delivered; at exit, what was delivered of it is taken out
 * (alert_spool_compact).
 *
 * With redis.wait_replicas N, XADD's id is not enough: the alerts in
 * flight are delivered when a WAIT N sent after them counts N replicas. A
 * master that acknowledged an alert its replica never got loses it in a
 * failover (the replica promoted, the old master wiped when it rejoins as
 * a replica); and after a failover the old master goes on taking writes,
 * alone, until Sentinel demotes it seconds later. One WAIT is out at a
 * time (it holds the connection until it answers) and covers every alert
 * sent before it. A WAIT that counts too few keeps the alerts in flight,
 * is sent again, and has rconn ask the sentinels whether the master moved:
 * if it did, the connection goes and the alerts with it, to the new
 * master; if not (a replica resyncing, or a new master whose replica has
 * not joined yet) nothing is sent twice.
 *
 * Nothing Redis says makes an alert go: an error reply (READONLY after a
 * failover, LOADING, MASTERDOWN, NOREPLICAS, or any other) drops the
 * connection, and rconn connects again, to the master Sentinel names when
 * configured; every alert not delivered is sent again there. Alerts Redis
 * refuses for good (WRONGTYPE, NOPERM) wait in the outbox and spool like
 * in an outage, logged, until someone fixes Redis. But for a WAIT the
 * server refuses for good (NOPERM): alerts then go on XADD's id alone on
 * that connection, since dropping it would only write them again and
 * again (alert_on_wait).
 *
 * The connection (rconn) notices a Redis that stopped answering
 * (redis.timeout) and reconnects with backoff. Chat traffic never waits for
 * any of it: publishing only appends to memory.
 */

#define ALERT_INFLIGHT		256	/* alerts pipelined at once */
#define ALERT_PUBLISH_LOG_MS	60000	/* a refused PUBLISH, said once a minute */
#define ALERT_FOLD_BUCKETS	4096

struct alert_item {
	char		*json;		/* owned, NUL-terminated */
	size_t		 len;
	int		 sev;
	int		 published;	/* PUBLISH went: never again (at most once) */
	off_t		 spool_end;	/* from the spool: where its line ends; else -1 */
};

struct alert_fold {			/* a key seen within redis.fold */
	struct alert_fold *next;
	char		*key;
	size_t		 klen;
	int64_t		 since;
	uint64_t	 count;		/* folded since the one sent */
	char		*last;		/* the latest of them */
	size_t		 lastlen;
	int		 sev;
};

struct alert_ring {
	struct alert_item *v;
	size_t		 cap, head, n;
	size_t		 bytes;		/* the items' JSON */
};

struct alert {
	struct event_base	*base;
	struct metrics		*m;
	struct rconn		*rc;
	/* settings */
	char			*channel;	/* prefix included */
	char			*stream;
	char			 maxlen[24];
	size_t			 outbox_max;
	uint64_t		 outbox_bytes;	/* an alert carries its turn's text: bytes too */
	char			*spool_path;
	uint64_t		 spool_max;
	uint64_t		 fold_ms;
	uint64_t		 wait_replicas;
	uint64_t		 wait_timeout_ms;
	int			 sentinel;	/* the master comes from Sentinel */
	/* what waits */
	struct alert_ring	 spool;		/* read back from the spool file, in order */
	struct alert_ring	 box;		/* the outbox */
	size_t			 inflight;	/* sent, from the front of spool then box */
	size_t			 stored;	/* of those, the oldest XADD has stored */
	int			 waiting;	/* a WAIT is out */
	int			 wait_refused;	/* this connection may not WAIT (alert_on_wait) */
	size_t			 wait_covers;	/* the alerts in flight sent before it */
	uint64_t		 wait_want;	/* the replicas it asked for */
	int64_t			 short_since;	/* WAITs count too few since (wall ms); 0 */
	char			 master[300];	/* where alerts went last (rconn_name) */
	int			 spool_fd;	/* -1: no spool */
	off_t			 spool_size;
	off_t			 spool_read;	/* how far it has been read into `spool` */
	int			 spool_drained;	/* the file could not be read: stop reading */
	/* folding */
	struct alert_fold	*fold[ALERT_FOLD_BUCKETS];	/* keyed by agent and conversation */
	struct util_hkey	 hkey;
	size_t			 nfold;
	struct event		*ev_fold;
	struct logrepeat	*publish_log;	/* PUBLISH's refusals */
};

static void	alert_send(struct alert *);

/* --- rings ------------------------------------------------------------------- */

static struct alert_item *
alert_at(struct alert_ring *r, size_t i)
{
	return &r->v[(r->head + i) % r->cap];
}

static int
alert_push(struct alert_ring *r, struct alert_item it)
{
	struct alert_item	*nv;
	size_t			 i, cap;

	if (r->n == r->cap) {
		cap = r->cap ? r->cap * 2 : 64;
		if ((nv = calloc(cap, sizeof(*nv))) == NULL)
			return -1;
		for (i = 0; i < r->n; i++)
			nv[i] = *alert_at(r, i);
		free(r->v);
		r->v = nv;
		r->cap = cap;
		r->head = 0;
	}
	*alert_at(r, r->n++) = it;
	r->bytes += it.len;
	return 0;
}

/* Takes item i out of r, keeping the order of the others. */
static struct alert_item
alert_take(struct alert_ring *r, size_t i)
{
	struct alert_item	it = *alert_at(r, i);

	for (; i > 0; i--)
		*alert_at(r, i) = *alert_at(r, i - 1);
	r->head = (r->head + 1) % r->cap;
	r->n--;
	r->bytes -= it.len;
	return it;
}

static void
alert_ring_free(struct alert_ring *r)
{
	size_t	i;

	for (i = 0; i < r->n; i++)
		free(alert_at(r, i)->json);
	free(r->v);
	memset(r, 0, sizeof(*r));
}

/* --- the spool ----------------------------------------------------------------- */

int
alert_spool_check(const struct config *cfg, struct sbuf *errs)
{
	const char	*path = cfg->redis.spool, *slash;
	char		*dir;
	struct stat	 st;
	int		 rc;

	if (path == NULL)
		return 0;
	/* a directory passes access(): the daemon's open then fails */
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		sbuf_line(errs, "%s: cannot open the alert spool: %s", path,
		    strerror(EISDIR));
		return -1;
	}
	if (access(path, R_OK | W_OK) == 0)
		return 0;
	if (errno == ENOENT) {
		/* not made yet: its directory must take it */
		slash = strrchr(path, '/');
		if ((dir = slash == NULL ? strdup(".") :
		    strndup(path, slash == path ? 1 : (size_t)(slash - path))) == NULL) {
			sbuf_line(errs, "alert_spool_check: out of memory");
			return -1;
		}
		rc = access(dir, W_OK | X_OK);
		free(dir);
		if (rc == 0)
			return 0;
	}
	sbuf_line(errs, "%s: cannot open the alert spool: %s", path,
	    strerror(errno));
	return -1;
}

static void
alert_gauges(struct alert *a)
{
	a->m->alerts_queued = a->box.n + a->spool.n;
	a->m->alerts_spool_bytes = (uint64_t)a->spool_size;
}

/* Appends one alert to the spool file; 0, or -1 when it does not fit or fails. */
static int
alert_spill(struct alert *a, const struct alert_item *it)
{
	struct iovec	 iov[2];
	ssize_t		 w;

	if (a->spool_fd == -1 ||
	    (uint64_t)a->spool_size + it->len + 1 > a->spool_max)
		return -1;
	iov[0].iov_base = it->json;
	iov[0].iov_len = it->len;
	iov[1].iov_base = (void *)"\n";
	iov[1].iov_len = 1;
	if ((w = writev(a->spool_fd, iov, 2)) != (ssize_t)(it->len + 1)) {
		if (w == -1)
			log_warn("alert_spill: %s", a->spool_path);
		else	/* a full disk: no errno to tell */
			log_warnx("alert_spill: %s: short write (%zd of %zu bytes)",
			    a->spool_path, w, it->len + 1);
		if (w > 0 && ftruncate(a->spool_fd, a->spool_size) == -1)
			log_warn("alert_spill: %s: truncate", a->spool_path);
		return -1;
	}
	a->spool_size += (off_t)(it->len + 1);
	a->m->alerts_spooled++;
	return 0;
}

/* The spool is read this much at a time, more for a longer line. */
#define ALERT_SPOOL_CHUNK	65536
/*
 * The longest line read back: an alert carries its turn's text, up to
 * limits.max_message, escaped (six bytes a byte at worst) and framed.
 */
#define ALERT_SPOOL_LINE_MAX	((size_t)256 << 20)

/*
 * The file ends in a line cut short at off (a crash in the middle of a
 * write; every write since is whole or undone): the fragment goes, so
 * that the next line spilled is not glued to it, and it is counted as
 * the alert it was.
 */
static void
alert_spool_cut(struct alert *a, off_t off)
{
	log_warnx("alert_spool_cut: %s: a line cut short at %lld (a write torn by "
	    "a crash), skipped", a->spool_path, (long long)off);
	a->m->alerts_dropped++;
	if (ftruncate(a->spool_fd, off) == -1) {
		log_warn("alert_spool_cut: %s: truncate", a->spool_path);
		a->spool_drained = 1;	/* kept for the next start, read no further */
		return;
	}
	a->spool_size = off;
	if (a->spool_read > off)
		a->spool_read = off;
}

/* At open: a last line without its newline is cut (alert_spool_cut). */
static void
alert_spool_check_end(struct alert *a)
{
	char	buf[4096];
	off_t	end = a->spool_size, at;
	ssize_t	n, i;

	while (end > 0) {
		at = end > (off_t)sizeof(buf) ? end - (off_t)sizeof(buf) : 0;
		if ((n = pread(a->spool_fd, buf, (size_t)(end - at), at)) <= 0) {
			log_warn("alert_spool_check_end: %s", a->spool_path);
			return;
		}
		for (i = n; i > 0; i--)
			if (buf[i - 1] == '\n') {
				if (at + i < a->spool_size)
					alert_spool_cut(a, at + i);
				return;
			}
		end = at;
	}
	if (a->spool_size > 0)
		alert_spool_cut(a, 0);
}

/*
 * Whether a spool line can be what alert_spill wrote: an alert is a JSON
 * object, UTF-8, with no NUL byte in it. A filesystem can leave a block of
 * zeros or stale bytes in the file after a crash; sent on, such a line
 * would be a stream entry that is not an alert (docs/alerts.md: the one
 * field is the JSON object).
 */
static int
alert_spool_line_ok(const char *s, size_t len)
{
	return len >= 2 && s[0] == '{' && s[len - 1] == '}' &&
	    memchr(s, '\0', len) == NULL && util_utf8_valid(s, len);
}

/*
 * Reads spooled lines into the spool ring, up to a batch; what is read is
 * sent before the outbox. The buffer grows for a long line (an alert of a
 * long turn): a line is never taken for the end of the file. One longer
 * than ALERT_SPOOL_LINE_MAX is not one of ours: it is skipped, counted as
 * dropped, and the lines after it are read; so is a line that is not an
 * alert (alert_spool_line_ok), logged once a read for all of them.
 */
static void
alert_spool_read(struct alert *a)
{
	char			*buf, *nl, *line, *p;
	ssize_t			 n;
	size_t			 used, cap = ALERT_SPOOL_CHUNK, bad = 0;
	off_t			 start, bad_at = -1;
	struct alert_item	 it;

	if ((buf = malloc(cap)) == NULL)
		return;	/* try again later */
	while (a->spool_fd != -1 && a->spool.n < ALERT_INFLIGHT * 4 &&
	    a->spool_read < a->spool_size && !a->spool_drained) {
		n = pread(a->spool_fd, buf, cap - 1, a->spool_read);
		if (n <= 0) {
			a->spool_drained = 1;
			break;
		}
		buf[n] = '\0';
		for (used = 0; (nl = memchr(buf + used, '\n', (size_t)n - used)) != NULL;
		    used = (size_t)(nl - buf) + 1) {
			line = buf + used;
			it.len = (size_t)(nl - line);
			it.sev = ALERT_INFO;
			it.published = 0;
			it.spool_end = a->spool_read + (off_t)(nl - buf) + 1;
			if (it.len == 0)
				continue;
			if (!alert_spool_line_ok(line, it.len)) {
				if (bad++ == 0)
					bad_at = it.spool_end - (off_t)it.len - 1;
				a->m->alerts_dropped++;
				continue;
			}
			/* the exact bytes: the line's length is what is sent */
			if ((it.json = malloc(it.len + 1)) == NULL)
				goto out;	/* try again later */
			memcpy(it.json, line, it.len);
			it.json[it.len] = '\0';
			if (alert_push(&a->spool, it) == -1) {
				free(it.json);
				goto out;	/* try again later */
			}
			if (a->spool.n >= ALERT_INFLIGHT * 4) {
				used = (size_t)(nl - buf) + 1;
				break;
			}
		}
		if (used > 0) {
			a->spool_read += (off_t)used;
			continue;
		}
		if ((size_t)n < cap - 1) {
			/* no newline before the end: nothing is after it to lose */
			alert_spool_cut(a, a->spool_read);
			break;
		}
		if (cap < ALERT_SPOOL_LINE_MAX) {
			if ((p = realloc(buf, cap * 2)) == NULL)
				goto out;
			buf = p;
			cap *= 2;
			continue;
		}
		/* longer than any alert: skip it, to the newline after it */
		log_warnx("alert_spool_read: %s: a line over %zu bytes at %lld, "
		    "skipped", a->spool_path, ALERT_SPOOL_LINE_MAX,
		    (long long)a->spool_read);
		a->m->alerts_dropped++;
		for (start = a->spool_read;;) {
			a->spool_read += n;
			if ((n = pread(a->spool_fd, buf, cap - 1, a->spool_read)) <= 0) {
				if (n == 0) {
					/* it was the last, cut short: counted once */
					a->m->alerts_dropped--;
					alert_spool_cut(a, start);
				} else
					a->spool_drained = 1;
				goto out;
			}
			if ((nl = memchr(buf, '\n', (size_t)n)) != NULL) {
				a->spool_read += (off_t)(nl - buf) + 1;
				break;
			}
		}
	}
out:
	if (bad > 0)
		log_warnx("alert_spool_read: %s: %zu lines from %lld on are not "
		    "alerts (a NUL byte, not UTF-8, or not a JSON object: what a "
		    "crash can leave), skipped", a->spool_path, bad,
		    (long long)bad_at);
	free(buf);
}

/*
 * Everything spooled was delivered: start the file over. Not when the
 * file could not be read to its end: what is left stays for the next start.
 */
static void
alert_spool_clear(struct alert *a)
{
	if (a->spool_fd == -1 || a->spool.n > 0 || a->spool_read < a->spool_size)
		return;
	if (ftruncate(a->spool_fd, 0) == -1)
		log_warn("alert_spool_clear: %s", a->spool_path);
	a->spool_size = a->spool_read = 0;
	a->spool_drained = 0;
}

/*
 * At exit: the spool's delivered lines go, or the next start would send
 * them again (alert_spool_clear empties the file only once all of it is
 * delivered: a long spool stopped halfway went again whole). What is
 * left is copied to a new file that takes the spool's place in one
 * rename, locked like it: a crash on the way leaves the old file, whose
 * delivered lines then go twice, never a spool missing a line. When it
 * cannot be done, the spool stays as it was (logged).
 */
static void
alert_spool_compact(struct alert *a)
{
	const struct alert_item	*first;
	char			*tmp = NULL, *buf = NULL;
	const char		*why = NULL;
	off_t			 from, at;
	ssize_t			 n, w, k;
	int			 fd = -1;

	if (a->spool_fd == -1 || a->spool_drained)
		return;		/* unread past a failure: kept whole, as it is */
	first = a->spool.n > 0 ? alert_at(&a->spool, 0) : NULL;
	from = first != NULL ? first->spool_end - (off_t)first->len - 1 :
	    a->spool_read;
	if (from <= 0)
		return;
	if (from >= a->spool_size) {
		if (ftruncate(a->spool_fd, 0) == -1) {
			why = strerror(errno);
			goto err;
		}
		a->spool_size = a->spool_read = 0;
		return;
	}
	if (asprintf(&tmp, "%s.new", a->spool_path) == -1) {
		tmp = NULL;
		why = "out of memory";
		goto err;
	}
	if ((buf = malloc(ALERT_SPOOL_CHUNK)) == NULL) {
		why = "out of memory";
		goto err;
	}
	if ((fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC,
	    0600)) == -1 || flock(fd, LOCK_EX | LOCK_NB) == -1) {
		why = strerror(errno);
		goto err;
	}
	for (at = from; at < a->spool_size; at += n) {
		n = pread(a->spool_fd, buf, (size_t)(a->spool_size - at) <
		    ALERT_SPOOL_CHUNK ? (size_t)(a->spool_size - at) :
		    ALERT_SPOOL_CHUNK, at);
		if (n <= 0) {
			why = n == 0 ? "shorter than it was" : strerror(errno);
			goto err;
		}
		for (w = 0; w < n; w += k)
			if ((k = write(fd, buf + w, (size_t)(n - w))) <= 0) {
				why = k == 0 ? "short write" : strerror(errno);
				goto err;
			}
	}
	/* the rename is not made durable: lost, the old file only repeats */
	if (fsync(fd) == -1 || rename(tmp, a->spool_path) == -1) {
		why = strerror(errno);
		goto err;
	}
	log_info("alert_spool_compact: %s: %lld bytes delivered taken out, %lld "
	    "kept for the next start", a->spool_path, (long long)from,
	    (long long)(a->spool_size - from));
	close(a->spool_fd);
	a->spool_fd = fd;
	a->spool_size -= from;
	a->spool_read = 0;
	free(buf);
	free(tmp);
	return;
err:
	log_warnx("alert_spool_compact: %s: cannot take out the %lld bytes "
	    "delivered (%s): they are sent again at the next start",
	    a->spool_path, (long long)from, why);
	if (fd != -1) {
		close(fd);
		unlink(tmp);
	}
	free(buf);
	free(tmp);
}

/* --- the outbox ------------------------------------------------------------------ */

/*
 * The outbox is full: spill its oldest unsent alert to the spool. When
 * every alert it holds is in flight (a WAIT that counts too few replicas,
 * a Redis that hangs within redis.timeout holds them), none may leave it
 * before its answer: the newcomer nw goes to the spool itself, and since
 * it is newer than all of them, the order holds. When the spool cannot
 * take it, drop the oldest of the least severe, the newcomer included.
 * 0: there is room; 1: the newcomer is spilled; -1: the newcomer is the
 * one to go.
 */
static int
alert_make_room(struct alert *a, const struct alert_item *nw)
{
	struct alert_item	 it;
	/* what is in flight is all spool or all outbox (alert_send) */
	size_t			 i, first = a->spool.n == 0 ? a->inflight : 0;
	int			 sev;
	char			 id[ALERTFMT_ID_MAX], type[32], sevname[16];

	/* the file holds what is older than the outbox's unsent alerts: append */
	if (first < a->box.n) {
		if (alert_spill(a, alert_at(&a->box, first)) == 0) {
			it = alert_take(&a->box, first);
			free(it.json);
			return 0;
		}
	} else if (alert_spill(a, nw) == 0)
		return 1;
	for (sev = ALERT_INFO; sev <= ALERT_CRITICAL; sev++) {
		for (i = first; i < a->box.n; i++)
			if (alert_at(&a->box, i)->sev == sev) {
				it = alert_take(&a->box, i);
				a->m->alerts_dropped++;
				/* what it is, never its text (docs/alerts.md) */
				alertfmt_get_id(id, it.json, it.len);
				alertfmt_get_word(type, sizeof(type), it.json,
				    it.len, "type");
				alertfmt_get_word(sevname, sizeof(sevname), it.json,
				    it.len, "severity");
				log_warnx("alert_make_room: outbox full (%zu alerts "
				    "or %" PRIu64 " bytes) and no room to spool: "
				    "dropped alert %s (type %s, severity %s)",
				    a->outbox_max, a->outbox_bytes, id, type, sevname);
				free(it.json);
				return 0;
			}
		if (sev == nw->sev)
			return -1;	/* nothing older is less severe than it */
	}
	return -1;
}

static void
alert_enqueue(struct alert *a, const char *json, size_t len, int sev)
{
	struct alert_item	it;
	char			id[ALERTFMT_ID_MAX];
	int			rc;

	a->m->alerts_total++;
	it.len = len;
	it.sev = sev;
	it.published = 0;
	it.spool_end = -1;
	if ((it.json = strndup(json, len)) == NULL) {
		a->m->alerts_dropped++;
		alertfmt_get_id(id, json, len);
		log_warnx("alert_enqueue: out of memory, dropped alert %s", id);
		return;
	}
	/* a room for each alert, and for its bytes: one alert may take several */
	while (a->box.n > 0 && (a->box.n >= a->outbox_max ||
	    a->box.bytes + len > a->outbox_bytes)) {
		if ((rc = alert_make_room(a, &it)) == 0)
			continue;
		if (rc == -1) {
			a->m->alerts_dropped++;
			alertfmt_get_id(id, json, len);
			log_warnx("alert_enqueue: outbox full (%zu alerts or %" PRIu64
			    " bytes), no room to spool, and nothing older is less "
			    "severe: dropped alert %s", a->outbox_max,
			    a->outbox_bytes, id);
		}
		free(it.json);		/* dropped, or in the spool */
		alert_gauges(a);
		return;
	}
	if (alert_push(&a->box, it) == -1) {
		a->m->alerts_dropped++;
		alertfmt_get_id(id, json, len);
		log_warnx("alert_enqueue: out of memory, dropped alert %s", id);
		free(it.json);
		return;
	}
	alert_gauges(a);
	alert_send(a);
}

/* --- Redis ---------------------------------------------------------------------- */

/* The replicas an alert waits for now: none where WAIT is refused for good. */
static uint64_t
alert_want(const struct alert *a)
{
	return a->wait_refused ? 0 : a->wait_replicas;
}

/* The oldest n alerts in flight are delivered. */
static void
alert_delivered(struct alert *a, size_t n)
{
	struct alert_item	 it;
	struct alert_ring	*ring;

	for (; n > 0 && a->inflight > 0; n--) {
		ring = a->spool.n > 0 ? &a->spool : &a->box;
		it = alert_take(ring, 0);
		a->inflight--;
		if (a->stored > 0)
			a->stored--;
		/* one the WAIT out covers, delivered without it (a reload) */
		if (a->wait_covers > 0)
			a->wait_covers--;
		a->m->alerts_sent++;
		free(it.json);
	}
	alert_gauges(a);
	alert_send(a);
}

/*
 * Redis did not take the alerts in flight: every one of them goes again,
 * on a new connection (rconn_drop runs the callbacks still pending with
 * NULL and alert_on_state forgets what was in flight).
 */
static void
alert_refused(struct alert *a, const char *cmd, const char *err)
{
	static const size_t	 off[] = {
		[RREPLY_ERR_READONLY] = offsetof(struct metrics, redis_retry_readonly),
		[RREPLY_ERR_LOADING] = offsetof(struct metrics, redis_retry_loading),
		[RREPLY_ERR_MASTERDOWN] = offsetof(struct metrics, redis_retry_masterdown),
		[RREPLY_ERR_NOREPLICAS] = offsetof(struct metrics, redis_retry_noreplicas),
		[RREPLY_ERR_BUSY] = offsetof(struct metrics, redis_retry_other),
		[RREPLY_ERR_OTHER] = offsetof(struct metrics, redis_retry_other),
	};
	enum rreply_error	 k = rreply_error_kind(err);
	char			 why[512];

	(*(uint64_t *)(void *)((char *)a->m + off[k]))++;
	snprintf(why, sizeof(why), "%s %s %.200s (%zu alerts kept, sent again "
	    "after reconnecting%s)%s", cmd, rreply_error_transient(k) ?
	    "answered" : "refused", err, a->inflight, a->sentinel ?
	    " to the master Sentinel names" : "", rreply_error_transient(k) ? "" :
	    ": fix Redis, alerts wait in the outbox and spool until it takes them");
	rconn_drop(a->rc, why);
}

/*
 * The reply to an XADD: the oldest alert in flight not yet stored is.
 * Without WAIT that delivers it; with WAIT, the WAIT sent after it does.
 * The setting is read now, not when the XADD went: a reload that turned
 * redis.wait_replicas to 0 has no WAIT follow what it sent before, and
 * what is stored is delivered as it comes.
 */
static void
alert_on_xadd(redisReply *reply, void *priv)
{
	struct alert	*a = priv;

	if (reply == NULL || a->stored >= a->inflight)
		return;	/* the connection went; it is all sent again */
	if (reply->type == REDIS_REPLY_ERROR) {
		alert_refused(a, "XADD", reply->str);
		return;
	}
	a->stored++;
	if (alert_want(a) == 0)
		alert_delivered(a, a->stored);
}

static void
alert_on_wait(redisReply *reply, void *priv)
{
	struct alert	*a = priv;

	if (reply == NULL || !a->waiting)
		return;
	a->waiting = 0;
	/*
	 * A server that refuses WAIT itself (an ACL user without +wait, the
	 * command renamed away) refuses it at every reconnect: dropping the
	 * connection would only XADD the alerts again and again, without
	 * end. What it stored is delivered on XADD's id alone, as with
	 * redis.wait_replicas 0, until the connection goes (then WAIT is
	 * tried again), and it is said once a connection.
	 */
	if (reply->type == REDIS_REPLY_ERROR && (strncmp(reply->str, "NOPERM",
	    6) == 0 || strncmp(reply->str, "ERR unknown command", 19) == 0)) {
		log_warnx("alert_on_wait: redis %s refused WAIT: %.200s; alerts "
		    "are delivered on XADD's id alone on this connection, as with "
		    "redis.wait_replicas 0 (a failover can lose the last of "
		    "them): allow WAIT to chatmond's Redis user",
		    rconn_name(a->rc), reply->str);
		a->wait_refused = 1;
		alert_delivered(a, a->stored);
		return;
	}
	if (reply->type == REDIS_REPLY_ERROR) {
		alert_refused(a, "WAIT", reply->str);
		return;
	}
	/* enough for when it was sent, or for a reload since that asks fewer */
	if (reply->type == REDIS_REPLY_INTEGER && reply->integer >= 0 &&
	    ((uint64_t)reply->integer >= a->wait_want ||
	    (uint64_t)reply->integer >= alert_want(a))) {
		if (a->short_since != 0)
			log_info("alert_on_wait: redis %s: %" PRIu64 " replicas have "
			    "the alerts again, after %.1f s", rconn_name(a->rc),
			    a->wait_want, (double)(util_wall_ms() - a->short_since) /
			    1000);
		a->short_since = 0;
		alert_delivered(a, a->wait_covers);
		return;
	}
	a->m->redis_wait_short++;
	if (a->short_since == 0) {
		a->short_since = util_wall_ms();
		log_warnx("alert_on_wait: redis %s: %lld of %" PRIu64 " replicas had "
		    "the alerts within redis.wait_timeout; they are kept until "
		    "enough do%s", rconn_name(a->rc), reply->type ==
		    REDIS_REPLY_INTEGER ? reply->integer : -1LL, a->wait_want,
		    a->sentinel ? " (asking Sentinel whether the master moved)" : "");
	}
	/* the alerts stay where they are: if the master moved, rconn drops it */
	rconn_verify(a->rc);
	alert_send(a);
}

/*
 * The reply to a PUBLISH. Pub/sub is at most once: nothing is sent again,
 * but a refusal (an ACL without +publish) is told, or the live feed would
 * miss every alert without a word while the stream has them.
 */
static void
alert_on_publish(redisReply *reply, void *priv)
{
	struct alert	*a = priv;
	uint64_t	 held = 0;

	if (reply == NULL || reply->type != REDIS_REPLY_ERROR)
		return;
	if (a->publish_log != NULL && !logrepeat_check(a->publish_log,
	    reply->str, reply->len, util_mono_ns() / 1000000, &held))
		return;
	if (held > 0)
		log_warnx("alert_on_publish: redis %s refused PUBLISH to %s: %.200s "
		    "(the channel misses alerts, the stream has them; fix Redis; "
		    "%" PRIu64 " more since this was last logged)",
		    rconn_name(a->rc), a->channel, reply->str, held);
	else
		log_warnx("alert_on_publish: redis %s refused PUBLISH to %s: %.200s "
		    "(the channel misses alerts, the stream has them; fix Redis)",
		    rconn_name(a->rc), a->channel, reply->str);
}

/*
 * Sends what is not in flight yet, spool first, up to the pipeline's
 * depth; with redis.wait_replicas a WAIT after them, one at a time.
 */
static void
alert_send(struct alert *a)
{
	struct alert_item	*it;
	size_t			 total;
	uint64_t		 want = alert_want(a);

	if (!rconn_up(a->rc))
		return;
	/*
	 * Spooled lines are read only when nothing is in flight, so what is
	 * in flight is either all from the spool or all from the outbox, and
	 * a reply is for the front of one ring.
	 */
	if (a->spool.n == 0 && a->inflight == 0) {
		alert_spool_read(a);
		alert_spool_clear(a);
		/* after the clear: chatmon_alerts_spool_bytes says 0 once it is */
		alert_gauges(a);
	}
	/*
	 * Spooled alerts are older than the outbox: while the file still has
	 * unread lines, the outbox waits.
	 */
	for (;;) {
		total = a->spool.n + (a->spool.n == 0 &&
		    (a->spool_read >= a->spool_size || a->spool_drained) ? a->box.n : 0);
		if (a->inflight >= total || a->inflight >= ALERT_INFLIGHT)
			break;
		it = a->inflight < a->spool.n ? alert_at(&a->spool, a->inflight) :
		    alert_at(&a->box, a->inflight - a->spool.n);
		if (!it->published) {
			/* even when the connection goes next: at most once */
			it->published = 1;
			if (rconn_command(a->rc, alert_on_publish, a, 0,
			    "PUBLISH %s %b", a->channel, it->json, it->len) == -1)
				return;	/* the connection was dropped */
		}
		if (rconn_command(a->rc, alert_on_xadd, a, 0,
		    "XADD %s MAXLEN ~ %s * alert %b",
		    a->stream, a->maxlen, it->json, it->len) == -1)
			return;	/* the connection was dropped: all is sent again */
		a->inflight++;
	}
	if (want == 0 || a->waiting || a->inflight == 0)
		return;
	if (rconn_command(a->rc, alert_on_wait, a, a->wait_timeout_ms,
	    "WAIT %" PRIu64 " %" PRIu64, want, a->wait_timeout_ms) == -1)
		return;
	a->waiting = 1;
	a->wait_covers = a->inflight;
	a->wait_want = want;
}

static void
alert_on_state(void *arg, int up, int lost)
{
	struct alert	*a = arg;

	a->m->redis_connected = up;
	if (lost)
		a->m->redis_reconnects++;
	if (!up) {
		a->inflight = 0;
		a->stored = 0;
		a->waiting = 0;
		a->wait_refused = 0;	/* the next server may take it */
		a->wait_covers = 0;
		return;
	}
	if (a->sentinel && a->master[0] != '\0' &&
	    strcmp(a->master, rconn_name(a->rc)) != 0) {
		a->m->redis_master_changes++;
		log_info("alert_on_state: the redis master moved from %s to %s",
		    a->master, rconn_name(a->rc));
	}
	snprintf(a->master, sizeof(a->master), "%s", rconn_name(a->rc));
	log_info("alert_on_state: redis %s connected; waiting: %zu alerts in "
	    "memory, %lld bytes spooled", rconn_name(a->rc), a->box.n,
	    (long long)a->spool_size);
	alert_send(a);
}

/* --- folding -------------------------------------------------------------------- */

/* Sends the folded alert of f (the last, with a count) and forgets f. */
static void
alert_fold_flush(struct alert *a, struct alert_fold *f)
{
	struct sbuf	j;

	if (f->count > 0) {
		/* the last one, standing for all that were folded */
		sbuf_init(&j);
		if (f->lastlen > 1 && f->last[f->lastlen - 1] == '}' &&
		    sbuf_append(&j, f->last, f->lastlen - 1) == 0 &&
		    sbuf_printf(&j, ",\"count\":%" PRIu64 "}", f->count) == 0)
			alert_enqueue(a, j.s, j.len, f->sev);
		sbuf_free(&j);
	}
	free(f->key);
	free(f->last);
	free(f);
	a->nfold--;
}

static void
alert_on_fold(evutil_socket_t fd, short what, void *arg)
{
	struct alert		*a = arg;
	struct alert_fold	**pp, *f;
	struct timeval		 tv;
	int64_t			 now = util_wall_ms();
	size_t			 b;

	(void)fd;
	(void)what;
	for (b = 0; b < ALERT_FOLD_BUCKETS; b++)
		for (pp = &a->fold[b]; (f = *pp) != NULL; ) {
			if (now - f->since < (int64_t)a->fold_ms) {
				pp = &f->next;
				continue;
			}
			*pp = f->next;
			alert_fold_flush(a, f);
		}
	if (a->nfold > 0) {
		tv.tv_sec = (time_t)(a->fold_ms / 2000);
		tv.tv_usec = (suseconds_t)(a->fold_ms / 2 % 1000 * 1000);
		evtimer_add(a->ev_fold, &tv);
	}
}

/* 1: folded into an earlier alert of the same key; 0: send it. */
static int
alert_fold(struct alert *a, const char *json, size_t len, int sev,
    const char *agent, const char *what, const char *conv, size_t clen)
{
	struct alert_fold	*f;
	struct sbuf		 k;
	struct timeval		 tv;
	uint32_t		 h;
	char			*last;

	if (a->fold_ms == 0)
		return 0;
	sbuf_init(&k);
	if (sbuf_printf(&k, "%s%c%s%c", agent, 0, what, 0) == -1 ||
	    sbuf_append(&k, conv, clen) == -1) {
		sbuf_free(&k);
		return 0;
	}
	h = (uint32_t)util_hash(&a->hkey, k.s, k.len);
	for (f = a->fold[h % ALERT_FOLD_BUCKETS]; f != NULL; f = f->next)
		if (f->klen == k.len && memcmp(f->key, k.s, k.len) == 0)
			break;
	if (f != NULL && util_wall_ms() - f->since < (int64_t)a->fold_ms) {
		sbuf_free(&k);
		if ((last = strndup(json, len)) == NULL)
			return 0;
		free(f->last);
		f->last = last;
		f->lastlen = len;
		if (sev > f->sev)
			f->sev = sev;
		f->count++;
		a->m->alerts_folded++;
		return 1;
	}
	if (f != NULL) {
		sbuf_free(&k);
		return 0;	/* the sweep will flush it; this one goes as it is */
	}
	if ((f = calloc(1, sizeof(*f))) == NULL) {
		sbuf_free(&k);
		return 0;
	}
	f->key = k.s;		/* the sbuf's buffer passes to f */
	f->klen = k.len;
	f->since = util_wall_ms();
	f->sev = sev;
	f->next = a->fold[h % ALERT_FOLD_BUCKETS];
	a->fold[h % ALERT_FOLD_BUCKETS] = f;
	if (a->nfold++ == 0) {
		tv.tv_sec = (time_t)(a->fold_ms / 2000);
		tv.tv_usec = (suseconds_t)(a->fold_ms / 2 % 1000 * 1000);
		evtimer_add(a->ev_fold, &tv);
	}
	return 0;
}

/* --- the interface ------------------------------------------------------------------ */

void
alert_publish(struct alert *a, const char *json, size_t len,
    enum alert_severity sev, const char *agent, const char *what,
    const char *conversation, size_t conversation_len)
{
	if (alert_fold(a, json, len, (int)sev, agent, what, conversation,
	    conversation_len))
		return;
	alert_enqueue(a, json, len, (int)sev);
}

static int
alert_settings(struct alert *a, const struct config *cfg)
{
	const char	*pre = cfg->redis.prefix ? cfg->redis.prefix : "";
	char		*ch = NULL, *st = NULL;

	if (asprintf(&ch, "%s%s", pre, cfg->redis.channel) == -1)
		ch = NULL;
	if (asprintf(&st, "%s%s", pre, cfg->redis.stream) == -1)
		st = NULL;
	if (ch == NULL || st == NULL) {
		free(ch);
		free(st);
		return -1;
	}
	free(a->channel);
	free(a->stream);
	a->channel = ch;
	a->stream = st;
	snprintf(a->maxlen, sizeof(a->maxlen), "%" PRIu64, cfg->redis.stream_maxlen);
	a->outbox_max = (size_t)cfg->redis.outbox;
	a->outbox_bytes = cfg->redis.outbox_bytes;
	a->spool_max = cfg->redis.spool_max;
	a->fold_ms = cfg->redis.fold_ms;
	a->wait_replicas = cfg->redis.wait_replicas;
	a->wait_timeout_ms = cfg->redis.wait_timeout_ms;
	a->sentinel = cfg->redis.nsentinels > 0;
	return 0;
}

struct alert *
alert_new(struct event_base *base, const struct config *cfg, struct metrics *m,
    struct sbuf *errs)
{
	struct alert	*a;
	struct stat	 st;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		goto oom;
	a->base = base;
	a->m = m;
	a->spool_fd = -1;
	util_hkey_random(&a->hkey);
	if (alert_settings(a, cfg) == -1 ||
	    (a->rc = rconn_new(base, "alert", alert_on_state, a)) == NULL ||
	    (a->ev_fold = evtimer_new(base, alert_on_fold, a)) == NULL ||
	    (a->publish_log = logrepeat_new(4, ALERT_PUBLISH_LOG_MS)) == NULL)
		goto oom;
	if (cfg->redis.spool != NULL) {
		if ((a->spool_path = strdup(cfg->redis.spool)) == NULL)
			goto oom;
		if ((a->spool_fd = open(a->spool_path, O_RDWR | O_CREAT | O_APPEND |
		    O_CLOEXEC, 0600)) == -1 || fstat(a->spool_fd, &st) == -1) {
			sbuf_line(errs, "%s: cannot open the alert spool: %s",
			    a->spool_path, strerror(errno));
			alert_free(a);
			return NULL;
		}
		/* two writers would interleave and resend each other's alerts */
		if (flock(a->spool_fd, LOCK_EX | LOCK_NB) == -1) {
			sbuf_line(errs, "%s: the alert spool is in use by another "
			    "chatmond (%s); give each instance its own redis.spool",
			    a->spool_path, errno == EWOULDBLOCK ?
			    "locked" : strerror(errno));
			alert_free(a);
			return NULL;
		}
		a->spool_size = st.st_size;
		alert_spool_check_end(a);
		if (st.st_size > 0)
			log_info("alert_new: %s holds %lld bytes of alerts from "
			    "before; they go first", a->spool_path,
			    (long long)st.st_size);
	}
	alert_gauges(a);
	if (rconn_set_target(a->rc, &cfg->redis, 0) == -1)
		goto oom;
	return a;
oom:
	sbuf_line(errs, "alert_new: out of memory");
	alert_free(a);
	return NULL;
}

void
alert_set_config(struct alert *a, const struct config *cfg)
{
	if (alert_settings(a, cfg) == -1) {
		log_warnx("alert_set_config: out of memory, Redis settings kept");
		return;
	}
	/* a new target reconnects: what was in flight is sent again there */
	if (rconn_set_target(a->rc, &cfg->redis, 0) == -1)
		log_warnx("alert_set_config: out of memory, Redis target kept");
	/*
	 * redis.wait_replicas turned to 0: no WAIT follows the alerts sent
	 * under the old setting any more, and what Redis stored of them is
	 * delivered now. Turned on: a WAIT goes for those in flight.
	 */
	if (alert_want(a) == 0 && a->stored > 0)
		alert_delivered(a, a->stored);
	else
		alert_send(a);
}

void
alert_flush(struct alert *a)
{
	struct alert_fold	*f;
	size_t			 b;

	for (b = 0; b < ALERT_FOLD_BUCKETS; b++)
		while ((f = a->fold[b]) != NULL) {
			a->fold[b] = f->next;
			alert_fold_flush(a, f);
		}
}

int
alert_ready(const struct alert *a)
{
	return rconn_up(a->rc) || a->spool_fd != -1;
}

int
alert_in_flight(const struct alert *a)
{
	return rconn_up(a->rc) && a->inflight > 0;
}

void
alert_hurry(struct alert *a)
{
	if (a->box.n > 0)
		rconn_hurry(a->rc);
}

int
alert_connecting(const struct alert *a)
{
	return a->box.n > 0 && rconn_connecting(a->rc);
}

void
alert_free(struct alert *a)
{
	size_t			 i, lost = 0;

	if (a == NULL)
		return;
	rconn_free(a->rc);
	a->rc = NULL;		/* the loop is over: nothing more is sent */
	alert_flush(a);		/* folded alerts still owed go with the rest, to the spool */
	alert_spool_compact(a);
	/* what was not acknowledged, to the spool: the read part of it is still there */
	for (i = 0; i < a->box.n; i++)
		if (alert_spill(a, alert_at(&a->box, i)) == -1)
			lost++;
	if (lost > 0) {
		a->m->alerts_dropped += lost;
		log_warnx("alert_free: %zu alerts not delivered to Redis%s", lost,
		    a->spool_fd == -1 ? " (no redis.spool)" : " (spool full)");
	} else if (a->box.n > 0)
		log_info("alert_free: %zu alerts kept in %s for the next start",
		    a->box.n, a->spool_path);
	if (a->spool_fd != -1)
		close(a->spool_fd);
	alert_ring_free(&a->box);
	alert_ring_free(&a->spool);
	if (a->ev_fold)
		event_free(a->ev_fold);
	logrepeat_free(a->publish_log);
	free(a->channel);
	free(a->stream);
	free(a->spool_path);
	free(a);
}
