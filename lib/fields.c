/*
 * fields: checks of user-supplied command values (see fields.h).
 */
#include "fields.h"

#include <string.h>

bool fields_printable(const char *s)
{
	for (; *s; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	}
	return true;
}

bool fields_email_ok(const char *s)
{
	const char *at = strchr(s, '@');
	size_t n = strlen(s);

	return n >= 3 && n <= FIELDS_EMAIL_MAX && at != NULL && at != s && at[1] != '\0' &&
	       strchr(at + 1, '@') == NULL && strchr(at + 1, '.') != NULL && strpbrk(s, " \t\r\n<>,;\"") == NULL &&
	       fields_printable(s);
}

bool fields_name_ok(const char *s)
{
	return strlen(s) <= FIELDS_NAME_MAX && fields_printable(s);
}

bool fields_reason_ok(const char *s)
{
	return strlen(s) <= FIELDS_REASON_MAX;
}
