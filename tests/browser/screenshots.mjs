// Screenshots of the console's main pages at 1280x800, into docs/screenshots/*.png:
//   node tests/browser/screenshots.mjs          (after `npm ci` in tests/browser)
// Not a test: it starts the release binary on a memory store, furnishes it, and shoots.

import { mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

import {
  field,
  guardedPage,
  launch,
  login,
  newContext,
  rewriteNullOrigin,
  startServer,
  submit,
} from "./harness.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.resolve(here, "../../docs/screenshots");
mkdirSync(out, { recursive: true });

const server = await startServer({ tokens: { ops: { scopes: ["read", "write", "admin"] } } });
const browser = await launch();
try {
  const check = (r, what) => {
    if (r.status >= 300) throw new Error(`${what}: ${r.status} ${r.text}`);
  };
  check(
    await server.api("POST", "/api/providers", {
      provider: "openai",
      network_config: { base_url: "https://api.openai.com/v1" },
      keys: [
        { id: "prod", name: "production", value: "sk-example-production-key-0001", models: ["gpt-4o", "gpt-4o-mini"], weight: 1 },
        { id: "batch", name: "batch jobs", value: "env.OPENAI_BATCH_KEY", models: [], weight: 0.5, use_for_batch_api: true },
      ],
    }),
    "create openai",
  );
  check(
    await server.api("PUT", "/api/providers/openai", {
      network_config: { base_url: "https://eu.api.openai.com/v1", max_retries: 3 },
    }),
    "update openai",
  );
  check(
    await server.api("POST", "/api/providers", {
      provider: "anthropic",
      network_config: { base_url: "https://api.anthropic.com" },
      keys: [{ id: "main", name: "main", value: "sk-ant-example-0002", models: ["claude-sonnet-4"], weight: 1 }],
    }),
    "create anthropic",
  );
  check(
    await server.api("POST", "/api/providers", {
      provider: "local-llm",
      custom_provider_config: { base_provider_type: "openai" },
      network_config: { base_url: "http://127.0.0.1:11434/v1" },
      keys: [{ id: "k1", name: "local", value: "vault.kv/llm/local", models: [], weight: 1 }],
    }),
    "create local-llm",
  );
  const revisions = (await server.api("GET", "/api/providers/openai/history")).json.revisions;

  const context = await newContext(browser, { viewport: { width: 1280, height: 800 } });
  // The conflict view is the answer to a form post; chromium sends such a post with
  // `Origin: null` (the console's Referrer-Policy), which the console refused when this was
  // written: the post is let through with the page's origin so that the view can be shown.
  await rewriteNullOrigin(context);
  const page = await guardedPage(context);
  await login(page, server, "ops");
  const shoot = async (name) => {
    await page.screenshot({ path: path.join(out, `${name}.png`) });
    console.log(`docs/screenshots/${name}.png  ${page.url()}`);
  };

  await page.goto(`${server.url}/ui`);
  await shoot("list");
  await page.goto(`${server.url}/ui/providers/openai`);
  await shoot("provider");
  await page.goto(`${server.url}/ui/providers/openai/edit`);
  await shoot("edit");

  // Someone else saves while this form is open: the save then shows the conflict.
  check(
    await server.api("PUT", "/api/providers/openai", {
      network_config: { base_url: "https://us.api.openai.com/v1", max_retries: 3 },
    }),
    "the change elsewhere",
  );
  await field(page, "network_config.base_url").fill("https://eu-west.api.openai.com/v1");
  const lost = await submit(page, page.getByRole("button", { name: "Save", exact: true }));
  if (lost.status() !== 412) throw new Error(`the conflicting save answered ${lost.status()}`);
  await page.locator("#conflict").waitFor();
  await page.evaluate(() => document.activeElement?.blur());
  await shoot("conflict");

  await page.goto(
    `${server.url}/ui/providers/openai/diff?from=${revisions[1].revision}&to=${revisions[0].revision}`,
  );
  await shoot("history-diff");
  page.assertClean();
  await context.close();
} finally {
  await browser.close();
  await server.stop();
}
