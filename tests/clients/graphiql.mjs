// GraphiQL in a real browser: Debian's headless Chromium, driven by playwright-core, opens
// GET /graphql, runs `register` through the UI, puts the access token in the headers
// editor, runs `me`, checks the result on screen and saves a screenshot.
//
// There is no internet in CI, so requests for the page's pinned CDN assets
// (https://unpkg.com/<package>@<version>/<file>) are answered from the npm packages
// installed next to this script, and only when their installed version is the pinned
// one. Each carries an SRI hash in the page, which Chromium checks against those bytes: a
// wrong hash blocks the file (a console error) and GraphiQL never starts. Any other
// outside request, a Content-Security-Policy violation or a console error fails the test.
//
//   AUTH_SERVER_URL=http://127.0.0.1:4000/graphql SCREENSHOT=graphiql.png node graphiql.mjs

import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const url = process.env.AUTH_SERVER_URL ?? "http://127.0.0.1:4000/graphql";
const screenshot = process.env.SCREENSHOT ?? join(here, "graphiql.png");
const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const email = `graphiql-${process.pid}-${Date.now()}@example.com`;

const CONTENT_TYPES = { ".js": "application/javascript", ".css": "text/css", ".map": "application/json" };

/** The file of an installed package for `/<name>@<version>/<path>`, if its version matches. */
function pinnedAsset(pathname) {
  const match = /^\/((?:@[^/]+\/)?[^/@]+)@([^/]+)\/(.+)$/.exec(pathname);
  if (!match) return { error: `not a pinned package URL: ${pathname}` };
  const [, name, version, file] = match;
  const root = join(here, "node_modules", name);
  const manifest = join(root, "package.json");
  if (!existsSync(manifest)) return { error: `${name} is not installed` };
  const installed = JSON.parse(readFileSync(manifest, "utf8")).version;
  if (installed !== version) {
    return { error: `${name}@${version} is pinned by the page, ${installed} is installed` };
  }
  const path = normalize(join(root, file));
  if (!path.startsWith(root + "/") || !existsSync(path)) return { error: `no ${file} in ${name}` };
  return { path };
}

const problems = [];
const served = [];
const browser = await chromium.launch({
  executablePath: chromiumPath,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
try {
  const context = await browser.newContext({ viewport: { width: 1400, height: 860 } });
  const page = await context.newPage();
  const origin = new URL(url).origin;

  await page.route("**/*", async (route) => {
    const requested = new URL(route.request().url());
    if (requested.origin === origin) return route.continue();
    if (requested.origin === "https://unpkg.com") {
      const asset = pinnedAsset(requested.pathname);
      if (asset.path) {
        served.push(requested.pathname);
        const ext = asset.path.slice(asset.path.lastIndexOf("."));
        return route.fulfill({
          status: 200,
          body: readFileSync(asset.path),
          headers: {
            "content-type": CONTENT_TYPES[ext] ?? "application/octet-stream",
            "access-control-allow-origin": "*",
          },
        });
      }
      problems.push(`unpkg: ${asset.error}`);
      return route.abort();
    }
    problems.push(`unexpected outside request: ${requested.href}`);
    return route.abort();
  });
  page.on("console", (msg) => {
    if (msg.type() === "error" || /Content.Security.Policy/i.test(msg.text())) {
      problems.push(`console ${msg.type()}: ${msg.text()}`);
    }
  });
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  // Every CSP violation, reported or not on the console (inline styles, fonts, images…).
  await page.exposeFunction("reportViolation", (v) => problems.push(`CSP violation: ${v}`));
  await page.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) => {
      window.reportViolation(`${e.effectiveDirective} blocked ${e.blockedURI || "inline"}`);
    });
  });

  const response = await page.goto(url, { waitUntil: "load" });
  assert.equal(response?.status(), 200, "GET /graphql serves GraphiQL");
  const csp = response.headers()["content-security-policy"] ?? "";
  assert.match(csp, /script-src /, "the page has a CSP");
  const unhashed = await page.$$eval('script[src], link[rel="stylesheet"]', (elements) =>
    elements
      .filter(
        (el) =>
          !/^sha384-[A-Za-z0-9+/]{64}$/.test(el.getAttribute("integrity") ?? "") ||
          el.getAttribute("crossorigin") !== "anonymous",
      )
      .map((el) => el.outerHTML),
  );
  assert.deepEqual(unhashed, [], "every external asset of the page carries an SRI hash");

  const queryEditor = page.locator(".graphiql-query-editor .CodeMirror");
  await queryEditor.waitFor({ timeout: 20_000 });
  // GraphiQL started: by now an asset refused for its hash (a blocked stylesheet still
  // lets it start), a CSP violation or a console error has been reported.
  assert.deepEqual(problems, [], "the page loads without a problem");
  // The schema loads by introspection; the documentation explorer then lists the roots.

  /** Replaces the content of a CodeMirror editor by typing into it. */
  async function fill(editor, text) {
    await editor.click();
    await page.keyboard.press("Control+A");
    await page.keyboard.press("Delete");
    // insertText types the text as one input, so the editor's bracket closing stays out.
    await page.keyboard.insertText(text);
    const value = await editor.evaluate((el) => el.CodeMirror.getValue());
    assert.equal(value, text, "the editor holds what was typed");
    // GraphiQL re-reads the operation name from the editor after a short debounce.
    await page.waitForTimeout(750);
  }

  /** Runs the query in the editor and waits for a response that contains `expected`. */
  async function run(expected) {
    await page.locator(".graphiql-execute-button").click();
    const result = page.locator(".graphiql-response .CodeMirror");
    await page.waitForFunction(
      (needle) => {
        const el = document.querySelector(".graphiql-response .CodeMirror");
        return el?.CodeMirror?.getValue().includes(needle);
      },
      expected,
      { timeout: 20_000 },
    ).catch(async (error) => {
      const shown = await result.evaluate((el) => el.CodeMirror.getValue()).catch(() => "");
      await page.screenshot({ path: screenshot }).catch(() => {});
      throw new Error(`no ${expected} in the response pane: ${shown}\n${problems.join("\n")}`, {
        cause: error,
      });
    });
    const text = await result.evaluate((el) => el.CodeMirror.getValue());
    return JSON.parse(text);
  }

  // 1. register, typed into the query editor.
  await fill(
    queryEditor,
    `mutation Register {\n  register(input: {email: "${email}", password: "correct horse battery"}) {\n    accessToken\n    refreshToken\n    user { id email }\n  }\n}`,
  );
  const registered = await run("accessToken");
  assert.equal(registered.errors, undefined, JSON.stringify(registered.errors));
  const { accessToken, user } = registered.data.register;
  assert.equal(user.email, email);

  // 2. The token in the headers editor, then `me`.
  await page.locator(".graphiql-editor-tools button", { hasText: "Headers" }).click();
  const headersEditor = page.locator(".graphiql-editor-tool .CodeMirror").filter({ visible: true });
  await fill(headersEditor, `{\n  "Authorization": "Bearer ${accessToken}"\n}`);
  await fill(queryEditor, "query Me {\n  me {\n    id\n    email\n    username\n    createdAt\n  }\n}");
  const me = await run(email);
  assert.equal(me.errors, undefined, JSON.stringify(me.errors));
  assert.equal(me.data.me.id, user.id);
  assert.equal(me.data.me.email, email);

  // What a person sees: the response pane shows the account.
  const visible = await page.locator(".graphiql-response").innerText();
  assert.ok(visible.includes(email), `the response pane shows ${email}: ${visible}`);
  assert.ok(visible.includes(user.id), "the response pane shows the user id");

  await page.screenshot({ path: screenshot });
  for (const asset of [
    "/graphiql@3.8.3/graphiql.min.css",
    "/graphiql@3.8.3/graphiql.min.js",
    "/react@18.3.1/umd/react.production.min.js",
    "/react-dom@18.3.1/umd/react-dom.production.min.js",
  ]) {
    assert.ok(served.includes(asset), `the page loaded ${asset}`);
  }
} finally {
  // Also when an assertion failed: a blocked asset is often the cause.
  if (problems.length) console.error(`GraphiQL problems:\n  ${problems.join("\n  ")}`);
  await browser.close();
}

if (problems.length) process.exit(1);
console.log(`GraphiQL: register and me ran in Chromium; screenshot ${screenshot}`);
console.log(`assets served from npm packages: ${served.join(", ")}`);
