/*
 * template: rendering the embedded mail templates (see template.h).
 */
#include "template.h"

#include <stdbool.h>
#include <sys/types.h>
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

/*
 * A compiled template: the source cut once into a tree of nodes, so a mail
 * only walks it. Compiling finds what rendering would find, in the same
 * order: a syntax error becomes a node that fails the render when (and only
 * when) the render reaches it, as the one-pass renderer did; names are looked
 * up at render time, because the variables come with each render.
 */
enum template_node_kind {
	TNODE_TEXT,		/* s[0..len) as is */
	TNODE_VAR,		/* {{name}}: name is s[0..len) */
	TNODE_SECTION,		/* {{#name}} or {{^name}}: children when shown */
	TNODE_ERROR,		/* error */
};

struct template_node {
	enum template_node_kind kind;
	const char *s;
	size_t len;
	bool invert;
	bool unclosed;		/* a section without its {{/name}}: error after the name's lookup */
	size_t hint;		/* where the name was found last time (the callers pass the same list each time) */
	char *error;
	struct template_node *children;
	struct template_node *next;
};

struct template {
	struct template_node *nodes;
};

struct template_ctx {
	enum template_mode mode;
	const struct template_var *vars;
	size_t nvars;
	struct template_value *cache;
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

struct template_list {
	struct template_node **tail;
};

static struct template_node *template_add(struct template_list *l, enum template_node_kind kind, const char *s,
					  size_t len)
{
	struct template_node *n = xcalloc(1, sizeof(*n));

	n->kind = kind;
	n->s = s;
	n->len = len;
	*l->tail = n;
	l->tail = &n->next;
	return n;
}

static void template_add_text(struct template_list *l, const char *s, size_t len)
{
	if (len > 0)
		template_add(l, TNODE_TEXT, s, len);
}

/* The error node that ends a list: nothing after it is ever rendered. */
static void template_add_error(struct template_list *l, char *error)
{
	template_add(l, TNODE_ERROR, NULL, 0)->error = error;
}

static void template_compile_into(struct template_list *l, const char *s, size_t len, int depth)
{
	size_t i = 0;

	while (i < len) {
		const char *mark = NULL, *end;
		size_t open, tag_end, name_len;
		const char *name;

		for (size_t k = i; k + 1 < len; k++) {
			if (s[k] == '{' && s[k + 1] == '{') {
				mark = s + k;
				break;
			}
		}
		if (mark == NULL) {
			template_add_text(l, s + i, len - i);
			return;
		}
		open = (size_t)(mark - s);
		template_add_text(l, s + i, open - i);
		end = template_tag_end(s, len, open);
		if (end == NULL) {
			template_add_error(l, xstrdup("a {{ tag is not closed with }}"));
			return;
		}
		tag_end = (size_t)(end - s) + 2;
		name = s + open + 2;
		name_len = (size_t)(end - name);
		if (*name == '>') {
			char *file = xstrndup(name + 1, name_len - 1);
			const char *partial = template_source(file);

			if (partial == NULL) {
				template_add_error(l, xasprintf("the template includes {{>%s}}, which does not exist",
								file));
				free(file);
				return;
			}
			if (depth >= TEMPLATE_MAX_DEPTH) {
				template_add_error(l, xasprintf("partials nest deeper than %d at {{>%s}}",
								TEMPLATE_MAX_DEPTH, file));
				free(file);
				return;
			}
			free(file);
			template_compile_into(l, partial, strlen(partial), depth + 1);
			i = tag_end + template_standalone_skip(s, len, open, tag_end);
			continue;
		}
		if (*name == '/') {
			template_add_error(l, xasprintf("{{%.*s}} closes a section that was not opened", (int)name_len,
							name));
			return;
		}
		if (*name == '#' || *name == '^') {
			struct template_node *sec = template_add(l, TNODE_SECTION, name + 1, name_len - 1);
			size_t body, close_open, close_end;

			sec->invert = *name == '^';
			if (template_section_end(s, len, tag_end, name + 1, name_len - 1, &close_open,
						 &close_end) < 0) {
				sec->unclosed = true;
				sec->error = xasprintf("the section {{%.*s}} is not closed", (int)name_len, name);
				return;
			}
			body = tag_end + template_standalone_skip(s, len, open, tag_end);
			{
				struct template_list children = { &sec->children };

				template_compile_into(&children, s + body, close_open - body, depth);
			}
			i = close_end + template_standalone_skip(s, len, close_open, close_end);
			continue;
		}
		template_add(l, TNODE_VAR, name, name_len);
		i = tag_end;
	}
}

struct template *template_compile(const char *src)
{
	struct template *t = xcalloc(1, sizeof(*t));
	struct template_list l = { &t->nodes };

	template_compile_into(&l, src, strlen(src), 0);
	return t;
}

static void template_nodes_free(struct template_node *n)
{
	while (n != NULL) {
		struct template_node *next = n->next;

		template_nodes_free(n->children);
		free(n->error);
		free(n);
		n = next;
	}
}

void template_free(struct template *t)
{
	if (t == NULL)
		return;
	template_nodes_free(t->nodes);
	free(t);
}

static bool template_key_is(const char *key, const char *s, size_t len)
{
	return strncmp(key, s, len) == 0 && key[len] == '\0';
}

/* The index of the variable named by n, or -1 (with ctx->error set) when none is defined. */
static ssize_t template_lookup(struct template_ctx *ctx, struct template_node *n)
{
	if (n->hint < ctx->nvars && template_key_is(ctx->vars[n->hint].key, n->s, n->len))
		return (ssize_t)n->hint;
	for (size_t i = 0; i < ctx->nvars; i++) {
		if (template_key_is(ctx->vars[i].key, n->s, n->len)) {
			n->hint = i;
			return (ssize_t)i;
		}
	}
	ctx->error = xasprintf("the template uses {{%.*s}}, which is not defined", (int)n->len, n->s);
	return -1;
}

static void template_put_value(struct template_ctx *ctx, struct template_buf *out, size_t i)
{
	struct template_value one = { 0 }, *v = ctx->cache != NULL ? &ctx->cache[i] : &one;

	if (v->clean == NULL)
		v->clean = text_clean(ctx->vars[i].value, true);
	if (ctx->mode == TEMPLATE_HTML) {
		if (v->html == NULL)
			v->html = text_html_escape(v->clean);
		template_append(out, v->html, strlen(v->html));
	} else {
		template_append(out, v->clean, strlen(v->clean));
	}
	if (v == &one)
		template_values_release(&one, 1);
}

static int template_render_nodes(struct template_ctx *ctx, struct template_buf *out, struct template_node *n)
{
	for (; n != NULL; n = n->next) {
		ssize_t i;
		const char *value;

		switch (n->kind) {
		case TNODE_TEXT:
			template_append(out, n->s, n->len);
			break;
		case TNODE_ERROR:
			ctx->error = xstrdup(n->error);
			return -1;
		case TNODE_VAR:
			i = template_lookup(ctx, n);
			if (i < 0)
				return -1;
			template_put_value(ctx, out, (size_t)i);
			break;
		case TNODE_SECTION:
			i = template_lookup(ctx, n);
			if (i < 0)
				return -1;
			if (n->unclosed) {
				ctx->error = xstrdup(n->error);
				return -1;
			}
			value = ctx->vars[i].value;
			if ((value != NULL && *value != '\0') != n->invert &&
			    template_render_nodes(ctx, out, n->children) < 0)
				return -1;
			break;
		}
	}
	return 0;
}

char *template_render_compiled(const struct template *t, enum template_mode mode, const struct template_var *vars,
			       size_t nvars, struct template_value *cache, char **error)
{
	struct template_ctx ctx = { .mode = mode, .vars = vars, .nvars = nvars, .cache = cache };
	struct template_buf out = { 0 };

	template_append(&out, "", 0);
	if (template_render_nodes(&ctx, &out, t->nodes) < 0) {
		free(out.data);
		*error = ctx.error;
		return NULL;
	}
	*error = NULL;
	return out.data;
}

void template_values_release(struct template_value *cache, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(cache[i].clean);
		free(cache[i].html);
		cache[i].clean = cache[i].html = NULL;
	}
}

char *template_render(const char *src, enum template_mode mode, const struct template_var *vars, size_t nvars,
		      char **error)
{
	struct template *t = template_compile(src);
	char *out = template_render_compiled(t, mode, vars, nvars, NULL, error);

	template_free(t);
	return out;
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
