// Drives the signup page in Debian's headless Chromium for the examples'
// browser tests.
//
// A line protocol: one JSON command per line on stdin, one JSON answer per
// line on stdout: `{"ok": true, "result": ...}` or `{"ok": false, "error":
// "...", "snapshot": {...}}`. Commands (`page` names a separate browser
// context, so two pages do not share cookies or local storage):
//
//   {"cmd": "open", "page": "a", "url": "http://..."}
//   {"cmd": "signup", "page": "a", "email": "..."}        -> {"runId": ...}
//   {"cmd": "wait", "page": "a", "runId": "...", "statuses": ["completed"],
//    "notification": true, "timeoutMs": 60000}             -> snapshot
//   {"cmd": "reload", "page": "a"}                         -> snapshot
//   {"cmd": "snapshot", "page": "a"}                       -> snapshot
//   {"cmd": "storage", "page": "a"}     -> the runs the page keeps (with tokens)
//   {"cmd": "screenshot", "page": "a", "path": "..."}
//   {"cmd": "quit"}
//
// A snapshot is what the page shows (notifications, runs with their
// timelines, the connection state) plus every Pusher message the page's
// pusher-js received (`messages`: event, channel, data) and the page's
// console errors.

import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const executablePath = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

// Playwright gives every launch a fresh temporary --user-data-dir of its own
// (it refuses one in `args`), removed when the browser closes.
const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});

const pages = new Map(); // name -> { context, page, errors }

function entry(name) {
  const found = pages.get(name);
  if (!found) throw new Error(`no page named ${JSON.stringify(name)}; open it first`);
  return found;
}

// Records every message pusher-js receives, with its channel. `pusher` is the
// page's own client (a top-level binding of its script).
async function recordMessages(page) {
  await page.evaluate(() => {
    window.__messages = [];
    pusher.connection.bind("message", (m) => {
      window.__messages.push({ event: m.event, channel: m.channel ?? null, data: m.data ?? null });
    });
  });
}

async function ready(page) {
  await page.waitForSelector('body[data-ready="true"]', { timeout: 15000 });
  await recordMessages(page);
  await page.waitForFunction(() => document.getElementById("conn-state").textContent === "connected", null, {
    timeout: 15000,
  });
}

async function snapshot(page) {
  return page.evaluate(() => ({
    url: location.href,
    ready: document.body.dataset.ready === "true",
    connection: document.getElementById("conn-state").textContent,
    formError: document.getElementById("form-error").textContent,
    notifications: [...document.querySelectorAll("#notifications li.notification")].map((li) => ({
      key: li.dataset.key,
      runId: li.dataset.runId,
      text: li.textContent,
    })),
    feed: [...document.querySelectorAll("#feed li:not(.empty)")].map((li) => li.textContent),
    runs: [...document.querySelectorAll(".run[data-run-id]")].map((card) => ({
      runId: card.dataset.runId,
      status: card.dataset.status ?? null,
      email: card.querySelector(".who")?.textContent ?? null,
      error: card.querySelector(".run-error")?.textContent ?? "",
      steps: [...card.querySelectorAll("ol.timeline li.step")].map((li) => ({
        name: li.dataset.name,
        state: li.dataset.state,
        text: li.textContent,
      })),
    })),
    messages: window.__messages ?? [],
  }));
}

async function full(name) {
  const { page, errors } = entry(name);
  return { ...(await snapshot(page)), consoleErrors: errors };
}

const commands = {
  async open({ page: name, url }) {
    if (pages.has(name)) throw new Error(`page ${name} is already open`);
    const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    const page = await context.newPage();
    const errors = [];
    page.on("console", (m) => {
      if (m.type() === "error") errors.push(m.text());
    });
    page.on("pageerror", (e) => errors.push(String(e)));
    pages.set(name, { context, page, errors });
    await page.goto(url);
    await ready(page);
    return full(name);
  },

  async signup({ page: name, email }) {
    const { page } = entry(name);
    const before = await page.$$eval(".run[data-run-id]", (cards) => cards.map((c) => c.dataset.runId));
    await page.fill("#email", email);
    await page.click("#signup-button");
    const handle = await page.waitForFunction(
      ([email, before]) => {
        const error = document.getElementById("form-error").textContent;
        if (error) return { error };
        for (const card of document.querySelectorAll(".run[data-run-id]")) {
          if (!before.includes(card.dataset.runId) && card.querySelector(".who")?.textContent === email) {
            return { runId: card.dataset.runId };
          }
        }
        return null;
      },
      [email, before],
      { timeout: 15000 },
    );
    const found = await handle.jsonValue();
    if (found.error) throw new Error(`the page reports: ${found.error}`);
    return found;
  },

  async wait({ page: name, runId, statuses = ["completed"], notification = false, timeoutMs = 60000 }) {
    const { page } = entry(name);
    await page.waitForFunction(
      ([runId, statuses, notification]) => {
        const card = document.querySelector(`.run[data-run-id="${runId}"]`);
        if (!card || !statuses.includes(card.dataset.status)) return false;
        if (!notification || card.dataset.status !== "completed") return true;
        return document.querySelector(`#notifications li.notification[data-run-id="${runId}"]`) !== null;
      },
      [runId, statuses, notification],
      { timeout: timeoutMs, polling: 100 },
    );
    return full(name);
  },

  async reload({ page: name }) {
    const { page } = entry(name);
    await page.reload();
    await ready(page);
    return full(name);
  },

  async snapshot({ page: name }) {
    return full(name);
  },

  async storage({ page: name }) {
    const { page } = entry(name);
    return page.evaluate(() => JSON.parse(localStorage.getItem("signup-runs") || "[]"));
  },

  async screenshot({ page: name, path }) {
    const { page } = entry(name);
    await page.screenshot({ path, fullPage: true });
    return { path };
  },

  async quit() {
    return {};
  },
};

function answer(value) {
  process.stdout.write(JSON.stringify(value) + "\n");
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  if (!line.trim()) continue;
  let command;
  try {
    command = JSON.parse(line);
  } catch (e) {
    answer({ ok: false, error: `not JSON: ${e.message}` });
    continue;
  }
  const run = commands[command.cmd];
  if (!run) {
    answer({ ok: false, error: `unknown command ${JSON.stringify(command.cmd)}` });
    continue;
  }
  try {
    answer({ ok: true, result: await run(command) });
  } catch (e) {
    let shot = null;
    if (command.page && pages.has(command.page)) {
      shot = await full(command.page).catch((err) => ({ unavailable: String(err) }));
    }
    answer({ ok: false, error: String(e?.message ?? e), snapshot: shot });
  }
  if (command.cmd === "quit") break;
}
await browser.close();
