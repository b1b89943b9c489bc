//! Benchmark baseline (not part of the server): a bare axum endpoint that reads a JSON
//! body and answers a JSON body shaped like a `me` response, with no middleware, no
//! GraphQL and no database. `bench/run` compares `me` against it under the same load.
//!
//! `bench_baseline PORT`; built only with `--features bench`.

use axum::Json;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Request {
    #[allow(dead_code)]
    query: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct User {
    id: &'static str,
    email: &'static str,
    username: Option<&'static str>,
    created_at: &'static str,
    updated_at: &'static str,
}

#[derive(Serialize)]
struct Me {
    me: User,
}

#[derive(Serialize)]
struct Body {
    data: Me,
}

async fn me(Json(_request): Json<Request>) -> Json<Body> {
    Json(Body {
        data: Me {
            me: User {
                id: "0b5e3f43-6a45-4b0e-a2e4-5b6d2c1f9a10",
                email: "hot-0b5e3f43-6a45-4b0e-a2e4-5b6d2c1f9a10@bench.test",
                username: None,
                created_at: "2026-11-22T00:00:00.000000+00:00",
                updated_at: "2026-11-22T00:00:00.000000+00:00",
            },
        },
    })
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(4100);
    let app = axum::Router::new()
        .route("/graphql", post(me))
        .route("/health", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    axum::serve(listener, app).await
}
