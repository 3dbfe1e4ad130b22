// The dashboard: access tokens issued and revoked per mode over the last hour (an SVG drawn here),
// and the revocations published in that hour; refreshed every 15 seconds while shown.
import { api, isMissingRoute } from '../api.js';
import { clear, h, table } from '../dom.js';
import { notAvailable } from './feed.js';

const MODES = [
  { mode: 'reference', color: '#1f5fbf', dash: '' },
  { mode: 'jwt', color: '#a34700', dash: '6 3' },
  { mode: 'stateless', color: '#1e6b2a', dash: '2 3' },
];
const SVG = 'http://www.w3.org/2000/svg';
const REFRESH_MS = 15_000;

function svg(tag, attrs = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) if (value !== '' && value !== undefined) element.setAttribute(name, String(value));
  for (const child of children) element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return element;
}

/** One line per mode over the buckets; `kind`: 'issued' or 'revoked'. */
function chart(stats, kind, title) {
  const width = 600;
  const height = 200;
  const pad = { left: 40, right: 10, top: 10, bottom: 24 };
  const buckets = stats.buckets;
  const max = Math.max(1, ...buckets.flatMap((b) => MODES.map(({ mode }) => b[kind][mode] ?? 0)));
  const x = (i) => pad.left + (buckets.length > 1 ? (i * (width - pad.left - pad.right)) / (buckets.length - 1) : 0);
  const y = (n) => height - pad.bottom - (n * (height - pad.top - pad.bottom)) / max;
  const titleId = `chart-${kind}`;
  const total = MODES.map(({ mode }) => `${mode} ${stats.totals[kind][mode] ?? 0}`).join(', ');
  const graphic = svg(
    'svg',
    { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-labelledby': titleId, class: 'chart' },
    svg('title', { id: titleId }, `${title}: ${total}`),
    svg('line', { x1: pad.left, y1: y(0), x2: width - pad.right, y2: y(0), stroke: '#5c6475' }),
    svg('text', { x: pad.left - 6, y: y(max) + 4, 'text-anchor': 'end', 'font-size': 11, fill: '#1d2330' }, max),
    svg('text', { x: pad.left - 6, y: y(0) + 4, 'text-anchor': 'end', 'font-size': 11, fill: '#1d2330' }, 0),
    svg('text', { x: pad.left, y: height - 6, 'font-size': 11, fill: '#1d2330' }, buckets[0] ? new Date(buckets[0].start).toLocaleTimeString() : ''),
    svg('text', { x: width - pad.right, y: height - 6, 'text-anchor': 'end', 'font-size': 11, fill: '#1d2330' }, 'now'),
    ...MODES.map(({ mode, color, dash }) =>
      svg('polyline', {
        points: buckets.map((b, i) => `${x(i)},${y(b[kind][mode] ?? 0)}`).join(' '),
        fill: 'none',
        stroke: color,
        'stroke-width': 2,
        'stroke-dasharray': dash,
      }),
    ),
  );
  const legend = h(
    'ul',
    { class: 'legend' },
    MODES.map(({ mode, color, dash }) =>
      h(
        'li',
        {},
        svg(
          'svg',
          { width: 24, height: 10, 'aria-hidden': 'true' },
          svg('line', { x1: 0, y1: 5, x2: 24, y2: 5, stroke: color, 'stroke-width': 3, 'stroke-dasharray': dash }),
        ),
        ` ${mode}: ${stats.totals[kind][mode] ?? 0}`,
      ),
    ),
  );
  return h('figure', { class: 'card' }, h('figcaption', {}, title), graphic, legend);
}

export default {
  title: 'Dashboard',
  async render(container, { signal }) {
    const content = h('div', {});
    container.append(content);
    const draw = async () => {
      let stats;
      try {
        stats = await api('GET', '/stats', { params: { window_seconds: 3600 } });
      } catch (error) {
        if (!isMissingRoute(error)) throw error;
        clear(content).append(notAvailable('Token statistics'));
        return false;
      }
      const minutes = Math.round(stats.window_seconds / 60);
      clear(content).append(
        h(
          'div',
          { class: 'tiles' },
          h(
            'div',
            { class: 'tile card' },
            h('span', { class: 'tile-label' }, 'Revocations in the last hour'),
            h('output', { class: 'tile-value', id: 'revocations-live' }, String(stats.revocations_live)),
          ),
          ...['issued', 'revoked'].map((kind) =>
            h(
              'div',
              { class: 'tile card' },
              h('span', { class: 'tile-label' }, `Access tokens ${kind}`),
              h('span', { class: 'tile-value' }, String(MODES.reduce((n, { mode }) => n + (stats.totals[kind][mode] ?? 0), 0))),
            ),
          ),
        ),
        h(
          'div',
          { class: 'charts' },
          chart(stats, 'issued', `Access tokens issued per mode, last ${minutes} minutes`),
          chart(stats, 'revoked', `Access tokens revoked per mode, last ${minutes} minutes`),
        ),
        table(
          'Totals per mode',
          [
            { label: 'Mode', value: (r) => r.mode },
            { label: 'Issued', value: (r) => String(stats.totals.issued[r.mode] ?? 0) },
            { label: 'Revoked', value: (r) => String(stats.totals.revoked[r.mode] ?? 0) },
          ],
          MODES,
        ),
        h(
          'p',
          { class: 'hint' },
          `Stateless tokens are counted ${stats.stateless_counted === 'shared' ? 'across every replica (Redis)' : 'by this server process only'}. Updated every 15 seconds.`,
        ),
      );
      return true;
    };
    if (!(await draw())) return;
    const timer = setInterval(() => void draw().catch(() => undefined), REFRESH_MS);
    signal.addEventListener('abort', () => clearInterval(timer));
  },
};
