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

/*
 * A user's token columns as a statement read them: TOKENS_COLUMNS selected
 * from `users u`. A caller that reads the user's row anyway selects them
 * too and saves tokens_get() its own statement.
 */
#define TOKENS_COLUMNS \
	"u.google_calendar_connected, u.google_access_token, u.google_refresh_token," \
	" COALESCE(EXTRACT(EPOCH FROM u.google_token_expiry - now())::bigint, 0)"

struct db_result;

/* Pointers into the db_result they came from; NULL where the column is NULL (a missing row: all NULL). */
struct tokens_stored {
	const char *connected;
	const char *sealed_access;
	const char *sealed_refresh;
	const char *seconds_left;
};

/* access_token (valid only during the callback) is set for TOKENS_OK. */
typedef void (*tokens_cb)(enum tokens_status status, const char *access_token, void *arg);

/* The caller frees it with tokens_free(). */
struct tokens *tokens_new(struct scheduler *s);
/* Waiters still queued are told TOKENS_TRANSIENT. tokens_free(NULL) is a no-op. */
void tokens_free(struct tokens *t);

/* Deliver a token for user_id to cb (always later, never inside this call). */
void tokens_get(struct tokens *t, const char *user_id, bool force_refresh, tokens_cb cb, void *arg);

/* The TOKENS_COLUMNS that start at column col of row into *st. */
void tokens_stored_from(const struct db_result *r, int row, int col, struct tokens_stored *st);

/* True when the columns say the calendar is connected, with a refresh token to get access tokens from. */
bool tokens_stored_connected(const struct tokens_stored *st);

/*
 * tokens_get() from columns already read: cb runs before this returns when
 * the stored token is good (or the user is not connected); one due for a
 * refresh is read again with tokens_get(). *stored need only live during
 * the call.
 */
void tokens_get_stored(struct tokens *t, const char *user_id, const struct tokens_stored *stored, tokens_cb cb,
		       void *arg);

#endif
