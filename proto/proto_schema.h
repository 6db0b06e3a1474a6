/* proto_schema.h - the object types of a meeting record and their fields
 * (PROTOCOL.md section 5), as one table that validation, storage, events and rendering
 * all read, so that a field is described in exactly one place.
 */
#ifndef CONFER_PROTO_SCHEMA_H
#define CONFER_PROTO_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum proto_type {
    PROTO_T_MEETING = 0,
    PROTO_T_SESSION,
    PROTO_T_ITEM,
    PROTO_T_DOC,
    PROTO_T_ACTION,
    PROTO_T_DECISION,
    PROTO_T_INTERIM,
    PROTO_T_PERSON,
    PROTO_T_COUNT
};

enum proto_fkind {
    PROTO_F_STR,      /* a short string (at most max bytes) */
    PROTO_F_TEXT,     /* a co-edited text (at most the text limit); unset reads "" */
    PROTO_F_INT,      /* an integer in [min, max] */
    PROTO_F_DATE,     /* YYYY-MM-DD, a real date */
    PROTO_F_TIME,     /* HH:MM, 00:00..23:59 */
    PROTO_F_ENUM,     /* one of values */
    PROTO_F_ITEMREF,  /* an item id of the same meeting, or nil */
    PROTO_F_TZ,       /* an IANA time zone name */
    PROTO_F_NUMBER,   /* an item number: "4", "4.1", "10.2.3" */
    PROTO_F_COMPUTED, /* read-only, computed by the server */
};

#define PROTO_MAX_FIELDS 14
#define PROTO_STR_MAX    1024 /* bytes of a PROTO_F_STR field unless the field says less */

struct proto_field {
    const char *name;   /* wire name */
    const char *column; /* SQL column */
    enum proto_fkind kind;
    size_t max;                /* STR: bytes */
    int64_t min_i, max_i;      /* INT */
    const char *const *values; /* ENUM: NULL-terminated */
    const char *def_str;       /* default for STR/ENUM, or NULL (nil) */
    bool has_def_int;
    int64_t def_int;
    bool required;  /* must not be nil once set by create (none are on the wire) */
    bool immutable; /* set at create only */
};

struct proto_typeinfo {
    const char *name;   /* wire name, e.g. "doc" */
    const char *table;  /* SQL table */
    const char *plural; /* key in meeting.get results, e.g. "docs" */
    size_t nfields;
    const struct proto_field *fields; /* index 0.. ; "id" and "seq" are not listed */
};

/* The table of types, indexed by enum proto_type. */
const struct proto_typeinfo *proto_type_info(enum proto_type t);

/* Finds a type by wire name; returns PROTO_T_COUNT when unknown. */
enum proto_type proto_type_find(const char *name, size_t len);

/* Finds a field of a type by wire name; returns its index or -1. */
int proto_field_find(enum proto_type t, const char *name, size_t len);

/* True when s is a valid YYYY-MM-DD calendar date. */
bool proto_date_valid(const char *s, size_t len);

/* True when s is HH:MM with 00 <= HH <= 23 and 00 <= MM <= 59. */
bool proto_time_valid(const char *s, size_t len);

/* True when s looks like an IANA zone name ("UTC", "Europe/Geneva") and, when the system
 * has a zoneinfo database, names a zone in it. */
bool proto_tz_valid(const char *s, size_t len);

/* True for an item number: digits, optionally separated by single dots ("4", "4.1"). */
bool proto_number_valid(const char *s, size_t len);

/* Compares two item numbers naturally ("2" < "4.1" < "10"); returns <0, 0, >0. */
int proto_number_cmp(const char *a, const char *b);

/* Days since 1970-01-01 of a valid date, and back. */
int64_t proto_date_days(const char *s);
void proto_days_date(int64_t days, char out[11]);

#endif
