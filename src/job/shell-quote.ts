/**
 * Quote a value as one POSIX shell word. Values made only of characters that no shell treats
 * specially stay bare so rendered commands read naturally; everything else is single-quoted,
 * which makes spaces, quotes, newlines, `$()` and backticks plain data.
 */
export function shellQuote(value: string): string {
  if (value !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(value)) return value;
  return `'${value.replace(/'/g, `'\\''`)}'`;
}
