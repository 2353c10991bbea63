//! The SQLite store: opening it (one init for every connection, migrations), the one
//! writer thread, and a module per table holding that table's SQL. What one delivery
//! writes, step by step, is in [`deliveries`].

pub mod alerts;
pub mod cards;
pub mod checkpoint;
pub mod contacts;
pub mod crowd;
pub mod db;
pub mod deliveries;
pub mod endpoints;
pub mod erasure;
pub mod events;
pub mod forwards;
pub mod full_text;
pub mod funnels;
pub mod index_worker;
pub mod indexer;
pub mod retention;
pub mod settings;
pub mod shapes;
pub mod trouble;
pub mod writer;
