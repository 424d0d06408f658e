/*
 * Unit tests of lib/log: every line is one valid JSON object, and nothing
 * secret survives: credential-named fields, registered secrets, token-shaped
 * strings in free text, and raw email addresses.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>

#include "log.h"
#include "tap.h"

/* Run fn with stderr captured; returns what it wrote (caller frees). */
static char *capture(void (*fn)(void))
{
	char path[] = "/tmp/test_log.XXXXXX";
	int fd = mkstemp(path);
	int saved = dup(STDERR_FILENO);
	char *buf = calloc(1, 65536);
	ssize_t n;

	dup2(fd, STDERR_FILENO);
	fn();
	dup2(saved, STDERR_FILENO);
	close(saved);
	lseek(fd, 0, SEEK_SET);
	n = read(fd, buf, 65535);
	buf[n > 0 ? n : 0] = '\0';
	close(fd);
	unlink(path);
	return buf;
}

static void emit_basic(void)
{
	log_info("meeting created", LOG_STR("lead", "abc"), LOG_INT("ms", 42), LOG_BOOL("ok", 1),
		 LOG_DOUBLE("ratio", 0.5));
}

static void emit_secrets(void)
{
	log_info("token exchange", LOG_STR("access_token", "ya29.A0ARrdaM-very-secret"),
		 LOG_STR("refresh_token", "1//0gLongRefreshToken"), LOG_STR("code", "4/0AX4XfWh"),
		 LOG_STR("client_secret", "s3cr3t-value"), LOG_STR("Authorization", "Bearer abcdefghijkl"),
		 LOG_STR("detail", "google said: token ya29.a0AfH6SMBxyz123 is bad; header Bearer qwertyuiop12"),
		 LOG_STR("note", "refresh with 1//04dXyzAbcdefgh failed"),
		 LOG_STR("echo", "the password is hunter2-registered, really"),
		 LOG_EMAIL("owner", "jane.doe@example.com"), LOG_STR("error_code", "invalid_request"));
}

static void emit_hostile(void)
{
	log_warn("line\nbreak \"quoted\" \\ back", LOG_STR("bin", "a\x01\x7f\xff\xfe" "b\xc3\xa9"),
		 LOG_STR("null", NULL), LOG_EMAIL("bad", "not-an-address"));
}

static void emit_debug(void)
{
	log_debug("hidden");
}

static cJSON *parse_line(const char *text, int *nlines)
{
	const char *nl = strchr(text, '\n');

	*nlines = 0;
	for (const char *p = text; (p = strchr(p, '\n')) != NULL; p++)
		(*nlines)++;
	return nl ? cJSON_ParseWithLength(text, (size_t)(nl - text)) : NULL;
}

int main(void)
{
	char *out;
	cJSON *j;
	int lines;

	log_init("test", LOG_INFO);
	log_add_secret("hunter2-registered");
	log_add_secret("short");

	out = capture(emit_basic);
	j = parse_line(out, &lines);
	CHECK_INT(lines, 1, "one call writes one line");
	CHECK(j != NULL, "the line is valid JSON: %s", out);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "msg")), "meeting created", "msg field");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "svc")), "test", "svc field");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "level")), "info", "level field");
	CHECK(cJSON_GetStringValue(cJSON_GetObjectItem(j, "ts")) != NULL &&
		      strlen(cJSON_GetStringValue(cJSON_GetObjectItem(j, "ts"))) == 24,
	      "RFC 3339 timestamp with milliseconds");
	CHECK_INT(cJSON_GetObjectItem(j, "ms")->valuedouble, 42, "integer field");
	CHECK(cJSON_IsTrue(cJSON_GetObjectItem(j, "ok")), "boolean field");
	CHECK(cJSON_GetObjectItem(j, "ratio")->valuedouble == 0.5, "double field");
	cJSON_Delete(j);
	free(out);

	out = capture(emit_secrets);
	j = parse_line(out, &lines);
	CHECK(j != NULL, "secret-bearing line is valid JSON");
	CHECK(strstr(out, "very-secret") == NULL, "access token value absent");
	CHECK(strstr(out, "LongRefreshToken") == NULL, "refresh token value absent");
	CHECK(strstr(out, "4/0AX4XfWh") == NULL, "authorization code absent");
	CHECK(strstr(out, "s3cr3t-value") == NULL, "client secret absent");
	CHECK(strstr(out, "abcdefghijkl") == NULL, "Authorization header value absent");
	CHECK(strstr(out, "a0AfH6SMBxyz123") == NULL, "token inside free text absent");
	CHECK(strstr(out, "qwertyuiop12") == NULL, "bearer token inside free text absent");
	CHECK(strstr(out, "04dXyzAbcdefgh") == NULL, "refresh token inside free text absent");
	CHECK(strstr(out, "hunter2-registered") == NULL, "registered secret absent");
	CHECK(strstr(out, "jane.doe") == NULL, "email local part absent");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "owner")), "j***@example.com", "email masked");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "access_token")), "[redacted]", "field redacted");
	CHECK(strstr(out, "google said: token ya29.[redacted] is bad") != NULL, "prose around a token survives");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "error_code")), "invalid_request",
		  "an error code is not the OAuth code: it is kept");
	cJSON_Delete(j);
	free(out);

	out = capture(emit_hostile);
	j = parse_line(out, &lines);
	CHECK_INT(lines, 1, "newlines in values do not split the line");
	CHECK(j != NULL, "control bytes and invalid UTF-8 still give valid JSON: %s", out);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "msg")), "line\nbreak \"quoted\" \\ back",
		  "message round-trips through escaping");
	CHECK(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(j, "bin")), "b\xc3\xa9") != NULL,
	      "valid UTF-8 is kept");
	CHECK(cJSON_IsNull(cJSON_GetObjectItem(j, "null")), "NULL string is JSON null");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "bad")), "***", "a non-address is fully masked");
	cJSON_Delete(j);
	free(out);

	out = capture(emit_debug);
	CHECK_STR(out, "", "below the threshold nothing is written");
	free(out);

	{
		enum log_level lv;

		CHECK(log_level_parse("WARNING", &lv) == 0 && lv == LOG_WARN, "level names parse");
		CHECK(log_level_parse("verbose", &lv) == -1, "unknown level refused");
	}
	log_shutdown();
	return tap_done();
}
