//! Sending stored deliveries on: the forward worker, replays, and synthetic test events.

pub mod forward;
pub mod replay;
pub mod synth;
