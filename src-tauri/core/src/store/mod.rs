//! The SQLite store: opening it (one init for every connection, migrations), the one
//! writer thread, and a module per table holding that table's SQL.

pub mod backfill;
pub mod cards;
pub mod db;
pub mod endpoints;
pub mod funnels;
pub mod queries;
pub mod shapes;
pub mod writer;
