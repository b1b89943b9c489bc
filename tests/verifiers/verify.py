"""Python's PyJWT verifies tokens against the server's JWKS, fetched over HTTP (PyJWKClient):

    python3 verify.py JWKS_URL EXPECT LABEL TOKEN [EXPECT LABEL TOKEN ...]

EXPECT: accept | bad-signature | unknown-kid. A refusal counts only with the exception that
names its cause. The algorithm comes from the JWK that the token's kid selects. Issuer and
audience: $ISSUER and $AUDIENCE (default "auth-server"). Exit 1 on any failure.
"""
import os
import sys

import jwt
from jwt import PyJWKClient
from jwt.exceptions import InvalidSignatureError, PyJWKClientError

ISSUER = os.environ.get("ISSUER") or "auth-server"
AUDIENCE = os.environ.get("AUDIENCE") or "auth-server"
REFUSAL = {"bad-signature": InvalidSignatureError, "unknown-kid": PyJWKClientError}


def verify(client, token):
    signing_key = client.get_signing_key_from_jwt(token)
    # PyJWT >= 2.8 names the JWK's algorithm; older ones (Debian 12 has 2.6) keep the JWK.
    alg = getattr(signing_key, "algorithm_name", None) or signing_key._jwk_data["alg"]
    claims = jwt.decode(
        token,
        signing_key.key,
        algorithms=[alg],
        audience=AUDIENCE,
        issuer=ISSUER,
        options={"require": ["exp", "iat", "iss", "aud", "sub"]},
    )
    return f"alg {alg}, kid {signing_key.key_id}, sub {claims['sub']}"


def main(argv):
    if len(argv) < 4 or (len(argv) - 1) % 3 != 0:
        print("usage: verify.py JWKS_URL (EXPECT LABEL TOKEN)...", file=sys.stderr)
        return 2
    client = PyJWKClient(argv[0])
    failed = 0
    for i in range(1, len(argv), 3):
        expect, label, token = argv[i : i + 3]
        if expect != "accept" and expect not in REFUSAL:
            print(f"verify.py: unknown expectation {expect}", file=sys.stderr)
            return 2
        error = None
        try:
            detail = verify(client, token)
        except Exception as e:  # every refusal is judged below by its type
            error = e
            detail = f"{type(e).__name__}: {e}"
        if expect == "accept":
            ok = error is None
        else:
            ok = error is not None and isinstance(error, REFUSAL[expect])
        got = "accepted" if error is None else "refused"
        print(f"pyjwt {jwt.__version__}: {'ok  ' if ok else 'FAIL'} {label}: expected {expect}, got {got} ({detail})")
        failed += not ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
