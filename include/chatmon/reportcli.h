/* reportcli: `chatmon report`: the figures of some days (SLA, rule hits, false positives, the worst waits) from Redis or from chat logs (--log), as JSON, CSV or HTML on stdout. */
#ifndef CHATMON_REPORTCLI_H
#define CHATMON_REPORTCLI_H

/*
 * argv[0] is "report". Returns the exit code: 0; 1 for a bad day, a
 * range backwards, Redis or the configuration, or a bad --log line or
 * file (the report of the rest is still written); 2 on a usage error.
 * default_config is read when -c is not given (the built-in defaults
 * when it is missing).
 */
int	reportcli_main(int argc, char **argv, const char *default_config);

#endif
