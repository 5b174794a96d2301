//! Purpose: the files boomerang read from repositories (the repo config above all: every trigger reads it), kept
//! with GitHub's `ETag` so the next read of the same file at the same ref is a conditional request. GitHub answers
//! `304 Not Modified` when the file is unchanged, and a 304 does not count against the installation's primary rate
//! limit (GITHUB-FACTS §7.3). A file read at a commit (`GithubClient::file_at_commit`, a full SHA) cannot change, so
//! its copy answers without a request.
//! Bounded: [`MAX_FILES`] files of at most [`MAX_FILE_BYTES`] each, oldest dropped first.

use crate::bounded_map::BoundedMap;
use crate::ids::InstallationId;
use std::sync::Mutex;

/// Files kept at most.
pub(super) const MAX_FILES: usize = 1024;
/// A larger file is not kept (it is read whole each time).
pub(super) const MAX_FILE_BYTES: usize = 256 * 1024;

/// What identifies one file read: the installation whose token read it, `owner/name`, the path and the ref.
pub(super) type FileKey = (InstallationId, String, String, Option<String>);

/// A file as last read, with the tag GitHub gave that answer.
#[derive(Clone, Debug)]
pub(super) struct CachedFile {
    /// GitHub's `ETag` for the answer (sent back as `If-None-Match`).
    pub(super) etag: String,
    /// The file's text.
    pub(super) text: String,
}

/// The files last read, by [`FileKey`]. Cheap to share behind the client's `Arc`.
pub(super) struct FileCache {
    inner: Mutex<BoundedMap<FileKey, CachedFile>>,
}

impl Default for FileCache {
    fn default() -> Self {
        FileCache {
            inner: Mutex::new(BoundedMap::new(MAX_FILES)),
        }
    }
}

impl FileCache {
    /// The file last read at `key`, if it is kept.
    pub(super) fn get(&self, key: &FileKey) -> Option<CachedFile> {
        self.lock().get(key).cloned()
    }

    /// Keeps `file` at `key` (too large a file is not kept, and forgets what was).
    pub(super) fn put(&self, key: FileKey, file: CachedFile) {
        let mut files = self.lock();
        if file.text.len() > MAX_FILE_BYTES {
            files.remove(&key);
            return;
        }
        files.insert(key, file);
    }

    /// Forgets the file at `key` (it is gone).
    pub(super) fn forget(&self, key: &FileKey) {
        self.lock().remove(key);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BoundedMap<FileKey, CachedFile>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: usize) -> FileKey {
        (InstallationId(1), format!("o/r{n}"), "f".into(), None)
    }

    fn file(text: &str) -> CachedFile {
        CachedFile {
            etag: format!("\"{text}\""),
            text: text.into(),
        }
    }

    /// The oldest file goes first once the cache is full; a file kept again keeps its place; a file too large is
    /// not kept and forgets the earlier copy.
    #[test]
    fn the_cache_is_bounded() {
        let cache = FileCache::default();
        for n in 0..MAX_FILES + 1 {
            cache.put(key(n), file("a"));
        }
        assert!(cache.get(&key(0)).is_none());
        assert!(cache.get(&key(1)).is_some());
        assert!(cache.get(&key(MAX_FILES)).is_some());
        cache.put(key(1), file("b"));
        assert_eq!(cache.get(&key(1)).map(|f| f.text), Some("b".to_string()));
        cache.put(key(2), file(&"x".repeat(MAX_FILE_BYTES + 1)));
        assert!(cache.get(&key(2)).is_none());
        cache.forget(&key(1));
        assert!(cache.get(&key(1)).is_none());
        assert!(cache.lock().len() <= MAX_FILES);
    }
}
