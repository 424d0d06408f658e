/*
 * Unit tests of lib/topology's broker-user grants: each regex compiles and
 * is anchored, matches exactly the names its service needs, and no other
 * service's credentials may publish where they should not (commands only
 * the gateway, leads only the webhook and gcalctl, mail only the
 * scheduler). That the grants are also enough is shown on a real broker:
 * tests/integration/test_mq.c and every e2e test, whose services run
 * under them.
 */
#include <regex.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "topology.h"

static struct topology_grant *grants;
static size_t ngrants;

static const struct topology_grant *grant(const char *role)
{
	for (size_t i = 0; i < ngrants; i++)
		if (strcmp(grants[i].role, role) == 0)
			return &grants[i];
	return NULL;
}

/* RabbitMQ's regexes are PCRE; these use only ^ $ ( | ) \. and .*, which POSIX ERE reads the same. */
static bool matches(const char *re, const char *name)
{
	regex_t r;
	bool m;

	if (regcomp(&r, re, REG_EXTENDED | REG_NOSUB) != 0)
		return false;
	m = regexec(&r, name, 0, NULL, 0) == 0;
	regfree(&r);
	return m;
}

static const char *kind_re(const struct topology_grant *g, char kind)
{
	return kind == 'c' ? g->configure : kind == 'w' ? g->write : g->read;
}

/* Which roles' grants of kind match name; "" when none. A static buffer. */
static const char *who_may(char kind, const char *name)
{
	static char out[128];

	out[0] = '\0';
	for (size_t i = 0; i < ngrants; i++) {
		if (!matches(kind_re(&grants[i], kind), name))
			continue;
		if (out[0] != '\0')
			strcat(out, " ");
		strcat(out, grants[i].role);
	}
	return out;
}

int main(void)
{
	ngrants = topology_grants(&grants);
	CHECK_INT(ngrants, 5, "five roles");
	for (size_t i = 0; i < ngrants; i++) {
		const struct topology_grant *g = &grants[i];
		regex_t r;

		CHECK(strncmp(g->user, "gcal-", 5) == 0 && strcmp(g->user + 5, g->role) == 0, "%s's user is gcal-%s",
		      g->role, g->role);
		for (const char *k = "cwr"; *k; k++) {
			const char *re = kind_re(g, *k);
			size_t n = strlen(re);

			CHECK(regcomp(&r, re, REG_EXTENDED | REG_NOSUB) == 0, "%s %c regex compiles", g->role, *k);
			regfree(&r);
			CHECK(n >= 2 && re[0] == '^' && re[n - 1] == '$', "%s %c regex is anchored: %s", g->role, *k, re);
			CHECK(!matches(re, "") || strcmp(re, "^$") == 0, "%s %c grants nothing by accident", g->role, *k);
		}
	}

	/* Publishing (write on the exchange). */
	CHECK_STR(who_may('w', TOPO_EX_CALENDAR_COMMANDS), "gateway", "only the gateway may publish commands");
	CHECK_STR(who_may('w', TOPO_EX_LEADS), "webhook ops", "only the webhook and gcalctl may publish leads");
	CHECK_STR(who_may('w', TOPO_EX_MAIL), "scheduler", "only the scheduler may publish mail jobs");
	CHECK_STR(who_may('w', TOPO_EX_DEFAULT_PERMISSION), "scheduler mailer ops",
		  "the default exchange (retries, dead letters, replies, replays): the workers and gcalctl");
	CHECK_STR(who_may('w', TOPO_EX_SCHEDULER), "scheduler", "the scheduler exchange (its delay queue's DLX)");

	/* Consuming (read on the queue). */
	CHECK_STR(who_may('r', TOPO_Q_SCHEDULER_COMMANDS), "scheduler", "only the scheduler reads commands");
	CHECK_STR(who_may('r', TOPO_Q_SCHEDULER_LEADS), "scheduler", "only the scheduler reads leads");
	CHECK_STR(who_may('r', TOPO_Q_MAILER_JOBS), "scheduler mailer",
		  "mail jobs: the mailer, and the scheduler that declares the queue (a dead-lettering queue's declare "
		  "needs read on it)");
	CHECK_STR(who_may('r', TOPO_Q_SCHEDULER_DEAD), "ops", "dead letters: gcalctl");
	CHECK_STR(who_may('r', TOPO_Q_MAILER_DEAD), "ops", "... both queues");
	CHECK_STR(who_may('r', "amq.gen-AbC123_-x"), "gateway", "a server-named reply queue: the gateway");
	CHECK_STR(who_may('c', "amq.gen-AbC123_-x"), "gateway", "... which declares it");

	/* Declaring: the workers own the queues; publishers only their exchange. */
	CHECK_STR(who_may('c', TOPO_Q_SCHEDULER_COMMANDS), "scheduler", "scheduler.commands: declared by the scheduler");
	CHECK_STR(who_may('c', TOPO_Q_SCHEDULER_DELAY), "scheduler", "scheduler.delay: declared by the scheduler");
	CHECK_STR(who_may('c', TOPO_EX_CALENDAR_COMMANDS), "gateway scheduler", "calendar.commands: gateway, scheduler");
	CHECK_STR(who_may('c', TOPO_EX_LEADS), "scheduler webhook", "leads: the scheduler and the webhook");
	CHECK_STR(who_may('c', TOPO_Q_MAILER_JOBS), "scheduler mailer", "mailer.jobs: the scheduler and the mailer");
	for (size_t n = 1; topology_scheduler_retry_queue(n) != NULL; n++)
		CHECK_STR(who_may('c', topology_scheduler_retry_queue(n)), "scheduler", "%s: the scheduler's",
			  topology_scheduler_retry_queue(n));
	for (size_t n = 1; topology_mailer_retry_queue(n) != NULL; n++)
		CHECK_STR(who_may('c', topology_mailer_retry_queue(n)), "mailer", "%s: the mailer's",
			  topology_mailer_retry_queue(n));

	/* Names are matched whole: dots are literal, nothing before or after. */
	CHECK_STR(who_may('w', "calendarXcommands"), "", "a dot is not a wildcard");
	CHECK_STR(who_may('w', "calendar.commands.evil"), "", "a longer name is not granted");
	CHECK_STR(who_may('w', "x" TOPO_EX_LEADS), "", "nor one with a prefix");
	CHECK_STR(grant("ops")->configure, "^$", "gcalctl declares nothing");
	CHECK_STR(grant("webhook")->read, "^$", "the webhook consumes nothing");

	topology_grants_free(grants, ngrants);
	topology_grants_free(NULL, 0);
	return tap_done();
}
