/* srv_revert.h - change.revert (PROTOCOL.md section 12): undoing one change of a meeting
 * with a new change.
 *
 * What a change undoes is read off the loop (srv_read.h): the change's own entry, the record
 * at the seq before it (the values it replaced) and the entries after it (what changed
 * since). The undoing change is then made on the loop, if the meeting has not moved on
 * meanwhile (else the read runs again, a few times at most, then conflict).
 */
#ifndef CONFER_SRV_REVERT_H
#define CONFER_SRV_REVERT_H

struct srv_req;

void srv_change_revert(struct srv_req *req);

#endif
