// A live-tail client as logcli --tail and Grafana's live mode are: it opens Loki's
// /loki/api/v1/tail WebSocket with the `ws` package (Node before 22 has no WebSocket
// client), prints every entry it receives as one JSON line {"stream":{..},"ts":"..",
// "line":".."}, and closes cleanly (code 1000) once it has seen `want` entries or after
// `seconds`. Usage: node loki_tail_client.mjs WS_URL WANT SECONDS
// Exit status: 0 when `want` entries arrived and the server answered the close, 1
// otherwise (the reason on stderr).
import WebSocket from 'ws';

const [url, wantArg, secondsArg] = process.argv.slice(2);
const want = Number(wantArg);
const seconds = Number(secondsArg);
let seen = 0;
let frames = 0;
let closedByServer = false;

const ws = new WebSocket(url);
const timer = setTimeout(() => {
    console.error(`timeout after ${seconds}s with ${seen} of ${want} entries in ${frames} frames`);
    ws.close(1000, 'timeout');
    setTimeout(() => process.exit(1), 2000);
}, seconds * 1000);

ws.on('open', () => console.error('open'));
ws.on('message', (data) => {
    frames++;
    const msg = JSON.parse(data.toString());
    if (!Array.isArray(msg.streams) || !('dropped_entries' in msg)) {
        console.error(`unexpected frame: ${data.toString().slice(0, 200)}`);
        process.exit(1);
    }
    for (const s of msg.streams) {
        for (const [ts, line] of s.values) {
            console.log(JSON.stringify({ stream: s.stream, ts, line }));
            seen++;
        }
    }
    if (seen >= want) {
        ws.close(1000, 'done');
    }
});
ws.on('close', (code) => {
    closedByServer = true;
    clearTimeout(timer);
    console.error(`closed with ${code} after ${seen} entries in ${frames} frames`);
    process.exit(seen >= want && code === 1000 ? 0 : 1);
});
ws.on('error', (err) => {
    console.error(`error: ${err.message}`);
    process.exit(1);
});
void closedByServer;
