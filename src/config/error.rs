//! A config that is not valid, or not readable: the field (or file) named in the message.
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid config: {field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{path}: not a valid vae-tch config: {cause}")]
    Parse {
        path: PathBuf,
        cause: toml::de::Error,
    },
}

pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field,
        message: message.into(),
    }
}
