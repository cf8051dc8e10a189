//! Which machine this process runs on, for the names of files that processes on several machines
//! share a folder with (a sweep folder on a cluster's file system).
use std::sync::OnceLock;

/// The host name (gethostname), or "localhost" where it cannot be read.
pub fn name() -> String {
    let mut buf = [0u8; 256];
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    match std::str::from_utf8(&buf[..end]) {
        Ok(h) if ok && !h.is_empty() => h.to_string(),
        _ => "localhost".into(),
    }
}

/// This process's PID space, as a file-name-safe tag: the host name (letters, digits and `-`;
/// anything else becomes `_`) and the inode of the PID namespace (containers on one host, or
/// hosts that share a name, differ in it). Two processes whose PIDs can be compared have the same
/// tag; a PID under another tag says nothing about this machine's processes.
pub fn pid_space() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| {
        let host: String = name()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        use std::os::unix::fs::MetadataExt;
        match std::fs::metadata("/proc/self/ns/pid") {
            Ok(m) => format!("{host}_{}", m.ino()),
            Err(_) => host,
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_tag_is_a_file_name_without_dots() {
        let tag = super::pid_space();
        assert!(!tag.is_empty());
        assert!(tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }
}
