"""schemathesis hooks for .ci/fuzz: what counts as a server error for this API.

schemathesis' built-in `not_a_server_error` check trusts only the client error codes that
Apollo Server and graphql-java emit (BAD_USER_INPUT, GRAPHQL_VALIDATION_FAILED, ...), so
it reports this contract's own client codes (INVALID_REFRESH_TOKEN, INVALID_CREDENTIALS,
UNAUTHENTICATED, ...) as resolver failures. `no_server_error` applies the issue's
definition instead: an HTTP 5xx, a body that is not a GraphQL JSON object, an error with
code INTERNAL_SERVER_ERROR, or a resolver error (one with a `path`) without one of the
contract's client codes is a server error. Errors without a `path` are parse and
validation errors of the document, which keep the standard GraphQL behaviour.
"""

import json

import schemathesis

CLIENT_CODES = {
    "BAD_USER_INPUT",
    "EMAIL_TAKEN",
    "USERNAME_TAKEN",
    "INVALID_CREDENTIALS",
    "UNAUTHENTICATED",
    "INVALID_REFRESH_TOKEN",
    "RATE_LIMITED",
}


@schemathesis.check
def no_server_error(ctx, response, case):
    """No 5xx, and every resolver error carries a client `extensions.code`."""
    if response.status_code >= 500:
        raise AssertionError(f"HTTP {response.status_code}: {response.text[:500]}")
    try:
        payload = json.loads(response.content)
    except ValueError as exc:
        raise AssertionError(f"the body is not JSON ({exc}): {response.text[:500]}")
    if not isinstance(payload, dict):
        raise AssertionError(f"the body is not a JSON object: {response.text[:500]}")
    for error in payload.get("errors") or []:
        extensions = error.get("extensions") or {}
        code = extensions.get("code")
        if code == "INTERNAL_SERVER_ERROR":
            raise AssertionError(f"INTERNAL_SERVER_ERROR: {json.dumps(error)}")
        if "path" in error and code not in CLIENT_CODES:
            raise AssertionError(
                f"a resolver error without a client extensions.code: {json.dumps(error)}"
            )
        if code == "RATE_LIMITED" and not isinstance(extensions.get("retryAfter"), int):
            raise AssertionError(f"RATE_LIMITED without retryAfter: {json.dumps(error)}")
