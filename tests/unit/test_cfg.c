/*
 * Unit tests of lib/cfg: defaults, required variables, every validation
 * naming its variable, and secrets registered with the log.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "tap.h"
#include "tz.h"

static void clear_env(void)
{
	static const char *const names[] = {
		"DATABASE_URL", "AMQP_URL", "GOOGLE_CLIENT_ID", "GOOGLE_CLIENT_SECRET", "GOOGLE_REDIRECT_URI",
		"GOOGLE_AUTH_URL", "GOOGLE_TOKEN_URL", "GOOGLE_REVOKE_URL", "GOOGLE_USERINFO_URL",
		"GOOGLE_CALENDAR_API_URL", "GOOGLE_USER_QPS", "TOKEN_ENCRYPTION_KEY", "JWT_SECRET",
		"JWT_USER_CLAIM", "JWT_COOKIE", "JWT_ISSUER", "JWT_AUDIENCE", "LISTEN_ADDR", "FRONTEND_URL",
		"MAX_BODY_BYTES", "WEB_UI", "METRICS_ADDR", "SCHEDULE_DELAY_MS", "MEETING_DURATION_MINUTES",
		"DEFAULT_TIMEZONE", "REMINDER_BEFORE_MINUTES", "MEET_LINKS", "SMTP_URL", "SMTP_USER",
		"SMTP_PASSWORD", "MAIL_FROM", "SMTP_REQUIRE_TLS", "LOG_LEVEL", "TRANSCRIPT_URL", "PREFETCH",
		"DATABASE_POOL_SIZE", "CONFLICT_POLICY", "JWT_MAX_LIFETIME_SECONDS", "HTTP_MAX_CONNECTIONS",
		"HTTP_HEADER_TIMEOUT", "COMMAND_AMQP_USERS",
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++)
		unsetenv(names[i]);
}

static void set_valid_all(void)
{
	setenv("DATABASE_URL", "postgresql://app:dbpass-123@127.0.0.1:5432/app", 1);
	setenv("AMQP_URL", "amqp://guest:mqpass-123@127.0.0.1:5672/", 1);
	setenv("GOOGLE_CLIENT_ID", "id.apps.googleusercontent.com", 1);
	setenv("GOOGLE_CLIENT_SECRET", "client-secret-xyz", 1);
	setenv("GOOGLE_REDIRECT_URI", "http://127.0.0.1:8080/api/integrations/google/callback", 1);
	setenv("TOKEN_ENCRYPTION_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", 1);
	setenv("JWT_SECRET", "0123456789abcdef0123456789abcdef", 1);
	setenv("FRONTEND_URL", "http://127.0.0.1:3000/integrations", 1);
	setenv("SMTP_URL", "smtp://127.0.0.1:2525", 1);
	setenv("MAIL_FROM", "Calendar <calendar@example.com>", 1);
}

/* What a log line with text in its message comes out as (stderr captured); the caller frees it. */
static char *logged(const char *text)
{
	char path[] = "/tmp/test_cfg.XXXXXX";
	int fd = mkstemp(path);
	int saved = dup(STDERR_FILENO);
	char *buf = calloc(1, 4096);
	ssize_t n;

	fflush(stderr);
	dup2(fd, STDERR_FILENO);
	log_warn("amqp", LOG_STR("note", text));
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	lseek(fd, 0, SEEK_SET);
	n = read(fd, buf, 4095);
	buf[n > 0 ? n : 0] = '\0';
	close(fd);
	unlink(path);
	return buf;
}

/* AMQP_URL: one URL or a comma-separated list; each entry checked, named without its password. */
static void test_amqp_urls(unsigned groups)
{
	struct config c;
	char *err, *line;
	char **urls;
	size_t n;

	clear_env();
	set_valid_all();
	CHECK_INT(cfg_load(&c, groups, "127.0.0.1:9101", &err), 0, "a single AMQP_URL loads");
	CHECK_INT(c.amqp_nurls, 1, "... as a list of one");
	CHECK_STR(c.amqp_urls[0], "amqp://guest:mqpass-123@127.0.0.1:5672/", "... the URL itself");
	CHECK_STR(c.amqp_url, c.amqp_urls[0], "amqp_url is the value as given");
	cfg_free(&c);

	setenv("AMQP_URL", " amqp://a:mq-first-pw@10.0.0.1:5672/%2f ,amqp://b:mq-second-pw@10.0.0.2:5673/%2f\t,  "
			   "amqp://c:mq-third-pw@10.0.0.3/%2f", 1);
	CHECK_INT(cfg_load(&c, groups, "127.0.0.1:9101", &err), 0, "a list with spaces around the commas loads");
	CHECK_INT(c.amqp_nurls, 3, "three brokers");
	CHECK(c.amqp_nurls == 3 && strcmp(c.amqp_urls[0], "amqp://a:mq-first-pw@10.0.0.1:5672/%2f") == 0 &&
		      strcmp(c.amqp_urls[1], "amqp://b:mq-second-pw@10.0.0.2:5673/%2f") == 0 &&
		      strcmp(c.amqp_urls[2], "amqp://c:mq-third-pw@10.0.0.3/%2f") == 0 && c.amqp_urls[3] == NULL,
	      "each entry trimmed, in order");
	line = logged("visible mq-first-pw mq-second-pw mq-third-pw");
	CHECK(strstr(line, "visible") != NULL && strstr(line, "mq-first-pw") == NULL && strstr(line, "mq-second-pw") == NULL &&
		      strstr(line, "mq-third-pw") == NULL,
	      "every entry's password is a secret the log masks: %s", line);
	free(line);
	cfg_free(&c);
	CHECK(c.amqp_urls == NULL && c.amqp_nurls == 0, "cfg_free clears the list");

	setenv("AMQP_URL", "amqp://a:mq-good-pw@10.0.0.1:5672/, http://b:mq-leaky-pw@10.0.0.2:15672/api", 1);
	CHECK_INT(cfg_load(&c, groups, "127.0.0.1:9101", &err), -1, "a list with a bad entry fails");
	CHECK(err && strstr(err, "AMQP_URL: entry 2 of 2 ('10.0.0.2:15672'): must use one of: amqp") != NULL,
	      "the error names the entry by position and host:port: %s", err);
	CHECK(err && strstr(err, "mq-leaky-pw") == NULL && strstr(err, "mq-good-pw") == NULL,
	      "... never by its password");
	CHECK(err && strstr(err, "entry 1") == NULL, "the good entry is not named");
	line = logged("mq-leaky-pw");
	CHECK(strstr(line, "mq-leaky-pw") == NULL, "the bad entry's password is a secret too: %s", line);
	free(line);
	free(err);
	cfg_free(&c);

	setenv("AMQP_URL", "amqp://a:pw@10.0.0.1:5672/,not-a-url", 1);
	CHECK_INT(cfg_load(&c, groups, "127.0.0.1:9101", &err), -1, "an entry that is no URL fails");
	CHECK(err && strstr(err, "AMQP_URL: entry 2 of 2 ('not-a-url'): must be a URL (amqp)") != NULL, "named: %s",
	      err);
	free(err);
	cfg_free(&c);

	setenv("AMQP_URL", "http://x", 1);
	CHECK_INT(cfg_load(&c, groups, "127.0.0.1:9101", &err), -1, "a single bad URL fails");
	CHECK(err && strstr(err, "AMQP_URL: must use one of: amqp\n") != NULL, "with the same words as before: %s",
	      err);
	free(err);
	cfg_free(&c);

	{
		static const char *const empty[] = { "amqp://a@h1,,amqp://b@h2", "amqp://a@h1,", ",amqp://a@h1", " , " };

		for (size_t i = 0; i < sizeof(empty) / sizeof(*empty); i++) {
			setenv("AMQP_URL", empty[i], 1);
			CHECK_INT(cfg_load(&c, groups, "127.0.0.1:9101", &err), -1, "'%s' (an empty entry) fails",
				  empty[i]);
			CHECK(err && strstr(err, "AMQP_URL: must be one amqp:// URL or several separated by commas") != NULL,
			      "and says why");
			free(err);
			cfg_free(&c);
		}
	}

	urls = cfg_split_urls("amqp://h1 ,\tamqp://h2", &n);
	CHECK(urls != NULL && n == 2 && strcmp(urls[0], "amqp://h1") == 0 && strcmp(urls[1], "amqp://h2") == 0 &&
		      urls[2] == NULL,
	      "cfg_split_urls trims spaces and tabs");
	cfg_urls_free(urls);
	CHECK(cfg_split_urls(NULL, &n) == NULL && n == 0, "cfg_split_urls(NULL) is NULL");
	cfg_urls_free(NULL);
}

static const unsigned all = CFG_DATABASE | CFG_AMQP | CFG_GOOGLE_OAUTH | CFG_GOOGLE_CALENDAR | CFG_VAULT |
			    CFG_JWT | CFG_GATEWAY | CFG_WORKER | CFG_SCHEDULING | CFG_SMTP;

int main(void)
{
	struct config c;
	char *err;

	clear_env();
	set_valid_all();
	CHECK_INT(cfg_load(&c, all, "127.0.0.1:9101", &err), 0, "a complete environment loads");
	CHECK(err == NULL, "without errors");
	CHECK_STR(c.listen_addr, "127.0.0.1:8080", "LISTEN_ADDR default");
	CHECK_STR(c.metrics_addr, "127.0.0.1:9101", "METRICS_ADDR default from the service");
	CHECK_INT(c.schedule_delay_ms, 10000, "SCHEDULE_DELAY_MS default");
	CHECK_INT(c.meeting_duration_minutes, 30, "MEETING_DURATION_MINUTES default");
	CHECK_INT(c.reminder_before_minutes, 60, "REMINDER_BEFORE_MINUTES default");
	CHECK_INT(c.google_user_qps, 10, "GOOGLE_USER_QPS default");
	CHECK_INT(c.max_body_bytes, 65536, "MAX_BODY_BYTES default");
	CHECK_INT(c.http_max_connections, 1024, "HTTP_MAX_CONNECTIONS default");
	CHECK_INT(c.http_header_timeout_s, 10, "HTTP_HEADER_TIMEOUT default");
	CHECK_INT(c.database_pool_size, 0, "DATABASE_POOL_SIZE default: the service's own");
	CHECK(c.meet_links, "MEET_LINKS default on");
	CHECK(c.conflict_policy == CFG_CONFLICT_SKIP, "CONFLICT_POLICY default skip");
	CHECK(!c.web_ui, "WEB_UI default off");
	CHECK(c.smtp_require_tls, "SMTP_REQUIRE_TLS default on: no mail in clear text unless a deployment says so");
	CHECK_INT(c.jwt_max_lifetime_s, 86400, "JWT_MAX_LIFETIME_SECONDS default: 24 hours");
	CHECK_STR(c.jwt_user_claim, "sub", "JWT_USER_CLAIM default");
	CHECK_STR(c.jwt_cookie, "token", "JWT_COOKIE default");
	CHECK(c.jwt_issuer == NULL && c.jwt_audience == NULL, "issuer and audience unchecked by default");
	CHECK_STR(c.default_timezone, "UTC", "DEFAULT_TIMEZONE default");
	CHECK_STR(c.google_calendar_api_url, "https://www.googleapis.com/calendar/v3", "calendar URL default");
	CHECK_STR(c.google_userinfo_url, "https://www.googleapis.com/oauth2/v2/userinfo", "userinfo URL default");
	CHECK_STR(c.google_auth_url, "https://accounts.google.com/o/oauth2/v2/auth", "auth URL default");
	CHECK_STR(c.google_token_url, "https://oauth2.googleapis.com/token", "token URL default");
	CHECK_STR(c.google_revoke_url, "https://oauth2.googleapis.com/revoke", "revoke URL default");
	CHECK(c.command_amqp_users == NULL, "COMMAND_AMQP_USERS default: nobody besides the scheduler's own user");
	CHECK(!cfg_list_has(c.command_amqp_users, "guest"), "... so an empty list names nobody");
	cfg_free(&c);

	/* COMMAND_AMQP_USERS: broker user names, comma-separated. */
	clear_env();
	set_valid_all();
	setenv("COMMAND_AMQP_USERS", " gcal-gateway , gcal-ops", 1);
	CHECK_INT(cfg_load(&c, all, "127.0.0.1:9101", &err), 0, "COMMAND_AMQP_USERS loads");
	CHECK(cfg_list_has(c.command_amqp_users, "gcal-gateway") && cfg_list_has(c.command_amqp_users, "gcal-ops"),
	      "each name is in the list, spaces around it ignored");
	CHECK(!cfg_list_has(c.command_amqp_users, "gcal") && !cfg_list_has(c.command_amqp_users, "gcal-gateway ") &&
		      !cfg_list_has(c.command_amqp_users, "") && !cfg_list_has(c.command_amqp_users, NULL) &&
		      !cfg_list_has(c.command_amqp_users, "gcal-gateway,gcal-ops"),
	      "only whole names match");
	cfg_free(&c);
	{
		static const char *const bad[] = { "gcal-gateway,", ",gcal-gateway", "a,,b", "a, ,b", "gcal\tgateway" };

		for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
			setenv("COMMAND_AMQP_USERS", bad[i], 1);
			CHECK_INT(cfg_load(&c, all, "127.0.0.1:9101", &err), -1, "COMMAND_AMQP_USERS '%s' is refused", bad[i]);
			CHECK(err && strstr(err, "COMMAND_AMQP_USERS:") != NULL, "and named");
			free(err);
			cfg_free(&c);
		}
	}

	/* Only what a service asks for is required. */
	clear_env();
	setenv("DATABASE_URL", "postgresql:///x", 1);
	CHECK_INT(cfg_load(&c, CFG_DATABASE, NULL, &err), 0, "a service that needs only the database loads");
	cfg_free(&c);

	clear_env();
	CHECK_INT(cfg_load(&c, all, "127.0.0.1:9101", &err), -1, "an empty environment fails");
	CHECK(err && strstr(err, "DATABASE_URL: is required") != NULL, "names DATABASE_URL");
	CHECK(err && strstr(err, "AMQP_URL: is required") != NULL, "names AMQP_URL");
	CHECK(err && strstr(err, "GOOGLE_CLIENT_SECRET: is required") != NULL, "names GOOGLE_CLIENT_SECRET");
	CHECK(err && strstr(err, "TOKEN_ENCRYPTION_KEY: is required") != NULL, "names TOKEN_ENCRYPTION_KEY");
	CHECK(err && strstr(err, "JWT_SECRET: is required") != NULL, "names JWT_SECRET");
	CHECK(err && strstr(err, "FRONTEND_URL: is required") != NULL, "names FRONTEND_URL");
	CHECK(err && strstr(err, "SMTP_URL: is required") != NULL, "names SMTP_URL");
	CHECK(err && strstr(err, "MAIL_FROM: is required") != NULL, "names MAIL_FROM");
	free(err);
	cfg_free(&c);

	clear_env();
	set_valid_all();
	setenv("AMQP_URL", "http://x", 1);
	setenv("SCHEDULE_DELAY_MS", "10s", 1);
	setenv("MEETING_DURATION_MINUTES", "0", 1);
	setenv("DEFAULT_TIMEZONE", "Mars/Olympus", 1);
	setenv("MEET_LINKS", "maybe", 1);
	setenv("LISTEN_ADDR", "8080", 1);
	setenv("TOKEN_ENCRYPTION_KEY", "c2hvcnQ=", 1);
	setenv("JWT_SECRET", "short", 1);
	setenv("SMTP_URL", "ftp://mail", 1);
	setenv("MAIL_FROM", "nobody", 1);
	setenv("LOG_LEVEL", "loud", 1);
	setenv("FRONTEND_URL", "not a url", 1);
	setenv("DATABASE_POOL_SIZE", "0", 1);
	setenv("CONFLICT_POLICY", "ask", 1);
	setenv("HTTP_MAX_CONNECTIONS", "0", 1);
	setenv("HTTP_HEADER_TIMEOUT", "10s", 1);
	CHECK_INT(cfg_load(&c, all, "127.0.0.1:9101", &err), -1, "malformed values fail");
	{
		static const char *const named[] = {
			"AMQP_URL:", "SCHEDULE_DELAY_MS:", "MEETING_DURATION_MINUTES:", "DEFAULT_TIMEZONE:",
			"MEET_LINKS:", "LISTEN_ADDR:", "TOKEN_ENCRYPTION_KEY:", "JWT_SECRET:", "SMTP_URL:",
			"MAIL_FROM:", "LOG_LEVEL:", "FRONTEND_URL:", "DATABASE_POOL_SIZE:", "CONFLICT_POLICY:",
			"HTTP_MAX_CONNECTIONS:", "HTTP_HEADER_TIMEOUT:",
		};

		for (size_t i = 0; i < sizeof(named) / sizeof(*named); i++)
			CHECK(err && strstr(err, named[i]) != NULL, "the error names %s", named[i]);
	}
	CHECK(err && strstr(err, "c2hvcnQ=") == NULL, "the key itself is never echoed");
	free(err);
	cfg_free(&c);

	/* The gateway's metrics stay off its public listener. */
	clear_env();
	set_valid_all();
	setenv("METRICS_ADDR", "127.0.0.1:8080", 1);
	CHECK_INT(cfg_load(&c, CFG_GATEWAY, "127.0.0.1:9103", &err), -1, "METRICS_ADDR equal to LISTEN_ADDR fails");
	CHECK(err && strstr(err, "METRICS_ADDR:") != NULL, "and names METRICS_ADDR");
	free(err);
	cfg_free(&c);
	unsetenv("METRICS_ADDR");
	CHECK_INT(cfg_load(&c, CFG_GATEWAY, "127.0.0.1:9103", &err), 0, "the gateway loads");
	CHECK_STR(c.metrics_addr, "127.0.0.1:9103", "the gateway's METRICS_ADDR default");
	cfg_free(&c);

	clear_env();
	set_valid_all();
	setenv("DEFAULT_TIMEZONE", "Asia/Kolkata", 1);
	setenv("LISTEN_ADDR", "[::1]:9000", 1);
	setenv("MEET_LINKS", "off", 1);
	setenv("SMTP_USER", "mailer", 1);
	setenv("DATABASE_POOL_SIZE", "3", 1);
	CHECK_INT(cfg_load(&c, all, "127.0.0.1:9101", &err), -1, "SMTP_USER without SMTP_PASSWORD fails");
	CHECK(err && strstr(err, "SMTP_PASSWORD:") != NULL, "and names SMTP_PASSWORD");
	free(err);
	cfg_free(&c);
	setenv("SMTP_PASSWORD", "smtp-pass-123", 1);
	CHECK_INT(cfg_load(&c, all, "127.0.0.1:9101", &err), 0, "valid overrides load");
	CHECK_STR(c.default_timezone, "Asia/Kolkata", "zone override");
	CHECK(!c.meet_links, "boolean override");
	CHECK_INT(c.database_pool_size, 3, "DATABASE_POOL_SIZE override");
	cfg_free(&c);
	CHECK_INT(cfg_load(&c, CFG_SMTP, "127.0.0.1:9102", &err), 0, "the mailer's group loads on its own");
	CHECK_STR(c.default_timezone, "Asia/Kolkata", "and reads DEFAULT_TIMEZONE: conflict mails show times in it");
	cfg_free(&c);

	/* JWT_SECRET: 32 bytes at least, the refusal names the variable and never shows the value. */
	clear_env();
	set_valid_all();
	setenv("JWT_SECRET", "0123456789abcdef0123456789abcde", 1);
	CHECK_INT(cfg_load(&c, all, "127.0.0.1:9101", &err), -1, "a JWT_SECRET of 31 bytes is refused");
	CHECK(err && strstr(err, "JWT_SECRET: must be at least 32 bytes, not 31") != NULL, "names JWT_SECRET: %s",
	      err ? err : "");
	CHECK(err && strstr(err, "0123456789abcdef0123456789abcde") == NULL, "and does not echo it");
	free(err);
	cfg_free(&c);
	setenv("JWT_SECRET", "sixteen-chars-ok", 1);
	CHECK_INT(cfg_load(&c, all, "127.0.0.1:9101", &err), -1, "16 characters, enough before, are refused");
	free(err);
	cfg_free(&c);
	setenv("JWT_SECRET", "0123456789abcdef0123456789abcdef", 1);
	CHECK_INT(cfg_load(&c, all, "127.0.0.1:9101", &err), 0, "32 bytes are accepted");
	cfg_free(&c);

	/* JWT_MAX_LIFETIME_SECONDS: a whole number from a minute to 30 days. */
	setenv("JWT_MAX_LIFETIME_SECONDS", "3600", 1);
	CHECK_INT(cfg_load(&c, all, "127.0.0.1:9101", &err), 0, "JWT_MAX_LIFETIME_SECONDS loads");
	CHECK_INT(c.jwt_max_lifetime_s, 3600, "JWT_MAX_LIFETIME_SECONDS override");
	cfg_free(&c);
	{
		static const char *const bad[] = { "0", "59", "2592001", "1e308", "24h", "-1" };

		for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
			setenv("JWT_MAX_LIFETIME_SECONDS", bad[i], 1);
			CHECK_INT(cfg_load(&c, all, "127.0.0.1:9101", &err), -1, "JWT_MAX_LIFETIME_SECONDS=%s refused",
				  bad[i]);
			CHECK(err && strstr(err, "JWT_MAX_LIFETIME_SECONDS:") != NULL, "and named");
			free(err);
			cfg_free(&c);
		}
	}

	/* SMTP_REQUIRE_TLS is on unless turned off. */
	clear_env();
	set_valid_all();
	setenv("SMTP_REQUIRE_TLS", "off", 1);
	CHECK_INT(cfg_load(&c, all, "127.0.0.1:9101", &err), 0, "SMTP_REQUIRE_TLS=off loads");
	CHECK(!c.smtp_require_tls, "and turns the requirement off");
	cfg_free(&c);

	{
		char *host;
		int port;

		CHECK(cfg_split_addr("[::1]:9000", &host, &port) == 0 && strcmp(host, "::1") == 0 && port == 9000,
		      "IPv6 address splits");
		free(host);
		CHECK(cfg_split_addr("127.0.0.1:0", &host, &port) == 0 && port == 0, "port 0 allowed");
		free(host);
		CHECK_INT(cfg_split_addr("127.0.0.1:99999", &host, &port), -1, "port out of range");
		CHECK_INT(cfg_split_addr(":80", &host, &port), -1, "missing host");
	}
	{
		char *url = cfg_transcript_url("https://app.example.com/calls/{call_id}/t", "c-1");

		CHECK_STR(url, "https://app.example.com/calls/c-1/t", "transcript template takes the call id");
		free(url);
		url = cfg_transcript_url("https://app.example.com/calls", "c-1");
		CHECK_STR(url, "https://app.example.com/calls", "a template without {call_id} is used as is");
		free(url);
		CHECK(cfg_transcript_url(NULL, "c-1") == NULL, "no template, no link");
		CHECK(cfg_transcript_url("https://a/{call_id}", NULL) == NULL, "no call, no link");
		CHECK(cfg_transcript_url("https://a/{call_id}", "") == NULL, "empty call id, no link");
	}
	test_amqp_urls(all);
	log_shutdown();
	tz_shutdown();
	return tap_done();
}
