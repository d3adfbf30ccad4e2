//! One integration-test binary (one link of the whole dependency stack).
// Tests sign Slack requests with real timestamps and build clients of
// their own; the guardrails in clippy.toml are for the library.
#![allow(clippy::disallowed_methods)]

mod access;
mod audit;
mod browser;
mod catalog;
mod cli;
mod conformance;
mod containment;
mod edges;
mod engine;
mod fixture;
mod fuzz;
mod hostile;
mod integrations;
mod notices;
mod openapi;
mod pages;
mod plan;
mod postgres;
mod resume;
mod server;
mod slack_api;
mod slack_room;
mod store_backends;
mod support;
mod validate;
