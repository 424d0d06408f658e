/*
 * testenv: per-test databases and virtual hosts on the run's real servers
 * (see testenv.h). Blocking calls are fine here: this is test set-up, not a
 * service loop.
 */
#include "testenv.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <event2/event.h>
#include <libpq-fe.h>

#include "xmalloc.h"

const char *testenv_require(const char *name)
{
	const char *v = getenv(name);

	if (v == NULL || *v == '\0') {
		fprintf(stderr, "testenv: %s is not set; run the suite through tests/run, which starts the servers\n",
			name);
		exit(1);
	}
	return v;
}

static void testenv_check_name(const char *name)
{
	for (const char *p = name; *p; p++) {
		if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '_') {
			fprintf(stderr, "testenv: test name '%s' must be [a-z0-9_]\n", name);
			exit(1);
		}
	}
}

static void testenv_exec(PGconn *conn, const char *sql)
{
	PGresult *res = PQexec(conn, sql);

	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		fprintf(stderr, "testenv: %s: %s", sql, PQerrorMessage(conn));
		exit(1);
	}
	PQclear(res);
}

char *testenv_database(const char *name)
{
	const char *admin = testenv_require("TEST_PG_URL");
	const char *port = testenv_require("TEST_PG_PORT");
	PGconn *conn;
	char *sql;

	testenv_check_name(name);
	conn = PQconnectdb(admin);
	if (PQstatus(conn) != CONNECTION_OK) {
		fprintf(stderr, "testenv: cannot connect to %s: %s", admin, PQerrorMessage(conn));
		exit(1);
	}
	sql = xasprintf("DROP DATABASE IF EXISTS t_%s WITH (FORCE)", name);
	testenv_exec(conn, sql);
	free(sql);
	sql = xasprintf("CREATE DATABASE t_%s TEMPLATE gcal_template", name);
	testenv_exec(conn, sql);
	free(sql);
	PQfinish(conn);
	return xasprintf("postgresql://postgres@127.0.0.1:%s/t_%s", port, name);
}

static size_t testenv_collect(char *data, size_t size, size_t nmemb, void *arg)
{
	char **buf = arg;
	size_t old = *buf ? strlen(*buf) : 0;

	*buf = xrealloc(*buf, old + size * nmemb + 1);
	memcpy(*buf + old, data, size * nmemb);
	(*buf)[old + size * nmemb] = '\0';
	return size * nmemb;
}

/* One management API call; returns the HTTP status and, if body_out, the body. */
static long testenv_rabbit(const char *method, const char *path, const char *json, char **body_out)
{
	const char *api = testenv_require("TEST_RABBITMQ_API");
	char *url = xasprintf("%s%s", api, path);
	struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	char *body = NULL;
	long status = 0;
	CURL *c = curl_easy_init();

	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, testenv_collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
	if (json != NULL)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	curl_slist_free_all(hdrs);
	free(url);
	if (body_out != NULL)
		*body_out = body;
	else
		free(body);
	return status;
}

char *testenv_vhost(const char *name)
{
	const char *amqp = testenv_require("TEST_AMQP_URL");
	char *path;
	long st;

	testenv_check_name(name);
	path = xasprintf("/vhosts/%s", name);
	testenv_rabbit("DELETE", path, NULL, NULL);
	st = testenv_rabbit("PUT", path, "{}", NULL);
	free(path);
	if (st != 201 && st != 204) {
		fprintf(stderr, "testenv: creating vhost %s answered %ld\n", name, st);
		exit(1);
	}
	path = xasprintf("/permissions/%s/guest", name);
	st = testenv_rabbit("PUT", path, "{\"configure\":\".*\",\"write\":\".*\",\"read\":\".*\"}", NULL);
	free(path);
	if (st != 201 && st != 204) {
		fprintf(stderr, "testenv: permissions on vhost %s answered %ld\n", name, st);
		exit(1);
	}
	return xasprintf("%s/%s", amqp, name);
}

char *testenv_broker_user(const char *vhost, const char *user, const char *password, const char *configure,
			  const char *write, const char *read)
{
	const char *amqp = testenv_require("TEST_AMQP_URL");
	const char *at = strrchr(amqp, '@');
	cJSON *o = cJSON_CreateObject();
	char *path, *json;
	long st;

	cJSON_AddStringToObject(o, "password", password);
	cJSON_AddStringToObject(o, "tags", "");
	json = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	path = xasprintf("/users/%s", user);
	st = testenv_rabbit("PUT", path, json, NULL);
	free(path);
	cJSON_free(json);
	if (st != 201 && st != 204) {
		fprintf(stderr, "testenv: creating broker user %s answered %ld\n", user, st);
		exit(1);
	}
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "configure", configure);
	cJSON_AddStringToObject(o, "write", write);
	cJSON_AddStringToObject(o, "read", read);
	json = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	path = xasprintf("/permissions/%s/%s", vhost, user);
	st = testenv_rabbit("PUT", path, json, NULL);
	free(path);
	cJSON_free(json);
	if ((st != 201 && st != 204) || at == NULL) {
		fprintf(stderr, "testenv: permissions of %s on %s answered %ld\n", user, vhost, st);
		exit(1);
	}
	return xasprintf("amqp://%s:%s%s/%s", user, password, at, vhost);
}

char *testenv_rabbit_get(const char *path)
{
	char *body = NULL;

	if (testenv_rabbit("GET", path, NULL, &body) != 200) {
		free(body);
		return NULL;
	}
	return body;
}

/* Wakes the loop so the deadline is checked even when nothing else happens. */
static void testenv_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

bool testenv_run_until(struct event_base *base, const bool *done, int timeout_ms)
{
	struct timeval step = { 0, 10000 };
	struct event *tick = event_new(base, -1, EV_PERSIST, testenv_tick, NULL);
	struct timespec start, now;

	clock_gettime(CLOCK_MONOTONIC, &start);
	event_add(tick, &step);
	for (;;) {
		long elapsed_ms;

		if (*done)
			break;
		clock_gettime(CLOCK_MONOTONIC, &now);
		elapsed_ms = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
		if (elapsed_ms >= timeout_ms)
			break;
		event_base_loop(base, EVLOOP_ONCE);
	}
	event_free(tick);
	return *done;
}
