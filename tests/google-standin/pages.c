/*
 * pages: the HTML the authorization endpoint shows a browser: the consent
 * page and Google's "Access blocked" error page.
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
