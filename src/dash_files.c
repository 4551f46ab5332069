/* dash_files: the page's files: where they are (dashboard.root, or the build tree's), how lws serves them, the headers that keep the page to its own origin, and the Host every request must name. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "chatmon/access.h"
#include "chatmon/log.h"
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

/*
 * DNS rebinding: a page of http://rebind.example:8081 whose name is then
 * pointed at 127.0.0.1 reaches the dashboard as its own origin, Host and
 * Origin both the attacker's, and the browser lets it read the answers.
 * So every request (the files, /api/, /feed) must name the dashboard in
 * its Host: an address, localhost, dashboard.listen's host, the host of
 * dashboard.public_url or of dashboard.allowed_origins
 * (access_host_ok). Otherwise 421, each refused name logged once.
 */
static void
dash_files_misdirected(struct dash *d, const char *host)
{
	char	h[256];
	int	port;
	size_t	i;

	d->misdirected++;
	if (access_host_split(host, h, sizeof(h), &port) == -1)
		snprintf(h, sizeof(h), "(malformed)");
	h[DASH_MISDIR_LEN - 1] = '\0';
	for (i = 0; i < d->nmisdir && i < DASH_MISDIR_LOGGED; i++)
		if (strcmp(d->misdir[i], h) == 0)
			return;
	if (d->nmisdir < DASH_MISDIR_LOGGED) {
		memcpy(d->misdir[d->nmisdir++], h, strlen(h) + 1);	/* cut above */
		log_warnx("dash_files_host: requests for Host %s refused (421): "
		    "not a name of this dashboard (DNS rebinding?); if it is, "
		    "set dashboard.public_url to the URL it is opened at", h);
	} else if (d->nmisdir == DASH_MISDIR_LOGGED) {
		d->nmisdir++;
		log_warnx("dash_files_host: more Host names refused, not logged "
		    "any more (%llu requests so far)",
		    (unsigned long long)d->misdirected);
	}
}

int
dash_files_host_ok(struct dash *d, struct lws *wsi)
{
	const struct config_dashboard	*c = &d->cfg->dashboard;
	char				 host[300];
	int				 n;

	if ((n = lws_hdr_total_length(wsi, WSI_TOKEN_HOST)) <= 0)
		return 1;		/* not a browser: they all send Host */
	if ((size_t)n >= sizeof(host) ||
	    lws_hdr_copy(wsi, host, sizeof(host), WSI_TOKEN_HOST) != n)
		host[0] = '\0';	/* too long for a name: refused as malformed */
	if (access_host_ok(host, c->listen.host, c->public_url,
	    &c->allowed_origins))
		return 1;
	dash_files_misdirected(d, host);
	lws_return_http_status(wsi, DASH_MISDIRECTED, "this dashboard does not "
	    "answer to that Host name: open it by its address, localhost or "
	    "the name of dashboard.public_url");
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
		/* through the log: in its format (log.format: json) */
		log_warnx("dashboard: %s has no page (not installed): serving "
		    "the build tree's, %s", root, d->root);
		return 0;
	}
	log_errline("chatmon: dashboard: %s%s: %s (dashboard.root)", root,
	    in == 0 ? "/index.html" : "", strerror(e));
	log_errline("chatmon: dashboard: %s", dflt ?
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
