/*
 * config: the stand-in's settings (the registered OAuth client, the account
 * the consent page proposes, the calendar zone, token lifetime), set by the
 * CLI flags at start and changed at run time by POST /_standin/config.
 * admin.c keeps a copy of the startup settings so a reset can restore them.
 */
#include "standin.h"

#include <stdlib.h>
#include <string.h>

#include "tz.h"
#include "xmalloc.h"

struct config config;

void config_init(struct config *c)
{
	memset(c, 0, sizeof(*c));
	c->client_id = xstrdup("standin-client-id");
	c->client_secret = xstrdup("standin-client-secret");
	c->email = xstrdup("standin.user@example.com");
	c->timezone = xstrdup("UTC");
	c->access_token_ttl = 3600;
}

static void config_clear_redirect_uris(struct config *c)
{
	for (size_t i = 0; i < c->nredirect_uris; i++)
		free(c->redirect_uris[i]);
	free(c->redirect_uris);
	c->redirect_uris = NULL;
	c->nredirect_uris = 0;
}

void config_clear(struct config *c)
{
	free(c->client_id);
	free(c->client_secret);
	free(c->email);
	free(c->timezone);
	config_clear_redirect_uris(c);
	memset(c, 0, sizeof(*c));
}

void config_add_redirect_uri(struct config *c, const char *uri)
{
	c->redirect_uris = xreallocarray(c->redirect_uris, c->nredirect_uris + 1, sizeof(*c->redirect_uris));
	c->redirect_uris[c->nredirect_uris++] = xstrdup(uri);
}

void config_copy(struct config *dst, const struct config *src)
{
	*dst = *src;
	dst->client_id = xstrdup(src->client_id);
	dst->client_secret = xstrdup(src->client_secret);
	dst->email = xstrdup(src->email);
	dst->timezone = xstrdup(src->timezone);
	dst->redirect_uris = NULL;
	dst->nredirect_uris = 0;
	for (size_t i = 0; i < src->nredirect_uris; i++)
		config_add_redirect_uri(dst, src->redirect_uris[i]);
}

static int config_string(const cJSON *v, const char **err, const char *what)
{
	if (!cJSON_IsString(v) || v->valuestring[0] == '\0') {
		*err = what;
		return -1;
	}
	return 0;
}

/*
 * Validate everything before changing anything, so a bad request leaves the
 * settings as they were.
 */
static int config_check(const cJSON *obj, const char **err)
{
	const cJSON *v;

	if (!cJSON_IsObject(obj)) {
		*err = "body must be a JSON object";
		return -1;
	}
	cJSON_ArrayForEach(v, obj) {
		const char *k = v->string;

		if (strcmp(k, "auto_approve") == 0) {
			if (!cJSON_IsBool(v)) {
				*err = "auto_approve must be a boolean";
				return -1;
			}
		} else if (strcmp(k, "email") == 0) {
			if (!cJSON_IsString(v) || !util_valid_email(v->valuestring)) {
				*err = "email must be an email address";
				return -1;
			}
		} else if (strcmp(k, "timezone") == 0) {
			if (!cJSON_IsString(v) || !tz_valid(v->valuestring)) {
				*err = "timezone must be an IANA zone name";
				return -1;
			}
		} else if (strcmp(k, "access_token_ttl") == 0) {
			if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > 86400 * 365) {
				*err = "access_token_ttl must be a number of seconds";
				return -1;
			}
		} else if (strcmp(k, "client_id") == 0) {
			if (config_string(v, err, "client_id must be a non-empty string") < 0)
				return -1;
		} else if (strcmp(k, "client_secret") == 0) {
			if (config_string(v, err, "client_secret must be a non-empty string") < 0)
				return -1;
		} else if (strcmp(k, "redirect_uris") == 0) {
			const cJSON *u;

			if (!cJSON_IsArray(v)) {
				*err = "redirect_uris must be an array of strings";
				return -1;
			}
			cJSON_ArrayForEach(u, v) {
				if (config_string(u, err, "redirect_uris must be an array of strings") < 0)
					return -1;
			}
		} else {
			*err = "unknown setting (known: auto_approve, email, timezone, access_token_ttl, "
			       "client_id, client_secret, redirect_uris)";
			return -1;
		}
	}
	return 0;
}

static void config_replace(char **slot, const char *value)
{
	free(*slot);
	*slot = xstrdup(value);
}

int config_apply_json(struct config *c, const cJSON *obj, const char **err)
{
	const cJSON *v;

	if (config_check(obj, err) < 0)
		return -1;
	cJSON_ArrayForEach(v, obj) {
		const char *k = v->string;

		if (strcmp(k, "auto_approve") == 0) {
			c->auto_approve = cJSON_IsTrue(v);
		} else if (strcmp(k, "email") == 0) {
			free(c->email);
			c->email = util_lower(v->valuestring);
		} else if (strcmp(k, "timezone") == 0) {
			config_replace(&c->timezone, v->valuestring);
		} else if (strcmp(k, "access_token_ttl") == 0) {
			c->access_token_ttl = (long)v->valuedouble;
		} else if (strcmp(k, "client_id") == 0) {
			config_replace(&c->client_id, v->valuestring);
		} else if (strcmp(k, "client_secret") == 0) {
			config_replace(&c->client_secret, v->valuestring);
		} else {
			const cJSON *u;

			config_clear_redirect_uris(c);
			cJSON_ArrayForEach(u, v) config_add_redirect_uri(c, u->valuestring);
		}
	}
	return 0;
}

cJSON *config_to_json(const struct config *c)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *uris = cJSON_AddArrayToObject(o, "redirect_uris");

	cJSON_AddStringToObject(o, "client_id", c->client_id);
	cJSON_AddStringToObject(o, "client_secret", c->client_secret);
	for (size_t i = 0; i < c->nredirect_uris; i++)
		cJSON_AddItemToArray(uris, cJSON_CreateString(c->redirect_uris[i]));
	cJSON_AddBoolToObject(o, "auto_approve", c->auto_approve);
	cJSON_AddStringToObject(o, "email", c->email);
	cJSON_AddStringToObject(o, "timezone", c->timezone);
	cJSON_AddNumberToObject(o, "access_token_ttl", (double)c->access_token_ttl);
	return o;
}
