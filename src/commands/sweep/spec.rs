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

/// A value as a folder name part: numbers and strings as written, arrays joined with 'x'.
fn value_name(v: &Value) -> String {
    let raw = match v {
        Value::Array(a) => a.iter().map(value_name).collect::<Vec<_>>().join("x"),
        other => value_text(other),
    };
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._+-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

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
    let path = dir.join(SWEEP_FILE);
    if !path.is_file() {
        return Err(SpecError::NotASweep(dir.to_path_buf()));
    }
    Ok(load(&path, &Overrides::default(), true)?.0)
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
        let name = point_name(&values, &keys);
        if points.iter().any(|p| p.name == name) {
            return Err(bad(
                format!("the point {what}"),
                format!("{name} appears twice"),
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
