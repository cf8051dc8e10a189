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
//! A resumed run writes a new file; first every older file loses the events past the step the
//! checkpoint holds (a kill can come after an epoch's events and before its checkpoint), so
//! TensorBoard shows no step twice.
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
}

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
pub struct TensorShapeProto {}

const DT_STRING: i32 = 7;

fn masked_crc(data: &[u8]) -> u32 {
    let crc = crc32c::crc32c(data);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// One record: the framed bytes of `data`.
fn record(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
    out
}

/// The events of a file's records, in order; a torn last record (a kill mid-write) ends it.
pub fn read_events(bytes: &[u8]) -> Vec<Event> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 12 <= bytes.len() {
        let len = u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes")) as usize;
        let end = at + 12 + len + 4;
        if end > bytes.len() {
            break;
        }
        let data = &bytes[at + 12..at + 12 + len];
        let crc = u32::from_le_bytes(bytes[end - 4..end].try_into().expect("4 bytes"));
        if crc != masked_crc(data) {
            break;
        }
        match Event::decode(data) {
            Ok(e) => out.push(e),
            Err(_) => break,
        }
        at = end;
    }
    out
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
    /// A new event file in `<run>/tensorboard/`, after dropping the events of older files past
    /// `resume_step` (the checkpoint's global step; None for a new run, which removes nothing).
    pub fn create(run: &Path, resume_step: Option<i64>) -> std::io::Result<EventWriter> {
        let dir = run.join(TENSORBOARD_DIR);
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
            let events = read_events(&bytes);
            let keep: Vec<&Event> = match resume_step {
                Some(s) => events.iter().filter(|e| e.step <= s).collect(),
                None => events.iter().collect(),
            };
            let torn = record_bytes(&events) != bytes.len();
            if keep.len() != events.len() || torn {
                let mut data = Vec::new();
                for e in keep {
                    data.extend(record(&e.encode_to_vec()));
                }
                crate::util::fsutil::write_atomic(&path, &data)?;
            }
        }
        let host = fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        let path = dir.join(format!(
            "events.out.tfevents.{}.{host}.{}.{seq}",
            now() as u64,
            std::process::id()
        ));
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        let mut w = EventWriter { file, path };
        w.write(Event {
            wall_time: now(),
            step: 0,
            what: Some(What::FileVersion("brain.Event:2".into())),
        })?;
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
        })
    }

    /// Scalars at `step`, in one event.
    pub fn scalars(&mut self, step: i64, values: &[(&str, f64)]) -> std::io::Result<()> {
        let values = values
            .iter()
            .map(|(tag, v)| Value {
                tag: tag.to_string(),
                metadata: None,
                value: Some(Kind::SimpleValue(*v as f32)),
            })
            .collect();
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
                tensor_shape: Some(TensorShapeProto {}),
                string_val: vec![text.as_bytes().to_vec()],
            })),
        };
        self.summary(step, vec![value])
    }
}

/// The bytes `events` take as records.
fn record_bytes(events: &[Event]) -> usize {
    events.iter().map(|e| e.encoded_len() + 16).sum()
}
