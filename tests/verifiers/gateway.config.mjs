// GraphQL Hive Gateway (proxy mode) in front of downstream.mjs, with the JWT plugin
// (@graphql-mesh/plugin-jwt-auth) reading the auth server's JWKS over HTTP:
//   npx hive-gateway proxy $DOWNSTREAM_URL -c gateway.config.mjs -p $PORT -h 127.0.0.1
// Env: JWKS_URL, ISSUER and AUDIENCE (default "auth-server"), JWT_ALGORITHMS (default ES256).
// Requests without a valid token are refused; the verified payload is forwarded downstream.
import { createRemoteJwksSigningKeyProvider, defineConfig, extractFromHeader } from '@graphql-hive/gateway';

if (!process.env.JWKS_URL) throw new Error('gateway.config.mjs: set JWKS_URL');

export const gatewayConfig = defineConfig({
  jwt: {
    signingKeyProviders: [createRemoteJwksSigningKeyProvider({ jwksUri: process.env.JWKS_URL })],
    tokenLookupLocations: [extractFromHeader({ name: 'authorization', prefix: 'Bearer' })],
    tokenVerification: {
      issuer: process.env.ISSUER || 'auth-server',
      audience: process.env.AUDIENCE || 'auth-server',
      algorithms: (process.env.JWT_ALGORITHMS || 'ES256').split(','),
    },
    reject: { missingToken: true, invalidToken: true },
    forward: { payload: true },
  },
});
