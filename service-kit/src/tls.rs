//! TLS served by a service itself (rustls), when `TLS_CERT_FILE` and
//! `TLS_KEY_FILE` name a PEM certificate chain and its private key. Without
//! them the service speaks plain HTTP and TLS is for a proxy in front
//! (`deploy/`). Only HTTP/1.1 is offered (ALPN): WebSocket upgrades and SSE
//! are HTTP/1.1 on every browser.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use anyhow::Context;
pub use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{
    self,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
};

/// Where a service's certificate and key are.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TlsConfig {
    /// PEM certificate chain (leaf first); with TLS_KEY_FILE, the service
    /// serves https:// and wss:// itself.
    #[arg(long = "tls-cert-file", env = "TLS_CERT_FILE")]
    pub cert_file: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of the certificate.
    #[arg(long = "tls-key-file", env = "TLS_KEY_FILE")]
    pub key_file: Option<PathBuf>,
}

impl TlsConfig {
    /// Reads the files: `None` when neither is set, an error when only one
    /// is or either cannot be used.
    pub fn acceptor(&self) -> anyhow::Result<Option<TlsAcceptor>> {
        let set = |path: &Option<PathBuf>| path.clone().filter(|p| !p.as_os_str().is_empty());
        match (set(&self.cert_file), set(&self.key_file)) {
            (None, None) => Ok(None),
            (Some(cert), Some(key)) => load(&cert, &key).map(Some),
            _ => anyhow::bail!("TLS_CERT_FILE and TLS_KEY_FILE go together: set both, or neither"),
        }
    }
}

fn load(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("read the certificates in TLS_CERT_FILE {}", cert.display()))?;
    anyhow::ensure!(
        !chain.is_empty(),
        "TLS_CERT_FILE {} holds no certificate",
        cert.display()
    );
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("read the private key in TLS_KEY_FILE {}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("TLS_KEY_FILE does not match TLS_CERT_FILE, or is not a usable key")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_files_or_neither() {
        assert!(TlsConfig::default().acceptor().unwrap().is_none());
        let half = TlsConfig {
            cert_file: Some("/nonexistent/cert.pem".into()),
            key_file: None,
        };
        let err = half.acceptor().err().expect("refused").to_string();
        assert!(err.contains("go together"), "{err}");
        let missing = TlsConfig {
            cert_file: Some("/nonexistent/cert.pem".into()),
            key_file: Some("/nonexistent/key.pem".into()),
        };
        let err = format!("{:#}", missing.acceptor().err().expect("refused"));
        assert!(err.contains("TLS_CERT_FILE /nonexistent/cert.pem"), "{err}");
    }
}
