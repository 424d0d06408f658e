/*
 * mailjob: mail jobs for the mailer (proto/messages/mail.job.schema.json).
 *
 * Jobs are published only after the change they report is committed, with a
 * message_id derived from the change itself (meeting, kind, iCalendar
 * sequence), so a job published twice after a crash or redelivery is one
 * mail: the mailer drops the duplicate.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cJSON.h>

#include "log.h"
#include "scheduler.h"
#include "topology.h"
#include "xmalloc.h"

void mailjob_publish(struct scheduler *s, const struct mailjob *job, mq_confirm_cb done, void *arg)
{
	cJSON *body = cJSON_CreateObject();
	char *text, *message_id, *routing_key;
	struct mq_message m = { 0 };
	struct mq_header trace = { "x-trace-id", job->trace };

	cJSON_AddStringToObject(body, "kind", job->kind);
	cJSON_AddStringToObject(body, "user_id", job->user_id);
	if (job->meeting_id != NULL)
		cJSON_AddStringToObject(body, "meeting_id", job->meeting_id);
	if (job->previous_meeting_id != NULL)
		cJSON_AddStringToObject(body, "previous_meeting_id", job->previous_meeting_id);
	if (job->lead_analytics_id != NULL)
		cJSON_AddStringToObject(body, "lead_analytics_id", job->lead_analytics_id);
	cJSON_AddNumberToObject(body, "sequence", job->sequence);
	if (job->reason != NULL)
		cJSON_AddStringToObject(body, "reason", job->reason);
	text = cJSON_PrintUnformatted(body);
	cJSON_Delete(body);

	if (job->meeting_id != NULL) {
		message_id = xasprintf("meeting:%s:%s:%d", job->meeting_id, job->kind, job->sequence);
		routing_key = xasprintf("mail.meeting.%s", job->kind);
	} else if (job->lead_analytics_id != NULL) {
		/* A lead is booked automatically at most once, so it has at most one such mail. */
		message_id = xasprintf("lead:%s:%s", job->lead_analytics_id, job->kind);
		routing_key = xasprintf("mail.lead.%s", job->kind);
	} else {
		message_id = xasprintf("disconnected:%s:%lld", job->user_id, (long long)job->disconnected_at);
		routing_key = xstrdup("mail.calendar.disconnected");
	}
	m.exchange = TOPO_EX_MAIL;
	m.routing_key = routing_key;
	m.body = text;
	m.body_len = strlen(text);
	m.content_type = "application/json";
	m.message_id = message_id;
	m.type = "mail.job";
	m.timestamp = (int64_t)time(NULL);
	m.mandatory = true;
	if (job->trace != NULL) {
		m.headers = &trace;
		m.nheaders = 1;
	}
	if (mq_publish(s->env.publisher, &m, done, arg) < 0) {
		log_warn("could not publish a mail job", LOG_STR("message_id", message_id));
		done(MQ_CONFIRM_LOST, arg);
	}
	free(message_id);
	free(routing_key);
	cJSON_free(text);
}
