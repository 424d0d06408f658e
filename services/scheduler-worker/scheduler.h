/*
 * scheduler: state shared by the scheduler-worker's modules.
 *
 * main.c wires the process (worker scaffolding, topology, consumers);
 * message.c reads the bodies it consumes; lead.c decides whether an
 * analysed lead is booked and records why not; calevent.c makes the
 * event's title, description and body; booking.c creates the Google event
 * and commits the meeting row; command.c applies the gateway's commands,
 * one cmd-<name>.c each (create, reschedule, cancel, availability);
 * tokens.c hands out valid access tokens; mailjob.c publishes mail jobs;
 * sweep.c sends reminders and "calendar disconnected" mails and completes
 * past meetings; channels.c keeps a push channel open on every connected
 * user's calendar; sync.c follows the users' calendars (Google's changes
 * to the meetings, applied by syncapply.c). Every job is a chain of
 * callbacks on the one event loop;
 * nothing waits.
 */
#ifndef SCHEDULER_H
#define SCHEDULER_H

#include <stdbool.h>
#include <stdint.h>

#include <cJSON.h>

#include "cfg.h"
#include "mq.h"
#include "retry.h"
#include "worker.h"

struct event_base;
struct db;
struct google;
struct vault;
struct ratelimit;
struct tokens;
struct worker;
struct metric;
struct sweep;
struct channels;
struct syncer;

struct scheduler {
	struct worker_env env;	/* cfg, base, db, consumer, publisher, retry (lib/worker.h) */
	struct google *google;
	struct vault *vault;
	struct ratelimit *rate;
	struct tokens *tokens;
	struct sweep *sweep;
	struct channels *channels;
	struct syncer *syncer;
	unsigned in_flight;

	struct metric *leads_consumed;
	struct metric *meetings_created;
	struct metric *meetings_rescheduled;
	struct metric *meetings_cancelled;
	struct metric *commands;
};

/* Monotonic milliseconds, for rate limits and latencies. */
int64_t scheduler_now_ms(void);

/* Settle a finished job: count it out and release the delivery. */
void scheduler_job_done(struct scheduler *s, struct mq_delivery *d);

/*
 * worker_closing(): a job's callback that sees it releases the job unsettled
 * and starts nothing (lib/worker.h); the broker redelivers the message.
 */
bool scheduler_closing(const struct scheduler *s);

/* lead.c: handle one lead.analyzed delivery (ownership of d passes). */
void lead_handle(struct scheduler *s, struct mq_delivery *d);

/* command.c: handle one meeting command delivery (ownership of d passes). */
void command_handle(struct scheduler *s, struct mq_delivery *d);

/*
 * sweep.c: the periodic reminder/completion sweep. sweep_start() starts it;
 * sweep_stop() stops its timer (what runs finishes); sweep_free() frees it
 * once nothing can call back (NULL is fine).
 */
struct sweep *sweep_start(struct scheduler *s);
void sweep_stop(struct sweep *sw);
void sweep_free(struct sweep *sw);
/* Run the sweep soon (a grant was just revoked: its mail should not wait a full period). */
void sweep_kick(struct sweep *sw);
/* Sweep operations still running (the graceful stop waits for them). */
unsigned sweep_in_flight(const struct sweep *sw);

/*
 * channels.c: the push channels' periodic pass (open, renew, replace, stop;
 * docs/sync.md, "Channels"), as sweep_* above.
 */
struct channels *channels_start(struct scheduler *s);	/* starts its timer; runs a first pass soon */
void channels_stop(struct channels *ch);		/* stops the timer; what runs finishes */
void channels_free(struct channels *ch);		/* NULL is fine */
void channels_kick(struct channels *ch);		/* run a pass soon (a user just connected) */
unsigned channels_in_flight(const struct channels *ch);

/*
 * sync.c: two-way sync (docs/sync.md). sync_start() starts its sweep;
 * sync_stop() stops the sweep's timer (runs finish, or end at their next
 * page); sync_free() frees it once nothing can call back (NULL is fine).
 */
struct syncer *sync_start(struct scheduler *s);
void sync_stop(struct syncer *sy);
void sync_free(struct syncer *sy);
/* Runs and sweep queries still going (the graceful stop waits for them). */
unsigned sync_in_flight(const struct syncer *sy);
/* Handle one scheduler.sync delivery (calendar.changed, calendar.connected; ownership of d passes). */
void sync_handle(struct scheduler *s, struct mq_delivery *d);

/* mailjob.c: publish a mail job (see proto/messages/mail.job.schema.json). */
struct mailjob {
	const char *kind;		/* created, rescheduled, cancelled, declined, reminder, disconnected, conflict */
	const char *user_id;
	const char *meeting_id;		/* NULL for disconnected and conflict */
	const char *previous_meeting_id;
	const char *lead_analytics_id;
	int sequence;			/* declined: the meeting's attendee_response_changes */
	const char *reason;
	int64_t disconnected_at;	/* disconnected: the unix time that makes its id unique */
	const char *trace;		/* message id of what caused it, for logs */
};
void mailjob_publish(struct scheduler *s, const struct mailjob *job, mq_confirm_cb done, void *arg);

#endif
