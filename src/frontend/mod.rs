//! The two front doors. Each only translates: arguments in, a `Request` to the engine, an `Outcome` out.

pub mod ansible;
pub mod cli;
pub mod manual;
