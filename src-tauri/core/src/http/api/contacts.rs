//! Contacts: the list, and one contact with its card.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};

use crate::http::state::AppState;

use crate::store::cards;
use crate::store::contacts::{self, ContactFilter};

use super::answer::{ApiQuery, ApiResult};
use super::views::ContactWithCard;

pub(super) async fn list_contacts(
    State(state): State<Arc<AppState>>,
    ApiQuery(filter): ApiQuery<ContactFilter>,
) -> ApiResult<Json<contacts::ContactPage>> {
    Ok(Json(
        state
            .read(move |conn| contacts::list_contacts(conn, &filter))
            .await?,
    ))
}

/// A contact with its card: state derived from its events.
pub(super) async fn get_contact_card(
    State(state): State<Arc<AppState>>,
    Path(email): Path<String>,
) -> ApiResult<Json<ContactWithCard>> {
    let (contact, card) = state
        .read(move |conn| {
            let contact = contacts::get_contact(conn, &email)?;
            let card = cards::current(conn, &contact.email)?;
            Ok((contact, card))
        })
        .await?;
    Ok(Json(ContactWithCard { card, contact }))
}
