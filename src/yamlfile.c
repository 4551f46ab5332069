/* yamlfile: a YAML file read whole, bounded in size and nesting before libyaml builds its document. */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <yaml.h>

#include "chatmon/yamlfile.h"

int
yamlfile_read(const char *path, size_t max, char **bufp, size_t *lenp)
{
	struct stat	 st;
	char		*buf = NULL, *nb;
	size_t		 len = 0, cap = 0;
	ssize_t		 n;
	int		 fd, saved;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	if (fstat(fd, &st) == -1)
		goto err;
	if (S_ISDIR(st.st_mode)) {
		errno = EISDIR;
		goto err;
	}
	for (;;) {
		if (len + 1 >= cap) {	/* room for the NUL */
			if (cap > max) {
				errno = EFBIG;
				goto err;
			}
			cap = cap ? cap * 2 : 4096;
			if ((nb = realloc(buf, cap)) == NULL)
				goto err;
			buf = nb;
		}
		if ((n = read(fd, buf + len, cap - len - 1)) == -1) {
			if (errno == EINTR)
				continue;
			goto err;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max) {
			errno = EFBIG;
			goto err;
		}
	}
	close(fd);
	buf[len] = '\0';
	*bufp = buf;
	*lenp = len;
	return 0;
err:
	saved = errno;
	free(buf);
	close(fd);
	errno = saved;
	return -1;
}

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
