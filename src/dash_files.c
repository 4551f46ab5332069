/* dash_files: the page's files: where they are (dashboard.root, or the build tree's), how lws serves them, and the headers that keep the page to its own origin. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "dash_int.h"

/* The page's headers: its own origin only, nothing inline, no sniffing. */
int
dash_files_headers(struct lws *wsi, struct lws_process_html_args *args)
{
	static const struct {
		const char *name, *value;
	} h[] = {
		{ "content-security-policy:", "default-src 'self'; connect-src "
		    "'self'; img-src 'self' data:; style-src 'self'; "
		    "frame-ancestors 'none'" },
		{ "x-content-type-options:", "nosniff" },
		{ "referrer-policy:", "no-referrer" },
		{ "cache-control:", "no-cache" },
	};
	unsigned char	*p = (unsigned char *)args->p;
	size_t		 i;

	for (i = 0; i < UTIL_NELEM(h); i++)
		if (lws_add_http_header_by_name(wsi, (const unsigned char *)h[i].name,
		    (const unsigned char *)h[i].value, (int)strlen(h[i].value), &p,
		    (unsigned char *)args->p + args->max_len))
			return -1;
	args->max_len -= (int)(p - (unsigned char *)args->p);
	args->p = (char *)p;
	return 0;
}

/* The page's files say they are UTF-8; lws's own table does not. */
static const struct lws_protocol_vhost_options dash_mime[] = {
	{ &dash_mime[1], NULL, ".html", "text/html; charset=utf-8" },
	{ &dash_mime[2], NULL, ".js", "text/javascript; charset=utf-8" },
	{ &dash_mime[3], NULL, ".css", "text/css; charset=utf-8" },
	{ NULL, NULL, ".svg", "image/svg+xml" },
};

/*
 * Whether dir holds the page: 1 (its absolute form in out, PATH_MAX), 0
 * without index.html, -1 when dir itself cannot be found; errno says why.
 */
static int
dash_page_in(const char *dir, char *out)
{
	char	index[PATH_MAX + 16];

	if (realpath(dir, out) == NULL)
		return -1;
	snprintf(index, sizeof(index), "%s/index.html", out);
	return access(index, R_OK) == 0;
}

/*
 * The page of the checkout this binary was built in (build/chatmon beside
 * web/dashboard), for a dashboard.root left at the installed default that
 * `make install` has not filled: `build/chatmon dashboard` then works from
 * a checkout as it is. 1 when found.
 */
static int
dash_build_tree_page(char *out)
{
	char	exe[PATH_MAX], dir[PATH_MAX + 32];
	ssize_t	n;
	char	*slash;

	if ((n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) <= 0)
		return 0;
	exe[n] = '\0';
	if ((slash = strrchr(exe, '/')) == NULL)
		return 0;
	*slash = '\0';
	snprintf(dir, sizeof(dir), "%s/../web/dashboard", exe);
	return dash_page_in(dir, out) == 1;
}

/* The page's directory, absolute and holding index.html; 0 or -1 (said). */
int
dash_files_root(struct dash *d)
{
	const char	*root = d->cfg->dashboard.root;
	int		 dflt = strcmp(root, CHATMON_DATADIR "/dashboard") == 0, e, in;

	if ((in = dash_page_in(root, d->root)) == 1)
		return 0;
	e = errno;
	if (dflt && dash_build_tree_page(d->root)) {
		fprintf(stderr, "chatmon: dashboard: %s has no page (not installed): "
		    "serving the build tree's, %s\n", root, d->root);
		return 0;
	}
	fprintf(stderr, "chatmon: dashboard: %s%s: %s (dashboard.root)\n", root,
	    in == 0 ? "/index.html" : "", strerror(e));
	fprintf(stderr, "chatmon: dashboard: %s\n", dflt ?
	    "the page is installed there by `make install`; from a checkout, "
	    "pass -o dashboard.root=$PWD/web/dashboard at its top" :
	    "set dashboard.root to the directory holding the page's index.html "
	    "(a checkout's web/dashboard, or where `make install` put it)");
	return -1;
}


/* The page's mount, "/": lws reads it on every request, it lives as long as d. */
void
dash_files_mount(struct dash *d)
{
	struct lws_http_mount	*mount = &d->mount;

	memset(mount, 0, sizeof(*mount));
	mount->mountpoint = "/";
	mount->mountpoint_len = 1;
	mount->origin = d->root;
	mount->def = "index.html";
	mount->protocol = DASH_PROTOCOL;
	mount->extra_mimetypes = dash_mime;
	mount->origin_protocol = LWSMPRO_FILE;
	mount->cache_revalidate = 1;
}
