import { execFileSync } from 'node:child_process';
import { createHash, createPublicKey, X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';

// Throwaway certificates made with Debian's openssl for the mutual-TLS tests, and a fetch over
// node:https that presents a client certificate (the global fetch cannot be given one).

export interface Issued {
  certFile: string;
  keyFile: string;
  cert: Buffer;
  key: Buffer;
  x509: X509Certificate;
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

function openssl(args: string[]) {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function issued(certFile: string, keyFile: string): Issued {
  const cert = readFileSync(certFile);
  return { certFile, keyFile, cert, key: readFileSync(keyFile), x509: new X509Certificate(cert) };
}

/** A self-signed certificate: a CA (`ca: true`) or a client's own (self_signed_tls_client_auth). */
export function selfSigned(dir: string, name: string, subject: string, { ca = false } = {}): Issued {
  const certFile = join(dir, `${name}.pem`);
  const keyFile = join(dir, `${name}.key`);
  const extensions = ca ? ['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'] : [];
  openssl(['req', '-x509', ...EC_KEY, '-keyout', keyFile, '-out', certFile, '-subj', subject, '-days', '2', ...extensions]);
  return issued(certFile, keyFile);
}

/** A certificate signed by `ca`, with these subjectAltName entries (`DNS:localhost,IP:127.0.0.1`, …). */
export function signedBy(ca: Issued, dir: string, name: string, subject: string, { san, server = false }: { san?: string; server?: boolean } = {}): Issued {
  const certFile = join(dir, `${name}.pem`);
  const keyFile = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const ext = join(dir, `${name}.ext`);
  writeFileSync(ext, [`extendedKeyUsage=${server ? 'serverAuth' : 'clientAuth'}`, ...(san ? [`subjectAltName=${san}`] : [])].join('\n'));
  openssl(['req', ...EC_KEY, '-keyout', keyFile, '-out', csr, '-subj', subject]);
  openssl(['x509', '-req', '-in', csr, '-CA', ca.certFile, '-CAkey', ca.keyFile, '-CAcreateserial', '-out', certFile, '-days', '2', '-extfile', ext]);
  return issued(certFile, keyFile);
}

/** The client's `jwks` for self_signed_tls_client_auth: its public key with the certificate in `x5c`. */
export function jwksOf(client: Issued) {
  return { keys: [{ ...createPublicKey(client.cert).export({ format: 'jwk' }), x5c: [client.x509.raw.toString('base64')] }] };
}

/** RFC 8705 `cnf.x5t#S256`: SHA-256 of the certificate's DER, base64url. */
export function thumbprintOf(client: Issued): string {
  return createHash('sha256').update(client.x509.raw).digest('base64url');
}

export interface TlsOptions {
  /** The CA the server's certificate must chain to; `insecure` skips the check (health probes). */
  ca?: Buffer;
  insecure?: boolean;
  /** The client certificate to present. */
  client?: Issued;
}

/** fetch over node:https, presenting `client`'s certificate; a fresh connection per request (no pooled certificate). */
export function tlsFetch(options: TlsOptions): typeof fetch {
  return (async (input: string | URL | Request, init?: RequestInit) => {
    const req = new Request(input, init);
    const body = req.body ? Buffer.from(await req.arrayBuffer()) : undefined;
    return new Promise<Response>((resolve, reject) => {
      const outgoing = request(
        req.url,
        {
          method: req.method,
          headers: { ...Object.fromEntries(req.headers), ...(body ? { 'content-length': String(body.length) } : {}) },
          agent: false,
          ca: options.ca,
          rejectUnauthorized: !options.insecure,
          cert: options.client?.cert,
          key: options.client?.key,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', reject);
          res.on('end', () => {
            const headers = new Headers();
            for (let i = 0; i < res.rawHeaders.length; i += 2) headers.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
            const status = res.statusCode ?? 500;
            resolve(new Response([101, 204, 205, 304].includes(status) ? null : Buffer.concat(chunks), { status, headers }));
          });
        },
      );
      outgoing.on('error', reject);
      outgoing.end(body);
    });
  }) as typeof fetch;
}
