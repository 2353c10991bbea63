//! Shell completions and man pages, generated from the command's own definitions so they
//! never drift from `--help`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, CommandFactory};

use crate::Cli;

#[derive(Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell
    shell: clap_complete::Shell,
}

/// Prints the completion script for a shell (e.g. `hookscope completions bash >
/// /etc/bash_completion.d/hookscope`).
pub fn completions(args: CompletionsArgs) -> Result<()> {
    clap_complete::generate(
        args.shell,
        &mut Cli::command(),
        "hookscope",
        &mut std::io::stdout(),
    );
    Ok(())
}

#[derive(Args)]
pub struct ManPagesArgs {
    /// The folder to write `hookscope.1` and a page per command (`hookscope-serve.1`, ...)
    #[arg(value_name = "DIR")]
    out: PathBuf,
}

pub fn man_pages(args: ManPagesArgs) -> Result<()> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let command = Cli::command();
    let mut pages = vec![("hookscope".to_string(), command.clone())];
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("hookscope-{}", sub.get_name());
        pages.push((name.clone(), sub.clone().name(name)));
    }
    for (name, page) in pages {
        let mut text = Vec::new();
        clap_mangen::Man::new(page).render(&mut text)?;
        let path = args.out.join(format!("{name}.1"));
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
