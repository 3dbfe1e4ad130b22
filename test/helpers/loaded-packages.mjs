// Registered with `node --import` in a server under test: appends the name of every package the process
// resolves a module of to the file named by TALLY_TEST_LOADED_PACKAGES (test/startup-modules.test.ts).
import { register } from 'node:module';

register(
  `data:text/javascript,${encodeURIComponent(`
import { appendFileSync } from 'node:fs';
const file = ${JSON.stringify(process.env.TALLY_TEST_LOADED_PACKAGES)};
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  const name = /node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(resolved.url)?.[1];
  if (name) appendFileSync(file, name + '\\n');
  return resolved;
}`)}`,
);
