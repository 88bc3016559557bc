// otlp_grpc_raw.mjs: sends raw bytes as the request message of OTLP's gRPC metrics
// Export call, with the real gRPC client (@grpc/grpc-js), so a test can hand the server
// a malformed protobuf without a protobuf library rewriting it.
//
//   node otlp_grpc_raw.mjs <host:port> <hex bytes>
//
// Prints one JSON line {"code": <gRPC status code>, "details": "<message>", "bytes": <n>}
// (code 0 on success, bytes = size of the response message) and exits 0 whenever the
// call completed with any status; 2 on usage errors.
import grpc from '@grpc/grpc-js';

const [addr, hex] = process.argv.slice(2);
if (!addr || hex === undefined || !/^([0-9a-fA-F]{2})*$/.test(hex)) {
  console.error('usage: otlp_grpc_raw.mjs <host:port> <hex bytes>');
  process.exit(2);
}
const method = '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export';
const client = new grpc.Client(addr, grpc.credentials.createInsecure());
const same = (b) => b;
client.makeUnaryRequest(
  method,
  same,
  same,
  Buffer.from(hex, 'hex'),
  new grpc.Metadata(),
  { deadline: Date.now() + 10000 },
  (err, resp) => {
    const out = err
      ? { code: err.code, details: err.details ?? String(err.message) }
      : { code: 0, details: '', bytes: resp.length };
    console.log(JSON.stringify(out));
    client.close();
    process.exit(0);
  },
);
