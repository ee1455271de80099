// The lint half of the test command (test/run.sh runs `npx eslint .` before the tests). The rules are the
// conventions the code already keeps; each rule off or narrowed below says why.
//
// TypeScript here is v7 (tsgo), which has no JavaScript compiler API; typescript-eslint's parser needs the
// classic one (it supports typescript >=4.8.4 <6.1.0). So package.json carries TypeScript 5 under the alias
// `typescript-classic` (a peer conflict with v7, hence `legacy-peer-deps` in .npmrc), and the hook below
// points typescript-eslint's `require('typescript')` at it before typescript-eslint loads. tsc stays v7.
//
// Type-aware rules (no-floating-promises, no-misused-promises) run on daemon/ and cli/ only, where an
// unhandled rejection would take the process down; tests use node:test's promise-returning test() and
// describe() unawaited by design. Type information roughly doubles the lint time, so it is kept to there.
import { createRequire } from 'node:module';
import js from '@eslint/js';

const require = createRequire(import.meta.url);
const Module = require('node:module');
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  const classic = request === 'typescript' || request.startsWith('typescript/');
  return resolve.call(this, classic ? request.replace('typescript', 'typescript-classic') : request, ...rest);
};
const { default: tseslint } = await import('typescript-eslint');

export default tseslint.config(
  { ignores: ['dist/', 'build/', 'node_modules/', 'wasm/target/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      eqeqeq: 'error',
      'prefer-const': 'error',
      'no-var': 'error',
      // As tsc's noUnusedLocals/noUnusedParameters: a leading underscore marks a name unused on purpose.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
      // Type-only imports say so, either `import type { A }` or `import { type A, B }`.
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      // Matching control characters is the point where it happens: escaping terminal output, parsing logs.
      'no-control-regex': 'off',
    },
  },
  {
    // The daemon and the CLI speak through daemon/log.ts and process.stdout; console is for tests and bench/.
    files: ['daemon/**/*.ts', 'cli/**/*.ts'],
    rules: { 'no-console': 'error' },
  },
  {
    files: ['daemon/**/*.ts', 'cli/**/*.ts'],
    languageOptions: { parserOptions: { project: './tsconfig.json', tsconfigRootDir: import.meta.dirname } },
    rules: { '@typescript-eslint/no-floating-promises': 'error', '@typescript-eslint/no-misused-promises': 'error' },
  },
  {
    // Tests write one-line steps as comma sequences: `(ids.dst = e.id), pushMore('dst')`.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-unused-expressions': 'off' },
  },
);
