import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ejs from 'ejs';
import type { Request, Response } from 'express';

export const viewsRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../views');

/**
 * Renders views/<name>.ejs; templates are cached after the first render. Views include their partials
 * by absolute paths under `root` (`include('/partials/head')`): ejs looks a relative include up on disk
 * (a stat) at every render, cached or not.
 */
export function renderPage(view: string, locals: Record<string, unknown>): Promise<string> {
  return ejs.renderFile(join(viewsRoot, `${view}.ejs`), { title: 'Tally', ...locals }, { cache: true, async: false, root: viewsRoot }) as Promise<string>;
}

/** The pages' one stylesheet: their Content-Security-Policy allows no inline style. */
export const STYLESHEET_PATH = '/assets/tally.css';
const stylesheet = readFileSync(join(viewsRoot, 'assets/tally.css'));

export function serveStylesheet(_req: Request, res: Response): void {
  res.type('css').set('cache-control', 'public, max-age=3600').send(stylesheet);
}

/**
 * The pages' scripts, static files (the CSP allows no inline script; the tags carry the page's nonce):
 * the passkey forms' code, and @simplewebauthn/browser's UMD bundle, served from Tally, never a CDN.
 */
const webauthnBundle = join(dirname(dirname(createRequire(import.meta.url).resolve('@simplewebauthn/browser'))), 'dist/bundle/index.umd.min.js');
export const SCRIPTS: ReadonlyMap<string, Buffer> = new Map([
  ['/assets/passkeys.js', readFileSync(join(viewsRoot, 'assets/passkeys.js'))],
  ['/assets/webauthn.js', readFileSync(webauthnBundle)],
]);

export function serveScript(req: Request, res: Response): void {
  res.type('js').set('cache-control', 'public, max-age=3600').send(SCRIPTS.get(req.path));
}
