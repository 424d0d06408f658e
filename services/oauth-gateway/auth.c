/*
 * auth: which user a request comes from.
 *
 * The platform's frontend sends its JWT as "Authorization: Bearer". A plain
 * browser navigation to /auth cannot set a header, so that route may also
 * read the same JWT from the JWT_COOKIE cookie; a token in the URL is never
 * accepted (URLs end up in logs, histories and Referer headers). The user
 * claim must be a UUID: it is a users.id and goes into every query.
 *
 * A valid token is not enough: its user must be a row of users, or every
 * route answers 401 alike (auth_known()). The answer is kept for
 * AUTH_KNOWN_TTL_S in a small table, so a signed-in user costs one indexed
 * read a minute, batched with the others; an unknown user is never kept, so
 * a user created a moment ago is let in at once, and a deleted one is let in
 * at most for the TTL.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "db.h"
#include "gateway.h"
#include "http.h"
#include "ids.h"
#include "log.h"
#include "xmalloc.h"

/* How long a user found in users is believed to exist, and how many are remembered (a power of two). */
#define AUTH_KNOWN_TTL_S 60
#define AUTH_KNOWN_SLOTS 1024

static const char auth_known_sql[] = "SELECT 1 FROM users WHERE id = $1";

struct auth_known_slot {
	char user[37];		/* a lower-case UUID; "" when free */
	time_t until;
};

struct auth_users {
	struct auth_known_slot slots[AUTH_KNOWN_SLOTS];
};

struct auth_known_check {
	struct gateway *g;
	struct http_req *r;
	char *user;
	auth_known_cb done;
};

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

void auth_users_free(struct auth_users *u)
{
	free(u);
}

/* The slot user hashes to (FNV-1a): a newer user simply takes it over. */
static struct auth_known_slot *auth_slot(struct gateway *g, const char *user)
{
	uint32_t h = 2166136261u;

	if (g->users == NULL)
		g->users = xcalloc(1, sizeof(*g->users));
	for (const char *p = user; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return &g->users->slots[h & (AUTH_KNOWN_SLOTS - 1)];
}

static void auth_on_known(const struct db_result *res, void *arg)
{
	struct auth_known_check *c = arg;

	if (http_req_done(c->r))
		goto out;
	if (res->status != DB_OK) {
		log_error("could not look the user up", LOG_STR("error", res->error));
		http_reply_error(c->r, 503, "unavailable", "the database is unavailable; try again");
		goto out;
	}
	if (db_ntuples(res) == 0) {
		c->done(c->r, false);
		goto out;
	}
	{
		struct auth_known_slot *s = auth_slot(c->g, c->user);

		memcpy(s->user, c->user, sizeof(s->user));
		s->until = time(NULL) + AUTH_KNOWN_TTL_S;
	}
	c->done(c->r, true);
out:
	http_req_unref(c->r);
	free(c->user);
	free(c);
}

void auth_known(struct gateway *g, struct http_req *r, auth_known_cb done)
{
	const char *user = http_req_user(r);
	struct auth_known_slot *s = auth_slot(g, user);
	struct auth_known_check *c;
	const char *params[1];

	if (strcmp(s->user, user) == 0 && s->until > time(NULL)) {
		done(r, true);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->g = g;
	c->r = r;
	c->user = xstrdup(user);
	c->done = done;
	http_req_ref(r);
	params[0] = c->user;
	db_read(g->db, auth_known_sql, 1, params, auth_on_known, c);
}
