// Generates one Prisma client per SQL dialect from prisma/schema.prisma, without the schema engine
// (which cannot be downloaded everywhere): `prisma generate` only needs the path to exist.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const source = readFileSync(join(root, 'prisma/schema.prisma'), 'utf8');
const outDir = join(root, 'node_modules/.tally-prisma');
mkdirSync(outDir, { recursive: true });

export function schemaFor(dialect) {
  return source
    .replace(/provider\s*=\s*"sqlite"/, `provider = "${dialect}"`)
    .replace(/output\s*=\s*"[^"]*"/, `output = "${join(root, 'src/storage/generated', dialect)}"`)
    .replace(/generator client \{/, 'generator client {\n  moduleFormat = "esm"\n  importFileExtension = "js"\n  runtime = "nodejs"');
}

const prismaCli = join(root, 'node_modules/prisma/build/index.js');
for (const dialect of ['sqlite', 'postgresql']) {
  const file = join(outDir, `${dialect}.prisma`);
  writeFileSync(file, schemaFor(dialect));
  execFileSync(process.execPath, [prismaCli, 'generate', `--schema=${file}`], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'inherit'],
    env: {
      ...process.env,
      PRISMA_SCHEMA_ENGINE_BINARY: process.env.PRISMA_SCHEMA_ENGINE_BINARY ?? process.execPath,
      PRISMA_HIDE_UPDATE_MESSAGE: '1',
      CHECKPOINT_DISABLE: '1',
    },
  });
}
