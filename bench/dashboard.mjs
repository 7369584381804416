// Times the dashboard against a seeded longrun (bench/dashboard runs it):
// the first load (sign-in to the list drawn and live), a state filter
// change, and each other view drawn. Prints one line per measure: the
// median and every round, in milliseconds.
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { chromium } = require(`${process.cwd()}/tests/browser/node_modules/playwright-core`);
const [base, key, ops] = process.argv.slice(2);
const rounds = Number(process.env.BENCH_ROUNDS || 5);
const WAIT = { timeout: 60_000 };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu"],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
const times = { "first load (500 newest, live)": [], "state filter change": [], "workers view": [], "metrics view (1 hour)": [], "metrics view (7 days)": [] };
const timed = async (name, work) => {
  const started = performance.now();
  await work();
  times[name].push(performance.now() - started);
};

for (let round = 0; round < rounds; round++) {
  await page.goto(`${base}/ui/`);
  await page.evaluate(() => sessionStorage.clear());
  await page.goto(`${base}/ui/`);
  await page.fill("#key", key);
  await timed("first load (500 newest, live)", async () => {
    await page.click("#sign-in button[type=submit]");
    await page.waitForFunction(() => document.querySelectorAll("#operations tbody tr").length === 500, null, WAIT);
    await page.waitForSelector("[data-testid=live]:has-text('live')", WAIT);
  });
  await timed("state filter change", async () => {
    await page.selectOption("#state-filter", "Running");
    await page.waitForFunction(() => [...document.querySelectorAll("#operations tbody tr")].every((r) => r.dataset.state === "Running"), null, WAIT);
  });
  await page.selectOption("#state-filter", "");
  await timed("workers view", async () => {
    await page.click("#views button[data-view=workers]");
    await page.waitForFunction(() => /held by/.test(document.querySelector("#workers-summary").textContent), null, WAIT);
  });
  await page.evaluate(() => { document.querySelector("#workers-summary").textContent = ""; });
  await timed("metrics view (1 hour)", async () => {
    await page.click("#views button[data-view=metrics]");
    await page.waitForFunction(() => /created in the window|newest/.test(document.querySelector("#metrics-note").textContent), null, WAIT);
  });
  await page.evaluate(() => { document.querySelector("#metrics-note").textContent = ""; });
  await timed("metrics view (7 days)", async () => {
    await page.selectOption("#metrics-window", "10080");
    await page.waitForFunction(() => /created in the window|newest/.test(document.querySelector("#metrics-note").textContent), null, WAIT);
  });
  await page.evaluate(() => { document.querySelector("#metrics-note").textContent = ""; });
  await page.selectOption("#metrics-window", "60"); // the next round starts from the default
  await page.waitForFunction(() => /created in the window|newest/.test(document.querySelector("#metrics-note").textContent), null, WAIT);
  await page.click("#views button[data-view=operations]");
  await page.click("#sign-out");
}
await browser.close();

console.log(`dashboard with ${Number(ops).toLocaleString("en")} operations, ${rounds} rounds (ms):`);
for (const [name, all] of Object.entries(times)) {
  const sorted = [...all].sort((a, b) => a - b);
  console.log(`  ${name}: median ${Math.round(sorted[(sorted.length - 1) >> 1])} (${all.map(Math.round).join(", ")})`);
}
