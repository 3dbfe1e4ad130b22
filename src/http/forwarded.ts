import type { IncomingMessage } from 'node:http';
import proxyaddr from 'proxy-addr';

/** Headers only a trusted proxy may set (RFC 9440 client certificates included). */
const PROXY_HEADERS = ['x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port', 'forwarded', 'client-cert', 'client-cert-chain'];

/**
 * Rewrites a request's origin headers before anything reads them, so that Express (`req.ip`), Koa and
 * oidc-provider (`ctx.ip`, the links and cookies they build) all see the same trusted values:
 * - Host and X-Forwarded-Host/-Proto are the issuer's: URLs are built from ISSUER, never from what a
 *   caller sends, and cookies are Secure whenever the issuer is https;
 * - X-Forwarded-For is the one client address proxy-addr finds walking back through trusted hops
 *   only (TRUST_PROXY), or the socket's peer;
 * - a client certificate header survives only from a trusted peer.
 */
export function createForwardedHeaders({ issuer, trustProxy }: { issuer: string; trustProxy: string[] }): (req: IncomingMessage) => void {
  const trust = proxyaddr.compile(trustProxy);
  const url = new URL(issuer);
  const protocol = url.protocol.slice(0, -1);
  return (req) => {
    const peerTrusted = trust(req.socket.remoteAddress ?? '', 0);
    const client = peerTrusted ? proxyaddr(req, trust) : (req.socket.remoteAddress ?? '');
    const certificate = peerTrusted ? { cert: req.headers['client-cert'], chain: req.headers['client-cert-chain'] } : {};
    for (const name of PROXY_HEADERS) delete req.headers[name];
    req.headers.host = url.host;
    req.headers['x-forwarded-host'] = url.host;
    req.headers['x-forwarded-proto'] = protocol;
    if (client) req.headers['x-forwarded-for'] = client;
    if (certificate.cert !== undefined) req.headers['client-cert'] = certificate.cert;
    if (certificate.chain !== undefined) req.headers['client-cert-chain'] = certificate.chain;
  };
}
