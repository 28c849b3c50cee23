// What the browser tests and the screenshot script share: starting the release binary on a
// store of its own (optionally with a tokens file), calling its JSON API, launching Debian's
// chromium, and a guard that collects everything that goes wrong inside a page (script errors,
// Content-Security-Policy violations, failed sub-resources) so that a test can fail on it.

import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));

/** The server binary: BIFROST_BIN, or the release build of this checkout. */
export const BIN = process.env.BIFROST_BIN
  ? path.resolve(process.env.BIFROST_BIN)
  : path.resolve(here, "../../target/release/bifrost-providers");

/** Debian's chromium (Playwright's own browser download cannot be used here). */
export const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

/** How long any single wait in these tests may take, in milliseconds. */
export const WAIT = 10_000;

/** A short unique suffix, for names in a shared store. */
export function unique() {
  return `${Date.now().toString(36)}${randomBytes(3).toString("hex")}`;
}

export function sha256(text) {
  return createHash("sha256").update(text).digest("hex");
}

// Servers still running when this process ends (a test that died, a runner's timeout) are
// killed with it: none outlives the tests.
const running = new Set();
const dirs = new Set();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, () => process.exit(130));
}

/**
 * Starts `bifrost-providers serve` on a free port.
 * store: "memory" | "sqlite" | a postgres:// URL.
 * tokens: { name: { scopes: [...], providers?: [...] } } — without it the server is open.
 * Resolves to { url, token(name), api(...), logs(), stop() }.
 */
export async function startServer({ store = "memory", tokens = null } = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), "bifrost-browser-"));
  dirs.add(dir);
  const storeUrl =
    store === "memory" ? "memory://" : store === "sqlite" ? `sqlite://${dir}/store.db` : store;
  const args = [
    "serve",
    "--bind",
    "127.0.0.1:0",
    "--log-format",
    "json",
    "--store",
    storeUrl,
    "--shutdown-grace",
    "1",
  ];
  const texts = {};
  if (tokens) {
    let toml = "";
    for (const [name, { scopes, providers }] of Object.entries(tokens)) {
      texts[name] = `bt-${name}-${randomBytes(16).toString("hex")}`;
      toml += `[[token]]\nname = "${name}"\nsha256 = "${sha256(texts[name])}"\n`;
      toml += `scopes = [${scopes.map((s) => `"${s}"`).join(", ")}]\n`;
      if (providers) toml += `providers = [${providers.map((p) => `"${p}"`).join(", ")}]\n`;
      toml += "\n";
    }
    writeFileSync(path.join(dir, "tokens.toml"), toml);
    args.push("--tokens", path.join(dir, "tokens.toml"));
  }
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith("BIFROST_")),
  );
  env.RUST_LOG = "info";
  const child = spawn(BIN, args, { env, stdio: ["ignore", "ignore", "pipe"] });
  running.add(child);
  child.on("exit", () => running.delete(child));
  let log = "";
  const url = await new Promise((resolve, reject) => {
    let pending = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`the server did not start within 20 s:\n${log}`));
    }, 20_000);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${BIN}: ${e.message}`));
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${code ?? signal}) before listening:\n${log}`));
    });
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk) => {
      log += chunk;
      pending += chunk;
      let end;
      while ((end = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, end);
        pending = pending.slice(end + 1);
        try {
          const event = JSON.parse(line);
          const fields = event.fields || event;
          if (fields.message === "listening" && (event.target || "") === "bifrost_providers") {
            clearTimeout(timer);
            resolve(`http://${fields.local_addr}`);
          }
        } catch {
          // not a JSON line
        }
      }
    });
  });
  child.removeAllListeners("exit");
  child.on("exit", () => running.delete(child));
  let exited = false;
  const gone = new Promise((done) =>
    child.on("exit", () => {
      exited = true;
      done();
    }),
  );

  const server = {
    url,
    store: storeUrl,
    logs: () => log,
    token(name) {
      if (!(name in texts)) throw new Error(`no token named ${name}`);
      return texts[name];
    },
    /** A JSON API call; with tokens, as the first token that has every scope (or `as`). */
    async api(method, apiPath, body, as) {
      const headers = { accept: "application/json" };
      const who = as ?? Object.keys(texts)[0];
      if (who) headers.authorization = `Bearer ${texts[who]}`;
      if (body !== undefined) headers["content-type"] = "application/json";
      const response = await fetch(url + apiPath, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(WAIT),
      });
      const text = await response.text();
      let json = null;
      try {
        json = JSON.parse(text);
      } catch {
        // not JSON
      }
      return { status: response.status, headers: response.headers, json, text };
    },
    async stop() {
      if (!exited) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
        await gone;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
      dirs.delete(dir);
    },
  };
  return server;
}

/** Debian's chromium, headless. */
export function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    timeout: 30_000,
  });
}

/** A new browser context with the tests' default timeouts. */
export async function newContext(browser, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...options });
  context.setDefaultTimeout(WAIT);
  context.setDefaultNavigationTimeout(WAIT);
  if (process.env.BROWSER_TESTS_REWRITE_NULL_ORIGIN === "1") await rewriteNullOrigin(context);
  return context;
}

/**
 * Rewrites `Origin: null` on the console's form posts to the page's own origin before the
 * server sees them. chromium sends `Origin: null` with every form post of a page served with
 * `Referrer-Policy: no-referrer`, which the console once refused as a forgery (the first test
 * of "sessions" checks that it no longer does). Only for a diagnosis
 * (BROWSER_TESTS_REWRITE_NULL_ORIGIN=1: what else fails once that is out of the way) and for the
 * screenshot script; never set for the tests in CI.
 */
export async function rewriteNullOrigin(context) {
  await context.route("**/ui/**", async (route) => {
    const request = route.request();
    const headers = await request.allHeaders();
    if (request.method() !== "POST" || headers.origin !== "null") return route.continue();
    headers.origin = new URL(request.url()).origin;
    const response = await route.fetch({ headers, maxRedirects: 0, timeout: WAIT });
    return route.fulfill({ response });
  });
}

/**
 * A page of `context` watched for what must never happen under the console's CSP: a script
 * error, a CSP violation (the `securitypolicyviolation` event, and the console line chromium
 * writes for one), a console error, a sub-resource that fails; and every page it loads must
 * carry the console's CSP. `problems` lists them; `assertClean()` throws if there are any.
 */
export async function guardedPage(context) {
  const page = await context.newPage();
  const problems = [];
  const documents = new Set();
  await page.exposeFunction("__bifrostCspViolation", (text) =>
    problems.push(`CSP violation: ${text}`),
  );
  await page.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) => {
      window.__bifrostCspViolation(
        `${e.violatedDirective} blocked ${e.blockedURI || "inline"} (${e.sourceFile}:${e.lineNumber})`,
      );
    });
  });
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("response", (response) => {
    const request = response.request();
    if (request.resourceType() === "document") {
      documents.add(response.url());
      if (new URL(response.url()).pathname.startsWith("/ui")) {
        const csp = response.headers()["content-security-policy"] || "";
        if (!csp.includes("script-src 'self'") || !csp.includes("default-src 'none'")) {
          problems.push(`${response.url()} came without the console's CSP (got "${csp}")`);
        }
      }
    } else if (response.status() >= 400) {
      problems.push(`${request.resourceType()} ${response.url()} answered ${response.status()}`);
    }
  });
  page.on("requestfailed", (request) => {
    const failure = request.failure()?.errorText || "";
    // A page left while its live notice's long poll is open aborts that poll: not a failure.
    if (failure === "net::ERR_ABORTED" && new URL(request.url()).pathname === "/ui/changes") return;
    if (request.resourceType() === "document" && failure === "net::ERR_ABORTED") return;
    problems.push(`${request.resourceType()} ${request.url()} failed: ${failure}`);
  });
  page.on("console", (message) => {
    if (message.type() !== "error" && message.type() !== "warning") return;
    const text = message.text();
    // chromium reports a document answered with 4xx (a refusal page, the conflict view) as
    // "Failed to load resource": that status is the page's own, asserted by the tests.
    if (text.startsWith("Failed to load resource") && documents.has(message.location().url)) {
      return;
    }
    // chromium asks for /favicon.ico by itself; the console declares no icon, and the 404 is
    // no page's doing.
    if (text.startsWith("Failed to load resource") && new URL(message.location().url).pathname === "/favicon.ico") {
      return;
    }
    problems.push(`console ${message.type()}: ${text} (${message.location().url})`);
  });
  page.problems = problems;
  page.assertClean = () => {
    if (problems.length) {
      throw new Error(`the page had problems:\n  ${problems.join("\n  ")}`);
    }
  };
  return page;
}

/** Logs `page` in with token `name` of `server`; resolves once the provider list shows. */
export async function login(page, server, name) {
  await page.goto(`${server.url}/ui/login`);
  await page.locator("#token").fill(server.token(name));
  const response = await submit(page, page.getByRole("button", { name: "Log in" }));
  if (page.url() !== `${server.url}/ui`) {
    const said = await page.locator("main").innerText().catch(() => "");
    throw new Error(`logging in as ${name} answered ${response?.status()} at ${page.url()}: ${said}`);
  }
}

/** A field of a console form by its dotted path (`network_config.base_url`). */
export function field(page, dotted) {
  return page.locator(`[id="f-${dotted}"]`);
}

/** Clicks `locator` and waits for the navigation it starts; resolves to its main response. */
export async function submit(page, locator) {
  const [response] = await Promise.all([
    page.waitForNavigation({ timeout: WAIT }),
    locator.click(),
  ]);
  return response;
}
