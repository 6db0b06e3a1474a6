/* srv_meeting.h - handlers of the meeting methods (PROTOCOL.md section 7). */
#ifndef CONFER_SRV_MEETING_H
#define CONFER_SRV_MEETING_H

#include "srv_base.h"

struct srv_meeting;
struct srv_req;

/* Imports a report into meeting m as changes made by user: the meeting's fields (a text
 * replaced with a text op), then one create per object, skipping documents and actions
 * whose key exists. Every value is checked first as obj.create checks it: a value that
 * does not fit (PROTO_EINVAL, or PROTO_ETOOBIG for a text over max_text) changes nothing.
 * counts (indexed by proto_type) get the objects created. Returns 0, PROTO_EDB when the
 * meeting or the database cannot take changes, or another error with a message in err
 * (changes made before a later failure stay). */
int srv_import_into(struct srv *srv, struct srv_meeting *m, const char *user,
                    struct srv_conn *author, const char *text, size_t len, int64_t counts[],
                    char *err, size_t errlen);

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
