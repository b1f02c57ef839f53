// The build step tsc cannot do: ship the Lua scripts beside the compiled code that loads them.
import { cpSync, mkdirSync } from 'node:fs';
mkdirSync(new URL('../dist/lua', import.meta.url), { recursive: true });
cpSync(new URL('../src/lua', import.meta.url), new URL('../dist/lua', import.meta.url), { recursive: true });
