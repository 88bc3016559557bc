/* Tests server/labels_json.c: a label set as the JSON object every API and notifier
 * writes: labels in the order given, names and values escaped as JSON strings, {} for
 * none, and allocation failure reported through the buffer's failed flag. */
#include <criterion/criterion.h>

#include "../../../server/labels_json.h"
#include "../../../storage/base/vg_alloc.h"

Test(labels_json, object_in_order_escaped_and_empty)
{
    struct vg_buf b;
    vg_buf_init(&b);
    struct label ls[] = { { VG_STR("__name__"), VG_STR("up") },
                          { VG_STR("path"), VG_STR("/a\nb\"c") } };
    labels_json_put(&b, ls, 2);
    cr_assert_str_eq(vg_buf_cstr(&b), "{\"__name__\":\"up\",\"path\":\"/a\\nb\\\"c\"}");
    vg_buf_reset(&b);
    labels_json_put(&b, ls, 0);
    cr_assert_str_eq(vg_buf_cstr(&b), "{}");
    vg_buf_free(&b);
    vg_buf_init(&b); /* no capacity left over, so the first append allocates */
    vg_alloc_fail_after(1);
    labels_json_put(&b, ls, 2);
    vg_alloc_fail_after(0);
    cr_assert(vg_buf_failed(&b), "the failed allocation is reported");
    vg_buf_free(&b);
}
