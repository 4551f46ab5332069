/* notify: systemd's readiness protocol and watchdog (libsystemd's sd_notify), driven from the loop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <systemd/sd-daemon.h>

#include "chatmon/log.h"
#include "chatmon/notify.h"

/*
 * libsystemd's sd_notify rather than the datagram protocol by hand: Debian
 * packages it, it knows the abstract socket names and every corner of the
 * protocol, and chatmond runs under systemd anyway.
 */

struct notify {
	struct event	*watchdog;
	char		 last[256];	/* the STATUS= last sent */
};

static void
notify_send(const char *msg)
{
	int	rc;

	if ((rc = sd_notify(0, msg)) < 0)
		log_warnx("notify_send: sd_notify: %s", strerror(-rc));
}

static void
notify_ping(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	notify_send("WATCHDOG=1");
}

struct notify *
notify_new(struct event_base *base)
{
	struct notify	*n;
	struct timeval	 tv;
	uint64_t	 usec = 0;

	if ((n = calloc(1, sizeof(*n))) == NULL)
		return NULL;
	if (getenv("NOTIFY_SOCKET") == NULL)
		return n;
	if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
		if ((n->watchdog = event_new(base, -1, EV_PERSIST, notify_ping,
		    n)) == NULL) {
			free(n);
			return NULL;
		}
		tv.tv_sec = (time_t)(usec / 2 / 1000000);
		tv.tv_usec = (suseconds_t)(usec / 2 % 1000000);
		evtimer_add(n->watchdog, &tv);
		log_info("notify_new: watchdog every %llu ms",
		    (unsigned long long)(usec / 2000));
	}
	return n;
}

void
notify_ready(struct notify *n, const char *status)
{
	char	msg[300];

	snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s", status);
	snprintf(n->last, sizeof(n->last), "%s", status);
	notify_send(msg);
}

void
notify_reloading(struct notify *n)
{
	struct timespec	ts;
	char		msg[64];

	(void)n;
	/* systemd 253+ wants the time to tell this reload from the next */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
	    (unsigned long long)ts.tv_sec * 1000000 +
	    (unsigned long long)ts.tv_nsec / 1000);
	notify_send(msg);
}

void
notify_stopping(struct notify *n)
{
	(void)n;
	notify_send("STOPPING=1");
}

void
notify_status(struct notify *n, const char *status)
{
	char	msg[300];

	if (strcmp(n->last, status) == 0)
		return;
	snprintf(n->last, sizeof(n->last), "%s", status);
	snprintf(msg, sizeof(msg), "STATUS=%s", status);
	notify_send(msg);
}

void
notify_free(struct notify *n)
{
	if (n == NULL)
		return;
	if (n->watchdog != NULL)
		event_free(n->watchdog);
	free(n);
}
