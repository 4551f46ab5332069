/* chatmon: the supervisor's and auditor's command-line tool (its verbs arrive with the rules, SLA and alert modules). */
#include <stdio.h>
#include <string.h>

#include "chatmon/util.h"

static int
usage(FILE *f)
{
	fprintf(f,
	    "usage: chatmon --version\n"
	    "       chatmon --help\n"
	    "\n"
	    "chatmon is the offline and supervisor tool of chatmond. This\n"
	    "version has no commands yet; the daemon is chatmond(8).\n");
	return f == stdout ? 0 : 2;
}

int
main(int argc, char **argv)
{
	if (argc == 2 && (strcmp(argv[1], "--version") == 0 ||
	    strcmp(argv[1], "-V") == 0)) {
		printf("chatmon %s\n", CHATMON_VERSION);
		return 0;
	}
	if (argc == 2 && (strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0))
		return usage(stdout);
	if (argc >= 2)
		fprintf(stderr, "chatmon: unknown command '%s'\n", argv[1]);
	return usage(stderr);
}
