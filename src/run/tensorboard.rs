//! TensorBoard event files for a run: `<run>/tensorboard/events.out.tfevents.*`, as PyTorch's
//! `SummaryWriter` and Keras's `TensorBoard` callback write them, read by TensorBoard's own
//! reader (tests/python/test_tensorboard.py).
//!
//! The format (tensorflow/tensorboard: `tensorboard/compat/proto/event.proto`, `summary.proto`,
//! `tensor.proto`; the record framing of `tensorboard/summary/writer/record_writer.py`): a file
//! of records, each `u64 length (LE) | u32 masked CRC-32C of the length | data | u32 masked
//! CRC-32C of the data`, the data an `Event` protobuf; the first event names the file version
//! (`brain.Event:2`). Scalars are `simple_value`s, images PNG bytes, text a string tensor with
//! the `text` plugin's metadata.
//!
//! The run's own files are named `events.out.tfevents.<secs>.<host>.<pid>.<n>.vae-tch` and
//! their first event names vae-tch as the writer (`source_metadata`); only such files are ever
//! rewritten: another writer's file in the folder (a user's own `SummaryWriter`) is left as it
//! is. A resumed run writes a new file; first the run's older files lose the events past the
//! step the checkpoint holds (a kill can come after an epoch's events and before its
//! checkpoint), and a run that starts again from the beginning (killed in its first epoch)
//! removes them, so TensorBoard shows no step twice. A resumed run logs its config again at its
//! resume step. The reader checks each record's lengths and both CRCs: a torn last record (a
//! kill mid-write) is cut; a file damaged elsewhere is set aside into
//! `<run>/tensorboard.damaged/`, with a warning, and its good events kept.
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use prost::Message;

/// `<run>/tensorboard`.
pub const TENSORBOARD_DIR: &str = "tensorboard";

#[derive(Clone, PartialEq, Message)]
pub struct Event {
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    #[prost(int64, tag = "2")]
    pub step: i64,
    #[prost(oneof = "What", tags = "3, 5")]
    pub what: Option<What>,
    #[prost(message, optional, tag = "10")]
    pub source_metadata: Option<SourceMetadata>,
}

/// Who wrote a file (`tensorboard/compat/proto/event.proto`, `SourceMetadata`).
#[derive(Clone, PartialEq, Message)]
pub struct SourceMetadata {
    #[prost(string, tag = "1")]
    pub writer: String,
}

/// The writer name in the first event of the run's own files.
pub const WRITER: &str = "vae-tch";
/// The suffix of the run's own files' names (TensorBoard reads any name with "tfevents").
pub const SUFFIX: &str = ".vae-tch";
/// Where a damaged file of the run's is set aside, beside `<run>/tensorboard`.
pub const DAMAGED_DIR: &str = "tensorboard.damaged";

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum What {
    #[prost(string, tag = "3")]
    FileVersion(String),
    #[prost(message, tag = "5")]
    Summary(Summary),
}

#[derive(Clone, PartialEq, Message)]
pub struct Summary {
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<Value>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Value {
    #[prost(string, tag = "1")]
    pub tag: String,
    #[prost(message, optional, tag = "9")]
    pub metadata: Option<SummaryMetadata>,
    #[prost(oneof = "Kind", tags = "2, 4, 8")]
    pub value: Option<Kind>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Kind {
    #[prost(float, tag = "2")]
    SimpleValue(f32),
    #[prost(message, tag = "4")]
    Image(Image),
    #[prost(message, tag = "8")]
    Tensor(TensorProto),
}

#[derive(Clone, PartialEq, Message)]
pub struct Image {
    #[prost(int32, tag = "1")]
    pub height: i32,
    #[prost(int32, tag = "2")]
    pub width: i32,
    #[prost(int32, tag = "3")]
    pub colorspace: i32,
    #[prost(bytes = "vec", tag = "4")]
    pub encoded_image_string: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
pub struct SummaryMetadata {
    #[prost(message, optional, tag = "1")]
    pub plugin_data: Option<PluginData>,
}

#[derive(Clone, PartialEq, Message)]
pub struct PluginData {
    #[prost(string, tag = "1")]
    pub plugin_name: String,
    #[prost(bytes = "vec", tag = "2")]
    pub content: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TensorProto {
    /// `DataType`: 7 is DT_STRING.
    #[prost(int32, tag = "1")]
    pub dtype: i32,
    #[prost(message, optional, tag = "2")]
    pub tensor_shape: Option<TensorShapeProto>,
    #[prost(bytes = "vec", repeated, tag = "8")]
    pub string_val: Vec<Vec<u8>>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TensorShapeProto {
    #[prost(message, repeated, tag = "2")]
    pub dim: Vec<Dim>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Dim {
    #[prost(int64, tag = "1")]
    pub size: i64,
}

const DT_STRING: i32 = 7;

fn masked_crc(data: &[u8]) -> u32 {
    let crc = crc32c::crc32c(data);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// One record: the framed bytes of `data`.
pub fn record(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
    out
}

/// What a file's records hold.
#[derive(Debug, Default)]
pub struct Records {
    pub events: Vec<Event>,
    /// The bytes of the records read whole and checked.
    pub good_bytes: usize,
    /// Where the records stop being readable and why, unless the file ends cleanly or with a
    /// torn last record (a record cut short by the end of the file: a kill mid-write).
    pub damage: Option<String>,
}

/// The events of a file's records, in order, each record's lengths checked (checked arithmetic:
/// they come from the file) and both its CRCs.
pub fn read_events(bytes: &[u8]) -> Records {
    let mut out = Records::default();
    let mut at = 0usize;
    while at < bytes.len() {
        let header_end = at + 12;
        if header_end > bytes.len() {
            break; // torn
        }
        let len_bytes: [u8; 8] = bytes[at..at + 8].try_into().expect("8 bytes");
        let len_crc = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().expect("4 bytes"));
        if len_crc != masked_crc(&len_bytes) {
            out.damage = Some(format!(
                "byte {at}: a record length whose CRC does not match"
            ));
            break;
        }
        let end = usize::try_from(u64::from_le_bytes(len_bytes))
            .ok()
            .and_then(|len| header_end.checked_add(len))
            .and_then(|data_end| data_end.checked_add(4).map(|end| (data_end, end)));
        let Some((data_end, end)) = end else {
            out.damage = Some(format!("byte {at}: a record length past any file"));
            break;
        };
        if end > bytes.len() {
            break; // torn
        }
        let data = &bytes[header_end..data_end];
        let crc = u32::from_le_bytes(bytes[data_end..end].try_into().expect("4 bytes"));
        if crc != masked_crc(data) {
            out.damage = Some(format!("byte {at}: a record whose data CRC does not match"));
            break;
        }
        match Event::decode(data) {
            Ok(e) => out.events.push(e),
            Err(e) => {
                out.damage = Some(format!("byte {at}: not an Event ({e})"));
                break;
            }
        }
        at = end;
        out.good_bytes = at;
    }
    out
}

/// Whether the file at `path` is one this writer made: its name and its first event say so.
pub fn is_ours(path: &Path, records: &Records) -> bool {
    let named = path
        .file_name()
        .is_some_and(|n| n.to_string_lossy().ends_with(SUFFIX));
    let signed = records.events.first().is_some_and(|e| {
        e.source_metadata
            .as_ref()
            .is_some_and(|m| m.writer == WRITER)
    });
    named && signed
}

/// A scalar summary value (`simple_value`).
pub fn scalar(tag: &str, v: f64) -> Value {
    Value {
        tag: tag.to_string(),
        metadata: None,
        value: Some(Kind::SimpleValue(v as f32)),
    }
}

/// The first event of vae-tch's own files: the file version, signed by the writer.
pub fn first_event(wall_time: f64) -> Event {
    Event {
        wall_time,
        step: 0,
        what: Some(What::FileVersion("brain.Event:2".into())),
        source_metadata: Some(SourceMetadata {
            writer: WRITER.into(),
        }),
    }
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Writes one run's events; every write is appended and flushed.
pub struct EventWriter {
    file: fs::File,
    path: PathBuf,
}

impl EventWriter {
    /// A new event file in `<run>/tensorboard/`, after tidying the run's older files: with
    /// `resume_step` (the checkpoint's global step) each keeps the events up to that step (but
    /// the config text at it, which the resumed run writes again); without it (a run starting
    /// from the beginning) they go. Files of other writers are left alone.
    pub fn create(run: &Path, resume_step: Option<i64>) -> std::io::Result<EventWriter> {
        let dir = run.join(TENSORBOARD_DIR);
        if dir
            .symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink())
            && !dir.exists()
        {
            let target = fs::read_link(&dir).unwrap_or_default();
            return Err(std::io::Error::other(format!(
                "{} is a link to {}, which does not exist: create that folder, or remove the link",
                dir.display(),
                target.display()
            )));
        }
        fs::create_dir_all(&dir)?;
        let mut seq = 0;
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            if !name.is_some_and(|n| n.contains("tfevents")) {
                continue;
            }
            seq += 1;
            let bytes = fs::read(&path)?;
            let records = read_events(&bytes);
            if !is_ours(&path, &records) {
                continue;
            }
            let Some(step) = resume_step else {
                fs::remove_file(&path)?;
                continue;
            };
            if let Some(why) = &records.damage {
                let aside = run.join(DAMAGED_DIR);
                fs::create_dir_all(&aside)?;
                let to = aside.join(path.file_name().expect("a file name"));
                fs::copy(&path, &to)?;
                eprintln!(
                    "warning: {} is damaged at {why}: set aside as {}; its {} events before that are kept",
                    path.display(),
                    to.display(),
                    records.events.len()
                );
            }
            let keep: Vec<&Event> = records
                .events
                .iter()
                .filter(|e| e.step < step || (e.step == step && !is_config(e)))
                .collect();
            if keep.len() != records.events.len() || records.good_bytes != bytes.len() {
                let mut data = Vec::new();
                for e in keep {
                    data.extend(record(&e.encode_to_vec()));
                }
                crate::util::fsutil::write_atomic(&path, &data)?;
            }
        }
        let host = crate::util::host::name();
        let path = dir.join(format!(
            "events.out.tfevents.{}.{host}.{}.{seq}{SUFFIX}",
            now() as u64,
            std::process::id()
        ));
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        let mut w = EventWriter { file, path };
        w.write(first_event(now()))?;
        Ok(w)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write(&mut self, e: Event) -> std::io::Result<()> {
        self.file.write_all(&record(&e.encode_to_vec()))?;
        self.file.flush()
    }

    fn summary(&mut self, step: i64, values: Vec<Value>) -> std::io::Result<()> {
        self.write(Event {
            wall_time: now(),
            step,
            what: Some(What::Summary(Summary { value: values })),
            source_metadata: None,
        })
    }

    /// Scalars at `step`, in one event.
    pub fn scalars(&mut self, step: i64, values: &[(&str, f64)]) -> std::io::Result<()> {
        let values = values.iter().map(|(tag, v)| scalar(tag, *v)).collect();
        self.summary(step, values)
    }

    /// A PNG image (`channels` 1 grey, 3 RGB) at `step`.
    pub fn image(
        &mut self,
        tag: &str,
        step: i64,
        png: Vec<u8>,
        (width, height, channels): (u32, u32, i32),
    ) -> std::io::Result<()> {
        let value = Value {
            tag: tag.into(),
            metadata: None,
            value: Some(Kind::Image(Image {
                height: height as i32,
                width: width as i32,
                colorspace: channels,
                encoded_image_string: png,
            })),
        };
        self.summary(step, vec![value])
    }

    /// Text (markdown) for TensorBoard's text plugin at `step`.
    pub fn text(&mut self, tag: &str, step: i64, text: &str) -> std::io::Result<()> {
        let value = Value {
            tag: tag.into(),
            metadata: Some(SummaryMetadata {
                plugin_data: Some(PluginData {
                    plugin_name: "text".into(),
                    content: Vec::new(),
                }),
            }),
            value: Some(Kind::Tensor(TensorProto {
                dtype: DT_STRING,
                tensor_shape: Some(TensorShapeProto::default()),
                string_val: vec![text.as_bytes().to_vec()],
            })),
        };
        self.summary(step, vec![value])
    }
}

/// Whether `e` is a config text: a run logs it at its start step, which a resumed run (its
/// checkpoint's step) logs again with the config it goes on with.
fn is_config(e: &Event) -> bool {
    matches!(&e.what, Some(What::Summary(s)) if s.value.iter().any(|v| v.tag == CONFIG_TAG))
}

/// The tag of the config text.
pub const CONFIG_TAG: &str = "config";
