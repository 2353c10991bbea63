//! Deliveries moving between Hookscope and others: the forward worker, replays, synthetic
//! test events, and following a relay.

pub mod follow;
pub mod follow_target;
pub mod forward;
pub mod replay;
pub mod synth;
