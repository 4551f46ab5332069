/* passwd: `chatmon passwd`: add or replace a dashboard user in the users file. */
#ifndef CHATMON_PASSWD_H
#define CHATMON_PASSWD_H

/*
 * argv[0] is "passwd": -f FILE USER [viewer|supervisor]. The password is
 * read from standard input (twice, without echo, on a terminal). Returns
 * the exit code: 0 done, 1 an error (said on stderr), 2 a usage error.
 */
int	passwd_main(int argc, char **argv);

#endif
