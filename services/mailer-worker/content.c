/*
 * content: facts to subject, text, HTML and iCalendar (see content.h).
 */
#include "content.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cJSON.h>

#include "datetime.h"
#include "header.h"
#include "ical.h"
#include "leadfacts.h"
#include "template.h"
#include "text.h"
#include "tz.h"
#include "xmalloc.h"

static const char *const content_kinds[] = {
	[CONTENT_CREATED] = "created",
	[CONTENT_RESCHEDULED] = "rescheduled",
	[CONTENT_CANCELLED] = "cancelled",
	[CONTENT_REMINDER] = "reminder",
	[CONTENT_DISCONNECTED] = "disconnected",
	[CONTENT_CONFLICT] = "conflict",
	[CONTENT_DECLINED] = "declined",
};

/* The busy spans a conflict mail lists; the scheduler clips them to the requested slot, so a few at most. */
#define CONTENT_BUSY_MAX 20

/* A meeting's time, ready for the templates. */
struct content_when {
	const char *zone;
	char offset[16];	/* "UTC+05:30" */
	char when[96];		/* "Thursday, 18 September 2025, 17:00–17:30" */
	char when_utc[96];	/* "Thursday, 18 September 2025, 11:30–12:00 UTC" */
	char when_short[64];	/* "Thu 18 Sep 2025 17:00 UTC+05:30" */
	char duration[32];
};

const char *content_kind_name(enum content_kind kind)
{
	return content_kinds[kind];
}

int content_kind_parse(const char *name, enum content_kind *kind)
{
	for (size_t i = 0; name != NULL && i < sizeof(content_kinds) / sizeof(*content_kinds); i++) {
		if (strcmp(name, content_kinds[i]) == 0) {
			*kind = (enum content_kind)i;
			return 0;
		}
	}
	return -1;
}

/* Names by hand: strftime's follow the locale, and these mails are English. */
static const char *const content_days[] = { "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
					    "Saturday" };
static const char *const content_months[] = { "January", "February", "March", "April", "May", "June", "July",
					      "August", "September", "October", "November", "December" };

static struct tm content_tm(int64_t t, int offset_s)
{
	time_t local = (time_t)(t + offset_s);
	struct tm tm;

	gmtime_r(&local, &tm);
	return tm;
}

static void content_offset(int offset_s, char *buf, size_t size)
{
	int a = offset_s < 0 ? -offset_s : offset_s;

	snprintf(buf, size, "UTC%c%02d:%02d", offset_s < 0 ? '-' : '+', a / 3600, a % 3600 / 60);
}

/* "Thursday, 18 September 2025, 17:00–17:30", or both dates when the meeting spans midnight. */
static void content_range(int64_t start, int off_start, int64_t end, int off_end, const char *suffix, char *buf,
			  size_t size)
{
	struct tm a = content_tm(start, off_start), b = content_tm(end, off_end);

	if (a.tm_year == b.tm_year && a.tm_yday == b.tm_yday)
		snprintf(buf, size, "%s, %d %s %d, %02d:%02d\xe2\x80\x93%02d:%02d%s", content_days[a.tm_wday],
			 a.tm_mday, content_months[a.tm_mon], a.tm_year + 1900, a.tm_hour, a.tm_min, b.tm_hour,
			 b.tm_min, suffix);
	else
		snprintf(buf, size, "%s, %d %s %d, %02d:%02d \xe2\x80\x93 %s, %d %s %d, %02d:%02d%s",
			 content_days[a.tm_wday], a.tm_mday, content_months[a.tm_mon], a.tm_year + 1900, a.tm_hour,
			 a.tm_min, content_days[b.tm_wday], b.tm_mday, content_months[b.tm_mon], b.tm_year + 1900,
			 b.tm_hour, b.tm_min, suffix);
}

/* "Thursday, 18 September 2025, 14:42 (Asia/Kolkata, UTC+05:30)" */
static void content_instant(int64_t t, const char *zone, char *buf, size_t size)
{
	int off = 0;
	char label[16];
	struct tm tm;

	if (zone == NULL || tz_offset_at_utc(zone, t, &off) < 0) {
		zone = "UTC";
		off = 0;
	}
	content_offset(off, label, sizeof(label));
	tm = content_tm(t, off);
	snprintf(buf, size, "%s, %d %s %d, %02d:%02d (%.40s, %s)", content_days[tm.tm_wday], tm.tm_mday,
		 content_months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, zone, label);
}

static void content_when_of(const struct content_meeting *m, struct content_when *w)
{
	int off_start = 0, off_end = 0;
	struct tm s;
	int64_t minutes = (m->end_s - m->start_s) / 60;

	w->zone = m->zone;
	if (w->zone == NULL || tz_offset_at_utc(w->zone, m->start_s, &off_start) < 0 ||
	    tz_offset_at_utc(w->zone, m->end_s, &off_end) < 0) {
		w->zone = "UTC";
		off_start = off_end = 0;
	}
	content_offset(off_start, w->offset, sizeof(w->offset));
	content_range(m->start_s, off_start, m->end_s, off_end, "", w->when, sizeof(w->when));
	content_range(m->start_s, 0, m->end_s, 0, " UTC", w->when_utc, sizeof(w->when_utc));
	s = content_tm(m->start_s, off_start);
	snprintf(w->when_short, sizeof(w->when_short), "%.3s %d %.3s %d %02d:%02d %s", content_days[s.tm_wday],
		 s.tm_mday, content_months[s.tm_mon], s.tm_year + 1900, s.tm_hour, s.tm_min, w->offset);
	snprintf(w->duration, sizeof(w->duration), "%lld minute%s", (long long)minutes, minutes == 1 ? "" : "s");
}

/*
 * The busy spans of a conflict, one per line, each in zone as a meeting's
 * time is shown; NULL when busy_json holds none that reads, so the mail
 * falls back to the scheduler's sentence. The caller frees it.
 */
static char *content_busy_text(const char *busy_json, const char *zone)
{
	cJSON *j = busy_json != NULL ? cJSON_Parse(busy_json) : NULL;
	const cJSON *spans = cJSON_IsArray(j) ? j : NULL, *span;
	char *out = NULL;
	int shown = 0, more = 0;

	cJSON_ArrayForEach(span, spans) {
		const char *start = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(span, "start"));
		const char *end = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(span, "end"));
		struct datetime a, b;
		struct content_meeting m = { .zone = zone };
		struct content_when w = { 0 };
		char *next;

		if (start == NULL || end == NULL || datetime_parse(start, strlen(start), &a) < 0 ||
		    datetime_parse(end, strlen(end), &b) < 0 || !a.has_offset || !b.has_offset)
			continue;
		if (shown == CONTENT_BUSY_MAX) {
			more++;
			continue;
		}
		m.start_s = a.epoch_s;
		m.end_s = b.epoch_s;
		content_when_of(&m, &w);
		next = xasprintf("%s%s- %s (%s, %s)", out ? out : "", out ? "\n" : "", w.when, w.zone, w.offset);
		free(out);
		out = next;
		shown++;
	}
	if (more > 0) {
		char *next = xasprintf("%s\n- and %d more", out, more);

		free(out);
		out = next;
	}
	cJSON_Delete(j);
	return out;
}

static const char *content_url(const char *s)
{
	return text_is_web_url(s) ? s : NULL;
}

struct content_vars {
	struct template_var v[48];
	size_t n;
};

static void content_set(struct content_vars *vars, const char *key, const char *value)
{
	vars->v[vars->n++] = (struct template_var){ key, value };
}

/*
 * One kind's templates, compiled at their first use and kept: the .txt's
 * subject line and body and the .html (the file names are fixed per kind).
 * A file missing or without its Subject: line stays an error of every
 * render, as when each mail read the files itself.
 */
struct content_templates {
	bool ready;
	struct template *subject, *text, *html;
	char *subject_src;		/* what subject points into */
	char *text_error, *html_error;
};

static struct content_templates content_compiled[sizeof(content_kinds) / sizeof(*content_kinds)];

static struct template *content_compile(const char *file, char **subject_src, struct template **subject,
					char **error)
{
	const char *src = template_source(file), *body_src = src;

	if (src == NULL) {
		*error = xasprintf("no template %s is embedded", file);
		return NULL;
	}
	if (subject_src != NULL) {
		if (template_split_subject(src, subject_src, &body_src) < 0) {
			*error = xasprintf("%s does not start with a Subject: line and a blank line", file);
			return NULL;
		}
		*subject = template_compile(*subject_src);
	}
	return template_compile(body_src);
}

static const struct content_templates *content_templates_of(enum content_kind kind)
{
	struct content_templates *t = &content_compiled[kind];

	if (!t->ready) {
		char *file = xasprintf("%s.txt", content_kind_name(kind));

		t->text = content_compile(file, &t->subject_src, &t->subject, &t->text_error);
		free(file);
		file = xasprintf("%s.html", content_kind_name(kind));
		t->html = content_compile(file, NULL, NULL, &t->html_error);
		free(file);
		t->ready = true;
	}
	return t;
}

static int content_render(const struct content_templates *t, const struct content_vars *vars,
			  struct template_value *values, struct content *out, char **error)
{
	char *line;

	if (t->text == NULL) {
		*error = xstrdup(t->text_error);
		return -1;
	}
	line = template_render_compiled(t->subject, TEMPLATE_TEXT, vars->v, vars->n, values, error);
	if (line == NULL)
		return -1;
	out->subject = header_value(line, HEADER_SUBJECT_MAX);
	free(line);
	out->text = template_render_compiled(t->text, TEMPLATE_TEXT, vars->v, vars->n, values, error);
	if (out->text == NULL)
		return -1;
	if (t->html == NULL) {
		*error = xstrdup(t->html_error);
		return -1;
	}
	out->html = template_render_compiled(t->html, TEMPLATE_HTML, vars->v, vars->n, values, error);
	return out->html ? 0 : -1;
}

static char *content_ical(const struct content_facts *f)
{
	const struct content_meeting *m = &f->meeting;
	char *attendee = header_address(m->attendee_email);
	char *organizer = header_address(f->google_email);
	struct ical_event ev = {
		.cancel = f->kind == CONTENT_CANCELLED,
		.google_event_id = m->google_event_id,
		.sequence = f->sequence,
		.start_s = m->start_s,
		.end_s = m->end_s,
		.stamp_s = f->now_s,
		.summary = m->title,
		.description = m->description,
		.location = content_url(m->meet_link),
		.url = content_url(m->html_link),
		.organizer_email = organizer ? organizer : f->owner_email,
		.organizer_name = f->owner_name,
		.attendee_email = attendee,
		.attendee_name = m->attendee_name,
	};
	char *ics = ical_build(&ev);

	free(attendee);
	free(organizer);
	return ics;
}

int content_build(const struct content_facts *f, struct content *out, char **error)
{
	const struct content_meeting *m = &f->meeting;
	struct content_vars vars = { .n = 0 };
	struct content_when now = { 0 }, before = { 0 };
	char disconnected[96] = "";
	char *reasoning = leadfacts_reasoning(f->lead.reasoning_json);
	char *attendee = header_address(m->attendee_email);
	char *lead_email = header_address(f->lead_email);
	char *busy = NULL;
	struct template_value values[sizeof(vars.v) / sizeof(*vars.v)] = { { 0 } };
	bool meeting = f->kind != CONTENT_DISCONNECTED && f->kind != CONTENT_CONFLICT;
	/* The rep's own move or delete in Google Calendar: the mail reports it, and adds no copy of it (content.h). */
	bool in_google = m->changed_in_google && (f->kind == CONTENT_RESCHEDULED || f->kind == CONTENT_CANCELLED);
	/*
	 * A new slot the platform booked is where it checked the calendar; later
	 * mails about it need not repeat that, and a time the rep picked in
	 * Google was never checked.
	 */
	bool checked = f->kind == CONTENT_CREATED || (f->kind == CONTENT_RESCHEDULED && !in_google);
	int rc;

	memset(out, 0, sizeof(*out));
	if (meeting)
		content_when_of(m, &now);
	if (f->kind == CONTENT_CONFLICT) {
		struct content_meeting requested = {
			.zone = f->user_zone, .start_s = f->requested_start_s, .end_s = f->requested_end_s,
		};

		content_when_of(&requested, &now);
		busy = content_busy_text(f->busy_json, f->user_zone);
	}
	if (f->has_previous)
		content_when_of(&f->previous, &before);
	if (f->disconnected_at > 0)
		content_instant(f->disconnected_at, f->user_zone, disconnected, sizeof(disconnected));

	content_set(&vars, "owner_name", f->owner_name);
	content_set(&vars, "google_email", f->google_email);
	content_set(&vars, "meeting_id", meeting ? m->id : NULL);
	content_set(&vars, "lead_id", f->lead_id);
	content_set(&vars, "title", m->title);
	content_set(&vars, "when", now.when);
	content_set(&vars, "when_utc", now.when_utc);
	content_set(&vars, "when_short", now.when_short);
	content_set(&vars, "zone", now.zone);
	content_set(&vars, "utc_offset", now.offset);
	content_set(&vars, "duration", now.duration);
	content_set(&vars, "previous_when", f->has_previous ? before.when : NULL);
	content_set(&vars, "previous_when_utc", f->has_previous ? before.when_utc : NULL);
	content_set(&vars, "previous_zone", before.zone);
	content_set(&vars, "previous_utc_offset", before.offset);
	content_set(&vars, "attendee_name", m->attendee_name);
	content_set(&vars, "attendee_email", attendee);
	content_set(&vars, "meet_link", content_url(m->meet_link));
	content_set(&vars, "html_link", content_url(m->html_link));
	content_set(&vars, "cancellation_reason", m->cancellation_reason);
	content_set(&vars, "lead_name", f->lead.name);
	content_set(&vars, "lead_company", f->lead.company);
	content_set(&vars, "lead_phone", f->lead.phone);
	content_set(&vars, "lead_status", f->lead.status_tag);
	content_set(&vars, "reasoning", reasoning);
	content_set(&vars, "summary", f->lead.summary);
	content_set(&vars, "recording_url", content_url(f->lead.recording_url));
	/* A mail never carries a link of another scheme. */
	content_set(&vars, "transcript_url", content_url(f->lead.transcript_url));
	content_set(&vars, "grant_revoked",
		    f->disconnect_reason && strcmp(f->disconnect_reason, "grant_revoked") == 0 ? "yes" : NULL);
	content_set(&vars, "disconnected_when", disconnected);
	content_set(&vars, "reconnect_url", content_url(f->reconnect_url));
	content_set(&vars, "lead_email", lead_email);
	content_set(&vars, "busy", busy);
	content_set(&vars, "busy_detail", f->busy_detail);
	content_set(&vars, "overlaps", checked && m->check == CONTENT_CHECK_BUSY ? "yes" : NULL);
	content_set(&vars, "overlap_detail", checked && m->check == CONTENT_CHECK_BUSY ? m->conflict_detail : NULL);
	content_set(&vars, "unchecked_detail", checked && m->check == CONTENT_CHECK_NONE ? m->conflict_detail : NULL);
	content_set(&vars, "in_google", in_google ? "yes" : NULL);

	rc = content_render(content_templates_of(f->kind), &vars, values, out, error);
	template_values_release(values, vars.n);
	if (rc == 0 && meeting && f->kind != CONTENT_DECLINED && !in_google) {
		out->ics = content_ical(f);
		out->ics_method = f->kind == CONTENT_CANCELLED ? "CANCEL" : "REQUEST";
	}
	if (rc == 0 && checked && m->check == CONTENT_CHECK_BUSY)
		out->conflict = "yes";
	free(reasoning);
	free(attendee);
	free(lead_email);
	free(busy);
	if (rc < 0)
		content_release(out);
	return rc;
}

void content_release(struct content *c)
{
	free(c->subject);
	free(c->text);
	free(c->html);
	free(c->ics);
	memset(c, 0, sizeof(*c));
}
