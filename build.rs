//! Tells the tests which servers this build may use: `TEST_MYSQL_URL`, `TEST_POSTGRES_URL`
//! and `TEST_REDIS_URL` set at build time turn on `cfg(test_mysql)` / `cfg(test_postgres)` /
//! `cfg(test_redis)`,
//! and a `python3` that can import aiosmtpd (the tests' SMTP server, installed by
//! `.ci/smtp-deps`) turns on `cfg(test_smtp)`; without them those tests are compiled as
//! ignored, so a run reports them as skipped rather than counting them as passed.

fn main() {
    for (var, cfg) in [
        ("TEST_MYSQL_URL", "test_mysql"),
        ("TEST_POSTGRES_URL", "test_postgres"),
        ("TEST_REDIS_URL", "test_redis"),
    ] {
        println!("cargo::rerun-if-env-changed={var}");
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        if std::env::var(var).is_ok_and(|v| !v.is_empty()) {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
    println!("cargo::rustc-check-cfg=cfg(test_smtp)");
    println!("cargo::rerun-if-env-changed=PATH");
    println!("cargo::rerun-if-changed=.ci/smtp-deps");
    let aiosmtpd = std::process::Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if aiosmtpd {
        println!("cargo::rustc-cfg=test_smtp");
    }
}
