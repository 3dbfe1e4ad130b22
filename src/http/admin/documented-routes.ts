import type { OpenApiDocument } from './openapi-types.js';

export interface DocumentedRoute {
  method: string;
  /** Express form: `/clients/:id`. */
  route: string;
  operationId: string;
  match: (path: string) => Record<string, string> | undefined;
}

/**
 * Every operation of a document, with a matcher that mirrors Express routing (case-insensitive,
 * optional trailing slash): the audit trail names a write by the operation it matched.
 */
export function documentedRoutes(document: OpenApiDocument): DocumentedRoute[] {
  return Object.entries(document.paths).flatMap(([path, item]) => {
    const names: string[] = [];
    const source = path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{(\w+)\}/g, (_, name: string) => {
      names.push(name);
      return '([^/]+)';
    });
    const regex = new RegExp(`^${source}/?$`, 'i');
    const match = (candidate: string) => {
      const found = regex.exec(candidate);
      if (!found) return undefined;
      return Object.fromEntries(
        names.map((name, i) => {
          const raw = found[i + 1]!;
          try {
            return [name, decodeURIComponent(raw)];
          } catch {
            return [name, raw];
          }
        }),
      );
    };
    return Object.entries(item).map(([method, operation]) => ({
      method: method.toUpperCase(),
      route: path.replace(/\{(\w+)\}/g, ':$1'),
      operationId: operation.operationId,
      match,
    }));
  });
}
