// A recording pass-through in front of the fake provider, so the SDK tests can
// see what reached the upstream (the fake_provider program keeps no requests
// a client could read). Every request is forwarded unchanged to the fake and
// its answer streamed back unchanged; the request is kept for
//   GET /__recorded   every kept request, oldest first: [{method, url, headers, body}]
// Prints "listening on 127.0.0.1:PORT" as its first line (run.sh waits for it).
//
//   node recorder.mjs FAKE_PORT
import http from 'node:http';

const fakePort = Number(process.argv[2]);
if (!Number.isInteger(fakePort) || fakePort <= 0) {
  console.error('usage: node recorder.mjs FAKE_PORT');
  process.exit(2);
}

const recorded = [];
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    if (req.method === 'GET' && req.url === '/__recorded') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(recorded));
      return;
    }
    recorded.push({ method: req.method, url: req.url, headers: req.headers, body: body.toString('utf8') });
    const upstream = http.request(
      { host: '127.0.0.1', port: fakePort, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', (e) => {
      res.writeHead(502, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: `recorder: ${e.message}` } }));
    });
    res.on('close', () => upstream.destroy());
    upstream.end(body);
  });
});
server.listen(0, '127.0.0.1', () => {
  console.log(`listening on 127.0.0.1:${server.address().port}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
