import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { CONFIG_VARIABLES, loadConfig } from '../src/config/index.ts';
import { dockerfile, environmentOf, stagesOf } from './helpers/dockerfile.ts';
import { root } from './helpers/server.ts';

// No container runtime here: compose.yaml is read as Compose reads it (YAML with merge keys, then
// variable interpolation) and what each replica would get is checked against Tally's own config
// schema, the Dockerfile and the other services.

interface Service {
  build?: string;
  image?: string;
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
  ports?: string[];
  healthcheck?: { test: string[] };
  volumes?: string[];
}
interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

const text = readFileSync(join(root, 'compose.yaml'), 'utf8');
const compose = parse(text, { merge: true }) as Compose;

/** Compose's interpolation of `${NAME}`, `${NAME:-default}`, `${NAME:?error}` and `$$`. */
function interpolate(value: string, shell: Record<string, string | undefined>): string {
  return value.replace(/\$\$|\$\{(\w+)(?::([-?])([^}]*))?\}/g, (match, name: string | undefined, kind, word: string) => {
    if (match === '$$') return '$';
    const set = shell[name!];
    if (set) return set;
    if (kind === '?') throw new Error(`${name}: ${word}`);
    return kind === '-' ? word : '';
  });
}

/** The runtime stage's ENV (the last stage), as the image gives it to every container. */
const imageEnvironment = () => environmentOf(stagesOf(dockerfile).at(-1)!);

/** The values the file's own header tells the operator to export (its `export NAME=$(node -e "...")` lines). */
function documentedSecrets(): Record<string, string> {
  const secrets: Record<string, string> = {};
  for (const [, name, script] of text.matchAll(/^#\s+export (\w+)=\$\(node -e "(.*)"\)$/gm)) {
    secrets[name!] = execFileSync(process.execPath, ['-e', script!], { encoding: 'utf8' }).trim();
  }
  return secrets;
}

const replicas = Object.entries(compose.services).filter(([, service]) => service.build !== undefined);

test('compose.yaml: two Tally replicas built from this Dockerfile, PostgreSQL 15 and Redis', () => {
  assert.deepEqual(
    replicas.map(([name]) => name),
    ['tally-1', 'tally-2'],
  );
  for (const [, service] of replicas) assert.equal(service.build, '.', 'built from the Dockerfile at the root');
  // PostgreSQL 15 is what the test suite runs against.
  assert.equal(compose.services.postgres?.image, 'postgres:15');
  assert.match(compose.services.redis?.image ?? '', /^redis:\d/);
  // The database outlives its container.
  const [volume] = (compose.services.postgres!.volumes ?? [])[0]!.split(':');
  assert.ok(volume && compose.volumes && volume in compose.volumes, 'PostgreSQL keeps its data in a named volume');
});

test("each replica's environment is valid for Tally, names only variables Tally reads, and points at the other services", () => {
  const secrets = documentedSecrets();
  assert.deepEqual(Object.keys(secrets).sort(), ['ADMIN_API_KEY', 'TALLY_SECRET_KEY']);
  const postgres = compose.services.postgres!.environment!;
  const configs = replicas.map(([name, service]) => {
    const environment = service.environment ?? {};
    for (const key of Object.keys(environment)) assert.ok(CONFIG_VARIABLES.includes(key), `${name}: ${key} is a variable Tally reads`);
    const resolved = Object.fromEntries(Object.entries(environment).map(([key, value]) => [key, interpolate(String(value), secrets)]));
    // What the process sees: the image's ENV, overridden by the service's environment.
    return { name, config: loadConfig({ ...imageEnvironment(), ...resolved }), environment };
  });

  for (const { name, config, environment } of configs) {
    // Reachable through the published port: the image listens on every interface.
    assert.equal(config.host, '0.0.0.0', `${name} listens beyond the container's loopback`);
    const database = new URL(config.databaseUrl);
    assert.equal(database.protocol, 'postgresql:');
    assert.equal(database.hostname, 'postgres', `${name} reaches the postgres service`);
    assert.equal(database.port, '5432');
    assert.equal(database.username, postgres.POSTGRES_USER);
    assert.equal(database.password, postgres.POSTGRES_PASSWORD);
    assert.equal(database.pathname, `/${postgres.POSTGRES_DB}`);
    const redis = new URL(config.redisUrl!);
    assert.equal(redis.hostname, 'redis', `${name} reaches the redis service`);
    assert.equal(redis.port, '6379');
    // The keys that seal stored keys and guard the admin API come from the operator, never a default.
    assert.match(environment.TALLY_SECRET_KEY ?? '', /^\$\{TALLY_SECRET_KEY:\?/);
    assert.match(environment.ADMIN_API_KEY ?? '', /^\$\{ADMIN_API_KEY:\?/);
  }
  // One deployment: the same issuer, database, Redis and key-wrapping secret on every replica.
  const [first, second] = configs.map((c) => c.config);
  assert.equal(first!.issuer, second!.issuer);
  assert.equal(first!.databaseUrl, second!.databaseUrl);
  assert.equal(first!.redisUrl, second!.redisUrl);
  assert.deepEqual(first!.secretKeys, second!.secretKeys);
});

test('compose refuses to start without the two secrets, naming each', () => {
  const environment = replicas[0]![1].environment!;
  const secrets = documentedSecrets();
  for (const missing of ['ADMIN_API_KEY', 'TALLY_SECRET_KEY']) {
    const shell = { ...secrets, [missing]: undefined };
    assert.throws(() => Object.values(environment).map((value) => interpolate(String(value), shell)), new RegExp(`^Error: ${missing}: set ${missing}`));
  }
});

test('replicas start after PostgreSQL and Redis are healthy and publish the port the image listens on', () => {
  const imagePort = imageEnvironment().PORT;
  assert.ok(new RegExp(`^EXPOSE ${imagePort}$`, 'm').test(dockerfile), 'the Dockerfile exposes its PORT');
  const hostPorts: string[] = [];
  for (const [name, service] of replicas) {
    for (const dependency of ['postgres', 'redis']) {
      assert.equal(service.depends_on?.[dependency]?.condition, 'service_healthy', `${name} waits for ${dependency}`);
      assert.ok(compose.services[dependency]!.healthcheck?.test.length, `${dependency} has a health check`);
    }
    assert.equal(service.ports?.length, 1);
    const [hostPort, containerPort] = service.ports![0]!.split(':');
    assert.equal(containerPort, imagePort, `${name} publishes the port the server listens on`);
    hostPorts.push(hostPort!);
  }
  assert.equal(new Set(hostPorts).size, hostPorts.length, 'each replica on its own host port');
  // Without a load balancer in front, the issuer is the first replica's published address.
  const issuer = new URL(replicas[0]![1].environment!.ISSUER!);
  assert.equal(issuer.port, hostPorts[0]);
});
