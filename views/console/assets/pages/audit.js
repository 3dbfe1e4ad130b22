// The audit trail: admin writes and refused attempts, newest first, with their source IPs.
import { api } from '../api.js';
import { append, action, clear, h, table, when } from '../dom.js';

export default {
  title: 'Audit trail',
  async render(container) {
    const list = h('div', {});
    let rows = [];
    let cursor = null;
    const columns = [
      { label: 'When', value: (e) => when(e.created_at) },
      { label: 'Who', value: (e) => (e.actor ? `${e.actor.id} (${e.actor.kind === 'api_key' ? 'API key' : 'token'})` : 'not authenticated') },
      { label: 'Action', value: (e) => e.action ?? `${e.method} ${e.route ?? '(no route)'}` },
      { label: 'Target', value: (e) => e.target_id ?? e.created_id ?? '' },
      { label: 'Outcome', value: (e) => String(e.status) },
      { label: 'Source IP', value: (e) => e.source_ip ?? '' },
      { label: 'Count', value: (e) => String(e.count) },
    ];
    async function load() {
      const page = await api('GET', '/audit', { params: { limit: 50, cursor } });
      rows = rows.concat(page.items);
      cursor = page.next_cursor;
      append(clear(list), [
        table('Audit events', columns, rows),
        cursor ? h('button', { type: 'button', class: 'secondary', onclick: action(load) }, 'Show more') : null,
      ]);
    }
    container.append(list);
    await load();
  },
};
