/*
 * leadfacts: what the rep reads about a lead, the same wherever it is shown.
 *
 * The Google event's description (scheduler-worker/event.c) and every mail
 * (mailer-worker/content.c) show the same facts of the call: who, which
 * company, the status tag, the AI's reasoning, the summary and the links. The
 * fields come from the database as text; the reasoning, which the analysis
 * stores as JSON, is turned into lines here and only here, so the rep reads
 * one version of it in the calendar and in the mail.
 */
#ifndef LEADFACTS_H
#define LEADFACTS_H

/* A lead's facts as read from lead_analytics, contacts and calls; any may be NULL. */
struct lead_facts {
	const char *name;
	const char *company;
	const char *phone;
	const char *status_tag;
	const char *reasoning_json;	/* lead_analytics.reasoning as JSON text */
	const char *summary;		/* smart_notification */
	const char *recording_url;
	const char *transcript_url;	/* TRANSCRIPT_URL with the call filled in; NULL: no link */
};

/*
 * The columns the scheduler selects for a lead's facts, in this order, from
 * `lead_analytics la` joined as LEADFACTS_JOINS: the lead's contact `c` (by
 * phone number, one with an email first, then the newest) and its call `ca`.
 * leadfacts_from_row() reads them. The mailer reads a lead for a meeting,
 * through the meeting's own call and attendee (mailer-worker/job.c), and
 * fills the same struct lead_facts from its own columns.
 */
#define LEADFACTS_COLUMNS \
	"la.extracted_name, c.name, la.company_name, la.phone_number, la.lead_status_tag, la.reasoning::text," \
	" la.smart_notification, ca.recording_url, la.call_id, c.id, c.email, la.extracted_email"
#define LEADFACTS_NCOLUMNS 12
#define LEADFACTS_JOINS \
	" LEFT JOIN LATERAL (SELECT id, email, name FROM contacts" \
	"  WHERE user_id = la.user_id AND phone_number = la.phone_number" \
	"  ORDER BY (email IS NULL OR email = ''), updated_at DESC NULLS LAST LIMIT 1) c ON TRUE" \
	" LEFT JOIN calls ca ON ca.id = la.call_id"

struct db_result;

/* A lead as LEADFACTS_COLUMNS read it. Pointers into the result; NULL where a column is NULL. */
struct lead_row {
	struct lead_facts facts;	/* name: the analysis's, else the contact's; transcript_url: NULL */
	const char *call_id;
	const char *contact_id;
	const char *contact_email;	/* unchecked: whom to invite, before extracted_email */
	const char *extracted_email;
};

/* The LEADFACTS_COLUMNS that start at column col of row into *out. */
void leadfacts_from_row(const struct db_result *r, int row, int col, struct lead_row *out);

/*
 * The reasoning as lines: "- key: value" per member of a JSON object,
 * "- value" per item of an array, a JSON string as it is, other JSON
 * printed, and text that is not JSON as it is. NULL when there is nothing
 * to show (absent, null, or an empty object or array). The caller frees it.
 */
char *leadfacts_reasoning(const char *json_text);

#endif
