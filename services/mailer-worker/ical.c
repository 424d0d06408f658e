/*
 * ical: VCALENDAR objects for meeting mails (see ical.h).
 */
#include "ical.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libical/ical.h>

#include "text.h"
#include "xmalloc.h"

#define ICAL_PRODID "-//AI Calling Agent//Calendar Booking//EN"
#define ICAL_UID_DOMAIN "google.com"
#define ICAL_TEXT_MAX 8000

static struct icaltimetype ical_utc(int64_t t)
{
	return icaltime_from_timet_with_zone((time_t)t, 0, icaltimezone_get_utc_timezone());
}

/* Clean untrusted text before libical escapes it; NULL when nothing is left. */
static char *ical_text(const char *s, bool multiline)
{
	char *t;

	if (s == NULL)
		return NULL;
	t = text_clean(s, multiline);
	text_cut_utf8(t, ICAL_TEXT_MAX);
	if (*t == '\0') {
		free(t);
		return NULL;
	}
	return t;
}

/*
 * A CN parameter value. Parameter values cannot carry a double quote at
 * all (RFC 5545 3.1), so one becomes an apostrophe.
 */
static char *ical_cn(const char *name)
{
	char *cn = ical_text(name, false);

	if (cn != NULL) {
		text_cut_utf8(cn, 200);
		for (char *p = cn; *p; p++)
			if (*p == '"')
				*p = '\'';
	}
	return cn;
}

static void ical_add_text(icalcomponent *ev, icalproperty *(*make)(const char *), const char *value,
			  bool multiline)
{
	char *t = ical_text(value, multiline);

	if (t != NULL)
		icalcomponent_add_property(ev, make(t));
	free(t);
}

static icalproperty *ical_person(icalproperty *(*make)(const char *), const char *email, const char *name)
{
	char *mailto = xasprintf("mailto:%s", email);
	icalproperty *p = make(mailto);
	char *cn = ical_cn(name);

	if (cn != NULL)
		icalproperty_add_parameter(p, icalparameter_new_cn(cn));
	free(cn);
	free(mailto);
	return p;
}

char *ical_build(const struct ical_event *e)
{
	icalcomponent *cal = icalcomponent_new_vcalendar();
	icalcomponent *ev = icalcomponent_new_vevent();
	char *uid = xasprintf("%s@%s", e->google_event_id, ICAL_UID_DOMAIN);
	char *text, *out;

	icalcomponent_add_property(cal, icalproperty_new_prodid(ICAL_PRODID));
	icalcomponent_add_property(cal, icalproperty_new_version("2.0"));
	icalcomponent_add_property(cal, icalproperty_new_calscale("GREGORIAN"));
	icalcomponent_add_property(cal, icalproperty_new_method(e->cancel ? ICAL_METHOD_CANCEL : ICAL_METHOD_REQUEST));

	icalcomponent_add_property(ev, icalproperty_new_uid(uid));
	icalcomponent_add_property(ev, icalproperty_new_sequence(e->sequence));
	icalcomponent_add_property(ev, icalproperty_new_dtstamp(ical_utc(e->stamp_s)));
	icalcomponent_add_property(ev, icalproperty_new_dtstart(ical_utc(e->start_s)));
	icalcomponent_add_property(ev, icalproperty_new_dtend(ical_utc(e->end_s)));
	ical_add_text(ev, icalproperty_new_summary, e->summary, false);
	ical_add_text(ev, icalproperty_new_description, e->description, true);
	ical_add_text(ev, icalproperty_new_location, e->location, false);
	if (text_is_web_url(e->url))
		icalcomponent_add_property(ev, icalproperty_new_url(e->url));
	if (e->organizer_email != NULL)
		icalcomponent_add_property(ev, ical_person(icalproperty_new_organizer, e->organizer_email,
							   e->organizer_name));
	if (e->attendee_email != NULL) {
		icalproperty *a = ical_person(icalproperty_new_attendee, e->attendee_email, e->attendee_name);

		icalproperty_add_parameter(a, icalparameter_new_role(ICAL_ROLE_REQPARTICIPANT));
		icalproperty_add_parameter(a, icalparameter_new_partstat(ICAL_PARTSTAT_NEEDSACTION));
		/* Google sends the attendee its own invitation; this copy only informs the owner. */
		icalproperty_add_parameter(a, icalparameter_new_rsvp(ICAL_RSVP_FALSE));
		icalcomponent_add_property(ev, a);
	}
	icalcomponent_add_property(ev, icalproperty_new_status(e->cancel ? ICAL_STATUS_CANCELLED
									   : ICAL_STATUS_CONFIRMED));
	icalcomponent_add_property(ev, icalproperty_new_transp(e->cancel ? ICAL_TRANSP_TRANSPARENT
									 : ICAL_TRANSP_OPAQUE));
	icalcomponent_add_component(cal, ev);

	text = icalcomponent_as_ical_string_r(cal);
	out = xstrdup(text);
	icalmemory_free_buffer(text);
	icalcomponent_free(cal);
	free(uid);
	return out;
}
