/*
 * text: making untrusted text safe to place in a mail.
 *
 * Names, companies, reasoning and summaries come from a phone call through a
 * language model, so they may hold anything: line breaks meant to start a
 * header, markup, control characters, broken UTF-8. These helpers turn such
 * text into valid UTF-8 without controls (keeping line breaks only where a
 * body may have them) and escape it for HTML. Every value that reaches a
 * header, a body or the calendar part goes through here first.
 */
#ifndef MAILER_TEXT_H
#define MAILER_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/*
 * A copy of s (NULL reads as "") that is valid UTF-8 (bad bytes become
 * U+FFFD) with no control characters: with multiline, CR LF and lone CR
 * become LF and tabs stay; without, every line break and tab becomes one
 * space, runs of spaces collapse and the ends are trimmed. C1 controls and
 * the Unicode line and paragraph separators are treated like their ASCII
 * counterparts. The caller frees the result.
 */
char *text_clean(const char *s, bool multiline);

/*
 * s with & < > " ' replaced by character references and each LF by
 * "<br>\n", for text inside an HTML element or a quoted attribute. The caller
 * frees the result.
 */
char *text_html_escape(const char *s);

/* Shorten s in place to at most max bytes without splitting a UTF-8 sequence. */
void text_cut_utf8(char *s, size_t max);

/* True when every byte of s is printable ASCII or a space. */
bool text_is_printable_ascii(const char *s);

/* True for an http:// or https:// URL without white space, controls, quotes or angle brackets. */
bool text_is_web_url(const char *s);

#endif
