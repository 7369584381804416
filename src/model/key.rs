//! API keys as the service keeps them: a hash, a scope and a role. The secret
//! itself is shown once at creation and never stored (see `auth::keys`).

use super::{IdError, Scope, Timestamp};

/// What a key may do. Roles are ordered: each includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Read operations through the dialects and the native GETs.
    Read,
    /// Also create and advance operations.
    Produce,
    /// Also manage keys and service-wide settings.
    Admin,
}

impl Role {
    /// The spelling used on the command line and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Produce => "produce",
            Role::Admin => "admin",
        }
    }

    /// Parses `read`, `produce` or `admin`.
    pub fn parse(s: &str) -> Option<Role> {
        [Role::Read, Role::Produce, Role::Admin].into_iter().find(|role| role.as_str() == s)
    }
}

/// Which operations a caller reaches: one scope, several (a token whose
/// claim lists them), or every scope (`*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyScope {
    /// `*`: every scope (operators, trusted backends).
    All,
    /// Exactly one scope.
    One(Scope),
    /// Each of these scopes (bearer tokens only; API keys have one or `*`).
    Many(Vec<Scope>),
}

/// Why a caller cannot narrow a listing or a watch to a scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeRefusal {
    /// It asked for a scope it does not reach.
    NotCovered(Scope),
    /// It named none and reaches several, so it must name one.
    Ambiguous,
}

impl KeyScope {
    /// Parses `*` or a scope.
    pub fn parse(s: &str) -> Result<KeyScope, IdError> {
        if s == "*" { Ok(KeyScope::All) } else { Scope::parse(s).map(KeyScope::One) }
    }

    /// True when this caller may see operations of `scope`: the one place
    /// that decides.
    pub fn covers(&self, scope: &Scope) -> bool {
        match self {
            KeyScope::All => true,
            KeyScope::One(own) => own == scope,
            KeyScope::Many(own) => own.contains(scope),
        }
    }

    /// Each scope reached, listed (none for `*`, which reaches them all).
    pub fn scopes(&self) -> &[Scope] {
        match self {
            KeyScope::All => &[],
            KeyScope::One(own) => std::slice::from_ref(own),
            KeyScope::Many(own) => own,
        }
    }

    /// The scope a listing or a watch narrows to: the one `asked` if
    /// covered, else the caller's only scope; `None` means every scope.
    pub fn narrow(&self, asked: Option<Scope>) -> Result<Option<Scope>, ScopeRefusal> {
        match (asked, self) {
            (Some(asked), reach) if reach.covers(&asked) => Ok(Some(asked)),
            (Some(asked), _) => Err(ScopeRefusal::NotCovered(asked)),
            (None, KeyScope::All) => Ok(None),
            (None, KeyScope::One(own)) => Ok(Some(own.clone())),
            (None, KeyScope::Many(own)) if own.len() == 1 => Ok(Some(own[0].clone())),
            (None, KeyScope::Many(_)) => Err(ScopeRefusal::Ambiguous),
        }
    }
}

impl std::fmt::Display for KeyScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyScope::All => f.write_str("*"),
            KeyScope::One(scope) => scope.fmt(f),
            KeyScope::Many(scopes) => {
                let names: Vec<String> = scopes.iter().map(Scope::to_string).collect();
                f.write_str(&names.join(","))
            }
        }
    }
}

/// A stored key: everything but the secret.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKey {
    /// Public identifier, safe to log and to name in `key revoke`.
    pub id: String,
    /// Hex SHA-256 of the secret: what a presented key is looked up by.
    pub hash: String,
    /// Which operations it reaches.
    pub scope: KeyScope,
    /// What it may do there.
    pub role: Role,
    /// Free text from `--name`, for humans.
    pub name: Option<String>,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it stops working: revoked (past), or due to be after a rotation (future).
    pub revoked_at: Option<Timestamp>,
}

impl ApiKey {
    /// True when the key is live at `now` and holds at least `role`.
    pub fn allows(&self, role: Role, now: Timestamp) -> bool {
        self.revoked_at.is_none_or(|at| at > now) && self.role >= role
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_include_the_lesser_ones() {
        assert!(Role::Admin > Role::Produce && Role::Produce > Role::Read);
        assert_eq!(Role::parse("produce"), Some(Role::Produce));
        assert_eq!(Role::parse("owner"), None);
    }

    #[test]
    fn a_key_scope_covers_only_its_scope_unless_it_is_a_wildcard() {
        let mine = Scope::parse("projects/mine").unwrap();
        let theirs = Scope::parse("projects/theirs").unwrap();
        assert!(KeyScope::One(mine.clone()).covers(&mine));
        assert!(!KeyScope::One(mine).covers(&theirs));
        assert!(KeyScope::All.covers(&theirs));
    }

    #[test]
    fn several_scopes_cover_each_and_must_be_named_to_narrow() {
        let a = Scope::parse("projects/alpha").unwrap();
        let b = Scope::parse("accounts/bravo").unwrap();
        let c = Scope::parse("projects/charlie").unwrap();
        let many = KeyScope::Many(vec![a.clone(), b.clone()]);
        assert!(many.covers(&a) && many.covers(&b) && !many.covers(&c));
        assert_eq!(many.to_string(), "projects/alpha,accounts/bravo");
        assert_eq!(many.narrow(Some(b.clone())), Ok(Some(b)));
        assert_eq!(many.narrow(Some(c.clone())), Err(ScopeRefusal::NotCovered(c)));
        assert_eq!(many.narrow(None), Err(ScopeRefusal::Ambiguous));
        assert_eq!(KeyScope::Many(vec![a.clone()]).narrow(None), Ok(Some(a.clone())));
        assert_eq!(KeyScope::One(a.clone()).narrow(None), Ok(Some(a)));
        assert_eq!(KeyScope::All.narrow(None), Ok(None));
    }
}
