//! The tray menu: listening and tunnel status, copy the webhook URLs, notifications on/off,
//! quit.

use std::sync::Arc;

use hookscope_core::app::AppState;
use hookscope_core::tunnel::{TunnelState, TunnelStatus};
use tauri::App;
use tauri::menu::{CheckMenuItem, Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
use tauri_plugin_clipboard_manager::ClipboardExt;

use crate::notifications::Switch;

pub enum Listening {
    /// With the webhook URL.
    Yes(String),
    /// With the reason.
    No(String),
}

pub fn install(
    app: &App,
    listening: Listening,
    running: Option<(Arc<AppState>, Arc<Switch>)>,
) -> tauri::Result<()> {
    let (status_text, url) = match listening {
        Listening::Yes(url) => (format!("Listening: {url}"), Some(url)),
        Listening::No(reason) => (format!("Not listening: {reason}"), None),
    };
    let status = MenuItem::with_id(app, "status", status_text, false, None::<&str>)?;
    let open = MenuItem::with_id(app, "open", "Open Hookscope", true, None::<&str>)?;
    let copy = MenuItem::with_id(app, "copy", "Copy webhook URL", url.is_some(), None::<&str>)?;
    let tunnel_now = running
        .as_ref()
        .map(|(state, _)| state.public.tunnels.status());
    let tunnel = MenuItem::with_id(
        app,
        "tunnel",
        tunnel_now
            .as_ref()
            .map_or_else(|| "Tunnel: none".into(), tunnel_text),
        false,
        None::<&str>,
    )?;
    let copy_public = MenuItem::with_id(
        app,
        "copy-public",
        "Copy public webhook URL",
        tunnel_now
            .as_ref()
            .is_some_and(|t| t.state == TunnelState::Up),
        None::<&str>,
    )?;
    let notify_on = running.as_ref().is_some_and(|(_, switch)| switch.is_on());
    let notify = CheckMenuItem::with_id(
        app,
        "notify",
        "Notify on new deliveries",
        running.is_some(),
        notify_on,
        None::<&str>,
    )?;
    let quit = MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?;
    let menu = Menu::with_items(
        app,
        &[
            &status,
            &tunnel,
            &PredefinedMenuItem::separator(app)?,
            &open,
            &copy,
            &copy_public,
            &notify,
            &PredefinedMenuItem::separator(app)?,
            &quit,
        ],
    )?;
    // The webhook path is the same through the tunnel.
    let path = url
        .as_deref()
        .and_then(|u| u.find("/h/").map(|at| u[at..].to_string()));
    let public_url = {
        let running = running.clone();
        move || {
            let (state, _) = running.as_ref()?;
            let status = state.public.tunnels.status();
            let base = status
                .public_url
                .filter(|_| status.state == TunnelState::Up)?;
            Some(format!("{base}{}", path.as_deref()?))
        }
    };
    if let Some((state, _)) = &running {
        let mut changes = state.public.tunnels.subscribe();
        let (tunnel, copy_public) = (tunnel.clone(), copy_public.clone());
        tauri::async_runtime::spawn(async move {
            while changes.changed().await.is_ok() {
                let now = changes.borrow_and_update().clone();
                let _ = tunnel.set_text(tunnel_text(&now));
                let _ = copy_public.set_enabled(now.state == TunnelState::Up);
            }
        });
    }
    let mut tray = TrayIconBuilder::with_id("hookscope")
        .menu(&menu)
        .tooltip("Hookscope")
        .on_menu_event(move |app, event| match event.id().as_ref() {
            "open" => crate::show_main(app),
            "copy" => {
                if let Some(url) = &url {
                    let _ = app.clipboard().write_text(url.clone());
                }
            }
            "copy-public" => {
                if let Some(url) = public_url() {
                    let _ = app.clipboard().write_text(url);
                }
            }
            "notify" => {
                if let Some((state, switch)) = &running {
                    switch.set(state, notify.is_checked().unwrap_or(true));
                }
            }
            "quit" => app.exit(0),
            _ => {}
        });
    if let Some(icon) = app.default_window_icon() {
        tray = tray.icon(icon.clone());
    }
    tray.build(app)?;
    Ok(())
}

fn tunnel_text(status: &TunnelStatus) -> String {
    match status.state {
        TunnelState::Off => "Tunnel: none".into(),
        TunnelState::Starting => format!("Tunnel: {} starting…", status.provider),
        TunnelState::Up => format!("Public: {}", status.public_url.as_deref().unwrap_or("")),
        TunnelState::Reconnecting => format!("Tunnel: {} reconnecting…", status.provider),
        TunnelState::Failed => format!(
            "Tunnel failed: {}",
            status.reason.as_deref().unwrap_or("see the window")
        ),
    }
}
