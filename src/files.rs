//! Reading the files a user names: configuration and variable files, `file()` and template
//! arguments, plan files, states and journals. Only regular files are read (a FIFO or
//! `/dev/zero` would block or never end), symbolic links are followed, the size is bounded
//! before anything is read, and text must be UTF-8, with the place of the first bad byte
//! named when it is not.

use std::io::Read;
use std::path::Path;

/// The largest configuration file, variable file, template or `file()` argument read.
pub const MAX_TEXT: u64 = 64 << 20;

/// The largest state, journal, plan file or Terraform state read.
pub const MAX_DOCUMENT: u64 = 512 << 20;

/// Why a file could not be read.
#[derive(Debug)]
pub enum ReadError {
    Io(std::io::Error),
    /// Something other than a regular file: what it is.
    NotAFile(&'static str),
    /// Larger than the limit, in bytes.
    TooLarge(u64),
    /// Not UTF-8 text: where the first byte that is not (1-based).
    NotUtf8 {
        line: usize,
        column: usize,
    },
}

impl ReadError {
    /// Whether the file does not exist (as opposed to existing and not being readable).
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::Io(e) if e.kind() == std::io::ErrorKind::NotFound)
    }
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "{e}"),
            ReadError::NotAFile(what) => write!(f, "it is {what}, not a regular file"),
            ReadError::TooLarge(limit) => write!(f, "it is larger than {} MiB, the most thoth reads", limit >> 20),
            ReadError::NotUtf8 { line, column } => {
                write!(f, "it is not UTF-8 text (line {line}, column {column} holds a byte that is not)")
            }
        }
    }
}

impl From<std::io::Error> for ReadError {
    fn from(e: std::io::Error) -> Self {
        ReadError::Io(e)
    }
}

/// The bytes of a regular file of at most `limit` bytes.
pub fn read_bytes(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(ReadError::NotAFile(kind(&meta)));
    }
    if meta.len() > limit {
        return Err(ReadError::TooLarge(limit));
    }
    let file = std::fs::File::open(path)?;
    // The file may grow between the check and the read: never more than the limit is read.
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge(limit));
    }
    Ok(bytes)
}

/// The text of a regular file of at most `limit` bytes.
pub fn read_text(path: &Path, limit: u64) -> Result<String, ReadError> {
    text_of(read_bytes(path, limit)?)
}

/// Bytes as UTF-8 text, or where they stop being it.
pub fn text_of(bytes: Vec<u8>) -> Result<String, ReadError> {
    String::from_utf8(bytes).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = good.iter().filter(|b| **b == b'\n').count() + 1;
        let start = good.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
        let column = String::from_utf8_lossy(&good[start..]).chars().count() + 1;
        ReadError::NotUtf8 { line, column }
    })
}

fn kind(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a named pipe";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_bytes_are_located() {
        let Err(ReadError::NotUtf8 { line, column }) = text_of(b"a = 1\nbb = \"\xff\"\n".to_vec()) else {
            panic!("not refused")
        };
        assert_eq!((line, column), (2, 7));
    }

    #[test]
    fn only_bounded_regular_files_are_read() {
        assert!(matches!(read_bytes(Path::new("/dev/zero"), MAX_TEXT), Err(ReadError::NotAFile("a device"))));
        assert!(matches!(read_bytes(Path::new("/"), MAX_TEXT), Err(ReadError::NotAFile("a directory"))));
        let dir = std::env::temp_dir().join(format!("thoth-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("big"), vec![b'x'; 100]).expect("file");
        assert!(matches!(read_bytes(&dir.join("big"), 99), Err(ReadError::TooLarge(99))));
        assert_eq!(read_bytes(&dir.join("big"), 100).expect("read").len(), 100);
        assert!(read_bytes(&dir.join("missing"), 100).unwrap_err().is_not_found());
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
