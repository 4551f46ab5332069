/* notify: systemd's readiness protocol and watchdog (libsystemd's sd_notify), driven from the loop. */
#ifndef CHATMON_NOTIFY_H
#define CHATMON_NOTIFY_H

struct event_base;
struct notify;

/*
 * Without NOTIFY_SOCKET every call is a no-op. With WATCHDOG_USEC set,
 * WATCHDOG=1 is sent every half of it from a timer on base: if the loop
 * stops turning, the pings stop and systemd restarts chatmond.
 */
struct notify *notify_new(struct event_base *base);	/* NULL on ENOMEM */
void	notify_ready(struct notify *, const char *status);
void	notify_reloading(struct notify *);
void	notify_stopping(struct notify *);
/* Sends STATUS= when it differs from the last one sent. */
void	notify_status(struct notify *, const char *status);
void	notify_free(struct notify *);

#endif
