/* cli_render.h - terminal output for the confer CLI: a table that fits the terminal, safe
 * strings, times, and JSON (through jansson) for --json.
 *
 * Everything the server sends is untrusted: strings are sanitized before they reach the
 * terminal (control characters and invalid UTF-8 become '?'), so a meeting title cannot
 * move the cursor or change the terminal's title.
 */
#ifndef CONFER_CLI_RENDER_H
#define CONFER_CLI_RENDER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>
#include <msgpack.h>

#include "proto_err.h"

#define CLI_TERM_WIDTH_DEFAULT 80

/* Width of the terminal on fd in columns: $COLUMNS when it holds a number (a table that
 * wide, also when fd is not a terminal), else TIOCGWINSZ, else 80; 0 when fd is not a
 * terminal and $COLUMNS is not set: output for a program (see cli_table_print). */
int cli_term_width(int fd);

/* The columns text may take: width when it is positive, else (output for a program) so
 * many that nothing is cut or wrapped. */
size_t cli_width_or_all(int width);

/* Copies s[0..len) into out (cap bytes, NUL-terminated, cut at a character boundary when
 * too long) with control characters (C0, DEL, C1) and invalid UTF-8 replaced by '?', and
 * tabs and newlines by spaces. Returns the bytes written, NUL excluded. */
size_t cli_sanitize(const char *s, size_t len, char *out, size_t cap);

/* As cli_sanitize into a malloc'd string the caller frees; NULL when out of memory. */
char *cli_sanitize_dup(const char *s, size_t len);

/* Writes the text s[0..len) to out as cli_sanitize would, but keeps newlines and tabs (a
 * report, an item's body). Returns 0 or PROTO_EIO. */
int cli_text_print(FILE *out, const char *s, size_t len);

/* The display cells of the code point cp on a terminal: 0 (combining marks, variation
 * selectors, joiners), 2 (East Asian wide characters, emoji) or 1. The client's own table,
 * whatever the locale. */
size_t cli_cp_cells(uint32_t cp);

/* The display cells of s[0..len) (UTF-8; an invalid byte counts one, as the '?' it
 * becomes). */
size_t cli_cells(const char *s, size_t len);

/* Copies s (sanitized) into out, cut to at most width display cells: when it is wider,
 * what fits in width - 1 cells and "…". */
void cli_fit(const char *s, size_t width, char *out, size_t cap);

/* Writes ms since the epoch as local time "YYYY-MM-DD HH:MM:SS" into out. */
void cli_render_time(int64_t ms, char *out, size_t cap);

/* Writes a duration in words: "850 ms", "42 s", "3 min 5 s", "2 h 10 min", "3 d 4 h". */
void cli_render_duration(int64_t ms, char *out, size_t cap);

/* Writes how long ago the instant `ms` was, seen at `now` (both ms since the epoch), in
 * short: "just now", "42s ago", "2m ago", "5h ago", "3d ago"; "in 2m" for the future. */
void cli_render_ago(int64_t ms, int64_t now, char *out, size_t cap);

/* A table of text cells, printed with columns sized to their content (in display cells)
 * and shrunk, widest first, to fit a width: text longer than its column wraps inside it
 * (at blanks, inside a word only when it is longer than the column), nothing is cut. */
struct cli_table;

/* Makes a table of ncols columns with these headers (copied). NULL when out of memory or
 * ncols is 0. Free with cli_table_free. */
struct cli_table *cli_table_new(size_t ncols, const char *const *headers);

/* Adds a row of ncols cells (copied, sanitized; NULL cells print empty). Returns 0 or
 * PROTO_ENOMEM. */
int cli_table_add(struct cli_table *t, const char *const *cells);

/* Number of rows added. */
size_t cli_table_rows(const struct cli_table *t);

/* Prints the header line and the rows, at most width cells wide (columns never shrink
 * below 3 cells), each row on as many lines as its longest wrapped cell takes. width <= 0
 * (not a terminal): for programs, every cell in full, the cells of a row separated by
 * tabs, one row (the header first) a line. Returns 0 or PROTO_EIO when writing fails. */
int cli_table_print(const struct cli_table *t, FILE *out, int width);

/* Frees the table; NULL is a no-op. */
void cli_table_free(struct cli_table *t);

/* Converts a msgpack object to JSON: maps with string or integer keys become objects,
 * bins become standard base64 strings, invalid UTF-8 is replaced by U+FFFD, integers over
 * INT64_MAX become reals, ext values null. Returns a new reference (json_decref it) or
 * NULL when out of memory or nested deeper than 64. */
json_t *cli_json_from_mp(const msgpack_object *o);

/* Prints j as JSON on one line ({"key": value, ...}) and a newline. Returns 0 or PROTO_EIO. */
int cli_json_print(FILE *out, const json_t *j);

#endif
