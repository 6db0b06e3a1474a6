/* srv_text.h - the text.edit method: co-editing of text fields (srv_text.c). */
#ifndef CONFER_SRV_TEXT_H
#define CONFER_SRV_TEXT_H

struct srv_req;

void srv_text_edit(struct srv_req *req);

#endif
