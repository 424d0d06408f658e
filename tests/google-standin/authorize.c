/*
 * authorize: Google's authorization endpoint, the browser half of the
 * OAuth 2.0 web-server flow.
 *
 *   GET  /o/oauth2/v2/auth        check the request; consent page or redirect
 *   POST /o/oauth2/v2/consent     the consent form's Allow / Deny
 *
 * A request with a bad client or redirect URI gets an error page and never
 * a redirect: redirecting would hand the error, or a code, to whoever forged
 * the link. Codes are single-use, live ten minutes and are bound to client,
 * redirect URI, granted scopes, account, PKCE challenge and whether a
 * refresh token is due (offline access with a consent screen shown).
 */
#include "standin.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "xmalloc.h"

#define AUTHORIZE_CODE_TTL_MS (10 * 60 * 1000)

static void authorize_params(const struct form *f, struct authz *a)
{
	a->client_id = form_get(f, "client_id");
	a->redirect_uri = form_get(f, "redirect_uri");
	a->response_type = form_get(f, "response_type");
	a->scope = form_get(f, "scope");
	a->state = form_get(f, "state");
	grants_note_secret(a->state, "state");
	a->code_challenge = form_get(f, "code_challenge");
	a->code_challenge_method = form_get(f, "code_challenge_method");
	a->access_type = form_get(f, "access_type");
	a->prompt = form_get(f, "prompt");
	a->login_hint = form_get(f, "login_hint");
	a->include_granted_scopes = form_get(f, "include_granted_scopes");
	a->nonce = form_get(f, "nonce");
}

/*
 * Google expands the short OpenID scope names in what it grants, so a
 * client that asked for "email" sees userinfo.email in the token response.
 */
static const char *authorize_scope_word(const char *w)
{
	if (strcmp(w, "email") == 0)
		return SCOPE_EMAIL;
	if (strcmp(w, "profile") == 0)
		return SCOPE_PROFILE;
	return w;
}

/*
 * The normalised, de-duplicated scope list (caller frees), or NULL with
 * *bad (caller frees) naming a scope Google would refuse.
 */
static char *authorize_normalize_scope(const char *scope, char **bad)
{
	size_t n;
	char **words = util_words(scope, &n);
	char *out = xstrdup("");

	*bad = NULL;
	for (size_t i = 0; i < n; i++) {
		const char *w = authorize_scope_word(words[i]);
		char *next;

		if (w == words[i] && strcmp(w, "openid") != 0 &&
		    (strncmp(w, SCOPE_PREFIX, strlen(SCOPE_PREFIX)) != 0 || w[strlen(SCOPE_PREFIX)] == '\0')) {
			*bad = xstrdup(w);
			free(out);
			util_words_free(words, n);
			return NULL;
		}
		if (util_has_word(out, w))
			continue;
		next = xasprintf("%s%s%s", out, out[0] != '\0' ? " " : "", w);
		free(out);
		out = next;
	}
	util_words_free(words, n);
	return out;
}

/* Whether every word of want is in have. */
static bool authorize_covers(const char *have, const char *want)
{
	size_t n;
	char **words = util_words(want, &n);
	bool ok = true;

	for (size_t i = 0; i < n && ok; i++)
		ok = util_has_word(have, words[i]);
	util_words_free(words, n);
	return ok;
}

/* Without registered URIs any loopback http URI is taken, as for a desktop client. */
static bool authorize_redirect_ok(const char *uri)
{
	struct evhttp_uri *u;
	const char *scheme, *host;
	bool ok;

	if (config.nredirect_uris > 0) {
		for (size_t i = 0; i < config.nredirect_uris; i++) {
			if (strcmp(config.redirect_uris[i], uri) == 0)
				return true;
		}
		return false;
	}
	u = evhttp_uri_parse_with_flags(uri, 0);
	if (u == NULL)
		return false;
	scheme = evhttp_uri_get_scheme(u);
	host = evhttp_uri_get_host(u);
	ok = scheme != NULL && strcmp(scheme, "http") == 0 && host != NULL && evhttp_uri_get_fragment(u) == NULL &&
	     (strcmp(host, "127.0.0.1") == 0 || strcasecmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0 ||
	      strcmp(host, "::1") == 0);
	evhttp_uri_free(u);
	return ok;
}

static void authorize_page_error(struct exchange *ex, const char *title, int code, const char *error,
                                 const char *detail)
{
	char *html = pages_error(title, code, error, detail);

	exchange_html(ex, 400, html);
	free(html);
}

static void authorize_invalid_request(struct exchange *ex, const char *detail)
{
	authorize_page_error(ex, "This app’s request is invalid", 400, "invalid_request", detail);
}

/*
 * Check an authorization request as Google does, in Google's order. On
 * success the normalised scope goes to *scope (caller frees); otherwise the
 * error page has been sent and -1 comes back.
 */
static int authorize_check(struct exchange *ex, const struct authz *a, char **scope)
{
	const char *m = a->code_challenge_method;
	char *bad;
	size_t n;
	char **prompts;
	bool prompt_ok = true;

	if (a->client_id == NULL || a->client_id[0] == '\0') {
		authorize_invalid_request(ex, "Missing required parameter: client_id");
		return -1;
	}
	if (strcmp(a->client_id, config.client_id) != 0) {
		authorize_page_error(ex, "Authorization Error", 401, "invalid_client",
		                     "The OAuth client was not found.");
		return -1;
	}
	if (a->redirect_uri == NULL || a->redirect_uri[0] == '\0') {
		authorize_invalid_request(ex, "Missing required parameter: redirect_uri");
		return -1;
	}
	if (!authorize_redirect_ok(a->redirect_uri)) {
		authorize_page_error(ex, "This app’s request is invalid", 400, "redirect_uri_mismatch",
		                     "You can’t sign in to this app because it doesn’t comply with Google’s OAuth 2.0 "
		                     "policy. The redirect_uri is not registered for this client.");
		return -1;
	}
	if (a->response_type == NULL || a->response_type[0] == '\0') {
		authorize_invalid_request(ex, "Missing required parameter: response_type");
		return -1;
	}
	if (strcmp(a->response_type, "code") != 0) {
		authorize_page_error(ex, "This app’s request is invalid", 400, "unsupported_response_type",
		                     "Only response_type=code is supported for this client.");
		return -1;
	}
	if (a->scope == NULL || a->scope[0] == '\0' || strspn(a->scope, " ") == strlen(a->scope)) {
		authorize_invalid_request(ex, "Missing required parameter: scope");
		return -1;
	}
	*scope = authorize_normalize_scope(a->scope, &bad);
	if (*scope == NULL) {
		char *detail = xasprintf("Some requested scopes were invalid. {invalid=[%s]}", bad);

		authorize_page_error(ex, "This app’s request is invalid", 400, "invalid_scope", detail);
		free(detail);
		free(bad);
		return -1;
	}
	if (a->access_type != NULL && strcmp(a->access_type, "online") != 0 && strcmp(a->access_type, "offline") != 0) {
		authorize_invalid_request(ex, "Invalid access_type parameter value.");
		goto fail;
	}
	prompts = util_words(a->prompt, &n);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(prompts[i], "none") == 0)
			prompt_ok = prompt_ok && n == 1;
		else if (strcmp(prompts[i], "consent") != 0 && strcmp(prompts[i], "select_account") != 0)
			prompt_ok = false;
	}
	util_words_free(prompts, n);
	if (!prompt_ok) {
		authorize_invalid_request(ex, "Invalid prompt parameter value.");
		goto fail;
	}
	if (a->code_challenge == NULL)
		return 0;
	if (m != NULL && strcmp(m, "S256") != 0 && strcmp(m, "plain") != 0) {
		authorize_invalid_request(ex, "Invalid code_challenge_method parameter value.");
		goto fail;
	}
	/* An S256 challenge is a base64url SHA-256: 43 characters. */
	if ((m != NULL && strcmp(m, "S256") == 0)
	        ? strlen(a->code_challenge) != 43 ||
	              strspn(a->code_challenge, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                                        "abcdefghijklmnopqrstuvwxyz0123456789-_") != 43
	        : !util_pkce_verifier_ok(a->code_challenge)) {
		authorize_invalid_request(ex, "Invalid code_challenge parameter value.");
		goto fail;
	}
	return 0;
fail:
	free(*scope);
	*scope = NULL;
	return -1;
}

static char *authorize_separator(const char *uri)
{
	return xstrdup(strchr(uri, '?') != NULL ? "&" : "?");
}

/* Redirect back with ?error=...&state=... (the user said no, or could not be asked). */
static void authorize_redirect_error(struct exchange *ex, const struct authz *a, const char *error)
{
	char *sep = authorize_separator(a->redirect_uri);
	char *state = a->state != NULL ? util_url_encode(a->state) : NULL;
	char *loc = xasprintf("%s%serror=%s%s%s", a->redirect_uri, sep, error, state != NULL ? "&state=" : "",
	                      state != NULL ? state : "");

	exchange_redirect(ex, loc);
	free(loc);
	free(state);
	free(sep);
}

/*
 * The user allowed scope as email: issue the single-use code and send the
 * browser back with it, Google's extra parameters included (clients must
 * ignore what they do not know).
 */
static void authorize_approve(struct exchange *ex, const struct authz *a, const char *email, const char *scope,
                              bool consent_shown)
{
	struct code *c = xcalloc(1, sizeof(*c));
	const char *prior = grants_consented(email, a->client_id);
	char *code, *e_code, *e_scope, *e_state, *sep, *loc;

	if (a->include_granted_scopes != NULL && strcmp(a->include_granted_scopes, "true") == 0 && prior != NULL) {
		char *merged = xasprintf("%s %s", prior, scope);
		char *bad;

		c->scope = authorize_normalize_scope(merged, &bad);
		free(bad);
		free(merged);
	} else {
		c->scope = xstrdup(scope);
	}
	grants_note_consent(email, a->client_id, c->scope);
	store_account(email);
	exchange_set_email(ex, email);
	c->client_id = xstrdup(a->client_id);
	c->redirect_uri = xstrdup(a->redirect_uri);
	c->email = xstrdup(email);
	if (a->code_challenge != NULL) {
		c->challenge = xstrdup(a->code_challenge);
		c->challenge_s256 = a->code_challenge_method != NULL && strcmp(a->code_challenge_method, "S256") == 0;
	}
	c->offline = a->access_type != NULL && strcmp(a->access_type, "offline") == 0;
	c->consent_shown = consent_shown;
	c->nonce = a->nonce != NULL ? xstrdup(a->nonce) : NULL;
	c->expires_ms = util_now_ms() + AUTHORIZE_CODE_TTL_MS;
	e_scope = util_url_encode(c->scope);
	code = grants_add_code(c);
	e_code = util_url_encode(code);
	e_state = a->state != NULL ? util_url_encode(a->state) : NULL;
	sep = authorize_separator(a->redirect_uri);
	loc = xasprintf("%s%s%s%s%scode=%s&scope=%s&authuser=0&prompt=%s", a->redirect_uri, sep,
	                e_state != NULL ? "state=" : "", e_state != NULL ? e_state : "", e_state != NULL ? "&" : "",
	                e_code, e_scope, consent_shown ? "consent" : "none");
	log_info("authorization code issued", LOG_EMAIL("email", email), LOG_BOOL("offline", c->offline),
	         LOG_BOOL("consent", consent_shown));
	exchange_redirect(ex, loc);
	free(loc);
	free(sep);
	free(e_state);
	free(e_code);
	free(code);
	free(e_scope);
}

static void authorize_get(struct exchange *ex)
{
	struct authz a;
	char *scope = NULL, *email;
	const char *prior;
	bool forced, covered;

	authorize_params(ex->query, &a);
	if (authorize_check(ex, &a, &scope) < 0)
		return;
	email = util_lower(a.login_hint != NULL && util_valid_email(a.login_hint) ? a.login_hint : config.email);
	prior = grants_consented(email, a.client_id);
	covered = prior != NULL && authorize_covers(prior, scope);
	forced = util_has_word(a.prompt, "consent") || util_has_word(a.prompt, "select_account");
	if (util_has_word(a.prompt, "none")) {
		if (covered)
			authorize_approve(ex, &a, email, scope, false);
		else
			authorize_redirect_error(ex, &a, "consent_required");
	} else if (covered && !forced) {
		/* Google asks only once: a repeat authorization goes straight back. */
		authorize_approve(ex, &a, email, scope, false);
	} else if (config.auto_approve) {
		authorize_approve(ex, &a, email, scope, true);
	} else {
		char *html = pages_consent(&a, scope, email);

		exchange_html(ex, 200, html);
		free(html);
	}
	free(email);
	free(scope);
}

static void authorize_consent(struct exchange *ex)
{
	size_t len;
	char *body = exchange_body(ex, &len);
	struct form *f = form_parse(body, len);
	const char *decision = form_get(f, "decision");
	const char *email = form_get(f, "email");
	struct authz a;
	char *scope = NULL, *granted = NULL, *lower = NULL;
	size_t n;
	char **words;

	free(body);
	authorize_params(f, &a);
	if (authorize_check(ex, &a, &scope) < 0)
		goto out;
	if (decision == NULL || strcmp(decision, "allow") != 0) {
		authorize_redirect_error(ex, &a, "access_denied");
		goto out;
	}
	if (!util_valid_email(email)) {
		authorize_invalid_request(ex, "Enter a valid email address.");
		goto out;
	}
	/* Granular consent: only the ticked scopes that were asked for. */
	granted = xstrdup("");
	words = util_words(scope, &n);
	for (size_t i = 0; i < n; i++) {
		bool ticked = false;
		const char *v;

		for (size_t k = 0; (v = form_get_nth(f, "granted_scope", k)) != NULL && !ticked; k++)
			ticked = strcmp(authorize_scope_word(v), words[i]) == 0;
		if (ticked) {
			char *next = xasprintf("%s%s%s", granted, granted[0] != '\0' ? " " : "", words[i]);

			free(granted);
			granted = next;
		}
	}
	util_words_free(words, n);
	if (granted[0] == '\0') {
		authorize_redirect_error(ex, &a, "access_denied");
		goto out;
	}
	lower = util_lower(email);
	authorize_approve(ex, &a, lower, granted, true);
out:
	free(lower);
	free(granted);
	free(scope);
	form_free(f);
}

static const struct route authorize_routes[] = {
    {"/o/oauth2/v2/auth", EVHTTP_REQ_GET, "oauth.authorize", FAMILY_PAGE, authorize_get},
    {"/o/oauth2/auth", EVHTTP_REQ_GET, "oauth.authorize", FAMILY_PAGE, authorize_get},
    {"/o/oauth2/v2/consent", EVHTTP_REQ_POST, "oauth.consent", FAMILY_PAGE, authorize_consent},
};

bool authorize_route(struct exchange *ex)
{
	return exchange_route(ex, authorize_routes, sizeof(authorize_routes) / sizeof(*authorize_routes));
}
