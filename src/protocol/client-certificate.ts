import { X509Certificate } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';

/** A request's client certificate, and whether it chains to a CA the server trusts. */
export interface ClientCertificate {
  certificate: X509Certificate;
  /** The TLS handshake verified it against TLS_CLIENT_CA_FILE, or a trusted proxy sent it (and verified it). */
  authorized: boolean;
}

/** RFC 9440 §2.1: the header's value is an RFC 8941 byte sequence, `:` base64 DER `:`. */
const BYTE_SEQUENCE = /^:([A-Za-z0-9+/]+={0,2}):$/;

/** The certificate of an RFC 9440 `Client-Cert` header value; undefined when it is not one. */
export function parseClientCertHeader(value: string | string[] | undefined): X509Certificate | undefined {
  if (typeof value !== 'string') return undefined;
  const match = BYTE_SEQUENCE.exec(value.trim());
  if (!match) return undefined;
  try {
    return new X509Certificate(Buffer.from(match[1]!, 'base64'));
  } catch {
    return undefined;
  }
}

/** The RFC 9440 header value of a certificate (what a TLS-terminating proxy sends). */
export function clientCertHeaderOf(certificate: X509Certificate): string {
  return `:${certificate.raw.toString('base64')}:`;
}

const found = new WeakMap<object, ClientCertificate | null>();

/**
 * The client certificate of a request: the RFC 9440 `Client-Cert` header when there is one, else the
 * TLS peer's. The header is believed as it stands: whoever serves the request must have removed it
 * from peers it does not trust (Tally: http/forwarded.ts, TRUST_PROXY) and is trusting the proxy to
 * have verified the certificate against its CAs. A direct peer's certificate is authorized when the
 * handshake verified it (node's `authorized`: it chains to TLS_CLIENT_CA_FILE). Worked out once per
 * request (its socket for the TLS peer; oidc-provider asks several times).
 */
export function clientCertificateOf(req: Pick<IncomingMessage, 'headers' | 'socket'>): ClientCertificate | undefined {
  const cached = found.get(req);
  if (cached !== undefined) return cached ?? undefined;
  const header = req.headers['client-cert'];
  let result: ClientCertificate | undefined;
  if (header !== undefined) {
    const certificate = parseClientCertHeader(header);
    result = certificate && { certificate, authorized: true };
  } else {
    const socket = req.socket as Partial<TLSSocket>;
    const certificate = typeof socket.getPeerX509Certificate === 'function' ? socket.getPeerX509Certificate() : undefined;
    result = certificate && { certificate, authorized: socket.authorized === true };
  }
  found.set(req, result ?? null);
  return result;
}
