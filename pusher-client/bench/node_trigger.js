// The official Node server library (`pusher` on npm) triggering the same event
// against the same server as benches/trigger.rs, sequential and with N in flight.
// Prints `RESULT name value unit` lines.
'use strict';

const path = require('path');
const Pusher = require(path.join(__dirname, '../tests/js/node_modules/pusher'));

const env = (k, d) => process.env[k] || d;
const pusher = new Pusher({
  appId: env('SOCKUDO_APP_ID', 'pusher-client-test'),
  key: env('SOCKUDO_KEY', 'pusher-client-key'),
  secret: env('SOCKUDO_SECRET', 'pusher-client-secret'),
  host: env('SOCKUDO_HOST', '127.0.0.1'),
  port: env('SOCKUDO_PORT', '16001'),
  useTLS: false,
  timeout: 10000,
});
const sequential = Number(env('BENCH_SEQUENTIAL', '5000'));
const concurrent = Number(env('BENCH_CONCURRENT', '20000'));
const inFlight = Number(env('BENCH_IN_FLIGHT', '64'));
// The same data string the Rust benchmark sends.
const data = { step: 'send_welcome_email', status: 'completed', attempt: 1 };
const trigger = () => pusher.trigger('bench-channel', 'progress', data);

async function main() {
  for (let i = 0; i < 200; i++) await trigger();

  let start = process.hrtime.bigint();
  for (let i = 0; i < sequential; i++) await trigger();
  let secs = Number(process.hrtime.bigint() - start) / 1e9;
  console.log(`RESULT node_sequential_per_sec ${Math.round(sequential / secs)} triggers/s  (${sequential} triggers, one at a time)`);

  start = process.hrtime.bigint();
  let next = 0;
  const worker = async () => {
    while (next < concurrent) {
      next += 1;
      await trigger();
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  secs = Number(process.hrtime.bigint() - start) / 1e9;
  console.log(`RESULT node_concurrent_per_sec ${Math.round(concurrent / secs)} triggers/s  (${concurrent} triggers, ${inFlight} in flight)`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
