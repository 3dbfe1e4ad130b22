// Investigation aid: server RSS after start-up and after creating clients and a user, with and without
// glibc malloc settings (argon2id buffers are kept by glibc after free).  node --import tsx bench/tools/rss-env.ts
import { rssMiB } from '../lib/rss.ts';
import { createFixtures } from '../lib/scenarios.ts';
import { startTally } from '../lib/tally.ts';
for (const env of [{}, { MALLOC_MMAP_THRESHOLD_: '131072' }, { MALLOC_ARENA_MAX: '2' }]) {
  const server = await startTally({ name: 'rss', env });
  const a = rssMiB(server.child.pid)!;
  await createFixtures(server);
  await new Promise((r) => setTimeout(r, 500));
  const b = rssMiB(server.child.pid)!;
  const m = await (await fetch(`${server.url}/metrics`)).text();
  const g = (n: string) => (Number(new RegExp(`^${n} (\\S+)`, 'm').exec(m)?.[1]) / 2 ** 20).toFixed(0);
  console.log(
    JSON.stringify(env),
    'after start',
    a.toFixed(0),
    'after fixtures',
    b.toFixed(0),
    'heapTotal',
    g('tally_nodejs_heap_size_total_bytes'),
    'heapUsed',
    g('tally_nodejs_heap_size_used_bytes'),
    'external',
    g('tally_nodejs_external_memory_bytes'),
  );
  await server.stop();
}
