/*
 * google-standin: a stateful, in-memory stand-in for Google's OAuth 2.0,
 * userinfo and Calendar v3 endpoints, for tests and the local stack.
 *
 * Everything the modules share is declared here, grouped by the file that
 * defines it (tmux's layout). The process is one libevent loop; no module
 * blocks, and every HTTP request is one struct exchange that is answered
 * exactly once through the exchange_reply*() family, which also feeds the
 * journal (stats and the request log of the admin API).
 */
#ifndef STANDIN_H
#define STANDIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>
#include <event2/event.h>
#include <event2/http.h>

#define STANDIN_MAX_BODY (1024 * 1024)

#define SCOPE_PREFIX  "https://www.googleapis.com/auth/"
#define SCOPE_EMAIL   SCOPE_PREFIX "userinfo.email"
#define SCOPE_PROFILE SCOPE_PREFIX "userinfo.profile"
/* Google's default avatar, the "picture" of every account here. */
#define GOOGLE_PICTURE "https://lh3.googleusercontent.com/a/default-user=s96-c"

/* config.c */

/* What the CLI flags and POST /_standin/config set. */
struct config {
	char *client_id;
	char *client_secret;
	char **redirect_uris; /* exact matches; none: any loopback http URI */
	size_t nredirect_uris;
	bool auto_approve;
	char *email;           /* the account the consent page proposes */
	char *timezone;        /* calendar zone of accounts without their own */
	long access_token_ttl; /* seconds */
};

extern struct config config;

void config_init(struct config *c);
void config_clear(struct config *c);
/* Deep copy of src into dst (which holds nothing on entry). */
void config_copy(struct config *dst, const struct config *src);
void config_add_redirect_uri(struct config *c, const char *uri);
/* Apply a JSON object of settings; on error *err (static) says why, -1. */
int config_apply_json(struct config *c, const cJSON *obj, const char **err);
/* The settings as JSON; the caller deletes it. */
cJSON *config_to_json(const struct config *c);

/* map.c */

/*
 * A hash map from strings (copied in) to values the map owns: free_value,
 * when not NULL, releases a value when it is replaced, deleted or the map
 * goes away.
 */
struct map;

struct map *map_new(void (*free_value)(void *));
void map_free(struct map *m);
void map_clear(struct map *m);
size_t map_count(const struct map *m);
void *map_get(const struct map *m, const char *key);
/* Insert or replace (the old value is released). */
void map_set(struct map *m, const char *key, void *value);
/* 0 when the key was there and is now gone (value released), -1 otherwise. */
int map_del(struct map *m, const char *key);
/*
 * Call fn on every entry, in no particular order; entries for which fn
 * returns true are removed and their values released.
 */
void map_sweep(struct map *m, bool (*fn)(const char *key, void *value, void *arg), void *arg);

/* form.c */

/* Decoded application/x-www-form-urlencoded pairs, in order, repeats kept. */
struct form;

/* Decode one component s[0..len) ('+' is a space); the caller frees. */
char *form_decode(const char *s, size_t len);

/* Parse s[0..len) (len may be 0 with s NULL). The caller frees with form_free(). */
struct form *form_parse(const char *s, size_t len);
void form_free(struct form *f);
/* The first value of key, or NULL. Owned by the form. */
const char *form_get(const struct form *f, const char *key);
/* The i-th value of key (0-based), or NULL when there are fewer. */
const char *form_get_nth(const struct form *f, const char *key, size_t i);

/* util.c */

/* Milliseconds since the epoch (wall clock). */
int64_t util_now_ms(void);
/* RFC 3339 UTC with milliseconds, as Google writes "created"/"updated". buf: 32 bytes. */
void util_format_time(int64_t ms, char *buf, size_t size);
/* prefix + base64url (no padding) of nbytes random bytes; the caller frees. */
char *util_random_token(const char *prefix, size_t nbytes);
/* base64url without padding of bin; the caller frees. */
char *util_base64url(const unsigned char *bin, size_t len);
/* HTML-escaped copy of s; the caller frees. */
char *util_html_escape(const char *s);
/* Percent-encoded copy of s for a URI query value; the caller frees. */
char *util_url_encode(const char *s);
/* Lowercased copy; the caller frees. */
char *util_lower(const char *s);
/* Parse a base-10 long in [min, max]; 0 or -1. */
int util_parse_long(const char *s, long min, long max, long *out);
/* A plausible email address (one '@', no spaces or controls, not too long). */
bool util_valid_email(const char *s);
/* Whether the space-separated list has the word. */
bool util_has_word(const char *list, const char *word);
/* Split a space-separated list into *n words; free with util_words_free(). */
char **util_words(const char *list, size_t *n);
void util_words_free(char **words, size_t n);
/* A PKCE code_verifier (RFC 7636 §4.1). */
bool util_pkce_verifier_ok(const char *v);
/* Strict RFC 3339 with an offset, for query parameters; 0 or -1. */
int util_parse_instant(const char *s, int64_t *epoch_s);

/* exchange.c */

/* What faults.c decided for one request. */
struct fault {
	long delay_ms;
	int status;      /* 0: no injected failure */
	char reason[64]; /* "" unless a rule named one */
};

enum exchange_family {
	FAMILY_PAGE,  /* browser pages: never faulted */
	FAMILY_OAUTH, /* token, revoke, tokeninfo: OAuth error bodies */
	FAMILY_API,   /* userinfo, Calendar: Google API error bodies */
	FAMILY_ADMIN, /* /_standin/: never faulted nor journaled */
};

/* One request, from arrival to its single reply. */
struct exchange {
	struct evhttp_request *req;
	enum evhttp_cmd_type method;
	const char *method_name; /* static */
	char *path;              /* raw path, no query */
	struct form *query;
	char *seg[2];         /* decoded path parameters (calendar id, event id) */
	const char *endpoint; /* static name for stats ("events.insert") */
	enum exchange_family family;
	void (*handler)(struct exchange *ex);
	char *email; /* the account acted for, once known */
	int64_t started_ms;
	struct fault fault;
	bool faulted;                 /* the reply was an injected failure */
	struct event *timer;          /* while delayed by injected latency */
	struct exchange *prev, *next; /* the list of delayed exchanges */
};

/* A Google API error. Nothing is owned: strings are static or outlive the reply. */
struct api_error {
	int status;
	const char *domain;
	const char *reason;
	const char *message;
	const char *item_message;  /* errors[0].message when it differs from message */
	const char *location_type; /* NULL or "header"/"parameter" */
	const char *location;
};

/* The loop (main.c's), set by server_start() for the timers handlers need. */
extern struct event_base *exchange_base;

void exchange_set_email(struct exchange *ex, const char *email);
/* The request body as a NUL-terminated copy (length in *len); the caller frees. */
char *exchange_body(struct exchange *ex, size_t *len);
const char *exchange_header(struct exchange *ex, const char *name);
/* Answer and free ex; ex is gone afterwards. body may be NULL. */
void exchange_reply(struct exchange *ex, int status, const char *content_type, const char *body, size_t len);
/* Answer with JSON; obj is deleted. */
void exchange_reply_json(struct exchange *ex, int status, cJSON *obj);
/* Google's API error body for err. */
void exchange_api_error(struct exchange *ex, const struct api_error *err);
/* The OAuth error body {"error", "error_description"}. */
void exchange_oauth_error(struct exchange *ex, int status, const char *error, const char *description);
void exchange_html(struct exchange *ex, int status, const char *html);
void exchange_redirect(struct exchange *ex, const char *location);
/* Canonical error for a bare status (faults); reason may be NULL. */
void exchange_fault(struct exchange *ex, int status, const char *reason);
/* A new exchange for req; the reply functions free it. */
struct exchange *exchange_new(struct evhttp_request *req);

/* One exact path a module serves. */
struct route {
	const char *path;
	int methods; /* EVHTTP_REQ_* bits */
	const char *endpoint;
	enum exchange_family family;
	void (*handler)(struct exchange *ex);
};

/* Give ex the handler of the first matching route; false when none matches. */
bool exchange_route(struct exchange *ex, const struct route *routes, size_t n);

/* server.c */

/* Bind host:port (loopback only) and serve; the bound URL goes to url_out (caller frees). */
int server_start(struct event_base *base, const char *host, int port, char **url_out);
/* Answer what is still delayed, then stop serving. */
void server_stop(void);

/* faults.c */

void faults_free(void);
/* Replace the settings; on error *err (static) says why, -1 (nothing changes). */
int faults_set_json(const cJSON *obj, const char **err);
void faults_clear(void);
/* What to do to this request. */
void faults_decide(const char *method, const char *path, struct fault *out);
/* Current settings and remaining rules; the caller deletes it. */
cJSON *faults_to_json(void);

/* journal.c */

void journal_init(void);
void journal_free(void);
void journal_reset(void);
void journal_record(const struct exchange *ex, int status);
void journal_note_refresh(const char *email);
/* The caller deletes both. */
cJSON *journal_stats_json(void);
cJSON *journal_requests_json(void);

/* store.c */

/* A user's primary calendar (the only calendar an account has). */
struct account {
	char *email; /* lowercase; also the calendar id */
	char *id;    /* Google's numeric user id */
	char *name;
	char *timezone;            /* NULL: config.timezone */
	struct cal_event **events; /* insertion order; owned by the store's map */
	size_t nevents, capevents;
	int64_t updated_ms;
	uint64_t change_seq; /* rises on every change to one of its events (sync tokens) */
	uint32_t sync_epoch; /* a new value invalidates every sync token issued before */
};

struct cal_event {
	struct account *account;
	char *id;
	cJSON *res;             /* the resource as served */
	int64_t start_s, end_s; /* instants, for list filters and ordering */
	int64_t updated_ms;
	int sequence;
	uint64_t change_seq; /* the account's change_seq at this event's last change */
	cJSON *writes; /* admin view: one {op, send_updates, conference_data_version} per write */
};

void store_init(void);
void store_free(void);
void store_reset(void);
/* Find or create the account; never NULL. Owned by the store. */
struct account *store_account(const char *email);
/* NULL when the account was never seen. */
struct account *store_find_account(const char *email);
const char *store_timezone(const struct account *a);
struct cal_event *store_get_event(const struct account *a, const char *id);
/* Take ownership of ev (whose account and id are set) and file it. */
void store_add_event(struct cal_event *ev);
size_t store_count_events(void);
/* Call fn for every account. */
void store_each_account(void (*fn)(struct account *a, void *arg), void *arg);

/* grants.c */

/* An access token's grant, as the Calendar and userinfo handlers see it. */
struct access {
	char *email;
	char *client_id;
	char *scope;
	int64_t expires_ms;
};

struct code {
	char *client_id;
	char *redirect_uri;
	char *scope;
	char *email;
	char *challenge; /* NULL without PKCE */
	bool challenge_s256;
	bool offline;
	bool consent_shown;
	char *nonce;
	int64_t expires_ms;
	bool used;
};

void grants_init(void);
void grants_free(void);
void grants_reset(void);
/* File c (the store owns it now); returns the code string, which the caller frees. */
char *grants_add_code(struct code *c);
struct code *grants_find_code(const char *code);
/* Issue an access token; the caller frees the token string. */
char *grants_issue_access(const char *email, const char *client_id, const char *scope);
/* Issue a refresh token for a new grant; the caller frees it. */
char *grants_issue_refresh(const char *email, const char *client_id, const char *scope);
/*
 * The grant behind a refresh token: 0 with its email, client and scope (owned
 * by the grant store, valid until the next grants_* call), or -1 when it is
 * unknown or revoked.
 */
int grants_find_refresh(const char *token, const char **email, const char **client_id, const char **scope);
/* A live (known, unexpired) access token, or NULL. */
const struct access *grants_find_access(const char *token);
/* Revoke everything (email, client) holds, and forget its consent. */
void grants_revoke(const char *email, const char *client_id);
/* Revoke what an account granted to any client; returns how many refresh tokens died. */
size_t grants_revoke_email(const char *email);
/* Expire every access token of the account; returns how many. */
size_t grants_expire_email(const char *email);
size_t grants_count_live(void);
/* Scopes (email, client) has consented to, or NULL. */
const char *grants_consented(const char *email, const char *client_id);
void grants_note_consent(const char *email, const char *client_id, const char *scope);
/*
 * Remember a secret the stand-in issued or was sent (codes, tokens, states,
 * PKCE verifiers; values under 8 bytes are not secrets worth the name) for
 * GET /_standin/secrets, with which tests check that no log shows one.
 */
void grants_note_secret(const char *value, const char *kind);
/* [{"kind": ..., "value": ...}, ...]; the caller owns it. */
cJSON *grants_secrets_json(void);

/* authorize.c */

/* The parameters of an authorization request; the strings belong to a form. */
struct authz {
	const char *client_id;
	const char *redirect_uri;
	const char *response_type;
	const char *scope;
	const char *state;
	const char *code_challenge;
	const char *code_challenge_method;
	const char *access_type;
	const char *prompt;
	const char *login_hint;
	const char *include_granted_scopes;
	const char *nonce;
};

bool authorize_route(struct exchange *ex);

/* token.c */

bool token_route(struct exchange *ex);

/* oauth.c */

bool oauth_route(struct exchange *ex);
/*
 * The live access token the request carries, with one of the scopes (NULL:
 * any). Otherwise answer 401/403 as Google does and return NULL.
 */
const struct access *oauth_authenticate(struct exchange *ex, const char *const *scopes);

/* pages.c */

/* The consent page for a (checked) request; scope is its normalised scope list. Caller frees. */
char *pages_consent(const struct authz *a, const char *scope, const char *email);
/* Google's "Access blocked" page; the caller frees. */
char *pages_error(const char *title, int code, const char *error, const char *detail);
/* The admin calendar view of GET /_standin/events (Accept: text/html); the caller frees. */
char *pages_calendar(const struct account *const *accounts, size_t n);

/* calendar.c */

bool calendar_route(struct exchange *ex);
/*
 * File a new event in acct's calendar as its owner would in Google's UI
 * (the admin API's POST /_standin/events): body is an Event as for
 * events.insert (id optional). NULL with *err when Google would refuse it.
 */
struct cal_event *calendar_ui_insert(struct account *acct, const cJSON *body, struct api_error *err);
/*
 * What the owner does in Google's UI and what an attendee answers (the admin
 * API's knobs): each stamps the event (updated, etag), records op in its
 * history, counts as a change for sync tokens and pushes to the calendar's
 * channels. 0, or -1 with *err (a message for the admin answer).
 */
int calendar_ui_move(struct cal_event *ev, const cJSON *start, const cJSON *end, long shift_s, const char **err);
int calendar_ui_delete(struct cal_event *ev, const char **err);
int calendar_ui_respond(struct cal_event *ev, const char *attendee, const char *response, const char **err);
/* Every sync token of acct answers 410 fullSyncRequired from now on. */
void calendar_invalidate_sync_tokens(struct account *acct);

/* watch.c */

void watch_init(void);
void watch_free(void);
/* Stop and forget every channel, the push log and the knobs. */
void watch_reset(void);
/* POST calendars/{cal}/events/watch and POST channels/stop (calendar.c routes them). */
void watch_events(struct exchange *ex, struct account *acct);
void watch_stop(struct exchange *ex);
/* Something in acct's calendar changed: an "exists" push to each live channel on it. */
void watch_notify(struct account *acct);
/* Admin: merge {drop_all, drop_next, max_ttl_s}; -1 with *err (static). */
int watch_set_json(const cJSON *obj, const char **err);
/* {settings, channels, pushes}; the caller deletes it. */
cJSON *watch_to_json(void);

/* events.c */

/* Build a new resource from a request body (insert/update); NULL and *err on a bad body. */
cJSON *events_from_body(const cJSON *body, struct api_error *err);
/* Apply a patch body onto res (in place); 0, or -1 with *err. */
int events_patch(cJSON *res, const cJSON *body, struct api_error *err);
/* Check start/end of res and compute their instants; 0, or -1 with *err. */
int events_times(const cJSON *res, const char *zone, int64_t *start_s, int64_t *end_s, struct api_error *err);
/* Apply conferenceData of body to res (conferenceDataVersion=1); 0, or -1 with *err. */
int events_conference(cJSON *res, const cJSON *body, bool replace, struct api_error *err);
/* Whether the change from old to res is one Google bumps the sequence for. */
bool events_significant(const cJSON *old, const cJSON *res);
bool events_valid_id(const char *id);
/* A fresh server-chosen event id; the caller frees. */
char *events_new_id(void);
/*
 * Set the read-only fields Google fills in (etag, updated, sequence, ...)
 * and put the fields in Google's order; ev->res is replaced.
 */
void events_stamp(struct cal_event *ev, int64_t now_ms);

/* freebusy.c */

void freebusy_init(void);
void freebusy_free(void);
/* Back to no per-calendar errors and the default largest window. */
void freebusy_reset(void);
/* POST /calendar/v3/freeBusy (calendar.c routes it). */
void freebusy_query(struct exchange *ex);
/* Admin: merge {calendar_errors, max_range_days}; on error *err (static) says why, -1 (nothing changes). */
int freebusy_set_json(const cJSON *obj, const char **err);
/* The settings; the caller deletes it. */
cJSON *freebusy_to_json(void);

/* admin.c */

bool admin_route(struct exchange *ex);
void admin_init(const struct config *startup);
void admin_free(void);

#endif
