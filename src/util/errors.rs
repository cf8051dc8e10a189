//! Errors the user can fix outside vae-tch, recognised whatever library reported them: a full
//! disk and a file-size limit.

/// The OS error codes of a failed write that the user can fix, and what to tell them.
const WRITE_LIMITS: [(i32, &str); 2] = [
    (
        libc::ENOSPC,
        "the disk is full: free some space, then run the same command again",
    ),
    (
        libc::EFBIG,
        "a file grew past the file-size limit (`ulimit -f`): raise the limit, then run the same command again",
    ),
];

/// A line for errors caused by a full disk (ENOSPC) or a file-size limit (EFBIG), which
/// libraries report in their own words ("No space left on device (os error 28)",
/// "Os { code: 28, .. }").
pub fn disk_full_hint(e: &anyhow::Error) -> Option<String> {
    let text = format!("{e:#}");
    WRITE_LIMITS.iter().find_map(|&(code, what)| {
        let hit = e.chain().any(|c| {
            c.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.raw_os_error() == Some(code))
        }) || text.contains(&format!("os error {code})"))
            || text.contains(&format!("code: {code},"));
        hit.then(|| {
            format!(
                "{what} (a run continues with `vae-tch train --resume RUN`; its last complete checkpoint is kept)"
            )
        })
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_full_disk_is_named() {
        let io = std::io::Error::from_raw_os_error(libc::ENOSPC);
        let e = anyhow::Error::from(io).context("writing runs/x/metrics.csv");
        assert!(super::disk_full_hint(&e)
            .unwrap()
            .contains("the disk is full"));
        let tch_style = anyhow::anyhow!("IoError(Os {{ code: 28, kind: StorageFull }})");
        assert!(super::disk_full_hint(&tch_style).is_some());
        let limit = std::io::Error::from_raw_os_error(libc::EFBIG);
        assert!(super::disk_full_hint(&anyhow::Error::from(limit))
            .unwrap()
            .contains("ulimit -f"));
        assert!(super::disk_full_hint(&anyhow::anyhow!("other")).is_none());
    }
}
