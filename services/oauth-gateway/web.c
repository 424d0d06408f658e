/*
 * web: the reference web UI, served by the gateway when WEB_UI is on.
 *
 * Two pages (the integrations page at / and a lead's page at
 * /leads/:leadAnalyticsId) and their scripts and styles under /static/, all
 * embedded in the binary (web.h). The pages hold no data: their scripts
 * call the same API the platform's frontend calls, signed in by the
 * platform's session cookie (JWT_COOKIE), which http.c accepts on the API
 * only from these pages (see http_authenticate()). Every file carries an
 * ETag, so a browser revalidates instead of downloading it again.
 *
 * /dev/sign-in is the local stack's stand-in for the platform's login: it
 * mints a session for WEB_UI_DEV_USER and exists only when that is set,
 * which cfg.c allows only beside WEB_UI=on. The pages learn of it from a
 * meta tag that is rewritten as they are served, so they can offer the link
 * exactly when it works.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/http.h>

#include "gateway.h"
#include "http.h"
#include "jwt.h"
#include "log.h"
#include "web.h"
#include "xmalloc.h"

/* How long a helper's session lasts: a working day, like a platform login. */
#define WEB_DEV_SESSION_S (12 * 3600)
#define WEB_DEV_MARKER    "<meta name=\"dev-sign-in\" content=\"\">"
#define WEB_DEV_ON        "<meta name=\"dev-sign-in\" content=\"/dev/sign-in\">"

static const struct embed_file *web_find(const char *name)
{
	return embed_find(web_files, web_files_count, name);
}

/* Does the request's If-None-Match name etag? */
static bool web_fresh(const struct http_req *r, const char *etag)
{
	const char *inm = http_req_header(r, "If-None-Match");
	size_t n = strlen(etag);

	for (const char *p = inm; p != NULL && (p = strstr(p, etag)) != NULL; p += n) {
		if (p[n] == '\0' || p[n] == ',' || p[n] == ' ')
			return true;
	}
	return inm != NULL && strcmp(inm, "*") == 0;
}

static void web_send(struct gateway *g, struct http_req *r, const struct embed_file *f)
{
	const char *marker;
	char *body = NULL, *etag;
	size_t len = f->len;

	/* The helper's link changes a page's bytes, so it changes its ETag too. */
	marker = g->cfg.web_ui_dev_user != NULL ? strstr(f->data, WEB_DEV_MARKER) : NULL;
	if (marker != NULL) {
		size_t head = (size_t)(marker - f->data);

		body = xasprintf("%.*s%s%s", (int)head, f->data, WEB_DEV_ON, marker + strlen(WEB_DEV_MARKER));
		len = strlen(body);
		etag = xasprintf("%.*s-dev\"", (int)strlen(f->etag) - 1, f->etag);
	} else {
		etag = xstrdup(f->etag);
	}
	http_add_header(r, "ETag", etag);
	if (web_fresh(r, etag))
		http_reply_page(r, 304, f->type, NULL, 0);
	else
		http_reply_page(r, 200, f->type, body != NULL ? body : f->data, len);
	free(etag);
	free(body);
}

/* GET / */
void web_integrations(struct gateway *g, struct http_req *r)
{
	web_send(g, r, web_find("index.html"));
}

/* GET /leads/:leadAnalyticsId: the page reads the id from its own URL and says so when it is no lead's. */
void web_lead(struct gateway *g, struct http_req *r)
{
	web_send(g, r, web_find("lead.html"));
}

bool web_not_found(struct gateway *g, struct http_req *r, const char *path)
{
	const char *accept = http_req_header(r, "Accept");
	const struct embed_file *f;

	if (!g->cfg.web_ui || (http_req_method(r) != EVHTTP_REQ_GET && http_req_method(r) != EVHTTP_REQ_HEAD) ||
	    accept == NULL || strstr(accept, "text/html") == NULL || strncmp(path, "/api/", 5) == 0 ||
	    strcmp(path, "/api") == 0)
		return false;
	f = web_find("not-found.html");
	http_reply_page(r, 404, f->type, f->data, f->len);
	return true;
}

/* GET /static/:file */
void web_static(struct gateway *g, struct http_req *r)
{
	const struct embed_file *f = web_find(http_req_param(r, 0));

	/* The pages are served at their own paths only, so each has one URL. */
	if (f == NULL || strcmp(f->type, "text/html; charset=utf-8") == 0) {
		if (!web_not_found(g, r, "/static/"))
			http_reply_error(r, 404, "not_found", "no such file");
		return;
	}
	web_send(g, r, f);
}

/* The longest "next" the helper returns to. */
#define WEB_NEXT_MAX 512

/*
 * Is next a path on this site? One leading "/" and no second (no "//host"),
 * no backslash (browsers read "/\host" as "//host"), nothing but visible
 * ASCII (no header splitting, no spaces): anything else could send the
 * freshly signed-in browser to another site.
 */
static bool web_next_ok(const char *next)
{
	size_t n = next != NULL ? strlen(next) : 0;

	if (n == 0 || n > WEB_NEXT_MAX || next[0] != '/' || next[1] == '/' || next[1] == '\\')
		return false;
	for (const char *p = next; *p; p++) {
		if (*p <= ' ' || *p > '~' || *p == '\\')
			return false;
	}
	return true;
}

/* GET /dev/sign-in[?next=/same/site/path]: signs in, then back to the page that asked (else /). */
void web_dev_sign_in(struct gateway *g, struct http_req *r)
{
	const char *next = http_req_query(r, "next");
	/* No longer than JWT_MAX_LIFETIME_SECONDS lets a token live, or the gateway would refuse its own. */
	long ttl = g->jwt.max_lifetime_s > 0 ? g->jwt.max_lifetime_s : WEB_DEV_SESSION_S;
	char *token, *cookie;

	if (ttl > WEB_DEV_SESSION_S)
		ttl = WEB_DEV_SESSION_S;
	token = jwt_issue(&g->jwt, g->cfg.web_ui_dev_user, (int64_t)time(NULL), ttl);
	/*
	 * As a platform login would set it: out of scripts' reach (HttpOnly), and not sent along with
	 * other sites' requests (SameSite=Lax), which is half of what keeps cookie-signed API calls safe.
	 */
	cookie = xasprintf("%s=%s; Path=/; Max-Age=%ld; HttpOnly; SameSite=Lax", g->cfg.jwt_cookie, token, ttl);

	log_warn("signed in through the development sign-in helper", LOG_STR("user", g->cfg.web_ui_dev_user));
	http_add_header(r, "Set-Cookie", cookie);
	http_redirect(r, web_next_ok(next) ? next : "/");
	xfree_secret(cookie);
	xfree_secret(token);
}
