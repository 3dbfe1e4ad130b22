// DOM helpers: every piece of data goes in as text (textContent, attributes), never as HTML.

/** h('button', { class: 'x', onclick: fn }, 'Label', child) */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') element.addEventListener(name.slice(2), value);
    else if (name === 'value') element.value = value;
    else if (name === 'checked') element.checked = Boolean(value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  append(element, children);
  return element;
}

export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

export const clear = (element) => {
  element.replaceChildren();
  return element;
};

let fieldIds = 0;
/** A labelled input (or select/textarea given as `control`); returns the wrapper, the control as .control. */
export function field(label, control, hint) {
  const id = control.id || `f${++fieldIds}`;
  control.id = id;
  const hintNode = hint ? h('span', { class: 'hint', id: `${id}-hint` }, hint) : null;
  if (hintNode) control.setAttribute('aria-describedby', hintNode.id);
  const wrapper = h('div', { class: 'field' }, h('label', { for: id }, label), control, hintNode);
  wrapper.control = control;
  return wrapper;
}

export function checkbox(label, name, checked) {
  const input = h('input', { type: 'checkbox', name, checked });
  const id = `f${++fieldIds}`;
  input.id = id;
  const wrapper = h('div', { class: 'check' }, input, h('label', { for: id }, label));
  wrapper.control = input;
  return wrapper;
}

export function select(name, options, selected) {
  return h(
    'select',
    { name },
    options.map(([value, label]) => h('option', { value, selected: value === selected ? true : undefined }, label)),
  );
}

/** A table in a scrollable, focusable region; `columns`: [{ label, value(row) → text or Node }]. */
export function table(caption, columns, rows) {
  const body = rows.length
    ? rows.map((row) =>
        h(
          'tr',
          {},
          columns.map((c) => h('td', { 'data-label': c.label }, c.value(row) ?? '')),
        ),
      )
    : [h('tr', {}, h('td', { colspan: columns.length }, 'Nothing to show.'))];
  return h(
    'div',
    { class: 'table-wrap', role: 'region', 'aria-label': caption, tabindex: '0' },
    h(
      'table',
      {},
      h('caption', { class: 'visually-hidden' }, caption),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          columns.map((c) => h('th', { scope: 'col' }, c.label)),
        ),
      ),
      h('tbody', {}, body),
    ),
  );
}

export const when = (iso) => (iso ? new Date(iso).toLocaleString() : '—');

/** A message in the page's live region (role=status), or an alert for an error. */
export function notify(text, kind = 'info') {
  const region = document.getElementById(kind === 'error' ? 'alerts' : 'status');
  if (!region) return;
  region.textContent = '';
  // A new text node each time, so that screen readers announce a repeated message too.
  setTimeout(() => (region.textContent = text), 10);
}

export function errorText(error) {
  const problem = error?.problem;
  if (problem) return `${problem.title ?? 'Error'} (${error.status}): ${problem.detail ?? problem.code ?? ''}`;
  return String(error?.message ?? error);
}

/** A modal <dialog> (the browser keeps focus inside and Escape closes it); resolves with what `done` is given. */
export function modal(title, build) {
  return new Promise((resolve) => {
    const titleId = `d${++fieldIds}`;
    const dialog = h('dialog', { 'aria-labelledby': titleId });
    let result;
    const done = (value) => {
      result = value;
      dialog.close();
    };
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve(result);
    });
    append(dialog, [h('h2', { id: titleId }, title), build(done)]);
    document.body.append(dialog);
    dialog.showModal();
  });
}

/** Asks before a destructive action; resolves true when confirmed. */
export function confirmAction(title, message, confirmLabel) {
  return modal(title, (done) =>
    h(
      'div',
      {},
      h('p', {}, message),
      h(
        'div',
        { class: 'actions' },
        h('button', { type: 'button', class: 'danger', onclick: () => done(true) }, confirmLabel),
        h('button', { type: 'button', class: 'secondary', onclick: () => done(false), autofocus: true }, 'Cancel'),
      ),
    ),
  ).then(Boolean);
}

/** Shows a secret once: it is in this dialog only, and gone from the page when the dialog closes. */
export function showSecretOnce(title, secret) {
  return modal(title, (done) => {
    const input = h('input', { type: 'text', readonly: true, value: secret, class: 'secret', 'aria-label': 'Client secret' });
    const copied = h('span', { role: 'status', class: 'hint' });
    const copy = async () => {
      input.select();
      try {
        await navigator.clipboard.writeText(secret);
        copied.textContent = 'Copied.';
      } catch {
        copied.textContent = 'Selected: press Ctrl+C (⌘C) to copy.';
      }
    };
    return h(
      'div',
      {},
      h('p', {}, 'This secret is shown this once: copy it now. Tally keeps only a hash of it.'),
      input,
      h(
        'div',
        { class: 'actions' },
        h('button', { type: 'button', onclick: copy }, 'Copy'),
        h('button', { type: 'button', class: 'secondary', onclick: () => done() }, 'Done'),
        copied,
      ),
    );
  });
}

/** A form in a dialog: `fields` are field() nodes; resolves with the FormData-like values from `read`, or undefined. */
export function formDialog(title, fields, submitLabel, read) {
  return modal(title, (done) => {
    const error = h('p', { role: 'alert', class: 'error' });
    const form = h(
      'form',
      { class: 'stack' },
      fields,
      error,
      h(
        'div',
        { class: 'actions' },
        h('button', { type: 'submit' }, submitLabel),
        h('button', { type: 'button', class: 'secondary', onclick: () => done() }, 'Cancel'),
      ),
    );
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      try {
        done(await read());
      } catch (e) {
        error.textContent = errorText(e);
      }
    });
    return form;
  });
}

/** Lines of a textarea as a list (blank lines dropped). */
export const linesOf = (text) =>
  text
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);

/** A click handler whose failure is shown (role=alert), not lost; a refusal (403) goes on to the shell. */
export const action = (fn) => async (event) => {
  try {
    await fn(event);
  } catch (error) {
    if (error?.status === 403) throw error;
    notify(errorText(error), 'error');
  }
};
