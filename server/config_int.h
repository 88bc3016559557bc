/* config_int: what config.c and config_node.c share and nobody else needs. */
#ifndef CONFIG_INT_H
#define CONFIG_INT_H

#include "../storage/base/vg_err.h"
#include "config_node.h"

#include <yaml.h>

/* Copies the YAML subtree at y into a config_node tree; NULL with err ("source:line:
 * ...") on a bad key, nesting deeper than 64 levels or VG_ENOMEM. source must outlive
 * the tree. */
struct config_node *config_node_from_yaml(yaml_document_t *doc, yaml_node_t *y,
                                          const char *source, int depth, struct vg_err *err);

#endif
