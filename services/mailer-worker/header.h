/*
 * header: the header fields of a mail, safe against what goes into them.
 *
 * A header ends at CRLF, so a lead name with a line break in it could add a
 * Bcc: or a second To:. Everything here produces one line (or RFC 2047
 * folded encoded-words), and addresses are checked to be exactly one plain
 * addr-spec before they reach a header or the SMTP envelope.
 */
#ifndef MAILER_HEADER_H
#define MAILER_HEADER_H

#include <stddef.h>
#include <time.h>

/* The longest subject (in bytes of UTF-8, before encoding) a mail gets. */
#define HEADER_SUBJECT_MAX 200

/*
 * A header value from untrusted text: one line (see text_clean()), cut to
 * max bytes, RFC 2047-encoded when it is not plain ASCII. The caller frees it.
 */
char *header_value(const char *s, size_t max);

/*
 * The address itself when raw (surrounding white space ignored) is one plain
 * ASCII addr-spec: a dot-atom local part, '@', a dot-separated domain of
 * letters, digits and hyphens. Quoted local parts, comments, lists and
 * display names are refused, as is anything with a control or space: this
 * address goes to the SMTP envelope as it is. NULL otherwise. The caller
 * frees it.
 */
char *header_address(const char *raw);

/*
 * "Name <address>" for a To: or From: header; name (untrusted, may be NULL)
 * becomes an atom phrase, a quoted string or encoded words as it needs, and
 * is left out when empty. address must have passed header_address(). The
 * caller frees the result.
 */
char *header_mailbox(const char *name, const char *address);

/*
 * Split a MAIL_FROM value, "address" or "Name <address>", into its display
 * name (NULL when there is none) and checked address. 0, or -1 when the
 * address is not acceptable. The caller frees both.
 */
int header_parse_mailbox(const char *value, char **name, char **address);

/*
 * "<hex@domain>": a Message-ID derived from the job's message id, so a mail
 * sent again after a crash carries the same id and receivers can fold the
 * copies. The caller frees it.
 */
char *header_message_id(const char *job_id, const char *domain);

/* RFC 5322 date of t in UTC: "Thu, 18 Sep 2025 11:30:00 +0000". buf needs 32 bytes. */
void header_date(time_t t, char *buf, size_t size);

#endif
