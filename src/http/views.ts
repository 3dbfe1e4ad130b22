import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ejs from 'ejs';
import type { Request, Response } from 'express';

export const viewsRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../views');

/** Renders views/<name>.ejs; templates are cached after the first render. */
export function renderPage(view: string, locals: Record<string, unknown>): Promise<string> {
  return ejs.renderFile(join(viewsRoot, `${view}.ejs`), { title: 'Tally', ...locals }, { cache: true, async: false }) as Promise<string>;
}

/** The pages' one stylesheet: their Content-Security-Policy allows no inline style. */
export const STYLESHEET_PATH = '/assets/tally.css';
const stylesheet = readFileSync(join(viewsRoot, 'assets/tally.css'));

export function serveStylesheet(_req: Request, res: Response): void {
  res.type('css').set('cache-control', 'public, max-age=3600').send(stylesheet);
}
