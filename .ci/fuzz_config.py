"""Writes the schemathesis config of .ci/fuzz: dictionaries of values that reach the
resolvers' core logic (the fuzzed account, fresh accounts, refresh tokens, mailed tokens
that are still good) and of hostile strings, drawn beside schemathesis' own random
strings.

Usage: fuzz_config.py GRAPHQL_URL OUT_DIR
Registers the fuzzed account (fuzz@example.com), one whose refresh token only refreshToken
draws (refresh@example.com), and two accounts whose mailed tokens go into the
dictionaries: the verification token of verify@example.com and the reset token of
reset@example.com, read from the links in OUT_DIR/server.log (no SMTP_URL: the server logs
each mail), each step waiting for its mail. Nothing else ever holds a bearer of those two,
so their tokens stay unspent until a generated verifyEmail or resetPassword sends one.
Writes OUT_DIR/token (the fuzzed account's access token) and OUT_DIR/schemathesis.toml.
"""

import json
import pathlib
import re
import sys
import time
import urllib.request

url, out = sys.argv[1], pathlib.Path(sys.argv[2])
PASSWORD = "fuzz password 123"


def post(query, variables):
    body = json.dumps({"query": query, "variables": variables}).encode()
    request = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        answer = json.load(response)
    if answer.get("errors"):
        sys.exit(f"fuzz setup: {answer}")
    return answer["data"]


def register(email, username=None):
    return post(
        "mutation($i: RegisterInput!) { register(input: $i) { accessToken refreshToken } }",
        {"i": {"email": email, "password": PASSWORD, "username": username}},
    )["register"]


def mailed_tokens(path):
    """The tokens of the mail links in the server log, oldest first, by path."""
    found = {}
    text = (out / "server.log").read_text(errors="replace")
    for match in re.finditer(r"/" + path + r"\?token=([A-Za-z0-9_-]{43})", text):
        found.setdefault(match.group(1), None)
    return list(found)


def next_mail(path, seen):
    """Waits for the log to hold a link of `path` beyond the `seen` first ones."""
    for _ in range(200):
        tokens = mailed_tokens(path)
        if len(tokens) > seen:
            return tokens[seen]
        time.sleep(0.05)
    sys.exit(f"fuzz setup: no /{path} mail in the server log after 10 s")


tokens = register("fuzz@example.com", "fuzzer")
next_mail("verify-email", 0)
(out / "token").write_text(tokens["accessToken"])
register("verify@example.com")
verify_token = next_mail("verify-email", 1)
register("reset@example.com")
next_mail("verify-email", 2)
assert post("mutation($e: String!) { requestPasswordReset(email: $e) }", {"e": "reset@example.com"})
reset_token = next_mail("reset-password", 0)
# refreshToken's own account: logout, which also draws refresh tokens, never gets this one.
rotating = register("refresh@example.com")["refreshToken"]

# Per-argument dictionaries: right values in the right places reach the success paths.
dictionaries = {
    "emails": [
        "fuzz@example.com",
        " FUZZ@Example.COM ",
        *[f"new{i}@example.com" for i in range(30)],
        "o'brien@example.com",
        "a\u0000b@example.com",
        "\U0001f600@example.com",
        "ada@exa'mple.com",
        "x" * 250 + "@example.com",
    ],
    "usernames": ["fuzzer", "FUZZER", *[f"user_{i}" for i in range(20)], "a" * 33, "ab"],
    "passwords": ["fuzz password 123", "correct horse battery", "p" * 72, "p" * 73, "\u00e9" * 37],
    "refresh": [rotating, tokens["accessToken"], "A" * 43],
    "logout": [tokens["refreshToken"], tokens["accessToken"], "A" * 43],
    # Good ones (each spendable once), then the wrong kind, tampered, unknown, unicode, huge.
    "mailed": [
        verify_token,
        reset_token,
        tokens["refreshToken"],
        verify_token[:-1] + ("B" if verify_token[-1] != "B" else "C"),
        "A" * 43,
        "\u00e9" * 43,
        "A" * 5000,
    ],
    # Everywhere: SQL metacharacters, NUL and other control characters, unicode direction
    # and zero-width marks, LIKE wildcards, over-long values.
    "hostile": [
        "' OR '1'='1",
        "admin'--",
        '"; DROP TABLE users; --',
        "%_\\",
        "\u0000",
        "fuzz\u0000password",
        "\u202e\u200b\ufeff",
        "\u03a9\u2248\u00e7\u221a",
        "\r\n\t\u001b[31m",
        "x" * 5000,
    ],
}
bindings = {
    "Mutation.*.input.email": ("emails", 0.6),
    "Mutation.*.input.username": ("usernames", 0.5),
    "Mutation.*.input.password": ("passwords", 0.6),
    "Mutation.refreshToken.refreshToken": ("refresh", 0.6),
    "Mutation.logout.refreshToken": ("logout", 0.3),
    "Mutation.verifyEmail.token": ("mailed", 0.6),
    "Mutation.resetPassword.token": ("mailed", 0.6),
    "Mutation.resetPassword.newPassword": ("passwords", 0.5),
    "Mutation.requestPasswordReset.email": ("emails", 0.6),
    "Mutation.changePassword.currentPassword": ("passwords", 0.6),
    "Mutation.changePassword.newPassword": ("passwords", 0.5),
    "Mutation.changeEmail.newEmail": ("emails", 0.6),
    "Mutation.changeEmail.password": ("passwords", 0.6),
    "Mutation.deleteAccount.password": ("passwords", 0.6),
}
lines = []
for name, values in dictionaries.items():
    lines += [f"[dictionaries.{name}]", f"values = {json.dumps(values, ensure_ascii=False)}", ""]
lines += ["[generation.dictionaries.string]", 'dictionary = "hostile"', "probability = 0.2", ""]
lines.append("[parameters]")
for key, (name, probability) in bindings.items():
    lines.append(f'"{key}" = {{ dictionary = "{name}", probability = {probability} }}')
(out / "schemathesis.toml").write_text("\n".join(lines) + "\n")
