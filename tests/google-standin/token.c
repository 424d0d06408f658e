/*
 * token: Google's token endpoint and its neighbours, the server half of
 * the OAuth 2.0 flow.
 *
 *   POST /token       authorization_code and refresh_token grants
 *   POST /revoke      ends an account's grant to the client (also GET)
 *   GET  /tokeninfo   what an access token is (also POST)
 *
 * Errors are RFC 6749 bodies in Google's wording (docs/google.md, "Token endpoint errors"):
 * 400 invalid_grant for a bad, used or expired code, a PKCE mismatch or a
 * revoked refresh token; 401 invalid_client for a wrong secret. A reused
 * code is refused but the tokens it already gave stay valid (RFC 6749
 * §4.1.2 only says SHOULD revoke them; Google is not seen doing it).
 */
#include "standin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "log.h"
#include "xmalloc.h"

/* The token endpoint takes a form; Google's also takes the same fields as JSON. */
static struct form *token_form(struct exchange *ex)
{
	size_t len;
	char *body = exchange_body(ex, &len);
	const char *ct = exchange_header(ex, "Content-Type");
	struct form *f;

	if (ct != NULL && strncasecmp(ct, "application/json", 16) == 0) {
		cJSON *j = cJSON_ParseWithLength(body, len);
		const cJSON *obj = cJSON_IsObject(j) ? j : NULL;
		const cJSON *v;
		char *q = xstrdup("");

		cJSON_ArrayForEach(v, obj) {
			char *k, *val, *next;

			if (!cJSON_IsString(v))
				continue;
			k = util_url_encode(v->string);
			val = util_url_encode(v->valuestring);
			next = xasprintf("%s%s=%s&", q, k, val);
			free(q);
			free(k);
			free(val);
			q = next;
		}
		cJSON_Delete(j);
		f = form_parse(q, strlen(q));
		free(q);
	} else {
		f = form_parse(body, len);
	}
	free(body);
	return f;
}

/* RFC 6749 §2.3.1: Basic credentials are form-encoded before base64. */
static int token_basic(struct exchange *ex, char **id, char **secret)
{
	const char *h = exchange_header(ex, "Authorization");
	unsigned char bin[1024];
	size_t binlen;
	const char *colon;

	*id = *secret = NULL;
	if (h == NULL || strncasecmp(h, "Basic ", 6) != 0)
		return -1;
	h += 6;
	h += strspn(h, " ");
	if (sodium_base642bin(bin, sizeof(bin) - 1, h, strlen(h), NULL, &binlen, NULL,
	                      sodium_base64_VARIANT_ORIGINAL) != 0)
		return -1;
	bin[binlen] = '\0';
	colon = memchr(bin, ':', binlen);
	if (colon == NULL)
		return -1;
	*id = form_decode((const char *)bin, (size_t)(colon - (const char *)bin));
	*secret = form_decode(colon + 1, binlen - (size_t)(colon + 1 - (const char *)bin));
	return 0;
}

/* Who the client is; on failure the error has been sent and -1 comes back. */
static int token_client_auth(struct exchange *ex, const struct form *f)
{
	char *bid, *bsecret;
	const char *id, *secret;
	int rc = -1;

	if (token_basic(ex, &bid, &bsecret) == 0) {
		id = bid;
		secret = bsecret;
	} else {
		id = form_get(f, "client_id");
		secret = form_get(f, "client_secret");
	}
	if (id == NULL || id[0] == '\0')
		exchange_oauth_error(ex, 400, "invalid_request", "Could not determine client ID from request.");
	else if (strcmp(id, config.client_id) != 0)
		exchange_oauth_error(ex, 401, "invalid_client", "The OAuth client was not found.");
	else if (secret == NULL || secret[0] == '\0')
		exchange_oauth_error(ex, 400, "invalid_request", "client_secret is missing.");
	else if (strlen(secret) != strlen(config.client_secret) ||
	         sodium_memcmp(secret, config.client_secret, strlen(secret)) != 0)
		exchange_oauth_error(ex, 401, "invalid_client", "Unauthorized");
	else
		rc = 0;
	free(bid);
	free(bsecret);
	return rc;
}

/* base64url(JSON) for a JWT part; the caller frees. */
static char *token_jwt_part(cJSON *obj)
{
	char *s = cJSON_PrintUnformatted(obj);
	char *out;

	if (s == NULL)
		abort();
	out = util_base64url((const unsigned char *)s, strlen(s));
	cJSON_free(s);
	cJSON_Delete(obj);
	return out;
}

/*
 * An OpenID id_token. Google signs with RS256 and publishes its keys; the
 * stand-in signs HS256 with the client secret (allowed by OIDC Core
 * §10.1), which clients that only decode the claims cannot tell apart.
 */
static char *token_id_token(const char *email, const char *client_id, const char *scope, const char *nonce)
{
	cJSON *h = cJSON_CreateObject(), *p = cJSON_CreateObject();
	const struct account *acct = store_account(email);
	long long now = util_now_ms() / 1000;
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	crypto_auth_hmacsha256_state st;
	char *hp, *pp, *signing, *sig, *jwt;

	cJSON_AddStringToObject(h, "alg", "HS256");
	cJSON_AddStringToObject(h, "kid", "standin");
	cJSON_AddStringToObject(h, "typ", "JWT");
	cJSON_AddStringToObject(p, "iss", "https://accounts.google.com");
	cJSON_AddStringToObject(p, "azp", client_id);
	cJSON_AddStringToObject(p, "aud", client_id);
	cJSON_AddStringToObject(p, "sub", acct->id);
	if (util_has_word(scope, SCOPE_EMAIL)) {
		cJSON_AddStringToObject(p, "email", acct->email);
		cJSON_AddBoolToObject(p, "email_verified", 1);
	}
	if (util_has_word(scope, SCOPE_PROFILE)) {
		cJSON_AddStringToObject(p, "name", acct->name);
		cJSON_AddStringToObject(p, "picture", GOOGLE_PICTURE);
	}
	if (nonce != NULL)
		cJSON_AddStringToObject(p, "nonce", nonce);
	cJSON_AddNumberToObject(p, "iat", (double)now);
	cJSON_AddNumberToObject(p, "exp", (double)(now + 3600));
	hp = token_jwt_part(h);
	pp = token_jwt_part(p);
	signing = xasprintf("%s.%s", hp, pp);
	crypto_auth_hmacsha256_init(&st, (const unsigned char *)config.client_secret, strlen(config.client_secret));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)signing, strlen(signing));
	crypto_auth_hmacsha256_final(&st, mac);
	sig = util_base64url(mac, sizeof(mac));
	jwt = xasprintf("%s.%s", signing, sig);
	free(hp);
	free(pp);
	free(signing);
	free(sig);
	return jwt;
}

static void token_reply(struct exchange *ex, const char *email, const char *client_id, const char *scope,
                        bool with_refresh, const char *nonce)
{
	cJSON *o = cJSON_CreateObject();
	char *access = grants_issue_access(email, client_id, scope);

	cJSON_AddStringToObject(o, "access_token", access);
	cJSON_AddNumberToObject(o, "expires_in", (double)config.access_token_ttl);
	if (with_refresh) {
		char *refresh = grants_issue_refresh(email, client_id, scope);

		cJSON_AddStringToObject(o, "refresh_token", refresh);
		free(refresh);
	}
	cJSON_AddStringToObject(o, "scope", scope);
	cJSON_AddStringToObject(o, "token_type", "Bearer");
	if (util_has_word(scope, "openid")) {
		char *id = token_id_token(email, client_id, scope, nonce);

		cJSON_AddStringToObject(o, "id_token", id);
		free(id);
	}
	free(access);
	evhttp_add_header(evhttp_request_get_output_headers(ex->req), "Pragma", "no-cache");
	exchange_reply_json(ex, 200, o);
}

static void token_grant_code(struct exchange *ex, const struct form *f)
{
	const char *code = form_get(f, "code");
	const char *redirect_uri = form_get(f, "redirect_uri");
	const char *verifier = form_get(f, "code_verifier");
	struct code *c;

	grants_note_secret(verifier, "code_verifier");
	if (code == NULL || code[0] == '\0') {
		exchange_oauth_error(ex, 400, "invalid_request", "Missing required parameter: code");
		return;
	}
	if (redirect_uri == NULL || redirect_uri[0] == '\0') {
		exchange_oauth_error(ex, 400, "invalid_request", "Missing required parameter: redirect_uri");
		return;
	}
	c = grants_find_code(code);
	if (c == NULL || c->used || c->expires_ms <= util_now_ms() || strcmp(c->client_id, config.client_id) != 0 ||
	    strcmp(c->redirect_uri, redirect_uri) != 0) {
		exchange_oauth_error(ex, 400, "invalid_grant", "Bad Request");
		return;
	}
	exchange_set_email(ex, c->email);
	if (c->challenge != NULL) {
		unsigned char digest[crypto_hash_sha256_BYTES];
		char *computed;
		bool ok;

		if (verifier == NULL) {
			exchange_oauth_error(ex, 400, "invalid_grant", "Missing code verifier.");
			return;
		}
		if (!util_pkce_verifier_ok(verifier)) {
			exchange_oauth_error(ex, 400, "invalid_grant", "Invalid code verifier.");
			return;
		}
		if (c->challenge_s256) {
			crypto_hash_sha256(digest, (const unsigned char *)verifier, strlen(verifier));
			computed = util_base64url(digest, sizeof(digest));
		} else {
			computed = xstrdup(verifier);
		}
		ok = strcmp(computed, c->challenge) == 0;
		free(computed);
		if (!ok) {
			exchange_oauth_error(ex, 400, "invalid_grant", "Invalid code verifier.");
			return;
		}
	}
	c->used = true;
	log_info("code exchanged", LOG_EMAIL("email", c->email),
	         LOG_BOOL("refresh_token", c->offline && c->consent_shown));
	token_reply(ex, c->email, c->client_id, c->scope, c->offline && c->consent_shown, c->nonce);
}

static void token_grant_refresh(struct exchange *ex, const struct form *f)
{
	const char *token = form_get(f, "refresh_token");
	const char *email, *client_id, *scope;

	if (token == NULL || token[0] == '\0') {
		exchange_oauth_error(ex, 400, "invalid_request", "Missing required parameter: refresh_token");
		return;
	}
	if (grants_find_refresh(token, &email, &client_id, &scope) < 0) {
		exchange_oauth_error(ex, 400, "invalid_grant", "Token has been expired or revoked.");
		return;
	}
	exchange_set_email(ex, email);
	if (strcmp(client_id, config.client_id) != 0) {
		exchange_oauth_error(ex, 401, "unauthorized_client", "Unauthorized");
		return;
	}
	journal_note_refresh(email);
	token_reply(ex, email, client_id, scope, false, NULL);
}

static void token_post(struct exchange *ex)
{
	struct form *f = token_form(ex);
	const char *grant = form_get(f, "grant_type");

	if (grant == NULL || grant[0] == '\0') {
		exchange_oauth_error(ex, 400, "invalid_request", "Missing required parameter: grant_type");
	} else if (strcmp(grant, "authorization_code") != 0 && strcmp(grant, "refresh_token") != 0) {
		char *d = xasprintf("Invalid grant_type: %s", grant);

		exchange_oauth_error(ex, 400, "unsupported_grant_type", d);
		free(d);
	} else if (token_client_auth(ex, f) == 0) {
		if (strcmp(grant, "authorization_code") == 0)
			token_grant_code(ex, f);
		else
			token_grant_refresh(ex, f);
	}
	form_free(f);
}

static void token_revoke(struct exchange *ex)
{
	struct form *f = token_form(ex);
	const char *token = form_get(f, "token");
	const struct access *a;
	const char *email, *client_id, *scope;
	char *e = NULL, *c = NULL;

	if (token == NULL)
		token = form_get(ex->query, "token");
	if (token == NULL || token[0] == '\0') {
		exchange_oauth_error(ex, 400, "invalid_request", "Bad Request");
		form_free(f);
		return;
	}
	a = grants_find_access(token);
	if (a != NULL) {
		e = xstrdup(a->email);
		c = xstrdup(a->client_id);
	} else if (grants_find_refresh(token, &email, &client_id, &scope) == 0) {
		e = xstrdup(email);
		c = xstrdup(client_id);
	}
	form_free(f);
	if (e == NULL) {
		exchange_oauth_error(ex, 400, "invalid_token", "Token expired or revoked");
		return;
	}
	grants_revoke(e, c);
	exchange_set_email(ex, e);
	log_info("grant revoked", LOG_EMAIL("email", e));
	free(e);
	free(c);
	exchange_reply(ex, 200, "application/json; charset=utf-8", NULL, 0);
}

static void token_info(struct exchange *ex)
{
	struct form *f = token_form(ex);
	const char *token = form_get(f, "access_token");
	const struct access *a;
	const struct account *acct;
	cJSON *o;
	char buf[32];

	if (token == NULL)
		token = form_get(ex->query, "access_token");
	a = token != NULL ? grants_find_access(token) : NULL;
	form_free(f);
	if (a == NULL) {
		exchange_oauth_error(ex, 400, "invalid_token", "Invalid Value");
		return;
	}
	acct = store_account(a->email);
	exchange_set_email(ex, a->email);
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "azp", a->client_id);
	cJSON_AddStringToObject(o, "aud", a->client_id);
	cJSON_AddStringToObject(o, "sub", acct->id);
	cJSON_AddStringToObject(o, "scope", a->scope);
	snprintf(buf, sizeof(buf), "%lld", (long long)(a->expires_ms / 1000));
	cJSON_AddStringToObject(o, "exp", buf);
	snprintf(buf, sizeof(buf), "%lld", (long long)((a->expires_ms - util_now_ms()) / 1000));
	cJSON_AddStringToObject(o, "expires_in", buf);
	if (util_has_word(a->scope, SCOPE_EMAIL)) {
		cJSON_AddStringToObject(o, "email", a->email);
		cJSON_AddStringToObject(o, "email_verified", "true");
	}
	exchange_reply_json(ex, 200, o);
}

static const struct route token_routes[] = {
    {"/token", EVHTTP_REQ_POST, "token", FAMILY_OAUTH, token_post},
    {"/o/oauth2/token", EVHTTP_REQ_POST, "token", FAMILY_OAUTH, token_post},
    {"/revoke", EVHTTP_REQ_POST | EVHTTP_REQ_GET, "revoke", FAMILY_OAUTH, token_revoke},
    {"/o/oauth2/revoke", EVHTTP_REQ_POST | EVHTTP_REQ_GET, "revoke", FAMILY_OAUTH, token_revoke},
    {"/tokeninfo", EVHTTP_REQ_POST | EVHTTP_REQ_GET, "tokeninfo", FAMILY_OAUTH, token_info},
    {"/oauth2/v3/tokeninfo", EVHTTP_REQ_POST | EVHTTP_REQ_GET, "tokeninfo", FAMILY_OAUTH, token_info},
};

bool token_route(struct exchange *ex)
{
	return exchange_route(ex, token_routes, sizeof(token_routes) / sizeof(*token_routes));
}
