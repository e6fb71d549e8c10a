// Only the checks the compiler cannot make: a promise that nobody awaits loses its error and its
// ordering, and one used as a condition is always true. The store is async, so these matter on
// every repository call. Formatting is scripts/check-format.mjs's job, not ESLint's.
import tseslint from 'typescript-eslint';

export default tseslint.config({
  files: ['src/**/*.ts', 'test/**/*.ts'],
  languageOptions: {
    parser: tseslint.parser,
    parserOptions: { project: ['./tsconfig.tests.json'], tsconfigRootDir: import.meta.dirname },
  },
  plugins: { '@typescript-eslint': tseslint.plugin },
  linterOptions: { reportUnusedDisableDirectives: 'off' },
  rules: {
    '@typescript-eslint/no-floating-promises': 'error',
    '@typescript-eslint/no-misused-promises': 'error',
    '@typescript-eslint/await-thenable': 'error',
  },
});
