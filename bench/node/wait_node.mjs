// The Node side of the wait benchmark: the official @google/genai SDK doing
// the waits the way the original TypeScript did: every wait at once
// (Promise.all), each one a loop of `ai.files.get` until ACTIVE, every get
// wrapped in a retry loop with exponential backoff and full jitter, the same
// schedule as the C++ client's defaults (5 retries, 1 s doubling to 30 s;
// polls 1 s growing by 1.5 up to 10 s, +/-10 %). No circuit breaker, no
// shared cooldown, no retry budget.
//
//   node wait_node.mjs BASE_URL API_KEY NAMES_FILE
//
// NAMES_FILE holds one "files/ID" a line. Prints one JSON line: waits, active,
// failed, errors, wall time, requests sent (files.get attempts), CPU time and
// peak memory (process.resourceUsage().maxRSS) of this process.
import { readFileSync } from 'node:fs';
import { GoogleGenAI, FileState } from '@google/genai';

const [baseUrl, apiKey, namesFile] = process.argv.slice(2);
if (!baseUrl || !apiKey || !namesFile) {
  console.error('usage: node wait_node.mjs BASE_URL API_KEY NAMES_FILE');
  process.exit(2);
}
const names = readFileSync(namesFile, 'utf8').split('\n').filter((s) => s.length > 0);

const ai = new GoogleGenAI({ apiKey, httpOptions: { baseUrl } });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const retry = { maxRetries: 5, initialDelayMs: 1000, maxDelayMs: 30000, multiplier: 2 };
let requests = 0;
let retries = 0;

function retryable(e) {
  const status = e?.status ?? e?.code;
  if (typeof status === 'number') return status === 408 || status === 429 || status >= 500;
  return true; // network errors (fetch failed, reset, timeout)
}

async function withRetry(fn) {
  for (let attempt = 0; ; attempt++) {
    try {
      requests++;
      return await fn();
    } catch (e) {
      if (attempt >= retry.maxRetries || !retryable(e)) throw e;
      retries++;
      const cap = Math.min(retry.maxDelayMs, retry.initialDelayMs * retry.multiplier ** attempt);
      await sleep(Math.random() * cap);
    }
  }
}

async function waitUntilActive(name) {
  let pause = 1000;
  for (;;) {
    const file = await withRetry(() => ai.files.get({ name }));
    if (file.state === FileState.ACTIVE) return 'active';
    if (file.state === FileState.FAILED) return 'failed';
    await sleep(pause * (0.9 + 0.2 * Math.random()));
    pause = Math.min(pause * 1.5, 10000);
  }
}

const started = process.hrtime.bigint();
const outcomes = await Promise.all(
  names.map((n) => waitUntilActive(n).catch((e) => `error: ${e?.status ?? e?.code ?? e?.message ?? e}`)),
);
const wall = Number(process.hrtime.bigint() - started) / 1e9;
const ru = process.resourceUsage();
const errors = {};
for (const o of outcomes)
  if (o.startsWith('error')) errors[o] = (errors[o] ?? 0) + 1;
console.log(
  JSON.stringify({
    name: 'side_by_side/node_genai_sdk',
    node: process.version,
    waits: names.length,
    active: outcomes.filter((o) => o === 'active').length,
    failed: outcomes.filter((o) => o === 'failed').length,
    errors,
    wall_s: Math.round(wall * 1000) / 1000,
    requests,
    retries,
    cpu_s: Math.round((ru.userCPUTime + ru.systemCPUTime) / 1000) / 1000,
    max_rss_kb: ru.maxRSS,
  }),
);
