/* Tests server/ingest/ingest.c's validation: metric and label name rules (every byte),
 * UTF-8 (the eight-bytes-at-a-time ASCII path and what follows it), and
 * ingest_check_labels: empty values dropped, sorted input kept as is, unsorted input
 * sorted, duplicates, missing or invalid __name__, and each limit. */
#include <criterion/criterion.h>
#include <string.h>

#include "../../../../server/ingest/ingest.h"

#define L(n, v) { VG_STR(n), VG_STR(v) }

static const struct config_limits lim = {
    .max_labels_per_series = 4,
    .max_label_name_length = 16,
    .max_label_value_length = 32,
};

static struct vg_str bytes(const char *p, size_t n)
{
    return (struct vg_str){ p, n };
}

Test(ingest, name_rules_for_every_byte)
{
    for (int c = 0; c < 256; c++) {
        char first[2] = { (char)c, 0 }, later[3] = { 'a', (char)c, 0 };
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        bool digit = c >= '0' && c <= '9';
        cr_assert_eq(ingest_valid_label_name(bytes(first, 1)), alpha, "label first %d", c);
        cr_assert_eq(ingest_valid_label_name(bytes(later, 2)), alpha || digit, "label %d", c);
        cr_assert_eq(ingest_valid_metric_name(bytes(first, 1)), alpha || c == ':',
                     "metric first %d", c);
        cr_assert_eq(ingest_valid_metric_name(bytes(later, 2)), alpha || digit || c == ':',
                     "metric %d", c);
    }
    cr_assert_not(ingest_valid_label_name(VG_STR("")));
    cr_assert_not(ingest_valid_metric_name(VG_STR("")));
    cr_assert(ingest_valid_metric_name(VG_STR("node_cpu_seconds_total:rate5m")));
    cr_assert_not(ingest_valid_label_name(VG_STR("a:b")));
}

Test(ingest, utf8_around_the_ascii_fast_path)
{
    /* A multi-byte or invalid sequence at every offset of a 20-byte ASCII string. */
    const char *seqs[] = { "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80" };
    const char *bad[] = { "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\x80", "\xff",
                          "\xe2\x82" };
    char buf[32];
    for (size_t off = 0; off <= 20; off++) {
        for (size_t k = 0; k < 3; k++) {
            size_t n = strlen(seqs[k]);
            memset(buf, 'a', sizeof buf);
            memcpy(buf + off, seqs[k], n);
            cr_assert(ingest_valid_utf8(bytes(buf, 20 + n)), "seq %zu at %zu", k, off);
        }
        for (size_t k = 0; k < 6; k++) {
            size_t n = strlen(bad[k]);
            memset(buf, 'a', sizeof buf);
            memcpy(buf + off, bad[k], n);
            /* the truncated sequence is only invalid when it ends the string */
            size_t len = k == 5 ? off + n : 20 + n;
            cr_assert_not(ingest_valid_utf8(bytes(buf, len)), "bad %zu at %zu", k, off);
        }
    }
    cr_assert(ingest_valid_utf8(VG_STR("")));
    cr_assert(ingest_valid_utf8(bytes("a\0b", 3)), "NUL is valid UTF-8");
}

Test(ingest, check_labels_normalises)
{
    struct vg_err err = { 0 };
    struct label sorted[] = { L("__name__", "up"), L("empty", ""), L("job", "a") };
    cr_assert_eq(ingest_check_labels(&lim, sorted, 3, &err), 2, "%s", err.msg);
    cr_assert(vg_str_eq_c(sorted[1].name, "job"), "the empty value was dropped");

    struct label unsorted[] = { L("job", "a"), L("__name__", "up"), L("instance", "x") };
    cr_assert_eq(ingest_check_labels(&lim, unsorted, 3, &err), 3, "%s", err.msg);
    cr_assert(vg_str_eq_c(unsorted[0].name, "__name__"));
    cr_assert(vg_str_eq_c(unsorted[1].name, "instance"));
    cr_assert(vg_str_eq_c(unsorted[2].name, "job"));

    /* Upper case sorts before "__name__": the name is found wherever it is. */
    struct label upper[] = { L("Zone", "eu"), L("__name__", "up") };
    cr_assert_eq(ingest_check_labels(&lim, upper, 2, &err), 2, "%s", err.msg);
}

Test(ingest, check_labels_rejects)
{
    struct vg_err err = { 0 };
    struct label dup_sorted[] = { L("__name__", "up"), L("job", "a"), L("job", "b") };
    cr_assert_eq(ingest_check_labels(&lim, dup_sorted, 3, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "duplicate label name \"job\""), "%s", err.msg);

    struct label dup_unsorted[] = { L("job", "b"), L("__name__", "up"), L("job", "a") };
    cr_assert_eq(ingest_check_labels(&lim, dup_unsorted, 3, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "duplicate"), "%s", err.msg);

    struct label noname[] = { L("job", "a"), L("__name__", "") };
    cr_assert_eq(ingest_check_labels(&lim, noname, 2, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "no metric name"), "%s", err.msg);

    struct label nul[] = { L("__name__", "m"), { VG_STR("job"), { "a\0b", 3 } } };
    cr_assert_eq(ingest_check_labels(&lim, nul, 2, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "value of label job contains a NUL byte"), "%s", err.msg);

    struct label badname[] = { L("__name__", "a-b") };
    cr_assert_eq(ingest_check_labels(&lim, badname, 1, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "invalid metric name \"a-b\""), "%s", err.msg);

    struct label many[] = { L("__name__", "m"), L("a", "1"), L("b", "1"), L("c", "1"),
                            L("d", "1") };
    cr_assert_eq(ingest_check_labels(&lim, many, 5, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "max_labels_per_series"), "%s", err.msg);

    struct label badlabel[] = { L("__name__", "m"), L("0a", "1") };
    cr_assert_eq(ingest_check_labels(&lim, badlabel, 2, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "invalid label name \"0a\""), "%s", err.msg);

    struct label longname[] = { L("__name__", "m"), L("a_very_long_label_name", "1") };
    cr_assert_eq(ingest_check_labels(&lim, longname, 2, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "max_label_name_length"), "%s", err.msg);

    struct label longvalue[] = { L("__name__", "m"),
                                 L("a", "0123456789012345678901234567890123456789") };
    cr_assert_eq(ingest_check_labels(&lim, longvalue, 2, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "max_label_value_length"), "%s", err.msg);

    struct label badutf8[] = { L("__name__", "m"), L("a", "\xff") };
    cr_assert_eq(ingest_check_labels(&lim, badutf8, 2, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "UTF-8"), "%s", err.msg);
}
