//! `nbdgm generate` (not in `--help`): man pages (clap_mangen) and shell completions
//! (clap_complete) from the CLI definition itself, for the Debian package
//! (scripts/package.sh, docs/packaging.md).

use crate::exit;
use clap::{Parser, Subcommand, ValueEnum};
use clap_complete::Shell;
use std::path::{Path, PathBuf};

/// `nbdgm generate`, parsed apart from the other commands (see `main`).
#[derive(Parser, Debug)]
#[command(
    name = "nbdgm-generate",
    bin_name = "nbdgm generate",
    about = "Write man pages or shell completions generated from the nbdgm CLI (packaging)",
    after_help = "Examples:\n  \
    nbdgm generate man target/assets/man       # nbdgm.1, nbdgm-serve.1, nbdgm-monitor-run.1...\n  \
    nbdgm generate completions bash target/assets/completions\n\n\
Exit codes: 0 written, 2 usage error or the directory cannot be written."
)]
pub struct GenerateArgs {
    #[command(subcommand)]
    pub what: What,
}

#[derive(Subcommand, Debug)]
pub enum What {
    /// One man page (section 1) per command and subcommand into DIR.
    Man {
        /// Output directory (created if missing).
        dir: PathBuf,
    },
    /// The completion script of SHELL into DIR (nbdgm.bash, _nbdgm, nbdgm.fish).
    Completions {
        #[arg(value_enum)]
        shell: CompletionShell,
        /// Output directory (created if missing).
        dir: PathBuf,
    },
}

/// The shells the package ships completions for.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

impl From<CompletionShell> for Shell {
    fn from(s: CompletionShell) -> Shell {
        match s {
            CompletionShell::Bash => Shell::Bash,
            CompletionShell::Zsh => Shell::Zsh,
            CompletionShell::Fish => Shell::Fish,
        }
    }
}

/// `nbdgm generate ARGS...` from the process arguments; `cmd` is the whole `nbdgm`
/// command (`Cli::command()`). Returns the exit code.
pub fn main(cmd: clap::Command) -> u8 {
    // "generate" stands in for the program name.
    match GenerateArgs::try_parse_from(std::env::args_os().skip(1)) {
        Ok(args) => run(&args, cmd),
        Err(e) => {
            let _ = e.print();
            if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            }
        }
    }
}

/// Writes what `args` asks for.
pub fn run(args: &GenerateArgs, cmd: clap::Command) -> u8 {
    let result = match &args.what {
        What::Man { dir } => man(cmd, dir),
        What::Completions { shell, dir } => completions(cmd, *shell, dir),
    };
    match result {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
            exit::OK
        }
        Err(e) => {
            eprintln!(
                "nbdgm generate: {}",
                nbdgm_wire::text::Escaped(&e.to_string())
            );
            exit::USAGE
        }
    }
}

/// Man pages of `cmd` and every visible subcommand, named `nbdgm-serve.1` etc.
pub fn man(cmd: clap::Command, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let mut files = Vec::new();
    write_pages(cmd, dir, &mut files)?;
    Ok(files)
}

fn write_pages(cmd: clap::Command, dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub.clone(), dir, files)?;
    }
    files.push(clap_mangen::Man::new(cmd).generate_to(dir)?);
    Ok(())
}

/// The completion script of one shell.
pub fn completions(
    mut cmd: clap::Command,
    shell: CompletionShell,
    dir: &Path,
) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let path = clap_complete::generate_to(Shell::from(shell), &mut cmd, "nbdgm", dir)?;
    Ok(vec![path])
}
