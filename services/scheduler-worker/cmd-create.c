/*
 * cmd-create: book a meeting for a lead by hand (command.h).
 *
 * The lead's facts make the event as for an automatic booking (booking.c,
 * which also stores the reply with the row); the person may choose the time,
 * the attendee's email and name, and whether to book over busy time.
 */
#include <stdlib.h>
#include <string.h>

#include "busy.h"
#include "cfg.h"
#include "command.h"
#include "db.h"
#include "calevent.h"
#include "leadfacts.h"
#include "leadfacts.h"
#include "log.h"
#include "metrics.h"
#include "scheduler.h"
#include "xmalloc.h"

static const char cmd_create_lead_sql[] =
	"SELECT la.demo_book_datetime, " LEADFACTS_COLUMNS ", u.google_calendar_connected,"
	" COALESCE(u.google_calendar_id, 'primary'), COALESCE(u.google_calendar_timezone, $3),"
	" (SELECT count(*) FROM calendar_meetings m WHERE m.lead_analytics_id = la.id),"
	" EXISTS (SELECT 1 FROM calendar_meetings m WHERE m.lead_analytics_id = la.id AND m.status = 'scheduled'),"
	" EXTRACT(EPOCH FROM now())::bigint"
	" FROM lead_analytics la JOIN users u ON u.id = la.user_id"
	LEADFACTS_JOINS
	" WHERE la.id = $1 AND la.user_id = $2";

enum {
	LC_DATETIME, LC_FACTS, LC_CONNECTED = LC_FACTS + LEADFACTS_NCOLUMNS, LC_CALENDAR, LC_ZONE, LC_MEETINGS,
	LC_ACTIVE, LC_NOW,
};

static void cmd_create_on_booked(const struct booking_result *r, void *arg)
{
	struct command_job *job = arg;
	char *msg;

	if (command_released(job))
		return;
	switch (r->status) {
	case BOOKING_DONE:
		if (r->created)
			metric_inc(job->s->meetings_created);
		log_info("meeting created by command", LOG_STR("meeting", r->meeting_id),
			 LOG_STR("command_id", job->cmd.command_id));
		job->reply = command_reply_new(job, true);
		command_reply_add_json(job->reply, "meeting", r->meeting_json);
		job->result_meeting_id = xstrdup(r->meeting_id);
		job->sequence = r->sequence;
		command_succeeded(job);
		return;
	case BOOKING_NOT_CONNECTED:
	case BOOKING_REVOKED:
		command_fail(job, "not_connected", "Google Calendar is not connected; reconnect it and try again");
		return;
	case BOOKING_CONFLICT:
		command_fail(job, "conflict", "the lead already has a scheduled meeting");
		return;
	case BOOKING_BUSY:
		command_fail_busy(job, "conflict", "the calendar is busy at that time; choose another or book anyway",
				  busy_to_json(r->busy, job->booking.time_zone));
		return;
	case BOOKING_REJECTED:
		msg = xasprintf("Google Calendar refused the event (%s): %s", r->reason, r->detail);
		command_fail(job, "google_rejected", msg);
		free(msg);
		return;
	case BOOKING_TRANSIENT:
		command_retry_or_give_up(job, r->detail ? r->detail : r->reason);
		return;
	}
}

/* The attendee's address: the one given, else the lead's own (calevent_attendee_email()); NULL when none is valid. */
static const char *cmd_create_email(struct command_job *job, const struct lead_row *lr)
{
	if (job->cmd.email_override != NULL) {
		job->email = calevent_clean_email(job->cmd.email_override);
		return job->email == NULL ? "attendee_email is not a valid email address" : NULL;
	}
	job->email = calevent_attendee_email(lr);
	return job->email == NULL ? "the lead has no email address; give attendee_email" : NULL;
}

static void cmd_create_on_lead(const struct db_result *r, void *arg)
{
	struct command_job *job = arg;
	const struct config *cfg = job->s->env.cfg;
	const char *err, *when;
	struct lead_row lr;
	struct booking *b = &job->booking;
	cJSON *meta;

	if (r->status != DB_OK) {
		command_retry_or_give_up(job, r->status == DB_UNAVAILABLE ? "database unavailable" : r->error);
		return;
	}
	if (db_ntuples(r) == 0) {
		command_fail(job, "not_found", "no such lead");
		return;
	}
	if (strcmp(db_value(r, 0, LC_ACTIVE), "t") == 0) {
		command_fail(job, "conflict", "the lead already has a scheduled meeting");
		return;
	}
	if (db_value(r, 0, LC_CONNECTED) == NULL || strcmp(db_value(r, 0, LC_CONNECTED), "t") != 0) {
		command_fail(job, "not_connected", "Google Calendar is not connected; connect it first");
		return;
	}
	job->zone = xstrdup(db_value(r, 0, LC_ZONE));
	when = job->cmd.date_time ? job->cmd.date_time : db_value(r, 0, LC_DATETIME);
	if ((err = command_parse_time(job, when, job->zone, atoll(db_value(r, 0, LC_NOW)))) != NULL) {
		/* Every 400 names its field; without one, the lead's own time was used and dateTime is the way out. */
		char *msg = job->cmd.date_time != NULL
				    ? xasprintf("dateTime: %s", err)
				    : xasprintf("dateTime is needed: the lead's own demo time cannot be used (%s)", err);

		command_fail(job, "invalid", msg);
		free(msg);
		return;
	}
	leadfacts_from_row(r, 0, LC_FACTS, &lr);
	if ((err = cmd_create_email(job, &lr)) != NULL) {
		command_fail(job, "invalid", err);
		return;
	}
	calevent_for_lead(&lr, job->cmd.name_override, cfg->transcript_url, &job->title, &job->description,
			  &job->attendee_name);
	job->call_id = lr.call_id ? xstrdup(lr.call_id) : NULL;
	job->contact_id = lr.contact_id ? xstrdup(lr.contact_id) : NULL;
	job->calendar_id = xstrdup(db_value(r, 0, LC_CALENDAR));
	meta = cJSON_CreateObject();
	cJSON_AddStringToObject(meta, "source", "manual");
	cJSON_AddStringToObject(meta, "command_id", job->cmd.command_id);
	job->metadata = cJSON_PrintUnformatted(meta);
	cJSON_Delete(meta);

	b->user_id = job->cmd.user_id;
	b->lead_id = job->cmd.lead_id;
	b->call_id = job->call_id;
	b->contact_id = job->contact_id;
	b->calendar_id = job->calendar_id;
	b->time_zone = job->zone;
	b->title = job->title;
	b->description = job->description;
	b->attendee_email = job->email;
	b->attendee_name = job->attendee_name;
	b->start_s = job->when.epoch_s;
	b->offset_s = job->when.offset_s;
	b->duration_minutes = (int)cfg->meeting_duration_minutes;
	b->generation = atoi(db_value(r, 0, LC_MEETINGS));
	b->metadata_json = job->metadata;
	b->command_id = job->cmd.command_id;
	b->trace = job->cmd.command_id;
	b->allow_conflict = job->cmd.allow_conflict;
	booking_run(job->s, b, NULL, cmd_create_on_booked, job);
}

static void cmd_create_start(struct command_job *job)
{
	const char *params[] = { job->cmd.lead_id, job->cmd.user_id, job->s->env.cfg->default_timezone };

	db_query(job->s->env.db, cmd_create_lead_sql, 3, params, cmd_create_on_lead, job);
}

const struct command_entry cmd_create_entry = {
	.name = "create",
	.mail_kind = "created",
	.stored = true,
	.start = cmd_create_start,
};
