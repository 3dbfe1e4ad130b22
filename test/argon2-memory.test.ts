import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { dockerfile, environmentOf, stagesOf } from './helpers/dockerfile.ts';
import { root } from './helpers/server.ts';

// The image returns argon2id's 19 MiB buffers to the system after each hash (MALLOC_MMAP_THRESHOLD_),
// so every sign-in maps them in again. With 4 KiB pages that is some 4,900 page faults and about 65 ms
// of CPU more than the hash itself; the image asks glibc for transparent huge pages there instead
// (GLIBC_TUNABLES=glibc.malloc.hugetlb=1). The page faults of a verification tell the two apart.

const runtime = stagesOf(dockerfile).at(-1)!;
const image = environmentOf(runtime);

const THP = '/sys/kernel/mm/transparent_hugepage/enabled';
const hugePages = existsSync(THP) && /\[(always|madvise)\]/.test(readFileSync(THP, 'utf8'));
// The tunable is glibc 2.35's (the image's Debian 12 has 2.36).
const glibc = (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime;
const [major = 0, minor = 0] = (glibc ?? '0.0').split('.').map(Number);
const skip =
  !glibc || major < 2 || (major === 2 && minor < 35)
    ? `glibc ${glibc ?? 'absent'} here: glibc.malloc.hugetlb needs 2.35`
    : hugePages
      ? undefined
      : `transparent huge pages are off on this machine (${THP})`;

const MEASURE = `
const argon2 = require('argon2');
(async () => {
  const hash = await argon2.hash('a password', { type: argon2.argon2id, memoryCost: 19456, timeCost: 2, parallelism: 1 });
  await argon2.verify(hash, 'a password');
  const before = process.resourceUsage().minorPageFault;
  for (let i = 0; i < 4; i++) await argon2.verify(hash, 'a password');
  console.log((process.resourceUsage().minorPageFault - before) / 4);
})();`;

/** Minor page faults per argon2id verification (OWASP parameters) in a process with `env`. */
function faultsPerVerification(env: Record<string, string>): number {
  const child = spawnSync(process.execPath, ['-e', MEASURE], { cwd: root, env: { PATH: process.env.PATH, ...env }, encoding: 'utf8' });
  assert.equal(child.status, 0, child.stderr);
  return Number(child.stdout.trim());
}

test("the image's allocator settings: argon2id's buffers come back in huge pages, not 4 KiB faults", {
  skip,
}, () => {
  assert.equal(image.MALLOC_MMAP_THRESHOLD_, '131072', 'large buffers still go back to the system');
  assert.match(image.GLIBC_TUNABLES ?? '', /glibc\.malloc\.hugetlb=1/);
  const withImage = faultsPerVerification(image);
  const without = faultsPerVerification({ MALLOC_MMAP_THRESHOLD_: image.MALLOC_MMAP_THRESHOLD_! });
  // 19 MiB in 4 KiB pages is 4,864 faults; in 2 MiB pages a few, plus the unaligned ends and the rest.
  assert.ok(without > 4000, `without the tunable: ${without} faults per verification`);
  assert.ok(withImage < without / 2, `with the image's settings: ${withImage} faults per verification, against ${without}`);
});
