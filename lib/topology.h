/*
 * topology: the project's AMQP names and the one place their arguments live.
 *
 * RabbitMQ refuses (406) to redeclare a queue with other arguments, so every
 * service declares what it needs through these functions, from its
 * on_connect, and they all agree by construction. The workers declare the
 * queues they consume (the scheduler also the mail path, so mail published
 * before the mailer first starts is kept); a service that only publishes
 * (the gateway, the webhook) declares only the exchange it publishes to, as
 * its broker user may do no more (see topology_grants()). Until a scheduler
 * has started once on a broker, commands and leads have no queue yet: the
 * gateway's mandatory commands come back (503) and the webhook's leads are
 * unroutable. The names are a contract with the platform's webhook and with
 * operators (docs/architecture.md, "AMQP topology"): lead.analyzed goes to
 * the `leads` exchange, waits in `scheduler.delay` for SCHEDULE_DELAY_MS,
 * and dead-letters through the `scheduler` exchange into `scheduler.leads`.
 * Every queue that holds work is a quorum queue with at-least-once
 * dead-lettering, reject-publish overflow and a delivery limit of 20;
 * poison messages and exhausted retries end in `scheduler.dead` or
 * `mailer.dead`.
 *
 * Retries wait in tier queues, one fixed TTL each (never per-message
 * expirations, which RabbitMQ honours only at the head of a queue), that
 * dead-letter back to the work queue through the default exchange. A
 * consumer publishes a retry to the default exchange with the tier's queue
 * name as routing key; together the tiers span more than 15 minutes.
 */
#ifndef TOPOLOGY_H
#define TOPOLOGY_H

#include <stddef.h>

#include "mq.h"
#include "retry.h"

/* Exchanges. */
#define TOPO_EX_LEADS			"leads"			/* topic; the webhook publishes here */
#define TOPO_EX_SCHEDULER		"scheduler"		/* direct; the delay queue dead-letters here */
#define TOPO_EX_CALENDAR_COMMANDS	"calendar.commands"	/* direct; the gateway's meeting commands */
#define TOPO_EX_MAIL			"mail"			/* topic; mail jobs */
#define TOPO_EX_CALENDAR		"calendar"		/* topic; the gateway's news of users' calendars */

/* Queues. */
#define TOPO_Q_SCHEDULER_DELAY		"scheduler.delay"
#define TOPO_Q_SCHEDULER_LEADS		"scheduler.leads"
#define TOPO_Q_SCHEDULER_COMMANDS	"scheduler.commands"
#define TOPO_Q_SCHEDULER_SYNC		"scheduler.sync"
#define TOPO_Q_SCHEDULER_DEAD		"scheduler.dead"
#define TOPO_Q_MAILER_JOBS		"mailer.jobs"
#define TOPO_Q_MAILER_DEAD		"mailer.dead"

/* Routing keys. */
#define TOPO_RK_LEAD_ANALYZED		"lead.analyzed"
#define TOPO_RK_LEAD_READY		"lead.ready"
#define TOPO_RK_MEETING_CREATE		"meeting.create"
#define TOPO_RK_MEETING_RESCHEDULE	"meeting.reschedule"
#define TOPO_RK_MEETING_CANCEL		"meeting.cancel"
#define TOPO_RK_MEETING_AVAILABILITY	"meeting.availability"	/* a read: busy and free time */
#define TOPO_RK_MAIL_ALL		"mail.#"
#define TOPO_RK_CALENDAR_CHANGED	"calendar.changed"	/* a push from Google: sync this user */
#define TOPO_RK_CALENDAR_CONNECTED	"calendar.connected"	/* a user connected: open a channel, sync */
#define TOPO_RK_CALENDAR_ALL		"calendar.*"

/* The default exchange as RabbitMQ names it in permissions (retries, dead letters and replies go through it). */
#define TOPO_EX_DEFAULT_PERMISSION	"amq.default"
/* The names RabbitMQ gives server-named queues (the gateway's private reply queue). */
#define TOPO_Q_SERVER_NAMED_PATTERN	"amq\\.gen-.*"

/* x-delivery-limit of every work queue: a backstop against crash loops. */
#define TOPO_DELIVERY_LIMIT 20

/*
 * Everything the scheduler consumes and publishes to: the delay path (with
 * x-message-ttl = delay_ms), scheduler.leads, its retry tiers,
 * scheduler.commands, scheduler.dead, the calendar exchange with
 * scheduler.sync, and the mail exchange with mailer.jobs
 * and mailer.dead, so mail published before the mailer first starts is kept.
 * 0 or -1 (reconnect later); a 406 exits the process (see mq.h).
 */
int topology_declare_scheduler(struct mq *mq, long delay_ms);
/* The mail exchange, mailer.jobs, its retry tiers and mailer.dead. */
int topology_declare_mailer(struct mq *mq);
/* The calendar.commands and calendar exchanges (the scheduler declares and binds their queues). */
int topology_declare_gateway(struct mq *mq);
/* What a publisher of lead.analyzed (the webhook, test tools) declares: the leads exchange. */
int topology_declare_webhook_side(struct mq *mq);

/*
 * *m (zeroed here) as calendar news is published (proto/messages/
 * calendar.changed.schema.json): to the calendar exchange under routing_key
 * (also its type), body_text as JSON, persistent and mandatory, stamped
 * now. The strings stay the caller's and must outlive the publish call.
 */
void topology_calendar_message(struct mq_message *m, const char *routing_key, const char *body_text,
			       const char *message_id);

/*
 * Retry tiers, shortest wait first. Each returns the number of tiers and
 * points *ttl_ms (when not NULL) at their TTLs in milliseconds (static).
 */
size_t topology_scheduler_retry_tiers(const long **ttl_ms);
size_t topology_mailer_retry_tiers(const long **ttl_ms);
/* Queue name of tier n, counting from 1 as the names do ("scheduler.retry.1"); NULL when out of range. Static. */
const char *topology_scheduler_retry_queue(size_t n);
const char *topology_mailer_retry_queue(size_t n);
/* The tiers and dead-letter queue as lib/retry wants them (static strings). */
void topology_scheduler_retry_policy(struct retry_policy *policy);
void topology_mailer_retry_policy(struct retry_policy *policy);

/*
 * Broker users, one per service, each allowed exactly what that service
 * declares (configure), publishes to and binds queues of (write), consumes
 * and binds exchanges of (read) in the functions above, and nothing else.
 * RabbitMQ checks every declare, bind, publish and consume against these
 * regular expressions, so a service's credentials cannot publish where that
 * service does not (another service's commands, leads, mail). The regexes
 * are anchored alternations of the exact names above, built here so they
 * cannot drift from the topology. deploy/ creates these users
 * (`gcalctl broker-users`, docs/operations.md); the tests run every service
 * under its own.
 *
 *   gateway    oauth-gateway: publishes calendar.commands and calendar, consumes its reply queue
 *   scheduler  scheduler-worker: consumes leads, commands and sync; publishes mail, retries, replies, dead letters
 *   mailer     mailer-worker: consumes mail jobs; publishes its retries and dead letters
 *   webhook    the platform's webhook: publishes lead.analyzed (and declares the leads exchange)
 *   ops        gcalctl: publishes leads and calendar news, reads and replays dead letters
 */
struct topology_grant {
	const char *role;	/* "gateway", "scheduler", "mailer", "webhook", "ops" */
	const char *user;	/* the broker user deploy/ makes for it: "gcal-" + role */
	const char *who;	/* what connects as it */
	char *configure;	/* RabbitMQ permission regexes; "^$" grants nothing */
	char *write;
	char *read;
};

/* Every role's grant, in the order above; *out is freed with topology_grants_free(). */
size_t topology_grants(struct topology_grant **out);
void topology_grants_free(struct topology_grant *grants, size_t n);

#endif
