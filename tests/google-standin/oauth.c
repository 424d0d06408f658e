/*
 * oauth: what every Google API does with a bearer token, and the userinfo
 * endpoints that only need that.
 *
 *   GET /oauth2/v2/userinfo   Userinfoplus (also /userinfo/v2/me)
 *   GET /v1/userinfo          OpenID Connect claims (also /oauth2/v3/userinfo)
 *
 * A missing token, an unknown, expired or revoked one, and one without the
 * scope the call needs are told apart exactly as Google does: 401 "Login
 * Required", 401 "Invalid Credentials", 403 insufficientPermissions.
 */
#include "standin.h"

#include <string.h>
#include <strings.h>

const struct access *oauth_authenticate(struct exchange *ex, const char *const *scopes)
{
	const char *h = exchange_header(ex, "Authorization");
	const char *token = NULL;
	const struct access *a;

	if (h != NULL && strncasecmp(h, "Bearer ", 7) == 0)
		token = h + 7 + strspn(h + 7, " ");
	else if (h == NULL)
		token = form_get(ex->query, "access_token");
	if (token == NULL || token[0] == '\0') {
		struct api_error e = {
		    .status = 401,
		    .domain = "global",
		    .reason = "required",
		    .message = "Request is missing required authentication credential. Expected OAuth 2 access "
		               "token, login cookie or other valid authentication credential. See "
		               "https://developers.google.com/identity/sign-in/web/devconsole-project.",
		    .item_message = "Login Required.",
		    .location_type = "header",
		    .location = "Authorization",
		};

		exchange_api_error(ex, &e);
		return NULL;
	}
	a = grants_find_access(token);
	if (a == NULL) {
		struct api_error e = {
		    .status = 401,
		    .domain = "global",
		    .reason = "authError",
		    .message = "Invalid Credentials",
		    .location_type = "header",
		    .location = "Authorization",
		};

		exchange_api_error(ex, &e);
		return NULL;
	}
	exchange_set_email(ex, a->email);
	for (size_t i = 0; scopes != NULL && scopes[i] != NULL; i++) {
		if (util_has_word(a->scope, scopes[i]))
			return a;
	}
	if (scopes != NULL) {
		struct api_error e = {
		    .status = 403,
		    .domain = "global",
		    .reason = "insufficientPermissions",
		    .message = "Request had insufficient authentication scopes.",
		    .item_message = "Insufficient Permission",
		};

		exchange_api_error(ex, &e);
		return NULL;
	}
	return a;
}

/* Userinfo v2 (Userinfoplus) or, with oidc, the OpenID Connect claims. */
static void oauth_userinfo_reply(struct exchange *ex, bool oidc)
{
	const struct access *a = oauth_authenticate(ex, NULL);
	const struct account *acct;
	cJSON *o;

	if (a == NULL)
		return;
	acct = store_account(a->email);
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, oidc ? "sub" : "id", acct->id);
	if (util_has_word(a->scope, SCOPE_EMAIL)) {
		cJSON_AddStringToObject(o, "email", acct->email);
		cJSON_AddBoolToObject(o, oidc ? "email_verified" : "verified_email", 1);
	}
	if (util_has_word(a->scope, SCOPE_PROFILE)) {
		cJSON_AddStringToObject(o, "name", acct->name);
		cJSON_AddStringToObject(o, "given_name", acct->name);
	}
	cJSON_AddStringToObject(o, "picture", GOOGLE_PICTURE);
	exchange_reply_json(ex, 200, o);
}

static void oauth_userinfo(struct exchange *ex)
{
	oauth_userinfo_reply(ex, false);
}

static void oauth_userinfo_oidc(struct exchange *ex)
{
	oauth_userinfo_reply(ex, true);
}

static const struct route oauth_routes[] = {
    {"/oauth2/v2/userinfo", EVHTTP_REQ_GET, "userinfo", FAMILY_API, oauth_userinfo},
    {"/userinfo/v2/me", EVHTTP_REQ_GET, "userinfo", FAMILY_API, oauth_userinfo},
    {"/v1/userinfo", EVHTTP_REQ_GET, "userinfo", FAMILY_API, oauth_userinfo_oidc},
    {"/oauth2/v3/userinfo", EVHTTP_REQ_GET, "userinfo", FAMILY_API, oauth_userinfo_oidc},
};

bool oauth_route(struct exchange *ex)
{
	return exchange_route(ex, oauth_routes, sizeof(oauth_routes) / sizeof(*oauth_routes));
}
