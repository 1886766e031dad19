//! Organizations, users, memberships and API tokens, kept in one store document.
//!
//! Like the runner tokens, they live in a store document ([`DOCUMENT`]) through
//! [`Store::load_document`] / [`Store::save_document`], so that every store backend holds
//! them; a daemon has a few organizations and users, not millions. [`Directory`] serializes
//! its read-modify-write cycles and keeps the document in memory once read, so that
//! authenticating a request costs no store read: keep one per store in a process.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::api_token::{self, ApiToken, TokenId};
use super::{Email, OrgName, Role};
use crate::{Error, ErrorKind, Result, Store, TokenHash, constant_time_eq};

/// The name of the store document that holds the directory.
pub const DOCUMENT: &str = "access";

/// How stale a token's `last_used_at` may get before a use is written down: a busy CI
/// token then costs one store write a minute, not one per request.
pub const LAST_USE_PRECISION: SignedDuration = SignedDuration::from_secs(60);

/// The longest token name.
pub const MAX_TOKEN_NAME_LEN: usize = 64;

/// What the store keeps about an organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgRecord {
    /// When it was created.
    pub created_at: Timestamp,
}

/// What the store keeps about a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// When the user was first added.
    pub created_at: Timestamp,
    /// The user's role in each organization they are in.
    #[serde(default)]
    pub memberships: BTreeMap<OrgName, Role>,
}

/// What the store keeps about an API token: never its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Its public id.
    pub id: TokenId,
    /// Whose it is.
    pub user: Email,
    /// A name its user gave it (`ci`, `laptop`).
    pub name: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it stops authenticating; `None` for never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// The one organization it acts in; `None` for all of its user's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<OrgName>,
    /// The highest role it acts with; `None` for its user's role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_role: Option<Role>,
    /// When it was revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Timestamp>,
    /// When it last authenticated a request (to [`LAST_USE_PRECISION`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<Timestamp>,
}

/// A token as stored: its record and the digest of its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredToken {
    /// The SHA-256 digest of the token's text.
    pub hash: TokenHash,
    /// What listings show.
    #[serde(flatten)]
    pub record: TokenRecord,
}

/// The [`DOCUMENT`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessDocument {
    /// Organizations created through the directory (the config may name more).
    #[serde(default)]
    pub orgs: BTreeMap<OrgName, OrgRecord>,
    /// Users by address.
    #[serde(default)]
    pub users: BTreeMap<Email, UserRecord>,
    /// API tokens by their public id.
    #[serde(default)]
    pub tokens: BTreeMap<TokenId, StoredToken>,
}

/// A user as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    /// The address.
    pub email: Email,
    /// When the user was first added.
    pub created_at: Timestamp,
    /// Their role in each of their organizations.
    pub memberships: BTreeMap<OrgName, Role>,
}

/// A member of one organization, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The member's address.
    pub email: Email,
    /// Their role there.
    pub role: Role,
}

/// What creating a token asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    /// Whose it is.
    pub user: Email,
    /// Its name (1 to [`MAX_TOKEN_NAME_LEN`] printable characters).
    pub name: String,
    /// When it expires; `None` for never.
    pub expires_at: Option<Timestamp>,
    /// The one organization it acts in.
    pub org: Option<OrgName>,
    /// The highest role it acts with.
    pub max_role: Option<Role>,
}

/// Who a presented token says the caller is, once it checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's user.
    pub user: Email,
    /// The token.
    pub token: TokenId,
    /// The organization the token is narrowed to.
    pub org: Option<OrgName>,
    /// The role the token is capped at.
    pub max_role: Option<Role>,
}

/// Why a presented token does not authenticate. The API answers all of them alike (401),
/// so that a caller learns nothing about tokens that are not theirs; the audit log and the
/// daemon's log may tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not the shape of an API token.
    Malformed,
    /// No token has this digest.
    Unknown,
    /// Past its expiry.
    Expired,
    /// Revoked.
    Revoked,
}

impl Refusal {
    /// A word for logs and the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Malformed => "malformed",
            Refusal::Unknown => "unknown",
            Refusal::Expired => "expired",
            Refusal::Revoked => "revoked",
        }
    }
}

/// Organizations, users, memberships and API tokens in a [`Store`]; see the module.
#[derive(Debug, Clone)]
pub struct Directory {
    store: Arc<dyn Store>,
    lock: Arc<tokio::sync::Mutex<()>>,
    cached: Arc<std::sync::Mutex<Option<Arc<AccessDocument>>>>,
}

impl Directory {
    /// The directory kept in `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store, lock: Arc::new(tokio::sync::Mutex::new(())), cached: Arc::default() }
    }

    /// The document as it is now, from memory once read.
    ///
    /// # Errors
    ///
    /// The store's errors; [`ErrorKind::Store`] when the document cannot be read.
    pub async fn snapshot(&self) -> Result<Arc<AccessDocument>> {
        if let Some(doc) = self.cached.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            return Ok(doc);
        }
        let doc = Arc::new(load(self.store.as_ref()).await?);
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::clone(&doc));
        Ok(doc)
    }

    /// Runs `change` on a copy of the document under the lock and saves the copy when it
    /// returns `Ok`; its value is returned.
    async fn update<T>(&self, change: impl FnOnce(&mut AccessDocument) -> Result<T>) -> Result<T> {
        let _guard = self.lock.lock().await;
        let mut doc = AccessDocument::clone(&*self.snapshot().await?);
        let value = change(&mut doc)?;
        save(self.store.as_ref(), &doc).await?;
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(doc));
        Ok(value)
    }

    /// Creates the organization `org`; `false` when it already was.
    ///
    /// # Errors
    ///
    /// The store's errors.
    pub async fn create_org(&self, org: &OrgName, now: Timestamp) -> Result<bool> {
        if self.snapshot().await?.orgs.contains_key(org) {
            return Ok(false);
        }
        self.update(|doc| Ok(doc.orgs.insert(org.clone(), OrgRecord { created_at: now }).is_none())).await
    }

    /// Gives `email` the role `role` in `org`, adding the user when they are new; returns
    /// the role they had there before.
    ///
    /// # Errors
    ///
    /// The store's errors.
    pub async fn set_member(&self, email: &Email, org: &OrgName, role: Role, now: Timestamp) -> Result<Option<Role>> {
        self.update(|doc| {
            let user = doc
                .users
                .entry(email.clone())
                .or_insert_with(|| UserRecord { created_at: now, memberships: BTreeMap::new() });
            Ok(user.memberships.insert(org.clone(), role))
        })
        .await
    }

    /// Takes `email` out of `org`; returns the role they had, `None` when they were not in
    /// it. The user stays (with their other memberships and tokens).
    ///
    /// # Errors
    ///
    /// The store's errors.
    pub async fn remove_member(&self, email: &Email, org: &OrgName) -> Result<Option<Role>> {
        let is_member = self.snapshot().await?.users.get(email).is_some_and(|u| u.memberships.contains_key(org));
        if !is_member {
            return Ok(None);
        }
        self.update(|doc| Ok(doc.users.get_mut(email).and_then(|u| u.memberships.remove(org)))).await
    }

    /// Every user, by address.
    ///
    /// # Errors
    ///
    /// The store's errors.
    pub async fn users(&self) -> Result<Vec<UserInfo>> {
        let doc = self.snapshot().await?;
        Ok(doc.users.iter().map(|(email, u)| user_info(email, u)).collect())
    }

    /// One user.
    ///
    /// # Errors
    ///
    /// The store's errors.
    pub async fn user(&self, email: &Email) -> Result<Option<UserInfo>> {
        Ok(self.snapshot().await?.users.get(email).map(|u| user_info(email, u)))
    }

    /// The members of `org`, by address.
    ///
    /// # Errors
    ///
    /// The store's errors.
    pub async fn members(&self, org: &OrgName) -> Result<Vec<Member>> {
        let doc = self.snapshot().await?;
        Ok(doc
            .users
            .iter()
            .filter_map(|(email, u)| u.memberships.get(org).map(|role| Member { email: email.clone(), role: *role }))
            .collect())
    }

    /// The role of `email` in `org`, if they are in it.
    ///
    /// # Errors
    ///
    /// The store's errors.
    pub async fn role(&self, email: &Email, org: &OrgName) -> Result<Option<Role>> {
        Ok(self.snapshot().await?.users.get(email).and_then(|u| u.memberships.get(org).copied()))
    }

    /// Creates a token; the returned token is the only copy of its text.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`] for an unknown user; [`ErrorKind::InvalidInput`] for a bad
    /// name or an expiry not after `now`; the store's errors.
    pub async fn create_token(&self, new: &NewToken, now: Timestamp) -> Result<(ApiToken, TokenRecord)> {
        const OP: &str = "create an API token";
        let name = new.name.trim();
        if name.is_empty() || name.chars().count() > MAX_TOKEN_NAME_LEN || name.chars().any(char::is_control) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                OP,
                format!("the token name {:?} must be 1 to {MAX_TOKEN_NAME_LEN} printable characters", new.name),
            ));
        }
        if new.expires_at.is_some_and(|at| at <= now) {
            return Err(Error::new(ErrorKind::InvalidInput, OP, "the expiry must be in the future"));
        }
        self.update(|doc| {
            if !doc.users.contains_key(&new.user) {
                return Err(Error::new(ErrorKind::NotFound, OP, format!("no user {}", new.user)));
            }
            // Ids are 48 random bits: a clash is unlikely, and refused here all the same.
            let token = loop {
                let token = ApiToken::generate();
                if !doc.tokens.contains_key(&token.id()) {
                    break token;
                }
            };
            let record = TokenRecord {
                id: token.id(),
                user: new.user.clone(),
                name: name.to_owned(),
                created_at: now,
                expires_at: new.expires_at,
                org: new.org.clone(),
                max_role: new.max_role,
                revoked_at: None,
                last_used_at: None,
            };
            doc.tokens.insert(token.id(), StoredToken { hash: token.hash(), record: record.clone() });
            Ok((token, record))
        })
        .await
    }

    /// Revokes the token `id` at `now`; returns its record as it was, `None` when there is
    /// no such token or it was already revoked.
    ///
    /// # Errors
    ///
    /// The store's errors.
    pub async fn revoke_token(&self, id: &TokenId, now: Timestamp) -> Result<Option<TokenRecord>> {
        let live = |doc: &AccessDocument| doc.tokens.get(id).is_some_and(|t| t.record.revoked_at.is_none());
        if !live(&*self.snapshot().await?) {
            return Ok(None);
        }
        self.update(|doc| {
            let record = doc.tokens.get_mut(id).map(|t| &mut t.record).filter(|r| r.revoked_at.is_none());
            Ok(record.map(|r| {
                let before = r.clone();
                r.revoked_at = Some(now);
                before
            }))
        })
        .await
    }

    /// The token with the public id `id`.
    ///
    /// # Errors
    ///
    /// The store's errors.
    pub async fn token(&self, id: &TokenId) -> Result<Option<TokenRecord>> {
        Ok(self.snapshot().await?.tokens.get(id).map(|t| t.record.clone()))
    }

    /// The tokens of `user` (every token when `None`), oldest first; revoked ones included.
    ///
    /// # Errors
    ///
    /// The store's errors.
    pub async fn tokens(&self, user: Option<&Email>) -> Result<Vec<TokenRecord>> {
        let doc = self.snapshot().await?;
        let mut list: Vec<TokenRecord> =
            doc.tokens.values().map(|t| &t.record).filter(|t| user.is_none_or(|u| &t.user == u)).cloned().collect();
        list.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(list)
    }

    /// Who `presented` authenticates at `now`, or why it does not. A use is written down
    /// when the token's `last_used_at` is older than [`LAST_USE_PRECISION`].
    ///
    /// # Errors
    ///
    /// The store's errors (the refusals are the `Ok(Err(_))` answers).
    pub async fn authenticate(&self, presented: &str, now: Timestamp) -> Result<std::result::Result<Caller, Refusal>> {
        if !api_token::well_formed(presented) {
            return Ok(Err(Refusal::Malformed));
        }
        let id = api_token::id_of(presented);
        let doc = self.snapshot().await?;
        let Some(stored) = doc.tokens.get(&id) else {
            return Ok(Err(Refusal::Unknown));
        };
        if !constant_time_eq(TokenHash::of(presented).as_hex().as_bytes(), stored.hash.as_hex().as_bytes()) {
            return Ok(Err(Refusal::Unknown));
        }
        let record = &stored.record;
        if record.revoked_at.is_some() {
            return Ok(Err(Refusal::Revoked));
        }
        if record.expires_at.is_some_and(|at| at <= now) {
            return Ok(Err(Refusal::Expired));
        }
        let caller = Caller {
            user: record.user.clone(),
            token: record.id.clone(),
            org: record.org.clone(),
            max_role: record.max_role,
        };
        let stale = record.last_used_at.is_none_or(|at| now.duration_since(at) >= LAST_USE_PRECISION);
        if stale {
            self.update(|doc| {
                if let Some(t) = doc.tokens.get_mut(&id) {
                    t.record.last_used_at = Some(now);
                }
                Ok(())
            })
            .await?;
        }
        Ok(Ok(caller))
    }

    /// The role `caller` acts with in `org`: their membership's, capped by the token's
    /// `max_role`; `None` when they are not in `org` or the token is narrowed to another one.
    ///
    /// # Errors
    ///
    /// The store's errors.
    pub async fn role_of(&self, caller: &Caller, org: &OrgName) -> Result<Option<Role>> {
        if caller.org.as_ref().is_some_and(|only| only != org) {
            return Ok(None);
        }
        let role = self.role(&caller.user, org).await?;
        Ok(role.map(|r| caller.max_role.map_or(r, |cap| r.min(cap))))
    }
}

fn user_info(email: &Email, user: &UserRecord) -> UserInfo {
    UserInfo { email: email.clone(), created_at: user.created_at, memberships: user.memberships.clone() }
}

async fn load(store: &dyn Store) -> Result<AccessDocument> {
    match store.load_document(DOCUMENT).await? {
        None => Ok(AccessDocument::default()),
        Some(value) => serde_json::from_value(value).map_err(|e| {
            Error::new(ErrorKind::Store, "load the directory", format!("the {DOCUMENT} document is unreadable: {e}"))
        }),
    }
}

async fn save(store: &dyn Store, doc: &AccessDocument) -> Result<()> {
    let value = serde_json::to_value(doc)
        .map_err(|e| Error::new(ErrorKind::Store, "save the directory", format!("cannot encode {DOCUMENT}: {e}")))?;
    store.save_document(DOCUMENT, &value).await
}
