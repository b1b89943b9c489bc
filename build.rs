//! Tells the integration tests which database servers this build may use: `TEST_MYSQL_URL`
//! and `TEST_POSTGRES_URL` set at build time turn on `cfg(test_mysql)` / `cfg(test_postgres)`;
//! without them those tests are compiled as ignored, so a run reports them as skipped
//! rather than counting them as passed.

fn main() {
    for (var, cfg) in [
        ("TEST_MYSQL_URL", "test_mysql"),
        ("TEST_POSTGRES_URL", "test_postgres"),
    ] {
        println!("cargo::rerun-if-env-changed={var}");
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        if std::env::var(var).is_ok_and(|v| !v.is_empty()) {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
}
