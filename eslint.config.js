// ESLint 9 flat config. The TypeScript gets typescript-eslint's type-checked recommended rules:
// the coordinator, the workers, the stores and the dashboard are all async, and a floating or
// misused promise there is a bug. The plain JavaScript (bench/, scripts/, bin/, examples/, web/)
// gets ESLint's recommended rules without types.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: ['dist/', 'native/build/', 'bench/out/', 'test/screenshots/', 'test-output/', '.fanout/', 'fanout-out/'],
  },
  js.configs.recommended,
  {
    languageOptions: { globals: globals.node },
    rules: {
      // `catch {}` is how best-effort cleanup (killing a process that may be gone) reads here.
      'no-empty': ['error', { allowEmptyCatch: true }],
    },
  },
  {
    files: ['**/*.ts', '**/*.mts'],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['vitest.config.ts'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      // A store or backend method is async because its contract is, even where one implementation
      // (SQLite, the local backend) happens not to wait: a throw then still becomes a rejection.
      '@typescript-eslint/require-await': 'off',
      // `_name` marks what is unused on purpose: a parameter a contract passes, a field left out
      // of a spread.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
    },
  },
  {
    // Tests read JSON that fanout printed or stored (`any` from JSON.parse) and poke at the
    // browser's window; typing every such read would add casts, not safety.
    files: ['test/**/*.ts', 'src/**/*.test.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    extends: [tseslint.configs.disableTypeChecked],
  },
  {
    files: ['web/**/*.js'],
    languageOptions: { globals: globals.browser },
    // The page is a module: its top-level names shadow no global.
    rules: { 'no-redeclare': ['error', { builtinGlobals: false }] },
  },
);
