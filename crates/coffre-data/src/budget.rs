//! One memory budget for the request data buffered in the data path, shared by every request:
//! a stripe is reserved whole before it is filled (or fetched), and given back once its shards
//! are written (or its plaintext handed on). A request waits for room rather than grow the
//! process; since what a reservation covers always completes without another one, waiting
//! never deadlocks.

use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Accounting unit: 64 KiB.
const UNIT: usize = 64 << 10;

#[derive(Clone)]
pub struct MemoryBudget {
    sem: Arc<Semaphore>,
    units: usize,
}

/// Bytes of the budget held until dropped.
pub struct Reservation {
    _permit: Option<OwnedSemaphorePermit>,
}

impl MemoryBudget {
    pub fn new(bytes: usize) -> MemoryBudget {
        let units = bytes.div_ceil(UNIT).max(1);
        MemoryBudget {
            sem: Arc::new(Semaphore::new(units)),
            units,
        }
    }

    /// Waits until `bytes` fit (a request larger than the whole budget takes all of it).
    pub async fn reserve(&self, bytes: usize) -> Reservation {
        let want = bytes.div_ceil(UNIT).clamp(1, self.units) as u32;
        Reservation {
            _permit: self.sem.clone().acquire_many_owned(want).await.ok(),
        }
    }

    /// Reserves `bytes` only if they fit now: for work that may as well wait (a prefetch), so
    /// that nobody waits for room while holding some.
    pub fn try_reserve(&self, bytes: usize) -> Option<Reservation> {
        let want = bytes.div_ceil(UNIT).clamp(1, self.units) as u32;
        let permit = self.sem.clone().try_acquire_many_owned(want).ok()?;
        Some(Reservation { _permit: Some(permit) })
    }

    /// Bytes free now.
    pub fn available(&self) -> usize {
        self.sem.available_permits() * UNIT
    }
}

impl Reservation {
    /// No reservation: for callers without a budget.
    pub fn none() -> Reservation {
        Reservation { _permit: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reservations_wait_for_room_and_give_it_back() {
        let b = MemoryBudget::new(1 << 20);
        let r1 = b.reserve(700 << 10).await;
        assert_eq!(b.available(), (1 << 20) - (704 << 10));
        let b2 = b.clone();
        let waiter = tokio::spawn(async move { b2.reserve(512 << 10).await });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(r1);
        let _r2 = waiter.await.unwrap();
        // Larger than the budget: takes all of it rather than never.
        drop(_r2);
        let _all = b.reserve(10 << 20).await;
        assert_eq!(b.available(), 0);
    }
}
