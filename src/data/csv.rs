//! Reading CSV files: MovieLens tables with polars (fast, columnar), small files (profiles,
//! splits) row by row with the csv crate, and parser failures turned into errors that name the
//! file, the line and the field.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use polars::prelude::*;

use crate::error::{Error, Result};

/// The kind of value a column must hold; decides the polars dtype and the error wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A non-negative integer id.
    Id,
    /// A decimal number.
    Number,
    /// A Unix timestamp in seconds.
    Timestamp,
    /// Free text.
    Text,
}

impl Kind {
    fn dtype(self) -> DataType {
        match self {
            Kind::Id => DataType::UInt32,
            Kind::Number => DataType::Float64,
            Kind::Timestamp => DataType::Int64,
            Kind::Text => DataType::String,
        }
    }

    fn expected(self) -> &'static str {
        match self {
            Kind::Id => "a non-negative integer id",
            Kind::Number => "a number",
            Kind::Timestamp => "an integer Unix timestamp",
            Kind::Text => "text",
        }
    }
}

/// One required (or optional) column of a CSV file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Column {
    pub name: &'static str,
    pub kind: Kind,
    /// Whether an empty value is allowed (it is read as null).
    pub nullable: bool,
}

/// A column that must hold a value in every row.
pub(crate) const fn required(name: &'static str, kind: Kind) -> Column {
    Column {
        name,
        kind,
        nullable: false,
    }
}

/// A column whose value may be empty.
pub(crate) const fn optional(name: &'static str, kind: Kind) -> Column {
    Column {
        name,
        kind,
        nullable: true,
    }
}

/// A reader of `path` with the csv crate: RFC 4180 quoting, a UTF-8 BOM stripped, whitespace
/// around fields trimmed, and rows of any length (their shape is checked by [`for_each_row`]).
fn csv_reader(path: &Path) -> Result<csv::Reader<File>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    Ok(csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(file))
}

/// A csv crate error as ours, with the line it happened on.
fn csv_error(path: &Path, error: csv::Error) -> Error {
    match error.position() {
        Some(position) => Error::MalformedLine {
            file: path.to_path_buf(),
            line: position.line() as usize,
            problem: error.to_string(),
        },
        None => Error::Csv {
            file: path.to_path_buf(),
            message: error.to_string(),
        },
    }
}

/// The header's column names.
fn header_of(path: &Path, reader: &mut csv::Reader<File>) -> Result<Vec<String>> {
    let header = reader.headers().map_err(|e| csv_error(path, e))?;
    Ok(header.iter().map(str::to_string).collect())
}

/// The position of each `wanted` column in `header`, or an error naming the first missing one.
fn positions(path: &Path, header: &[String], wanted: &[&str]) -> Result<Vec<usize>> {
    wanted
        .iter()
        .map(|name| {
            header
                .iter()
                .position(|h| h == name)
                .ok_or_else(|| Error::MissingColumn {
                    file: path.to_path_buf(),
                    column: name.to_string(),
                    found: header.join(", "),
                })
        })
        .collect()
}

/// What is wrong with the shape of `record` (a row of a file whose header has `width` fields):
/// another number of fields, or a field running over several lines, which in these files only
/// an unclosed double quote produces. `None` for a well-formed or blank row.
fn shape_problem(record: &csv::StringRecord, width: usize) -> Option<String> {
    if record.len() == 1 && record[0].is_empty() {
        return None;
    }
    if let Some(field) = record.iter().find(|f| f.contains('\n')) {
        let lines = field.matches('\n').count();
        return Some(format!(
            "unclosed double quote (a field runs over {} lines)",
            lines + 1
        ));
    }
    (record.len() != width).then(|| format!("{} fields, but the header has {width}", record.len()))
}

/// Calls `row(line, fields)` for each data row of the CSV file at `path`, with the fields of
/// the `wanted` columns in that order (columns may come in any order, extra ones are ignored,
/// blank lines are skipped). A missing column, a row of the wrong shape or an error returned
/// by `row` stops the reading with an error naming the file and the line.
pub(crate) fn for_each_row(
    path: &Path,
    wanted: &[&str],
    mut row: impl FnMut(usize, &[&str]) -> Result<()>,
) -> Result<()> {
    let mut reader = csv_reader(path)?;
    let header = header_of(path, &mut reader)?;
    let positions = positions(path, &header, wanted)?;
    let mut record = csv::StringRecord::new();
    while reader
        .read_record(&mut record)
        .map_err(|e| csv_error(path, e))?
    {
        let line = record.position().map_or(0, |p| p.line() as usize);
        if let Some(problem) = shape_problem(&record, header.len()) {
            return Err(Error::MalformedLine {
                file: path.to_path_buf(),
                line,
                problem,
            });
        }
        if record.len() == 1 && record[0].is_empty() {
            continue;
        }
        let fields: Vec<&str> = positions.iter().map(|&i| &record[i]).collect();
        row(line, &fields)?;
    }
    Ok(())
}

/// Checks that every wanted column is in the header.
fn check_header(path: &Path, columns: &[Column]) -> Result<()> {
    let mut reader = csv_reader(path)?;
    let header = header_of(path, &mut reader)?;
    let names: Vec<&str> = columns.iter().map(|c| c.name).collect();
    positions(path, &header, &names).map(|_| ())
}

/// The header and data row `row` (0-based, as polars counts rows; blank lines skipped) of the
/// file, for error messages (a slow path: only called once a problem is known).
fn record_at(path: &Path, row: usize) -> Option<(Vec<String>, csv::StringRecord)> {
    let mut reader = csv_reader(path).ok()?;
    let header = header_of(path, &mut reader).ok()?;
    let record = reader
        .records()
        .filter_map(|r| r.ok())
        .filter(|r| !(r.len() == 1 && r[0].is_empty()))
        .nth(row)?;
    Some((header, record))
}

/// The 1-based line on which data row `row` (0-based, as polars counts rows) starts. The csv
/// crate finds it, since quoted fields may hold line breaks and blank lines do not count.
pub(crate) fn line_of(path: &Path, row: usize) -> usize {
    record_at(path, row)
        .and_then(|(_, record)| record.position().map(|p| p.line() as usize))
        .unwrap_or(row + 2)
}

/// The raw text of field `field` on data row `row`.
fn raw_field(path: &Path, row: usize, field: &str) -> Option<String> {
    let (header, record) = record_at(path, row)?;
    let position = header.iter().position(|h| h == field)?;
    Some(record.get(position)?.to_string())
}

/// The first row whose shape differs from the header's (see [`for_each_row`]). Only called
/// after polars has failed, so the scan costs nothing on valid files.
fn malformed_line(path: &Path) -> Option<Error> {
    for_each_row(path, &[], |_, _| Ok(())).err()
}

/// Reads the given columns of a CSV file into a DataFrame, with each column's dtype, and fails
/// with the line and field of the first value that is missing or does not parse.
pub(crate) fn read_columns(path: &Path, columns: &[Column]) -> Result<DataFrame> {
    check_header(path, columns)?;
    let schema: Schema = columns
        .iter()
        .map(|c| Field::new(c.name.into(), c.kind.dtype()))
        .collect();
    let names: Arc<[PlSmallStr]> = columns.iter().map(|c| PlSmallStr::from(c.name)).collect();
    let frame = CsvReadOptions::default()
        .with_has_header(true)
        .with_columns(Some(names))
        .with_schema_overwrite(Some(Arc::new(schema)))
        .with_infer_schema_length(Some(0))
        .with_ignore_errors(true)
        .try_into_reader_with_file_path(Some(path.to_path_buf()))
        .and_then(|reader| reader.finish())
        .map_err(|e| {
            // polars does not say which line broke; find it ourselves.
            malformed_line(path).unwrap_or_else(|| Error::Csv {
                file: path.to_path_buf(),
                message: e.to_string(),
            })
        })?;
    for column in columns.iter().filter(|c| !c.nullable) {
        let series = frame.column(column.name).map_err(|e| Error::Csv {
            file: path.to_path_buf(),
            message: e.to_string(),
        })?;
        if series.null_count() == 0 {
            continue;
        }
        let nulls = series.is_null();
        let row = nulls
            .iter()
            .position(|is_null| is_null == Some(true))
            .unwrap_or(0);
        let raw = raw_field(path, row, column.name).unwrap_or_default();
        let problem = if raw.trim().is_empty() {
            "empty value".to_string()
        } else {
            format!("'{raw}' is not {}", column.kind.expected())
        };
        return Err(Error::InvalidRow {
            file: path.to_path_buf(),
            line: line_of(path, row),
            field: column.name.to_string(),
            problem,
        });
    }
    Ok(frame)
}

fn numeric<T: PolarsNumericType>(
    frame: &DataFrame,
    name: &str,
    path: &Path,
) -> Result<ChunkedArray<T>> {
    frame
        .column(name)
        .and_then(|c| c.as_materialized_series().unpack::<T>().cloned())
        .map_err(|e| Error::Csv {
            file: path.to_path_buf(),
            message: e.to_string(),
        })
}

/// The values of a column that [`read_columns`] checked to hold no null.
pub(crate) fn required_values<T: PolarsNumericType>(
    frame: &DataFrame,
    name: &str,
    path: &Path,
) -> Result<Vec<T::Native>> {
    let values = numeric::<T>(frame, name, path)?;
    Ok(values.iter().map(Option::unwrap_or_default).collect())
}

/// The values of a nullable column; `None` where the value is empty.
pub(crate) fn optional_values<T: PolarsNumericType>(
    frame: &DataFrame,
    name: &str,
    path: &Path,
) -> Result<Vec<Option<T::Native>>> {
    let values = numeric::<T>(frame, name, path)?;
    Ok(values.iter().collect())
}

/// The values of a text column.
pub(crate) fn texts(frame: &DataFrame, name: &str, path: &Path) -> Result<Vec<Option<String>>> {
    let column = frame
        .column(name)
        .and_then(|c| c.str().cloned())
        .map_err(|e| Error::Csv {
            file: path.to_path_buf(),
            message: e.to_string(),
        })?;
    Ok(column
        .iter()
        .map(|value| value.map(str::to_string))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_malformed_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ratings.csv");
        std::fs::write(&path, "a,b,c\n1,2,3\n4,5,6,7\n").expect("write");
        let error = malformed_line(&path).expect("malformed").to_string();
        assert!(
            error.ends_with("line 3: 4 fields, but the header has 3"),
            "{error}"
        );
        std::fs::write(&path, "a,b\n1,\"x\n2,y\n").expect("write");
        let error = malformed_line(&path).expect("malformed").to_string();
        assert!(error.contains("line 2: unclosed double quote"), "{error}");
        std::fs::write(&path, "\u{feff}a,b\n1,\"x, y\"\n\n").expect("write");
        assert!(malformed_line(&path).is_none());
    }
}
