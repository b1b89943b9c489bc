// Node's jose verifies tokens against the server's JWKS, fetched over HTTP:
//   node verify-jose.mjs JWKS_URL EXPECT LABEL TOKEN [EXPECT LABEL TOKEN ...]
// EXPECT: accept | bad-signature | unknown-kid. A refusal counts only with the error that
// names its cause (a refusal for another reason, e.g. an unreachable JWKS, is a failure).
// Issuer and audience: $ISSUER and $AUDIENCE (default "auth-server"). Exit 1 on any failure.
import { createRemoteJWKSet, jwtVerify } from 'jose';

const issuer = process.env.ISSUER || 'auth-server';
const audience = process.env.AUDIENCE || 'auth-server';
const [jwksUrl, ...rest] = process.argv.slice(2);
if (!jwksUrl || rest.length === 0 || rest.length % 3 !== 0) {
  console.error('usage: verify-jose.mjs JWKS_URL (EXPECT LABEL TOKEN)...');
  process.exit(2);
}
const JWKS = createRemoteJWKSet(new URL(jwksUrl));
const refusalCode = {
  'bad-signature': 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
  'unknown-kid': 'ERR_JWKS_NO_MATCHING_KEY',
};

let failed = 0;
for (let i = 0; i < rest.length; i += 3) {
  const [expect, label, token] = rest.slice(i, i + 3);
  let outcome;
  try {
    const { payload, protectedHeader } = await jwtVerify(token, JWKS, { issuer, audience, requiredClaims: ['sub', 'exp', 'iat'] });
    outcome = { ok: true, detail: `alg ${protectedHeader.alg}, kid ${protectedHeader.kid}, sub ${payload.sub}` };
  } catch (e) {
    outcome = { ok: false, code: e.code, detail: `${e.code ?? e.name}: ${e.message}` };
  }
  let pass;
  if (expect === 'accept') pass = outcome.ok;
  else if (refusalCode[expect]) pass = !outcome.ok && outcome.code === refusalCode[expect];
  else {
    console.error(`verify-jose.mjs: unknown expectation ${expect}`);
    process.exit(2);
  }
  console.log(`jose: ${pass ? 'ok  ' : 'FAIL'} ${label}: expected ${expect}, got ${outcome.ok ? 'accepted' : 'refused'} (${outcome.detail})`);
  if (!pass) failed++;
}
process.exit(failed ? 1 : 0);
