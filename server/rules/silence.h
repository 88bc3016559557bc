/* silence: silences of the built-in notifiers, created and expired through the API
 * (api/alerts_admin.c) and persisted in the notifier's kv.
 *
 * A silence mutes every alert whose labels all its matchers match, between startsAt and
 * endsAt. Create body (Alertmanager's PostableSilence):
 *   {"id":"<optional: update this silence>","matchers":[{"name":"alertname",
 *    "value":"HighLoad","isRegex":false,"isEqual":true}],"startsAt":"<RFC 3339>",
 *    "endsAt":"<RFC 3339>","createdBy":"ops","comment":"deploy"}
 * startsAt defaults to now; endsAt is required and must lie after startsAt and in the
 * future; at least one matcher must not match the empty string (as in Alertmanager).
 * isEqual defaults to true, isRegex to false.
 * Listed (and stored) as GettableSilence:
 *   {"id":"<uuid>","status":{"state":"pending|active|expired"},"updatedAt":"...",
 *    "matchers":[...],"startsAt":"...","endsAt":"...","createdBy":"...","comment":"..."}
 * Expiring sets endsAt to now (and startsAt too for a pending one). Expired silences are
 * dropped 5 days after they end (silences_gc).
 *
 * Stored in kv under "s/" + id (36-byte UUID) as the JSON above without "status".
 * Thread-safe: one mutex guards the set. */
#ifndef RULES_SILENCE_H
#define RULES_SILENCE_H

#include "../../storage/base/vg_buf.h"
#include "../../storage/base/vg_err.h"
#include "../../storage/tsdb/labels.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kv;
struct silences;

#define SILENCE_ID_LEN 36
#define SILENCE_RETENTION_MS (5LL * 24 * 3600 * 1000)

/* Loads the silences stored in kv (NULL kv: memory only). Stored records that do not
 * parse are skipped with a warning. NULL with err (VG_EIO, VG_ENOMEM). */
struct silences *silences_new(struct kv *kv, struct vg_err *err);
void silences_free(struct silences *s); /* accepts NULL */

/* Creates (or, with a known "id", replaces) a silence from the JSON body. Writes the
 * id (NUL-terminated) to id_out. 0, VG_EINVAL naming the field, VG_ENOTFOUND for an
 * unknown "id", VG_EIO when it cannot be stored. */
int silences_create_json(struct silences *s, const char *body, size_t len, int64_t now_ms,
                         char id_out[SILENCE_ID_LEN + 1], struct vg_err *err);

/* Expires one silence. 0, VG_ENOTFOUND, VG_ECONFLICT when already expired, VG_EIO. */
int silences_expire(struct silences *s, const char *id, int64_t now_ms, struct vg_err *err);

/* Appends the JSON array of every silence (newest update first). */
void silences_list_json(struct silences *s, int64_t now_ms, struct vg_buf *out);

/* Whether an active silence matches the sorted labels. */
bool silences_mutes(struct silences *s, const struct label *ls, size_t n, int64_t now_ms);

/* Drops silences that ended more than SILENCE_RETENTION_MS before now; returns how many. */
size_t silences_gc(struct silences *s, int64_t now_ms);

/* Counts by state at now: [0] pending, [1] active, [2] expired. */
void silences_count(struct silences *s, int64_t now_ms, size_t out[3]);

/* Parses an RFC 3339 timestamp (as the API takes them) into ms. 0 or VG_EINVAL. */
int silence_parse_time(const char *s, int64_t *ms, struct vg_err *err);

#endif
