// otel_sdk_exports_traces.mjs: two services instrumented with the OpenTelemetry JS SDK
// (sdk-trace-base), exporting one trace to Vigil with one of the three OTLP exporters.
//
//   node otel_sdk_exports_traces.mjs <grpc|http-proto|http-json> <endpoint> <tag>
//
// endpoint is http://127.0.0.1:<grpc port> for grpc, http://127.0.0.1:<http port>/v1/traces
// otherwise. The trace:
//   service "it-front-<tag>": span "checkout <tag>" (kind client, attribute
//       http.method=POST) is the root;
//   service "it-back-<tag>": span "reserve stock" (kind server) is its child (the
//       client's context handed over explicitly, as a propagator would), with
//       http.status_code=500 (int), status ERROR "out of stock" and an exception event
//       recorded from an Error("out of stock").
// Each service has its own tracer provider and exporter (SimpleSpanProcessor); both
// flush and shut down before exit. Prints "trace <32 hex>" and exits 0 when every
// export succeeded.
import { context, diag, DiagConsoleLogger, DiagLogLevel, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import { OTLPTraceExporter as GrpcExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';

const [protocol, endpoint, tag] = process.argv.slice(2);
if (!protocol || !endpoint || !tag) {
  console.error('usage: otel_sdk_exports_traces.mjs <grpc|http-proto|http-json> <endpoint> <tag>');
  process.exit(2);
}
diag.setLogger(new DiagConsoleLogger(), DiagLogLevel.WARN);

const exporters = {
  grpc: () => new GrpcExporter({ url: endpoint, timeoutMillis: 10000 }),
  'http-proto': () => new ProtoExporter({ url: endpoint, timeoutMillis: 10000 }),
  'http-json': () => new JsonExporter({ url: endpoint, timeoutMillis: 10000 }),
};
if (!exporters[protocol]) {
  console.error(`unknown protocol ${protocol}`);
  process.exit(2);
}

// An exporter wrapper that remembers failures (SimpleSpanProcessor only logs them).
let failures = 0;
function checked(exporter) {
  return {
    export(spans, done) {
      exporter.export(spans, (result) => {
        if (result.code !== 0) {
          failures++;
          console.error(`export failed: ${result.error}`);
        }
        done(result);
      });
    },
    shutdown: () => exporter.shutdown(),
    forceFlush: () => (exporter.forceFlush ? exporter.forceFlush() : Promise.resolve()),
  };
}

function provider(service) {
  return new BasicTracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: service, 'host.name': 'it-host' }),
    spanProcessors: [new SimpleSpanProcessor(checked(exporters[protocol]()))],
  });
}

const front = provider(`it-front-${tag}`);
const back = provider(`it-back-${tag}`);

const client = front.getTracer('it-front').startSpan(`checkout ${tag}`, {
  kind: SpanKind.CLIENT,
  attributes: { 'http.method': 'POST' },
});
const ctx = trace.setSpan(context.active(), client);
const server = back.getTracer('it-back').startSpan('reserve stock', {
  kind: SpanKind.SERVER,
  attributes: { 'http.status_code': 500 },
}, ctx);
await new Promise((r) => setTimeout(r, 20));
server.recordException(new Error('out of stock'));
server.setStatus({ code: SpanStatusCode.ERROR, message: 'out of stock' });
server.end();
await new Promise((r) => setTimeout(r, 5));
client.end();

await back.forceFlush();
await front.forceFlush();
await back.shutdown();
await front.shutdown();
console.log(`trace ${client.spanContext().traceId}`);
process.exit(failures ? 1 : 0);
