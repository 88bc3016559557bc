/* Tests of server/collect/snmp.c that need no SNMP agent: the `snmp` config block (every
 * error names file:line), numeric OIDs, and turning SNMP values into samples and label
 * text. Polling a real agent is tests/integration/snmp_from_snmpd.sh. */
#include "../../../../server/collect/snmp.h"
#include "../../../../server/config.h"
#include "../../../../storage/base/vg_alloc.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static struct config *load(const char *yaml)
{
    struct vg_err err = { 0 };
    struct config *c = config_load_buf("t.yml", yaml, strlen(yaml), &err);
    cr_assert_not_null(c, "config loads: %s", err.msg);
    return c;
}

static int parse(const char *yaml, struct snmp_config **out, struct vg_err *err)
{
    struct config *c = load(yaml);
    int rc = snmp_config_parse(config_block(c, "snmp"), out, err);
    config_free(c);
    return rc;
}

#define DEV "snmp:\n  devices:\n    - name: r1\n      address: 127.0.0.1:1161\n"

Test(snmp_config, full_device)
{
    const char *y = DEV
        "      community: secret\n"
        "      interval: 10s\n"
        "      timeout: 2s\n"
        "      retries: 3\n"
        "      max_repetitions: 50\n"
        "      walk_limit: 500\n"
        "      metrics:\n"
        "        - {name: sysUpTime, oid: .1.3.6.1.2.1.1.3.0}\n"
        "        - name: ifInOctets\n"
        "          oid: 1.3.6.1.2.1.2.2.1.10\n"
        "          type: counter\n"
        "          walk: true\n"
        "          index_label: ifIndex\n"
        "          labels_from: [{oid: 1.3.6.1.2.1.2.2.1.2, label: ifDescr}]\n"
        "    - name: r2\n"
        "      address: '[::1]:161'\n"
        "      version: 3\n"
        "      v3: {username: u, auth_protocol: sha-256, auth_password: 12345678,\n"
        "           priv_protocol: aes, priv_password: abcdefgh}\n"
        "      metrics: [{name: x, oid: 1.3}]\n";
    struct snmp_config *c;
    struct vg_err err = { 0 };
    cr_assert_eq(parse(y, &c, &err), 0, "%s", err.msg);
    cr_assert_eq(c->ndevices, 2);
    struct snmp_device *d = &c->devices[0];
    cr_assert_str_eq(d->name, "r1");
    cr_assert_str_eq(d->community, "secret");
    cr_assert_eq(d->version, SNMP_V2C);
    cr_assert_eq(d->interval_ms, 10000);
    cr_assert_eq(d->timeout_ms, 2000);
    cr_assert_eq(d->retries, 3);
    cr_assert_eq(d->repetitions, 50);
    cr_assert_eq(d->walk_limit, 500);
    cr_assert_eq(d->nmetrics, 2);
    cr_assert_str_eq(d->metrics[0].name, "sysUpTime");
    cr_assert_eq(d->metrics[0].oid.n, 9);
    cr_assert_not(d->metrics[0].walk);
    cr_assert_not(d->metrics[0].counter);
    cr_assert_str_eq(d->metrics[0].index_label, "index");
    cr_assert(d->metrics[1].walk && d->metrics[1].counter);
    cr_assert_str_eq(d->metrics[1].index_label, "ifIndex");
    cr_assert_eq(d->metrics[1].nlabels_from, 1);
    cr_assert_str_eq(d->metrics[1].labels_from[0].label, "ifDescr");
    cr_assert_eq(d->metrics[1].labels_from[0].oid.n, 10);
    cr_assert_eq(d->metrics[1].labels_from[0].oid.arcs[9], 2);
    struct snmp_device *e = &c->devices[1];
    cr_assert_eq(e->version, SNMP_V3);
    cr_assert_eq(e->level, SNMP_SEC_AUTHPRIV);
    cr_assert_str_eq(e->auth_protocol, "SHA-256");
    cr_assert_str_eq(e->priv_protocol, "AES");
    cr_assert_str_eq(e->community, "public");
    cr_assert_eq(e->interval_ms, 30000);
    snmp_config_free(c);
}

Test(snmp_config, absent_block_has_no_devices)
{
    struct snmp_config *c;
    struct vg_err err = { 0 };
    cr_assert_eq(parse("server: {}\n", &c, &err), 0, "%s", err.msg);
    cr_assert_eq(c->ndevices, 0);
    snmp_config_free(c);
}

Test(snmp_config, errors_name_file_and_line)
{
    static const struct {
        const char *yaml, *want;
    } cases[] = {
        { "snmp:\n  targets: []\n", "t.yml:2: snmp: unknown key \"targets\"" },
        { "snmp:\n  devices: {a: 1}\n", "t.yml:2: snmp.devices: expected a list" },
        { "snmp:\n  devices:\n    - address: 127.0.0.1\n      metrics: [{name: a, oid: 1.3}]\n",
          "t.yml:3: snmp.devices[0]: name is required" },
        { DEV "      metrics: [{name: a, oid: 1.3}]\n    - name: r1\n      address: h\n"
              "      metrics: [{name: a, oid: 1.3}]\n",
          "t.yml:6: snmp.devices[1].name: \"r1\" is used by snmp.devices[0] too" },
        { "snmp:\n  devices:\n    - name: r\n      address: 'h:0'\n      metrics: [{name: a, oid: 1.3}]\n",
          "t.yml:4: snmp.devices[0].address: \"h:0\": port must be 1-65535" },
        { "snmp:\n  devices:\n    - name: r\n      address: '::1'\n      metrics: [{name: a, oid: 1.3}]\n",
          "t.yml:4: snmp.devices[0].address: \"::1\": write IPv6 addresses as [addr]:port" },
        { DEV "      version: 1\n      metrics: [{name: a, oid: 1.3}]\n",
          "t.yml:5: snmp.devices[0].version: \"1\" is not 2c or 3" },
        { DEV "      version: 3\n      metrics: [{name: a, oid: 1.3}]\n",
          "t.yml:3: snmp.devices[0]: version 3 needs a v3 section" },
        { DEV "      version: 3\n      v3: {username: u, auth_password: short}\n"
              "      metrics: [{name: a, oid: 1.3}]\n",
          "t.yml:6: snmp.devices[0].v3.auth_password: at least 8 characters" },
        { DEV "      version: 3\n      v3: {username: u, auth_protocol: SHA1, auth_password: 12345678}\n"
              "      metrics: [{name: a, oid: 1.3}]\n",
          "t.yml:6: snmp.devices[0].v3.auth_protocol: \"SHA1\" is not one of" },
        { DEV "      version: 3\n      v3: {username: u, security_level: priv}\n"
              "      metrics: [{name: a, oid: 1.3}]\n",
          "t.yml:6: snmp.devices[0].v3.security_level: \"priv\" is not noAuthNoPriv" },
        { DEV "      v3: {username: u}\n      metrics: [{name: a, oid: 1.3}]\n",
          "t.yml:5: snmp.devices[0].v3: only used with version: 3" },
        { DEV "      interval: 1x\n      metrics: [{name: a, oid: 1.3}]\n", "t.yml:5:" },
        { DEV "      retries: 11\n      metrics: [{name: a, oid: 1.3}]\n", "t.yml:5:" },
        { DEV, "t.yml:3: snmp.devices[0].metrics: expected a non-empty list" },
        { DEV "      metrics:\n        - {name: 9a, oid: 1.3}\n",
          "t.yml:6: snmp.devices[0].metrics[0].name: \"9a\" is not a valid metric name" },
        { DEV "      metrics:\n        - {name: a, oid: IF-MIB::ifDescr}\n",
          "t.yml:6: snmp.devices[0].metrics[0].oid: \"IF-MIB::ifDescr\" is not a numeric OID" },
        { DEV "      metrics:\n        - {name: a}\n",
          "t.yml:6: snmp.devices[0].metrics[0]: oid is required" },
        { DEV "      metrics:\n        - {name: a, oid: 1.3, type: histogram}\n",
          "t.yml:6: snmp.devices[0].metrics[0].type: \"histogram\" is not gauge or counter" },
        { DEV "      metrics:\n        - {name: a, oid: 1.3, index_label: 'if-index', walk: true}\n",
          "t.yml:6: snmp.devices[0].metrics[0].index_label: \"if-index\" is not a valid label" },
        { DEV "      metrics:\n        - {name: a, oid: 1.3, labels_from: [{oid: 1.4, label: d}]}\n",
          "t.yml:6: snmp.devices[0].metrics[0].labels_from: only walks" },
        { DEV "      metrics:\n        - name: a\n          oid: 1.3\n          walk: true\n"
              "          labels_from:\n            - {oid: 1.4, label: device}\n",
          "t.yml:10: snmp.devices[0].metrics[0].labels_from[0].label: \"device\" is already used" },
        { DEV "      metrics:\n        - name: a\n          oid: 1.3\n          walk: true\n"
              "          labels_from:\n            - {oid: 1.4, lable: x}\n",
          "t.yml:10: snmp.devices[0].metrics[0].labels_from[0]: unknown key \"lable\"" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct snmp_config *c = (void *)1;
        struct vg_err err = { 0 };
        int rc = parse(cases[i].yaml, &c, &err);
        cr_assert_eq(rc, VG_EINVAL, "case %zu fails", i);
        cr_assert_null(c, "case %zu leaves no config", i);
        cr_assert(strstr(err.msg, cases[i].want), "case %zu: want [%s] in [%s]", i,
                  cases[i].want, err.msg);
    }
}

Test(snmp_config, allocation_failure_is_reported_and_leaks_nothing)
{
    const char *y = DEV "      metrics:\n        - name: a\n          oid: 1.3\n"
                        "          walk: true\n          labels_from: [{oid: 1.4, label: d}]\n";
    struct config *cfg = load(y);
    size_t live = vg_alloc_live_bytes();
    bool failed = false, succeeded = false;
    for (uint64_t n = 1; n < 100 && !succeeded; n++) {
        struct snmp_config *c;
        struct vg_err err = { 0 };
        vg_alloc_fail_after(n);
        int rc = snmp_config_parse(config_block(cfg, "snmp"), &c, &err);
        vg_alloc_fail_after(0);
        if (rc == 0) {
            succeeded = true;
            snmp_config_free(c);
        } else {
            cr_assert_eq(rc, VG_ENOMEM, "n=%llu: %s", (unsigned long long)n, err.msg);
            failed = true;
        }
        cr_assert_eq(vg_alloc_live_bytes(), live, "n=%llu leaks", (unsigned long long)n);
    }
    cr_assert(failed && succeeded);
    config_free(cfg);
}

Test(snmp_oid, parse_and_format)
{
    struct snmp_oid o;
    struct vg_err err = { 0 };
    cr_assert_eq(snmp_oid_parse("1.3.6.1.2.1.1.3.0", &o, &err), 0);
    cr_assert_eq(o.n, 9);
    cr_assert_eq(o.arcs[8], 0);
    cr_assert_eq(snmp_oid_parse(".1.3.4294967295", &o, &err), 0);
    cr_assert_eq(o.arcs[2], 4294967295u);
    char buf[64];
    cr_assert_eq(snmp_oid_format(&o, 0, buf, sizeof buf), strlen("1.3.4294967295"));
    cr_assert_str_eq(buf, "1.3.4294967295");
    cr_assert_eq(snmp_oid_format(&o, 1, buf, sizeof buf), strlen("3.4294967295"));
    cr_assert_str_eq(buf, "3.4294967295");
    snmp_oid_format(&o, 0, buf, 6); /* cut at an arc boundary */
    cr_assert_str_eq(buf, "1.3");

    static const char *const bad[] = { "", "1", "1..3", "1.3.", "1.3.x", "a.b",
                                       "1.3.4294967296", "1.3 ", "-1.3" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(snmp_oid_parse(bad[i], &o, &err), VG_EINVAL, "[%s] refused", bad[i]);
    char longest[SNMP_OID_MAX * 2 + 4];
    size_t n = 0;
    for (int i = 0; i <= SNMP_OID_MAX; i++)
        n += (size_t)snprintf(longest + n, sizeof longest - n, i ? ".1" : "1");
    cr_assert_eq(snmp_oid_parse(longest, &o, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "more than 128"), "%s", err.msg);
}

Test(snmp_value, numbers)
{
    double x;
    struct snmp_value v = { .type = SNMP_T_INTEGER, .i = -5 };
    cr_assert_eq(snmp_value_number(&v, &x), 0);
    cr_assert_eq(x, -5);
    v = (struct snmp_value){ .type = SNMP_T_COUNTER32, .u = 4294967295u };
    cr_assert_eq(snmp_value_number(&v, &x), 0);
    cr_assert_eq(x, 4294967295.0);
    v = (struct snmp_value){ .type = SNMP_T_COUNTER64, .u = 1ULL << 40 };
    cr_assert_eq(snmp_value_number(&v, &x), 0);
    cr_assert_eq(x, 1099511627776.0);
    v = (struct snmp_value){ .type = SNMP_T_TIMETICKS, .u = 12345 };
    cr_assert_eq(snmp_value_number(&v, &x), 0);
    cr_assert_eq(x, 12345); /* hundredths of a second, as sent */
    v = (struct snmp_value){ .type = SNMP_T_GAUGE32, .u = 7 };
    cr_assert_eq(snmp_value_number(&v, &x), 0);
    cr_assert_eq(x, 7);

    static const struct {
        const char *text;
        size_t len;
        double want;
    } ok[] = { { "42", 2, 42 }, { " 3.5\n", 5, 3.5 }, { "-1e3", 4, -1000 }, { "7\0", 2, 7 } };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        v = (struct snmp_value){ .type = SNMP_T_OCTETS, .bytes = (const unsigned char *)ok[i].text,
                                 .len = ok[i].len };
        cr_assert_eq(snmp_value_number(&v, &x), 0, "[%s]", ok[i].text);
        cr_assert_eq(x, ok[i].want);
    }
    static const char *const bad[] = { "", "eth0", "1 2", "nan", "inf", "0x10", "1e999" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = (struct snmp_value){ .type = SNMP_T_OCTETS, .bytes = (const unsigned char *)bad[i],
                                 .len = strlen(bad[i]) };
        cr_assert_eq(snmp_value_number(&v, &x), VG_EINVAL, "[%s] is no number", bad[i]);
    }
    enum snmp_vtype other[] = { SNMP_T_OID, SNMP_T_IPADDR, SNMP_T_OPAQUE, SNMP_T_NULL,
                                SNMP_T_NOSUCH };
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
        v = (struct snmp_value){ .type = other[i] };
        cr_assert_eq(snmp_value_number(&v, &x), VG_EINVAL);
    }
}

Test(snmp_value, labels)
{
    char buf[32];
    struct snmp_value v = { .type = SNMP_T_OCTETS, .bytes = (const unsigned char *)"eth0\0",
                            .len = 5 };
    cr_assert_eq(snmp_value_label(&v, buf, sizeof buf), 4);
    cr_assert_str_eq(buf, "eth0");
    v.bytes = (const unsigned char *)"\x00\x1b\x21\xff";
    v.len = 4; /* a MAC address: not text */
    snmp_value_label(&v, buf, sizeof buf);
    cr_assert_str_eq(buf, "0x001b21ff");
    v.bytes = (const unsigned char *)"caf\xc3\xa9";
    v.len = 5;
    snmp_value_label(&v, buf, sizeof buf);
    cr_assert_str_eq(buf, "caf\xc3\xa9");
    cr_assert_eq(snmp_value_label(&v, buf, 5), 3, "cut before a split character");
    cr_assert_str_eq(buf, "caf");
    v.bytes = (const unsigned char *)"\xc3\x28";
    v.len = 2; /* invalid UTF-8 */
    snmp_value_label(&v, buf, sizeof buf);
    cr_assert_str_eq(buf, "0xc328");
    v = (struct snmp_value){ .type = SNMP_T_IPADDR, .bytes = (const unsigned char *)"\x7f\0\0\x01",
                             .len = 4 };
    snmp_value_label(&v, buf, sizeof buf);
    cr_assert_str_eq(buf, "127.0.0.1");
    v = (struct snmp_value){ .type = SNMP_T_INTEGER, .i = -3 };
    snmp_value_label(&v, buf, sizeof buf);
    cr_assert_str_eq(buf, "-3");
    v = (struct snmp_value){ .type = SNMP_T_COUNTER64, .u = 18446744073709551615ULL };
    snmp_value_label(&v, buf, sizeof buf);
    cr_assert_str_eq(buf, "18446744073709551615");
    cr_assert_eq(snmp_value_label(&v, buf, 4), 3);
    cr_assert_str_eq(buf, "184");
    struct snmp_oid o;
    snmp_oid_parse("1.3.6.1.2.1", &o, NULL);
    v = (struct snmp_value){ .type = SNMP_T_OID, .oid = &o };
    snmp_value_label(&v, buf, sizeof buf);
    cr_assert_str_eq(buf, "1.3.6.1.2.1");
    v = (struct snmp_value){ .type = SNMP_T_NOSUCH };
    cr_assert_eq(snmp_value_label(&v, buf, sizeof buf), 0);
    cr_assert_str_eq(buf, "");
}
