/* prober: what the probe modules share. A prober is one row (name, run function) in
 * prober_table; adding one is a new file and a new row in prober.c. A run fills a
 * struct probe_result with the samples the blackbox exporter would expose for it (the
 * caller adds probe_success and probe_duration_seconds) and a reason when it failed.
 *
 * The options structs are the parsed `probes.modules.<name>` config (probe_config.c);
 * their regexes are compiled once and shared read-only by every run, so runs of the
 * same module may go on in several threads at once. Every run is bounded by its
 * deadline, except host-name resolution, which goes through getaddrinfo (a host name
 * that the system resolver cannot answer quickly can hold one run longer; addresses and
 * /etc/hosts names resolve at once). */
#ifndef PROBE_PROBER_H
#define PROBE_PROBER_H

#include "../../storage/base/vg_err.h"
#include "../../storage/tsdb/matcher.h"
#include "../tls_config.h"

#include <netdb.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define PROBE_MAX_SAMPLES 48
#define PROBE_MAX_REGEXES 8
#define PROBE_MAX_STEPS 16
#define PROBE_MAX_HEADERS 16
#define PROBE_MAX_CODES 32

/* One sample: name, help and label strings are static or live as long as the module. */
struct probe_sample {
    const char *name;
    const char *help;
    const char *lname, *lvalue; /* one optional label (phase="connect"), else NULL */
    double value;
};

struct probe_result {
    struct probe_sample s[PROBE_MAX_SAMPLES];
    size_t n;
    char error[256]; /* why the probe failed ("" when it succeeded) */
};

/* Appends a sample (silently ignored past PROBE_MAX_SAMPLES: the tables never get
 * there). */
void probe_add(struct probe_result *r, const char *name, const char *help, const char *lname,
               const char *lvalue, double value);
/* Sets r->error (the first reason wins) and returns false, for `return probe_fail(...)`. */
bool probe_fail(struct probe_result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#ifdef __clang_analyzer__
/* The analyser does not look into prober.c; spelled out, it sees the result is false
 * (prober.c #undefs this to define the function). */
#define probe_fail(r, ...) (probe_fail((r), __VA_ARGS__), false)
#endif

/* Which address family to use: blackbox's preferred_ip_protocol with fallback. */
enum probe_ip { PROBE_IP_ANY, PROBE_IP4, PROBE_IP6 };

struct probe_http_opts {
    const char *method;                  /* "GET" */
    const char *body;                    /* NULL = none */
    int valid_codes[PROBE_MAX_CODES];    /* none = any 2xx */
    size_t ncodes;
    struct matcher_regex *fail_match[PROBE_MAX_REGEXES];     /* fail_if_body_matches_regexp */
    size_t nfail_match;
    struct matcher_regex *fail_not_match[PROBE_MAX_REGEXES]; /* fail_if_body_not_matches_regexp */
    size_t nfail_not_match;
    const char *fail_match_src[PROBE_MAX_REGEXES], *fail_not_match_src[PROBE_MAX_REGEXES];
    bool follow_redirects;               /* true */
    const char *header_names[PROBE_MAX_HEADERS], *header_values[PROBE_MAX_HEADERS];
    size_t nheaders;
    bool fail_if_ssl, fail_if_not_ssl;
    struct tls_config tls;               /* tls_config (../tls_config.h) */
    int64_t body_size_limit;             /* bytes kept for the regexes; 0 = 1 MiB */
};

struct probe_tcp_step {
    const char *send;                    /* written followed by "\n"; NULL = none */
    struct matcher_regex *expect;        /* a line read must match; NULL = none */
    const char *expect_src;
};

struct probe_tcp_opts {
    struct probe_tcp_step steps[PROBE_MAX_STEPS]; /* query_response */
    size_t nsteps;
};

struct probe_dns_opts {
    const char *query_name;
    uint16_t query_type;                 /* A */
    bool tcp;                            /* transport_protocol: tcp */
    bool recursion_desired;              /* true */
    int valid_rcodes[16];                /* default NOERROR */
    size_t nrcodes;
    struct matcher_regex *fail_match[PROBE_MAX_REGEXES];     /* validate_answer_rrs */
    size_t nfail_match;
    struct matcher_regex *fail_not_match[PROBE_MAX_REGEXES];
    size_t nfail_not_match;
};

struct probe_icmp_opts {
    size_t payload_size;                 /* bytes after the 8-byte header; 56 */
};

struct prober;

struct probe_module {
    char name[64];
    const struct prober *prober;
    int64_t timeout_ms;                  /* 5 s */
    enum probe_ip ip;                    /* preferred_ip_protocol */
    bool ip_fallback;                    /* ip_protocol_fallback: true */
    struct probe_http_opts http;
    struct probe_tcp_opts tcp;
    struct probe_dns_opts dns;
    struct probe_icmp_opts icmp;
};

/* Runs one probe of target. deadline_ms is on CLOCK_MONOTONIC (probe_now_ms); stop,
 * when it turns true, ends a run early (shutdown). Returns success. */
typedef bool (*prober_fn)(const struct probe_module *m, const char *target, int64_t deadline_ms,
                          const atomic_bool *stop, struct probe_result *r);

struct prober {
    const char *name;
    prober_fn run;
};

extern const struct prober prober_http, prober_tcp, prober_dns, prober_icmp;
/* The prober called name, or NULL. */
const struct prober *prober_find(const char *name);

/* CLOCK_MONOTONIC in milliseconds; and in seconds as a double for durations. */
int64_t probe_now_ms(void);
double probe_now_s(void);

/* Splits "host:port", "[v6]:port" or (with default_port) "host" / "[v6]". false when
 * malformed. host gets the name without brackets. */
bool probe_split_hostport(const char *target, const char *default_port, char *host,
                          size_t hcap, char *port, size_t pcap);

/* Resolves host:port for socktype with m's IP preference, adding
 * probe_dns_lookup_time_seconds and probe_ip_protocol to r. false with r->error set. */
bool probe_resolve(const struct probe_module *m, const char *host, const char *port,
                   int socktype, struct sockaddr_storage *ss, socklen_t *sl,
                   struct probe_result *r);

/* Connects a non-blocking socket of socktype to ss before deadline_ms. The fd, or -1
 * with r->error set. */
int probe_connect(const struct sockaddr_storage *ss, socklen_t sl, int socktype,
                  int64_t deadline_ms, const atomic_bool *stop, struct probe_result *r);

/* Waits until fd is ready for events (POLLIN / POLLOUT) or the deadline / stop. 1 ready,
 * 0 timed out or stopped. */
int probe_wait(int fd, short events, int64_t deadline_ms, const atomic_bool *stop);

/* Whether any (want_match true) / none of res matches subject. */
bool probe_regex_any(struct matcher_regex *const *res, size_t n, const char *p, size_t len);

#endif
