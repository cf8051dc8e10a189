//! Where a training step's time goes (`vae-tch bench --profile`): libtorch's Kineto profiler
//! (csrc/profiler.cpp, what torch.profiler runs) over some steps, saved as a Chrome trace, and
//! summed here into a table of self time per op on the CPU and per kernel on CUDA.
use std::collections::HashMap;
use std::ffi::{c_char, c_int, CStr, CString};
use std::path::Path;

use tch::Device;

extern "C" {
    fn vae_tch_profiler_start(cuda: c_int) -> *const c_char;
    fn vae_tch_profiler_stop(trace: *const c_char, out: *mut *mut c_char) -> *const c_char;
    fn vae_tch_profiler_free(p: *mut c_char);
}

#[derive(Debug, thiserror::Error)]
#[error("profiler: {0}")]
pub struct ProfileError(String);

fn check(e: *const c_char) -> Result<(), ProfileError> {
    if e.is_null() {
        return Ok(());
    }
    Err(ProfileError(
        unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned(),
    ))
}

/// One recorded op (CPU) or kernel or copy (CUDA).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub cuda: bool,
    pub thread: u64,
    pub start_ns: u64,
    pub end_ns: u64,
    pub name: String,
}

/// A running profiler; `stop` ends it.
pub struct Recording(());

/// Starts recording ops (and CUDA kernels on a CUDA `device`).
pub fn start(device: Device) -> Result<Recording, ProfileError> {
    // On a machine without a GPU, libkineto logs "ERROR: ... gpuGetDeviceCount failed with
    // code 35" at its first start, which reads like a failure of the profile. Its log level is
    // read from the environment when it starts: 5 is above its ERROR level (tried on torch
    // 2.11: 0-4 print it, 5 and 10 do not). A level the user set is kept.
    if !device.is_cuda() && std::env::var_os("KINETO_LOG_LEVEL").is_none() {
        std::env::set_var("KINETO_LOG_LEVEL", "5");
    }
    check(unsafe { vae_tch_profiler_start(device.is_cuda() as c_int) })?;
    Ok(Recording(()))
}

impl Recording {
    /// Stops, writes the Chrome trace to `trace` when given, and returns the events.
    pub fn stop(self, trace: Option<&Path>) -> Result<Vec<Event>, ProfileError> {
        let path = trace
            .map(|p| CString::new(p.to_string_lossy().as_bytes()))
            .transpose()
            .map_err(|_| ProfileError("a trace path with a NUL byte".into()))?;
        let mut out: *mut c_char = std::ptr::null_mut();
        let ptr = path.as_ref().map_or(std::ptr::null(), |p| p.as_ptr());
        check(unsafe { vae_tch_profiler_stop(ptr, &mut out) })?;
        let text = unsafe { CStr::from_ptr(out) }
            .to_string_lossy()
            .into_owned();
        unsafe { vae_tch_profiler_free(out) };
        // Kineto reports a failed write only in its log.
        if let Some(p) = trace.filter(|p| !p.is_file()) {
            return Err(ProfileError(format!(
                "the trace could not be written to {}",
                p.display()
            )));
        }
        Ok(text.lines().filter_map(parse).collect())
    }
}

fn parse(line: &str) -> Option<Event> {
    let mut f = line.splitn(5, '\t');
    Some(Event {
        cuda: f.next()? == "cuda",
        thread: f.next()?.parse().ok()?,
        start_ns: f.next()?.parse().ok()?,
        end_ns: f.next()?.parse().ok()?,
        name: f.next()?.to_string(),
    })
}

/// One line of the table: an op or kernel's calls and self time over the recording.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Row {
    pub name: String,
    /// "cpu" or "cuda".
    pub device: &'static str,
    pub calls: usize,
    /// Time in it but not in the ops it called (CPU); its duration (CUDA).
    pub self_ns: u64,
}

/// Self time per (device, name), largest first. CPU events nest on their thread (an op calls
/// others): each one's self time is its duration less its direct children's.
pub fn summarize(events: &[Event]) -> Vec<Row> {
    let mut by_thread: HashMap<(bool, u64), Vec<&Event>> = HashMap::new();
    for e in events {
        by_thread.entry((e.cuda, e.thread)).or_default().push(e);
    }
    let mut totals: HashMap<(bool, &str), (usize, u64)> = HashMap::new();
    for ((cuda, _), mut list) in by_thread {
        list.sort_by_key(|e| (e.start_ns, std::cmp::Reverse(e.end_ns)));
        let mut selves: Vec<u64> = list.iter().map(|e| e.end_ns - e.start_ns).collect();
        if !cuda {
            let mut open: Vec<usize> = Vec::new();
            for (i, e) in list.iter().enumerate() {
                while let Some(&top) = open.last() {
                    if list[top].end_ns <= e.start_ns {
                        open.pop();
                    } else {
                        break;
                    }
                }
                if let Some(&parent) = open.last() {
                    selves[parent] = selves[parent].saturating_sub(e.end_ns - e.start_ns);
                }
                open.push(i);
            }
        }
        for (e, s) in list.iter().zip(selves) {
            let t = totals.entry((cuda, e.name.as_str())).or_default();
            t.0 += 1;
            t.1 += s;
        }
    }
    let mut rows: Vec<Row> = totals
        .into_iter()
        .map(|((cuda, name), (calls, self_ns))| Row {
            name: name.to_string(),
            device: if cuda { "cuda" } else { "cpu" },
            calls,
            self_ns,
        })
        .collect();
    rows.sort_by(|a, b| b.self_ns.cmp(&a.self_ns).then(a.name.cmp(&b.name)));
    rows
}

/// The `top` rows of each device as a Markdown table, per step of `steps`, with each row's
/// share of its device's total.
pub fn table(rows: &[Row], steps: usize, top: usize) -> String {
    let mut out = String::from(
        "| device | op or kernel | calls/step | self ms/step | share of device |\n|---|---|---|---|---|\n",
    );
    for device in ["cuda", "cpu"] {
        let mine: Vec<&Row> = rows.iter().filter(|r| r.device == device).collect();
        let total: u64 = mine.iter().map(|r| r.self_ns).sum();
        for r in mine.iter().take(top) {
            let name: String = r.name.chars().take(90).collect();
            out += &format!(
                "| {device} | {} | {:.1} | {:.3} | {:.1}% |\n",
                name.replace('|', "/"),
                r.calls as f64 / steps as f64,
                r.self_ns as f64 / 1e6 / steps as f64,
                100.0 * r.self_ns as f64 / total.max(1) as f64
            );
        }
        if !mine.is_empty() {
            out += &format!(
                "| {device} | all {} | | {:.3} | 100% |\n",
                mine.len(),
                total as f64 / 1e6 / steps as f64
            );
        }
    }
    out
}
