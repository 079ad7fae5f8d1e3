//! The one error type of `pipeproof-core`. Every message says what was wrong and, where it
//! can, how to fix it; callers add the file or request it came from.

use crate::decode::Format;

/// Which side of a diff an error or a row belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The earlier table (`BEFORE`, the previous step).
    Before,
    /// The later table (`AFTER`, the new step).
    After,
    /// The previous step's table, in a step's diff (for `Before`).
    PreviousStep,
    /// The step's own table (for `After`, and for `Before` at a run's first step, which
    /// is diffed against its own empty schema).
    Step,
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::Before => "before",
            Side::After => "after",
            Side::PreviousStep => "previous step's",
            Side::Step => "step's",
        })
    }
}

/// Errors of `pipeproof-core`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes could not be decoded in the given format (malformed or truncated input).
    #[error("cannot read the input as {format}: {message}")]
    Decode {
        /// The format the bytes were read as.
        format: Format,
        /// What the decoder reported.
        message: String,
    },
    /// A column has a type that fingerprint v1 cannot encode.
    #[error(
        "column `{column}` has type {data_type}, which fingerprint v1 does not support; {}",
        unsupported_hint(data_type)
    )]
    UnsupportedType {
        /// The column's name.
        column: String,
        /// The column's Arrow type.
        data_type: String,
    },
    /// A utf8 column holds bytes that are not UTF-8 text.
    #[error(
        "column `{column}` is a utf8 column, but row {row} is not valid UTF-8 text (or a \
         cell starts inside a character); write the column as binary if it holds bytes, \
         else repair the text"
    )]
    InvalidText {
        /// The column.
        column: String,
        /// The first row found that is not UTF-8 (0-based, counted from the first row of
        /// the table).
        row: u64,
    },
    /// Two columns share a name, so the column-name order of a row is ambiguous.
    #[error("column name `{0}` appears more than once; give every column a distinct name")]
    DuplicateColumn(String),
    /// A column has a name the diff's detail tables give their own columns.
    #[error(
        "{what} `{column}` in the {side} table has a name the diff details use for their own \
         columns (`_row` in added and removed rows; `column`, `old` and `new` beside the key \
         in changed cells); rename it"
    )]
    ReservedName {
        /// "column" or "key column".
        what: &'static str,
        /// The column.
        column: String,
        /// The table that has it.
        side: Side,
    },
    /// A key column named in the diff configuration is not in a table.
    #[error(
        "key column `{column}` is not in the {side} table; its columns are: {available}{}",
        missing_key_hint(side)
    )]
    MissingKey {
        /// The missing key column.
        column: String,
        /// The table that lacks it.
        side: Side,
        /// The columns that table does have, comma-separated.
        available: String,
    },
    /// A key column holds nulls, so those rows cannot be matched.
    #[error(
        "key column `{column}` in the {side} table has {count} null value(s) (rows {examples}); \
         a key must identify every row: fill the nulls or choose another key"
    )]
    NullKeys {
        /// The key column.
        column: String,
        /// The table with the nulls.
        side: Side,
        /// How many rows have a null key cell.
        count: u64,
        /// The first few row numbers (0-based), comma-separated.
        examples: String,
    },
    /// Several rows of one table share a key, so a keyed diff would be ambiguous.
    #[error(
        "the key ({key}) is not unique in the {side} table: {count} row(s) share a key with \
         another row, for example {examples}; deduplicate the rows or add key columns"
    )]
    DuplicateKeys {
        /// The key columns, comma-separated.
        key: String,
        /// The table with duplicates.
        side: Side,
        /// How many rows have a key that occurs more than once.
        count: u64,
        /// Example key values, formatted.
        examples: String,
    },
    /// A batch does not match the schema of the table it belongs to.
    #[error("batch {index} has a different schema from the first batch: {message}")]
    SchemaMismatch {
        /// 0-based index of the offending batch.
        index: usize,
        /// What differs.
        message: String,
    },
    /// A configuration value is out of range or inconsistent.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// A proof, bundle or record did not verify.
    #[error("verification failed: {0}")]
    Verification(String),
    /// Writing a bundle, or reading the file it is compared with, failed (a full disk, an
    /// I/O error); the message names the cause.
    #[error("{0}")]
    Io(String),
    /// An Arrow computation failed (a bug or resource limit rather than bad input).
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
}

impl Error {
    /// The error with its sides named as a run's steps: a step is diffed against the
    /// previous one (`first`: there is none, and its key and schema were checked against
    /// an empty table of its own schema).
    pub fn in_steps(mut self, first: bool) -> Error {
        let side = match &mut self {
            Error::MissingKey { side, .. }
            | Error::ReservedName { side, .. }
            | Error::NullKeys { side, .. }
            | Error::DuplicateKeys { side, .. } => side,
            _ => return self,
        };
        *side = match *side {
            Side::Before if !first => Side::PreviousStep,
            Side::Before | Side::After => Side::Step,
            other => other,
        };
        self
    }
}

/// What to do when the previous step lacks a key column (renamed, or new in this step).
fn missing_key_hint(side: &Side) -> &'static str {
    match side {
        Side::PreviousStep => {
            "; send this step without a key to compare its rows whole, or keep the key's name"
        }
        _ => "",
    }
}

/// How to get past an unsupported type, by its spelling in [`crate::canon::type_name`].
fn unsupported_hint(data_type: &str) -> &'static str {
    let nested = [
        "list",
        "largelist",
        "fixedsizelist",
        "struct",
        "map",
        "union",
    ];
    if nested.iter().any(|n| data_type.starts_with(n)) {
        "drop the column or flatten it into scalar columns (nested types are planned for v2)"
    } else if data_type.starts_with("runendencoded") {
        "decode the run-end encoding into a plain column (pyarrow: pc.run_end_decode) or drop it"
    } else {
        "cast it to a supported type (docs/spec/fingerprint-v1.md lists them) or drop it"
    }
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The message a panic was raised with, from its payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into())
}
