/* rulesfp: `chatmon rules fp`: the false positives supervisors marked, per rule, from the dashboard's handling hash in Redis. */
#ifndef CHATMON_RULESFP_H
#define CHATMON_RULESFP_H

/*
 * argv[0] is "fp". Reads P chatmon:alerts:handling once and prints a
 * table (or --json). Returns the exit code: 0, 1 when Redis cannot be
 * read or the configuration is bad, 2 on a usage error. default_config is
 * read when -c is not given (the built-in defaults when it is missing).
 */
int	rulesfp_main(int argc, char **argv, const char *default_config);

#endif
