/* proto_ot.h - text operations in the format of the ot-text-unicode type (PROTOCOL.md
 * section 6), positions in Unicode code points over UTF-8 strings.
 *
 * Wire shape: an array of components, each
 *     n          positive integer: skip n code points
 *     "s"        non-empty string: insert s
 *     {"d": n}   delete n code points ({"d": "s"} on input deletes as many as s has)
 * e.g. [3, "hi", 5, {"d": 8}]. We always send normalized ops with numeric deletes.
 *
 * Ownership: a struct proto_op lives wherever the caller puts it (usually the stack) and
 * owns its components and their strings. Make it empty with proto_op_init (or = {0}),
 * release it with proto_op_free. Functions that produce an op take an initialised
 * `out`; on success they free what it held and store the result (so out may be one of
 * the inputs), on failure they leave it untouched.
 *
 * Invariant kept by every function here: comps is normalized - no zero counts, no empty
 * inserts, no two adjacent components of one kind, no trailing skip. A trailing skip is
 * kept aside in `tail`: it changes nothing, but proto_op_check still requires it to fit.
 */
#ifndef CONFER_PROTO_OT_H
#define CONFER_PROTO_OT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

/* Largest skip or delete count accepted; no text we hold comes anywhere near it. */
#define PROTO_OP_MAX_COUNT ((size_t)UINT32_MAX)

enum proto_op_kind {
    PROTO_OP_SKIP,
    PROTO_OP_INSERT,
    PROTO_OP_DELETE,
};

/* Which op wins a tie of inserts at one position: with PROTO_OP_LEFT the transformed op's
 * insert goes first, with PROTO_OP_RIGHT the other op's insert does. */
enum proto_op_side {
    PROTO_OP_LEFT,
    PROTO_OP_RIGHT,
};

struct proto_op_comp {
    enum proto_op_kind kind;
    size_t n;    /* code points skipped, inserted or deleted (> 0) */
    char *s;     /* PROTO_OP_INSERT: UTF-8 text, NUL-terminated, owned; else NULL */
    size_t slen; /* bytes of s */
    size_t scap; /* bytes allocated for s (internal) */
};

struct proto_op {
    struct proto_op_comp *comps;
    size_t len;
    size_t cap;
    size_t tail; /* trailing skip, not in comps */
};

/* Makes op empty (the op []). No allocation. */
void proto_op_init(struct proto_op *op);

/* Frees everything op owns; op is empty afterwards. NULL is a no-op. */
void proto_op_free(struct proto_op *op);

/* Deep copy of src into out (see ownership above). Returns 0 or PROTO_ENOMEM. */
int proto_op_copy(const struct proto_op *src, struct proto_op *out);

/* Builders: append a skip of n, an insert of s[0..slen), a delete of n to op, merging with
 * the last component and ignoring empty ones. Return 0, PROTO_ENOMEM, or PROTO_EINVAL for
 * an insert that is not valid UTF-8 or holds a NUL byte, or a count over
 * PROTO_OP_MAX_COUNT; op is unchanged on failure. */
int proto_op_skip(struct proto_op *op, size_t n);
int proto_op_insert(struct proto_op *op, const char *s, size_t slen);
int proto_op_delete(struct proto_op *op, size_t n);

/* Reads an op from a msgpack array into out, normalized (a trailing skip goes to tail).
 * Returns 0, PROTO_EINVAL for anything that is not a well-formed op (see the file
 * comment; zero counts, floats, empty or invalid UTF-8 strings, NUL bytes, maps other
 * than {"d": ...}), or PROTO_ENOMEM. The msgpack object is not kept. */
int proto_op_decode(const msgpack_object *obj, struct proto_op *out);

/* Writes op as a msgpack array: normalized, numeric deletes, no trailing skip. Returns 0
 * or PROTO_ENOMEM when the packer's writer fails. */
int proto_op_encode(const struct proto_op *op, msgpack_packer *pk);

/* Checks that op fits a text of text_len code points: its skips and deletes, tail
 * included, reach at most the end. Returns 0 or PROTO_EINVAL. */
int proto_op_check(const struct proto_op *op, size_t text_len);

/* True when op does nothing (it normalizes to []). Such an op is not accepted from a
 * client, but the result of a transform may be one and is still applied. */
bool proto_op_is_noop(const struct proto_op *op);

/* Code points of the text op applies to, tail included (sum of skips and deletes). */
size_t proto_op_base_len(const struct proto_op *op);

/* Applies op to the UTF-8 text[0..len). On success *out gets a malloc'd NUL-terminated
 * result the caller frees and *out_len its bytes. Returns PROTO_EINVAL when op does not
 * fit the text, PROTO_ETOOBIG when the result would be over max_bytes (0: no limit), or
 * PROTO_ENOMEM; *out is untouched then. */
int proto_op_apply(const char *text, size_t len, const struct proto_op *op, size_t max_bytes,
                   char **out, size_t *out_len);

/* Transforms op over other (both made against the same text) so that it applies after
 * other, exactly like ot-text-unicode's transform(op, other, side). Result in out (see
 * ownership above). Returns 0, PROTO_ENOMEM, or PROTO_EINVAL when a count overflows. */
int proto_op_transform(const struct proto_op *op, const struct proto_op *other,
                       enum proto_op_side side, struct proto_op *out);

/* Composes a and b (b made against the result of a) into one op with the effect of a then
 * b, like ot-text-unicode's compose. Result in out (see ownership above). Returns 0,
 * PROTO_ENOMEM, or PROTO_EINVAL when a count overflows. */
int proto_op_compose(const struct proto_op *a, const struct proto_op *b, struct proto_op *out);

/* Moves a cursor (a code point index into the text before op) to where it is after op,
 * like ot-text-unicode's transformPosition: text inserted at the cursor lands after it (the
 * cursor does not move), a cursor inside deleted text moves to where the deletion was. A
 * selection moves each end alone (transformSelection). */
size_t proto_op_transform_pos(size_t pos, const struct proto_op *op);

#endif
