/* tail: `chatmon tail`: the supervisors' live feed of alerts, read from the Redis stream. */
#ifndef CHATMON_TAIL_H
#define CHATMON_TAIL_H

/*
 * argv[0] is "tail". Prints the stream's recent history (--since), then
 * follows it until SIGINT or SIGTERM, riding out Redis outages. One line
 * per alert, readable or (--json) the stored object. Returns the exit code:
 * 0 when stopped by a signal, 1 on a fatal error, 2 on a usage error.
 * default_config is the configuration read when -c is not given.
 */
int	tail_main(int argc, char **argv, const char *default_config);

#endif
