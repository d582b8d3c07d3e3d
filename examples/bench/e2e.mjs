// End-to-end benchmark of the signup server: HTTP request -> workflow ->
// Pusher -> a subscribed, unmodified pusher-js client.
//
//   node examples/bench/e2e.mjs --url http://127.0.0.1:3000 [--signups 5000]
//        [--clients 64] [--warmup 200]
//
// Run the server with SIGNUP_SLEEP=0s SIGNUP_FAILURE_RATE=0 (examples/bench/run.sh
// does it all). One pusher-js client (its Node build) subscribes to
// `my-channel`; 64 clients, each with keep-alive connections, sign up one
// email after another: POST /api/signup, then wait for that email's `my-event`
// before the next one (a closed loop, so latency is measured under the load the
// server sustains rather than a queue that grows without end). The latency of
// a signup is from the start of its POST to its notification arriving.
// Printed: signups/s end to end, median and p99 latency, the POST's own
// answer time, and as a baseline in the same run the same numbers for plain
// `GET /api/config` round trips. The last line is the result as JSON.

import http from "node:http";
import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";

const here = dirname(fileURLToPath(import.meta.url));

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

const base = option("url", process.env.SIGNUP_URL || "http://127.0.0.1:3000").replace(/\/$/, "");
const signups = Number(option("signups", 5000));
const clients = Number(option("clients", 64));
const warmup = Number(option("warmup", 200));
const timeoutMs = Number(option("timeout-ms", 30000));

// Unmodified pusher-js from npm: the browser harness's copy, or the page's.
function loadPusher() {
  for (const dir of ["../tests/browser", "../web"]) {
    const pkg = join(here, dir, "package.json");
    if (existsSync(join(here, dir, "node_modules/pusher-js/package.json"))) {
      return createRequire(pkg)("pusher-js");
    }
  }
  throw new Error("pusher-js is not installed: run `npm ci` in examples/tests/browser");
}
const Pusher = loadPusher();

const agent = new http.Agent({ keepAlive: true, maxSockets: clients, maxFreeSockets: clients });

function request(method, path, body) {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = http.request(
      `${base}${path}`,
      {
        method,
        agent,
        headers: payload
          ? { "content-type": "application/json", "content-length": payload.length }
          : {},
      },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    if (payload) req.write(payload);
    req.end();
  });
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function summary(latencies, seconds) {
  const sorted = Float64Array.from(latencies).sort();
  return {
    count: sorted.length,
    perSecond: sorted.length / seconds,
    medianMs: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    maxMs: sorted[sorted.length - 1],
  };
}

// Runs `total` jobs on `clients` concurrent workers; returns the wall time.
async function pool(total, job) {
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (next < total) await job(next++);
    }),
  );
  return (performance.now() - start) / 1000;
}

// --- the subscriber --------------------------------------------------------

const config = JSON.parse((await request("GET", "/api/config")).body);
const options = { cluster: config.cluster || "mt1" };
for (const k of ["wsHost", "wsPort", "wssPort", "forceTLS", "enabledTransports"]) {
  if (config[k] !== undefined) options[k] = config[k];
}
const pusher = new Pusher(config.key, options);
const waiting = new Map(); // email -> resolve
let duplicates = 0;
const seen = new Set();
const channel = pusher.subscribe("my-channel");
await new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error("pusher-js did not subscribe to my-channel within 10 s")), 10000);
  channel.bind("pusher:subscription_succeeded", () => {
    clearTimeout(timer);
    resolve();
  });
});
channel.bind("my-event", (n) => {
  const arrived = performance.now();
  if (seen.has(n.idempotencyKey)) {
    duplicates++;
    return;
  }
  seen.add(n.idempotencyKey);
  const resolve = waiting.get(n.email);
  if (resolve) {
    waiting.delete(n.email);
    resolve(arrived);
  }
});

const tag = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
let failures = 0;
let lost = 0;

async function signup(label, i, latencies, acks) {
  const email = `bench.${tag}.${label}${i}@example.com`;
  const arrived = new Promise((resolve) => waiting.set(email, resolve));
  const start = performance.now();
  const res = await request("POST", "/api/signup", { email });
  const acked = performance.now();
  if (res.status !== 202) {
    failures++;
    waiting.delete(email);
    if (failures <= 3) console.error(`POST /api/signup answered ${res.status}: ${res.body}`);
    return;
  }
  let timer;
  const timedOut = new Promise((resolve) => {
    timer = setTimeout(() => resolve(null), timeoutMs);
  });
  const at = await Promise.race([arrived, timedOut]);
  clearTimeout(timer);
  if (at === null) {
    lost++;
    waiting.delete(email);
    return;
  }
  latencies?.push(at - start);
  acks?.push(acked - start);
}

// --- baseline: GET /api/config ---------------------------------------------

await pool(Math.min(1000, signups), async () => {
  await request("GET", "/api/config");
});
const configLatencies = [];
const configSeconds = await pool(signups, async () => {
  const start = performance.now();
  const res = await request("GET", "/api/config");
  if (res.status !== 200) failures++;
  configLatencies.push(performance.now() - start);
});

// --- signups ---------------------------------------------------------------

await pool(warmup, (i) => signup("w", i));
const latencies = [];
const acks = [];
const signupSeconds = await pool(signups, (i) => signup("s", i, latencies, acks));

const baseline = summary(configLatencies, configSeconds);
const e2e = summary(latencies, signupSeconds);
const ack = summary(acks, signupSeconds);
const fmt = (x) => x.toFixed(2);
console.log(`server: ${base}; pusher: ${config.wsHost ?? config.cluster}:${config.wsPort ?? ""}; ${clients} clients`);
console.log(
  `baseline GET /api/config: ${baseline.count} in ${fmt(configSeconds)} s = ${baseline.perSecond.toFixed(0)}/s; ` +
    `median ${fmt(baseline.medianMs)} ms, p99 ${fmt(baseline.p99Ms)} ms`,
);
console.log(
  `signups end to end:       ${e2e.count} in ${fmt(signupSeconds)} s = ${e2e.perSecond.toFixed(0)}/s; ` +
    `median ${fmt(e2e.medianMs)} ms, p99 ${fmt(e2e.p99Ms)} ms, max ${fmt(e2e.maxMs)} ms ` +
    `(POST answered: median ${fmt(ack.medianMs)} ms, p99 ${fmt(ack.p99Ms)} ms)`,
);
console.log(`lost notifications: ${lost}; failed requests: ${failures}; duplicate notifications: ${duplicates}`);
console.log(
  JSON.stringify({
    clients,
    signups: { ...e2e, seconds: signupSeconds, postMedianMs: ack.medianMs, postP99Ms: ack.p99Ms },
    baseline: { ...baseline, seconds: configSeconds },
    lost,
    failures,
    duplicates,
  }),
);
pusher.disconnect();
agent.destroy();
process.exit(lost === 0 && failures === 0 ? 0 : 1);
