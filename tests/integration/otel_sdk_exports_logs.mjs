// otel_sdk_exports_logs.mjs: an application logging through the OpenTelemetry JS logs
// SDK, exporting to Vigil with one of the three OTLP log exporters.
//
//   node otel_sdk_exports_logs.mjs <grpc|http-proto|http-json> <endpoint> <service.name> <trace id>
//
// endpoint is http://127.0.0.1:<grpc port> for grpc, http://127.0.0.1:<http port>/v1/logs
// otherwise. It emits two records, then exports them once:
//   "it log one <protocol>"  INFO (9),   attributes http.method=GET, user.id=u-1, inside
//                            a span context with the given trace id and span id
//                            00f067aa0ba902b7
//   "it log two <protocol>"  ERROR (17), attribute error.kind=timeout
// The first is 20 ms old, the second 10 ms. Resource: service.name, service.version=1.2.3. The export's result is checked here
// (a batch processor would swallow a failure): the process prints "export ok" and exits
// 0 only if it succeeded.
import { context, diag, DiagConsoleLogger, DiagLogLevel, trace, TraceFlags } from '@opentelemetry/api';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { InMemoryLogRecordExporter, LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import { OTLPLogExporter as GrpcExporter } from '@opentelemetry/exporter-logs-otlp-grpc';
import { OTLPLogExporter as ProtoExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { OTLPLogExporter as JsonExporter } from '@opentelemetry/exporter-logs-otlp-http';

const [protocol, endpoint, serviceName, traceId] = process.argv.slice(2);
if (!protocol || !endpoint || !serviceName || !traceId) {
  console.error('usage: otel_sdk_exports_logs.mjs <grpc|http-proto|http-json> <endpoint> <service.name> <trace id>');
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
const exporter = exporters[protocol]();

// Records are collected in memory, then exported with the real exporter by hand so the
// outcome is visible.
const memory = new InMemoryLogRecordExporter();
const provider = new LoggerProvider({
  resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: serviceName, [ATTR_SERVICE_VERSION]: '1.2.3' }),
  processors: [new SimpleLogRecordProcessor(memory)],
});
const logger = provider.getLogger('vigil-integration', '0.1.0');

const spanCtx = trace.setSpanContext(context.active(), {
  traceId, spanId: '00f067aa0ba902b7', traceFlags: TraceFlags.SAMPLED,
});
// Distinct times (ms apart) so the records have an order to check.
const t0 = Date.now();
logger.emit({
  timestamp: t0 - 20,
  severityNumber: SeverityNumber.INFO, severityText: 'INFO', body: `it log one ${protocol}`,
  attributes: { 'http.method': 'GET', 'user.id': 'u-1' }, context: spanCtx,
});
logger.emit({
  timestamp: t0 - 10,
  severityNumber: SeverityNumber.ERROR, severityText: 'ERROR', body: `it log two ${protocol}`,
  attributes: { 'error.kind': 'timeout' },
});
await provider.forceFlush();
const records = memory.getFinishedLogRecords();
if (records.length !== 2) {
  console.error(`expected 2 records, have ${records.length}`);
  process.exit(1);
}
const result = await new Promise((resolve) => exporter.export(records, resolve));
if (result.code !== 0) {
  console.error(`export failed: ${result.error ? result.error.message : 'unknown'}`);
  process.exit(1);
}
console.log('export ok');
await exporter.shutdown();
await provider.shutdown();
