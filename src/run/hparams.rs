//! TensorBoard's HParams for a sweep: each point's run folder gets the hparams plugin's session
//! start (its swept values) and end (its status), beside the metrics the table shows, and the
//! sweep folder the experiment summary (the swept keys with their values, and the metrics), so
//! that `tensorboard --logdir <sweep>` fills the HParams tab's table and parallel coordinates.
//!
//! The format (tensorflow/tensorboard: `tensorboard/plugins/hparams/api.proto`,
//! `plugin_data.proto`, `metadata.py`, `summary.py`): a summary value with the tag
//! `_hparams_/experiment`, `_hparams_/session_start_info` or `_hparams_/session_end_info`, the
//! plugin name `hparams`, its content an `HParamsPluginData` (version 0), and a null tensor
//! (DT_FLOAT of shape [0]). Each is written into a file of its own, `events.out.tfevents.0.hparams
//! .vae-tch`, rewritten whole (atomically) each time the report runs: vae-tch's, signed as its
//! other event files.
use std::path::Path;

use prost::Message;

use super::tensorboard::{
    first_event, record, scalar, Dim, Event, Kind, PluginData, Summary, SummaryMetadata,
    TensorProto, TensorShapeProto, Value, What, TENSORBOARD_DIR,
};

/// The name of the file the HParams are written to, in a `tensorboard/` folder.
pub const HPARAMS_FILE: &str = "events.out.tfevents.0.hparams.vae-tch";
pub const EXPERIMENT_TAG: &str = "_hparams_/experiment";
pub const SESSION_START_TAG: &str = "_hparams_/session_start_info";
pub const SESSION_END_TAG: &str = "_hparams_/session_end_info";

/// `google.protobuf.Value`, as far as hparams use it.
#[derive(Clone, PartialEq, Message)]
pub struct PbValue {
    #[prost(oneof = "PbKind", tags = "2, 3, 4, 6")]
    pub kind: Option<PbKind>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum PbKind {
    #[prost(double, tag = "2")]
    Number(f64),
    #[prost(string, tag = "3")]
    Text(String),
    #[prost(bool, tag = "4")]
    Bool(bool),
    #[prost(message, tag = "6")]
    List(ListValue),
}

#[derive(Clone, PartialEq, Message)]
pub struct ListValue {
    #[prost(message, repeated, tag = "1")]
    pub values: Vec<PbValue>,
}

#[derive(Clone, PartialEq, Message)]
pub struct PluginDataProto {
    #[prost(int32, tag = "1")]
    pub version: i32,
    #[prost(oneof = "Data", tags = "2, 3, 4")]
    pub data: Option<Data>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Data {
    #[prost(message, tag = "2")]
    Experiment(Experiment),
    #[prost(message, tag = "3")]
    SessionStart(SessionStartInfo),
    #[prost(message, tag = "4")]
    SessionEnd(SessionEndInfo),
}

#[derive(Clone, PartialEq, Message)]
pub struct Experiment {
    #[prost(string, tag = "1")]
    pub description: String,
    #[prost(double, tag = "3")]
    pub time_created_secs: f64,
    #[prost(message, repeated, tag = "4")]
    pub hparam_infos: Vec<HParamInfo>,
    #[prost(message, repeated, tag = "5")]
    pub metric_infos: Vec<MetricInfo>,
    #[prost(string, tag = "6")]
    pub name: String,
}

/// `DataType`: 1 string, 2 bool, 3 float64.
#[derive(Clone, PartialEq, Message)]
pub struct HParamInfo {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(int32, tag = "4")]
    pub r#type: i32,
    #[prost(message, optional, tag = "5")]
    pub domain_discrete: Option<ListValue>,
}

#[derive(Clone, PartialEq, Message)]
pub struct MetricInfo {
    #[prost(message, optional, tag = "1")]
    pub name: Option<MetricName>,
    #[prost(string, tag = "3")]
    pub display_name: String,
    #[prost(string, tag = "4")]
    pub description: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct MetricName {
    #[prost(string, tag = "1")]
    pub group: String,
    #[prost(string, tag = "2")]
    pub tag: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct SessionStartInfo {
    #[prost(map = "string, message", tag = "1")]
    pub hparams: std::collections::HashMap<String, PbValue>,
    #[prost(string, tag = "4")]
    pub group_name: String,
    #[prost(double, tag = "5")]
    pub start_time_secs: f64,
}

/// `Status`: 1 success, 2 failure, 3 running.
#[derive(Clone, PartialEq, Message)]
pub struct SessionEndInfo {
    #[prost(int32, tag = "1")]
    pub status: i32,
    #[prost(double, tag = "2")]
    pub end_time_secs: f64,
}

/// A swept value, as hparams carry it.
#[derive(Debug, Clone, PartialEq)]
pub enum HValue {
    Number(f64),
    Text(String),
    Bool(bool),
}

impl HValue {
    fn proto(&self) -> PbValue {
        PbValue {
            kind: Some(match self {
                HValue::Number(x) => PbKind::Number(*x),
                HValue::Text(s) => PbKind::Text(s.clone()),
                HValue::Bool(b) => PbKind::Bool(*b),
            }),
        }
    }

    fn data_type(&self) -> i32 {
        match self {
            HValue::Text(_) => 1,
            HValue::Bool(_) => 2,
            HValue::Number(_) => 3,
        }
    }
}

/// How a point ended, as the HParams table shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStatus {
    Success = 1,
    Failure = 2,
    Running = 3,
}

/// One metric of the experiment: the scalar tag the sessions carry, and how the table names it.
pub struct Metric {
    pub tag: &'static str,
    pub display: &'static str,
    pub description: &'static str,
}

/// A point's session: its values, its metrics' last values at `step`, its times and status.
pub struct Session<'a> {
    pub hparams: &'a [(String, HValue)],
    pub metrics: &'a [(&'static str, f64)],
    pub step: i64,
    pub start_secs: f64,
    pub end_secs: f64,
    pub status: SessionStatus,
}

fn plugin_value(tag: &str, data: Data) -> Value {
    Value {
        tag: tag.into(),
        metadata: Some(SummaryMetadata {
            plugin_data: Some(PluginData {
                plugin_name: "hparams".into(),
                content: PluginDataProto {
                    version: 0,
                    data: Some(data),
                }
                .encode_to_vec(),
            }),
        }),
        value: Some(Kind::Tensor(TensorProto {
            dtype: 1,
            tensor_shape: Some(TensorShapeProto {
                dim: vec![Dim { size: 0 }],
            }),
            string_val: Vec::new(),
        })),
    }
}

fn event(wall_time: f64, step: i64, values: Vec<Value>) -> Event {
    Event {
        wall_time,
        step,
        what: Some(What::Summary(Summary { value: values })),
        source_metadata: None,
    }
}

/// Writes `events` (after the signed file-version event) as `<dir>/tensorboard/HPARAMS_FILE`.
fn write(dir: &Path, wall_time: f64, events: Vec<Event>) -> std::io::Result<()> {
    let folder = dir.join(TENSORBOARD_DIR);
    std::fs::create_dir_all(&folder)?;
    let mut data = record(&first_event(wall_time).encode_to_vec());
    for e in events {
        data.extend(record(&e.encode_to_vec()));
    }
    crate::util::fsutil::write_atomic(&folder.join(HPARAMS_FILE), &data)
}

/// A point's session into its run folder `run`.
pub fn write_session(run: &Path, s: &Session) -> std::io::Result<()> {
    let start = SessionStartInfo {
        hparams: s
            .hparams
            .iter()
            .map(|(k, v)| (k.clone(), v.proto()))
            .collect(),
        group_name: String::new(),
        start_time_secs: s.start_secs,
    };
    let scalars = s.metrics.iter().map(|(tag, v)| scalar(tag, *v)).collect();
    let end = SessionEndInfo {
        status: s.status as i32,
        end_time_secs: s.end_secs,
    };
    write(
        run,
        s.start_secs,
        vec![
            event(
                s.start_secs,
                0,
                vec![plugin_value(SESSION_START_TAG, Data::SessionStart(start))],
            ),
            event(s.end_secs, s.step, scalars),
            event(
                s.end_secs,
                s.step,
                vec![plugin_value(SESSION_END_TAG, Data::SessionEnd(end))],
            ),
        ],
    )
}

/// The experiment summary into the sweep folder `dir`: each key with the values it takes (in
/// order), and the metrics.
pub fn write_experiment(
    dir: &Path,
    name: &str,
    keys: &[(String, Vec<HValue>)],
    metrics: &[Metric],
    created_secs: f64,
) -> std::io::Result<()> {
    let experiment = Experiment {
        name: name.into(),
        description: format!("vae-tch sweep {name}"),
        time_created_secs: created_secs,
        hparam_infos: keys
            .iter()
            .map(|(key, values)| HParamInfo {
                name: key.clone(),
                r#type: values.first().map_or(0, HValue::data_type),
                domain_discrete: Some(ListValue {
                    values: values.iter().map(HValue::proto).collect(),
                }),
            })
            .collect(),
        metric_infos: metrics
            .iter()
            .map(|m| MetricInfo {
                name: Some(MetricName {
                    group: String::new(),
                    tag: m.tag.into(),
                }),
                display_name: m.display.into(),
                description: m.description.into(),
            })
            .collect(),
    };
    write(
        dir,
        created_secs,
        vec![event(
            created_secs,
            0,
            vec![plugin_value(EXPERIMENT_TAG, Data::Experiment(experiment))],
        )],
    )
}
