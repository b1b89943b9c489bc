use chrono::Duration;
use uuid::Uuid;

use super::*;

const GRACE: Duration = Duration::seconds(10);

fn at() -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000, 0).unwrap()
}

/// A session live until an hour after [`at`], and its token, unspent, as long.
fn pair() -> (refresh_token::Model, session::Model) {
    let session = session::Model {
        id: Uuid::new_v4(),
        user_id: Uuid::new_v4(),
        created_at: at() - Duration::hours(1),
        expires_at: at() + Duration::hours(1),
        revoked_at: None,
        last_used_at: None,
        created_ip: None,
        created_user_agent: None,
        last_ip: None,
        last_user_agent: None,
        amr: None,
    };
    let token = refresh_token::Model {
        id: Uuid::new_v4(),
        session_id: session.id,
        token_hash: "h".into(),
        created_at: session.created_at,
        expires_at: session.expires_at,
        spent_at: None,
        generation: None,
        rotated_at: None,
    };
    (token, session)
}

fn judge(token: &refresh_token::Model, session: &session::Model) -> Presented {
    judge_refresh(token, session, at(), GRACE)
}

#[test]
fn an_unspent_token_of_a_live_session_is_live() {
    let (token, session) = pair();
    assert_eq!(judge(&token, &session), Presented::Live);
}

#[test]
fn an_unspent_token_past_its_expiry_is_expired() {
    let (mut token, session) = pair();
    token.expires_at = at();
    assert_eq!(judge(&token, &session), Presented::Expired);
    token.expires_at = at() + Duration::microseconds(1);
    assert_eq!(judge(&token, &session), Presented::Live);
}

#[test]
fn a_token_spent_within_the_grace_window_is_a_retry() {
    let (mut token, session) = pair();
    token.spent_at = Some(at());
    assert_eq!(judge(&token, &session), Presented::InGrace);
    token.spent_at = Some(at() - GRACE);
    assert_eq!(
        judge(&token, &session),
        Presented::InGrace,
        "the window's edge"
    );
    // Its own expiry does not matter once spent: the successor decides.
    token.expires_at = at() - Duration::seconds(1);
    assert_eq!(judge(&token, &session), Presented::InGrace);
}

#[test]
fn a_token_spent_before_the_grace_window_is_reuse() {
    let (mut token, session) = pair();
    token.spent_at = Some(at() - GRACE - Duration::microseconds(1));
    assert_eq!(judge(&token, &session), Presented::Reused);
    assert_eq!(
        judge_refresh(&token, &session, at(), Duration::zero()),
        Presented::Reused
    );
}

#[test]
fn any_token_of_a_dead_session_proves_nothing() {
    for spent_at in [None, Some(at()), Some(at() - Duration::hours(1))] {
        let (mut token, mut session) = pair();
        token.spent_at = spent_at;
        session.revoked_at = Some(at() - Duration::seconds(1));
        assert_eq!(judge(&token, &session), Presented::SessionDead, "revoked");
        let (mut token, mut session) = pair();
        token.spent_at = spent_at;
        session.expires_at = at();
        assert_eq!(judge(&token, &session), Presented::SessionDead, "expired");
    }
}

/// A chain at generation 5, last moved on `moved` before [`at`].
fn chain(moved: Duration) -> (refresh_token::Model, session::Model) {
    let (mut row, session) = pair();
    row.generation = Some(5);
    row.rotated_at = Some(at() - moved);
    (row, session)
}

fn judge_generation(
    row: &refresh_token::Model,
    session: &session::Model,
    generation: i64,
) -> Option<Presented> {
    as_presented(row, Some(generation)).map(|state| judge(&state, session))
}

#[test]
fn a_chains_live_generation_is_the_row_as_it_is() {
    let (mut row, session) = chain(Duration::minutes(5));
    assert_eq!(as_presented(&row, Some(5)), Some(row.clone()));
    assert_eq!(judge_generation(&row, &session, 5), Some(Presented::Live));
    row.expires_at = at();
    assert_eq!(
        judge_generation(&row, &session, 5),
        Some(Presented::Expired)
    );
}

#[test]
fn every_earlier_generation_is_spent_when_the_chain_last_moved() {
    let (row, session) = chain(Duration::minutes(5));
    for generation in [0, 3, 4] {
        let state = as_presented(&row, Some(generation)).unwrap();
        assert_eq!(state.spent_at, row.rotated_at, "generation {generation}");
        assert_eq!(
            judge_generation(&row, &session, generation),
            Some(Presented::Reused)
        );
    }
    // Inside the grace window of the last move: a retry (whose successor the grace
    // answer then finds live only for the generation just before the live one).
    let (row, session) = chain(Duration::seconds(2));
    for generation in [0, 4] {
        assert_eq!(
            judge_generation(&row, &session, generation),
            Some(Presented::InGrace)
        );
    }
    // A dead session outranks every generation's own state.
    let (row, mut session) = chain(Duration::minutes(5));
    session.revoked_at = Some(at());
    assert_eq!(
        judge_generation(&row, &session, 4),
        Some(Presented::SessionDead)
    );
}

#[test]
fn a_generation_the_chain_has_not_reached_or_the_wrong_kind_of_row_is_no_token() {
    let (row, _) = chain(Duration::minutes(5));
    assert_eq!(as_presented(&row, Some(6)), None);
    assert_eq!(as_presented(&row, Some(i64::MAX)), None);
    assert_eq!(
        as_presented(&row, None),
        None,
        "a chain is not a token of its own"
    );
    let (legacy, _) = pair();
    assert_eq!(as_presented(&legacy, Some(0)), None);
    assert_eq!(as_presented(&legacy, None), Some(legacy.clone()));
}

#[test]
fn a_chain_that_never_moved_counts_its_earlier_generations_spent_at_its_creation() {
    // Not reachable from the server (generation 0 is where a chain starts), but a row
    // written by hand must still judge safely: spent long ago is reuse.
    let (mut row, session) = pair();
    row.generation = Some(1);
    row.created_at = at() - Duration::hours(1);
    assert_eq!(judge_generation(&row, &session, 0), Some(Presented::Reused));
}
