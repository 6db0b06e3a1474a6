/* srv_base.c - the configuration's defaults and the log. */
#include "srv_base.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void srv_config_defaults(struct srv_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->host, sizeof(cfg->host), "%s", SRV_DEFAULT_HOST);
    cfg->port = PROTO_PORT;
    cfg->max_frame = PROTO_DEFAULT_MAX;
    cfg->output_limit = 64u * 1024 * 1024;
    cfg->max_conns = 20000;
    cfg->login_timeout_ms = 10000;
    cfg->pwcost = SRV_PWCOST_INTERACTIVE;
    cfg->min_password = 15;
    cfg->max_text = 1024 * 1024;
    cfg->token_ttl_ms = 12ull * 3600 * 1000;
    cfg->pw_parallel = 2;
    cfg->pw_queue = 32;
    cfg->output_budget = 128u * 1024 * 1024;
    cfg->frame_timeout_ms = 10000;
    cfg->max_conns_per_addr = 256;
    cfg->max_conns_per_user = 64;
    cfg->snapshot_every = 4096;
    cfg->idle_ms = 60 * 1000;
    snprintf(cfg->http_host, sizeof(cfg->http_host), "%s", SRV_DEFAULT_HOST);
    cfg->http_port = -1;
    cfg->http_base_url = "";
    cfg->http_max_streams = 2000;
    cfg->http_streams_per_addr = 32;
}

static const char *level_name(enum srv_log_level l)
{
    switch (l) {
    case SRV_LOG_DEBUG:
        return "debug";
    case SRV_LOG_INFO:
        return "info";
    case SRV_LOG_WARN:
        return "warn";
    case SRV_LOG_ERROR:
        return "error";
    }
    return "?";
}

void srv_log(const struct srv_conn *conn, enum srv_log_level level, const char *fmt, ...)
{
    char line[1024];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, level_name(level));
    if (conn) {
        /* The tag is conn's first member (srv_conn.h). */
        const struct srv_conn_tag *tag = (const struct srv_conn_tag *)(const void *)conn;
        n += snprintf(line + n, sizeof(line) - (size_t)n, "c%llu %s ", (unsigned long long)tag->id,
                      tag->peer);
    } else {
        n += snprintf(line + n, sizeof(line) - (size_t)n, "- - ");
    }
    va_list ap;
    va_start(ap, fmt);
    if (n < (int)sizeof(line)) {
        vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    }
    va_end(ap);
    /* One line per event: control characters from peers never split or forge lines. */
    for (char *p = line; *p; p++) {
        if ((unsigned char)*p < 0x20) {
            *p = '?';
        }
    }
    fprintf(stderr, "%s\n", line);
}
