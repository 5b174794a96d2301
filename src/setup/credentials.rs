//! Purpose: the credentials file setup mode writes (`DATA_DIR/credentials.json`: the App's id, private key and
//! webhook secret, as GitHub's manifest conversion answered them), read back at every start. It is written
//! atomically (a temporary file with mode 0600, fsynced, renamed over, the directory fsynced), so a crash leaves the
//! old file or the new one, never half of one, and no other user can read the key at any moment.

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The file's name under `DATA_DIR`.
pub const FILE_NAME: &str = "credentials.json";
/// Larger than any real file (a 4096-bit PEM is about 3.3 kB): a bigger one is refused unread.
const MAX_FILE_BYTES: u64 = 64 * 1024;

/// What the environment settings `APP_ID`, `PRIVATE_KEY` and `WEBHOOK_SECRET` would otherwise say.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct Credentials {
    /// The App's numeric id.
    pub app_id: u64,
    /// The App's private key (PEM).
    pub private_key_pem: String,
    /// The secret GitHub signs deliveries with.
    pub webhook_secret: String,
    /// The App's slug (for its install link), when known.
    #[serde(default)]
    pub slug: Option<String>,
    /// The App's page on GitHub, when known.
    #[serde(default)]
    pub html_url: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("app_id", &self.app_id)
            .field("slug", &self.slug)
            .finish_non_exhaustive()
    }
}

/// The credentials file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// Reading, writing or renaming failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The file is not what setup mode writes.
    #[error("{path}: not a credentials file ({problem})")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
}

/// Where the credentials file of `data_dir` is.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

impl Credentials {
    /// The environment setting a name stands for, as the credentials file answers it.
    pub fn setting(&self, name: &str) -> Option<String> {
        match name {
            "APP_ID" => Some(self.app_id.to_string()),
            "PRIVATE_KEY" => Some(self.private_key_pem.clone()),
            "WEBHOOK_SECRET" => Some(self.webhook_secret.clone()),
            _ => None,
        }
    }

    /// Reads `DATA_DIR/credentials.json`; `Ok(None)` when there is none.
    pub fn load(data_dir: &Path) -> Result<Option<Credentials>, CredentialsError> {
        use std::io::Read;
        let path = path(data_dir);
        let io = |source| CredentialsError::Io {
            path: path.clone(),
            source,
        };
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
        };
        let mut text = String::new();
        file.take(MAX_FILE_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(io)?;
        if text.len() as u64 > MAX_FILE_BYTES {
            return Err(CredentialsError::Invalid {
                path,
                problem: format!("larger than {MAX_FILE_BYTES} bytes"),
            });
        }
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| CredentialsError::Invalid {
                path,
                problem: e.to_string(),
            })
    }

    /// Writes `DATA_DIR/credentials.json` (creating `DATA_DIR`) with mode 0600, atomically and durably.
    pub fn save(&self, data_dir: &Path) -> Result<PathBuf, CredentialsError> {
        let path = path(data_dir);
        let io = |source| CredentialsError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(data_dir).map_err(io)?;
        let body = serde_json::to_vec_pretty(self).map_err(|e| io(std::io::Error::other(e)))?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let temp = data_dir.join(format!(".{FILE_NAME}.{:016x}.tmp", rand::random::<u64>()));
        let written = options.open(&temp).and_then(|mut f| {
            f.write_all(&body)?;
            f.sync_all()
        });
        if let Err(e) = written.and_then(|()| std::fs::rename(&temp, &path)) {
            let _ = std::fs::remove_file(&temp);
            return Err(io(e));
        }
        std::fs::File::open(data_dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Credentials {
        Credentials {
            app_id: 77,
            private_key_pem: "-----BEGIN RSA PRIVATE KEY-----\nx\n-----END RSA PRIVATE KEY-----\n"
                .into(),
            webhook_secret: "0123456789abcdef0123".into(),
            slug: Some("boomerang".into()),
            html_url: None,
        }
    }

    #[test]
    fn saved_credentials_read_back_with_mode_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        assert!(Credentials::load(&data).expect("no file is fine").is_none());
        let written = sample().save(&data).expect("save");
        assert_eq!(Credentials::load(&data).expect("load"), Some(sample()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&written)
                .expect("stat")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let leftovers: Vec<_> = std::fs::read_dir(&data)
            .expect("list")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "no temporary file is left behind");
    }

    #[test]
    fn a_broken_file_is_refused_with_its_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(path(dir.path()), "{\"app_id\": \"twelve\"}").expect("write");
        let err = Credentials::load(dir.path()).expect_err("refused");
        assert!(err.to_string().contains(FILE_NAME), "{err}");
    }
}
