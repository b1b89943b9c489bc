// The full session flow against a live auth-server, through two real front-end clients:
// graphql-request (POST, and GET for the `me` query) and Apollo Client, then the account's
// lifecycle with graphql-request. Every operation and result is typed by the code GraphQL
// Code Generator made from ../../schema.graphql.
//
//   AUTH_SERVER_URL=http://127.0.0.1:4000/graphql node dist/flow.js

import assert from "node:assert/strict";
import { createHmac } from "node:crypto";

import { ApolloClient, CombinedGraphQLErrors, HttpLink, InMemoryCache } from "@apollo/client";
import { ClientError, GraphQLClient } from "graphql-request";

import {
  ChangeEmailDocument,
  ChangePasswordDocument,
  ConfirmTotpDocument,
  DeleteAccountDocument,
  DisableTotpDocument,
  EnrollTotpDocument,
  LoginDocument,
  LogoutDocument,
  MeDocument,
  RefreshTokenDocument,
  RegisterDocument,
  type RegisterMutation,
  RequestEmailVerificationDocument,
  RequestPasswordResetDocument,
  ResetPasswordDocument,
  RevokeSessionDocument,
  SecurityEventsDocument,
  SessionsDocument,
  VerifyEmailDocument,
  VerifyMfaDocument,
} from "./generated/graphql.js";

const url = process.env.AUTH_SERVER_URL ?? "http://127.0.0.1:4000/graphql";
const password = "correct horse battery";
const run = `${process.pid}-${Date.now()}`;

/** The HTTP method of every request the clients send, to prove which ones used GET. */
const methods: string[] = [];
const recordingFetch: typeof fetch = (input, init) => {
  methods.push(init?.method ?? (input instanceof Request ? input.method : "GET"));
  return fetch(input, init);
};
const lastMethod = () => methods[methods.length - 1];

/** `Authorization: Bearer <token>`. */
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** The `extensions.code` of the first GraphQL error a client threw. */
function errorCode(error: unknown): string | undefined {
  if (error instanceof ClientError) {
    return error.response.errors?.[0]?.extensions?.["code"] as string | undefined;
  }
  if (CombinedGraphQLErrors.is(error)) {
    return error.errors[0]?.extensions?.["code"] as string | undefined;
  }
  throw error;
}

async function expectCode(code: string, promise: Promise<unknown>): Promise<void> {
  try {
    await promise;
  } catch (error) {
    assert.equal(errorCode(error), code);
    return;
  }
  assert.fail(`expected ${code}`);
}

function checkPayload(payload: RegisterMutation["register"], email: string): void {
  assert.equal(payload.tokenType, "Bearer");
  assert.ok(payload.expiresIn > 0);
  assert.ok(payload.refreshExpiresIn > payload.expiresIn);
  assert.equal(payload.user.email, email);
  assert.ok(!Number.isNaN(Date.parse(payload.user.createdAt)), "createdAt is RFC 3339");
}

async function withGraphqlRequest(): Promise<void> {
  const post = new GraphQLClient(url, { fetch: recordingFetch });
  const get = new GraphQLClient(url, { method: "GET", fetch: recordingFetch });
  const email = `gql-request-${run}@example.com`;
  const username = `gr_${process.pid}`;

  const { register } = await post.request(RegisterDocument, {
    input: { email: ` ${email.toUpperCase()} `, password, username },
  });
  checkPayload(register, email);
  await expectCode(
    "EMAIL_TAKEN",
    post.request(RegisterDocument, { input: { email, password } }),
  );

  const { me } = await post.request(MeDocument, {}, bearer(register.accessToken));
  assert.equal(lastMethod(), "POST");
  assert.deepEqual(me, register.user);
  // The same query over GET (GraphQL over HTTP: query, variables, operationName in the URL).
  const viaGet = await get.request(MeDocument, {}, bearer(register.accessToken));
  assert.equal(lastMethod(), "GET");
  assert.deepEqual(viaGet.me, register.user);

  const { refreshToken: rotated } = await post.request(RefreshTokenDocument, {
    refreshToken: register.refreshToken,
  });
  assert.notEqual(rotated.refreshToken, register.refreshToken);
  assert.equal(rotated.user.id, register.user.id);

  const { login } = await post.request(LoginDocument, { input: { username, password } });
  assert.equal(login.user.id, register.user.id);

  const { logout } = await post.request(LogoutDocument, {}, bearer(rotated.accessToken));
  assert.equal(logout, true);
  await expectCode("UNAUTHENTICATED", post.request(MeDocument, {}, bearer(rotated.accessToken)));
  await expectCode(
    "INVALID_REFRESH_TOKEN",
    post.request(RefreshTokenDocument, { refreshToken: rotated.refreshToken }),
  );
  // The session opened by login lives on until it is logged out with its refresh token.
  assert.equal((await get.request(MeDocument, {}, bearer(login.accessToken))).me.id, login.user.id);
  const { logout: out } = await post.request(LogoutDocument, {
    refreshToken: login.refreshToken,
    allSessions: true,
  });
  assert.equal(out, true);
  await expectCode("UNAUTHENTICATED", get.request(MeDocument, {}, bearer(login.accessToken)));
  console.log("graphql-request: register → me (POST, GET) → refresh → login → logout: ok");
}

async function withApollo(): Promise<void> {
  const client = new ApolloClient({
    link: new HttpLink({ uri: url, useGETForQueries: true, fetch: recordingFetch }),
    cache: new InMemoryCache(),
    defaultOptions: { query: { fetchPolicy: "no-cache" }, mutate: { fetchPolicy: "no-cache" } },
  });
  const email = `apollo-${run}@example.com`;

  const registered = await client.mutate({
    mutation: RegisterDocument,
    variables: { input: { email, password } },
  });
  const register = registered.data?.register;
  assert.ok(register, "register returned data");
  checkPayload(register, email);

  const me = await client.query({
    query: MeDocument,
    context: { headers: bearer(register.accessToken) },
  });
  assert.equal(lastMethod(), "GET");
  assert.equal(me.data?.me.id, register.user.id);
  assert.equal(me.data?.me.email, email);

  const refreshed = await client.mutate({
    mutation: RefreshTokenDocument,
    variables: { refreshToken: register.refreshToken },
  });
  assert.equal(lastMethod(), "POST");
  const rotated = refreshed.data?.refreshToken;
  assert.ok(rotated, "refreshToken returned data");
  // Presenting the spent token again inside the grace window gives the same successor.
  const retried = await client.mutate({
    mutation: RefreshTokenDocument,
    variables: { refreshToken: register.refreshToken },
  });
  assert.equal(retried.data?.refreshToken.refreshToken, rotated.refreshToken);

  const out = await client.mutate({
    mutation: LogoutDocument,
    variables: { allSessions: true },
    context: { headers: bearer(rotated.accessToken) },
  });
  assert.equal(out.data?.logout, true);
  await expectCode(
    "UNAUTHENTICATED",
    client.query({ query: MeDocument, context: { headers: bearer(rotated.accessToken) } }),
  );
  console.log("Apollo Client: register → me (GET) → refresh (and retry) → logout: ok");
}

/** Well-formed (43 base64url characters) but never mailed. */
const junkToken = "A".repeat(43);

async function withLifecycle(): Promise<void> {
  const client = new GraphQLClient(url, { fetch: recordingFetch });
  const email = `lifecycle-${run}@example.com`;
  const newPassword = "a brand new passphrase";

  const { register } = await client.request(RegisterDocument, { input: { email, password } });
  const resent = await client.request(
    RequestEmailVerificationDocument,
    {},
    bearer(register.accessToken),
  );
  assert.equal(resent.requestEmailVerification, true);
  // verifyEmail and resetPassword take a token from a mail; a junk one is INVALID_TOKEN.
  await expectCode("INVALID_TOKEN", client.request(VerifyEmailDocument, { token: junkToken }));
  await expectCode(
    "INVALID_TOKEN",
    client.request(ResetPasswordDocument, { token: junkToken, newPassword }),
  );

  await expectCode(
    "INVALID_CREDENTIALS",
    client.request(
      ChangePasswordDocument,
      { currentPassword: "not the password", newPassword },
      bearer(register.accessToken),
    ),
  );
  const { changePassword } = await client.request(
    ChangePasswordDocument,
    { currentPassword: password, newPassword },
    bearer(register.accessToken),
  );
  assert.equal(changePassword.user.id, register.user.id);
  await expectCode(
    "INVALID_CREDENTIALS",
    client.request(LoginDocument, { input: { email, password } }),
  );

  const { changeEmail } = await client.request(
    ChangeEmailDocument,
    { newEmail: `moved-${run}@example.com`, password: newPassword },
    bearer(changePassword.accessToken),
  );
  assert.equal(changeEmail, true);
  const known = await client.request(RequestPasswordResetDocument, { email });
  const unknown = await client.request(RequestPasswordResetDocument, {
    email: `nobody-${run}@example.com`,
  });
  assert.deepEqual(known, unknown);

  const { deleteAccount } = await client.request(
    DeleteAccountDocument,
    { password: newPassword },
    bearer(changePassword.accessToken),
  );
  assert.equal(deleteAccount, true);
  await expectCode(
    "UNAUTHENTICATED",
    client.request(MeDocument, {}, bearer(changePassword.accessToken)),
  );
  console.log(
    "lifecycle: register → requestEmailVerification → changePassword → changeEmail" +
      " → requestPasswordReset → deleteAccount: ok",
  );
}

async function withSessions(): Promise<void> {
  const client = new GraphQLClient(url, { fetch: recordingFetch });
  const email = `sessions-${run}@example.com`;

  const { register } = await client.request(RegisterDocument, { input: { email, password } });
  const { login } = await client.request(LoginDocument, { input: { email, password } });
  const { sessions } = await client.request(SessionsDocument, {}, bearer(register.accessToken));
  assert.equal(sessions.length, 2);
  assert.equal(sessions.filter((s) => s.current).length, 1);
  const other = sessions.find((s) => !s.current);
  assert.ok(other, "the session opened by login is listed");
  assert.ok(Date.parse(other.expiresAt) > Date.parse(other.createdAt));

  const { revokeSession } = await client.request(
    RevokeSessionDocument,
    { id: other.id },
    bearer(register.accessToken),
  );
  assert.equal(revokeSession, true);
  await expectCode("UNAUTHENTICATED", client.request(MeDocument, {}, bearer(login.accessToken)));
  await expectCode(
    "BAD_USER_INPUT",
    client.request(RevokeSessionDocument, { id: "nope" }, bearer(register.accessToken)),
  );

  // register, login, session_revoked: newest first, a page of two and then the rest.
  const page = await client.request(
    SecurityEventsDocument,
    { first: 2 },
    bearer(register.accessToken),
  );
  const first = page.securityEvents;
  assert.deepEqual(
    first.edges.map((e) => e.node.kind),
    ["session_revoked", "login"],
  );
  assert.equal(first.edges[0]?.node.sessionId, other.id);
  assert.equal(first.pageInfo.hasNextPage, true);
  assert.equal(first.pageInfo.endCursor, first.edges[1]?.cursor);
  const next = await client.request(
    SecurityEventsDocument,
    { first: 2, after: first.pageInfo.endCursor },
    bearer(register.accessToken),
  );
  assert.deepEqual(
    next.securityEvents.edges.map((e) => e.node.kind),
    ["register"],
  );
  assert.equal(next.securityEvents.pageInfo.hasNextPage, false);
  await expectCode(
    "BAD_USER_INPUT",
    client.request(SecurityEventsDocument, { first: 101 }, bearer(register.accessToken)),
  );
  console.log("sessions: sessions → revokeSession → securityEvents (two pages): ok");
}

/** The RFC 6238 code (HMAC-SHA-1, 6 digits, 30 s) of a base32 secret, `steps` steps from now,
 * as an authenticator app computes it. */
function totp(secret: string, steps = 0): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of secret.replace(/=+$/, "")) {
    bits += alphabet.indexOf(c).toString(2).padStart(5, "0");
  }
  const key = Buffer.from((bits.match(/.{8}/g) ?? []).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 1000 / 30) + steps));
  const mac = createHmac("sha1", key).update(counter).digest();
  const offset = (mac[mac.length - 1] ?? 0) & 0xf;
  const value = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return value.toString().padStart(6, "0");
}

/** The `extensions` of the first GraphQL error a graphql-request call threw. */
async function errorExtensions(promise: Promise<unknown>): Promise<Record<string, unknown>> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ClientError) {
      return (error.response.errors?.[0]?.extensions ?? {}) as Record<string, unknown>;
    }
    throw error;
  }
  throw new Error("expected a GraphQL error");
}

async function withTotp(): Promise<void> {
  const client = new GraphQLClient(url);
  const email = `totp-${run}@example.com`;
  const { register } = await client.request(RegisterDocument, {
    input: { email, password },
  });
  const auth = bearer(register.accessToken);
  const { enrollTotp } = await client.request(EnrollTotpDocument, {}, auth);
  assert.match(enrollTotp.otpauthUri, /^otpauth:\/\/totp\//);
  const { confirmTotp } = await client.request(
    ConfirmTotpDocument,
    { code: totp(enrollTotp.secret) },
    auth,
  );
  assert.equal(confirmTotp.length, 10);

  // login now answers MFA_REQUIRED with a ticket; verifyMfa finishes it with the next
  // step's code (the current one was spent by confirmTotp).
  const challenge = await errorExtensions(
    client.request(LoginDocument, { input: { email, password } }),
  );
  assert.equal(challenge["code"], "MFA_REQUIRED");
  assert.deepEqual(challenge["methods"], ["totp", "recovery_code"]);
  const mfaToken = challenge["mfaToken"] as string;
  await expectCode(
    "INVALID_MFA_CODE",
    client.request(VerifyMfaDocument, { mfaToken, code: "not a code" }),
  );
  const { verifyMfa } = await client.request(VerifyMfaDocument, {
    mfaToken,
    code: totp(enrollTotp.secret, 1),
  });
  assert.equal(verifyMfa.user.email, email);
  assert.equal(verifyMfa.user.mfaEnabled, true);
  await expectCode(
    "INVALID_TOKEN",
    client.request(VerifyMfaDocument, { mfaToken, code: confirmTotp[0] ?? "" }),
  );

  // A recovery code works once.
  const again = await errorExtensions(
    client.request(LoginDocument, { input: { email, password } }),
  );
  const recovered = await client.request(VerifyMfaDocument, {
    mfaToken: again["mfaToken"] as string,
    code: confirmTotp[0] ?? "",
  });
  assert.equal(recovered.verifyMfa.user.id, register.user.id);

  const { disableTotp } = await client.request(DisableTotpDocument, { password }, auth);
  assert.equal(disableTotp, true);
  await client.request(LoginDocument, { input: { email, password } });
  console.log("totp: enrollTotp → confirmTotp → login (MFA_REQUIRED) → verifyMfa → disableTotp: ok");
}

await withGraphqlRequest();
await withApollo();
await withLifecycle();
await withSessions();
await withTotp();
console.log("typescript-client flow: all ok");
