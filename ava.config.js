// Tests are TypeScript run through tsx; child processes the tests fork load tsx the same way.
export default {
  files: ['test/**/*.test.ts'],
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx'],
  timeout: '120s',
  concurrency: 2,
  workerThreads: false,
};
