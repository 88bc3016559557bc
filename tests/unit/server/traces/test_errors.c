/* Tests server/traces/errors.c: message normalisation (numbers, hex ids, UUIDs, quoted
 * strings, e-mails), top-frame extraction for Java, Python and Go stacks, fingerprints
 * (same group when only ids differ, different for other types or frames), and the
 * tracker end to end: span exception events and error logs with a trace id aggregated
 * and flushed into an error store in a temporary directory. */
#include "span_fixture.h"

#include "../../../../server/traces/errors.h"
#include "../../../../storage/base/vg_alloc.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char buf[256];

static const char *norm(const char *s)
{
    errors_normalise_message(vg_str_c(s), buf, sizeof buf);
    return buf;
}

Test(errors, normalises_messages)
{
    cr_assert_str_eq(norm("user 42 not found"), "user <num> not found");
    cr_assert_str_eq(norm("user 7 not found."), "user <num> not found.");
    cr_assert_str_eq(norm("trace 4bf92f3577b34da6a3ce929d0e0e4736 failed"),
                     "trace <hex> failed");
    cr_assert_str_eq(norm("bad pointer 0x7ffe12 and 0XAB"), "bad pointer <hex> and <hex>");
    cr_assert_str_eq(norm("deadbeef stays, cafe1234 goes"), "deadbeef stays, <hex> goes");
    cr_assert_str_eq(norm("order 123e4567-e89b-12d3-a456-426614174000 lost"),
                     "order <uuid> lost");
    cr_assert_str_eq(norm("key 'abc 1' missing in \"x\" and `y`"),
                     "key <str> missing in <str> and <str>");
    cr_assert_str_eq(norm("it's open"), "it's open", "an unmatched quote is kept");
    cr_assert_str_eq(norm("mail to bob.smith+x@mail.example.com bounced"),
                     "mail to <email> bounced");
    cr_assert_str_eq(norm("item42 at 3.5s"), "item<num> at <num>.<num>s");
    cr_assert_str_eq(norm("not@an-email"), "not@an-email");
    cr_assert_str_eq(norm(""), "");
    char small[8];
    cr_assert_eq(errors_normalise_message(VG_STR("id 123456 here"), small, sizeof small), 7);
    cr_assert_str_eq(small, "id <num");
}

static char fr[512];

static const char *frames(const char *s)
{
    errors_top_frames(vg_str_c(s), fr, sizeof fr);
    return fr;
}

Test(errors, top_frames)
{
    cr_assert_str_eq(frames("java.lang.IllegalStateException: boom 42\n"
                            "\tat com.x.A.f(A.java:10)\n\tat com.x.B.g(B.java:20)\r\n"
                            "\tat com.x.C.h(C.java:30)\n\tat com.x.D.i(D.java:40)\n"),
                     "at com.x.A.f(A.java)\nat com.x.B.g(B.java)\nat com.x.C.h(C.java)");
    cr_assert_str_eq(frames("Traceback (most recent call last):\n"
                            "  File \"/app/main.py\", line 3, in <module>\n"
                            "  File \"/app/a.py\", line 12, in run\n"
                            "  File \"/app/b.py\", line 7, in step\n"
                            "  File \"/app/c.py\", line 99, in fail\n"
                            "ValueError: bad 1\n"),
                     "File \"/app/a.py\", line, in run\nFile \"/app/b.py\", line, in step\n"
                     "File \"/app/c.py\", line, in fail",
                     "Python: the innermost three, in order");
    cr_assert_str_eq(frames("panic: boom\n\ngoroutine 1 [running]:\nmain.f(0xc000012345)\n"
                            "\t/app/main.go:42 +0x1d\nmain.main()\n\t/app/main.go:7 +0x25\n"),
                     "/app/main.go\n/app/main.go");
    cr_assert_str_eq(frames("TypeError: x is undefined\n    at handler (/srv/app.js:10:5)\n"),
                     "at handler (/srv/app.js)");
    cr_assert_str_eq(frames("no frames here"), "");
    cr_assert_str_eq(frames(""), "");
}

static uint64_t fp(const char *type, const char *msg, const char *stack)
{
    char m[ERRORS_MAX_MESSAGE], f[ERRORS_MAX_FRAMES];
    size_t ml = errors_normalise_message(vg_str_c(msg), m, sizeof m);
    size_t fl = errors_top_frames(vg_str_c(stack), f, sizeof f);
    return errors_fingerprint(vg_str_c(type), (struct vg_str){ m, ml },
                              (struct vg_str){ f, fl });
}

Test(errors, fingerprints)
{
    const char *st1 = "E\n\tat a.B.c(B.java:1)\n\tat a.B.d(B.java:2)";
    const char *st2 = "E\n\tat a.B.c(B.java:100)\n\tat a.B.d(B.java:200)";
    const char *st3 = "E\n\tat a.B.c(B.java:1)\n\tat a.Z.z(Z.java:2)";
    cr_assert_eq(fp("IOError", "file 12 at 'x' gone", st1),
                 fp("IOError", "file 99 at 'yy' gone", st2), "ids and line numbers differ");
    cr_assert_eq(fp("E", "user 123e4567-e89b-12d3-a456-426614174000", ""),
                 fp("E", "user 00000000-0000-0000-0000-000000000000", ""));
    cr_assert_neq(fp("IOError", "gone", st1), fp("ValueError", "gone", st1));
    cr_assert_neq(fp("IOError", "gone", st1), fp("IOError", "gone", st3));
    cr_assert_neq(fp("IOError", "gone", st1), fp("IOError", "lost", st1));
    cr_assert_neq(fp("ab", "c", ""), fp("a", "bc", ""), "fields are separated");
}

/* ---- the tracker ---- */

static char dir[64];
static struct errors *tracker;
static struct vg_err err;

static int rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/vigil-errors-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    struct errors_opts o = { .dir = dir, .max_groups = 100, .no_sync = true };
    tracker = errors_new(&o, &err);
    cr_assert_not_null(tracker, "%s", err.msg);
}

static void teardown(void)
{
    vg_alloc_fail_after(0);
    errors_free(tracker);
    nftw(dir, rm, 16, FTW_DEPTH | FTW_PHYS);
}

static struct span_attr exc[3] = {
    { .key = VG_STR("exception.type"), .type = SPAN_VAL_STRING, .v.s = VG_STR("KeyError") },
    { .key = VG_STR("exception.message"), .type = SPAN_VAL_STRING, .v.s = VG_STR("key 17") },
    { .key = VG_STR("exception.stacktrace"), .type = SPAN_VAL_STRING,
      .v.s = VG_STR("Traceback (most recent call last):\n  File \"a.py\", line 1, in f") },
};

Test(errors, spans_and_logs_grouped_and_stored, .init = setup, .fini = teardown)
{
    struct span_event ev[2] = {
        { .time_ns = SF_T0 + 5000000, .name = VG_STR("exception"), .attrs = exc, .nattrs = 3 },
        { .time_ns = SF_T0, .name = VG_STR("log"), .attrs = exc, .nattrs = 3 },
    };
    struct span s[2] = {
        sf_span("cart", "GET", SPAN_KIND_SERVER, SPAN_STATUS_ERROR, 0xa1, 1, 0, 10),
        sf_span("checkout", "GET", SPAN_KIND_SERVER, SPAN_STATUS_ERROR, 0xa2, 1, 0, 10),
    };
    s[0].events = ev, s[0].nevents = 2;
    s[1].events = ev, s[1].nevents = 1;
    errors_observe_spans(tracker, s, 2);

    /* logs: one error with a trace id counts; info, and errors without one, do not */
    struct label stream[2] = { { VG_STR("level"), VG_STR("info") },
                               { VG_STR("service_name"), VG_STR("cart") } };
    struct label m_err[3] = { { VG_STR("detected_level"), VG_STR("ERROR") },
                              { VG_STR("exception_type"), VG_STR("KeyError") },
                              { VG_STR("trace_id"), VG_STR("A3") } };
    struct label m_num[2] = { { VG_STR("severity_number"), VG_STR("17") },
                              { VG_STR("traceID"), VG_STR("a4") } };
    struct label m_info[1] = { { VG_STR("trace_id"), VG_STR("a5") } };
    struct label m_notrace[1] = { { VG_STR("detected_level"), VG_STR("fatal") } };
    struct lentry e[4] = {
        { .t = SF_T0 + 7000000, .line = VG_STR("key 99"), .meta = m_err, .nmeta = 3 },
        { .t = SF_T0, .line = VG_STR("disk 3 full"), .meta = m_num, .nmeta = 2 },
        { .t = SF_T0, .line = VG_STR("fine"), .meta = m_info, .nmeta = 1 },
        { .t = SF_T0, .line = VG_STR("bad"), .meta = m_notrace, .nmeta = 1 },
    };
    struct logstore_stream_in in = { .labels = stream, .nlabels = 2, .entries = e,
                                     .nentries = 4 };
    errors_observe_logs(tracker, &in, 1);
    struct errors_stats st;
    errors_stats(tracker, &st);
    cr_assert_eq(st.occurrences, 4);
    cr_assert_eq(errors_flush(tracker, &err), 0, "%s", err.msg);

    struct errorstore_groups gs;
    cr_assert_eq(errorstore_list(errors_store(tracker), &gs, &err), 0, "%s", err.msg);
    cr_assert_eq(gs.n, 3, "KeyError from spans, KeyError from the log (no stack), disk");
    const struct errorstore_group *spans_g = NULL, *disk = NULL;
    for (size_t i = 0; i < gs.n; i++) {
        if (gs.v[i].count == 2)
            spans_g = &gs.v[i];
        if (strcmp(gs.v[i].type, "log") == 0)
            disk = &gs.v[i];
    }
    cr_assert_not_null(spans_g);
    cr_assert_str_eq(spans_g->type, "KeyError");
    cr_assert_str_eq(spans_g->message, "key 17");
    cr_assert_str_eq(spans_g->frames, "File \"a.py\", line, in f");
    cr_assert_eq(spans_g->nservices, 2);
    cr_assert_eq(spans_g->nsamples, 2);
    cr_assert_eq(spans_g->first_seen_ms, SF_T0 / 1000000 + 5);
    cr_assert_not_null(disk);
    cr_assert_str_eq(disk->message, "disk 3 full");
    cr_assert_str_eq(disk->services[0], "cart");
    cr_assert_str_eq(disk->samples[0].trace_id, "000000000000000000000000000000a4");
    errorstore_groups_free(&gs);

    /* the same fingerprint later only counts up */
    errors_observe_spans(tracker, s, 1);
    cr_assert_eq(errors_flush(tracker, &err), 0);
    cr_assert_eq(errorstore_ngroups(errors_store(tracker)), 3);
    cr_assert_eq(errors_flush(tracker, &err), 0, "nothing pending is fine");
}

Test(errors, flush_failure_counted, .init = setup, .fini = teardown)
{
    struct span_event ev = { .time_ns = SF_T0, .name = VG_STR("exception"), .attrs = exc,
                             .nattrs = 3 };
    struct span s = sf_span("cart", "GET", SPAN_KIND_SERVER, SPAN_STATUS_ERROR, 1, 1, 0, 1);
    s.events = &ev, s.nevents = 1;
    errors_observe_spans(tracker, &s, 1);
    vg_alloc_fail_after(1);
    cr_assert_eq(errors_flush(tracker, &err), VG_ENOMEM);
    vg_alloc_fail_after(0);
    struct errors_stats st;
    errors_stats(tracker, &st);
    cr_assert_eq(st.flush_failures, 1);
    /* an occurrence that cannot be allocated is dropped and counted */
    vg_alloc_fail_after(1);
    errors_observe_spans(tracker, &s, 1);
    vg_alloc_fail_after(0);
    errors_stats(tracker, &st);
    cr_assert_eq(st.dropped_pending, 1);
}

Test(errors, open_failure)
{
    struct errors_opts o = { .dir = "/proc/no/such/dir", .max_groups = 1 };
    cr_assert_null(errors_new(&o, &err));
    cr_assert_eq(err.code, VG_EIO);
}
