/* span_pack: adds a span to a version-4 chunk straight from struct span.
 *
 * span_encode_shared followed by span_chunk_add (span.h) write a span's version-1
 * encoding and then parse it again to pack it; span_pack_add packs from the struct and
 * writes the same bytes: a chunk built with it is byte for byte the chunk those two
 * build from the same spans in the same order (so the format, its readers and its
 * fuzz targets are unchanged). Chunks may mix both.
 *
 * Thread safety: none; one writer per thread, as span_chunk_add. */
#ifndef SPAN_PACK_H
#define SPAN_PACK_H

#include "span.h"

/* Appends s to the version-4 chunk of w (from span_chunk_w_init), starting the chunk
 * when w's buffer is empty, and sets *enc_len to the length of s's version-1
 * encoding (what span_encode would append). Returns 0 (also when out of memory: w's
 * buffer is then marked failed, as span_chunk_add does) or VG_EINVAL naming the field
 * when s has a kind, status or attribute type out of range (nothing appended).
 * The writer remembers where the shared part of s lies (the pointers of its service
 * and scope strings and its resource and scope attribute arrays) and takes a later
 * span with the same pointers to have the same bytes: the memory s points to must
 * stay unchanged until the chunk is written (the struct itself need not). */
int span_pack_add(struct span_chunk_w *w, const struct span *s, size_t *enc_len,
                  struct vg_err *err);

#endif
