import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface ProfileSummary {
  /** Sampled CPU time that was not idle (ms). */
  busyMs: number;
  totalMs: number;
  /** Self time by package / area, most first: [name, share of busy time]. */
  byArea: [string, number][];
  /** Self time by function, most first. */
  byFunction: [string, number][];
  /** Inclusive time of selected markers (functions whose stack contains them), share of busy time. */
  inclusive: [string, number][];
}

/** Where a frame's code lives: an npm package, a Tally source file, Node internals, or V8's own buckets. */
function areaOf(url: string, functionName: string): string {
  if (!url) {
    if (functionName.startsWith('(')) return functionName; // (garbage collector), (program), (idle)
    return '(native)';
  }
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  const tally = /\/dist\/(.+)\.js$/.exec(url);
  if (tally) return `tally:${tally[1]}`;
  if (url.startsWith('node:')) return url.replace(/^node:internal\//, 'node:').replace(/\/.*$/, '');
  return url.replace(/^file:\/\//, '');
}

/**
 * Summarises a V8 .cpuprofile: self time per area and per function, and inclusive time of stacks
 * passing through a few functions of interest (`markers`: substrings of "area function").
 */
export function summariseProfile(file: string, markers: string[] = [], window?: { fromEndMs: number; toEndMs: number }): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  // Only the samples taken in the window (ms before the end of the profile), when one is given.
  if (window && profile.samples && profile.timeDeltas) {
    for (const node of profile.nodes) node.hitCount = 0;
    const from = profile.endTime - window.fromEndMs * 1000;
    const to = profile.endTime - window.toEndMs * 1000;
    let t = profile.startTime;
    profile.samples.forEach((id, i) => {
      t += profile.timeDeltas![i]!;
      if (t >= from && t <= to) byId.get(id)!.hitCount! += 1;
    });
  }
  const totalHits = profile.nodes.reduce((s, n) => s + (n.hitCount ?? 0), 0) || 1;
  const spanUs = window ? (window.fromEndMs - window.toEndMs) * 1000 : profile.endTime - profile.startTime;
  const msPerHit = spanUs / 1000 / totalHits;

  const area = new Map<string, number>();
  const fn = new Map<string, number>();
  const inclusive = new Map<string, number>(markers.map((m) => [m, 0]));
  let idle = 0;
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0;
    if (!hits) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') {
      idle += hits;
      continue;
    }
    const where = areaOf(url, functionName);
    area.set(where, (area.get(where) ?? 0) + hits);
    const name = `${functionName || '(anonymous)'} ${where}${url ? `:${lineNumber + 1}` : ''}`;
    fn.set(name, (fn.get(name) ?? 0) + hits);
    if (markers.length) {
      const seen = new Set<string>();
      for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
        const frame = byId.get(id)!.callFrame;
        const label = `${areaOf(frame.url, frame.functionName)} ${frame.functionName}`;
        for (const marker of markers) if (!seen.has(marker) && label.includes(marker)) seen.add(marker);
      }
      for (const marker of seen) inclusive.set(marker, inclusive.get(marker)! + hits);
    }
  }
  const busy = totalHits - idle || 1;
  const share = (m: Map<string, number>) => [...m].map(([k, v]) => [k, v / busy] as [string, number]).sort((a, b) => b[1] - a[1]);
  return { busyMs: busy * msPerHit, totalMs: totalHits * msPerHit, byArea: share(area), byFunction: share(fn), inclusive: share(inclusive) };
}
