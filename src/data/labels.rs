//! Attributes of a data set's images, as the book's faces chapter uses them: CelebA's attribute
//! table, joined to an image folder by file name, in either layout
//! - Kaggle's `list_attr_celeba.csv`: an `image_id` column and one column per attribute;
//! - the original release's `list_attr_celeba.txt`: a line with the count, a line of the names,
//!   then `000001.jpg -1  1 ...`;
//!
//! with values 1 (has it) and -1 (has not); or, for a data set with classes (MNIST,
//! Fashion-MNIST, an image folder with class sub-folders), its class labels one-vs-rest: the
//! attribute "Trouser" is 1 on trousers and -1 on the rest.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tch::{Kind, Tensor};

/// The table files looked for beside an image folder, in this order.
const TABLE_NAMES: [&str; 2] = ["list_attr_celeba.csv", "list_attr_celeba.txt"];

#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    #[error("{path}: {cause}", path = .path.display())]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{path}, line {line}: {message}", path = .path.display())]
    Format {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path} names no image of the data set ({images} images; its first rows name {first}): is it the table of these images?", path = .path.display())]
    NoMatch {
        path: PathBuf,
        images: usize,
        first: String,
    },
    #[error("no attribute table: an image folder needs one (--labels FILE: CelebA's list_attr_celeba.csv or .txt; none beside {dir})", dir = .dir.display())]
    NoTable { dir: PathBuf },
    #[error("the attribute {name} is not in {from}; it has {known}")]
    Unknown {
        name: String,
        from: String,
        known: String,
    },
}

/// An attribute table as read: the names, and each image's values (1 or -1) by file name.
#[derive(Debug, Clone)]
pub struct Table {
    pub path: PathBuf,
    pub names: Vec<String>,
    pub rows: HashMap<String, Vec<i8>>,
    /// The file names in the table's order (for messages).
    pub order: Vec<String>,
}

/// The images' attributes, one row per image of a split, in the split's order.
#[derive(Debug)]
pub struct Attributes {
    /// Where they come from: a table's path, or "the class labels".
    pub source: String,
    pub names: Vec<String>,
    /// `[n, A]` int8: 1, -1, or 0 for an image the table has no row for.
    pub values: Tensor,
}

impl Attributes {
    /// The column of `name`, or an error that lists the known names.
    pub fn column(&self, name: &str) -> Result<usize, LabelError> {
        self.names
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| LabelError::Unknown {
                name: name.into(),
                from: self.source.clone(),
                known: self.names.join(", "),
            })
    }
}

/// The table beside the image folder `dir`: in it, in its parent (Kaggle's
/// `img_align_celeba/img_align_celeba/`), or in the parent's `Anno/` (the original release).
pub fn find_table(dir: &Path) -> Option<PathBuf> {
    let parent = dir.parent().unwrap_or(dir);
    let places = [dir.to_path_buf(), parent.to_path_buf(), parent.join("Anno")];
    let grand = parent.parent().map(|g| [g.to_path_buf(), g.join("Anno")]);
    places
        .into_iter()
        .chain(grand.into_iter().flatten())
        .flat_map(|d| TABLE_NAMES.map(|n| d.join(n)))
        .find(|p| p.is_file())
}

/// Reads a table in either layout (told by its first line: a count, or a header with
/// `image_id`).
pub fn read_table(path: &Path) -> Result<Table, LabelError> {
    let text = std::fs::read_to_string(path).map_err(|cause| LabelError::Io {
        path: path.to_path_buf(),
        cause,
    })?;
    let bad = |line: usize, message: String| LabelError::Format {
        path: path.to_path_buf(),
        line,
        message,
    };
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, first) = lines
        .next()
        .ok_or_else(|| bad(1, "the file is empty".into()))?;
    let csv = first.contains(',');
    let names: Vec<String> = if csv {
        let cols: Vec<&str> = first.split(',').map(str::trim).collect();
        if cols.first().map(|c| c.to_ascii_lowercase()) != Some("image_id".into()) {
            return Err(bad(
                1,
                format!("expected a header starting with image_id, got {first:.60}"),
            ));
        }
        cols[1..].iter().map(|c| c.to_string()).collect()
    } else {
        first
            .trim()
            .parse::<usize>()
            .map_err(|_| bad(1, format!("expected the image count (the original layout) or a CSV header, got {first:.60}")))?;
        let (_, second) = lines
            .next()
            .ok_or_else(|| bad(2, "no line of attribute names".into()))?;
        second.split_whitespace().map(String::from).collect()
    };
    if names.is_empty() {
        return Err(bad(1, "no attribute names".into()));
    }
    let mut rows = HashMap::new();
    let mut order = Vec::new();
    for (i, line) in lines {
        let fields: Vec<&str> = if csv {
            line.split(',').map(str::trim).collect()
        } else {
            line.split_whitespace().collect()
        };
        if fields.len() != names.len() + 1 {
            return Err(bad(
                i + 1,
                format!(
                    "{} values for {} attributes",
                    fields.len().saturating_sub(1),
                    names.len()
                ),
            ));
        }
        let values = fields[1..]
            .iter()
            .map(|v| match *v {
                "1" => Ok(1i8),
                "-1" => Ok(-1i8),
                "0" => Ok(-1i8),
                other => Err(bad(i + 1, format!("{other:?} is not 1 or -1"))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        order.push(fields[0].to_string());
        rows.insert(fields[0].to_string(), values);
    }
    Ok(Table {
        path: path.to_path_buf(),
        names,
        rows,
        order,
    })
}

/// The file name a table's rows use for an image at `name` (relative to the data folder).
fn file_name(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// `table`'s rows for the images `names` (a split's, relative to the folder), in their order;
/// images without a row get 0 (neither). Checked against every image of the folder (`all`, both
/// splits): its images without a row and the table's rows without an image are counted and named
/// (the first few) in one warning, never dropped in silence.
pub fn join(table: &Table, names: &[String], all: &[&str]) -> Result<Attributes, LabelError> {
    let a = table.names.len();
    let mut values = vec![0i8; names.len() * a];
    for (i, n) in names.iter().enumerate() {
        if let Some(row) = table.rows.get(file_name(n)) {
            values[i * a..(i + 1) * a].copy_from_slice(row);
        }
    }
    let present: std::collections::HashSet<&str> = all.iter().map(|n| file_name(n)).collect();
    let unlabeled: Vec<&str> = all
        .iter()
        .copied()
        .filter(|n| !table.rows.contains_key(file_name(n)))
        .collect();
    if unlabeled.len() == all.len() {
        return Err(LabelError::NoMatch {
            path: table.path.clone(),
            images: all.len(),
            first: table
                .order
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let extra: Vec<&str> = table
        .order
        .iter()
        .map(String::as_str)
        .filter(|r| !present.contains(r))
        .collect();
    if !unlabeled.is_empty() || !extra.is_empty() {
        let few = |v: &[&str]| {
            let shown = v.iter().take(3).copied().collect::<Vec<_>>().join(", ");
            if v.len() > 3 {
                format!("{shown}, ...")
            } else {
                shown
            }
        };
        eprintln!(
            "warning: {}: {} of the folder's {} images have no row, and count for no attribute ({}); {} of its {} rows name no image of the folder ({})",
            table.path.display(),
            unlabeled.len(),
            all.len(),
            few(&unlabeled),
            extra.len(),
            table.order.len(),
            few(&extra)
        );
    }
    Ok(Attributes {
        source: table.path.display().to_string(),
        names: table.names.clone(),
        values: Tensor::from_slice(&values).view([names.len() as i64, a as i64]),
    })
}

/// Class labels (int64 `[n]`) as one attribute per class, one-vs-rest.
pub fn from_classes(labels: &Tensor, classes: &[String]) -> Attributes {
    let c = classes.len() as i64;
    let hot = labels
        .unsqueeze(1)
        .eq_tensor(&Tensor::arange(c, (Kind::Int64, labels.device())).unsqueeze(0));
    let values = hot.to_kind(Kind::Int8) * 2 - 1;
    Attributes {
        source: "the class labels".into(),
        names: classes.to_vec(),
        values: values.to_kind(Kind::Int8),
    }
}
