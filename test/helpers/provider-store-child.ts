// A process of its own (node:test's runner keeps promise hooks on in the test's process): oidc-provider
// behind Tally's provider holder, asked for tokens; prints one JSON line of what it observed about the
// promise hooks behind Provider.ctx and about each request's Provider.ctx (test/provider-request-store.test.ts).
import { AsyncLocalStorage, executionAsyncId } from 'node:async_hooks';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';
import { holdProvider } from '../../src/oidc/provider-holder.ts';
import { directProvider } from './direct-provider.ts';

/** A promise reaction runs under an async id of its own only while a hook tracks promises; else under 0. */
const promiseHooksOn = () => new Promise<boolean>((resolve) => Promise.resolve().then(() => resolve(executionAsyncId() !== 0)));

// Each client-credentials request passes here (extraTokenClaims, inside oidc-provider's request): the
// first one of the concurrent part waits until released.
let hold: Promise<void> | undefined;
let entered: () => void = () => undefined;
const seen: string[] = [];
let label = '';
// oidc-provider as the other in-process tests build it (its store in a Map, an RS256 key).
const { provider } = directProvider({
  clients: [{ client_id: 'service', client_secret: 'service-secret', grant_types: ['client_credentials'], redirect_uris: [], response_types: [] }],
  features: { clientCredentials: { enabled: true } },
  scopes: ['api:read'],
  async extraTokenClaims(ctx) {
    const mine = label;
    const waitFor = hold;
    hold = undefined;
    if (waitFor) {
      entered();
      await waitFor;
    }
    await new Promise((resolve) => setTimeout(resolve, 2));
    seen.push(`${mine}: ${Provider.ctx === ctx}`);
    return {};
  },
});
const holder = holdProvider(provider);
const server = createServer((req, res) => holder.handle(req, res));
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`;
const token = async (name: string) => {
  label = name;
  const answer = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from('service:service-secret').toString('base64')}` },
    body: 'grant_type=client_credentials&scope=api%3Aread',
  });
  await answer.text();
  return answer.status;
};

const report: Record<string, unknown> = { beforeAnyRequest: await promiseHooksOn() };
// A runtime that keeps AsyncLocalStorage's contexts in frames (Node 22 with
// --experimental-async-context-frame, Node 24 by default) never turns promise hooks on for a store.
const frames = new AsyncLocalStorage<number>();
report.contextFrames = !(await frames.run(1, promiseHooksOn));
frames.disable();
report.statuses = [await token('first'), await token('second')];
report.afterTwoRequests = await promiseHooksOn();

// Concurrent: "slow" is held inside oidc-provider while "fast" is answered.
let release!: () => void;
hold = new Promise<void>((resolve) => (release = resolve));
const slowInside = new Promise<void>((resolve) => (entered = resolve));
const slow = token('slow');
await slowInside;
(report.statuses as number[]).push(await token('fast'));
report.whileSlowIsUnderWay = await promiseHooksOn();
release();
(report.statuses as number[]).push(await slow);
report.afterSlow = await promiseHooksOn();
report.seen = seen;
console.log(JSON.stringify(report));
server.close();
