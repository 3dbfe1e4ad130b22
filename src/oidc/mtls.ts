import { isIP } from 'node:net';
import type { X509Certificate } from 'node:crypto';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { clientCertificateOf } from '../protocol/client-certificate.js';

// RFC 8705 through oidc-provider's features.mTLS: the certificate comes from the one judgement of a
// request's client certificate (protocol/client-certificate.ts: the TLS peer, or a trusted proxy's
// Client-Cert header). The feature is on whether or not this process serves TLS itself, because a
// proxy in front may pass the certificate on. Discovery advertises no mtls_endpoint_aliases: there is
// one listener, and its ordinary endpoints take client certificates.

type Context = KoaContextWithOIDC;

/** One relative distinguished name: attribute type (upper case) and value, unescaped. */
type Rdn = [type: string, value: string];

/** RFC 4514 string form (`CN=client,O=Example`): RDNs most specific first, `\` escapes. */
function parseRfc4514(dn: string): Rdn[] | undefined {
  const rdns: Rdn[] = [];
  let type = '';
  let value = '';
  let inValue = false;
  const push = () => {
    if (!type.trim()) return false;
    rdns.push([type.trim().toUpperCase(), value.trim()]);
    type = '';
    value = '';
    inValue = false;
    return true;
  };
  for (let i = 0; i < dn.length; i++) {
    const char = dn[i]!;
    if (char === '\\' && i + 1 < dn.length) {
      const hex = /^[0-9a-fA-F]{2}/.exec(dn.slice(i + 1, i + 3));
      const next = hex ? String.fromCharCode(Number.parseInt(hex[0], 16)) : dn[i + 1]!;
      if (inValue) value += next;
      else type += next;
      i += hex ? 2 : 1;
    } else if (char === '=' && !inValue) inValue = true;
    else if (char === ',' && inValue) {
      if (!push()) return undefined;
    } else if (inValue) value += char;
    else type += char;
  }
  if (!inValue || !push()) return undefined;
  return rdns;
}

/**
 * node's X509Certificate#subject: one `TYPE=value` per line, in the certificate's order (least
 * specific first), the reverse of RFC 4514's. A value with a newline is escaped by node; rare enough
 * that it simply fails to match.
 */
function subjectRdns(certificate: X509Certificate): Rdn[] {
  return certificate.subject.split('\n').map((line) => {
    const eq = line.indexOf('=');
    return [line.slice(0, eq).trim().toUpperCase(), line.slice(eq + 1).trim()] as Rdn;
  });
}

function subjectDnMatches(certificate: X509Certificate, expected: string): boolean {
  const wanted = parseRfc4514(expected);
  if (!wanted) return false;
  const actual = subjectRdns(certificate).reverse();
  return wanted.length === actual.length && wanted.every(([type, value], i) => actual[i]![0] === type && actual[i]![1] === value);
}

/** The subjectAltName entries of one kind, as node lists them (`DNS:a, IP Address:1.2.3.4`, values with `,` quoted). */
function altNames(certificate: X509Certificate, kind: string): string[] {
  const names: string[] = [];
  for (const [, type, raw] of (certificate.subjectAltName ?? '').matchAll(/(?:^|, )([^:,]+):("(?:[^"\\]|\\.)*"|[^,]*)/g)) {
    if (type !== kind) continue;
    names.push(raw!.startsWith('"') ? (JSON.parse(raw!) as string) : raw!);
  }
  return names;
}

/** An IP address in one spelling (IPv6 compressed, lower case), for comparing registered and presented forms. */
function normalIp(ip: string): string | undefined {
  const version = isIP(ip);
  if (version === 4) return ip;
  if (version === 6) return new URL(`http://[${ip}]/`).hostname;
  return undefined;
}

/** RFC 8705 §2.1.2: the registered value matches the certificate's subject DN or one SAN entry of its kind, exactly. */
export function certificateSubjectMatches(certificate: X509Certificate, property: string, expected: string): boolean {
  switch (property) {
    case 'tls_client_auth_subject_dn':
      return subjectDnMatches(certificate, expected);
    case 'tls_client_auth_san_dns':
      return altNames(certificate, 'DNS').some((name) => name.toLowerCase() === expected.toLowerCase());
    case 'tls_client_auth_san_uri':
      return altNames(certificate, 'URI').includes(expected);
    case 'tls_client_auth_san_email':
      return altNames(certificate, 'email').includes(expected);
    case 'tls_client_auth_san_ip': {
      const wanted = normalIp(expected);
      return wanted !== undefined && altNames(certificate, 'IP Address').some((ip) => normalIp(ip) === wanted);
    }
    default:
      return false;
  }
}

/** oidc-provider's features.mTLS (RFC 8705: both client authentication methods and certificate-bound tokens). */
export function mtlsFeature() {
  return {
    enabled: true,
    certificateBoundAccessTokens: true,
    tlsClientAuth: true,
    selfSignedTlsClientAuth: true,
    getCertificate: (ctx: Context) => clientCertificateOf(ctx.req)?.certificate,
    certificateAuthorized: (ctx: Context) => clientCertificateOf(ctx.req)?.authorized === true,
    certificateSubjectMatches: (ctx: Context, property: string, expected: string) => {
      const found = clientCertificateOf(ctx.req);
      return found !== undefined && certificateSubjectMatches(found.certificate, property, expected);
    },
  };
}
