/*
 * Unit tests of the wiping helpers (lib/xmalloc.h, google_json_free): a
 * secret released through them leaves no copy in the heap, where one
 * released with free(), realloc(), vasprintf() or cJSON_Delete() stays
 * (tests/unit/heapscan.h finds it, which the controls prove).
 */
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>
#include <sodium.h>

#include "google.h"
#include "heapscan.h"
#include "tap.h"
#include "vault.h"
#include "xmalloc.h"

#define SECRET_HEX 32	/* random bytes: 64 hex digits */

/* A fresh random secret in the heap ("<prefix><64 hex digits>"), noted for the scan. */
static char *secret(const char *prefix, const char *what)
{
	unsigned char bin[SECRET_HEX];
	size_t plen = strlen(prefix);
	char *s = xmalloc(plen + 2 * SECRET_HEX + 1);

	memcpy(s, prefix, plen);
	randombytes_buf(bin, sizeof(bin));
	sodium_bin2hex(s + plen, 2 * SECRET_HEX + 1, bin, sizeof(bin));
	sodium_memzero(bin, sizeof(bin));
	heapscan_note(what, s);
	return s;
}

/* Is the secret noted last (only one noted) still in memory? Forgets it either way. */
static bool left_behind(void)
{
	bool found = heapscan_find() != NULL;

	heapscan_reset();
	return found;
}

/* No copy of the noted secret is left (checked where the heap can be scanned). */
static void expect_clean(const char *what)
{
	if (!heapscan_available()) {
		heapscan_reset();
		return;
	}
	CHECK(!left_behind(), "%s leaves no copy", what);
}

static void test_controls(void)
{
	char *s = secret("", "control");
	char *big, *json_text;
	cJSON *json;

	/* The scan sees what free() leaves: without this, a clean scan would prove nothing. */
	free(s);
	CHECK(left_behind(), "control: a secret released with free() stays in the heap, and the scan finds it");

	s = secret("ya29.", "control");
	big = realloc(s, 1 << 20);	/* beyond the mmap threshold: the data moves */
	CHECK(big != NULL && left_behind(), "control: realloc() leaves the old copy when it moves the data");
	xfree_wiped(big, 1 << 20);

	s = secret("", "control");
	json_text = xasprintf("{\"access_token\":\"%s\",\"expires_in\":3599}", s);
	xfree_secret(s);
	json = cJSON_Parse(json_text);
	xfree_secret(json_text);
	cJSON_Delete(json);
	CHECK(left_behind(), "control: cJSON_Delete() leaves a token's string in the heap");
}

static void test_helpers(void)
{
	char *s, *grown, *text, *json_text;
	unsigned char *buf;
	cJSON *json;

	s = secret("1//0", "a string released with xfree_secret()");
	xfree_secret(s);
	expect_clean("xfree_secret()");
	xfree_secret(NULL);

	s = secret("", "a string released with vault_wipe_free()");
	vault_wipe_free(s);
	expect_clean("vault_wipe_free()");

	/* A secret inside a larger buffer, as an answer's body holds one. */
	s = secret("", "a buffer released with xfree_wiped()");
	buf = xmalloc(4096);
	memset(buf, 'x', 4096);
	memcpy(buf + 1000, s, strlen(s));
	xfree_secret(s);
	xfree_wiped(buf, 4096);
	expect_clean("xfree_wiped()");
	xfree_wiped(NULL, 10);

	s = secret("ya29.", "a buffer grown with xrealloc_wiped()");
	grown = xrealloc_wiped(s, strlen(s) + 1, 1 << 20);
	CHECK(grown != s && strncmp(grown, "ya29.", 5) == 0 && strlen(grown) == 5 + 2 * SECRET_HEX,
	      "xrealloc_wiped() moves the contents");
	xfree_wiped(grown, 1 << 20);
	expect_clean("xrealloc_wiped() (the old block)");
	s = xmalloc(64);
	strcpy(s, "small");
	grown = xrealloc_wiped(s, 6, 16);
	CHECK(grown == s && strcmp(grown, "small") == 0, "xrealloc_wiped() stays in place when the block is big enough");
	free(grown);
	grown = xrealloc_wiped(NULL, 0, 10);
	CHECK(grown != NULL, "xrealloc_wiped(NULL) allocates");
	free(grown);

	/* vasprintf() grows its buffer and leaves the smaller copies behind; xasprintf() writes once. */
	s = secret("ya29.", "an Authorization header from xasprintf()");
	text = xasprintf("Authorization: Bearer %s%s", s, s);
	CHECK(strncmp(text, "Authorization: Bearer ya29.", 27) == 0 && strlen(text) == 22 + 2 * strlen(s),
	      "xasprintf() formats");
	xfree_secret(s);
	xfree_secret(text);
	expect_clean("xasprintf()");

	s = secret("", "a token answer released with google_json_free()");
	json_text = xasprintf("{\"access_token\":\"%s\",\"nested\":{\"refresh_token\":[\"%s\"]},\"%s\":1}", s, s, s);
	xfree_secret(s);
	json = cJSON_Parse(json_text);
	xfree_secret(json_text);
	CHECK(json != NULL, "the answer parses");
	google_json_free(json);
	google_json_free(NULL);
	expect_clean("google_json_free() (every name and string)");
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	if (!heapscan_available()) {
		/* AddressSanitizer: the helpers still run (and are checked for memory errors), unscanned. */
		printf("# heap scans skipped under AddressSanitizer\n");
	} else {
		test_controls();
	}
	test_helpers();
	return tap_done();
}
