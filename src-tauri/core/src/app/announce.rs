//! Where the Hookscope running on a data folder answers, for the command line. Written
//! beside the folder's lock once the listeners are bound, withdrawn when it stops: a
//! `hookscope` command that finds the lock held sends its change to that Hookscope, so the
//! store has one writer.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

const FILE: &str = "hookscope.server";

/// What a running Hookscope says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announcement {
    /// The UI/API listener (loopback); the install's API token opens it.
    pub ui: SocketAddr,
    pub pid: u32,
}

fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE)
}

/// Says where this process answers. Replaced whole (written aside, then renamed), so a
/// reader never sees half of it; readable by this user only, like the database.
pub fn announce(data_dir: &Path, ui: SocketAddr) -> Result<()> {
    let announcement = Announcement {
        ui,
        pid: std::process::id(),
    };
    let aside = data_dir.join(format!("{FILE}.new"));
    let mut options = std::fs::OpenOptions::new();
    options.create(true).truncate(true).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&aside).and_then(|mut file| {
        use std::io::Write;
        file.write_all(&serde_json::to_vec(&announcement)?)?;
        file.sync_all()
    });
    written
        .and_then(|()| std::fs::rename(&aside, path(data_dir)))
        .map_err(|source| Error::DataDir {
            path: path(data_dir),
            source,
        })
}

/// Takes back what an earlier run (or this one) announced: called once the folder's lock
/// is taken, before anything can be reached, and at stop.
pub fn withdraw(data_dir: &Path) {
    match std::fs::remove_file(path(data_dir)) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => tracing::warn!(%error, "cannot remove {}", path(data_dir).display()),
    }
}

/// What the Hookscope on this folder announced, if anything. Only meaningful while the
/// folder's lock is held by someone else.
pub fn read(data_dir: &Path) -> Result<Option<Announcement>> {
    match std::fs::read(path(data_dir)) {
        Ok(bytes) => {
            refuse_foreign(data_dir)?;
            Ok(serde_json::from_slice(&bytes).ok())
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::DataDir {
            path: path(data_dir),
            source,
        }),
    }
}

/// A command sends the install's API token to the address announced: only a file this
/// store's owner wrote, and no one else could change, is believed.
fn refuse_foreign(data_dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let announced = path(data_dir);
        let metadata = |file: &Path| {
            std::fs::metadata(file).map_err(|source| Error::DataDir {
                path: file.to_path_buf(),
                source,
            })
        };
        let file = metadata(&announced)?;
        let store = metadata(&crate::store::db::database_path(data_dir))?;
        if file.uid() != store.uid() || file.mode() & 0o022 != 0 {
            return Err(Error::Invalid(format!(
                "{} is not the running Hookscope's own (another user owns it, or others may write it): remove it and start Hookscope again",
                announced.display()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_announcement_is_read_back_and_withdrawn() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(crate::store::db::database_path(dir.path()), b"").unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        let ui: SocketAddr = "127.0.0.1:4748".parse().unwrap();
        announce(dir.path(), ui).unwrap();
        let read_back = read(dir.path()).unwrap().unwrap();
        assert_eq!(read_back.ui, ui);
        assert_eq!(read_back.pid, std::process::id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "readable by this user only: {mode:o}");
        }
        withdraw(dir.path());
        assert_eq!(read(dir.path()).unwrap(), None);
        withdraw(dir.path());
        // A damaged file says nothing rather than failing the command.
        std::fs::write(path(dir.path()), b"{\"ui\":").unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
    }

    /// The token goes where the file says: one that others may write is refused.
    #[cfg(unix)]
    #[test]
    fn a_file_others_may_write_is_not_believed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(crate::store::db::database_path(dir.path()), b"").unwrap();
        announce(dir.path(), "127.0.0.1:4748".parse().unwrap()).unwrap();
        for mode in [0o620, 0o602, 0o666] {
            std::fs::set_permissions(path(dir.path()), std::fs::Permissions::from_mode(mode))
                .unwrap();
            let refused = read(dir.path()).unwrap_err().to_string();
            assert!(
                refused.contains("not the running Hookscope's own"),
                "{mode:o}: {refused}"
            );
        }
        std::fs::set_permissions(path(dir.path()), std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(read(dir.path()).unwrap().is_some());
    }
}
