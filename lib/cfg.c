/*
 * cfg: environment configuration with validation (see cfg.h).
 */
#include "cfg.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tz.h"
#include "vault.h"
#include "xmalloc.h"

#define CFG_EXIT_CONFIG 78
/* Bytes of JWT_SECRET at least: an HMAC-SHA256 key as long as the hash. */
#define CFG_JWT_SECRET_MIN 32

struct cfg_errors {
	char *text;
};

static void cfg_error(struct cfg_errors *e, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void cfg_error(struct cfg_errors *e, const char *name, const char *fmt, ...)
{
	va_list ap;
	char *msg, *line;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		abort();
	va_end(ap);
	line = xasprintf("%s%s: %s\n", e->text ? e->text : "", name, msg);
	free(msg);
	free(e->text);
	e->text = line;
}

/* The trimmed value, or NULL when unset or empty. */
static char *cfg_get(const char *name)
{
	const char *v = getenv(name);
	size_t len;

	if (v == NULL)
		return NULL;
	while (*v == ' ' || *v == '\t')
		v++;
	len = strlen(v);
	while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t' || v[len - 1] == '\n' || v[len - 1] == '\r'))
		len--;
	return len ? xstrndup(v, len) : NULL;
}

static char *cfg_required(struct cfg_errors *e, const char *name)
{
	char *v = cfg_get(name);

	if (v == NULL)
		cfg_error(e, name, "is required but not set");
	return v;
}

static char *cfg_default(const char *name, const char *def)
{
	char *v = cfg_get(name);

	return v ? v : (def ? xstrdup(def) : NULL);
}

static long cfg_long(struct cfg_errors *e, const char *name, long def, long min, long max)
{
	char *v = cfg_get(name);
	char *end;
	long n;

	if (v == NULL)
		return def;
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno != 0 || *end != '\0' || n < min || n > max) {
		cfg_error(e, name, "must be a whole number from %ld to %ld, not '%s'", min, max, v);
		n = def;
	}
	free(v);
	return n;
}

static bool cfg_bool(struct cfg_errors *e, const char *name, bool def)
{
	static const char *const yes[] = { "1", "true", "yes", "on" };
	static const char *const no[] = { "0", "false", "no", "off" };
	char *v = cfg_get(name);
	bool r = def;
	bool known = false;

	if (v == NULL)
		return def;
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			r = true;
			known = true;
		} else if (strcasecmp(v, no[i]) == 0) {
			r = false;
			known = true;
		}
	}
	if (!known)
		cfg_error(e, name, "must be on/off (1/0, true/false, yes/no), not '%s'", v);
	free(v);
	return r;
}

/* Check that a URL has one of the schemes (space-separated) and a host. */
static void cfg_check_url(struct cfg_errors *e, const char *name, const char *url, const char *schemes)
{
	const char *sep;
	char scheme[16];
	size_t n;

	if (url == NULL)
		return;
	sep = strstr(url, "://");
	if (sep == NULL || sep == url || (size_t)(sep - url) >= sizeof(scheme) || sep[3] == '\0' || sep[3] == '/') {
		cfg_error(e, name, "must be a URL (%s)", schemes);
		return;
	}
	n = (size_t)(sep - url);
	memcpy(scheme, url, n);
	scheme[n] = '\0';
	for (const char *p = schemes; *p;) {
		const char *sp = strchr(p, ' ');
		size_t len = sp ? (size_t)(sp - p) : strlen(p);

		if (len == n && strncasecmp(p, scheme, n) == 0)
			return;
		p += len + (sp ? 1 : 0);
	}
	cfg_error(e, name, "must use one of: %s", schemes);
}

int cfg_split_addr(const char *addr, char **host, int *port)
{
	const char *colon;
	char *end;
	long p;
	size_t hlen;
	const char *h = addr;

	if (addr == NULL)
		return -1;
	if (addr[0] == '[') {
		const char *close = strchr(addr, ']');

		if (close == NULL || close[1] != ':')
			return -1;
		h = addr + 1;
		hlen = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(addr, ':');
		if (colon == NULL)
			return -1;
		hlen = (size_t)(colon - addr);
	}
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (hlen == 0 || errno != 0 || *end != '\0' || colon[1] == '\0' || p < 0 || p > 65535)
		return -1;
	*host = xstrndup(h, hlen);
	*port = (int)p;
	return 0;
}

static void cfg_check_addr(struct cfg_errors *e, const char *name, const char *addr)
{
	char *host;
	int port;

	if (cfg_split_addr(addr, &host, &port) < 0) {
		cfg_error(e, name, "must be host:port (e.g. 127.0.0.1:8080), not '%s'", addr);
		return;
	}
	free(host);
}

/* Mask the password of a URL-shaped secret ("scheme://user:password@host"). */
static void cfg_register_url_password(const char *url)
{
	const char *s, *at, *colon;
	char *pw;

	if (url == NULL || (s = strstr(url, "://")) == NULL)
		return;
	s += 3;
	at = strchr(s, '@');
	if (at == NULL)
		return;
	colon = memchr(s, ':', (size_t)(at - s));
	if (colon == NULL)
		return;
	pw = xstrndup(colon + 1, (size_t)(at - colon - 1));
	log_add_secret(pw);
	free(pw);
}

char **cfg_split_urls(const char *list, size_t *n)
{
	char **urls;
	size_t count = 1, i = 0;

	*n = 0;
	if (list == NULL)
		return NULL;
	for (const char *p = list; *p; p++)
		count += *p == ',';
	urls = xcalloc(count + 1, sizeof(*urls));
	for (const char *p = list;; i++) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);

		while (len > 0 && (*p == ' ' || *p == '\t')) {
			p++;
			len--;
		}
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len == 0) {
			cfg_urls_free(urls);
			return NULL;
		}
		urls[i] = xstrndup(p, len);
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	*n = count;
	return urls;
}

void cfg_urls_free(char **urls)
{
	if (urls == NULL)
		return;
	for (char **u = urls; *u != NULL; u++)
		xfree_secret(*u);
	free(urls);
}

/*
 * The host:port of a URL for an error message: what lies between "://" and
 * the path, after any "user:password@", so the password is never shown.
 */
static char *cfg_url_where(const char *url)
{
	const char *s = strstr(url, "://");
	const char *end, *at;

	s = s != NULL ? s + 3 : url;
	end = s + strcspn(s, "/?#");
	at = memchr(s, '@', (size_t)(end - s));
	while (at != NULL) {	/* the last '@' before the path ends the user info */
		const char *next = memchr(at + 1, '@', (size_t)(end - at - 1));

		if (next == NULL)
			break;
		at = next;
	}
	if (at != NULL)
		s = at + 1;
	return xstrndup(s, (size_t)(end - s));
}

/*
 * AMQP_URL: one amqp:// URL or several separated by commas. Every entry's
 * password is registered as a secret before anything is checked, and an
 * error names the entry by position and host:port, never by its text.
 */
static void cfg_load_amqp(struct config *c, struct cfg_errors *e)
{
	char **urls;
	size_t n;

	c->amqp_url = cfg_required(e, "AMQP_URL");
	if (c->amqp_url == NULL)
		return;
	urls = cfg_split_urls(c->amqp_url, &n);
	if (urls == NULL) {
		cfg_register_url_password(c->amqp_url);
		cfg_error(e, "AMQP_URL", "must be one amqp:// URL or several separated by commas, with no empty entry");
		return;
	}
	for (size_t i = 0; i < n; i++)
		cfg_register_url_password(urls[i]);
	for (size_t i = 0; i < n; i++) {
		struct cfg_errors one = { 0 };

		cfg_check_url(&one, "AMQP_URL", urls[i], "amqp");
		if (one.text == NULL)
			continue;
		/* one.text is "AMQP_URL: <problem>\n": the same words as for a single URL, with the entry named. */
		if (n == 1) {
			cfg_error(e, "AMQP_URL", "%.*s", (int)(strlen(one.text) - 11), one.text + 10);
		} else {
			char *where = cfg_url_where(urls[i]);

			cfg_error(e, "AMQP_URL", "entry %zu of %zu ('%s'): %.*s", i + 1, n, where,
				  (int)(strlen(one.text) - 11), one.text + 10);
			free(where);
		}
		free(one.text);
	}
	c->amqp_urls = urls;
	c->amqp_nurls = n;
}

static void cfg_load_google(struct config *c, unsigned groups, struct cfg_errors *e)
{
	c->google_client_id = cfg_required(e, "GOOGLE_CLIENT_ID");
	c->google_client_secret = cfg_required(e, "GOOGLE_CLIENT_SECRET");
	log_add_secret(c->google_client_secret);
	c->google_token_url = cfg_default("GOOGLE_TOKEN_URL", "https://oauth2.googleapis.com/token");
	cfg_check_url(e, "GOOGLE_TOKEN_URL", c->google_token_url, "https http");
	if (groups & CFG_GOOGLE_OAUTH) {
		c->google_redirect_uri = cfg_required(e, "GOOGLE_REDIRECT_URI");
		cfg_check_url(e, "GOOGLE_REDIRECT_URI", c->google_redirect_uri, "https http");
		c->google_auth_url = cfg_default("GOOGLE_AUTH_URL", "https://accounts.google.com/o/oauth2/v2/auth");
		cfg_check_url(e, "GOOGLE_AUTH_URL", c->google_auth_url, "https http");
		c->google_revoke_url = cfg_default("GOOGLE_REVOKE_URL", "https://oauth2.googleapis.com/revoke");
		cfg_check_url(e, "GOOGLE_REVOKE_URL", c->google_revoke_url, "https http");
		c->google_userinfo_url =
			cfg_default("GOOGLE_USERINFO_URL", "https://www.googleapis.com/oauth2/v2/userinfo");
		cfg_check_url(e, "GOOGLE_USERINFO_URL", c->google_userinfo_url, "https http");
	}
	/* The gateway reads the calendar's time zone when a user connects. */
	c->google_calendar_api_url =
		cfg_default("GOOGLE_CALENDAR_API_URL", "https://www.googleapis.com/calendar/v3");
	cfg_check_url(e, "GOOGLE_CALENDAR_API_URL", c->google_calendar_api_url, "https http");
	c->google_user_qps = cfg_long(e, "GOOGLE_USER_QPS", 10, 1, 1000);
}

static void cfg_load_vault(struct config *c, struct cfg_errors *e)
{
	char *err = NULL;
	struct vault *v;

	c->token_encryption_key = cfg_required(e, "TOKEN_ENCRYPTION_KEY");
	if (c->token_encryption_key == NULL)
		return;
	v = vault_new(c->token_encryption_key, &err);
	if (v == NULL) {
		cfg_error(e, "TOKEN_ENCRYPTION_KEY", "%s", err);
		free(err);
	}
	vault_free(v);
	/* Each key on its own too: a log must not show any of them. */
	for (char *p = c->token_encryption_key; p && *p;) {
		char *comma = strchr(p, ',');
		char *entry = comma ? xstrndup(p, (size_t)(comma - p)) : xstrdup(p);
		char *colon = strchr(entry, ':');

		log_add_secret(colon ? colon + 1 : entry);
		free(entry);
		p = comma ? comma + 1 : NULL;
	}
}

static void cfg_load_jwt(struct config *c, struct cfg_errors *e)
{
	c->jwt_secret = cfg_required(e, "JWT_SECRET");
	/*
	 * An HS256 key shorter than the hash (RFC 7518 §3.2) can be guessed offline from any one
	 * token: the secret is used as given, so 32 bytes of it is the floor.
	 */
	if (c->jwt_secret != NULL && strlen(c->jwt_secret) < CFG_JWT_SECRET_MIN)
		cfg_error(e, "JWT_SECRET", "must be at least %d bytes, not %zu (make one with: head -c 32 /dev/urandom "
			  "| base64)", CFG_JWT_SECRET_MIN, strlen(c->jwt_secret));
	log_add_secret(c->jwt_secret);
	c->jwt_user_claim = cfg_default("JWT_USER_CLAIM", "sub");
	c->jwt_cookie = cfg_default("JWT_COOKIE", "token");
	c->jwt_issuer = cfg_get("JWT_ISSUER");
	c->jwt_audience = cfg_get("JWT_AUDIENCE");
	c->jwt_max_lifetime_s = cfg_long(e, "JWT_MAX_LIFETIME_SECONDS", 24L * 3600, 60, 30L * 24 * 3600);
}

static void cfg_load_smtp(struct config *c, struct cfg_errors *e)
{
	c->smtp_url = cfg_required(e, "SMTP_URL");
	cfg_check_url(e, "SMTP_URL", c->smtp_url, "smtp smtps");
	cfg_register_url_password(c->smtp_url);
	c->smtp_user = cfg_get("SMTP_USER");
	c->smtp_password = cfg_get("SMTP_PASSWORD");
	log_add_secret(c->smtp_password);
	if (c->smtp_user != NULL && c->smtp_password == NULL)
		cfg_error(e, "SMTP_PASSWORD", "is required when SMTP_USER is set");
	c->mail_from = cfg_required(e, "MAIL_FROM");
	if (c->mail_from != NULL && (strchr(c->mail_from, '@') == NULL || strpbrk(c->mail_from, "\r\n") != NULL))
		cfg_error(e, "MAIL_FROM", "must be an email address, optionally as 'Name <address>'");
	/* Mail carries the lead's details and links: never in clear text unless a deployment says so. */
	c->smtp_require_tls = cfg_bool(e, "SMTP_REQUIRE_TLS", true);
}

/*
 * The sign-in helper hands out sessions to whoever asks, so it needs its own
 * opt-in beside WEB_UI, and one that names a user: switching the UI on in a
 * shared environment can never switch it on too.
 */
static void cfg_load_dev_user(struct config *c, struct cfg_errors *e)
{
	char *v = cfg_get("WEB_UI_DEV_USER");
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; v[i] != '\0' && i <= 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? v[i] != '-' : !isxdigit((unsigned char)v[i]))
			break;
	}
	if (i != 36 || v[i] != '\0') {
		cfg_error(e, "WEB_UI_DEV_USER", "must be a user's id (a UUID), not '%s'", v);
		free(v);
		return;
	}
	if (!c->web_ui) {
		cfg_error(e, "WEB_UI_DEV_USER", "needs WEB_UI=on (the sign-in helper is part of the web UI)");
		free(v);
		return;
	}
	for (i = 0; v[i] != '\0'; i++)
		v[i] = (char)tolower((unsigned char)v[i]);
	c->web_ui_dev_user = v;
}

/* COMMAND_AMQP_USERS: a list of broker user names, none empty, none with a control character. */
static void cfg_load_command_users(struct config *c, struct cfg_errors *e)
{
	char *v = cfg_get("COMMAND_AMQP_USERS");

	if (v == NULL)
		return;
	for (const char *p = v;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		size_t start = strspn(p, " ");
		bool bad = false;

		while (len > start && p[len - 1] == ' ')
			len--;
		for (size_t i = start; i < len; i++)
			bad |= (unsigned char)p[i] < 0x20 || p[i] == 0x7f;
		if (len <= start || bad) {
			cfg_error(e, "COMMAND_AMQP_USERS",
				  "must be broker user names separated by commas (e.g. gcal-gateway), not '%s'", v);
			free(v);
			return;
		}
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	c->command_amqp_users = v;
}

bool cfg_list_has(const char *list, const char *name)
{
	size_t n = name != NULL ? strlen(name) : 0;

	if (list == NULL || n == 0)
		return false;
	for (const char *p = list;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);

		while (len > 0 && *p == ' ') {
			p++;
			len--;
		}
		while (len > 0 && p[len - 1] == ' ')
			len--;
		if (len == n && memcmp(p, name, n) == 0)
			return true;
		if (comma == NULL)
			return false;
		p = comma + 1;
	}
}

/*
 * Two-way sync (docs/sync.md). Google takes only https addresses for push
 * channels; plain http is accepted for the tests' stand-in on loopback, which
 * Google itself would refuse with 400 (the channel is then recorded as failed).
 */
static void cfg_load_sync(struct config *c, struct cfg_errors *e)
{
	c->google_webhook_url = cfg_get("GOOGLE_WEBHOOK_URL");
	cfg_check_url(e, "GOOGLE_WEBHOOK_URL", c->google_webhook_url, "https http");
	c->watch_ttl_s = cfg_long(e, "WATCH_TTL_SECONDS", 604800, 60, 30L * 86400);
	c->watch_renew_before_s = cfg_long(e, "WATCH_RENEW_BEFORE_SECONDS", 86400, 10, 30L * 86400);
	c->sync_poll_s = cfg_long(e, "SYNC_POLL_SECONDS", 900, 5, 7L * 86400);
	if (c->watch_renew_before_s >= c->watch_ttl_s)
		cfg_error(e, "WATCH_RENEW_BEFORE_SECONDS", "must be less than WATCH_TTL_SECONDS (%ld)", c->watch_ttl_s);
}

/* CONFLICT_POLICY: what an automatic booking does when the rep is busy then (docs/booking.md, "Conflicts"). */
static void cfg_load_conflict_policy(struct config *c, struct cfg_errors *e)
{
	char *v = cfg_default("CONFLICT_POLICY", "skip");

	if (strcmp(v, "skip") == 0)
		c->conflict_policy = CFG_CONFLICT_SKIP;
	else if (strcmp(v, "book") == 0)
		c->conflict_policy = CFG_CONFLICT_BOOK;
	else
		cfg_error(e, "CONFLICT_POLICY", "must be skip or book, not '%s'", v);
	free(v);
}

int cfg_load(struct config *c, unsigned groups, const char *default_metrics_addr, char **errors)
{
	struct cfg_errors e = { 0 };
	char *level;

	memset(c, 0, sizeof(*c));
	level = cfg_default("LOG_LEVEL", "info");
	if (log_level_parse(level, &c->log_level) < 0)
		cfg_error(&e, "LOG_LEVEL", "must be debug, info, warn or error, not '%s'", level);
	free(level);

	if (groups & CFG_DATABASE) {
		c->database_url = cfg_required(&e, "DATABASE_URL");
		cfg_register_url_password(c->database_url);
		c->database_pool_size = cfg_long(&e, "DATABASE_POOL_SIZE", 0, 1, 200);
	}
	if (groups & CFG_AMQP) {
		cfg_load_amqp(c, &e);
	}
	if (groups & (CFG_GOOGLE_OAUTH | CFG_GOOGLE_CALENDAR))
		cfg_load_google(c, groups, &e);
	if (groups & CFG_VAULT)
		cfg_load_vault(c, &e);
	if (groups & CFG_JWT)
		cfg_load_jwt(c, &e);
	if (groups & CFG_GATEWAY) {
		c->listen_addr = cfg_default("LISTEN_ADDR", "127.0.0.1:8080");
		cfg_check_addr(&e, "LISTEN_ADDR", c->listen_addr);
		c->frontend_url = cfg_required(&e, "FRONTEND_URL");
		cfg_check_url(&e, "FRONTEND_URL", c->frontend_url, "https http");
		c->max_body_bytes = cfg_long(&e, "MAX_BODY_BYTES", 65536, 1024, 16 * 1024 * 1024);
		c->http_max_connections = cfg_long(&e, "HTTP_MAX_CONNECTIONS", 1024, 1, 1000000);
		c->http_header_timeout_s = cfg_long(&e, "HTTP_HEADER_TIMEOUT", 10, 1, 300);
		c->web_ui = cfg_bool(&e, "WEB_UI", false);
		c->booking_horizon_days = cfg_long(&e, "BOOKING_HORIZON_DAYS", 730, 1, 36500);
		cfg_load_dev_user(c, &e);
	}
	/* Every service's /healthz, /readyz and /metrics; the gateway's are kept off its public listener. */
	if (groups & (CFG_WORKER | CFG_GATEWAY)) {
		c->metrics_addr = cfg_default("METRICS_ADDR", default_metrics_addr);
		cfg_check_addr(&e, "METRICS_ADDR", c->metrics_addr);
	}
	if ((groups & CFG_GATEWAY) && c->metrics_addr != NULL && c->listen_addr != NULL &&
	    strcmp(c->metrics_addr, c->listen_addr) == 0)
		cfg_error(&e, "METRICS_ADDR", "must differ from LISTEN_ADDR (metrics stay off the public listener)");
	if (groups & CFG_WORKER) {
		c->prefetch = cfg_long(&e, "PREFETCH", 0, 1, 1000);
		c->drain_timeout_ms = cfg_long(&e, "DRAIN_TIMEOUT_MS", 25000, 100, 3600L * 1000);
	}
	if (groups & CFG_SCHEDULING) {
		c->schedule_delay_ms = cfg_long(&e, "SCHEDULE_DELAY_MS", 10000, 0, 24L * 3600 * 1000);
		c->meeting_duration_minutes = cfg_long(&e, "MEETING_DURATION_MINUTES", 30, 5, 24 * 60);
		c->reminder_before_minutes = cfg_long(&e, "REMINDER_BEFORE_MINUTES", 60, 0, 7 * 24 * 60);
		c->meet_links = cfg_bool(&e, "MEET_LINKS", true);
		cfg_load_conflict_policy(c, &e);
		cfg_load_command_users(c, &e);
		cfg_load_sync(c, &e);
	}
	if (groups & CFG_SMTP)
		cfg_load_smtp(c, &e);
	/* The mailer shows a conflict in the zone the scheduler decided it in. */
	if (groups & (CFG_SCHEDULING | CFG_SMTP)) {
		c->default_timezone = cfg_default("DEFAULT_TIMEZONE", "UTC");
		if (!tz_valid(c->default_timezone))
			cfg_error(&e, "DEFAULT_TIMEZONE", "'%s' is not an IANA time zone (e.g. Asia/Kolkata)",
				  c->default_timezone);
	}
	if (groups & (CFG_SCHEDULING | CFG_SMTP)) {
		c->transcript_url = cfg_get("TRANSCRIPT_URL");
		cfg_check_url(&e, "TRANSCRIPT_URL", c->transcript_url, "https http");
	}
	/* Optional for the mailer: the "calendar disconnected" mail links there for reconnecting. */
	if ((groups & CFG_SMTP) && !(groups & CFG_GATEWAY)) {
		c->frontend_url = cfg_get("FRONTEND_URL");
		cfg_check_url(&e, "FRONTEND_URL", c->frontend_url, "https http");
	}

	if (e.text != NULL) {
		*errors = e.text;
		return -1;
	}
	*errors = NULL;
	return 0;
}

void cfg_load_or_exit(struct config *c, unsigned groups, const char *default_metrics_addr)
{
	char *errors;

	if (cfg_load(c, groups, default_metrics_addr, &errors) == 0) {
		log_set_level(c->log_level);
		return;
	}
	for (char *line = strtok(errors, "\n"); line != NULL; line = strtok(NULL, "\n")) {
		char *colon = strchr(line, ':');

		*colon = '\0';
		log_error("invalid configuration", LOG_STR("variable", line), LOG_STR("problem", colon + 2));
	}
	free(errors);
	cfg_free(c);
	exit(CFG_EXIT_CONFIG);
}

void cfg_free(struct config *c)
{
	char **strings[] = {
		&c->database_url, &c->amqp_url, &c->google_client_id, &c->google_client_secret,
		&c->google_redirect_uri, &c->google_auth_url, &c->google_token_url, &c->google_revoke_url,
		&c->google_userinfo_url, &c->google_calendar_api_url, &c->token_encryption_key, &c->jwt_secret,
		&c->jwt_user_claim, &c->jwt_cookie, &c->jwt_issuer, &c->jwt_audience, &c->listen_addr,
		&c->frontend_url, &c->web_ui_dev_user, &c->metrics_addr, &c->default_timezone, &c->smtp_url,
		&c->smtp_user, &c->smtp_password, &c->mail_from, &c->transcript_url, &c->command_amqp_users,
		&c->google_webhook_url,
	};

	/* Secrets among them (client secret, keys, passwords, URLs with passwords): all are wiped. */
	for (size_t i = 0; i < sizeof(strings) / sizeof(*strings); i++) {
		xfree_secret(*strings[i]);
		*strings[i] = NULL;
	}
	cfg_urls_free(c->amqp_urls);
	c->amqp_urls = NULL;
	c->amqp_nurls = 0;
}

char *cfg_transcript_url(const char *tmpl, const char *call_id)
{
	static const char mark_text[] = "{call_id}";
	const char *mark;

	if (tmpl == NULL || *tmpl == '\0' || call_id == NULL || *call_id == '\0')
		return NULL;
	mark = strstr(tmpl, mark_text);
	if (mark == NULL)
		return xstrdup(tmpl);
	return xasprintf("%.*s%s%s", (int)(mark - tmpl), tmpl, call_id, mark + strlen(mark_text));
}
