// Users: search, create, edit (email, name, roles, password), disable, unlock, reset second factors.
import { api } from '../api.js';
import { append, action, clear, confirmAction, field, formDialog, h, notify, table, when } from '../dom.js';

const rolesOf = (text) => [...new Set(text.split(/[\s,]+/).filter(Boolean))];

function userForm(user) {
  const text = (name, value, attrs = {}) => h('input', { type: 'text', name, value: value ?? '', ...attrs });
  const fields = {
    ...(user ? {} : { username: field('Username', text('username', '', { required: true, autocomplete: 'off' })) }),
    password: field(
      user ? 'New password' : 'Password',
      h('input', { type: 'password', name: 'password', autocomplete: 'new-password', required: !user }),
      user ? 'leave empty to keep it' : undefined,
    ),
    email: field('Email', h('input', { type: 'email', name: 'email', value: user?.email ?? '' })),
    name: field('Name', text('name', user?.name)),
    roles: field('Roles', text('roles', (user?.roles ?? []).join(' ')), 'space-separated; admin opens this console and the admin API'),
  };
  const read = () => {
    const value = (name) => fields[name].control.value.trim();
    const body = { roles: rolesOf(value('roles')) };
    if (!user) body.username = value('username');
    if (fields.password.control.value) body.password = fields.password.control.value;
    for (const name of ['email', 'name']) {
      if (value(name)) body[name] = value(name);
      else if (user) body[name] = null;
    }
    return body;
  };
  return { nodes: Object.values(fields), read };
}

export default {
  title: 'Users',
  async render(container) {
    const list = h('div', {});
    const search = h('input', { type: 'search', name: 'q', autocomplete: 'off' });
    const searchForm = h(
      'form',
      { class: 'toolbar', role: 'search' },
      field('Find users', search, 'part of a username, email or name'),
      h('button', { type: 'submit' }, 'Search'),
    );
    searchForm.addEventListener('submit', (event) => {
      event.preventDefault();
      void action(() => load(true))();
    });
    let rows = [];
    let cursor = null;

    const createUser = async () => {
      const form = userForm();
      const created = await formDialog('New user', form.nodes, 'Create user', () => api('POST', '/users', { body: form.read() }));
      if (!created) return;
      notify(`User ${created.username} created.`);
      await load(true);
    };
    const editUser = async (user) => {
      const form = userForm(user);
      const saved = await formDialog(`Edit ${user.username}`, form.nodes, 'Save', () =>
        api('PATCH', `/users/${encodeURIComponent(user.id)}`, { body: form.read() }),
      );
      if (!saved) return;
      notify(`User ${user.username} saved.`);
      await load(true);
    };
    const setDisabled = async (user, disabled) => {
      if (
        disabled &&
        !(await confirmAction('Disable the user?', `${user.username} cannot sign in any more, and every token of theirs becomes inactive.`, 'Disable user'))
      )
        return;
      await api('PATCH', `/users/${encodeURIComponent(user.id)}`, { body: { disabled } });
      notify(`User ${user.username} ${disabled ? 'disabled' : 'enabled'}.`);
      await load(true);
    };
    const unlock = async (user) => {
      await api('POST', `/users/${encodeURIComponent(user.id)}/unlock`);
      notify(`${user.username}'s failed sign-ins are cleared.`);
    };
    const resetFactors = async (user) => {
      if (
        !(await confirmAction(
          'Reset second factors?',
          `${user.username}'s authenticators, passkeys and recovery codes are removed (a lost device).`,
          'Reset factors',
        ))
      )
        return;
      await api('DELETE', `/users/${encodeURIComponent(user.id)}/factors`);
      notify(`${user.username}'s second factors are reset.`);
    };
    const deleteUser = async (user) => {
      if (!(await confirmAction('Delete the user?', `${user.username} is deleted and every token of theirs becomes inactive.`, 'Delete user'))) return;
      await api('DELETE', `/users/${encodeURIComponent(user.id)}`);
      notify(`User ${user.username} deleted.`);
      await load(true);
    };

    const button = (label, fn, user, cls = 'small') =>
      h('button', { type: 'button', class: cls, onclick: action(() => fn(user)), 'aria-label': `${label}: ${user.username}` }, label);
    const columns = [
      { label: 'Username', value: (u) => u.username },
      { label: 'Email', value: (u) => u.email ?? '' },
      { label: 'Name', value: (u) => u.name ?? '' },
      { label: 'Roles', value: (u) => u.roles.join(', ') },
      { label: 'State', value: (u) => (u.disabled ? 'disabled' : 'enabled') },
      { label: 'Subject (id)', value: (u) => h('code', {}, u.id) },
      { label: 'Created', value: (u) => when(u.created_at) },
      {
        label: 'Actions',
        value: (u) =>
          h(
            'div',
            { class: 'row-actions' },
            button('Edit', editUser, u),
            u.disabled ? button('Enable', (x) => setDisabled(x, false), u) : button('Disable', (x) => setDisabled(x, true), u),
            button('Unlock', unlock, u),
            button('Reset factors', resetFactors, u),
            button('Delete', deleteUser, u, 'small danger'),
          ),
      },
    ];
    async function load(fresh) {
      if (fresh) {
        rows = [];
        cursor = null;
      }
      const page = await api('GET', '/users', { params: { q: search.value.trim(), limit: 50, cursor } });
      rows = rows.concat(page.items);
      cursor = page.next_cursor;
      append(clear(list), [
        table('Users', columns, rows),
        cursor ? h('button', { type: 'button', class: 'secondary', onclick: action(() => load(false)) }, 'Show more') : null,
      ]);
    }
    container.append(searchForm, h('div', { class: 'toolbar' }, h('button', { type: 'button', onclick: action(createUser) }, 'New user')), list);
    await load(true);
  },
};
