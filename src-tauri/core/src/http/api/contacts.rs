//! Contacts: the list, and one contact with its card.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};

use crate::service::erasure::Erasure;
use crate::service::store::Store;

use crate::store::cards;
use crate::store::contacts::{self, ContactFilter};

use super::answer::{ApiQuery, ApiResult};
use super::views::ContactWithCard;
use crate::store::erasure::ErasureReport;

pub(super) async fn list_contacts(
    State(store): State<Arc<Store>>,
    ApiQuery(filter): ApiQuery<ContactFilter>,
) -> ApiResult<Json<contacts::ContactPage>> {
    Ok(Json(
        store
            .read(move |conn| contacts::list_contacts(conn, &filter))
            .await?,
    ))
}

/// A contact with its card: state derived from its events.
pub(super) async fn get_contact_card(
    State(store): State<Arc<Store>>,
    Path(email): Path<String>,
) -> ApiResult<Json<ContactWithCard>> {
    let (contact, card, not_counted) = store
        .read(move |conn| {
            let contact = contacts::get_contact(conn, &email)?;
            let key = crate::capture::decode::normalise_email(&contact.email);
            let card = cards::current(conn, &key)?;
            let not_counted = cards::not_counted(conn, &key)?;
            Ok((contact, card, not_counted))
        })
        .await?;
    Ok(Json(ContactWithCard {
        card,
        contact,
        not_counted,
    }))
}

/// What forgetting a contact would remove: `{email, deliveries, mentioning}` (nothing is
/// removed). The window shows it in its confirmation.
pub(super) async fn erasure_preview(
    State(erasure): State<Arc<Erasure>>,
    Path(email): Path<String>,
) -> ApiResult<Json<ErasureReport>> {
    let found = erasure.erasure_of(email).await?;
    Ok(Json(ErasureReport {
        email: found.email,
        deliveries: found.keyed.len() as u64,
        mentioning: found.mentioning.len() as u64,
    }))
}

/// Forgets a contact: every delivery about them or mentioning their email, and everything
/// derived from those. Export them first (`/api/export?email=`) to hand them their data.
pub(super) async fn forget_contact(
    State(erasure): State<Arc<Erasure>>,
    Path(email): Path<String>,
) -> ApiResult<Json<ErasureReport>> {
    Ok(Json(erasure.forget(email).await?))
}
