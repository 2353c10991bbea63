//! The tray menu: listening status, copy the webhook URL, notifications on/off, quit.

use std::sync::Arc;

use hookscope_core::server::AppState;
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
            &PredefinedMenuItem::separator(app)?,
            &open,
            &copy,
            &notify,
            &PredefinedMenuItem::separator(app)?,
            &quit,
        ],
    )?;
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
