/* test_record_report.c - report import (the shared sample, errors, hostile input) and export
 * (text round trip, Markdown, HTML). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proto_err.h"
#include "proto_schema.h"
#include "proto_util.h"
#include "srv_rec.h"
#include "srv_report.h"
#include "testutil.h"

#define SAMPLE "rg-iem-report-2023-06.txt"
#define HEAD   "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* ---- helpers ---- */

static const struct srv_val *fv(const struct srv_obj *o, const char *name)
{
    int k = proto_field_find(o->type, name, strlen(name));
    assert_true(k >= 0);
    return &o->f[k];
}

/* A string field, or NULL when unset. */
static const char *fs(const struct srv_obj *o, const char *name)
{
    const struct srv_val *v = fv(o, name);
    return v->set ? v->s : NULL;
}

static void assert_field(const struct srv_obj *o, const char *name, const char *want)
{
    const char *got = fs(o, name);
    if (want == NULL) {
        assert_null(got);
    } else {
        assert_non_null(got);
        assert_string_equal(got, want);
    }
}

static const char *item_number(struct srv_rec *rec, const struct srv_obj *o)
{
    const struct srv_val *v = fv(o, "item");
    if (!v->set) {
        return NULL;
    }
    const struct srv_obj *it = srv_rec_find(rec, PROTO_T_ITEM, v->i);
    assert_non_null(it);
    return fs(it, "number");
}

static struct srv_obj *find_by(struct srv_rec *rec, enum proto_type t, const char *name,
                               const char *value)
{
    for (size_t k = 0; k < rec->objs[t].n; k++) {
        const char *s = fs(rec->objs[t].v[k], name);
        if (s != NULL && strcmp(s, value) == 0) {
            return rec->objs[t].v[k];
        }
    }
    return NULL;
}

static char *sample(size_t *len)
{
    char *text = tu_read_data(SAMPLE, len);
    assert_non_null(text);
    return text;
}

static struct srv_rec *import_ok(const char *text, size_t len)
{
    struct srv_rec *rec = NULL;
    char err[256] = "";
    int rc = srv_report_import(text, len, &rec, err, sizeof(err));
    if (rc != 0) {
        fail_msg("import failed: %d %s", rc, err);
    }
    assert_non_null(rec);
    return rec;
}

static struct srv_rec *import_sample(void)
{
    size_t len = 0;
    char *text = sample(&len);
    struct srv_rec *rec = import_ok(text, len);
    free(text);
    return rec;
}

static char *export(const struct srv_rec *rec, enum srv_report_format fmt, int64_t seq)
{
    struct proto_buf out = {0};
    char *s = NULL;
    assert_int_equal(srv_report_export(rec, fmt, seq, HEAD, NULL, &out), 0);
    s = malloc(out.len + 1);
    assert_non_null(s);
    memcpy(s, out.data, out.len);
    s[out.len] = '\0';
    proto_buf_free(&out, 0);
    return s;
}

static void assert_contains(const char *hay, const char *needle)
{
    if (strstr(hay, needle) == NULL) {
        fail_msg("missing: %s", needle);
    }
}

static const char *last_line(const char *s)
{
    size_t n = strlen(s);
    assert_true(n > 0 && s[n - 1] == '\n');
    n--;
    while (n > 0 && s[n - 1] != '\n') {
        n--;
    }
    return s + n;
}

/* ---- the sample ---- */

static void test_sample_meeting(void **state)
{
    (void)state;
    struct srv_rec *rec = import_sample();
    const struct srv_obj *m = &rec->meeting;

    assert_string_equal(rec->id, "import");
    assert_field(m, "title", "TSAG Rapporteur Group on Industry Engagement, Metrics");
    assert_field(m, "group", "RG-IEM");
    assert_field(m, "parent", "TSAG");
    assert_field(m, "venue", "Geneva");
    assert_field(m, "start", "2023-05-30");
    assert_field(m, "end", "2023-06-02");
    assert_field(m, "tz", "Europe/Zurich");
    assert_field(m, "report_ref", "TSAG-TD182");
    assert_field(m, "action_prefix", "RG-IEM");
    assert_int_equal(fv(m, "deadline_days")->i, 7);
    assert_field(m, "status", "draft");
    assert_field(m, "abstract",
                 "This TD contains the draft report of the sessions of the TSAG Rapporteur "
                 "Group on Industry Engagement, Metrics during this TSAG meeting (Geneva, 30 "
                 "May-2 June 2023).");

    /* Ids are local and unique: 1, 2, ... */
    int64_t total = 0;
    for (int t = 0; t < PROTO_T_COUNT; t++) {
        total += (int64_t)rec->objs[t].n;
    }
    assert_int_equal(srv_rec_max_id(rec), total);
    srv_rec_free(rec);
}

static void test_sample_items(void **state)
{
    (void)state;
    struct srv_rec *rec = import_sample();
    static const char *const titles[] = {
        "Action from RG-IEM to WP2",
        "Introduction",
        "Opening and welcome",
        "Industry engagement",
        "Mechanisms to address new and emerging technologies in ITU-T",
        "Resolution 68",
        "Metrics",
        "Future meetings",
        "AOB",
        "Closure of the meeting",
    };
    const struct srv_obj *items[10];

    assert_int_equal(rec->objs[PROTO_T_ITEM].n, 10);
    srv_rec_items_sorted(rec, items);
    for (int k = 0; k < 10; k++) {
        char num[4];
        snprintf(num, sizeof(num), "%d", k);
        assert_field(items[k], "number", num);
        assert_field(items[k], "title", titles[k]);
    }
    /* Section 0 holds only actions. */
    assert_field(items[0], "body", "");
    assert_field(items[1], "body",
                 "A meeting of the TSAG Rapporteur Group on Industry Engagement, Metrics "
                 "(RG-IEM) took place during TSAG on 30 May-2 June 2023, on Wednesday 31 May "
                 "(1615-1730 hours) and on Thursday 1 June (1615-1730).\n"
                 "Mr Glenn PARSONS (Ericsson Canada), Rapporteur of TSAG RG-IEM, chaired the "
                 "meeting of RG-IEM, supported by Mr Noah LUO (Huawei Technologies, China), "
                 "Associate Rapporteur on metrics, and Mr Arnaud TADDEI (Broadcom, United "
                 "States), Associate Rapporteur on emerging technologies.");
    /* The blank line between the two paragraphs is dropped, trailing blanks trimmed. */
    assert_field(items[6], "body",
                 "The representative from the TSB introduced TSAG-TD192 containing statistics "
                 "regarding ITU-T study group work (position of 2023-05-22). These include "
                 "download figures (Power BI report), data on the activities of each study "
                 "groups, including rapporteur group meetings, as well as a snapshot of "
                 "\xe2\x80\x9cstale work items\xe2\x80\x9d.\n"
                 "TSAG-TD193 introduced by the TSB presents Question-level statistics in the "
                 "form of a Power BI report.");
    assert_field(items[7], "body",
                 "The meeting agreed on the following dates, times (all times are provided in "
                 "Geneva time zone) and main topics for virtual interim RG-IEM meetings before "
                 "the next TSAG meeting.\n"
                 "- 27 July 2023, 1300-1500: CTO/CxO review\n"
                 "- 5 September 2023, 1300-1500: Workshop\n"
                 "- 9 October 2023, 1300-1500: Res.68\n"
                 "- 7 November 2023, 1300-1500: Emerging technology mechanism\n"
                 "- 12 December 2023, 1300-1500: Metrics\n"
                 "- 30 January 2024, 1300-1500: Industry participation\n"
                 "The contribution deadline is 7 days before the respective meeting. "
                 "Contributions on the main topic of the call will be treated with priority, "
                 "contributions on other topics within scope of RG-IEM will be treated if time "
                 "permits, or moved to the following meeting.");
    assert_field(items[8], "body", "None.");
    /* A bookmark at the start of a paragraph leaves the paragraph. */
    assert_contains(fs(items[3], "body"), "\nA delegate of Alg\xc3\xa9rie T\xc3\xa9l\xc3\xa9"
                                          "com encouraged RG-IEM");
    srv_rec_free(rec);
}

static void test_sample_actions(void **state)
{
    (void)state;
    struct srv_rec *rec = import_sample();
    static const char *const texts[] = {
        "to request the TSB to incorporate, as appropriate, the information provided in "
        "TSAG-C022 in a Collective announcing the next TSAG meeting (or standalone TSB "
        "Circular),",
        "to approve the plan for convening the Industry Engagement workshop in spring 2024 and "
        "establish the ITU-T Industry Engagement Workshop Steering Committee (IEWSC) with the "
        "terms of reference provided in TSAG-TD257R1,",
        "to appoint an IEWSC Chair,",
        "to approve the outgoing LS in TSAG-TD290R1 on the topic of an incubation mechanism to "
        "all ITU-T Study Groups for action,",
        "to authorize RG-IEM to organize six interim virtual meetings with the following dates, "
        "times (all times are provided in Geneva time zone) and main topics:\n"
        "- 27 July 2023, 1300-1500: CTO/CxO review,\n"
        "- 5 September 2023, 1300-1500: Workshop,\n"
        "- 9 October 2023, 1300-1500: Res.68,\n"
        "- 7 November 2023, 1300-1500: emerging technology mechanism,\n"
        "- 12 December 2023, 1300-1500: metrics,\n"
        "- 30 January 2024, 1300-1500: industry participation.\n"
        "The contribution deadline is 7 days before the respective meeting. Contributions on "
        "the main topic of the call will be treated with priority, contributions on other "
        "topics within scope of RG-IEM will be treated if time permits, or moved to the "
        "following meeting.",
    };

    assert_int_equal(rec->objs[PROTO_T_ACTION].n, 5);
    for (int k = 0; k < 5; k++) {
        char ref[16];
        snprintf(ref, sizeof(ref), "RG-IEM-%d", k + 1);
        const struct srv_obj *a = find_by(rec, PROTO_T_ACTION, "ref", ref);
        assert_non_null(a);
        assert_field(a, "to", "WP2");
        assert_field(a, "status", "open");
        assert_field(a, "owner", NULL);
        assert_field(a, "due", NULL);
        assert_field(a, "text", texts[k]);
    }
    srv_rec_free(rec);
}

static void test_sample_docs(void **state)
{
    (void)state;
    struct srv_rec *rec = import_sample();
    /* (ref, revision, first section) in order of first appearance outside the list of
     * actions, which only repeats references. "C031" and "TD258" in section 4 are the same
     * documents as TSAG-C031 and TSAG-TD258, also in section 4. */
    static const char *const want[][3] = {
        {"TSAG-TD181", "", "2"},   {"TSAG-TD181", "R1", "2"}, {"TSAG-TD232", "", "2"},
        {"TSAG-TD256", "", "3"},   {"TSAG-C030", "", "3"},    {"TSAG-C021", "", "3"},
        {"TSAG-C022", "", "3"},    {"TSAG-TD257", "", "3"},   {"TSAG-C032", "", "3"},
        {"TSAG-TD257", "R1", "3"}, {"TSAG-C025", "", "4"},    {"TSAG-TD239", "", "4"},
        {"TSAG-TD290", "R1", "4"}, {"TSAG-TD258", "", "4"},   {"TSAG-C031", "", "4"},
        {"TSAG-TD299", "", "4"},   {"TSAG-TD267", "", "5"},   {"TSAG-TD273", "R1", "5"},
        {"TSAG-TD192", "", "6"},   {"TSAG-TD193", "", "6"},   {"TSAG-TD182", "", "9"},
    };
    const size_t n = sizeof(want) / sizeof(want[0]);

    assert_int_equal(rec->objs[PROTO_T_DOC].n, n);
    for (size_t k = 0; k < n; k++) {
        const struct srv_obj *d = rec->objs[PROTO_T_DOC].v[k];
        assert_field(d, "ref", want[k][0]);
        assert_field(d, "revision", want[k][1]);
        assert_string_equal(item_number(rec, d), want[k][2]);
        assert_field(d, "title", NULL);
        assert_field(d, "status", NULL);
    }
    srv_rec_free(rec);
}

static void test_sample_decisions(void **state)
{
    (void)state;
    struct srv_rec *rec = import_sample();
    static const char *const want[][3] = {
        {"2", "noted",
         "The meeting noted the RG-IEM terms of reference, as provided in Annex B of "
         "TSAG-TD181, and the progress report from interim TSAG RG-IEM meetings (December "
         "2022 to May 2023) in TSAG-TD232."},
        {"3", "noted",
         "The meeting took note of the industry engagement action plan approved by the "
         "WP2/TSAG opening plenary in TSAG-TD256."},
        {"3", "noted",
         "The meeting noted that, conceptually, there is no difference between the use of the "
         "terms \xe2\x80\x9cKey outcome indicators\xe2\x80\x9d and \xe2\x80\x9cKey performance "
         "indicators\xe2\x80\x9d."},
        {"3", "agreed",
         "It was agreed to use the RG-IEM interim meetings to elaborate the proposals made in "
         "TSAG-C021 and the feedback received during the discussion."},
        {"3", "agreed",
         "The meeting supported the proposal and agreed to request the TSB to incorporate, as "
         "appropriate, the information provided in TSAG-C022 in a Collective announcing the "
         "next TSAG meeting (or standalone TSB Circular)."},
        {"3", "agreed",
         "The meeting agreed to organize a drafting session (31 May 2023, 1745-1845) in order "
         "to develop TSAG-TD257 based on a detailed review of TSAG-C032 and the comments "
         "raised during the RG-IEM meeting."},
        {"3", "agreed", "The ToRs and the intention to hold the workshop were agreed by RG-IEM."},
        {"4", "agreed",
         "It was agreed that the outgoing LS in TSAG-TD290R1 be sent to all ITU-T Study Groups "
         "for action."},
        {"4", "agreed", "The meeting agreed to create a new TD integrating C031 into TD258."},
        {"5", "noted",
         "The meeting noted the TSAG-TD273R1 revised based on the discussion in WP2/TSAG "
         "opening plenary."},
        {"7", "agreed",
         "The meeting agreed on the following dates, times (all times are provided in Geneva "
         "time zone) and main topics for virtual interim RG-IEM meetings before the next TSAG "
         "meeting."},
    };
    const size_t n = sizeof(want) / sizeof(want[0]);
    size_t agreed = 0;

    assert_int_equal(rec->objs[PROTO_T_DECISION].n, 11);
    for (size_t k = 0; k < n; k++) {
        const struct srv_obj *d = rec->objs[PROTO_T_DECISION].v[k];
        assert_string_equal(item_number(rec, d), want[k][0]);
        assert_field(d, "kind", want[k][1]);
        assert_field(d, "text", want[k][2]);
        agreed += strcmp(want[k][1], "agreed") == 0;
    }
    assert_int_equal(agreed, 7);
    srv_rec_free(rec);
}

static void test_sample_sessions_interims(void **state)
{
    (void)state;
    struct srv_rec *rec = import_sample();
    static const char *const sessions[][4] = {
        {"2023-05-31", "16:15", "17:30", "session"},
        {"2023-06-01", "16:15", "17:30", "session"},
        {"2023-05-31", "17:45", "18:45", "drafting"},
    };
    static const char *const interims[][3] = {
        {"2023-07-27", "CTO/CxO review", "2023-07-20"},
        {"2023-09-05", "Workshop", "2023-08-29"},
        {"2023-10-09", "Res.68", "2023-10-02"},
        {"2023-11-07", "Emerging technology mechanism", "2023-10-31"},
        {"2023-12-12", "Metrics", "2023-12-05"},
        {"2024-01-30", "Industry participation", "2024-01-23"},
    };
    char deadline[11];

    assert_int_equal(rec->objs[PROTO_T_SESSION].n, 3);
    for (size_t k = 0; k < 3; k++) {
        const struct srv_obj *s = rec->objs[PROTO_T_SESSION].v[k];
        assert_field(s, "date", sessions[k][0]);
        assert_field(s, "start", sessions[k][1]);
        assert_field(s, "end", sessions[k][2]);
        assert_field(s, "kind", sessions[k][3]);
        assert_field(s, "title", NULL);
    }
    /* Listed in section 7 and again in RG-IEM-5: once each, in section 7's words. */
    assert_int_equal(rec->objs[PROTO_T_INTERIM].n, 6);
    for (size_t k = 0; k < 6; k++) {
        const struct srv_obj *im = rec->objs[PROTO_T_INTERIM].v[k];
        assert_field(im, "date", interims[k][0]);
        assert_field(im, "start", "13:00");
        assert_field(im, "end", "15:00");
        assert_field(im, "mode", "virtual");
        assert_field(im, "topic", interims[k][1]);
        assert_false(fv(im, "deadline_days")->set);
        srv_rec_interim_deadline(rec, im, deadline);
        assert_string_equal(deadline, interims[k][2]);
    }
    srv_rec_free(rec);
}

static void test_sample_people(void **state)
{
    (void)state;
    struct srv_rec *rec = import_sample();
    static const char *const want[][4] = {
        {"Glenn PARSONS", "Ericsson Canada", "rapporteur", NULL},
        {"Noah LUO", "Huawei Technologies, China", "associate", "metrics"},
        {"Arnaud TADDEI", "Broadcom, United States", "associate", "emerging technologies"},
    };

    assert_int_equal(rec->objs[PROTO_T_PERSON].n, 3);
    for (size_t k = 0; k < 3; k++) {
        const struct srv_obj *p = rec->objs[PROTO_T_PERSON].v[k];
        assert_field(p, "name", want[k][0]);
        assert_field(p, "affiliation", want[k][1]);
        assert_field(p, "role", want[k][2]);
        assert_field(p, "note", want[k][3]);
    }
    srv_rec_free(rec);
}

/* No stored string keeps a Word artifact, a "·" bullet or a trailing blank. */
static void test_sample_clean(void **state)
{
    (void)state;
    struct srv_rec *rec = import_sample();

    for (int t = 0; t < PROTO_T_COUNT; t++) {
        size_t n = t == PROTO_T_MEETING ? 1 : rec->objs[t].n;
        for (size_t k = 0; k < n; k++) {
            const struct srv_obj *o = t == PROTO_T_MEETING ? &rec->meeting : rec->objs[t].v[k];
            for (size_t f = 0; f < PROTO_MAX_FIELDS; f++) {
                const char *s = o->f[f].s;
                if (s == NULL) {
                    continue;
                }
                assert_null(strstr(s, "[bookmark"));
                assert_null(strstr(s, "\xc2\xb7"));
                assert_null(strstr(s, " \n"));
                assert_null(strchr(s, '\r'));
                assert_true(proto_utf8_valid(s, strlen(s)));
                assert_int_equal(strlen(s), o->f[f].len);
                if (o->f[f].len > 0) {
                    assert_true(s[o->f[f].len - 1] != ' ');
                }
            }
        }
    }
    srv_rec_free(rec);
}

/* ---- comparing records field by field, ids and seqs aside ---- */

/* One object as a line of its values; item refs by the item's number. */
static char *canon_obj(struct srv_rec *rec, const struct srv_obj *o)
{
    const struct proto_typeinfo *ti = proto_type_info(o->type);
    struct proto_buf b = {0};
    char *s = NULL;

    for (size_t k = 0; k < ti->nfields; k++) {
        const struct proto_field *fd = &ti->fields[k];
        const struct srv_val *v = &o->f[k];
        char num[32];
        const char *val = "<nil>";
        if (fd->kind == PROTO_F_COMPUTED) {
            continue;
        }
        if (fd->kind == PROTO_F_ITEMREF && v->set) {
            val = item_number(rec, o);
        } else if (fd->kind == PROTO_F_INT && v->set) {
            snprintf(num, sizeof(num), "%lld", (long long)v->i);
            val = num;
        } else if (fd->kind == PROTO_F_TEXT) {
            val = v->set ? v->s : "";
        } else if (v->set) {
            val = v->s;
        }
        assert_int_equal(proto_buf_append(&b, fd->name, strlen(fd->name)), 0);
        assert_int_equal(proto_buf_append(&b, "=", 1), 0);
        assert_int_equal(proto_buf_append(&b, val, strlen(val)), 0);
        assert_int_equal(proto_buf_append(&b, "\x1f", 1), 0);
    }
    s = calloc(1, b.len + 1);
    assert_non_null(s);
    if (b.len > 0) {
        memcpy(s, b.data, b.len);
    }
    proto_buf_free(&b, 0);
    return s;
}

static int strp_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void assert_same_record(struct srv_rec *a, struct srv_rec *b)
{
    char *ma = canon_obj(a, &a->meeting), *mb = canon_obj(b, &b->meeting);
    assert_string_equal(ma, mb);
    free(ma);
    free(mb);
    for (int t = PROTO_T_MEETING + 1; t < PROTO_T_COUNT; t++) {
        size_t n = a->objs[t].n;
        assert_int_equal(n, b->objs[t].n);
        char **va = calloc(n + 1, sizeof(char *)), **vb = calloc(n + 1, sizeof(char *));
        assert_non_null(va);
        assert_non_null(vb);
        for (size_t k = 0; k < n; k++) {
            va[k] = canon_obj(a, a->objs[t].v[k]);
            vb[k] = canon_obj(b, b->objs[t].v[k]);
        }
        qsort(va, n, sizeof(char *), strp_cmp);
        qsort(vb, n, sizeof(char *), strp_cmp);
        for (size_t k = 0; k < n; k++) {
            assert_string_equal(va[k], vb[k]);
            free(va[k]);
            free(vb[k]);
        }
        free(va);
        free(vb);
    }
}

static void test_roundtrip_text(void **state)
{
    (void)state;
    struct srv_rec *a = import_sample();
    char *text = export(a, SRV_REPORT_TEXT, 42);
    struct srv_rec *b = import_ok(text, strlen(text));
    char *again = export(b, SRV_REPORT_TEXT, 42);

    assert_same_record(a, b);
    /* And the text is a fixed point. */
    assert_string_equal(text, again);
    free(text);
    free(again);
    srv_rec_free(a);
    srv_rec_free(b);
}

static struct srv_rec *full_record(bool action_item);

/* What the text and Markdown exports write imports back to the same record, of the sample
 * and of a record with every kind of value; an HTML export is refused, saying what to do. */
static void test_roundtrip_exports(void **state)
{
    (void)state;
    for (int r = 0; r < 3; r++) {
        struct srv_rec *a = r == 0 ? import_sample() : full_record(r - 1);
        for (int f = 0; f < 2; f++) {
            enum srv_report_format fmt = f == 0 ? SRV_REPORT_TEXT : SRV_REPORT_MARKDOWN;
            char *text = export(a, fmt, 9);
            struct srv_rec *b = import_ok(text, strlen(text));
            assert_same_record(a, b);
            char *again = export(b, fmt, 9);
            assert_string_equal(text, again);
            free(again);
            free(text);
            srv_rec_free(b);
        }
        char *html = export(a, SRV_REPORT_HTML, 9);
        struct srv_rec *b = NULL;
        char err[256] = "";
        assert_int_equal(srv_report_import(html, strlen(html), &b, err, sizeof(err)), PROTO_EINVAL);
        assert_null(b);
        assert_contains(err, "line 1: an HTML export cannot be imported");
        free(html);
        srv_rec_free(a);
    }
}

static void test_crlf_and_audit_line(void **state)
{
    (void)state;
    size_t len = 0, o = 0;
    char *text = sample(&len);
    char *crlf = malloc(2 * len + 64);
    struct srv_rec *a = import_ok(text, len), *b = NULL, *c = NULL;

    assert_non_null(crlf);
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '\n') {
            crlf[o++] = ' '; /* a trailing blank too */
            crlf[o++] = '\r';
        }
        crlf[o++] = text[i];
    }
    b = import_ok(crlf, o);
    assert_same_record(a, b);

    /* The audit head of an export is not part of the last item. */
    o = (size_t)snprintf(crlf, 2 * len + 64, "%sAudit head: seq 12, hash %s\n", text, HEAD);
    c = import_ok(crlf, o);
    assert_same_record(a, c);
    assert_field(srv_rec_find(c, PROTO_T_ITEM, find_by(c, PROTO_T_ITEM, "number", "9")->id), "body",
                 "In closing, the Rapporteur informed delegates that the meeting report will be "
                 "made available in TSAG-TD182.\nThe Rapporteur expressed his gratitude to "
                 "Associate Rapporteurs, Contributors and delegates for the active "
                 "participation.\nThe meeting closed at 17:30 hours.");
    free(text);
    free(crlf);
    srv_rec_free(a);
    srv_rec_free(b);
    srv_rec_free(c);
}

static void test_small_reports(void **state)
{
    (void)state;
    /* No abstract, one section, "•" bullets, Ms/Dr/Counsellor, a year-less date range. */
    const char *text = "1\tIntroduction\n"
                       "Ms Ada LOVELACE (TSB), Counsellor, and Dr Alan TURING (Bletchley "
                       "Park) attended (Tokyo, 3-5 May 2024).\n"
                       "\t\xe2\x80\xa2\tFirst point\n"
                       "2\tDecisions\n"
                       "It was decided to meet again. It was not agreed to stop.\n";
    struct srv_rec *rec = import_ok(text, strlen(text));
    const struct srv_obj *p = NULL;

    assert_int_equal(rec->objs[PROTO_T_ITEM].n, 2);
    assert_field(&rec->meeting, "abstract", NULL);
    assert_field(&rec->meeting, "venue", "Tokyo");
    assert_field(&rec->meeting, "start", "2024-05-03");
    assert_field(&rec->meeting, "end", "2024-05-05");
    assert_field(&rec->meeting, "tz", "Asia/Tokyo");
    assert_int_equal(rec->objs[PROTO_T_ACTION].n, 0);
    assert_field(&rec->meeting, "action_prefix", NULL);
    p = find_by(rec, PROTO_T_PERSON, "name", "Ada LOVELACE");
    assert_non_null(p);
    assert_field(p, "role", "counsellor");
    assert_field(p, "affiliation", "TSB");
    p = find_by(rec, PROTO_T_PERSON, "name", "Alan TURING");
    assert_non_null(p);
    assert_field(p, "role", "delegate");
    assert_contains(fs(find_by(rec, PROTO_T_ITEM, "number", "1"), "body"), "\n- First point");
    assert_int_equal(rec->objs[PROTO_T_DECISION].n, 1);
    assert_field(rec->objs[PROTO_T_DECISION].v[0], "kind", "decided");
    assert_field(rec->objs[PROTO_T_DECISION].v[0], "text", "It was decided to meet again.");
    srv_rec_free(rec);

    /* Word's "N.<TAB>Title"; a null error buffer. */
    rec = NULL;
    assert_int_equal(
        srv_report_import("4.1.\tSub\nText\n", strlen("4.1.\tSub\nText\n"), &rec, NULL, 0), 0);
    assert_int_equal(rec->objs[PROTO_T_ITEM].n, 1);
    assert_field(rec->objs[PROTO_T_ITEM].v[0], "number", "4.1");
    assert_field(rec->objs[PROTO_T_ITEM].v[0], "title", "Sub");
    assert_field(rec->objs[PROTO_T_ITEM].v[0], "body", "Text");
    srv_rec_free(rec);
}

/* ---- errors ---- */

static void test_errors(void **state)
{
    (void)state;
    struct srv_rec *rec = (struct srv_rec *)0x1;
    char err[256];

    const char bad[] = "\tAbstract:\n\tx\n1\tIntro\nbad \xff byte\n";
    assert_int_equal(srv_report_import(bad, sizeof(bad) - 1, &rec, err, sizeof(err)), PROTO_EINVAL);
    assert_null(rec);
    assert_string_equal(err, "line 4: not valid UTF-8");

    const char overlong[] = "1\tIntro\r\n\xc0\xaf\r\n";
    assert_int_equal(srv_report_import(overlong, sizeof(overlong) - 1, &rec, err, sizeof(err)),
                     PROTO_EINVAL);
    assert_string_equal(err, "line 2: not valid UTF-8");

    const char nul[] = "1\tIntro\nx\0y\n";
    assert_int_equal(srv_report_import(nul, sizeof(nul) - 1, &rec, err, sizeof(err)), PROTO_EINVAL);
    assert_string_equal(err, "line 2: not valid UTF-8");

    const char none[] = "\tAbstract:\n\tText\n1 Intro (no tab)\n\tAlso no section\n";
    assert_int_equal(srv_report_import(none, sizeof(none) - 1, &rec, err, sizeof(err)),
                     PROTO_EINVAL);
    assert_null(rec);
    assert_non_null(strstr(err, "no numbered section"));
    assert_int_equal(strncmp(err, "line 5: ", 8), 0);

    assert_int_equal(srv_report_import(NULL, 0, &rec, err, sizeof(err)), PROTO_EINVAL);
    assert_non_null(strstr(err, "line 1: no numbered section"));

    /* Over the limit: refused before anything else, naming where the limit falls. */
    char *big = malloc(SRV_REPORT_MAX + 1);
    assert_non_null(big);
    for (size_t i = 0; i < SRV_REPORT_MAX + 1; i++) {
        big[i] = i % 64 == 63 ? '\n' : 'a';
    }
    /* The section last, so that the text up to the limit is a valid report. */
    big[SRV_REPORT_MAX - 9] = '\n';
    memcpy(big + SRV_REPORT_MAX - 8, "1\tIntro\n", 8);
    assert_int_equal(srv_report_import(big, SRV_REPORT_MAX + 1, &rec, err, sizeof(err)),
                     PROTO_ETOOBIG);
    assert_null(rec);
    assert_string_equal(err, "line 65538: report over 4194304 bytes");
    /* Exactly the limit is accepted. */
    assert_int_equal(srv_report_import(big, SRV_REPORT_MAX, &rec, err, sizeof(err)), 0);
    assert_int_equal(rec->objs[PROTO_T_ITEM].n, 1);
    srv_rec_free(rec);
    free(big);

    /* A short error buffer is cut, not overrun. */
    char tiny[8];
    assert_int_equal(srv_report_import(bad, sizeof(bad) - 1, &rec, tiny, sizeof(tiny)),
                     PROTO_EINVAL);
    assert_string_equal(tiny, "line 4:");
}

/* ---- export ---- */

static void test_export_text(void **state)
{
    (void)state;
    struct srv_rec *rec = import_sample();
    struct srv_obj *done = find_by(rec, PROTO_T_ACTION, "ref", "RG-IEM-3");
    assert_int_equal(srv_val_set_str((struct srv_val *)fv(done, "status"), "done", 4), 0);
    char *text = export(rec, SRV_REPORT_TEXT, 42);

    /* The title block, from the record: title, group, venue, dates, report, then the future
     * meetings in date order with their contribution deadlines. */
    assert_int_equal(strncmp(text,
                             "TSAG Rapporteur Group on Industry Engagement, Metrics\n"
                             "Group: RG-IEM\nParent: TSAG\nVenue: Geneva\n"
                             "Dates: 2023-05-30 to 2023-06-02\nReport: TSAG-TD182\n"
                             "Future meetings:\n"
                             "\xc2\xb7 2023-07-27 13:00-15:00 virtual: CTO/CxO review "
                             "(contributions by 2023-07-20)\n",
                             strlen("TSAG Rapporteur Group on Industry Engagement, Metrics\n"
                                    "Group: RG-IEM\nParent: TSAG\nVenue: Geneva\n"
                                    "Dates: 2023-05-30 to 2023-06-02\nReport: TSAG-TD182\n"
                                    "Future meetings:\n"
                                    "\xc2\xb7 2023-07-27 13:00-15:00 virtual: CTO/CxO review "
                                    "(contributions by 2023-07-20)\n")),
                     0);
    assert_contains(text, "\n\xc2\xb7 2024-01-30 13:00-15:00 virtual: Industry participation "
                          "(contributions by 2024-01-23)\n\n\tAbstract:\n\tThis TD contains the "
                          "draft report of the sessions of the TSAG Rapporteur Group");
    assert_contains(text, "(Geneva, 30 May-2 June 2023).\n\n\n0\tAction from RG-IEM to WP2\n"
                          "\xc2\xb7 RG-IEM-1: to request the TSB");
    /* An action done says so; it reads back so with the annex and without it. */
    assert_contains(text, "\n\xc2\xb7 RG-IEM-3: [done] to appoint an IEWSC Chair,\n");
    struct srv_rec *back = import_ok(text, strlen(text));
    assert_same_record(rec, back);
    srv_rec_free(back);
    char *prose = strstr(text, "\nAnnex: record\n");
    assert_non_null(prose);
    back = import_ok(text, (size_t)(prose - text));
    assert_field(find_by(back, PROTO_T_ACTION, "ref", "RG-IEM-3"), "status", "done");
    assert_field(find_by(back, PROTO_T_ACTION, "ref", "RG-IEM-3"), "text",
                 "to appoint an IEWSC Chair,");
    srv_rec_free(back);
    assert_contains(text, "Circular),\n\xc2\xb7 RG-IEM-2: to approve");
    assert_contains(text, "main topics:\n\xc2\xb7 27 July 2023, 1300-1500: CTO/CxO review,\n");
    assert_contains(text, "following meeting.\n1\tIntroduction\nA meeting of the TSAG");
    assert_contains(text, "\n\xc2\xb7 30 January 2024, 1300-1500: Industry participation\n");
    assert_contains(text, "\n8\tAOB\nNone.\n9\tClosure of the meeting\n");
    assert_null(strstr(text, "\n- "));
    /* The annex, after the last section: the whole record. */
    assert_contains(text, "\nThe meeting closed at 17:30 hours.\n\nAnnex: record\n");
    assert_contains(text, "\nmeeting\treport_ref\tTSAG-TD182\nmeeting\taction_prefix\tRG-IEM\n"
                          "meeting\tdeadline_days\t7\nmeeting\tstatus\tdraft\n");
    assert_contains(text, "\nsession\t2023-05-31\t17:45\t18:45\tdrafting\t-\n");
    assert_contains(text, "\ndoc\tTSAG-TD181\t\t-\t-\t2\t-\ndoc\tTSAG-TD181\tR1\t-\t-\t2\t-\n");
    assert_contains(text,
                    "\naction\tRG-IEM-5\tWP2\t-\topen\t-\tto authorize RG-IEM to organize six "
                    "interim virtual meetings with the following dates, times (all times are "
                    "provided in Geneva time zone) and main topics:\\n- 27 July 2023, "
                    "1300-1500: CTO/CxO review,\\n- 5 September");
    assert_contains(text, "\ndecision\t4\tagreed\tThe meeting agreed to create a new TD "
                          "integrating C031 into TD258.\n");
    assert_contains(text, "\ninterim\t2024-01-30\t13:00\t15:00\tvirtual\tIndustry "
                          "participation\t-\n");
    assert_contains(text, "\naction\tRG-IEM-3\tWP2\t-\tdone\t");
    assert_contains(text, "\nperson\tNoah LUO\tHuawei Technologies, China\tassociate\tmetrics\n");
    assert_contains(text, "\tassociate\temerging technologies\nAudit head: seq 42");
    assert_null(strstr(text, "not-an-item"));
    assert_string_equal(last_line(text), "Audit head: seq 42, hash " HEAD "\n");
    free(text);
    srv_rec_free(rec);
}

/* A record made through the API: actions out of order, no section for them. */
static struct srv_rec *api_record(void)
{
    struct srv_rec *rec = srv_rec_new("m");
    struct srv_obj *it = srv_obj_new(PROTO_T_ITEM), *a = NULL, *d = NULL;
    const char *refs[] = {"X-10", "X-2", "X-1"};

    it->id = 1;
    assert_int_equal(srv_val_set_str((struct srv_val *)fv(it, "number"), "1", 1), 0);
    assert_int_equal(srv_val_set_str((struct srv_val *)fv(it, "title"), "Intro", 5), 0);
    assert_int_equal(srv_rec_add(rec, it), 0);
    for (int k = 0; k < 3; k++) {
        a = srv_obj_new(PROTO_T_ACTION);
        a->id = 2 + k;
        assert_int_equal(srv_val_set_str((struct srv_val *)fv(a, "ref"), refs[k], strlen(refs[k])),
                         0);
        assert_int_equal(srv_val_set_str((struct srv_val *)fv(a, "to"), "WP1", 3), 0);
        assert_int_equal(srv_val_set_str((struct srv_val *)fv(a, "text"), "do it", 5), 0);
        assert_int_equal(srv_rec_add(rec, a), 0);
    }
    d = srv_obj_new(PROTO_T_DOC);
    d->id = 9;
    assert_int_equal(srv_val_set_str((struct srv_val *)fv(d, "ref"), "TSAG-TD1", 8), 0);
    assert_int_equal(srv_rec_add(rec, d), 0);
    return rec;
}

static void test_export_text_actions(void **state)
{
    (void)state;
    struct srv_rec *rec = api_record();
    char *text = export(rec, SRV_REPORT_TEXT, 3);
    struct srv_rec *back = NULL;

    /* The section of actions the export adds is no item: the annex says so. */
    assert_string_equal(text,
                        "\tAbstract:\n\n\n"
                        "0\tActions to WP1\n"
                        "\xc2\xb7 X-1: do it\n"
                        "\xc2\xb7 X-2: do it\n"
                        "\xc2\xb7 X-10: do it\n"
                        "1\tIntro\n"
                        "\n"
                        "Annex: record\n"
                        "# The record, one line per field of the meeting and per object, "
                        "columns apart by a\n"
                        "# tab. \"-\" is no value; in a value \\t \\n \\r \\\\ \\- stand for a "
                        "tab, a line\n"
                        "# break, a carriage return, a backslash and a value that is only "
                        "\"-\". The items and\n"
                        "# the abstract are the text above; an \"item\" column gives an item's "
                        "number.\n"
                        "not-an-item\t0\n"
                        "# meeting\tfield\tvalue\n"
                        "meeting\ttitle\t-\n"
                        "meeting\tgroup\t-\n"
                        "meeting\tparent\t-\n"
                        "meeting\tvenue\t-\n"
                        "meeting\tstart\t-\n"
                        "meeting\tend\t-\n"
                        "meeting\ttz\t-\n"
                        "meeting\treport_ref\t-\n"
                        "meeting\taction_prefix\t-\n"
                        "meeting\tdeadline_days\t7\n"
                        "meeting\tstatus\tdraft\n"
                        "# session\tdate\tstart\tend\tkind\ttitle\n"
                        "# doc\tref\trevision\ttitle\tsource\titem\tstatus\n"
                        "doc\tTSAG-TD1\t-\t-\t-\t-\t-\n"
                        "# action\tref\tto\towner\tstatus\tdue\ttext\n"
                        "action\tX-10\tWP1\t-\topen\t-\tdo it\n"
                        "action\tX-2\tWP1\t-\topen\t-\tdo it\n"
                        "action\tX-1\tWP1\t-\topen\t-\tdo it\n"
                        "# decision\titem\tkind\ttext\n"
                        "# interim\tdate\tstart\tend\tmode\ttopic\tdeadline_days\n"
                        "# person\tname\taffiliation\trole\tnote\n"
                        "Audit head: seq 3, hash " HEAD "\n");
    back = import_ok(text, strlen(text));
    assert_same_record(rec, back);
    assert_int_equal(back->objs[PROTO_T_ITEM].n, 1);
    assert_int_equal(back->objs[PROTO_T_ACTION].n, 3);
    assert_field(find_by(back, PROTO_T_ACTION, "ref", "X-10"), "to", "WP1");
    assert_field(find_by(back, PROTO_T_ACTION, "ref", "X-10"), "text", "do it");
    free(text);
    srv_rec_free(back);
    srv_rec_free(rec);
}

/* ---- the annex: every field of every type, back as it was ---- */

static void set_s(struct srv_obj *o, const char *name, const char *value)
{
    struct srv_val *v = (struct srv_val *)fv(o, name);
    if (value == NULL) {
        srv_val_unset(v);
    } else {
        assert_int_equal(srv_val_set_str(v, value, strlen(value)), 0);
    }
}

static void set_i(struct srv_obj *o, const char *name, int64_t i)
{
    srv_val_set_int((struct srv_val *)fv(o, name), i);
}

/* Adds an object of type t with id and string fields given as name, value pairs (a NULL
 * value is nil); ends at a NULL name. */
static struct srv_obj *add(struct srv_rec *rec, enum proto_type t, int64_t id, ...)
{
    struct srv_obj *o = srv_obj_new(t);
    va_list ap;
    const char *name = NULL;

    assert_non_null(o);
    o->id = id;
    va_start(ap, id);
    while ((name = va_arg(ap, const char *)) != NULL) {
        set_s(o, name, va_arg(ap, const char *));
    }
    va_end(ap);
    assert_int_equal(srv_rec_add(rec, o), 0);
    return o;
}

/* A record made through the API with every field of every type set to what no prose
 * would give: unicode, tabs, line breaks, backslashes, a lone "-", nil next to "", items
 * numbered 1, 4, 4.1 and 10 that docs and decisions refer to, action refs that do not look
 * like refs; with a section of actions (item 2) or without one. */
static struct srv_rec *full_record(bool action_item)
{
    struct srv_rec *rec = srv_rec_new("full");
    struct srv_obj *m = &rec->meeting, *o = NULL;

    if (action_item) {
        add(rec, PROTO_T_ITEM, 5, "number", "2", "title", "Actions to WP3", "body",
            "Before the actions.\n- a bullet: not an action", NULL);
    }

    set_s(m, "title", "Gruppe f\xc3\xbcr \xe6\xa0\x87\xe5\x87\x86 \\ \"tests\"");
    set_s(m, "group", "RG-\xc3\x9c");
    set_s(m, "parent", "");
    set_s(m, "venue", "Gen\xc3\xa8ve\tCICG, room\\2");
    set_s(m, "start", "2024-02-28");
    set_s(m, "end", "2024-03-01");
    set_s(m, "tz", "UTC");
    set_s(m, "report_ref", "TSAG-TD999");
    set_s(m, "action_prefix", "-");
    set_i(m, "deadline_days", 0);
    set_s(m, "status", "final");
    set_s(m, "abstract",
          "This report \xe2\x80\x94 unlike prose \xe2\x80\x94 has\tall fields.\n"
          "A second line with a \\ backslash.");
    /* Items out of id order; one body quotes the annex's mark and looks like a heading. */
    add(rec, PROTO_T_ITEM, 17, "number", "10", "title", "Closing \xe2\x9c\x93", "body",
        "Done.\nAnnex: record\n- a bullet \\ with\ta tab", NULL);
    add(rec, PROTO_T_ITEM, 3, "number", "4", "title", "Work", "body", "The work.", NULL);
    add(rec, PROTO_T_ITEM, 11, "number", "4.1", "title", "Sub-work", "body", "", NULL);
    add(rec, PROTO_T_ITEM, 2, "number", "1", "title", "Opening", "body", NULL, NULL);
    add(rec, PROTO_T_SESSION, 20, "date", "2024-02-28", "start", "09:30", "end", "12:30", "kind",
        "drafting", "title", "Morning\t\xe2\x98\x95 \\n not a break", NULL);
    add(rec, PROTO_T_SESSION, 21, "date", "2024-02-29", "start", "00:00", "end", "23:59", "kind",
        "session", "title", NULL, NULL);
    o = add(rec, PROTO_T_DOC, 30, "ref", "TSAG-TD1", "revision", "R1", "title",
            "\xc3\x89tude\tof \\ things", "source", "Editor \"A\"", "status", "noted", NULL);
    set_i(o, "item", 11);
    add(rec, PROTO_T_DOC, 31, "ref", "TSAG-TD1", "revision", "", "title", "-", "source", "",
        "status", NULL, NULL);
    o = add(rec, PROTO_T_DOC, 32, "ref", "C\\7", "revision", NULL, "title", "\\-", "source", "-x",
            "status", " padded ", NULL);
    set_i(o, "item", 17);
    add(rec, PROTO_T_ACTION, 40, "ref", "RG-\xc3\x9c-2", "to", "WP1\tWP2", "owner", "Ms \xc3\x80",
        "status", "done", "due", "2024-04-01", "text",
        "first line  \n\n\tindented\n10\tlooks like a heading\nAnnex: record\nRG-\xc3\x9c-9: "
        "not an action\n- a bullet\nends with \\",
        NULL);
    add(rec, PROTO_T_ACTION, 41, "ref", "X-10", "to", "", "owner", "", "status", "dropped", "due",
        NULL, "text", "", NULL);
    add(rec, PROTO_T_ACTION, 42, "ref", "X-2", "to", NULL, "owner", NULL, "status", "open", "due",
        NULL, "text", NULL, NULL);
    add(rec, PROTO_T_ACTION, 43, "ref", " a:b\tc", "to", "WP3", "owner", "O", "status", "open",
        "due", "2024-03-01", "text", "- starts with a bullet\n\n", NULL);
    o = add(rec, PROTO_T_DECISION, 50, "kind", "noted", "text", "Noted\tthat\nthe \\n is literal.",
            NULL);
    set_i(o, "item", 3);
    add(rec, PROTO_T_DECISION, 51, "kind", "decided", "text", "Added by hand, in no item.", NULL);
    o = add(rec, PROTO_T_DECISION, 52, "kind", "agreed", "text", "-", NULL);
    set_i(o, "item", 17);
    o = add(rec, PROTO_T_INTERIM, 60, "date", "2024-05-02", "start", "13:00", "end", "15:00",
            "mode", "physical", "topic", "Th\xc3\xa8me\t\\ one", NULL);
    set_i(o, "deadline_days", 0);
    add(rec, PROTO_T_INTERIM, 61, "date", "2024-06-30", "start", "07:05", "end", "08:00", "mode",
        "virtual", "topic", "", NULL);
    add(rec, PROTO_T_PERSON, 70, "name", "J\xc3\xb6rg \xe7\x8e\x8b", "affiliation",
        "Org\tDept \\ Unit", "role", "tsb", "note", "-", NULL);
    add(rec, PROTO_T_PERSON, 71, "name", "Nobody in the prose", "affiliation", "", "role",
        "counsellor", "note", NULL, NULL);
    return rec;
}

static void test_annex_roundtrip(void **state)
{
    (void)state;
    for (int with = 0; with < 2; with++) {
        struct srv_rec *a = full_record(with);
        char *text = export(a, SRV_REPORT_TEXT, 9);
        struct srv_rec *b = import_ok(text, strlen(text));
        char *again = export(b, SRV_REPORT_TEXT, 9);

        assert_same_record(a, b);
        assert_string_equal(text, again);
        /* Read back as written, not as the prose would say it. */
        assert_int_equal(b->objs[PROTO_T_ITEM].n, 4 + with);
        assert_int_equal(b->objs[PROTO_T_ACTION].n, 4);
        assert_field(find_by(b, PROTO_T_ITEM, "number", "10"), "body",
                     "Done.\nAnnex: record\n- a bullet \\ with\ta tab");
        assert_field(&b->meeting, "parent", "");
        assert_field(&b->meeting, "action_prefix", "-");
        assert_int_equal(fv(&b->meeting, "deadline_days")->i, 0);
        assert_field(find_by(b, PROTO_T_DOC, "source", ""), "status", NULL);
        assert_field(find_by(b, PROTO_T_DOC, "source", ""), "title", "-");
        assert_false(fv(find_by(b, PROTO_T_DOC, "source", ""), "item")->set);
        assert_string_equal(item_number(b, find_by(b, PROTO_T_DOC, "ref", "C\\7")), "10");
        assert_field(find_by(b, PROTO_T_ACTION, "ref", "X-2"), "to", NULL);
        assert_field(find_by(b, PROTO_T_ACTION, "ref", "X-10"), "to", "");
        assert_field(find_by(b, PROTO_T_ACTION, "ref", " a:b\tc"), "text",
                     "- starts with a bullet\n\n");
        assert_false(fv(find_by(b, PROTO_T_INTERIM, "topic", ""), "deadline_days")->set);
        /* How the values read in the annex. */
        assert_contains(text, "\nmeeting\tparent\t\nmeeting\tvenue\tGen\xc3\xa8ve\\tCICG, "
                              "room\\\\2\n");
        assert_contains(text, "\nmeeting\taction_prefix\t\\-\nmeeting\tdeadline_days\t0\n");
        assert_contains(text, "\ndoc\tTSAG-TD1\t\t\\-\t\t-\t-\n");
        assert_contains(text, "\ndoc\tC\\\\7\t-\t\\\\-\t-x\t10\t padded \n");
        assert_contains(text, "\ndecision\t4\tnoted\tNoted\\tthat\\nthe \\\\n is literal.\n");
        assert_contains(text, "\ndecision\t-\tdecided\tAdded by hand, in no item.\n");
        assert_contains(text, "\naction\tX-2\t-\t-\topen\t-\t-\n");
        assert_contains(text, "\naction\t a:b\\tc\tWP3\tO\topen\t2024-03-01\t- starts with a "
                              "bullet\\n\\n\n");
        assert_contains(text, "\ninterim\t2024-05-02\t13:00\t15:00\tphysical\tTh\xc3\xa8me\\t"
                              "\\\\ one\t0\n");
        /* The prose still reads as a report; a line of a text that looks like a heading is
         * not one. */
        assert_contains(text, "\n10 looks like a heading\n");
        if (with) {
            assert_null(strstr(text, "not-an-item"));
            assert_contains(text, "\n2\tActions to WP3\nBefore the actions.\n\xc2\xb7 a bullet: "
                                  "not an action\n\xc2\xb7  a:b\tc: - starts with a bullet\n\n");
            assert_field(find_by(b, PROTO_T_ITEM, "number", "2"), "body",
                         "Before the actions.\n- a bullet: not an action");
        } else {
            assert_contains(text, "\nnot-an-item\t0\n");
            assert_null(find_by(b, PROTO_T_ITEM, "number", "0"));
        }
        free(text);
        free(again);
        srv_rec_free(a);
        srv_rec_free(b);
    }
}

/* Imports "1<TAB>Intro" with an annex of the given lines; expects rc and err. */
static void annex_error(const char *lines, int want_rc, const char *want_err)
{
    struct proto_buf b = {0};
    struct srv_rec *rec = (struct srv_rec *)0x1;
    char err[256] = "";
    const char *head = "1\tIntro\nBody.\n\nAnnex: record\n# a comment\n";

    assert_int_equal(proto_buf_append(&b, head, strlen(head)), 0);
    assert_int_equal(proto_buf_append(&b, lines, strlen(lines)), 0);
    assert_int_equal(srv_report_import((const char *)b.data, b.len, &rec, err, sizeof(err)),
                     want_rc);
    assert_null(rec);
    assert_string_equal(err, want_err);
    proto_buf_free(&b, 0);
}

static void test_annex_errors(void **state)
{
    (void)state;
    struct proto_buf b = {0};

    annex_error("doc\tTSAG-TD1\n", PROTO_EINVAL, "line 6: doc: 2 columns, want 7");
    annex_error("person\ta\tb\tdelegate\t-\textra\n", PROTO_EINVAL,
                "line 6: person: 6 columns, want 5");
    annex_error("meeting\ttitle\n", PROTO_EINVAL, "line 6: meeting: 2 columns, want 3");
    annex_error("\nperson\ta\\qb\tc\tdelegate\t-\n", PROTO_EINVAL,
                "line 7: column 2: a \\ that is not \\t, \\n, \\r, \\\\ or \\-");
    annex_error("person\ta\tends in \\\tdelegate\t-\n", PROTO_EINVAL,
                "line 6: column 3: a \\ that is not \\t, \\n, \\r, \\\\ or \\-");
    annex_error("widget\ta\n", PROTO_EINVAL, "line 6: unknown type \"widget\"");
    annex_error("Meeting\ttitle\tx\n", PROTO_EINVAL, "line 6: unknown type \"Meeting\"");
    annex_error("\x1b[2J\tx\n", PROTO_EINVAL, "line 6: unknown type \"?\"");
    annex_error("item\t2\tMore\n", PROTO_EINVAL,
                "line 6: items are the numbered sections, not \"item\"");
    annex_error("doc\tTSAG-TD1\t\t-\t-\t7\t-\n", PROTO_EINVAL,
                "line 6: doc item: no item numbered \"7\"");
    annex_error("decision\t1.x\tagreed\tx\n", PROTO_EINVAL,
                "line 6: decision item: no item numbered \"1.x\"");
    annex_error("decision\t01\tagreed\tx\n", PROTO_EINVAL,
                "line 6: decision item: no item numbered \"01\"");
    annex_error("action\tX-1\t-\t-\tclosed\t-\tx\n", PROTO_EINVAL,
                "line 6: action status: not one of open, done, dropped");
    annex_error("session\t2023-02-30\t10:00\t11:00\tsession\t-\n", PROTO_EINVAL,
                "line 6: session date: not a date YYYY-MM-DD");
    annex_error("interim\t2023-02-03\t10:00\t24:00\tvirtual\t-\t-\n", PROTO_EINVAL,
                "line 6: interim end: not a time HH:MM");
    annex_error("interim\t2023-02-03\t10:00\t11:00\tvirtual\t-\t3x\n", PROTO_EINVAL,
                "line 6: interim deadline_days: not an integer from 0 to 365");
    annex_error("meeting\tdeadline_days\t366\n", PROTO_EINVAL,
                "line 6: meeting deadline_days: not an integer from 0 to 365");
    annex_error("meeting\ttz\tEurope//Zurich\n", PROTO_EINVAL,
                "line 6: meeting tz: not an IANA time zone name");
    annex_error("meeting\ttitle\ta\nmeeting\ttitle\tb\n", PROTO_EINVAL,
                "line 7: meeting title: given twice");
    annex_error("meeting\tabstract\tx\n", PROTO_EINVAL,
                "line 6: meeting: no field \"abstract\" in the annex");
    annex_error("meeting\tid\tx\n", PROTO_EINVAL, "line 6: meeting: no field \"id\" in the annex");
    annex_error("person\ta\\nb\tc\tdelegate\t-\n", PROTO_EINVAL,
                "line 6: person name: must be one line");
    annex_error("action\tX-1\t-\t-\topen\t-\ta\naction\tX-1\t-\t-\topen\t-\tb\n", PROTO_EINVAL,
                "line 7: action: the same ref as an earlier one");
    annex_error("doc\tD\t\t-\t-\t-\t-\ndoc\tD\tR1\t-\t-\t-\t-\ndoc\tD\t\t-\t-\t1\t-\n",
                PROTO_EINVAL, "line 8: doc: the same ref and revision as an earlier one");
    annex_error("not-an-item\t7\n", PROTO_EINVAL, "line 6: not-an-item: no section numbered \"7\"");
    annex_error("not-an-item\t1\nnot-an-item\t1\n", PROTO_EINVAL,
                "line 7: not-an-item: no section numbered \"1\"");
    annex_error("not-an-item\n", PROTO_EINVAL, "line 6: not-an-item: 1 columns, want 2");
    annex_error("person\t\xc3\x28\tc\tdelegate\t-\n", PROTO_EINVAL, "line 6: not valid UTF-8");

    /* Over-long lines, and a text over the limit of a text field. */
    const char *pre = "decision\t1\tagreed\t";
    assert_int_equal(proto_buf_append(&b, pre, strlen(pre)), 0);
    for (size_t i = strlen(pre); i < 2 * 1024 * 1024 + 8192 + 1; i++) {
        assert_int_equal(proto_buf_append(&b, "x", 1), 0);
    }
    assert_int_equal(proto_buf_append(&b, "", 1), 0);
    annex_error((const char *)b.data, PROTO_EINVAL, "line 6: an annex line over 2105344 bytes");
    b.len = strlen(pre);
    for (size_t i = 0; i < 1024 * 1024 + 1; i++) {
        assert_int_equal(proto_buf_append(&b, i % 2 ? "x" : "\\t", i % 2 ? 1 : 2), 0);
    }
    assert_int_equal(proto_buf_append(&b, "", 1), 0);
    annex_error((const char *)b.data, PROTO_ETOOBIG, "line 6: decision text over 1048576 bytes");
    proto_buf_free(&b, 0);

    /* Nothing wrong: a "not-an-item" section, comments, blank lines, CRLF, the audit line;
     * nothing is inferred from the prose. */
    const char *ok = "\tAbstract:\n\tThe Rapporteur Group on X (Geneva, 1-2 May 2024)\n"
                     "0\tActions from G to WP1\n\xc2\xb7 G-1: do it (Geneva, 1 May 2024, "
                     "1300-1400)\n1\tIntro\nMr A B (C) attended. The meeting agreed on TD123 "
                     "and TSAG-TD1 (1 May (1300-1400)).\n\nAnnex: record\r\n\r\n# x\r\n"
                     "not-an-item\t0\r\nmeeting\tgroup\tG\r\ndecision\t1\tnoted\t\\-\r\n"
                     "Audit head: seq 1, hash 00\r\n";
    struct srv_rec *rec = import_ok(ok, strlen(ok));
    assert_int_equal(rec->objs[PROTO_T_ITEM].n, 1);
    assert_field(rec->objs[PROTO_T_ITEM].v[0], "number", "1");
    assert_field(rec->objs[PROTO_T_ITEM].v[0], "body",
                 "Mr A B (C) attended. The meeting agreed on TD123 and TSAG-TD1 (1 May "
                 "(1300-1400)).");
    assert_field(&rec->meeting, "abstract", "The Rapporteur Group on X (Geneva, 1-2 May 2024)");
    assert_field(&rec->meeting, "group", "G");
    assert_field(&rec->meeting, "title", NULL);
    assert_field(&rec->meeting, "venue", NULL);
    assert_field(&rec->meeting, "action_prefix", NULL);
    assert_int_equal(rec->objs[PROTO_T_ACTION].n, 0);
    assert_int_equal(rec->objs[PROTO_T_DOC].n, 0);
    assert_int_equal(rec->objs[PROTO_T_SESSION].n, 0);
    assert_int_equal(rec->objs[PROTO_T_INTERIM].n, 0);
    assert_int_equal(rec->objs[PROTO_T_PERSON].n, 0);
    assert_int_equal(rec->objs[PROTO_T_DECISION].n, 1);
    assert_field(rec->objs[PROTO_T_DECISION].v[0], "text", "-");
    assert_string_equal(item_number(rec, rec->objs[PROTO_T_DECISION].v[0]), "1");
    srv_rec_free(rec);
}

static void test_export_markdown(void **state)
{
    (void)state;
    struct srv_rec *rec = import_sample();
    char *md = export(rec, SRV_REPORT_MARKDOWN, 42);

    assert_int_equal(strncmp(md, "# TSAG Rapporteur Group on Industry Engagement, Metrics\n", 56),
                     0);
    assert_contains(md, "| Venue | Geneva |\n");
    assert_contains(md, "| Time zone | Europe/Zurich |\n");
    assert_contains(md, "\n## 0 Action from RG-IEM to WP2\n\n- **RG-IEM-1**: to request");
    assert_contains(md, "\n## 7 Future meetings\n");
    assert_contains(md, "\n- 27 July 2023, 1300-1500: CTO/CxO review\n- 5 September 2023");
    assert_contains(md, "\n## Actions\n\n| Ref | To | Owner | Status | Due | Text |\n"
                        "| --- | --- | --- | --- | --- | --- |\n"
                        "| RG-IEM-1 | WP2 |  | open |  | to request the TSB");
    assert_contains(md, "\n## Documents\n\n| Ref | Revision | Title | Source | Item | Status |\n");
    assert_contains(md, "| TSAG-TD257 | R1 |  |  | 3 |  |\n");
    assert_contains(md, "\n## Decisions\n\n| Item | Kind | Text |\n");
    assert_contains(md, "| 4 | agreed | The meeting agreed to create a new TD integrating C031 "
                        "into TD258. |\n");
    assert_contains(md, "\n## Sessions\n\n| Date | Start | End | Kind | Title |\n");
    assert_contains(md, "| 2023-05-31 | 17:45 | 18:45 | drafting |  |\n");
    assert_contains(md, "\n## Interim meetings\n\n| Date | Start | End | Mode | Topic | "
                        "Deadline |\n");
    assert_contains(md, "| 2024-01-30 | 13:00 | 15:00 | virtual | Industry participation | "
                        "2024-01-23 |\n");
    assert_contains(md, "\n## People\n\n| Name | Affiliation | Role | Note |\n");
    assert_contains(md, "| Noah LUO | Huawei Technologies, China | associate | metrics |\n");
    assert_string_equal(last_line(md), "Audit head: seq 42, hash " HEAD "\n");
    free(md);
    srv_rec_free(rec);

    /* Values that Markdown would read as markup are escaped. */
    rec = api_record();
    struct srv_obj *it = srv_rec_find(rec, PROTO_T_ITEM, 1);
    struct srv_obj *d = srv_rec_find(rec, PROTO_T_DOC, 9);
    const char *body = "1. not a list\n# not a heading\n- real bullet\nx_y [link](u) *b* `c`";
    assert_int_equal(srv_val_set_str((struct srv_val *)fv(it, "body"), body, strlen(body)), 0);
    assert_int_equal(srv_val_set_str((struct srv_val *)fv(d, "title"), "a|b <i>\nc", 9), 0);
    md = export(rec, SRV_REPORT_MARKDOWN, 1);
    assert_contains(md, "\n1\\. not a list\n");
    assert_contains(md, "\n\\# not a heading\n");
    assert_contains(md, "\n- real bullet\n");
    assert_contains(md, "x\\_y \\[link\\](u) \\*b\\* \\`c\\`");
    assert_contains(md, "| TSAG-TD1 |  | a\\|b \\<i\\><br>c |");
    assert_contains(md, "\n## Sessions\n\nNone.\n");
    free(md);
    srv_rec_free(rec);
}

static void test_export_html(void **state)
{
    (void)state;
    struct srv_rec *rec = import_sample();
    struct srv_obj *it = find_by(rec, PROTO_T_ITEM, "number", "8");
    struct srv_obj *d = rec->objs[PROTO_T_DOC].v[0];
    const char *body = "<script>alert('x')</script> & \"q\"\n- a <b> bullet";
    char *html = NULL;

    assert_int_equal(srv_val_set_str((struct srv_val *)fv(it, "body"), body, strlen(body)), 0);
    assert_int_equal(srv_val_set_str((struct srv_val *)fv(d, "title"), "R&D <i>", 7), 0);
    html = export(rec, SRV_REPORT_HTML, 7);

    assert_int_equal(strncmp(html, "<!DOCTYPE html>\n", 16), 0);
    assert_contains(html, "<meta charset=\"utf-8\">");
    assert_contains(html, "<style>");
    assert_contains(html, "<h1>TSAG Rapporteur Group on Industry Engagement, Metrics</h1>");
    assert_contains(html, "<p>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; "
                          "&quot;q&quot;</p>\n<ul>\n<li>a &lt;b&gt; bullet</li>\n</ul>\n");
    assert_contains(html, "<td>R&amp;D &lt;i&gt;</td>");
    assert_contains(html, "<h2>8 AOB</h2>");
    assert_contains(html, "<li><strong>RG-IEM-3</strong>: to appoint an IEWSC Chair,</li>");
    assert_contains(html, "<td>2023-07-27</td><td>13:00</td><td>15:00</td><td>virtual</td>"
                          "<td>CTO/CxO review</td><td>2023-07-20</td>");
    assert_contains(html, "<td>Glenn PARSONS</td><td>Ericsson Canada</td><td>rapporteur</td>");
    assert_contains(html, "Alg\xc3\xa9rie");
    /* Nothing unescaped, nothing fetched from elsewhere. */
    assert_null(strstr(html, "<script"));
    assert_null(strstr(html, "<b>"));
    assert_null(strstr(html, "http:"));
    assert_null(strstr(html, "https:"));
    assert_null(strstr(html, "src="));
    assert_null(strstr(html, "href="));
    assert_null(strstr(html, "url("));
    assert_null(strstr(html, "@import"));
    assert_string_equal(last_line(html),
                        "<footer>Audit head: seq 7, hash " HEAD "</footer></body></html>\n");
    free(html);
    srv_rec_free(rec);
}

/* Every format is the report: the title block, the future meetings in date order with
 * their deadlines (one added out of order first), the actions with their status, and a
 * section of actions for a record that has none. */
static void test_export_is_the_report(void **state)
{
    (void)state;
    struct srv_rec *rec = import_sample();
    struct srv_obj *done = find_by(rec, PROTO_T_ACTION, "ref", "RG-IEM-3");
    struct srv_obj *drop = find_by(rec, PROTO_T_ACTION, "ref", "RG-IEM-4");
    assert_int_equal(srv_val_set_str((struct srv_val *)fv(done, "status"), "done", 4), 0);
    assert_int_equal(srv_val_set_str((struct srv_val *)fv(drop, "status"), "dropped", 7), 0);
    struct srv_obj *in = srv_obj_new(PROTO_T_INTERIM);
    in->id = srv_rec_max_id(rec) + 1;
    assert_int_equal(srv_val_set_str((struct srv_val *)fv(in, "date"), "2023-06-20", 10), 0);
    assert_int_equal(srv_val_set_str((struct srv_val *)fv(in, "start"), "09:00", 5), 0);
    assert_int_equal(srv_val_set_str((struct srv_val *)fv(in, "end"), "10:00", 5), 0);
    assert_int_equal(srv_val_set_str((struct srv_val *)fv(in, "mode"), "physical", 8), 0);
    assert_int_equal(srv_val_set_str((struct srv_val *)fv(in, "topic"), "Kick-off", 8), 0);
    srv_val_set_int((struct srv_val *)fv(in, "deadline_days"), 3);
    assert_int_equal(srv_rec_add(rec, in), 0);

    char *text = export(rec, SRV_REPORT_TEXT, 1);
    assert_contains(text, "Report: TSAG-TD182\nFuture meetings:\n\xc2\xb7 2023-06-20 "
                          "09:00-10:00 physical: Kick-off (contributions by 2023-06-17)\n"
                          "\xc2\xb7 2023-07-27 13:00-15:00 virtual: CTO/CxO review");
    assert_contains(text, "\n\xc2\xb7 RG-IEM-4: [dropped] to approve the outgoing LS");
    char *md = export(rec, SRV_REPORT_MARKDOWN, 1);
    assert_contains(md, "| Report | TSAG-TD182 |\n");
    assert_contains(md, "\n**Future meetings**\n\n- 2023-06-20 09:00-10:00 physical: Kick-off "
                        "(contributions by 2023-06-17)\n- 2023-07-27 13:00-15:00 virtual: "
                        "CTO/CxO review (contributions by 2023-07-20)\n");
    assert_contains(md, "\n- **RG-IEM-3**: \\[done\\] to appoint an IEWSC Chair,\n");
    assert_contains(md, "| 2023-06-20 | 09:00 | 10:00 | physical | Kick-off | 2023-06-17 |\n"
                        "| 2023-07-27 |");
    struct srv_rec *back = import_ok(md, strlen(md));
    assert_same_record(rec, back);
    srv_rec_free(back);
    char *html = export(rec, SRV_REPORT_HTML, 1);
    assert_contains(html, "<p><strong>Future meetings</strong></p>\n<ul>\n<li>2023-06-20 "
                          "09:00-10:00 physical: Kick-off (contributions by 2023-06-17)</li>\n");
    assert_contains(html, "<li><strong>RG-IEM-4</strong>: [dropped] to approve the outgoing LS");
    assert_contains(html, "<pre class=\"annex\">\nAnnex: record\n");
    free(text);
    free(md);
    free(html);
    srv_rec_free(rec);

    /* A record without a section of actions gets one, as the text export gives it. */
    rec = api_record();
    md = export(rec, SRV_REPORT_MARKDOWN, 1);
    assert_contains(md, "\n## 0 Actions to WP1\n\n- **X-1**: do it\n- **X-2**: do it\n");
    html = export(rec, SRV_REPORT_HTML, 1);
    assert_contains(html, "<h2>0 Actions to WP1</h2>\n<ul class=\"actions\">\n"
                          "<li><strong>X-1</strong>: do it</li>\n");
    back = import_ok(md, strlen(md));
    assert_same_record(rec, back);
    srv_rec_free(back);
    free(md);
    free(html);
    srv_rec_free(rec);
}

static void test_format_parse(void **state)
{
    (void)state;
    enum srv_report_format f = SRV_REPORT_HTML;
    assert_int_equal(srv_report_format_parse("text", 4, &f), 0);
    assert_int_equal(f, SRV_REPORT_TEXT);
    assert_int_equal(srv_report_format_parse("markdown", 8, &f), 0);
    assert_int_equal(f, SRV_REPORT_MARKDOWN);
    assert_int_equal(srv_report_format_parse("html", 4, &f), 0);
    assert_int_equal(f, SRV_REPORT_HTML);
    assert_int_equal(srv_report_format_parse("htmlx", 4, &f), 0);
    assert_int_equal(srv_report_format_parse("HTML", 4, &f), PROTO_EINVAL);
    assert_int_equal(srv_report_format_parse("md", 2, &f), PROTO_EINVAL);
    assert_int_equal(srv_report_format_parse("", 0, &f), PROTO_EINVAL);
}

/* ---- hostile input: only "returns, and ASan is quiet" is checked ---- */

static uint64_t rng_next(uint64_t *s)
{
    /* xorshift64*: the same sequence on every machine. */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

/* Whatever was imported exports as text that imports back to the same record and exports
 * again to the same text (a record needs an item to be a report). */
static void assert_roundtrip(struct srv_rec *a)
{
    char *text = NULL, *again = NULL;
    struct srv_rec *b = NULL;

    if (a->objs[PROTO_T_ITEM].n == 0) {
        return;
    }
    text = export(a, SRV_REPORT_TEXT, 1);
    b = import_ok(text, strlen(text));
    again = export(b, SRV_REPORT_TEXT, 1);
    assert_same_record(a, b);
    assert_string_equal(text, again);
    free(text);
    free(again);
    srv_rec_free(b);
}

/* Imports, and when that works exports in every format and, for a small input, checks the
 * text round trip. */
static void try_import(const char *text, size_t len)
{
    struct srv_rec *rec = NULL;
    char err[128];
    int rc = srv_report_import(text, len, &rec, err, sizeof(err));
    if (rc != 0) {
        assert_null(rec);
        assert_true(rc == PROTO_EINVAL || rc == PROTO_ETOOBIG);
        assert_true(strlen(err) > 0);
        return;
    }
    for (int f = SRV_REPORT_TEXT; f <= SRV_REPORT_HTML; f++) {
        struct proto_buf out = {0};
        assert_int_equal(srv_report_export(rec, (enum srv_report_format)f, 1, HEAD, NULL, &out), 0);
        proto_buf_free(&out, 0);
    }
    if (len <= 64 * 1024) {
        assert_roundtrip(rec);
    }
    srv_rec_free(rec);
}

/* Every prefix of text at a stride, and text with a few bytes changed to ones from pick. */
static void fuzz_text(const char *text, size_t len, const char *pick, int rounds, uint64_t *seed)
{
    char *buf = malloc(len + 1);
    size_t npick = strlen(pick);

    assert_non_null(buf);
    /* Cuts inside lines, inside "·", inside dates, inside escapes. */
    for (size_t n = 0; n <= len; n += 7) {
        memcpy(buf, text, n); /* a copy, so ASan sees reads past n */
        try_import(buf, n);
    }
    for (int r = 0; r < rounds; r++) {
        size_t changes = 1 + rng_next(seed) % 24;
        memcpy(buf, text, len);
        for (size_t c = 0; c < changes; c++) {
            buf[rng_next(seed) % len] = pick[rng_next(seed) % npick];
        }
        try_import(buf, len);
    }
    free(buf);
}

static void test_fuzz_prefixes_and_bytes(void **state)
{
    (void)state;
    size_t len = 0;
    char *text = sample(&len);
    uint64_t seed = 0x5eed1234abcdULL;
    char *buf = malloc(4096);

    assert_non_null(buf);
    /* The sample: mostly valid UTF-8 after a change, so the scanners run. */
    fuzz_text(text, len, "\t\n0123456789.-:,()[]R TDC\xc2\xb7", 400, &seed);
    /* Random bytes. */
    for (int r = 0; r < 300; r++) {
        size_t n = rng_next(&seed) % 4096;
        for (size_t i = 0; i < n; i++) {
            buf[i] = (char)rng_next(&seed);
        }
        try_import(buf, n);
    }
    free(buf);
    free(text);
    /* Exports with an annex: of the sample, and of records with every field set. */
    for (int k = 0; k < 3; k++) {
        struct srv_rec *rec = k == 0 ? import_sample() : full_record(k == 2);
        char *ex = export(rec, SRV_REPORT_TEXT, 1);
        fuzz_text(ex, strlen(ex), "\t\n\\-#tnr0124.:aZ", 300, &seed);
        free(ex);
        srv_rec_free(rec);
    }
}

static void test_fuzz_tokens(void **state)
{
    (void)state;
    static const char *const tokens[] = {
        "\t",
        "\n",
        "\r\n",
        " ",
        "0",
        "1",
        "4.1",
        "12",
        ".",
        "\xc2\xb7 ",
        "\xe2\x80\xa2",
        "(",
        ")",
        "Mr ",
        "Ms ",
        "Dr ",
        "Glenn ",
        "PARSONS ",
        "(Ericsson)",
        ", ",
        "Associate ",
        "Rapporteur",
        " on ",
        "Counsellor",
        "TSAG-TD",
        "TSAG-C",
        "C0",
        "TD2",
        "R1",
        "257",
        "[bookmark: _H",
        "]",
        "Geneva",
        " May",
        " June ",
        "2023",
        "2024",
        "-",
        "\xe2\x80\x93",
        "1300",
        "1615-1730",
        " hours",
        ": ",
        "Abstract:",
        "Action from RG-IEM to WP2",
        "Actions",
        "RG-IEM-",
        "agreed",
        "noted",
        "The meeting noted ",
        "It was agreed ",
        "not ",
        ". ",
        "drafting session (",
        "deadline is ",
        " days",
        "report will be ",
        "Audit head: seq ",
        "virtual",
        "\xc3\xa9",
        "\xe2\x80\x9c",
        "Rapporteur Group on X",
        "(RG-X)",
        "\xc2\xa0",
        "\nAnnex: record\n",
        "meeting\t",
        "title\t",
        "deadline_days\t",
        "session\t",
        "doc\t",
        "action\t",
        "decision\t",
        "interim\t",
        "person\t",
        "item\t",
        "not-an-item\t",
        "\n#",
        "\t-",
        "\\",
        "\\t",
        "\\-",
        "\\q",
        "2023-05-31\t",
        "13:00\t",
        "open\t",
        "delegate\t",
        "RG-IEM-1\t",
    };
    const size_t ntok = sizeof(tokens) / sizeof(tokens[0]);
    uint64_t seed = 42;
    struct proto_buf b = {0};

    for (int r = 0; r < 1500; r++) {
        size_t n = 1 + rng_next(&seed) % 400;
        b.len = 0;
        for (size_t k = 0; k < n; k++) {
            const char *t = tokens[rng_next(&seed) % ntok];
            assert_int_equal(proto_buf_append(&b, t, strlen(t)), 0);
        }
        try_import((const char *)b.data, b.len);
    }
    proto_buf_free(&b, 0);
}

/* Big inputs that repeat one pattern: each must end in bounded time and memory. Lines of
 * 1,000 bytes and of 600,000, a section every 600,000 bytes so that bodies stay under the
 * text limit and every scanner runs over all of it. */
static void test_fuzz_large(void **state)
{
    (void)state;
    static const char *const patterns[] = {
        "1\tT\n",                                  /* more sections than allowed */
        "Mr A (",                                  /* people that never close */
        "Mr Aa Bb (Cc), Associate Rapporteur on ", /* notes that never end */
        "Mr A B C D E F G ",                       /* names that never end */
        "[bookmark:",                              /* bookmarks that never close */
        "TSAG-TD1",                                /* one reference, glued */
        "TD123 ",                                  /* bare numbers */
        "(Geneva, 1",                              /* places that never finish */
        "(Geneva, 1 May-2 June 2023) ",            /* the same place again and again */
        "1 May (1300-1400) ",                      /* the same session again and again */
        "The meeting agreed. ",                    /* more decisions than allowed */
        ". . ",                                    /* empty sentences */
        "x (",                                     /* the title's anchor, everywhere */
        "x\n",                                     /* more lines than allowed */
        "\n",                                      /* nothing but line ends */
        "a",                                       /* very long lines */
        "RG-IEM-1: x\n",                           /* the same action again and again */
        "- 1 May 2023, 1300-1400: t\n",            /* the same interim again and again */
    };
    const size_t size = 2 * 1024 * 1024;
    char *buf = malloc(size);

    assert_non_null(buf);
    for (size_t p = 0; p < sizeof(patterns) / sizeof(patterns[0]); p++) {
        for (int v = 0; v < 2; v++) {
            const char *head = "\tAbstract:\n\tThe x (x (x ( Rapporteur Group on x (x ( during "
                               "(Geneva, 1 May 2023)\n0\tAction from A to B\n";
            size_t hl = strlen(head), pl = strlen(patterns[p]), n = hl, sect = 0;
            size_t linelen = v ? 600000 : 1000, lastnl = n, lastsect = n;
            memcpy(buf, head, hl);
            while (n + pl + 32 <= size) {
                memcpy(buf + n, patterns[p], pl);
                n += pl;
                if (n - lastnl >= linelen) {
                    buf[n++] = '\n';
                    lastnl = n;
                }
                if (n - lastsect >= 600000) {
                    n += (size_t)snprintf(buf + n, 32, "\n%zu\tS\n", ++sect);
                    lastsect = lastnl = n;
                }
            }
            try_import(buf, n);
        }
    }
    /* Unique references until the cap. */
    size_t n = 0;
    memcpy(buf, "1\tDocs\n", 7);
    n = 7;
    for (int k = 0; n + 32 < size; k++) {
        n += (size_t)snprintf(buf + n, 32, "TSAG-TD%d TSAG-C%dR%d\n", k, k, k % 100);
    }
    try_import(buf, n);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sample_meeting),
        cmocka_unit_test(test_sample_items),
        cmocka_unit_test(test_sample_actions),
        cmocka_unit_test(test_sample_docs),
        cmocka_unit_test(test_sample_decisions),
        cmocka_unit_test(test_sample_sessions_interims),
        cmocka_unit_test(test_sample_people),
        cmocka_unit_test(test_sample_clean),
        cmocka_unit_test(test_roundtrip_text),
        cmocka_unit_test(test_roundtrip_exports),
        cmocka_unit_test(test_crlf_and_audit_line),
        cmocka_unit_test(test_small_reports),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_export_text),
        cmocka_unit_test(test_export_text_actions),
        cmocka_unit_test(test_annex_roundtrip),
        cmocka_unit_test(test_annex_errors),
        cmocka_unit_test(test_export_markdown),
        cmocka_unit_test(test_export_html),
        cmocka_unit_test(test_export_is_the_report),
        cmocka_unit_test(test_format_parse),
        cmocka_unit_test(test_fuzz_prefixes_and_bytes),
        cmocka_unit_test(test_fuzz_tokens),
        cmocka_unit_test(test_fuzz_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
