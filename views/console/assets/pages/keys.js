// Signing keys: status (active, published, retired), dates, rotation.
import { api, isMissingRoute } from '../api.js';
import { append, action, clear, confirmAction, h, notify, table, when } from '../dom.js';
import { notAvailable } from './feed.js';

export default {
  title: 'Signing keys',
  async render(container) {
    const list = h('div', {});
    const columns = [
      { label: 'Key ID', value: (k) => h('code', {}, k.kid) },
      { label: 'Algorithm', value: (k) => k.alg },
      { label: 'Status', value: (k) => h('span', { class: `badge ${k.status}` }, k.status) },
      { label: 'Created', value: (k) => when(k.created_at) },
      { label: 'Retires', value: (k) => (k.retires_at ? when(k.retires_at) : '—') },
    ];
    async function load() {
      let page;
      try {
        page = await api('GET', '/keys');
      } catch (error) {
        if (!isMissingRoute(error)) throw error;
        container.replaceChildren(notAvailable('The list of signing keys'));
        return;
      }
      append(clear(list), [table('Signing keys', columns, page.items)]);
    }
    const rotate = async () => {
      const message =
        'A new key is added for each algorithm; tokens go on being signed with the current keys until the new ones are active, and the old keys stay published until their tokens expire.';
      if (!(await confirmAction('Rotate the signing keys?', message, 'Rotate keys'))) return;
      const answer = await api('POST', '/keys/rotate', { body: {} });
      notify(`New keys: ${answer.keys.map((k) => `${k.kid} (${k.alg})`).join(', ')}.`);
      await load();
    };
    container.append(h('div', { class: 'toolbar' }, h('button', { type: 'button', onclick: action(rotate) }, 'Rotate keys')), list);
    await load();
  },
};
