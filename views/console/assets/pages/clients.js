// Clients: list, create (token mode and the contract's metadata), edit, rotate the secret, delete.
import { api } from '../api.js';
import { append, action, checkbox, clear, confirmAction, field, formDialog, h, linesOf, notify, select, showSecretOnce, table } from '../dom.js';

const GRANT_TYPES = [
  ['authorization_code', 'Authorization code'],
  ['refresh_token', 'Refresh token'],
  ['client_credentials', 'Client credentials'],
  ['urn:ietf:params:oauth:grant-type:device_code', 'Device code'],
];
const AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'tls_client_auth', 'self_signed_tls_client_auth', 'none'];
const TOKEN_MODES = [
  ['', 'Server default (TOKEN_MODE)'],
  ['reference', 'reference'],
  ['jwt', 'jwt'],
  ['stateless', 'stateless'],
];
const hasSecret = (client) => ['client_secret_basic', 'client_secret_post', undefined].includes(client.token_endpoint_auth_method);

/** The form's fields, filled from `client` (editing) or empty (new). */
function clientForm(client = {}) {
  const text = (name, value, attrs = {}) => h('input', { type: 'text', name, value: value ?? '', ...attrs });
  const area = (name, list) => h('textarea', { name, rows: '2' }, (list ?? []).join('\n'));
  const grants = GRANT_TYPES.map(([value, label]) => checkbox(label, value, (client.grant_types ?? ['authorization_code']).includes(value)));
  const fields = {
    client_name: field('Name', text('client_name', client.client_name, { required: true })),
    redirect_uris: field('Redirect URIs', area('redirect_uris', client.redirect_uris), 'one per line'),
    post_logout_redirect_uris: field('Post-logout redirect URIs', area('post_logout_redirect_uris', client.post_logout_redirect_uris), 'one per line'),
    token_endpoint_auth_method: field(
      'Client authentication',
      select(
        'token_endpoint_auth_method',
        AUTH_METHODS.map((m) => [m, m]),
        client.token_endpoint_auth_method ?? 'client_secret_basic',
      ),
    ),
    scope: field('Scope', text('scope', client.scope ?? 'openid profile email'), 'space-separated scopes the client may be granted'),
    token_mode: field('Token mode', select('token_mode', TOKEN_MODES, client.token_mode ?? '')),
    introspection_audiences: field(
      'Introspection audiences',
      area('introspection_audiences', client.introspection_audiences),
      "audiences of other clients' tokens it may introspect, one per line",
    ),
    require_pkce: checkbox('Require PKCE', 'require_pkce', client.require_pkce ?? true),
    dpop_bound_access_tokens: checkbox('Require DPoP-bound tokens', 'dpop_bound_access_tokens', client.dpop_bound_access_tokens ?? false),
    require_mfa: checkbox('Require a second factor', 'require_mfa', client.require_mfa ?? false),
  };
  const grantSet = h('fieldset', {}, h('legend', {}, 'Grant types'), grants);
  const nodes = [fields.client_name, grantSet, ...Object.values(fields).slice(1)];
  const read = (editing) => {
    const value = (name) => fields[name].control.value.trim();
    const grantTypes = grants.filter((g) => g.control.checked).map((g) => g.control.name);
    const body = {
      client_name: value('client_name'),
      grant_types: grantTypes,
      response_types: grantTypes.includes('authorization_code') ? ['code'] : [],
      redirect_uris: linesOf(fields.redirect_uris.control.value),
      post_logout_redirect_uris: linesOf(fields.post_logout_redirect_uris.control.value),
      token_endpoint_auth_method: value('token_endpoint_auth_method'),
      introspection_audiences: linesOf(fields.introspection_audiences.control.value),
      require_pkce: fields.require_pkce.control.checked,
      dpop_bound_access_tokens: fields.dpop_bound_access_tokens.control.checked,
      require_mfa: fields.require_mfa.control.checked,
    };
    // An empty field: left out of a new client, removed (null) from an edited one.
    for (const name of ['scope', 'token_mode']) {
      if (value(name)) body[name] = value(name);
      else if (editing) body[name] = null;
    }
    return body;
  };
  return { nodes, read };
}

export default {
  title: 'Clients',
  async render(container) {
    const list = h('div', {});
    let cursor = null;

    const createClient = async () => {
      const form = clientForm();
      const created = await formDialog('New client', form.nodes, 'Create client', () => api('POST', '/clients', { body: form.read(false) }));
      if (!created) return;
      notify(`Client ${created.client_id} created.`);
      if (created.client_secret) await showSecretOnce(`Secret of ${created.client_name ?? created.client_id}`, created.client_secret);
      await load(true);
    };
    const editClient = async (client) => {
      const form = clientForm(client);
      const updated = await formDialog(`Edit ${client.client_name ?? client.client_id}`, form.nodes, 'Save', () =>
        api('PATCH', `/clients/${encodeURIComponent(client.client_id)}`, { body: form.read(true) }),
      );
      if (!updated) return;
      notify(`Client ${client.client_id} saved.`);
      if (updated.client_secret) await showSecretOnce(`New secret of ${updated.client_name ?? updated.client_id}`, updated.client_secret);
      await load(true);
    };
    const rotateSecret = async (client) => {
      const name = client.client_name ?? client.client_id;
      if (!(await confirmAction('Rotate the secret?', `${name}'s current secret stops working at once.`, 'Rotate secret'))) return;
      const { client_secret } = await api('POST', `/clients/${encodeURIComponent(client.client_id)}/secret`);
      notify(`The secret of ${client.client_id} was rotated.`);
      await showSecretOnce(`New secret of ${name}`, client_secret);
    };
    const deleteClient = async (client) => {
      const name = client.client_name ?? client.client_id;
      if (
        !(await confirmAction('Delete the client?', `${name} (${client.client_id}) is deleted and every token issued to it becomes inactive.`, 'Delete client'))
      )
        return;
      await api('DELETE', `/clients/${encodeURIComponent(client.client_id)}`);
      notify(`Client ${client.client_id} deleted.`);
      await load(true);
    };

    const actions = (client) =>
      client.client_id === 'console'
        ? h('span', { class: 'hint' }, 'kept by the server (this console)')
        : h(
            'div',
            { class: 'row-actions' },
            h('button', { type: 'button', class: 'small', onclick: action(() => editClient(client)), 'aria-label': `Edit ${client.client_id}` }, 'Edit'),
            hasSecret(client)
              ? h(
                  'button',
                  { type: 'button', class: 'small', onclick: action(() => rotateSecret(client)), 'aria-label': `Rotate secret of ${client.client_id}` },
                  'Rotate secret',
                )
              : null,
            h(
              'button',
              { type: 'button', class: 'small danger', onclick: action(() => deleteClient(client)), 'aria-label': `Delete ${client.client_id}` },
              'Delete',
            ),
          );
    const columns = [
      { label: 'Client ID', value: (c) => h('code', {}, c.client_id) },
      { label: 'Name', value: (c) => c.client_name ?? '' },
      { label: 'Token mode', value: (c) => c.token_mode ?? 'default' },
      { label: 'Authentication', value: (c) => c.token_endpoint_auth_method ?? 'client_secret_basic' },
      { label: 'Grant types', value: (c) => (c.grant_types ?? []).map((g) => g.replace('urn:ietf:params:oauth:grant-type:', '')).join(', ') },
      { label: 'Actions', value: actions },
    ];
    let rows = [];
    async function load(fresh) {
      if (fresh) {
        rows = [];
        cursor = null;
      }
      const page = await api('GET', '/clients', { params: { limit: 50, cursor } });
      rows = rows.concat(page.items);
      cursor = page.next_cursor;
      append(clear(list), [
        table('Clients', columns, rows),
        cursor ? h('button', { type: 'button', class: 'secondary', onclick: action(() => load(false)) }, 'Show more') : null,
      ]);
    }
    container.append(h('div', { class: 'toolbar' }, h('button', { type: 'button', onclick: action(createClient) }, 'New client')), list);
    await load(true);
  },
};
