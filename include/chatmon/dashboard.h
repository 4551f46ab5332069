/* dashboard: `chatmon dashboard`: the supervisors' page and its live feed, from what chatmond keeps in Redis (lws and hiredis on one libevent loop). */
#ifndef CHATMON_DASHBOARD_H
#define CHATMON_DASHBOARD_H

/*
 * argv[0] is "dashboard". Serves the page of dashboard.root and the feed
 * of docs/dashboard.md on dashboard.listen until SIGINT or SIGTERM, riding
 * out Redis outages. Returns the exit code: 0 when stopped by a signal, 1
 * when it cannot start, 2 on a usage error. default_config is read when -c
 * is not given.
 */
int	dashboard_main(int argc, char **argv, const char *default_config);

#endif
