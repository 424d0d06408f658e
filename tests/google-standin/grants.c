/*
 * grants: authorization codes, access tokens, refresh tokens and the
 * record of which account consented to which client, as Google keeps them.
 *
 * Revocation works the way a user removing an app from their Google account
 * does: everything one (account, client) pair holds dies together, refresh
 * tokens and access tokens alike, and the consent is forgotten so the next
 * authorization shows the consent screen (and yields a refresh token)
 * again. A timer drops expired codes and access tokens once a minute; an
 * unknown token is answered exactly like an expired one, so nothing is lost.
 */
#include "standin.h"

#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"

#define GRANTS_MAX_REFRESH 50 /* per account and client; the oldest dies beyond it */

struct grant {
	char *email;
	char *client_id;
	char *scope;
	unsigned long long seq; /* creation order, to find the oldest */
};

static struct map *grants_codes;    /* code -> struct code */
static struct map *grants_access;   /* access token -> struct access */
static struct map *grants_refresh;  /* refresh token -> struct grant */
static struct map *grants_consents; /* "client\nemail" -> granted scopes */
static struct map *grants_secrets;  /* every secret issued or received since start -> its kind */
static struct event *grants_sweeper;
static unsigned long long grants_seq;

static void grants_free_code(void *p)
{
	struct code *c = p;

	free(c->client_id);
	free(c->redirect_uri);
	free(c->scope);
	free(c->email);
	free(c->challenge);
	free(c->nonce);
	free(c);
}

static void grants_free_access(void *p)
{
	struct access *a = p;

	free(a->email);
	free(a->client_id);
	free(a->scope);
	free(a);
}

static void grants_free_grant(void *p)
{
	struct grant *g = p;

	free(g->email);
	free(g->client_id);
	free(g->scope);
	free(g);
}

static bool grants_expired(const char *key, void *value, void *arg)
{
	return *(int64_t *)value <= *(int64_t *)arg;
}

static bool grants_expired_code(const char *key, void *value, void *arg)
{
	return grants_expired(key, &((struct code *)value)->expires_ms, arg);
}

static bool grants_expired_access(const char *key, void *value, void *arg)
{
	return grants_expired(key, &((struct access *)value)->expires_ms, arg);
}

static void grants_sweep(evutil_socket_t fd, short what, void *arg)
{
	int64_t now = util_now_ms();

	map_sweep(grants_codes, grants_expired_code, &now);
	map_sweep(grants_access, grants_expired_access, &now);
}

void grants_init(void)
{
	grants_codes = map_new(grants_free_code);
	grants_access = map_new(grants_free_access);
	grants_refresh = map_new(grants_free_grant);
	grants_consents = map_new(free);
	grants_secrets = map_new(free);
	grants_sweeper = event_new(exchange_base, -1, EV_PERSIST, grants_sweep, NULL);
	event_add(grants_sweeper, &(struct timeval){.tv_sec = 60});
}

void grants_reset(void)
{
	map_clear(grants_codes);
	map_clear(grants_access);
	map_clear(grants_refresh);
	map_clear(grants_consents);
}

void grants_free(void)
{
	if (grants_sweeper != NULL)
		event_free(grants_sweeper);
	grants_sweeper = NULL;
	map_free(grants_codes);
	map_free(grants_access);
	map_free(grants_refresh);
	map_free(grants_consents);
	map_free(grants_secrets);
	grants_codes = grants_access = grants_refresh = grants_consents = grants_secrets = NULL;
}

char *grants_add_code(struct code *c)
{
	/* Google's codes start "4/0" and carry a '/', which clients must URL-decode. */
	char *code = util_random_token("4/0", 48);

	grants_note_secret(code, "code");
	map_set(grants_codes, code, c);
	return code;
}

struct code *grants_find_code(const char *code)
{
	return map_get(grants_codes, code);
}

char *grants_issue_access(const char *email, const char *client_id, const char *scope)
{
	struct access *a = xcalloc(1, sizeof(*a));
	char *token = util_random_token("ya29.", 96);

	grants_note_secret(token, "access_token");
	a->email = xstrdup(email);
	a->client_id = xstrdup(client_id);
	a->scope = xstrdup(scope);
	a->expires_ms = util_now_ms() + (int64_t)config.access_token_ttl * 1000;
	map_set(grants_access, token, a);
	return token;
}

struct grants_pair {
	const char *email;
	const char *client_id; /* NULL: any client */
	size_t count;
	const char *oldest;
	unsigned long long oldest_seq;
	int64_t now;
};

static bool grants_pair_match(const struct grants_pair *p, const char *email, const char *client_id)
{
	return strcmp(p->email, email) == 0 && (p->client_id == NULL || strcmp(p->client_id, client_id) == 0);
}

static bool grants_find_oldest(const char *key, void *value, void *arg)
{
	struct grants_pair *p = arg;
	struct grant *g = value;

	if (grants_pair_match(p, g->email, g->client_id)) {
		p->count++;
		if (p->oldest == NULL || g->seq < p->oldest_seq) {
			p->oldest = key;
			p->oldest_seq = g->seq;
		}
	}
	return false;
}

char *grants_issue_refresh(const char *email, const char *client_id, const char *scope)
{
	struct grant *g = xcalloc(1, sizeof(*g));
	char *token = util_random_token("1//0", 72);
	struct grants_pair p = {.email = email, .client_id = client_id};

	grants_note_secret(token, "refresh_token");
	map_sweep(grants_refresh, grants_find_oldest, &p);
	if (p.count >= GRANTS_MAX_REFRESH) {
		char *oldest = xstrdup(p.oldest);

		map_del(grants_refresh, oldest);
		free(oldest);
	}
	g->email = xstrdup(email);
	g->client_id = xstrdup(client_id);
	g->scope = xstrdup(scope);
	g->seq = ++grants_seq;
	map_set(grants_refresh, token, g);
	return token;
}

int grants_find_refresh(const char *token, const char **email, const char **client_id, const char **scope)
{
	const struct grant *g = map_get(grants_refresh, token);

	if (g == NULL)
		return -1;
	*email = g->email;
	*client_id = g->client_id;
	*scope = g->scope;
	return 0;
}

const struct access *grants_find_access(const char *token)
{
	const struct access *a = map_get(grants_access, token);

	return a != NULL && a->expires_ms > util_now_ms() ? a : NULL;
}

static bool grants_match_grant(const char *key, void *value, void *arg)
{
	struct grants_pair *p = arg;
	struct grant *g = value;

	if (!grants_pair_match(p, g->email, g->client_id))
		return false;
	p->count++;
	return true;
}

static bool grants_match_access(const char *key, void *value, void *arg)
{
	struct access *a = value;

	return grants_pair_match(arg, a->email, a->client_id);
}

static bool grants_match_consent(const char *key, void *value, void *arg)
{
	struct grants_pair *p = arg;
	const char *nl = strchr(key, '\n');

	return nl != NULL && strcmp(nl + 1, p->email) == 0 &&
	       (p->client_id == NULL ||
	        (strlen(p->client_id) == (size_t)(nl - key) && strncmp(key, p->client_id, (size_t)(nl - key)) == 0));
}

/* Revoke what (email, client) holds, any client when client_id is NULL. */
static size_t grants_revoke_pair(const char *email, const char *client_id)
{
	struct grants_pair p = {.email = email, .client_id = client_id};

	map_sweep(grants_refresh, grants_match_grant, &p);
	map_sweep(grants_access, grants_match_access, &p);
	map_sweep(grants_consents, grants_match_consent, &p);
	return p.count;
}

void grants_revoke(const char *email, const char *client_id)
{
	grants_revoke_pair(email, client_id);
}

size_t grants_revoke_email(const char *email)
{
	return grants_revoke_pair(email, NULL);
}

static bool grants_expire_one(const char *key, void *value, void *arg)
{
	struct grants_pair *p = arg;
	struct access *a = value;

	if (strcmp(a->email, p->email) == 0 && a->expires_ms > p->now) {
		a->expires_ms = p->now;
		p->count++;
	}
	return false;
}

size_t grants_expire_email(const char *email)
{
	struct grants_pair p = {.email = email, .now = util_now_ms()};

	map_sweep(grants_access, grants_expire_one, &p);
	return p.count;
}

size_t grants_count_live(void)
{
	return map_count(grants_refresh);
}

const char *grants_consented(const char *email, const char *client_id)
{
	char *key = xasprintf("%s\n%s", client_id, email);
	const char *scope = map_get(grants_consents, key);

	free(key);
	return scope;
}

void grants_note_consent(const char *email, const char *client_id, const char *scope)
{
	char *key = xasprintf("%s\n%s", client_id, email);
	const char *old = map_get(grants_consents, key);
	char *merged = xstrdup(old != NULL ? old : "");
	size_t n;
	char **words = util_words(scope, &n);

	for (size_t i = 0; i < n; i++) {
		char *next;

		if (util_has_word(merged, words[i]))
			continue;
		next = xasprintf("%s%s%s", merged, merged[0] != '\0' ? " " : "", words[i]);
		free(merged);
		merged = next;
	}
	util_words_free(words, n);
	map_set(grants_consents, key, merged);
	free(key);
}

/* Kept through resets on purpose: a test audits everything the stand-in ever handed out. */
void grants_note_secret(const char *value, const char *kind)
{
	if (value != NULL && strlen(value) >= 8 && map_get(grants_secrets, value) == NULL)
		map_set(grants_secrets, value, xstrdup(kind));
}

static bool grants_add_secret(const char *key, void *value, void *arg)
{
	cJSON *item = cJSON_CreateObject();

	cJSON_AddStringToObject(item, "kind", value);
	cJSON_AddStringToObject(item, "value", key);
	cJSON_AddItemToArray(arg, item);
	return false;
}

cJSON *grants_secrets_json(void)
{
	cJSON *list = cJSON_CreateArray();

	map_sweep(grants_secrets, grants_add_secret, list);
	return list;
}
