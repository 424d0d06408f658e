/*
 * pages: the HTML the authorization endpoint shows a browser: the consent
 * page and Google's "Access blocked" error page; and the admin calendar
 * view (GET /_standin/events with Accept: text/html).
 *
 * The consent form is what tests and the local stack's users drive: one
 * labelled email input, one checkbox per requested scope (checked; Google's
 * granular consent lets a user untick a scope, which clients must cope
 * with), Allow and Deny buttons, and the whole request in hidden inputs so
 * the POST can be checked again from scratch. Every value echoed back is
 * HTML-escaped: state and login_hint come from whoever built the link.
 */
#include "standin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "datetime.h"
#include "tz.h"

#include "xmalloc.h"

struct pages_buf {
	char *p;
	size_t len;
	size_t cap;
};

static void pages_add(struct pages_buf *b, const char *s)
{
	size_t n = strlen(s);

	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, s, n + 1);
	b->len += n;
}

static void pages_add_escaped(struct pages_buf *b, const char *s)
{
	char *e = util_html_escape(s);

	pages_add(b, e);
	free(e);
}

static void pages_hidden(struct pages_buf *b, const char *name, const char *value)
{
	if (value == NULL)
		return;
	pages_add(b, "<input type=\"hidden\" name=\"");
	pages_add(b, name);
	pages_add(b, "\" value=\"");
	pages_add_escaped(b, value);
	pages_add(b, "\">\n");
}

/* What Google's consent screen says for the scopes this project asks for. */
static const char *pages_scope_text(const char *scope)
{
	static const struct {
		const char *scope;
		const char *text;
	} texts[] = {
	    {"https://www.googleapis.com/auth/calendar",
	     "See, edit, share, and permanently delete all the calendars you can access using Google Calendar"},
	    {"https://www.googleapis.com/auth/calendar.events", "View and edit events on all your calendars"},
	    {"https://www.googleapis.com/auth/calendar.readonly",
	     "See and download any calendar you can access using your Google Calendar"},
	    {"https://www.googleapis.com/auth/calendar.events.readonly", "View events on all your calendars"},
	    {"https://www.googleapis.com/auth/userinfo.email", "See your primary Google Account email address"},
	    {"https://www.googleapis.com/auth/userinfo.profile",
	     "See your personal info, including any personal info you've made publicly available"},
	    {"openid", "Associate you with your personal info on Google"},
	};

	for (size_t i = 0; i < sizeof(texts) / sizeof(*texts); i++) {
		if (strcmp(texts[i].scope, scope) == 0)
			return texts[i].text;
	}
	return scope;
}

static void pages_head(struct pages_buf *b)
{
	pages_add(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
	             "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
	             "<title>Sign in - Google Accounts</title>\n"
	             "<style>body{font-family:sans-serif;max-width:40em;margin:2em auto;padding:0 1em}"
	             "label{display:inline-block;margin:.3em 0}button{margin:1em .5em 0 0;padding:.5em 1.5em}"
	             "small{color:#555}</style>\n</head>\n<body>\n<main>\n");
}

char *pages_consent(const struct authz *a, const char *scope, const char *email)
{
	struct pages_buf b = {0};
	size_t n;
	char **scopes = util_words(scope, &n);

	pages_head(&b);
	pages_add(&b, "<h1>Google stand-in</h1>\n<p><strong>");
	pages_add_escaped(&b, a->client_id);
	pages_add(&b, "</strong> wants access to your Google Account</p>\n"
	              "<form method=\"post\" action=\"/o/oauth2/v2/consent\">\n");
	pages_hidden(&b, "client_id", a->client_id);
	pages_hidden(&b, "redirect_uri", a->redirect_uri);
	pages_hidden(&b, "response_type", a->response_type);
	pages_hidden(&b, "scope", a->scope);
	pages_hidden(&b, "state", a->state);
	pages_hidden(&b, "code_challenge", a->code_challenge);
	pages_hidden(&b, "code_challenge_method", a->code_challenge_method);
	pages_hidden(&b, "access_type", a->access_type);
	pages_hidden(&b, "prompt", a->prompt);
	pages_hidden(&b, "login_hint", a->login_hint);
	pages_hidden(&b, "include_granted_scopes", a->include_granted_scopes);
	pages_hidden(&b, "nonce", a->nonce);
	pages_add(&b, "<p><label for=\"email\">Google Account email</label><br>\n"
	              "<input type=\"email\" id=\"email\" name=\"email\" required autocomplete=\"email\" value=\"");
	pages_add_escaped(&b, email);
	pages_add(&b, "\"></p>\n<fieldset>\n<legend>This will allow the app to:</legend>\n");
	for (size_t i = 0; i < n; i++) {
		char id[32];

		snprintf(id, sizeof(id), "scope%zu", i);
		pages_add(&b, "<div><input type=\"checkbox\" name=\"granted_scope\" id=\"");
		pages_add(&b, id);
		pages_add(&b, "\" value=\"");
		pages_add_escaped(&b, scopes[i]);
		pages_add(&b, "\" checked> <label for=\"");
		pages_add(&b, id);
		pages_add(&b, "\">");
		pages_add_escaped(&b, pages_scope_text(scopes[i]));
		pages_add(&b, " <small>(");
		pages_add_escaped(&b, scopes[i]);
		pages_add(&b, ")</small></label></div>\n");
	}
	pages_add(&b, "</fieldset>\n"
	              "<button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>\n"
	              "<button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button>\n"
	              "</form>\n</main>\n</body>\n</html>\n");
	util_words_free(scopes, n);
	return b.p;
}

char *pages_error(const char *title, int code, const char *error, const char *detail)
{
	struct pages_buf b = {0};
	char line[128];

	pages_head(&b);
	pages_add(&b, "<h1>Access blocked: ");
	pages_add_escaped(&b, title);
	pages_add(&b, "</h1>\n<p>");
	pages_add_escaped(&b, detail);
	snprintf(line, sizeof(line), "</p>\n<p id=\"error\"><strong>Error %d: ", code);
	pages_add(&b, line);
	pages_add_escaped(&b, error);
	pages_add(&b, "</strong></p>\n</main>\n</body>\n</html>\n");
	return b.p;
}

/* One button: a form POSTing hidden fields to an admin knob, which redirects back here. */
static void pages_button(struct pages_buf *b, const char *action, const char *label, const char *email, const char *id,
                         const char *name1, const char *value1, const char *name2, const char *value2)
{
	pages_add(b, "<form method=\"post\" action=\"");
	pages_add(b, action);
	pages_add(b, "\">");
	pages_hidden(b, "email", email);
	pages_hidden(b, "id", id);
	if (name1 != NULL)
		pages_hidden(b, name1, value1);
	if (name2 != NULL)
		pages_hidden(b, name2, value2);
	pages_add(b, "<button type=\"submit\">");
	pages_add_escaped(b, label);
	pages_add(b, "</button></form>\n");
}

static const char *pages_str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int pages_by_start(const void *a, const void *b)
{
	const struct cal_event *x = *(struct cal_event *const *)a, *y = *(struct cal_event *const *)b;

	if (x->start_s != y->start_s)
		return x->start_s < y->start_s ? -1 : 1;
	return strcmp(x->id, y->id);
}

/* "2030-06-01" and "09:00" of an instant in zone. */
static void pages_local(const char *zone, int64_t epoch_s, char *day, char *hm)
{
	char buf[40];
	int off = 0;

	if (tz_offset_at_utc(zone, epoch_s, &off) < 0)
		off = 0;
	datetime_format(epoch_s, off, buf, sizeof(buf));
	memcpy(day, buf, 10);
	day[10] = '\0';
	memcpy(hm, buf + 11, 5);
	hm[5] = '\0';
}

static void pages_event(struct pages_buf *b, const struct cal_event *ev, const char *zone)
{
	const char *summary = pages_str(ev->res, "summary");
	const char *status = pages_str(ev->res, "status");
	bool cancelled = status != NULL && strcmp(status, "cancelled") == 0;
	bool all_day =
	    cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(ev->res, "start"), "date") != NULL;
	const char *email = ev->account->email;
	const cJSON *att;
	char day[16], from[8], to[8];

	pages_add(b, cancelled ? "<li class=\"event cancelled\">" : "<li class=\"event\">");
	pages_local(zone, ev->start_s, day, from);
	pages_local(zone, ev->end_s, day, to);
	pages_add(b, "<span class=\"time\">");
	if (all_day) {
		pages_add(b, "all day");
	} else {
		pages_add(b, from);
		pages_add(b, "–");
		pages_add(b, to);
	}
	pages_add(b, "</span> <b class=\"title\">");
	pages_add_escaped(b, summary != NULL ? summary : "(No title)");
	pages_add(b, "</b> <span class=\"status\">");
	pages_add_escaped(b, status != NULL ? status : "confirmed");
	pages_add(b, "</span> <code class=\"id\">");
	pages_add_escaped(b, ev->id);
	pages_add(b, "</code>\n<ul class=\"attendees\">\n");
	cJSON_ArrayForEach(att, cJSON_GetObjectItemCaseSensitive(ev->res, "attendees")) {
		const char *who = pages_str(att, "email");
		const char *rs = pages_str(att, "responseStatus");

		if (who == NULL)
			continue;
		pages_add(b, "<li class=\"attendee\"><span class=\"who\">");
		pages_add_escaped(b, who);
		pages_add(b, "</span>: <span class=\"answer\">");
		pages_add_escaped(b, rs != NULL ? rs : "needsAction");
		pages_add(b, "</span>\n");
		if (!cancelled && strcasecmp(who, email) != 0) {
			pages_button(b, "/_standin/events/respond", "Accept as attendee", email, ev->id, "attendee",
			             who, "response", "accepted");
			pages_button(b, "/_standin/events/respond", "Decline as attendee", email, ev->id, "attendee",
			             who, "response", "declined");
		}
		pages_add(b, "</li>\n");
	}
	pages_add(b, "</ul>\n");
	if (!cancelled) {
		pages_button(b, "/_standin/events/move", all_day ? "+1 day" : "+1 hour", email, ev->id, "shift_s",
		             all_day ? "86400" : "3600", NULL, NULL);
		if (!all_day)
			pages_button(b, "/_standin/events/move", "+1 day", email, ev->id, "shift_s", "86400", NULL,
			             NULL);
		pages_button(b, "/_standin/events/delete", "Delete", email, ev->id, NULL, NULL, NULL, NULL);
	}
	pages_add(b, "</li>\n");
}

char *pages_calendar(const struct account *const *accounts, size_t n)
{
	struct pages_buf b = {0};

	pages_add(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	              "<title>google-standin: calendars</title>\n<style>body{font-family:sans-serif}"
	              ".cancelled{color:#888;text-decoration:line-through}form{display:inline}"
	              "li{margin:.2em 0}</style></head>\n<body>\n<h1>Calendars</h1>\n");
	if (n == 0)
		pages_add(&b, "<p>No accounts yet.</p>\n");
	for (size_t i = 0; i < n; i++) {
		const struct account *a = accounts[i];
		const char *zone = store_timezone(a);
		struct cal_event **evs = xreallocarray(NULL, a->nevents + 1, sizeof(*evs));
		char last[16] = "";

		memcpy(evs, a->events, a->nevents * sizeof(*evs));
		qsort(evs, a->nevents, sizeof(*evs), pages_by_start);
		pages_add(&b, "<section class=\"account\"><h2>");
		pages_add_escaped(&b, a->email);
		pages_add(&b, " <small>(");
		pages_add_escaped(&b, zone);
		pages_add(&b, ")</small></h2>\n");
		if (a->nevents == 0)
			pages_add(&b, "<p>No events.</p>\n");
		for (size_t k = 0; k < a->nevents; k++) {
			char day[16], hm[8];

			pages_local(zone, evs[k]->start_s, day, hm);
			if (strcmp(day, last) != 0) {
				if (last[0] != '\0')
					pages_add(&b, "</ul>\n");
				pages_add(&b, "<h3 class=\"day\">");
				pages_add(&b, day);
				pages_add(&b, "</h3>\n<ul class=\"events\">\n");
				memcpy(last, day, sizeof(last));
			}
			pages_event(&b, evs[k], zone);
		}
		if (last[0] != '\0')
			pages_add(&b, "</ul>\n");
		pages_add(&b, "</section>\n");
		free(evs);
	}
	pages_add(&b, "</body></html>\n");
	return b.p;
}
