/* config_node: a structured section of the YAML config (rule_files, alerting,
 * scrape_configs, log_files, ...) kept as a plain tree with line numbers, so the module
 * that owns the section parses it itself and still reports "file:line: what".
 *
 * config.c keeps one tree per block section present in the file (config_block); the
 * owning module validates it in its vigil_module.check (run by `vigil check-config` and
 * at start) and reads it at init. Trees are immutable after load and may be read from
 * any thread. Helpers below give typed access with errors in the config's style. */
#ifndef CONFIG_NODE_H
#define CONFIG_NODE_H

#include "../storage/base/vg_err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum config_node_type { CONFIG_NODE_SCALAR, CONFIG_NODE_SEQ, CONFIG_NODE_MAP };

struct config_node {
    enum config_node_type type;
    unsigned line;                /* 1-based line in the source */
    const char *source;           /* file name for messages (the config's source) */
    char *value;                  /* SCALAR: NUL-terminated ("" for `key:` with nothing) */
    bool quoted;                  /* SCALAR: written in quotes (so "" is a real empty string) */
    size_t n;                     /* SEQ: items; MAP: pairs */
    char **keys;                  /* MAP: keys[i] names items[i] */
    struct config_node **items;   /* SEQ items, MAP values */
};

void config_node_free(struct config_node *n); /* accepts NULL */

/* The value under key in a MAP node, or NULL (also when map is NULL or not a map). */
const struct config_node *config_node_get(const struct config_node *map, const char *key);

/* Fills err with "source:line: " + the formatted message and returns VG_EINVAL. */
int config_node_err(struct vg_err *err, const struct config_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#ifdef __clang_analyzer__
/* As for vg_err_set: clang-tidy's analyser does not look into config_node.c, so it is
 * told the result here (config_node.c #undefs this to define the function). */
#define config_node_err(err, n, ...) (config_node_err((err), (n), __VA_ARGS__), VG_EINVAL)
#endif

/* Fails with "source:line: where: unknown key "k" (valid keys: a, b)" when map holds a
 * key not in allowed (NULL-terminated), or "where: expected a mapping" when map is not a
 * MAP. where names the section for the message, e.g. "scrape_configs[2]". */
int config_node_check_keys(const struct config_node *map, const char *where,
                           const char *const *allowed, struct vg_err *err);

/* Typed reads of map[key]. When the key is absent *out keeps its value (the caller's
 * default) and 0 is returned; a present value of the wrong kind fails with
 * "source:line: where.key: expected ..." (VG_EINVAL). */
int config_node_str(const struct config_node *map, const char *where, const char *key,
                    const char **out, struct vg_err *err);
/* config_node_str into a vg_strdup'd copy (*out untouched when absent). */
int config_node_strdup(const struct config_node *map, const char *where, const char *key,
                       char **out, struct vg_err *err);
/* config_node_strdup of a file name that must be readable now (its content is read at
 * each use, so a rotated secret or certificate is picked up). */
int config_node_file(const struct config_node *map, const char *where, const char *key,
                     char **out, struct vg_err *err);
int config_node_int(const struct config_node *map, const char *where, const char *key,
                    int64_t min, int64_t max, int64_t *out, struct vg_err *err);
int config_node_bool(const struct config_node *map, const char *where, const char *key,
                     bool *out, struct vg_err *err);
/* Prometheus durations ("1m30s", "500ms"), in milliseconds, at least min_ms. */
int config_node_duration(const struct config_node *map, const char *where, const char *key,
                         int64_t min_ms, int64_t *out, struct vg_err *err);
/* A list of strings (a scalar counts as a one-item list). *out points into the tree
 * (vg_malloc'd array of pointers the caller frees with vg_free); *n its length. */
int config_node_strlist(const struct config_node *map, const char *where, const char *key,
                        const char ***out, size_t *n, struct vg_err *err);
/* A MAP of string to string (labels, headers): checks every value is a scalar. */
int config_node_check_strmap(const struct config_node *map, const char *where,
                             struct vg_err *err);

#endif
