/* srv_read.c - read jobs on libuv's pool under a global bound (see srv_read.h). */
#include "srv_read.h"

#include <stdio.h>
#include <stdlib.h>

struct srv_read_job {
    uv_work_t work;
    struct srv_read_job *next; /* in the waiting queue */
    struct srv_reads *reads;
    struct srv_conn *conn;
    uint32_t msgid;
    uint64_t hold;
    const struct srv_read_ops *ops;
    void *ud;
    struct db *db; /* the read-only connection lent to the job while it runs */
    int rc;
};

/* The bound and the idle read-only connections, made at the first read. */
struct srv_reads {
    struct srv *srv;
    unsigned running, waiting;
    struct srv_read_job *head, *tail;
    struct db *idle[SRV_READ_RUNNING];
    unsigned nidle;
    char path[4096];
};

/* The one place read jobs take and drop their reference to a connection. */
static void conn_hold(struct srv_conn *conn)
{
    srv_conn_hold(conn);
    conn->busy = true;
}

/* Drops the job's reference; resume: go on with the connection's next request, unless
 * done started another job for it (busy again). */
static void conn_done(struct srv_conn *conn, bool resume)
{
    if (resume && !conn->closed && !conn->busy) {
        srv_conn_resume(conn);
    }
    srv_conn_done(conn);
}

static bool conn_gone(const struct srv_conn *conn)
{
    return conn->closed || conn->state == SRV_CONN_CLOSING;
}

static void work_cb(uv_work_t *w)
{
    struct srv_read_job *job = w->data;
    if (job->db == NULL && db_open(&job->db, job->reads->path, DB_READONLY) != 0) {
        job->db = NULL;
        job->rc = PROTO_EDB;
        return;
    }
    job->rc = job->ops->work(job->db, job->ud);
}

static void done_cb(uv_work_t *w, int status);

static void drop(struct srv_read_job *job, int rc, bool resume);

/* Lends the job an idle connection (or none: work opens one) and queues it on the pool.
 * On failure the job is answered and released (resume as for drop). */
static int start(struct srv_reads *r, struct srv_read_job *job, bool resume)
{
    int rc = job->ops->start ? job->ops->start(r->srv, job->ud, &job->hold) : 0;
    if (rc != 0) {
        drop(job, rc, resume);
        return rc;
    }
    job->db = r->nidle > 0 ? r->idle[--r->nidle] : NULL;
    job->work.data = job;
    if (uv_queue_work(r->srv->loop, &job->work, work_cb, done_cb) != 0) {
        if (job->db) {
            r->idle[r->nidle++] = job->db;
            job->db = NULL;
        }
        drop(job, PROTO_EBUSY, resume);
        return PROTO_EBUSY;
    }
    r->running++;
    return 0;
}

static void job_free(struct srv_read_job *job)
{
    job->ops->free(job->ud);
    free(job);
}

/* Answers and releases a job that will not run; resume: the connection is not inside a
 * handler (so it may go on with its next request now). */
static void drop(struct srv_read_job *job, int rc, bool resume)
{
    struct srv_conn *conn = job->conn;
    if (!conn->closed) {
        conn->busy = false; /* a closed connection stays busy: nothing more is handled */
    }
    if (!conn_gone(conn)) {
        struct srv_req req = {.conn = conn, .msgid = job->msgid, .hold = job->hold};
        job->ops->done(&req, rc, job->ud);
    }
    job_free(job);
    conn_done(conn, resume);
}

/* Starts waiting jobs while there is room; jobs whose connection went away are dropped
 * unrun, so a crowd that left costs nothing. */
static void next(struct srv_reads *r)
{
    while (r->head && r->running < SRV_READ_RUNNING) {
        struct srv_read_job *job = r->head;
        r->head = job->next;
        if (r->head == NULL) {
            r->tail = NULL;
        }
        r->waiting--;
        if (conn_gone(job->conn)) {
            drop(job, PROTO_EBUSY, true);
        } else {
            start(r, job, true);
        }
    }
}

static void done_cb(uv_work_t *w, int status)
{
    struct srv_read_job *job = w->data;
    struct srv_reads *r = job->reads;
    struct srv_conn *conn = job->conn;
    r->running--;
    if (job->db) {
        if (r->nidle < SRV_READ_RUNNING) {
            r->idle[r->nidle++] = job->db;
        } else {
            db_close(job->db);
        }
        job->db = NULL;
    }
    /* done may hold the connection again with a job of its own (busy then stays set). */
    if (!conn->closed) {
        conn->busy = false;
    }
    if (!conn_gone(conn)) {
        struct srv_req req = {.conn = conn, .msgid = job->msgid, .hold = job->hold};
        job->ops->done(&req, status != 0 ? PROTO_EBUSY : job->rc, job->ud);
    }
    job_free(job);
    next(r);
    conn_done(conn, true);
}

static struct srv_reads *reads_get(struct srv *srv)
{
    if (srv->reads == NULL) {
        struct srv_reads *r = calloc(1, sizeof(*r));
        if (r == NULL) {
            return NULL;
        }
        r->srv = srv;
        snprintf(r->path, sizeof(r->path), "%s/%s", srv->cfg.data_dir, SRV_DB_FILE);
        srv->reads = r;
    }
    return srv->reads;
}

int srv_read_submit(struct srv_req *req, const struct srv_read_ops *ops, void *ud)
{
    struct srv_reads *r = reads_get(req->conn->srv);
    struct srv_read_job *job = r ? calloc(1, sizeof(*job)) : NULL;
    if (job == NULL) {
        ops->free(ud);
        srv_reply_error(req, PROTO_CODE_INTERNAL, "out of memory");
        return PROTO_ENOMEM;
    }
    if (r->running >= SRV_READ_RUNNING && r->waiting >= SRV_READ_QUEUE) {
        free(job);
        ops->free(ud);
        srv_reply_error_data(req, PROTO_CODE_RATE_LIMITED, "server busy with long reads",
                             "retry_after_ms", SRV_READ_RETRY_MS);
        return PROTO_EBUSY;
    }
    *job = (struct srv_read_job){.reads = r,
                                 .conn = req->conn,
                                 .msgid = req->msgid,
                                 .hold = req->hold,
                                 .ops = ops,
                                 .ud = ud};
    conn_hold(req->conn);
    if (r->running < SRV_READ_RUNNING) {
        /* Inside the handler: after a failure the connection goes on by itself. */
        return start(r, job, false);
    }
    if (r->tail) {
        r->tail->next = job;
    } else {
        r->head = job;
    }
    r->tail = job;
    r->waiting++;
    return 0;
}

void srv_read_free(struct srv *srv)
{
    struct srv_reads *r = srv->reads;
    if (r == NULL) {
        return;
    }
    /* Jobs still waiting when the loop stopped never run: release them unanswered. */
    while (r->head) {
        struct srv_read_job *job = r->head;
        r->head = job->next;
        struct srv_conn *conn = job->conn;
        job_free(job);
        srv_conn_done(conn);
    }
    for (unsigned i = 0; i < r->nidle; i++) {
        db_close(r->idle[i]);
    }
    free(r);
    srv->reads = NULL;
}
