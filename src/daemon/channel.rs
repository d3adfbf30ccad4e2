//! Where incidents are followed and steered besides the API: Slack today.
//! The daemon starts, connects and stops its channels without knowing what
//! they are, so the service depends on no adapter and adapters depend on
//! it.

use std::future::Future;
use std::pin::Pin;

use super::Daemon;

pub type Pending<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

pub trait Channel: Send + Sync {
    /// Follows the daemon's incidents (posts their updates) from now on.
    fn follow(&self, daemon: Daemon);
    /// Opens a connection the channel keeps (Slack's Socket Mode), if any;
    /// the error says what is wrong with its settings.
    fn connect(&self, daemon: Daemon) -> Pending<'_, Result<(), String>>;
    /// Closes it, at shutdown.
    fn disconnect(&self) -> Pending<'_, ()>;
}
