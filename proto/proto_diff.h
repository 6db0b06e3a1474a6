/* proto_diff.h - the text op that turns one text into another (PROTOCOL.md section 6).
 *
 * Character-level (code point) Myers diff in linear space, so that two people who change
 * different words of one paragraph both keep their words once the ops are transformed.
 * When the texts differ too much for that to be cheap, the diff matches whole lines first
 * and then characters within each changed block of lines: coarser, still exact.
 */
#ifndef CONFER_PROTO_DIFF_H
#define CONFER_PROTO_DIFF_H

#include <stddef.h>

#include "proto_ot.h"

/* Computes an op that turns the UTF-8 text old_text[0..old_len) into new_text[0..new_len)
 * and stores it in out (initialised; its old contents are freed on success, untouched on
 * failure). The op's unchanged end is its tail, so proto_op_check(out, length of old)
 * passes. Returns 0, PROTO_EINVAL when either text is not valid UTF-8 or holds a NUL
 * byte, PROTO_ETOOBIG when the texts together have 2^32 code points or more, or
 * PROTO_ENOMEM. */
int proto_diff(const char *old_text, size_t old_len, const char *new_text, size_t new_len,
               struct proto_op *out);

#endif
