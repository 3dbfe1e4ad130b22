import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ejs from 'ejs';

export const viewsRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../views');

/** Renders views/<name>.ejs; templates are cached after the first render. */
export function renderPage(view: string, locals: Record<string, unknown>): Promise<string> {
  return ejs.renderFile(join(viewsRoot, `${view}.ejs`), { title: 'Tally', ...locals }, { cache: true, async: false }) as Promise<string>;
}
