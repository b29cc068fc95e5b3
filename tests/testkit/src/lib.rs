//! `aos-testkit`: the test support every crate's tests share (a dev-only
//! crate: no library of ours depends on it, so nothing here ships).
//!
//! - [`services`]: a PostgreSQL server in a temporary directory and an SMTP
//!   sink, both real and on loopback;
//! - [`http`]: a loopback HTTP server that counts the calls of an `http:` tool;
//! - [`redis`]: a `redis-server` on a loopback port;
//! - [`fake_llm`]: the hosted LLM APIs (OpenAI, Anthropic, Gemini), faked
//!   faithfully over real HTTP;
//! - [`stores`]: the store under test, SQLite or PostgreSQL, and
//!   [`both_stores!`] to run one test body against both.
//!
//! The IR builders live in `aos_runtime::testkit` (feature `testkit`) and
//! the generated pipelines in `aos_compiler::testgen` (feature `testkit`):
//! each stays beside the types it builds.

pub mod fake_llm;
pub mod http;
pub mod redis;
pub mod services;
pub mod stores;
