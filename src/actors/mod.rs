//! The supervision tree's actors, one file each: messages (one enum), state, handler.

pub mod db;
pub mod events;
pub mod supervisor;
