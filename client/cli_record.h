/* cli_record.h - reading a meeting record on the client: the result of meeting.get
 * (PROTOCOL.md sections 5 and 7) as msgpack objects, the fields of its objects, and finding
 * an object by the name a person types:
 *
 *   item       its number ("3", "4.1"), or #ID
 *   action     its ref ("RG-IEM-4", any case), N for ACTION_PREFIX-N, or #ID
 *   doc        REF[REVISION] ("TSAG-TD257R1", "TSAG-C032"), or #ID
 *   person     #ID, a plain id, or the name (any case)
 *   interim    its date (YYYY-MM-DD) when no other interim has it, #ID or a plain id
 *   others     #ID or a plain id
 *
 * Pure functions over msgpack objects: no I/O, nothing allocated. Returned pointers point
 * into the record and live as long as it does.
 */
#ifndef CONFER_CLI_RECORD_H
#define CONFER_CLI_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "proto_schema.h"

#define CLI_REF_MAX  65 /* a doc or action ref, NUL included (the schema allows 64 bytes) */
#define CLI_REV_MAX  17 /* a doc revision, NUL included */
#define CLI_DATE_LEN 11 /* "YYYY-MM-DD" and its NUL */

/* The string field `name` of the object map o: a pointer into o and its length in *len
 * (when len is not NULL), or NULL when o has no such field, or it is nil or not a string. */
const char *cli_obj_str(const msgpack_object *o, const char *name, size_t *len);

/* Copies the string field `name` of o into out (cap bytes, NUL-terminated, cut when too
 * long); "" when absent or nil. Returns out. */
char *cli_obj_strcpy(const msgpack_object *o, const char *name, char *out, size_t cap);

/* Reads the integer field `name` of o. Returns true and sets *out when it is an integer. */
bool cli_obj_i64(const msgpack_object *o, const char *name, int64_t *out);

/* The array of objects of type t in the record rec (its "sessions", "items"... key), or, for
 * PROTO_T_MEETING, the meeting map itself. NULL when the record has none. */
const msgpack_object *cli_rec_objects(const msgpack_object *rec, enum proto_type t);

/* The object of type t with this id, or NULL. */
const msgpack_object *cli_rec_by_id(const msgpack_object *rec, enum proto_type t, int64_t id);

/* Parses "#12" (or, when plain is true, also "12") into *id. Returns 0 or PROTO_EINVAL. */
int cli_id_parse(const char *s, bool plain, int64_t *id);

/* Splits a document name REF[REVISION]: a trailing "R" and 1-3 digits that follow a digit
 * is the revision ("TSAG-TD257R1" is ref "TSAG-TD257", revision "R1"); without one the
 * revision is "" ("TSAG-C032"). Returns 0, PROTO_EINVAL (empty, or a revision alone) or
 * PROTO_ETOOBIG (ref or revision too long for its buffer). */
int cli_docref_parse(const char *s, char *ref, size_t refcap, char *rev, size_t revcap);

/* Writes a doc's name, ref then revision ("TSAG-TD257R1"), into out. Returns out. */
char *cli_docref_format(const msgpack_object *doc, char *out, size_t cap);

/* True when the item numbers a and b are the same ("4.1" and "04.1" are); false when either
 * is not an item number. */
bool cli_number_same(const char *a, const char *b);

/* Finds the object of type t that `name` names (see the top of this file). Returns it, or
 * NULL when there is none. */
const msgpack_object *cli_rec_find(const msgpack_object *rec, enum proto_type t, const char *name);

/* Writes how messages name an object: "item 3", "action RG-IEM-4", "document TSAG-TD257R1",
 * "meeting rg-iem", "session 2023-05-31 16:15", "interim 2023-10-09", "person \"Ana\"",
 * "decision 1034" (an id bare, so that it can be pasted) ... into out. Returns out. */
char *cli_obj_label(enum proto_type t, const msgpack_object *o, char *out, size_t cap);

/* Orders the interims of the array arr for listing: first those dated today or later
 * (today is "YYYY-MM-DD"), by date then start time, then the past ones in the same order.
 * Writes the indices into arr to order[0..cap) and returns how many it wrote (the array's
 * size, at most cap). The next interim, when there is one, is order[0] and
 * cli_interim_upcoming says so. */
size_t cli_interims_order(const msgpack_object *arr, const char *today, size_t *order, size_t cap);

/* True when the interim o is dated today or later. */
bool cli_interim_upcoming(const msgpack_object *o, const char *today);

#endif
