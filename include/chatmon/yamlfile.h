/* yamlfile: a YAML file bounded in nesting, keys, aliases and documents before libyaml builds its document (util_read_file reads it). */
#ifndef CHATMON_YAMLFILE_H
#define CHATMON_YAMLFILE_H

#include <stddef.h>

#include <yaml.h>

/*
 * Bounds every file chatmon loads as YAML (the configuration and rule
 * files). libyaml's loader is recursive and slows down with depth (a
 * config nested 100 000 deep took 38 s to refuse): the nesting is
 * checked first, with libyaml's event parser stopping at the first level
 * past the bound, which costs microseconds.
 */
#define YAMLFILE_MAX_DEPTH	32
/*
 * An alias (*name) repeats what its anchor holds wherever it stands: a
 * 65 KB config of aliases to one large mapping made nine million errors,
 * a rule file of aliases to one long list three gigabytes. Files written
 * by people use a few.
 */
#define YAMLFILE_MAX_ALIASES	100
/*
 * Keys are checked for duplicates among those before them: a mapping of
 * 60 000 keys took 12-24 s to refuse. No mapping of a config or rule file
 * needs more (a config's shops are 1 000 at most).
 */
#define YAMLFILE_MAX_KEYS	4096

/*
 * 0 when buf holds at most one YAML document, no collection nested
 * deeper than YAMLFILE_MAX_DEPTH, no mapping of more than
 * YAMLFILE_MAX_KEYS keys and at most YAMLFILE_MAX_ALIASES aliases; -1 with *why and *line (1-based) where a bound was passed;
 * -2 out of memory. Syntax errors are left to the loader, which reports
 * them better.
 */
int	yamlfile_check(const char *buf, size_t len, size_t *line, const char **why);

/* The 1-based line of p's error in buf (libyaml's reader errors have no line of their own). */
size_t	yamlfile_error_line(const yaml_parser_t *p, const char *buf, size_t len);

#endif
