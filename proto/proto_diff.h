/* proto_diff.h - the text op that turns one text into another (PROTOCOL.md section 6).
 *
 * Character-level (code point) Myers diff in linear space, so that two people who change
 * different words of one paragraph both keep their words once the ops are transformed.
 * When the texts differ too much for that to be cheap, the diff matches whole lines first
 * and then characters within each changed block of lines: coarser, still exact.
 */
#ifndef CONFER_PROTO_DIFF_H
#define CONFER_PROTO_DIFF_H

#include <stdbool.h>
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

/* The same, by words: the texts are cut into tokens - a word (a run of letters and digits,
 * with the marks that join document numbers and times, "-./:_'", kept inside it when a
 * letter or digit follows: TSAG-TD182, RG-IEM-4, 17:30 are one word each), a run of white
 * space, or one other mark - and a changed token is deleted and inserted whole. Two people
 * who change one word then change the same range, which proto_merge3 can see. Code points
 * of 0x80 and above are letters, except the Unicode spaces and common punctuation. Same
 * results and errors as proto_diff. */
int proto_diff_words(const char *old_text, size_t old_len, const char *new_text, size_t new_len,
                     struct proto_op *out);

/* A three-way merge by words: mine and theirs are two changes of base. Each side's change is
 * cut into hunks (proto_diff_words); hunks of both sides that overlap, touch, or are apart by
 * nothing but spaces and tabs (adjacent words) form a cluster, and a cluster that holds
 * hunks of both sides, whose results differ, is a conflict. A conflict takes in the whole
 * lines it is on (and whatever other hunks those hold) and is written in git's style:
 *     <<<<<<< yours
 *     (the region as mine has it)
 *     =======
 *     (the region as theirs has it)
 *     >>>>>>> THEIRS_LABEL
 * Everything else takes both sides' changes. *out gets the merged text (malloc'd,
 * NUL-terminated, *out_len bytes; free it), *conflicts the number of conflicts (0: *out is
 * the clean merge). Returns 0, PROTO_EINVAL (a text is not valid UTF-8 or holds a NUL),
 * PROTO_ETOOBIG or PROTO_ENOMEM. */
int proto_merge3(const char *base, size_t base_len, const char *mine, size_t mine_len,
                 const char *theirs, size_t theirs_len, const char *theirs_label, char **out,
                 size_t *out_len, size_t *conflicts);

/* True when text[0..len) holds a line that starts with one of git's conflict markers
 * ("<<<<<<< ", "=======" alone, ">>>>>>> "). */
bool proto_merge_has_markers(const char *text, size_t len);

#endif
