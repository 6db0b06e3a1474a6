/* srv_report.h - a meeting report as text: import (parse) and export (render).
 *
 * Import reads a report laid out as tests/data/rg-iem-report-2023-06.txt (section number,
 * tab, title; "·" bullets; Word's "[bookmark: …]" artifacts) into a fresh record whose
 * object ids are local (1, 2, ...; item references use those ids). The server then enters
 * every object into the real meeting as a change. Export renders a record as text in the
 * same layout, as Markdown, or as one self-contained HTML page, ending with the audit head.
 *
 * The text export ends (before the audit head) with an annex, a line "Annex: record" and
 * then the record one line per meeting field ("meeting<TAB>FIELD<TAB>VALUE") and per object
 * ("TYPE<TAB>VALUE<TAB>..." in the schema's field order), so that it imports back to the same
 * record: a text with the annex takes the meeting's fields and all objects but the items
 * from it alone, and only the items and the abstract from the prose. The text export starts
 * with the title block (title, group, venue, dates, report ref) and the future meetings
 * with their contribution deadlines, which the import of a text with an annex skips.
 *
 * The Markdown and HTML exports end with the annex of the whole record (items and abstract
 * too; in Markdown in a fence). The import recognises the layout from the content: an
 * HTML export is refused, a Markdown export (first line "# ", with an annex) is read from
 * its annex alone, anything else in the text layout.
 */
#ifndef CONFER_SRV_REPORT_H
#define CONFER_SRV_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "proto_util.h"
#include "srv_rec.h"

#define SRV_REPORT_MAX (4 * 1024 * 1024) /* bytes of report text accepted */

/* Parses report text[0..len) into a new record (id "import"). The meeting fields found
 * (title, group, parent, venue, start, end, tz, report_ref, action_prefix, deadline_days,
 * abstract; with an annex, also status) are set on rec->meeting; items, actions, docs,
 * decisions, sessions, interims and people are added with local ids. *out is owned by the
 * caller (srv_rec_free).
 * Returns 0; PROTO_EINVAL with a message in err (e.g. "line 12: ...") when the text is an
 * HTML export, is not valid UTF-8, has no numbered section (and is no Markdown export), or has an
 * annex line that does not fit (its type, columns, escapes, a value for its field, an item number
 * no section has, a repeated unique key, over 2 MiB + 8 KiB); PROTO_ETOOBIG over SRV_REPORT_MAX, or
 * when a text field would pass 1 MiB, or past 10,000 objects of one type or 200,000 non-empty
 * lines. */
int srv_report_import(const char *text, size_t len, struct srv_rec **out, char *err, size_t errlen);

enum srv_report_format {
    SRV_REPORT_TEXT = 0,
    SRV_REPORT_MARKDOWN,
    SRV_REPORT_HTML,
};

/* Parses "text", "markdown" or "html"; returns 0 or PROTO_EINVAL. */
int srv_report_format_parse(const char *s, size_t len, enum srv_report_format *out);

/* Renders rec in a format, appending to out; the last line names the audit head:
 * "Audit head: seq N, hash HEX, signed SIG" (head_hex is 64 hex characters, sig_b64 the
 * base64 signature of the head as a checkpoint; without it, ", signed SIG" is left out).
 * Returns 0 or PROTO_ENOMEM. */
int srv_report_export(const struct srv_rec *rec, enum srv_report_format fmt, int64_t seq,
                      const char *head_hex, const char *sig_b64, struct proto_buf *out);

/* The style sheet of the HTML export (CSS text, static). */
const char *srv_report_html_style(void);

/* Renders rec as the HTML export's body does, section by section, calling cb for each in
 * the export's order with the section's key, its object id (items) or 0, and its markup
 * (html[0..len), valid only during the call); put together they are the export's body:
 * "head" (title, meeting table, future meetings), "abstract" (when there is one),
 * "actions-list" (the actions, when no section of the agenda holds them), "item-ID" for
 * each section of the agenda (with the actions when it holds them), then "actions",
 * "docs", "decisions", "sessions", "interims", "people" and "annex". Returns 0,
 * PROTO_ENOMEM, or what cb returned when not 0. */
typedef int (*srv_report_section_cb)(void *ud, const char *key, int64_t id, const char *html,
                                     size_t len);
/* Appends s[0..n) to b with &, <, >, " and ' escaped for HTML text and attribute values.
 * Returns 0 or PROTO_ENOMEM. */
int srv_report_html_escape(struct proto_buf *b, const char *s, size_t n);

int srv_report_html_sections(const struct srv_rec *rec, srv_report_section_cb cb, void *ud);

#endif
