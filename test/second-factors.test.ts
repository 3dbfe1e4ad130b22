import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { ADMIN_KEY, admin } from './helpers/admin.ts';
import { Browser } from './helpers/browser.ts';
import { createUser, createWebClient } from './helpers/fixtures.ts';
import { enrolTotp, finishCodeFlow, formWith, newRecoveryCodes, secretOnPage, startCodeFlow, totpCode } from './helpers/factors.ts';
import { discover } from './helpers/oauth.ts';
import { onPostgres, startServer, type TestServer } from './helpers/server.ts';

const PWD = 'urn:tally:acr:pwd';
const MFA = 'urn:tally:acr:mfa';

describe('second factors at sign-in', () => {
  let server: TestServer;
  let config: Awaited<ReturnType<typeof discover>>;
  let mfaConfig: Awaited<ReturnType<typeof discover>>;

  before(async () => {
    server = await startServer({ env: { ADMIN_API_KEY: ADMIN_KEY } });
    config = await discover(server, createWebClient(server));
    mfaConfig = await discover(server, createWebClient(server, { client_name: 'Needs two factors', require_mfa: true }));
  });
  after(() => server.stop());

  test('discovery lists the acr values', async () => {
    const discovery = (await (await fetch(`${server.url}/.well-known/openid-configuration`)).json()) as {
      acr_values_supported?: string[];
      claims_supported?: string[];
    };
    assert.deepEqual(discovery.acr_values_supported, [PWD, MFA]);
    assert.ok(discovery.claims_supported?.includes('amr'));
  });

  test('a user without a factor signs in with the password alone → amr pwd, acr pwd', async () => {
    const user = createUser(server);
    const flow = await startCodeFlow(config, user);
    const claims = (await finishCodeFlow(config, flow, flow.page)).claims()!;
    assert.deepEqual(claims.amr, ['pwd']);
    assert.equal(claims.acr, PWD);
  });

  test('password + TOTP → a second page, then amr pwd otp mfa and the mfa acr; a wrong code is refused', async () => {
    const user = createUser(server);
    const secret = await enrolTotp(server, user);
    const flow = await startCodeFlow(config, user);
    assert.match(flow.page.html, /Two-step verification/);
    assert.ok(!flow.page.url.startsWith('http://127.0.0.1:9'), 'the password alone does not reach the client');
    const wrong = await flow.browser.submit(formWith(flow.page.html, flow.page.url, 'code'), {
      code: '000000' === (await totpCode(secret, 1)) ? '111111' : '000000',
    });
    assert.equal(wrong.response.status, 401);
    assert.match(wrong.html, /Wrong code/);
    const right = await flow.browser.submit(formWith(wrong.html, wrong.url, 'code'), { code: await totpCode(secret, 1) }, 'http://127.0.0.1:9/');
    const claims = (await finishCodeFlow(config, flow, right)).claims()!;
    assert.deepEqual(claims.amr, ['pwd', 'otp', 'mfa']);
    assert.equal(claims.acr, MFA);
    await server.outputMatching(/"event":"second_factor_failed"/);
  });

  test('a recovery code works once and fails the second time', async () => {
    const user = createUser(server);
    const browser = new Browser();
    await enrolTotp(server, user, browser);
    const codes = await newRecoveryCodes(browser, server);
    assert.equal(codes.length, 10);
    assert.equal(new Set(codes).size, 10);

    const first = await startCodeFlow(config, user);
    const used = await first.browser.submit(formWith(first.page.html, first.page.url, 'code'), { code: codes[0]!.toLowerCase() }, 'http://127.0.0.1:9/');
    const claims = (await finishCodeFlow(config, first, used)).claims()!;
    assert.deepEqual(claims.amr, ['pwd', 'otp', 'mfa']);
    await server.outputMatching(/"event":"recovery_code_used"/);

    const second = await startCodeFlow(config, user);
    const again = await second.browser.submit(formWith(second.page.html, second.page.url, 'code'), { code: codes[0]! });
    assert.equal(again.response.status, 401, 'the same recovery code a second time is refused');
    assert.match(again.html, /Wrong code/);
  });

  test('wrong codes are throttled like passwords: after 5, even a right one is refused with Retry-After', async () => {
    const user = createUser(server);
    const secret = await enrolTotp(server, user);
    const flow = await startCodeFlow(config, user);
    let page = flow.page;
    for (let i = 0; i < 5; i++) {
      page = await flow.browser.submit(formWith(page.html, page.url, 'code'), { code: 'WRONG-CODE1' });
      assert.equal(page.response.status, 401);
    }
    assert.match(page.html, /Too many wrong codes/);
    page = await flow.browser.submit(formWith(page.html, page.url, 'code'), { code: await totpCode(secret, 1) });
    assert.equal(page.response.status, 429, 'refused while throttled, the right code too');
    assert.ok(Number(page.response.headers.get('retry-after')) >= 1);
    await server.outputMatching(/"event":"second_factor_locked"/);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, /tally_security_events_total\{event="second_factor_failed"\} [1-9]/);
  });

  test('a require_mfa client leads a user without a factor to enrol; a password-only session steps up', async () => {
    const user = createUser(server);
    // Signed in with the password only, at a client that does not ask for more.
    const first = await startCodeFlow(config, user);
    assert.equal((await finishCodeFlow(config, first, first.page)).claims()!.acr, PWD);

    // The same browser at a require_mfa client: the session is not enough, the login page again.
    const second = await startCodeFlow(mfaConfig, user, {}, first.browser);
    assert.match(second.page.html, /Set up an authenticator/, `expected the enrolment page: ${second.page.html.slice(0, 300)}`);
    assert.match(second.page.html, /<img src="data:image\/svg\+xml;base64,/);
    assert.match(second.page.html, /otpauth:\/\/totp\//);
    const secret = secretOnPage(second.page.html);
    const wrong = await second.browser.submit(formWith(second.page.html, second.page.url, 'code'), { code: '12345' });
    assert.equal(wrong.response.status, 401);
    assert.equal(secretOnPage(wrong.html), secret, 'the same authenticator is offered again');
    const enrolled = await second.browser.submit(formWith(wrong.html, wrong.url, 'code'), { code: await totpCode(secret) }, 'http://127.0.0.1:9/');
    const claims = (await finishCodeFlow(mfaConfig, second, enrolled)).claims()!;
    assert.equal(claims.acr, MFA);
    assert.deepEqual(claims.amr, ['pwd', 'otp', 'mfa']);
    await server.outputMatching(/"event":"factor_enrolled"/);

    // acr_values asks for the same at an ordinary client: the mfa session satisfies it now.
    const third = await startCodeFlow(config, user, { acr_values: MFA }, second.browser);
    assert.equal((await finishCodeFlow(config, third, third.page)).claims()!.acr, MFA);
  });

  test('acr_values=mfa at an ordinary client asks a password-only session to step up', async () => {
    const user = createUser(server);
    const first = await startCodeFlow(config, user);
    await finishCodeFlow(config, first, first.page);
    const again = await startCodeFlow(config, user, { acr_values: MFA }, first.browser);
    assert.match(again.page.html, /Set up an authenticator/);
  });

  test('DELETE /admin/users/{id}/factors (and the CLI) → the next sign-in asks the password alone', async () => {
    const user = createUser(server);
    await enrolTotp(server, user);
    const flow = await startCodeFlow(config, user);
    assert.match(flow.page.html, /Two-step verification/);

    assert.equal((await admin(server, 'DELETE', `/users/${user.id}/factors`)).status, 204);
    assert.equal((await admin(server, 'DELETE', '/users/no-such-user/factors')).status, 404);
    const audit = await admin(server, 'GET', '/audit?limit=200');
    assert.ok(
      (audit.body.items as { action: string; target_id?: string; targetId?: string }[]).some((e) => e.action === 'resetUserFactors'),
      JSON.stringify(audit.body.items.slice(-3)),
    );
    const after = await startCodeFlow(config, user);
    assert.deepEqual((await finishCodeFlow(config, after, after.page)).claims()!.amr, ['pwd']);

    await enrolTotp(server, user);
    server.cli(['users', 'reset-factors', '--id', user.id]);
    const afterCli = await startCodeFlow(config, user);
    assert.deepEqual((await finishCodeFlow(config, afterCli, afterCli.page)).claims()!.amr, ['pwd']);
    await server.outputMatching(/factor/);
  });

  test("a forged, altered or other interaction's ticket → the login page again (401), never a sign-in or a 500", async () => {
    const user = createUser(server);
    await enrolTotp(server, user);
    const one = await startCodeFlow(config, user);
    const other = await startCodeFlow(config, user);
    const form = formWith(one.page.html, one.page.url, 'code');
    const otherTicket = formWith(other.page.html, other.page.url, 'code').fields.ticket!;
    const [body, mac] = form.fields.ticket!.split('.');
    const altered = `${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(body!, 'base64url').toString()), sub: 'someone-else' })).toString('base64url')}.${mac}`;
    for (const ticket of ['forged', '', 'a.b.c', altered, otherTicket]) {
      const page = await one.browser.submit({ ...form, fields: { ...form.fields, ticket } }, { code: '123456' });
      assert.equal(page.response.status, 401, `ticket ${ticket.slice(0, 20)}`);
      assert.match(page.html, /name="password"/);
    }
    const arrays = await one.browser.request(form.action, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `_csrf=${encodeURIComponent(form.fields._csrf!)}&ticket=${encodeURIComponent(form.fields.ticket!)}&code=1&code=2`,
    });
    assert.equal(arrays.status, 401, 'a repeated code field is a wrong code');
  });

  test('the database holds no TOTP secret or recovery code in the clear', { skip: onPostgres ? 'a scan of the SQLite file' : undefined }, async () => {
    const user = createUser(server);
    const browser = new Browser();
    const secret = await enrolTotp(server, user, browser);
    const codes = await newRecoveryCodes(browser, server);
    assert.equal(codes.length, 10);
    await new Promise((done) => setTimeout(done, 200));
    const bytes = Buffer.concat([server.dbFile, `${server.dbFile}-wal`].filter(existsSync).map((file) => readFileSync(file)));
    assert.ok(bytes.includes(Buffer.from(user.username)), 'positive control: the username is found in the same bytes');
    assert.ok(!bytes.includes(Buffer.from(secret)), 'the TOTP secret is not stored in the clear');
    for (const code of codes) {
      assert.ok(!bytes.includes(Buffer.from(code)), `recovery code ${code} not in the clear`);
      assert.ok(!bytes.includes(Buffer.from(code.replace('-', ''))), `recovery code ${code} not in the clear (undashed)`);
    }
  });
});
