/* yamlfile: a YAML file bounded in nesting, keys, aliases and documents before libyaml builds its document. */
#include <stdio.h>
#include <stdlib.h>

#include <yaml.h>

#include "chatmon/yamlfile.h"

#define YAMLFILE_STR_(x)	#x
#define YAMLFILE_STR(x)		YAMLFILE_STR_(x)

int
yamlfile_check(const char *buf, size_t len, size_t *line, const char **why)
{
	yaml_parser_t	 p;
	yaml_event_t	 ev;
	yaml_event_type_t type;
	/* per open collection: a mapping?, and its nodes (a key and a value each) */
	int		 is_map[YAMLFILE_MAX_DEPTH + 2];
	size_t		 nodes[YAMLFILE_MAX_DEPTH + 2];
	int		 depth = 0, docs = 0, aliases = 0, rc = 0;

	if (!yaml_parser_initialize(&p))
		return -2;
	yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
	for (;;) {
		if (!yaml_parser_parse(&p, &ev)) {
			/* libyaml fails some allocations without saying so */
			if (p.error == YAML_MEMORY_ERROR || p.error == YAML_NO_ERROR)
				rc = -2;
			break;
		}
		type = ev.type;
		*line = ev.start_mark.line + 1;
		if (depth > 0 && (type == YAML_SCALAR_EVENT ||
		    type == YAML_ALIAS_EVENT || type == YAML_SEQUENCE_START_EVENT ||
		    type == YAML_MAPPING_START_EVENT) && is_map[depth] &&
		    ++nodes[depth] > 2 * (size_t)YAMLFILE_MAX_KEYS) {
			*why = "a mapping of more than "
			    YAMLFILE_STR(YAMLFILE_MAX_KEYS) " keys";
			rc = -1;
		} else if (type == YAML_SEQUENCE_START_EVENT ||
		    type == YAML_MAPPING_START_EVENT) {
			if (++depth > YAMLFILE_MAX_DEPTH) {
				*why = "nested deeper than "
				    YAMLFILE_STR(YAMLFILE_MAX_DEPTH) " levels";
				rc = -1;
			} else {
				is_map[depth] = type == YAML_MAPPING_START_EVENT;
				nodes[depth] = 0;
			}
		} else if (type == YAML_SEQUENCE_END_EVENT ||
		    type == YAML_MAPPING_END_EVENT)
			depth--;
		else if (type == YAML_ALIAS_EVENT &&
		    ++aliases > YAMLFILE_MAX_ALIASES) {
			*why = "more than " YAMLFILE_STR(YAMLFILE_MAX_ALIASES)
			    " aliases (*name)";
			rc = -1;
		} else if (type == YAML_DOCUMENT_START_EVENT && ++docs > 1) {
			*why = "more than one YAML document";
			rc = -1;
		}
		yaml_event_delete(&ev);
		if (rc == -1 || type == YAML_STREAM_END_EVENT)
			break;
	}
	yaml_parser_delete(&p);
	return rc;
}

size_t
yamlfile_error_line(const yaml_parser_t *p, const char *buf, size_t len)
{
	size_t	i, line = 1;

	if (p->error != YAML_READER_ERROR)
		return p->problem_mark.line + 1;
	/* the reader's errors have an offset and no mark */
	for (i = 0; buf != NULL && i < p->problem_offset && i < len; i++)
		if (buf[i] == '\n')
			line++;
	return line;
}
