/* cli_pack.h - pack msgpack values from a format string, for request parameters.
 *
 *   cli_packf(&buf, "{s: s, s: s, s: b}", "user", user, "password", pw, "remember", 1)
 *
 * packs {"user": user, "password": pw, "remember": true}. Format characters:
 *
 *   {  }   a map; the number of pairs is counted from the format
 *   [  ]   an array; likewise
 *   s      const char *: a string (NULL packs nil)
 *   S      const char *, size_t: a string of that many bytes
 *   i      int                    I   int64_t              u   uint64_t
 *   b      int: a boolean (0 false, anything else true)
 *   n      nil (takes no argument)
 *   B      const void *, size_t: a bin
 *   r      const void *, size_t: one already-packed msgpack value, copied as it is
 *   o      const msgpack_object *: packed with msgpack_pack_object (NULL packs nil)
 *
 * Spaces, tabs, ':' and ',' are ignored, so formats read like the values they make.
 */
#ifndef CONFER_CLI_PACK_H
#define CONFER_CLI_PACK_H

#include <stdarg.h>

#include "proto_err.h"
#include "proto_util.h"

/* Appends the values described by fmt to b. Returns 0, PROTO_EINVAL (bad format: unknown
 * character, unbalanced brackets, odd number of items in a map, an 'r' value that is not
 * exactly one valid msgpack value) or PROTO_ENOMEM. On error b may hold a partial value:
 * the caller discards it. */
int cli_packf(struct proto_buf *b, const char *fmt, ...);

/* As cli_packf, with a va_list. */
int cli_vpackf(struct proto_buf *b, const char *fmt, va_list ap);

#endif
