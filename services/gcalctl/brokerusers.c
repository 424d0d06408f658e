/*
 * brokerusers: `gcalctl broker-users`, the broker users and permissions
 * each service needs (lib/topology's grants), shown or made.
 *
 *   gcalctl broker-users [--json]              the table
 *   gcalctl broker-users --rabbitmqctl [--vhost V]
 *                                              the rabbitmqctl commands that make them
 *   gcalctl broker-users --apply [--vhost V]   make them through the management API
 *
 * --apply reads RABBITMQ_API_URL (http://admin:password@host:15672/api, an
 * administrator's) and each user's password from <ROLE>_AMQP_PASSWORD
 * (GATEWAY_AMQP_PASSWORD, SCHEDULER_AMQP_PASSWORD, MAILER_AMQP_PASSWORD,
 * WEBHOOK_AMQP_PASSWORD, OPS_AMQP_PASSWORD). A user with a password is
 * created, or has its password set; one without is left as it is, or not
 * made when it does not exist. Then its permissions on the vhost are set to
 * exactly the grant, whatever they were. Running it again changes nothing
 * more, so compose runs it at every start (deploy/compose.yaml).
 */
#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>
#include <curl/curl.h>

#include "gcalctl.h"
#include "log.h"
#include "topology.h"
#include "xmalloc.h"

#define BU_TIMEOUT_S 20
#define BU_WAIT_S 60		/* for a management API that is not up yet (a broker starting beside us) */
#define BU_EXIT_CONFIG 78

/* The body of an answer, kept for the error message. */
struct bu_body {
	char *text;
	size_t len;
};

static size_t bu_collect(char *data, size_t size, size_t nmemb, void *arg)
{
	struct bu_body *b = arg;
	size_t n = size * nmemb;

	if (b->len + n > 4096)
		return n;
	b->text = xrealloc(b->text, b->len + n + 1);
	memcpy(b->text + b->len, data, n);
	b->len += n;
	b->text[b->len] = '\0';
	return n;
}

/* One management API call: the HTTP status, or 0 when there was no answer (logged unless quiet). */
static long bu_call_quiet(const char *api, const char *method, const char *path, const char *json, bool quiet)
{
	CURL *curl = curl_easy_init();
	struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
	char *url = xasprintf("%s%s", api, path);
	char error[CURL_ERROR_SIZE] = "";
	struct bu_body body = { 0 };
	long status = 0;
	CURLcode rc;

	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, (long)BU_TIMEOUT_S);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, bu_collect);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "gcalctl-broker-users");
	if (json != NULL)
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, json);
	rc = curl_easy_perform(curl);
	if (rc == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	else if (!quiet)
		log_error("the RabbitMQ management API did not answer", LOG_STR("call", path),
			  LOG_STR("error", error[0] ? error : curl_easy_strerror(rc)));
	if (status >= 400 && status != 404)
		log_error("the RabbitMQ management API refused a call", LOG_STR("method", method),
			  LOG_STR("call", path), LOG_INT("status", status), LOG_STR("answer", body.text));
	curl_easy_cleanup(curl);
	curl_slist_free_all(headers);
	free(body.text);
	free(url);
	return status;
}

static long bu_call(const char *api, const char *method, const char *path, const char *json)
{
	return bu_call_quiet(api, method, path, json, false);
}

/* Wait up to BU_WAIT_S for the API to answer at all (compose starts us as soon as the broker's port is up). */
static bool bu_wait_for_api(const char *api)
{
	for (int i = 0; i < BU_WAIT_S; i++) {
		if (bu_call_quiet(api, "GET", "/overview", NULL, i + 1 < BU_WAIT_S) != 0)
			return true;
		sleep(1);
	}
	return false;
}

/* The user, with its password when one is given, then its permissions on vhost. 0 or -1. */
static int bu_apply_one(const char *api, const char *vhost_enc, const struct topology_grant *g)
{
	char *var = xasprintf("%s_AMQP_PASSWORD", g->role);
	const char *password;
	char *path = xasprintf("/users/%s", g->user);
	long st;
	int rc = -1;

	for (char *p = var; *p; p++)
		*p = (char)toupper((unsigned char)*p);
	password = getenv(var);
	if (password != NULL && *password != '\0') {
		cJSON *o = cJSON_CreateObject();
		char *json;

		log_add_secret(password);
		cJSON_AddStringToObject(o, "password", password);
		cJSON_AddStringToObject(o, "tags", "");
		json = cJSON_PrintUnformatted(o);
		cJSON_Delete(o);
		st = bu_call(api, "PUT", path, json);
		cJSON_free(json);
		if (st != 201 && st != 204)
			goto out;
	} else {
		st = bu_call(api, "GET", path, NULL);
		if (st == 404) {
			log_warn("user not made: its password variable is empty", LOG_STR("user", g->user),
				 LOG_STR("variable", var));
			rc = 0;
			goto out;
		}
		if (st != 200)
			goto out;
	}
	free(path);
	path = xasprintf("/permissions/%s/%s", vhost_enc, g->user);
	{
		cJSON *o = cJSON_CreateObject();
		char *json;

		cJSON_AddStringToObject(o, "configure", g->configure);
		cJSON_AddStringToObject(o, "write", g->write);
		cJSON_AddStringToObject(o, "read", g->read);
		json = cJSON_PrintUnformatted(o);
		cJSON_Delete(o);
		st = bu_call(api, "PUT", path, json);
		cJSON_free(json);
	}
	if (st == 201 || st == 204) {
		printf("%s: %s, permissions set\n", g->user, password != NULL && *password ? "password set" : "kept");
		rc = 0;
	}
out:
	free(path);
	free(var);
	return rc;
}

static int bu_apply(const struct topology_grant *g, size_t n, const char *vhost)
{
	const char *api = getenv("RABBITMQ_API_URL");
	CURL *curl;
	char *vhost_enc, *base;
	int failed = 0;

	if (api == NULL || *api == '\0') {
		log_error("invalid configuration", LOG_STR("variable", "RABBITMQ_API_URL"),
			  LOG_STR("problem", "is required (http://admin:password@host:15672/api)"));
		return BU_EXIT_CONFIG;
	}
	{
		/* The administrator's password, as cfg does for the URLs it reads. */
		const char *s = strstr(api, "://"), *at = s ? strchr(s + 3, '@') : NULL;
		const char *colon = at ? memchr(s + 3, ':', (size_t)(at - s - 3)) : NULL;

		if (colon != NULL) {
			char *pw = xstrndup(colon + 1, (size_t)(at - colon - 1));

			log_add_secret(pw);
			free(pw);
		}
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	curl = curl_easy_init();
	vhost_enc = curl_easy_escape(curl, vhost, 0);
	base = xstrdup(api);
	if (base[0] != '\0' && base[strlen(base) - 1] == '/')
		base[strlen(base) - 1] = '\0';
	if (!bu_wait_for_api(base))
		failed = 1;
	else
		for (size_t i = 0; i < n; i++)
			failed |= bu_apply_one(base, vhost_enc, &g[i]) < 0;
	curl_free(vhost_enc);
	curl_easy_cleanup(curl);
	curl_global_cleanup();
	free(base);
	return failed ? GCALCTL_EXIT_FAILED : 0;
}

/* A regex between single quotes for a POSIX shell (they hold no single quote, but be safe). */
static void bu_print_quoted(const char *s)
{
	putchar('\'');
	for (; *s; s++) {
		if (*s == '\'')
			fputs("'\\''", stdout);
		else
			putchar(*s);
	}
	putchar('\'');
}

static void bu_print_rabbitmqctl(const struct topology_grant *g, size_t n, const char *vhost)
{
	for (size_t i = 0; i < n; i++) {
		char *var = xasprintf("%s_AMQP_PASSWORD", g[i].role);

		for (char *p = var; *p; p++)
			*p = (char)toupper((unsigned char)*p);
		printf("# %s\n", g[i].who);
		printf("rabbitmqctl add_user %s \"$%s\"\n", g[i].user, var);
		printf("rabbitmqctl set_permissions -p ");
		bu_print_quoted(vhost);
		printf(" %s ", g[i].user);
		bu_print_quoted(g[i].configure);
		putchar(' ');
		bu_print_quoted(g[i].write);
		putchar(' ');
		bu_print_quoted(g[i].read);
		putchar('\n');
		free(var);
	}
}

static void bu_print_json(const struct topology_grant *g, size_t n)
{
	cJSON *a = cJSON_CreateArray();
	char *text;

	for (size_t i = 0; i < n; i++) {
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "role", g[i].role);
		cJSON_AddStringToObject(o, "user", g[i].user);
		cJSON_AddStringToObject(o, "who", g[i].who);
		cJSON_AddStringToObject(o, "configure", g[i].configure);
		cJSON_AddStringToObject(o, "write", g[i].write);
		cJSON_AddStringToObject(o, "read", g[i].read);
		cJSON_AddItemToArray(a, o);
	}
	text = cJSON_Print(a);
	printf("%s\n", text);
	cJSON_free(text);
	cJSON_Delete(a);
}

static void bu_print_table(const struct topology_grant *g, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		printf("%s (%s)\n", g[i].user, g[i].who);
		printf("  configure  %s\n", g[i].configure);
		printf("  write      %s\n", g[i].write);
		printf("  read       %s\n", g[i].read);
	}
}

int brokerusers_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "rabbitmqctl", no_argument, NULL, 'r' },
		{ "apply", no_argument, NULL, 'a' },
		{ "vhost", required_argument, NULL, 'v' },
		{ 0 },
	};
	const char *vhost = "/";
	int mode = 0, c, rc = 0;
	struct topology_grant *g;
	size_t n;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'v') {
			vhost = optarg;
		} else if (c == 'j' || c == 'r' || c == 'a') {
			if (mode != 0)
				return cli_usage();
			mode = c;
		} else {
			return cli_usage();
		}
	}
	if (optind != argc || *vhost == '\0')
		return cli_usage();
	n = topology_grants(&g);
	if (mode == 'j')
		bu_print_json(g, n);
	else if (mode == 'r')
		bu_print_rabbitmqctl(g, n, vhost);
	else if (mode == 'a')
		rc = bu_apply(g, n, vhost);
	else
		bu_print_table(g, n);
	topology_grants_free(g, n);
	return rc;
}
