/*
 * cfg: configuration from the environment, validated at start.
 *
 * Each service asks for the groups it needs; every variable in them is read,
 * defaulted and checked, and all problems are reported together, each naming
 * its variable, so an operator fixes a deployment in one pass. Secrets that
 * are read (client secret, JWT secret, passwords, keys) are registered with
 * the log so they can never be printed. Variable names and defaults are the
 * contract written in docs/configuration.md.
 */
#ifndef CFG_H
#define CFG_H

#include <stdbool.h>
#include <stddef.h>

#include "log.h"

enum cfg_group {
	CFG_DATABASE = 1 << 0,		/* DATABASE_URL */
	CFG_AMQP = 1 << 1,		/* AMQP_URL */
	CFG_GOOGLE_OAUTH = 1 << 2,	/* client id/secret, redirect URI, auth/token/revoke/userinfo URLs */
	CFG_GOOGLE_CALENDAR = 1 << 3,	/* client id/secret, token URL, calendar API URL, per-user QPS */
	CFG_VAULT = 1 << 4,		/* TOKEN_ENCRYPTION_KEY */
	CFG_JWT = 1 << 5,		/* JWT_SECRET, JWT_USER_CLAIM, JWT_COOKIE, JWT_ISSUER, JWT_AUDIENCE,
					 * JWT_MAX_LIFETIME_SECONDS */
	CFG_GATEWAY = 1 << 6,		/* LISTEN_ADDR, METRICS_ADDR, FRONTEND_URL, MAX_BODY_BYTES, HTTP_MAX_CONNECTIONS,
					 * HTTP_HEADER_TIMEOUT, WEB_UI, WEB_UI_DEV_USER */
	CFG_WORKER = 1 << 7,		/* METRICS_ADDR, PREFETCH, DRAIN_TIMEOUT_MS */
	CFG_SCHEDULING = 1 << 8,	/* delay, duration, zone, reminders, Meet links, CONFLICT_POLICY, TRANSCRIPT_URL,
					   GOOGLE_WEBHOOK_URL, WATCH_TTL_SECONDS, WATCH_RENEW_BEFORE_SECONDS, SYNC_POLL_SECONDS,
					 * COMMAND_AMQP_USERS */
	CFG_SMTP = 1 << 9,		/* SMTP_URL, SMTP_USER, SMTP_PASSWORD, MAIL_FROM, SMTP_REQUIRE_TLS, TRANSCRIPT_URL,
					 * DEFAULT_TIMEZONE, FRONTEND_URL (optional here: the reconnect link) */
};

/* What an automatic booking does when the rep's calendar is busy at the lead's time. */
enum cfg_conflict_policy {
	CFG_CONFLICT_SKIP,	/* no event: outcome skipped/conflict, and the owner is mailed */
	CFG_CONFLICT_BOOK,	/* book anyway; the meeting says has_conflict */
};

struct config {
	enum log_level log_level;

	char *database_url;
	long database_pool_size;	/* connections per process; 0: the service's default */
	/*
	 * AMQP_URL as given: one broker URL, or several separated by commas
	 * (mq_new() takes either form). amqp_urls holds each entry, trimmed, in
	 * order (amqp_nurls of them; none when the group was not asked for).
	 */
	char *amqp_url;
	char **amqp_urls;
	size_t amqp_nurls;

	char *google_client_id;
	char *google_client_secret;
	char *google_redirect_uri;
	char *google_auth_url;
	char *google_token_url;
	char *google_revoke_url;
	char *google_userinfo_url;
	char *google_calendar_api_url;
	long google_user_qps;

	char *token_encryption_key;

	char *jwt_secret;
	char *jwt_user_claim;
	char *jwt_cookie;
	char *jwt_issuer;	/* NULL: not checked */
	char *jwt_audience;	/* NULL: not checked */
	long jwt_max_lifetime_s;	/* longest token lifetime accepted (exp - iat, and exp - now) */

	char *listen_addr;
	char *frontend_url;	/* required by the gateway; optional (NULL) for the mailer */
	long max_body_bytes;
	long http_max_connections;	/* connections open at once; more are refused 503 */
	long http_header_timeout_s;	/* for a request's head (request line and headers) */
	bool web_ui;
	long booking_horizon_days;	/* how far ahead a write may put a meeting */
	char *web_ui_dev_user;	/* a users.id the local stack's sign-in helper signs in as; NULL: no helper */

	char *metrics_addr;
	long prefetch;		/* deliveries in flight per consumer; 0: the service's default */
	long drain_timeout_ms;	/* how long a stopping worker waits for jobs in flight */

	long schedule_delay_ms;
	long meeting_duration_minutes;
	char *default_timezone;
	long reminder_before_minutes;
	bool meet_links;
	char *transcript_url;	/* "https://app/calls/{call_id}"; NULL: no link */
	/*
	 * Broker users whose meeting commands the scheduler takes, comma-separated
	 * ("gcal-gateway" or "gcal-gateway,gcal-ops"); NULL: none besides the
	 * scheduler's own AMQP user.
	 */
	char *command_amqp_users;
	enum cfg_conflict_policy conflict_policy;
	/*
	 * Two-way sync (docs/sync.md). google_webhook_url: the public address of
	 * the gateway's POST /webhooks/google/calendar that push channels are
	 * opened on; NULL: no channels, the poll alone follows the calendars.
	 */
	char *google_webhook_url;
	long watch_ttl_s;		/* the lifetime asked for a channel */
	long watch_renew_before_s;	/* a channel is replaced this long before it expires */
	long sync_poll_s;		/* a connected user is synced at least this often */

	char *smtp_url;
	char *smtp_user;	/* NULL: no AUTH */
	char *smtp_password;
	char *mail_from;
	bool smtp_require_tls;	/* on unless SMTP_REQUIRE_TLS=off: no mail in clear text */
};

/*
 * Fill *cfg with the groups asked for. default_metrics_addr is the service's
 * default METRICS_ADDR (ignored without CFG_WORKER or CFG_GATEWAY). Returns 0, or -1 with
 * *errors set to one line per problem (the caller frees it).
 */
int cfg_load(struct config *cfg, unsigned groups, const char *default_metrics_addr, char **errors);

/* cfg_load(), and on failure log every problem and exit with status 78. */
void cfg_load_or_exit(struct config *cfg, unsigned groups, const char *default_metrics_addr);

/* Release the strings; the struct itself belongs to the caller. */
void cfg_free(struct config *cfg);

/*
 * Whether name is one of the comma-separated names of list (spaces around
 * each name are ignored; a NULL list names nobody).
 */
bool cfg_list_has(const char *list, const char *name);

/*
 * Split a comma-separated list of URLs (AMQP_URL's form, the convention of
 * RabbitMQ's own clients): each entry trimmed of spaces and tabs. Returns a
 * NULL-terminated array of fresh strings with *n entries (free with
 * cfg_urls_free()), or NULL when the list is NULL, empty or has an empty
 * entry ("a,,b", "a,").
 */
char **cfg_split_urls(const char *list, size_t *n);
/* Free what cfg_split_urls() returned, wiping each entry (they hold passwords). NULL is a no-op. */
void cfg_urls_free(char **urls);

/*
 * Split "host:port" ("[::1]:8080" for IPv6). host is a fresh string the caller
 * frees. 0, or -1 when malformed.
 */
int cfg_split_addr(const char *addr, char **host, int *port);

/*
 * The TRANSCRIPT_URL template tmpl with call_id put in for "{call_id}" (a
 * template without it is used as is): the one link the event description
 * and the mails give. NULL when either is missing or empty. The caller
 * frees it.
 */
char *cfg_transcript_url(const char *tmpl, const char *call_id);

#endif
