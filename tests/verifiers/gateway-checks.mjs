// Queries GraphQL Hive Gateway (gateway.config.mjs) with tokens and checks what it answers:
//   node gateway-checks.mjs GATEWAY_URL EXPECT LABEL TOKEN [EXPECT LABEL TOKEN ...]
// EXPECT, with the exact answers of @graphql-mesh/plugin-jwt-auth 2 (@graphql-yoga/plugin-jwt 3):
//   accept         200, data { hello: "world", whoami: <the token's sub> } (the downstream
//                  service sees the verified payload that the gateway forwards)
//   bad-signature  401, errors [{ message: "Unauthenticated" }]
//   unknown-kid    500, errors [{ message: "Unexpected error.", code INTERNAL_SERVER_ERROR }]
//                  (the plugin finds no key for the kid and throws an internal error, masked)
//   none           (TOKEN "-": no Authorization header) 401, errors [{ message: "Unauthenticated" }]
// Exit 1 on any failure.
import { decodeJwt } from 'jose';

const [url, ...rest] = process.argv.slice(2);
if (!url || rest.length === 0 || rest.length % 3 !== 0) {
  console.error('usage: gateway-checks.mjs GATEWAY_URL (EXPECT LABEL TOKEN)...');
  process.exit(2);
}

const unauthenticated = (status, body) =>
  status === 401 && body?.data === undefined && body?.errors?.length === 1 && body.errors[0].message === 'Unauthenticated';
const expectations = {
  accept: (status, body, token) =>
    status === 200 && !body.errors && body.data?.hello === 'world' && body.data?.whoami === decodeJwt(token).sub,
  'bad-signature': unauthenticated,
  none: unauthenticated,
  'unknown-kid': (status, body) =>
    status === 500 &&
    body?.data === undefined &&
    body?.errors?.length === 1 &&
    body.errors[0].message === 'Unexpected error.' &&
    body.errors[0].extensions?.code === 'INTERNAL_SERVER_ERROR',
};

let failed = 0;
for (let i = 0; i < rest.length; i += 3) {
  const [expect, label, token] = rest.slice(i, i + 3);
  const check = expectations[expect];
  if (!check) {
    console.error(`gateway-checks.mjs: unknown expectation ${expect}`);
    process.exit(2);
  }
  const headers = { 'content-type': 'application/json', accept: 'application/json' };
  if (token !== '-') headers.authorization = `Bearer ${token}`;
  let status, text, body;
  try {
    const res = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ query: '{ hello whoami }' }) });
    status = res.status;
    text = await res.text();
    body = JSON.parse(text);
  } catch (e) {
    text = text ?? `${e}`;
  }
  const pass = body !== undefined && check(status, body, token);
  console.log(`gateway: ${pass ? 'ok  ' : 'FAIL'} ${label}: expected ${expect}, got HTTP ${status} ${text.slice(0, 200)}`);
  if (!pass) failed++;
}
process.exit(failed ? 1 : 0);
