//! The `hookscope` command's integration tests, in one binary: real `hookscope serve`
//! processes on free ports, driven as a user or a script would.

mod support;

mod cli;
mod diff;
mod erasure;
mod follow;
mod memory;
mod one_writer;
mod soak;
