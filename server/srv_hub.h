/* srv_hub.h - meetings in memory, the change pipeline, group commit and events.
 *
 * Every meeting of the database is held in memory as a record (srv_rec.h) with its seq and
 * audit head. A change is validated against the record, applied to it, given the next seq
 * and an audit entry, and its writes are queued in the open batch in the order the changes
 * were made. At the end of the loop turn the batch goes to the writer (srv_writer.h: its
 * own thread and database connection) and is written in one transaction; the responses
 * and events produced with it are held back until that transaction has committed
 * (srv_held.h), so nobody ever sees a change that could still be lost. A batch that fails
 * acknowledges nothing: its requests are answered `unavailable` and the meetings it
 * changed are reloaded from the database in place.
 *
 * The same function applies a change live and when replaying the audit log (time travel),
 * so both give the same record.
 */
#ifndef CONFER_SRV_HUB_H
#define CONFER_SRV_HUB_H

#include "proto_ot.h"
#include "srv_audit.h"
#include "srv_base.h"
#include "srv_conn.h"
#include "srv_held.h"
#include "srv_rec.h"
#include "srv_window.h"

/* Roles of a member, in rising order of what they may do. */
enum srv_role {
    SRV_ROLE_NONE = 0,
    SRV_ROLE_VIEWER,
    SRV_ROLE_EDITOR,
    SRV_ROLE_ASSOCIATE, /* associate and counsellor may do the same */
    SRV_ROLE_RAPPORTEUR,
};

/* Parses a member role name; returns SRV_ROLE_NONE when unknown. */
enum srv_role srv_role_parse(const char *s);

/* One audit entry held in memory until its batch is durable (and for replays of it). */
struct srv_entry {
    struct srv_entry *next;
    uint64_t batch;
    struct db_audit a; /* strings and payload below are owned by the entry */
    char meeting[PROTO_NAME_MAX + 1];
    char user[PROTO_NAME_MAX + 1];
    char cid[65];
    char kind[8];
    char type[10];
    char id_str[PROTO_NAME_MAX + 1];
    uint8_t *payload;
};

struct srv_sub {
    struct srv_sub *next;
    struct srv_conn *conn;
    /* presence of this connection in the meeting (PROTOCOL.md section 10) */
    bool present;
    int64_t present_since;
    char where_type[10];
    int64_t where_id;
    char where_id_str[PROTO_NAME_MAX + 1];
    char where_field[16];
    /* A cursor in where's text field (section 11): code point offsets into the field at the
     * meeting's current seq, moved with every later op of that field. */
    bool has_cursor;
    enum proto_type cursor_type;
    int cursor_field; /* index of where_field in cursor_type */
    size_t pos, anchor;
};

struct srv_meeting {
    struct srv_meeting *next;
    struct srv_rec *rec;
    uint8_t head[DB_HASH_BYTES]; /* audit head, uncommitted entries included */
    int64_t committed_seq;
    uint64_t last_batch;       /* batch of the latest change (0: none yet) */
    struct srv_entry *pending; /* entries not yet durable, in seq order */
    struct srv_entry *pending_tail;
    struct srv_sub *subs;
    int64_t checkpoint_seq;    /* last signed checkpoint (queued or stored) */
    int64_t checkpoint_stored; /* last checkpoint the database holds */
    /* The rows (srv_audit.h) stand at rows_seq once the batches queued so far commit; the
     * objects changed after it, the ids deleted and whether members changed since are
     * what the next refresh writes. snapshot_seq: the newest snapshot, queued or stored. */
    int64_t rows_seq;
    int64_t snapshot_seq;
    struct srv_deleted {
        enum proto_type type;
        int64_t id;
    } * deleted;
    size_t ndeleted, cap_deleted;
    bool members_changed;
    bool rows_all; /* what changed since rows_seq is not known (a load): rewrite them all */
    bool settle;   /* refresh, snapshot and sign at the next flush (shutdown) */
    int64_t last_change_ms;
    struct srv_window win; /* recent text ops (srv_window.h) */
    bool reload;           /* a failed batch changed it: reload from the database */
    bool broken;           /* a reload failed: changes are refused until one succeeds */
};

/* Loads every meeting of the database into memory, and then any meeting another process
 * created since (call again after data_version changes). Returns 0 or PROTO_EDB. */
int srv_hub_load(struct srv *srv);

/* Frees every meeting and pending write. */
void srv_hub_free(struct srv *srv);

/* Finds a meeting in memory; NULL when unknown. */
struct srv_meeting *srv_hub_find(struct srv *srv, const char *id, size_t len);

/* The role of user in meeting m. */
enum srv_role srv_hub_role(struct srv_meeting *m, const char *user);

/* A change being made: filled by a handler, then given to srv_hub_commit. */
struct srv_change {
    struct srv_meeting *m;
    const char *user;
    const char *cid;          /* may be NULL */
    const char *kind;         /* create, update, delete, text, member */
    enum proto_type type;     /* PROTO_T_COUNT for member changes */
    int64_t id;               /* object id (0 for the meeting) */
    const char *id_str;       /* member: the user; meeting: the meeting id */
    struct proto_buf payload; /* the event's own keys, one msgpack map */
    struct srv_conn *author;  /* gets the response, not the event (may be NULL) */
    const char *type_name;    /* with type PROTO_T_COUNT: the entry's type ("share"); NULL:
                                 a member change */
};

/* A write of a handler's own in the batch of the change it just committed, in the same
 * transaction (after that change's entry): work runs on the writer with its connection;
 * done runs on the loop with 0 once the batch is durable, or with a PROTO_E* code when it
 * failed or was dropped (then nothing of it was written). Returns 0 or PROTO_ENOMEM
 * (nothing is called then). */
int srv_hub_add_write(struct srv *srv, const char *meeting, int (*work)(struct db *db, void *ud),
                      void (*done)(void *ud, int rc), void *ud);

/* Sets the listener of durable changes (one per server; srv_base.h durable_cb): it is
 * called for every entry once its batch has committed, in seq order, before anyone is
 * answered or told of it, and with e NULL for a meeting that was loaded or reloaded from the
 * database (its record then is what is durable). */
void srv_hub_listen(struct srv *srv,
                    void (*cb)(void *ud, struct srv_meeting *m, const struct db_audit *e),
                    void *ud);

/* Takes the next seq, makes the audit entry (time, hash chain), applies it to the record,
 * queues the writes in the open batch and the event for every other subscriber (held
 * until durable). Frees ch->payload. Returns the new seq, or a negative PROTO_E* code. */
int64_t srv_hub_commit(struct srv *srv, struct srv_change *ch);

/* Creates a meeting in memory with its create entry at seq 1 (fields and rapporteur in
 * payload). Returns 0, PROTO_ECONFLICT, PROTO_ENOMEM. */
int srv_hub_create_meeting(struct srv *srv, const char *id, struct srv_change *ch,
                           struct srv_meeting **out);

/* The batch a response must wait for: the open or writing batch that holds the latest
 * change of m, or 0 when everything is durable. */
uint64_t srv_hub_hold(struct srv *srv, struct srv_meeting *m);

/* Signs a checkpoint of every meeting whose head no checkpoint covers yet, in the open
 * batch (at shutdown: a log cut after the last signed head is then caught). */
void srv_hub_checkpoint_all(struct srv *srv);

/* Signs a checkpoint of m's head in the open batch unless one covers it already (an
 * export's head). */
void srv_hub_sign_head(struct srv *srv, struct srv_meeting *m);

/* Makes the open batch fail when it is handed to the writer, as a batch that cannot be
 * written does: nothing of it is acknowledged and the meetings it changed (m among them)
 * reload from the database. For a run of changes that must commit together when a later
 * one of them cannot be made. */
void srv_hub_fail_open(struct srv *srv, struct srv_meeting *m, const char *why);

/* Hands the open batch to the writer if it is idle (called at the end of each turn). */
void srv_hub_flush(struct srv *srv);

/* Calls cb for every entry of m with since < seq <= until: durable ones from the
 * database, then pending ones from memory. */
int srv_hub_entries(struct srv *srv, struct srv_meeting *m, int64_t since, int64_t until,
                    db_audit_cb cb, void *ud);

/* Packs the keys every view of an entry shares: seq, time, user, cid (when set), kind, type,
 * id; srv_hub_entry_keys says how many pairs that is. */
size_t srv_hub_entry_keys(const struct db_audit *e);
void srv_hub_pack_entry_keys(msgpack_packer *pk, const struct db_audit *e);

/* The seq of the first change of the import that made entry e (its payload's "import",
 * PROTOCOL.md section 12), or 0 when an import did not make it. */
int64_t srv_hub_entry_import(const struct db_audit *e);

/* Packs the event notification [2, "event", {...}] of an audit entry into out. */
int srv_hub_pack_event(const struct db_audit *e, struct proto_buf *out);

/* A new object id, from a block reserved in the database (so that an operator tool writing
 * to the same database never hands out the same id). The server reserves the next block
 * on the writer ahead of time, so a change does not wait for it. Returns the id or
 * PROTO_EDB. */
int64_t srv_hub_next_id(struct srv *srv);

/* Packs where a subscriber is present (its "where" map), or nil when it is not. */
void srv_hub_pack_where(msgpack_packer *pk, const struct srv_sub *s);

/* Sends presence {"meeting", "user", "where", "state", "seq"} of from to every other
 * subscribed connection of m, held behind the events of m's uncommitted changes (seq is the
 * meeting's, which the positions refer to). */
void srv_hub_presence_notify(struct srv_meeting *m, const struct srv_sub *from, const char *state);

/* Ends the presence of a subscriber in m (sends leave to the others when it was present):
 * an unsubscribe, a close or a presence.set without where. */
void srv_hub_presence_leave(struct srv_meeting *m, struct srv_sub *sub);

/* Calls cb, in seq order, for every op applied to field (an index) of the object (t, id)
 * after base: from the window when it reaches back to base, else from the entries not yet
 * durable when only those are after base. Returns 0, 1 when neither holds every op after
 * base (the log would have to be read), or what cb returned when not 0 (cb returns 0 or
 * a negative PROTO_E* code). */
int srv_hub_field_ops(struct srv_meeting *m, enum proto_type t, int64_t id, int field, int64_t base,
                      int (*cb)(void *ud, const struct proto_op *op), void *ud);

/* Packs {meeting id: role} for every meeting where user has a role (whoami). */
void srv_hub_pack_my_meetings(struct srv *srv, const char *user, msgpack_packer *pk);

/* Subscriptions of a connection. */
int srv_hub_subscribe(struct srv_meeting *m, struct srv_conn *conn);
void srv_hub_unsubscribe(struct srv_meeting *m, struct srv_conn *conn);
/* Drops every subscription of a connection (on close or logout). */
void srv_hub_drop_conn(struct srv *srv, struct srv_conn *conn);

#endif
