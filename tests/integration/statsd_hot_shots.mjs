// Sends a fixed set of metrics to Vigil's StatsD listener with the hot-shots client
// (DogStatsD mode: tags), then closes the client so every datagram is on the wire.
// Usage: node statsd_hot_shots.mjs PORT PREFIX
import StatsD from 'hot-shots';

const [port, prefix] = [Number(process.argv[2]), process.argv[3]];
const client = new StatsD({ host: '127.0.0.1', port, prefix: `${prefix}.`, protocol: 'udp',
                            globalTags: { app: 'shop' }, errorHandler: (e) => {
                              console.error('hot-shots:', e); process.exitCode = 1; } });
for (let i = 0; i < 10; i++) client.increment('orders', 1, { method: 'card' });
client.gauge('cart.size', 7);
client.gauge('cart.size', 3);
for (let i = 1; i <= 4; i++) client.timing('checkout', i * 100); // ms
client.histogram('payload.bytes', 512);
client.distribution('payload.bytes', 2048);
client.set('customers', 'alice');
client.set('customers', 'bob');
client.set('customers', 'alice');
client.close((err) => { if (err) { console.error(err); process.exitCode = 1; } });
