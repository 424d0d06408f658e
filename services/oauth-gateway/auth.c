/*
 * auth: which user a request comes from.
 *
 * The platform's frontend sends its JWT as "Authorization: Bearer". A plain
 * browser navigation to /auth cannot set a header, so that route may also
 * read the same JWT from the JWT_COOKIE cookie; a token in the URL is never
 * accepted (URLs end up in logs, histories and Referer headers). The user
 * claim must be a UUID: it is a users.id and goes into every query.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "gateway.h"
#include "http.h"
#include "ids.h"
#include "xmalloc.h"

/* The token of an "Authorization: Bearer <token>" header, or NULL. */
static const char *auth_bearer(const char *header)
{
	if (header == NULL || strncasecmp(header, "Bearer", 6) != 0 || (header[6] != ' ' && header[6] != '\t'))
		return NULL;
	header += 6;
	while (*header == ' ' || *header == '\t')
		header++;
	return *header != '\0' ? header : NULL;
}

int auth_user(struct gateway *g, const struct http_req *r, bool allow_cookie, char **user, const char **why)
{
	const char *header = http_req_header(r, "Authorization");
	char *cookie = NULL;
	const char *token;
	char *trimmed;
	size_t len;
	int rc;

	*user = NULL;
	if (header != NULL) {
		token = auth_bearer(header);
		if (token == NULL) {
			*why = "use Authorization: Bearer <token>";
			return -1;
		}
	} else if (allow_cookie && (cookie = http_req_cookie(r, g->cfg.jwt_cookie)) != NULL) {
		token = cookie;
	} else {
		*why = allow_cookie ? "a bearer token or the session cookie is required" : "a bearer token is required";
		return -1;
	}
	len = strcspn(token, " \t");
	if (token[len + strspn(token + len, " \t")] != '\0') {
		xfree_secret(cookie);
		*why = "the token is malformed";
		return -1;
	}
	trimmed = xstrndup(token, len);
	rc = jwt_verify(&g->jwt, trimmed, (int64_t)time(NULL), user, why);
	/* The platform's session tokens: no copy of one goes back to the heap as it was. */
	xfree_secret(trimmed);
	xfree_secret(cookie);
	if (rc < 0)
		return -1;
	if (!ids_is_uuid(*user)) {
		free(*user);
		*user = NULL;
		*why = "the token's user claim is not a UUID";
		return -1;
	}
	ids_lower(*user);
	return 0;
}
