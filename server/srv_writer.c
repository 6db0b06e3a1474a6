/* srv_writer.c - the database writer thread. */
#include "srv_writer.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

struct wjob {
    struct wjob *next;
    srv_writer_work_fn work;
    srv_writer_done_fn done;
    void *ud;
    int rc;
    bool sync;     /* srv_writer_call waits for it */
    bool finished; /* sync: work has run */
    char err[256];
};

struct srv_writer {
    uv_loop_t *loop;
    struct db *db;
    uv_thread_t thread;
    uv_mutex_t mu;
    uv_cond_t todo_cv; /* the thread waits for jobs */
    uv_cond_t sync_cv; /* srv_writer_call waits for its job */
    uv_async_t async;  /* done jobs are handed back to the loop */
    struct wjob *todo, *todo_tail;
    struct wjob *done, *done_tail;
    unsigned inflight; /* loop side only */
    bool stop;
};

static void push(struct wjob **head, struct wjob **tail, struct wjob *j)
{
    j->next = NULL;
    if (*tail) {
        (*tail)->next = j;
    } else {
        *head = j;
    }
    *tail = j;
}

static void writer_main(void *arg)
{
    struct srv_writer *w = arg;
#ifdef __linux__
    prctl(PR_SET_NAME, "confer-writer"); /* tells it from libuv's pool in ps and tests */
#endif
    uv_mutex_lock(&w->mu);
    for (;;) {
        while (w->todo == NULL && !w->stop) {
            uv_cond_wait(&w->todo_cv, &w->mu);
        }
        struct wjob *j = w->todo;
        if (j == NULL) {
            break; /* stopping and nothing left */
        }
        w->todo = j->next;
        if (w->todo == NULL) {
            w->todo_tail = NULL;
        }
        uv_mutex_unlock(&w->mu);
        j->rc = j->work(w->db, j->ud, j->err, sizeof(j->err));
        uv_mutex_lock(&w->mu);
        if (j->sync) {
            j->finished = true;
            uv_cond_broadcast(&w->sync_cv);
        } else {
            push(&w->done, &w->done_tail, j);
            uv_async_send(&w->async);
        }
    }
    uv_mutex_unlock(&w->mu);
}

static void on_async(uv_async_t *a)
{
    struct srv_writer *w = a->data;
    uv_mutex_lock(&w->mu);
    struct wjob *j = w->done;
    w->done = w->done_tail = NULL;
    uv_mutex_unlock(&w->mu);
    while (j) {
        struct wjob *next = j->next;
        /* Counted down first: done may submit again, or look at the count. */
        if (--w->inflight == 0) {
            uv_unref((uv_handle_t *)&w->async);
        }
        if (j->done) {
            j->done(j->ud, j->rc, j->err);
        }
        free(j);
        j = next;
    }
}

int srv_writer_start(struct srv_writer **out, uv_loop_t *loop, struct db *db)
{
    struct srv_writer *w = calloc(1, sizeof(*w));
    *out = NULL;
    if (w == NULL) {
        db_close(db);
        return PROTO_ENOMEM;
    }
    w->loop = loop;
    w->db = db;
    if (uv_mutex_init(&w->mu) != 0) {
        goto fail_mu;
    }
    if (uv_cond_init(&w->todo_cv) != 0) {
        goto fail_todo;
    }
    if (uv_cond_init(&w->sync_cv) != 0) {
        goto fail_sync;
    }
    if (uv_async_init(loop, &w->async, on_async) != 0) {
        goto fail_async;
    }
    w->async.data = w;
    uv_unref((uv_handle_t *)&w->async); /* idle: does not keep the loop alive */
    if (uv_thread_create(&w->thread, writer_main, w) != 0) {
        uv_close((uv_handle_t *)&w->async, NULL);
        uv_run(loop, UV_RUN_NOWAIT);
        goto fail_async;
    }
    *out = w;
    return 0;
fail_async:
    uv_cond_destroy(&w->sync_cv);
fail_sync:
    uv_cond_destroy(&w->todo_cv);
fail_todo:
    uv_mutex_destroy(&w->mu);
fail_mu:
    db_close(db);
    free(w);
    return PROTO_EIO;
}

int srv_writer_submit(struct srv_writer *w, srv_writer_work_fn work, srv_writer_done_fn done,
                      void *ud)
{
    if (w->stop) {
        return PROTO_EIO; /* closing: nothing would run it */
    }
    struct wjob *j = calloc(1, sizeof(*j));
    if (j == NULL) {
        return PROTO_ENOMEM;
    }
    j->work = work;
    j->done = done;
    j->ud = ud;
    if (w->inflight++ == 0) {
        uv_ref((uv_handle_t *)&w->async);
    }
    uv_mutex_lock(&w->mu);
    push(&w->todo, &w->todo_tail, j);
    uv_cond_signal(&w->todo_cv);
    uv_mutex_unlock(&w->mu);
    return 0;
}

int srv_writer_call(struct srv_writer *w, srv_writer_work_fn work, void *ud, char *err,
                    size_t errlen)
{
    struct wjob j = {.work = work, .ud = ud, .sync = true};
    uv_mutex_lock(&w->mu);
    push(&w->todo, &w->todo_tail, &j);
    uv_cond_signal(&w->todo_cv);
    while (!j.finished) {
        uv_cond_wait(&w->sync_cv, &w->mu);
    }
    uv_mutex_unlock(&w->mu);
    if (err && errlen > 0) {
        snprintf(err, errlen, "%s", j.err);
    }
    return j.rc;
}

unsigned srv_writer_inflight(const struct srv_writer *w)
{
    return w ? w->inflight : 0;
}

void srv_writer_close(struct srv_writer *w)
{
    if (w == NULL) {
        return;
    }
    uv_mutex_lock(&w->mu);
    w->stop = true;
    uv_cond_signal(&w->todo_cv);
    uv_mutex_unlock(&w->mu);
    uv_thread_join(&w->thread);
    /* Jobs that finished after the loop stopped: their done still runs, late. */
    on_async(&w->async);
    uv_close((uv_handle_t *)&w->async, NULL);
    uv_run(w->loop, UV_RUN_NOWAIT);
    uv_cond_destroy(&w->sync_cv);
    uv_cond_destroy(&w->todo_cv);
    uv_mutex_destroy(&w->mu);
    db_close(w->db);
    free(w);
}
