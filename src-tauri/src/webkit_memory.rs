//! WebKitGTK set for what the window is: one page of our own, text and lists, that never
//! navigates. WebKit's defaults are a web browser's: GPU compositing, a memory cache of
//! pages and resources, a back-forward cache of pages left. Without GPU compositing the
//! idle web process is 80 MiB smaller; the cache model and the back-forward cache made no
//! measurable difference (they are set anyway: nothing here needs them). `make bench`
//! measures both ways (`HOOKSCOPE_WEBKIT_DEFAULTS=1` leaves WebKit's defaults, for that
//! comparison only).

#[cfg(target_os = "linux")]
pub fn tune(window: &tauri::WebviewWindow) {
    if std::env::var_os("HOOKSCOPE_WEBKIT_DEFAULTS").is_some() {
        return;
    }
    let tuned = window.with_webview(|webview| {
        use webkit2gtk::{CacheModel, SettingsExt, WebContextExt, WebViewExt};
        let view = webview.inner();
        if let Some(context) = view.context() {
            context.set_cache_model(CacheModel::DocumentViewer);
        }
        if let Some(settings) = WebViewExt::settings(&view) {
            settings.set_enable_page_cache(false);
            // A list of text needs no GPU compositing; its buffers and the GL stack were
            // 80 of the web process's 200 MiB idle (measured under Xvfb). Kept for a
            // window driven by WebDriver (the window tests): its screenshots wait for a
            // composited frame and never come back without one.
            if !view.is_controlled_by_automation() {
                settings.set_hardware_acceleration_policy(
                    webkit2gtk::HardwareAccelerationPolicy::Never,
                );
            }
        }
    });
    if let Err(error) = tuned {
        tracing::warn!(%error, "the window's memory settings were not applied");
    }
}

#[cfg(not(target_os = "linux"))]
pub fn tune(_window: &tauri::WebviewWindow) {}
