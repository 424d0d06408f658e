/*
 * template: rendering the embedded mail templates (see template.h).
 */
#include "template.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"
#include "xmalloc.h"

#define TEMPLATE_SUBJECT "Subject: "
/* Partials may include partials, but a loop must end. */
#define TEMPLATE_MAX_DEPTH 4

struct template_buf {
	char *data;
	size_t len, cap;
};

struct template_ctx {
	enum template_mode mode;
	const struct template_var *vars;
	size_t nvars;
	int depth;
	char *error;
};

static void template_append(struct template_buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->data = xrealloc(b->data, b->cap);
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

const char *template_source(const char *name)
{
	const struct embed_file *f = embed_find(template_files, template_files_count, name);

	return f ? f->data : NULL;
}

/* The variable named by s[0..len), or NULL (with ctx->error set) when none is defined. */
static const struct template_var *template_lookup(struct template_ctx *ctx, const char *s, size_t len)
{
	for (size_t i = 0; i < ctx->nvars; i++)
		if (strlen(ctx->vars[i].key) == len && memcmp(ctx->vars[i].key, s, len) == 0)
			return &ctx->vars[i];
	ctx->error = xasprintf("the template uses {{%.*s}}, which is not defined", (int)len, s);
	return NULL;
}

static void template_put_value(struct template_ctx *ctx, struct template_buf *out, const char *value)
{
	char *clean = text_clean(value, true);

	if (ctx->mode == TEMPLATE_HTML) {
		char *html = text_html_escape(clean);

		template_append(out, html, strlen(html));
		free(html);
	} else {
		template_append(out, clean, strlen(clean));
	}
	free(clean);
}

/* Where "}}" closes the tag that opens at s[open], or NULL. */
static const char *template_tag_end(const char *s, size_t len, size_t open)
{
	for (size_t i = open + 2; i + 1 < len; i++)
		if (s[i] == '}' && s[i + 1] == '}')
			return s + i;
	return NULL;
}

/*
 * Find the {{/name}} that closes a section whose body starts at s[from],
 * skipping sections of the same name nested inside. Stores where the closing
 * tag starts and ends; -1 when there is none.
 */
static int template_section_end(const char *s, size_t len, size_t from, const char *name, size_t nlen,
				size_t *close_open, size_t *close_end)
{
	int depth = 0;

	for (size_t i = from; i + 1 < len; i++) {
		const char *end;

		if (s[i] != '{' || s[i + 1] != '{' || i + 2 >= len)
			continue;
		end = template_tag_end(s, len, i);
		if (end == NULL)
			return -1;
		if ((size_t)(end - s) - (i + 3) == nlen && memcmp(s + i + 3, name, nlen) == 0) {
			if (s[i + 2] == '#' || s[i + 2] == '^') {
				depth++;
			} else if (s[i + 2] == '/' && depth-- == 0) {
				*close_open = i;
				*close_end = (size_t)(end - s) + 2;
				return 0;
			}
		}
	}
	return -1;
}

/* A tag alone on its line: the line break after it goes with it. */
static size_t template_standalone_skip(const char *s, size_t len, size_t open, size_t end)
{
	if ((open == 0 || s[open - 1] == '\n') && end < len && s[end] == '\n')
		return 1;
	return 0;
}

static int template_render_into(struct template_ctx *ctx, struct template_buf *out, const char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		const char *mark = NULL, *end;
		size_t open, tag_end, name_len;
		const char *name;
		const struct template_var *var;

		for (size_t k = i; k + 1 < len; k++) {
			if (s[k] == '{' && s[k + 1] == '{') {
				mark = s + k;
				break;
			}
		}
		if (mark == NULL) {
			template_append(out, s + i, len - i);
			return 0;
		}
		open = (size_t)(mark - s);
		template_append(out, s + i, open - i);
		end = template_tag_end(s, len, open);
		if (end == NULL) {
			ctx->error = xstrdup("a {{ tag is not closed with }}");
			return -1;
		}
		tag_end = (size_t)(end - s) + 2;
		name = s + open + 2;
		name_len = (size_t)(end - name);
		if (*name == '>') {
			char *file = xstrndup(name + 1, name_len - 1);
			const char *partial = template_source(file);
			int rc = -1;

			if (partial == NULL) {
				ctx->error = xasprintf("the template includes {{>%s}}, which does not exist", file);
			} else if (ctx->depth >= TEMPLATE_MAX_DEPTH) {
				ctx->error = xasprintf("partials nest deeper than %d at {{>%s}}", TEMPLATE_MAX_DEPTH,
						       file);
			} else {
				ctx->depth++;
				rc = template_render_into(ctx, out, partial, strlen(partial));
				ctx->depth--;
			}
			free(file);
			if (rc < 0)
				return -1;
			i = tag_end + template_standalone_skip(s, len, open, tag_end);
			continue;
		}
		if (*name == '/') {
			ctx->error = xasprintf("{{%.*s}} closes a section that was not opened", (int)name_len, name);
			return -1;
		}
		if (*name == '#' || *name == '^') {
			bool invert = *name == '^';
			size_t body, close_open, close_end;
			bool show;

			var = template_lookup(ctx, name + 1, name_len - 1);
			if (var == NULL)
				return -1;
			if (template_section_end(s, len, tag_end, name + 1, name_len - 1, &close_open,
						 &close_end) < 0) {
				ctx->error = xasprintf("the section {{%.*s}} is not closed", (int)name_len, name);
				return -1;
			}
			body = tag_end + template_standalone_skip(s, len, open, tag_end);
			show = (var->value != NULL && *var->value != '\0') != invert;
			if (show && template_render_into(ctx, out, s + body, close_open - body) < 0)
				return -1;
			i = close_end + template_standalone_skip(s, len, close_open, close_end);
			continue;
		}
		var = template_lookup(ctx, name, name_len);
		if (var == NULL)
			return -1;
		template_put_value(ctx, out, var->value);
		i = tag_end;
	}
	return 0;
}

char *template_render(const char *src, enum template_mode mode, const struct template_var *vars, size_t nvars,
		      char **error)
{
	struct template_ctx ctx = { .mode = mode, .vars = vars, .nvars = nvars };
	struct template_buf out = { 0 };

	template_append(&out, "", 0);
	if (template_render_into(&ctx, &out, src, strlen(src)) < 0) {
		free(out.data);
		*error = ctx.error;
		return NULL;
	}
	*error = NULL;
	return out.data;
}

int template_split_subject(const char *src, char **subject, const char **body)
{
	const char *nl;

	if (strncmp(src, TEMPLATE_SUBJECT, strlen(TEMPLATE_SUBJECT)) != 0)
		return -1;
	src += strlen(TEMPLATE_SUBJECT);
	nl = strchr(src, '\n');
	if (nl == NULL || nl[1] != '\n')
		return -1;
	*subject = xstrndup(src, (size_t)(nl - src));
	*body = nl + 2;
	return 0;
}
