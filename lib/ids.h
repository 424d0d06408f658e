/*
 * ids: the identifiers every service checks and the gateway makes: UUIDs
 * (users, meetings, leads, command and job ids, checked at each boundary
 * before they reach SQL or a log) and random URL-safe strings (OAuth state,
 * PKCE verifier), all from libsodium's CSPRNG.
 */
#ifndef IDS_H
#define IDS_H

#include <stdbool.h>
#include <stddef.h>

#define IDS_UUID_LEN 36

/* 8-4-4-4-12 hexadecimal, either case. */
bool ids_is_uuid(const char *s);
/* A random (version 4) UUID in lower case into out (IDS_UUID_LEN + 1 bytes). */
void ids_uuid4(char *out);
/* Lower-case s in place (UUIDs compare as text in logs and replies). */
void ids_lower(char *s);
/* base64url without padding of len bytes. The caller frees it. */
char *ids_b64url(const unsigned char *bin, size_t len);
/* nbytes random bytes as base64url. The caller frees it. */
char *ids_random_b64url(size_t nbytes);

#endif
