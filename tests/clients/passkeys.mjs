// Passkeys in a real browser: Debian's headless Chromium, driven by playwright-core, with
// the DevTools protocol's virtual authenticator (CTAP2, resident keys, user verification)
// standing in for a phone or a security key. A page on the front-end origin
// (http://app.test:PAGE_PORT) calls the server with fetch, as an app would, and the
// browser's own WebAuthn API makes and uses the credentials:
//
//   1. register with a password, add a passkey (beginPasskeyRegistration, create(),
//      finishPasskeyRegistration), log out, log in with the passkey (beginPasskeyLogin,
//      get(), finishPasskeyLogin) and ask `me`: the same account, `amr` hwk+mfa;
//   2. open an account with a passkey alone (beginPasskeySignup, finishPasskeySignup), log
//      out, log in with it, `me`; a password login of that account is refused;
//   3. the first passkey, copied into an authenticator on another origin
//      (http://evil.app.test:PAGE_PORT: a subdomain, which browsers let claim the relying
//      party's id) is refused by the server (INVALID_PASSKEY), and so is a new passkey
//      made there;
//   4. an assertion replayed against its spent challenge is refused (INVALID_TOKEN).
//
// Both names resolve to 127.0.0.1 inside Chromium (--host-resolver-rules), and count as
// secure contexts there (--unsafely-treat-insecure-origin-as-secure), as https would make
// them. (`localhost` would not do: Chromium lets no subdomain claim it as an id, so the
// refusal in 3 would be the browser's, never the server's.) The server must run with
// WEBAUTHN_RP_ID=app.test, WEBAUTHN_ORIGINS=http://app.test:PAGE_PORT and
// CORS_ALLOWED_ORIGINS naming both page origins, so that the refusal is the server's, not
// CORS's.
//
//   AUTH_SERVER_URL=http://127.0.0.1:4000/graphql PAGE_PORT=4010 node passkeys.mjs

import assert from "node:assert/strict";
import { createServer } from "node:http";

import { chromium } from "playwright-core";

const url = process.env.AUTH_SERVER_URL ?? "http://127.0.0.1:4000/graphql";
const pagePort = Number(process.env.PAGE_PORT ?? 4010);
const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const site = process.env.PASSKEY_SITE ?? "app.test";
const origin = `http://${site}:${pagePort}`;
const evilOrigin = `http://evil.${site}:${pagePort}`;
const stamp = `${process.pid}-${Date.now()}`;

// The page: a GraphQL call and the two WebAuthn calls, as a front-end would make them.
const PAGE = `<!doctype html>
<meta charset="utf-8"><title>passkeys</title>
<script>
window.gql = async (query, variables = {}, token = null) => {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = "Bearer " + token;
  const response = await fetch(${JSON.stringify(url)}, {
    method: "POST", headers, body: JSON.stringify({ query, variables }),
  });
  return response.json();
};
window.create = async (options) => {
  const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(JSON.parse(options).publicKey);
  const credential = await navigator.credentials.create({ publicKey });
  return JSON.stringify(credential.toJSON());
};
window.get = async (options) => {
  const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(JSON.parse(options).publicKey);
  const credential = await navigator.credentials.get({ publicKey });
  return JSON.stringify(credential.toJSON());
};
</script>
<p>passkeys test page</p>`;

const pageServer = createServer((req, res) => {
  res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
  res.end(PAGE);
});
await new Promise((resolve) => pageServer.listen(pagePort, resolve));

const AUTH = "accessToken refreshToken user { id email }";
const browser = await chromium.launch({
  executablePath: chromiumPath,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-sync",
    `--host-resolver-rules=MAP ${site} 127.0.0.1, MAP *.${site} 127.0.0.1`,
    `--unsafely-treat-insecure-origin-as-secure=${origin},${evilOrigin}`,
  ],
});

/** A tab on `at` with a virtual authenticator of its own. */
async function tab(context, at) {
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error(`page error on ${at}: ${e}`));
  await page.goto(`${at}/`);
  const cdp = await context.newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2",
      transport: "internal",
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  const gql = (query, variables, token) =>
    page.evaluate(([q, v, t]) => window.gql(q, v, t), [query, variables ?? {}, token ?? null]);
  const create = (options) => page.evaluate((o) => window.create(o), options);
  const get = (options) => page.evaluate((o) => window.get(o), options);
  const credentials = async () =>
    (await cdp.send("WebAuthn.getCredentials", { authenticatorId })).credentials;
  const addCredential = (credential) =>
    cdp.send("WebAuthn.addCredential", { authenticatorId, credential });
  return { page, gql, create, get, credentials, addCredential };
}

function ok(result, field) {
  assert.equal(result.errors, undefined, `${field}: ${JSON.stringify(result.errors)}`);
  return result.data[field];
}

function code(result) {
  return result.errors?.[0]?.extensions?.code;
}

function amr(accessToken) {
  const payload = JSON.parse(Buffer.from(accessToken.split(".")[1], "base64url").toString());
  return payload.amr;
}

/** Logs in with the tab's passkey; the whole result of finishPasskeyLogin. */
async function passkeyLogin(t) {
  const begun = ok(await t.gql("mutation { beginPasskeyLogin { challengeId options } }"), "beginPasskeyLogin");
  const credential = await t.get(begun.options);
  const finished = await t.gql(
    `mutation($c: String!, $k: String!) { finishPasskeyLogin(challengeId: $c, credential: $k) { ${AUTH} } }`,
    { c: begun.challengeId, k: credential },
  );
  return { begun, credential, finished };
}

async function logout(t, refreshToken) {
  const out = await t.gql("mutation($r: String) { logout(refreshToken: $r) }", { r: refreshToken });
  assert.equal(ok(out, "logout"), true);
}

async function me(t, token) {
  return ok(await t.gql("{ me { id email mfaEnabled } }", {}, token), "me");
}

try {
  const context = await browser.newContext();

  // 1. A password account adds a passkey, logs out, logs in with it.
  const home = await tab(context, origin);
  const email = `passkey-${stamp}@example.com`;
  const registered = ok(
    await home.gql(
      `mutation($i: RegisterInput!) { register(input: $i) { ${AUTH} } }`,
      { i: { email, password: "correct horse battery staple" } },
    ),
    "register",
  );
  const begun = ok(
    await home.gql("mutation { beginPasskeyRegistration { challengeId options } }", {}, registered.accessToken),
    "beginPasskeyRegistration",
  );
  const made = await home.create(begun.options);
  const added = ok(
    await home.gql(
      `mutation($c: String!, $k: String!) { finishPasskeyRegistration(challengeId: $c, credential: $k, name: "Chromium") { id name createdAt lastUsedAt } }`,
      { c: begun.challengeId, k: made },
      registered.accessToken,
    ),
    "finishPasskeyRegistration",
  );
  assert.equal(added.name, "Chromium");
  assert.equal(added.lastUsedAt, null);
  const stored = await home.credentials();
  assert.equal(stored.length, 1, "the authenticator keeps one resident credential");
  assert.equal(stored[0].isResidentCredential, true);
  await logout(home, registered.refreshToken);

  const first = await passkeyLogin(home);
  const session = ok(first.finished, "finishPasskeyLogin");
  assert.equal(session.user.id, registered.user.id, "the passkey logs in to its account");
  assert.deepEqual(amr(session.accessToken), ["hwk", "mfa"]);
  const who = await me(home, session.accessToken);
  assert.equal(who.email, email);
  const listed = ok(await home.gql("{ passkeys { id name lastUsedAt } }", {}, session.accessToken), "passkeys");
  assert.equal(listed.length, 1);
  assert.equal(listed[0].id, added.id);
  assert.notEqual(listed[0].lastUsedAt, null, "the login is recorded on the passkey");
  console.log(`passkey login: ${email} -> me ok, amr ${amr(session.accessToken).join(" ")}`);

  // 4. The same assertion again: its challenge is spent.
  const replay = await home.gql(
    `mutation($c: String!, $k: String!) { finishPasskeyLogin(challengeId: $c, credential: $k) { accessToken } }`,
    { c: first.begun.challengeId, k: first.credential },
  );
  assert.equal(code(replay), "INVALID_TOKEN", JSON.stringify(replay));

  // 2. An account opened with a passkey alone, in a tab with an authenticator of its own.
  const fresh = await tab(context, origin);
  const solo = `passkey-only-${stamp}@example.com`;
  const signup = ok(
    await fresh.gql("mutation($e: String!) { beginPasskeySignup(email: $e) { challengeId options } }", { e: solo }),
    "beginPasskeySignup",
  );
  const soloCredential = await fresh.create(signup.options);
  const opened = ok(
    await fresh.gql(
      `mutation($c: String!, $k: String!) { finishPasskeySignup(challengeId: $c, credential: $k) { ${AUTH} } }`,
      { c: signup.challengeId, k: soloCredential },
    ),
    "finishPasskeySignup",
  );
  assert.equal(opened.user.email, solo);
  await logout(fresh, opened.refreshToken);
  const soloLogin = ok((await passkeyLogin(fresh)).finished, "finishPasskeyLogin");
  assert.equal(soloLogin.user.id, opened.user.id);
  assert.equal((await me(fresh, soloLogin.accessToken)).email, solo);
  const noPassword = await fresh.gql(
    `mutation($i: LoginInput!) { login(input: $i) { accessToken } }`,
    { i: { email: solo, password: "!" } },
  );
  assert.equal(code(noPassword), "INVALID_CREDENTIALS");
  console.log(`passkey signup: ${solo} -> login with the passkey, me ok; password login refused`);

  // 3. Another origin: the first passkey copied into an authenticator there, and a new one.
  const evil = await tab(context, evilOrigin);
  await evil.addCredential(stored[0]);
  const stolen = await passkeyLogin(evil);
  assert.equal(code(stolen.finished), "INVALID_PASSKEY", JSON.stringify(stolen.finished));
  const again = ok(
    await evil.gql(
      `mutation($i: LoginInput!) { login(input: $i) { accessToken } }`,
      { i: { email, password: "correct horse battery staple" } },
    ),
    "login",
  );
  // A new passkey made there, by an authenticator without the copy (which the options
  // exclude: the browser would refuse to make a second credential for the account).
  const evilFresh = await tab(context, evilOrigin);
  const evilBegun = ok(
    await evilFresh.gql("mutation { beginPasskeyRegistration { challengeId options } }", {}, again.accessToken),
    "beginPasskeyRegistration",
  );
  const evilMade = await evilFresh.create(evilBegun.options);
  const evilAdded = await evilFresh.gql(
    `mutation($c: String!, $k: String!) { finishPasskeyRegistration(challengeId: $c, credential: $k) { id } }`,
    { c: evilBegun.challengeId, k: evilMade },
    again.accessToken,
  );
  assert.equal(code(evilAdded), "INVALID_PASSKEY", JSON.stringify(evilAdded));
  const still = ok(await evil.gql("{ passkeys { id } }", {}, again.accessToken), "passkeys");
  assert.equal(still.length, 1, "nothing was added from the other origin");
  console.log(`another origin (${evilOrigin}): login and registration refused with INVALID_PASSKEY`);
} finally {
  await browser.close();
  pageServer.close();
}
console.log("passkeys in Chromium: all checks passed");
