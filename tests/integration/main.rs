//! Integration tests, compiled as one binary (one link of polars + candle instead of several).

mod common;

mod cli;
mod embedding;
mod engine;
mod evaluate;
mod experiments;
mod index;
mod onboard;
mod personal;
mod scale;
mod search;
mod server;
mod stack;
mod store;
mod validation;
mod web;
