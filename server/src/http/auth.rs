//! Bearer-token authentication as extractors: a handler that takes [`Auth<Read>`] runs
//! only for a token with the `read` scope (or `admin`, which implies every scope).

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use pipeproof_core::api::{Scope, Token};

use super::AppState;
use crate::error::ApiError;

/// A scope a handler needs.
pub trait Need {
    /// The scope; `None` for any valid token.
    const SCOPE: Option<Scope>;
}

/// Needs `read`.
pub struct Read;
/// Needs `ingest`.
pub struct Ingest;
/// Needs `admin`.
pub struct Admin;
/// Needs any valid token.
pub struct Any;

impl Need for Read {
    const SCOPE: Option<Scope> = Some(Scope::Read);
}
impl Need for Ingest {
    const SCOPE: Option<Scope> = Some(Scope::Ingest);
}
impl Need for Admin {
    const SCOPE: Option<Scope> = Some(Scope::Admin);
}
impl Need for Any {
    const SCOPE: Option<Scope> = None;
}

/// The token of a request that has the scope `S` needs.
pub struct Auth<S: Need> {
    /// The token (without its secret).
    pub token: Token,
    _need: PhantomData<S>,
}

/// Whether a token's scopes grant `need` (admin grants everything).
pub fn grants(scopes: &[Scope], need: Option<Scope>) -> bool {
    match need {
        None => true,
        Some(need) => scopes.iter().any(|s| *s == need || *s == Scope::Admin),
    }
}

fn bearer(req: &HttpRequest) -> Result<String, ApiError> {
    let unauthorized =
        |detail: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", detail.to_string());
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .ok_or_else(|| {
            unauthorized(
                "no token: send `Authorization: Bearer TOKEN` (the admin token is printed at \
                 the server's first start; make more with `pipeproof token create`)",
            )
        })?;
    let value = header
        .to_str()
        .map_err(|_| unauthorized("the Authorization header is not text"))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim().to_string())
        }
        _ => Err(unauthorized(
            "the Authorization header must be `Bearer TOKEN`",
        )),
    }
}

impl<S: Need + 'static> FromRequest for Auth<S> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let secret = bearer(req);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let secret = secret?;
            let state = state.ok_or_else(|| ApiError::internal("no application state"))?;
            let store = state.store.clone();
            let token = web::block(move || store.authenticate(&secret))
                .await
                .map_err(ApiError::internal)??
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::UNAUTHORIZED,
                        "unauthorized",
                        "the token is not known to this server: check for a typo, or make one \
                         with `pipeproof token create`",
                    )
                })?;
            if let Some(at) = &token.revoked_at {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    format!(
                        "token `{}` was revoked at {at}: ask an admin for a new one",
                        token.name
                    ),
                ));
            }
            if !grants(&token.scopes, S::SCOPE) {
                let need = S::SCOPE.map(Scope::as_str).unwrap_or("any");
                let have: Vec<&str> = token.scopes.iter().map(|s| s.as_str()).collect();
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    format!(
                        "token `{}` has scope(s) [{}]; this route needs `{need}`: use a token \
                         with that scope (`pipeproof token create --scope {need}`)",
                        token.name,
                        have.join(", ")
                    ),
                ));
            }
            Ok(Auth {
                token,
                _need: PhantomData,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_implies_every_scope() {
        for need in [Scope::Read, Scope::Ingest, Scope::Admin] {
            assert!(grants(&[Scope::Admin], Some(need)));
        }
        assert!(grants(&[Scope::Read], Some(Scope::Read)));
        assert!(!grants(&[Scope::Read], Some(Scope::Ingest)));
        assert!(!grants(&[Scope::Ingest, Scope::Read], Some(Scope::Admin)));
        assert!(grants(&[], None));
    }
}
