import pg from 'pg';
import { postgresBin, startLocalPostgres } from '../lib/postgres.ts';
const local = await startLocalPostgres(postgresBin()!);
const pool = new pg.Pool({ connectionString: local.url, max: 10 });
await pool.query('CREATE TABLE t (id text primary key, a text, b text, c timestamp(3))');
const N = 4000;
const row = (i: number, tag: string) => [`${tag}-${i}`, 'x'.repeat(40), 'y'.repeat(200), new Date().toISOString()];
async function measure(name: string, run: () => Promise<void>) {
  const cpu = process.cpuUsage();
  const t = performance.now();
  await run();
  const used = process.cpuUsage(cpu);
  console.log(name, `${(((performance.now() - t) / N) * 1000).toFixed(0)} µs wall/row, ${((used.user + used.system) / N).toFixed(0)} µs node CPU/row`);
}
for (let round = 0; round < 2; round++) {
  await measure('single  ', async () => {
    await Promise.all(
      Array.from({ length: N }, (_, i) => pool.query({ name: 'one', text: 'INSERT INTO t VALUES ($1,$2,$3,$4)', values: row(i, `s${round}`) })),
    );
  });
  await measure('batch 10', async () => {
    const text = `INSERT INTO t VALUES ${Array.from({ length: 10 }, (_, r) => `($${r * 4 + 1},$${r * 4 + 2},$${r * 4 + 3},$${r * 4 + 4})`).join(',')}`;
    await Promise.all(
      Array.from({ length: N / 10 }, (_, b) =>
        pool.query({ name: 'ten', text, values: Array.from({ length: 10 }, (_, r) => row(b * 10 + r, `b${round}`)).flat() }),
      ),
    );
  });
}
await pool.end();
local.stop();
