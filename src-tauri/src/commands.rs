//! The two things the window asks of the shell. Errors cross as `{code, message}`.

use hookscope_core::exchange::export::{self, Format};
use hookscope_core::store::events::query::EventFilter;
use serde::Serialize;
use tauri::{AppHandle, State};
use tauri_plugin_clipboard_manager::ClipboardExt;
use tauri_plugin_dialog::DialogExt;

use crate::Shell;

#[derive(Debug, Serialize)]
pub struct CommandError {
    code: &'static str,
    message: String,
}

impl From<hookscope_core::Error> for CommandError {
    fn from(error: hookscope_core::Error) -> Self {
        CommandError {
            code: error.code(),
            message: error.to_string(),
        }
    }
}

fn failed(code: &'static str, message: impl ToString) -> CommandError {
    CommandError {
        code,
        message: message.to_string(),
    }
}

/// Asks where to save with the native dialog, then writes the export straight from the
/// store (streamed: any size). `None` when the user cancels.
#[tauri::command]
pub async fn save_export(
    app: AppHandle,
    shell: State<'_, Shell>,
    filter: EventFilter,
    format: String,
) -> Result<Option<String>, CommandError> {
    let format: Format = format.parse()?;
    // Everything acknowledged so far is in the export.
    shell
        .state
        .store
        .caught_up(std::time::Duration::from_secs(10))
        .await;
    let database = shell.state.store.database.clone();
    // The limit this Hookscope runs with: bodies it accepted past the default are decoded.
    let max_body = shell.state.store.max_body.bytes();
    tauri::async_runtime::spawn_blocking(move || {
        let chosen = app
            .dialog()
            .file()
            .set_title("Export events")
            .set_file_name(format!("hookscope-export.{}", format.extension()))
            .add_filter(format.extension().to_uppercase(), &[format.extension()])
            .blocking_save_file();
        let Some(chosen) = chosen else {
            return Ok(None);
        };
        let path = chosen.into_path().map_err(|e| failed("io", e))?;
        export::export_to_file(&database, &filter, format, &path, max_body)?;
        Ok(Some(path.display().to_string()))
    })
    .await
    .map_err(|e| failed("internal", e))?
}

#[tauri::command]
pub fn copy_text(app: AppHandle, text: String) -> Result<(), CommandError> {
    app.clipboard()
        .write_text(text)
        .map_err(|e| failed("clipboard", e))
}
