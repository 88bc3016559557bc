#!/usr/bin/env python3
"""loki_push_pb.py: turns a Loki push body in JSON ({"streams":[{"stream":{..},"values":
[["<ns>","<line>"{,{metadata}}],...]}]}) read from the file named by argv[1] into the
body promtail and Grafana Alloy send: a logproto.PushRequest (pkg/push/push.proto)
compressed as a snappy block, written to stdout.

Fields: PushRequest.streams = 1; StreamAdapter.labels = 1 (`{a="b", c="d"}`), entries
= 2; EntryAdapter.timestamp = 1 (google.protobuf.Timestamp: seconds = 1, nanos = 2),
line = 2, structuredMetadata = 3 (LabelPairAdapter: name = 1, value = 2).
The snappy block comes from python3-snappy when installed, else from the literal-only
encoder of samples.py (a valid block that does not compress)."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import samples  # noqa: E402

varint, field = samples.varint, samples.field_bytes


def selector(labels):
    def q(v):
        return '"' + v.replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n') + '"'
    return '{' + ', '.join(f'{k}={q(v)}' for k, v in sorted(labels.items())) + '}'


def entry(value):
    ns = int(value[0])
    ts = varint(1 << 3) + varint(ns // 1_000_000_000) + varint(2 << 3) + varint(ns % 1_000_000_000)
    out = field(1, ts) + field(2, value[1].encode())
    for k, v in (value[2] if len(value) > 2 else {}).items():
        out += field(3, field(1, k.encode()) + field(2, v.encode()))
    return out


def main():
    with open(sys.argv[1], encoding='utf-8') as f:
        body = json.load(f)
    req = b''
    for s in body['streams']:
        st = field(1, selector(s['stream']).encode())
        for v in s['values']:
            st += field(2, entry(v))
        req += field(1, st)
    try:
        import snappy
        out = snappy.compress(req)
    except ImportError:
        out = samples.snappy_literal(req)
    sys.stdout.buffer.write(out)


if __name__ == '__main__':
    main()
