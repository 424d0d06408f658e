/*
 * Unit tests of the scheduler's calevent module: the title format and
 * description template of docs/booking.md, event ids Google accepts, and the event body.
 */
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "calevent.h"
#include "tap.h"

static const char *jstr(const cJSON *o, const char *path1, const char *path2)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, path1);

	if (path2 != NULL)
		v = cJSON_GetObjectItemCaseSensitive(v, path2);
	return cJSON_GetStringValue(v);
}

static void test_title(void)
{
	struct {
		const char *name, *company, *want;
	} cases[] = {
		{ "John Smith", "TechCorp", "John Smith + TechCorp + Demo" },
		{ NULL, NULL, "Lead + Demo" },
		{ "", "", "Lead + Demo" },
		{ "  Jane  ", NULL, "Jane + Demo" },
		{ NULL, "Acme", "Lead + Acme + Demo" },
		{ "   ", "  \t", "Lead + Demo" },
		{ "Evil\r\nBcc: x@y.z", "Co", "Evil  Bcc: x@y.z + Co + Demo" },
		{ "Zoë", "Société Générale", "Zoë + Société Générale + Demo" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		char *t = calevent_title(cases[i].name, cases[i].company);

		CHECK_STR(t, cases[i].want, "title for (%s, %s)", cases[i].name ? cases[i].name : "NULL",
			  cases[i].company ? cases[i].company : "NULL");
		free(t);
	}
	{
		char name[700];
		char *t;

		memset(name, 'a', sizeof(name) - 3);
		memcpy(name + sizeof(name) - 3, "\xc3\xa9", 3);
		name[495] = '\xc3';
		name[496] = '\xa9';
		t = calevent_title(name, "Co");
		CHECK(strlen(t) <= 500, "a long title is cut to 500 bytes");
		CHECK(((unsigned char)t[strlen(t) - 1] & 0xc0) != 0xc0, "without leaving half a UTF-8 sequence");
		free(t);
	}
}

static void test_description(void)
{
	struct lead_facts lead = {
		.name = "John Smith",
		.company = "TechCorp",
		.phone = "+919876543210",
		.status_tag = "Hot",
		.reasoning_json = "{\"intent\":\"High\",\"budget\":\"Approved\"}",
		.summary = "Wants a demo next week",
		.recording_url = "https://rec.example.com/1.mp3",
		.transcript_url = "https://app.example.com/calls/1",
	};
	char *d = calevent_description(&lead);

	CHECK(strncmp(d, "\xf0\x9f\x8e\xaf Demo Meeting with John Smith\n", 33) == 0, "opens with the plan's heading");
	CHECK(strstr(d, "- Lead Status: Hot\n- Phone: +919876543210\n- Company: TechCorp\n") != NULL, "call details");
	CHECK(strstr(d, "AI Analysis:\n- intent: High\n- budget: Approved\n") != NULL, "reasoning object as lines");
	CHECK(strstr(d, "Call Summary:\nWants a demo next week\n") != NULL, "summary");
	CHECK(strstr(d, "- Recording: https://rec.example.com/1.mp3\n") != NULL, "recording link");
	CHECK(strstr(d, "- Transcript: View Full Transcript: https://app.example.com/calls/1\n") != NULL,
	      "transcript link");
	CHECK(strstr(d, "---\nScheduled via AI Calling Agent Platform") != NULL, "footer");
	free(d);

	memset(&lead, 0, sizeof(lead));
	lead.reasoning_json = "\"Plain reasoning\"";
	d = calevent_description(&lead);
	CHECK(strstr(d, "Demo Meeting with Lead\n") != NULL, "missing name reads Lead");
	CHECK(strstr(d, "- Company: Not provided\n") != NULL, "missing company");
	CHECK(strstr(d, "AI Analysis:\nPlain reasoning\n") != NULL, "string reasoning");
	CHECK(strstr(d, "- Recording: Not available\n") != NULL, "missing recording");
	CHECK(strstr(d, "- Transcript: [View Full Transcript]\n") != NULL, "transcript placeholder");
	free(d);
}

static void test_ids(void)
{
	char id[80];

	CHECK_INT(calevent_id_for("5F0C7B9E-2B1F-4C55-9A43-7D8F1B2A3C4D", 0, id, sizeof(id)), 0, "UUID accepted");
	CHECK_STR(id, "lead5f0c7b9e2b1f4c559a437d8f1b2a3c4dg0", "id is lead + hex + generation");
	for (const char *p = id; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'v')))
			CHECK(0, "character '%c' is outside base32hex", *p);
	CHECK(strlen(id) >= 5 && strlen(id) <= 1024, "length within Google's 5-1024");
	calevent_id_for("5f0c7b9e-2b1f-4c55-9a43-7d8f1b2a3c4d", 3, id, sizeof(id));
	CHECK_STR(id, "lead5f0c7b9e2b1f4c559a437d8f1b2a3c4dg3", "a later generation gets its own id");
	CHECK_INT(calevent_id_for("not-a-uuid", 0, id, sizeof(id)), -1, "non-UUID refused");
	CHECK_INT(calevent_id_for("5f0c7b9e-2b1f-4c55-9a43-7d8f1b2a3c4", 0, id, sizeof(id)), -1, "short UUID refused");
	CHECK_INT(calevent_id_for("5f0c7b9e-2b1f-4c55-9a43-7d8f1b2a3c4d", 0, id, 10), -1, "small buffer refused");
}

static void test_email(void)
{
	char *e = calevent_clean_email("  John.Smith@Example.COM ");

	CHECK_STR(e, "john.smith@example.com", "trimmed and lower-cased");
	free(e);
	CHECK(calevent_clean_email("john") == NULL, "no @");
	CHECK(calevent_clean_email("a@b") == NULL, "no dot in domain");
	CHECK(calevent_clean_email("a@@b.com") == NULL, "two @");
	CHECK(calevent_clean_email("a b@c.com") == NULL, "space");
	CHECK(calevent_clean_email("a@c.com\r\nBcc: x@y.com") == NULL, "header injection");
	CHECK(calevent_clean_email("<a@c.com>") == NULL, "angle brackets");
	CHECK(calevent_clean_email("") == NULL && calevent_clean_email(NULL) == NULL, "empty");
}

static void test_body(void)
{
	struct calevent_spec spec = {
		.event_id = "lead5f0c7b9e2b1f4c559a437d8f1b2a3c4dg0",
		.title = "John Smith + TechCorp + Demo",
		.description = "desc",
		.start_s = 1758195000,
		.offset_s = 19800,
		.duration_minutes = 30,
		.time_zone = "Asia/Kolkata",
		.attendee_email = "john@example.com",
		.attendee_name = "John Smith",
		.lead_analytics_id = "5f0c7b9e-2b1f-4c55-9a43-7d8f1b2a3c4d",
		.generation = 0,
		.meet_request_id = "lead5f0c7b9e2b1f4c559a437d8f1b2a3c4dg0-c0",
	};
	cJSON *ev = calevent_build(&spec);

	CHECK_STR(jstr(ev, "id", NULL), spec.event_id, "id");
	CHECK_STR(jstr(ev, "summary", NULL), spec.title, "summary");
	CHECK_STR(jstr(ev, "start", "dateTime"), "2025-09-18T17:00:00+05:30", "start keeps the offset");
	CHECK_STR(jstr(ev, "end", "dateTime"), "2025-09-18T17:30:00+05:30", "end is 30 minutes later");
	CHECK_STR(jstr(ev, "start", "timeZone"), "Asia/Kolkata", "IANA zone beside the time");
	CHECK_STR(jstr(cJSON_GetArrayItem(cJSON_GetObjectItem(ev, "attendees"), 0), "email", NULL),
		  "john@example.com", "attendee");
	CHECK_STR(jstr(cJSON_GetObjectItem(ev, "extendedProperties"), "private", "lead_analytics_id"),
		  spec.lead_analytics_id, "lead id in private extended properties");
	CHECK_STR(jstr(cJSON_GetObjectItem(ev, "conferenceData"), "createRequest", "requestId"), spec.meet_request_id,
		  "Meet request id");
	cJSON_Delete(ev);

	spec.meet_request_id = NULL;
	ev = calevent_build(&spec);
	CHECK(cJSON_GetObjectItem(ev, "conferenceData") == NULL, "no Meet request when off");
	cJSON_Delete(ev);

	spec.start_s += 86400;
	spec.offset_s = -14400;
	ev = calevent_build_move(&spec);
	CHECK_STR(jstr(ev, "start", "dateTime"), "2025-09-19T07:30:00-04:00", "move: new start");
	CHECK_STR(jstr(ev, "end", "dateTime"), "2025-09-19T08:00:00-04:00", "move: new end");
	CHECK(cJSON_GetObjectItem(ev, "summary") == NULL, "move patches only the times");
	cJSON_Delete(ev);
}

/* calevent_read_when() on an EventDateTime written as JSON text: the instant, or -1. */
static long long when(const char *json, const char *zone)
{
	cJSON *j = cJSON_Parse(json);
	int64_t t = -1;
	int rc = calevent_read_when(j, zone, &t);

	cJSON_Delete(j);
	return rc == 0 ? (long long)t : -1;
}

static void test_read_when(void)
{
	/* 2099-01-01T00:00:00Z */
	const long long y2099 = 4070908800LL;

	CHECK(when("{\"dateTime\":\"2099-01-01T05:30:00+05:30\"}", "UTC") == y2099, "a dateTime is its instant");
	CHECK(when("{\"dateTime\":\"2099-01-01T00:00:00Z\",\"timeZone\":\"Asia/Kolkata\"}", "UTC") == y2099,
	      "whatever offset it is written in");
	CHECK(when("{\"dateTime\":\"2099-01-01T05:30:00\",\"timeZone\":\"Asia/Kolkata\"}", "UTC") == y2099,
	      "without an offset, wall time in its own timeZone");
	CHECK(when("{\"dateTime\":\"2099-01-01T05:30:00\"}", "Asia/Kolkata") == y2099,
	      "without either, wall time in the calendar's zone");
	CHECK(when("{\"date\":\"2099-01-01\"}", "Asia/Kolkata") == y2099 - 19800,
	      "an all-day event starts at midnight in the calendar's zone");
	CHECK(when("{\"date\":\"2099-01-01\"}", "UTC") == y2099, "UTC midnight in UTC");
	CHECK(when("{\"date\":\"2099-02-30\"}", "UTC") == -1, "a date that does not exist");
	CHECK(when("{\"date\":\"2099-01-01T00:00\"}", "UTC") == -1, "a date must be a date alone");
	CHECK(when("{\"date\":\"2099-01-01\"}", "Nowhere/Atlantis") == -1, "an unknown zone");
	CHECK(when("{\"dateTime\":\"soon\"}", "UTC") == -1, "an unreadable dateTime");
	CHECK(when("{}", "UTC") == -1, "neither dateTime nor date");
}

int main(void)
{
	test_read_when();
	test_title();
	test_description();
	test_ids();
	test_email();
	test_body();
	return tap_done();
}
