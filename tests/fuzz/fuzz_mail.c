/*
 * fuzz_mail: the mail and iCalendar builders fed hostile lead data.
 *
 * Everything about a lead is text a stranger said on a phone call and a
 * language model wrote down. Input: a selector byte (the kind, then what
 * the meeting's check found, then whether a Google change made the row), then
 * NUL-separated name, company, phone, status tag, reasoning (JSON or not),
 * summary, recording URL, call id, meeting title, description, attendee
 * name, attendee address, cancellation reason, zone, busy spans (the
 * conflict mail's JSON, and a meeting's conflict detail). Invariants: the
 * subject and the mailbox header are one line (or RFC 2047 folding); the
 * HTML carries only the templates' own tags; the iCalendar part parses with
 * libical as one event with at most one organizer and one attendee.
 */
#include "fuzz.h"

#include <ctype.h>
#include <strings.h>

#include <libical/ical.h>

#include "cfg.h"
#include "content.h"
#include "header.h"

enum { F_NAME, F_COMPANY, F_PHONE, F_STATUS, F_REASONING, F_SUMMARY, F_RECORDING, F_CALL, F_TITLE, F_DESC,
       F_ATTENDEE_NAME, F_ATTENDEE_EMAIL, F_REASON, F_ZONE, F_BUSY, F_COUNT };

static const char *const fuzz_tags[] = {
	"a", "body", "br", "div", "h2", "h3", "head", "hr", "html", "li", "meta", "p", "s", "span", "strong",
	"table", "td", "tr", "ul",
};

/* One header line: a CR only as the CRLF of folding, which continues with white space. */
static void fuzz_one_line(const char *what, const char *v)
{
	for (const char *p = v; *p; p++) {
		if ((*p == '\r' && (p[1] != '\n' || (p[2] != ' ' && p[2] != '\t'))) || (*p == '\n' && (p == v || p[-1] != '\r')))
			fuzz_fail("%s is not one header line: '%s'", what, v);
	}
}

static void fuzz_html_tags(const char *html)
{
	for (const char *p = strchr(html, '<'); p != NULL; p = strchr(p + 1, '<')) {
		size_t len = 0;
		bool known = false;

		while (isalnum((unsigned char)p[1 + len]))
			len++;
		if (len == 0)
			continue;	/* closing tags, comments, the doctype */
		for (size_t i = 0; i < sizeof(fuzz_tags) / sizeof(*fuzz_tags); i++)
			known = known || (strlen(fuzz_tags[i]) == len && strncasecmp(p + 1, fuzz_tags[i], len) == 0);
		if (!known)
			fuzz_fail("a tag the templates do not have: '%.40s'", p);
	}
}

static void fuzz_ics(const char *ics)
{
	icalcomponent *cal = icalparser_parse_string(ics);
	icalcomponent *ev;

	if (cal == NULL)
		fuzz_fail("libical cannot read the iCalendar part");
	if (icalcomponent_count_components(cal, ICAL_VEVENT_COMPONENT) != 1)
		fuzz_fail("the iCalendar part does not hold exactly one event");
	ev = icalcomponent_get_first_component(cal, ICAL_VEVENT_COMPONENT);
	if (icalcomponent_count_properties(ev, ICAL_ATTENDEE_PROPERTY) > 1 ||
	    icalcomponent_count_properties(ev, ICAL_ORGANIZER_PROPERTY) > 1)
		fuzz_fail("an injected attendee or organizer");
	icalcomponent_free(cal);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum content_kind kinds[] = { CONTENT_CREATED, CONTENT_RESCHEDULED, CONTENT_CANCELLED,
						   CONTENT_REMINDER, CONTENT_DISCONNECTED, CONTENT_CONFLICT,
						   CONTENT_DECLINED };
	static const size_t nkinds = sizeof(kinds) / sizeof(*kinds);
	struct fuzz_fields f;
	struct content_facts facts = { 0 };
	struct content out;
	char *error = NULL, *attendee, *mailbox, *transcript;

	if (size < 1)
		return 0;
	fuzz_fields_split(data + 1, size - 1, &f, F_COUNT);
	attendee = header_address(f.v[F_ATTENDEE_EMAIL]);
	/* As the mailer makes it: the call's id put into TRANSCRIPT_URL. */
	transcript = cfg_transcript_url("https://app.example.com/calls/{call_id}", f.v[F_CALL]);
	facts.kind = kinds[data[0] % nkinds];
	facts.sequence = data[0] / nkinds;
	facts.now_s = 1767225600;
	facts.owner_name = f.v[F_NAME];
	facts.owner_email = "owner@example.com";
	facts.google_email = "owner@gmail.com";
	facts.meeting = (struct content_meeting){
		.id = "6f1c2a3e-0000-4000-8000-000000000001",
		.google_event_id = "gcal6f1c2a3e00004000800000000000001",
		.title = f.v[F_TITLE],
		.description = f.v[F_DESC],
		.attendee_email = attendee,
		.attendee_name = f.v[F_ATTENDEE_NAME],
		.zone = f.v[F_ZONE],
		.meet_link = "https://meet.google.com/abc-defg-hij",
		.html_link = "https://www.google.com/calendar/event?eid=abc",
		.cancellation_reason = f.v[F_REASON],
		.check = (enum content_check)(data[0] / nkinds % 3),
		.conflict_detail = f.v[F_BUSY],
		.changed_in_google = data[0] / nkinds / 3 % 2 == 1,
		.start_s = 1767258000,
		.end_s = 1767259800,
	};
	facts.has_previous = facts.kind == CONTENT_RESCHEDULED;
	facts.previous = facts.meeting;
	facts.previous.start_s -= 86400;
	facts.previous.end_s -= 86400;
	facts.lead_id = "6f1c2a3e-0000-4000-8000-000000000002";
	facts.lead_email = f.v[F_ATTENDEE_EMAIL];
	facts.lead.name = f.v[F_NAME];
	facts.lead.company = f.v[F_COMPANY];
	facts.lead.phone = f.v[F_PHONE];
	facts.lead.status_tag = f.v[F_STATUS];
	facts.lead.reasoning_json = f.v[F_REASONING];
	facts.lead.summary = f.v[F_SUMMARY];
	facts.lead.recording_url = f.v[F_RECORDING];
	facts.lead.transcript_url = transcript;
	facts.disconnect_reason = f.v[F_REASON];
	facts.disconnected_at = 1767225000;
	facts.user_zone = f.v[F_ZONE];
	facts.reconnect_url = "https://app.example.com/integrations";
	facts.requested_start_s = facts.meeting.start_s;
	facts.requested_end_s = facts.meeting.end_s;
	facts.busy_json = f.v[F_BUSY];
	facts.busy_detail = f.v[F_BUSY];

	if (content_build(&facts, &out, &error) < 0)
		fuzz_fail("the templates failed: %s", error);
	fuzz_one_line("the subject", out.subject);
	fuzz_html_tags(out.html);
	if (out.ics != NULL)
		fuzz_ics(out.ics);
	if ((out.ics == NULL) != (facts.kind == CONTENT_DISCONNECTED || facts.kind == CONTENT_CONFLICT ||
				  facts.kind == CONTENT_DECLINED ||
				  (facts.meeting.changed_in_google &&
				   (facts.kind == CONTENT_RESCHEDULED || facts.kind == CONTENT_CANCELLED))))
		fuzz_fail("a calendar part where there is nothing to send, or none where there is");
	content_release(&out);

	mailbox = header_mailbox(f.v[F_ATTENDEE_NAME], attendee ? attendee : "lead@example.com");
	fuzz_one_line("the mailbox", mailbox);
	free(mailbox);
	free(attendee);
	free(transcript);
	fuzz_fields_free(&f);
	return 0;
}
