import { createHash } from 'node:crypto';

/** SHA-256, base64url: the kits' one digest (cache keys, jti hashes, DPoP `ath`, RFC 7638 and RFC 8705 thumbprints). */
export const sha256 = (data: string | Uint8Array): string => createHash('sha256').update(data).digest('base64url');
