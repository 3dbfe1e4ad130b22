/**
 * Finds the first key that appears twice in one JSON object (JSON.parse would silently keep the
 * last). Assumes `text` is valid JSON; returns the dotted path of the duplicate.
 */
export function findDuplicateKey(text: string): string | undefined {
  const stack: { keys: Set<string>; path: string; isObject: boolean }[] = [];
  let i = 0;
  let lastString = '';
  while (i < text.length) {
    const ch = text[i]!;
    if (ch === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      lastString = JSON.parse(text.slice(i, j + 1)) as string;
      i = j + 1;
      // A string followed by ':' is a key of the innermost object.
      let k = i;
      while (/\s/.test(text[k] ?? '')) k++;
      const top = stack.at(-1);
      if (text[k] === ':' && top?.isObject) {
        if (top.keys.has(lastString)) return top.path ? `${top.path}.${lastString}` : lastString;
        top.keys.add(lastString);
      }
      continue;
    }
    if (ch === '{' || ch === '[') {
      const parent = stack.at(-1);
      const path = parent?.isObject ? (parent.path ? `${parent.path}.${lastString}` : lastString) : (parent?.path ?? '');
      stack.push({ keys: new Set(), path, isObject: ch === '{' });
    } else if (ch === '}' || ch === ']') {
      stack.pop();
    }
    i++;
  }
  return undefined;
}
