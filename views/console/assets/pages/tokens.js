// The ledger: search (subject, client, grant, status, type) with cursor paging, an entry's detail,
// revoke one, bulk-revoke after a confirmation that says how many tokens it touches.
import { api, isMissingRoute } from '../api.js';
import { append, action, clear, confirmAction, field, h, modal, notify, select, table, when } from '../dom.js';

const STATUSES = ['', 'valid', 'redeemed', 'revoked', 'inactive'];
const TYPES = ['', 'access_token', 'refresh_token', 'authorization_code', 'device_code'];
const text = (name) => h('input', { type: 'text', name, autocomplete: 'off' });

function showEntry(entry) {
  const rows = [
    ['ID', entry.id],
    ['Type', entry.type],
    ['Format', entry.format],
    ['Status', entry.status],
    ['Subject', entry.subject ?? '—'],
    ['Client', entry.client_id],
    ['Grant', entry.grant_id ?? '—'],
    ['Scope', entry.scope ?? '—'],
    ['Audience', entry.audience ?? '—'],
    ['Created', when(entry.created_at)],
    ['Expires', when(entry.expires_at)],
    ['Redeemed', when(entry.redeemed_at)],
    [
      'Bound to (cnf)',
      entry.cnf
        ? Object.entries(entry.cnf)
            .map(([k, v]) => `${k}: ${v}`)
            .join('; ')
        : 'not sender-constrained',
    ],
  ];
  return modal(`Ledger entry ${entry.id}`, (done) =>
    h(
      'div',
      {},
      h(
        'dl',
        { class: 'details' },
        rows.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]),
      ),
      h('div', { class: 'actions' }, h('button', { type: 'button', onclick: () => done() }, 'Close')),
    ),
  );
}

export default {
  title: 'Ledger',
  async render(container) {
    const filters = {
      subject: field('Subject', text('subject')),
      client_id: field('Client ID', text('client_id')),
      grant_id: field('Grant ID', text('grant_id')),
      status: field(
        'Status',
        select(
          'status',
          STATUSES.map((s) => [s, s || 'any']),
          '',
        ),
      ),
      type: field(
        'Type',
        select(
          'type',
          TYPES.map((t) => [t, t || 'any']),
          '',
        ),
      ),
    };
    const searchForm = h(
      'form',
      { class: 'filters', role: 'search', 'aria-label': 'Find tokens' },
      Object.values(filters),
      h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Find tokens')),
    );
    searchForm.addEventListener('submit', (event) => {
      event.preventDefault();
      void action(() => load(true))();
    });
    const list = h('div', {});
    let rows = [];
    let cursor = null;
    let query = {};

    const revokeOne = async (entry) => {
      if (
        !(await confirmAction(
          'Revoke this token?',
          `The ${entry.type.replace('_', ' ')} ${entry.id} of ${entry.client_id} becomes inactive at once.`,
          'Revoke token',
        ))
      )
        return;
      await api('POST', `/tokens/${encodeURIComponent(entry.id)}/revoke`);
      notify(`Token ${entry.id} revoked.`);
      await load(true);
    };
    const columns = [
      { label: 'Created', value: (e) => when(e.created_at) },
      { label: 'Type', value: (e) => e.type },
      { label: 'Format', value: (e) => e.format },
      { label: 'Status', value: (e) => h('span', { class: `badge ${e.status}` }, e.status) },
      { label: 'Subject', value: (e) => e.subject ?? '' },
      { label: 'Client', value: (e) => e.client_id },
      { label: 'Expires', value: (e) => when(e.expires_at) },
      {
        label: 'Actions',
        value: (e) =>
          h(
            'div',
            { class: 'row-actions' },
            h('button', { type: 'button', class: 'small', onclick: action(() => showEntry(e)), 'aria-label': `Details of ${e.id}` }, 'Details'),
            e.status === 'valid'
              ? h('button', { type: 'button', class: 'small danger', onclick: action(() => revokeOne(e)), 'aria-label': `Revoke ${e.id}` }, 'Revoke')
              : null,
          ),
      },
    ];
    async function load(fresh) {
      if (fresh) {
        rows = [];
        cursor = null;
        query = Object.fromEntries(Object.entries(filters).map(([name, f]) => [name, f.control.value.trim()]));
      }
      const page = await api('GET', '/tokens', { params: { ...query, limit: 50, cursor } });
      rows = rows.concat(page.items);
      cursor = page.next_cursor;
      append(clear(list), [
        table('Ledger entries', columns, rows),
        cursor ? h('button', { type: 'button', class: 'secondary', onclick: action(() => load(false)) }, 'Show more') : null,
      ]);
    }

    // Bulk revocation: the preview says how many entries it will make inactive before anything happens.
    const bulk = {
      subject: field('Subject', text('subject')),
      client_id: field('Client ID', text('client_id')),
      grant_id: field('Grant ID', text('grant_id')),
    };
    const bulkForm = h(
      'form',
      { class: 'filters', 'aria-labelledby': 'bulk-title' },
      Object.values(bulk),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'danger' }, 'Revoke matching tokens…')),
    );
    bulkForm.addEventListener('submit', (event) => {
      event.preventDefault();
      void action(async () => {
        const body = Object.fromEntries(
          Object.entries(bulk)
            .map(([name, f]) => [name, f.control.value.trim()])
            .filter(([, v]) => v),
        );
        if (!Object.keys(body).length) return notify('Give a subject, a client or a grant.', 'error');
        const what = Object.entries(body)
          .map(([k, v]) => `${k.replace('_id', '')} ${v}`)
          .join(' and ');
        let count;
        try {
          const preview = await api('GET', '/revocations/preview', { params: body });
          count = `This makes ${preview.matching} active ${preview.matching === 1 ? 'token' : 'tokens'} of ${what} inactive (stateless tokens, which have no ledger entry, are revoked too but cannot be counted).`;
        } catch (error) {
          if (!isMissingRoute(error)) throw error;
          count = `Every token of ${what} becomes inactive. (How many is not available: this server has no revocation preview.)`;
        }
        if (!(await confirmAction('Revoke these tokens?', count, 'Revoke tokens'))) return;
        const { revoked } = await api('POST', '/revocations', { body });
        notify(`${revoked} ${revoked === 1 ? 'token' : 'tokens'} revoked.`);
        await load(true);
      })();
    });

    container.append(
      h('section', { 'aria-labelledby': 'search-title' }, h('h2', { id: 'search-title' }, 'Find tokens'), searchForm, list),
      h(
        'section',
        { 'aria-labelledby': 'bulk-title' },
        h('h2', { id: 'bulk-title' }, 'Bulk revocation'),
        h('p', {}, 'Revoke every token matching all the fields given.'),
        bulkForm,
      ),
    );
    await load(true);
  },
};
