//! Desktop notifications: deliveries arriving while the window is in the background (bursts
//! become one; the switch is remembered in the store's settings), and every alert raised.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hookscope_core::app::AppState;
use hookscope_core::capture::plain_text;
use hookscope_core::store::settings::{self, Setting};
use tauri::{AppHandle, Manager};
use tauri_plugin_notification::NotificationExt;
use tokio::sync::broadcast::error::RecvError;

/// Deliveries closer together than this are announced together.
const BURST: Duration = Duration::from_secs(1);

pub struct Switch(AtomicBool);

impl Switch {
    /// On unless the user turned it off.
    pub fn load(state: &Arc<AppState>) -> Arc<Switch> {
        let stored = tauri::async_runtime::block_on(
            state
                .store
                .read(|conn| settings::get_setting(conn, Setting::DesktopNotifications)),
        );
        let on = !matches!(stored, Ok(Some(value)) if value == "off");
        Arc::new(Switch(AtomicBool::new(on)))
    }

    pub fn is_on(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    pub fn set(&self, state: &Arc<AppState>, on: bool) {
        self.0.store(on, Ordering::Relaxed);
        let state = state.clone();
        tauri::async_runtime::spawn(async move {
            let value = if on { "on" } else { "off" };
            if let Err(error) = state
                .store
                .writer
                .run(move |conn| settings::put_setting(conn, Setting::DesktopNotifications, value))
                .await
            {
                tracing::warn!(%error, "notification setting not saved");
            }
        });
    }
}

pub fn watch(app: AppHandle, state: Arc<AppState>, switch: Arc<Switch>) {
    let mut deliveries = state.store.published.subscribe();
    tauri::async_runtime::spawn(async move {
        loop {
            let mut latest = match deliveries.recv().await {
                Ok(event) => event,
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return,
            };
            let mut count = 1u64;
            let burst = tokio::time::sleep(BURST);
            tokio::pin!(burst);
            loop {
                tokio::select! {
                    _ = &mut burst => break,
                    next = deliveries.recv() => match next {
                        Ok(event) => { count += 1; latest = event; }
                        Err(RecvError::Lagged(missed)) => count += missed,
                        Err(RecvError::Closed) => return,
                    },
                }
            }
            let focused = app
                .get_webview_window(crate::MAIN)
                .and_then(|w| w.is_focused().ok())
                .unwrap_or(false);
            if !switch.is_on() || focused {
                continue;
            }
            let summary = plain_text::for_notification(&latest.summary);
            let (title, body) = if count == 1 {
                ("New delivery".to_string(), summary)
            } else {
                (
                    format!("{count} new deliveries"),
                    format!("Latest: {summary}"),
                )
            };
            if let Err(error) = app.notification().builder().title(title).body(body).show() {
                tracing::warn!(%error, "notification not shown");
            }
        }
    });
}

/// One desktop notification per alert raised (each is raised once per episode: a failing
/// probe notifies once, not at every check). Shown even with the window in front and with
/// delivery notifications off: an alert is what the user asked to be told.
pub fn watch_alerts(app: AppHandle, state: Arc<AppState>) {
    let mut raised = state.alerts.raised.subscribe();
    tauri::async_runtime::spawn(async move {
        loop {
            let alert = match raised.recv().await {
                Ok(alert) => alert,
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return,
            };
            let body = plain_text::for_notification(&format!("{} {}", alert.message, alert.advice));
            if let Err(error) = app
                .notification()
                .builder()
                .title("Hookscope alert")
                .body(body)
                .show()
            {
                tracing::warn!(%error, "alert notification not shown");
            }
        }
    });
}
