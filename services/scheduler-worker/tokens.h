/*
 * tokens: a valid Google access token for a user, refreshed when needed.
 *
 * The token is refreshed when it expires within five minutes (or when Google
 * just answered 401), and at most once at a time per user in this process:
 * jobs that need the same user's token while a refresh is in flight wait for
 * it instead of racing Google's token endpoint. Across processes a race is
 * harmless: Google issues independent access tokens for one refresh token,
 * and the stored one is only replaced by a fresher one.
 *
 * invalid_grant means the user revoked access: the calendar is marked
 * disconnected in the same statement that records why, and the sweep (an
 * outbox over users.google_disconnected_at) mails the owner once.
 */
#ifndef TOKENS_H
#define TOKENS_H

#include <stdbool.h>

struct scheduler;
struct tokens;

enum tokens_status {
	TOKENS_OK,
	TOKENS_NOT_CONNECTED,	/* never connected, disconnected, or no refresh token */
	TOKENS_REVOKED,		/* Google said invalid_grant just now; the user is now disconnected */
	TOKENS_TRANSIENT,	/* Google or the database is unavailable: retry later */
};

/* access_token (valid only during the callback) is set for TOKENS_OK. */
typedef void (*tokens_cb)(enum tokens_status status, const char *access_token, void *arg);

/* The caller frees it with tokens_free(). */
struct tokens *tokens_new(struct scheduler *s);
/* Waiters still queued are told TOKENS_TRANSIENT. tokens_free(NULL) is a no-op. */
void tokens_free(struct tokens *t);

/* Deliver a token for user_id to cb (always later, never inside this call). */
void tokens_get(struct tokens *t, const char *user_id, bool force_refresh, tokens_cb cb, void *arg);

#endif
