// Helpers for .ci/verifiers: get tokens from the server over GraphQL, read a token's
// header, and make the bad tokens the verifiers must refuse. One subcommand per call:
//   register GRAPHQL_URL EMAIL PASSWORD   prints the access token
//   login GRAPHQL_URL EMAIL PASSWORD      prints the access token
//   kid TOKEN                             prints the header's kid
//   sub TOKEN                             prints the payload's sub
//   tamper TOKEN                          prints TOKEN with one signature character changed
//   foreign TOKEN KID                     prints a token with TOKEN's header and claims, signed
//                                         by a fresh ES256 key of "another server", header kid KID
//   kids JWKS_URL                         prints the kids of the JWKS, one a line
//   rotation GRAPHQL_URL JWKS_URL EMAIL PASSWORD OLD_KID
//                                         started before `keys rotate`: prints "ready",
//                                         reads "NEW_KID ROTATED_AT_MS" (epoch ms) on stdin,
//                                         then fetches the JWKS and logs in, again and again
//                                         (10 s at most from ROTATED_AT_MS), until a token
//                                         carries NEW_KID. Prints a line: the first token's
//                                         kid, its ms after the rotation, the ms at which the
//                                         JWKS first listed NEW_KID, the ms of the first
//                                         NEW_KID token, whether the JWKS fetched just before
//                                         that login listed NEW_KID (yes/no), and that token;
//                                         "-" where nothing was seen. Exit 1 on a kid that is
//                                         neither OLD_KID nor NEW_KID.
// Failures print the reason on stderr and exit 1.
import { SignJWT, decodeJwt, decodeProtectedHeader, generateKeyPair } from 'jose';

const die = (msg) => {
  console.error(`tokens.mjs: ${msg}`);
  process.exit(1);
};

async function authMutation(url, field, email, password) {
  const query = `mutation($input: ${field === 'register' ? 'RegisterInput' : 'LoginInput'}!) {
    ${field}(input: $input) { accessToken tokenType }
  }`;
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables: { input: { email, password } } }),
  });
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    die(`${field}: HTTP ${res.status}, not JSON: ${text.slice(0, 300)}`);
  }
  const token = body?.data?.[field]?.accessToken;
  if (res.status !== 200 || body.errors || typeof token !== 'string') {
    die(`${field}: HTTP ${res.status}: ${text.slice(0, 500)}`);
  }
  return token;
}

const b64url = {
  decode: (s) => Buffer.from(s, 'base64url'),
  alphabet: 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_',
};

// Changes the signature's middle character: every one of its 6 bits is decoded (only the
// last character can carry padding bits), so the decoded signature differs; checked below.
function tamper(token) {
  const parts = token.split('.');
  if (parts.length !== 3 || parts[2].length < 8) die(`not a JWS compact token: ${token}`);
  const sig = parts[2];
  const i = Math.floor(sig.length / 2);
  const replacement = sig[i] === 'A' ? 'B' : 'A';
  const forged = sig.slice(0, i) + replacement + sig.slice(i + 1);
  if (b64url.decode(forged).equals(b64url.decode(sig))) die('tampering left the signature bytes unchanged');
  return [parts[0], parts[1], forged].join('.');
}

async function foreign(token, kid) {
  const header = decodeProtectedHeader(token);
  const claims = decodeJwt(token);
  const { privateKey } = await generateKeyPair('ES256');
  // Same claims (iss, aud, sub, exp, ...), same header fields, another key.
  return new SignJWT(claims).setProtectedHeader({ ...header, alg: 'ES256', kid }).sign(privateKey);
}

async function jwksKids(url) {
  const res = await fetch(url);
  if (res.status !== 200) die(`GET ${url}: HTTP ${res.status}`);
  const jwks = await res.json();
  if (!Array.isArray(jwks.keys)) die(`not a JWKS: ${JSON.stringify(jwks)}`);
  return jwks.keys.map((k) => k.kid);
}

async function firstLine(stream) {
  stream.setEncoding('utf8');
  let buffer = '';
  for await (const chunk of stream) {
    buffer += chunk;
    if (buffer.includes('\n')) break;
  }
  return buffer.split('\n')[0].trim();
}

async function rotation(graphqlUrl, jwksUrl, email, password, oldKid) {
  // Started (node, jose and fetch loaded) before the rotation, so the first login follows it
  // within milliseconds, well inside the lead, even on a busy machine.
  console.log('ready');
  const [newKid, rotatedAtRaw] = (await firstLine(process.stdin)).split(' ');
  const rotatedAt = Number(rotatedAtRaw);
  if (!newKid || !Number.isFinite(rotatedAt)) die('rotation: expected "NEW_KID ROTATED_AT_MS" on stdin');
  const since = () => Date.now() - rotatedAt;
  const seen = { firstKid: '-', firstAt: '-', publishedAt: '-', signedAt: '-', publishedBefore: '-', token: '-' };
  while (since() < 10_000) {
    const kids = await jwksKids(jwksUrl);
    if (seen.publishedAt === '-' && kids.includes(newKid)) seen.publishedAt = since();
    const token = await authMutation(graphqlUrl, 'login', email, password);
    const kid = decodeProtectedHeader(token).kid;
    if (seen.firstKid === '-') [seen.firstKid, seen.firstAt] = [kid, since()];
    if (kid === newKid) {
      Object.assign(seen, { signedAt: since(), publishedBefore: kids.includes(newKid) ? 'yes' : 'no', token });
      break;
    }
    if (kid !== oldKid) die(`a login during the rotation returned kid ${kid}, neither ${oldKid} nor ${newKid}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const { firstKid, firstAt, publishedAt, signedAt, publishedBefore, token } = seen;
  console.log([firstKid, firstAt, publishedAt, signedAt, publishedBefore, token].join(' '));
}

const [cmd, ...args] = process.argv.slice(2);
switch (cmd) {
  case 'register':
  case 'login':
    console.log(await authMutation(args[0], cmd, args[1], args[2]));
    break;
  case 'kid': {
    const kid = decodeProtectedHeader(args[0]).kid;
    if (typeof kid !== 'string' || kid === '') die(`the token's header has no kid: ${JSON.stringify(decodeProtectedHeader(args[0]))}`);
    console.log(kid);
    break;
  }
  case 'sub':
    console.log(decodeJwt(args[0]).sub);
    break;
  case 'tamper':
    console.log(tamper(args[0]));
    break;
  case 'foreign':
    console.log(await foreign(args[0], args[1]));
    break;
  case 'kids':
    for (const kid of await jwksKids(args[0])) console.log(kid);
    break;
  case 'rotation':
    await rotation(args[0], args[1], args[2], args[3], args[4]);
    break;
  default:
    die(`unknown subcommand ${cmd}`);
}
