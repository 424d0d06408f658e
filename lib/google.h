/*
 * google: the Google OAuth 2.0 and Calendar v3 calls these services make.
 *
 * Every call runs on the event loop through httpc and ends in one callback
 * with a classified result, so callers branch on what to do (retry later,
 * refresh the token, reconnect the user, give up) rather than on status codes
 * and message text. The classification follows Google's error guide: the
 * HTTP status plus errors[0].reason, never the message (see
 * docs/google.md, "Calendar errors"). Base URLs come from the
 * configuration so tests point them at the local stand-in.
 *
 * Requests that are safe to repeat (reads, patches, deletes, inserts with our
 * own event id, token refreshes) get up to two quick retries of a transient
 * failure, after Google's backoff of 1 s and 2 s plus jitter, before the
 * callback sees it; a transient result therefore means Google stayed
 * unavailable for a few seconds. Code exchanges and revocations are never
 * repeated.
 */
#ifndef GOOGLE_H
#define GOOGLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

struct httpc;
struct config;
struct google;

enum google_outcome {
	GOOGLE_OK,		/* 2xx */
	GOOGLE_TRANSIENT,	/* network, 5xx, 429, 403 rate or usage limits: back off and retry */
	GOOGLE_UNAUTHORIZED,	/* 401: the access token is expired or revoked */
	GOOGLE_INVALID_GRANT,	/* token endpoint: the refresh token or code is dead; the user must reconnect */
	GOOGLE_NOT_FOUND,	/* 404 */
	GOOGLE_DUPLICATE,	/* 409 duplicate: the event id exists (also after deletion) */
	GOOGLE_GONE,		/* 410 deleted: already deleted, which a delete treats as success */
	GOOGLE_PERMANENT,	/* any other refusal: do not retry the same request */
	GOOGLE_FULL_SYNC,	/* 410 fullSyncRequired: the sync token is dead; list everything again */
};

struct google_result {
	enum google_outcome outcome;
	long status;		/* HTTP status; 0 when no answer arrived */
	const char *reason;	/* errors[0].reason, or the OAuth "error" field; may be NULL */
	const char *message;	/* Google's message or the transport error; may be NULL */
	cJSON *json;		/* the parsed body when it is JSON, else NULL */
	long retry_after_s;	/* -1 when absent */
	double seconds;		/* time the call took */
};

/* *result (and result->json) live only for the duration of the callback. */
typedef void (*google_cb)(const struct google_result *result, void *arg);

/*
 * A client over http using the URLs and client credentials of cfg (both must
 * outlive it). The caller frees it with google_free().
 */
struct google *google_new(struct httpc *http, const struct config *cfg);
/*
 * Calls waiting for a quick retry end at once with a transient result; calls
 * in flight answer when httpc gives them up. google_free(NULL) is a no-op.
 */
void google_free(struct google *g);

/* Quick retries per call from now on (2 by default; 0 turns them off). */
void google_set_quick_retries(struct google *g, int retries);

/* The outcome's name for logs, metrics and stored reasons ("transient", ...). */
const char *google_outcome_name(enum google_outcome outcome);

/*
 * Read one answer of Google's (status 0: none arrived) as the callbacks see
 * it: the body parsed when it is JSON, the error's reason and message from
 * either error shape (Calendar's error.errors[0], OAuth's "error"), and the
 * outcome. oauth: the answer came from the token endpoint, where
 * invalid_grant means the grant is dead. The caller deletes out->json with
 * google_json_free(); reason and message point into it.
 */
void google_read_response(long status, const char *body, size_t len, bool oauth, struct google_result *out);

/*
 * cJSON_Delete() of an answer of Google's after zeroing every name and string
 * in it: a token endpoint's answer holds the access and refresh tokens, and
 * cJSON would hand their bytes back to the heap as they are. google_json_free(NULL)
 * is a no-op.
 */
void google_json_free(cJSON *json);

/* OAuth. The token JSON arrives in result->json. */
void google_exchange_code(struct google *g, const char *code, const char *code_verifier, google_cb cb, void *arg);
void google_refresh(struct google *g, const char *refresh_token, google_cb cb, void *arg);
void google_revoke(struct google *g, const char *token, google_cb cb, void *arg);
void google_userinfo(struct google *g, const char *access_token, google_cb cb, void *arg);

/*
 * Calendar events. query is appended to the URL as is ("sendUpdates=all&
 * conferenceDataVersion=1"; may be NULL); calendar_id and event_id are
 * escaped here.
 */
void google_event_insert(struct google *g, const char *access_token, const char *calendar_id,
			 const cJSON *event, const char *query, google_cb cb, void *arg);
void google_event_get(struct google *g, const char *access_token, const char *calendar_id, const char *event_id,
		      google_cb cb, void *arg);
void google_event_patch(struct google *g, const char *access_token, const char *calendar_id,
			const char *event_id, const cJSON *patch, const char *query, google_cb cb, void *arg);
void google_event_delete(struct google *g, const char *access_token, const char *calendar_id,
			 const char *event_id, const char *query, google_cb cb, void *arg);
/*
 * freebusy.query for one calendar over [from_s, to_s): busy spans in UTC
 * (busy.h reads them). Needs the calendar.freebusy scope (or calendar or
 * calendar.readonly); a per-calendar error comes inside a 200.
 */
void google_freebusy(struct google *g, const char *access_token, const char *calendar_id, int64_t from_s,
		     int64_t to_s, google_cb cb, void *arg);
/* events.list with maxResults=1: the answer's "timeZone" is the calendar's zone. */
void google_calendar_probe(struct google *g, const char *access_token, const char *calendar_id, google_cb cb,
			   void *arg);

/*
 * Push notifications and incremental sync (docs/google.md, "Push channels
 * and sync tokens").
 *
 * google_events_watch() opens a channel on calendar_id's events: id (a
 * UUID), address (the webhook's https URL), token (echoed in every push as
 * X-Goog-Channel-Token) and ttl_s (asked for; Google may give less). The
 * answer's json holds resourceId and expiration (ms since the epoch, a
 * string). Not repeated on failure: a second channel with the same id is
 * refused, so the caller decides.
 */
void google_events_watch(struct google *g, const char *access_token, const char *calendar_id, const char *id,
			 const char *address, const char *token, long ttl_s, google_cb cb, void *arg);
/* channels.stop {id, resourceId}: 204; a channel Google no longer knows answers 404. */
void google_channel_stop(struct google *g, const char *access_token, const char *id, const char *resource_id,
			 google_cb cb, void *arg);
/*
 * One page of events.list for sync: with sync_token an incremental list
 * (deleted events included as status "cancelled"; a dead token answers
 * GOOGLE_FULL_SYNC), without one a full list of everything, cancelled
 * events included. page_token (NULL for the first page) continues a list.
 * The answer's json holds items and either nextPageToken or, on the last
 * page, nextSyncToken. Single events (recurring ones expanded) are not
 * asked for: the meetings these services book are single events.
 */
void google_events_list_sync(struct google *g, const char *access_token, const char *calendar_id,
			     const char *sync_token, const char *page_token, google_cb cb, void *arg);

#endif
