/*
 * topology: declarations of the project's exchanges, queues and bindings
 * (see topology.h). Each queue's arguments are built in exactly one
 * function below, whichever service declares it.
 */
#include "topology.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xmalloc.h"

#define TOPO_COUNT(a) (sizeof(a) / sizeof(*(a)))

/* 5 s .. 10 min, 1130 s in all: a Google or database outage of minutes loses nothing. */
static const long scheduler_retry_ttl_ms[] = { 5000, 15000, 30000, 60000, 120000, 300000, 600000 };
static const char *const scheduler_retry_queues[] = {
	"scheduler.retry.1", "scheduler.retry.2", "scheduler.retry.3", "scheduler.retry.4",
	"scheduler.retry.5", "scheduler.retry.6", "scheduler.retry.7",
};

/* 10 s .. 10 min, 1120 s in all. */
static const long mailer_retry_ttl_ms[] = { 10000, 30000, 60000, 120000, 300000, 600000 };
static const char *const mailer_retry_queues[] = {
	"mailer.retry.1", "mailer.retry.2", "mailer.retry.3", "mailer.retry.4", "mailer.retry.5", "mailer.retry.6",
};

_Static_assert(TOPO_COUNT(scheduler_retry_ttl_ms) == TOPO_COUNT(scheduler_retry_queues), "one name per tier");
_Static_assert(TOPO_COUNT(mailer_retry_ttl_ms) == TOPO_COUNT(mailer_retry_queues), "one name per tier");

/*
 * A quorum work queue that dead-letters at least once to dlx/dlrk.
 * ttl_ms < 0 means no x-message-ttl. Queues with no consumer (the delay
 * queue, the tiers) keep the delivery limit too, so an operator's tool
 * reading them cannot loop a message forever.
 */
static int topo_work_queue(struct mq *mq, const char *name, long ttl_ms, const char *dlx, const char *dlrk)
{
	struct mq_arg args[7];
	size_t n = 0;

	args[n++] = MQ_ARG_S("x-queue-type", "quorum");
	args[n++] = MQ_ARG_S("x-dead-letter-exchange", dlx);
	args[n++] = MQ_ARG_S("x-dead-letter-routing-key", dlrk);
	args[n++] = MQ_ARG_S("x-dead-letter-strategy", "at-least-once");
	args[n++] = MQ_ARG_S("x-overflow", "reject-publish");
	args[n++] = MQ_ARG_I("x-delivery-limit", TOPO_DELIVERY_LIMIT);
	if (ttl_ms >= 0)
		args[n++] = MQ_ARG_I("x-message-ttl", ttl_ms);
	return mq_declare_queue(mq, name, args, n);
}

/* A parking queue: quorum, no TTL, no limit, no dead-lettering; only an operator empties it. */
static int topo_dead_queue(struct mq *mq, const char *name)
{
	struct mq_arg args[] = { MQ_ARG_S("x-queue-type", "quorum") };

	return mq_declare_queue(mq, name, args, TOPO_COUNT(args));
}

static int topo_tiers(struct mq *mq, const char *const *queues, const long *ttl_ms, size_t n, const char *target)
{
	for (size_t i = 0; i < n; i++)
		if (topo_work_queue(mq, queues[i], ttl_ms[i], "", target) < 0)
			return -1;
	return 0;
}

/* leads → scheduler.delay (TTL) → scheduler / lead.ready → scheduler.leads, dead letters to scheduler.dead. */
static int topo_delay_path(struct mq *mq, long delay_ms)
{
	if (mq_declare_exchange(mq, TOPO_EX_LEADS, "topic") < 0 ||
	    mq_declare_exchange(mq, TOPO_EX_SCHEDULER, "direct") < 0 ||
	    topo_dead_queue(mq, TOPO_Q_SCHEDULER_DEAD) < 0 ||
	    topo_work_queue(mq, TOPO_Q_SCHEDULER_LEADS, -1, "", TOPO_Q_SCHEDULER_DEAD) < 0 ||
	    mq_bind(mq, TOPO_Q_SCHEDULER_LEADS, TOPO_EX_SCHEDULER, TOPO_RK_LEAD_READY) < 0 ||
	    topo_work_queue(mq, TOPO_Q_SCHEDULER_DELAY, delay_ms, TOPO_EX_SCHEDULER, TOPO_RK_LEAD_READY) < 0 ||
	    mq_bind(mq, TOPO_Q_SCHEDULER_DELAY, TOPO_EX_LEADS, TOPO_RK_LEAD_ANALYZED) < 0)
		return -1;
	return 0;
}

static int topo_commands(struct mq *mq)
{
	static const char *const keys[] = { TOPO_RK_MEETING_CREATE, TOPO_RK_MEETING_RESCHEDULE, TOPO_RK_MEETING_CANCEL,
					    TOPO_RK_MEETING_AVAILABILITY };

	if (mq_declare_exchange(mq, TOPO_EX_CALENDAR_COMMANDS, "direct") < 0 ||
	    topo_dead_queue(mq, TOPO_Q_SCHEDULER_DEAD) < 0 ||
	    topo_work_queue(mq, TOPO_Q_SCHEDULER_COMMANDS, -1, "", TOPO_Q_SCHEDULER_DEAD) < 0)
		return -1;
	for (size_t i = 0; i < TOPO_COUNT(keys); i++)
		if (mq_bind(mq, TOPO_Q_SCHEDULER_COMMANDS, TOPO_EX_CALENDAR_COMMANDS, keys[i]) < 0)
			return -1;
	return 0;
}

/*
 * calendar → scheduler.sync. A message there only asks for a sync (the
 * request is recorded in the database before the ack), so a lost one costs
 * at most a poll period; it is still a quorum queue so a broker restart
 * keeps the pushes it holds.
 */
static int topo_sync(struct mq *mq)
{
	if (mq_declare_exchange(mq, TOPO_EX_CALENDAR, "topic") < 0 ||
	    topo_dead_queue(mq, TOPO_Q_SCHEDULER_DEAD) < 0 ||
	    topo_work_queue(mq, TOPO_Q_SCHEDULER_SYNC, -1, "", TOPO_Q_SCHEDULER_DEAD) < 0 ||
	    mq_bind(mq, TOPO_Q_SCHEDULER_SYNC, TOPO_EX_CALENDAR, TOPO_RK_CALENDAR_ALL) < 0)
		return -1;
	return 0;
}

/* mail → mailer.jobs, whose dead letters go to mailer.dead (declared first: a missing target drops them). */
static int topo_mail(struct mq *mq)
{
	if (mq_declare_exchange(mq, TOPO_EX_MAIL, "topic") < 0 ||
	    topo_dead_queue(mq, TOPO_Q_MAILER_DEAD) < 0 ||
	    topo_work_queue(mq, TOPO_Q_MAILER_JOBS, -1, "", TOPO_Q_MAILER_DEAD) < 0 ||
	    mq_bind(mq, TOPO_Q_MAILER_JOBS, TOPO_EX_MAIL, TOPO_RK_MAIL_ALL) < 0)
		return -1;
	return 0;
}

int topology_declare_scheduler(struct mq *mq, long delay_ms)
{
	if (topo_delay_path(mq, delay_ms) < 0 ||
	    topo_tiers(mq, scheduler_retry_queues, scheduler_retry_ttl_ms, TOPO_COUNT(scheduler_retry_queues),
		       TOPO_Q_SCHEDULER_LEADS) < 0 ||
	    topo_commands(mq) < 0 ||
	    topo_sync(mq) < 0 ||
	    topo_mail(mq) < 0)
		return -1;
	return 0;
}

int topology_declare_mailer(struct mq *mq)
{
	if (topo_mail(mq) < 0 ||
	    topo_tiers(mq, mailer_retry_queues, mailer_retry_ttl_ms, TOPO_COUNT(mailer_retry_queues),
		       TOPO_Q_MAILER_JOBS) < 0)
		return -1;
	return 0;
}

int topology_declare_gateway(struct mq *mq)
{
	if (mq_declare_exchange(mq, TOPO_EX_CALENDAR_COMMANDS, "direct") < 0 ||
	    mq_declare_exchange(mq, TOPO_EX_CALENDAR, "topic") < 0)
		return -1;
	return 0;
}

int topology_declare_webhook_side(struct mq *mq)
{
	return mq_declare_exchange(mq, TOPO_EX_LEADS, "topic");
}

void topology_calendar_message(struct mq_message *m, const char *routing_key, const char *body_text,
			       const char *message_id)
{
	memset(m, 0, sizeof(*m));
	m->exchange = TOPO_EX_CALENDAR;
	m->routing_key = routing_key;
	m->type = routing_key;
	m->body = body_text;
	m->body_len = strlen(body_text);
	m->content_type = "application/json";
	m->message_id = message_id;
	m->timestamp = (int64_t)time(NULL);
	m->mandatory = true;
}

size_t topology_scheduler_retry_tiers(const long **ttl_ms)
{
	if (ttl_ms != NULL)
		*ttl_ms = scheduler_retry_ttl_ms;
	return TOPO_COUNT(scheduler_retry_ttl_ms);
}

size_t topology_mailer_retry_tiers(const long **ttl_ms)
{
	if (ttl_ms != NULL)
		*ttl_ms = mailer_retry_ttl_ms;
	return TOPO_COUNT(mailer_retry_ttl_ms);
}

const char *topology_scheduler_retry_queue(size_t n)
{
	return n >= 1 && n <= TOPO_COUNT(scheduler_retry_queues) ? scheduler_retry_queues[n - 1] : NULL;
}

const char *topology_mailer_retry_queue(size_t n)
{
	return n >= 1 && n <= TOPO_COUNT(mailer_retry_queues) ? mailer_retry_queues[n - 1] : NULL;
}

void topology_scheduler_retry_policy(struct retry_policy *policy)
{
	policy->tiers = scheduler_retry_queues;
	policy->ttl_ms = scheduler_retry_ttl_ms;
	policy->ntiers = TOPO_COUNT(scheduler_retry_queues);
	policy->dead_queue = TOPO_Q_SCHEDULER_DEAD;
}

void topology_mailer_retry_policy(struct retry_policy *policy)
{
	policy->tiers = mailer_retry_queues;
	policy->ttl_ms = mailer_retry_ttl_ms;
	policy->ntiers = TOPO_COUNT(mailer_retry_queues);
	policy->dead_queue = TOPO_Q_MAILER_DEAD;
}

/* Grants. */

enum { TOPO_CONFIGURE, TOPO_WRITE, TOPO_READ };

#define TOPO_RE_MAX 32

/* Growing text for building a regex, and the names in it (each goes in once). */
struct topo_re {
	char *text;
	size_t len;
	int names;
	const char *added[TOPO_RE_MAX];
};

static void topo_re_put(struct topo_re *re, const char *s, size_t n)
{
	re->text = xrealloc(re->text, re->len + n + 1);
	memcpy(re->text + re->len, s, n);
	re->len += n;
	re->text[re->len] = '\0';
}

/* One more alternative; pattern is a regex as it is, anything else a name whose dots are escaped. */
static void topo_re_add(struct topo_re *re, const char *name, bool pattern)
{
	for (int i = 0; i < re->names; i++)
		if (strcmp(re->added[i], name) == 0)
			return;
	if (re->names == TOPO_RE_MAX)
		abort();
	topo_re_put(re, re->names == 0 ? "^(" : "|", re->names == 0 ? 2 : 1);
	re->added[re->names++] = name;
	for (const char *p = name; *p; p++) {
		if (!pattern && strchr(".^$|()[]{}*+?\\", *p) != NULL)
			topo_re_put(re, "\\", 1);
		topo_re_put(re, p, 1);
	}
}

static char *topo_re_done(struct topo_re *re)
{
	if (re->names == 0)
		return xstrdup("^$");
	topo_re_put(re, ")$", 2);
	return re->text;
}

/*
 * What the declares above ask of RabbitMQ's permissions: configure on each
 * exchange and queue declared; for a queue declared with a dead-letter
 * exchange, also read on the queue and write on that exchange ("" is
 * amq.default); for a bind, write on the queue and read on the exchange.
 */
static void topo_grant_work_queue(struct topo_re *re, const char *queue, const char *dlx)
{
	topo_re_add(&re[TOPO_CONFIGURE], queue, false);
	topo_re_add(&re[TOPO_READ], queue, false);
	topo_re_add(&re[TOPO_WRITE], *dlx ? dlx : TOPO_EX_DEFAULT_PERMISSION, false);
}

static void topo_grant_bind(struct topo_re *re, const char *queue, const char *exchange)
{
	topo_re_add(&re[TOPO_WRITE], queue, false);
	topo_re_add(&re[TOPO_READ], exchange, false);
}

/* topo_delay_path() */
static void topo_grant_delay_path(struct topo_re *re)
{
	topo_re_add(&re[TOPO_CONFIGURE], TOPO_EX_LEADS, false);
	topo_re_add(&re[TOPO_CONFIGURE], TOPO_EX_SCHEDULER, false);
	topo_re_add(&re[TOPO_CONFIGURE], TOPO_Q_SCHEDULER_DEAD, false);
	topo_grant_work_queue(re, TOPO_Q_SCHEDULER_LEADS, "");
	topo_grant_bind(re, TOPO_Q_SCHEDULER_LEADS, TOPO_EX_SCHEDULER);
	topo_grant_work_queue(re, TOPO_Q_SCHEDULER_DELAY, TOPO_EX_SCHEDULER);
	topo_grant_bind(re, TOPO_Q_SCHEDULER_DELAY, TOPO_EX_LEADS);
}

/* topo_tiers() */
static void topo_grant_tiers(struct topo_re *re, const char *const *queues, size_t n)
{
	for (size_t i = 0; i < n; i++)
		topo_grant_work_queue(re, queues[i], "");
}

/* topo_commands() */
static void topo_grant_commands(struct topo_re *re)
{
	topo_re_add(&re[TOPO_CONFIGURE], TOPO_EX_CALENDAR_COMMANDS, false);
	topo_re_add(&re[TOPO_CONFIGURE], TOPO_Q_SCHEDULER_DEAD, false);
	topo_grant_work_queue(re, TOPO_Q_SCHEDULER_COMMANDS, "");
	topo_grant_bind(re, TOPO_Q_SCHEDULER_COMMANDS, TOPO_EX_CALENDAR_COMMANDS);
}

/* topo_sync() */
static void topo_grant_sync(struct topo_re *re)
{
	topo_re_add(&re[TOPO_CONFIGURE], TOPO_EX_CALENDAR, false);
	topo_re_add(&re[TOPO_CONFIGURE], TOPO_Q_SCHEDULER_DEAD, false);
	topo_grant_work_queue(re, TOPO_Q_SCHEDULER_SYNC, "");
	topo_grant_bind(re, TOPO_Q_SCHEDULER_SYNC, TOPO_EX_CALENDAR);
}

/* topo_mail() */
static void topo_grant_mail(struct topo_re *re)
{
	topo_re_add(&re[TOPO_CONFIGURE], TOPO_EX_MAIL, false);
	topo_re_add(&re[TOPO_CONFIGURE], TOPO_Q_MAILER_DEAD, false);
	topo_grant_work_queue(re, TOPO_Q_MAILER_JOBS, "");
	topo_grant_bind(re, TOPO_Q_MAILER_JOBS, TOPO_EX_MAIL);
}

static void topo_grant(struct topology_grant *g, const char *role, const char *user, const char *who,
		       struct topo_re *re)
{
	g->role = role;
	g->user = user;
	g->who = who;
	g->configure = topo_re_done(&re[TOPO_CONFIGURE]);
	g->write = topo_re_done(&re[TOPO_WRITE]);
	g->read = topo_re_done(&re[TOPO_READ]);
}

size_t topology_grants(struct topology_grant **out)
{
	struct topology_grant *g = xcalloc(5, sizeof(*g));
	struct topo_re re[3];

	/*
	 * oauth-gateway: topology_declare_gateway(), publishes commands and calendar news; its reply queue,
	 * declared and consumed.
	 */
	memset(re, 0, sizeof(re));
	topo_re_add(&re[TOPO_CONFIGURE], TOPO_EX_CALENDAR_COMMANDS, false);
	topo_re_add(&re[TOPO_WRITE], TOPO_EX_CALENDAR_COMMANDS, false);
	topo_re_add(&re[TOPO_CONFIGURE], TOPO_EX_CALENDAR, false);
	topo_re_add(&re[TOPO_WRITE], TOPO_EX_CALENDAR, false);
	topo_re_add(&re[TOPO_CONFIGURE], TOPO_Q_SERVER_NAMED_PATTERN, true);
	topo_re_add(&re[TOPO_READ], TOPO_Q_SERVER_NAMED_PATTERN, true);
	topo_grant(&g[0], "gateway", "gcal-gateway", "oauth-gateway", re);

	/*
	 * scheduler-worker: topology_declare_scheduler() on both connections; consumes scheduler.leads and
	 * scheduler.commands and scheduler.sync; publishes mail jobs, and retries, dead letters and replies by the default exchange.
	 */
	memset(re, 0, sizeof(re));
	topo_grant_delay_path(re);
	topo_grant_tiers(re, scheduler_retry_queues, TOPO_COUNT(scheduler_retry_queues));
	topo_grant_commands(re);
	topo_grant_sync(re);
	topo_grant_mail(re);
	topo_re_add(&re[TOPO_READ], TOPO_Q_SCHEDULER_LEADS, false);
	topo_re_add(&re[TOPO_READ], TOPO_Q_SCHEDULER_COMMANDS, false);
	topo_re_add(&re[TOPO_READ], TOPO_Q_SCHEDULER_SYNC, false);
	topo_re_add(&re[TOPO_WRITE], TOPO_EX_MAIL, false);
	topo_re_add(&re[TOPO_WRITE], TOPO_EX_DEFAULT_PERMISSION, false);
	topo_grant(&g[1], "scheduler", "gcal-scheduler", "scheduler-worker", re);

	/* mailer-worker: topology_declare_mailer() on both connections; consumes mailer.jobs; retries and dead letters. */
	memset(re, 0, sizeof(re));
	topo_grant_mail(re);
	topo_grant_tiers(re, mailer_retry_queues, TOPO_COUNT(mailer_retry_queues));
	topo_re_add(&re[TOPO_READ], TOPO_Q_MAILER_JOBS, false);
	topo_re_add(&re[TOPO_WRITE], TOPO_EX_DEFAULT_PERMISSION, false);
	topo_grant(&g[2], "mailer", "gcal-mailer", "mailer-worker", re);

	/* The platform's webhook: topology_declare_webhook_side(), publishes lead.analyzed. */
	memset(re, 0, sizeof(re));
	topo_re_add(&re[TOPO_CONFIGURE], TOPO_EX_LEADS, false);
	topo_re_add(&re[TOPO_WRITE], TOPO_EX_LEADS, false);
	topo_grant(&g[3], "webhook", "gcal-webhook", "the platform's webhook", re);

	/*
	 * gcalctl: publishes leads and calendar news (a forced resync); lists dead letters (basic.get; its
	 * passive declares need no permission) and replays them by the default exchange.
	 */
	memset(re, 0, sizeof(re));
	topo_re_add(&re[TOPO_WRITE], TOPO_EX_LEADS, false);
	topo_re_add(&re[TOPO_WRITE], TOPO_EX_CALENDAR, false);
	topo_re_add(&re[TOPO_WRITE], TOPO_EX_DEFAULT_PERMISSION, false);
	topo_re_add(&re[TOPO_READ], TOPO_Q_SCHEDULER_DEAD, false);
	topo_re_add(&re[TOPO_READ], TOPO_Q_MAILER_DEAD, false);
	topo_grant(&g[4], "ops", "gcal-ops", "gcalctl", re);

	*out = g;
	return 5;
}

void topology_grants_free(struct topology_grant *grants, size_t n)
{
	if (grants == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		free(grants[i].configure);
		free(grants[i].write);
		free(grants[i].read);
	}
	free(grants);
}
