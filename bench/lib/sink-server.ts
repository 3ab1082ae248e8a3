/**
 * No-op HTTP receiver for the engine's outbound deliveries, run as a child
 * process: answers every request with 200 `{"ok":true}` and counts them.
 * Control endpoints (bench only, 127.0.0.1 only):
 *   GET  /__count          -> {"count": n}
 *   POST /__fault?status=N  -> answer N to every delivery until /__fault?status=0
 * Prints `PORT <n>`.
 */
import http from 'node:http';

let count = 0;
let fault = 0;

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://x');
  if (url.pathname === '/__count') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ count, fault }));
    return;
  }
  if (url.pathname === '/__fault') {
    fault = Number(url.searchParams.get('status') ?? 0) || 0;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ fault }));
    return;
  }
  req.resume();
  req.on('end', () => {
    if (fault) {
      res.writeHead(fault, { 'content-type': 'application/json' }).end('{"ok":false}');
      return;
    }
    count++;
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`PORT ${(server.address() as { port: number }).port}\n`);
});
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
