//! Profiles in a map, as Go kit keeps them.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, PoisonError, RwLock};

use super::Repository;
use crate::service::{Profile, ProfileError};

// ANCHOR: memory
/// Profiles in memory, lost when the process stops (Go kit's `inmemService` map).
///
/// Cheap to clone; clones share the profiles.
#[derive(Debug, Clone, Default)]
pub struct MemoryRepository {
    /// A read-write lock, as Go kit's `sync.RWMutex`: reads share it, and a change holds it from
    /// reading the profile to writing it back, so concurrent changes cannot lose each other. It
    /// is never held across an `.await`.
    profiles: Arc<RwLock<HashMap<String, Profile>>>,
}
// ANCHOR_END: memory

impl MemoryRepository {
    /// An empty repository.
    pub fn new() -> Self {
        Self::default()
    }

    fn read<T>(&self, f: impl FnOnce(&HashMap<String, Profile>) -> T) -> T {
        // A panic while the lock was held cannot leave a profile half-written: every change is
        // made to a copy that replaces the stored profile only once it succeeded.
        f(&self.profiles.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn write<T>(&self, f: impl FnOnce(&mut HashMap<String, Profile>) -> T) -> T {
        f(&mut self
            .profiles
            .write()
            .unwrap_or_else(PoisonError::into_inner))
    }
}

impl Repository for MemoryRepository {
    async fn create(&self, profile: Profile) -> Result<(), ProfileError> {
        self.write(|profiles| match profiles.entry(profile.id.clone()) {
            Entry::Occupied(_) => Err(ProfileError::AlreadyExists),
            Entry::Vacant(slot) => {
                slot.insert(profile);
                Ok(())
            }
        })
    }

    async fn get(&self, id: &str) -> Result<Option<Profile>, ProfileError> {
        Ok(self.read(|profiles| profiles.get(id).cloned()))
    }

    async fn put(&self, profile: Profile) -> Result<(), ProfileError> {
        self.write(|profiles| profiles.insert(profile.id.clone(), profile));
        Ok(())
    }

    async fn update<F>(&self, id: &str, change: F) -> Result<(), ProfileError>
    where
        F: FnOnce(&mut Profile) -> Result<(), ProfileError> + Send + 'static,
    {
        self.write(|profiles| {
            let stored = profiles.get_mut(id).ok_or(ProfileError::NotFound)?;
            let mut changed = stored.clone();
            change(&mut changed)?;
            *stored = changed;
            Ok(())
        })
    }

    async fn delete(&self, id: &str) -> Result<bool, ProfileError> {
        Ok(self.write(|profiles| profiles.remove(id).is_some()))
    }
}
