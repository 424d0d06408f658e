/*
 * rfc2047: non-ASCII text in mail headers (RFC 2047 encoded-words).
 *
 * A header is ASCII, so a subject or display name with "Zoë" in it travels as
 * =?UTF-8?B?...?= words. RFC 2047 caps each word at 75 characters and forbids
 * splitting a character across two words, so long text becomes several
 * words, each carrying whole UTF-8 sequences, on folded lines (CRLF and a
 * space) that a reader joins back without the white space. curl_mime offers
 * nothing for headers, hence this module.
 */
#ifndef MAILER_RFC2047_H
#define MAILER_RFC2047_H

/* The longest encoded-word RFC 2047 allows. */
#define RFC2047_WORD_MAX 75

/*
 * The header value for s, which must be one clean line of valid UTF-8 (see
 * text_clean()). Printable ASCII comes back unchanged, unless it contains
 * "=?", which a reader could mistake for an encoded word; anything else
 * becomes encoded-words joined by "\r\n ". The caller frees the result.
 */
char *rfc2047_encode(const char *s);

#endif
