// otel_sdk_exports_metrics.mjs: an application instrumented with the OpenTelemetry JS
// SDK, exporting to Vigil with one of the three OTLP exporters.
//
//   node otel_sdk_exports_metrics.mjs <grpc|http-proto|http-json> <endpoint> <service.name> <service.instance.id>
//
// endpoint is http://127.0.0.1:<grpc port> for grpc, http://127.0.0.1:<http port>/v1/metrics
// otherwise. It records, then exports twice (cumulative temporality, the SDK default):
//   it.requests   counter, unit {request}:  GET/200 +5 then +5, POST/500 +3 then +4
//   it.queue.depth  synchronous gauge, unit {item}: 42.5 then 17.25
//   it.latency    histogram, unit s, bounds [0.125, 0.5, 1]: 0.0625 0.25 0.25 3, then 0.75
// Resource: service.name, service.instance.id, service.version=1.2.3, host.name=it-host.
// Each export's result is checked here (the SDK's periodic reader would swallow a
// failure): the process prints "export N ok" and exits 0 only if both succeeded.
import { diag, DiagConsoleLogger, DiagLogLevel } from '@opentelemetry/api';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import { OTLPMetricExporter as GrpcExporter } from '@opentelemetry/exporter-metrics-otlp-grpc';
import { OTLPMetricExporter as ProtoExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { OTLPMetricExporter as JsonExporter } from '@opentelemetry/exporter-metrics-otlp-http';

const [protocol, endpoint, serviceName, instanceId] = process.argv.slice(2);
if (!protocol || !endpoint || !serviceName || !instanceId) {
  console.error('usage: otel_sdk_exports_metrics.mjs <grpc|http-proto|http-json> <endpoint> <service.name> <service.instance.id>');
  process.exit(2);
}
// Partial-success warnings and transport errors from the exporters show up in the log.
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
const exporter = exporters[protocol]();

// A reader that only collects when asked, so that each export's outcome is visible.
class ManualReader extends MetricReader {
  async onForceFlush() {}
  async onShutdown() {}
}
const reader = new ManualReader({
  aggregationTemporalitySelector: (t) => exporter.selectAggregationTemporality(t),
});

const provider = new MeterProvider({
  resource: resourceFromAttributes({
    [ATTR_SERVICE_NAME]: serviceName,
    'service.instance.id': instanceId,
    [ATTR_SERVICE_VERSION]: '1.2.3',
    'host.name': 'it-host',
  }),
  readers: [reader],
});
const meter = provider.getMeter('vigil-integration', '0.1.0');
const requests = meter.createCounter('it.requests', { unit: '{request}', description: 'Requests handled.' });
const depth = meter.createGauge('it.queue.depth', { unit: '{item}', description: 'Items waiting.' });
const latency = meter.createHistogram('it.latency', {
  unit: 's',
  description: 'Request latency.',
  advice: { explicitBucketBoundaries: [0.125, 0.5, 1] },
});

const get = { method: 'GET', 'http.status_code': 200 };
const post = { method: 'POST', 'http.status_code': 500 };

function exportOnce(n) {
  return reader.collect({ timeoutMillis: 10000 }).then(({ resourceMetrics, errors }) => {
    if (errors.length) throw new Error(`collect errors: ${errors.join('; ')}`);
    return new Promise((resolve, reject) => {
      exporter.export(resourceMetrics, (result) => {
        if (result.code === 0) {
          console.log(`export ${n} ok`);
          resolve();
        } else {
          reject(new Error(`export ${n} failed: ${result.error?.message ?? result.error}`));
        }
      });
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

try {
  requests.add(5, get);
  requests.add(3, post);
  depth.record(42.5, { queue: 'main' });
  for (const v of [0.0625, 0.25, 0.25, 3]) latency.record(v, { route: '/checkout' });
  await exportOnce(1);
  await sleep(1100); // the second export gets a later timestamp
  requests.add(5, get);
  requests.add(4, post);
  depth.record(17.25, { queue: 'main' });
  latency.record(0.75, { route: '/checkout' });
  await exportOnce(2);
  await exporter.shutdown();
  await provider.shutdown();
  process.exit(0);
} catch (e) {
  console.error(String(e?.stack ?? e));
  process.exit(1);
}
