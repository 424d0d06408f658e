/*
 * Unit tests of lib/vault: sealing round trips, binding to the user, key
 * versions and rotation, tampering, and refusal of malformed key rings.
 */
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "vault.h"

#define KEY1 "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="	/* 32 bytes */
#define KEY2 "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="	/* 32 bytes */

int main(void)
{
	char *err = NULL, *plain = NULL, *sealed, *sealed2;
	struct vault *v1, *v2, *bad;
	const char *token = "1//0gRefreshTokenValue-_~.";

	v1 = vault_new(KEY1, &err);
	CHECK(v1 != NULL && err == NULL, "a bare base64 key is accepted");
	CHECK_INT(vault_current_version(v1), 1, "a bare key is version 1");

	sealed = vault_seal(v1, token, "user-a");
	CHECK(strncmp(sealed, "v1:", 3) == 0, "sealed value names its key version: %s", sealed);
	CHECK(strstr(sealed, "RefreshToken") == NULL, "sealed value is not plain text");
	CHECK_INT(vault_sealed_version(sealed), 1, "version is readable");
	CHECK_INT(vault_open(v1, sealed, "user-a", &plain), 0, "opens for its user");
	CHECK_STR(plain, token, "and gives the original back");
	vault_wipe_free(plain);
	plain = NULL;
	CHECK_INT(vault_open(v1, sealed, "user-b", &plain), -1, "does not open for another user");
	CHECK(plain == NULL, "and hands out nothing");

	sealed2 = vault_seal(v1, token, "user-a");
	CHECK(strcmp(sealed, sealed2) != 0, "two seals of one value differ (random nonce)");
	free(sealed2);

	{
		char *t = strdup(sealed);
		size_t n = strlen(t);

		t[n - 5] = t[n - 5] == 'A' ? 'B' : 'A';
		CHECK_INT(vault_open(v1, t, "user-a", &plain), -1, "a flipped byte is refused");
		t[1] = '2';
		CHECK_INT(vault_open(v1, t, "user-a", &plain), -1, "an unknown version is refused");
		free(t);
	}
	CHECK_INT(vault_open(v1, "v1:", "user-a", &plain), -1, "empty ciphertext refused");
	CHECK_INT(vault_open(v1, "v1:!!!!", "user-a", &plain), -1, "non-base64 refused");
	CHECK_INT(vault_open(v1, "plaintext-token", "user-a", &plain), -1, "unsealed value refused");
	CHECK_INT(vault_sealed_version("x1:abc"), -1, "malformed prefix");

	/* Rotation: new key first, old key still opens old values. */
	v2 = vault_new("2:" KEY2 ", 1:" KEY1, &err);
	CHECK(v2 != NULL, "a two-key ring is accepted");
	CHECK_INT(vault_current_version(v2), 2, "the first key seals");
	CHECK_INT(vault_open(v2, sealed, "user-a", &plain), 0, "the ring opens a value sealed with the old key");
	CHECK_STR(plain, token, "correctly");
	vault_wipe_free(plain);
	sealed2 = vault_seal(v2, token, "user-a");
	CHECK_INT(vault_sealed_version(sealed2), 2, "re-sealing uses the new version");
	CHECK_INT(vault_open(v1, sealed2, "user-a", &plain), -1, "the old ring cannot open the new version");
	free(sealed2);
	free(sealed);

	bad = vault_new("", &err);
	CHECK(bad == NULL && err != NULL, "empty ring refused");
	free(err);
	bad = vault_new("c2hvcnQ=", &err);
	CHECK(bad == NULL && err != NULL && strstr(err, "32 bytes") != NULL, "short key refused: %s", err);
	free(err);
	bad = vault_new("x:" KEY1, &err);
	CHECK(bad == NULL && err != NULL, "non-numeric version refused");
	free(err);
	bad = vault_new("1:" KEY1 ",1:" KEY2, &err);
	CHECK(bad == NULL && err != NULL && strstr(err, "twice") != NULL, "duplicate version refused");
	free(err);
	bad = vault_new(KEY1 ",", &err);
	CHECK(bad == NULL && err != NULL, "trailing comma refused");
	CHECK(strstr(err, "MDEy") == NULL, "errors never echo key material");
	free(err);

	vault_free(v1);
	vault_free(v2);
	vault_free(NULL);
	return tap_done();
}
