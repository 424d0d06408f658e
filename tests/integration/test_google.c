/*
 * Integration test of lib/google against the Google stand-in of the run
 * (TEST_GOOGLE_URL): the OAuth code exchange with PKCE, userinfo, the
 * calendar probe, event insert/get/patch/delete, and every outcome the
 * services branch on: duplicate ids, deleted events, expired and revoked
 * tokens, invalid_grant, and injected 500/503/429/403 rate limits.
 *
 * At the end, with everything freed, no copy of any secret that went through
 * lib/google, lib/httpc or libcurl is left in the heap (tests/unit/heapscan.h):
 * not the client secret, a code, the PKCE verifier, an access or a refresh
 * token, whether it was in a form body, an Authorization header, an answer or
 * its parsed JSON. The test wipes its own copies too.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <cJSON.h>
#include <curl/curl.h>
#include <event2/event.h>
#include <sodium.h>

#include "cfg.h"
#include "google.h"
#include "heapscan.h"
#include "httpc.h"
#include "log.h"
#include "metrics.h"
#include "tap.h"
#include "testenv.h"
#include "xmalloc.h"

struct call {
	bool done;
	enum google_outcome outcome;
	long status;
	char *reason;
	cJSON *json;
};

static struct event_base *base;
static struct httpc *http;
static struct config cfg;
static struct google *g;

static void on_result(const struct google_result *r, void *arg)
{
	struct call *c = arg;

	const char *access = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r->json, "access_token"));
	const char *refresh = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r->json, "refresh_token"));

	if (access != NULL)
		heapscan_note("an access token", access);
	if (refresh != NULL)
		heapscan_note("a refresh token", refresh);
	c->outcome = r->outcome;
	c->status = r->status;
	c->reason = r->reason ? xstrdup(r->reason) : NULL;
	c->json = r->json ? cJSON_Duplicate(r->json, 1) : NULL;
	c->done = true;
}

static void call_reset(struct call *c)
{
	free(c->reason);
	google_json_free(c->json);
	memset(c, 0, sizeof(*c));
}

static void wait_call(struct call *c)
{
	if (!testenv_run_until(base, &c->done, 20000))
		CHECK(0, "the call finished in time");
}

static const char *jstr(const cJSON *j, const char *k)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, k));
}

/* Blocking set-up calls to the stand-in's admin API and consent form (test set-up only). */
static size_t collect(char *d, size_t s, size_t n, void *arg)
{
	char **buf = arg;
	size_t old = *buf ? strlen(*buf) : 0;

	/* The consent form's answer names the code. */
	*buf = xrealloc_wiped(*buf, old, old + s * n + 1);
	memcpy(*buf + old, d, s * n);
	(*buf)[old + s * n] = '\0';
	return s * n;
}

static long blocking_post(const char *url, const char *type, const char *body, char **location)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	char *hdr = xasprintf("Content-Type: %s", type);
	char *out = NULL;
	long status = 0;

	h = curl_slist_append(h, hdr);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
	if (curl_easy_perform(c) == CURLE_OK) {
		char *loc = NULL;

		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &loc);
		if (location != NULL)
			*location = loc ? xstrdup(loc) : NULL;
	}
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	free(hdr);
	xfree_secret(out);
	return status;
}

static void admin(const char *path, const char *json)
{
	char *url = xasprintf("%s/_standin/%s", testenv_require("TEST_GOOGLE_URL"), path);

	if (blocking_post(url, "application/json", json, NULL) != 200)
		CHECK(0, "admin %s accepted", path);
	free(url);
}

static double quick_retries(const char *op)
{
	return metric_value(metrics_counter("google_quick_retries_total", "Transient Google failures retried in-process.",
					    "op", op, NULL));
}

/* An events.get of an unknown event under the fault rules: its answer and the quick retries it took. */
static void get_under_faults(const char *access, const char *rules, long want_status, double want_retries,
			     const char *what)
{
	struct call c = { 0 };
	double before = quick_retries("events.get");

	admin("faults", rules);
	google_event_get(g, access, "primary", "nosuchevent0000", on_result, &c);
	wait_call(&c);
	CHECK(c.status == want_status, "%s: status %ld", what, c.status);
	CHECK(quick_retries("events.get") - before == want_retries, "%s: %g quick retries", what,
	      quick_retries("events.get") - before);
	call_reset(&c);
	admin("faults", "{\"rules\":[]}");
}

/* Transient failures are retried in-process twice, permanent ones and code exchanges never. */
static void test_quick_retries(const char *access)
{
	struct call c = { 0 };
	struct google *g2;
	struct timeval until;
	double before;

	get_under_faults(access, "{\"rules\":[{\"status\":503}]}", 404, 1,
			 "a single 503 is retried and the caller sees the real answer");
	get_under_faults(access, "{\"rules\":[{\"status\":500,\"count\":3}]}", 500, 2,
			 "three 500s in a row reach the caller after two quick retries");
	get_under_faults(access, "{\"rules\":[{\"status\":403,\"reason\":\"forbidden\"},{\"status\":503}]}", 403, 0,
			 "a permanent refusal is not retried");

	/* A code is good for one exchange: a 500 may have used it up, so it is never sent twice. */
	admin("faults", "{\"rules\":[{\"path_prefix\":\"/token\",\"status\":500}]}");
	google_exchange_code(g, "some-code", "some-verifier", on_result, &c);
	wait_call(&c);
	CHECK(c.outcome == GOOGLE_TRANSIENT && c.status == 500, "a code exchange answers its first 500");
	CHECK(quick_retries("oauth.token") == 0, "and is not repeated");
	call_reset(&c);

	/* Freeing the client ends a call waiting for its retry at once, as transient. */
	before = quick_retries("events.get");
	g2 = google_new(http, &cfg);
	admin("faults", "{\"rules\":[{\"status\":503}]}");
	google_event_get(g2, access, "primary", "nosuchevent0000", on_result, &c);
	gettimeofday(&until, NULL);
	until.tv_sec += 10;
	while (quick_retries("events.get") == before && !c.done) {
		struct timeval now;

		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		gettimeofday(&now, NULL);
		if (timercmp(&now, &until, >))
			break;
	}
	CHECK(quick_retries("events.get") == before + 1 && !c.done, "the call waits for its quick retry");
	google_free(g2);
	CHECK(c.done && c.outcome == GOOGLE_TRANSIENT && c.status == 0, "google_free() ends it as transient");
	call_reset(&c);
}

/* The consent form's Allow for email with a PKCE challenge; returns the code (caller frees). */
static char *consent(const char *email, const char *challenge)
{
	char *url = xasprintf("%s/o/oauth2/v2/consent", testenv_require("TEST_GOOGLE_URL"));
	char *body = xasprintf("client_id=standin-client-id&redirect_uri=http%%3A%%2F%%2F127.0.0.1%%3A9%%2Fcb"
			       "&response_type=code&state=s&email=%s&decision=allow&access_type=offline"
			       "&prompt=consent&code_challenge=%s&code_challenge_method=S256"
			       "&scope=https%%3A%%2F%%2Fwww.googleapis.com%%2Fauth%%2Fcalendar.events+"
			       "https%%3A%%2F%%2Fwww.googleapis.com%%2Fauth%%2Fuserinfo.email"
			       "&granted_scope=https%%3A%%2F%%2Fwww.googleapis.com%%2Fauth%%2Fcalendar.events"
			       "&granted_scope=https%%3A%%2F%%2Fwww.googleapis.com%%2Fauth%%2Fuserinfo.email",
			       email, challenge);
	char *location = NULL, *code = NULL;
	long st = blocking_post(url, "application/x-www-form-urlencoded", body, &location);
	const char *p;

	CHECK_INT(st, 302, "the consent form redirects");
	if (location != NULL && (p = strstr(location, "code=")) != NULL) {
		size_t n = strcspn(p + 5, "&");
		char *c = curl_easy_unescape(NULL, p + 5, (int)n, NULL);

		code = xstrdup(c);
		xwipe(c, strlen(c));
		curl_free(c);
		heapscan_note("an authorization code", code);
	}
	xfree_secret(location);
	free(url);
	free(body);
	return code;
}

static void test_oauth_and_calendar(void)
{
	struct call c = { 0 };
	const char *email = "lib-google@example.com";
	const char *verifier = "v3rifier-with-enough-characters-to-be-a-valid-pkce-code-verifier";
	unsigned char digest[crypto_hash_sha256_BYTES];
	char challenge[64], *code, *access, *refresh;
	cJSON *ev;

	heapscan_note("the PKCE verifier", verifier);
	crypto_hash_sha256(digest, (const unsigned char *)verifier, strlen(verifier));
	sodium_bin2base64(challenge, sizeof(challenge), digest, sizeof(digest), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	code = consent(email, challenge);
	CHECK(code != NULL, "a code came back");

	google_exchange_code(g, code, "wrong-verifier-wrong-verifier-wrong-verifier-wrong", on_result, &c);
	wait_call(&c);
	CHECK_INT(c.outcome, GOOGLE_INVALID_GRANT, "a PKCE mismatch is invalid_grant");
	call_reset(&c);

	code = (xfree_secret(code), consent(email, challenge));
	google_exchange_code(g, code, verifier, on_result, &c);
	wait_call(&c);
	CHECK_INT(c.outcome, GOOGLE_OK, "the code exchange succeeds");
	access = xstrdup(jstr(c.json, "access_token") ? jstr(c.json, "access_token") : "");
	refresh = xstrdup(jstr(c.json, "refresh_token") ? jstr(c.json, "refresh_token") : "");
	CHECK(strncmp(access, "ya29.", 5) == 0 && strncmp(refresh, "1//", 3) == 0, "Google-shaped tokens");
	call_reset(&c);
	google_exchange_code(g, code, verifier, on_result, &c);
	wait_call(&c);
	CHECK_INT(c.outcome, GOOGLE_INVALID_GRANT, "a reused code is invalid_grant");
	call_reset(&c);
	xfree_secret(code);

	google_userinfo(g, access, on_result, &c);
	wait_call(&c);
	CHECK(c.outcome == GOOGLE_OK && jstr(c.json, "email") && strcmp(jstr(c.json, "email"), email) == 0,
	      "userinfo names the account");
	call_reset(&c);
	google_calendar_probe(g, access, "primary", on_result, &c);
	wait_call(&c);
	CHECK(c.outcome == GOOGLE_OK && jstr(c.json, "timeZone") != NULL, "the probe reads the calendar zone");
	call_reset(&c);

	ev = cJSON_Parse("{\"id\":\"libgoogletest0001\",\"summary\":\"t\","
			 "\"start\":{\"dateTime\":\"2099-01-01T10:00:00+05:30\",\"timeZone\":\"Asia/Kolkata\"},"
			 "\"end\":{\"dateTime\":\"2099-01-01T10:30:00+05:30\",\"timeZone\":\"Asia/Kolkata\"}}");
	google_event_insert(g, access, "primary", ev, "sendUpdates=all", on_result, &c);
	wait_call(&c);
	CHECK_INT(c.outcome, GOOGLE_OK, "insert with a client id");
	call_reset(&c);
	google_event_insert(g, access, "primary", ev, "sendUpdates=all", on_result, &c);
	wait_call(&c);
	CHECK_INT(c.outcome, GOOGLE_DUPLICATE, "the same id again is a duplicate (409)");
	call_reset(&c);
	cJSON_ReplaceItemInObject(ev, "id", cJSON_CreateString("has-a-dash"));
	google_event_insert(g, access, "primary", ev, NULL, on_result, &c);
	wait_call(&c);
	CHECK(c.outcome == GOOGLE_PERMANENT && c.status == 400, "an invalid id is refused for good (400)");
	call_reset(&c);
	cJSON_Delete(ev);

	ev = cJSON_Parse("{\"summary\":\"moved\"}");
	google_event_patch(g, access, "primary", "libgoogletest0001", ev, "sendUpdates=all&conferenceDataVersion=1",
			   on_result, &c);
	wait_call(&c);
	CHECK(c.outcome == GOOGLE_OK && jstr(c.json, "summary") && strcmp(jstr(c.json, "summary"), "moved") == 0,
	      "patch changes the field");
	call_reset(&c);
	cJSON_Delete(ev);
	google_event_get(g, access, "primary", "nosuchevent0000", on_result, &c);
	wait_call(&c);
	CHECK_INT(c.outcome, GOOGLE_NOT_FOUND, "an unknown event is not found");
	call_reset(&c);
	google_event_delete(g, access, "primary", "libgoogletest0001", "sendUpdates=all", on_result, &c);
	wait_call(&c);
	CHECK_INT(c.outcome, GOOGLE_OK, "delete");
	call_reset(&c);
	google_event_delete(g, access, "primary", "libgoogletest0001", "sendUpdates=all", on_result, &c);
	wait_call(&c);
	CHECK_INT(c.outcome, GOOGLE_GONE, "deleting again is gone (410)");
	call_reset(&c);

	/* Injected faults: transient ones back off, others are permanent. */
	{
		static const struct {
			const char *rule;
			enum google_outcome want;
			const char *what;
		} faults[] = {
			{ "{\"status\":500}", GOOGLE_TRANSIENT, "500 backendError is transient" },
			{ "{\"status\":503}", GOOGLE_TRANSIENT, "503 is transient" },
			{ "{\"status\":429}", GOOGLE_TRANSIENT, "429 is transient" },
			{ "{\"status\":403,\"reason\":\"rateLimitExceeded\"}", GOOGLE_TRANSIENT,
			  "403 rateLimitExceeded is transient" },
			{ "{\"status\":403,\"reason\":\"userRateLimitExceeded\"}", GOOGLE_TRANSIENT,
			  "403 userRateLimitExceeded is transient" },
			{ "{\"status\":403,\"reason\":\"forbidden\"}", GOOGLE_PERMANENT, "403 forbidden is permanent" },
		};

		/* Each rule fires once; without quick retries the caller sees that one answer. */
		google_set_quick_retries(g, 0);
		for (size_t i = 0; i < sizeof(faults) / sizeof(*faults); i++) {
			char *rules = xasprintf("{\"rules\":[%s]}", faults[i].rule);

			admin("faults", rules);
			free(rules);
			google_event_get(g, access, "primary", "libgoogletest0001", on_result, &c);
			wait_call(&c);
			CHECK_INT(c.outcome, faults[i].want, "%s", faults[i].what);
			call_reset(&c);
		}
		google_set_quick_retries(g, 2);
	}
	test_quick_retries(access);

	/* Expired access token, then a refresh, then a revoked grant. */
	{
		char *body = xasprintf("{\"email\":\"%s\"}", email);

		admin("expire-tokens", body);
		google_event_get(g, access, "primary", "libgoogletest0001", on_result, &c);
		wait_call(&c);
		CHECK_INT(c.outcome, GOOGLE_UNAUTHORIZED, "an expired access token is 401");
		call_reset(&c);
		google_refresh(g, refresh, on_result, &c);
		wait_call(&c);
		CHECK(c.outcome == GOOGLE_OK && jstr(c.json, "access_token") && !jstr(c.json, "refresh_token"),
		      "a refresh gives an access token and no refresh token");
		call_reset(&c);
		admin("revoke-grants", body);
		google_refresh(g, refresh, on_result, &c);
		wait_call(&c);
		CHECK_INT(c.outcome, GOOGLE_INVALID_GRANT, "a revoked grant answers invalid_grant");
		call_reset(&c);
		google_revoke(g, "not-a-token", on_result, &c);
		wait_call(&c);
		CHECK(c.outcome == GOOGLE_PERMANENT && c.status == 400, "revoking an unknown token is a 400");
		call_reset(&c);
		free(body);
	}
	xfree_secret(access);
	xfree_secret(refresh);
}

/* A client secret of this run's own, long and random, so the heap scan can look for it. */
static char *client_secret(void)
{
	unsigned char bin[24];
	char hex[2 * sizeof(bin) + 1];
	char *secret, *body;

	randombytes_buf(bin, sizeof(bin));
	sodium_bin2hex(hex, sizeof(hex), bin, sizeof(bin));
	secret = xasprintf("standin-client-secret-%s", hex);
	sodium_memzero(hex, sizeof(hex));
	heapscan_note("the client secret", secret);
	body = xasprintf("{\"client_secret\":\"%s\"}", secret);
	admin("config", body);
	xfree_secret(body);
	return secret;
}

int main(void)
{
	const char *url = testenv_require("TEST_GOOGLE_URL");
	const char *left;

	log_init("test_google", LOG_WARN);
	base = event_base_new();
	http = httpc_new(base, 0);
	admin("reset", "{}");
	cfg.google_client_id = xstrdup("standin-client-id");
	cfg.google_client_secret = client_secret();
	cfg.google_redirect_uri = xstrdup("http://127.0.0.1:9/cb");
	cfg.google_token_url = xasprintf("%s/token", url);
	cfg.google_revoke_url = xasprintf("%s/revoke", url);
	cfg.google_userinfo_url = xasprintf("%s/oauth2/v2/userinfo", url);
	cfg.google_calendar_api_url = xasprintf("%s/calendar/v3", url);
	g = google_new(http, &cfg);

	test_oauth_and_calendar();
	admin("reset", "{}");

	google_free(g);
	httpc_free(http);
	event_base_free(base);
	cfg_free(&cfg);
	metrics_shutdown();
	if (heapscan_available()) {
		left = heapscan_find();
		CHECK(left == NULL, "no copy of a secret is left in the heap (left: %s)", left ? left : "none");
	} else {
		printf("# heap scan skipped under AddressSanitizer\n");
	}
	return tap_done();
}
