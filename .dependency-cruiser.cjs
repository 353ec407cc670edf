// Which part of fanout may import which (`npm run lint:imports`). The layers, from the job file
// down to the process launcher, are described under "Layout of the code" in README.md.
// Unit tests beside the code, and their fixtures: tsconfig.build.json leaves them out of dist/.
const SRC_TESTS = '(\\.test\\.ts$|/fixtures/)';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'backends-not-engine',
      comment: 'A backend implements the Backend contract; the engine drives it, never the other way round.',
      severity: 'error',
      from: { path: '^src/backends/' },
      to: { path: '^src/engine/' },
    },
    {
      name: 'ui-not-cli',
      comment: "The dashboard's server is a face over the engine, beside the CLI, not under it.",
      severity: 'error',
      from: { path: '^src/ui/' },
      to: { path: '^src/cli/' },
    },
    {
      name: 'store-below-its-users',
      comment: 'The store keeps state; it knows nothing of who drives runs or shows them.',
      severity: 'error',
      from: { path: '^src/store/' },
      to: { path: '^src/(engine|worker|cli|ui|api)/' },
    },
    {
      name: 'runner-is-a-leaf',
      comment: 'The launcher starts, limits and measures one attempt; it depends on no layer above it.',
      severity: 'error',
      from: { path: '^src/runner/' },
      to: { path: '^src/(engine|worker|cli|ui|api|store)/' },
    },
    {
      name: 'job-and-expand-are-pure',
      comment: 'Reading a job file and expanding its tasks need no engine, backend or face.',
      severity: 'error',
      from: { path: '^src/(job|expand)/' },
      to: { path: '^src/(engine|worker|cli|ui|api|backends)/' },
    },
    {
      name: 'src-not-tests',
      comment: 'What ships (src/ less its unit tests and their fixtures) must not import the tests or the benchmarks.',
      severity: 'error',
      from: { path: '^src/', pathNot: SRC_TESTS },
      to: { path: '^(test|bench)/' },
    },
    {
      name: 'no-circular',
      comment: 'Import cycles, type-only imports included (they tie the modules together just the same).',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'An import that resolves to no file or package.',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
    {
      name: 'src-not-to-dev-dependencies',
      comment: 'What ships may import only dependencies, not devDependencies (tests may).',
      severity: 'error',
      from: { path: '^src/', pathNot: SRC_TESTS },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'no-non-package-json',
      comment: 'A package that is imported but not in package.json.',
      severity: 'error',
      from: {},
      to: { dependencyTypes: ['npm-no-pkg', 'npm-unknown'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|native/build|bench/out)/' },
    // Type-only imports count: a backend importing a type from the engine still depends on it.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
    reporterOptions: {
      text: { highlightFocused: true },
    },
  },
};
