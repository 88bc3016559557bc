/* scrape_sd: file_sd_configs target files (see scrape_sd.h). The files are parsed into
 * the config tree type (config_node_from_yaml from config_int.h) so that messages carry
 * "file:line" like the main config's. */
#include "scrape_sd.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_log.h"
#include "../config_int.h"

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SD_MAX_FILE_BYTES (64u << 20)

void scrape_sd_groups_free(struct scrape_sd_group *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        scrape_group_free(&v[i].g);
        vg_free(v[i].filepath);
    }
    vg_free(v);
}

int scrape_sd_parse(const char *name, const char *buf, size_t len, struct scrape_sd_group **out,
                    size_t *n, struct vg_err *err)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser))
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    if (!yaml_parser_load(&parser, &doc)) {
        int rc = vg_err_set(err, VG_EINVAL, "%s:%zu: %s", name, parser.problem_mark.line + 1,
                            parser.problem ? parser.problem : "invalid YAML or JSON");
        yaml_parser_delete(&parser);
        return rc;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    struct config_node *tree = NULL;
    int rc = 0;
    if (root) {
        tree = config_node_from_yaml(&doc, root, name, 0, err);
        if (!tree)
            rc = err->code ? err->code : VG_EINVAL;
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (rc < 0 || !tree)
        return rc;
    if (tree->type != CONFIG_NODE_SEQ) {
        rc = config_node_err(err, tree, "expected a list of target groups");
        config_node_free(tree);
        return rc;
    }
    struct scrape_sd_group *v = vg_realloc(*out, (*n + tree->n + 1) * sizeof *v);
    if (!v) {
        config_node_free(tree);
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    }
    *out = v;
    for (size_t i = 0; i < tree->n && rc == 0; i++) {
        char w[32];
        snprintf(w, sizeof w, "[%zu]", i);
        struct scrape_sd_group *sg = &v[*n];
        memset(sg, 0, sizeof *sg);
        rc = scrape_group_parse(tree->items[i], w, &sg->g, err);
        if (rc == 0 && !(sg->filepath = vg_strdup(name)))
            rc = vg_err_set(err, VG_ENOMEM, "out of memory");
        if (rc < 0) {
            scrape_group_free(&sg->g);
            vg_free(sg->filepath);
            break;
        }
        (*n)++;
    }
    config_node_free(tree);
    return rc;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct vg_buf b;
    vg_buf_init(&b);
    char chunk[8192];
    size_t r;
    while ((r = fread(chunk, 1, sizeof chunk, f)) > 0 && b.len < SD_MAX_FILE_BYTES)
        vg_buf_append(&b, chunk, r);
    fclose(f);
    if (vg_buf_failed(&b) || b.len >= SD_MAX_FILE_BYTES) {
        vg_buf_free(&b);
        return NULL;
    }
    vg_buf_cstr(&b);
    return vg_buf_steal(&b, len);
}

int scrape_sd_read(const struct scrape_job *job, struct scrape_sd_group **out, size_t *n,
                   struct vg_err *err)
{
    *out = NULL;
    *n = 0;
    for (size_t gi = 0; gi < job->nsd_globs; gi++) {
        glob_t gl;
        if (glob(job->sd_globs[gi], 0, NULL, &gl) != 0)
            continue;
        for (size_t i = 0; i < gl.gl_pathc; i++) {
            size_t len;
            char *buf = read_file(gl.gl_pathv[i], &len);
            if (!buf) {
                vg_log(VG_LOG_WARN, "scrape", "cannot read file_sd file", "job", job->name,
                       "file", gl.gl_pathv[i], NULL);
                continue;
            }
            size_t before = *n;
            struct vg_err ferr;
            int rc = scrape_sd_parse(gl.gl_pathv[i], buf, len, out, n, &ferr);
            vg_free(buf);
            if (rc == VG_ENOMEM) {
                globfree(&gl);
                scrape_sd_groups_free(*out, *n);
                *out = NULL;
                *n = 0;
                return vg_err_set(err, VG_ENOMEM, "out of memory");
            }
            if (rc < 0) {
                /* the file's groups are all or nothing */
                for (size_t k = before; k < *n; k++) {
                    scrape_group_free(&(*out)[k].g);
                    vg_free((*out)[k].filepath);
                }
                *n = before;
                vg_log(VG_LOG_WARN, "scrape", "bad file_sd file", "job", job->name, "error",
                       ferr.msg, NULL);
            }
        }
        globfree(&gl);
    }
    return 0;
}

uint64_t scrape_sd_fingerprint(const struct scrape_job *job)
{
    uint64_t h = 0;
    for (size_t gi = 0; gi < job->nsd_globs; gi++) {
        glob_t gl;
        if (glob(job->sd_globs[gi], 0, NULL, &gl) != 0)
            continue;
        for (size_t i = 0; i < gl.gl_pathc; i++) {
            struct stat st;
            uint64_t x = 1469598103934665603ULL;
            for (const char *p = gl.gl_pathv[i]; *p; p++)
                x = (x ^ (unsigned char)*p) * 1099511628211ULL;
            if (stat(gl.gl_pathv[i], &st) == 0) {
                x = (x ^ (uint64_t)st.st_size) * 1099511628211ULL;
                x = (x ^ (uint64_t)st.st_mtim.tv_sec) * 1099511628211ULL;
                x = (x ^ (uint64_t)st.st_mtim.tv_nsec) * 1099511628211ULL;
                x = (x ^ (uint64_t)st.st_ino) * 1099511628211ULL;
            }
            h = h * 31 + x;
        }
        globfree(&gl);
    }
    return h;
}
