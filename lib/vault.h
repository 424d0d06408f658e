/*
 * vault: Google tokens sealed at rest.
 *
 * XChaCha20-Poly1305 (libsodium's IETF AEAD) with a random 192-bit nonce per
 * seal and the user's id as associated data, so a sealed token copied into
 * another user's row does not open. The key ring comes from
 * TOKEN_ENCRYPTION_KEY: "<version>:<base64 of 32 bytes>[,...]"; the first
 * key seals, every key opens, and a bare base64 value is version 1. A sealed
 * value reads "v<version>:<base64 of nonce || ciphertext>", which is how a key
 * rotation finds what still needs re-sealing.
 */
#ifndef VAULT_H
#define VAULT_H

struct vault;

/*
 * Parse a key ring. Returns NULL and sets *error (the caller frees it) when
 * the value is malformed; the message names the problem but never the key.
 * The caller frees the vault with vault_free().
 */
struct vault *vault_new(const char *keyring, char **error);
/* Wipes the keys. vault_free(NULL) is a no-op. */
void vault_free(struct vault *vault);

/* Seal plaintext for user_id with the current key. The caller frees the result. */
char *vault_seal(const struct vault *vault, const char *plaintext, const char *user_id);

/*
 * Open a sealed value for user_id. 0 and *plaintext (the caller frees it,
 * ideally after vault_wipe_free()), or -1 when it is malformed, sealed with an
 * unknown key version, tampered with, or bound to another user.
 */
int vault_open(const struct vault *vault, const char *sealed, const char *user_id, char **plaintext);

/* The key version a sealed value names, or -1 when malformed. */
int vault_sealed_version(const char *sealed);
/* The version new seals use. */
int vault_current_version(const struct vault *vault);

/* Zero a secret string before freeing it (xfree_secret()). vault_wipe_free(NULL) is a no-op. */
void vault_wipe_free(char *secret);

#endif
