/*
 * vault: AEAD sealing of tokens with a versioned key ring (see vault.h).
 */
#include "vault.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "xmalloc.h"

#define VAULT_KEY_BYTES crypto_aead_xchacha20poly1305_ietf_KEYBYTES
#define VAULT_NONCE_BYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define VAULT_MAX_KEYS 16
#define VAULT_MAX_VERSION 1000000

struct vault_key {
	int version;
	unsigned char *key;	/* sodium_malloc'd: guarded and kept out of swap */
};

struct vault {
	struct vault_key keys[VAULT_MAX_KEYS];
	int nkeys;
};

void vault_free(struct vault *vault)
{
	if (vault == NULL)
		return;
	for (int i = 0; i < vault->nkeys; i++)
		sodium_free(vault->keys[i].key);
	free(vault);
}

void vault_wipe_free(char *secret)
{
	xfree_secret(secret);
}

/* Parse one "<version>:<base64>" or bare "<base64>" entry into vault->keys. */
static int vault_add_key(struct vault *vault, const char *entry, size_t len, char **error)
{
	const char *colon = memchr(entry, ':', len);
	const char *b64 = entry;
	size_t b64_len = len, key_len = 0;
	long version = 1;
	struct vault_key *k;

	if (vault->nkeys == VAULT_MAX_KEYS) {
		*error = xasprintf("more than %d keys", VAULT_MAX_KEYS);
		return -1;
	}
	if (colon != NULL) {
		char num[16];
		char *end;
		size_t nlen = (size_t)(colon - entry);

		if (nlen == 0 || nlen >= sizeof(num)) {
			*error = xasprintf("key %d: the version before ':' must be a number", vault->nkeys + 1);
			return -1;
		}
		memcpy(num, entry, nlen);
		num[nlen] = '\0';
		errno = 0;
		version = strtol(num, &end, 10);
		if (errno != 0 || *end != '\0' || version < 1 || version > VAULT_MAX_VERSION) {
			*error = xasprintf("key %d: the version must be a number from 1 to %d", vault->nkeys + 1,
					   VAULT_MAX_VERSION);
			return -1;
		}
		b64 = colon + 1;
		b64_len = len - nlen - 1;
	}
	for (int i = 0; i < vault->nkeys; i++) {
		if (vault->keys[i].version == version) {
			*error = xasprintf("key version %ld appears twice", version);
			return -1;
		}
	}
	k = &vault->keys[vault->nkeys];
	k->key = sodium_malloc(VAULT_KEY_BYTES);
	if (k->key == NULL)
		abort();
	if (sodium_base642bin(k->key, VAULT_KEY_BYTES, b64, b64_len, NULL, &key_len, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    key_len != VAULT_KEY_BYTES) {
		sodium_free(k->key);
		*error = xasprintf("key version %ld is not base64 of exactly %d bytes (make one with: "
				   "head -c 32 /dev/urandom | base64)", version, VAULT_KEY_BYTES);
		return -1;
	}
	k->version = (int)version;
	vault->nkeys++;
	return 0;
}

struct vault *vault_new(const char *keyring, char **error)
{
	struct vault *vault;
	const char *p;

	*error = NULL;
	if (sodium_init() < 0) {
		*error = xstrdup("libsodium failed to initialise");
		return NULL;
	}
	if (keyring == NULL || *keyring == '\0') {
		*error = xstrdup("no key given");
		return NULL;
	}
	vault = xcalloc(1, sizeof(*vault));
	p = keyring;
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);

		while (len > 0 && (*p == ' ' || *p == '\t')) {
			p++;
			len--;
		}
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t' || p[len - 1] == '\n'))
			len--;
		if (len == 0 || vault_add_key(vault, p, len, error) < 0) {
			if (*error == NULL)
				*error = xstrdup("empty key entry");
			vault_free(vault);
			return NULL;
		}
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	return vault;
}

int vault_current_version(const struct vault *vault)
{
	return vault->keys[0].version;
}

int vault_sealed_version(const char *sealed)
{
	long v = 0;
	const char *p;

	if (sealed == NULL || sealed[0] != 'v')
		return -1;
	for (p = sealed + 1; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (*p - '0');
		if (v > VAULT_MAX_VERSION)
			return -1;
	}
	if (p == sealed + 1 || *p != ':' || v < 1)
		return -1;
	return (int)v;
}

char *vault_seal(const struct vault *vault, const char *plaintext, const char *user_id)
{
	size_t plen = strlen(plaintext);
	size_t blen = VAULT_NONCE_BYTES + plen + crypto_aead_xchacha20poly1305_ietf_ABYTES;
	unsigned char *blob = xmalloc(blen);
	unsigned long long clen;
	size_t b64_len = sodium_base64_ENCODED_LEN(blen, sodium_base64_VARIANT_ORIGINAL);
	char prefix[16];
	size_t prefix_len;
	char *out;

	randombytes_buf(blob, VAULT_NONCE_BYTES);
	crypto_aead_xchacha20poly1305_ietf_encrypt(blob + VAULT_NONCE_BYTES, &clen, (const unsigned char *)plaintext,
						   plen, (const unsigned char *)user_id, strlen(user_id), NULL, blob,
						   vault->keys[0].key);
	prefix_len = (size_t)snprintf(prefix, sizeof(prefix), "v%d:", vault->keys[0].version);
	out = xmalloc(prefix_len + b64_len);
	memcpy(out, prefix, prefix_len);
	sodium_bin2base64(out + prefix_len, b64_len, blob, VAULT_NONCE_BYTES + (size_t)clen,
			  sodium_base64_VARIANT_ORIGINAL);
	free(blob);
	return out;
}

int vault_open(const struct vault *vault, const char *sealed, const char *user_id, char **plaintext)
{
	int version = vault_sealed_version(sealed);
	const unsigned char *key = NULL;
	const char *b64;
	unsigned char *blob;
	size_t b64_len, blen = 0;
	unsigned long long mlen;
	char *msg;

	if (version < 0)
		return -1;
	for (int i = 0; i < vault->nkeys; i++)
		if (vault->keys[i].version == version)
			key = vault->keys[i].key;
	if (key == NULL)
		return -1;
	b64 = strchr(sealed, ':') + 1;
	b64_len = strlen(b64);
	blob = xmalloc(b64_len + 1);
	if (sodium_base642bin(blob, b64_len + 1, b64, b64_len, NULL, &blen, NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    blen < VAULT_NONCE_BYTES + crypto_aead_xchacha20poly1305_ietf_ABYTES) {
		free(blob);
		return -1;
	}
	msg = xmalloc(blen);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt((unsigned char *)msg, &mlen, NULL, blob + VAULT_NONCE_BYTES,
						       blen - VAULT_NONCE_BYTES, (const unsigned char *)user_id,
						       strlen(user_id), blob, key) != 0) {
		xfree_wiped(msg, blen);
		free(blob);
		return -1;
	}
	free(blob);
	msg[mlen] = '\0';
	if (memchr(msg, '\0', mlen) != NULL) {
		vault_wipe_free(msg);
		return -1;
	}
	*plaintext = msg;
	return 0;
}
