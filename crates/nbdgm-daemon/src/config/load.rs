//! Reading configuration text: `toml` parsing, then validation, with every error
//! mapped to its key path and position through the span tree ([`super::locate`]).

use super::error::{ConfigError, ErrorKind};
use super::locate;
use super::{Config, MAX_FILE_BYTES};
use std::io::{self, Read};
use std::path::Path;
use std::str::FromStr;

impl FromStr for Config {
    type Err = ConfigError;
    /// Parse and validate configuration text (errors say `<config>:line:col`).
    fn from_str(text: &str) -> Result<Self, ConfigError> {
        Config::parse_text(text, None)
    }
}

impl Config {
    /// Read, parse and validate a file (at most [`MAX_FILE_BYTES`]).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let io_err = |source| ConfigError::Io {
            path: path.to_owned(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io_err)?;
        let mut text = String::new();
        file.take(MAX_FILE_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(io_err)?;
        if text.len() as u64 > MAX_FILE_BYTES {
            return Err(io_err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("larger than {MAX_FILE_BYTES} bytes"),
            )));
        }
        Config::parse_text(&text, Some(path))
    }

    /// Parse and validate text; `file` names it in errors.
    pub fn parse_text(text: &str, file: Option<&Path>) -> Result<Config, ConfigError> {
        let file_error = |span: Option<std::ops::Range<usize>>, key: String, kind, message| {
            let (line, column) = span.map_or((0, 0), |s| line_col(text, s.start));
            ConfigError::File {
                file: file.map(Path::to_owned),
                key,
                line,
                column,
                kind,
                message,
            }
        };
        // The span tree accepts any TOML, so its failure is a syntax error.
        let tree = match toml::from_str::<locate::Root>(text) {
            Ok(t) => t,
            Err(e) => {
                let key = e
                    .span()
                    .map(|s| locate::guess_key(text, s.start))
                    .unwrap_or_default();
                let message = e.message().trim().replace('\n', "; ");
                return Err(file_error(e.span(), key, ErrorKind::Syntax, message));
            }
        };
        let cfg: Config = toml::from_str(text).map_err(|e| {
            let message = e.message().trim().to_owned();
            let kind = if message.starts_with("unknown field") {
                ErrorKind::UnknownKey
            } else {
                ErrorKind::Type
            };
            let mut key = e
                .span()
                .and_then(|s| tree.path_at(text, s.start))
                .unwrap_or_default();
            // An unknown key's position is its table; name the key itself.
            if let Some(field) = message
                .strip_prefix("unknown field `")
                .and_then(|r| r.split('`').next())
            {
                if key != field && !key.ends_with(&format!(".{field}")) {
                    key = if key.is_empty() {
                        field.to_owned()
                    } else {
                        format!("{key}.{field}")
                    };
                }
            }
            file_error(e.span(), key, kind, message)
        })?;
        cfg.check_all().map_err(|i| {
            let span = tree.span_of(&i.key);
            file_error(span, i.key, ErrorKind::Value, i.message)
        })?;
        Ok(cfg)
    }
}

/// 1-based line and column (in characters) of byte offset `pos`.
pub(super) fn line_col(text: &str, pos: usize) -> (usize, usize) {
    let mut pos = pos.min(text.len());
    while !text.is_char_boundary(pos) {
        pos -= 1;
    }
    let before = text.get(..pos).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}
