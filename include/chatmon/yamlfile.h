/* yamlfile: a YAML file bounded in nesting before libyaml builds its document (util_read_file reads it). */
#ifndef CHATMON_YAMLFILE_H
#define CHATMON_YAMLFILE_H

#include <stddef.h>

/*
 * Bounds every file chatmon loads as YAML (the configuration and rule
 * files). libyaml's loader is recursive and slows down with depth (a
 * config nested 100 000 deep took 38 s to refuse): the nesting is
 * checked first, with libyaml's event parser stopping at the first level
 * past the bound, which costs microseconds.
 */
#define YAMLFILE_MAX_DEPTH	32

/*
 * 0 when no collection in buf is nested deeper than YAMLFILE_MAX_DEPTH;
 * -1 with *line (1-based) where the limit was passed; -2 out of memory.
 * Syntax errors are left to the loader, which reports them better.
 */
int	yamlfile_check_depth(const char *buf, size_t len, size_t *line);

#endif
