/* pushd: `chatmon notify`, the push worker: alerts from the stream through a consumer group to the routes they match (docs/notify.md). */
#ifndef CHATMON_PUSHD_H
#define CHATMON_PUSHD_H

/* The command: argv[0] is "notify". Exit status 0, 1 (configuration, start) or 2 (usage). */
int	pushd_main(int argc, char **argv, const char *default_config);

#endif
