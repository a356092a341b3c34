//! Throw-away TLS material for tests: a CA and one server certificate signed by it.

use crate::error::{io_err, LabError, Result};
use std::path::{Path, PathBuf};

/// The PEM files [`test_certs`] wrote.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The CA certificate (`ca.pem`), for the client's trust store.
    pub ca: PathBuf,
    /// The server certificate (`cert.pem`).
    pub cert: PathBuf,
    /// The server's private key (`key.pem`).
    pub key: PathBuf,
}

/// A fresh CA ("nbdgm test CA") and a certificate for `san` (an IP address or a name)
/// signed by it, written as `ca.pem`, `cert.pem` and `key.pem` into `dir`.
pub fn test_certs(dir: &Path, san: &str) -> Result<TlsFiles> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let bad = |e: rcgen::Error| LabError::Invalid(format!("test certificate for {san:?}: {e}"));
    let ca_key = KeyPair::generate().map_err(bad)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(bad)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "nbdgm test CA");
    let ca_cert = ca.self_signed(&ca_key).map_err(bad)?;
    let key = KeyPair::generate().map_err(bad)?;
    let cert = CertificateParams::new(vec![san.to_owned()])
        .map_err(bad)?
        .signed_by(&key, &ca_cert, &ca_key)
        .map_err(bad)?;
    let files = TlsFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    for (path, pem) in [
        (&files.ca, ca_cert.pem()),
        (&files.cert, cert.pem()),
        (&files.key, key.serialize_pem()),
    ] {
        std::fs::write(path, pem).map_err(io_err(format!("write {}", path.display())))?;
    }
    Ok(files)
}
