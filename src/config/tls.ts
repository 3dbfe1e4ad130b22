import { readFileSync } from 'node:fs';
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';

/** The HTTPS listener's material, read once at start (a renewed certificate takes a restart). */
export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
  /** The CAs whose client certificates the listener asks for (mutual TLS); absent: it asks for none. */
  ca: Buffer | undefined;
}

type Fail = (variable: string, file: string, why: string) => never;

function read(variable: string, file: string, fail: Fail): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    return fail(variable, file, `cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Every certificate of a PEM file (a chain, a CA bundle); none is an error. */
function certificates(variable: string, file: string, pem: Buffer, fail: Fail): X509Certificate[] {
  const blocks = pem.toString('latin1').match(PEM_CERTIFICATE) ?? [];
  if (!blocks.length) fail(variable, file, 'holds no PEM certificate');
  return blocks.map((block) => {
    try {
      return new X509Certificate(block);
    } catch {
      return fail(variable, file, 'holds a certificate that does not parse');
    }
  });
}

/**
 * TLS_CERT_FILE and TLS_KEY_FILE (both or neither) and TLS_CLIENT_CA_FILE (only with them): read and
 * checked here, so that a bad file stops the start naming its variable instead of failing at listen.
 */
export function readTlsFiles(names: { cert?: string | undefined; key?: string | undefined; ca?: string | undefined }, fail: Fail): TlsFiles | undefined {
  if (!names.cert !== !names.key) {
    const missing = names.cert ? 'TLS_KEY_FILE' : 'TLS_CERT_FILE';
    fail(missing, '', `must be set with ${missing === 'TLS_KEY_FILE' ? 'TLS_CERT_FILE' : 'TLS_KEY_FILE'} (HTTPS needs both)`);
  }
  if (!names.cert || !names.key) {
    if (names.ca) fail('TLS_CLIENT_CA_FILE', names.ca, 'needs TLS_CERT_FILE and TLS_KEY_FILE (client certificates are asked for over HTTPS only)');
    return undefined;
  }
  const cert = read('TLS_CERT_FILE', names.cert, fail);
  const [leaf] = certificates('TLS_CERT_FILE', names.cert, cert, fail);
  const key = read('TLS_KEY_FILE', names.key, fail);
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    return fail('TLS_KEY_FILE', names.key, 'holds no PEM private key (an encrypted key is not supported)');
  }
  if (!leaf!.checkPrivateKey(privateKey)) fail('TLS_KEY_FILE', names.key, 'is not the private key of the certificate in TLS_CERT_FILE');
  const ca = names.ca ? read('TLS_CLIENT_CA_FILE', names.ca, fail) : undefined;
  if (ca) certificates('TLS_CLIENT_CA_FILE', names.ca!, ca, fail);
  return { cert, key, ca };
}
