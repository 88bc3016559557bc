/* filetail: the file collector (module mod_filetail). Tails the files named by the
 * config block `log_files`, splits them into records (filetail_lines.h), parses each
 * with a logparse.h format, runs the source's processors (logproc.h) and stores the
 * result in the log store through ingest_store_logs (so the global `log_processors`
 * run too, and vigil_ingest_*{receiver="filetail"} count it).
 *
 * Config (every key but paths optional):
 *
 *   log_files:
 *     - name: nginx                    # source name: metrics label, positions key;
 *                                      #   default "log_files[<index>]"; unique
 *       paths: [/var/log/nginx/access.log, /var/log/app/[a-z]*.log]  # glob(3)
 *       labels: {job: nginx}           # stream labels
 *       parser: nginx_combined         # none (default), nginx_combined, apache_common,
 *                                      #   apache_combined, json, logfmt, regex
 *       regex: '^(?P<ip>\S+) (?P<msg>.*)$'   # parser regex: named groups are fields
 *       timestamp: {field: time, format: rfc3339}  # logtime.h layouts; default: the
 *                                      #   parser's own (nginx: time_local, clf), else
 *                                      #   the receive time
 *       labels_from_fields: [status, method]  # parsed fields made stream labels
 *       multiline: {start: '^\d{4}-', max_lines: 500, timeout: 3s}
 *       start_at: end                  # end (default) or beginning, for files found at
 *                                      #   start-up with no saved position
 *       max_line_bytes: 262144         # longer lines (and records) are cut
 *       partial_line_timeout: 5s       # an unterminated last line goes out after this
 *                                      #   ("0s": never, as Promtail)
 *       processors: [...]              # logproc.h steps for this source only
 *
 * Labels and fields: each stream has the source's labels plus filename="<path the file
 * was opened under>". Parsed fields become structured metadata, except those listed in
 * labels_from_fields, which become stream labels when the line has them (non-empty).
 * Only listed fields become labels, so the number of streams stays bounded by what the
 * operator chose (list fields with few values: status, method, level; never a path or
 * an id). An unparsable line is stored whole with metadata parse_error=<reason> and
 * counted. A record's time is the parsed timestamp when there is one, else the receive
 * time; a timestamp that does not parse or lies over 10 minutes ahead is replaced by
 * the receive time and counted.
 *
 * Files are found by expanding the globs every poll (250 ms) and identified by device
 * and inode, so a file matched under two names is read once per source, and one
 * renamed within the globs keeps its offset. Rotation:
 *   - by rename (logrotate's default, nginx -s reopen): the old file keeps being read
 *     through its open descriptor until it has been idle for 1 s after leaving the
 *     globs; the new file at the path is read from its beginning;
 *   - by copy-truncate: a file shorter than the offset is read again from 0 (what was
 *     pending is handed on first). A truncation that the writer refills past the old
 *     offset within one poll cannot be told from growth (as with every tailer).
 * Partial last line: it waits for its newline, and goes out as a line after
 * partial_line_timeout (Promtail never sends it; we do, so a writer that died mid-line
 * does not hide its last words); bytes that come later make a new line.
 *
 * Offsets: every record carries the file offset just past it. A file's offset is
 * committed only once everything before it is acknowledged by logstore_push (a failed
 * push rewinds the file to its last committed offset and the bytes are read again), and
 * committed offsets are saved after each poll that moved them to data_dir/positions,
 * written as positions.tmp, fsync'd and renamed over the old one (then the directory
 * fsync'd). Format, one file per line after a header line:
 *     vigil-filetail-positions 1
 *     <source name>\t<dev>\t<inode>\t<offset>\t<path>
 * (tab-separated; tabs, newlines and '\' in a name or path are written as \t, \n, \\).
 * On start a file whose (source, dev, inode) is listed resumes at its offset (at 0
 * when it is now shorter); a file at a listed path with another inode was rotated
 * while Vigil was down and is read from 0; other files follow start_at. A graceful stop
 * hands on nothing that is pending (partial lines, unfinished multiline records): they
 * sit after the committed offset and are read again at the next start, so a restart
 * neither loses nor repeats lines. A crash (kill -9) between a push and the positions
 * rename can repeat that last push's lines once (at-least-once across crashes); an
 * inode reused by a new file at a listed source would resume at the old offset.
 *
 * Bounds: at most 1000 records or 1 MiB per push, 4 MiB read per file per poll, 4096
 * open files (more are skipped and logged); per file, about 2 * max_line_bytes held.
 *
 * /metrics:
 *   vigil_filetail_files_open                        gauge
 *   vigil_filetail_bytes_read_total{source}
 *   vigil_filetail_records_total{source}             records handed on (before the
 *                                                    processors and the store)
 *   vigil_filetail_lines_unparsable_total{source,reason}   stored raw
 *   vigil_filetail_lines_cut_total{source}           cut at max_line_bytes / max_lines
 *   vigil_filetail_timestamps_replaced_total{source,reason}  invalid, future
 *   vigil_filetail_rotations_total{source,kind}      rename, truncate
 *   vigil_filetail_errors_total{source,op}           open, read, store, positions
 *
 * Threads: one, "filetail", started by init when log_files has sources, stopped and
 * joined by free. filetail_sync is thread-safe. */
#ifndef FILETAIL_H
#define FILETAIL_H

#include "../vigil.h"

extern const struct vigil_module mod_filetail;

/* Runs one complete poll (scan, read, push, save positions) that starts after the call
 * and returns when it is done (for tests). No-op when the module runs nothing. */
void filetail_sync(struct vigil *v);

#endif
