import http from 'node:http';

/** A keep-alive HTTP/1.1 client with little overhead, for the custom (non-autocannon) loops. */
const agent = new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 256 });

export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export function request(url: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<HttpAnswer> {
  return new Promise((done, fail) => {
    const body = init.body === undefined ? undefined : Buffer.from(init.body);
    const req = http.request(
      url,
      {
        agent,
        method: init.method ?? (body ? 'POST' : 'GET'),
        headers: { ...(init.headers ?? {}), ...(body ? { 'content-length': String(body.length) } : {}) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => done({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', fail);
      },
    );
    req.on('error', fail);
    req.end(body);
  });
}

export function basic(id: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

export const FORM = 'application/x-www-form-urlencoded';

/** POST a form; throws unless the answer is 2xx; returns the parsed JSON body. */
export async function postForm<T = Record<string, unknown>>(url: string, form: Record<string, string>, authorization?: string): Promise<T> {
  const answer = await request(url, {
    method: 'POST',
    headers: { 'content-type': FORM, accept: 'application/json', ...(authorization ? { authorization } : {}) },
    body: new URLSearchParams(form).toString(),
  });
  if (answer.status < 200 || answer.status >= 300) throw new Error(`POST ${new URL(url).pathname} answered ${answer.status}: ${answer.body.slice(0, 300)}`);
  return (answer.body ? JSON.parse(answer.body) : {}) as T;
}

export function closeAgent() {
  agent.destroy();
}
