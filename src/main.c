/* main: chatmond's start-up, signals, reload and tear-down; wires the modules on one event_base. */
#include <errno.h>
#include <malloc.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "chatmon/admin.h"
#include "chatmon/config.h"
#include "chatmon/log.h"
#include "chatmon/metrics.h"
#include "chatmon/notify.h"
#include "chatmon/relay.h"
#include "chatmon/session.h"

struct chatmond {
	const char		*path;
	char			**overrides;
	size_t			 n_overrides;
	struct config		*cfg;
	struct event_base	*base;
	struct metrics		 metrics;
	struct relay		*relay;
	struct session_server	*srv;
	struct event		*ev_term, *ev_int, *ev_hup, *ev_grace, *ev_status, *ev_settle;
	struct event		*ev_usr1, *ev_usr2;
	struct admin		*admin;
	struct notify		*notify;
	int			 stopping;
	int			 hard;		/* a second signal: no more waiting */
	struct chatmond_reload	*reload;	/* the one under way, or NULL */
	int			 reload_again;	/* SIGHUP while one was under way */
	pthread_t		 retire;	/* chatmond_retire's, while retiring */
	int			 retiring;
};

/*
 * A reload's reading and compiling (the configuration, the rule packs,
 * the model: a second and more for the default pack) runs on a thread of
 * its own, so the relay does not stop while it does (docs/operations.md).
 * The thread runs only pure code over what it owns here, and says it is
 * done through the pipe; the loop's thread applies the result.
 */
struct chatmond_reload {
	pthread_t		 thread;
	const char		*path;		/* the daemon's, outlive the thread */
	char			**overrides;
	size_t			 n_overrides;
	struct config		*cfg;		/* results, owned here */
	struct relay_next	*next;
	struct sbuf		 errs;
	int			 done[2];	/* pipe: the thread writes a byte at the end */
	struct event		*ev_done;
};

/* --help: stdout and 0; a usage error: stderr and 2. */
static void
usage(FILE *f)
{
	fprintf(f, "usage: chatmond -c FILE [-o key.path=value]... [-t] [-V]\n");
	if (f == stdout)
		fprintf(f, "\n"
		    "The chat-monitor relay: agents' workbenches connect to listen,\n"
		    "chatmond relays them to upstream and inspects every chat turn\n"
		    "(chatmond(8), docs/).\n"
		    "-c FILE            the YAML configuration (chatmond.yaml(5))\n"
		    "-o key.path=value  override a key, e.g. -o log.level=debug\n"
		    "-t                 check the configuration and exit: 0 when good,\n"
		    "                   1 with every error as FILE:LINE: message\n"
		    "-V, --version      print the version\n"
		    "-h, --help         this text\n");
	exit(f == stdout ? 0 : 2);
}

/* The one-line summary systemd shows (STATUS=). */
static void
chatmond_status(const struct chatmond *d, char *buf, size_t len)
{
	snprintf(buf, len, "agents=%llu conversations=%zu open_rounds=%zu "
	    "alerts_queued=%llu", (unsigned long long)d->metrics.agents_active,
	    relay_conversations(d->relay), relay_open_rounds(d->relay),
	    (unsigned long long)d->metrics.alerts_queued);
}

static void
chatmond_on_status(evutil_socket_t fd, short what, void *arg)
{
	struct chatmond	*d = arg;
	char		 st[256];

	(void)fd;
	(void)what;
	chatmond_status(d, st, sizeof(st));
	notify_status(d->notify, st);
}

static void
chatmond_stop(struct chatmond *d)
{
	/* leave the loop; tear-down happens outside every callback */
	event_base_loopbreak(d->base);
}

/*
 * Every session closed: stop once Redis has answered for the alerts on
 * their way to it (a few milliseconds), so that none it holds is counted
 * as lost or spooled again, and once a connection to Redis being made (a
 * start, a reconnect) has taken the turns that waited for it: dropped,
 * the next instance would not know those conversations. The shutdown
 * grace bounds the wait.
 */
static void
chatmond_settle(evutil_socket_t fd, short what, void *arg)
{
	struct chatmond	*d = arg;
	struct timeval	 tv = { 0, 10000 };

	(void)fd;
	(void)what;
	if (relay_alerts_in_flight(d->relay) || relay_connecting(d->relay) > 0)
		evtimer_add(d->ev_settle, &tv);
	else
		chatmond_stop(d);
}

static void
chatmond_drained(void *arg)
{
	struct chatmond	*d = arg;

	log_info("main: every session closed");
	relay_alerts_flush(d->relay);	/* no turn comes any more: nothing to fold into */
	/* what waits for Redis in a backoff (after a hang) is not given up */
	relay_hurry(d->relay);
	chatmond_settle(-1, 0, d);
}

static void
chatmond_grace(evutil_socket_t fd, short what, void *arg)
{
	struct chatmond	*d = arg;

	(void)fd;
	(void)what;
	if (session_server_count(d->srv) > 0)
		log_warnx("main: %zu sessions still open after the shutdown grace "
		    "period, closing them hard", session_server_count(d->srv));
	else
		log_warnx("main: Redis did not answer for the last alerts or "
		    "turns within the shutdown grace period");
	chatmond_stop(d);
}

static void
chatmond_on_term(evutil_socket_t sig, short what, void *arg)
{
	struct chatmond	*d = arg;
	struct timeval	 tv;

	(void)what;
	if (d->stopping) {
		log_info("main: signal %d again, stopping now", (int)sig);
		d->hard = 1;
		chatmond_stop(d);
		return;
	}
	d->stopping = 1;
	notify_stopping(d->notify);
	log_info("main: signal %d, closing %zu sessions", (int)sig,
	    session_server_count(d->srv));
	tv.tv_sec = (time_t)(d->cfg->limits.shutdown_grace_ms / 1000);
	tv.tv_usec = (suseconds_t)(d->cfg->limits.shutdown_grace_ms % 1000 * 1000);
	evtimer_add(d->ev_grace, &tv);
	session_server_drain(d->srv, chatmond_drained, d);
}

static void
chatmond_reload_free(struct chatmond_reload *rl)
{
	if (rl == NULL)
		return;
	if (rl->ev_done != NULL)
		event_free(rl->ev_done);
	if (rl->done[0] >= 0)
		close(rl->done[0]);
	if (rl->done[1] >= 0)
		close(rl->done[1]);
	relay_next_free(rl->next);
	config_free(rl->cfg);
	sbuf_free(&rl->errs);
	free(rl);
}

/* The reload's thread: only pure code, over rl alone. */
static void *
chatmond_reload_work(void *arg)
{
	struct chatmond_reload	*rl = arg;

	if ((rl->cfg = config_load(rl->path, rl->overrides, rl->n_overrides,
	    &rl->errs)) != NULL)
		rl->next = relay_prepare(rl->cfg, &rl->errs);
	/*
	 * a pack compiled and then refused was freed here: its pages go back
	 * too, as a replaced one's do (found by review: about 47 MiB held
	 * until the next good reload)
	 */
	if (rl->next == NULL)
		malloc_trim(0);
	/* one byte in an empty pipe: it fits, only a signal can interrupt it */
	while (write(rl->done[1], "", 1) == -1 && errno == EINTR)
		;
	return NULL;
}

static void	chatmond_on_reloaded(evutil_socket_t, short, void *);

/* A helper thread; signals stay the loop's: it starts with all of them blocked. */
static int
chatmond_thread(pthread_t *t, void *(*fn)(void *), void *arg)
{
	sigset_t	all, mask;
	int		e;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &mask);
	e = pthread_create(t, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &mask, NULL);
	return e;
}

/*
 * What a reload replaced, or compiled and then could not use, is freed on
 * a thread of its own, and the heap trimmed after it: on the loop,
 * unmapping the JIT code of a pack's patterns and trimming (perf: munmap
 * and madvise, each a TLB shootdown on every core) stalled every chat
 * 170-280 ms a reload. The trim also gives back what the reload's
 * compiling left in the heap (see M_ARENA_MAX in main).
 */
static void *
chatmond_retire_work(void *arg)
{
	relay_next_free(arg);
	malloc_trim(0);
	return NULL;
}

static void
chatmond_retire_join(struct chatmond *d)
{
	if (d->retiring) {
		pthread_join(d->retire, NULL);
		d->retiring = 0;
	}
}

static void
chatmond_retire(struct chatmond *d, struct relay_next *old)
{
	if (old == NULL)
		return;
	chatmond_retire_join(d);	/* the last one's: long done, reloads are seconds apart */
	if (chatmond_thread(&d->retire, chatmond_retire_work, old) == 0)
		d->retiring = 1;
	else
		chatmond_retire_work(old);	/* no thread: on the loop, as before */
}

static void
chatmond_reload_start(struct chatmond *d)
{
	struct chatmond_reload	*rl;
	char			 st[256];
	int			 e;

	notify_reloading(d->notify);
	if ((rl = calloc(1, sizeof(*rl))) == NULL) {
		e = errno;
		goto err;
	}
	rl->done[0] = rl->done[1] = -1;
	sbuf_init(&rl->errs);
	rl->path = d->path;
	rl->overrides = d->overrides;
	rl->n_overrides = d->n_overrides;
	if (pipe2(rl->done, O_CLOEXEC) == -1 ||
	    (rl->ev_done = event_new(d->base, rl->done[0], EV_READ,
	    chatmond_on_reloaded, d)) == NULL ||
	    event_add(rl->ev_done, NULL) == -1) {
		e = errno;
		goto err;
	}
	if ((e = chatmond_thread(&rl->thread, chatmond_reload_work, rl)) != 0)
		goto err;
	d->reload = rl;
	log_info("main: reload: reading %s", d->path);
	return;
err:
	log_errx("main: reload: cannot start one: %s; the running configuration "
	    "stays", strerror(e));
	d->metrics.reload_failures++;
	chatmond_reload_free(rl);
	chatmond_status(d, st, sizeof(st));
	notify_ready(d->notify, st);
}

/* A path a reload cannot change live: kept as it was, and the log says so. */
static void
chatmond_keep_str(char **nv, const char *ov, const char *key)
{
	if ((*nv == NULL) == (ov == NULL) && (*nv == NULL ||
	    strcmp(*nv, ov) == 0))
		return;
	log_warnx("main: reload: %s cannot change live, keeping %s", key,
	    ov != NULL ? ov : "none");
	free(*nv);
	*nv = NULL;
	if (ov != NULL && (*nv = strdup(ov)) == NULL)
		fatal("main: reload: strdup");
}

/*
 * The reload's thread is done: apply what it made, or keep the running
 * configuration when a file was bad (every error logged as FILE:LINE:
 * message). What is bound at start (the listener, the admin address,
 * lws's connect timeout, the spool, the upstream's CA) is kept and reported.
 */
static void
chatmond_on_reloaded(evutil_socket_t fd, short what, void *arg)
{
	struct chatmond		*d = arg;
	struct chatmond_reload	*rl = d->reload;
	struct config		*nc, *old = d->cfg;
	struct relay_next	*next, *was = NULL;
	char			 st[256];

	(void)fd;
	(void)what;
	pthread_join(rl->thread, NULL);
	d->reload = NULL;
	nc = rl->cfg;
	next = rl->next;
	rl->cfg = NULL;
	rl->next = NULL;
	/*
	 * A SIGTERM came while it compiled: the drain goes on with the
	 * configuration it began with, and systemd, told STOPPING=1, must not
	 * hear READY=1 again
	 */
	if (d->stopping) {
		log_info("main: reload: stopping, the reload is thrown away");
		chatmond_retire(d, next);
		config_free(nc);
		chatmond_reload_free(rl);
		return;
	}
	/* the files first: a reload that fails changes nothing */
	if (next == NULL)
		goto bad;
	/*
	 * The conversations' state turned on or off is a restart's: the
	 * records of open rounds would stay open where nobody answers them,
	 * and be raised later as breaches of chats answered meanwhile (found
	 * by review). Kept, and said.
	 */
	if ((nc->redis.takeover_ms == 0) != (old->redis.takeover_ms == 0)) {
		log_warnx("main: reload: redis.takeover cannot turn the state in "
		    "Redis %s live, keeping %llums", old->redis.takeover_ms ?
		    "off" : "on", (unsigned long long)old->redis.takeover_ms);
		nc->redis.takeover_ms = old->redis.takeover_ms;
	}
	if (session_server_prepare(d->srv, nc, &rl->errs) == -1) {
		chatmond_retire(d, next);
		goto bad;
	}
	if (relay_apply(d->relay, nc, next, &was, &rl->errs) == -1)	/* takes next */
		goto bad;
	chatmond_retire(d, was);
	if (strcmp(nc->listen.host, old->listen.host) != 0 ||
	    nc->listen.port != old->listen.port) {
		log_warnx("main: reload: listen cannot change live, keeping %s:%d",
		    old->listen.host, old->listen.port);
		nc->listen = old->listen;
	}
	if (nc->listen_reuseport != old->listen_reuseport) {
		log_warnx("main: reload: listen_reuseport cannot change live, "
		    "keeping %s", old->listen_reuseport ? "true" : "false");
		nc->listen_reuseport = old->listen_reuseport;
	}
	if (strcmp(nc->admin.host, old->admin.host) != 0 ||
	    nc->admin.port != old->admin.port) {
		log_warnx("main: reload: admin cannot change live, keeping %s:%d",
		    old->admin.host, old->admin.port);
		nc->admin = old->admin;
	}
	if (nc->limits.connect_timeout_ms != old->limits.connect_timeout_ms) {
		log_warnx("main: reload: limits.connect_timeout cannot change "
		    "live, keeping %llums",
		    (unsigned long long)old->limits.connect_timeout_ms);
		nc->limits.connect_timeout_ms = old->limits.connect_timeout_ms;
	}
	/* the outbox holds the spool open from the start: say so, keep it */
	chatmond_keep_str(&nc->redis.spool, old->redis.spool, "redis.spool");
	/* the upstream's TLS context is made once, at start */
	chatmond_keep_str(&nc->upstream_tls.ca, old->upstream_tls.ca,
	    "upstream_tls.ca");
	session_server_set_config(d->srv, nc);
	admin_set_config(d->admin, nc);
	log_set_level(nc->log_level);
	log_set_json(nc->log_json);
	d->cfg = nc;
	config_free(old);
	log_info("main: reload: configuration reloaded from %s", d->path);
	d->metrics.reloads_ok++;	/* counted once applied: a counter never falls */
	goto done;
bad:
	log_errlines("main: reload: ", &rl->errs);
	log_errx("main: reload rejected, the running configuration stays");
	d->metrics.reload_failures++;
	config_free(nc);
done:
	chatmond_reload_free(rl);
	chatmond_status(d, st, sizeof(st));
	notify_ready(d->notify, st);
	if (d->reload_again && !d->stopping) {
		d->reload_again = 0;
		chatmond_reload_start(d);
	}
}

/*
 * SIGUSR1, SIGUSR2: nothing to do (the log is stderr, there is no file to
 * reopen), but their default action ends the process without its drain,
 * and operators send SIGUSR1 to other daemons out of habit.
 */
static void
chatmond_on_usr(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	(void)arg;
	log_warnx("main: signal %d ignored (SIGHUP reloads, SIGTERM stops)",
	    (int)sig);
}

/*
 * SIGHUP: read the files again, off the loop. One more SIGHUP while a
 * reload is under way asks for one more after it (the files may have
 * changed since it read them); any number of them, one.
 */
static void
chatmond_on_hup(evutil_socket_t sig, short what, void *arg)
{
	struct chatmond	*d = arg;

	(void)sig;
	(void)what;
	if (d->stopping) {
		log_info("main: reload: stopping, no reload");
		return;
	}
	if (d->reload != NULL) {
		d->reload_again = 1;
		log_info("main: reload: one is under way, another follows it");
		return;
	}
	chatmond_reload_start(d);
}

static void
chatmond_log_stats(const struct chatmond *d)
{
	struct sbuf	line;

	sbuf_init(&line);
	if (metrics_format_line(&d->metrics, &line) == 0)
		log_info("main: stats: %s", sbuf_str(&line));
	sbuf_free(&line);
}

int
main(int argc, char **argv)
{
	struct chatmond	 d;
	struct sbuf	 errs;
	sigset_t	 sigs, early;
	char		**ov = NULL, **nov;
	int		 ch, check = 0, rc = 1, i;

	memset(&d, 0, sizeof(d));
	/*
	 * SIGHUP, SIGUSR1 and SIGUSR2 wait until the loop handles them: their
	 * default action ends the process, and loading the configuration and
	 * compiling the rules take seconds, in which a `systemctl reload` or
	 * a stray SIGUSR1 killed chatmond. Blocked, one that comes meanwhile
	 * is delivered once the handlers are in: a SIGHUP is then a reload.
	 */
	sigemptyset(&early);
	sigaddset(&early, SIGHUP);
	sigaddset(&early, SIGUSR1);
	sigaddset(&early, SIGUSR2);
	sigprocmask(SIG_BLOCK, &early, NULL);
	/*
	 * One malloc arena: with an arena of their own, the reload's and the
	 * retiring threads left the packs they compiled and freed mapped in
	 * them. With one, and malloc_trim after each reload (chatmond_retire):
	 * 78 -> 106 MiB over six reloads of the default pack, not 78 -> 177.
	 */
	mallopt(M_ARENA_MAX, 1);
	log_init("chatmond", LOG_LVL_INFO);
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};

	while ((ch = getopt_long(argc, argv, "c:o:tVh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			d.path = optarg;
			break;
		case 'o':
			if ((nov = realloc(ov, (d.n_overrides + 1) * sizeof(*ov))) == NULL)
				fatal("main: realloc");
			ov = nov;
			ov[d.n_overrides++] = optarg;
			break;
		case 't':
			check = 1;
			break;
		case 'V':
			printf("chatmond %s\n", CHATMON_VERSION);
			free(ov);
			return 0;
		case 'h':
			free(ov);
			usage(stdout);
			break;
		default:
			usage(stderr);
		}
	}
	if (d.path == NULL || optind != argc)
		usage(stderr);
	d.overrides = ov;

	sbuf_init(&errs);
	if ((d.cfg = config_load(d.path, ov, d.n_overrides, &errs)) == NULL) {
		log_errlines(NULL, &errs);
		log_errx("main: %zu error%s in the configuration", errs.lines,
		    errs.lines == 1 ? "" : "s");
		goto out;
	}
	log_set_level(d.cfg->log_level);
	log_set_json(d.cfg->log_json);
	if (check) {
		/* both have their say: every error at once */
		if ((relay_check(d.cfg, &errs) == -1) |
		    (session_check(d.cfg, &errs) == -1)) {
			/* summed up as a bad file is (docs/operations.md, "Logs") */
			log_errlines(NULL, &errs);
			log_errx("main: %zu error%s in the configuration",
			    errs.lines, errs.lines == 1 ? "" : "s");
			goto out;
		}
		fprintf(stderr, "chatmond: configuration %s is valid\n", d.path);
		rc = 0;
		goto out;
	}
	/*
	 * libevent's default, coarse clock (a 4 ms step here) for the loop's
	 * timers: its precise one (EVENT_BASE_FLAG_PRECISE_TIMER) re-arms a
	 * timerfd at every turn of the loop, a system call per relayed frame.
	 * SLA deadlines, the timers whose milliseconds matter, have a precise
	 * timer of their own (slaclock).
	 */
	if ((d.base = event_base_new()) == NULL) {
		log_errx("main: cannot make the event base");
		goto out;
	}
	if ((d.relay = relay_new(d.base, d.cfg, &d.metrics, &errs)) == NULL) {
		log_errlines(NULL, &errs);
		log_errx("main: cannot start: %zu error%s", errs.lines,
		    errs.lines == 1 ? "" : "s");
		goto out;
	}
	signal(SIGPIPE, SIG_IGN);
	/* out of memory only: said nowhere else */
	if ((d.notify = notify_new(d.base)) == NULL)
		sbuf_line(&errs, "notify_new: out of memory");
	if (d.notify == NULL ||
	    (d.admin = admin_new(d.base, d.cfg, &d.metrics, d.relay, &errs)) == NULL ||
	    (d.srv = session_server_new(d.base, d.cfg, d.relay, &d.metrics,
	    &errs)) == NULL) {
		log_errlines("", &errs);
		log_errx("main: cannot start: %zu error%s", errs.lines,
		    errs.lines == 1 ? "" : "s");
		goto out;
	}
	admin_set_server(d.admin, d.srv);
	d.ev_term = evsignal_new(d.base, SIGTERM, chatmond_on_term, &d);
	d.ev_int = evsignal_new(d.base, SIGINT, chatmond_on_term, &d);
	d.ev_hup = evsignal_new(d.base, SIGHUP, chatmond_on_hup, &d);
	d.ev_usr1 = evsignal_new(d.base, SIGUSR1, chatmond_on_usr, &d);
	d.ev_usr2 = evsignal_new(d.base, SIGUSR2, chatmond_on_usr, &d);
	d.ev_grace = evtimer_new(d.base, chatmond_grace, &d);
	d.ev_settle = evtimer_new(d.base, chatmond_settle, &d);
	d.ev_status = event_new(d.base, -1, EV_PERSIST, chatmond_on_status, &d);
	if (d.ev_term == NULL || d.ev_int == NULL || d.ev_hup == NULL ||
	    d.ev_usr1 == NULL || d.ev_usr2 == NULL ||
	    d.ev_grace == NULL || d.ev_settle == NULL || d.ev_status == NULL ||
	    evsignal_add(d.ev_term, NULL) == -1 ||
	    evsignal_add(d.ev_int, NULL) == -1 || evsignal_add(d.ev_hup, NULL) == -1 ||
	    evsignal_add(d.ev_usr1, NULL) == -1 || evsignal_add(d.ev_usr2, NULL) == -1) {
		log_errx("main: cannot install signal handlers");
		goto out;
	}
	/* the loop handles them now, and those that came meanwhile */
	sigprocmask(SIG_UNBLOCK, &early, NULL);
	log_info("main: chatmond %s listening on %s:%d%s, upstream %s, admin on %s:%d",
	    CHATMON_VERSION, d.cfg->listen.host, d.cfg->listen.port,
	    d.cfg->listen_reuseport ? " (shared: SO_REUSEPORT)" : "",
	    d.cfg->upstream, d.cfg->admin.host, d.cfg->admin.port);
	/* listening, rules loaded: ready */
	{
		char		st[256];
		struct timeval	tv = { 5, 0 };

		chatmond_status(&d, st, sizeof(st));
		notify_ready(d.notify, st);
		evtimer_add(d.ev_status, &tv);
	}

	event_base_dispatch(d.base);
	rc = 0;

out:
	/*
	 * A reload under way is thrown away first, so that the loop turns
	 * below cannot apply it to a server being freed; its thread ends by
	 * itself once the files are compiled. No SIGHUP starts another. The
	 * shutdown's timers go too: the loop turns below may outlast the grace
	 * (a Redis that does not answer), whose callback reads the server.
	 */
	d.stopping = 1;
	if (d.ev_grace != NULL)
		event_del(d.ev_grace);
	if (d.ev_settle != NULL)
		event_del(d.ev_settle);
	if (d.ev_status != NULL)
		event_del(d.ev_status);
	if (d.reload != NULL) {
		pthread_join(d.reload->thread, NULL);
		chatmond_reload_free(d.reload);
		d.reload = NULL;
	}
	chatmond_retire_join(&d);
	/*
	 * Tear-down order (design.md): the lws context first, outside any lws
	 * callback; then let the loop run what lws left behind; then our own
	 * events, the base and libevent's globals, so valgrind sees no leak.
	 */
	if (d.srv != NULL) {
		/* a /ready asked during the loop turns below must not read it */
		admin_set_server(d.admin, NULL);
		session_server_free(d.srv);
		for (i = 0; i < 100 && event_base_loop(d.base, EVLOOP_NONBLOCK) == 0; i++)
			;
		/*
		 * Turns already sent to Redis are applied before we go: the
		 * next instance must find them, so the wait may outlast the
		 * grace. A hung Redis is dropped by rconn after redis.timeout,
		 * which answers them all; a second signal ends it at once.
		 * The day's figures as they end go too (snapshots).
		 */
		relay_final(d.relay);
		/* and the alerts their answers raise (raised by a call sent again) */
		while ((relay_inflight(d.relay) > 0 ||
		    relay_alerts_in_flight(d.relay)) && !d.hard &&
		    event_base_loop(d.base, EVLOOP_ONCE) == 0)
			;
		if (relay_inflight(d.relay) > 0)
			log_warnx("main: exiting with %zu calls to Redis unanswered",
			    relay_inflight(d.relay));
		if (relay_waiting(d.relay) > 0)
			log_warnx("main: exiting with %zu turns never sent to Redis "
			    "(it was away): the next instance will not know them",
			    relay_waiting(d.relay));
		relay_log_figures(d.relay);
	}
	admin_free(d.admin);	/* it reads the relay */
	relay_free(d.relay);	/* its SLA timers are events on the base */
	d.relay = NULL;
	/* after the sink: what it spooled or lost at exit is counted */
	if (d.srv != NULL)
		chatmond_log_stats(&d);
	/*
	 * Freeing the signal events gives the signals their default action
	 * back: one more SIGTERM now (a service manager's, a test's) would end
	 * a clean exit as killed. Blocked, it waits, and dies with the process.
	 */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGUSR1);
	sigaddset(&sigs, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);	/* the other threads are joined */
	if (d.ev_term)
		event_free(d.ev_term);
	if (d.ev_int)
		event_free(d.ev_int);
	if (d.ev_hup)
		event_free(d.ev_hup);
	if (d.ev_usr1)
		event_free(d.ev_usr1);
	if (d.ev_usr2)
		event_free(d.ev_usr2);
	if (d.ev_grace)
		event_free(d.ev_grace);
	if (d.ev_settle)
		event_free(d.ev_settle);
	if (d.ev_status)
		event_free(d.ev_status);
	notify_free(d.notify);
	if (d.base != NULL)
		event_base_free(d.base);
	libevent_global_shutdown();
	config_free(d.cfg);
	sbuf_free(&errs);
	free(ov);
	if (rc == 0 && !check)
		log_info("main: exiting");
	return rc;
}
