/*
 * journal: what the stand-in was asked, for tests that assert on traffic
 * rather than on state: counts per endpoint and status, token refreshes
 * per account, and a ring of the last requests (method, path without
 * query, status, account). Paths never carry tokens; query strings can
 * (access_token=), so they are not kept.
 */
#include "standin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"

#define JOURNAL_RING 1000

struct journal_entry {
	int64_t time_ms;
	const char *method;   /* static */
	const char *endpoint; /* static */
	char *path;
	char *email;
	int status;
	long ms;
	bool fault;
};

struct journal_count {
	const char *endpoint; /* static */
	int status;
	unsigned long n;
};

static struct journal_entry journal_ring[JOURNAL_RING];
static size_t journal_next; /* slot the next entry goes to */
static unsigned long long journal_total;
static unsigned long long journal_faults;
static struct journal_count *journal_counts;
static size_t journal_ncounts;
static struct map *journal_refreshes; /* email -> unsigned long * */

void journal_init(void)
{
	journal_refreshes = map_new(free);
}

void journal_reset(void)
{
	for (size_t i = 0; i < JOURNAL_RING; i++) {
		free(journal_ring[i].path);
		free(journal_ring[i].email);
	}
	memset(journal_ring, 0, sizeof(journal_ring));
	journal_next = 0;
	journal_total = 0;
	journal_faults = 0;
	free(journal_counts);
	journal_counts = NULL;
	journal_ncounts = 0;
	map_clear(journal_refreshes);
}

void journal_free(void)
{
	journal_reset();
	map_free(journal_refreshes);
	journal_refreshes = NULL;
}

void journal_record(const struct exchange *ex, int status)
{
	struct journal_entry *e = &journal_ring[journal_next];
	size_t i;

	free(e->path);
	free(e->email);
	e->time_ms = util_now_ms();
	e->method = ex->method_name;
	e->endpoint = ex->endpoint;
	e->path = xstrdup(ex->path);
	e->email = ex->email != NULL ? xstrdup(ex->email) : NULL;
	e->status = status;
	e->ms = (long)(e->time_ms - ex->started_ms);
	e->fault = ex->faulted;
	journal_next = (journal_next + 1) % JOURNAL_RING;
	journal_total++;
	if (ex->faulted)
		journal_faults++;
	for (i = 0; i < journal_ncounts; i++) {
		if (journal_counts[i].status == status && strcmp(journal_counts[i].endpoint, ex->endpoint) == 0)
			break;
	}
	if (i == journal_ncounts) {
		journal_counts = xreallocarray(journal_counts, ++journal_ncounts, sizeof(*journal_counts));
		journal_counts[i] = (struct journal_count){ex->endpoint, status, 0};
	}
	journal_counts[i].n++;
}

void journal_note_refresh(const char *email)
{
	unsigned long *n = map_get(journal_refreshes, email);

	if (n == NULL) {
		n = xcalloc(1, sizeof(*n));
		map_set(journal_refreshes, email, n);
	}
	(*n)++;
}

static bool journal_add_refresh(const char *key, void *value, void *arg)
{
	cJSON_AddNumberToObject(arg, key, (double)*(unsigned long *)value);
	return false;
}

cJSON *journal_stats_json(void)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *endpoints = cJSON_AddObjectToObject(o, "endpoints");

	cJSON_AddNumberToObject(o, "requests", (double)journal_total);
	cJSON_AddNumberToObject(o, "faults_injected", (double)journal_faults);
	for (size_t i = 0; i < journal_ncounts; i++) {
		cJSON *ep = cJSON_GetObjectItemCaseSensitive(endpoints, journal_counts[i].endpoint);
		char status[16];

		if (ep == NULL)
			ep = cJSON_AddObjectToObject(endpoints, journal_counts[i].endpoint);
		snprintf(status, sizeof(status), "%d", journal_counts[i].status);
		cJSON_AddNumberToObject(ep, status, (double)journal_counts[i].n);
	}
	map_sweep(journal_refreshes, journal_add_refresh, cJSON_AddObjectToObject(o, "token_refreshes"));
	cJSON_AddNumberToObject(o, "live_grants", (double)grants_count_live());
	cJSON_AddNumberToObject(o, "events", (double)store_count_events());
	return o;
}

cJSON *journal_requests_json(void)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *list = cJSON_AddArrayToObject(o, "requests");

	/* Oldest first: the ring starts at the slot the next entry overwrites. */
	for (size_t k = 0; k < JOURNAL_RING; k++) {
		const struct journal_entry *e = &journal_ring[(journal_next + k) % JOURNAL_RING];
		cJSON *j;
		char when[32];

		if (e->path == NULL)
			continue;
		j = cJSON_CreateObject();
		util_format_time(e->time_ms, when, sizeof(when));
		cJSON_AddStringToObject(j, "time", when);
		cJSON_AddStringToObject(j, "method", e->method);
		cJSON_AddStringToObject(j, "path", e->path);
		cJSON_AddStringToObject(j, "endpoint", e->endpoint);
		cJSON_AddNumberToObject(j, "status", e->status);
		if (e->email != NULL)
			cJSON_AddStringToObject(j, "email", e->email);
		else
			cJSON_AddNullToObject(j, "email");
		cJSON_AddNumberToObject(j, "ms", (double)e->ms);
		cJSON_AddBoolToObject(j, "fault", e->fault);
		cJSON_AddItemToArray(list, j);
	}
	return o;
}
