import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import express, { type Router } from 'express';
import { CONSOLE_POLICY } from './security-headers.js';
import { viewsRoot } from './views.js';

// The admin console: one HTML shell and its ES modules (views/console/), served as they are (no build
// step). The page signs in through Tally (the `console` client, admin/console-client.ts) and calls only
// the admin API; everything it shows is put in the DOM as text by its scripts.

export const CONSOLE_PATH = '/console';
const pathOf = (url: string) => url.split('?', 1)[0];
const consoleRoot = join(viewsRoot, 'console');

const escapeAttribute = (text: string) => text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** The shell, with the issuer the scripts build their URLs from (the redirect URI must match the registered one exactly). */
function shellFor(issuer: string): string {
  return readFileSync(join(consoleRoot, 'index.html'), 'utf8').replace('{{ISSUER}}', escapeAttribute(issuer));
}

export function createConsoleRouter(issuer: string): Router {
  const shell = shellFor(issuer);
  const router = express.Router();
  router.use(CONSOLE_PATH, (_req, res, next) => {
    res.setHeader('content-security-policy', CONSOLE_POLICY);
    next();
  });
  router.use(`${CONSOLE_PATH}/assets`, express.static(join(consoleRoot, 'assets'), { fallthrough: true, index: false, redirect: false, maxAge: 0 }));
  // The pages are chosen by the fragment (#/clients); the callback is the registered redirect URI.
  router.get([`${CONSOLE_PATH}/`, `${CONSOLE_PATH}/callback`], (req, res) => {
    // Express matches /console for /console/ too: the shell's relative URLs need the slash.
    if (pathOf(req.originalUrl) === CONSOLE_PATH) return res.redirect(301, 'console/');
    res.type('html').set('cache-control', 'no-store').send(shell);
  });
  return router;
}
