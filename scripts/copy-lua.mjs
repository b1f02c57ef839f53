// The build steps tsc cannot do: ship the Lua scripts beside the compiled code that loads them, and
// make the CLI executable (tsc writes 644; npx in this checkout needs the bit, npm install sets it itself).
import { chmodSync, cpSync, mkdirSync } from 'node:fs';
mkdirSync(new URL('../dist/protocol/lua', import.meta.url), { recursive: true });
cpSync(new URL('../src/protocol/lua', import.meta.url), new URL('../dist/protocol/lua', import.meta.url), { recursive: true });
chmodSync(new URL('../dist/cli/main.js', import.meta.url), 0o755);
