// Investigation aid: how many SQL statements each kind of request costs the server.
//   node --import tsx bench/tools/sql-per-request.ts
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { basic, postForm, request } from '../lib/http.ts';
import { createFixtures, MODES } from '../lib/scenarios.ts';
import { codeFlow, discover } from '../../test/helpers/oauth.ts';
import { root, startTally } from '../lib/tally.ts';

const traceFile = join(root, 'bench/.work/sql-trace.json');
const server = await startTally({ name: 'sqltrace', nodeArgs: ['--import', join(root, 'bench/tools/sql-trace.mjs')], env: { SQL_TRACE_FILE: traceFile } });
try {
  const fx = await createFixtures(server);
  const N = Number(process.env.N ?? 20);
  const dump = async () => {
    server.child.process.kill('SIGUSR2');
    await new Promise((r) => setTimeout(r, 300));
    return JSON.parse(readFileSync(traceFile, 'utf8')) as [string, number][];
  };
  const show = async (label: string, fn: () => Promise<unknown>) => {
    await fn(); // first one fills caches
    await dump();
    for (let i = 0; i < N; i++) await fn();
    const counts = await dump();
    const total = counts.reduce((s, [, n]) => s + n, 0);
    console.log(`\n## ${label}: ${(total / N).toFixed(1)} statements per request`);
    for (const [sql, n] of counts) console.log(`  ${(n / N).toFixed(2)}  ${sql.slice(0, 220)}`);
  };
  const rs = basic(fx.resourceServer.client_id, fx.resourceServer.client_secret);
  for (const mode of MODES) {
    const c = fx.service[mode];
    await show(`client_credentials ${mode}`, () =>
      postForm(`${server.url}/token`, { grant_type: 'client_credentials', scope: 'api:read' }, basic(c.client_id, c.client_secret)),
    );
  }
  for (const mode of MODES) await show(`introspection ${mode}`, () => postForm(`${server.url}/token/introspection`, { token: fx.hot[mode] }, rs));
  await show('discovery', () => request(`${server.url}/.well-known/openid-configuration`));
  for (const mode of MODES) {
    const web = fx.web[mode];
    const config = await discover({ url: server.url } as never, web as never);
    let rt = (await codeFlow(config, fx.user)).refresh_token!;
    await show(`refresh ${mode}`, async () => {
      rt = (
        await postForm<{ refresh_token: string }>(
          `${server.url}/token`,
          { grant_type: 'refresh_token', refresh_token: rt },
          basic(web.client_id, web.client_secret),
        )
      ).refresh_token;
    });
    const c = fx.service[mode];
    await show(`issue + revoke ${mode}`, async () => {
      const { access_token } = await postForm<{ access_token: string }>(
        `${server.url}/token`,
        { grant_type: 'client_credentials', scope: 'api:read' },
        basic(c.client_id, c.client_secret),
      );
      await postForm(`${server.url}/token/revocation`, { token: access_token }, basic(c.client_id, c.client_secret));
    });
    if (mode === 'reference') await show('code flow (whole flow)', () => codeFlow(config, fx.user));
  }
} finally {
  await server.stop();
}
