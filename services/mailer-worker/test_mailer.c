/*
 * Unit tests of the mailer's pure parts: RFC 2047 subjects, header
 * sanitising, HTML escaping, template filling with hostile values, the
 * iCalendar part, every embedded template rendered for every kind, the
 * conflict mail and the conflict notes of meeting mails, the declined mail
 * and changes made in Google Calendar, and job bodies.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "content.h"
#include "header.h"
#include "ical.h"
#include "jobspec.h"
#include "rfc2047.h"
#include "tap.h"
#include "template.h"
#include "text.h"
#include "tz.h"

#define HOSTILE "Eve\r\nBcc: victim@example.com <script>alert(1)</script>"

/* True when s[0..len) is valid UTF-8 on its own (no sequence cut at either end). */
static bool utf8_complete(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		size_t n = s[i] < 0x80 ? 1 : s[i] >= 0xf0 ? 4 : s[i] >= 0xe0 ? 3 : s[i] >= 0xc0 ? 2 : 0;

		if (n == 0 || i + n > len)
			return false;
		for (size_t k = 1; k < n; k++)
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
		i += n;
	}
	return true;
}

/*
 * Check that enc is encoded-words (each at most 75 characters, joined by
 * CRLF SP, each holding whole UTF-8 sequences) and decode it back.
 * Returns the decoded text (the caller frees it) or NULL.
 */
static char *rfc2047_decode(const char *enc)
{
	char *out = calloc(1, strlen(enc) + 1);
	size_t o = 0;
	const char *p = enc;

	while (*p) {
		const char *end = strstr(p, "?=");
		size_t wlen, blen;
		unsigned char bin[100];

		if (strncmp(p, "=?UTF-8?B?", 10) != 0 || end == NULL)
			goto bad;
		wlen = (size_t)(end + 2 - p);
		if (wlen > RFC2047_WORD_MAX)
			goto bad;
		if (sodium_base642bin(bin, sizeof(bin), p + 10, wlen - 12, NULL, &blen, NULL,
				      sodium_base64_VARIANT_ORIGINAL) != 0)
			goto bad;
		if (!utf8_complete(bin, blen))
			goto bad;
		memcpy(out + o, bin, blen);
		o += blen;
		p = end + 2;
		if (*p == '\0')
			break;
		if (strncmp(p, "\r\n ", 3) != 0)
			goto bad;
		p += 3;
	}
	out[o] = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

static void test_rfc2047(void)
{
	const char *long_subject = "Réunion: Zoë Ångström + Société Générale Ünïcödé + Demo — "
				   "日本語のテキストも含まれています、とても長い件名です";
	char *e, *d;
	int words = 1;

	e = rfc2047_encode("Meeting booked: John Smith + TechCorp + Demo");
	CHECK_STR(e, "Meeting booked: John Smith + TechCorp + Demo", "ASCII passes through unchanged");
	free(e);

	e = rfc2047_encode("Zoë");
	CHECK_STR(e, "=?UTF-8?B?Wm/Dqw==?=", "non-ASCII becomes one encoded word");
	free(e);

	e = rfc2047_encode("looks =?UTF-8?B?QmNjOg==?= encoded");
	CHECK(strncmp(e, "=?UTF-8?B?", 10) == 0, "ASCII holding =? is encoded so no reader decodes the fake word");
	d = rfc2047_decode(e);
	CHECK_STR(d, "looks =?UTF-8?B?QmNjOg==?= encoded", "and decodes back to itself");
	free(d);
	free(e);

	e = rfc2047_encode(long_subject);
	for (const char *p = e; (p = strstr(p, "\r\n ")) != NULL; p++)
		words++;
	CHECK(words >= 3, "a long subject is split into several words (%d)", words);
	d = rfc2047_decode(e);
	CHECK(d != NULL, "every word is at most 75 characters and holds whole UTF-8 sequences");
	CHECK_STR(d, long_subject, "the words decode back to the subject");
	CHECK(strchr(e, '\n') == NULL || strstr(e, "\r\n ") != NULL, "lines only break as folds");
	free(d);
	free(e);

	{
		/* 4-byte sequences at every possible offset of the chunk boundary. */
		char s[200] = "";

		for (int shift = 0; shift < 4; shift++) {
			snprintf(s, sizeof(s), "%.*s", shift, "abc");
			for (int i = 0; i < 30; i++)
				strcat(s, "\xf0\x9f\x8e\xaf");
			e = rfc2047_encode(s);
			d = rfc2047_decode(e);
			CHECK_STR(d, s, "emoji after %d ASCII bytes split only between characters", shift);
			free(d);
			free(e);
		}
	}
}

static void test_header(void)
{
	char *v, *name, *addr;
	char date[40];

	v = header_value(HOSTILE, HEADER_SUBJECT_MAX);
	CHECK(strpbrk(v, "\r\n") == NULL, "no CR or LF survives into a header value");
	CHECK_STR(v, "Eve Bcc: victim@example.com <script>alert(1)</script>", "line breaks become one space");
	free(v);

	v = header_value("Zoë\r\nBcc: x@y.z", HEADER_SUBJECT_MAX);
	name = rfc2047_decode(v);
	CHECK_STR(name, "Zoë Bcc: x@y.z", "a non-ASCII value is cleaned, then encoded");
	free(name);
	free(v);

	v = header_value("a\x01\x7f\x1b[31mb\xc2\x85" "c", 100);
	CHECK_STR(v, "a[31mb c", "controls go, C1 NEL reads as a line break");
	free(v);

	{
		char big[600];

		memset(big, 'x', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		v = header_value(big, HEADER_SUBJECT_MAX);
		CHECK_INT(strlen(v), HEADER_SUBJECT_MAX, "a long value is cut to the limit");
		free(v);
	}

	{
		const char *good[] = { "owner@example.com", "  first.last+tag@mail.example.org ", "o'neil@x.io" };
		const char *bad[] = { "a@b@c.com", "Eve <e@x.com>", "e@x.com\r\nBcc: v@x.com", "e@x.com, v@y.com",
				      "e @x.com", "@x.com", "e@", "e@localhost", "e@-x.com", "a..b@x.com",
				      ".a@x.com", "a.@x.com", "zoë@x.com", "e@x.com\n", "\"q\"@x.com", "e@x_y.com",
				      "", NULL };

		for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++) {
			addr = header_address(good[i]);
			CHECK(addr != NULL && strchr(addr, ' ') == NULL, "accepts the address '%s'", good[i]);
			free(addr);
		}
		for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
			addr = header_address(bad[i]);
			CHECK(addr == NULL, "refuses the address '%s'", bad[i] ? bad[i] : "(null)");
			free(addr);
		}
	}

	v = header_mailbox("Owner", "o@example.com");
	CHECK_STR(v, "Owner <o@example.com>", "a plain name is a phrase");
	free(v);
	v = header_mailbox("Smith, \"Jo\" \\ Co.", "o@example.com");
	CHECK_STR(v, "\"Smith, \\\"Jo\\\" \\\\ Co.\" <o@example.com>", "specials make a quoted string");
	free(v);
	v = header_mailbox(HOSTILE, "o@example.com");
	CHECK(strpbrk(v, "\r\n") == NULL, "a hostile name stays on one line");
	CHECK(v[0] == '"' && strstr(v, "\" <o@example.com>") != NULL, "and inside one quoted string");
	free(v);
	v = header_mailbox("Zoë", "o@example.com");
	CHECK_STR(v, "=?UTF-8?B?Wm/Dqw==?= <o@example.com>", "a non-ASCII name is encoded");
	free(v);
	v = header_mailbox("  ", "o@example.com");
	CHECK_STR(v, "o@example.com", "no name, just the address");
	free(v);

	CHECK(header_parse_mailbox("Calendar Bot <calendar@example.com>", &name, &addr) == 0, "MAIL_FROM with a name");
	CHECK_STR(name, "Calendar Bot", "its name");
	CHECK_STR(addr, "calendar@example.com", "its address");
	free(name);
	free(addr);
	CHECK(header_parse_mailbox("\"Bot, Inc\" <b@example.com>", &name, &addr) == 0, "a quoted name");
	CHECK_STR(name, "Bot, Inc", "loses its quotes");
	free(name);
	free(addr);
	CHECK(header_parse_mailbox("b@example.com", &name, &addr) == 0 && name == NULL, "a bare address");
	free(addr);
	CHECK(header_parse_mailbox("Bot <b@example.com> x", &name, &addr) < 0, "text after the address is refused");

	v = header_message_id("meeting:1:created:0", "example.com");
	name = header_message_id("meeting:1:created:0", "example.com");
	addr = header_message_id("meeting:1:created:1", "example.com");
	CHECK_STR(v, name, "the Message-ID is derived from the job id");
	CHECK(strcmp(v, addr) != 0, "and differs between jobs");
	CHECK(v[0] == '<' && strlen(v) == 1 + 32 + 1 + 11 + 1 && strcmp(v + 33, "@example.com>") == 0,
	      "shaped <32 hex@domain>: %s", v);
	free(v);
	free(name);
	free(addr);

	header_date(1758195000, date, sizeof(date));
	CHECK_STR(date, "Thu, 18 Sep 2025 11:30:00 +0000", "RFC 5322 date");
}

static void test_text(void)
{
	char *s;

	s = text_html_escape("<a href=\"x\">Tom & 'Jerry'</a>\nnext");
	CHECK_STR(s, "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;<br>\nnext", "HTML escaping");
	free(s);

	s = text_clean("ok\xff\xc3(\xed\xa0\x80.", true);
	CHECK_STR(s, "ok\xef\xbf\xbd\xef\xbf\xbd(\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd.",
		  "bad bytes, a cut sequence and a surrogate become U+FFFD");
	free(s);
	s = text_clean("a\r\nb\rc\nd\te\x00", true);
	CHECK_STR(s, "a\nb\nc\nd\te", "multi-line text keeps LF line breaks and tabs");
	free(s);
	s = text_clean("  a \r\n\t b  ", false);
	CHECK_STR(s, "a b", "one line: breaks become spaces, collapsed and trimmed");
	free(s);
	s = text_clean(NULL, true);
	CHECK_STR(s, "", "NULL reads as empty");
	free(s);

	CHECK(text_is_web_url("https://meet.google.com/abc-defg-hij"), "an https URL is a link");
	CHECK(!text_is_web_url("javascript:alert(1)"), "javascript: is not");
	CHECK(!text_is_web_url("https://x.com/\"><script>"), "nor a URL with quotes or brackets");
	CHECK(!text_is_web_url("https:///path"), "nor one without a host");
}

static void test_template(void)
{
	const struct template_var vars[] = {
		{ "name", HOSTILE }, { "empty", "" }, { "none", NULL }, { "url", "https://x.example/?a=1&b=\"2\"" },
	};
	size_t n = sizeof(vars) / sizeof(*vars);
	char *out, *err;

	out = template_render("<p title=\"{{name}}\">{{name}}</p><a href=\"{{url}}\">", TEMPLATE_HTML, vars, n, &err);
	CHECK(out != NULL, "renders HTML");
	CHECK(strstr(out, "<script") == NULL, "no markup from a value: %s", out);
	CHECK(strstr(out, "&lt;script&gt;alert(1)&lt;/script&gt;") != NULL, "the value is escaped");
	CHECK(strstr(out, "Eve<br>\nBcc") != NULL, "a line break in a value becomes <br>");
	CHECK(strstr(out, "href=\"https://x.example/?a=1&amp;b=&quot;2&quot;\"") != NULL,
	      "quotes cannot leave an attribute");
	free(out);

	out = template_render("Hi {{name}}!", TEMPLATE_TEXT, vars, n, &err);
	CHECK_STR(out, "Hi Eve\nBcc: victim@example.com <script>alert(1)</script>!", "text keeps the text, LF only");
	free(out);

	out = template_render("a\n{{#empty}}\nshown\n{{/empty}}\n{{^empty}}\nfallback\n{{/empty}}\nb{{#none}}x{{/none}}"
			      "{{^none}}y{{/none}}",
			      TEMPLATE_TEXT, vars, n, &err);
	CHECK_STR(out, "a\nfallback\nby", "sections; tags alone on a line take their line break");
	free(out);

	out = template_render("{{#name}}<{{#name}}in{{/name}}>{{/name}}", TEMPLATE_TEXT, vars, n, &err);
	CHECK_STR(out, "<in>", "a section nested in one of the same name");
	free(out);

	out = template_render("{{nmae}}", TEMPLATE_TEXT, vars, n, &err);
	CHECK(out == NULL && err != NULL && strstr(err, "nmae") != NULL, "an undefined name is an error naming it");
	free(err);
	out = template_render("{{#name}}open", TEMPLATE_TEXT, vars, n, &err);
	CHECK(out == NULL && err != NULL, "an unclosed section is an error");
	free(err);
	out = template_render("{{name", TEMPLATE_TEXT, vars, n, &err);
	CHECK(out == NULL && err != NULL, "an unclosed tag is an error");
	free(err);
	out = template_render("{{/name}}", TEMPLATE_TEXT, vars, n, &err);
	CHECK(out == NULL && err != NULL, "a stray closing tag is an error");
	free(err);
	out = template_render("{{>nope.txt}}", TEMPLATE_TEXT, vars, n, &err);
	CHECK(out == NULL && err != NULL, "a missing partial is an error");
	free(err);

	{
		char *subject;
		const char *body;

		CHECK(template_split_subject("Subject: Hi {{name}}\n\nBody", &subject, &body) == 0, "splits a .txt");
		CHECK_STR(subject, "Hi {{name}}", "subject template");
		CHECK_STR(body, "Body", "body template");
		free(subject);
		CHECK(template_split_subject("Hi\n\nBody", &subject, &body) < 0, "refuses a .txt without Subject:");
	}
}

/* s with RFC 5545 folds (CRLF and one space) removed. The caller frees it. */
static char *unfold(const char *s)
{
	char *out = strdup(s), *o = out;

	for (const char *p = s; *p; p++) {
		if (p[0] == '\r' && p[1] == '\n' && p[2] == ' ') {
			p += 2;
			continue;
		}
		*o++ = *p;
	}
	*o = '\0';
	return out;
}

static void test_ical(void)
{
	struct ical_event ev = {
		.cancel = true,
		.google_event_id = "leadabc123g0",
		.sequence = 3,
		.start_s = 1758195000,
		.end_s = 1758196800,
		.stamp_s = 1758100000,
		.summary = HOSTILE " + Demo",
		.description = "Line one\nLine two; with, specials\\ and a very long line that libical has to fold "
			       "because it is longer than seventy-five octets",
		.organizer_email = "owner@example.com",
		.organizer_name = "Owner \"The Boss\"",
		.attendee_email = "lead@example.com",
		.attendee_name = HOSTILE,
	};
	char *ics = ical_build(&ev), *unfolded;
	bool short_lines = true, crlf = true;

	CHECK(strstr(ics, "BEGIN:VCALENDAR\r\n") == ics, "a VCALENDAR with CRLF line ends");
	CHECK(strstr(ics, "METHOD:CANCEL\r\n") != NULL, "METHOD:CANCEL");
	CHECK(strstr(ics, "STATUS:CANCELLED\r\n") != NULL, "STATUS:CANCELLED");
	CHECK(strstr(ics, "UID:leadabc123g0@google.com\r\n") != NULL, "the UID is the Google event's iCalUID");
	CHECK(strstr(ics, "SEQUENCE:3\r\n") != NULL, "SEQUENCE");
	CHECK(strstr(ics, "DTSTART:20250918T113000Z\r\n") != NULL, "DTSTART in UTC");
	CHECK(strstr(ics, "DTEND:20250918T120000Z\r\n") != NULL, "DTEND in UTC");
	CHECK(strstr(ics, "DTSTAMP:20250917T090640Z\r\n") != NULL, "DTSTAMP in UTC");
	unfolded = unfold(ics);
	CHECK(strstr(unfolded, "ATTENDEE;CN=\"Eve Bcc: victim@example.com <script>alert(1)</script>\";") != NULL &&
	      strstr(unfolded, ":mailto:lead@example.com\r\n") != NULL, "the attendee, its name on one line");
	CHECK(strstr(unfolded, "ORGANIZER;CN=Owner 'The Boss':mailto:owner@example.com\r\n") != NULL,
	      "the organizer, without a quote inside its name");
	free(unfolded);
	for (const char *line = ics; *line;) {
		const char *end = strstr(line, "\r\n");

		if (end == NULL) {
			crlf = false;
			break;
		}
		if (end - line > 75)
			short_lines = false;
		line = end + 2;
	}
	CHECK(crlf, "every line ends with CRLF");
	CHECK(short_lines, "libical folds lines to 75 octets");
	CHECK(strstr(ics, "\r\nBcc:") == NULL, "a hostile name cannot start a line of its own");
	free(ics);

	ev.cancel = false;
	ics = ical_build(&ev);
	CHECK(strstr(ics, "METHOD:REQUEST\r\n") != NULL && strstr(ics, "STATUS:CONFIRMED\r\n") != NULL,
	      "REQUEST and CONFIRMED otherwise");
	free(ics);
}

static void test_content(void)
{
	struct content_facts f = {
		.sequence = 2,
		.now_s = 1758100000,
		.owner_name = "Owner <b>",
		.owner_email = "owner@example.com",
		.google_email = "owner.google@example.com",
		.meeting = {
			.id = "11111111-1111-1111-1111-111111111111",
			.google_event_id = "lead0123g0",
			.title = HOSTILE " + Acme + Demo",
			.description = "desc",
			.attendee_email = "lead@example.com",
			.attendee_name = HOSTILE,
			.zone = "Asia/Kolkata",
			.meet_link = "https://meet.google.com/abc-defg-hij",
			.html_link = "javascript:alert(1)",
			.cancellation_reason = "Lead asked <to> cancel",
			.start_s = 1758195000,
			.end_s = 1758196800,
		},
		.has_previous = true,
		.previous = { .zone = "Asia/Kolkata", .start_s = 1758108600, .end_s = 1758110400 },
		.lead_id = "22222222-2222-2222-2222-222222222222",
		.lead = {
			.name = HOSTILE,
			.company = "Acme & Sons",
			.phone = "+91 98765 43210",
			.status_tag = "Hot",
			.reasoning_json = "{\"intent\": \"<b>High</b>\", \"budget\": \"Approved\"}",
			.summary = "Wants a demo\nnext week",
			.recording_url = "https://rec.example.com/1.mp3",
			.transcript_url = "https://app.example.com/calls/33333333-3333-3333-3333-333333333333/transcript",
		},
		.disconnect_reason = "grant_revoked",
		.disconnected_at = 1758100000,
		.user_zone = "Asia/Kolkata",
		.reconnect_url = "https://app.example.com/integrations",
	};

	for (int k = CONTENT_CREATED; k <= CONTENT_DECLINED; k++) {
		struct content c;
		char *err = NULL;
		const char *name;

		f.kind = (enum content_kind)k;
		name = content_kind_name(f.kind);
		if (content_build(&f, &c, &err) < 0) {
			CHECK(0, "%s renders: %s", name, err);
			free(err);
			continue;
		}
		CHECK(strpbrk(c.subject, "\r\n") == NULL, "%s: the subject is one line: %s", name, c.subject);
		CHECK(strstr(c.html, "<script") == NULL, "%s: no <script> in the HTML", name);
		CHECK(strstr(c.html, "<b>") == NULL, "%s: no markup from the owner's name or reasoning", name);
		CHECK(strstr(c.html, "javascript:") == NULL, "%s: no javascript: link", name);
		CHECK(strstr(c.text, "{{") == NULL && strstr(c.html, "{{") == NULL, "%s: no placeholder left", name);
		CHECK(c.conflict == NULL, "%s: no X-Meeting-Conflict for a meeting not checked", name);
		if (k == CONTENT_CONFLICT) {
			CHECK(c.ics == NULL, "conflict: no calendar part");
			CHECK(strstr(c.html, "&lt;script&gt;alert(1)&lt;/script&gt;") != NULL,
			      "conflict: the lead name is escaped in the HTML");
		} else if (k == CONTENT_DECLINED) {
			CHECK(c.ics == NULL, "declined: no calendar part, nothing changed in the meeting");
			CHECK(strstr(c.html, "&lt;script&gt;alert(1)&lt;/script&gt;</strong>") != NULL,
			      "declined: the attendee's name is escaped in the HTML");
			CHECK(strstr(c.text, "Thursday, 18 September 2025, 17:00\xe2\x80\x93" "17:30 (Asia/Kolkata, "
					     "UTC+05:30)") != NULL, "declined: the meeting's time");
		} else if (k == CONTENT_DISCONNECTED) {
			CHECK(c.ics == NULL, "disconnected: no calendar part");
			CHECK(strstr(c.html, "href=\"https://app.example.com/integrations\"") != NULL,
			      "disconnected: the reconnect link");
			CHECK(strstr(c.text, "revoked") != NULL, "disconnected: says the grant was revoked");
		} else {
			CHECK(strstr(c.html, "&lt;script&gt;alert(1)&lt;/script&gt;") != NULL,
			      "%s: the lead name is escaped in the HTML", name);
			CHECK(strstr(c.text, "Thursday, 18 September 2025, 17:00\xe2\x80\x93" "17:30 (Asia/Kolkata, "
					     "UTC+05:30)") != NULL, "%s: the local time with zone and offset", name);
			CHECK(strstr(c.text, "11:30\xe2\x80\x93" "12:00 UTC") != NULL, "%s: the time in UTC", name);
			CHECK(strstr(c.text, "intent: <b>High</b>") != NULL &&
				      strstr(c.html, "intent: &lt;b&gt;") != NULL,
			      "%s: the reasoning as key: value lines", name);
			CHECK(strstr(c.text, "https://app.example.com/calls/33333333-3333-3333-3333-333333333333/"
					     "transcript") != NULL, "%s: the transcript link", name);
			CHECK(strstr(c.text, "https://meet.google.com/abc-defg-hij") != NULL, "%s: the Meet link",
			      name);
			CHECK(strstr(c.text, "Acme & Sons") != NULL && strstr(c.html, "Acme &amp; Sons") != NULL,
			      "%s: the company", name);
			CHECK(c.ics != NULL && strstr(c.ics, "SEQUENCE:2\r\n") != NULL, "%s: a calendar part", name);
			CHECK(strcmp(c.ics_method, k == CONTENT_CANCELLED ? "CANCEL" : "REQUEST") == 0, "%s: METHOD %s",
			      name, c.ics_method);
		}
		if (k == CONTENT_RESCHEDULED)
			CHECK(strstr(c.text, "Wednesday, 17 September 2025, 17:00") != NULL,
			      "rescheduled: the old time");
		if (k == CONTENT_CANCELLED)
			CHECK(strstr(c.html, "Lead asked &lt;to&gt; cancel") != NULL, "cancelled: the reason, escaped");
		content_release(&c);
	}
	{
		enum content_kind k;

		CHECK(content_kind_parse("rescheduled", &k) == 0 && k == CONTENT_RESCHEDULED, "parses a kind");
		CHECK(content_kind_parse("deleted", &k) < 0, "refuses an unknown kind");
	}
}

static void test_conflict(void)
{
	struct content_facts f = {
		.kind = CONTENT_CONFLICT,
		.now_s = 1758100000,
		.owner_name = "Owner",
		.owner_email = "owner@example.com",
		.lead_id = "22222222-2222-2222-2222-222222222222",
		.lead = { .name = HOSTILE, .company = "Acme & Sons" },
		.lead_email = "lead@example.com",
		.user_zone = "Asia/Kolkata",
		.requested_start_s = 1758195000,	/* 2025-09-18 17:00 in Asia/Kolkata */
		.requested_end_s = 1758196800,
		/* As the scheduler writes it, plus one span at another offset and one that does not read. */
		.busy_json = "[{\"start\": \"2025-09-18T17:00:00+05:30\", \"end\": \"2025-09-18T17:15:00+05:30\"},"
			     " {\"start\": \"2025-09-18T11:50:00Z\", \"end\": \"2025-09-18T12:00:00Z\"},"
			     " {\"start\": \"<script>\", \"end\": 5}]",
		.busy_detail = "the calendar is busy then: <b>2025-09-18T17:00:00+05:30</b>",
	};
	struct content c;
	char *err = NULL;

	CHECK(content_build(&f, &c, &err) == 0, "the conflict mail renders: %s", err ? err : "");
	CHECK_STR(c.subject, "Not booked: Eve Bcc: victim@example.com <script>alert(1)</script> asked for "
			     "Thu 18 Sep 2025 17:00 UTC+05:30, when you are busy", "its subject, on one line");
	CHECK(strstr(c.text, "Thursday, 18 September 2025, 17:00\xe2\x80\x93" "17:30 (Asia/Kolkata, UTC+05:30)") !=
		      NULL, "the requested time in the owner's zone");
	CHECK(strstr(c.text, "Thursday, 18 September 2025, 11:30\xe2\x80\x93" "12:00 UTC") != NULL, "and in UTC");
	CHECK(strstr(c.text, "- Thursday, 18 September 2025, 17:00\xe2\x80\x93" "17:15 (Asia/Kolkata, UTC+05:30)\n"
			     "- Thursday, 18 September 2025, 17:20\xe2\x80\x93" "17:30 (Asia/Kolkata, UTC+05:30)\n") !=
		      NULL,
	      "the busy spans in the owner's zone, whatever offset they were written at");
	CHECK(strstr(c.html, "17:20\xe2\x80\x93" "17:30 (Asia/Kolkata, UTC+05:30)") != NULL, "in the HTML too");
	CHECK(strstr(c.text, "the calendar is busy then") == NULL, "the spans, not the scheduler's sentence");
	CHECK(strstr(c.text, "<lead@example.com>") != NULL && strstr(c.html, "mailto:lead@example.com") != NULL,
	      "the lead's address");
	CHECK(strstr(c.text, "Open the lead in the app") != NULL, "what to do");
	CHECK(strstr(c.text, "Lead 22222222-2222-2222-2222-222222222222") != NULL, "the lead in the footer");
	CHECK(strstr(c.text, "Acme & Sons") != NULL && strstr(c.html, "Acme &amp; Sons") != NULL, "the lead context");
	CHECK(strstr(c.html, "<script") == NULL && strstr(c.html, "<b>") == NULL, "no markup from the values");
	CHECK(c.ics == NULL && c.conflict == NULL, "no calendar part, no X-Meeting-Conflict");
	content_release(&c);

	f.busy_json = "not json";
	f.lead_email = "e@x.com\r\nBcc: v@x.com";
	f.user_zone = NULL;
	CHECK(content_build(&f, &c, &err) == 0, "renders without readable spans");
	CHECK(strstr(c.text, "the calendar is busy then: <b>2025-09-18T17:00:00+05:30</b>") != NULL &&
		      strstr(c.html, "busy then: &lt;b&gt;") != NULL,
	      "the scheduler's sentence instead, escaped in the HTML");
	CHECK(strstr(c.text, "v@x.com") == NULL && strstr(c.text, "e@x.com") == NULL, "a hostile address is dropped");
	CHECK(strstr(c.text, "(no email)") != NULL, "and the mail says there is none");
	CHECK(strstr(c.text, "11:30\xe2\x80\x93" "12:00 (UTC, UTC+00:00)") != NULL, "an unknown zone shows UTC");
	content_release(&c);
}

/* A meeting booked over busy time says so; one whose calendar could not be checked says that, more softly. */
static void test_meeting_conflict_notes(void)
{
	struct content_facts f = {
		.kind = CONTENT_CREATED,
		.now_s = 1758100000,
		.owner_email = "owner@example.com",
		.meeting = {
			.id = "11111111-1111-1111-1111-111111111111",
			.google_event_id = "lead0123g0",
			.title = "Demo",
			.zone = "Asia/Kolkata",
			.check = CONTENT_CHECK_BUSY,
			.conflict_detail = "2025-09-18T17:15:00+05:30 to <script>x</script>",
			.start_s = 1758195000,
			.end_s = 1758196800,
		},
	};
	const char *overlap = "This meeting overlaps other events in your calendar";
	struct content c;
	char *err = NULL;

	for (int k = CONTENT_CREATED; k <= CONTENT_RESCHEDULED; k++) {
		f.kind = (enum content_kind)k;
		CHECK(content_build(&f, &c, &err) == 0, "renders");
		CHECK(strstr(c.text, overlap) != NULL && strstr(c.html, overlap) != NULL, "%s: the overlap warning",
		      content_kind_name(f.kind));
		CHECK(strstr(c.text, "2025-09-18T17:15:00+05:30 to <script>x</script>") != NULL &&
			      strstr(c.html, "to &lt;script&gt;x") != NULL,
		      "%s: with the busy spans, escaped in the HTML", content_kind_name(f.kind));
		CHECK(c.conflict != NULL && strcmp(c.conflict, "yes") == 0, "%s: X-Meeting-Conflict: yes",
		      content_kind_name(f.kind));
		content_release(&c);
	}
	f.kind = CONTENT_REMINDER;
	CHECK(content_build(&f, &c, &err) == 0, "renders");
	CHECK(strstr(c.text, overlap) == NULL && c.conflict == NULL, "a reminder does not repeat it");
	content_release(&c);

	f.kind = CONTENT_CREATED;
	f.meeting.check = CONTENT_CHECK_NONE;
	f.meeting.conflict_detail = "Google could not report the calendar's busy time (internalError)";
	CHECK(content_build(&f, &c, &err) == 0, "renders");
	CHECK(strstr(c.text, "We could not check your calendar for conflicts: Google could not report") != NULL &&
		      strstr(c.html, "We could not check your calendar for conflicts: Google could not report") != NULL,
	      "an unchecked calendar gets the softer note");
	CHECK(strstr(c.text, overlap) == NULL && c.conflict == NULL, "and no warning or header");
	content_release(&c);

	f.meeting.check = CONTENT_CHECK_FREE;
	f.meeting.conflict_detail = NULL;
	CHECK(content_build(&f, &c, &err) == 0, "renders");
	CHECK(strstr(c.text, "conflict") == NULL && strstr(c.text, overlap) == NULL && c.conflict == NULL,
	      "a free slot: no note at all");
	content_release(&c);
}

/* The lead declined: who, which meeting, that it stays, and what the owner can do. */
static void test_declined(void)
{
	struct content_facts f = {
		.kind = CONTENT_DECLINED,
		.sequence = 3,
		.now_s = 1758100000,
		.owner_name = "Owner",
		.owner_email = "owner@example.com",
		.meeting = {
			.id = "11111111-1111-1111-1111-111111111111",
			.google_event_id = "lead0123g0",
			.title = "John Smith + TechCorp + Demo",
			.attendee_email = "john@techcorp.example",
			.attendee_name = "John Smith",
			.zone = "America/New_York",
			.html_link = "https://www.google.com/calendar/event?eid=abc",
			.check = CONTENT_CHECK_BUSY,
			.conflict_detail = "2025-09-18T07:30:00-04:00 to 2025-09-18T08:00:00-04:00",
			.start_s = 1758195000,
			.end_s = 1758196800,
		},
	};
	struct content c;
	char *err = NULL;

	CHECK(content_build(&f, &c, &err) == 0, "the declined mail renders: %s", err ? err : "");
	CHECK_STR(c.subject, "Invitation declined: John Smith + TechCorp + Demo, Thu 18 Sep 2025 07:30 UTC-04:00",
		  "its subject, the time in the meeting's zone");
	CHECK(strstr(c.text, "John Smith <john@techcorp.example> declined the invitation") != NULL,
	      "who declined, by name and address");
	CHECK(strstr(c.html, "<strong>John Smith</strong> (<a href=\"mailto:john@techcorp.example\">") != NULL,
	      "in the HTML too");
	CHECK(strstr(c.text, "Thursday, 18 September 2025, 07:30\xe2\x80\x93" "08:00 (America/New_York, "
			     "UTC-04:00)") != NULL, "the meeting's time as the other mails show it");
	CHECK(strstr(c.text, "The meeting stays in your Google Calendar") != NULL &&
		      strstr(c.text, "reschedule it") != NULL && strstr(c.text, "cancel it") != NULL,
	      "it stays, and the owner decides");
	CHECK(strstr(c.html, "href=\"https://www.google.com/calendar/event?eid=abc\"") != NULL,
	      "the link to the event, as the other meeting mails have it");
	CHECK(strstr(c.text, "overlaps") == NULL && c.conflict == NULL, "no overlap note: no slot was booked");
	CHECK(c.ics == NULL, "no calendar part");
	content_release(&c);

	f.meeting.attendee_name = NULL;
	f.meeting.attendee_email = "e@x.com\r\nBcc: v@x.com";
	CHECK(content_build(&f, &c, &err) == 0, "renders without a name and with a hostile address");
	CHECK(strstr(c.text, "The lead declined the invitation") != NULL, "\"The lead\" without a name");
	CHECK(strstr(c.text, "v@x.com") == NULL, "a hostile address is dropped");
	content_release(&c);
}

/*
 * A move or delete made in Google Calendar says so, and sends no calendar
 * part: the owner's calendar holds the change already (content.h).
 */
static void test_changed_in_google(void)
{
	struct content_facts f = {
		.sequence = 1,
		.now_s = 1758100000,
		.owner_email = "owner@example.com",
		.meeting = {
			.id = "11111111-1111-1111-1111-111111111111",
			.google_event_id = "lead0123g0",
			.title = "Demo",
			.zone = "Asia/Kolkata",
			.cancellation_reason = "Deleted in Google Calendar",
			.check = CONTENT_CHECK_BUSY,
			.conflict_detail = "2025-09-18T17:15:00+05:30 to 2025-09-18T17:30:00+05:30",
			.changed_in_google = true,
			.start_s = 1758195000,
			.end_s = 1758196800,
		},
		.has_previous = true,
		.previous = { .zone = "Asia/Kolkata", .start_s = 1758108600, .end_s = 1758110400 },
	};
	struct content c;
	char *err = NULL;

	f.kind = CONTENT_RESCHEDULED;
	CHECK(content_build(&f, &c, &err) == 0, "renders");
	CHECK(strstr(c.text, "You moved this meeting in Google Calendar") != NULL &&
		      strstr(c.html, "You moved this meeting in Google Calendar") != NULL, "rescheduled: you moved it");
	CHECK(strstr(c.text, "moved to a new time") == NULL, "and not the platform's sentence");
	CHECK(strstr(c.text, "Wednesday, 17 September 2025, 17:00") != NULL, "the old time");
	CHECK(c.ics == NULL, "rescheduled: no calendar part");
	CHECK(strstr(c.text, "overlaps") == NULL && c.conflict == NULL, "the rep's own pick was not checked");
	content_release(&c);

	f.kind = CONTENT_CANCELLED;
	CHECK(content_build(&f, &c, &err) == 0, "renders");
	CHECK(strstr(c.text, "This meeting was deleted in Google Calendar") != NULL &&
		      strstr(c.html, "This meeting was deleted in Google Calendar") != NULL, "cancelled: deleted there");
	CHECK(strstr(c.text, "removed from your Google Calendar") == NULL, "and not the platform's sentence");
	CHECK(c.ics == NULL, "cancelled: no calendar part");
	content_release(&c);

	/* Only the mail of the change itself: a reminder of a row a Google move created is an ordinary one. */
	f.kind = CONTENT_REMINDER;
	CHECK(content_build(&f, &c, &err) == 0, "renders");
	CHECK(strstr(c.text, "You moved") == NULL && strstr(c.text, "Your demo meeting starts soon") != NULL,
	      "a plain reminder");
	CHECK(c.ics != NULL && strcmp(c.ics_method, "REQUEST") == 0, "with its calendar part");
	content_release(&c);

	f.meeting.changed_in_google = false;
	for (int k = CONTENT_RESCHEDULED; k <= CONTENT_CANCELLED; k++) {
		f.kind = (enum content_kind)k;
		CHECK(content_build(&f, &c, &err) == 0, "renders");
		CHECK(strstr(c.text, "in Google Calendar,") == NULL && strstr(c.text, "deleted in Google") == NULL,
		      "%s by the platform: the platform's sentence", content_kind_name(f.kind));
		CHECK(c.ics != NULL, "%s by the platform: the calendar part", content_kind_name(f.kind));
		content_release(&c);
	}
}

static void test_jobspec(void)
{
	/* A meeting named anyway is the user's id: a UUID that names no meeting. */
	static const char named[] = "{\"kind\": \"conflict\", \"user_id\": \"11111111-1111-1111-1111-111111111111\","
				    " \"lead_analytics_id\": \"22222222-2222-2222-2222-22222222222A\","
				    " \"meeting_id\": \"11111111-1111-1111-1111-111111111111\", \"sequence\": 0}";
	static const char leadless[] =
		"{\"kind\": \"conflict\", \"user_id\": \"11111111-1111-1111-1111-111111111111\", \"sequence\": 0}";
	const char *body = named;
	struct jobspec spec;
	const char *why;

	CHECK(jobspec_parse("lead:x:conflict", body, strlen(body), &spec, &why) == 0, "a conflict job reads");
	CHECK(spec.kind == CONTENT_CONFLICT, "as a conflict");
	CHECK_STR(spec.lead_id, "22222222-2222-2222-2222-22222222222a", "its lead, lower-case");
	CHECK(spec.meeting_id == NULL, "a meeting named anyway is not read");
	jobspec_release(&spec);

	body = leadless;
	CHECK(jobspec_parse("lead:x:conflict", body, strlen(body), &spec, &why) < 0 && spec.has_kind &&
		      spec.kind == CONTENT_CONFLICT && strstr(why, "lead_analytics_id") != NULL,
	      "a conflict job without its lead is refused");
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	test_rfc2047();
	test_header();
	test_text();
	test_template();
	test_ical();
	test_content();
	test_conflict();
	test_meeting_conflict_notes();
	test_declined();
	test_changed_in_google();
	test_jobspec();
	tz_shutdown();
	return tap_done();
}
