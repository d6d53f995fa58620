'use strict';

// A fault-injecting TCP proxy for the S3 tests: it sits between the engine
// and Garage and, request by request, passes, drops the connection, answers
// 503 or stalls. Each client connection carries exactly one request: the
// proxy adds `Connection: close` to what it forwards, so the server closes
// after its response and the client opens a new connection for the next
// request. That makes every request a separate decision.

const net = require('node:net');

const HEADER_END = Buffer.from('\r\n\r\n');

/**
 * Starts a proxy to `target` (http://host:port). `decide({ index, method, path })`
 * returns 'pass', 'drop', '503' or 'stall' for each request (default: pass).
 * Resolves to { endpoint, setPlan(decide), counts, close() }.
 */
async function startFaultProxy(target, decide = () => 'pass') {
  const upstream = new URL(target);
  const counts = { requests: 0, pass: 0, drop: 0, 503: 0, stall: 0 };
  const sockets = new Set();
  let plan = decide;

  const server = net.createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => {});
    let head = Buffer.alloc(0);
    const onData = (data) => {
      head = Buffer.concat([head, data]);
      const end = head.indexOf(HEADER_END);
      if (end < 0) return;
      client.off('data', onData);
      client.pause();
      const text = head.subarray(0, end).toString('latin1');
      const [method, path] = text.split(' ');
      const index = counts.requests++;
      const action = plan({ index, method, path }) || 'pass';
      counts[action] += 1;
      if (action === 'drop') return client.resetAndDestroy();
      if (action === '503') {
        const body = '<?xml version="1.0"?><Error><Code>SlowDown</Code><Message>injected by the test</Message></Error>\n';
        client.end(`HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
        return;
      }
      if (action === 'stall') return; // the client's timeout ends it
      const lines = text.split('\r\n').filter((l) => !/^connection:/i.test(l));
      lines.push('Connection: close');
      const server = net.connect(Number(upstream.port), upstream.hostname, () => {
        server.write(`${lines.join('\r\n')}\r\n\r\n`);
        server.write(head.subarray(end + HEADER_END.length));
        client.pipe(server);
        client.resume();
      });
      sockets.add(server);
      server.on('close', () => sockets.delete(server));
      server.pipe(client);
      server.on('error', () => client.destroy());
      client.on('close', () => server.destroy());
    };
    client.on('data', onData);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${server.address().port}`,
    counts,
    setPlan(decide) {
      plan = decide;
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

module.exports = { startFaultProxy };
