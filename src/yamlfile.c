/* yamlfile: a YAML file bounded in nesting before libyaml builds its document. */
#include <stdlib.h>

#include <yaml.h>

#include "chatmon/yamlfile.h"

int
yamlfile_check_depth(const char *buf, size_t len, size_t *line)
{
	yaml_parser_t	 p;
	yaml_event_t	 ev;
	yaml_event_type_t type;
	int		 depth = 0, rc = 0;

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
		if (type == YAML_SEQUENCE_START_EVENT ||
		    type == YAML_MAPPING_START_EVENT) {
			if (++depth > YAMLFILE_MAX_DEPTH) {
				*line = ev.start_mark.line + 1;
				rc = -1;
			}
		} else if (type == YAML_SEQUENCE_END_EVENT ||
		    type == YAML_MAPPING_END_EVENT)
			depth--;
		yaml_event_delete(&ev);
		if (rc == -1 || type == YAML_STREAM_END_EVENT)
			break;
	}
	yaml_parser_delete(&p);
	return rc;
}
