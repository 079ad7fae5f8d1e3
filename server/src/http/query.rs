//! [`Query`]: a route's query string, read into `T` as actix-web's `web::Query` reads it,
//! but whose error names the parameter at fault (`limit`: invalid digit found in string).

use std::future::{Ready, ready};

use actix_web::{FromRequest, HttpRequest, dev::Payload};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A query string read into `T`.
pub struct Query<T>(pub T);

impl<T> Query<T> {
    /// The value read.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Query<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = ApiError;
    type Future = Ready<Result<Query<T>, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(parse(req.query_string()).map(Query))
    }
}

/// Reads a query string; the error names the parameter, when one is at fault.
fn parse<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let pairs = form_urlencoded::parse(query.as_bytes());
    serde_path_to_error::deserialize(serde_urlencoded::Deserializer::new(pairs)).map_err(|e| {
        let at = match e.path().to_string() {
            path if path == "." || path == "?" => String::new(),
            path => format!("`{path}`: "),
        };
        ApiError::bad_request(
            "invalid-query",
            format!(
                "the query string is not valid: {at}{}; see /api/v1/openapi.json",
                e.inner()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Page {
        step: String,
        limit: Option<u64>,
    }

    fn detail(query: &str) -> String {
        parse::<Page>(query).unwrap_err().detail
    }

    #[test]
    fn the_error_names_the_parameter_at_fault() {
        assert_eq!(parse::<Page>("step=a&limit=5").unwrap().limit, Some(5));
        let d = detail("step=a&limit=-1");
        assert!(d.contains("`limit`: invalid digit found in string"), "{d}");
        let d = detail("step=a&limit=abc");
        assert!(
            d.starts_with("the query string is not valid: `limit`: "),
            "{d}"
        );
        let d = detail("limit=1");
        assert!(d.contains("missing field `step`"), "{d}");
        let d = detail("step=a&keys=id");
        assert!(d.contains("unknown field `keys`"), "{d}");
    }
}
