"""Writes the schemathesis config of .ci/fuzz: dictionaries of values that reach the
resolvers' core logic (the fuzzed account, fresh accounts, its refresh token) and of
hostile strings, drawn beside schemathesis' own random strings.

Usage: fuzz_config.py REGISTER_RESPONSE.json OUT_DIR
Reads the response of the registration .ci/fuzz made, writes OUT_DIR/token (the access
token for the Authorization header) and OUT_DIR/schemathesis.toml.
"""

import json
import pathlib
import sys

register_response, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
tokens = json.loads(register_response.read_text())["data"]["register"]
(out / "token").write_text(tokens["accessToken"])

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
    "refresh": [tokens["refreshToken"], tokens["accessToken"], "A" * 43],
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
    "Mutation.logout.refreshToken": ("refresh", 0.3),
}
lines = []
for name, values in dictionaries.items():
    lines += [f"[dictionaries.{name}]", f"values = {json.dumps(values, ensure_ascii=False)}", ""]
lines += ["[generation.dictionaries.string]", 'dictionary = "hostile"', "probability = 0.2", ""]
lines.append("[parameters]")
for key, (name, probability) in bindings.items():
    lines.append(f'"{key}" = {{ dictionary = "{name}", probability = {probability} }}')
(out / "schemathesis.toml").write_text("\n".join(lines) + "\n")
