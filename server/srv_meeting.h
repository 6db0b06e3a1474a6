/* srv_meeting.h - handlers of the meeting methods (PROTOCOL.md section 7). */
#ifndef CONFER_SRV_MEETING_H
#define CONFER_SRV_MEETING_H

#include "srv_base.h"

struct srv_meeting;
struct srv_req;

/* How an import treats what the meeting holds (PROTOCOL.md section 13). */
enum srv_import_mode {
    SRV_IMPORT_NEW = 0, /* the meeting must hold no object */
    SRV_IMPORT_MERGE,   /* match objects by their keys: update those that differ, add the rest */
};

/* What an import did, per type (indexed by proto_type); held: what the meeting holds when
 * mode new is refused. */
struct srv_import_counts {
    int64_t created[PROTO_T_COUNT], updated[PROTO_T_COUNT], unchanged[PROTO_T_COUNT];
    int64_t held[PROTO_T_COUNT];
};

/* Imports report text into m as changes by user (author: the connection that gets the
 * response, or NULL), all in this turn of the loop so that they land in one batch and one
 * transaction. Returns 0; PROTO_ECONFLICT (mode new, the meeting not empty: counts->held
 * says what it holds); PROTO_EDB when the meeting or the database cannot take changes; or
 * another error with a message in err. A change that cannot be made after others were
 * fails the open batch as a whole (srv_hub_fail_open): nothing of the import stays. */
int srv_import_into(struct srv *srv, struct srv_meeting *m, const char *user,
                    struct srv_conn *author, const char *text, size_t len,
                    enum srv_import_mode mode, struct srv_import_counts *counts, char *err,
                    size_t errlen);

void srv_meeting_create(struct srv_req *req);
void srv_meeting_list(struct srv_req *req);
void srv_meeting_get(struct srv_req *req);
void srv_meeting_subscribe(struct srv_req *req);
void srv_meeting_unsubscribe(struct srv_req *req);
void srv_agenda_get(struct srv_req *req);
void srv_obj_create(struct srv_req *req);
void srv_obj_update(struct srv_req *req);
void srv_obj_delete(struct srv_req *req);
void srv_member_list(struct srv_req *req);
void srv_member_set(struct srv_req *req);
void srv_member_remove(struct srv_req *req);
void srv_history_list(struct srv_req *req);
void srv_audit_verify_method(struct srv_req *req);
void srv_report_export_method(struct srv_req *req);
void srv_report_import_method(struct srv_req *req);

#endif
