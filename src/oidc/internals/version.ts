import { readFileSync } from 'node:fs';

type Version = [major: number, minor: number, patch: number];

/**
 * The oidc-provider versions this module was written for and checked against (the byte-for-byte
 * comparison in test/direct-answers.test.ts, the hooks in OIDC-PROVIDER-NOTES.md). Its internals
 * changed between 9.11 and 9.13, so any other version is refused rather than trusted.
 */
export const SUPPORTED_VERSIONS = { from: [9, 13, 3] as Version, below: [9, 14, 0] as Version };

const show = (version: Version) => version.join('.');
export const SUPPORTED_RANGE = `>=${show(SUPPORTED_VERSIONS.from)} <${show(SUPPORTED_VERSIONS.below)}`;

function compare(a: Version, b: Version): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}

/** A release version (no pre-release or build suffix, which are never supported). */
function parseVersion(text: unknown): Version | undefined {
  const match = typeof text === 'string' ? /^(\d+)\.(\d+)\.(\d+)$/.exec(text) : null;
  return match ? [Number(match[1]), Number(match[2]), Number(match[3])] : undefined;
}

/** The version in the package.json of the oidc-provider that `import 'oidc-provider'` loads here. */
export function installedVersion(): string | undefined {
  try {
    const manifest = JSON.parse(readFileSync(new URL(import.meta.resolve('oidc-provider/package.json')), 'utf8')) as { version?: unknown };
    return typeof manifest.version === 'string' ? manifest.version : undefined;
  } catch {
    return undefined;
  }
}

export function isSupported(version: string | undefined): boolean {
  const parsed = parseVersion(version);
  return !!parsed && compare(parsed, SUPPORTED_VERSIONS.from) >= 0 && compare(parsed, SUPPORTED_VERSIONS.below) < 0;
}

/**
 * Stops the process, saying why, unless the installed oidc-provider is one this module was written
 * for. Runs before any of its internals is imported: another version may not even have those files.
 */
export function exitUnlessSupportedVersion(version = installedVersion()): void {
  if (isSupported(version)) return;
  const installed = version === undefined ? 'an oidc-provider whose version cannot be read' : `oidc-provider ${version}`;
  process.stderr.write(
    `tally: refusing to start: ${installed} is installed, but Tally relies on internals of oidc-provider ${SUPPORTED_RANGE} ` +
      '(src/oidc/internals/) and runs on no other version. Install the version package.json names (npm ci), ' +
      'or review src/oidc/internals/ against the new version and widen SUPPORTED_VERSIONS.\n',
  );
  process.exit(1);
}
