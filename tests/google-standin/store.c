/*
 * store: accounts and their calendars' events, all in memory.
 *
 * Each account has exactly one calendar (its primary, whose id is the
 * email). Events are found through one hash map keyed "email/eventid",
 * since benchmarks create tens of thousands; each account also keeps its
 * events in insertion order, which is the order events.list answers in
 * when no orderBy is given. Events are never removed one by one: Google
 * keeps a deleted event (status "cancelled") and its id for good.
 */
#include "standin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "xmalloc.h"

static struct map *store_accounts; /* lowercase email -> struct account */
static struct map *store_events;   /* "email/id" -> struct cal_event */

static void store_free_event(void *p)
{
	struct cal_event *ev = p;

	free(ev->id);
	cJSON_Delete(ev->res);
	cJSON_Delete(ev->writes);
	free(ev);
}

static void store_free_account(void *p)
{
	struct account *a = p;

	free(a->email);
	free(a->id);
	free(a->name);
	free(a->timezone);
	free(a->events);
	free(a);
}

void store_init(void)
{
	store_accounts = map_new(store_free_account);
	store_events = map_new(store_free_event);
}

void store_reset(void)
{
	map_clear(store_events);
	map_clear(store_accounts);
}

void store_free(void)
{
	map_free(store_events);
	map_free(store_accounts);
	store_events = store_accounts = NULL;
}

struct account *store_find_account(const char *email)
{
	char *key = util_lower(email);
	struct account *a = map_get(store_accounts, key);

	free(key);
	return a;
}

/*
 * Google's user ids are 21 decimal digits and never change; deriving ours
 * from the address keeps them stable across restarts of the stand-in.
 */
static char *store_user_id(const char *email)
{
	unsigned char h[crypto_hash_sha256_BYTES];
	char *id = xmalloc(22);

	crypto_hash_sha256(h, (const unsigned char *)email, strlen(email));
	id[0] = '1';
	for (int i = 1; i < 21; i++)
		id[i] = (char)('0' + h[i] % 10);
	id[21] = '\0';
	return id;
}

struct account *store_account(const char *email)
{
	struct account *a = store_find_account(email);

	if (a != NULL)
		return a;
	a = xcalloc(1, sizeof(*a));
	a->email = util_lower(email);
	a->id = store_user_id(a->email);
	a->name = xstrndup(a->email, strcspn(a->email, "@"));
	a->updated_ms = util_now_ms();
	a->sync_epoch = randombytes_random();
	map_set(store_accounts, a->email, a);
	return a;
}

const char *store_timezone(const struct account *a)
{
	return a->timezone != NULL ? a->timezone : config.timezone;
}

struct cal_event *store_get_event(const struct account *a, const char *id)
{
	char *key = xasprintf("%s/%s", a->email, id);
	struct cal_event *ev = map_get(store_events, key);

	free(key);
	return ev;
}

void store_add_event(struct cal_event *ev)
{
	struct account *a = ev->account;
	char *key = xasprintf("%s/%s", a->email, ev->id);

	map_set(store_events, key, ev);
	free(key);
	if (a->nevents == a->capevents) {
		a->capevents = a->capevents != 0 ? a->capevents * 2 : 16;
		a->events = xreallocarray(a->events, a->capevents, sizeof(*a->events));
	}
	a->events[a->nevents++] = ev;
}

size_t store_count_events(void)
{
	return map_count(store_events);
}

struct store_each {
	void (*fn)(struct account *a, void *arg);
	void *arg;
};

static bool store_each_one(const char *key, void *value, void *arg)
{
	struct store_each *e = arg;

	e->fn(value, e->arg);
	return false;
}

void store_each_account(void (*fn)(struct account *a, void *arg), void *arg)
{
	struct store_each e = {fn, arg};

	map_sweep(store_accounts, store_each_one, &e);
}
