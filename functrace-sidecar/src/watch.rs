//! Reload on a change of the config file, as on SIGHUP, for where no one sends the signal: a
//! Kubernetes ConfigMap mounted as a volume is updated by writing a new timestamped directory
//! and swapping the `..data` symlink to it, so the file's own inode never changes and an
//! event watch on it misses the update.
//!
//! The file is polled by content instead: read through its path (so through every symlink)
//! each [`POLL`], and compared with what was read last. That sees a symlink swap, an editor's
//! write to a temporary file and rename, and a write in place alike, with no dependency and
//! no inotify limit to run into. A config is a few KiB; kubelet itself takes up to a minute
//! to project a ConfigMap update, next to which a second of polling adds little.

use std::path::PathBuf;
use std::time::Duration;

/// How often the file is read.
pub const POLL: Duration = Duration::from_secs(1);

/// The config file's last content, to tell when it changes.
pub struct ConfigWatch {
    path: Option<PathBuf>,
    /// `None` when the file could not be read.
    seen: Option<Vec<u8>>,
}

impl ConfigWatch {
    /// Watches `path` from its content now: create it before the config is first read, so
    /// that a change in between is not missed (it reloads once more at worst). Without a
    /// path, [`changed`](Self::changed) never completes.
    pub fn new(path: Option<PathBuf>) -> ConfigWatch {
        let seen = path.as_ref().and_then(|path| std::fs::read(path).ok());
        ConfigWatch { path, seen }
    }

    /// Completes once the file's content differs from when last seen (or it became
    /// unreadable, or readable again): then reload. Cancel-safe: dropped before it
    /// completes, it has taken nothing in, and the next call sees the same change.
    pub async fn changed(&mut self) {
        let Some(path) = &self.path else {
            return std::future::pending().await;
        };
        loop {
            tokio::time::sleep(POLL).await;
            let now = tokio::fs::read(path).await.ok();
            if now != self.seen {
                self.seen = now;
                return;
            }
        }
    }
}
