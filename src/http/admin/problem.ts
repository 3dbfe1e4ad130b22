import type { Response } from 'express';

/** An RFC 9457 problem with a stable `code`; `field` names the offending input where there is one. */
export class Problem extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly title: string,
    readonly detail: string,
    readonly field?: string,
  ) {
    super(detail);
  }
}

export const notFound = (what: string, id: string) => new Problem(404, 'not_found', 'Not found', `no ${what} with id ${id}`);
export const invalidField = (field: string, detail: string) => new Problem(400, 'invalid_request', 'Invalid request', `${field}: ${detail}`, field);

/** The RFC 9457 document of a problem. */
export function problemBody(problem: Problem): Record<string, unknown> {
  return {
    type: `urn:tally:problem:${problem.code}`,
    title: problem.title,
    status: problem.status,
    detail: problem.detail,
    code: problem.code,
    ...(problem.field ? { field: problem.field } : {}),
  };
}

export function sendProblem(res: Response, problem: Problem) {
  res.status(problem.status).type('application/problem+json').set('cache-control', 'no-store').send(JSON.stringify(problemBody(problem)));
}
