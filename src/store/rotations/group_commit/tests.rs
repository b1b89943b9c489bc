//! The group writer: rotations queued while a commit is under way commit together, each
//! in its own savepoint, and the pool reads back exactly what the writer wrote.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use secrecy::SecretString;

use super::*;
use crate::auth::{AuthService, Client};
use crate::clock::SystemClock;
use crate::config::Settings;
use crate::domain::{Email, Password};
use crate::store::{FoundRefresh, RefreshTokens};

/// An auth service whose store commits rotations in groups, on an SQLite file in `dir`.
async fn service(dir: &std::path::Path) -> AuthService {
    let mut settings = Settings::defaults();
    let url = format!("sqlite://{}/auth.db?mode=rwc", dir.display());
    settings.database.url = SecretString::from(url);
    settings.passwords.bcrypt_cost = 4;
    settings.rate_limits.register_per_ip = 0;
    let db = crate::db::connect(&settings.database).await.unwrap();
    crate::db::migrate(&db).await.unwrap();
    AuthService::new(db, &settings)
        .with_group_commit(&settings)
        .await
}

/// A new account's session, and the rotation of its refresh token, generation 0 of its
/// chain (with the chain's hash).
async fn rotation_of_new_account(auth: &AuthService, email: &str) -> (Rotation, String) {
    let issued = auth
        .register(
            Email::parse(email).unwrap(),
            Password::parse("a long enough password").unwrap(),
            None,
            &Client::default(),
        )
        .await
        .unwrap();
    let hash = auth.keys().hash(&issued.refresh_token);
    let row = auth
        .store()
        .refresh_tokens()
        .find_with_session(hash.clone())
        .await
        .unwrap()
        .unwrap()
        .token;
    let at = SystemClock.now();
    let rotation = Rotation {
        token: row.id,
        session: row.session_id,
        step: Step::Advance { from: 0 },
        at,
        expires_at: at + chrono::Duration::days(7),
        client: Client::new("192.0.2.7".parse().unwrap(), Some("group test")),
    };
    (rotation, hash)
}

async fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Queues a refresh of the token under `token_hash` judged by `decide`, without waiting
/// for the writer to take it; the future is its answer.
fn send(
    group: &GroupCommit,
    token_hash: &str,
    decide: Decide,
) -> impl Future<Output = Answered> + use<> {
    let (answer, answered) = oneshot::channel();
    let job = Job {
        token_hash: token_hash.to_owned(),
        decide: Some(decide),
        answer,
    };
    group
        .jobs
        .try_send(job)
        .unwrap_or_else(|_| panic!("queued"));
    async move { answered.await.expect("answered") }
}

/// Queues a refresh of the token under `token_hash` whose judgement asks for `rotation`
/// whatever it finds (as a request that lost a race had judged before the winner
/// committed); the future is what the rotation did.
fn queue(
    group: &GroupCommit,
    token_hash: &str,
    rotation: Rotation,
) -> impl Future<Output = Result<Rotated, AuthError>> + use<> {
    let answered = send(
        group,
        token_hash,
        Box::new(move |_: &FoundRefresh| Some(rotation)),
    );
    async move {
        let refreshed = answered.await?.expect("the token is found");
        Ok(refreshed.rotated.expect("a rotation was asked for"))
    }
}

/// Queues a refresh of the token under `token_hash` that rotates it as `rotation` says if
/// it is unspent; the future is its answer.
fn queue_refresh(
    group: &GroupCommit,
    token_hash: &str,
    rotation: Rotation,
) -> impl Future<Output = Answered> + use<> {
    let decide: Decide = Box::new(move |found: &FoundRefresh| {
        let live = match rotation.step {
            Step::Advance { from } => found.token.generation == Some(from),
            Step::Upgrade { .. } => found.token.spent_at.is_none(),
        };
        live.then_some(rotation)
    });
    send(group, token_hash, decide)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotations_queued_during_a_commit_commit_together_and_each_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let auth = Arc::new(service(dir.path()).await);
    let group = auth
        .store()
        .group_commit
        .as_ref()
        .expect("a file gets the group writer");
    let (alice, alice_hash) = rotation_of_new_account(&auth, "alice@example.com").await;
    let (bob, bob_hash) = rotation_of_new_account(&auth, "bob@example.com").await;
    let (carol, carol_hash) = rotation_of_new_account(&auth, "carol@example.com").await;
    let (mut dave, dave_hash) = rotation_of_new_account(&auth, "dave@example.com").await;
    // Carol's session is revoked before her rotation runs.
    auth.store()
        .sessions()
        .revoke([carol.session], Utc::now())
        .await
        .unwrap();
    // Dave's rotation starts a chain (as for a token issued before chains) whose hash
    // collides with Alice's (a unique index): its INSERT fails after its UPDATEs succeeded.
    dave.step = Step::Upgrade {
        chain_hash: alice_hash.clone(),
    };

    // Another connection holds the write lock: the writer takes Alice's rotation and waits.
    let blocker = rusqlite::Connection::open(dir.path().join("auth.db")).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let first = queue(group, &alice_hash, alice.clone());
    wait_until("the writer took the first rotation", || group.queued() == 0).await;
    // Meanwhile four more queue up: Bob's twice (one must lose), Carol's, Dave's.
    let answers: Vec<_> = [
        (&bob_hash, &bob),
        (&bob_hash, &bob),
        (&carol_hash, &carol),
        (&dave_hash, &dave),
    ]
    .into_iter()
    .map(|(hash, r)| queue(group, hash, r.clone()))
    .collect();
    wait_until("the others queued", || group.queued() >= 3).await;
    blocker.execute_batch("COMMIT").unwrap();

    let first = first.await.unwrap();
    assert_eq!(first, Rotated::Done);
    let mut answers = futures::future::join_all(answers).await.into_iter();
    let bob_answers = [answers.next().unwrap(), answers.next().unwrap()];
    let done = bob_answers
        .iter()
        .filter(|a| matches!(a, Ok(Rotated::Done)))
        .count();
    let lost = bob_answers
        .iter()
        .filter(|a| matches!(a, Ok(Rotated::AlreadySpent)))
        .count();
    assert_eq!((done, lost), (1, 1), "{bob_answers:?}");
    assert!(matches!(answers.next().unwrap(), Ok(Rotated::SessionGone)));
    let dave_answer = answers.next().unwrap();
    assert!(
        matches!(dave_answer, Err(AuthError::Internal(_))),
        "{dave_answer:?}"
    );
    assert_eq!(
        group.batches(),
        2,
        "five rotations in two transactions: the first alone, the rest together"
    );

    // What the pool reads back (never the inline reader): exactly what was written.
    let pool = RefreshTokens::on(&auth.store().db, None, None);
    let FoundRefresh {
        token: chain,
        session,
        account,
    } = pool
        .find_with_session(bob_hash.clone())
        .await
        .unwrap()
        .expect("Bob's chain is stored");
    assert_eq!(account.email, "bob@example.com");
    assert_eq!(chain.session_id, bob.session);
    assert_eq!(chain.spent_at, None);
    assert_eq!(chain.generation, Some(1), "moved on once, not twice");
    assert_eq!(chain.rotated_at, Some(bob.at));
    assert_eq!(chain.expires_at, bob.expires_at);
    assert_eq!(session.expires_at, bob.expires_at);
    assert_eq!(session.last_used_at, Some(bob.at));
    assert_eq!(session.last_ip.as_deref(), Some("192.0.2.7"));
    assert_eq!(session.last_user_agent.as_deref(), Some("group test"));
    assert!(
        pool.is_live(bob_hash.clone(), Some(1), Utc::now())
            .await
            .unwrap(),
        "the pool's own query finds the writer's generation live"
    );
    assert!(
        !pool
            .is_live(bob_hash.clone(), Some(0), Utc::now())
            .await
            .unwrap()
    );
    // Carol's and Dave's savepoints were rolled back: their tokens are unspent, their
    // sessions untouched.
    for (hash, rotation) in [(&carol_hash, &carol), (&dave_hash, &dave)] {
        let FoundRefresh { token, session, .. } =
            pool.find_with_session(hash.clone()).await.unwrap().unwrap();
        assert_eq!(
            (token.spent_at, token.generation, token.rotated_at),
            (None, Some(0), None),
            "a failed rotation left its chain moved on"
        );
        assert_ne!(session.last_ip.as_deref(), Some("192.0.2.7"));
        assert_ne!(session.expires_at, rotation.expires_at);
    }
    // The inline read of the refresh path decodes exactly what the pool reads, spent,
    // unspent, revoked and written by the group writer alike.
    let inline = auth
        .store()
        .inline
        .as_ref()
        .expect("a file gets the inline read");
    for hash in [&alice_hash, &carol_hash, &dave_hash, &bob_hash] {
        let pooled = pool.find_with_session(hash.clone()).await.unwrap();
        assert!(pooled.is_some());
        assert_eq!(inline.refresh_with_session(hash), Some(pooled), "{hash}");
    }
    assert_eq!(inline.refresh_with_session("unknown"), Some(None));
    // Alice's rotation spent her first token: her chain moved on.
    let found = pool.find_with_session(alice_hash).await.unwrap().unwrap();
    assert_eq!(found.token.generation, Some(1));
    assert_eq!(found.token.rotated_at, Some(alice.at));
    assert_eq!(found.account.email, "alice@example.com");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_reads_inside_the_batch_and_rotates_as_its_judgement_says() {
    let dir = tempfile::tempdir().unwrap();
    let auth = Arc::new(service(dir.path()).await);
    let group = auth
        .store()
        .group_commit
        .as_ref()
        .expect("a file gets the group writer");
    let (alice, alice_hash) = rotation_of_new_account(&auth, "alice@example.com").await;
    let (bob, bob_hash) = rotation_of_new_account(&auth, "bob@example.com").await;
    let (carol, carol_hash) = rotation_of_new_account(&auth, "carol@example.com").await;
    // The writer reads Carol's token once (its pages are now in its cache) and is asked
    // to write nothing; then the pool revokes her session.
    let untouched: Decide = Box::new(|_: &FoundRefresh| None);
    let read = group
        .find_and_rotate(carol_hash.clone(), untouched)
        .await
        .unwrap_or_else(|_| panic!("the writer runs"))
        .unwrap()
        .expect("Carol's token is found");
    assert_eq!((read.found.session.revoked_at, read.rotated), (None, None));
    auth.store()
        .sessions()
        .revoke([carol.session], Utc::now())
        .await
        .unwrap();

    // Another connection holds the write lock: the writer takes Bob's rotation and waits.
    let blocker = rusqlite::Connection::open(dir.path().join("auth.db")).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let first = queue(group, &bob_hash, bob);
    wait_until("the writer took the first rotation", || group.queued() == 0).await;
    // Meanwhile Alice's token is presented twice, an unknown one once, Carol's once.
    let twice = [
        queue_refresh(group, &alice_hash, alice.clone()),
        queue_refresh(group, &alice_hash, alice.clone()),
    ];
    let unknown = queue_refresh(group, &"0".repeat(64), alice.clone());
    let revoked = queue_refresh(group, &carol_hash, carol.clone());
    wait_until("the others queued", || group.queued() >= 4).await;
    blocker.execute_batch("COMMIT").unwrap();

    assert_eq!(first.await.unwrap(), Rotated::Done);
    let [once, again] = futures::future::join_all(twice)
        .await
        .try_into()
        .expect("two answers");
    // The first read found the token unspent and rotated it; the second, in the same
    // transaction, found it spent by the first and wrote nothing.
    let once = once.unwrap().expect("found");
    assert_eq!(once.found.token.generation, Some(0));
    assert_eq!(once.found.account.email, "alice@example.com");
    assert_eq!(once.rotated, Some(Rotated::Done));
    let again = again.unwrap().expect("found");
    assert_eq!(again.found.token.generation, Some(1));
    assert_eq!(again.found.token.rotated_at, Some(alice.at));
    assert_eq!(again.found.token.id, once.found.token.id);
    assert_eq!(again.rotated, None);
    assert_eq!(unknown.await.unwrap(), None);
    // The writer's cache held Carol's session from before; it reads the pool's revocation.
    let revoked = revoked.await.unwrap().expect("found");
    assert!(revoked.found.session.revoked_at.is_some(), "{revoked:?}");
    // Its judgement (here: rotate whatever is unspent) asked for a rotation, which found
    // the session revoked and was rolled back.
    assert_eq!(revoked.rotated, Some(Rotated::SessionGone));
    assert_eq!(
        group.batches(),
        3,
        "Carol's first read alone, Bob's rotation alone, the four refreshes together"
    );

    // What the pool reads back: Alice's successor is her session's live token.
    let pool = RefreshTokens::on(&auth.store().db, None, None);
    assert!(
        pool.is_live(alice_hash.clone(), Some(1), Utc::now())
            .await
            .unwrap()
    );
    let chain = pool.find_with_session(alice_hash).await.unwrap().unwrap();
    assert_eq!(chain.token.rotated_at, Some(alice.at));
}

#[tokio::test]
async fn the_writer_takes_the_pools_page_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::defaults();
    let url = format!("sqlite://{}/auth.db?mode=rwc", dir.path().display());
    settings.database.url = SecretString::from(url.clone());
    let db = crate::db::connect_with(&settings.database, |o| o.pragma("max_page_count", "5000"))
        .await
        .unwrap();
    crate::db::migrate(&db).await.unwrap();
    let store = crate::store::Store::new(db, &url)
        .with_group_commit(Duration::from_secs(1))
        .await;
    let group = store.group_commit.as_ref().unwrap();
    assert_eq!(group.page_limit(), Some(5000));
}

/// Moves the chain under `hash` on `n` generations, one refresh at a time, each presenting
/// the generation the one before left live, with `rotation`'s instants and client.
async fn rotate_chain(auth: &AuthService, hash: &str, rotation: &Rotation, n: u64) {
    for _ in 0..n {
        let template = rotation.clone();
        let decide: Decide = Box::new(move |found: &FoundRefresh| {
            Some(Rotation {
                token: found.token.id,
                step: Step::Advance {
                    from: found.token.generation.expect("a chain"),
                },
                ..template
            })
        });
        let refreshed = auth
            .store()
            .find_and_rotate(hash.to_owned(), decide)
            .await
            .unwrap()
            .expect("the chain is found");
        assert_eq!(refreshed.rotated, Some(Rotated::Done));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checkpointer_copies_the_committed_rotations_into_the_database_file() {
    let dir = tempfile::tempdir().unwrap();
    let auth = service(dir.path()).await;
    let group = auth.store().group_commit.as_ref().unwrap();
    let (rotation, hash) = rotation_of_new_account(&auth, "checkpoint@example.com").await;
    // One short of the mark: no checkpoint asked for yet.
    rotate_chain(&auth, &hash, &rotation, CHECKPOINT_EVERY - 1).await;
    assert_eq!(group.checkpoints(), 0);
    rotate_chain(&auth, &hash, &rotation, 1).await;
    wait_until("the checkpointer ran", || group.checkpoints() == 1).await;

    // The database file alone, without its WAL, holds every rotation: the checkpoint
    // copied them back (nothing writes meanwhile, and no reader holds old frames).
    let copy = tempfile::tempdir().unwrap();
    std::fs::copy(dir.path().join("auth.db"), copy.path().join("auth.db")).unwrap();
    let file_alone = Connection::open(copy.path().join("auth.db")).unwrap();
    let generation: i64 = file_alone
        .query_row(
            "SELECT generation FROM refresh_tokens WHERE token_hash = ?1",
            [&hash],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(generation, CHECKPOINT_EVERY as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_starts_over_while_rotations_keep_coming() {
    // One rotation after another: the checkpointer always works while the writer commits,
    // so its checkpoint alone is never complete, and only the writer's finishing one lets
    // the WAL start over. Without it the WAL would grow to the backstop (more frames than
    // this whole chain writes).
    let dir = tempfile::tempdir().unwrap();
    let auth = service(dir.path()).await;
    let (rotation, hash) = rotation_of_new_account(&auth, "chain@example.com").await;
    const CHAIN: u64 = 3_000;
    rotate_chain(&auth, &hash, &rotation, CHAIN).await;
    let group = auth.store().group_commit.as_ref().unwrap();
    assert!(group.checkpoints() >= CHAIN / CHECKPOINT_EVERY - 1);
    // A WAL file is as long as the most frames it ever held (4,096-byte pages, 24-byte
    // frame headers, a 32-byte file header).
    let wal = std::fs::metadata(dir.path().join("auth.db-wal"))
        .unwrap()
        .len();
    let frames = wal.saturating_sub(32) / (4_096 + 24);
    assert!(
        frames < 10_000,
        "the WAL grew to {frames} frames over {CHAIN} rotations"
    );
}
