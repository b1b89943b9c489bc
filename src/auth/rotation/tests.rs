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
