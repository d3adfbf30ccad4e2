//! One integration-test binary (one link of the whole dependency stack).

mod cli;
mod engine;
mod resume;
mod support;
mod validate;
