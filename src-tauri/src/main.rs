//! The Hookscope desktop app: the capture core (listener, store, UI server) running
//! in-process, its UI in a native window, and the touches of a desktop program: tray
//! status, notifications, native save dialog, single instance, remembered window.
//! Everything else lives in `hookscope-core`.

mod commands;
mod notifications;
mod tray;
mod webkit_memory;

use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use hookscope_core::app::{self, AppState, Running, ServeOptions};
use tauri::{App, AppHandle, Manager, RunEvent, Url, WebviewUrl, WebviewWindowBuilder};
use tauri_plugin_window_state::StateFlags;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const MAIN: &str = "main";

/// The running core, shared with commands and stopped on exit.
pub struct Shell {
    pub state: Arc<AppState>,
    running: Mutex<Option<Running>>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HOOKSCOPE_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    // GTK aborts without a display; say what to do instead.
    if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
        eprintln!(
            "hookscope-desktop: no graphical display (DISPLAY and WAYLAND_DISPLAY are unset). \
             Run `hookscope serve` to use Hookscope from a browser instead."
        );
        return ExitCode::from(2);
    }
    let options = ServeOptions::from_env();
    let app = tauri::Builder::default()
        .plugin(
            tauri_plugin_single_instance::Builder::new()
                .dbus_id(instance_id(options.as_ref().ok()))
                .callback(|app, _args, _cwd| show_main(app))
                .build(),
        )
        .plugin(
            tauri_plugin_window_state::Builder::default()
                .with_state_flags(StateFlags::all() & !StateFlags::VISIBLE)
                .build(),
        )
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_clipboard_manager::init())
        .plugin(tauri_plugin_dialog::init())
        .plugin(
            tauri_plugin_opener::Builder::new()
                .open_js_links_on_click(false)
                .build(),
        )
        .invoke_handler(tauri::generate_handler![
            commands::save_export,
            commands::copy_text
        ])
        .setup(move |app| setup(app, options))
        .build(tauri::generate_context!())
        .expect("the window system starts");
    app.run(|handle, event| {
        if let RunEvent::Exit = event {
            stop_core(handle);
        }
    });
    ExitCode::SUCCESS
}

/// One window per data folder: a second launch on the same folder hands over to the
/// first (its window comes to the front); another folder is another, separate app.
fn instance_id(options: Option<&ServeOptions>) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    options.map(|o| &o.data_dir).hash(&mut hasher);
    format!("io.hookscope.desktop.d{:016x}", hasher.finish())
}

fn setup(
    app: &mut App,
    options: hookscope_core::Result<ServeOptions>,
) -> Result<(), Box<dyn std::error::Error>> {
    let started = options.and_then(|options| tauri::async_runtime::block_on(app::start(options)));
    match started {
        Ok(running) => {
            // Same lines as `hookscope serve`, for scripts and tests.
            running.write_addresses(&mut std::io::stdout().lock())?;
            // `Public URL:` lines as the tunnel comes up.
            tauri::async_runtime::spawn(running.public_url_printer());
            let ui: Url = running.ui_url.parse()?;
            main_window(app, WebviewUrl::External(ui.clone()), Some(ui))?;
            let state = running.state.clone();
            let notify = notifications::Switch::load(&state);
            tray::install(
                app,
                tray::Listening::Yes(running.webhook_url.clone()),
                Some((state.clone(), notify.clone())),
            )?;
            notifications::watch(app.handle().clone(), state.clone(), notify);
            notifications::watch_alerts(app.handle().clone(), state.clone());
            app.manage(Shell {
                state,
                running: Mutex::new(Some(running)),
            });
        }
        Err(error) => {
            eprintln!("hookscope-desktop: {error}");
            let message = serde_json::to_string(&error.to_string())?;
            main_window(app, WebviewUrl::App("error.html".into()), None)?.eval(format!(
                "addEventListener('DOMContentLoaded', () => {{ document.getElementById('message').textContent = {message}; }}); \
                 if (document.getElementById('message')) document.getElementById('message').textContent = {message};"
            ))?;
            tray::install(app, tray::Listening::No(error.to_string()), None)?;
        }
    }
    Ok(())
}

/// The window. Pages of the UI's own origin load in it; any other link opens in the
/// system browser.
fn main_window(app: &App, url: WebviewUrl, ui: Option<Url>) -> tauri::Result<tauri::WebviewWindow> {
    let handle = app.handle().clone();
    WebviewWindowBuilder::new(app, MAIN, url)
        .title("Hookscope")
        .inner_size(1280.0, 800.0)
        .min_inner_size(760.0, 480.0)
        .on_navigation(move |target: &Url| {
            let own = ui.as_ref().is_some_and(|ui| ui.origin() == target.origin())
                || target.scheme() == "tauri";
            if !own && matches!(target.scheme(), "http" | "https" | "mailto") {
                use tauri_plugin_opener::OpenerExt;
                let _ = handle.opener().open_url(target.as_str(), None::<&str>);
            }
            own
        })
        .build()
        .inspect(webkit_memory::tune)
}

pub fn show_main(app: &AppHandle) {
    if let Some(window) = app.get_webview_window(MAIN) {
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
    }
}

/// Lets in-flight deliveries commit and the writer finish before the process ends.
fn stop_core(app: &AppHandle) {
    let Some(shell) = app.try_state::<Shell>() else {
        return;
    };
    let running = shell.running.lock().expect("shell lock").take();
    if let Some(running) = running {
        tauri::async_runtime::block_on(running.stop());
    }
}
