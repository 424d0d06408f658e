/*
 * rfc2047: encoded-words for header text (see rfc2047.h).
 */
#include "rfc2047.h"

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "text.h"
#include "xmalloc.h"

#define RFC2047_PREFIX "=?UTF-8?B?"
#define RFC2047_SUFFIX "?="
#define RFC2047_FOLD "\r\n "
/* Base64 turns 3 bytes into 4 characters: the most input one word can hold. */
#define RFC2047_CHUNK ((RFC2047_WORD_MAX - (sizeof(RFC2047_PREFIX) - 1) - (sizeof(RFC2047_SUFFIX) - 1)) / 4 * 3)

/* Length of the UTF-8 sequence that starts with byte c (1 for anything that does not start one). */
static size_t rfc2047_seq_len(unsigned char c)
{
	if (c >= 0xf0)
		return 4;
	if (c >= 0xe0)
		return 3;
	if (c >= 0xc0)
		return 2;
	return 1;
}

char *rfc2047_encode(const char *s)
{
	size_t len = strlen(s), words = len / 4 + 1, o = 0, i = 0;
	char *out;

	if (text_is_printable_ascii(s) && strstr(s, "=?") == NULL)
		return xstrdup(s);
	/* Every word is at most 75 characters plus a fold, and holds at least 4 bytes of input. */
	out = xmalloc(words * (RFC2047_WORD_MAX + sizeof(RFC2047_FOLD)) + 1);
	while (i < len) {
		size_t take = 0;
		char b64[sodium_base64_ENCODED_LEN(RFC2047_CHUNK, sodium_base64_VARIANT_ORIGINAL)];

		while (i + take < len) {
			size_t n = rfc2047_seq_len((unsigned char)s[i + take]);

			if (i + take + n > len || take + n > RFC2047_CHUNK)
				break;
			take += n;
		}
		/* Only a truncated sequence at the very end gets here with nothing taken. */
		if (take == 0)
			take = len - i;
		sodium_bin2base64(b64, sizeof(b64), (const unsigned char *)s + i, take, sodium_base64_VARIANT_ORIGINAL);
		if (o > 0) {
			memcpy(out + o, RFC2047_FOLD, sizeof(RFC2047_FOLD) - 1);
			o += sizeof(RFC2047_FOLD) - 1;
		}
		o += (size_t)sprintf(out + o, "%s%s%s", RFC2047_PREFIX, b64, RFC2047_SUFFIX);
		i += take;
	}
	out[o] = '\0';
	return out;
}
