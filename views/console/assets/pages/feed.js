// The live revocation feed: the admin revocation stream, read with fetch (it needs the bearer token,
// which EventSource cannot send), resumed from the last event id after a drop.
import { isMissingRoute, openStream, readEvents } from '../api.js';
import { h, when } from '../dom.js';

export function describeRevocation(event) {
  if (event.type === 'token') return `one token (jti hash ${String(event.jti_hash ?? '').slice(0, 12)}…)`;
  const parts = [];
  if (event.subject) parts.push(`subject ${event.subject}`);
  if (event.client_id) parts.push(`client ${event.client_id}`);
  if (event.grant_id) parts.push(`grant ${event.grant_id}`);
  return `every token of ${parts.join(' and ') || 'a scope'}`;
}

export function notAvailable(what) {
  return h('p', { class: 'notice' }, `${what} is not available: this server's admin API does not offer it (an older version).`);
}

export default {
  title: 'Revocation feed',
  async render(container, { signal }) {
    const count = h('span', {}, '0');
    const state = h('span', {}, 'connecting…');
    const log = h('ol', { class: 'feed' });
    // The live region around the list (a role on the <ol> itself would take its list semantics away).
    container.append(h('p', {}, 'Revocations received: ', count, ' · ', state), h('div', { role: 'log', 'aria-label': 'Revocations, newest first' }, log));
    let received = 0;
    let lastEventId;
    while (!signal.aborted) {
      try {
        const response = await openStream('/revocations/stream', { signal, lastEventId });
        state.textContent = 'live';
        await readEvents(response, (message) => {
          if (message.event !== 'revocation') return;
          lastEventId = message.id ?? lastEventId;
          const parsed = JSON.parse(message.data);
          const event = parsed.event ?? parsed;
          received += 1;
          count.textContent = String(received);
          log.prepend(
            h(
              'li',
              {},
              h('time', { datetime: event.revoked_at ?? '' }, when(event.revoked_at)),
              ' — ',
              describeRevocation(event),
              h('span', { class: 'hint' }, ` (event ${message.id ?? '?'})`),
            ),
          );
        });
      } catch (error) {
        if (signal.aborted) return;
        if (isMissingRoute(error)) {
          container.replaceChildren(notAvailable('The live revocation feed'));
          return;
        }
        if (error?.status === 403) throw error;
      }
      if (signal.aborted) return;
      state.textContent = 'reconnecting…';
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  },
};
