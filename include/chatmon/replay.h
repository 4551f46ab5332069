/* replay: `chatmon replay`: a chat log through the rules and SLA engines on a virtual clock, alerts out. */
#ifndef CHATMON_REPLAY_H
#define CHATMON_REPLAY_H

/*
 * argv[0] is "replay". Reads JSON Lines {"ts","conversation","role",
 * "agent","text"[,"robot"]} from the files (or stdin) and writes every
 * alert, one per line, then {"type":"summary",...}. Returns the exit code.
 */
int	replay_main(int argc, char **argv, const char *default_config);

#endif
