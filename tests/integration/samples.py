#!/usr/bin/env python3
"""samples.py: sample-set tools for the integration scripts (standard library only).

A "canonical line" is one sample written so that two sources can be compared with sort
and comm:  name{a="x",b="y"} <value> <timestamp_ms>  with labels sorted by name, values
as Python's repr of the float (NaN written "NaN", infinities "+Inf"/"-Inf") and the
timestamp in integer milliseconds.

Subcommands (output on stdout, sorted):
  canon FILE [--drop-nan]   lines as `vigil tsdb dump` prints them -> canonical lines
  prom FILE                 a Prometheus /api/v1/query JSON answer (vector or matrix)
                            -> canonical lines
  last FILE                 canonical lines -> only the newest sample of each series
  series FILE               canonical lines -> distinct series, one per line
  expo FILE                 a text exposition (e.g. /federate) -> canonical lines
                            (timestamp 0 when a line has none)
  value FILE SERIES         prints the value of the newest sample of SERIES (canonical
                            series text) in canonical lines FILE, or nothing
  match FILE NAME [K=V...]  canonical lines -> "value timestamp" of every sample of the
                            series named NAME carrying all the given labels, oldest first
                            (each matching series in turn)
  rw JSONFILE               a remote-write request from JSON
                            [{"labels": [["__name__", "x"], ...], "samples": [[v, ts], ...]},
                             {"metadata": [type, "family", "help", "unit"]}, ...]
                            (type as in prompb: 1 counter, 2 gauge, 3 histogram, ...)
                            -> snappy-compressed protobuf bytes (for crafting bad input)
"""
import json
import math
import sys


def parse_labels(s, i):
    """Parses {k="v",...} starting at s[i] == '{'; returns (dict, index after '}')."""
    labels = {}
    i += 1
    while True:
        while i < len(s) and s[i] in ' ,':
            i += 1
        if s[i] == '}':
            return labels, i + 1
        j = i
        if s[i] == '"':  # quoted (UTF-8) label name
            j = s.index('"', i + 1)
            name = s[i + 1:j]
            j += 1
        else:
            while s[j] not in '=':
                j += 1
            name = s[i:j].strip()
        j = s.index('"', j) + 1
        val = []
        while s[j] != '"':
            if s[j] == '\\':
                j += 1
                val.append({'n': '\n', '\\': '\\', '"': '"'}.get(s[j], '\\' + s[j]))
            else:
                val.append(s[j])
            j += 1
        labels[name] = ''.join(val)
        i = j + 1


def escape(v):
    return v.replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n')


def series_text(name, labels):
    body = ','.join('%s="%s"' % (k, escape(labels[k])) for k in sorted(labels))
    return '%s{%s}' % (name, body)


def canon_value(v):
    f = float(v)
    if math.isnan(f):
        return 'NaN'
    if math.isinf(f):
        return '+Inf' if f > 0 else '-Inf'
    return repr(f)


def parse_expo_line(line):
    """name{labels} value [ts] -> (series text, value text, ts or None)."""
    line = line.strip()
    if not line or line.startswith('#'):
        return None
    i = 0
    while i < len(line) and line[i] not in '{ ':
        i += 1
    name = line[:i]
    labels = {}
    if i < len(line) and line[i] == '{':
        labels, i = parse_labels(line, i)
    if not name:
        name = labels.pop('__name__', '')
    rest = line[i:].split()
    ts = int(rest[1]) if len(rest) > 1 else None
    return series_text(name, labels), rest[0], ts


def cmd_canon(path, drop_nan=False):
    out = []
    with open(path, encoding='utf-8') as f:
        for line in f:
            p = parse_expo_line(line)
            if p is None:
                continue
            v = canon_value(p[1])
            if drop_nan and v == 'NaN':
                continue
            out.append('%s %s %d' % (p[0], v, p[2] if p[2] is not None else 0))
    return out


def cmd_expo(path):
    return cmd_canon(path)


def cmd_prom(path):
    with open(path, encoding='utf-8') as f:
        doc = json.load(f)
    res = doc['data']['result'] if 'data' in doc else doc
    out = []
    for r in res:
        m = dict(r['metric'])
        name = m.pop('__name__', '')
        st = series_text(name, m)
        points = r.get('values') or ([r['value']] if 'value' in r else [])
        for ts, v in points:
            out.append('%s %s %d' % (st, canon_value(v), round(float(ts) * 1000)))
    return out


def split_canon(line):
    s, v, ts = line.rsplit(' ', 2)
    return s, v, int(ts)


def cmd_last(path):
    newest = {}
    with open(path, encoding='utf-8') as f:
        for line in f:
            if not line.strip():
                continue
            s, v, ts = split_canon(line.rstrip('\n'))
            if s not in newest or ts >= newest[s][1]:
                newest[s] = (v, ts)
    return ['%s %s %d' % (s, v, ts) for s, (v, ts) in newest.items()]


def cmd_series(path):
    with open(path, encoding='utf-8') as f:
        return list({split_canon(l.rstrip('\n'))[0] for l in f if l.strip()})


def cmd_match(path, name, pairs):
    want = dict(p.split('=', 1) for p in pairs)
    rows = []
    with open(path, encoding='utf-8') as f:
        for line in f:
            if not line.strip():
                continue
            s, v, ts = split_canon(line.rstrip('\n'))
            i = s.index('{')
            labels, _ = parse_labels(s, i)
            if s[:i] == name and all(labels.get(k) == w for k, w in want.items()):
                rows.append((s, ts, v))
    rows.sort()
    return ['%s %d' % (v, ts) for _, ts, v in rows]


def cmd_value(path, series):
    last = [l for l in cmd_last(path) if split_canon(l)[0] == series]
    return [split_canon(last[0])[1]] if last else []


# ---- remote-write crafting: protobuf and snappy written by hand ----

def varint(n):
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_bytes(num, data):
    return varint(num << 3 | 2) + varint(len(data)) + data


def encode_write_request(series):
    import struct
    out = b''
    for s in series:
        if 'metadata' in s:
            mtype, family, help_, unit = s['metadata']
            md = (varint(1 << 3) + varint(mtype) + field_bytes(2, family.encode()) +
                  field_bytes(4, help_.encode()) + field_bytes(5, unit.encode()))
            out += field_bytes(3, md)
            continue
        ts = b''
        for name, value in s.get('labels', []):
            ts += field_bytes(1, field_bytes(1, name.encode()) + field_bytes(2, value.encode()))
        for value, t in s.get('samples', []):
            v = float(value) if not isinstance(value, str) else float(value)
            sample = varint(1 << 3 | 1) + struct.pack('<d', v) + varint(2 << 3) + varint(int(t))
            ts += field_bytes(2, sample)
        out += field_bytes(1, ts)
    return out


def snappy_literal(data):
    """Snappy block format using literals only: valid, just not compressed."""
    out = bytearray(varint(len(data)))
    i = 0
    while i < len(data):
        chunk = data[i:i + 65536]
        n = len(chunk) - 1
        if n < 60:
            out.append(n << 2)
        elif n < 256:
            out += bytes([60 << 2, n])
        else:
            out += bytes([61 << 2, n & 0xFF, n >> 8])
        out += chunk
        i += len(chunk)
    return bytes(out)


def cmd_rw(path):
    with open(path, encoding='utf-8') as f:
        series = json.load(f)
    sys.stdout.buffer.write(snappy_literal(encode_write_request(series)))


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    cmd, path = argv[1], argv[2]
    if cmd == 'rw':
        cmd_rw(path)
        return 0
    if cmd == 'canon':
        lines = cmd_canon(path, '--drop-nan' in argv[3:])
    elif cmd == 'prom':
        lines = cmd_prom(path)
    elif cmd == 'expo':
        lines = cmd_expo(path)
    elif cmd == 'last':
        lines = cmd_last(path)
    elif cmd == 'series':
        lines = cmd_series(path)
    elif cmd == 'value':
        lines = cmd_value(path, argv[3])
    elif cmd == 'match':
        sys.stdout.write(''.join(l + '\n' for l in cmd_match(path, argv[3], argv[4:])))
        return 0
    else:
        sys.stderr.write(__doc__)
        return 2
    lines.sort()
    sys.stdout.write(''.join(l + '\n' for l in lines))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
