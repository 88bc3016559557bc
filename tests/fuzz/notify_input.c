/* Fuzz target for the notifier's parsers of outside input (server/rules/): the first
 * byte picks one, the rest is its input.
 *   0  silences_create_json   POST /api/v1/silences bodies
 *   1  route_matcher_parse    Alertmanager matcher strings from the config
 *   2  slack_template_check   title/text templates (and, when valid, expansion)
 *   3  route_dispatcher_import the stored notification log
 *   4  outbox_restore_json    stored queue items
 * Every path must leave no memory behind and keep its invariants (a created silence is
 * listed; an accepted template expands). */
#include "../../server/rules/outbox.h"
#include "../../server/rules/route.h"
#include "../../server/rules/silence.h"
#include "../../server/rules/slack.h"
#include "../../storage/base/vg_alloc.h"
#include "../../storage/tsdb/matcher.h"

#include "fuzz_check.h"
#include <stdint.h>
#include <string.h>

#define T0 1700000000000LL

static void fuzz_silence(const char *p, size_t n)
{
    struct vg_err err;
    struct silences *s = silences_new(NULL, &err);
    FUZZ_CHECK(s != NULL);
    char id[SILENCE_ID_LEN + 1];
    if (silences_create_json(s, p, n, T0, id, &err) == 0) {
        struct vg_buf b;
        vg_buf_init(&b);
        silences_list_json(s, T0, &b);
        FUZZ_CHECK(strstr(vg_buf_cstr(&b), id) != NULL);
        vg_buf_free(&b);
        FUZZ_CHECK(silences_expire(s, id, T0 + 1, &err) == 0 ||
                   err.code == VG_ECONFLICT);
    }
    silences_free(s);
}

static void fuzz_template(const char *t)
{
    struct vg_err err;
    if (slack_template_check(t, &err) < 0)
        return;
    static const struct label ls[] = { { VG_STR("alertname"), VG_STR("A") } };
    static const struct alert a = { ls, 1, ls, 1, T0, T0 + 1, "" };
    static const uint64_t fp = 1;
    struct route_notification n = { .receiver = "r", .group_key = "{}:{}", .group_labels = ls,
                                     .ngroup_labels = 1, .alerts = &a, .fingerprints = &fp,
                                     .nalerts = 1, .nfiring = 1 };
    struct webhook_ctx c = { .external_url = "http://x" };
    struct vg_buf b;
    vg_buf_init(&b);
    slack_template_expand(t, &n, &c, &b);
    vg_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    char *z = vg_malloc(n + 1); /* NUL-terminated copy for the string APIs */
    if (!z)
        return 0;
    memcpy(z, p, n);
    z[n] = '\0';
    struct vg_err err;
    switch (data[0] % 5) {
    case 0:
        fuzz_silence(p, n);
        break;
    case 1:
        matcher_free(route_matcher_parse(z, &err));
        break;
    case 2:
        fuzz_template(z);
        break;
    case 3: {
        struct route_config *c = route_config_parse(NULL, "", &err);
        struct route_dispatcher *d = c ? route_dispatcher_new(c, 10) : NULL;
        if (d) {
            route_dispatcher_import(d, p, n);
            struct vg_buf b;
            vg_buf_init(&b);
            route_dispatcher_export(d, &b);
            vg_buf_free(&b);
        }
        route_dispatcher_free(d);
        route_config_free(c);
        break;
    }
    default: {
        char *target;
        struct outbox_item it;
        if (outbox_restore_json(p, n, 1, &target, &it, &err) == 0) {
            FUZZ_CHECK(target != NULL && it.payload != NULL);
            vg_free(target);
            vg_free(it.payload);
            vg_free(it.group_key);
            vg_free(it.fps);
        }
        break;
    }
    }
    vg_free(z);
    return 0;
}
