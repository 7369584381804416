//! Validated identifiers: operation ids, scopes and kinds.
//!
//! Each newtype can only be built through `parse`, so code holding one knows
//! it is well-formed and never re-checks.

use uuid::Uuid;

use super::IdError;

/// An operation's id: a UUID, written lowercase and hyphenated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OperationId(Uuid);

impl OperationId {
    /// Wraps a UUID the caller already has (e.g. a fresh v7 from the service).
    pub fn from_uuid(id: Uuid) -> OperationId {
        OperationId(id)
    }

    /// Accepts only the 36-character hyphenated form, any case. Braced, URN
    /// and simple forms are refused: ids travel in URL paths, where one
    /// spelling per id keeps caches and logs honest.
    pub fn parse(s: &str) -> Option<OperationId> {
        if s.len() != 36 {
            return None;
        }
        Uuid::try_parse(s).ok().map(OperationId)
    }

    /// The underlying UUID.
    pub fn uuid(self) -> Uuid {
        self.0
    }
}

impl std::fmt::Display for OperationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.hyphenated())
    }
}

/// The owner namespace of an operation (SPEC §3). The variant decides which
/// dialect a client polls it through.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// `tenants/{uuid}`: an Azure Sphere tenant.
    Tenant(Uuid),
    /// `projects/{name}`: an Azure Dev Center project.
    Project(String),
    /// `accounts/{name}`: a Face (Cognitive Services) account.
    Account(String),
}

impl Scope {
    /// Parses `tenants/{uuid}`, `projects/{name}` or `accounts/{name}`.
    pub fn parse(s: &str) -> Result<Scope, IdError> {
        let (prefix, name) = s.split_once('/').ok_or_else(|| IdError::ScopeSyntax(s.to_owned()))?;
        match prefix {
            "tenants" => OperationId::parse(name)
                .map(|id| Scope::Tenant(id.uuid()))
                .ok_or_else(|| IdError::TenantNotUuid(s.to_owned())),
            "projects" if is_project_name(name) => Ok(Scope::Project(name.to_owned())),
            "projects" => Err(IdError::ProjectName(s.to_owned())),
            "accounts" if is_account_name(name) => Ok(Scope::Account(name.to_owned())),
            "accounts" => Err(IdError::AccountName(s.to_owned())),
            _ => Err(IdError::ScopeSyntax(s.to_owned())),
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Tenant(id) => write!(f, "tenants/{}", id.hyphenated()),
            Scope::Project(name) => write!(f, "projects/{name}"),
            Scope::Account(name) => write!(f, "accounts/{name}"),
        }
    }
}

/// Dev Center's projectName pattern: `^[a-zA-Z0-9][a-zA-Z0-9-_.]{2,62}$`.
pub fn is_project_name(name: &str) -> bool {
    is_name(name, 3, 63)
}

/// Cognitive Services account names: same alphabet, 2 to 64 characters.
fn is_account_name(name: &str) -> bool {
    is_name(name, 2, 64)
}

fn is_name(name: &str, min: usize, max: usize) -> bool {
    let mut chars = name.chars();
    (min..=max).contains(&name.len())
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// What an operation does, in camelCase (`imageUpload`, `deleteDevBox`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Kind(String);

impl Kind {
    /// Accepts `^[a-z][a-zA-Z0-9]{0,63}$`.
    pub fn parse(s: &str) -> Result<Kind, IdError> {
        let mut chars = s.chars();
        let ok = (1..=64).contains(&s.len())
            && chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_alphanumeric());
        if ok { Ok(Kind(s.to_owned())) } else { Err(IdError::Kind(s.to_owned())) }
    }
}

impl AsRef<str> for Kind {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_must_be_hyphenated_uuids() {
        assert!(OperationId::parse("fa067167-e49d-41bd-8dd8-de719b9de3b3").is_some());
        assert!(OperationId::parse("FA067167-E49D-41BD-8DD8-DE719B9DE3B3").is_some());
        for bad in ["", "not-a-uuid", "fa067167e49d41bd8dd8de719b9de3b3", "{fa067167-e49d-41bd-8dd8-de719b9de3b3}"] {
            assert!(OperationId::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn scopes_round_trip_and_reject_bad_names() {
        for good in ["tenants/143adbc9-1bf0-4be2-84a2-084a331d81cb", "projects/myProject", "accounts/contoso-face"] {
            assert_eq!(Scope::parse(good).unwrap().to_string(), good);
        }
        for bad in ["", "tenants/x", "projects/ab", "projects/-abc", "accounts/a b", "buckets/x", "projects"] {
            assert!(Scope::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tenant_scopes_are_normalised_to_lowercase() {
        let scope = Scope::parse("tenants/143ADBC9-1BF0-4BE2-84A2-084A331D81CB").unwrap();
        assert_eq!(scope.to_string(), "tenants/143adbc9-1bf0-4be2-84a2-084a331d81cb");
    }

    #[test]
    fn kinds_are_camel_case() {
        assert!(Kind::parse("imageUpload").is_ok());
        for bad in ["", "ImageUpload", "image-upload", "image upload", &"a".repeat(65)] {
            assert!(Kind::parse(bad).is_err(), "{bad}");
        }
    }
}
