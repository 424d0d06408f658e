/*
 * template: the mail texts, kept in files and filled in here.
 *
 * The wording of every mail lives in templates/<kind>.txt and
 * templates/<kind>.html, embedded into the binary at build time by
 * lib/embed.py, so changing a sentence never means editing C and the
 * binary needs no files at run time. The first line of a .txt file is
 * "Subject: ..." and is the mail's subject; the rest is the body.
 *
 * The syntax is a small subset of Mustache:
 *
 *	{{name}}                 the value, cleaned (text) or also escaped (HTML)
 *	{{#name}}...{{/name}}    the block when name has a non-empty value
 *	{{^name}}...{{/name}}    the block when it has none
 *	{{>file}}                another embedded file, rendered in place (shared blocks)
 *
 * A tag alone on its line takes its line break with it. Every value is
 * untrusted: text_clean() runs on each, and in HTML mode text_html_escape()
 * too, so a template cannot forget to escape. A placeholder the caller did not
 * define is an error, so a misspelt name fails the unit test instead of
 * vanishing from a mail.
 */
#ifndef MAILER_TEMPLATE_H
#define MAILER_TEMPLATE_H

#include <stddef.h>

#include "embed.h"

enum template_mode {
	TEMPLATE_TEXT,
	TEMPLATE_HTML,
};

/* One defined name; value NULL or "" counts as empty. */
struct template_var {
	const char *key;
	const char *value;
};

/* An embedded file, as generated from templates/ (templates_data.c). */
extern const struct embed_file template_files[];
extern const size_t template_files_count;

/* The embedded text of a file such as "created.txt", or NULL when there is none. */
const char *template_source(const char *name);

/*
 * Fill in src. Returns the text (the caller frees it), or NULL with *error
 * set to a sentence naming the problem (the caller frees it): an undefined
 * name, an unclosed tag or section.
 */
char *template_render(const char *src, enum template_mode mode, const struct template_var *vars, size_t nvars,
		      char **error);

/*
 * The same in two steps, for templates rendered again and again: compile
 * once (never fails: what would fail the render is kept and fails it when
 * reached), then render with each mail's variables. A compiled template
 * points into src, which must outlive it (the embedded files do).
 */
struct template;
struct template *template_compile(const char *src);
void template_free(struct template *t);

/*
 * Each variable's value as rendered, cleaned (and escaped for HTML) once
 * however often the templates of one mail use it: an array parallel to vars,
 * zeroed by the caller, filled as rendering goes, released with
 * template_values_release(). NULL renders without keeping them.
 */
struct template_value {
	char *clean;
	char *html;
};

char *template_render_compiled(const struct template *t, enum template_mode mode, const struct template_var *vars,
			       size_t nvars, struct template_value *cache, char **error);
void template_values_release(struct template_value *cache, size_t n);

/*
 * Split a .txt source into the template of its subject (the first line,
 * after "Subject: ") and the template of its body (after the blank line
 * that follows). Rendering them apart keeps a value with a line break from
 * moving text between the two. *subject is a fresh string the caller frees;
 * *body points into src. 0, or -1 when src does not start that way.
 */
int template_split_subject(const char *src, char **subject, const char **body);

#endif
