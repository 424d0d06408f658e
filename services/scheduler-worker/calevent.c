/*
 * calevent: titles, descriptions and Calendar event bodies (see calevent.h).
 */
#include "calevent.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "datetime.h"
#include "ids.h"
#include "leadfacts.h"
#include "xmalloc.h"

#define EVENT_TITLE_MAX 500

/* A copy of s without surrounding white space, or NULL when nothing is left. */
static char *calevent_trimmed(const char *s)
{
	size_t len;

	if (s == NULL)
		return NULL;
	while (isspace((unsigned char)*s))
		s++;
	len = strlen(s);
	while (len > 0 && isspace((unsigned char)s[len - 1]))
		len--;
	return len ? xstrndup(s, len) : NULL;
}

/* Cut s to at most max bytes without splitting a UTF-8 sequence. */
static void calevent_cut_utf8(char *s, size_t max)
{
	size_t len = strlen(s);

	if (len <= max)
		return;
	while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
		max--;
	s[max] = '\0';
}

char *calevent_title(const char *name, const char *company)
{
	char *n = calevent_trimmed(name);
	char *c = calevent_trimmed(company);
	char *title = c ? xasprintf("%s + %s + Demo", n ? n : "Lead", c) : xasprintf("%s + Demo", n ? n : "Lead");

	free(n);
	free(c);
	/* Names from a call may carry line breaks; a title is one line. */
	for (char *p = title; *p; p++)
		if (*p == '\r' || *p == '\n' || *p == '\t')
			*p = ' ';
	calevent_cut_utf8(title, EVENT_TITLE_MAX);
	return title;
}

static const char *calevent_or(const char *s, const char *fallback)
{
	return s != NULL && *s != '\0' ? s : fallback;
}

char *calevent_description(const struct lead_facts *lead)
{
	char *name = calevent_trimmed(lead->name);
	char *reasoning = leadfacts_reasoning(lead->reasoning_json);
	char *transcript = lead->transcript_url && *lead->transcript_url
				   ? xasprintf("View Full Transcript: %s", lead->transcript_url)
				   : xstrdup("[View Full Transcript]");
	char *out = xasprintf("\xf0\x9f\x8e\xaf Demo Meeting with %s\n"
			      "\n"
			      "\xf0\x9f\x93\x9e Call Details:\n"
			      "- Lead Status: %s\n"
			      "- Phone: %s\n"
			      "- Company: %s\n"
			      "\n"
			      "\xf0\x9f\xa4\x96 AI Analysis:\n"
			      "%s\n"
			      "\n"
			      "\xf0\x9f\x93\x9d Call Summary:\n"
			      "%s\n"
			      "\n"
			      "\xf0\x9f\x94\x97 Resources:\n"
			      "- Recording: %s\n"
			      "- Transcript: %s\n"
			      "\n"
			      "---\n"
			      "Scheduled via AI Calling Agent Platform",
			      name ? name : "Lead", calevent_or(lead->status_tag, "Not provided"),
			      calevent_or(lead->phone, "Not provided"), calevent_or(lead->company, "Not provided"),
			      calevent_or(reasoning, "Not provided"),
			      calevent_or(lead->summary, "Not provided"), calevent_or(lead->recording_url, "Not available"),
			      transcript);

	free(name);
	free(reasoning);
	free(transcript);
	return out;
}

int calevent_id_for(const char *lead_id, int generation, char *out, size_t size)
{
	char hex[33];
	int n = 0;

	if (!ids_is_uuid(lead_id) || generation < 0)
		return -1;
	for (const char *p = lead_id; *p; p++)
		if (*p != '-')
			hex[n++] = (char)tolower((unsigned char)*p);
	hex[n] = '\0';
	n = snprintf(out, size, "lead%sg%d", hex, generation);
	return n > 0 && (size_t)n < size ? 0 : -1;
}

char *calevent_clean_email(const char *raw)
{
	char *e = calevent_trimmed(raw);
	const char *at;

	if (e == NULL)
		return NULL;
	for (char *p = e; *p; p++) {
		if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '<' || *p == '>' || *p == ',' || *p == ';') {
			free(e);
			return NULL;
		}
		*p = (char)tolower((unsigned char)*p);
	}
	at = strchr(e, '@');
	if (at == NULL || at == e || strchr(at + 1, '@') != NULL || strchr(at, '.') == NULL ||
	    at[strlen(at) - 1] == '.' || strlen(e) > 254) {
		free(e);
		return NULL;
	}
	return e;
}

static cJSON *calevent_time(int64_t t, int offset_s, const char *zone)
{
	cJSON *o = cJSON_CreateObject();
	char buf[40];

	datetime_format(t, offset_s, buf, sizeof(buf));
	cJSON_AddStringToObject(o, "dateTime", buf);
	cJSON_AddStringToObject(o, "timeZone", zone);
	return o;
}

static void calevent_add_times(cJSON *ev, const struct calevent_spec *spec)
{
	int64_t end = spec->start_s + (int64_t)spec->duration_minutes * 60;

	cJSON_AddItemToObject(ev, "start", calevent_time(spec->start_s, spec->offset_s, spec->time_zone));
	cJSON_AddItemToObject(ev, "end", calevent_time(end, spec->offset_s, spec->time_zone));
}

cJSON *calevent_build(const struct calevent_spec *spec)
{
	cJSON *ev = cJSON_CreateObject();
	cJSON *attendees = cJSON_AddArrayToObject(ev, "attendees");
	cJSON *attendee = cJSON_CreateObject();
	cJSON *ext = cJSON_AddObjectToObject(ev, "extendedProperties");
	cJSON *priv = cJSON_AddObjectToObject(ext, "private");
	cJSON *reminders = cJSON_AddObjectToObject(ev, "reminders");
	char gen[16];

	cJSON_AddStringToObject(ev, "id", spec->event_id);
	cJSON_AddStringToObject(ev, "summary", spec->title);
	cJSON_AddStringToObject(ev, "description", spec->description);
	calevent_add_times(ev, spec);
	cJSON_AddStringToObject(attendee, "email", spec->attendee_email);
	if (spec->attendee_name != NULL && *spec->attendee_name != '\0')
		cJSON_AddStringToObject(attendee, "displayName", spec->attendee_name);
	cJSON_AddItemToArray(attendees, attendee);
	cJSON_AddBoolToObject(reminders, "useDefault", 1);
	snprintf(gen, sizeof(gen), "%d", spec->generation);
	cJSON_AddStringToObject(priv, "lead_analytics_id", spec->lead_analytics_id);
	cJSON_AddStringToObject(priv, "booking_generation", gen);
	cJSON_AddStringToObject(priv, "source", "ai-calling-agent");
	if (spec->meet_request_id != NULL) {
		cJSON *conf = cJSON_AddObjectToObject(ev, "conferenceData");
		cJSON *req = cJSON_AddObjectToObject(conf, "createRequest");
		cJSON *key = cJSON_AddObjectToObject(req, "conferenceSolutionKey");

		cJSON_AddStringToObject(req, "requestId", spec->meet_request_id);
		cJSON_AddStringToObject(key, "type", "hangoutsMeet");
	}
	return ev;
}

cJSON *calevent_build_move(const struct calevent_spec *spec)
{
	cJSON *ev = cJSON_CreateObject();

	calevent_add_times(ev, spec);
	cJSON_AddStringToObject(ev, "status", "confirmed");
	return ev;
}

char *calevent_attendee_email(const struct lead_row *lead)
{
	char *email = calevent_clean_email(lead->contact_email);

	return email != NULL ? email : calevent_clean_email(lead->extracted_email);
}

void calevent_for_lead(const struct lead_row *lead, const char *name_override, const char *transcript_tmpl,
		       char **title, char **description, char **attendee_name)
{
	struct lead_facts facts = lead->facts;
	char *transcript = cfg_transcript_url(transcript_tmpl, lead->call_id);

	if (name_override != NULL)
		facts.name = name_override;
	facts.transcript_url = transcript;
	*title = calevent_title(facts.name, facts.company);
	*description = calevent_description(&facts);
	*attendee_name = facts.name != NULL ? xstrdup(facts.name) : NULL;
	free(transcript);
}

int calevent_read_when(const cJSON *when, const char *zone, int64_t *out)
{
	const char *date_time = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(when, "dateTime"));
	const char *date = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(when, "date"));
	const char *own_zone = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(when, "timeZone"));
	struct datetime dt;
	char midnight[24];

	if (date_time != NULL) {
		if (datetime_parse(date_time, strlen(date_time), &dt) < 0 ||
		    datetime_resolve(&dt, own_zone != NULL && !dt.has_offset ? own_zone : zone) < 0)
			return -1;
	} else if (date != NULL && strlen(date) == 10) {
		/* datetime_parse() refuses a date alone (a demo needs a time); midnight makes it one. */
		snprintf(midnight, sizeof(midnight), "%sT00:00:00", date);
		if (datetime_parse(midnight, strlen(midnight), &dt) < 0 || datetime_resolve(&dt, zone) < 0)
			return -1;
	} else {
		return -1;
	}
	*out = dt.epoch_s;
	return 0;
}
