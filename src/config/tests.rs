use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use secrecy::ExposeSecret;

use super::*;

fn from(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Settings::from_lookup(|k| map.get(k).cloned())
}

#[test]
fn defaults_match_the_contract() {
    let s = Settings::defaults();
    assert_eq!(s.port, 4000);
    assert_eq!(s.host.to_string(), "127.0.0.1");
    assert_eq!(s.tokens.access_ttl, Duration::from_secs(15 * 60));
    assert_eq!(s.tokens.refresh_ttl, Duration::from_secs(7 * 24 * 3600));
    assert_eq!(s.tokens.reuse_grace, Duration::from_secs(10));
    assert_eq!(s.passwords.bcrypt_cost, 12);
    assert_eq!(s.database.url.expose_secret(), "sqlite://auth.db?mode=rwc");
    assert!(s.tokens.access_secret.expose_secret().len() >= MIN_SECRET_BYTES);
}

const KEK: (&str, &str) = ("KEY_ENCRYPTION_KEY", "k-0123456789abcdef0123456789abcdef");

#[test]
fn production_refuses_missing_or_short_secrets() {
    // With the legacy HS256 the access secret signs, and is required first.
    let err = from(&[("APP_ENV", "production"), ("JWT_ALGORITHM", "HS256")]).unwrap_err();
    assert_eq!(err.var, "JWT_ACCESS_SECRET");
    let err = from(&[
        ("APP_ENV", "production"),
        ("JWT_ALGORITHM", "HS256"),
        ("JWT_ACCESS_SECRET", "short"),
        ("JWT_REFRESH_SECRET", &"r".repeat(32)),
    ])
    .unwrap_err();
    assert_eq!(err.var, "JWT_ACCESS_SECRET");
    // With signing keys (the default) it signs nothing; the refresh secret and the
    // key-encryption key are what production needs.
    let err = from(&[("APP_ENV", "production")]).unwrap_err();
    assert_eq!(err.var, "JWT_REFRESH_SECRET");
    let err = from(&[
        ("APP_ENV", "production"),
        ("JWT_REFRESH_SECRET", &"r".repeat(32)),
    ])
    .unwrap_err();
    assert_eq!(err.var, "KEY_ENCRYPTION_KEY");
    assert!(err.message.contains("JWT_PRIVATE_KEY_FILE"), "{err}");
    let err = from(&[
        ("APP_ENV", "production"),
        ("JWT_REFRESH_SECRET", &"r".repeat(32)),
        ("KEY_ENCRYPTION_KEY", "short"),
    ])
    .unwrap_err();
    assert_eq!(err.var, "KEY_ENCRYPTION_KEY");
    for algorithm in [None, Some("HS256")] {
        let mut pairs = vec![
            ("APP_ENV", "production"),
            ("JWT_ACCESS_SECRET", "a".repeat(32).leak() as &str),
            ("JWT_REFRESH_SECRET", "r".repeat(32).leak()),
            ("SMTP_URL", "smtp://127.0.0.1:2525"),
            KEK,
        ];
        if let Some(a) = algorithm {
            pairs.push(("JWT_ALGORITHM", a));
        }
        assert!(from(&pairs).is_ok(), "{algorithm:?}");
    }
}

#[test]
fn hash_priority_defaults_to_idle_and_refuses_unknown_values() {
    assert_eq!(
        from(&[]).unwrap().passwords.hash_priority,
        HashPriority::Idle
    );
    let low = from(&[("PASSWORD_HASH_PRIORITY", "low")]).unwrap();
    assert_eq!(low.passwords.hash_priority, HashPriority::Low);
    let err = from(&[("PASSWORD_HASH_PRIORITY", "high")]).unwrap_err();
    assert_eq!(err.var, "PASSWORD_HASH_PRIORITY");
}

#[test]
fn identical_secrets_are_refused() {
    let same = "s".repeat(40);
    let err = from(&[("JWT_ACCESS_SECRET", &same), ("JWT_REFRESH_SECRET", &same)]).unwrap_err();
    assert_eq!(err.var, "JWT_REFRESH_SECRET");
}

#[test]
fn durations_accept_units_and_bare_seconds() {
    assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
    assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
    assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(604_800));
    assert!(parse_duration("soon").is_err());
    assert_eq!(
        from(&[("ACCESS_TOKEN_TTL", "0")]).unwrap_err().var,
        "ACCESS_TOKEN_TTL"
    );
}

#[test]
fn bad_values_name_their_variable() {
    assert_eq!(from(&[("PORT", "http")]).unwrap_err().var, "PORT");
    assert_eq!(
        from(&[("BCRYPT_COST", "3")]).unwrap_err().var,
        "BCRYPT_COST"
    );
    assert_eq!(
        from(&[("TRUSTED_PROXIES", "10.0.0.0/8, nope")])
            .unwrap_err()
            .var,
        "TRUSTED_PROXIES"
    );
    assert_eq!(from(&[("APP_ENV", "staging")]).unwrap_err().var, "APP_ENV");
    assert_eq!(
        from(&[("GRAPHIQL_ENABLED", "maybe")]).unwrap_err().var,
        "GRAPHIQL_ENABLED"
    );
}

/// Production settings with valid secrets and `extra` on top.
fn production(extra: &[(&str, &str)]) -> Settings {
    let (access, refresh) = ("a".repeat(32), "r".repeat(32));
    let mut pairs = vec![
        ("APP_ENV", "production"),
        ("JWT_ACCESS_SECRET", access.as_str()),
        ("JWT_REFRESH_SECRET", refresh.as_str()),
        ("SMTP_URL", "smtp://127.0.0.1:2525"),
        ("MAIL_FROM", "Example <accounts@example.com>"),
        ("APP_URL", "https://app.example.com"),
        KEK,
    ];
    pairs.extend_from_slice(extra);
    from(&pairs).unwrap()
}

#[test]
fn graphiql_and_introspection_are_on_in_development_and_off_in_production() {
    let dev = from(&[]).unwrap();
    assert!(dev.graphql.graphiql);
    assert!(dev.graphql.introspection);
    let prod = production(&[]);
    assert!(
        !prod.graphql.graphiql,
        "GraphiQL on by default in production"
    );
    assert!(
        !prod.graphql.introspection,
        "introspection on by default in production"
    );
    assert!(prod.warnings.is_empty(), "{:?}", prod.warnings);
}

#[test]
fn graphiql_and_introspection_can_be_switched_either_way_in_either_environment() {
    for (value, on) in [("true", true), ("on", true), ("1", true), ("false", false)] {
        let prod = production(&[
            ("GRAPHIQL_ENABLED", value),
            ("GRAPHQL_INTROSPECTION", value),
        ]);
        assert_eq!(
            (prod.graphql.graphiql, prod.graphql.introspection),
            (on, on)
        );
        let dev = from(&[
            ("GRAPHIQL_ENABLED", value),
            ("GRAPHQL_INTROSPECTION", value),
        ])
        .unwrap();
        assert_eq!((dev.graphql.graphiql, dev.graphql.introspection), (on, on));
    }
    // Each switch is independent of the other.
    let only_introspection = production(&[("GRAPHQL_INTROSPECTION", "yes")]);
    assert!(!only_introspection.graphql.graphiql);
    assert!(only_introspection.graphql.introspection);
    assert_eq!(
        from(&[("GRAPHQL_INTROSPECTION", "sometimes")])
            .unwrap_err()
            .var,
        "GRAPHQL_INTROSPECTION"
    );
}

#[test]
fn graphiql_without_introspection_is_allowed_with_a_warning() {
    let s = production(&[("GRAPHIQL_ENABLED", "true")]);
    assert!(s.graphql.graphiql && !s.graphql.introspection);
    assert!(
        s.warnings
            .iter()
            .any(|w| w.contains("GRAPHIQL_ENABLED") && w.contains("GRAPHQL_INTROSPECTION")),
        "{:?}",
        s.warnings
    );
}

#[test]
fn a_catch_all_trusted_proxy_range_is_warned_about() {
    for catch_all in ["0.0.0.0/0", "::/0", "::ffff:0.0.0.0/96", "::/80"] {
        let s = from(&[("TRUSTED_PROXIES", &format!("10.0.0.0/8, {catch_all}"))]).unwrap();
        let warned: Vec<_> = s
            .warnings
            .iter()
            .filter(|w| w.starts_with("TRUSTED_PROXIES"))
            .collect();
        assert_eq!(warned.len(), 1, "{catch_all}: {:?}", s.warnings);
        assert!(warned[0].contains(catch_all), "{}", warned[0]);
    }
    let s = from(&[("TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1, fd00::/8")]).unwrap();
    assert!(
        !s.warnings.iter().any(|w| w.starts_with("TRUSTED_PROXIES")),
        "{:?}",
        s.warnings
    );
}

#[test]
fn connection_limits_have_documented_defaults_and_refuse_bad_values() {
    let s = from(&[]).unwrap();
    assert_eq!(s.http.header_read_timeout, Duration::from_secs(10));
    assert_eq!(s.http.keep_alive_timeout, Some(Duration::from_secs(75)));
    assert_eq!(s.http.max_connections, 4096);
    assert_eq!(s.database.migration_lock_timeout, Duration::from_secs(300));
    let s = from(&[
        ("HTTP_HEADER_READ_TIMEOUT", "3s"),
        ("HTTP_KEEP_ALIVE_TIMEOUT", "0"),
        ("HTTP_MAX_CONNECTIONS", "100"),
        ("DATABASE_MIGRATION_LOCK_TIMEOUT", "1m"),
    ])
    .unwrap();
    assert_eq!(s.http.header_read_timeout, Duration::from_secs(3));
    assert_eq!(s.http.keep_alive_timeout, None, "0 turns keep-alive off");
    assert_eq!(s.http.max_connections, 100);
    assert_eq!(s.database.migration_lock_timeout, Duration::from_secs(60));
    for (var, bad) in [
        ("HTTP_HEADER_READ_TIMEOUT", "0"),
        ("HTTP_HEADER_READ_TIMEOUT", "soon"),
        ("HTTP_KEEP_ALIVE_TIMEOUT", "-1"),
        ("HTTP_MAX_CONNECTIONS", "0"),
        ("HTTP_MAX_CONNECTIONS", "many"),
        ("DATABASE_MIGRATION_LOCK_TIMEOUT", "0"),
    ] {
        assert_eq!(from(&[(var, bad)]).unwrap_err().var, var, "{var}={bad}");
    }
}

#[test]
fn lists_are_trimmed_and_proxies_accept_addresses_and_cidrs() {
    let s = from(&[
        (
            "CORS_ALLOWED_ORIGINS",
            " https://a.example , https://b.example ,",
        ),
        ("TRUSTED_PROXIES", "10.0.0.0/8,127.0.0.1"),
    ])
    .unwrap();
    assert_eq!(
        s.http.cors_allowed_origins,
        vec!["https://a.example", "https://b.example"]
    );
    assert_eq!(s.http.trusted_proxies.len(), 2);
    assert!(s.http.trusted_proxies[1].contains(&"127.0.0.1".parse::<IpAddr>().unwrap()));
}

#[test]
fn words_accept_their_aliases_and_name_the_choices_when_refused() {
    for (value, environment) in [
        ("development", Environment::Development),
        ("dev", Environment::Development),
        ("test", Environment::Development),
        (" prod ", Environment::Production),
    ] {
        let s = from(&[
            ("APP_ENV", value),
            ("JWT_ACCESS_SECRET", &"a".repeat(32)),
            ("JWT_REFRESH_SECRET", &"r".repeat(32)),
            ("SMTP_URL", "smtp://127.0.0.1:2525"),
            KEK,
        ]);
        assert_eq!(s.unwrap().environment, environment, "APP_ENV={value}");
    }
    for (value, format) in [("text", LogFormat::Pretty), ("json", LogFormat::Json)] {
        assert_eq!(from(&[("LOG_FORMAT", value)]).unwrap().log_format, format);
    }
    assert_eq!(from(&[]).unwrap().log_format, LogFormat::Pretty);
    for (var, bad, message) in [
        (
            "APP_ENV",
            "Production",
            "expected development or production, got \"Production\"",
        ),
        ("LOG_FORMAT", "xml", "expected pretty or json, got \"xml\""),
        (
            "PASSWORD_HASH_PRIORITY",
            "high",
            "expected idle, low or normal, got \"high\"",
        ),
    ] {
        let err = from(&[(var, bad)]).unwrap_err();
        assert_eq!((err.var, err.message.as_str()), (var, message));
    }
}

#[test]
fn hsts_is_off_by_default_and_at_zero() {
    assert_eq!(from(&[]).unwrap().http.hsts_max_age, None);
    assert_eq!(
        from(&[("HSTS_MAX_AGE", "0")]).unwrap().http.hsts_max_age,
        None
    );
    assert_eq!(
        from(&[("HSTS_MAX_AGE", "365d")]).unwrap().http.hsts_max_age,
        Some(Duration::from_secs(365 * 86_400))
    );
}

#[test]
fn mail_defaults_log_in_development_and_name_a_sender_and_a_front_end() {
    let s = Settings::defaults();
    assert!(s.mail.smtp_url.is_none());
    assert_eq!(s.mail.from.email.to_string(), "noreply@localhost");
    assert_eq!(s.mail.app_url.as_str(), "http://localhost:3000/");
    assert!(s.mail.templates_dir.is_none());
}

#[test]
fn production_without_smtp_url_refuses_to_start_naming_it() {
    let (access, refresh) = ("a".repeat(32), "r".repeat(32));
    let err = from(&[
        ("APP_ENV", "production"),
        ("JWT_ACCESS_SECRET", &access),
        ("JWT_REFRESH_SECRET", &refresh),
        KEK,
    ])
    .unwrap_err();
    assert_eq!(err.var, "SMTP_URL");
    assert!(err.message.contains("APP_ENV=production"), "{err}");
    let s = from(&[
        ("APP_ENV", "production"),
        ("JWT_ACCESS_SECRET", &access),
        ("JWT_REFRESH_SECRET", &refresh),
        ("SMTP_URL", "smtp://127.0.0.1:2525"),
        KEK,
    ])
    .unwrap();
    assert!(s.mail.smtp_url.is_some());
    for var in ["MAIL_FROM", "APP_URL"] {
        assert!(
            s.warnings.iter().any(|w| w.starts_with(var)),
            "{:?}",
            s.warnings
        );
    }
    assert!(production(&[]).warnings.is_empty());
}

#[test]
fn smtp_urls_in_lettres_three_forms_are_accepted_and_others_refused_without_echoing_them() {
    for url in [
        "smtp://127.0.0.1:2525",
        "smtp://user:secret@mail.example.com:587?tls=required",
        "smtps://user:secret@mail.example.com",
    ] {
        let s = from(&[("SMTP_URL", url)]).unwrap();
        assert_eq!(s.mail.smtp_url.unwrap().expose_secret(), url);
    }
    for url in [
        "http://user:hunter2@mail.example.com",
        "smtp://user:hunter2@",
    ] {
        let err = from(&[("SMTP_URL", url)]).unwrap_err();
        assert_eq!(err.var, "SMTP_URL");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}

#[test]
fn mail_from_and_app_url_are_validated() {
    let s = from(&[
        ("MAIL_FROM", "Example <accounts@example.com>"),
        ("APP_URL", "https://app.example.com/base"),
        ("MAIL_TEMPLATES_DIR", "/etc/auth/templates"),
    ])
    .unwrap();
    assert_eq!(s.mail.from.name.as_deref(), Some("Example"));
    assert_eq!(s.mail.app_url.as_str(), "https://app.example.com/base");
    assert_eq!(
        s.mail.templates_dir.as_deref(),
        Some(std::path::Path::new("/etc/auth/templates"))
    );
    for bad in [
        "not an address",
        "a@b\r\nBcc: x@y.z",
        "Evil\r\nBcc: x@y.z <a@example.com>",
    ] {
        assert_eq!(from(&[("MAIL_FROM", bad)]).unwrap_err().var, "MAIL_FROM");
    }
    for bad in ["localhost:3000", "ftp://example.com", "javascript:alert(1)"] {
        assert_eq!(
            from(&[("APP_URL", bad)]).unwrap_err().var,
            "APP_URL",
            "{bad}"
        );
    }
}

#[test]
fn the_account_lifecycle_defaults_are_the_documented_ones() {
    let s = Settings::defaults();
    assert!(!s.accounts.require_email_verification);
    assert_eq!(s.accounts.verification_ttl, Duration::from_secs(24 * 3600));
    assert_eq!(s.accounts.reset_ttl, Duration::from_secs(3600));
    assert_eq!(s.rate_limits.mail_per_address, 5);
    assert_eq!(s.rate_limits.mail_per_ip, 30);
    let s = from(&[
        ("REQUIRE_EMAIL_VERIFICATION", "true"),
        ("EMAIL_VERIFICATION_TTL", "2h"),
        ("PASSWORD_RESET_TTL", "15m"),
        ("RATE_LIMIT_MAIL_PER_ADDRESS", "0"),
    ])
    .unwrap();
    assert!(s.accounts.require_email_verification);
    assert_eq!(s.accounts.verification_ttl, Duration::from_secs(7200));
    assert_eq!(s.accounts.reset_ttl, Duration::from_secs(900));
    assert_eq!(s.rate_limits.mail_per_address, 0);
}

#[test]
fn mailed_tokens_cannot_be_made_to_live_long() {
    for (var, value) in [
        ("EMAIL_VERIFICATION_TTL", "25h"),
        ("PASSWORD_RESET_TTL", "61m"),
        ("PASSWORD_RESET_TTL", "0"),
        ("REQUIRE_EMAIL_VERIFICATION", "maybe"),
    ] {
        let err = from(&[(var, value)]).unwrap_err();
        assert_eq!(err.var, var, "{value}");
    }
    assert!(from(&[("PASSWORD_RESET_TTL", "1h")]).is_ok());
    assert!(from(&[("EMAIL_VERIFICATION_TTL", "24h")]).is_ok());
}

#[test]
fn metrics_are_off_unless_metrics_addr_names_an_address() {
    assert_eq!(Settings::defaults().metrics_addr, None);
    let s = from(&[("METRICS_ADDR", "127.0.0.1:9464")]).unwrap();
    assert_eq!(s.metrics_addr, Some("127.0.0.1:9464".parse().unwrap()));
    assert_eq!(from(&[("METRICS_ADDR", " ")]).unwrap().metrics_addr, None);
    for bad in ["9464", "localhost:9464", "127.0.0.1"] {
        assert_eq!(
            from(&[("METRICS_ADDR", bad)]).unwrap_err().var,
            "METRICS_ADDR"
        );
    }
}

#[test]
fn rate_limits_are_kept_in_memory_unless_redis_is_asked_for() {
    assert!(matches!(
        Settings::defaults().rate_limits.store,
        LimitStore::Memory
    ));
    let s = from(&[
        ("RATE_LIMIT_STORE", "redis"),
        ("REDIS_URL", "redis://:pw@10.0.0.5:6380/2"),
    ])
    .unwrap();
    let LimitStore::Redis(redis) = s.rate_limits.store else {
        panic!("expected the Redis store");
    };
    assert_eq!(redis.url.expose_secret(), "redis://:pw@10.0.0.5:6380/2");
    assert_eq!(redis.timeout, Duration::from_millis(250));
    assert_eq!(redis.key_prefix, "auth-server");
    assert_eq!(redis.on_failure, RedisFailure::Open);
    let s = from(&[
        ("RATE_LIMIT_STORE", "redis"),
        ("REDIS_URL", "redis+unix:///run/redis.sock"),
        ("REDIS_TIMEOUT", "50ms"),
        ("REDIS_KEY_PREFIX", "eu-1:auth"),
        ("RATE_LIMIT_REDIS_FAILURE", "closed"),
    ])
    .unwrap();
    let LimitStore::Redis(redis) = s.rate_limits.store else {
        panic!("expected the Redis store");
    };
    assert_eq!(redis.timeout, Duration::from_millis(50));
    assert_eq!(redis.key_prefix, "eu-1:auth");
    assert_eq!(redis.on_failure, RedisFailure::Closed);
}

#[test]
fn the_redis_store_refuses_unusable_settings_without_echoing_the_url() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("RATE_LIMIT_STORE", "memcached")], "RATE_LIMIT_STORE"),
        (&[("RATE_LIMIT_STORE", "redis")], "REDIS_URL"),
        (
            &[
                ("RATE_LIMIT_STORE", "redis"),
                ("REDIS_URL", "http://secret-pw@h"),
            ],
            "REDIS_URL",
        ),
        (
            &[
                ("RATE_LIMIT_STORE", "redis"),
                ("REDIS_URL", "rediss://secret-pw@h"),
            ],
            "REDIS_URL",
        ),
        (
            &[
                ("RATE_LIMIT_STORE", "redis"),
                ("REDIS_URL", "redis://secret-pw@:x:y"),
            ],
            "REDIS_URL",
        ),
        (
            &[
                ("RATE_LIMIT_STORE", "redis"),
                ("REDIS_URL", "redis://h"),
                ("REDIS_TIMEOUT", "0"),
            ],
            "REDIS_TIMEOUT",
        ),
        (
            &[
                ("RATE_LIMIT_STORE", "redis"),
                ("REDIS_URL", "redis://h"),
                ("REDIS_TIMEOUT", "6s"),
            ],
            "REDIS_TIMEOUT",
        ),
        (
            &[
                ("RATE_LIMIT_STORE", "redis"),
                ("REDIS_URL", "redis://h"),
                ("REDIS_KEY_PREFIX", "a b"),
            ],
            "REDIS_KEY_PREFIX",
        ),
        (
            &[
                ("RATE_LIMIT_STORE", "redis"),
                ("REDIS_URL", "redis://h"),
                ("RATE_LIMIT_REDIS_FAILURE", "maybe"),
            ],
            "RATE_LIMIT_REDIS_FAILURE",
        ),
    ];
    for (pairs, var) in cases {
        let err = from(pairs).unwrap_err();
        assert_eq!(err.var, *var, "{pairs:?}");
        assert!(!err.message.contains("secret-pw"), "{}", err.message);
    }
}

#[test]
fn a_max_depth_the_parser_never_reaches_is_warned_about() {
    let depth_warnings = |s: &Settings| {
        s.warnings
            .iter()
            .filter(|w| w.starts_with("GRAPHQL_MAX_DEPTH"))
            .count()
    };
    for fine in ["16", "33"] {
        let s = from(&[("GRAPHQL_MAX_DEPTH", fine)]).unwrap();
        assert_eq!(depth_warnings(&s), 0, "{fine}: {:?}", s.warnings);
    }
    let s = from(&[("GRAPHQL_MAX_DEPTH", "60")]).unwrap();
    assert_eq!(s.graphql.max_depth, 60, "still accepted as before");
    assert_eq!(depth_warnings(&s), 1, "{:?}", s.warnings);
}

#[test]
fn the_relying_party_defaults_to_app_url() {
    let s = Settings::defaults();
    let passkeys = s.passkeys.expect("passkeys on by default");
    assert_eq!(passkeys.rp_id, "localhost");
    let origins: Vec<&str> = passkeys.origins.iter().map(url::Url::as_str).collect();
    assert_eq!(origins, ["http://localhost:3000/"]);
    assert_eq!(passkeys.rp_name, "auth-server");

    // A path in APP_URL is not part of the origin.
    let s = from(&[("APP_URL", "https://app.example.com:8443/base")]).unwrap();
    let passkeys = s.passkeys.unwrap();
    assert_eq!(passkeys.rp_id, "app.example.com");
    assert_eq!(
        passkeys.origins[0].as_str(),
        "https://app.example.com:8443/"
    );
}

#[test]
fn the_relying_party_can_cover_several_front_ends_of_one_domain() {
    let s = from(&[
        ("WEBAUTHN_RP_ID", "Example.com"),
        (
            "WEBAUTHN_ORIGINS",
            "https://app.example.com, https://example.com,https://admin.example.com:8443",
        ),
        ("WEBAUTHN_RP_NAME", "Example Accounts"),
    ])
    .unwrap();
    let passkeys = s.passkeys.unwrap();
    assert_eq!(passkeys.rp_id, "example.com");
    assert_eq!(passkeys.origins.len(), 3);
    assert_eq!(passkeys.rp_name, "Example Accounts");
}

#[test]
fn a_relying_party_browsers_would_refuse_stops_the_start() {
    // An origin off the id's domain, or on a domain that merely ends like it.
    for origins in ["https://other.com", "https://notexample.com"] {
        let err = from(&[
            ("WEBAUTHN_RP_ID", "example.com"),
            ("WEBAUTHN_ORIGINS", origins),
        ])
        .unwrap_err();
        assert_eq!(err.var, "WEBAUTHN_ORIGINS", "{origins}: {err}");
    }
    // Not a domain: a scheme, a port, an IP address, an empty label.
    for id in [
        "https://example.com",
        "example.com:443",
        "127.0.0.1",
        "a..b",
        "-",
    ] {
        let err = from(&[("WEBAUTHN_RP_ID", id)]).unwrap_err();
        assert_eq!(err.var, "WEBAUTHN_RP_ID", "{id}: {err}");
    }
    // Not an origin: a path, a query, credentials, another scheme.
    for origin in [
        "https://example.com/login",
        "https://example.com/?a=b",
        "https://user:pw@example.com",
        "ftp://example.com",
        "example.com",
    ] {
        let err = from(&[
            ("WEBAUTHN_RP_ID", "example.com"),
            ("WEBAUTHN_ORIGINS", origin),
        ])
        .unwrap_err();
        assert_eq!(err.var, "WEBAUTHN_ORIGINS", "{origin}: {err}");
    }
    let err = from(&[("WEBAUTHN_RP_NAME", "two\nlines")]).unwrap_err();
    assert_eq!(err.var, "WEBAUTHN_RP_NAME");
}

#[test]
fn an_app_url_on_an_ip_address_turns_passkeys_off_with_a_warning() {
    let s = from(&[("APP_URL", "http://192.168.1.10:3000")]).unwrap();
    assert!(s.passkeys.is_none());
    assert!(
        s.warnings.iter().any(|w| w.contains("passkeys are off")),
        "{:?}",
        s.warnings
    );
    // Naming the relying party turns them on again.
    let s = from(&[
        ("APP_URL", "http://192.168.1.10:3000"),
        ("WEBAUTHN_RP_ID", "example.com"),
        ("WEBAUTHN_ORIGINS", "https://example.com"),
    ])
    .unwrap();
    assert_eq!(s.passkeys.unwrap().rp_id, "example.com");
}
