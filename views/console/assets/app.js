// The console's shell: sign-in state, navigation between pages (#/name), sign-out.
import { completeSignIn, currentSession, hasAdminScope, signIn, signOut, storedSession } from './auth.js';
import { NotAdmin } from './api.js';
import { clear, errorText, h } from './dom.js';
import dashboard from './pages/dashboard.js';
import clients from './pages/clients.js';
import users from './pages/users.js';
import tokens from './pages/tokens.js';
import feed from './pages/feed.js';
import audit from './pages/audit.js';
import keys from './pages/keys.js';

const PAGES = { '': dashboard, clients, users, tokens, feed, audit, keys };
const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');
let leavePage = () => {};

const pageName = () => location.hash.replace(/^#\/?/, '').split('?')[0];

function renderNav(active) {
  clear(nav);
  const list = h('ul', {});
  for (const [name, page] of Object.entries(PAGES)) {
    list.append(h('li', {}, h('a', { href: `#/${name}`, 'aria-current': name === active ? 'page' : undefined }, page.title)));
  }
  nav.append(list);
  clear(who).append(h('button', { type: 'button', class: 'secondary', onclick: () => signOut() }, 'Sign out'));
}

/** A page of its own: the landing (signed out), a refusal, a failed sign-in. */
function standalone(title, ...body) {
  leavePage();
  clear(nav);
  clear(who);
  document.title = `${title} · Tally console`;
  clear(main).append(h('section', { class: 'card narrow' }, h('h1', {}, title), ...body));
  main.focus();
}

function showLanding() {
  standalone(
    'Tally console',
    h('p', {}, 'Sign in with an administrator account of this server.'),
    h('button', { type: 'button', onclick: () => signIn() }, 'Sign in'),
  );
}

export function showRefusal() {
  standalone(
    'Not an administrator',
    h('p', { role: 'alert' }, 'You are signed in, but your account does not have the role admin, so the console cannot act for you.'),
    h('p', {}, 'Ask an administrator for the role, or sign out and sign in with another account.'),
    h('button', { type: 'button', onclick: () => signOut() }, 'Sign out'),
  );
}

async function showPage() {
  const session = currentSession();
  if (!session) {
    // Expired while in use: sign in again, back to this page. Never signed in: the landing page.
    if (storedSession()) return signIn();
    return showLanding();
  }
  if (!hasAdminScope(session)) return showRefusal();
  leavePage();
  for (const open of document.querySelectorAll('dialog[open]')) open.close();
  const name = Object.hasOwn(PAGES, pageName()) ? pageName() : '';
  const page = PAGES[name];
  renderNav(name);
  document.title = `${page.title} · Tally console`;
  const heading = h('h1', { tabindex: '-1' }, page.title);
  const body = h('div', {});
  clear(main).append(heading, h('div', { id: 'status', role: 'status', class: 'status' }), h('div', { id: 'alerts', role: 'alert', class: 'error' }), body);
  heading.focus();
  const controller = new AbortController();
  leavePage = () => controller.abort();
  try {
    await page.render(body, { signal: controller.signal });
  } catch (error) {
    if (error instanceof NotAdmin) return showRefusal();
    if (!controller.signal.aborted) body.append(h('p', { role: 'alert', class: 'error' }, errorText(error)));
  }
}

// A refusal from any later call (the role removed meanwhile) shows the refusal page too.
window.addEventListener('unhandledrejection', (event) => {
  if (event.reason instanceof NotAdmin) showRefusal();
});

async function start() {
  if (location.pathname.endsWith('/console/callback')) {
    try {
      const session = await completeSignIn();
      if (!hasAdminScope(session)) return showRefusal();
    } catch (error) {
      if (error.code === 'access_denied') return showRefusal();
      return standalone(
        'Sign-in failed',
        h('p', { role: 'alert' }, errorText(error)),
        h('button', { type: 'button', onclick: () => signIn('') }, 'Sign in again'),
      );
    }
  }
  window.addEventListener('hashchange', () => void showPage());
  await showPage();
}

void start();
