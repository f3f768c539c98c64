//! Query-string parameters: parsed by hand over `form_urlencoded` (rather than axum's `Query`
//! extractor) so that every refusal names its parameter in JSON, repeated parameters (`genre`)
//! are kept, and a misspelt parameter is refused instead of ignored.

use std::str::FromStr;

use super::ApiError;

/// The parameters of one request, in order.
pub(crate) struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Parses `query`, refusing any parameter not in `known` and any repeated one not in
    /// `repeatable`.
    pub(crate) fn parse(
        query: Option<&str>,
        known: &[&str],
        repeatable: &[&str],
    ) -> Result<Params, ApiError> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        for (i, (name, _)) in pairs.iter().enumerate() {
            if !known.contains(&name.as_str()) {
                return Err(ApiError::invalid(
                    name,
                    format!(
                        "unknown parameter '{}' (known: {})",
                        name.chars().take(40).collect::<String>(),
                        known.join(", ")
                    ),
                ));
            }
            if !repeatable.contains(&name.as_str()) && pairs[..i].iter().any(|(n, _)| n == name) {
                return Err(ApiError::invalid(name, "given more than once"));
            }
        }
        Ok(Params { pairs })
    }

    /// The value of `name`, if given.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a repeatable `name`.
    pub(crate) fn all(&self, name: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// The value of `name`, which must be given.
    pub(crate) fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name)
            .ok_or_else(|| ApiError::invalid(name, format!("'{name}' is required")))
    }

    /// `name` parsed as a `T` (a number, a flag), if given.
    pub(crate) fn parsed<T: FromStr>(&self, name: &str, what: &str) -> Result<Option<T>, ApiError> {
        self.get(name)
            .map(|v| {
                v.trim().parse::<T>().map_err(|_| {
                    ApiError::invalid(
                        name,
                        format!("'{}' is not {what}", v.chars().take(40).collect::<String>()),
                    )
                })
            })
            .transpose()
    }

    /// `name` as one of a clap value enum's names (`stack`, `mode`), if given.
    pub(crate) fn choice<T: clap::ValueEnum>(&self, name: &str) -> Result<Option<T>, ApiError> {
        self.get(name)
            .map(|v| {
                T::from_str(v, true).map_err(|_| {
                    let names: Vec<String> = T::value_variants()
                        .iter()
                        .filter_map(|x| x.to_possible_value().map(|p| p.get_name().to_string()))
                        .collect();
                    ApiError::invalid(
                        name,
                        format!(
                            "'{}' is not one of {}",
                            v.chars().take(40).collect::<String>(),
                            names.join(", ")
                        ),
                    )
                })
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_checked_by_name() {
        let p = Params::parse(
            Some("q=a%20b&genre=Drama&genre=Crime&k=5"),
            &["q", "genre", "k"],
            &["genre"],
        )
        .expect("valid");
        assert_eq!(p.get("q"), Some("a b"));
        assert_eq!(p.all("genre"), vec!["Drama", "Crime"]);
        assert_eq!(p.parsed::<usize>("k", "a count").expect("number"), Some(5));
        let e = Params::parse(Some("q=x&kk=3"), &["q", "k"], &[])
            .err()
            .expect("unknown");
        assert_eq!(e.parameter.as_deref(), Some("kk"));
        let e = Params::parse(Some("k=1&k=2"), &["k"], &[])
            .err()
            .expect("repeated");
        assert_eq!(e.parameter.as_deref(), Some("k"));
        let p = Params::parse(Some("k=ten"), &["k"], &[]).expect("parsed later");
        assert!(p.parsed::<usize>("k", "a count").is_err());
        assert!(p.required("q").is_err());
    }
}
