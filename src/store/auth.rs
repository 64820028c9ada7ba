//! Sessions, one-time OAuth states and the WeChat identities they produce.

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::tables::{OAUTH_STATES, SESSIONS, WX_USERS};
use super::{drop_where, Result, Store};

/// A signed-in browser. Stored under the SHA-256 of its id, never the id itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Session {
    pub openid: String,
    pub created: i64,
    pub expires: i64,
}

/// A state issued by `/wx/oauth/start`, bound to one browser.
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

impl Store {
    pub fn put_oauth_state(&self, state: &str, s: &OAuthState) -> Result<()> {
        self.write_json(OAUTH_STATES, state, s)
    }

    pub fn oauth_state(&self, state: &str) -> Result<Option<OAuthState>> {
        self.read_json(OAUTH_STATES, state)
    }

    /// Mark a state completed for `openid`, create the session and record the user, in one
    /// transaction. Returns false (and writes nothing) when the state was completed meanwhile.
    pub fn complete_login(
        &self,
        state: &str,
        openid: &str,
        session_hash: &[u8; 32],
        session: &Session,
        user: Option<&WxUser>,
    ) -> Result<bool> {
        let tx = self.db().begin_write()?;
        {
            let mut states = tx.open_table(OAUTH_STATES)?;
            let current: Option<OAuthState> = match states.get(state)? {
                Some(v) => Some(serde_json::from_slice(v.value())?),
                None => None,
            };
            let Some(mut st) = current else {
                return Ok(false);
            };
            if st.completed_openid.is_some() {
                return Ok(false);
            }
            st.completed_openid = Some(openid.to_string());
            let v = serde_json::to_vec(&st)?;
            states.insert(state, v.as_slice())?;
            let v = serde_json::to_vec(session)?;
            tx.open_table(SESSIONS)?
                .insert(session_hash.as_slice(), v.as_slice())?;
            if let Some(u) = user {
                let v = serde_json::to_vec(u)?;
                tx.open_table(WX_USERS)?.insert(openid, v.as_slice())?;
            }
        }
        tx.commit()?;
        Ok(true)
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

    /// Drop sessions and OAuth states that ended before `now` (states live `state_ttl` seconds).
    /// Returns how many records went.
    pub fn purge_expired(&self, now: i64, state_ttl: i64) -> Result<usize> {
        let tx = self.db().begin_write()?;
        let gone = drop_where(&tx, SESSIONS, |s: &Session| s.expires <= now)?
            + drop_where(&tx, OAUTH_STATES, |s: &OAuthState| {
                s.created + state_ttl <= now
            })?;
        tx.commit()?;
        Ok(gone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
