//! Sessions and the WeChat identities they produce. OAuth states live in memory
//! (`service::oauth_states`); the `oauth_states_v1` table of older data files is only swept.

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::tables::{OAUTH_STATES, SESSIONS, WX_USERS};
use super::{Result, Store};

/// A signed-in browser. Stored under the SHA-256 of its id, never the id itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Session {
    pub openid: String,
    pub created: i64,
    pub expires: i64,
}

/// A state issued by `/wx/oauth/start` by older versions (left in old data files).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OAuthState {
    /// Hex SHA-256 of the browser's binding cookie.
    pub browser: String,
    pub next: String,
    pub scope: String,
    pub created: i64,
    /// Set once the code was exchanged: the openid it gave.
    pub completed_openid: Option<String>,
}

/// What we know of a WeChat user.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct WxUser {
    pub nickname: Option<String>,
    pub avatar_url: Option<String>,
    pub unionid: Option<String>,
    pub updated: i64,
}

/// At most this many records are dropped per write transaction of a sweep.
pub const PURGE_BATCH: usize = 500;

impl Store {
    #[cfg(test)]
    pub fn put_oauth_state(&self, state: &str, s: &OAuthState) -> Result<()> {
        self.write_json(OAUTH_STATES, state, s)
    }

    #[cfg(test)]
    pub fn oauth_state(&self, state: &str) -> Result<Option<OAuthState>> {
        self.read_json(OAUTH_STATES, state)
    }

    /// Create the session of a sign-in and record the user and the sign-in, in one transaction.
    /// The user's row is written only when the profile (nickname, avatar, unionid) differs from
    /// the one stored, so `updated` says when it last changed. The commit is durable.
    pub fn complete_login(
        &self,
        openid: &str,
        session_hash: &[u8; 32],
        session: &Session,
        user: Option<&WxUser>,
    ) -> Result<()> {
        let tx = self.db().begin_write()?;
        {
            let v = serde_json::to_vec(session)?;
            tx.open_table(SESSIONS)?
                .insert(session_hash.as_slice(), v.as_slice())?;
            if let Some(u) = user {
                let mut users = tx.open_table(WX_USERS)?;
                let stored: Option<WxUser> = match users.get(openid)? {
                    Some(v) => serde_json::from_slice(v.value()).ok(),
                    None => None,
                };
                let same = stored.is_some_and(|s| {
                    s.nickname == u.nickname
                        && s.avatar_url == u.avatar_url
                        && s.unionid == u.unionid
                });
                if !same {
                    let v = serde_json::to_vec(u)?;
                    users.insert(openid, v.as_slice())?;
                }
            }
        }
        super::privacy::record_signin_in(
            &tx,
            openid,
            &super::privacy::SignIn {
                at: session.created,
                userinfo: user.is_some(),
            },
        )?;
        tx.commit()?;
        Ok(())
    }

    pub fn put_session(&self, session_hash: &[u8; 32], s: &Session) -> Result<()> {
        self.write_json(SESSIONS, session_hash.as_slice(), s)
    }

    pub fn session(&self, session_hash: &[u8; 32]) -> Result<Option<Session>> {
        self.read_json(SESSIONS, session_hash.as_slice())
    }

    pub fn delete_session(&self, session_hash: &[u8; 32]) -> Result<()> {
        self.delete_key(SESSIONS, session_hash.as_slice())
    }

    pub fn wx_user(&self, openid: &str) -> Result<Option<WxUser>> {
        self.read_json(WX_USERS, openid)
    }

    /// Drop sessions and (leftover) OAuth states that ended before `now` (states live
    /// `state_ttl` seconds), [`PURGE_BATCH`] per transaction. Returns how many records went.
    pub fn purge_expired(&self, now: i64, state_ttl: i64) -> Result<usize> {
        Ok(
            self.drop_where_batched(SESSIONS, PURGE_BATCH, |s: &Session| s.expires <= now)?
                + self.drop_where_batched(OAUTH_STATES, PURGE_BATCH, |s: &OAuthState| {
                    s.created + state_ttl <= now
                })?,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sign_in_rewrites_the_user_only_when_the_profile_changed() {
        let d = std::env::temp_dir().join(format!("wxg-login-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let s = Store::open(&d.join("x.redb")).unwrap();
        let session = Session {
            openid: "o".into(),
            created: 0,
            expires: 100,
        };
        let user = |nickname: &str, updated| WxUser {
            nickname: Some(nickname.into()),
            avatar_url: None,
            unionid: None,
            updated,
        };
        s.complete_login("o", &[1; 32], &session, Some(&user("小明", 10)))
            .unwrap();
        s.complete_login("o", &[2; 32], &session, Some(&user("小明", 20)))
            .unwrap();
        assert_eq!(s.wx_user("o").unwrap(), Some(user("小明", 10)));
        s.complete_login("o", &[3; 32], &session, Some(&user("小红", 30)))
            .unwrap();
        assert_eq!(s.wx_user("o").unwrap(), Some(user("小红", 30)));
        // Every sign-in's session is there.
        for h in [[1; 32], [2; 32], [3; 32]] {
            assert_eq!(s.session(&h).unwrap(), Some(session.clone()));
        }
        drop(s);
        // Every sign-in is durable: a reopened file has the last one.
        let s = Store::open(&d.join("x.redb")).unwrap();
        assert!(s.session(&[3; 32]).unwrap().is_some());
    }

    #[test]
    fn purge_drops_only_what_has_expired() {
        let d = std::env::temp_dir().join(format!("wxg-purge-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let s = Store::open(&d.join("x.redb")).unwrap();
        let session = |expires| Session {
            openid: "o".into(),
            created: 0,
            expires,
        };
        s.put_session(&[1; 32], &session(100)).unwrap();
        s.put_session(&[2; 32], &session(1000)).unwrap();
        let state = |created| OAuthState {
            browser: String::new(),
            next: "/".into(),
            scope: "snsapi_base".into(),
            created,
            completed_openid: None,
        };
        s.put_oauth_state("old", &state(0)).unwrap();
        s.put_oauth_state("new", &state(400)).unwrap();
        assert_eq!(s.purge_expired(700, 600).unwrap(), 2);
        assert!(s.session(&[1; 32]).unwrap().is_none());
        assert!(s.session(&[2; 32]).unwrap().is_some());
        assert!(s.oauth_state("old").unwrap().is_none());
        assert!(s.oauth_state("new").unwrap().is_some());
    }

    #[test]
    fn purge_deletes_in_batches_and_keeps_the_live() {
        let d = std::env::temp_dir().join(format!("wxg-purge-b-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let s = Store::open(&d.join("x.redb")).unwrap();
        let n = PURGE_BATCH * 2 + 7;
        for i in 0..n {
            let mut h = [0u8; 32];
            h[..8].copy_from_slice(&(i as u64).to_be_bytes());
            // Every third session is still live, spread through the table.
            let expires = if i % 3 == 0 { 5000 } else { 100 };
            s.put_session(
                &h,
                &Session {
                    openid: "o".into(),
                    created: 0,
                    expires,
                },
            )
            .unwrap();
        }
        let live = n.div_ceil(3);
        assert_eq!(s.purge_expired(1000, 600).unwrap(), n - live);
        assert_eq!(
            s.purge_expired(1000, 600).unwrap(),
            0,
            "nothing left to drop"
        );
        let mut h = [0u8; 32];
        h[..8].copy_from_slice(&3u64.to_be_bytes());
        assert!(s.session(&h).unwrap().is_some());
        h[..8].copy_from_slice(&4u64.to_be_bytes());
        assert!(s.session(&h).unwrap().is_none());
    }
}
