/* srv_live.c - the live view: shares in memory, durable copies of the records, the page
 * and its server-sent events (PROTOCOL.md section 14).
 *
 * The stream of a page (GET /v/TOKEN/live, text/event-stream) carries:
 *   id: SEQ / event: update / data: {"seq", "order": [keys] (when it changed),
 *                                     "html": {key: markup of each section that changed}}
 *   event: presence / data: {key: [account names editing in that section]}
 *   event: revoked / data: {}          (the share was revoked: the page stops)
 * A stream opened with the seq its page stands at (Last-Event-ID, or ?since=SEQ) gets only
 * what changed after it; any other seq gets every section.
 */
#include "srv_live.h"

#include "proto_err.h"
#include "srv_apply.h"
#include "srv_audit.h"
#include "srv_http.h"
#include "srv_hub.h"
#include "srv_report.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RENDER_GAP_MS 20  /* updates of one meeting are at most this often */
#define TICK_MS       250 /* presence, expiries */
#define BEAT_TICKS    8   /* a comment every 2 s: a reader that left is seen at the writes */

struct live_share {
    struct live_share *next;
    struct db_share s;
};

struct live_sec {
    char key[32];
    char *html;
    size_t len;
};

struct live_page;

struct live_mtg {
    struct live_mtg *next;
    char id[PROTO_NAME_MAX + 1];
    struct srv_rec *rec;         /* what is durable */
    uint8_t head[DB_HASH_BYTES]; /* the audit head at rec->seq */
    bool stale;                  /* missed an entry: copied again once nothing is pending */
    bool dirty;                  /* changed since secs were rendered */
    struct live_sec *secs;
    size_t nsecs;
    int64_t secs_seq;
    char *presence; /* the last presence sent */
    struct live_page *pages;
    unsigned npages;
};

struct live_page {
    struct live_page *next, **pprev;
    struct live_mtg *lm;
    int64_t share_id;
    struct srv_http_stream *stream;
};

struct srv_live {
    struct srv *srv;
    struct srv_http *http;
    struct live_share *shares;
    struct live_mtg *mtgs;
    uv_timer_t render_timer, tick;
    bool timers;
    bool render_due;
    int64_t last_render_ms;
    unsigned ticks;
};

/* ---- shares ---- */

int srv_live_share_add(struct srv *srv, const struct db_share *s)
{
    struct srv_live *l = srv->live;
    struct live_share *ls = calloc(1, sizeof(*ls));
    if (ls == NULL) {
        return PROTO_ENOMEM;
    }
    ls->s = *s;
    ls->next = l->shares;
    l->shares = ls;
    return 0;
}

static bool share_live(const struct db_share *s, int64_t now)
{
    return s->expires_ms == 0 || now < s->expires_ms;
}

const struct db_share *srv_live_share_find(struct srv *srv, const char *meeting, int64_t id,
                                           int64_t now_ms)
{
    for (struct live_share *ls = srv->live->shares; ls; ls = ls->next) {
        if (ls->s.id == id && strcmp(ls->s.meeting, meeting) == 0 && share_live(&ls->s, now_ms)) {
            return &ls->s;
        }
    }
    return NULL;
}

void srv_live_share_each(struct srv *srv, const char *meeting, int64_t now_ms,
                         void (*cb)(void *ud, const struct db_share *s), void *ud)
{
    for (struct live_share *ls = srv->live->shares; ls; ls = ls->next) {
        if (strcmp(ls->s.meeting, meeting) == 0 && share_live(&ls->s, now_ms)) {
            cb(ud, &ls->s);
        }
    }
}

static struct live_mtg *mtg_find(struct srv_live *l, const char *id)
{
    for (struct live_mtg *lm = l->mtgs; lm; lm = lm->next) {
        if (strcmp(lm->id, id) == 0) {
            return lm;
        }
    }
    return NULL;
}

static void send_all(struct live_mtg *lm, int64_t share_id, const char *text, size_t len);

/* Tells the pages of a share that it ended and closes them. */
static void close_share_pages(struct srv_live *l, const char *meeting, int64_t id)
{
    static const char msg[] = "event: revoked\ndata: {}\n\n";
    struct live_mtg *lm = mtg_find(l, meeting);
    if (lm == NULL) {
        return;
    }
    send_all(lm, id, msg, sizeof(msg) - 1);
    for (struct live_page *p = lm->pages; p; p = p->next) {
        if (p->share_id == id) {
            srv_http_stream_close(p->stream, true);
        }
    }
}

void srv_live_share_revoke(struct srv *srv, const char *meeting, int64_t id)
{
    struct srv_live *l = srv->live;
    for (struct live_share **pp = &l->shares; *pp; pp = &(*pp)->next) {
        struct live_share *ls = *pp;
        if (ls->s.id == id && strcmp(ls->s.meeting, meeting) == 0) {
            *pp = ls->next;
            sodium_memzero(ls, sizeof(*ls));
            free(ls);
            break;
        }
    }
    close_share_pages(l, meeting, id);
}

/* The share whose token is tok (SRV_SHARE_TOKEN_CHARS of base64url), live at now. */
static const struct db_share *share_by_token(struct srv_live *l, const char *tok, size_t n,
                                             int64_t now)
{
    uint8_t raw[SRV_SHARE_TOKEN_BYTES], hash[DB_TOKEN_HASH_BYTES];
    size_t rawlen = 0;
    const struct db_share *found = NULL;
    if (n != SRV_SHARE_TOKEN_CHARS ||
        sodium_base642bin(raw, sizeof(raw), tok, n, NULL, &rawlen, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        rawlen != sizeof(raw)) {
        return NULL;
    }
    crypto_generichash(hash, sizeof(hash), raw, sizeof(raw), NULL, 0);
    sodium_memzero(raw, sizeof(raw));
    for (struct live_share *ls = l->shares; ls; ls = ls->next) {
        if (sodium_memcmp(ls->s.hash, hash, sizeof(hash)) == 0 && share_live(&ls->s, now)) {
            found = &ls->s;
        }
    }
    return found;
}

/* ---- durable copies ---- */

static int copy_rec(const struct srv_rec *rec, struct srv_rec **out)
{
    struct proto_buf b = {0};
    int rc = srv_rec_dump(rec, &b);
    if (rc == 0) {
        rc = srv_rec_undump(rec->id, b.data, b.len, out);
    }
    proto_buf_free(&b, 0);
    return rc;
}

static struct live_mtg *mtg_get(struct srv_live *l, const char *id)
{
    struct live_mtg *lm = mtg_find(l, id);
    if (lm != NULL) {
        return lm;
    }
    lm = calloc(1, sizeof(*lm));
    if (lm == NULL) {
        return NULL;
    }
    snprintf(lm->id, sizeof(lm->id), "%s", id);
    lm->stale = true;
    lm->secs_seq = -1;
    lm->next = l->mtgs;
    l->mtgs = lm;
    return lm;
}

static void schedule_render(struct srv_live *l);

/* Copies m's record when nothing of it is pending (what it holds is then durable). */
static void refresh_copy(struct live_mtg *lm, struct srv_meeting *m)
{
    struct srv_rec *r = NULL;
    if (m->pending != NULL || copy_rec(m->rec, &r) != 0) {
        return;
    }
    srv_rec_free(lm->rec);
    lm->rec = r;
    memcpy(lm->head, m->head, DB_HASH_BYTES);
    lm->stale = false;
    lm->dirty = true;
}

static void on_durable(void *ud, struct srv_meeting *m, const struct db_audit *e)
{
    struct srv_live *l = ud;
    struct live_mtg *lm = mtg_get(l, m->rec->id);
    if (lm == NULL) {
        return;
    }
    if (e == NULL) {
        lm->stale = true;
    } else if (lm->rec == NULL && e->seq == 1) {
        lm->rec = srv_rec_new(m->rec->id);
        lm->stale = lm->rec == NULL || srv_apply_entry(lm->rec, e) != 0;
        memcpy(lm->head, e->hash, DB_HASH_BYTES);
    } else if (!lm->stale && lm->rec && e->seq == lm->rec->seq + 1) {
        lm->stale = srv_apply_entry(lm->rec, e) != 0;
        memcpy(lm->head, e->hash, DB_HASH_BYTES);
    } else if (!lm->rec || e->seq > lm->rec->seq) {
        lm->stale = true;
    }
    if (lm->stale) {
        refresh_copy(lm, m);
    }
    lm->dirty = true;
    if (lm->npages > 0) {
        schedule_render(l);
    }
}

/* The record of lm to show, brought up to date when it fell behind. */
static struct srv_rec *mtg_rec(struct srv_live *l, struct live_mtg *lm)
{
    if (lm->stale) {
        struct srv_meeting *m = srv_hub_find(l->srv, lm->id, strlen(lm->id));
        if (m != NULL) {
            refresh_copy(lm, m);
        }
    }
    return lm->rec;
}

/* ---- rendering ---- */

struct secs {
    struct live_sec *v;
    size_t n, cap;
    int rc;
};

/* The export's annex repeats the whole record as data, for a printed copy: a page has the
 * record itself, and would be sent the annex again at every keystroke. */
static bool shown(const char *key)
{
    return strcmp(key, "annex") != 0;
}

static int add_sec(void *ud, const char *key, int64_t id, const char *html, size_t len)
{
    struct secs *s = ud;
    if (!shown(key)) {
        return 0;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 32;
        struct live_sec *v = realloc(s->v, cap * sizeof(*v));
        if (v == NULL) {
            return PROTO_ENOMEM;
        }
        s->v = v;
        s->cap = cap;
    }
    struct live_sec *sec = &s->v[s->n];
    snprintf(sec->key, sizeof(sec->key), "%s", key);
    sec->html = malloc(len + 1);
    if (sec->html == NULL) {
        return PROTO_ENOMEM;
    }
    memcpy(sec->html, html, len);
    sec->html[len] = '\0';
    sec->len = len;
    s->n++;
    return 0;
}

static void secs_free(struct live_sec *v, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        free(v[k].html);
    }
    free(v);
}

static int render_secs(const struct srv_rec *rec, struct secs *out)
{
    memset(out, 0, sizeof(*out));
    int rc = srv_report_html_sections(rec, add_sec, out);
    if (rc != 0) {
        secs_free(out->v, out->n);
        memset(out, 0, sizeof(*out));
    }
    return rc;
}

static const struct live_sec *sec_find(const struct live_sec *v, size_t n, const char *key)
{
    for (size_t k = 0; k < n; k++) {
        if (strcmp(v[k].key, key) == 0) {
            return &v[k];
        }
    }
    return NULL;
}

/* An SSE message: "id: SEQ\n" (seq >= 0), "event: NAME\n", "data: JSON\n\n". */
static char *sse(const char *event, int64_t seq, json_t *data, size_t *len)
{
    char *js = json_dumps(data, JSON_COMPACT);
    json_decref(data);
    if (js == NULL) {
        return NULL;
    }
    size_t n = strlen(js) + strlen(event) + 64;
    char *out = malloc(n);
    if (out != NULL) {
        int w = seq >= 0 ? snprintf(out, n, "id: %lld\nevent: %s\ndata: %s\n\n", (long long)seq,
                                    event, js)
                         : snprintf(out, n, "event: %s\ndata: %s\n\n", event, js);
        *len = (size_t)w;
    }
    free(js);
    return out;
}

/* The update from sections old to new (every section when old is NULL); NULL when nothing
 * changed or out of memory. */
static char *update_msg(const struct live_sec *old, size_t nold, const struct secs *now,
                        int64_t seq, size_t *len)
{
    json_t *root = json_object(), *html = json_object(), *order = json_array();
    bool changed = old == NULL, reorder = old == NULL || nold != now->n;
    for (size_t k = 0; k < now->n; k++) {
        const struct live_sec *o = old ? sec_find(old, nold, now->v[k].key) : NULL;
        if (old && !reorder && strcmp(old[k].key, now->v[k].key) != 0) {
            reorder = true;
        }
        if (o == NULL || o->len != now->v[k].len || memcmp(o->html, now->v[k].html, o->len) != 0) {
            json_object_set_new(html, now->v[k].key, json_stringn(now->v[k].html, now->v[k].len));
            changed = true;
        }
        json_array_append_new(order, json_string(now->v[k].key));
    }
    json_object_set_new(root, "seq", json_integer(seq));
    json_object_set_new(root, "html", html);
    if (reorder) {
        json_object_set_new(root, "order", order);
        changed = true;
    } else {
        json_decref(order);
    }
    if (!changed) {
        json_decref(root);
        return NULL;
    }
    return sse("update", seq, root, len);
}

static void send_all(struct live_mtg *lm, int64_t share_id, const char *text, size_t len)
{
    struct srv_http_msg *msg = srv_http_msg_new(text, len);
    if (msg == NULL) {
        return;
    }
    for (struct live_page *p = lm->pages; p; p = p->next) {
        if (share_id == 0 || p->share_id == share_id) {
            srv_http_stream_send(p->stream, msg);
        }
    }
    srv_http_msg_unref(msg);
}

static const char *where_key(const struct srv_sub *s, char *buf, size_t cap)
{
    if (strcmp(s->where_type, "item") == 0) {
        snprintf(buf, cap, "item-%lld", (long long)s->where_id);
        return buf;
    }
    static const struct {
        const char *type, *key;
    } map[] = {{"action", "actions"},   {"doc", "docs"},         {"decision", "decisions"},
               {"session", "sessions"}, {"interim", "interims"}, {"person", "people"}};
    for (size_t k = 0; k < sizeof(map) / sizeof(map[0]); k++) {
        if (strcmp(s->where_type, map[k].type) == 0) {
            return map[k].key;
        }
    }
    if (strcmp(s->where_type, "meeting") == 0) {
        return strcmp(s->where_field, "abstract") == 0 ? "abstract" : "head";
    }
    return NULL;
}

/* {section key: [names]} of who is present in m, names sorted by the subscriber list. */
static char *presence_json(struct srv_live *l, struct live_mtg *lm)
{
    json_t *root = json_object();
    struct srv_meeting *m = srv_hub_find(l->srv, lm->id, strlen(lm->id));
    for (const struct srv_sub *s = m ? m->subs : NULL; s; s = s->next) {
        char buf[32];
        const char *key = s->present ? where_key(s, buf, sizeof(buf)) : NULL;
        if (key == NULL) {
            continue;
        }
        json_t *names = json_object_get(root, key);
        if (names == NULL) {
            names = json_array();
            json_object_set_new(root, key, names);
        }
        bool dup = false;
        for (size_t k = 0; k < json_array_size(names); k++) {
            dup = dup || strcmp(json_string_value(json_array_get(names, k)), s->conn->user) == 0;
        }
        if (!dup) {
            json_array_append_new(names, json_string(s->conn->user));
        }
    }
    char *js = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(root);
    return js;
}

static void send_presence(struct srv_live *l, struct live_mtg *lm, struct live_page *only)
{
    char *js = presence_json(l, lm);
    if (js == NULL) {
        return;
    }
    if (only == NULL && lm->presence && strcmp(lm->presence, js) == 0) {
        free(js);
        return;
    }
    char msg[8192];
    int n = snprintf(msg, sizeof(msg), "event: presence\ndata: %s\n\n", js);
    if (n > 0 && (size_t)n < sizeof(msg)) {
        struct srv_http_msg *hm = srv_http_msg_new(msg, (size_t)n);
        for (struct live_page *p = lm->pages; hm && p; p = p->next) {
            if (only == NULL || p == only) {
                srv_http_stream_send(p->stream, hm);
            }
        }
        srv_http_msg_unref(hm);
    }
    if (only == NULL || lm->presence == NULL) {
        free(lm->presence);
        lm->presence = js;
    } else {
        free(js);
    }
}

/* Renders lm's sections and sends what changed to its pages. */
static void render_mtg(struct srv_live *l, struct live_mtg *lm)
{
    struct srv_rec *rec = mtg_rec(l, lm);
    struct secs now;
    if (rec == NULL || !lm->dirty || render_secs(rec, &now) != 0) {
        return;
    }
    lm->dirty = false;
    if (lm->secs != NULL && lm->npages > 0) {
        size_t len = 0;
        char *msg = update_msg(lm->secs, lm->nsecs, &now, rec->seq, &len);
        if (msg != NULL) {
            send_all(lm, 0, msg, len);
            free(msg);
        }
    }
    secs_free(lm->secs, lm->nsecs);
    lm->secs = now.v;
    lm->nsecs = now.n;
    lm->secs_seq = rec->seq;
}

static void on_render(uv_timer_t *t)
{
    struct srv_live *l = t->data;
    l->render_due = false;
    l->last_render_ms = proto_now_ms();
    for (struct live_mtg *lm = l->mtgs; lm; lm = lm->next) {
        if (lm->npages > 0 && lm->dirty) {
            render_mtg(l, lm);
        }
    }
}

static void schedule_render(struct srv_live *l)
{
    if (l->render_due || !l->timers) {
        return;
    }
    int64_t wait = l->last_render_ms + RENDER_GAP_MS - proto_now_ms();
    l->render_due = true;
    uv_timer_start(&l->render_timer, on_render, wait > 0 ? (uint64_t)wait : 0, 0);
}

static void on_tick(uv_timer_t *t)
{
    static const char beat[] = ":\n\n";
    struct srv_live *l = t->data;
    int64_t now = proto_now_ms();
    bool beating = ++l->ticks % BEAT_TICKS == 0;
    for (struct live_mtg *lm = l->mtgs; lm; lm = lm->next) {
        if (lm->npages == 0) {
            continue;
        }
        /* libwebsockets does not read a connection while it answers a request: a reader
         * that went away is noticed when a write to it fails. */
        if (beating) {
            send_all(lm, 0, beat, sizeof(beat) - 1);
        }
        send_presence(l, lm, NULL);
        for (struct live_page *p = lm->pages; p; p = p->next) {
            bool ok = false;
            for (struct live_share *ls = l->shares; ls && !ok; ls = ls->next) {
                ok = ls->s.id == p->share_id && share_live(&ls->s, now);
            }
            if (!ok) {
                /* Expired (or revoked): told as a revoke is, then closed. */
                static const char end[] = "event: revoked\ndata: {}\n\n";
                struct srv_http_msg *m = srv_http_msg_new(end, sizeof(end) - 1);
                if (m != NULL) {
                    srv_http_stream_send(p->stream, m);
                    srv_http_msg_unref(m);
                }
                srv_http_stream_close(p->stream, true);
            }
        }
    }
}

/* ---- HTTP ---- */

static const char live_css[] =
    "#live-status{position:sticky;top:0;margin:0;padding:.2em .6em;font-size:.85em;"
    "background:#eef;color:#335;border-bottom:1px solid #ccd;z-index:2}"
    "#live-status.lost{background:#fee;color:#633}#live-status.ended{background:#eee;color:#444}"
    ".sec{position:relative;scroll-margin-top:2.5em}"
    ".sec.editing{outline:3px solid #e8a33d;outline-offset:4px;border-radius:2px}"
    ".sec .who{position:absolute;right:0;top:0;background:#e8a33d;color:#000;font-size:.8em;"
    "padding:0 .4em;border-radius:0 0 0 4px}"
    "body.follow{max-width:none;font-size:1.6em;margin:0 1.2em}"
    "body.follow table{font-size:.8em}"
    "@media print{#live-status,.sec .who{display:none}.sec.editing{outline:none}}";

/* The page's script: follows the stream, resumes from the last seq after a lost
 * connection, marks who edits where, keeps the edited section in view with ?follow=1. */
static const char live_js[] =
    "(function(){'use strict';\n"
    "var body=document.body,main=document.getElementById('record');\n"
    "var status=document.getElementById('live-status');\n"
    "var url=body.getAttribute('data-stream');\n"
    "var seq=parseInt(body.getAttribute('data-seq'),10)||0;\n"
    "var follow=/(^|[?&])follow=1(&|$)/.test(location.search);\n"
    "if(follow){body.classList.add('follow');}\n"
    "var es=null,ended=false,retry=null,present={},shown=null;\n"
    "function say(t,c){status.textContent=t;status.className=c||'';}\n"
    "function sec(key){return document.getElementById('s-'+key);}\n"
    "function make(key){var s=document.createElement('section');s.className='sec';"
    "s.id='s-'+key;return s;}\n"
    "function mark(){var all=main.querySelectorAll('.sec');var first=null;\n"
    " for(var i=0;i<all.length;i++){var s=all[i],key=s.id.slice(2),who=present[key];\n"
    "  var tag=s.querySelector(':scope > .who');\n"
    "  if(who&&who.length){s.classList.add('editing');if(!tag){tag=document.createElement('span');"
    "tag.className='who';s.insertBefore(tag,s.firstChild);}\n"
    "   tag.textContent=who.join(', ');if(!first){first=s;}}\n"
    "  else{s.classList.remove('editing');if(tag){s.removeChild(tag);}}}\n"
    " if(follow&&first&&first!==shown){shown=first;first.scrollIntoView({block:'start'});}}\n"
    "function update(d){\n"
    " if(d.order){var keep={};for(var i=0;i<d.order.length;i++){var k=d.order[i];keep[k]=1;"
    "var s=sec(k)||make(k);main.appendChild(s);}\n"
    "  var all=main.querySelectorAll('.sec');for(var j=0;j<all.length;j++){"
    "if(!keep[all[j].id.slice(2)]){main.removeChild(all[j]);}}}\n"
    " for(var key in d.html){if(Object.prototype.hasOwnProperty.call(d.html,key)){"
    "var s2=sec(key);if(!s2){s2=make(key);main.appendChild(s2);}s2.innerHTML=d.html[key];}}\n"
    " seq=d.seq;body.setAttribute('data-seq',String(seq));mark();}\n"
    "function stop(t){ended=true;if(es){es.close();es=null;}say(t,'ended');}\n"
    "function connect(){if(ended){return;}retry=null;\n"
    " es=new EventSource(url+'?since='+seq);\n"
    " es.onopen=function(){say('Live: changes show as they are made.','');};\n"
    " es.addEventListener('update',function(e){update(JSON.parse(e.data));});\n"
    " es.addEventListener('presence',function(e){present=JSON.parse(e.data);mark();});\n"
    " es.addEventListener('revoked',function(){stop('This link has been revoked or has "
    "expired: the page no longer follows the meeting.');});\n"
    " es.onerror=function(){if(ended){return;}es.close();es=null;"
    "say('Connection lost: reconnecting\\u2026','lost');\n"
    "  if(!retry){retry=setTimeout(check,1000);}};}\n"
    "function check(){retry=null;fetch(location.pathname,{method:'HEAD',cache:'no-store'})"
    ".then(function(r){if(r.status===404){stop('This link no longer works: the page no "
    "longer follows the meeting.');}else{connect();}},function(){"
    "retry=setTimeout(check,1000);});}\n"
    "connect();})();\n";

static bool path_is(const char *p, size_t n, const char *s)
{
    return strlen(s) == n && memcmp(p, s, n) == 0;
}

struct page_ctx {
    struct proto_buf *b;
    bool fail;
};

static int page_sec(void *ud, const char *key, int64_t id, const char *html, size_t len)
{
    struct page_ctx *pc = ud;
    char open[64];
    if (!shown(key)) {
        return 0;
    }
    snprintf(open, sizeof(open), "<section class=\"sec\" id=\"s-%s\">\n", key);
    if (proto_buf_append(pc->b, open, strlen(open)) != 0 ||
        proto_buf_append(pc->b, html, len) != 0 ||
        proto_buf_append(pc->b, "</section>\n", 11) != 0) {
        return PROTO_ENOMEM;
    }
    return 0;
}

/* The whole page of rec: readable without the script, which then follows the stream. */
static int render_page(const struct srv_rec *rec, const char *base, bool follow,
                       struct proto_buf *b)
{
    char head[1024];
    const char *title = NULL;
    int fi = proto_field_find(PROTO_T_MEETING, "title", 5);
    if (fi >= 0 && rec->meeting.f[fi].set) {
        title = rec->meeting.f[fi].s;
    }
    if (title == NULL || *title == '\0') {
        title = "Meeting report";
    }
    int rc = 0;
    snprintf(head, sizeof(head),
             "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
             "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
             "<link rel=\"stylesheet\" href=\"%s/page.css\">\n"
             "<script src=\"%s/live.js\" defer></script>\n<title>",
             base, base);
    if (proto_buf_append(b, head, strlen(head)) != 0 ||
        srv_report_html_escape(b, title, strlen(title)) != 0) {
        return PROTO_ENOMEM;
    }
    snprintf(
        head, sizeof(head),
        "</title>\n</head>\n<body class=\"live%s\" data-seq=\"%lld\" data-stream=\"%s/live\">\n"
        "<p id=\"live-status\">The meeting's report as it stands (seq %lld).</p>\n"
        "<main id=\"record\">\n",
        follow ? " follow" : "", (long long)rec->seq, base, (long long)rec->seq);
    if (proto_buf_append(b, head, strlen(head)) != 0) {
        return PROTO_ENOMEM;
    }
    struct page_ctx pc = {.b = b};
    rc = srv_report_html_sections(rec, page_sec, &pc);
    if (rc != 0) {
        return rc;
    }
    static const char tail[] = "</main>\n</body>\n</html>\n";
    return proto_buf_append(b, tail, sizeof(tail) - 1);
}

static int64_t parse_seq(const char *s)
{
    if (s == NULL || *s == '\0') {
        return -1;
    }
    int64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (INT64_MAX - 9) / 10) {
            return -1;
        }
        v = v * 10 + (*s - '0');
    }
    return v;
}

/* The value of name= in a query string, copied into out; "" when absent. */
static void query_get(const char *q, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    out[0] = '\0';
    while (q && *q) {
        const char *amp = strchr(q, '&');
        size_t len = amp ? (size_t)(amp - q) : strlen(q);
        if (len > nl && memcmp(q, name, nl) == 0 && q[nl] == '=') {
            size_t vl = len - nl - 1;
            if (vl < cap) {
                memcpy(out, q + nl + 1, vl);
                out[vl] = '\0';
            }
            return;
        }
        q = amp ? amp + 1 : NULL;
    }
}

/* An export of what lm shows, as report.export renders it at that seq: the same text,
 * ending with the same signed head. */
static void reply_export(struct srv_live *l, struct srv_http_call *call, struct live_mtg *lm,
                         enum srv_report_format fmt)
{
    static const char *const ctypes[] = {
        "text/plain; charset=utf-8", "text/markdown; charset=utf-8", "text/html; charset=utf-8"};
    char hex[2 * DB_HASH_BYTES + 1];
    char sig64[sodium_base64_ENCODED_LEN(crypto_sign_BYTES, sodium_base64_VARIANT_ORIGINAL)];
    uint8_t sig[crypto_sign_BYTES];
    struct proto_buf text = {0}, msg = {0};
    proto_hex(lm->head, DB_HASH_BYTES, hex);
    srv_audit_checkpoint_msg(lm->id, lm->rec->seq, lm->head, &msg);
    if (msg.data == NULL) {
        return;
    }
    crypto_sign_detached(sig, NULL, msg.data, msg.len, l->srv->host.sk);
    proto_buf_free(&msg, 0);
    sodium_bin2base64(sig64, sizeof(sig64), sig, sizeof(sig), sodium_base64_VARIANT_ORIGINAL);
    if (srv_report_export(lm->rec, fmt, lm->rec->seq, hex, sig64, &text) == 0) {
        srv_http_reply(call, 200, ctypes[fmt], text.data, text.len);
    }
    proto_buf_free(&text, 0);
    /* As after report.export: the head exported is covered by a stored checkpoint. */
    struct srv_meeting *m = srv_hub_find(l->srv, lm->id, strlen(lm->id));
    if (m != NULL && m->rec->seq == lm->rec->seq) {
        srv_hub_sign_head(l->srv, m);
    }
}

static void open_stream(struct srv_live *l, struct srv_http_call *call,
                        const struct srv_http_request *req, struct live_mtg *lm,
                        const struct db_share *sh)
{
    struct live_page *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return;
    }
    p->lm = lm;
    p->share_id = sh->id;
    p->stream = srv_http_reply_stream(call, p);
    if (p->stream == NULL) {
        free(p);
        return;
    }
    p->next = lm->pages;
    p->pprev = &lm->pages;
    if (lm->pages) {
        lm->pages->pprev = &p->next;
    }
    lm->pages = p;
    lm->npages++;
    /* Bring the sections to what is durable now, telling the other pages first. */
    if (lm->dirty || lm->secs == NULL) {
        lm->dirty = true;
        render_mtg(l, lm);
    }
    char since[24];
    query_get(req->query, "since", since, sizeof(since));
    int64_t from = parse_seq(req->last_event[0] ? req->last_event : since);
    static const char hello[] = "retry: 1000\n\n";
    struct srv_http_msg *hm = srv_http_msg_new(hello, sizeof(hello) - 1);
    if (hm) {
        srv_http_stream_send(p->stream, hm);
        srv_http_msg_unref(hm);
    }
    if (from != lm->secs_seq && lm->secs != NULL) {
        struct secs all = {.v = lm->secs, .n = lm->nsecs};
        size_t len = 0;
        char *msg = update_msg(NULL, 0, &all, lm->secs_seq, &len);
        struct srv_http_msg *m = msg ? srv_http_msg_new(msg, len) : NULL;
        if (m) {
            srv_http_stream_send(p->stream, m);
            srv_http_msg_unref(m);
        }
        free(msg);
    }
    send_presence(l, lm, p);
}

static void on_request(void *ud, struct srv_http_call *call, const struct srv_http_request *req)
{
    struct srv_live *l = ud;
    const char *path = req->path;
    if (strncmp(path, "/v/", 3) != 0) {
        return;
    }
    const char *tok = path + 3, *slash = strchr(tok, '/');
    size_t tl = slash ? (size_t)(slash - tok) : strlen(tok);
    const struct db_share *sh = share_by_token(l, tok, tl, proto_now_ms());
    if (sh == NULL) {
        return;
    }
    struct srv_meeting *m = srv_hub_find(l->srv, sh->meeting, strlen(sh->meeting));
    struct live_mtg *lm = m ? mtg_get(l, sh->meeting) : NULL;
    struct srv_rec *rec = lm ? mtg_rec(l, lm) : NULL;
    if (rec == NULL) {
        return;
    }
    char base[3 + SRV_SHARE_TOKEN_CHARS + 1];
    snprintf(base, sizeof(base), "/v/%.*s", (int)tl, tok);
    const char *rest = slash ? slash : "";
    size_t rl = strlen(rest);
    if (rl == 0) {
        struct proto_buf b = {0};
        char follow[8];
        query_get(req->query, "follow", follow, sizeof(follow));
        if (render_page(rec, base, strcmp(follow, "1") == 0, &b) == 0) {
            srv_http_reply(call, 200, "text/html; charset=utf-8", b.data, b.len);
        } else {
            static const char busy[] = "The page could not be made; try again.\n";
            srv_http_reply(call, 503, "text/plain; charset=utf-8", busy, sizeof(busy) - 1);
        }
        proto_buf_free(&b, 0);
    } else if (path_is(rest, rl, "/live.js")) {
        srv_http_reply(call, 200, "text/javascript; charset=utf-8", live_js, sizeof(live_js) - 1);
    } else if (path_is(rest, rl, "/page.css")) {
        struct proto_buf b = {0};
        const char *st = srv_report_html_style();
        if (proto_buf_append(&b, st, strlen(st)) == 0 &&
            proto_buf_append(&b, live_css, sizeof(live_css) - 1) == 0) {
            srv_http_reply(call, 200, "text/css; charset=utf-8", b.data, b.len);
        }
        proto_buf_free(&b, 0);
    } else if (path_is(rest, rl, "/live")) {
        open_stream(l, call, req, lm, sh);
    } else if (path_is(rest, rl, "/report.txt")) {
        reply_export(l, call, lm, SRV_REPORT_TEXT);
    } else if (path_is(rest, rl, "/report.md")) {
        reply_export(l, call, lm, SRV_REPORT_MARKDOWN);
    } else if (path_is(rest, rl, "/report.html")) {
        reply_export(l, call, lm, SRV_REPORT_HTML);
    }
}

static void on_stream_closed(void *ud, struct srv_http_stream *s, void *sud)
{
    struct live_page *p = sud;
    *p->pprev = p->next;
    if (p->next) {
        p->next->pprev = p->pprev;
    }
    p->lm->npages--;
    if (p->lm->npages == 0) {
        /* Nobody watches: the sections are rendered again for the next page. */
        secs_free(p->lm->secs, p->lm->nsecs);
        p->lm->secs = NULL;
        p->lm->nsecs = 0;
        p->lm->secs_seq = -1;
        free(p->lm->presence);
        p->lm->presence = NULL;
    }
    free(p);
}

static const struct srv_http_ops http_ops = {on_request, on_stream_closed};

/* ---- life ---- */

static int load_share(void *ud, const struct db_share *s)
{
    return srv_live_share_add(ud, s);
}

int srv_live_init(struct srv *srv)
{
    struct srv_live *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        return PROTO_ENOMEM;
    }
    l->srv = srv;
    srv->live = l;
    int rc = db_share_list(srv->db, load_share, srv);
    if (rc != 0) {
        return rc;
    }
    if (srv->cfg.http_port >= 0) {
        srv_hub_listen(srv, on_durable, l);
    }
    return 0;
}

int srv_live_start(struct srv *srv)
{
    struct srv_live *l = srv->live;
    if (srv->cfg.http_port < 0) {
        return 0;
    }
    struct srv_http_config hc = {.host = srv->cfg.http_host,
                                 .port = srv->cfg.http_port,
                                 .max_streams = srv->cfg.http_max_streams,
                                 .max_streams_per_addr = srv->cfg.http_streams_per_addr};
    int rc = srv_http_start(&l->http, srv->loop, &hc, &http_ops, l);
    if (rc != 0) {
        return rc;
    }
    srv->cfg.http_port = srv_http_port(l->http);
    uv_timer_init(srv->loop, &l->render_timer);
    uv_timer_init(srv->loop, &l->tick);
    l->render_timer.data = l->tick.data = l;
    uv_timer_start(&l->tick, on_tick, TICK_MS, TICK_MS);
    l->timers = true;
    return 0;
}

int srv_live_port(const struct srv *srv)
{
    return srv->live && srv->live->http ? srv_http_port(srv->live->http) : -1;
}

void srv_live_url(const struct srv *srv, const char *path, char *out, size_t cap)
{
    const char *base = srv->cfg.http_base_url;
    if (base && *base) {
        size_t n = strlen(base);
        while (n > 0 && base[n - 1] == '/') {
            n--;
        }
        snprintf(out, cap, "%.*s%s", (int)n, base, path);
    } else if (srv_live_port(srv) > 0) {
        const char *h = srv->cfg.http_host;
        bool v6 = strchr(h, ':') != NULL;
        snprintf(out, cap, "http://%s%s%s:%d%s", v6 ? "[" : "", h, v6 ? "]" : "",
                 srv_live_port(srv), path);
    } else {
        out[0] = '\0';
    }
}

void srv_live_stop(struct srv *srv)
{
    struct srv_live *l = srv->live;
    if (l == NULL) {
        return;
    }
    if (l->timers) {
        uv_close((uv_handle_t *)&l->render_timer, NULL);
        uv_close((uv_handle_t *)&l->tick, NULL);
        l->timers = false;
    }
    srv_http_stop(l->http);
}

void srv_live_free(struct srv *srv)
{
    struct srv_live *l = srv->live;
    if (l == NULL) {
        return;
    }
    srv_http_free(l->http);
    l->http = NULL;
    while (l->mtgs) {
        struct live_mtg *lm = l->mtgs;
        l->mtgs = lm->next;
        while (lm->pages) {
            struct live_page *p = lm->pages;
            lm->pages = p->next;
            free(p);
        }
        secs_free(lm->secs, lm->nsecs);
        free(lm->presence);
        srv_rec_free(lm->rec);
        free(lm);
    }
    while (l->shares) {
        struct live_share *ls = l->shares;
        l->shares = ls->next;
        sodium_memzero(ls, sizeof(*ls));
        free(ls);
    }
    free(l);
    srv->live = NULL;
}
