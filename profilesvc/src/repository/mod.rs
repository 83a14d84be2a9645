//! Where profiles are kept: a small trait, and two implementations of it.
//!
//! Go kit's profilesvc keeps its profiles in a map that the service itself locks, so they are
//! gone when the process stops. Here the service's rules ([`BasicProfileService`]) are apart
//! from the keeping of profiles, which is a [`Repository`]:
//!
//! - [`MemoryRepository`]: Go kit's map, behind a lock; the tutorial's behaviour.
//! - [`SqliteRepository`]: a SQLite file, chosen with `--db PATH`. Every write it acknowledges
//!   has been committed, so it survives the process being killed, and several processes can
//!   serve the same file.
//!
//! A repository knows nothing of the rules: it creates, reads, replaces and deletes whole
//! profiles, and changes one atomically with [`Repository::update`], which is how the service
//! implements PATCH and the address operations without losing a concurrent change.
//!
//! [`BasicProfileService`]: crate::service::BasicProfileService

use std::future::Future;

use crate::service::{Profile, ProfileError};

mod memory;
mod sqlite;

pub use memory::MemoryRepository;
pub use sqlite::{OpenError, SCHEMA_VERSION, SqliteRepository};

// ANCHOR: trait
/// Keeps profiles, each with its addresses, by id.
///
/// Implementations fail with [`ProfileError::AlreadyExists`] and [`ProfileError::NotFound`] as
/// documented, with whatever error a change function returns, and with
/// [`ProfileError::Backend`] when the store itself fails.
pub trait Repository: Clone + Send + Sync + 'static {
    /// Stores a new profile; [`ProfileError::AlreadyExists`] if its id is taken.
    fn create(&self, profile: Profile) -> impl Future<Output = Result<(), ProfileError>> + Send;

    /// The profile with this id, if there is one.
    fn get(&self, id: &str) -> impl Future<Output = Result<Option<Profile>, ProfileError>> + Send;

    /// Stores a profile under its id, replacing whatever was there.
    fn put(&self, profile: Profile) -> impl Future<Output = Result<(), ProfileError>> + Send;

    /// Changes the profile with this id with `change`, atomically: no other change to that
    /// profile happens between reading it and writing it back. [`ProfileError::NotFound`] if
    /// there is no such profile; if `change` fails, nothing is written and its error is
    /// returned.
    fn update<F>(
        &self,
        id: &str,
        change: F,
    ) -> impl Future<Output = Result<(), ProfileError>> + Send
    where
        F: FnOnce(&mut Profile) -> Result<(), ProfileError> + Send + 'static;

    /// Deletes the profile with this id; whether there was one.
    fn delete(&self, id: &str) -> impl Future<Output = Result<bool, ProfileError>> + Send;
}
// ANCHOR_END: trait

#[cfg(test)]
mod tests;
