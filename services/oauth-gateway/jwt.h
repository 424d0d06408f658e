/*
 * jwt: verification of the platform's HS256 JSON Web Tokens.
 *
 * Pure: a token, a policy and the current time in, the user's id or the
 * reason for refusal out, so every rule is unit-tested exactly. Only HS256
 * is accepted (the header names the algorithm, and trusting it is the
 * classic "alg: none" hole); the signature is checked in constant time
 * before any claim is read; exp is required, nbf and iat are honoured when
 * present, iss and aud are checked when the policy names them, all with the
 * policy's clock skew. A token may not live longer than the policy's
 * maximum: exp - iat must not exceed it, and exp may lie at most that far
 * (plus the skew) beyond now, which is what bounds a token without iat; so
 * a stolen token, or one minted with an absurd exp, stops working within
 * that time whatever it claims. The parts are strict base64url without
 * padding, and a header or payload that repeats a member is refused rather
 * than guessed at (two parsers may pick different copies).
 */
#ifndef JWT_H
#define JWT_H

#include <stddef.h>
#include <stdint.h>

struct jwt_policy {
	const char *secret;	/* the HMAC key, used as given */
	size_t secret_len;
	const char *user_claim;	/* the claim that holds the user's id ("sub") */
	const char *issuer;	/* NULL: iss is not checked */
	const char *audience;	/* NULL: aud is not checked */
	long skew_s;		/* clock skew allowed on exp, nbf and iat */
	long max_lifetime_s;	/* longest lifetime accepted; 0 or less: JWT_DEFAULT_MAX_LIFETIME_S */
};

/* The lifetime bound of a policy that names none (JWT_MAX_LIFETIME_SECONDS' default): 24 hours. */
#define JWT_DEFAULT_MAX_LIFETIME_S (24L * 3600)

/*
 * Verify token at unix time now. 0 and *user (the user claim's string, the
 * caller frees it), or -1 and *why (a static sentence for logs and the 401
 * body; it never contains the token).
 */
int jwt_verify(const struct jwt_policy *policy, const char *token, int64_t now, char **user, const char **why);

/*
 * A token for user that jwt_verify() accepts under the same policy, issued
 * at now and valid ttl_s seconds (with iss and aud when the policy names
 * them). Only the local stack's sign-in helper issues tokens; the platform
 * issues the real ones. The caller frees it.
 */
char *jwt_issue(const struct jwt_policy *policy, const char *user, int64_t now, long ttl_s);

#endif
