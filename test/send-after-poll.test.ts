import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { test } from 'node:test';
import { sendAfterPoll } from '../src/http/send-after-poll.ts';

async function listening(handler: (req: IncomingMessage, res: ServerResponse) => void) {
  const server = createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}`, port };
}

/** Everything the server sends on a socket, up to the end of its first answer. */
function received(socket: Socket): Promise<string> {
  let text = '';
  socket.on('data', (chunk) => {
    text += chunk;
    if (text.includes('\r\n\r\nok')) socket.end();
  });
  return new Promise((resolve) => socket.on('close', () => resolve(text)));
}

test('the answers of requests read in one round of the event loop leave after every one of them was read', async () => {
  const answers: ServerResponse[] = [];
  // For each request, whether the answers of those read before it had already been written.
  const earlierWritten: boolean[][] = [];
  const { server, port } = await listening((_req, res) => {
    earlierWritten.push(answers.map((earlier) => earlier.writableEnded));
    answers.push(res);
    sendAfterPoll(res, 200, ['content-type', 'text/plain', 'content-length', '2'], 'ok');
  });
  let accepted = 0;
  const bothAccepted = new Promise<void>((resolve) => server.on('connection', () => ++accepted === 2 && resolve()));
  const sockets = [connect(port, '127.0.0.1'), connect(port, '127.0.0.1')];
  await Promise.all([...sockets.map((s) => once(s, 'connect')), bothAccepted]);
  const replies = sockets.map(received);
  // Both requests reach the server's sockets before its next poll: it reads them in one round.
  for (const socket of sockets) socket.write('GET / HTTP/1.1\r\nHost: tally.test\r\n\r\n');
  for (const reply of await Promise.all(replies)) {
    assert.match(reply, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(reply, /\r\ncontent-type: text\/plain\r\n/);
    assert.ok(reply.endsWith('\r\n\r\nok'));
  }
  assert.deepEqual(earlierWritten, [[], [false]]);
  server.close();
});

test('an answer is sent with its status, header lines and body; a client gone before it is sent gets nothing, and the server goes on', async () => {
  const gone: ServerResponse[] = [];
  const { server, url } = await listening((req, res) => {
    sendAfterPoll(res, 503, ['content-type', 'application/json', 'retry-after', '5'], '{"error":"temporarily_unavailable"}');
    if (req.url === '/leave') {
      gone.push(res);
      req.socket.destroy();
    }
  });
  await assert.rejects(fetch(`${url}/leave`));
  assert.equal(gone[0]!.headersSent, false);
  const response = await fetch(url);
  assert.equal(response.status, 503);
  assert.equal(response.headers.get('retry-after'), '5');
  assert.deepEqual(await response.json(), { error: 'temporarily_unavailable' });
  server.closeAllConnections();
  server.close();
});

test('pipelined requests on one connection are each answered, in order, though the first answer is still being written', async () => {
  // The first answer is too large to be written at once: the answers after it get the socket only then.
  const big = 'x'.repeat(8 * 1024 * 1024);
  const { server, port } = await listening((req, res) => {
    const body = req.url === '/a' ? big : req.url!.slice(1);
    sendAfterPoll(res, 200, ['content-type', 'text/plain', 'content-length', String(body.length)], body);
  });
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  let text = '';
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => {
    text += chunk;
    if (text.endsWith('\r\n\r\nc')) socket.end();
  });
  const closed = once(socket, 'close');
  socket.write(['a', 'b', 'c'].map((path) => `GET /${path} HTTP/1.1\r\nHost: tally.test\r\n\r\n`).join(''));
  await Promise.race([closed, new Promise((_, reject) => setTimeout(() => reject(new Error('not every answer arrived')), 10_000).unref())]);
  const bodies = text
    .split('HTTP/1.1 200 OK')
    .slice(1)
    .map((answer) => answer.slice(answer.indexOf('\r\n\r\n') + 4));
  assert.deepEqual(
    bodies.map((body) => (body === big ? 'big' : body)),
    ['big', 'b', 'c'],
  );
  server.close();
});
