/*
 * jwt: HS256 token verification (see jwt.h).
 */
#include "jwt.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cJSON.h>
#include <sodium.h>

#include "xmalloc.h"

/* Far above any real token; bounds the work an unauthenticated caller can cause. */
#define JWT_MAX_LEN 8192
#define JWT_MAX_USER_LEN 255

/*
 * Decode one base64url part (no padding, canonical) into a fresh buffer of
 * *len bytes plus a NUL. NULL when it is not strict base64url.
 */
static unsigned char *jwt_decode(const char *b64, size_t b64_len, size_t *len)
{
	unsigned char *bin = xmalloc(b64_len + 1);

	if (b64_len == 0 || sodium_base642bin(bin, b64_len, b64, b64_len, NULL, len, NULL,
					      sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0) {
		free(bin);
		return NULL;
	}
	bin[*len] = '\0';
	return bin;
}

/* A JSON object with no repeated member names, or NULL. */
static cJSON *jwt_object(const char *b64, size_t b64_len)
{
	size_t len;
	unsigned char *bin = jwt_decode(b64, b64_len, &len);
	cJSON *obj = NULL, *a, *b;

	/* An embedded NUL would let text after it escape the parser's notice. */
	if (bin == NULL || strlen((const char *)bin) != len)
		goto bad;
	/* The terminating NUL is part of the buffer so cJSON refuses trailing garbage. */
	obj = cJSON_ParseWithLengthOpts((const char *)bin, len + 1, NULL, true);
	if (!cJSON_IsObject(obj))
		goto bad;
	cJSON_ArrayForEach(a, obj) {
		for (b = a->next; b != NULL; b = b->next) {
			if (strcmp(a->string, b->string) == 0)
				goto bad;
		}
	}
	free(bin);
	return obj;
bad:
	cJSON_Delete(obj);
	free(bin);
	return NULL;
}

static const char *jwt_check_header(const cJSON *h)
{
	const cJSON *alg = cJSON_GetObjectItemCaseSensitive(h, "alg");
	const cJSON *typ = cJSON_GetObjectItemCaseSensitive(h, "typ");

	if (!cJSON_IsString(alg) || strcmp(alg->valuestring, "HS256") != 0)
		return "only HS256 tokens are accepted";
	if (typ != NULL && (!cJSON_IsString(typ) || strcasecmp(typ->valuestring, "JWT") != 0))
		return "the token type is not JWT";
	/* Extensions we would have to understand to verify correctly (RFC 7515 §4.1.11). */
	if (cJSON_GetObjectItemCaseSensitive(h, "crit") != NULL)
		return "the token uses critical extensions";
	return NULL;
}

static bool jwt_signature_ok(const struct jwt_policy *p, const char *token, size_t signed_len, const char *sig_b64,
			     size_t sig_b64_len)
{
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	unsigned char *sig;
	crypto_auth_hmacsha256_state st;
	size_t sig_len;
	bool ok;

	/* The multi-part API takes a key of any length, as HS256 secrets are. */
	crypto_auth_hmacsha256_init(&st, (const unsigned char *)p->secret, p->secret_len);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)token, signed_len);
	crypto_auth_hmacsha256_final(&st, mac);
	sig = jwt_decode(sig_b64, sig_b64_len, &sig_len);
	ok = sig != NULL && sig_len == sizeof(mac) && sodium_memcmp(mac, sig, sizeof(mac)) == 0;
	sodium_memzero(mac, sizeof(mac));
	free(sig);
	return ok;
}

/* A NumericDate claim: 1 present and valid, 0 absent, -1 malformed. */
static int jwt_time(const cJSON *payload, const char *name, double *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(payload, name);

	if (v == NULL)
		return 0;
	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
		return -1;
	*out = v->valuedouble;
	return 1;
}

static const char *jwt_check_times(const struct jwt_policy *p, const cJSON *payload, int64_t now)
{
	double exp, nbf, iat;
	double t = (double)now;
	double max = (double)(p->max_lifetime_s > 0 ? p->max_lifetime_s : JWT_DEFAULT_MAX_LIFETIME_S);
	int has;

	has = jwt_time(payload, "exp", &exp);
	if (has == 0)
		return "the token has no exp claim";
	if (has < 0)
		return "the token's exp claim is not a number";
	if (t - (double)p->skew_s >= exp)
		return "the token has expired";
	has = jwt_time(payload, "nbf", &nbf);
	if (has < 0)
		return "the token's nbf claim is not a number";
	if (has > 0 && t + (double)p->skew_s < nbf)
		return "the token is not valid yet";
	has = jwt_time(payload, "iat", &iat);
	if (has < 0)
		return "the token's iat claim is not a number";
	if (has > 0 && iat > t + (double)p->skew_s)
		return "the token was issued in the future";
	/*
	 * The lifetime the issuer gave it (both times on the issuer's clock, so no skew), and
	 * for every token, with iat or without, no more than that still ahead of our clock.
	 */
	if ((has > 0 && exp - iat > max) || exp - t > max + (double)p->skew_s)
		return "the token's lifetime is longer than allowed";
	return NULL;
}

static bool jwt_audience_ok(const cJSON *aud, const char *want)
{
	const cJSON *a;

	if (cJSON_IsString(aud))
		return strcmp(aud->valuestring, want) == 0;
	if (!cJSON_IsArray(aud))
		return false;
	cJSON_ArrayForEach(a, aud) {
		if (cJSON_IsString(a) && strcmp(a->valuestring, want) == 0)
			return true;
	}
	return false;
}

static const char *jwt_check_claims(const struct jwt_policy *p, const cJSON *payload, int64_t now)
{
	const char *why = jwt_check_times(p, payload, now);
	const cJSON *iss = cJSON_GetObjectItemCaseSensitive(payload, "iss");
	const cJSON *user = cJSON_GetObjectItemCaseSensitive(payload, p->user_claim);

	if (why != NULL)
		return why;
	if (p->issuer != NULL && (!cJSON_IsString(iss) || strcmp(iss->valuestring, p->issuer) != 0))
		return "the token's issuer is not accepted";
	if (p->audience != NULL && !jwt_audience_ok(cJSON_GetObjectItemCaseSensitive(payload, "aud"), p->audience))
		return "the token is not meant for this service";
	if (!cJSON_IsString(user) || user->valuestring[0] == '\0' || strlen(user->valuestring) > JWT_MAX_USER_LEN)
		return "the token names no user";
	return NULL;
}

int jwt_verify(const struct jwt_policy *p, const char *token, int64_t now, char **user, const char **why)
{
	const char *dot1, *dot2;
	size_t len;
	cJSON *header = NULL, *payload = NULL;
	int rc = -1;

	*user = NULL;
	*why = "the token is malformed";
	if (token == NULL || (len = strlen(token)) == 0 || len > JWT_MAX_LEN)
		return -1;
	dot1 = strchr(token, '.');
	dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
	if (dot2 == NULL || strchr(dot2 + 1, '.') != NULL)
		return -1;
	header = jwt_object(token, (size_t)(dot1 - token));
	if (header == NULL)
		goto out;
	if ((*why = jwt_check_header(header)) != NULL)
		goto out;
	/* Nothing in the payload is believed before the signature is. */
	if (!jwt_signature_ok(p, token, (size_t)(dot2 - token), dot2 + 1, len - (size_t)(dot2 + 1 - token))) {
		*why = "the token's signature is invalid";
		goto out;
	}
	payload = jwt_object(dot1 + 1, (size_t)(dot2 - dot1 - 1));
	if (payload == NULL) {
		*why = "the token is malformed";
		goto out;
	}
	if ((*why = jwt_check_claims(p, payload, now)) != NULL)
		goto out;
	*user = xstrdup(cJSON_GetObjectItemCaseSensitive(payload, p->user_claim)->valuestring);
	*why = NULL;
	rc = 0;
out:
	cJSON_Delete(header);
	cJSON_Delete(payload);
	return rc;
}

/* base64url without padding of len bytes. The caller frees it. */
static char *jwt_encode(const unsigned char *bin, size_t len)
{
	size_t cap = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	char *out = xmalloc(cap);

	sodium_bin2base64(out, cap, bin, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return out;
}

char *jwt_issue(const struct jwt_policy *p, const char *user, int64_t now, long ttl_s)
{
	static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	crypto_auth_hmacsha256_state st;
	cJSON *claims = cJSON_CreateObject();
	char *payload, *h64, *p64, *signing, *s64, *token;

	cJSON_AddStringToObject(claims, p->user_claim, user);
	cJSON_AddNumberToObject(claims, "iat", (double)now);
	cJSON_AddNumberToObject(claims, "exp", (double)(now + ttl_s));
	if (p->issuer != NULL)
		cJSON_AddStringToObject(claims, "iss", p->issuer);
	if (p->audience != NULL)
		cJSON_AddStringToObject(claims, "aud", p->audience);
	payload = cJSON_PrintUnformatted(claims);
	if (payload == NULL)
		abort();
	h64 = jwt_encode((const unsigned char *)header, strlen(header));
	p64 = jwt_encode((const unsigned char *)payload, strlen(payload));
	signing = xasprintf("%s.%s", h64, p64);
	crypto_auth_hmacsha256_init(&st, (const unsigned char *)p->secret, p->secret_len);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)signing, strlen(signing));
	crypto_auth_hmacsha256_final(&st, mac);
	s64 = jwt_encode(mac, sizeof(mac));
	token = xasprintf("%s.%s", signing, s64);
	sodium_memzero(mac, sizeof(mac));
	cJSON_free(payload);
	cJSON_Delete(claims);
	free(h64);
	free(p64);
	free(signing);
	free(s64);
	return token;
}
