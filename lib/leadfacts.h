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
 * The reasoning as lines: "- key: value" per member of a JSON object,
 * "- value" per item of an array, a JSON string as it is, other JSON
 * printed, and text that is not JSON as it is. NULL when there is nothing
 * to show (absent, null, or an empty object or array). The caller frees it.
 */
char *leadfacts_reasoning(const char *json_text);

#endif
