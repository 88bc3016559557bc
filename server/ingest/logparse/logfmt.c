/* logfmt: key=value lines as Go services write them (go-kit/log, logrus's text
 * formatter, slog's TextHandler, Heroku's logfmt):
 *
 *   time=2024-03-09T14:02:11.418Z level=info msg="request done" path=/api dur=1.2ms ok
 *
 * Pairs are separated by spaces or tabs. A key is a run of bytes other than space, tab,
 * '=' and '"'; it is sanitised like a Loki label (logparse.h). A value is either bare
 * (up to the next space or tab, '=' and '"' allowed inside, as in "expr=a=b") or quoted
 * with Go's strconv.Quote escapes (\" \\ \n \t \xHH \uHHHH ...; logparse_unescape), and
 * may be empty ("key="). A bare key ("ok" above) is a field with an empty value, as
 * Loki's `| logfmt` does it.
 *
 * Unparsable: a line without a single key=value pair (plain text), an unterminated quoted
 * value (often a truncated line), a quoted value not followed by a separator, a key that
 * starts with '"' or '=' or has a '"' inside. */
#include "logparse_int.h"

static bool sep(char c)
{
    return c == ' ' || c == '\t';
}

static int parse(const void *state, struct vg_str line, struct logparse_out *out)
{
    (void)state;
    size_t i = 0, pairs = 0;
    for (;;) {
        while (i < line.len && sep(line.p[i]))
            i++;
        if (i >= line.len)
            break;
        size_t k0 = i;
        while (i < line.len && !sep(line.p[i]) && line.p[i] != '=' && line.p[i] != '"')
            i++;
        if (i == k0)
            return logparse_out_fail(out, line.p[i] == '=' ? "empty key" : "quote before a key",
                                     i);
        if (i < line.len && line.p[i] == '"')
            return logparse_out_fail(out, "quote inside a key", i);
        bool nomem = false;
        struct vg_str key = { line.p + k0, i - k0 }, value = { line.p + i, 0 };
        key = logparse_key(out, (struct vg_str){ "", 0 }, key, &nomem);
        if (i < line.len && line.p[i] == '=') {
            i++;
            pairs++;
            if (i < line.len && line.p[i] == '"') {
                size_t q = i++;
                while (i < line.len && line.p[i] != '"')
                    i += line.p[i] == '\\' ? 2 : 1;
                if (i >= line.len)
                    return logparse_out_fail(out, "unterminated quoted value", q);
                value = (struct vg_str){ line.p + q + 1, i - q - 1 };
                if (++i < line.len && !sep(line.p[i]))
                    return logparse_out_fail(out, "expected a space after a quoted value", i);
                if (!nomem)
                    value = logparse_unescape(out, value, &nomem);
            } else {
                size_t v0 = i;
                while (i < line.len && !sep(line.p[i]))
                    i++;
                value = (struct vg_str){ line.p + v0, i - v0 };
            }
        }
        if (nomem)
            return VG_ENOMEM;
        int rc = logparse_out_add(out, key, value);
        if (rc)
            return rc;
    }
    return pairs ? 0 : logparse_out_fail(out, "no key=value pair", 0);
}

const struct logparse_format logfmt_format = {
    .name = "logfmt",
    .summary = "logfmt key=value pairs, quoted values with Go escapes",
    .parse = parse,
};
