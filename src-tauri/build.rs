fn main() {
    // App commands the window may call; each needs `allow-<name>` in a capability.
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(&["save_export", "copy_text"])),
    )
    .expect("tauri-build runs");
}
