/* proto_schema.c - the field table of PROTOCOL.md section 5 and value checks. */
#include "proto_schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const meeting_status[] = {"draft", "final", NULL};
static const char *const session_kind[] = {"session", "drafting", NULL};
static const char *const action_status[] = {"open", "done", "dropped", NULL};
static const char *const decision_kind[] = {"agreed", "noted", "decided", NULL};
static const char *const interim_mode[] = {"virtual", "physical", NULL};
static const char *const person_role[] = {"rapporteur", "associate", "counsellor",
                                          "tsb",        "delegate",  NULL};

#define STR(n, c, m)                                                                               \
    {                                                                                              \
        .name = n, .column = c, .kind = PROTO_F_STR, .max = m                                      \
    }
#define TEXT(n)                                                                                    \
    {                                                                                              \
        .name = n, .column = n, .kind = PROTO_F_TEXT                                               \
    }
#define DATE(n, c)                                                                                 \
    {                                                                                              \
        .name = n, .column = c, .kind = PROTO_F_DATE                                               \
    }
#define TIME(n, c)                                                                                 \
    {                                                                                              \
        .name = n, .column = c, .kind = PROTO_F_TIME                                               \
    }
#define ENUM(n, v, d)                                                                              \
    {                                                                                              \
        .name = n, .column = n, .kind = PROTO_F_ENUM, .values = v, .def_str = d                    \
    }

static const struct proto_field meeting_fields[] = {
    STR("title", "title", 500),
    STR("group", "grp", 200),
    STR("parent", "parent", 200),
    STR("venue", "venue", 500),
    DATE("start", "start_date"),
    DATE("end", "end_date"),
    {.name = "tz", .column = "tz", .kind = PROTO_F_TZ},
    STR("report_ref", "report_ref", 64),
    STR("action_prefix", "action_prefix", 32),
    {.name = "deadline_days",
     .column = "deadline_days",
     .kind = PROTO_F_INT,
     .min_i = 0,
     .max_i = 365,
     .has_def_int = true,
     .def_int = 7},
    ENUM("status", meeting_status, "draft"),
    TEXT("abstract"),
};

static const struct proto_field session_fields[] = {
    DATE("date", "date"),       TIME("start", "start_time"),
    TIME("end", "end_time"),    ENUM("kind", session_kind, "session"),
    STR("title", "title", 500),
};

static const struct proto_field item_fields[] = {
    {.name = "number", .column = "number", .kind = PROTO_F_NUMBER, .max = 32},
    STR("title", "title", 500),
    TEXT("body"),
};

static const struct proto_field doc_fields[] = {
    STR("ref", "ref", 64),
    STR("revision", "revision", 16),
    STR("title", "title", 500),
    STR("source", "source", 500),
    {.name = "item", .column = "item", .kind = PROTO_F_ITEMREF},
    STR("status", "status", 200),
};

static const struct proto_field action_fields[] = {
    STR("ref", "ref", 64),      STR("to", "addressee", 200),
    STR("owner", "owner", 200), ENUM("status", action_status, "open"),
    DATE("due", "due"),         TEXT("text"),
};

static const struct proto_field decision_fields[] = {
    {.name = "item", .column = "item", .kind = PROTO_F_ITEMREF},
    ENUM("kind", decision_kind, "agreed"),
    TEXT("text"),
};

static const struct proto_field interim_fields[] = {
    DATE("date", "date"),
    TIME("start", "start_time"),
    TIME("end", "end_time"),
    ENUM("mode", interim_mode, "virtual"),
    STR("topic", "topic", 500),
    {.name = "deadline_days",
     .column = "deadline_days",
     .kind = PROTO_F_INT,
     .min_i = 0,
     .max_i = 365},
    {.name = "deadline", .column = NULL, .kind = PROTO_F_COMPUTED},
};

static const struct proto_field person_fields[] = {
    STR("name", "name", 200),
    STR("affiliation", "affiliation", 500),
    ENUM("role", person_role, "delegate"),
    STR("note", "note", 1000),
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct proto_typeinfo types[PROTO_T_COUNT] = {
    [PROTO_T_MEETING] = {"meeting", "meetings", "meeting", N(meeting_fields), meeting_fields},
    [PROTO_T_SESSION] = {"session", "sessions", "sessions", N(session_fields), session_fields},
    [PROTO_T_ITEM] = {"item", "items", "items", N(item_fields), item_fields},
    [PROTO_T_DOC] = {"doc", "docs", "docs", N(doc_fields), doc_fields},
    [PROTO_T_ACTION] = {"action", "actions", "actions", N(action_fields), action_fields},
    [PROTO_T_DECISION] = {"decision", "decisions", "decisions", N(decision_fields),
                          decision_fields},
    [PROTO_T_INTERIM] = {"interim", "interims", "interims", N(interim_fields), interim_fields},
    [PROTO_T_PERSON] = {"person", "people", "people", N(person_fields), person_fields},
};

const struct proto_typeinfo *proto_type_info(enum proto_type t)
{
    if ((unsigned)t >= PROTO_T_COUNT) {
        return NULL;
    }
    return &types[t];
}

enum proto_type proto_type_find(const char *name, size_t len)
{
    for (int t = 0; t < PROTO_T_COUNT; t++) {
        if (strlen(types[t].name) == len && memcmp(types[t].name, name, len) == 0) {
            return (enum proto_type)t;
        }
    }
    return PROTO_T_COUNT;
}

int proto_field_find(enum proto_type t, const char *name, size_t len)
{
    const struct proto_typeinfo *ti = proto_type_info(t);
    for (size_t i = 0; ti && i < ti->nfields; i++) {
        if (strlen(ti->fields[i].name) == len && memcmp(ti->fields[i].name, name, len) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static bool digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
    }
    return true;
}

static int num(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static bool leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int y, int m)
{
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && leap(y) ? 29 : d[m - 1];
}

bool proto_date_valid(const char *s, size_t len)
{
    if (len != 10 || s[4] != '-' || s[7] != '-' || !digits(s, 4) || !digits(s + 5, 2) ||
        !digits(s + 8, 2)) {
        return false;
    }
    int y = num(s, 4), m = num(s + 5, 2), d = num(s + 8, 2);
    return y >= 1900 && m >= 1 && m <= 12 && d >= 1 && d <= month_days(y, m);
}

bool proto_time_valid(const char *s, size_t len)
{
    if (len != 5 || s[2] != ':' || !digits(s, 2) || !digits(s + 3, 2)) {
        return false;
    }
    return num(s, 2) <= 23 && num(s + 3, 2) <= 59;
}

bool proto_tz_valid(const char *s, size_t len)
{
    if (len == 0 || len > 64 || s[0] == '/' || s[0] == '.') {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '/' || c == '_' || c == '-' || c == '+';
        if (!ok || (c == '/' && i + 1 < len && s[i + 1] == '/')) {
            return false;
        }
    }
    if (memchr(s, '.', len) != NULL) {
        return false;
    }
    if (len == 3 && memcmp(s, "UTC", 3) == 0) {
        return true;
    }
    /* With a zoneinfo database, the name must be one of its zones. */
    struct stat st;
    if (stat("/usr/share/zoneinfo", &st) != 0) {
        return true;
    }
    char path[128];
    snprintf(path, sizeof(path), "/usr/share/zoneinfo/%.*s", (int)len, s);
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

bool proto_number_valid(const char *s, size_t len)
{
    if (len == 0 || len > 32) {
        return false;
    }
    bool need_digit = true;
    for (size_t i = 0; i < len; i++) {
        if (s[i] >= '0' && s[i] <= '9') {
            need_digit = false;
        } else if (s[i] == '.' && !need_digit) {
            need_digit = true;
        } else {
            return false;
        }
    }
    return !need_digit;
}

int proto_number_cmp(const char *a, const char *b)
{
    while (*a || *b) {
        if (!*a) {
            return -1;
        }
        if (!*b) {
            return 1;
        }
        unsigned long x = strtoul(a, (char **)&a, 10);
        unsigned long y = strtoul(b, (char **)&b, 10);
        if (x != y) {
            return x < y ? -1 : 1;
        }
        if (*a == '.') {
            a++;
        }
        if (*b == '.') {
            b++;
        }
    }
    return 0;
}

/* Days from civil (Howard Hinnant's algorithm). */
int64_t proto_date_days(const char *s)
{
    int64_t y = num(s, 4), m = num(s + 5, 2), d = num(s + 8, 2);
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void proto_days_date(int64_t z, char out[11])
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp + (mp < 10 ? 3 : -9);
    y += m <= 2;
    snprintf(out, 11, "%04d-%02d-%02d", (int)y, (int)m, (int)d);
}
