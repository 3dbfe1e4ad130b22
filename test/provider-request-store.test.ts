import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { root } from './helpers/server.ts';

// On Node 20 (without async context frames) the store behind oidc-provider's Provider.ctx follows each request across its awaits with
// promise hooks, which, once on, run for every promise of the process (Tally's direct answers too). The
// provider holder turns them off whenever no oidc-provider request is under way. Observed in a process
// of its own (test/helpers/provider-store-child.ts): node:test's runner keeps hooks on in this one.
test('the promise hooks behind Provider.ctx are on only while an oidc-provider request is under way, and every request keeps its own Provider.ctx', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', join(root, 'test/helpers/provider-store-child.ts')], {
    cwd: root,
    env: { ...process.env, NODE_NO_WARNINGS: '1' },
    timeout: 60_000,
  });
  const report = JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
  assert.deepEqual(report.statuses, [200, 200, 200, 200]);
  // The probe reads "off" in a process where nothing has turned the hooks on...
  assert.equal(report.beforeAnyRequest, false);
  // ...and "on" while a request is held inside oidc-provider after another one was answered (on a
  // runtime that keeps contexts in frames, never on: nothing to turn off, and the contexts below hold).
  assert.equal(report.whileSlowIsUnderWay, !report.contextFrames);
  // Answered, with nothing else under way: off again (without the holder's rule they stay on for good).
  assert.equal(report.afterTwoRequests, false);
  assert.equal(report.afterSlow, false);
  // Each request found its own context after its awaits: the second after the hooks had been off, and
  // the slow one after the fast one, begun and answered while it waited, had ended.
  assert.deepEqual(report.seen, ['first: true', 'second: true', 'fast: true', 'slow: true']);
});
