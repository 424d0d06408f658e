/*
 * fuzz_jwt: the Bearer token and the JWT cookie, attacker-controlled.
 *
 * Input: the token text. Invariants: without the key nothing is accepted
 * (a random input verifying would mean the signature check is bypassed);
 * a token issued with the key verifies to its user, and one byte changed
 * anywhere in it (fuzzer-chosen) makes it fail.
 */
#include "fuzz.h"

#include "jwt.h"

static const struct jwt_policy fuzz_policy = {
	.secret = "fuzz-secret-0123456789abcdef0123456789abcdef",
	.secret_len = 44,
	.user_claim = "sub",
	.issuer = NULL,
	.audience = NULL,
	.skew_s = 60,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *token = fuzz_string(data, size);
	char *user = NULL;
	const char *why = NULL;
	char *issued;
	size_t len;

	if (jwt_verify(&fuzz_policy, token, 1767225600, &user, &why) == 0)
		fuzz_fail("a token not signed with the key was accepted for user '%s'", user);
	if (why == NULL)
		fuzz_fail("a refusal without a reason");
	free(user);
	user = NULL;

	issued = jwt_issue(&fuzz_policy, "0f8fad5b-d9cb-469f-a165-70867728950e", 1767225600, 3600);
	if (jwt_verify(&fuzz_policy, issued, 1767225600, &user, &why) != 0 ||
	    strcmp(user, "0f8fad5b-d9cb-469f-a165-70867728950e") != 0)
		fuzz_fail("an issued token does not verify");
	free(user);
	user = NULL;
	len = strlen(issued);
	if (size >= 2) {
		size_t at = ((size_t)data[0] << 8 | data[1]) % len;
		char was = issued[at];

		issued[at] = (char)(data[size - 1] ? data[size - 1] : 1);
		/* base64url has two spellings of the last character's unused bits; only a real change counts. */
		if (issued[at] != was && jwt_verify(&fuzz_policy, issued, 1767225600, &user, &why) == 0 &&
		    at != len - 1 && issued[at + 1] != '.')
			fuzz_fail("a token changed at byte %zu still verifies", at);
		free(user);
	}
	free(issued);
	free(token);
	return 0;
}
