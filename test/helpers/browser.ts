/** A tiny cookie-keeping HTTP agent that fills in and submits server-rendered forms. */
export interface Form {
  action: string;
  method: string;
  fields: Record<string, string>;
}

const decode = (s: string) => s.replace(/&#34;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

/** Every <form> on the page with its inputs (named inputs and the hidden ones). */
export function parseForms(html: string, pageUrl: string): Form[] {
  return [...html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)].map(([, attrs, body]) => {
    const attr = (source: string, name: string) => decode(new RegExp(`\\b${name}\\s*=\\s*"([^"]*)"`, 'i').exec(source)?.[1] ?? '');
    const fields: Record<string, string> = {};
    for (const [input] of body!.matchAll(/<(?:input|button)\b[^>]*>/gi)) {
      const name = attr(input, 'name');
      if (name && !/<button/i.test(input)) fields[name] = attr(input, 'value');
    }
    return { action: new URL(attr(attrs!, 'action') || pageUrl, pageUrl).href, method: (attr(attrs!, 'method') || 'get').toLowerCase(), fields };
  });
}

export class Browser {
  readonly cookies = new Map<string, string>();

  /** `fetcher`: another fetch (one presenting a TLS client certificate, say). */
  constructor(private readonly fetcher: typeof fetch = fetch) {}

  private store(response: Response) {
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      if (/expires=Thu, 01 Jan 1970/i.test(line) || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  async request(url: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.cookies.size) headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    const response = await this.fetcher(url, { ...init, headers, redirect: 'manual' });
    this.store(response);
    return response;
  }

  /** Follows redirects until a page is shown or a URL under `stopAt` is reached. */
  async navigate(url: string, init: RequestInit = {}, stopAt?: string): Promise<{ url: string; response: Response; html: string }> {
    let current = url;
    let response = await this.request(current, init);
    for (let hops = 0; response.status >= 300 && response.status < 400; hops++) {
      if (hops > 10) throw new Error('too many redirects');
      current = new URL(response.headers.get('location')!, current).href;
      if (stopAt && current.startsWith(stopAt)) return { url: current, response, html: '' };
      response = await this.request(current);
    }
    return { url: current, response, html: await response.text() };
  }

  submit(form: Form, values: Record<string, string> = {}, stopAt?: string) {
    const body = new URLSearchParams({ ...form.fields, ...values });
    return this.navigate(form.action, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } }, stopAt);
  }
}
