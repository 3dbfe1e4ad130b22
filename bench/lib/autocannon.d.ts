// autocannon ships no type declarations; the benchmark uses its programmatic API loosely typed.
declare module 'autocannon' {
  function autocannon(options: Record<string, unknown>): Promise<Record<string, unknown>>;
  export default autocannon;
}
