import { UserError } from '../errors.js';

/**
 * Check `--set key=value` overrides against the job's `vars`: a name the job does not declare
 * would be ignored silently (a typo, or a variable renamed since), so it is refused.
 */
export function checkSetOverrides(set: Readonly<Record<string, string>>, declared: readonly string[], file: string): void {
  const unknown = Object.keys(set).find((key) => !declared.includes(key));
  if (unknown === undefined) return;
  throw new UserError(
    `--set ${unknown}=${set[unknown]}: the job ${file} has no variable "${unknown}" in its \`vars:\``,
    declared.length > 0
      ? `--set can change only these: ${declared.join(', ')}`
      : `it declares no \`vars:\`; add \`vars: {${unknown}: <default>}\` to the job file to make it settable`,
  );
}
