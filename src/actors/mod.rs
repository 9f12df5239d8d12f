//! The supervision tree's actors, one file each: messages (one enum), state, handler.

pub mod db;
pub mod events;
pub mod lanes;
pub mod reaper;
pub mod runs;
pub mod session_types;
pub mod sessions;
pub mod slot;
pub mod supervisor;
pub mod terminal;
pub mod viewers;
