/*
 * Unit tests of the scheduler's message readers (services/scheduler-worker/
 * message.c): a command is taken only when every member is what the gateway
 * would have sent (tests/e2e/test_security.py shows the same end to end),
 * and a lead only with well-formed ids and optional fields.
 */
#include <stdlib.h>
#include <string.h>

#include "message.h"
#include "tap.h"

#define CMD "\"command_id\":\"0F8FAD5B-D9CB-469F-A165-70867728950E\",\"user_id\":\"7c9e6679-7425-40de-944b-e07fc1f90ae7\""
#define LEAD "\"lead_analytics_id\":\"1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed\""
#define MEETING "\"meeting_id\":\"1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed\""

/* The reason a command is refused, or NULL when it is taken. */
static const char *command(const char *body)
{
	struct message_command m;
	const char *why = NULL;
	int rc = message_parse_command(body, strlen(body), &m, &why);

	message_command_release(&m);
	return rc == 0 ? NULL : why;
}

/* A command read into *m (release it after): 0 or -1. */
static int parse(const char *body, struct message_command *m)
{
	const char *why;

	return message_parse_command(body, strlen(body), m, &why);
}

static const char *lead(const char *body)
{
	struct message_lead m;
	const char *why = NULL;
	int rc = message_parse_lead(body, strlen(body), &m, &why);

	if (rc == 0)
		message_lead_release(&m);
	return rc == 0 ? NULL : why;
}

/* The reason a calendar.changed body is refused, or NULL when taken (*full set then). */
static const char *sync(const char *body, int *full)
{
	struct message_sync m;
	const char *why = NULL;
	int rc = message_parse_sync(body, strlen(body), &m, &why);

	if (rc == 0) {
		*full = m.full;
		CHECK(strcmp(m.user_id, "7c9e6679-7425-40de-944b-e07fc1f90ae7") == 0, "the user id, lower-cased");
		message_sync_release(&m);
	}
	return rc == 0 ? NULL : why;
}

static void test_sync(void)
{
	int full = -1;
	const char *why;

	CHECK(sync("{\"user_id\":\"7C9E6679-7425-40DE-944B-E07FC1F90AE7\"}", &full) == NULL && full == 0,
	      "a sync request names its user");
	CHECK(sync("{\"user_id\":\"7c9e6679-7425-40de-944b-e07fc1f90ae7\",\"channel_id\":"
		   "\"1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed\",\"message_number\":7,\"more\":[1]}", &full) == NULL &&
		      full == 0,
	      "a push's channel and message number, and members the contract does not know");
	CHECK(sync("{\"user_id\":\"7c9e6679-7425-40de-944b-e07fc1f90ae7\",\"full\":true}", &full) == NULL && full == 1,
	      "full asks for a full sync");
	why = sync("{\"user_id\":\"nobody\"}", &full);
	CHECK(why != NULL && strstr(why, "user_id") != NULL, "a user_id that is no UUID is refused");
	why = sync("{\"channel_id\":\"1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed\"}", &full);
	CHECK(why != NULL && strstr(why, "user_id") != NULL, "a request without a user is refused");
	why = sync("{\"user_id\":\"7c9e6679-7425-40de-944b-e07fc1f90ae7\",\"full\":\"yes\"}", &full);
	CHECK(why != NULL && strstr(why, "full") != NULL, "full must be a boolean");
	why = sync("{\"user_id\":\"7c9e6679-7425-40de-944b-e07fc1f90ae7\",\"message_number\":0}", &full);
	CHECK(why != NULL && strstr(why, "message_number") != NULL, "a message number counts from 1");
	why = sync("{\"user_id\":\"7c9e6679-7425-40de-944b-e07fc1f90ae7\",\"channel_id\":5}", &full);
	CHECK(why != NULL && strstr(why, "channel_id") != NULL, "a channel_id that is no string is refused");
	why = sync("\"7c9e6679-7425-40de-944b-e07fc1f90ae7\"", &full);
	CHECK(why != NULL && strstr(why, "JSON object") != NULL, "a body that is no object is refused");
}

static void refused(const char *body, const char *mentions)
{
	const char *why = command(body);

	CHECK(why != NULL && strstr(why, mentions) != NULL, "refused, naming '%s': %s (%s)", mentions, body,
	      why ? why : "taken");
}

int main(void)
{
	struct message_command m;
	const char *why;
	char *big;

	CHECK(command("{\"command\":\"create\"," CMD "," LEAD ",\"date_time\":\"2099-09-18 17:00\","
		      "\"attendee_email\":\"Lead@Example.com\",\"attendee_name\":\"Zo\xc3\xab O'Brien <CTO>\"}") == NULL,
	      "a create as the gateway sends it is taken");
	CHECK(command("{\"command\":\"reschedule\"," CMD "," MEETING ",\"new_date_time\":\"2099-01-01T10:00:00Z\"}") ==
		      NULL,
	      "a reschedule is taken");
	CHECK(command("{\"command\":\"cancel\"," CMD "," MEETING "}") == NULL, "a cancel without a reason is taken");
	CHECK(message_parse_command("{\"command\":\"cancel\"," CMD "," MEETING ",\"reason\":\"line\\none\"}", 200, &m,
				    &why) == 0 &&
		      strcmp(m.command_id, "0f8fad5b-d9cb-469f-a165-70867728950e") == 0 && strcmp(m.reason, "line\none") == 0,
	      "ids come out lower-cased; a reason may hold line breaks");
	message_command_release(&m);

	refused("{\"command\":\"create\"," CMD "," LEAD ",\"attendee_name\":\"Eve\\r\\nBcc: x@evil.example\"}",
		"attendee_name");
	refused("{\"command\":\"create\"," CMD "," LEAD ",\"attendee_name\":\"tab\\there\"}", "attendee_name");
	refused("{\"command\":\"create\"," CMD "," LEAD ",\"attendee_name\":\"del\x7f\"}", "attendee_name");
	refused("{\"command\":\"create\"," CMD "," LEAD ",\"attendee_email\":\"a@b.example\\r\\nBcc: x@evil\"}",
		"attendee_email");
	refused("{\"command\":\"create\"," CMD "," LEAD ",\"attendee_email\":\"a@b.example, c@evil.example\"}",
		"attendee_email");
	refused("{\"command\":\"create\"," CMD "," LEAD ",\"attendee_email\":\"nobody\"}", "attendee_email");
	refused("{\"command\":\"create\"," CMD "," LEAD ",\"date_time\":\"soon\"}", "date_time");
	refused("{\"command\":\"create\"," CMD "," LEAD ",\"date_time\":20990101}", "string");
	refused("{\"command\":\"create\"," CMD "," LEAD ",\"attendee_name\":null}", "string");
	refused("{\"command\":\"create\"," CMD "," LEAD ",\"attendee_phone\":\"1\"}", "takes only");
	refused("{\"command\":\"create\"," CMD "," LEAD "," MEETING "}", "takes only");
	refused("{\"command\":\"create\"," CMD "}", "lead_analytics_id");
	refused("{\"command\":\"cancel\"," CMD "," MEETING ",\"reason\":\"a\",\"reason\":\"b\"}", "twice");
	refused("{\"command\":\"cancel\"," CMD "," MEETING ",\"meeting_id\":\"1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed\"}",
		"twice");
	refused("{\"command\":\"cancel\"," CMD "," LEAD "," MEETING "}", "takes only");
	refused("{\"command\":\"reschedule\"," CMD "," MEETING "}", "new_date_time");
	refused("{\"command\":\"reschedule\"," CMD "," MEETING ",\"new_date_time\":\"2099-02-30T10:00:00Z\"}",
		"new_date_time");
	refused("{\"command\":\"reschedule\"," CMD ",\"meeting_id\":\"x\",\"new_date_time\":\"2099-01-01T10:00:00Z\"}",
		"meeting_id");
	refused("{\"command\":\"drop\"," CMD "}", "command must be");

	/* allow_conflict is the one boolean; availability's span length the one number. */
	CHECK(parse("{\"command\":\"create\"," CMD "," LEAD ",\"allow_conflict\":true}", &m) == 0 &&
		      m.allow_conflict,
	      "a create that may book over busy time");
	message_command_release(&m);
	CHECK(parse("{\"command\":\"reschedule\"," CMD "," MEETING
		    ",\"new_date_time\":\"2099-01-01T10:00:00Z\",\"allow_conflict\":false}",
		    &m) == 0 &&
		      !m.allow_conflict,
	      "a reschedule that may not");
	message_command_release(&m);
	refused("{\"command\":\"create\"," CMD "," LEAD ",\"allow_conflict\":\"true\"}", "true or false");
	refused("{\"command\":\"cancel\"," CMD "," MEETING ",\"allow_conflict\":true}", "takes only");
	CHECK(parse("{\"command\":\"availability\"," CMD ",\"from\":\"2099-07-01T09:00:00+05:30\","
		    "\"to\":\"2099-07-01T13:00:00+05:30\",\"duration_minutes\":45}",
		    &m) == 0 &&
		      m.kind == MESSAGE_AVAILABILITY && m.from_s == 4086559800LL && m.to_s == 4086574200LL &&
		      m.duration_minutes == 45,
	      "an availability read with its range and span length");
	message_command_release(&m);
	refused("{\"command\":\"availability\"," CMD ",\"from\":\"2099-07-01T09:00:00\","
		"\"to\":\"2099-07-01T13:00:00Z\",\"duration_minutes\":30}", "offset");
	refused("{\"command\":\"availability\"," CMD ",\"from\":\"2099-07-01T09:00:00Z\","
		"\"to\":\"2099-08-02T09:00:00Z\",\"duration_minutes\":30}", "31 days");
	refused("{\"command\":\"availability\"," CMD ",\"from\":\"2099-07-01T09:00:00Z\","
		"\"to\":\"2099-07-01T08:00:00Z\",\"duration_minutes\":30}", "after from");
	refused("{\"command\":\"availability\"," CMD ",\"from\":\"2099-07-01T09:00:00Z\","
		"\"to\":\"2099-07-01T10:00:00Z\",\"duration_minutes\":2.5}", "whole number");
	refused("{\"command\":\"availability\"," CMD ",\"from\":\"2099-07-01T09:00:00Z\","
		"\"to\":\"2099-07-01T10:00:00Z\",\"duration_minutes\":\"30\"}", "number");
	refused("{\"command\":\"availability\"," CMD "," MEETING ",\"from\":\"2099-07-01T09:00:00Z\","
		"\"to\":\"2099-07-01T10:00:00Z\",\"duration_minutes\":30}", "takes only");
	refused("[1]", "JSON object");

	big = malloc(2100 + 200);
	strcpy(big, "{\"command\":\"cancel\"," CMD "," MEETING ",\"reason\":\"");
	memset(big + strlen(big), 'r', 2001);
	big[strlen("{\"command\":\"cancel\"," CMD "," MEETING ",\"reason\":\"") + 2001] = '\0';
	strcat(big, "\"}");
	refused(big, "reason");
	big[strlen("{\"command\":\"cancel\"," CMD "," MEETING ",\"reason\":\"") + 2000] = '\0';
	strcat(big, "\"}");
	CHECK(command(big) == NULL, "a reason of exactly 2000 bytes is taken");
	free(big);

	CHECK(lead("{" LEAD ",\"user_id\":\"7c9e6679-7425-40de-944b-e07fc1f90ae7\"}") == NULL, "a lead with its ids");
	CHECK(lead("{" LEAD ",\"user_id\":\"7c9e6679-7425-40de-944b-e07fc1f90ae7\",\"call_id\":"
		   "\"1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed\",\"occurred_at\":\"2025-09-18T10:00:00Z\",\"extra\":1}") == NULL,
	      "with call_id, occurred_at and members the contract does not know");
	why = lead("{" LEAD ",\"user_id\":\"7c9e6679-7425-40de-944b-e07fc1f90ae7\",\"call_id\":\"x\"}");
	CHECK(why != NULL && strstr(why, "call_id") != NULL, "a call_id that is no UUID is refused");
	why = lead("{" LEAD ",\"user_id\":\"7c9e6679-7425-40de-944b-e07fc1f90ae7\",\"occurred_at\":\"2025-09-18 10:00\"}");
	CHECK(why != NULL && strstr(why, "occurred_at") != NULL, "an occurred_at without an offset is refused");
	why = lead("{" LEAD ",\"user_id\":7}");
	CHECK(why != NULL && strstr(why, "UUIDs") != NULL, "a user_id that is no string is refused");
	test_sync();
	return tap_done();
}
