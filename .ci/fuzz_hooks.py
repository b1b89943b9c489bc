"""schemathesis hooks for .ci/fuzz: what counts as a server error for this API, which
account each request speaks for, and a record of what every call answered.

schemathesis' built-in `not_a_server_error` check trusts only the client error codes that
Apollo Server and graphql-java emit (BAD_USER_INPUT, GRAPHQL_VALIDATION_FAILED, ...), so
it reports this contract's own client codes (INVALID_REFRESH_TOKEN, INVALID_CREDENTIALS,
UNAUTHENTICATED, ...) as resolver failures. `no_server_error` applies the issue's
definition instead: an HTTP 5xx, a body that is not a GraphQL JSON object, an error with
code INTERNAL_SERVER_ERROR, or a resolver error (one with a `path`) without one of the
contract's client codes is a server error. Errors without a `path` are parse and
validation errors of the document, which keep the standard GraphQL behaviour.

The bearer is set here, per request (FUZZ_URL, FUZZ_TOKEN and FUZZ_PASSWORD come from
.ci/fuzz). Mutations that end the account or its sessions or change its password
(`deleteAccount`, `changePassword`, `changeEmail`, `logout`) each get a fresh account
registered with FUZZ_PASSWORD, the password the dictionaries offer, so their success paths
run without taking the fuzzed account away from the other operations. `verifyEmail` and
`resetPassword` go without a bearer every other call, so a mailed token the dictionaries
hold (another account's) can succeed. Everything else speaks for the fuzzed account, which
is logged in again whenever its session was ended (a refresh token presented twice past
the grace window does that). `after_call` appends one line per call to calls.ndjson (the
operation and the error codes it got), which .ci/fuzz reads to prove what ran.
"""

import itertools
import json
import os
import threading
import uuid

import requests
import schemathesis

CLIENT_CODES = {
    "BAD_USER_INPUT",
    "EMAIL_TAKEN",
    "USERNAME_TAKEN",
    "INVALID_CREDENTIALS",
    "UNAUTHENTICATED",
    "INVALID_REFRESH_TOKEN",
    "RATE_LIMITED",
    "INVALID_TOKEN",
    "EMAIL_NOT_VERIFIED",
    "MFA_REQUIRED",
    "INVALID_MFA_CODE",
    "MFA_ALREADY_ENABLED",
    "INVALID_PASSKEY",
    "PASSKEYS_DISABLED",
}

URL = os.environ["FUZZ_URL"]
PASSWORD = os.environ["FUZZ_PASSWORD"]
FRESH_ACCOUNT = {
    "Mutation.changeEmail",
    "Mutation.changePassword",
    "Mutation.deleteAccount",
    "Mutation.logout",
}
SOMETIMES_ANONYMOUS = {"Mutation.verifyEmail", "Mutation.resetPassword"}

_lock = threading.Lock()
_main = {"token": os.environ["FUZZ_TOKEN"]}
_turns = itertools.count()
_http = threading.local()


def _post(query, variables, bearer=None):
    session = getattr(_http, "session", None) or requests.Session()
    _http.session = session
    headers = {"authorization": f"Bearer {bearer}"} if bearer else {}
    body = {"query": query, "variables": variables}
    return session.post(URL, json=body, headers=headers, timeout=10).json()


def _fresh_account():
    email = f"fuzz-{uuid.uuid4().hex}@example.com"
    answer = _post(
        "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }",
        {"i": {"email": email, "password": PASSWORD}},
    )
    return answer["data"]["register"]["accessToken"]


def _log_in_again():
    answer = _post(
        "mutation($i: LoginInput!) { login(input: $i) { accessToken } }",
        {"i": {"email": "fuzz@example.com", "password": PASSWORD}},
    )
    with _lock:
        _main["token"] = answer["data"]["login"]["accessToken"]


def _codes(response):
    try:
        payload = json.loads(response.content)
    except ValueError:
        return ["<not JSON>"]
    if not isinstance(payload, dict):
        return ["<not an object>"]
    return [(e.get("extensions") or {}).get("code") for e in payload.get("errors") or []]


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    """Chooses the account the request speaks for (module docs)."""
    label = case.operation.label
    if label in FRESH_ACCOUNT:
        bearer = _fresh_account()
    elif label in SOMETIMES_ANONYMOUS and next(_turns) % 2:
        bearer = None
    else:
        with _lock:
            bearer = _main["token"]
    headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    case.headers = headers


@schemathesis.hook
def after_call(ctx, case, response):
    """Records the call; logs the fuzzed account in again once its session has ended."""
    label = case.operation.label
    codes = _codes(response)
    line = json.dumps({"operation": label, "status": response.status_code, "codes": codes})
    with _lock:
        with open("calls.ndjson", "a", encoding="utf-8") as out:
            out.write(line + "\n")
        sent = (case.headers or {}).get("Authorization", "")
        was_main = sent == f"Bearer {_main['token']}"
    if was_main and "UNAUTHENTICATED" in codes:
        _log_in_again()


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
