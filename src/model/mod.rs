//! The dialect-neutral domain (SPEC §1): operations, their states and the
//! rules for moving between them. No I/O lives here: no clock, no randomness,
//! no storage. Callers pass `now` in, which keeps every rule unit-testable.

pub mod error;
pub mod id;
pub mod key;
pub mod lease;
pub mod operation;
pub mod retention;
pub mod script;
pub mod state;
pub mod timestamp;
pub mod transition;
pub mod webhook;

pub use error::{IdError, OperationError, TransitionError};
pub use id::{Kind, OperationId, Scope};
pub use key::{ApiKey, KeyScope, Role, ScopeRefusal};
pub use lease::{Heartbeat, Lease, LeaseError, LeaseId};
pub use operation::{NewOperation, Operation};
pub use retention::Retention;
pub use script::{Script, ScriptStep};
pub use state::State;
pub use timestamp::Timestamp;
pub use transition::{Applied, Changes};
pub use webhook::{Delivery, DeliveryState, Webhook};
