//! How the API answers: errors cross to the UI as `{"code", "message"}` (the UI branches
//! on `code`), and query strings and bodies that do not parse are refused the same way.

use super::views::ApiErrorBody;
use axum::Json;
use axum::extract::{FromRequestParts, Query};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

use crate::error::Error;

/// Errors cross to the UI as `{"code", "message"}`; the UI branches on `code`.
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        ApiError(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self.0 {
            Error::Invalid(_) | Error::Json(_) => StatusCode::BAD_REQUEST,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %self.0, "API request failed");
        }
        refuse(status, self.0.code(), &self.0.to_string())
    }
}

pub fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    let body = ApiErrorBody {
        code: code.to_string(),
        message: message.to_string(),
    };
    (status, Json(body)).into_response()
}

pub type ApiResult<T> = Result<T, ApiError>;

/// `Query` whose rejection speaks the API's `{code, message}`.
pub struct ApiQuery<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| ApiQuery(value))
            .map_err(|rejection| ApiError(Error::Invalid(rejection.body_text())))
    }
}

/// A JSON request body, refused as `{code: "invalid_json", ...}` when it does not parse.
pub fn json_body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(bytes).map_err(|e| ApiError(Error::Json(e)))
}
