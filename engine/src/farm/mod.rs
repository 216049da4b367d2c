//! The farm module's pure decision cores: which node owns which bucket of client addresses,
//! and the membership protocol that agrees on the view those buckets are spread over.

pub mod membership;
pub mod table;
