// System calls per operation: `perf stat` on the syscall tracepoints of every thread of a server over
// one run (after a 3 s warm-up), for a Tally scenario or a baseline (the peer's client credentials or
// introspection, Express hello). Needs `perf` (apt: linux-perf) and tracepoints readable by this user.
// usage: npx tsx bench/tools/syscalls-per-request.ts <scenario|peer-cc|peer-introspect|express> [seconds=5] [connections=50]
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { preparedScenario } from '../lib/scenarios.ts';
import { startTally } from '../lib/tally.ts';
import { startBaseline, startPeer } from '../lib/baselines.ts';
const [id, secsArg = '5', conns = '50'] = process.argv.slice(2);
const names = [
  'pwrite64',
  'pread64',
  'fcntl',
  'writev',
  'write',
  'read',
  'futex',
  'epoll_pwait',
  'getpid',
  'fsync',
  'fdatasync',
  'openat',
  'mmap',
  'munmap',
  'madvise',
  'mprotect',
  'brk',
];
let stop: () => Promise<unknown>;
let pid: number;
let run: (c: number, s: number) => Promise<{ ok: number }>;
if (id === 'peer-cc' || id === 'peer-introspect') {
  const peer = await startPeer();
  stop = peer.stop;
  pid = peer.child.pid;
  if (id === 'peer-introspect') await peer.issueHot();
  run = id === 'peer-cc' ? peer.clientCredentials : peer.introspection;
} else if (id === 'express') {
  const hello = await startBaseline('express-hello.mjs');
  stop = hello.stop;
  pid = hello.child.pid;
  run = hello.run;
} else {
  const server = await startTally({ name: `sys-${id}` });
  stop = server.stop;
  pid = server.child.pid;
  run = (await preparedScenario(server, id!)).run;
}
try {
  await run(Number(conns), 3);
  const out = `/tmp/perfstat-${id}.txt`;
  const st = spawn('perf', ['stat', '-x', ',', '-e', names.map((n) => `syscalls:sys_enter_${n}`).join(','), '-p', String(pid), '-o', out], {
    stdio: 'inherit',
  });
  await new Promise((r) => setTimeout(r, 300));
  const r = await run(Number(conns), Number(secsArg));
  await new Promise((r) => setTimeout(r, 100));
  st.kill('SIGINT');
  await new Promise((r) => st.on('exit', r));
  const counts = Object.fromEntries(
    readFileSync(out, 'utf8')
      .split('\n')
      .filter((l) => l.includes('syscalls:'))
      .map((l) => {
        const f = l.split(',');
        return [f[2]!.replace('syscalls:sys_enter_', ''), Number(f[0])];
      }),
  );
  const per = Object.entries(counts)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${(n / r.ok).toFixed(2)}`)
    .join(', ');
  console.log(`${id}: ${r.ok} ops; per op: ${per}`);
} finally {
  await stop();
}
