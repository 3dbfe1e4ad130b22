// Baseline: a bare Koa "hello" route (Koa is what oidc-provider is built on).
import http from 'node:http';
import Koa from 'koa';

const app = new Koa();
app.use((ctx) => {
  ctx.body = 'hello';
});
const server = http.createServer(app.callback()).listen(Number(process.env.PORT), '127.0.0.1');
server.keepAliveTimeout = 65_000;
process.once('SIGTERM', () => server.close(() => process.exit(0)) && server.closeAllConnections());
