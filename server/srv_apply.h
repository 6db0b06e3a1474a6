/* srv_apply.h - applying audit entries to a record: one way for live changes, loads and
 * replays (time travel, verification), so that all of them give the same record.
 *
 * A replay (srv_replay_*) applies a run of entries faster than one by one: the text ops a
 * run makes to one field are composed and applied to the field once, so replaying N
 * edits of a large text costs about one pass over it, not N.
 */
#ifndef CONFER_SRV_APPLY_H
#define CONFER_SRV_APPLY_H

#include "db.h"
#include "proto_ot.h"
#include "proto_rpc.h"
#include "srv_rec.h"

/* Applies an audit entry to a record: create, update, delete, member, text.
 * Returns 0, PROTO_EINVAL when the entry does not fit the record, PROTO_ENOMEM. */
int srv_apply_entry(struct srv_rec *rec, const struct db_audit *e);

/* Packs the pair "unlinked": {"doc": [ids], "decision": [ids]} of an item's delete: the
 * docs and decisions of rec that name item, whose item the delete clears (PROTOCOL.md
 * section 10). */
void srv_apply_pack_unlinked(msgpack_packer *pk, const struct srv_rec *rec, int64_t item);

/* Applies a text op to a field, in the field's own buffer where it can, so an entry costs
 * no copy of the whole text. Applies whole or not at all.
 * Returns 0, PROTO_EINVAL (op does not fit), PROTO_ENOMEM. */
int srv_apply_text(struct srv_val *v, const struct proto_op *op);

/* Checks, without changing it, that op fits the field and leaves at most max bytes (0: no
 * limit). Returns 0, PROTO_EINVAL or PROTO_ETOOBIG. */
int srv_apply_text_fits(const struct srv_val *v, const struct proto_op *op, size_t max);

/* A replay of entries, in seq order, onto rec (which stays the caller's). The record is
 * whole only after srv_replay_finish; rec->seq follows the entries added. */
struct srv_replay;

/* Returns NULL when out of memory. */
struct srv_replay *srv_replay_new(struct srv_rec *rec);

/* Adds the next entry. Returns 0 or the error of applying it (the replay is then failed:
 * later calls return the same error). */
int srv_replay_add(struct srv_replay *r, const struct db_audit *e);

/* Applies what is still buffered and frees r. Returns 0 or the first error. */
int srv_replay_finish(struct srv_replay *r);

#endif
