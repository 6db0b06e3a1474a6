/* cli_edbuf.h - the model of `confer write`: a UTF-8 text with a cursor, its layout into
 * soft-wrapped screen rows, word motion, and undo/redo of the user's own edits.
 *
 * Positions are code points (as in text ops, PROTOCOL.md section 6). Every edit made here
 * can hand back the proto_op it is against the text before it, so the caller gives the
 * same op to the replica (cli_text_local) and the two texts stay equal. Text that others
 * changed comes in with cli_edbuf_remote: the cursor and the undo history move over it.
 *
 *   struct cli_edbuf b;
 *   cli_edbuf_init(&b, text, len);
 *   cli_edbuf_insert(&b, "é", 2, &op);   // op: [cursor, "é"]
 *   cli_edbuf_layout(&b, 80, &lay);      // rows of at most 80 columns
 *
 * Nothing here knows about the terminal or the network.
 */
#ifndef CONFER_CLI_EDBUF_H
#define CONFER_CLI_EDBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto_ot.h"

/* One step of the user's own history: at pos, the text del was replaced by ins. */
struct cli_edbuf_step {
    size_t pos;        /* code points */
    char *del;         /* removed text (owned, NUL-terminated, may be "") */
    size_t del_len;    /* bytes */
    size_t del_cp;     /* code points */
    char *ins;         /* inserted text (owned, NUL-terminated, may be "") */
    size_t ins_len;    /* bytes */
    size_t ins_cp;     /* code points */
    size_t cur_before; /* where the cursor was before the step */
};

struct cli_edbuf_hist {
    struct cli_edbuf_step *v;
    size_t n, cap;
};

struct cli_edbuf {
    char *text; /* NUL-terminated, owned */
    size_t len; /* bytes */
    size_t cap;
    size_t ncp; /* code points */
    size_t cur; /* cursor, 0..ncp */
    int goal;   /* column that up/down keep to; -1 none */
    struct cli_edbuf_hist undo, redo;
    bool seal; /* the next edit starts a new undo step */
};

/* One screen row: code points [start, end) of the text; end excludes the newline that
 * ends a paragraph (last is then set). */
struct cli_edbuf_row {
    size_t start, end;   /* code points */
    size_t bstart, bend; /* bytes */
    int width;           /* columns used */
    bool last;           /* the paragraph's last row */
};

struct cli_edbuf_layout {
    struct cli_edbuf_row *rows;
    size_t n, cap;
    int width;
};

#define CLI_EDBUF_UNDO_MAX 1000 /* steps kept */

/* Starts b on text[0..len) (valid UTF-8) with the cursor at 0. Returns 0, PROTO_EINVAL
 * (not UTF-8 or holds NUL) or PROTO_ENOMEM. */
int cli_edbuf_init(struct cli_edbuf *b, const char *text, size_t len);
void cli_edbuf_free(struct cli_edbuf *b);

/* Columns a code point takes: 2 for East Asian wide and fullwidth, 0 for combining marks
 * and zero-width characters, 1 otherwise (controls are shown as one cell). */
int cli_edbuf_cpwidth(uint32_t cp);

/* Byte offset of code point pos. */
size_t cli_edbuf_byte(const struct cli_edbuf *b, size_t pos);

/* ---- edits: each returns 0, PROTO_EINVAL or PROTO_ENOMEM; op (may be NULL, else
 * initialised) gets the op of the edit against the text before it (an empty op when the
 * edit did nothing) ---- */

/* Inserts s[0..slen) (UTF-8, no NUL) at the cursor; the cursor goes after it. */
int cli_edbuf_insert(struct cli_edbuf *b, const char *s, size_t slen, struct proto_op *op);

/* Deletes the code point before the cursor (Backspace) / after it (Delete). */
int cli_edbuf_backspace(struct cli_edbuf *b, struct proto_op *op);
int cli_edbuf_delete(struct cli_edbuf *b, struct proto_op *op);

/* Undoes / redoes the user's last step. Returns 1 when there was none to take; 2 when the
 * text the step touched was changed by others since (the history is dropped then: undoing
 * would remove their words). */
int cli_edbuf_undo(struct cli_edbuf *b, struct proto_op *op);
int cli_edbuf_redo(struct cli_edbuf *b, struct proto_op *op);

/* The text became text[0..len) through op (another person's edit, against the text
 * before): moves the cursor and the history over op. Returns 0, PROTO_EINVAL (op does
 * not fit) or PROTO_ENOMEM. */
int cli_edbuf_remote(struct cli_edbuf *b, const char *text, size_t len, const struct proto_op *op);

/* ---- motion (no edit; each ends the current undo step) ---- */

void cli_edbuf_left(struct cli_edbuf *b);
void cli_edbuf_right(struct cli_edbuf *b);
void cli_edbuf_word_left(struct cli_edbuf *b);  /* to the start of this or the previous word */
void cli_edbuf_word_right(struct cli_edbuf *b); /* past the end of this or the next word */
void cli_edbuf_set_cursor(struct cli_edbuf *b, size_t pos);

/* ---- find ---- */

/* The first place at or after code point from where needle[0..nlen) (UTF-8, nlen > 0)
 * begins, going on from the text's start when there is none after (then *wrapped, which
 * may be NULL, is set). Returns that code point, or SIZE_MAX when the text has none. */
size_t cli_edbuf_find(const struct cli_edbuf *b, const char *needle, size_t nlen, size_t from,
                      bool *wrapped);

/* ---- layout ---- */

/* Lays b's text out in rows of at most width columns (width >= 2), breaking a paragraph
 * after the last space that fits, else between characters. Returns 0 or PROTO_ENOMEM. */
int cli_edbuf_layout(const struct cli_edbuf *b, int width, struct cli_edbuf_layout *lay);
void cli_edbuf_layout_free(struct cli_edbuf_layout *lay);

/* The row and column of code point pos. */
void cli_edbuf_locate(const struct cli_edbuf *b, const struct cli_edbuf_layout *lay, size_t pos,
                      size_t *row, int *col);

/* Cursor motion by rows (up/down: rows < 0 / > 0; PgUp/PgDn: the screen's height), keeping
 * to the goal column; Home/End of the cursor's row. */
void cli_edbuf_vertical(struct cli_edbuf *b, const struct cli_edbuf_layout *lay, long rows);
void cli_edbuf_home(struct cli_edbuf *b, const struct cli_edbuf_layout *lay);
void cli_edbuf_end(struct cli_edbuf *b, const struct cli_edbuf_layout *lay);

#endif
