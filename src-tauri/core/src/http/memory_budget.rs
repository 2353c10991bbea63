//! What deliveries may hold in memory at once, whatever senders do. The body limit caps
//! one body's bytes; this caps the process: large bodies while they arrive and wait for
//! their commit share one budget, and large or compressed bodies are inflated and parsed a
//! few at a time. A delivery that would go over is answered 503 with Retry-After before
//! it takes more, so nothing acknowledged is lost and the sender tries again later.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bodies up to this size are not counted: the connection cap bounds them (1,024 × 64 KiB),
/// and ordinary deliveries (a few KiB) must get through while large ones fill the budget.
pub const UNCOUNTED_BODY: usize = 64 * 1024;
/// The budget is kept in units of this many bytes (a semaphore counts in `u32`s).
const UNIT: usize = 1024;
/// A body without a declared length takes its share in steps of this much.
const STEP: usize = 1024 * 1024;

#[derive(Debug)]
pub struct MemoryBudget {
    bodies: Arc<Semaphore>,
    decodes: Arc<Semaphore>,
}

/// Part of the body budget, given back when dropped (after the delivery was answered).
#[derive(Debug, Default)]
pub struct BodyShare {
    held: Option<OwnedSemaphorePermit>,
    /// Bytes this share covers beyond [`UNCOUNTED_BODY`].
    covered: usize,
}

/// The budget has no room for this body now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverBudget;

impl MemoryBudget {
    /// `body_bytes` for bodies in flight; `decodes` large or compressed bodies decoded at
    /// once.
    pub fn new(body_bytes: usize, decodes: usize) -> MemoryBudget {
        let units = (body_bytes / UNIT).min(Semaphore::MAX_PERMITS);
        MemoryBudget {
            bodies: Arc::new(Semaphore::new(units)),
            decodes: Arc::new(Semaphore::new(decodes.max(1))),
        }
    }

    /// Grows `share` to cover a body of `size` bytes, or says there is no room now.
    pub fn cover(&self, share: &mut BodyShare, size: usize) -> Result<(), OverBudget> {
        let counted = size.saturating_sub(UNCOUNTED_BODY);
        if counted <= share.covered {
            return Ok(());
        }
        let wanted = counted.div_ceil(UNIT) - share.covered.div_ceil(UNIT);
        let units = u32::try_from(wanted).map_err(|_| OverBudget)?;
        let permit = self
            .bodies
            .clone()
            .try_acquire_many_owned(units)
            .map_err(|_| OverBudget)?;
        match &mut share.held {
            Some(held) => held.merge(permit),
            None => share.held = Some(permit),
        }
        share.covered = counted.div_ceil(UNIT) * UNIT;
        Ok(())
    }

    /// Like [`MemoryBudget::cover`] for a body still arriving without a declared length:
    /// covers `size` rounded up to the next step, so the budget is not asked at every
    /// chunk.
    pub fn cover_growing(&self, share: &mut BodyShare, size: usize) -> Result<(), OverBudget> {
        if size.saturating_sub(UNCOUNTED_BODY) <= share.covered {
            return Ok(());
        }
        self.cover(share, size.next_multiple_of(STEP) + UNCOUNTED_BODY)
            .or_else(|_| self.cover(share, size))
    }

    /// A turn at decoding a large or compressed body; waits for one.
    pub async fn decode_turn(&self) -> OwnedSemaphorePermit {
        self.decodes
            .clone()
            .acquire_owned()
            .await
            .expect("the decode semaphore is never closed")
    }

    /// Bytes of the body budget free now.
    pub fn bodies_free(&self) -> usize {
        self.bodies.available_permits() * UNIT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_bodies_are_free_and_large_ones_share_the_budget() {
        let budget = MemoryBudget::new(10 * 1024 * 1024, 2);
        let mut small = BodyShare::default();
        budget.cover(&mut small, UNCOUNTED_BODY).unwrap();
        assert_eq!(budget.bodies_free(), 10 * 1024 * 1024, "not counted");

        let mut first = BodyShare::default();
        budget
            .cover(&mut first, UNCOUNTED_BODY + 6 * 1024 * 1024)
            .unwrap();
        let mut second = BodyShare::default();
        assert_eq!(
            budget.cover(&mut second, UNCOUNTED_BODY + 6 * 1024 * 1024),
            Err(OverBudget),
            "two would pass the budget"
        );
        assert_eq!(
            budget.bodies_free(),
            4 * 1024 * 1024,
            "a refused share takes nothing"
        );
        drop(first);
        assert_eq!(budget.bodies_free(), 10 * 1024 * 1024, "given back");
    }

    #[test]
    fn a_growing_body_takes_its_share_in_steps() {
        let budget = MemoryBudget::new(4 * STEP, 1);
        let mut share = BodyShare::default();
        for size in (0..=3 * STEP).step_by(4096) {
            budget.cover_growing(&mut share, size).unwrap();
        }
        assert_eq!(budget.bodies_free(), STEP, "three steps taken");
        assert!(budget.cover_growing(&mut share, 4 * STEP).is_ok());
        assert_eq!(
            budget.cover_growing(&mut share, 5 * STEP),
            Err(OverBudget),
            "no room beyond the budget"
        );
    }
}
