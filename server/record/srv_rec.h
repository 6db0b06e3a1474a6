/* srv_rec.h - a meeting record in memory: the meeting's own fields, its objects of every
 * type (proto_schema.h), and its members.
 *
 * The hub keeps one record per meeting in use; it is the state that changes are validated
 * against and applied to before they are written. Time travel builds a fresh record by
 * replaying the audit log. Import fills a record from a report; export renders one.
 * Values are owned by their object; every string is NUL-terminated and valid UTF-8.
 */
#ifndef CONFER_SRV_REC_H
#define CONFER_SRV_REC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>

#include "proto_schema.h"
#include "proto_util.h"

/* One field value. Kind comes from the schema: INT and ITEMREF use i, the others s.
 * set == false is nil (a TEXT field that is not set reads ""). */
struct srv_val {
    bool set;
    char *s;
    size_t len;
    int64_t i;
};

struct srv_obj {
    enum proto_type type;
    int64_t id;  /* 0 for the meeting itself */
    int64_t seq; /* seq of the last change */
    struct srv_val f[PROTO_MAX_FIELDS];
    uint64_t put_batch; /* the hub's: the batch that already writes this object */
    int64_t created;    /* seq of its create entry, when the hub saw it (0: earlier) */
};

struct srv_member {
    char user[PROTO_NAME_MAX + 1];
    char role[16]; /* viewer, editor, associate, counsellor, rapporteur */
    int64_t seq;
};

struct srv_objvec {
    struct srv_obj **v; /* sorted by id */
    size_t n, cap;
};

struct srv_rec {
    char id[PROTO_NAME_MAX + 1];
    int64_t seq; /* the meeting's seq: its last change */
    struct srv_obj meeting;
    struct srv_objvec objs[PROTO_T_COUNT]; /* objs[PROTO_T_MEETING] stays empty */
    struct srv_member *members;
    size_t nmembers, members_cap;
};

/* Makes an empty record for meeting id, with the schema's defaults in meeting fields.
 * Returns NULL when out of memory, or when id is NULL or longer than PROTO_NAME_MAX.
 * Free with srv_rec_free. */
struct srv_rec *srv_rec_new(const char *id);
void srv_rec_free(struct srv_rec *rec);

/* Makes an object of type t with the schema's defaults. Free with srv_obj_free (only if
 * not added to a record: a record owns what it holds). */
struct srv_obj *srv_obj_new(enum proto_type t);
void srv_obj_free(struct srv_obj *o);

/* Deep copy. Returns NULL when out of memory. */
struct srv_obj *srv_obj_dup(const struct srv_obj *o);

/* Sets a string field (copying s) or an integer field; unset makes it nil.
 * Returns 0 or PROTO_ENOMEM. */
int srv_val_set_str(struct srv_val *v, const char *s, size_t len);
void srv_val_set_int(struct srv_val *v, int64_t i);
void srv_val_unset(struct srv_val *v);

/* Finds an object by type and id; NULL when absent. For PROTO_T_MEETING returns
 * &rec->meeting. */
struct srv_obj *srv_rec_find(struct srv_rec *rec, enum proto_type t, int64_t id);

/* Adds an object (the record takes ownership). Returns 0, PROTO_ECONFLICT when the id
 * exists, PROTO_ENOMEM, PROTO_EINVAL for a meeting or an unknown type (not taken). */
int srv_rec_add(struct srv_rec *rec, struct srv_obj *o);

/* Removes and frees an object. Returns 0 or PROTO_ENOTFOUND. */
int srv_rec_remove(struct srv_rec *rec, enum proto_type t, int64_t id);

/* Finds a member; NULL when absent. */
struct srv_member *srv_rec_member(struct srv_rec *rec, const char *user);

/* Sets (role != NULL) or removes (role == NULL) a member; members stay sorted by user.
 * Returns 0, PROTO_ENOMEM, or PROTO_EINVAL when user or role does not fit. */
int srv_rec_set_member(struct srv_rec *rec, const char *user, const char *role, int64_t seq);

/* The largest object id in the record (0 when none). */
int64_t srv_rec_max_id(const struct srv_rec *rec);

/* Items sorted naturally by number (then id): fills out (n = rec->objs[ITEM].n pointers). */
void srv_rec_items_sorted(const struct srv_rec *rec, const struct srv_obj **out);

/* The computed deadline of an interim as YYYY-MM-DD into out, or "" when it has no date
 * or no days apply (its deadline_days and the meeting's are both nil). */
void srv_rec_interim_deadline(const struct srv_rec *rec, const struct srv_obj *interim,
                              char out[11]);

/* Packs an object as a map of its fields plus "id" and "seq" (the meeting: "id" is the
 * meeting id). */
int srv_obj_pack(msgpack_packer *pk, const struct srv_rec *rec, const struct srv_obj *o);

/* Packs the whole record as the result of meeting.get:
 * {"seq", "meeting", "sessions", "items", "docs", "actions", "decisions", "interims",
 *  "people"}; items in their natural order, the other lists by id. */
int srv_rec_pack(msgpack_packer *pk, const struct srv_rec *rec);

/* The objects of one type that refer to an item (its "item" field), grouped by item once so
 * that each item's are found without a scan of all objects. The record must not change
 * while the grouping is in use. */
struct srv_rec_byitem;

/* Groups the objects of type t (a type with an "item" field: docs, decisions) by the item
 * they refer to, in time linear in their number (plus a binary search each); objects whose
 * item is not set or not in the record belong to none. Returns NULL when out of memory or
 * when t has no "item" field. Free with srv_rec_byitem_free. */
struct srv_rec_byitem *srv_rec_byitem_new(const struct srv_rec *rec, enum proto_type t);
void srv_rec_byitem_free(struct srv_rec_byitem *g);

/* The objects that refer to item, in id order: *n of them (0 for an item not in the
 * record). The array belongs to g. */
const struct srv_obj *const *srv_rec_byitem_get(const struct srv_rec_byitem *g,
                                                const struct srv_obj *item, size_t *n);

/* Packs the result of agenda.get: {"seq", "items": [{"id", "number", "title", "docs"}],
 * "sessions"}; items in their natural order, each with the docs that refer to it (by id),
 * number and title nil when not set; the sessions by id. Returns 0 or PROTO_ENOMEM. */
int srv_rec_pack_agenda(msgpack_packer *pk, const struct srv_rec *rec);

/* ---- Canonical dump, load and diff ----
 *
 * A dump is one msgpack array, the same bytes for the same record:
 *
 *   [1, id, seq, meeting, [object...], [member...]]
 *
 * 1 is the format version, id the meeting id (rec->id), seq rec->seq. An object (the
 * meeting included) is [type, id, seq, [value...]]: type is the schema's wire name
 * ("meeting", "item", ...), not the enum's index, so that a stored dump still reads after
 * the enum is reordered; the meeting's id is 0. Its values come in schema order, COMPUTED
 * fields left out: nil when not set, an integer for INT and ITEMREF, a string otherwise
 * (so nil and "" differ). Objects go by type in schema order, then by id; a member is
 * [user, role, seq], members by user (strcmp). Integers take msgpack's shortest form.
 * What only the hub keeps (put_batch, created) is not in a dump. */

/* Appends the dump of rec to out. Returns 0, PROTO_ENOMEM, or PROTO_EINVAL for a string
 * or a list past msgpack's 32-bit lengths; after an error out is as it was. */
int srv_rec_dump(const struct srv_rec *rec, struct proto_buf *out);

/* Reads the dump data[0..len) of meeting into a new record (*out, free with
 * srv_rec_free). Returns 0; PROTO_EINVAL for anything but one whole dump of this meeting:
 * another version or meeting id, a type that is unknown or out of order, the meeting type
 * among the objects, ids not increasing within a type, a value count other than the
 * type's stored fields or a value of the wrong kind, a string that is not valid UTF-8 (or
 * holds a NUL), a user or role too long, members not in increasing order (a duplicate
 * included), bytes left after the dump; PROTO_ENOMEM. Any msgpack width of an integer,
 * string or array header is accepted; every length is checked against the bytes left.
 * Value contents are taken as they are (a date is not checked to be a date): a dump
 * copies a record, it does not validate one. */
int srv_rec_undump(const char *meeting, const uint8_t *data, size_t len, struct srv_rec **out);

/* One difference: type is a schema type name or "member"; id the object's id (0 for the
 * meeting and members); id_str the meeting id (a's) for the meeting or the user for a
 * member, NULL otherwise; field a field's schema name, "seq", "role" (a member's), "id"
 * (the meeting ids differ), or NULL when the object or member is on one side only. */
typedef void (*srv_rec_diff_cb)(void *ud, const char *type, int64_t id, const char *id_str,
                                const char *field);

/* Calls cb (when not NULL) once per difference between a and b in what a dump holds,
 * rec->seq aside: first the meeting ("id", "seq", then its fields in schema order), then
 * each type in schema order by id (for an object on both sides "seq" then its fields in
 * schema order), then members by user ("role", then "seq"). COMPUTED fields are not
 * compared. Returns the number of differences, all of them. Linear in the records' sizes
 * (a merge of their sorted lists). */
size_t srv_rec_diff(const struct srv_rec *a, const struct srv_rec *b, srv_rec_diff_cb cb, void *ud);

#endif
