import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy between the server and PostgreSQL. `cut` destroys every connection and refuses new ones;
 * `silence` accepts them, and keeps those open, but never answers (a host gone quiet); `restore` forwards again.
 */
export async function startProxy(target: URL) {
  const sockets = new Set<Socket>();
  let forwarding = true;
  const server: Server = createServer((client) => {
    const pair = [client];
    if (forwarding) {
      const upstream = connect(Number(target.port), target.hostname);
      pair.push(upstream);
      // Bytes pass while forwarding; once silent, those of connections already open are swallowed.
      client.on('data', (bytes) => forwarding && upstream.write(bytes));
      upstream.on('data', (bytes) => forwarding && client.write(bytes));
    }
    for (const socket of pair) {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        sockets.delete(socket);
        for (const other of pair) other.destroy();
      });
    }
  });
  const listen = (port: number) => new Promise<void>((done) => server.listen(port, '127.0.0.1', done));
  await listen(0);
  const port = (server.address() as AddressInfo).port;
  const dropAll = () => {
    for (const socket of sockets) socket.destroy();
  };
  return {
    port,
    async cut() {
      const closed = new Promise<void>((done) => server.close(() => done()));
      dropAll();
      await closed;
    },
    async silence() {
      forwarding = false;
      if (!server.listening) await listen(port);
    },
    async restore() {
      forwarding = true;
      dropAll();
      if (!server.listening) await listen(port);
    },
    close() {
      dropAll();
      server.close();
    },
  };
}

export type TcpProxy = Awaited<ReturnType<typeof startProxy>>;
