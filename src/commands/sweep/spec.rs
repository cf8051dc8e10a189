//! The sweep as data: a TOML file naming a base config (a preset or a run's config.toml, and/or
//! inline `[model]`, `[optim]`, `[data]`, `[train]` tables over it) and the points to train:
//! the cartesian product of `[axes]` ("table.key" = [values]) and/or an explicit
//! `[[points]]` list. Every point's config is built and validated before anything trains, and
//! a bad file is refused naming the key.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::{Table, Value};

use crate::config::overrides::Overrides;
use crate::config::RunConfig;

/// The sweep as it ran, in its folder (`Sweep::to_toml`): what `sweep run` continues and
/// `sweep report` reads.
pub const SWEEP_FILE: &str = "sweep.toml";

/// More points than this are refused unless forced.
pub const MAX_POINTS: usize = 10_000;

/// The config tables a sweep key may name.
const TABLES: [&str; 4] = ["model", "optim", "data", "train"];

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{path}: not a sweep file: {cause}")]
    Parse {
        path: PathBuf,
        cause: toml::de::Error,
    },
    #[error("{dir} is not a sweep folder (no sweep.toml; `vae-tch sweep run SWEEP.toml --out {dir}` makes one)", dir = .0.display())]
    NotASweep(PathBuf),
    #[error("{path}: {what}: {message}")]
    Invalid {
        path: PathBuf,
        what: String,
        message: String,
    },
}

/// The file as written.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepFile {
    /// The sweep file a sweep folder's sweep.toml was written from (vae-tch writes it there).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// A preset or a run's config.toml: relative to the sweep file's folder, else to the current
    /// folder.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<Table>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub optim: Option<Table>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Table>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train: Option<Table>,
    /// "table.key" = [values]: every combination is a point.
    #[serde(default, skip_serializing_if = "Table::is_empty")]
    pub axes: Table,
    /// Explicit points: tables of "table.key" = value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub points: Vec<Table>,
}

/// One point: its values (in the sweep's key order), its folder name and its whole config.
#[derive(Debug, Clone)]
pub struct Point {
    pub values: Vec<(String, Value)>,
    pub name: String,
    pub config: RunConfig,
}

/// A resolved sweep.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// The file it came from.
    pub path: PathBuf,
    /// The base config (file, inline tables, and the flags), every point's start.
    pub base: RunConfig,
    /// The swept keys, in the file's order.
    pub keys: Vec<String>,
    pub points: Vec<Point>,
}

impl Sweep {
    /// The sweep as it ran, self-contained: the base config inline (with the flags applied),
    /// the axes and the explicit points. `sweep run` and `sweep report` read it back.
    pub fn to_toml(&self, file: &SweepFile) -> String {
        let base = toml::Value::try_from(&self.base).expect("RunConfig is TOML");
        let table = |name: &str| base.get(name).and_then(|v| v.as_table()).cloned();
        let ran = SweepFile {
            from: Some(
                file.from
                    .clone()
                    .unwrap_or_else(|| self.path.display().to_string()),
            ),
            base: None,
            model: table("model"),
            optim: table("optim"),
            data: table("data"),
            train: table("train"),
            axes: file.axes.clone(),
            points: file.points.clone(),
        };
        format!(
            "# The sweep as vae-tch ran it (from {}): the base config inline, with the flags given.\n{}",
            self.path.display(),
            toml::to_string_pretty(&ran).expect("a sweep is TOML")
        )
    }
}

/// A value as a table shows it: strings without quotes, the rest as TOML writes it.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A value as a folder name part: numbers by their value (`1000.0` is `1000`, the same number),
/// strings as written (letters of any script kept; `/` and other signs become `_`), arrays joined
/// with 'x'.
fn value_name(v: &Value) -> String {
    let raw = match v {
        Value::Array(a) => a.iter().map(value_name).collect::<Vec<_>>().join("x"),
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        other => value_text(other),
    };
    raw.chars()
        .map(|c| {
            if c.is_alphanumeric() || "._+-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Point folder names longer than this (bytes) are cut, with a hash of the whole name after
/// the cut: file systems refuse names past 255 bytes.
const MAX_NAME: usize = 120;

/// A name that is safe as one folder: never `.` or `..`, at most `MAX_NAME` bytes.
fn folder_name(name: String) -> String {
    let name = if name.chars().all(|c| c == '.') {
        format!("_{name}")
    } else {
        name
    };
    if name.len() <= MAX_NAME {
        return name;
    }
    let mut cut = MAX_NAME - 17;
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{}-{:016x}",
        &name[..cut],
        xxhash_rust::xxh3::xxh3_64(name.as_bytes())
    )
}

/// Bytes one resolved point takes in memory, about (its config, values and name), for refusing
/// a sweep that cannot fit before its points are made.
const POINT_BYTES: u64 = 4096;

/// `r_loss_factor=100,latent_dim=2,seed=1`: each key's last part (the whole key where two keys
/// share one), `=`, its value.
fn point_name(values: &[(String, Value)], keys: &[String]) -> String {
    let short = |k: &str| k.rsplit('.').next().unwrap_or(k).to_string();
    values
        .iter()
        .map(|(k, v)| {
            let clash = keys.iter().filter(|o| short(o) == short(k)).count() > 1;
            let label = if clash { k.clone() } else { short(k) };
            format!("{label}={}", value_name(v))
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Reads and resolves a sweep file: its base, every point's config (validated), with
/// `overrides` (the command line's flags) applied to the base and to every point.
pub fn load(
    path: &Path,
    overrides: &Overrides,
    force: bool,
) -> Result<(Sweep, SweepFile), SpecError> {
    let text = std::fs::read_to_string(path).map_err(|cause| SpecError::Io {
        path: path.to_path_buf(),
        cause,
    })?;
    let file: SweepFile = toml::from_str(&text).map_err(|cause| SpecError::Parse {
        path: path.to_path_buf(),
        cause,
    })?;
    let sweep = resolve(path, &file, overrides, force)?;
    Ok((sweep, file))
}

/// Reads `<dir>/sweep.toml` back (as `sweep run` wrote it).
pub fn load_ran(dir: &Path) -> Result<Sweep, SpecError> {
    Ok(load_ran_file(dir)?.0)
}

/// The same, with the file as written (its `from`: the sweep file it ran).
pub fn load_ran_file(dir: &Path) -> Result<(Sweep, SweepFile), SpecError> {
    let path = dir.join(SWEEP_FILE);
    if !path.is_file() {
        return Err(SpecError::NotASweep(dir.to_path_buf()));
    }
    load(&path, &Overrides::default(), true)
}

/// The base config's file, relative to the sweep file's folder first.
fn base_path(sweep: &Path, base: &str) -> PathBuf {
    let beside = sweep.parent().unwrap_or(Path::new(".")).join(base);
    if beside.is_file() {
        beside
    } else {
        PathBuf::from(base)
    }
}

fn resolve(
    path: &Path,
    file: &SweepFile,
    overrides: &Overrides,
    force: bool,
) -> Result<Sweep, SpecError> {
    let bad = |what: String, message: String| SpecError::Invalid {
        path: path.to_path_buf(),
        what,
        message,
    };
    let mut base = match &file.base {
        Some(b) => {
            let p = base_path(path, b);
            RunConfig::load(&p).map_err(|e| bad(format!("base = {b:?}"), e.to_string()))?
        }
        None => RunConfig::default(),
    };
    // Inline tables over the base file.
    let mut v = Value::try_from(&base).expect("RunConfig is TOML");
    for (name, table) in [
        ("model", &file.model),
        ("optim", &file.optim),
        ("data", &file.data),
        ("train", &file.train),
    ] {
        for (k, val) in table.iter().flatten() {
            set(&mut v, name, k, val);
        }
    }
    base = config_of(v, "the inline tables")
        .map_err(|m| bad("[model]/[optim]/[data]/[train]".into(), m))?;

    // Keys: the axes' in order, then any new ones of the explicit points.
    let mut keys: Vec<String> = file.axes.keys().cloned().collect();
    for p in &file.points {
        for k in p.keys() {
            if !keys.contains(k) {
                keys.push(k.clone());
            }
        }
    }
    for k in &keys {
        let parts: Vec<&str> = k.split('.').collect();
        if parts.len() != 2 || !TABLES.contains(&parts[0]) {
            return Err(bad(
                format!("{k:?}"),
                format!(
                    "a sweep key is table.key with table one of {}, e.g. \"train.r_loss_factor\"",
                    TABLES.join(", ")
                ),
            ));
        }
    }
    let mut axes: Vec<(String, Vec<Value>)> = Vec::new();
    let mut combos: usize = if file.axes.is_empty() { 0 } else { 1 };
    for (k, vals) in &file.axes {
        let Value::Array(vals) = vals else {
            return Err(bad(
                format!("axes.{k:?}"),
                format!("an axis is a list of values, e.g. [1, 2]; got {vals}"),
            ));
        };
        if vals.is_empty() {
            return Err(bad(
                format!("axes.{k:?}"),
                "an empty axis gives no point".into(),
            ));
        }
        combos = combos.saturating_mul(vals.len());
        axes.push((k.clone(), vals.clone()));
    }
    let total = combos.saturating_add(file.points.len());
    for (n, p) in file.points.iter().enumerate() {
        if p.is_empty() {
            return Err(bad(
                format!("[[points]] number {}", n + 1),
                "an empty point: give it at least one \"table.key\" = value".into(),
            ));
        }
    }
    if total == 0 {
        return Err(bad(
            "the sweep".into(),
            "no points: give [axes] with lists of values, or [[points]]".into(),
        ));
    }
    if total > MAX_POINTS && !force {
        return Err(bad(
            "the sweep".into(),
            format!("{total} points, more than {MAX_POINTS}: pass --force to train them all"),
        ));
    }
    // Refused before any point is made when they cannot fit (10^12 points asked for 24 TB).
    let need = (total as u64).saturating_mul(POINT_BYTES);
    if let Some((left, source)) = crate::util::memory::available() {
        if need > left / 2 {
            return Err(bad(
                "the sweep".into(),
                format!(
                    "{total} points take about {} to hold, more than half of the {} left under {source}; split the sweep into several files",
                    crate::util::memory::human(need),
                    crate::util::memory::human(left)
                ),
            ));
        }
    }
    // The cartesian product, the first axis varying slowest.
    let mut value_sets: Vec<Vec<(String, Value)>> = Vec::with_capacity(total);
    if combos > 0 {
        value_sets.push(Vec::new());
        for (k, vals) in &axes {
            value_sets = value_sets
                .into_iter()
                .flat_map(|prefix| {
                    vals.iter().map(move |v| {
                        let mut p = prefix.clone();
                        p.push((k.clone(), v.clone()));
                        p
                    })
                })
                .collect();
        }
    }
    for p in &file.points {
        value_sets.push(
            keys.iter()
                .filter_map(|k| p.get(k).map(|v| (k.clone(), v.clone())))
                .collect(),
        );
    }
    let mut flagged = base.clone();
    overrides.apply(&mut flagged);
    let mut points: Vec<Point> = Vec::with_capacity(value_sets.len());
    // Folder name -> the point that has it: a clash is found in one look, and named.
    let mut names: std::collections::HashMap<String, String> = Default::default();
    for values in value_sets {
        let mut v = Value::try_from(&base).expect("RunConfig is TOML");
        for (k, val) in &values {
            let (table, key) = k.split_once('.').expect("checked: table.key");
            set(&mut v, table, key, val);
        }
        let what = values
            .iter()
            .map(|(k, v)| format!("{k} = {v}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut config = config_of(v, &what).map_err(|m| bad(format!("the point {what}"), m))?;
        overrides.apply(&mut config);
        if config.train.epochs == 0 {
            return Err(bad(
                format!("the point {what}"),
                "train.epochs = 0: a point trains at least one epoch".into(),
            ));
        }
        config
            .validate()
            .map_err(|e| bad(format!("the point {what}"), e.to_string()))?;
        let name = folder_name(point_name(&values, &keys));
        if let Some(first) = names.insert(name.clone(), what.clone()) {
            let same = if first == what {
                "it appears twice".to_string()
            } else {
                format!("so does the point {first}")
            };
            return Err(bad(
                format!("the point {what}"),
                format!(
                    "its folder would be points/{name}, and {same} (values that are the same number, or that differ only in signs a folder name cannot hold)"
                ),
            ));
        }
        points.push(Point {
            values,
            name,
            config,
        });
    }
    flagged
        .validate()
        .map_err(|e| bad("the base config".into(), e.to_string()))?;
    // One data order per group of stackable points (`group`).
    let mut configs: Vec<RunConfig> = points.iter().map(|p| p.config.clone()).collect();
    super::group::assign_shuffle_seeds(&mut configs);
    for (p, c) in points.iter_mut().zip(configs) {
        p.config = c;
    }
    Ok(Sweep {
        path: path.to_path_buf(),
        base: flagged,
        keys,
        points,
    })
}

/// Sets `table.key` in a config's TOML value (one of the four tables every config writes).
fn set(v: &mut Value, table: &str, key: &str, val: &Value) {
    v[table]
        .as_table_mut()
        .expect("a config table")
        .insert(key.to_string(), val.clone());
}

/// A config from its TOML value, naming the key of an unknown field or a value of the wrong type.
fn config_of(v: Value, what: &str) -> Result<RunConfig, String> {
    RunConfig::deserialize(v).map_err(|e| format!("{what}: {}", e.to_string().trim()))
}
