//! Reading MovieLens CSV files with polars, and turning parser failures into errors that name the
//! file, the line and the field.

use std::fs::File;
use std::io::{BufRead, BufReader};
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

/// The 1-based line of a data row, given its 0-based row index (line 1 is the header).
pub(crate) fn line_of(row: usize) -> usize {
    row + 2
}

/// Reads the header line and checks that every wanted column is present.
fn check_header(path: &Path, columns: &[Column]) -> Result<()> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut header = String::new();
    BufReader::new(file)
        .read_line(&mut header)
        .map_err(|e| Error::io(path, e))?;
    let header = header.trim_start_matches('\u{feff}').trim_end();
    let found: Vec<&str> = header.split(',').map(|c| c.trim_matches('"')).collect();
    for column in columns {
        if !found.contains(&column.name) {
            return Err(Error::MissingColumn {
                file: path.to_path_buf(),
                column: column.name.to_string(),
                found: found.join(", "),
            });
        }
    }
    Ok(())
}

/// The raw text of field `field` on data row `row`, for error messages (a slow path: only called
/// once a problem is known).
fn raw_field(path: &Path, row: usize, field: &str) -> Option<String> {
    let file = File::open(path).ok()?;
    let mut lines = BufReader::new(file).lines();
    let header = lines.next()?.ok()?;
    let position = header
        .trim_start_matches('\u{feff}')
        .split(',')
        .position(|c| c.trim_matches('"') == field)?;
    let line = lines.nth(row)?.ok()?;
    split_csv_line(&line).into_iter().nth(position)
}

/// The first line whose shape differs from the header's: an unclosed quote or another number
/// of fields. Only called after polars has failed, so the scan costs nothing on valid files.
fn malformed_line(path: &Path) -> Option<Error> {
    let file = File::open(path).ok()?;
    let mut lines = BufReader::new(file).lines();
    let header = lines.next()?.ok()?;
    let expected = split_csv_line(header.trim_start_matches('\u{feff}')).len();
    for (index, line) in lines.enumerate() {
        let line = line.ok()?;
        let line_number = index + 2;
        let problem = if line.matches('"').count() % 2 == 1 {
            "unclosed double quote".to_string()
        } else {
            let found = split_csv_line(&line).len();
            if found == expected {
                continue;
            }
            format!("{found} fields, but the header has {expected}")
        };
        return Some(Error::MalformedLine {
            file: path.to_path_buf(),
            line: line_number,
            problem,
        });
    }
    None
}

/// Splits one CSV line into fields, honouring double quotes.
fn split_csv_line(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                current.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    fields.push(current);
    fields
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
            line: line_of(row),
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
        assert!(error.ends_with("line 2: unclosed double quote"), "{error}");
        std::fs::write(&path, "a,b\n1,\"x, y\"\n").expect("write");
        assert!(malformed_line(&path).is_none());
    }

    #[test]
    fn splits_quoted_fields() {
        assert_eq!(
            split_csv_line(r#"11,"American President, The (1995)",Comedy|Drama"#),
            vec!["11", "American President, The (1995)", "Comedy|Drama"]
        );
        assert_eq!(
            split_csv_line(r#"1,"say ""hi""",x"#),
            vec!["1", r#"say "hi""#, "x"]
        );
    }
}
