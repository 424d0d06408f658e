/*
 * Unit tests of the oauth-gateway's jwt module: what a valid platform token
 * looks like, and every way a token is refused (algorithm, signature, time
 * claims with their skew, issuer, audience, user claim, malformed parts),
 * and that the sign-in helper's own tokens pass exactly that check.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "jwt.h"
#include "tap.h"
#include "xmalloc.h"

#define SECRET "unit-test-secret-0123456789abcdef"
#define NOW 1700000000
#define USER "6f1c2a52-8a55-4e0e-9b7c-1d2e3f405162"
/* jwt.io's example token, signed by another implementation with "your-256-bit-secret"; it has no exp. */
#define JWT_IO_TOKEN                                                                                    \
	"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2" \
	"MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"

static const struct jwt_policy policy = {
	.secret = SECRET,
	.secret_len = sizeof(SECRET) - 1,
	.user_claim = "sub",
	.skew_s = 60,
};

static char *b64url(const char *data, size_t len)
{
	size_t cap = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	char *out = xmalloc(cap);

	sodium_bin2base64(out, cap, (const unsigned char *)data, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return out;
}

/* header.payload.signature signed HS256 with secret; the caller frees it. */
static char *token_with(const char *header, const char *payload, const char *secret)
{
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	crypto_auth_hmacsha256_state st;
	char *h = b64url(header, strlen(header));
	char *p = b64url(payload, strlen(payload));
	char *input = xasprintf("%s.%s", h, p);
	char *sig, *out;

	crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)input, strlen(input));
	crypto_auth_hmacsha256_final(&st, mac);
	sig = b64url((const char *)mac, sizeof(mac));
	out = xasprintf("%s.%s", input, sig);
	free(h);
	free(p);
	free(input);
	free(sig);
	return out;
}

static char *token(const char *payload)
{
	return token_with("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload, SECRET);
}

/* Verify and report: the refusal reason, or "ok:<user>"; the caller frees it. */
static char *verdict_with(const struct jwt_policy *p, const char *tok)
{
	char *user = NULL;
	const char *why = NULL;
	char buf[300];

	if (jwt_verify(p, tok, NOW, &user, &why) == 0)
		snprintf(buf, sizeof(buf), "ok:%s", user);
	else
		snprintf(buf, sizeof(buf), "%s%s", why, user != NULL ? " (and a user leaked)" : "");
	free(user);
	return xstrdup(buf);
}

static void expect(const char *tok, const char *want, const char *what)
{
	char *got = verdict_with(&policy, tok);

	CHECK_STR(got, want, "%s", what);
	free(got);
}

static void expect_payload(const char *payload, const char *want, const char *what)
{
	char *tok = token(payload);

	expect(tok, want, what);
	free(tok);
}

static void test_valid(void)
{
	char payload[200];

	snprintf(payload, sizeof(payload), "{\"sub\":\"%s\",\"exp\":%d,\"iat\":%d}", USER, NOW + 3600, NOW);
	expect_payload(payload, "ok:" USER, "a valid token gives its user");
	snprintf(payload, sizeof(payload), "{\"sub\":\"%s\",\"exp\":%d.5}", USER, NOW + 10);
	expect_payload(payload, "ok:" USER, "a fractional exp is a NumericDate too");
	{
		char *tok = token_with("{\"alg\":\"HS256\"}", "{\"sub\":\"u\",\"exp\":1700000100}", SECRET);

		expect(tok, "ok:u", "typ may be absent");
		free(tok);
	}
	expect(JWT_IO_TOKEN, "the token's signature is invalid", "another secret's token is refused");
	{
		struct jwt_policy io = policy;
		char *got;

		io.secret = "your-256-bit-secret";
		io.secret_len = strlen(io.secret);
		got = verdict_with(&io, JWT_IO_TOKEN);
		CHECK_STR(got, "the token has no exp claim", "jwt.io's token verifies with its secret, then lacks exp");
		free(got);
	}
}

static void test_algorithms(void)
{
	static const char *const headers[] = {
		"{\"alg\":\"none\",\"typ\":\"JWT\"}", "{\"alg\":\"None\"}", "{\"alg\":\"HS512\"}",
		"{\"alg\":\"RS256\"}", "{\"alg\":\"hs256\"}", "{\"typ\":\"JWT\"}", "{\"alg\":256}",
	};
	const char *payload = "{\"sub\":\"u\",\"exp\":1700000100}";

	for (size_t i = 0; i < sizeof(headers) / sizeof(*headers); i++) {
		char *tok = token_with(headers[i], payload, SECRET);

		expect(tok, "only HS256 tokens are accepted", headers[i]);
		free(tok);
	}
	{
		/* alg none with the signature left empty, as the attack sends it. */
		char *h = b64url("{\"alg\":\"none\"}", 14);
		char *p = b64url(payload, strlen(payload));
		char tok[300];

		snprintf(tok, sizeof(tok), "%s.%s.", h, p);
		expect(tok, "only HS256 tokens are accepted", "alg none with an empty signature");
		free(h);
		free(p);
	}
	{
		char *tok = token_with("{\"alg\":\"HS256\",\"typ\":\"JWS\"}", payload, SECRET);

		expect(tok, "the token type is not JWT", "a typ other than JWT");
		free(tok);
		tok = token_with("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", payload, SECRET);
		expect(tok, "the token uses critical extensions", "crit");
		free(tok);
	}
}

static void test_signature(void)
{
	const char *payload = "{\"sub\":\"u\",\"exp\":1700000100}";
	char *tok = token_with("{\"alg\":\"HS256\"}", payload, "another-secret-0123456789abcdef");
	char *good, *dot;

	expect(tok, "the token's signature is invalid", "wrong key");
	free(tok);

	good = token(payload);
	tok = xstrdup(good);
	dot = strchr(tok, '.');
	dot[3] = dot[3] == 'A' ? 'B' : 'A';
	expect(tok, "the token's signature is invalid", "a changed payload");
	free(tok);

	tok = xstrdup(good);
	tok[strlen(tok) - 2] = '\0';
	expect(tok, "the token's signature is invalid", "a truncated signature");
	free(tok);

	tok = xasprintf("%sAA", good);
	expect(tok, "the token's signature is invalid", "a lengthened signature");
	free(tok);

	tok = xstrdup(good);
	*strrchr(tok, '.') = '\0';
	expect(tok, "the token is malformed", "no signature part");
	free(tok);
	free(good);
}

static void test_times(void)
{
	char p[200];

	expect_payload("{\"sub\":\"u\"}", "the token has no exp claim", "exp is required");
	expect_payload("{\"sub\":\"u\",\"exp\":\"1700003600\"}", "the token's exp claim is not a number",
		       "exp as a string");
	expect_payload("{\"sub\":\"u\",\"exp\":null}", "the token's exp claim is not a number", "exp null");
	snprintf(p, sizeof(p), "{\"sub\":\"u\",\"exp\":%d}", NOW - 61);
	expect_payload(p, "the token has expired", "expired beyond the skew");
	snprintf(p, sizeof(p), "{\"sub\":\"u\",\"exp\":%d}", NOW - 60);
	expect_payload(p, "the token has expired", "expired exactly at the skew");
	snprintf(p, sizeof(p), "{\"sub\":\"u\",\"exp\":%d}", NOW - 30);
	expect_payload(p, "ok:u", "expired within the skew");
	snprintf(p, sizeof(p), "{\"sub\":\"u\",\"exp\":%d,\"nbf\":%d}", NOW + 600, NOW + 61);
	expect_payload(p, "the token is not valid yet", "nbf beyond the skew");
	snprintf(p, sizeof(p), "{\"sub\":\"u\",\"exp\":%d,\"nbf\":%d}", NOW + 600, NOW + 59);
	expect_payload(p, "ok:u", "nbf within the skew");
	snprintf(p, sizeof(p), "{\"sub\":\"u\",\"exp\":%d,\"nbf\":\"soon\"}", NOW + 600);
	expect_payload(p, "the token's nbf claim is not a number", "nbf malformed");
	snprintf(p, sizeof(p), "{\"sub\":\"u\",\"exp\":%d,\"iat\":%d}", NOW + 600, NOW + 120);
	expect_payload(p, "the token was issued in the future", "iat beyond the skew");
	snprintf(p, sizeof(p), "{\"sub\":\"u\",\"exp\":%d,\"iat\":%d}", NOW + 600, NOW + 30);
	expect_payload(p, "ok:u", "iat within the skew");
	snprintf(p, sizeof(p), "{\"sub\":\"u\",\"exp\":%d,\"iat\":true}", NOW + 600);
	expect_payload(p, "the token's iat claim is not a number", "iat malformed");
}

/* The lifetime bound: exp - iat, and for any token how far exp lies beyond now (JWT_MAX_LIFETIME_SECONDS). */
static void test_lifetime(void)
{
	struct jwt_policy p = policy;
	char pl[300], *tok, *got;
	static const struct {
		const char *payload;
		const char *want;
		const char *what;
	} cases[] = {
		{ "{\"sub\":\"u\",\"exp\":1e308}", "the token's lifetime is longer than allowed",
		  "an exp of 1e308 without iat" },
		{ "{\"sub\":\"u\",\"exp\":1e308,\"iat\":1700000000}", "the token's lifetime is longer than allowed",
		  "an exp of 1e308 with iat" },
		{ "{\"sub\":\"u\",\"exp\":1e308,\"iat\":-1e308}", "the token's lifetime is longer than allowed",
		  "a lifetime too large for a double" },
		{ "{\"sub\":\"u\",\"exp\":4102444800}", "the token's lifetime is longer than allowed",
		  "exp in 2100 without iat" },
		{ "{\"sub\":\"u\",\"exp\":1700086400,\"iat\":1700000000}", "ok:u", "exactly 24 hours" },
		{ "{\"sub\":\"u\",\"exp\":1700086401,\"iat\":1700000000}", "the token's lifetime is longer than allowed",
		  "a second over 24 hours" },
		{ "{\"sub\":\"u\",\"exp\":1700043200,\"iat\":1699913600}", "the token's lifetime is longer than allowed",
		  "36 hours, though only 12 of them are left" },
		{ "{\"sub\":\"u\",\"exp\":1700086460}", "ok:u", "no iat: exp 24 hours and the skew from now" },
		{ "{\"sub\":\"u\",\"exp\":1700086461}", "the token's lifetime is longer than allowed",
		  "no iat: a second beyond that" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++)
		expect_payload(cases[i].payload, cases[i].want, cases[i].what);

	/* A policy's own bound (JWT_MAX_LIFETIME_SECONDS) replaces the default. */
	p.max_lifetime_s = 3600;
	snprintf(pl, sizeof(pl), "{\"sub\":\"u\",\"exp\":%d,\"iat\":%d}", NOW + 3600, NOW);
	tok = token(pl);
	got = verdict_with(&p, tok);
	CHECK_STR(got, "ok:u", "a configured bound: an hour's token passes an hour's bound");
	free(got);
	free(tok);
	snprintf(pl, sizeof(pl), "{\"sub\":\"u\",\"exp\":%d,\"iat\":%d}", NOW + 3601, NOW);
	tok = token(pl);
	got = verdict_with(&p, tok);
	CHECK_STR(got, "the token's lifetime is longer than allowed", "and a second more does not");
	free(got);
	free(tok);
	snprintf(pl, sizeof(pl), "{\"sub\":\"u\",\"exp\":%d}", NOW + 7200);
	tok = token(pl);
	got = verdict_with(&p, tok);
	CHECK_STR(got, "the token's lifetime is longer than allowed", "nor two hours ahead without iat");
	free(got);
	free(tok);
	p.max_lifetime_s = 7 * 86400;
	snprintf(pl, sizeof(pl), "{\"sub\":\"u\",\"exp\":%d,\"iat\":%d}", NOW + 6 * 86400, NOW);
	tok = token(pl);
	got = verdict_with(&p, tok);
	CHECK_STR(got, "ok:u", "a longer configured bound lets a six-day token through");
	free(got);
	free(tok);
}

static void test_issuer_audience(void)
{
	struct jwt_policy p = policy;
	char *tok, *got;
	static const struct {
		const char *payload;
		const char *want;
		const char *what;
	} cases[] = {
		{ "{\"sub\":\"u\",\"exp\":1700003600,\"iss\":\"platform\",\"aud\":\"calendar\"}", "ok:u",
		  "both match" },
		{ "{\"sub\":\"u\",\"exp\":1700003600,\"iss\":\"platform\",\"aud\":[\"x\",\"calendar\"]}", "ok:u",
		  "aud in a list" },
		{ "{\"sub\":\"u\",\"exp\":1700003600,\"aud\":\"calendar\"}", "the token's issuer is not accepted",
		  "iss missing" },
		{ "{\"sub\":\"u\",\"exp\":1700003600,\"iss\":\"other\",\"aud\":\"calendar\"}",
		  "the token's issuer is not accepted", "iss wrong" },
		{ "{\"sub\":\"u\",\"exp\":1700003600,\"iss\":\"platform\"}", "the token is not meant for this service",
		  "aud missing" },
		{ "{\"sub\":\"u\",\"exp\":1700003600,\"iss\":\"platform\",\"aud\":[\"x\"]}",
		  "the token is not meant for this service", "aud list without us" },
		{ "{\"sub\":\"u\",\"exp\":1700003600,\"iss\":\"platform\",\"aud\":7}",
		  "the token is not meant for this service", "aud not a string" },
	};

	p.issuer = "platform";
	p.audience = "calendar";
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		tok = token(cases[i].payload);
		got = verdict_with(&p, tok);
		CHECK_STR(got, cases[i].want, "iss/aud: %s", cases[i].what);
		free(got);
		free(tok);
	}
	expect_payload("{\"sub\":\"u\",\"exp\":1700003600,\"iss\":\"anyone\",\"aud\":\"any\"}", "ok:u",
		       "iss and aud are not checked unless configured");
}

static void test_user_claim(void)
{
	struct jwt_policy p = policy;
	char *tok, *got;

	expect_payload("{\"exp\":1700003600}", "the token names no user", "no sub");
	expect_payload("{\"sub\":42,\"exp\":1700003600}", "the token names no user", "numeric sub");
	expect_payload("{\"sub\":\"\",\"exp\":1700003600}", "the token names no user", "empty sub");
	expect_payload("{\"sub\":\"a\",\"sub\":\"b\",\"exp\":1700003600}", "the token is malformed",
		       "a repeated claim is refused");
	p.user_claim = "user_id";
	tok = token("{\"sub\":\"x\",\"user_id\":\"" USER "\",\"exp\":1700003600}");
	got = verdict_with(&p, tok);
	CHECK_STR(got, "ok:" USER, "a configured user claim is used instead of sub");
	free(got);
	free(tok);
	tok = token("{\"sub\":\"x\",\"exp\":1700003600}");
	got = verdict_with(&p, tok);
	CHECK_STR(got, "the token names no user", "and required");
	free(got);
	free(tok);
}

static void test_malformed(void)
{
	char *good = token("{\"sub\":\"u\",\"exp\":1700003600}");
	char *tok;
	char *user = (char *)"sentinel";
	const char *why = NULL;

	expect("", "the token is malformed", "empty");
	expect("abc", "the token is malformed", "one part");
	expect("a.b", "the token is malformed", "two parts");
	expect("a.b.c.d", "the token is malformed", "four parts");
	expect("..", "the token is malformed", "empty parts");
	tok = xasprintf("%s.", good);
	expect(tok, "the token is malformed", "a trailing dot");
	free(tok);

	tok = token_with("{\"alg\":\"HS256\"}", "[\"sub\",\"u\"]", SECRET);
	expect(tok, "the token is malformed", "a payload that is not an object");
	free(tok);
	tok = token_with("{\"alg\":\"HS256\"}", "{\"sub\":\"u\",\"exp\":1700003600} x", SECRET);
	expect(tok, "the token is malformed", "garbage after the payload");
	free(tok);
	tok = token_with("{\"alg\":\"HS256\"}", "{\"sub\":\"u\",\"exp\":1700003600", SECRET);
	expect(tok, "the token is malformed", "truncated JSON");
	free(tok);
	tok = token_with("{\"alg\":\"HS256\",\"alg\":\"none\"}", "{\"sub\":\"u\",\"exp\":1700003600}", SECRET);
	expect(tok, "the token is malformed", "a repeated header member");
	free(tok);
	tok = token_with("not json", "{\"sub\":\"u\",\"exp\":1700003600}", SECRET);
	expect(tok, "the token is malformed", "a header that is not JSON");
	free(tok);

	/* Standard base64 characters and padding are not base64url. */
	tok = xstrdup(good);
	tok[1] = '+';
	expect(tok, "the token is malformed", "a '+' in the header");
	free(tok);
	{
		const char *dot = strchr(good, '.');

		tok = xasprintf("%.*s=%s", (int)(dot - good), good, dot);
	}
	expect(tok, "the token is malformed", "padding in the header");
	free(tok);
	free(good);

	CHECK(jwt_verify(&policy, NULL, NOW, &user, &why) == -1 && user == NULL && why != NULL,
	      "NULL is refused and no user is handed out");
	{
		char *huge = xmalloc(9000);

		memset(huge, 'a', 8999);
		huge[8999] = '\0';
		huge[100] = '.';
		huge[200] = '.';
		expect(huge, "the token is malformed", "an oversized token");
		free(huge);
	}
}

/* jwt_issue(): what the local stack's sign-in helper hands out is an ordinary, checked token. */
static void test_issued(void)
{
	struct jwt_policy strict = policy;
	char *tok = jwt_issue(&policy, USER, NOW, 3600);
	char *got = verdict_with(&policy, tok);

	CHECK_STR(got, "ok:" USER, "an issued token verifies");
	free(got);
	free(tok);
	tok = jwt_issue(&policy, USER, NOW - 7200, 3600);
	got = verdict_with(&policy, tok);
	CHECK_STR(got, "the token has expired", "an issued token expires after its lifetime");
	free(got);
	free(tok);
	strict.user_claim = "uid";
	strict.issuer = "platform";
	strict.audience = "calendar";
	tok = jwt_issue(&strict, USER, NOW, 60);
	got = verdict_with(&strict, tok);
	CHECK_STR(got, "ok:" USER, "an issued token carries the policy's claim, issuer and audience");
	free(got);
	got = verdict_with(&policy, tok);
	CHECK_STR(got, "the token names no user", "and only that claim");
	free(got);
	free(tok);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	test_valid();
	test_algorithms();
	test_signature();
	test_times();
	test_lifetime();
	test_issuer_audience();
	test_user_claim();
	test_malformed();
	test_issued();
	return tap_done();
}
