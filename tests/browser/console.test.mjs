// Real-browser tests of the web console (/ui): headless Debian chromium driven by
// playwright-core, against the release binary started here on stores of its own.
//
//   npm ci && node --test            (in tests/browser; or `node --test tests/browser/`)
//
// BIFROST_BIN names the binary (default: ../../target/release/bifrost-providers);
// BIFROST_TEST_POSTGRES_URL, when set, runs the provider-and-keys flow once more on PostgreSQL
// (a shared database: the providers made there have unique names and are deleted after).
//
// Every test but the accessibility ones runs under the console's own Content-Security-Policy
// and fails on any script error, CSP violation, console error or failed sub-resource of its
// pages (harness.mjs: guardedPage). Every wait has a timeout.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import axe from "axe-core";

import {
  WAIT,
  field,
  guardedPage,
  launch,
  login,
  newContext,
  startServer,
  submit,
  unique,
} from "./harness.mjs";

const ALL = ["read", "write", "admin"];
// Every test and hook has a bound (a suite's own timeout would bound all its tests together).
const T = { timeout: 60_000 };
const HOOK = { timeout: 30_000 };

let browser;
before(async () => {
  browser = await launch();
}, HOOK);
after(async () => {
  await browser?.close();
}, HOOK);

/** Creates provider `name` through the API (a custom one, on openai, if not standard). */
async function createProvider(server, name, baseUrl, extra = {}) {
  const standard = ["openai", "anthropic", "mistral", "groq", "cohere", "gemini"].includes(name);
  const body = {
    provider: name,
    network_config: { base_url: baseUrl },
    ...(standard ? {} : { custom_provider_config: { base_provider_type: "openai" } }),
    ...extra,
  };
  const made = await server.api("POST", "/api/providers", body);
  assert.equal(made.status, 200, `create ${name}: ${made.text}`);
  return made.json;
}

async function baseUrlOf(server, name) {
  const got = await server.api("GET", `/api/providers/${encodeURIComponent(name)}`);
  assert.equal(got.status, 200, `get ${name}: ${got.text}`);
  return got.json.network_config?.base_url;
}


// ---------------------------------------------------------------------------------------------

describe("sessions", () => {
  let server;
  before(async () => {
    server = await startServer({
      tokens: { ops: { scopes: ALL }, reader: { scopes: ["read"] } },
    });
    await createProvider(server, "openai", "https://api.one.test");
  }, HOOK);
  after(async () => {
    await server?.stop();
  }, HOOK);

  test("a form posted from the console's own page is taken as same-origin", T, async () => {
    // The console sends `Referrer-Policy: no-referrer`, under which a browser sends
    // `Origin: null` with a form post (and `Sec-Fetch-Site: same-origin`): the console must
    // accept that post, or no form of it works in a real browser.
    const context = await newContext(browser);
    try {
      const page = await guardedPage(context);
      await page.goto(`${server.url}/ui/login`);
      await page.locator("#token").fill(server.token("ops"));
      const [request] = await Promise.all([
        page.waitForRequest((r) => r.method() === "POST" && r.url().endsWith("/ui/login")),
        page.getByRole("button", { name: "Log in" }).click(),
      ]);
      const headers = await request.allHeaders();
      const response = await request.response();
      await page.waitForLoadState("load");
      assert.equal(
        response.status(),
        303,
        `POST /ui/login with Origin: ${headers.origin}, Sec-Fetch-Site: ${headers["sec-fetch-site"]} ` +
          `answered ${response.status()}: ${await page.locator("main").innerText()}`,
      );
      assert.equal(page.url(), `${server.url}/ui`);
      page.assertClean();
    } finally {
      await context.close();
    }
  });

  test("login: a wrong token is refused on the login page; the right one signs in; logout signs out", T, async () => {
    const context = await newContext(browser);
    try {
      const page = await guardedPage(context);
      // Without a session every page leads to the login page.
      await page.goto(`${server.url}/ui/providers/openai`);
      assert.equal(page.url(), `${server.url}/ui/login`);

      await page.locator("#token").fill("bt-not-a-token-of-this-server-0000");
      const refused = await submit(page, page.getByRole("button", { name: "Log in" }));
      assert.equal(refused.status(), 401, await page.locator("main").innerText());
      assert.equal(page.url(), `${server.url}/ui/login`);
      const error = page.locator("#token-error");
      await error.waitFor();
      assert.match(await error.innerText(), /not one the server holds/);
      assert.equal(await page.locator("#token").getAttribute("aria-describedby"), "token-error");
      assert.equal(await page.locator("#token").inputValue(), "", "the refused token is not echoed");

      await login(page, server, "ops");
      assert.match(await page.locator("header .who").innerText(), /Signed in as\s+ops/);
      assert.ok(await page.getByRole("link", { name: "openai", exact: true }).isVisible());

      await submit(page, page.getByRole("button", { name: "Log out" }));
      assert.equal(page.url(), `${server.url}/ui/login`);
      // The session is over: the list leads to the login page again.
      await page.goto(`${server.url}/ui`);
      assert.equal(page.url(), `${server.url}/ui/login`);
      page.assertClean();
    } finally {
      await context.close();
    }
  });

  test("a read-only token sees no way to change anything, and an edit posted anyway is refused", T, async () => {
    const context = await newContext(browser);
    try {
      const page = await guardedPage(context);
      await login(page, server, "reader");
      assert.match(await page.locator(".banner").first().innerText(), /Read-only/);
      assert.equal(await page.getByRole("link", { name: "New provider" }).count(), 0);
      assert.ok(await page.getByRole("link", { name: "Providers", exact: true }).isVisible());

      await page.getByRole("link", { name: "openai", exact: true }).click();
      await page.waitForURL(`${server.url}/ui/providers/openai`);
      assert.equal(await page.getByRole("link", { name: "Edit settings" }).count(), 0);
      assert.equal(await page.getByRole("link", { name: "Add a key" }).count(), 0);
      assert.equal(await page.getByRole("link", { name: "Delete provider" }).count(), 0);
      assert.ok(await page.getByRole("link", { name: "History" }).isVisible());

      const editForm = await page.goto(`${server.url}/ui/providers/openai/edit`);
      assert.equal(editForm.status(), 403);
      const newForm = await page.goto(`${server.url}/ui/new`);
      assert.equal(newForm.status(), 403);

      // An edit form posted anyway from this session's page (its own form token, the
      // provider's ETag): refused for the scope, and nothing changes.
      await page.goto(`${server.url}/ui/providers/openai`);
      const etag = (await server.api("GET", "/api/providers/openai")).headers.get("etag").replaceAll('"', "");
      await page.evaluate(
        ({ etag }) => {
          const csrf = document.querySelector('input[name="_csrf"]').value;
          const form = document.createElement("form");
          form.method = "post";
          form.action = "/ui/providers/openai/edit";
          for (const [name, value] of [
            ["_csrf", csrf],
            ["_etag", etag],
            ["network_config.base_url", "https://reader-was-here.test"],
          ]) {
            const input = document.createElement("input");
            input.type = "hidden";
            input.name = name;
            input.value = value;
            form.append(input);
          }
          const button = document.createElement("button");
          button.type = "submit";
          button.textContent = "Post it anyway";
          form.append(button);
          document.querySelector("main").append(form);
        },
        { etag },
      );
      const posted = await submit(page, page.getByRole("button", { name: "Post it anyway" }));
      const text = await page.locator("main").innerText();
      assert.equal(posted.status(), 403, text);
      assert.doesNotMatch(text, /not sent from this console's page|form's token/, "refused for its scope, not as a forgery");
      assert.match(text, /no write scope/, "refused for the token's scope");
      assert.equal(await baseUrlOf(server, "openai"), "https://api.one.test");
      page.assertClean();
    } finally {
      await context.close();
    }
  });

  test("the CSP is in force: an inline script is blocked, and the guard notices", T, async () => {
    const context = await newContext(browser);
    try {
      const page = await guardedPage(context);
      await page.goto(`${server.url}/ui/login`);
      await page.evaluate(() => {
        const script = document.createElement("script");
        script.textContent = "window.__inlineRan = true;";
        document.body.append(script);
      });
      await page.waitForTimeout(200);
      assert.equal(await page.evaluate(() => window.__inlineRan === true), false, "the inline script ran");
      assert.ok(
        page.problems.some((p) => p.startsWith("CSP violation: script-src")),
        `no violation seen: ${JSON.stringify(page.problems)}`,
      );
    } finally {
      await context.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------

/** The provider-and-keys flow on one store: create, add a key, disable/enable, rotate. */
function providerAndKeys(label, store) {
  describe(`a provider and its keys (${label})`, () => {
    let server;
    // On a shared database a standard name could be taken: a custom provider of a unique name.
    const name = store === "sqlite" ? "openai" : `browser-${unique()}`;
    before(async () => {
      server = await startServer({ store, tokens: { ops: { scopes: ALL } } });
    }, HOOK);
    after(async () => {
      if (server && store !== "sqlite") {
        await server.api("DELETE", `/api/providers/${encodeURIComponent(name)}`).catch(() => {});
      }
      await server?.stop();
    }, HOOK);

    test("create a provider, add a key, disable and enable it, rotate it; no secret is ever shown", T, async () => {
      const first = `sk-first-${unique()}-SECRETMIDDLEPART-${unique()}`;
      const second = `sk-second-${unique()}-OTHERSECRETMIDDLE-${unique()}`;
      const context = await newContext(browser);
      try {
        const page = await guardedPage(context);
        const seen = [];
        const noSecret = async () => {
          const html = await page.content();
          seen.push(page.url());
          for (const secret of [first, second]) {
            for (const part of [secret, secret.slice(8, 40), secret.slice(-20)]) {
              assert.ok(!html.includes(part), `${page.url()} shows secret text ${part}`);
            }
          }
        };
        await login(page, server, "ops");

        await page.getByRole("link", { name: "New provider" }).click();
        await page.waitForURL(`${server.url}/ui/new`);
        await page.getByLabel("Name (required)").fill(name);
        await field(page, "network_config.base_url").fill("https://api.one.test/v1");
        if (name !== "openai") {
          await field(page, "custom_provider_config.base_provider_type").selectOption("openai");
        }
        const created = await submit(page, page.getByRole("button", { name: "Create provider" }));
        assert.equal(page.url(), `${server.url}/ui/providers/${name}`, await page.locator("main").innerText());
        assert.equal(created.status(), 200);
        assert.equal(await page.locator("h1").innerText(), name);
        assert.match(await page.locator("main").innerText(), /https:\/\/api\.one\.test\/v1/);
        assert.equal(await baseUrlOf(server, name), "https://api.one.test/v1");
        await noSecret();

        await page.getByRole("link", { name: "Add a key" }).click();
        await page.waitForURL(`${server.url}/ui/providers/${name}/new-key`);
        await noSecret();
        await page.locator("#f-id").fill("k1");
        await page.locator("#f-name").fill("primary");
        assert.equal(await page.locator("#f-value").getAttribute("type"), "password");
        await page.locator("#f-value").pressSequentially(first);
        await page.locator("#f-models").fill("gpt-4o\ngpt-4o-mini");
        await submit(page, page.getByRole("button", { name: "Add key" }));
        assert.equal(page.url(), `${server.url}/ui/providers/${name}`, await page.locator("main").innerText());
        await noSecret();

        const row = page.locator("tbody tr", { has: page.locator("code", { hasText: /^k1$/ }) });
        const cells = row.locator("td");
        assert.equal(await row.locator("th").innerText(), "primary");
        const redacted = await cells.nth(1).innerText();
        assert.match(redacted, /^set: \S+/, "the value is shown in a redacted form");
        assert.match(await cells.nth(2).innerText(), /gpt-4o, gpt-4o-mini/);
        assert.equal(await cells.nth(4).innerText(), "yes");
        const keys = await server.api("GET", `/api/providers/${encodeURIComponent(name)}/keys`);
        assert.equal(keys.status, 200, keys.text);
        assert.ok(!keys.text.includes(first), "the API hands out the secret");

        // Disable, then enable again (one toggle button, named for the key).
        await submit(page, page.getByRole("button", { name: "Disable key k1" }));
        assert.equal(await cells.nth(4).innerText(), "no");
        assert.ok(await page.getByRole("button", { name: "Enable key k1" }).isVisible());
        let stored = await server.api("GET", `/api/providers/${encodeURIComponent(name)}`);
        assert.equal(stored.json.keys[0].enabled, false);
        await noSecret();
        await submit(page, page.getByRole("button", { name: "Enable key k1" }));
        assert.equal(await cells.nth(4).innerText(), "yes");
        stored = await server.api("GET", `/api/providers/${encodeURIComponent(name)}`);
        assert.equal(stored.json.keys[0].enabled, true);
        await noSecret();

        // Rotate.
        await page.getByRole("link", { name: "Rotate key k1" }).click();
        await page.waitForURL(`${server.url}/ui/providers/${name}/keys/k1/rotate`);
        assert.match(await page.locator("#f-value-help").innerText(), /Stored: set: /);
        assert.equal(await page.locator("#f-value").getAttribute("type"), "password");
        await noSecret();
        await page.locator("#f-value").pressSequentially(second);
        await submit(page, page.getByRole("button", { name: "Rotate key" }));
        assert.equal(page.url(), `${server.url}/ui/providers/${name}`, await page.locator("main").innerText());
        await noSecret();
        const rotated = await cells.nth(1).innerText();
        assert.match(rotated, /^set: \S+/);
        assert.notEqual(rotated, redacted, "the shown value changed with the rotation");
        stored = await server.api("GET", `/api/providers/${encodeURIComponent(name)}`);
        assert.equal(stored.json.keys.length, 1);
        assert.equal(stored.json.keys[0].enabled, true, "rotating keeps the key enabled");
        assert.deepEqual(stored.json.keys[0].models, ["gpt-4o", "gpt-4o-mini"]);

        // The key's edit form and the history hold no secret either.
        await page.getByRole("link", { name: "Edit key k1" }).click();
        await page.waitForURL(`${server.url}/ui/providers/${name}/keys/k1`);
        assert.equal(await page.locator("#f-value").inputValue(), "");
        await noSecret();
        await page.goto(`${server.url}/ui/providers/${name}/history`);
        await noSecret();
        const revisions = (await server.api("GET", `/api/providers/${encodeURIComponent(name)}/history`)).json.revisions;
        const newest = revisions[0].revision;
        const oldest = revisions[revisions.length - 1].revision;
        await page.goto(`${server.url}/ui/providers/${name}/diff?from=${oldest}&to=${newest}`);
        await noSecret();
        assert.ok(seen.length >= 10);
        page.assertClean();
      } finally {
        await context.close();
      }
    });
  });
}

providerAndKeys("SQLite", "sqlite");
if (process.env.BIFROST_TEST_POSTGRES_URL) {
  providerAndKeys("PostgreSQL", process.env.BIFROST_TEST_POSTGRES_URL);
}

// ---------------------------------------------------------------------------------------------

describe("editing: conflicts, the live notice, history, delete and restore", () => {
  let server;
  before(async () => {
    server = await startServer({
      tokens: { ops: { scopes: ALL }, alice: { scopes: ALL }, bob: { scopes: ALL } },
    });
  }, HOOK);
  after(async () => {
    await server?.stop();
  }, HOOK);

  test("two sessions edit one provider: the second save shows the conflict, then saves over it", T, async () => {
    await createProvider(server, "openai", "https://api.start.test");
    const contextA = await newContext(browser);
    const contextB = await newContext(browser);
    try {
      const a = await guardedPage(contextA);
      const b = await guardedPage(contextB);
      await login(a, server, "alice");
      await login(b, server, "bob");
      await a.goto(`${server.url}/ui/providers/openai/edit`);
      await b.goto(`${server.url}/ui/providers/openai/edit`);
      assert.equal(await field(a, "network_config.base_url").inputValue(), "https://api.start.test");
      assert.equal(await field(b, "network_config.base_url").inputValue(), "https://api.start.test");

      await field(a, "network_config.base_url").fill("https://api.alice.test");
      await submit(a, a.getByRole("button", { name: "Save", exact: true }));
      assert.equal(a.url(), `${server.url}/ui/providers/openai`, await a.locator("main").innerText());
      assert.equal(await baseUrlOf(server, "openai"), "https://api.alice.test");

      // bob's open form says so before he saves.
      const warned = b.locator("#live p.banner.notice");
      await warned.waitFor({ timeout: 5_000 });
      assert.match(await warned.innerText(), /openai was changed elsewhere .* since this form was opened/);

      await field(b, "network_config.base_url").fill("https://api.bob.test");
      const lost = await submit(b, b.getByRole("button", { name: "Save", exact: true }));
      assert.equal(lost.status(), 412, await b.locator("main").innerText());
      const conflict = b.locator("#conflict");
      await conflict.waitFor();
      assert.equal(
        await conflict.getByRole("heading").innerText(),
        "Someone else changed this since you opened it",
      );
      const row = conflict.locator("tbody tr", { hasText: "network_config.base_url" });
      assert.deepEqual(await row.locator("th, td").allInnerTexts(), [
        "network_config.base_url",
        "https://api.start.test",
        "https://api.alice.test",
        "https://api.bob.test",
      ]);
      // Nothing was saved, the form still holds bob's value, and the problem has the focus.
      assert.equal(await baseUrlOf(server, "openai"), "https://api.alice.test");
      assert.equal(await field(b, "network_config.base_url").inputValue(), "https://api.bob.test");
      await b.waitForFunction(() => document.activeElement?.id === "conflict", null, { timeout: WAIT });

      await submit(b, b.getByRole("button", { name: "Save over the stored version" }));
      assert.equal(b.url(), `${server.url}/ui/providers/openai`, await b.locator("main").innerText());
      assert.equal(await baseUrlOf(server, "openai"), "https://api.bob.test");
      assert.match(await b.locator("main").innerText(), /https:\/\/api\.bob\.test/);
      a.assertClean();
      b.assertClean();
    } finally {
      await contextA.close();
      await contextB.close();
    }
  });

  test("live notice: a change made elsewhere is announced on the provider's page", T, async () => {
    await createProvider(server, "live-one", "https://api.live.test");
    const context = await newContext(browser);
    try {
      const page = await guardedPage(context);
      await login(page, server, "ops");
      await page.goto(`${server.url}/ui/providers/live-one`);
      // Nothing is announced while nothing changes (the script is running: give it a moment).
      await page.waitForTimeout(700);
      assert.equal(await page.locator("#live p.banner.notice").count(), 0);
      const changed = await server.api("PUT", "/api/providers/live-one", {
        network_config: { base_url: "https://api.elsewhere.test" },
        custom_provider_config: { base_provider_type: "openai" },
      });
      assert.equal(changed.status, 200, changed.text);
      const notice = page.locator("#live p.banner.notice");
      await notice.waitFor({ timeout: 5_000 });
      assert.match(await notice.innerText(), /live-one was changed elsewhere \(revision \d+, update\)/);
      assert.equal(await page.locator("#live").getAttribute("aria-live"), "polite");
      await submit(page, notice.getByRole("link", { name: "Reload" }));
      assert.match(await page.locator("main").innerText(), /https:\/\/api\.elsewhere\.test/);

      // The list announces it too.
      await page.goto(`${server.url}/ui`);
      await page.waitForTimeout(300);
      assert.equal(await page.locator("#live p.banner.notice").count(), 0);
      const again = await server.api("PUT", "/api/providers/live-one", {
        network_config: { base_url: "https://api.elsewhere-again.test" },
        custom_provider_config: { base_provider_type: "openai" },
      });
      assert.equal(again.status, 200, again.text);
      const listed = page.locator("#live p.banner.notice");
      await listed.waitFor({ timeout: 5_000 });
      assert.match(await listed.innerText(), /1 change elsewhere since this page was loaded \(last: live-one, update\)/);
      page.assertClean();
    } finally {
      await context.close();
    }
  });

  test("history: the diff of two revisions shows the changed field; a rollback restores it", T, async () => {
    await createProvider(server, "hist-one", "https://api.v1.test");
    const changed = await server.api("PUT", "/api/providers/hist-one", {
      network_config: { base_url: "https://api.v2.test" },
      custom_provider_config: { base_provider_type: "openai" },
    });
    assert.equal(changed.status, 200, changed.text);
    const revisions = (await server.api("GET", "/api/providers/hist-one/history")).json.revisions;
    const [newest, older] = revisions.map((r) => r.revision);
    const context = await newContext(browser);
    try {
      const page = await guardedPage(context);
      await login(page, server, "ops");
      await page.goto(`${server.url}/ui/providers/hist-one`);
      await page.getByRole("link", { name: "History" }).click();
      await page.waitForURL(`${server.url}/ui/providers/hist-one/history`);
      await page.locator("#from").selectOption(String(older));
      await page.locator("#to").selectOption(String(newest));
      await submit(page, page.getByRole("button", { name: "Show the diff" }));
      assert.equal(page.url(), `${server.url}/ui/providers/hist-one/diff?from=${older}&to=${newest}`);
      const row = page.locator("table.diff tbody tr", { has: page.locator("th", { hasText: /^network_config\.base_url$/ }) });
      assert.deepEqual(await row.locator("th, td").allInnerTexts(), [
        "network_config.base_url",
        "https://api.v1.test",
        "https://api.v2.test",
      ]);
      assert.match(await page.locator("table.diff caption").innerText(), /^1 fields? differs?$/);

      await page.getByRole("link", { name: "Back to the history" }).click();
      await page.waitForURL(`${server.url}/ui/providers/hist-one/history`);
      assert.equal(await page.getByRole("button", { name: `Roll back to ${newest}` }).count(), 0, "no rollback to the current revision");
      await submit(page, page.getByRole("button", { name: `Roll back to ${older}` }));
      assert.equal(page.url(), `${server.url}/ui/providers/hist-one`, await page.locator("main").innerText());
      assert.equal(await baseUrlOf(server, "hist-one"), "https://api.v1.test");
      assert.match(await page.locator("main").innerText(), /https:\/\/api\.v1\.test/);
      const after = (await server.api("GET", "/api/providers/hist-one/history")).json.revisions;
      assert.equal(after[0].source, "rollback");
      page.assertClean();
    } finally {
      await context.close();
    }
  });

  test("a refused form keeps what was typed and shows the error at its field, focused", T, async () => {
    const context = await newContext(browser);
    try {
      const page = await guardedPage(context);
      await login(page, server, "ops");
      await page.goto(`${server.url}/ui/new`);
      await page.locator("#f-provider").fill("mistral");
      await field(page, "network_config.base_url").fill("not a url");
      const refused = await submit(page, page.getByRole("button", { name: "Create provider" }));
      assert.equal(refused.status(), 400, await page.locator("main").innerText());
      const summary = page.locator("#error-summary");
      await summary.waitFor();
      assert.match(await summary.innerText(), /Not saved: Base URL is not a valid http or https URL/);
      await page.waitForFunction(() => document.activeElement?.id === "error-summary", null, { timeout: WAIT });
      const input = field(page, "network_config.base_url");
      assert.equal(await input.inputValue(), "not a url");
      assert.equal(await input.getAttribute("aria-invalid"), "true");
      assert.match(await input.getAttribute("aria-describedby"), /f-network_config\.base_url-error/);
      assert.match(await page.locator('[id="f-network_config.base_url-error"]').innerText(), /not a valid http or https URL/);
      assert.equal(await page.locator("#f-provider").inputValue(), "mistral");
      await summary.getByRole("link", { name: "Go to the field" }).click();
      await page.waitForFunction(() => location.hash === "#f-network_config.base_url", null, { timeout: WAIT });
      assert.equal((await server.api("GET", "/api/providers/mistral")).status, 404, "nothing was created");
      page.assertClean();
    } finally {
      await context.close();
    }
  });

  test("delete a provider after its confirmation, then restore it from the Deleted page", T, async () => {
    await createProvider(server, "gone-one", "https://api.gone.test");
    const context = await newContext(browser);
    try {
      const page = await guardedPage(context);
      await login(page, server, "ops");
      await page.goto(`${server.url}/ui/providers/gone-one`);
      await page.getByRole("link", { name: "Delete provider" }).click();
      await page.waitForURL(`${server.url}/ui/providers/gone-one/delete`);
      assert.match(await page.locator("main").innerText(), /Delete gone-one and its 0 keys\?/);
      // Reaching the confirmation deleted nothing.
      assert.equal(await baseUrlOf(server, "gone-one"), "https://api.gone.test");
      await submit(page, page.getByRole("button", { name: "Delete gone-one" }));
      assert.equal(page.url(), `${server.url}/ui`);
      assert.equal(await page.getByRole("link", { name: "gone-one", exact: true }).count(), 0);
      assert.equal((await server.api("GET", "/api/providers/gone-one")).status, 404);

      await page.getByRole("link", { name: "Deleted" }).click();
      await page.waitForURL(`${server.url}/ui/deleted`);
      const restore = page.getByRole("button", { name: /^Restore gone-one \(revision \d+\)$/ });
      await submit(page, restore);
      assert.equal(page.url(), `${server.url}/ui/providers/gone-one`, await page.locator("main").innerText());
      assert.equal(await baseUrlOf(server, "gone-one"), "https://api.gone.test");
      await page.goto(`${server.url}/ui/deleted`);
      assert.equal(await page.getByRole("button", { name: /^Restore gone-one/ }).count(), 0);
      page.assertClean();
    } finally {
      await context.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------

/** What has the focus: a description, and whether its focus indicator is visible. */
function focused(page) {
  return page.evaluate(() => {
    const el = document.activeElement;
    if (!el || el === document.body) return { tag: "body", visible: false };
    const style = getComputedStyle(el);
    const rect = el.getBoundingClientRect();
    const outline = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2;
    const onScreen =
      rect.width > 0 && rect.height > 0 && rect.right > 0 && rect.bottom > 0 &&
      rect.left < window.innerWidth && rect.top < window.innerHeight;
    return {
      tag: el.tagName.toLowerCase(),
      id: el.id,
      key: el.id || `${el.tagName.toLowerCase()}:${(el.textContent || "").trim()}`,
      text: (el.textContent || "").trim(),
      className: el.className,
      visible: outline && onScreen,
      outline: `${style.outlineStyle} ${style.outlineWidth}`,
    };
  });
}

describe("keyboard only", () => {
  let server;
  before(async () => {
    server = await startServer({ tokens: { ops: { scopes: ALL } } });
  }, HOOK);
  after(async () => {
    await server?.stop();
  }, HOOK);

  test("log in and create a provider with Tab, Enter and typing alone; focus is always visible", T, async () => {
    const context = await newContext(browser);
    try {
      const page = await guardedPage(context);
      const tab = async () => {
        await page.keyboard.press("Tab");
        const now = await focused(page);
        assert.ok(now.visible, `no visible focus on ${JSON.stringify(now)} (${page.url()})`);
        return now;
      };
      /** Tabs until `wanted(focus)`, at most `limit` times. */
      const tabTo = async (wanted, limit, what) => {
        for (let i = 0; i < limit; i++) {
          const now = await tab();
          if (wanted(now)) return now;
        }
        assert.fail(`${what}: not reached with ${limit} presses of Tab on ${page.url()}`);
      };
      const enter = async () => {
        await Promise.all([page.waitForNavigation({ timeout: WAIT }), page.keyboard.press("Enter")]);
      };

      await page.goto(`${server.url}/ui/login`);
      let now = await tab();
      assert.equal(now.className, "skip", `the first Tab stop is ${JSON.stringify(now)}`);
      assert.equal(now.text, "Skip to content");
      await tabTo((f) => f.id === "token", 6, "the token field");
      await page.keyboard.type(server.token("ops"));
      await enter();
      assert.equal(page.url(), `${server.url}/ui`, await page.locator("main").innerText());

      now = await tab();
      assert.equal(now.className, "skip", `the first Tab stop of the list is ${JSON.stringify(now)}`);
      await tabTo((f) => f.tag === "a" && f.text === "New provider", 4, "the New provider link");
      await enter();
      assert.equal(page.url(), `${server.url}/ui/new`);

      // The skip link goes past the header straight to the form.
      now = await tab();
      assert.equal(now.className, "skip");
      await page.keyboard.press("Enter");
      now = await tab();
      assert.equal(now.id, "f-provider", `after the skip link, Tab reached ${JSON.stringify(now)}`);
      await page.keyboard.type("openai");

      // Every control of the form is reached in turn, each with a visible focus.
      const controls = await page.$$eval(
        "main form input:not([type=hidden]), main form select, main form textarea, main form button",
        (els) => els.map((e) => e.id || `${e.tagName.toLowerCase()}:${e.textContent.trim()}`),
      );
      assert.ok(controls.length > 20, `only ${controls.length} controls`);
      const reached = new Set(["f-provider"]);
      for (let i = 0; i < controls.length + 5; i++) {
        now = await tab();
        reached.add(now.key);
        if (now.id === "f-network_config.base_url") await page.keyboard.type("https://api.keyboard.test");
        if (now.tag === "button" && now.text === "Create provider") break;
      }
      assert.equal(now.text, "Create provider", `Tab ended on ${JSON.stringify(now)}`);
      const missed = controls.filter((c) => !reached.has(c));
      assert.deepEqual(missed, [], "controls Tab never reached");
      await enter();
      assert.equal(page.url(), `${server.url}/ui/providers/openai`, await page.locator("main").innerText());
      assert.equal(await baseUrlOf(server, "openai"), "https://api.keyboard.test");
      page.assertClean();
    } finally {
      await context.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------

/** Makes the state every page needs: a provider with a key and two revisions, a deleted one. */
async function furnish(server) {
  await createProvider(server, "openai", "https://api.one.test", {
    keys: [{ id: "k1", name: "primary", value: "sk-furnished-0123456789abcdef", models: ["gpt-4o"], weight: 1 }],
  });
  const changed = await server.api("PUT", "/api/providers/openai", {
    network_config: { base_url: "https://api.two.test" },
  });
  assert.equal(changed.status, 200, changed.text);
  await createProvider(server, "gone-one", "https://api.gone.test");
  const gone = await server.api("DELETE", "/api/providers/gone-one");
  assert.ok(gone.status < 300, gone.text);
  return (await server.api("GET", "/api/providers/openai/history")).json.revisions.map((r) => r.revision);
}

describe("layout", () => {
  let server;
  let revisions;
  before(async () => {
    server = await startServer({ tokens: { ops: { scopes: ALL } } });
    revisions = await furnish(server);
  }, HOOK);
  after(async () => {
    await server?.stop();
  }, HOOK);

  test("the keys table's cells line up: every cell of a row is as tall as the row", T, async () => {
    const context = await newContext(browser);
    try {
      const page = await guardedPage(context);
      await login(page, server, "ops");
      await page.goto(`${server.url}/ui/providers/openai`);
      const rows = await page.evaluate(() =>
        [...document.querySelectorAll("main table tbody tr")].map((tr) => {
          const row = tr.getBoundingClientRect();
          return [...tr.children]
            .map((cell) => ({ cell, box: cell.getBoundingClientRect() }))
            .filter(({ box }) => Math.abs(box.top - row.top) > 1 || Math.abs(box.bottom - row.bottom) > 1)
            .map(({ cell, box }) =>
              `${cell.tagName.toLowerCase()}${cell.className ? "." + cell.className : ""} ` +
              `(${Math.round(box.top)}-${Math.round(box.bottom)}, row ${Math.round(row.top)}-${Math.round(row.bottom)}, ` +
              `display ${getComputedStyle(cell).display})`,
            );
        }),
      );
      assert.ok(rows.length >= 1, "the keys table has a row");
      assert.deepEqual(rows.flat(), [], "cells that do not fill their row");
      page.assertClean();
    } finally {
      await context.close();
    }
  });

  test("phone width (375x667): no page scrolls sideways; wide tables scroll inside their .scroll wrapper", T, async () => {
    const context = await newContext(browser, { viewport: { width: 375, height: 667 } });
    try {
      const page = await guardedPage(context);
      await page.goto(`${server.url}/ui/login`);
      const wide = [];
      const check = async (path) => {
        if (path) await page.goto(server.url + path);
        const sizes = await page.evaluate(() => {
          const root = document.documentElement;
          const out = [...document.querySelectorAll("table")].filter(
            (t) => !t.closest(".scroll") && t.getBoundingClientRect().right > root.clientWidth + 1,
          );
          return {
            scrollWidth: root.scrollWidth,
            clientWidth: root.clientWidth,
            tablesOutsideScroll: out.length,
            // What sticks out: anything outside a .scroll wrapper, and anything positioned
            // out of the flow (which a wrapper without a position does not hold in).
            widest: [...document.querySelectorAll("body *")]
              .filter((e) => e.getBoundingClientRect().right > root.clientWidth + 1)
              .filter((e) => !e.closest(".scroll") || ["absolute", "fixed"].includes(getComputedStyle(e).position))
              .slice(0, 3)
              .map((e) => `${e.tagName.toLowerCase()}${e.id ? "#" + e.id : ""}${e.className ? "." + e.className : ""} (right ${Math.round(e.getBoundingClientRect().right)})`),
          };
        });
        if (sizes.scrollWidth > sizes.clientWidth + 1 || sizes.tablesOutsideScroll) {
          wide.push(`${path || page.url()}: scrollWidth ${sizes.scrollWidth} > ${sizes.clientWidth}; widest: ${sizes.widest.join(", ")}`);
        }
      };
      await check(null);
      await login(page, server, "ops");
      for (const path of [
        "/ui",
        "/ui/providers/openai",
        "/ui/providers/openai/edit",
        "/ui/new",
        "/ui/providers/openai/new-key",
        "/ui/providers/openai/keys/k1",
        "/ui/providers/openai/keys/k1/rotate",
        "/ui/providers/openai/history",
        `/ui/providers/openai/diff?from=${revisions[1]}&to=${revisions[0]}`,
        "/ui/providers/openai/delete",
        "/ui/deleted",
        "/ui/sync",
      ]) {
        await check(path);
      }
      assert.deepEqual(wide, [], "pages wider than the phone");
      page.assertClean();
    } finally {
      await context.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe("accessibility (axe-core)", () => {
  let server;
  let revisions;
  let context;
  let page;
  before(async () => {
    server = await startServer({ tokens: { ops: { scopes: ALL } } });
    revisions = await furnish(server);
    // axe is injected as an inline script, which the console's CSP forbids: these checks alone
    // run with the CSP bypassed (every other test runs under it).
    context = await newContext(browser, { bypassCSP: true });
    page = await context.newPage();
  }, HOOK);
  after(async () => {
    await context?.close();
    await server?.stop();
  }, HOOK);

  async function audit() {
    await page.addScriptTag({ content: axe.source });
    const results = await page.evaluate(() =>
      window.axe.run(document, { resultTypes: ["violations"] }),
    );
    // Proof that axe looked at the page at all (a blocked or broken injection finds nothing).
    assert.ok(results.passes.length + results.incomplete.length > 10, `axe checked ${results.passes.length} rules`);
    return results.violations.map(
      (v) =>
        `${v.id} (${v.impact}): ${v.help} — ${v.nodes
          .slice(0, 4)
          .map((n) => n.target.join(" "))
          .join("; ")}${v.nodes.length > 4 ? ` … ${v.nodes.length} nodes` : ""}`,
    );
  }

  async function visit(path, expectStatus = 200) {
    const response = await page.goto(server.url + path);
    assert.equal(response.status(), expectStatus, `${path}: ${await page.locator("main").innerText()}`);
  }

  const pages = [
    ["login", async () => visit("/ui/login")],
    [
      "login with an error",
      async () => {
        await visit("/ui/login");
        await page.locator("#token").fill("bt-wrong-token-000000000000");
        const refused = await submit(page, page.getByRole("button", { name: "Log in" }));
        assert.equal(refused.status(), 401, await page.locator("main").innerText());
        await page.locator("#token-error").waitFor();
      },
    ],
    ["provider list", async () => visit("/ui")],
    ["provider", async () => visit("/ui/providers/openai")],
    ["edit form", async () => visit("/ui/providers/openai/edit")],
    ["new provider form", async () => visit("/ui/new")],
    [
      "new provider form with an error",
      async () => {
        await visit("/ui/new");
        await page.locator("#f-provider").fill("openai");
        await field(page, "network_config.base_url").fill("https://api.dup.test");
        const refused = await submit(page, page.getByRole("button", { name: "Create provider" }));
        assert.ok(refused.status() >= 400, `creating a second openai answered ${refused.status()}`);
        await page.locator("#error-summary").waitFor();
      },
    ],
    ["new key form", async () => visit("/ui/providers/openai/new-key")],
    ["key form", async () => visit("/ui/providers/openai/keys/k1")],
    ["rotate form", async () => visit("/ui/providers/openai/keys/k1/rotate")],
    ["history", async () => visit("/ui/providers/openai/history")],
    ["diff", async () => visit(`/ui/providers/openai/diff?from=${revisions[1]}&to=${revisions[0]}`)],
    ["delete confirmation", async () => visit("/ui/providers/openai/delete")],
    ["key delete confirmation", async () => visit("/ui/providers/openai/keys/k1/delete")],
    ["deleted providers", async () => visit("/ui/deleted")],
    ["gateways", async () => visit("/ui/sync")],
    [
      "conflict view",
      async () => {
        await visit("/ui/providers/openai/edit");
        const changed = await server.api("PUT", "/api/providers/openai", {
          network_config: { base_url: `https://api.${unique()}.test` },
        });
        assert.equal(changed.status, 200, changed.text);
        await field(page, "network_config.base_url").fill("https://api.mine.test");
        const lost = await submit(page, page.getByRole("button", { name: "Save", exact: true }));
        assert.equal(lost.status(), 412, await page.locator("main").innerText());
        await page.locator("#conflict").waitFor();
      },
    ],
    ["a missing provider (error page)", async () => visit("/ui/providers/nobody-here", 404)],
  ];

  for (const [name, reach] of pages) {
    test(`no axe violations: ${name}`, T, async () => {
      if (name === "login" || name === "login with an error") {
        // The login page is seen without a session.
        await context.clearCookies();
      } else {
        await page.goto(`${server.url}/ui`);
        if (page.url().endsWith("/ui/login")) await login(page, server, "ops");
      }
      await reach();
      const violations = await audit();
      assert.deepEqual(violations, [], `${name} (${page.url()})`);
    });
  }
});
